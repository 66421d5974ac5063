"""Train one GPT from a Hydra config: `python -m scaling_sweep.train [overrides]`.

The run folder is `runs/<sweep_name>/<run_name>/`. Running the same command again resumes
from its checkpoint, or does nothing when the run has already finished. A user error (a bad
value, a run folder another process trains, data out of reach) is one line and exit code 2; in a
sweep that run is skipped with its line, the others train, and the sweep exits 2 at the end.
"""

from __future__ import annotations

import os
import sys
from functools import partial
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from scaling_sweep.core.config import ConfigError, RunConfig, config_dir, register_configs, validate
from scaling_sweep.core.errors import USER_ERROR_EXIT, UserError, print_error
from scaling_sweep.core.runfiles import RunSummary
from scaling_sweep.data.tokenizer import check_tokenizer_name
from scaling_sweep.data.tokens import check_data_config
from scaling_sweep.training import distributed, fitted, hardware, launch
from scaling_sweep.training.launch import EXIT_CODES, LAUNCH_ENV, RESUME, Launch
from scaling_sweep.training.loop import train
from scaling_sweep.training.sweep import end_of_launch, note

PROG = "train"
HYDRA_RECORD = ".hydra"  # the run folder's record of its launch config (DESIGN.md, the per-run files)


def validate_run(cfg: RunConfig) -> None:
    """Every check that needs no data read: the config's own, then the data and tokenizer stage's."""
    validate(cfg)
    check_tokenizer_name(cfg.tokenizer.name)
    check_data_config(cfg.data)


def report(final: RunSummary) -> str:
    entropy = f" (unigram entropy {final.unigram_entropy:.4f})" if final.unigram_entropy else ""
    return (
        f"{final.run_name}: {final.status} ({final.stop_reason}) at step {final.step}, "
        f"val loss {final.final_val_loss:.4f} nats/token{entropy}, N={final.N:,} non-embedding params, "
        f"{final.tokens:,} tokens, C={final.flops:.3g} FLOPs (6N) / {final.flops_exact:.3g} (exact)"
    )


def run_config(cfg: DictConfig) -> RunConfig:
    try:
        return OmegaConf.to_object(cfg)
    except OmegaConfBaseException as err:  # e.g. a sweep's ${floordiv:...} over a value it cannot divide
        raise ConfigError(f"{getattr(err, 'full_key', None) or 'config'}: {str(err).splitlines()[0]}") from None


def register_resolvers() -> None:
    """The schema and core's resolvers, and the launcher presets' ${gpus_per_job:...}."""
    register_configs()
    OmegaConf.register_new_resolver("gpus_per_job", hardware.gpus_per_job, replace=True)


# Jobs of a launcher's workers get this function pickled by value (it is not importable under its name, which
# the decorator holds) with the globals it names: the module launch, not its STOP, which would be a copy.
@hydra.main(version_base=None, config_path=str(config_dir()), config_name="config")
def _hydra_main(cfg: DictConfig) -> float | None:
    register_resolvers()  # again in a launcher's job process, which resolves ${floordiv:...} itself
    hydra_cfg = HydraConfig.get()
    run_dir, in_sweep = Path(hydra_cfg.runtime.output_dir), hydra_cfg.mode == RunMode.MULTIRUN
    if in_sweep and (joined := Launch.joined()) is not None and not joined.is_launcher:
        launch.STOP.serve(joined)
    if in_sweep and launch.STOP.reason is not None:  # the sweep is stopping: jobs not begun are left for the relaunch
        note("unstarted", run_dir)
        return None
    try:
        run_cfg, fitted_from = fitted.resolve(run_config(cfg))
        validate_run(run_cfg)
        note("started", run_dir)
        final = train(run_cfg, run_dir, partial(write_hydra_record, cfg), fitted_from)
    except UserError as err:
        print_error(PROG, err)
        if in_sweep:  # sys.exit here would end the whole sweep
            note("skipped", run_dir)
            return None
        sys.exit(USER_ERROR_EXIT)
    if final.resumable:
        if in_sweep:
            note("stopped", run_dir, final.stop_reason, final.step)
            return None
        if distributed.is_main_process():
            print(f"{PROG}: {final.run_name} {final.stop_reason}: stopped at step {final.step}, saved at that step; "
                  f"{RESUME}", file=sys.stderr)
        sys.exit(EXIT_CODES[final.stop_reason])
    note("ended", run_dir, final.status)
    if distributed.is_main_process():
        print(report(final))
    return final.final_val_loss


def write_hydra_record(cfg: DictConfig) -> None:
    """What Hydra writes to a run's .hydra/ (the job's config, here resolved; Hydra's; the overrides), written
    once this launch holds the run: configs/config.yaml sets hydra.output_subdir to null, so that a second
    launch, which the run lock turns away, does not overwrite the running run's record with its own config."""
    hydra_cfg = HydraConfig.get()
    record = Path(hydra_cfg.runtime.output_dir) / HYDRA_RECORD
    record.mkdir(exist_ok=True)
    (record / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    (record / "hydra.yaml").write_text(OmegaConf.to_yaml(OmegaConf.create({"hydra": hydra_cfg})))
    (record / "overrides.yaml").write_text(OmegaConf.to_yaml(hydra_cfg.overrides.task))


def main() -> None:
    """The Hydra entry: the schema is registered before Hydra composes the config from sys.argv. SIGINT and
    SIGTERM request a stop of the runs training (training.launch); before any trains, they end it here."""
    register_resolvers()
    os.environ.pop(LAUNCH_ENV, None)  # a folder a parent sweep named is not this launch's
    with launch.STOP.handling(process_ends=True):
        try:
            try:
                _hydra_main()
            except KeyboardInterrupt:
                print(f"{PROG}: {launch.STOP.reason or 'interrupted'} before training began; nothing was trained",
                      file=sys.stderr)
                sys.exit(EXIT_CODES[launch.STOP.reason or "interrupted"])
        finally:
            code = end_of_launch(PROG)
    if code:
        sys.exit(code)
