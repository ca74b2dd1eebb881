"""Corpora: where the text that SAGE mines for activations comes from.

A `Corpus` is a named, re-iterable stream of documents (strings) with a
fingerprint. Sources: local text files / folders, JSONL files (a `text` field),
a Hugging Face dataset (streamed; needs network), or `default` (built at set-up
from registry packages, see `sage.data.sources`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from sage import config
from sage.errors import ConfigError
from sage.io import cache_key


@dataclass(frozen=True)
class Corpus:
    """A re-iterable stream of documents. `name` and `fingerprint` key caches."""

    name: str
    fingerprint: str
    _docs: Callable[[], Iterable[str]]

    def documents(self) -> Iterator[str]:
        for doc in self._docs():
            doc = doc.strip()
            if doc:
                yield doc

    def contexts(self, tokenizer, sink_id: int, context_len: int) -> Iterator[list[int]]:
        """Token-id windows of exactly `context_len`: the sink token, then `context_len - 1`
        tokens of the document stream (documents joined by a blank line, as sae-lens packs text).

        The last incomplete window is dropped so every context has the same length.
        """
        body = context_len - 1
        buf: list[int] = []
        sep = tokenizer("\n\n", add_special_tokens=False)["input_ids"]
        for doc in self.documents():
            buf.extend(tokenizer(doc, add_special_tokens=False)["input_ids"])
            buf.extend(sep)
            while len(buf) >= body:
                yield [sink_id, *buf[:body]]
                del buf[:body]


def _hash_files(paths: list[Path]) -> str:
    stats = [(p, p.stat()) for p in paths]
    return cache_key(*(f"{p}:{st.st_size}:{int(st.st_mtime)}" for p, st in stats))


def read_jsonl_texts(path: Path, field: str = "text") -> Iterator[str]:
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            line = line.strip()
            if not line:
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"{path}:{n}: not valid JSON ({exc.msg})") from exc
            if field not in rec:
                raise ConfigError(f"{path}:{n}: record has no {field!r} field")
            yield str(rec[field])


def from_paths(paths: list[Path], name: str | None = None) -> Corpus:
    """Corpus of local `.txt` files (one document per blank-line-separated block) and `.jsonl` files."""
    files: list[Path] = []
    for p in paths:
        p = Path(p).expanduser()
        if p.is_dir():
            files.extend(
                sorted(q for q in p.rglob("*") if q.suffix in (".txt", ".jsonl", ".md") and q.is_file())
            )
        elif p.is_file():
            files.append(p)
        else:
            raise ConfigError(f"corpus path {p} does not exist")
    if not files:
        raise ConfigError(f"no .txt / .jsonl / .md files under {', '.join(map(str, paths))}")

    def docs() -> Iterator[str]:
        for f in files:
            if f.suffix == ".jsonl":
                yield from read_jsonl_texts(f)
            else:
                yield from f.read_text(encoding="utf-8", errors="replace").split("\n\n")

    return Corpus(name or ",".join(str(p) for p in paths), _hash_files(files), docs)


def from_hf_dataset(
    dataset: str,
    split: str = "train",
    field: str = "text",
    config_name: str | None = None,
    max_docs: int | None = None,
) -> Corpus:
    """A HF dataset, streamed (nothing downloaded up front). Needs network and `datasets`."""
    try:
        import datasets
    except ImportError as exc:
        raise ConfigError("HF dataset corpora need `pip install datasets`") from exc

    def docs() -> Iterator[str]:
        ds = datasets.load_dataset(dataset, config_name, split=split, streaming=True)
        for i, rec in enumerate(ds):
            if max_docs is not None and i >= max_docs:
                return
            yield rec[field]

    fp = cache_key(f"{dataset}:{config_name}:{split}:{field}:{max_docs}")
    return Corpus(f"hf:{dataset}", fp, docs)


#: Corpora known by name (`default`, ...), registered by the modules that build them
#: (`sage.data.sources`), so that this module does not import its builders.
NAMED_CORPORA: dict[str, Callable[[], Corpus]] = {}


def register_corpus(name: str, build: Callable[[], Corpus]) -> None:
    """Make `load_corpus(name)` return `build()`."""
    NAMED_CORPORA[name] = build


def load_corpus(spec: str = config.DEFAULT) -> Corpus:
    """A registered name (`default`), `hf:DATASET[:SPLIT]`, or comma-separated local paths."""
    if spec in NAMED_CORPORA:
        return NAMED_CORPORA[spec]()
    if spec.startswith("hf:"):
        name, _, split = spec[3:].partition(":")
        return from_hf_dataset(name, split or "train")
    return from_paths([Path(p) for p in spec.split(",")])
