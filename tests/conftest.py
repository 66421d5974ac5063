import os
import random
from pathlib import Path

import numpy as np
import pytest

from scaling_sweep.core.config import DataConfig, ModelConfig, OptimConfig, RunConfig, TokenizerConfig, TrainConfig

REPO = Path(__file__).resolve().parents[1]
# shared/ sits beside the repo root in CI; beside the worktrees' folder on a dev machine
REFERENCE = next((p for p in (REPO.parent / "shared" / "reference", REPO.parent.parent / "shared" / "reference")
                  if p.is_dir()), REPO.parent / "shared" / "reference")

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

# Besiroglu et al. 2024's 95% intervals on the same points (their 4000-resample bootstrap)
EPOCH_CI = {"E": (1.769, 1.871), "alpha": (0.317, 0.373), "beta": (0.331, 0.415), "A": (285.2, 743.6),
            "B": (1042, 5810)}


def width_against_epoch(name, ci):
    (lo, hi), (e_lo, e_hi) = ci, EPOCH_CI[name]
    if name in ("A", "B"):  # scale constants: compared on a log scale
        return np.log(hi / lo) / np.log(e_hi / e_lo)
    return (hi - lo) / (e_hi - e_lo)


SUBJECTS = ["the old farmer", "a young sailor", "my sister", "the quiet child", "our teacher", "the king"]
VERBS = ["walked to", "looked at", "wrote about", "dreamed of", "sang for", "spoke with"]
OBJECTS = ["the river", "a green field", "the tall tower", "an open door", "the morning sea", "a small bird"]
CODAS = ["before dawn.", "in the rain.", "with great care.", "and then went home.", "for many years."]


@pytest.fixture(scope="session")
def corpus_file(tmp_path_factory) -> Path:
    """About 200 kB of simple, learnable English sentences, one paragraph per line."""
    rng = random.Random(0)
    lines = []
    for _ in range(800):
        sentences = [
            f"{rng.choice(SUBJECTS).capitalize()} {rng.choice(VERBS)} {rng.choice(OBJECTS)} {rng.choice(CODAS)}"
            for _ in range(rng.randint(3, 6))
        ]
        lines.append(" ".join(sentences))
    path = tmp_path_factory.mktemp("corpus") / "corpus.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


def tiny_run_config(corpus_file: Path, root: Path, **sections) -> RunConfig:
    """A RunConfig for a seconds-long CPU run on the test corpus, caching and writing under root
    (no measured matmul peak: 6 s a run); keyword overrides per section."""
    cfg = RunConfig(
        model=ModelConfig(n_layer=2, d_model=32, n_head=2, n_ctx=32),
        tokenizer=TokenizerConfig(name="byte"),
        data=DataConfig(name="test", source="text", path=str(corpus_file), val_fraction=0.05,
                        cache_dir=str(root / "cache")),
        optim=OptimConfig(lr=1e-2, warmup_steps=5),
        train=TrainConfig(batch_size=16, max_steps=40, eval_every=20, eval_windows=16, log_every=5,
                          checkpoint_every=10, progress=False, dtype="fp32", peak_trial_s=0),
        device="cpu",
        sweep_name="test",
        run_name="tiny",
        runs_root=str(root / "runs"),
    )
    for section, overrides in sections.items():
        for key, value in overrides.items():
            setattr(getattr(cfg, section), key, value)
    return cfg


@pytest.fixture
def tiny_config(corpus_file, tmp_path):
    """tiny_run_config under this test's tmp_path."""
    return lambda **sections: tiny_run_config(corpus_file, tmp_path, **sections)


def cli_overrides(cfg: RunConfig, run_dir: Path) -> list[str]:
    """The same run as Hydra command-line overrides."""
    m, t, o, d = cfg.model, cfg.train, cfg.optim, cfg.data
    return [
        f"model.n_layer={m.n_layer}", f"model.d_model={m.d_model}", f"model.n_head={m.n_head}",
        f"model.n_ctx={m.n_ctx}",
        "data=text_files", f"data.name={d.name}", f"data.path={d.path}", f"data.val_fraction={d.val_fraction}",
        f"data.cache_dir={d.cache_dir}", f"optim.lr={o.lr}", f"optim.warmup_steps={o.warmup_steps}",
        f"train.batch_size={t.batch_size}", f"train.max_steps={t.max_steps}", f"train.eval_every={t.eval_every}",
        f"train.eval_windows={t.eval_windows}", f"train.log_every={t.log_every}",
        f"train.checkpoint_every={t.checkpoint_every}", f"train.dtype={t.dtype}", "train.progress=false",
        f"train.peak_trial_s={t.peak_trial_s}",
        "device=cpu", f"hydra.run.dir={run_dir}",
    ]


class RunsCode:
    """Unpickling this calls os.system: what a checkpoint from an untrusted copy could hold."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)
