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
from tqdm import tqdm

from scaling_sweep.core.config import ConfigError, DataConfig, TokenizerConfig
from scaling_sweep.core.errors import UserError
from scaling_sweep.core.files import atomic_path, file_lock
from scaling_sweep.data import corpus
from scaling_sweep.data.tokenizer import Tokenizer, build_tokenizer

SOURCES = ("embedded", "hub", "text", "json", "parquet")
FORMAT_VERSION = 1  # bump when the tokenization or split rule changes, so old caches are not reused
SHUFFLE_SEED = 0
BATCH_DOCS = 256


class DataError(UserError, ValueError):
    """Data that cannot be read or used as configured: a hub dataset out of reach, a missing column."""


@dataclass
class TokenSplits:
    train: np.memmap
    val: np.memmap
    vocab_size: int
    tokenizer_name: str
    meta: dict


def check_data_config(cfg: DataConfig) -> None:
    """Cheap validation before anything is read or tokenized; ConfigError naming the offending key."""
    if cfg.source not in SOURCES:
        raise ConfigError(f"data.source={cfg.source!r} is not one of {', '.join(SOURCES)}")
    if not 0 < cfg.val_fraction < 1:
        raise ConfigError(f"data.val_fraction={cfg.val_fraction} must be between 0 and 1 (exclusive)")
    if cfg.source == "hub" and not cfg.path:
        raise ConfigError("data.path must name a Hugging Face dataset when data.source=hub")
    if cfg.source in ("text", "json", "parquet"):
        _local_files(cfg)


def _local_files(cfg: DataConfig) -> list[Path]:
    if not cfg.path:
        raise ConfigError(f"data.path must name a file or glob when data.source={cfg.source}")
    files = sorted(
        Path(f).resolve()
        for f in glob.glob(os.path.expanduser(cfg.path), recursive=True)
        if os.path.isfile(f)
    )
    if not files:
        raise ConfigError(f"data.path={cfg.path!r} matches no files")
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
            raise DataError(
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
        raise DataError(
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
        raise DataError("the data holds fewer than 2 tokens; check data.path and data.text_field")
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
            raise ConfigError(
                f"train.max_unique_tokens={max_unique_tokens} must be between 1 and the "
                f"{len(train)} training tokens of this data"
            )
        train = train[:max_unique_tokens]
    meta.update(cache_path=str(path), n_unique_train_tokens=len(train))
    return TokenSplits(train, val, meta["vocab_size"], meta["tokenizer"], meta)
