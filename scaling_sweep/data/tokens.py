"""Data: text (embedded corpus, Hugging Face hub, local text/json/parquet) -> cached token arrays -> batches.

Tokens are cached once per (source, tokenizer, split, val_fraction) as flat numpy files under
``<data.cache_dir>/tokens/<name>-<tokenizer>-<hash>/`` (train.bin, val.bin, meta.json), so every
run of a sweep memory-maps the same arrays.

Building the cache streams the documents, so its memory does not grow with the corpus: plain text
is read block by block (one document per blank-line-separated paragraph, as the ``datasets`` text
builder cuts them); hub datasets and local json/parquet are streamed by ``datasets``. The stream is
cut into chunks of whole documents, about CHUNK_CHARS characters each, which worker processes
tokenize in parallel; each chunk is written in order as a shard (its tokens, every
document followed by the end-of-text id, and its documents' lengths) under ``.<entry>.partial/``.
A killed build resumes after its last complete shard, and gives the same bytes as an unbroken one.

Split rule (format 3): each shard is cut into pieces of consecutive whole documents, about
PIECE_TOKENS tokens each (a longer document is a piece of its own); the pieces are put in a seeded
random order, and the validation split is the trailing whole documents of that order, cut at the
document boundary nearest ``1 - val_fraction`` of the tokens (inside a document only when that would
leave no validation data, e.g. a single document). The training documents are then cut into parts of
at most PIECE_TOKENS tokens, which train.bin holds in a second seeded order. So no document is split
between train and val, val is documents drawn from all over the corpus, and any prefix of train
(``max_unique_tokens``) is a random sample of the corpus in parts of PIECE_TOKENS, however long its
documents (format 2 ordered whole shards of about 1 MiB: the embedded corpus' validation split was
then all one of its three texts, and a 4M-token prefix held a fifth of that text; see
docs/kaplan_cpu.md).
"""

from __future__ import annotations

import collections
import glob
import hashlib
import itertools
import json
import multiprocessing
import os
import re
import shutil
import signal
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from scaling_sweep.core.config import ConfigError, DataConfig, TokenizerConfig
from scaling_sweep.core.errors import UserError
from scaling_sweep.core.files import atomic_path, file_lock, remove_stale_temps
from scaling_sweep.core.system import cores_given
from scaling_sweep.data import corpus
from scaling_sweep.data.tokenizer import Tokenizer, build_tokenizer

SOURCES = ("embedded", "hub", "text", "json", "parquet")
FORMAT_VERSION = 3  # bump when the tokenization or split rule changes, so old caches are not reused
SHUFFLE_SEED = 0
CHUNK_CHARS = 1 << 20  # per shard: the unit of parallel work and of resuming
PIECE_TOKENS = 1 << 12  # whole-document pieces of about this size are split train/val; train's parts at most this
ENTROPY_BLOCK = 1 << 24  # tokens counted at a time
READ_BYTES = 1 << 22  # plain text is read in blocks of this size
STREAM_BATCH = 1000  # documents per batch of a `datasets` stream


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
            _build_cache(data_cfg, root, tok, key, out)
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


def _build_cache(cfg: DataConfig, root: Path, tok: Tokenizer, key: dict, out: Path) -> None:
    """Tokenize the documents into shards (after those a killed build completed), then write the
    splits and meta.json into ``out`` atomically."""
    dtype = np.dtype(np.uint16 if tok.vocab_size < 2**16 else np.uint32)
    batches, total_bytes = _source_batches(cfg, root)
    shards = out.with_name(f".{out.name}.partial")
    shards.mkdir(parents=True, exist_ok=True)
    n_done, n_docs_done = _complete_shards(shards, dtype)
    with tqdm(total=total_bytes, desc="tokenizing", unit="B", unit_scale=True, disable=None) as bar:
        docs = itertools.islice(_documents(batches, bar), n_docs_done, None)
        n_shards = _write_shards(docs, tok, dtype, shards, n_done)
    remove_stale_temps(out)
    with atomic_path(out) as tmp:
        tmp.mkdir()
        meta = _assemble(shards, n_shards, dtype, tok.vocab_size, cfg.val_fraction, tmp)
        (tmp / "meta.json").write_text(json.dumps({**key, **meta}, indent=2) + "\n")
        shutil.rmtree(shards)


