"""TensorBoard's HParams tab: a session per run (its shape, N, tokens and FLOPs as columns; its final and
best validation loss as metrics), and the analysis's fitted constants, written without torch or TensorFlow.

The tab takes its columns from the one experiment record it finds in a log folder (any one, when there
are several). A run writes only its session; the analysis writes the sweep's experiment record, which
lists the runs' columns and its own. Before an analysis, TensorBoard infers the columns from the sessions,
and every scalar of the runs then shows as a metric too.
"""

from __future__ import annotations

import time
from pathlib import Path

from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2
from tensorboard.summary.writer.event_file_writer import EventFileWriter

from scaling_sweep.core.runfiles import RunSummary

# column -> the RunSummary field it shows
RUN_COLUMNS = {
    "N": "N", "N_total": "N_total", "n_layer": "n_layer", "d_model": "d_model", "n_head": "n_head",
    "n_ctx": "n_ctx", "d_ff": "d_ff", "batch_tokens": "batch_tokens", "tokens": "tokens",
    "flops_6N": "flops", "flops_exact": "flops_exact",
}
RUN_COLUMN_TITLES = {"N": "N (non-embedding)", "N_total": "N (total)", "flops_6N": "FLOPs (6N)",
                     "flops_exact": "FLOPs (exact)"}
FINAL_VAL_TAG, BEST_VAL_TAG = "loss/val", "loss/val_best"
# scalar tags of a run whose last value the tab shows, and their titles
RUN_METRICS = {FINAL_VAL_TAG: "final val loss (nats/token)", BEST_VAL_TAG: "best val loss (nats/token)"}
SESSION_STATUS = {"completed": api_pb2.STATUS_SUCCESS, "stopped": api_pb2.STATUS_SUCCESS,
                  "diverged": api_pb2.STATUS_FAILURE}


def run_hparams(summary: RunSummary) -> dict[str, float]:
    """A run's values of RUN_COLUMNS (those its summary has)."""
    values = {column: getattr(summary, field) for column, field in RUN_COLUMNS.items()}
    return {column: value for column, value in values.items() if value is not None}


def _summary(tag: str, data: plugin_data_pb2.HParamsPluginData) -> summary_pb2.Summary:
    summary = summary_pb2.Summary()
    summary.value.add(tag=tag, metadata=metadata.create_summary_metadata(data), tensor=metadata.NULL_TENSOR)
    return summary


def session(name: str, hparams: dict[str, float | str], status: str) -> list[summary_pb2.Summary]:
    """A session's start (its hparams, one group of its own) and end records. TensorBoard keeps the first
    start record of a log folder, so a folder gets one session."""
    now = time.time()
    start = plugin_data_pb2.SessionStartInfo(group_name=name, start_time_secs=now)
    for key, value in hparams.items():
        if isinstance(value, str):
            start.hparams[key].string_value = value
        else:
            start.hparams[key].number_value = float(value)
    end = plugin_data_pb2.SessionEndInfo(status=SESSION_STATUS.get(status, api_pb2.STATUS_UNKNOWN),
                                         end_time_secs=now)
    return [_summary(metadata.SESSION_START_INFO_TAG, plugin_data_pb2.HParamsPluginData(session_start_info=start)),
            _summary(metadata.SESSION_END_INFO_TAG, plugin_data_pb2.HParamsPluginData(session_end_info=end))]


def run_session(summary: RunSummary) -> list[summary_pb2.Summary]:
    """The run's session, named sweep/run so that runs of two sweeps in one view stay apart."""
    return session(f"{summary.sweep}/{summary.run_name}", run_hparams(summary), summary.status)


def experiment(columns: dict[str, str]) -> summary_pb2.Summary:
    """The experiment record: the runs' columns and metrics, then `columns` (name -> title, numeric)."""
    titles = {column: RUN_COLUMN_TITLES.get(column, column) for column in RUN_COLUMNS} | columns
    record = api_pb2.Experiment(
        hparam_infos=[api_pb2.HParamInfo(name=name, display_name=title, type=api_pb2.DATA_TYPE_FLOAT64)
                      for name, title in titles.items()],
        metric_infos=[api_pb2.MetricInfo(name=api_pb2.MetricName(tag=tag), display_name=title)
                      for tag, title in RUN_METRICS.items()],
        time_created_secs=time.time(),
    )
    return _summary(metadata.EXPERIMENT_TAG, plugin_data_pb2.HParamsPluginData(experiment=record))


def write(log_dir: Path, summaries: list[summary_pb2.Summary]) -> None:
    """Append summaries (at step 0) to a new event file in log_dir."""
    writer = EventFileWriter(str(log_dir))
    for summary in summaries:
        writer.add_event(event_pb2.Event(wall_time=time.time(), step=0, summary=summary))
    writer.close()
