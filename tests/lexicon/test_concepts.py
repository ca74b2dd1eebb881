"""Concept naming (sage.lexicon.concepts) on a hand-made taxonomy: no WordNet needed."""

from sage.lexicon.concepts import shared_concept


class Tiny:
    """A taxonomy from a child -> parents map, word -> senses, and word counts (commonness)."""

    PARENTS = {
        "entity": [],
        "abstraction": ["entity"],
        "attribute": ["abstraction"],
        "property": ["attribute"],
        "visual_property": ["property"],
        "color": ["visual_property"],
        "chromatic": ["color"],
        "achromatic": ["color"],
        "shape": ["visual_property"],
        "physical_entity": ["entity"],
        "object": ["physical_entity"],
        "whole": ["object"],
        "living_thing": ["whole"],
        "organism": ["living_thing"],
        "causal_agent": ["physical_entity"],
        "person": ["organism", "causal_agent"],
        "relative": ["person"],
        "sibling": ["relative"],
        "parent": ["relative"],
        "worker": ["person"],
    }
    #: word -> its category; each word is its own sense "<word>.n" under it
    WORDS = {
        "blue": "chromatic",
        "green": "chromatic",
        "red": "chromatic",
        "pink": "chromatic",
        "gold": "chromatic",
        "white": "achromatic",
        "gray": "achromatic",
        "round": "shape",
        "square": "shape",
        "mother": "parent",
        "father": "parent",
        "sister": "sibling",
        "brother": "sibling",
        "nurse": "worker",
        "table": "entity",
    }

    def _parents(self, c):
        return [self.WORDS[c[:-2]]] if c.endswith(".n") else self.PARENTS[c]

    def senses(self, word):
        return [word + ".n"] if word in self.WORDS else []

    def ancestors(self, c):
        out, todo = set(), list(self._parents(c))
        while todo:
            p = todo.pop()
            if p not in out:
                out.add(p)
                todo += self._parents(p)
        return out

    def depth(self, c):
        parents = self._parents(c)
        return 0 if not parents else 1 + min(self.depth(p) for p in parents)

    def name(self, c):
        return c.replace("_", " ")

    def members(self, c):
        return sorted(w for w in self.WORDS if c == w + ".n" or c in self.ancestors(w + ".n"))

    def parents(self, c):
        return self._parents(c)


T = Tiny()


def test_the_lowest_category_covering_most_trigger_mass_is_named_with_unseen_members_and_near_misses():
    c = shared_concept([(" blue", 0.3), (" green", 0.3), (" red", 0.2), (" white", 0.2)], T)
    assert c.category == "color"  # "white" is achromatic: only "color" covers all four
    assert c.covered == ("blue", "green", "red", "white") and c.share == 1.0
    assert "gold" in c.unseen and "gray" in c.unseen and "blue" not in c.unseen
    assert c.near_misses and set(c.near_misses) <= {"round", "square"}
    # with "white" carrying a sliver of the mass, the narrower category covers nearly as much
    chromatic = shared_concept([(" blue", 0.4), (" green", 0.3), (" red", 0.25), (" white", 0.05)], T)
    assert chromatic.category == "chromatic" and chromatic.parent == "color"


def test_several_paths_to_the_root_do_not_make_a_broader_category_look_more_specific():
    # "organism" is deeper than "person" by one path, but "relative" lies below both
    c = shared_concept([("mother", 1), ("father", 1), ("sister", 1), ("brother", 1)], T)
    assert c.category == "relative" and set(c.unseen) == set()
    assert "nurse" in c.near_misses


def test_no_concept_from_too_few_words_sub_word_mass_or_too_general_categories():
    assert shared_concept([("blue", 1), ("green", 1)], T) is None  # two words are not a category
    pieces = [("blue", 0.1), ("green", 0.1), ("red", 0.1), ("ly", 0.4), ("ing", 0.3)]
    assert shared_concept(pieces, T) is None  # the category carries 30% of the activation mass
    assert shared_concept([("table", 1), ("blue", 1), ("mother", 1), ("round", 1)], T) is None


def test_a_broader_concept_is_the_parent_category_seen_from_the_same_words():
    from sage.lexicon.concepts import broader_concept

    words = [(" blue", 0.4), (" green", 0.3), (" red", 0.3)]
    wider = broader_concept("chromatic", words, T)
    assert wider.category == "color" and wider.covered == ("blue", "green", "red")
    assert "white" in wider.unseen and "gray" in wider.unseen  # achromatic colours are members now
    assert set(wider.near_misses) <= {"round", "square"}
    # above a category too general to name there is nothing to broaden to
    assert broader_concept("visual_property", words, T) is None
