"""Spinner profiles: pooled evidence about a spinner's substitutions, and how the decoder uses it."""
import math

import pytest

from unspin.detect import Calibration, Engine
from unspin.profile import ProfilePrior, ProfileWeights, SpinnerProfile
from unspin.text import sentences


def test_bonus_grows_with_pooled_mass_and_is_capped():
    profile = SpinnerProfile()
    profile.add(("stated",), "said", 0.5)
    one = profile.prior().bonus(("stated",), "said")
    profile.add(("stated",), "said", 0.9)
    two = profile.prior().bonus(("stated",), "said")
    assert 0 < one < two
    assert two == pytest.approx(ProfileWeights().same_key * math.log10(1 + 1.4))
    for _ in range(1000):
        profile.add(("stated",), "said", 1.0)
    assert profile.prior().bonus(("stated",), "said") == ProfileWeights().cap


def test_other_keys_pointing_to_one_original_count_less_than_the_same_key():
    profile = SpinnerProfile()
    profile.add(("stated",), "said", 1.0)
    prior = profile.prior()
    assert prior.bonus(("stated",), "said") > prior.bonus(("mentioned",), "said") > 0
    assert prior.bonus(("mentioned",), "noted") == 0.0
    assert prior.bonus(("stated",), "stated") == 0.0 and not SpinnerProfile().prior()


def test_identity_is_never_counted_and_subtraction_restores():
    a, b = SpinnerProfile(), SpinnerProfile()
    a.add(("extra",), "extra", 1.0)  # keeping the word is not a substitution
    assert len(a) == 0
    a.add(("extra",), "more", 0.7)
    b.add(("extra",), "more", 0.7)
    b.add(("scheme",), "plan", 0.4)
    both = a.merged(b)
    assert both.pairs[("extra",)]["more"] == pytest.approx(1.4)
    back = both.merged(b, sign=-1.0)
    assert back.pairs == {("extra",): {"more": pytest.approx(0.7)}}


class _FixedPrior:
    """A prior that favours one pair by a fixed amount."""

    def __init__(self, key, original, bonus):
        self.key, self.original, self.value = key, original, bonus

    def bonus(self, key, original):
        return self.value if (key, original) == (self.key, self.original) else 0.0

    def known_originals(self, key):
        return [self.original] if key == self.key else []


def test_a_prior_raises_the_posterior_of_the_pair_it_favours(tiny_lm, tiny_channel):
    engine = Engine(tiny_lm, tiny_channel, Calibration.uncalibrated(), consistency=None)
    toks = next(sentences("The police stated the road was closed."))

    def p_change(prior):
        d = engine.decoder.decode(toks, prior)
        return max((c.posterior for c in d.changes if c.observed == "stated"), default=0.0), \
            d.evidence[2].suspicion

    plain, susp_plain = p_change(None)
    favoured, susp_favoured = p_change(_FixedPrior(("stated",), "said", 1.0))
    assert susp_favoured > susp_plain
    assert favoured >= plain and favoured > 0.5


def test_document_consistency_pools_evidence_across_sentences(tiny_lm, tiny_channel):
    # The same spun word in several sentences: each occurrence gets the others' evidence.
    text = ("The police stated the road was closed. The minister stated the plan was ready. "
            "She stated the report was late.")
    off = Engine(tiny_lm, tiny_channel, Calibration.uncalibrated(), consistency=None)
    on = Engine(tiny_lm, tiny_channel, Calibration.uncalibrated(), consistency=ProfileWeights())
    toks = list(sentences(text))

    def posteriors(engine):
        return [max((c.posterior for c in d.changes if c.observed == "stated"), default=0.0)
                for d in engine.decode_document(toks, pool=True)]

    before, after = posteriors(off), posteriors(on)
    assert all(a >= b for a, b in zip(after, before)) and sum(after) > sum(before)
    # The first pass, which the document model reads, is left as calibrated.
    assert on.decode_document(toks)[0].changes == off.decode_document(toks)[0].changes


def test_the_spun_pass_pools_evidence_across_sentences(tiny_lm, tiny_channel):
    text = ("The police stated the road was closed. The minister stated the plan was ready. "
            "She stated the report was late.")
    toks = list(sentences(text))
    off = Engine(tiny_lm, tiny_channel, Calibration.uncalibrated(), consistency=None)
    on = Engine(tiny_lm, tiny_channel, Calibration.uncalibrated(), consistency=ProfileWeights())
    first = off.decode_document(toks)

    def posteriors(decodings):
        return [max((c.posterior for c in d.changes if c.observed == "stated"), default=0.0) for d in decodings]

    assert sum(posteriors(on.spun_pass(toks, first, 0.99))) > sum(posteriors(off.spun_pass(toks, first, 0.99)))


