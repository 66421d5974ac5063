"""Data: text (embedded corpus, Hugging Face hub, local text/json/parquet) -> cached token arrays -> batches.

Tokens are cached once per (source, tokenizer, split, val_fraction) as flat numpy files under
``<data.cache_dir>/tokens/<name>-<tokenizer>-<hash>/`` (train.bin, val.bin, meta.json), so every
run of a sweep memory-maps the same arrays. Documents are shuffled with a fixed seed before they
are concatenated (each followed by the tokenizer's end-of-text id); the validation split is the
trailing whole documents of that order. So no document is split between train and val, and any
prefix of train (``max_unique_tokens``) samples the whole corpus rather than its first source.
"""

from __future__ import annotations

import glob
import hashlib
import itertools
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from . import corpus
from .config import DataConfig, TokenizerConfig
from .fsutil import atomic_path, file_lock
from .tokenizer import Tokenizer, build_tokenizer

SOURCES = ("embedded", "hub", "text", "json", "parquet")
FORMAT_VERSION = 1  # bump when the tokenization or split rule changes, so old caches are not reused
SHUFFLE_SEED = 0
BATCH_DOCS = 256


@dataclass
class TokenSplits:
    train: np.memmap
    val: np.memmap
    vocab_size: int
    tokenizer_name: str
    meta: dict


def check_data_config(cfg: DataConfig) -> None:
    """Cheap validation before anything is read or tokenized; ValueError naming the offending key."""
    if cfg.source not in SOURCES:
        raise ValueError(f"data.source={cfg.source!r} is not one of {', '.join(SOURCES)}")
    if not 0 < cfg.val_fraction < 1:
        raise ValueError(f"data.val_fraction={cfg.val_fraction} must be between 0 and 1 (exclusive)")
    if cfg.source == "hub" and not cfg.path:
        raise ValueError("data.path must name a Hugging Face dataset when data.source=hub")
    if cfg.source in ("text", "json", "parquet"):
        _local_files(cfg)


def _local_files(cfg: DataConfig) -> list[Path]:
    if not cfg.path:
        raise ValueError(f"data.path must name a file or glob when data.source={cfg.source}")
    files = sorted(
        Path(f).resolve()
        for f in glob.glob(os.path.expanduser(cfg.path), recursive=True)
        if os.path.isfile(f)
    )
    if not files:
        raise ValueError(f"data.path={cfg.path!r} matches no files")
    return files


def prepare_tokens(
    data_cfg: DataConfig, tok_cfg: TokenizerConfig, max_unique_tokens: int | None = None
) -> TokenSplits:
    """Tokenize the configured source once (cached; concurrent callers wait for the first), map the splits."""
    check_data_config(data_cfg)
    tok = build_tokenizer(tok_cfg)
    root = Path(data_cfg.cache_dir).expanduser()
    key = {
        "format": FORMAT_VERSION,
        "source": _source_identity(data_cfg, root),
        "tokenizer": tok.name,
        "vocab_size": tok.vocab_size,
        "split": data_cfg.split,
        "val_fraction": data_cfg.val_fraction,
    }
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    out = root / "tokens" / re.sub(r"[^\w.-]", "_", f"{data_cfg.name}-{tok.name}-{digest}")
    with file_lock(out.with_name(out.name + ".lock")):
        if not (out / "meta.json").exists():
            with atomic_path(out) as tmp:
                tmp.mkdir(parents=True)
                meta = _tokenize(_load_texts(data_cfg, root), tok, tmp, data_cfg.val_fraction)
                (tmp / "meta.json").write_text(json.dumps({**key, **meta}, indent=2) + "\n")
    return _open_splits(out, max_unique_tokens)


