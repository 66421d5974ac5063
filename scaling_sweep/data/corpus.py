"""The embedded default corpus: about 20 MB of public-domain English prose, fetched on first use.

Three SWORD modules packaged by Debian are downloaded as pinned ``.deb`` files, checked
against their sha256, unpacked with the standard library and converted from the SWORD
compressed-module format (OSIS markup) into plain UTF-8 text: one document per chapter,
lines are paragraphs or verse lines, documents separated by a blank line. Third-party text
is never committed to the repository; the result is cached under ``~/.cache/scaling_sweep/corpus``.
"""

from __future__ import annotations

import bz2
import hashlib
import html
import io
import json
import lzma
import os
import re
import struct
import tarfile
import urllib.request
import zlib
from pathlib import Path

from scaling_sweep.core.errors import UserError
from scaling_sweep.core.files import atomic_path, file_lock

MIRROR_ENV = "SCALING_SWEEP_DEBIAN_MIRROR"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
DEFAULT_DIR = Path("~/.cache/scaling_sweep/corpus")
CORPUS_FILE = "corpus.txt"
VERSION = 1  # of the extraction; a cached corpus made by another version is rebuilt

# (Debian package, version, sha256 of the .deb), in corpus order; each gives <last word of its name>.txt.
MODULES = (
    ("sword-comm-tdavid", "2.1-1", "bcbfad701c5c4a061475b58309cebc42755a59e87478c8355227c5e046412b3f"),
    ("sword-comm-mhcc", "2.0-1", "06f748215de78ff48fdfdee93e3ffc5af6318b976485f7aedf22309236967e35"),
    ("sword-text-web", "426.0-1", "930b23670b352f0829a306501de4bebb5e654a2df02cde2cbe86b802177868e1"),
)

SOURCE = (
    "C. H. Spurgeon, The Treasury of David (1869-1885); Matthew Henry's Concise Commentary on the "
    "Whole Bible; the World English Bible (2020 stable text, with Deuterocanon). Taken from the "
    "CrossWire SWORD modules packaged by Debian: sword-comm-tdavid 2.1-1, sword-comm-mhcc 2.0-1, "
    "sword-text-web 426.0-1 (http://deb.debian.org/debian/pool/main/s/)."
)
LICENSE = (
    "All three texts are in the public domain (Debian copyright files: 'License: public-domain'). "
    'The corpus is a reformatted derivative (markup and footnotes removed); "World English Bible" '
    "is a trademark of eBible.org, which asks that changed text not be called by that name."
)


class CorpusDownloadError(UserError, RuntimeError):
    """The embedded corpus could not be fetched (no network, a wrong mirror)."""