def test_a_pair_weighs_by_its_share_of_the_observed_words_occurrences():
    profile = SpinnerProfile()
    for _ in range(3):
        profile.add(("stated",), "said", 1.0)
        profile.add(("the",), "new", 1.0)
    profile.count_keys([["she", "stated", "the", "plan"]] * 3 + [["the", "end"]] * 200)
    prior = profile.prior()
    assert profile.key_counts == {("stated",): 3, ("the",): 203}
    assert prior.bonus(("stated",), "said") > 10 * prior.bonus(("the",), "new") > 0
    # Saved and read back with the counts; a profile of version 1 (no counts) weighs pairs whole.
    again = SpinnerProfile.from_dict(profile.to_dict())
    assert again.key_counts == profile.key_counts
    old = profile.to_dict()
    old["version"] = 1
    for row in old["pairs"]:
        del row["observed_count"]
    assert SpinnerProfile.from_dict(old).prior().bonus(("the",), "new") == SpinnerProfile(profile.pairs).prior().bonus(("the",), "new")


def test_a_learned_profile_is_used_for_a_single_sentence(tiny_lm, tiny_channel):
    learned = SpinnerProfile()
    for _ in range(5):
        learned.add(("stated",), "said", 1.0)
    toks = list(sentences("The police stated the road was closed."))
    plain = Engine(tiny_lm, tiny_channel, Calibration.uncalibrated(), consistency=None)
    with_profile = Engine(tiny_lm, tiny_channel, Calibration.uncalibrated(), consistency=None, profile=learned)
    assert with_profile.decode_document(toks)[0].evidence[2].suspicion > plain.decode_document(toks)[0].evidence[2].suspicion
    assert isinstance(learned.prior(), ProfilePrior)


def test_learn_writes_a_readable_profile_that_check_uses(tmp_path, models, capsys):
    import json

    from unspin.cli import main

    rows = tmp_path / "site.jsonl"
    spun = ["The police stated the road was closed.", "The minister stated the plan was ready.",
            "She stated the report was late.", "He stated extra troops would arrive."]
    rows.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in enumerate(spun)), encoding="utf-8")
    out = tmp_path / "profile.json"
    assert main(["learn", str(rows), "-o", str(out), *models]) == 0
    assert "stated -> said" in (err := capsys.readouterr().err) and "% of its 4)" in err
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["format"] == "unspin-profile" and data["n_documents"] == 4
    assert data["pairs"][0]["observed"] == "stated" and data["pairs"][0]["original"] == "said"
    assert SpinnerProfile.load(out).top_pairs(1)[0][:2] == ("stated", "said")

    doc = tmp_path / "new.txt"
    doc.write_text("The company stated the new plant would open next year.", encoding="utf-8")
    assert main(["check", str(doc), "--format", "json", *models]) == 0
    plain = json.loads(capsys.readouterr().out)
    assert main(["check", str(doc), "--format", "json", "--profile", str(out), *models]) == 0
    with_profile = json.loads(capsys.readouterr().out)
    said = {s["text"]: s for s in with_profile["spans"] if s["suggestion"] == "said"}
    said_plain = {s["text"]: s for s in plain["spans"] if s["suggestion"] == "said"}
    # The learned pair raises the change's channel score; its confidence can only fall with the
    # document's P(spun), which caps it.
    assert said["stated"]["evidence"]["channel_log10"] > said_plain["stated"]["evidence"]["channel_log10"]
    assert said["stated"]["confidence"] >= min(said_plain["stated"]["confidence"], with_profile["spin_probability"])


def test_a_file_that_is_not_a_profile_is_refused(tmp_path, models, capsys):
    from unspin.cli import main

    bad = tmp_path / "profile.json"
    bad.write_text('{"pairs": []}', encoding="utf-8")
    doc = tmp_path / "in.txt"
    doc.write_text("The police stated the road was closed.", encoding="utf-8")
    assert main(["check", str(doc), "--profile", str(bad), *models]) == 2
    assert "not an unspin spinner profile" in capsys.readouterr().err


