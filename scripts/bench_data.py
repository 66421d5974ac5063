#!/usr/bin/env python
"""The data stage against raw tiktoken on this box: gpt2 tokenization rate and peak memory.

Corpora: the embedded corpus (``python -m scaling_sweep.data.corpus`` fetches it) repeated --repeat
times (1x) and twice as many times (2x), written once under --work as plain text. Each round, for
each scale in turn, each in a fresh subprocess:

  raw    tiktoken gpt2 ``encode_ordinary_batch`` with one thread per core over the same documents,
         already in memory (batches of RAW_BATCH documents, results dropped): the encoding's build
         and tokenization alone (prepare_tokens's time includes the same build)
  ours   prepare_tokens(data.source=text, tokenizer gpt2) into a fresh cache: its wall time and the
         process's peak RSS (getrusage RUSAGE_SELF ru_maxrss), before the call and after

Rates are MB (1e6 bytes) of corpus file per second. Each round runs the pair back to back, raw first
in even rounds and ours first in odd ones; a scale's summary takes medians over the rounds, the ratio
per round. Each measurement records the share of the CPU that other processes took meanwhile.

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
import statistics
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
    """tiktoken alone over the documents of ``path``, read the way prepare_tokens reads them (not timed);
    the gpt2 encoding built (timed)."""
    from tqdm import tqdm

    from scaling_sweep.core.config import TokenizerConfig
    from scaling_sweep.data import tokens
    from scaling_sweep.data.tokenizer import build_tokenizer

    docs = list(tokens._documents(tokens._text_batches([path]), tqdm(disable=True)))
    threads = os.cpu_count()
    start = time.perf_counter()  # the encoding's build timed, as prepare_tokens's is
    encoding = build_tokenizer(TokenizerConfig(name="gpt2")).encoding
    n_tokens = sum(
        sum(map(len, encoding.encode_ordinary_batch(docs[i : i + RAW_BATCH], num_threads=threads)))
        for i in range(0, len(docs), RAW_BATCH)
    )
    return {"wall_s": time.perf_counter() - start, "n_tokens": n_tokens, "threads": threads}


def ours(path: Path, cache: Path) -> dict:
    """prepare_tokens on ``path`` into ``cache``: wall time, peak RSS before and after, and the largest
    peak RSS of its worker processes (each forked from this one, so their shared pages count in both)."""
    from scaling_sweep.core.config import DataConfig, TokenizerConfig
    from scaling_sweep.data.tokens import prepare_tokens

    before = peak_rss_mb()
    start = time.perf_counter()
    splits = prepare_tokens(DataConfig(name="bench", source="text", path=str(path), cache_dir=str(cache)),
                            TokenizerConfig(name="gpt2"))
    wall = time.perf_counter() - start
    return {"wall_s": wall, "peak_rss_mb": peak_rss_mb(), "peak_rss_before_mb": before,
            "worker_peak_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
            "n_tokens": splits.meta["n_train_tokens"] + splits.meta["n_val_tokens"],
            "n_documents": splits.meta["n_documents"]}


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def in_child(kind: str, path: Path, work: Path) -> dict:
    """Run one measurement in a fresh process. This one stays small: a child's ru_maxrss starts from
    its parent's peak RSS, which Linux carries across the fork and exec."""
    cache = Path(tempfile.mkdtemp(prefix="cache-", dir=work))
    busy, own, start = busy_cpu_s(), children_cpu_s(), time.perf_counter()
    try:
        proc = subprocess.run([sys.executable, __file__, "--child", kind, str(path), str(cache)], cwd=REPO,
                              check=True, capture_output=True, text=True)
    finally:
        shutil.rmtree(cache)
    others = busy_cpu_s() - busy - (children_cpu_s() - own)
    result = json.loads(proc.stdout.splitlines()[-1])
    return result | {"mb_per_s": path.stat().st_size / 1e6 / result["wall_s"],
                     "others_cpu_share": others / ((time.perf_counter() - start) * os.cpu_count())}


def busy_cpu_s() -> float:
    """CPU seconds the whole machine has spent neither idle nor waiting on I/O (steal included)."""
    user, nice, system, idle, iowait, irq, softirq, steal = map(int, Path("/proc/stat").read_text().split()[1:9])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(work: Path, repeat: int, rounds: int) -> dict:
    files = corpus_files(work, repeat)
    runs = {scale: {"raw": [], "ours": []} for scale in files}
    for round_ in range(rounds):
        for scale, path in files.items():
            for kind in ("raw", "ours") if round_ % 2 == 0 else ("ours", "raw"):  # neither always first
                runs[scale][kind].append(in_child(kind, path, work))
            raw, mine = runs[scale]["raw"][-1], runs[scale]["ours"][-1]
            if mine["n_tokens"] != raw["n_tokens"] + mine["n_documents"]:
                raise SystemExit(f"{scale}: token counts differ (ours {mine['n_tokens']}, raw {raw['n_tokens']} "
                                 f"+ {mine['n_documents']} end-of-text)")
            print(f"{scale} ({path.stat().st_size / 1e6:.0f} MB): raw {raw['mb_per_s']:.2f} MB/s, ours "
                  f"{mine['mb_per_s']:.2f} MB/s ({mine['mb_per_s'] / raw['mb_per_s']:.1%}), ours peak RSS "
                  f"{mine['peak_rss_mb']:.0f} MB (workers {mine['worker_peak_rss_mb']:.0f} MB each at most); "
                  f"other processes {raw['others_cpu_share']:.0%} / "
                  f"{mine['others_cpu_share']:.0%} of the CPU", flush=True)
    return {scale: summarize(r, files[scale]) for scale, r in runs.items()} | {"runs": runs}


def summarize(runs: dict, path: Path) -> dict:
    """Medians over the rounds; the ratio is taken per round (each pair ran back to back)."""
    ratios = [m["mb_per_s"] / r["mb_per_s"] for r, m in zip(runs["raw"], runs["ours"], strict=True)]
    return {"corpus_mb": path.stat().st_size / 1e6,
            "raw_mb_per_s": statistics.median(r["mb_per_s"] for r in runs["raw"]),
            "ours_mb_per_s": statistics.median(r["mb_per_s"] for r in runs["ours"]),
            "ours_over_raw": statistics.median(ratios), "ours_over_raw_min": min(ratios),
            "ours_over_raw_max": max(ratios), "ours_over_raw_per_round": ratios,
            "ours_peak_rss_mb": max(r["peak_rss_mb"] for r in runs["ours"]),
            "ours_worker_peak_rss_mb": max(r["worker_peak_rss_mb"] for r in runs["ours"])}


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
