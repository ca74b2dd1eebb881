"""sage.io: cache keys stay byte-identical to the inline hashes they replaced (existing caches still
load), atomic writes leave nothing half-written, and JSONL files follow one torn-line rule."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sage.batch import run_batch
from sage.io import (
    atomic_path,
    cache_key,
    done_keys,
    drop_torn_tail,
    file_sha256,
    open_append,
    read_jsonl,
    write_text,
)


def test_cache_keys_match_the_hashes_of_existing_caches():
    # values computed with the code before sage.io (hashlib.sha256(...).hexdigest()[:n] inline)
    # activation store folder: json.dumps([subject fp, corpus fp, context_len, top_k])
    assert cache_key(["0123456789abcdef", "fedcba9876543210", 64, 32]) == "4cad7d1f215d4716"
    # registered corpus fingerprint: json.dumps([name, split, sizes])
    assert cache_key(["default", None, [1234, 5678]]) == "914f8aa4625e0ca7"
    # HF corpus fingerprint: one formatted string
    assert cache_key("wikitext:wikitext-2-raw-v1:train:text:None") == "6894be5856b89210"
    # subject fingerprint: strings and raw array bytes fed one after the other
    weights = np.arange(6, dtype=np.float32)
    assert cache_key(b"model", "blocks.2.hook_resid_post", weights) == "2d8517f504889094"
    # vocabulary tables: a JSON header then weight bytes, 24 characters
    header, raw = ["v1", "ab", {"top": 3}], np.arange(4, dtype=np.uint8)
    assert cache_key(header, raw, length=24) == "467e4698cbad65bd5a09d019"
    # `sage compare`'s default folder name
    assert cache_key("1,2,3", length=8) == "8a6ae151"


def test_file_sha256(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"abc")
    assert file_sha256(path) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_atomic_path_replaces_files_and_folders_and_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "a.json"
    write_text(target, "one")
    write_text(target, "two")
    assert target.read_text() == "two"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("interrupted")
    assert target.read_text() == "two"
    folder = tmp_path / "model"
    for marker in ("old", "new"):
        with atomic_path(folder) as staging:
            staging.mkdir()
            (staging / marker).write_text(marker)
    assert [p.name for p in folder.iterdir()] == ["new"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "model"]


def test_a_torn_last_line_is_cut_and_skipped(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text('{"a": 1}\n{"a": 2}\n{"a": 3', encoding="utf-8")
    assert read_jsonl(path) == [{"a": 1}, {"a": 2}]
    with open_append(path) as fh:
        fh.write('{"a": 4}\n')
    assert read_jsonl(path) == [{"a": 1}, {"a": 2}, {"a": 4}]
    drop_torn_tail(path)  # a whole file is left alone
    assert done_keys(path, key=lambda r: r["a"], done=lambda r: r["a"] > 1) == {2, 4}
    assert read_jsonl(tmp_path / "missing.jsonl") == []


def test_run_batch_skips_done_records_failures_and_keeps_going(tmp_path):
    out = tmp_path / "out.jsonl"
    # feature 1's record lost its newline: it is redone, not counted done and then cut
    out.write_text('{"feature": {"index": 0}}\n{"feature": {"index": 1}}', encoding="utf-8")

    def work(f):
        if f == 3:
            raise ValueError("no")
        return {"feature": {"index": f}}

    def done(path):
        return done_keys(path, key=lambda r: r["feature"]["index"], done=lambda r: "error" not in r)

    for workers in (0, 2):
        counts = run_batch([0, 1, 2, 3], work, out, desc="t", done=done, workers=workers, progress=False)
        assert counts["requested"] == 4 and counts["failed"] == 1
        lines = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
        assert {"feature": {"index": 3}, "error": "ValueError: no"} in lines
    assert counts == {"requested": 4, "skipped": 3, "done": 0, "failed": 1}
    with pytest.raises(ValueError):
        run_batch([3], work, out, desc="t", errors=(), progress=False)
