"""WordNet as fetched by `sage setup` (Debian `wordnet-base`), read with nltk: real concept names."""

import pytest

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def wordnet():
    from sage.lexicon.wordnet import ensure_wordnet, load_taxonomy

    ensure_wordnet()
    return load_taxonomy()


@pytest.mark.parametrize(
    ("words", "name"),
    [
        (["monday", "tuesday", "friday", "saturday"], "weekday"),
        (["january", "march", "june", "october"], "month"),
        (["blue", "green", "pink", "red"], "color"),
        (["mother", "father", "sister", "brother"], "relative"),
    ],
)
def test_trigger_words_of_a_category_are_named_with_unseen_members(wordnet, words, name):
    from sage.lexicon.concepts import shared_concept

    c = shared_concept([(" " + w, 1.0) for w in words], wordnet)
    assert c is not None and name in f"{c.name} {c.parent}"
    assert c.unseen and not set(c.unseen) & set(words)
    assert c.near_misses and not set(c.near_misses) & set(words)


def test_words_with_nothing_in_common_name_nothing(wordnet):
    from sage.lexicon.concepts import shared_concept

    assert (
        shared_concept([(w, 1.0) for w in ["disposal", "maple", "infringement", "the", "ly"]], wordnet)
        is None
    )


def test_lexnames_are_written_from_the_packages_manual_page(wordnet):
    from sage.lexicon.wordnet import wordnet_dir

    rows = (wordnet_dir() / "lexnames").read_text().splitlines()
    assert len(rows) == 45 and rows[0].split("\t") == ["00", "adj.all", "3"]
    assert rows[5].split("\t") == ["05", "noun.animal", "1"]