# ---- sources: batches of raw documents, each with the bytes it read (for the progress bar)


def _source_batches(cfg: DataConfig, root: Path) -> tuple[Iterator[tuple[list, int]], int | None]:
    """The configured documents as batches, and the bytes they will read in all when that is known."""
    if cfg.source in ("embedded", "text"):
        files = (
            [corpus.embedded_corpus_path(root / "corpus")] if cfg.source == "embedded" else _local_files(cfg)
        )
        return _text_batches(files), sum(f.stat().st_size for f in files)
    return _dataset_batches(cfg, root)


def _text_batches(files: list[Path]) -> Iterator[tuple[list[str], int]]:
    """Blank-line-separated paragraphs of UTF-8 files, with universal newlines (as ``datasets``' text
    builder with sample_by="paragraph" reads them)."""
    for path in files:
        with open(path, "rb") as f:
            rest = ""
            while block := f.read(READ_BYTES):
                block += f.readline()  # end on a line break, so neither a character nor a \r\n is cut
                *docs, rest = (rest + _decode(block, path)).split("\n\n")
                yield docs, len(block)
            yield [rest], 0


def _decode(block: bytes, path: Path) -> str:
    try:
        text = block.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DataError(f"{path} (data.path) is not UTF-8 text: {e.reason} in a block") from None
    return text.replace("\r\n", "\n").replace("\r", "\n") if "\r" in text else text


def _dataset_batches(cfg: DataConfig, root: Path) -> tuple[Iterator[tuple[list, int]], int | None]:
    """A hub dataset or local json/parquet files, streamed by ``datasets`` (nothing materialised)."""
    import datasets

    hf_cache = str(root / "hf")
    if cfg.source == "hub":
        try:
            ds = datasets.load_dataset(
                cfg.path, cfg.hub_config, split=cfg.split, streaming=True, cache_dir=hf_cache
            )
        except Exception as e:
            reason = (str(e).splitlines() or [""])[0]
            raise DataError(
                f"cannot load data.path={cfg.path!r} from the Hugging Face hub ({type(e).__name__}: {reason})"
            ) from None
    else:
        files = [str(f) for f in _local_files(cfg)]
        ds = datasets.load_dataset(
            cfg.source, data_files={cfg.split: files}, split=cfg.split, streaming=True, cache_dir=hf_cache
        )
    batches = ds.iter(batch_size=STREAM_BATCH)
    first = next(batches, {cfg.text_field: []})
    if cfg.text_field not in first:
        raise DataError(
            f"data.text_field={cfg.text_field!r} is not a column of the data (columns: {', '.join(first)})"
        )
    texts = (batch[cfg.text_field] for batch in itertools.chain([first], batches))
    return ((t, sum(len(x.encode()) for x in t if x)) for t in texts), _dataset_bytes(ds, cfg.split)


def _dataset_bytes(ds, split: str) -> int | None:
    """The split's size as the dataset's info gives it (hub datasets that publish it), else None."""
    splits = ds.info.splits
    return (splits[split].num_bytes or None) if splits and split in splits else None


def _documents(batches: Iterable[tuple[list, int]], bar: tqdm) -> Iterator[str]:
    """The documents, stripped, empty ones skipped; the bar advances by the bytes each batch read."""
    for texts, n_bytes in batches:
        bar.update(n_bytes)
        yield from filter(None, (t.strip() for t in texts if t))


# ---- shards: chunks of documents tokenized in parallel, written in order


def _write_shards(docs: Iterator[str], tok: Tokenizer, dtype: np.dtype, shards: Path, first: int) -> int:
    """Tokenize the documents chunk by chunk into shards ``first``, ``first + 1``, ...; the shard count."""
    workers = cores_given()
    pending = collections.deque()  # (shard index, future), at most one chunk per worker waiting
    n_shards = first
    with _encoder_pool(workers, tok) as pool:
        for chunk in _chunks(docs):
            pending.append((n_shards, pool.submit(_encode_in_worker, chunk, dtype)))
            n_shards += 1
            if len(pending) > workers:
                _save_shard(shards, *_oldest_result(pending))
        while pending:
            _save_shard(shards, *_oldest_result(pending))
    return n_shards


