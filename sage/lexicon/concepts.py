"""Name the category a feature's trigger words share, and find words that test the name.

Pure logic over a `Taxonomy` (WordNet in practice, `sage.lexicon.wordnet`; a hand-made one in the
tests). A category is proposed when enough of the trigger words, weighted by their share of the
feature's activation mass, fall under it; among those the most specific one wins (the lowest
common hypernym that still covers them). It comes with

- unseen members: words of the category that were not among the triggers, commonest first, so a
  probe can ask whether the feature generalises to the category or only knows the words it saw;
- near misses: common words of the parent category that are not members (same broader domain),
  for negative controls and minimal pairs.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import zip_longest
from typing import Protocol


class Taxonomy(Protocol):
    """The little of a lexical taxonomy that concept naming needs. Categories are opaque ids."""

    def senses(self, word: str) -> list[str]:
        """Categories the (lower-case) word names directly, most frequent sense first."""

    def ancestors(self, category: str) -> set[str]:
        """Every category above `category` (its hypernym closure), itself excluded."""

    def depth(self, category: str) -> int:
        """Steps from the root along the shortest hypernym path (0 = a root)."""

    def name(self, category: str) -> str:
        """A readable name ("day of the week")."""

    def members(self, category: str) -> list[str]:
        """Single-word members (the category's hyponym closure and its own lemmas), lower case,
        commonest first."""

    def parents(self, category: str) -> list[str]: ...


@dataclass(frozen=True)
class ConceptSettings:
    """When a category counts as shared by the trigger words."""

    #: senses of each word considered (WordNet lists the most frequent first)
    max_senses: int = 2
    #: trigger words that must fall under the category
    min_words: int = 3
    #: share of the activation mass of the words the taxonomy knows that the category must cover
    min_known_share: float = 0.6
    #: share of all the trigger mass (sub-word pieces included) that it must cover
    min_share: float = 0.35
    #: categories closer to the root than this are too general to be a concept ("entity", "object")
    min_depth: int = 4
    #: a narrower category may cover this much less of the mass than the broadest eligible one
    cover_slack: float = 0.1
    #: unseen members and near misses returned, at most
    n_unseen: int = 12
    #: the commonest members among which the unseen ones closest to the seen words are chosen
    member_pool: int = 200
    n_near_misses: int = 8


CONCEPT = ConceptSettings()
#: the commonest members of a parent category read for near misses, at most
MAX_PARENT_MEMBERS = 400
#: how far up (parents, grandparents, ...) near misses are looked for
NEAR_MISS_LEVELS = 3

#: names too vague to explain anything, whatever their depth
TOO_GENERAL = frozenset(
    {
        "entity",
        "physical entity",
        "abstraction",
        "object",
        "whole",
        "thing",
        "matter",
        "group",
        "relation",
        "attribute",
        "measure",
        "psychological feature",
        "event",
        "act",
        "communication",
        "artifact",
        "instrumentality",
        "state",
        "causal agent",
        "cognition",
        "content",
        "location",
        "region",
        "part",
        "unit",
    }
)


@dataclass(frozen=True)
class Concept:
    """A category shared by trigger words."""

    #: the taxonomy's id ("color.n.01")
    category: str
    #: its readable name ("color")
    name: str
    #: the name of a broader category it belongs to, or None at a root
    parent: str | None
    #: trigger words that belong to it
    covered: tuple[str, ...]
    #: share of all the trigger mass those words carry (0..1)
    share: float
    #: members that were not among the trigger words, commonest first
    unseen: tuple[str, ...]
    #: common words of the parent category that are not members: same domain, not members
    near_misses: tuple[str, ...]


def _clean(word: str) -> str | None:
    w = word.strip().lower()
    return w if len(w) >= 2 and w.isalpha() else None


def _read_words(
    words: Sequence[tuple[str, float]], tax: Taxonomy, settings: ConceptSettings
) -> tuple[float, list[tuple[str, float, set[str]]]]:
    """(total mass of `words`, [(word, weight, its categories)] for each distinct cleaned word, in
    order): sub-word pieces and punctuation count towards the total only."""
    total = sum(max(w, 0.0) for _, w in words) or 1.0
    read: list[tuple[str, float, set[str]]] = []
    seen: set[str] = set()
    for token, weight in words:
        w = _clean(token)
        if w is None or w in seen:
            continue
        seen.add(w)
        read.append((w, max(weight, 0.0), _categories(w, tax, settings)))
    return total, read


def shared_concept(
    words: Sequence[tuple[str, float]], tax: Taxonomy, settings: ConceptSettings = CONCEPT
) -> Concept | None:
    """The most specific category that most of `words` fall under, or None.

    words: (token, weight) pairs, e.g. trigger tokens with their share of the activation mass;
    tokens that are not words (sub-word pieces, punctuation) count towards the total mass only.
    """
    total, read = _read_words(words, tax, settings)
    known = [k for k in read if k[2]]
    if len(known) < settings.min_words:
        return None
    known_mass = sum(wt for _, wt, _ in known) or 1.0
    cover: dict[str, float] = defaultdict(float)
    count: Counter = Counter()
    for _, wt, cats in known:
        for c in cats:
            cover[c] += wt
            count[c] += 1
    eligible = [
        c
        for c in cover
        if count[c] >= settings.min_words
        and cover[c] / known_mass >= settings.min_known_share
        and cover[c] / total >= settings.min_share
        and tax.depth(c) >= settings.min_depth
        and tax.name(c) not in TOO_GENERAL
    ]
    if not eligible:
        return None
    # Among the categories covering nearly as much mass as the best one (within `cover_slack`), the
    # lowest wins: "chromatic color" over "color" when "white" carries a sliver of the mass, "color"
    # when it carries more. "Lowest" means no other such category lies below it; depth alone misleads
    # where WordNet has several paths ("relative" is shallower than its ancestor "organism").
    top = max(cover[c] for c in eligible)
    near = [c for c in eligible if cover[c] >= (1 - settings.cover_slack) * top]
    lowest = [c for c in near if not any(c in tax.ancestors(o) for o in near if o != c)]
    best = max(lowest, key=lambda c: (cover[c], tax.depth(c), c))
    return concept_at(best, words, tax, settings)


def concept_at(
    category: str, words: Sequence[tuple[str, float]], tax: Taxonomy, settings: ConceptSettings = CONCEPT
) -> Concept:
    """The concept `category` as `words` ((token, weight) pairs) see it: the words it covers and their
    share of the mass, unseen members to test (near the seen words first) and near misses."""
    total, known = _read_words(words, tax, settings)
    seen = {w for w, _, _ in known}
    covered = tuple(w for w, _, cats in known if category in cats)
    share = sum(wt for _, wt, cats in known if category in cats) / total
    parents = tax.parents(category)
    seen_cats = [cats for _, _, cats in known if category in cats]
    base = tax.depth(category)
    # a member is proposed when its dominant sense is in the category ("wine" is a colour only in its
    # third sense) and is neither a seen word's sense nor a kind of one ("mama" for "mother" tests
    # nothing new)
    seen_senses = {s for w, _, _ in known for s in tax.senses(w)[: settings.max_senses]}
    candidates = [
        m
        for m in tax.members(category)[: settings.member_pool]
        if m not in seen and category in (lineage := _lineage(m, tax)) and not seen_senses & lineage
    ]
    # Members near a seen word come first, taken in turn from each seen word's neighbourhood (commonest
    # first within one), so a feature that knows "dog" and "cat" is tested on "puppy" and "kitten"
    # before "cattle" and "oxen"; members that share only the category itself come last.
    groups: dict[int, list[str]] = defaultdict(list)
    rest = []
    for m in candidates:
        depth, who = _closest(m, seen_cats, tax, settings)
        (groups[who] if depth > base else rest).append(m)
    unseen = [m for row in zip_longest(*(groups[k] for k in sorted(groups))) for m in row if m] + rest
    return Concept(
        category=category,
        name=tax.name(category),
        parent=tax.name(parents[0]) if parents else None,
        covered=covered,
        share=round(share, 4),
        unseen=tuple(unseen[: settings.n_unseen]),
        near_misses=near_misses(category, tax, exclude=seen, n=settings.n_near_misses),
    )


def broader_concept(
    category: str, words: Sequence[tuple[str, float]], tax: Taxonomy, settings: ConceptSettings = CONCEPT
) -> Concept | None:
    """The parent of `category` as a concept of `words` (`concept_at`), for a concept whose near misses
    fired: the feature's category is wider than the one named. None at the top of the taxonomy, or
    when the parent is too general to name (near the root, or on the list of vague names)."""
    for parent in tax.parents(category):
        if tax.depth(parent) >= settings.min_depth and tax.name(parent) not in TOO_GENERAL:
            return concept_at(parent, words, tax, settings)
    return None


def _categories(word: str, tax: Taxonomy, settings: ConceptSettings) -> set[str]:
    """The word's first `max_senses` senses and every category above them (empty: unknown word)."""
    senses = tax.senses(word)[: settings.max_senses]
    return set(senses).union(*(tax.ancestors(s) for s in senses))


def _lineage(word: str, tax: Taxonomy) -> set[str]:
    """The word's dominant sense and every category above it (empty for an unknown word)."""
    senses = tax.senses(word)
    return {senses[0], *tax.ancestors(senses[0])} if senses else set()


def _dominant_in(word: str, category: str, tax: Taxonomy) -> bool:
    return category in _lineage(word, tax)


def _closest(
    word: str, seen_cats: list[set[str]], tax: Taxonomy, settings: ConceptSettings
) -> tuple[int, int]:
    """(depth of the deepest category `word` shares with a seen word, that seen word's index; the
    first one among equals)."""
    cats = _categories(word, tax, settings)
    shared = [max((tax.depth(c) for c in cats & seen), default=0) for seen in seen_cats]
    best = max(range(len(shared)), key=lambda i: (shared[i], -i), default=0)
    return (shared[best] if shared else 0), best


def near_misses(category: str, tax: Taxonomy, exclude: set[str], n: int) -> tuple[str, ...]:
    """The commonest words of the category's parent(s) whose dominant sense lies outside it: same
    domain, not members ("friend" for "relative", "birthday" for "day of the week"). Grandparents
    are read when the parents have too few such words."""
    out: list[str] = []
    level = tax.parents(category)
    for _ in range(NEAR_MISS_LEVELS):
        for parent in level:
            for m in tax.members(parent)[:MAX_PARENT_MEMBERS]:
                outside = _dominant_in(m, parent, tax) and not _dominant_in(m, category, tax)
                if outside and m not in exclude and m not in out:
                    out.append(m)
                    if len(out) == n:
                        return tuple(out)
        level = [p for c in level for p in tax.parents(c)]
    return tuple(out)
