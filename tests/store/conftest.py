"""The store tests' corpus."""

import pytest

from sage.data.corpus import from_paths
from tests.fixtures import TEXTS


@pytest.fixture()
def corpus(tmp_path):
    # distinct documents so that top contexts are unique
    docs = [f"{t} Item {i} of the list." for i, t in enumerate(TEXTS * 3)]
    (tmp_path / "c.txt").write_text("\n\n".join(docs))
    return from_paths([tmp_path / "c.txt"])