def _encoder_pool(workers: int, tok: Tokenizer) -> ProcessPoolExecutor:
    """Worker processes, forked so each inherits the built tokenizer. Processes rather than threads:
    threads share the GIL with the main thread's reading and splitting, which stalled them (measured
    ~30% slower than on documents already in memory; see docs/performance.md)."""
    return ProcessPoolExecutor(workers, multiprocessing.get_context("fork"), _set_worker_tokenizer, (tok,))


_worker_tokenizer: Tokenizer | None = None


def _set_worker_tokenizer(tok: Tokenizer) -> None:
    global _worker_tokenizer
    _worker_tokenizer = tok
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the main process, which shuts the pool down


def _encode_in_worker(docs: list[str], dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    return _encode_chunk(_worker_tokenizer, docs, dtype)


def _chunks(docs: Iterable[str]) -> Iterator[list[str]]:
    """Consecutive documents, cut as soon as a chunk holds CHUNK_CHARS characters (so the same
    documents always give the same chunks, resumed or not)."""
    chunk, n_chars = [], 0
    for doc in docs:
        chunk.append(doc)
        n_chars += len(doc)
        if n_chars >= CHUNK_CHARS:
            yield chunk
            chunk, n_chars = [], 0
    if chunk:
        yield chunk


def _encode_chunk(tok: Tokenizer, docs: list[str], dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    """The chunk's tokens (each document followed by end-of-text) and each document's token count."""
    ids = [tok.encode_array(doc) for doc in docs]
    eot = np.array([tok.eot_id], dtype)
    tokens = np.concatenate([a for x in ids for a in (x, eot)], dtype=dtype)
    return tokens, np.array([len(x) + 1 for x in ids], np.uint32)


def _oldest_result(pending: collections.deque) -> tuple:
    index, future = pending.popleft()
    return index, *future.result()


def _shard(shards: Path, index: int, suffix: str) -> Path:
    return shards / f"{index:06d}.{suffix}"


def _save_shard(shards: Path, index: int, tokens: np.ndarray, lengths: np.ndarray) -> None:
    """Write the tokens, then the lengths, whose presence marks the shard complete. Renamed into place
    without atomic_path's fsync: a shard need only survive a killed process (see _complete_shards)."""
    for suffix, array in (("bin", tokens), ("len", lengths)):
        path = _shard(shards, index, suffix)
        tmp = path.with_name(path.name + ".tmp")
        array.tofile(tmp)
        os.replace(tmp, path)


def _complete_shards(shards: Path, dtype: np.dtype) -> tuple[int, int]:
    """How many leading shards a previous build completed, and how many documents they hold; a shard
    whose tokens do not match its lengths (lost in a crash) and all after it are written again."""
    n_shards = n_docs = 0
    while _shard(shards, n_shards, "len").exists():
        lengths = np.fromfile(_shard(shards, n_shards, "len"), np.uint32)
        tokens = _shard(shards, n_shards, "bin")
        if not tokens.exists() or tokens.stat().st_size != int(lengths.sum(dtype=np.int64)) * dtype.itemsize:
            break
        n_shards, n_docs = n_shards + 1, n_docs + len(lengths)
    return n_shards, n_docs


# ---- splits: pieces of whole documents in a seeded order, the trailing documents held out


def _assemble(shards: Path, n_shards: int, dtype: np.dtype, vocab_size: int, val_fraction: float,
              out: Path) -> dict:
    """Write out/val.bin (the trailing documents of the pieces' seeded order) and out/train.bin (the
    rest, re-cut into parts of at most PIECE_TOKENS tokens in a second seeded order); the split's meta."""
    rng = np.random.default_rng(SHUFFLE_SEED)
    pieces = _pieces(shards, n_shards)
    pieces = pieces[rng.permutation(len(pieces))]
    total = int((pieces[:, 2] - pieces[:, 1]).sum())
    if total < 2:
        raise DataError("the data holds fewer than 2 tokens; check data.path and data.text_field")
    cut = _val_cut(shards, pieces, total * (1 - val_fraction))
    train, val = _split_spans(pieces, cut)
    train = _subdivide(train, PIECE_TOKENS)
    _write_spans(shards, train[rng.permutation(len(train))], dtype, out / "train.bin")
    _write_spans(shards, val, dtype, out / "val.bin")
    return {
        "dtype": dtype.name,
        "n_documents": sum(_shard(shards, k, "len").stat().st_size // 4 for k in range(n_shards)),
        "n_pieces": len(pieces),
        "n_train_parts": len(train),
        "n_train_tokens": cut,
        "n_val_tokens": total - cut,
        "train_unigram_entropy_nats": _entropy(np.memmap(out / "train.bin", dtype, "r"), vocab_size),
    }


def _split_spans(spans: np.ndarray, cut: int) -> tuple[np.ndarray, np.ndarray]:
    """The (shard, start, end) spans of the first ``cut`` tokens of the spans' order, and of the rest."""
    ends = np.cumsum(spans[:, 2] - spans[:, 1])
    i = int(np.searchsorted(ends, cut, side="right"))  # the span holding token ``cut``
    head, tail = spans[:i], spans[i:].copy()
    if i < len(spans) and cut > (before := int(ends[i] - (spans[i, 2] - spans[i, 1]))):
        k, start, _ = spans[i]
        head = np.concatenate([head, [[k, start, start + cut - before]]])
        tail[0, 1] = start + cut - before
    return head, tail


def _subdivide(spans: np.ndarray, size: int) -> np.ndarray:
    """Each span cut into the fewest parts of at most ``size`` tokens, of near-equal lengths."""
    parts = []
    for k, start, end in spans:
        bounds = np.linspace(start, end, -(-(end - start) // size) + 1).round().astype(np.int64)
        parts += [(k, a, b) for a, b in zip(bounds[:-1], bounds[1:])]
    return np.array(parts, np.int64).reshape(-1, 3)


def _write_spans(shards: Path, spans: np.ndarray, dtype: np.dtype, path: Path) -> None:
    with open(path, "wb") as f:
        for k, start, end in spans:
            np.fromfile(_shard(shards, k, "bin"), dtype, end - start, offset=start * dtype.itemsize).tofile(f)


def _pieces(shards: Path, n_shards: int) -> np.ndarray:
    """(shard, first token, end token) of each piece: consecutive whole documents of a shard, cut at the
    first document end at or after PIECE_TOKENS tokens (a shard's last piece may be shorter)."""
    rows = []
    for k in range(n_shards):
        ends = _document_ends(shards, k)
        start = 0
        while start < ends[-1]:
            end = int(ends[min(np.searchsorted(ends, start + PIECE_TOKENS), len(ends) - 1)])
            rows.append((k, start, end))
            start = end
    return np.array(rows, np.int64).reshape(-1, 3)


def _document_ends(shards: Path, k: int) -> np.ndarray:
    return np.cumsum(np.fromfile(_shard(shards, k, "len"), np.uint32), dtype=np.int64)


def _val_cut(shards: Path, pieces: np.ndarray, target: float) -> int:
    """The document end nearest ``target`` tokens into the pieces' order; inside a document only if that
    end is the very last one (no validation data left)."""
    ends = np.cumsum(pieces[:, 2] - pieces[:, 1])
    i = min(int(np.searchsorted(ends, target)), len(pieces) - 1)
    k, first, last = pieces[i]
    start = int(ends[i]) - (last - first)
    doc_ends = _document_ends(shards, k)
    inside = start + doc_ends[(doc_ends > first) & (doc_ends <= last)] - first
    candidates = np.concatenate([[start], inside]) if start else inside
    cut = int(candidates[np.abs(candidates - target).argmin()])
    total = int(ends[-1])
    return min(max(round(target), 1), total - 1) if cut >= total else cut


def _entropy(tokens: np.ndarray, vocab_size: int) -> float:
    """Entropy (nats/token) of the token frequencies: the loss of the best model that ignores context."""
    counts = np.zeros(vocab_size, np.int64)
    for i in range(0, len(tokens), ENTROPY_BLOCK):
        counts += np.bincount(tokens[i : i + ENTROPY_BLOCK], minlength=vocab_size)
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
