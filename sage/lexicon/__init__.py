"""Lexical resources for naming what a feature's trigger words have in common.

- `concepts`: pure logic over a `Taxonomy` (the category shared by most trigger words, its unseen
  members, near-miss non-members); testable with a hand-made taxonomy.
- `wordnet`: WordNet 3.0 from Debian's `wordnet-base`, fetched by `sage setup`, read with nltk's
  WordNet reader and adapted to the `Taxonomy` interface.
"""
