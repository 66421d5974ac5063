#!/usr/bin/env python
"""The data stage against raw tiktoken on this box: gpt2 tokenization rate and peak memory.

Corpora: the embedded corpus (``python -m scaling_sweep.data.corpus`` fetches it) repeated --repeat
times (1x) and twice as many times (2x), written once under --work as plain text. Each round, for
each scale in turn, each in a fresh subprocess:

  raw    tiktoken gpt2 ``encode_ordinary_batch`` with one thread per core over the same documents,
         already in memory (batches of RAW_BATCH documents, results dropped): tokenization alone
  ours   prepare_tokens(data.source=text, tokenizer gpt2) into a fresh cache: its wall time and the
         process's peak RSS (getrusage RUSAGE_SELF ru_maxrss), before the call and after

Rates are MB (1e6 bytes) of corpus file per second; each scale's summary takes the best round.

    python scripts/bench_data.py --prepare          # writes the corpora (not timed)
    python scripts/bench_data.py --rounds 2 --json docs/bench/cpu-<date>-data.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
RAW_BATCH = 1024


def corpus_files(work: Path, repeat: int) -> dict[str, Path]:
    return {"1x": work / f"corpus_x{repeat}.txt", "2x": work / f"corpus_x{2 * repeat}.txt"}


def prepare(work: Path, repeat: int) -> None:
    """Write the 1x and 2x corpora: the embedded corpus repeated, its copies separated by a blank line."""
    from scaling_sweep.data import corpus

    text = corpus.embedded_corpus_path().read_bytes().rstrip(b"\n")
    work.mkdir(parents=True, exist_ok=True)
    for scale, path in corpus_files(work, repeat).items():
        copies = repeat * (2 if scale == "2x" else 1)
        path.write_bytes(b"\n\n".join([text] * copies) + b"\n")
        print(f"{path}: {path.stat().st_size / 1e6:.0f} MB")


def raw_tiktoken(path: Path) -> dict:
    """tiktoken alone over the documents of ``path``, read the way prepare_tokens reads them (not timed)."""
    from tqdm import tqdm

    from scaling_sweep.core.config import TokenizerConfig
    from scaling_sweep.data import tokens
    from scaling_sweep.data.tokenizer import build_tokenizer

    docs = list(tokens._documents(tokens._text_batches([path]), tqdm(disable=True)))
    encoding = build_tokenizer(TokenizerConfig(name="gpt2")).encoding
    threads = os.cpu_count()
    start = time.perf_counter()
    n_tokens = sum(
        sum(map(len, encoding.encode_ordinary_batch(docs[i : i + RAW_BATCH], num_threads=threads)))
        for i in range(0, len(docs), RAW_BATCH)
    )
    return {"wall_s": time.perf_counter() - start, "n_tokens": n_tokens, "threads": threads}


def ours(path: Path, cache: Path) -> dict:
    """prepare_tokens on ``path`` into ``cache``: wall time, peak RSS before and after."""
    from scaling_sweep.core.config import DataConfig, TokenizerConfig
    from scaling_sweep.data.tokens import prepare_tokens

    before = peak_rss_mb()
    start = time.perf_counter()
    splits = prepare_tokens(DataConfig(name="bench", source="text", path=str(path), cache_dir=str(cache)),
                            TokenizerConfig(name="gpt2"))
    wall = time.perf_counter() - start
    return {"wall_s": wall, "peak_rss_mb": peak_rss_mb(), "peak_rss_before_mb": before,
            "n_tokens": splits.meta["n_train_tokens"] + splits.meta["n_val_tokens"],
            "n_documents": splits.meta["n_documents"]}


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def in_child(kind: str, path: Path, work: Path) -> dict:
    """Run one measurement in a fresh process. This one stays small: a child's ru_maxrss starts from
    its parent's peak RSS, which Linux carries across the fork and exec."""
    cache = Path(tempfile.mkdtemp(prefix="cache-", dir=work))
    try:
        proc = subprocess.run([sys.executable, __file__, "--child", kind, str(path), str(cache)], cwd=REPO,
                              check=True, capture_output=True, text=True)
    finally:
        shutil.rmtree(cache)
    result = json.loads(proc.stdout.splitlines()[-1])
    return result | {"mb_per_s": path.stat().st_size / 1e6 / result["wall_s"]}


def measure(work: Path, repeat: int, rounds: int) -> dict:
    files = corpus_files(work, repeat)
    runs = {scale: {"raw": [], "ours": []} for scale in files}
    for _ in range(rounds):
        for scale, path in files.items():
            n_bytes = path.stat().st_size
            runs[scale]["raw"].append(in_child("raw", path, work))
            runs[scale]["ours"].append(in_child("ours", path, work))
            raw, mine = runs[scale]["raw"][-1], runs[scale]["ours"][-1]
            if mine["n_tokens"] != raw["n_tokens"] + mine["n_documents"]:
                raise SystemExit(f"{scale}: token counts differ (ours {mine['n_tokens']}, raw {raw['n_tokens']} "
                                 f"+ {mine['n_documents']} end-of-text)")
            print(f"{scale} ({n_bytes / 1e6:.0f} MB): raw {raw['mb_per_s']:.2f} MB/s, ours {mine['mb_per_s']:.2f} "
                  f"MB/s ({mine['mb_per_s'] / raw['mb_per_s']:.1%}), ours peak RSS {mine['peak_rss_mb']:.0f} MB",
                  flush=True)
    return {scale: summarize(r, files[scale]) for scale, r in runs.items()} | {"runs": runs}


def summarize(runs: dict, path: Path) -> dict:
    raw = max(r["mb_per_s"] for r in runs["raw"])
    mine = max(r["mb_per_s"] for r in runs["ours"])
    return {"corpus_mb": path.stat().st_size / 1e6, "raw_mb_per_s": raw, "ours_mb_per_s": mine,
            "ours_over_raw": mine / raw, "ours_peak_rss_mb": max(r["peak_rss_mb"] for r in runs["ours"])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "bench_data")
    parser.add_argument("--repeat", type=int, default=10, help="copies of the embedded corpus in the 1x corpus")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--prepare", action="store_true", help="only write the corpora")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--child", nargs=3, metavar=("KIND", "CORPUS", "CACHE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, path, cache = args.child
        measured = raw_tiktoken(Path(path)) if kind == "raw" else ours(Path(path), Path(cache))
        return print(json.dumps(measured))
    if args.prepare:
        return prepare(args.work, args.repeat)
    result = measure(args.work, args.repeat, args.rounds)
    result.update(
        rss_growth_2x=result["2x"]["ours_peak_rss_mb"] / result["1x"]["ours_peak_rss_mb"] - 1,
        machine=f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        date=time.strftime("%Y-%m-%d"),
    )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "runs"}, indent=2))


if __name__ == "__main__":
    main()
