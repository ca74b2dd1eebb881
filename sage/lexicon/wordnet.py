"""WordNet 3.0 as a `Taxonomy`: fetched from Debian's `wordnet-base` by `sage setup`, read with nltk.

Debian's package carries the WordNet database files but not `lexnames`, which nltk's reader
needs; the package's own `lexnames(5WN)` manual page lists that table, so it is written from
there. Nothing is fetched at run time: `load_taxonomy()` returns None until `sage setup` (or
`ensure_wordnet()`) has installed the files under `$SAGE_HOME/lexicon/wordnet`.
"""

from __future__ import annotations

import functools
import gzip
import re
import shutil
import sys
import tempfile
import warnings
from pathlib import Path

from sage import config
from sage.data.sources import deb_extract
from sage.errors import SetupError
from sage.io import atomic_path

PACKAGE = "wordnet-base"
#: a category's members are its words attested in SemCor (lemma counts > 0) when it has this many
MIN_ATTESTED = 5
_POS_NUMBER = {"noun": 1, "verb": 2, "adj": 3, "adv": 4}


def wordnet_dir() -> Path:
    return config.lexicon_dir() / "wordnet"


def installed() -> bool:
    return (wordnet_dir() / "lexnames").exists()


def lexnames_from_manpage(text: str) -> str:
    """The `lexnames` file (number, name, syntactic category; tab-separated) from lexnames(5WN)."""
    rows = [
        f"{m[1]}\t{m[2]}.{m[3]}\t{_POS_NUMBER[m[2]]}"
        for m in re.finditer(r"^(\d\d)\t(noun|verb|adj|adv)\.(\w+)\s*\t", text, flags=re.M)
    ]
    if len(rows) != 45 or [int(r.split("\t")[0]) for r in rows] != list(range(45)):
        raise SetupError(f"{PACKAGE}: the lexnames(5WN) manual page did not list the 45 lexicographer files")
    return "\n".join(rows) + "\n"


def ensure_wordnet() -> Path:
    """Fetch WordNet from Debian (idempotent; ~6 MB download, 28 MB on disk). Returns its folder."""
    out = wordnet_dir()
    if installed():
        return out
    print(f"[sage setup] fetching WordNet 3.0 from Debian ({PACKAGE})", file=sys.stderr)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="sage-wordnet-") as tmp, atomic_path(out) as partial:
        root = deb_extract(Path(tmp), PACKAGE) / "usr/share"
        shutil.copytree(root / "wordnet", partial)
        with gzip.open(root / "man/man5/lexnames.5WN.gz", "rt", encoding="utf-8") as fh:
            (partial / "lexnames").write_text(lexnames_from_manpage(fh.read()), encoding="utf-8")
    return out


class WordNetTaxonomy:
    """nltk's WordNet reader behind the `Taxonomy` interface (nouns; adjectives through the nouns
    they are attributes of or derived from, so "happy" reaches "feeling")."""

    def __init__(self, reader):
        self.wn = reader

    @functools.lru_cache(maxsize=65536)  # noqa: B019  (one taxonomy per process; the cache is its point)
    def senses(self, word: str) -> list[str]:
        nouns = [s.name() for s in self.wn.synsets(word, pos="n")]
        if nouns:
            return nouns
        out: list[str] = []
        for s in self.wn.synsets(word, pos="a"):
            related = s.attributes() + [
                f.synset() for lemma in s.lemmas() for f in lemma.derivationally_related_forms()
            ]
            out += [r.name() for r in related if r.pos() == "n" and r.name() not in out]
        return out

    def _synset(self, category: str):
        return self.wn.synset(category)

    @functools.lru_cache(maxsize=65536)  # noqa: B019
    def ancestors(self, category: str) -> set[str]:
        s = self._synset(category)
        return {a.name() for a in s.closure(lambda x: x.hypernyms() + x.instance_hypernyms())}

    @functools.lru_cache(maxsize=65536)  # noqa: B019
    def depth(self, category: str) -> int:
        return self._synset(category).min_depth()

    def name(self, category: str) -> str:
        return self._synset(category).lemma_names()[0].replace("_", " ")

    @functools.lru_cache(maxsize=4096)  # noqa: B019
    def members(self, category: str) -> list[str]:
        s = self._synset(category)
        counts: dict[str, int] = {}
        for syn in [s, *s.closure(lambda x: x.hyponyms() + x.instance_hyponyms())]:
            for lemma in syn.lemmas():
                w = lemma.name().lower()
                if w.isalpha() and len(w) >= 2:
                    counts[w] = counts.get(w, 0) + lemma.count()
        ranked = sorted(counts, key=lambda w: (-counts[w], w))
        # words never seen in the sense-tagged corpus are mostly rare ("feria", "brumaire"): kept
        # only where the category has few attested ones
        attested = [w for w in ranked if counts[w] > 0]
        return attested if len(attested) >= MIN_ATTESTED else ranked

    def parents(self, category: str) -> list[str]:
        s = self._synset(category)
        return [p.name() for p in s.hypernyms() + s.instance_hypernyms()]


_LOADED: dict[Path, WordNetTaxonomy] = {}


def load_taxonomy() -> WordNetTaxonomy | None:
    """WordNet from `$SAGE_HOME/lexicon/wordnet` (a few seconds, once per process and folder), or None
    when it has not been fetched (`sage setup`). A miss is not remembered: a later call after
    `ensure_wordnet()` loads it."""
    if not installed():
        return None
    if wordnet_dir() not in _LOADED:
        _LOADED[wordnet_dir()] = _read(wordnet_dir())
    return _LOADED[wordnet_dir()]


def _read(folder: Path) -> WordNetTaxonomy:
    import nltk
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    class _Reader(WordNetCorpusReader):
        # nltk maps every WordNet but its own download to 3.0 through data it would need to
        # download; this database is 3.0 and multilingual lookups are never used
        def map_wn(self, version="wordnet"):  # noqa: ARG002
            return None

    root = str(folder)
    if str(folder.parent) not in nltk.data.path:
        nltk.data.path.append(str(folder.parent))  # nltk reads only below its data paths
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "multilingual functions are not available": not used
        return WordNetTaxonomy(_Reader(root, None))
