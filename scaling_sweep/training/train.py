"""Train one GPT from a Hydra config: `python -m scaling_sweep.train [overrides]`.

The run folder is `runs/<sweep_name>/<run_name>/`. Running the same command again resumes
from its checkpoint, or does nothing when the run has already finished.
"""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from scaling_sweep.core.config import ConfigError, RunConfig, config_dir, register_configs, validate
from scaling_sweep.core.runfiles import RunSummary
from scaling_sweep.data.corpus import CorpusDownloadError
from scaling_sweep.data.tokenizer import TokenizerUnavailableError, check_tokenizer_name
from scaling_sweep.data.tokens import check_data_config
from scaling_sweep.training import distributed
from scaling_sweep.training.loop import train


def validate_run(cfg: RunConfig) -> None:
    """Every check that needs no data read: the config's own, then the data and tokenizer stage's."""
    validate(cfg)
    try:
        check_tokenizer_name(cfg.tokenizer.name)
        check_data_config(cfg.data)
    except ValueError as err:
        raise ConfigError(str(err)) from None


def report(final: RunSummary) -> str:
    entropy = f" (unigram entropy {final.unigram_entropy:.4f})" if final.unigram_entropy else ""
    return (
        f"{final.run_name}: {final.status} ({final.stop_reason}) at step {final.step}, "
        f"val loss {final.final_val_loss:.4f} nats/token{entropy}, N={final.N:,} non-embedding params, "
        f"{final.tokens:,} tokens, C={final.flops:.3g} FLOPs (6N) / {final.flops_exact:.3g} (exact)"
    )


@hydra.main(version_base=None, config_path=str(config_dir()), config_name="config")
def _hydra_main(cfg: DictConfig) -> float | None:
    register_configs()  # again in a launcher's job process, which resolves ${floordiv:...} itself
    try:
        run_cfg: RunConfig = OmegaConf.to_object(cfg)
        validate_run(run_cfg)
        final = train(run_cfg, Path(HydraConfig.get().runtime.output_dir))
    except (ValueError, CorpusDownloadError, TokenizerUnavailableError) as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    if final.status == "running":
        sys.exit(130)
    if distributed.is_main_process():
        print(report(final))
    return final.final_val_loss


def main() -> None:
    """The Hydra entry: the schema is registered before Hydra composes the config from sys.argv."""
    register_configs()
    _hydra_main()
