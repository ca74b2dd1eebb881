"""Text corpora: local files, HF datasets, and the packaged sources fetched from registries.

Importing the package registers the packaged corpora (`default`) with `load_corpus`.
"""

from sage.data import sources as _sources  # noqa: F401  (registers the packaged corpora)
from sage.data.corpus import Corpus, load_corpus

__all__ = ["Corpus", "load_corpus"]
