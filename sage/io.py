"""Shared file mechanics: atomic writes, cache keys, append-only JSONL with one torn-line rule.

Every cache and results file of SAGE goes through these helpers, so that each rule is stated once:

- a file (or folder) is replaced atomically: written under a temporary name in the same folder,
  then renamed over the target, so a reader never sees half of it (`atomic_path`);
- a cache key is the first characters of a sha256 over the key's parts (`cache_key`);
- a JSONL results file is appended to one flushed line at a time; a last line cut by an
  interruption is an incomplete record and is cut off before appending again (`open_append`),
  and readers skip any line that does not decode (`read_jsonl`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
from collections.abc import Callable, Hashable, Iterator
from pathlib import Path
from typing import IO, TypeVar

K = TypeVar("K", bound=Hashable)


# -- atomic writes ----------------------------------------------------------------------------------
@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path next to `path`; when the block ends without an exception, move it
    onto `path` in one rename.

    Write to the yielded path whatever way suits (`save_file(..., str(tmp))`, `open(tmp, "w")`,
    a whole folder). The temporary name lies in the same folder (a rename is only atomic within
    one file system) and carries the process id (two processes filling the same cache do not
    write into each other's file). On an exception the temporary file or folder is removed and
    `path` is left as it was. A folder replaces an existing folder at `path` (that step is a
    removal then a rename, so a reader may briefly find nothing, but never a half-written folder).
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    _remove(tmp)  # left by an earlier process with our id that was killed mid-write
    try:
        yield tmp
        if tmp.is_dir() and path.is_dir():
            shutil.rmtree(path)
        os.replace(tmp, path)
    except BaseException:
        _remove(tmp)
        raise


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def write_text(path: Path, text: str, encoding: str | None = None) -> None:
    """Replace `path` atomically with `text` (encoding None: the locale's, like `Path.write_text`)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding=encoding)


def write_bytes(path: Path, data: bytes) -> None:
    """Replace `path` atomically with `data`."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


# -- cache keys -------------------------------------------------------------------------------------
def cache_key(*parts: object, length: int = 16) -> str:
    """The first `length` hex characters of a sha256 over `parts`, fed to the hash in order.

    A part is hashed as: a str, its UTF-8 bytes; bytes or any buffer (a numpy array), its raw
    bytes; anything else, its `json.dumps` (default separators) encoded. Hashing several parts
    is the same as hashing their concatenation, so the keys of existing caches (stores, vocabulary
    tables, corpora) stay what they were: change neither the parts nor their order.
    """
    h = hashlib.sha256()
    for part in parts:
        h.update(_key_bytes(part))
    return h.hexdigest()[:length]


def _key_bytes(part: object):
    if isinstance(part, str):
        return part.encode()
    try:
        return memoryview(part)  # bytes, bytearray, numpy arrays: their raw buffer, without a copy
    except TypeError:
        return json.dumps(part).encode()


def file_sha256(path: Path) -> str:
    """The full sha256 hex digest of a file's contents, read in 1 MiB blocks (checksums of downloads)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# -- append-only JSONL ------------------------------------------------------------------------------
def read_jsonl(path: Path) -> list[dict]:
    """The records of a JSONL file (none when it does not exist); a line that does not decode
    (cut by an interruption) is skipped."""
    path = Path(path)
    records: list = []
    if not path.exists():
        return records
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def drop_torn_tail(path: Path) -> None:
    """Cut a last line left without its newline by an interruption: it is an incomplete record,
    and a record appended after it must start on its own line."""
    path = Path(path)
    if not path.exists():
        return
    with open(path, "rb+") as fh:
        data = fh.read()
        if data and not data.endswith(b"\n"):
            fh.truncate(data.rfind(b"\n") + 1)


def open_append(path: Path) -> IO[str]:
    """Open a JSONL file for appending (its folder made, a torn last line cut first)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    drop_torn_tail(path)
    return open(path, "a", encoding="utf-8")


def append_record(fh: IO[str], record: dict) -> None:
    """Write one record as a JSON line and flush it, so that an interruption loses at most the
    record being written."""
    fh.write(json.dumps(record, ensure_ascii=False) + "\n")
    fh.flush()


def done_keys(path: Path, key: Callable[[dict], K], done: Callable[[dict], bool]) -> set[K]:
    """`key(record)` of every record of a JSONL file for which `done(record)` holds: what a
    resumed run skips."""
    return {key(r) for r in read_jsonl(path) if done(r)}
