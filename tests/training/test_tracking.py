"""TensorBoard's HParams tab over a sweep folder, read back through the hparams plugin's own handlers."""

import pytest
from tensorboard import context
from tensorboard.backend.event_processing import data_provider, plugin_event_multiplexer
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins import base_plugin
from tensorboard.plugins.hparams import api_pb2, backend_context, get_experiment, list_session_groups

from scaling_sweep.analysis import report
from scaling_sweep.analysis.analyze import Analysis
from scaling_sweep.analysis.fit import Fit
from scaling_sweep.core.runfiles import MetricsRow, RunSummary
from scaling_sweep.training.tracking import RunLog

RUN_COLUMNS = {"N", "N_total", "n_layer", "d_model", "n_head", "n_ctx", "tokens", "flops_6N", "flops_exact"}
VAL_LOSSES = {32: {0: 5.0, 10: 3.0, 20: 3.2}, 64: {0: 5.0, 10: 2.8, 20: 2.7}}  # d_model -> step -> val loss


def write_run(run_dir, d_model, val_losses, status="completed", resume_step=None):
    """Log val_losses (step -> loss) as RunLog does for a run of width d_model, then its summary."""
    run_dir.mkdir(exist_ok=True)
    log = RunLog(run_dir, resume_step)
    for step, loss in val_losses.items():
        log.log(MetricsRow(step=step, tokens=step * 256, flops=step * 1e9, train_loss=loss, val_loss=loss))
    n = 12 * 2 * d_model**2
    log.write_summary(RunSummary(
        run_name=run_dir.name, sweep="demo", status=status, n_layer=2, d_model=d_model, n_head=2, n_ctx=32,
        d_ff=4 * d_model, N=n, N_total=n + 2 * 257 * d_model, batch_tokens=256, tokens=20 * 256, flops=20e9,
        flops_exact=30e9))
    log.close()


def write_sweep(sweep_dir):
    for d_model, losses in VAL_LOSSES.items():
        write_run(sweep_dir / f"L2_d{d_model}_h2", d_model, losses)


def hparams_tab(log_dir):
    """(experiment, session groups) as TensorBoard's HParams tab gets them for log_dir."""
    multiplexer = plugin_event_multiplexer.EventMultiplexer()
    multiplexer.AddRunsFromDirectory(str(log_dir))
    multiplexer.Reload()
    provider = data_provider.MultiplexerDataProvider(multiplexer, str(log_dir))
    plugin = backend_context.Context(base_plugin.TBContext(data_provider=provider, multiplexer=multiplexer))
    request = context.RequestContext()
    experiment = get_experiment.Handler(request, plugin, "", api_pb2.GetExperimentRequest()).run()
    every_status = [api_pb2.STATUS_UNKNOWN, api_pb2.STATUS_SUCCESS, api_pb2.STATUS_FAILURE, api_pb2.STATUS_RUNNING]
    groups = list_session_groups.Handler(request, plugin, "", api_pb2.ListSessionGroupsRequest(
        slice_size=100, allowed_statuses=every_status)).run().session_groups
    return experiment, {g.name: g for g in groups}


def losses(row) -> dict[str, float]:
    """A row's final and best validation loss (TensorBoard stores scalars as float32)."""
    values = {m.name.tag: m.value for m in row.metric_values}
    return {tag: pytest.approx(values[tag], rel=1e-6) for tag in ("loss/val", "loss/val_best")}


def test_every_run_of_a_sweep_is_a_row_with_its_shape_counts_and_losses(tmp_path):
    write_sweep(tmp_path)
    experiment, rows = hparams_tab(tmp_path)
    assert set(rows) == {f"demo/L2_d{d_model}_h2" for d_model in VAL_LOSSES}
    for d_model, val_losses in VAL_LOSSES.items():
        row = rows[f"demo/L2_d{d_model}_h2"]
        assert RUN_COLUMNS <= set(row.hparams) and row.hparams["d_model"].number_value == d_model
        assert losses(row) == {"loss/val": val_losses[20], "loss/val_best": min(val_losses.values())}
        assert [s.status for s in row.sessions] == [api_pb2.STATUS_SUCCESS]
    assert RUN_COLUMNS <= {h.name for h in experiment.hparam_infos}


def test_a_resumed_run_has_one_row_with_the_losses_it_ended_with(tmp_path):
    run_dir = tmp_path / "L2_d32_h2"
    write_run(run_dir, 32, {0: 5.0, 10: 2.5, 20: 3.0}, status="running")  # killed: no row yet
    write_run(run_dir, 32, {20: 2.9}, resume_step=10)
    (row,) = hparams_tab(tmp_path)[1].values()
    assert len(row.sessions) == 1 and row.sessions[0].status == api_pb2.STATUS_SUCCESS
    assert losses(row) == {"loss/val": 2.9, "loss/val_best": 2.5}


def test_the_analysis_adds_its_constants_as_a_row_and_names_the_columns_without_scalars(tmp_path):
    write_sweep(tmp_path)
    for alpha_N in (0.07, 0.08):  # analysed again: the later constants replace the earlier
        result = Analysis("demo", {"tokenizer": "byte", "n_ctx": 32},
                          fits={"L_N": Fit("L_N", {"N_c": 1e10, "alpha_N": alpha_N}, {}, 2)})
        report.to_tensorboard(result, tmp_path / "analysis" / "tb")

    experiment, rows = hparams_tab(tmp_path)
    assert {m.name.tag: m.display_name for m in experiment.metric_infos} == {
        "loss/val": "final val loss (nats/token)", "loss/val_best": "best val loss (nats/token)"}
    assert RUN_COLUMNS | {"fit/L_N/N_c", "fit/L_N/alpha_N"} <= {h.name for h in experiment.hparam_infos}
    assert len(rows) == 3 and {k: v.number_value for k, v in rows["demo/analysis"].hparams.items()} == {
        "fit/L_N/N_c": 1e10, "fit/L_N/alpha_N": 0.08}
    events = EventAccumulator(str(tmp_path / "analysis" / "tb"))
    events.Reload()
    assert events.Tags()["scalars"] == []
    assert {"fits/constants", "fits/held_out"} <= set(events.Tags()["tensors"])