def _source_identity(cfg: DataConfig, root: Path) -> dict:
    if cfg.source == "embedded":
        manifest = json.loads(
            (corpus.embedded_corpus_path(root / "corpus").parent / "manifest.json").read_text()
        )
        return {"embedded": manifest["files"][corpus.CORPUS_FILE]["sha256"]}
    if cfg.source == "hub":
        return {"hub": cfg.path, "config": cfg.hub_config, "text_field": cfg.text_field}
    files = [[str(f), f.stat().st_size, f.stat().st_mtime_ns] for f in _local_files(cfg)]
    return {cfg.source: files} if cfg.source == "text" else {cfg.source: files, "text_field": cfg.text_field}


def _load_texts(cfg: DataConfig, root: Path):
    """The documents: a ``datasets.Dataset`` with one string column (Arrow cache under our cache dir)."""
    import datasets

    hf_cache, field = str(root / "hf"), cfg.text_field
    if cfg.source == "hub":
        try:
            ds = datasets.load_dataset(cfg.path, cfg.hub_config, split=cfg.split, cache_dir=hf_cache)
        except Exception as e:
            reason = (str(e).splitlines() or [""])[0]
            raise RuntimeError(
                f"cannot load data.path={cfg.path!r} from the Hugging Face hub ({type(e).__name__}: {reason})"
            ) from None
    elif cfg.source in ("embedded", "text"):
        # Plain text: one document per blank-line-separated paragraph; line breaks inside are kept.
        files = (
            [corpus.embedded_corpus_path(root / "corpus")] if cfg.source == "embedded" else _local_files(cfg)
        )
        ds = datasets.load_dataset(
            "text",
            data_files={cfg.split: [str(f) for f in files]},
            split=cfg.split,
            sample_by="paragraph",
            cache_dir=hf_cache,
        )
        field = "text"
    else:
        files = [str(f) for f in _local_files(cfg)]
        ds = datasets.load_dataset(
            cfg.source, data_files={cfg.split: files}, split=cfg.split, cache_dir=hf_cache
        )
    if field not in ds.column_names:
        raise ValueError(
            f"data.text_field={field!r} is not a column of the data (columns: {', '.join(ds.column_names)})"
        )
    return ds.select_columns([field])


def _tokenize(ds, tok: Tokenizer, out: Path, val_fraction: float) -> dict:
    """Write the shuffled documents' tokens to out/train.bin, then move the trailing ones to out/val.bin."""
    dtype = np.dtype(np.uint16 if tok.vocab_size < 2**16 else np.uint32)
    order = np.random.default_rng(SHUFFLE_SEED).permutation(len(ds))
    lengths = []  # tokens per document, end-of-text included
    with open(out / "train.bin", "wb") as f:
        for start in tqdm(range(0, len(order), BATCH_DOCS), desc="tokenizing", unit="batch", disable=None):
            (texts,) = ds[order[start : start + BATCH_DOCS]].values()
            ids = tok.encode_batch([t.strip() for t in texts if t and t.strip()])
            n = [len(x) + 1 for x in ids]
            np.fromiter(itertools.chain.from_iterable(x + [tok.eot_id] for x in ids), dtype, sum(n)).tofile(f)
            lengths += n
    ends = np.cumsum(lengths)
    total = int(ends[-1]) if len(ends) else 0
    if total < 2:
        raise ValueError("the data holds fewer than 2 tokens; check data.path and data.text_field")
    target = total * (1 - val_fraction)
    cut = int(ends[np.abs(ends - target).argmin()])  # the nearest document boundary ...
    if cut >= total:  # ... unless that leaves no validation data (e.g. a single document)
        cut = min(max(round(target), 1), total - 1)
    tokens = np.memmap(out / "train.bin", dtype, "r")
    tokens[cut:].tofile(out / "val.bin")
    train_entropy = _unigram_entropy(tokens[:cut], tok.vocab_size)
    del tokens
    os.truncate(out / "train.bin", cut * dtype.itemsize)
    return {
        "dtype": dtype.name,
        "n_documents": len(ends),
        "n_train_tokens": cut,
        "n_val_tokens": total - cut,
        "train_unigram_entropy_nats": train_entropy,
    }