def test_a_prior_proposes_a_pair_the_channel_lacks(tiny_lm, tiny_channel):
    # "declared" is in no relation of the tiny channel: only the prior can propose "said".
    engine = Engine(tiny_lm, tiny_channel, Calibration.uncalibrated(), consistency=None)
    toks = next(sentences("The police declared the road was closed."))
    assert engine.decoder.candidate_originals(("declared",)) == []
    assert not [c for c in engine.decoder.decode(toks).changes if c.observed == "declared"]
    d = engine.decoder.decode(toks, _FixedPrior(("declared",), "said", 2.0))
    change = next(c for c in d.changes if c.observed == "declared")
    assert change.original == "said" and change.posterior > 0.5
    assert change.sources == ("profile",)


# Two reference stories (written for this test) and copies whose spinner swapped "said" for
# "declared", a pair the tiny channel does not hold.
_STORIES = [
    ("harbour", "The harbour master said the old pier would close for repairs in the spring. Fishermen said "
                "they would moor their boats at the northern jetty until the work was done, and the council "
                "said it would pay for the extra ropes and lights that the boats would need there."),
    ("library", "The head librarian said the reading room would open late on Tuesdays from next month. "
                "Students said they welcomed the change because the room was often full in the evenings, and "
                "the university said it would hire two more staff to keep the desks running until midnight."),
]


def test_learn_with_an_index_takes_exact_pairs_from_traced_copies(tmp_path, models, capsys):
    import json

    from unspin.cli import main

    refs = tmp_path / "refs.jsonl"
    refs.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in _STORIES), encoding="utf-8")
    index = tmp_path / "refs.sqlite"
    assert main(["index", "add", "--no-progress", "--index", str(index), str(refs)]) == 0
    copies = tmp_path / "site.jsonl"
    copies.write_text("".join(json.dumps({"id": i, "text": t.replace(" said ", " declared ")}) + "\n"
                              for i, t in _STORIES), encoding="utf-8")
    capsys.readouterr()
    blind, traced = tmp_path / "blind.json", tmp_path / "traced.json"
    assert main(["learn", str(copies), "-o", str(blind), *models]) == 0
    assert main(["learn", str(copies), "-o", str(traced), "--index", str(index), *models]) == 0
    assert ("declared", "said") not in {p[:2] for p in SpinnerProfile.load(blind).top_pairs()}
    assert SpinnerProfile.load(traced).n_documents == 2
    top = SpinnerProfile.load(traced).top_pairs(1)[0]
    assert top[:2] == ("declared", "said") and top[2] == pytest.approx(6.0)  # six occurrences, mass 1 each

    doc = tmp_path / "new.txt"
    doc.write_text("The company declared the new plant would open next year.", encoding="utf-8")
    capsys.readouterr()
    assert main(["check", str(doc), "--format", "json", "--profile", str(traced), *models]) == 0
    spans = json.loads(capsys.readouterr().out)["spans"]
    assert [(s["text"], s["suggestion"]) for s in spans if s["text"] == "declared"] == [("declared", "said")]
    assert main(["check", str(doc), "--format", "json", *models]) == 0
    assert not [s for s in json.loads(capsys.readouterr().out)["spans"] if s["suggestion"] == "said"]


def test_a_profiles_record_of_a_reading_lifts_its_confidence_up_to_p_spun(tiny_lm, tiny_channel):
    from dataclasses import replace

    from unspin.detect import SPAN_FEATURES
    from unspin.logistic import LogisticModel

    # A change model unsure of every change (P = 0.12), as the shipped one is of many right ones.
    unsure = replace(Calibration.uncalibrated(), span=replace(LogisticModel.zero(SPAN_FEATURES), intercept=-2.0))
    toks = list(sentences("The police stated the road was closed."))
    plain = Engine(tiny_lm, tiny_channel, unsure, consistency=None)
    (decoding,) = plain.decode_document(toks)
    (change,) = [c for c in decoding.changes if c.observed == "stated"]
    probs = plain.token_probabilities(decoding)

    def confidence(engine, p_spun):
        return engine.change_confidences([(change, Engine.span_features(change, probs, p_spun))])[0]

    record = SpinnerProfile({("stated",): {change.original.lower(): 9.0}}, key_counts={("stated",): 10})
    taught = Engine(tiny_lm, tiny_channel, unsure, consistency=None, profile=record)
    assert confidence(plain, 0.95) == pytest.approx(0.119, abs=0.001)
    assert confidence(taught, 0.95) == pytest.approx(0.9 * 0.95)
    # A genuine-looking text keeps its low confidences; a profile without counts (version 1) adds nothing.
    assert confidence(taught, 0.01) <= 0.01 + confidence(plain, 0.01)
    uncounted = Engine(tiny_lm, tiny_channel, unsure, consistency=None, profile=SpinnerProfile(record.pairs))
    assert confidence(uncounted, 0.95) == confidence(plain, 0.95)
