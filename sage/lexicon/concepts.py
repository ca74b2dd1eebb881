"""Name the category a feature's trigger words share, and find words that test the name.

Pure logic over a `Taxonomy` (WordNet in practice, `sage.lexicon.wordnet`; a hand-made one in the
tests). A category is proposed when enough of the trigger words, weighted by their share of the
feature's activation mass, fall under it; among those the most specific one wins (the lowest
common hypernym that still covers them). It comes with

- unseen members: words of the category that were not among the triggers, commonest first, so a
  probe can ask whether the feature generalises to the category or only knows the words it saw;
- near misses: words of sibling categories (same broader domain, not members), for negative
  controls and minimal pairs.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
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

    def children(self, category: str) -> list[str]: ...


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
    n_near_misses: int = 8


CONCEPT = ConceptSettings()
#: sibling categories read for near misses, at most
MAX_SIBLINGS = 24

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
    #: words of sibling categories: same domain, not members
    near_misses: tuple[str, ...]


def _clean(word: str) -> str | None:
    w = word.strip().lower()
    return w if len(w) >= 2 and w.isalpha() else None


def shared_concept(
    words: Sequence[tuple[str, float]], tax: Taxonomy, settings: ConceptSettings = CONCEPT
) -> Concept | None:
    """The most specific category that most of `words` fall under, or None.

    words: (token, weight) pairs, e.g. trigger tokens with their share of the activation mass;
    tokens that are not words (sub-word pieces, punctuation) count towards the total mass only.
    """
    total = sum(max(w, 0.0) for _, w in words) or 1.0
    known: list[tuple[str, float, set[str]]] = []
    seen: set[str] = set()
    for token, weight in words:
        w = _clean(token)
        if w is None or w in seen:
            continue
        seen.add(w)
        senses = tax.senses(w)[: settings.max_senses]
        if senses:
            cats = set(senses).union(*(tax.ancestors(s) for s in senses))
            known.append((w, max(weight, 0.0), cats))
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
    # the lowest common hypernyms: eligible categories with no eligible category below them (depth
    # alone misleads where WordNet has several paths: "relative" is shallower than its ancestor
    # "organism" through "person" -> "causal agent")
    # Among the categories covering nearly as much mass as the best one (within `cover_slack`), the
    # lowest wins: "chromatic color" over "color" when "white" carries a sliver of the mass, "color"
    # when it carries more.
    top = max(cover[c] for c in eligible)
    near = [c for c in eligible if cover[c] >= (1 - settings.cover_slack) * top]
    lowest = [c for c in near if not any(c in tax.ancestors(o) for o in near if o != c)]
    best = max(lowest, key=lambda c: (cover[c], tax.depth(c), c))
    covered = tuple(w for w, _, cats in known if best in cats)
    parents = tax.parents(best)
    return Concept(
        category=best,
        name=tax.name(best),
        parent=tax.name(parents[0]) if parents else None,
        covered=covered,
        share=round(cover[best] / total, 4),
        unseen=tuple(m for m in tax.members(best) if m not in seen)[: settings.n_unseen],
        near_misses=near_misses(best, tax, exclude=seen, n=settings.n_near_misses),
    )


def near_misses(category: str, tax: Taxonomy, exclude: set[str], n: int) -> tuple[str, ...]:
    """Commonest words of `category`'s sibling categories that are not members of it: one per sibling
    in turn, so the list spans the domain rather than one neighbour."""
    own = set(tax.members(category)) | exclude
    siblings = [s for p in tax.parents(category) for s in tax.children(p) if s != category]
    # a broad parent ("person") has hundreds of children: the first few span its domain well enough
    pools = [[m for m in tax.members(sib) if m not in own] for sib in siblings[:MAX_SIBLINGS]]
    out: list[str] = []
    for depth in range(max((len(p) for p in pools), default=0)):
        for pool in pools:
            if depth < len(pool) and pool[depth] not in out:
                out.append(pool[depth])
                if len(out) == n:
                    return tuple(out)
        if depth >= 3:  # deeper than a sibling's few commonest words is no longer a clear near miss
            break
    return tuple(out)