def embedded_corpus_path(cache_dir: str | Path | None = None) -> Path:
    """Path of the combined corpus text file, fetching and extracting it first if needed."""
    root = Path(cache_dir or DEFAULT_DIR).expanduser()
    corpus, manifest = root / CORPUS_FILE, root / "manifest.json"
    with file_lock(root / ".lock"):
        complete = corpus.exists() and manifest.exists()
        if complete and json.loads(manifest.read_text()).get("version") == VERSION:
            return corpus
        mirror = os.environ.get(MIRROR_ENV, DEFAULT_MIRROR).rstrip("/")
        files = {}
        for pkg, ver, sha in MODULES:
            deb = _download(f"{mirror}/pool/main/s/{pkg}/{pkg}_{ver}_all.deb", sha)
            files[pkg.split("-")[-1] + ".txt"] = sword_module_text(deb_data_files(deb)).encode("utf-8")
        files[CORPUS_FILE] = b"\n\n".join(data.rstrip(b"\n") for data in files.values()) + b"\n"
        for name, data in files.items():
            with atomic_path(root / name) as tmp:
                tmp.write_bytes(data)
        meta = {
            "version": VERSION,
            "source": SOURCE,
            "license": LICENSE,
            "packages": [f"{pkg}_{ver}_all.deb sha256:{sha}" for pkg, ver, sha in MODULES],
            "files": {
                name: {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
                for name, data in files.items()
            },
        }
        with atomic_path(manifest) as tmp:  # written last: its presence marks a complete corpus
            tmp.write_text(json.dumps(meta, indent=2) + "\n")
    return corpus


def _download(url: str, sha256: str) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            data = response.read()
    except OSError as e:
        raise CorpusDownloadError(
            f"could not download the embedded corpus from {url} ({e}); allow access to deb.debian.org, set "
            f"{MIRROR_ENV} to a Debian mirror, or train on your own files (data.source=text data.path=...)"
        ) from None
    if hashlib.sha256(data).hexdigest() != sha256:
        raise CorpusDownloadError(
            f"{url} does not match its pinned sha256 {sha256}; set {MIRROR_ENV} to another Debian mirror"
        )
    return data


def deb_data_files(deb: bytes) -> dict[str, bytes]:
    """Regular files of a .deb's data archive, by path without the leading './'."""
    if not deb.startswith(b"!<arch>\n"):
        raise ValueError("not a Debian package (ar archive)")
    pos = 8
    while pos + 60 <= len(
        deb
    ):  # ar member: 60-byte header (name 16, ..., size 10 at 48), data padded to even
        name, size = deb[pos : pos + 16].decode().strip().rstrip("/"), int(deb[pos + 48 : pos + 58])
        if name.startswith("data.tar"):
            with tarfile.open(fileobj=io.BytesIO(deb[pos + 60 : pos + 60 + size])) as tar:
                return {m.name.removeprefix("./"): tar.extractfile(m).read() for m in tar if m.isfile()}
        pos += 60 + size + size % 2
    raise ValueError("Debian package has no data.tar member")


_DECOMPRESS = {"ZIP": zlib.decompress, "BZIP2": bz2.decompress, "XZ": lzma.decompress}
_BLOCK_LETTER = {"BOOK": "b", "CHAPTER": "c", "VERSE": "v"}


def sword_module_text(files: dict[str, bytes]) -> str:
    """Plain text of the one zText/zCom module among ``files`` (paths as unpacked from its .deb)."""
    (conf_path,) = [p for p in files if p.startswith("usr/share/sword/mods.d/") and p.endswith(".conf")]
    conf = {}
    for line in files[conf_path].decode("utf-8", "replace").splitlines():
        key, sep, value = line.partition("=")
        if sep and not line.startswith("#"):
            conf.setdefault(key.strip(), value.strip())
    driver = conf["ModDrv"]
    if driver not in ("zText", "zText4", "zCom", "zCom4"):
        raise ValueError(f"unsupported SWORD driver {driver} in {conf_path}")
    decompress = _DECOMPRESS[conf.get("CompressType", "ZIP")]
    encoding = "utf-8" if conf.get("Encoding", "").upper() == "UTF-8" else "latin-1"
    data_dir = os.path.normpath(f"usr/share/sword/{conf['DataPath']}")
    letter = _BLOCK_LETTER[conf.get("BlockType", "CHAPTER").upper()]
    entries = []
    for testament in ("ot", "nt"):
        stem = f"{data_dir}/{testament}.{letter}z"
        if files.get(f"{stem}s"):
            entries += _testament_entries(
                files[f"{stem}s"], files[f"{stem}v"], files[f"{stem}z"], driver, decompress
            )
    raw = " ".join(e.decode(encoding) for e in entries)
    docs = [""]
    for part in _DOC_START.split(_NOTE.sub(" ", raw)):
        text = _clean_lines(part)
        if len(docs[-1]) < 200:  # book headings and the shortest chapters run on into the next document
            docs[-1] = f"{docs[-1]}\n{text}".strip("\n")
        else:
            docs.append(text)
    return "\n\n".join(d for d in docs if d) + "\n"


def _testament_entries(
    block_index: bytes, entry_index: bytes, blocks: bytes, driver: str, decompress
) -> list[bytes]:
    """Entries of one testament in canonical order; linked entries (verses sharing one text) once."""
    block_table = list(struct.iter_unpack("<III", block_index))  # offset, compressed size, size
    # Entries are (block, offset, size) with a 2-byte size (zText/zCom) or a 4-byte one (the *4
    # drivers). Try the conf's width first: sword-comm-mhcc 2.0 says zCom4 but ships 2-byte sizes.
    widths = ((12, "<III"), (10, "<IIH")) if driver.endswith("4") else ((10, "<IIH"), (12, "<III"))
    for width, fmt in widths:
        if len(entry_index) % width == 0:
            table = list(struct.iter_unpack(fmt, entry_index))
            if all(b < len(block_table) and o + n <= block_table[b][2] for b, o, n in table if n):
                break
    else:
        raise ValueError("SWORD entry index matches neither 10- nor 12-byte entries")
    cache, seen, out = {}, set(), []
    for b, o, n in table:
        if n == 0 or (b, o, n) in seen:
            continue
        seen.add((b, o, n))
        if b not in cache:
            start, size, _ = block_table[b]
            cache[b] = decompress(blocks[start : start + size])
        out.append(cache[b][o : o + n])
    return out


# Footnotes and cross-references (OSIS/ThML <note>, GBF <RF>..<Rf>) are dropped with their content.
_NOTE = re.compile(r"<note\b.*?</note>|<RF>.*?<Rf>", re.S)
# A document starts at each chapter or book (OSIS milestones <chapter sID=...>, <div type="book" sID=...>).
_DOC_START = re.compile(r'<(?:chapter|div(?=[^>]*\btype="book"))\b(?=[^>]*\bsID=)[^>]*>')
# Block-level tags (paragraphs, verse lines, titles, list items, table rows) end a line; table cells are
# separated by a space; every other tag (words, emphasis, references, milestones) goes, its text stays.
_BLOCK_TAG = re.compile(
    r"</?(?:div|p|lb|l|lg|title|item|list|row|table|speaker|br|CM|Pp?|head)\b[^>]*>", re.I
)
_CELL_TAG = re.compile(r"</?cell\b[^>]*>")
_TAG = re.compile(r"<[^>]*>")
_SPACES = re.compile(r"[ \t\r\xa0]+")


def _clean_lines(markup: str) -> str:
    text = html.unescape(_TAG.sub("", _CELL_TAG.sub(" ", _BLOCK_TAG.sub("\n", markup))))
    lines = (_SPACES.sub(" ", line).strip() for line in text.split("\n"))
    return "\n".join(line for line in lines if line)


if __name__ == "__main__":
    path = embedded_corpus_path()
    print(f"embedded corpus: {path} ({path.stat().st_size / 1e6:.1f} MB)")