def _unigram_entropy(tokens: np.ndarray, vocab_size: int, chunk: int = 1 << 26) -> float:
    """Entropy (nats/token) of the token frequencies: the loss of the best model that ignores context."""
    counts = sum(
        np.bincount(tokens[i : i + chunk], minlength=vocab_size) for i in range(0, len(tokens), chunk)
    )
    p = counts[counts > 0] / len(tokens)
    return float(-(p * np.log(p)).sum())


def _open_splits(path: Path, max_unique_tokens: int | None) -> TokenSplits:
    meta = json.loads((path / "meta.json").read_text())
    train = np.memmap(path / "train.bin", np.dtype(meta["dtype"]), "r")
    val = np.memmap(path / "val.bin", np.dtype(meta["dtype"]), "r")
    if max_unique_tokens is not None:
        if not 0 < max_unique_tokens <= len(train):
            raise ValueError(
                f"train.max_unique_tokens={max_unique_tokens} must be between 1 and the "
                f"{len(train)} training tokens of this data"
            )
        train = train[:max_unique_tokens]
    meta.update(cache_path=str(path), n_unique_train_tokens=len(train))
    return TokenSplits(train, val, meta["vocab_size"], meta["tokenizer"], meta)


class BatchSampler:
    """Random training windows; batch ``step`` is a pure function of (seed, step), so resuming is exact.

    The global batch of ``batch_size`` windows is drawn identically on every rank and each rank
    keeps its contiguous slice, so the data seen does not depend on the number of processes.
    """

    def __init__(
        self,
        tokens: np.ndarray,
        batch_size: int,
        n_ctx: int,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
        pin_memory: bool = False,
    ):
        if len(tokens) < n_ctx + 1:
            raise ValueError(
                f"the training split has {len(tokens)} tokens, fewer than model.n_ctx+1={n_ctx + 1}; "
                "lower model.n_ctx, raise train.max_unique_tokens or use more data"
            )
        if batch_size % world_size:
            raise ValueError(f"train.batch_size={batch_size} is not divisible by the {world_size} processes")
        self.tokens, self.batch_size, self.n_ctx, self.seed = tokens, batch_size, n_ctx, seed
        self.rank, self.world_size, self.pin_memory = rank, world_size, pin_memory
        self.step = 0

    def __iter__(self):
        return self

    def __next__(self) -> tuple[torch.Tensor, torch.Tensor]:
        starts = np.random.default_rng([self.seed, self.step]).integers(
            0, len(self.tokens) - self.n_ctx, self.batch_size
        )
        per_rank = self.batch_size // self.world_size
        starts = starts[self.rank * per_rank : (self.rank + 1) * per_rank]
        self.step += 1
        return _windows(self.tokens, starts, self.n_ctx, self.pin_memory)

    def state_dict(self) -> dict:
        return {"seed": self.seed, "step": self.step}

    def load_state_dict(self, state: dict) -> None:
        self.seed, self.step = state["seed"], state["step"]


def _windows(
    tokens: np.ndarray, starts: np.ndarray, n_ctx: int, pin_memory: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    w = torch.from_numpy(tokens[starts[:, None] + np.arange(n_ctx + 1)].astype(np.int64))
    x, y = w[:, :-1].contiguous(), w[:, 1:].contiguous()
    return (x.pin_memory(), y.pin_memory()) if pin_memory else (x, y)


def validation_batches(
    val_tokens: np.ndarray, n_ctx: int, n_windows: int, batch_size: int
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """A fixed set of evenly spaced held-out windows (at most one per start position), in batches."""
    n_starts = len(val_tokens) - n_ctx
    if n_starts < 1:
        raise ValueError(
            f"the validation split has {len(val_tokens)} tokens, fewer than model.n_ctx+1={n_ctx + 1}; "
            "raise data.val_fraction or lower model.n_ctx"
        )
    starts = np.linspace(0, n_starts - 1, min(n_windows, n_starts)).round().astype(np.int64)
    return [
        _windows(val_tokens, starts[i : i + batch_size], n_ctx) for i in range(0, len(starts), batch_size)
    ]
