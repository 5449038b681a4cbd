"""Check and restore: the decoder run over a whole document, calibrated.

`Engine` holds the loaded language model, channel and calibration; `check()`
decodes every sentence, turns decoder statistics into a calibrated spin
probability, and reports each substitution as a `Span` with a confidence.

Four calibrated models (logistic, `unspin.logistic.LogisticModel`, or boosted trees,
`unspin.trees.BoostedTrees`) make the numbers, each over one named feature vector defined once
here: `TokenFeatures` (P(a word was substituted), from the sentence alone), `DocumentFeatures`
(P(spun) of a document, which reads those), then, knowing P(spun), `FLAG_FEATURES` (whether to
flag a word) and `SpanFeatures` (P(a suggestion is the original)): a change in a text that reads
as genuine is almost never right.

>>> engine = Engine.load()                                             # doctest: +SKIP
>>> result = engine.check("The minister mentioned the scheme was ready.")  # doctest: +SKIP
>>> result.verdict, [(s.text, s.suggestion) for s in result.spans]    # doctest: +SKIP
('likely spun', [('mentioned', 'said'), ('scheme', 'plan')])
"""
from __future__ import annotations

import functools
import json
import math
import multiprocessing
import os
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterable, Iterator, Mapping, NamedTuple, Sequence

from .decode import Change, Decoder, DecoderConfig, SentenceDecoding
from .fingerprint import word_zipf
from .inputs import clean_surrogates, reduce_input
from .lexicon import MAX_LEN as MAX_KEY_WORDS, Channel, curated_sources
from .lm import MODELS_DIR, CachedScores, LanguageModel, ModelMissing, load_lm
from .logistic import LogisticModel, feature_vector, logit, sigmoid
from .names import NameGazetteer
from .neural import NeuralScorer
from .profile import ProfilePrior, ProfileWeights, SpinnerProfile
from .rescore import NeuralRescorer, RescoredChange
from .report import render_html, render_text
from .text import FUNCTION_WORDS, Token, count_rewriter_marks, sentences, tokenize
from .trees import BoostedTrees

DEFAULT_CALIBRATION_PATH = MODELS_DIR / "calibration.json"
# The confidence model of changes the neural rescorer decided (`unspin calibrate --scorer neural`).
DEFAULT_NEURAL_CALIBRATION_PATH = MODELS_DIR / "neural_calibration.json"
SCORERS = ("ngram", "neural")
# Below this share of words the LM knows, a text is not treated as English.
MIN_ENGLISH_SHARE = 0.6
# English prose runs at 40-55% function words; French or German at a few percent of ours.
MIN_FUNCTION_WORD_SHARE = 0.10
DEFAULT_MIN_CONFIDENCE = 0.5
# Document consistency (see `Engine.decode_document`): the spun pass, which restoration reads, pools
# the evidence of a document's sentences (a spinner uses one dictionary; real ones replace a term alike
# throughout a page). On by default (bench/levers.md, session 12); `consistency=None` turns it off.
DEFAULT_CONSISTENCY: ProfileWeights | None = ProfileWeights()
# How a learned spinner profile weighs (a profile pools evidence over many documents, so it may
# weigh more than one document's). Measured with a profile learned from 100 documents: WER cut
# 3.7% -> 6.1% at 0.24 false edits per 100 genuine words (bench/core.md has the ablation).
PROFILE_WEIGHTS = ProfileWeights(same_key=2.0, same_original=0.5, cap=3.0)
# A text whose P(spun) reaches SPUN_PASS_AT is decoded again with a substitution prior this many
# log10 looser (`Engine.spun_pass`); measured in bench/core.md (lever ablation).
SPUN_PASS_AT = 0.5
DEFAULT_SPUN_PRIOR_BOOST = 2.0
# The spun pass also searches more candidates per observed span than the first pass (20): a rich key's
# cap ranks rare phrases ("made known") above common originals ("said" behind "mentioned"), and in a
# text already judged spun the extra candidates cannot move P(spun) (bench/levers.md, session 6).
SPUN_PASS_MAX_CANDIDATES = 40
# Texts sent to a `Engine.pipe` worker at a time.
DEFAULT_BATCH_SIZE = 8


# ---- the three named feature vectors: each list of names is defined here and nowhere else ----
class DocumentFeatures(NamedTuple):
    """Document evidence for P(spun); `Engine.features` gives it as a dict (see `FEATURES`).

    The rates (per word) say how spun a text reads; the same rate is stronger evidence in a long
    text than in a short one, as a count's z-score grows with the square root of its length, so the
    main rates also come multiplied by `length`. Without those a 50-word genuine paragraph with
    three odd words read as spun as a 500-word article with thirty (bench/levers.md).

    >>> FEATURES[:2]
    ('changes_per_100', 'mass_per_100')
    """

    changes_per_100: float
    mass_per_100: float
    gain_per_word: float
    content_share: float
    logprob_per_word: float
    # log(1 + the AI-rewriter marks found): one mark in a short paragraph must not weigh like ten.
    rewriter_marks: float
    oov_share: float
    flagged_per_100: float
    mean_token_p: float
    length: float  # sqrt(words) / 10: 1.0 at 100 words
    mass_x_length: float
    flagged_x_length: float
    token_p_x_length: float
    gain_x_length: float


class TokenFeatures(NamedTuple):
    """Per-token evidence for P(this word was substituted): the decoder's local suspicion, how
    well the word fits its context beyond its own frequency, and whether a decoded change covers it.

    >>> TokenFeatures._fields.index("change_p_spun")
    8
    """

    suspicion_logit: float
    logprob: float
    unigram: float
    pmi: float
    ngram: float
    function_word: float
    capitalized: float
    log_candidates: float
    change_p_spun: float
    next_pmi: float
    best_alternative_gain: float
    next_ngram: float
    after_next_ngram: float
    # log(1 + other occurrences of this content word in the document, at most 3): a genuine text
    # repeats its topic words, and so does a real spinner's output (it replaces a term alike
    # throughout the page); only a spinner that draws anew at each match makes repeats rare.
    repeats: float


class SpanFeatures(NamedTuple):
    """Per-change evidence for P(the suggestion is the original wording).

    >>> SpanFeatures._fields[0]
    'posterior_logit'
    """

    posterior_logit: float
    lm_gain: float
    channel: float
    n_sources: float
    cosine: float
    zipf_gain: float
    token_p: float
    length_change: float
    glove_only: float
    doc_logit: float  # logit of the document's P(spun): a genuine text's changes are all wrong
    # log(1 + how often the suggestion's rarest content word occurs as written elsewhere in the
    # document, at most 3): a spinner that draws anew at each match leaves the original standing
    # somewhere ("said" in one sentence, "stated" in the next); one that replaces a term alike
    # throughout the page, as real ones do, leaves it nowhere. Evidence either way.
    original_elsewhere: float
    # The highest P(substituted) of the words just before and after the span: spun words damage
    # their neighbours' context, so a change beside another suspect word reads differently.
    neighbor_token_p: float
    # How many other candidates had a posterior for the same span (at most 4), and the change's
    # posterior minus the best of theirs: a clear winner differs from one of several close ones.
    n_alternatives: float
    alternative_margin: float
    # log(1 + other changes in the document that read the same observed words as the same original,
    # at most 3), log(1 + those that read them as another original), and log(1 + other occurrences of
    # the observed content word, at most 3): a real spinner replaces every occurrence of a term
    # alike within a page, so a right reading tends to recur wherever its observed words do
    # (`document_readings`; bench/levers.md, session 11).
    agreeing_changes: float
    other_readings: float
    observed_repeats: float
    # log(1 + how often the suggestion's rarest content word would occur among the document's content
    # words at its usual frequency, wordfreq): beside `original_elsewhere`, a common original that
    # should stand in the text but nowhere does is what a spinner that replaces it throughout leaves.
    original_expected: float


# Evidence for flagging a word as substituted: the token model's own evidence (`TokenFeatures`),
# its P(substituted) and its document's P(spun), as logits (`flag_features`). A word that reads
# oddly is more likely spun in a text that is spun, and the evidence interacts (boosted trees
# flag better than a logistic model over the two probabilities: bench/levers.md, session 10).
FLAG_EXTRA_FEATURES = ("token_logit", "doc_logit")
# Words whose P(substituted) is below this are never flagged: the flag model is fitted on the
# others only (a quarter of all words, 2% of the substituted ones fall below it), and skipping
# them spares the trees most of a text.
FLAG_FLOOR = 0.02
# Under this many words a text's P(spun) rests on little evidence: `check` marks it unreliable and
# says so. Genuine held-out Wikinews paragraphs of 40-49 words read as spun 4.6% of the time, of
# 50-79 words 0.7% (bench/levers.md, session 13).
RELIABLE_WORDS = 50


FEATURES = DocumentFeatures._fields
TOKEN_FEATURES = TokenFeatures._fields
SPAN_FEATURES = SpanFeatures._fields
FLAG_FEATURES = TOKEN_FEATURES + FLAG_EXTRA_FEATURES
# The calibration file's model names and the feature names each must carry.
MODEL_FEATURES = {"document": FEATURES, "token": TOKEN_FEATURES, "span": SPAN_FEATURES, "flag": FLAG_FEATURES}


def flag_features(token: TokenFeatures, token_p: float, doc_p: float) -> dict[str, float]:
    """The flag model's named evidence for one word (`FLAG_FEATURES`).

    >>> evidence = flag_features(TokenFeatures(*[0.0] * len(TOKEN_FEATURES)), 0.5, 0.9)
    >>> list(evidence)[-2:], round(evidence["doc_logit"], 3)
    (['token_logit', 'doc_logit'], 2.197)
    """
    return {**token._asdict(), "token_logit": logit(token_p), "doc_logit": logit(doc_p)}


def text_words(features: Mapping[str, float]) -> int:
    """The word count a document's `DocumentFeatures` carry (`length` is sqrt(words) / 10).

    >>> text_words({"length": 0.7})
    49
    """
    return round((10.0 * features["length"]) ** 2)


def length_shift(shifts: Sequence[tuple[int, float]], features: Mapping[str, float]) -> float:
    """The log-odds shift of P(spun) for a text of this length: that of the last band in `shifts`
    ((min words, shift), shortest first) whose minimum the text reaches; 0.0 before the first.

    The document model states P(spun) for one share of spun texts; the calibration chooses, for each
    length band, the largest share at which at most 2% of its genuine texts read as spun
    (`unspin.build.calibrate.choose_length_shifts`): a long genuine article almost never reads as
    spun and a long spun one rarely reads genuine, while a short paragraph rests on a few words.

    >>> length_shift([(0, -0.5), (200, 1.4)], {"length": 0.7}), length_shift([(0, -0.5), (200, 1.4)], {"length": 2.0})
    (-0.5, 1.4)
    """
    words = text_words(features) if shifts else 0
    out = 0.0
    for min_words, shift in shifts:
        if words >= min_words:
            out = shift
    return out


class NeuralSpanFeatures(NamedTuple):
    """Per-change evidence for P(the suggestion is the original) when the neural rescorer decided.

    >>> NeuralSpanFeatures._fields[:2]
    ('posterior_logit', 'decoder_posterior_logit')
    """

    posterior_logit: float          # the rescorer's posterior of the chosen candidate
    decoder_posterior_logit: float  # the 4-gram decoder's posterior of that candidate
    neural_gain: float              # neural log10 score of the candidate over the observed words'
    channel: float
    changed_choice: float           # 1 when the rescorer chose another original than the decoder (or added one)
    token_p: float
    doc_logit: float                # logit of the document's P(spun)


NEURAL_SPAN_FEATURES = NeuralSpanFeatures._fields


def neural_span_features(change: RescoredChange, token_p: float, doc_probability: float) -> NeuralSpanFeatures:
    """`NeuralSpanFeatures` of one rescored change (`token_p`: the highest P(substituted) of its words;
    `doc_probability`: its document's P(spun)).

    >>> neural_span_features(change, 0.9, 0.97).neural_gain   # doctest: +SKIP
    2.4
    """
    return NeuralSpanFeatures(
        posterior_logit=logit(change.posterior),
        decoder_posterior_logit=logit(change.decoder_posterior),
        neural_gain=change.neural_gain,
        channel=change.channel_score,
        changed_choice=float(change.changed_choice),
        token_p=token_p,
        doc_logit=logit(doc_probability),
    )


def load_neural_span_model(path: str | Path = DEFAULT_NEURAL_CALIBRATION_PATH) -> LogisticModel:
    """The confidence model of neural-rescored changes, refused when its features differ from the code's.

    >>> load_neural_span_model().features == NEURAL_SPAN_FEATURES   # doctest: +SKIP
    True
    """
    if not Path(path).exists():
        raise ModelMissing(f"neural confidence model not found at {path}; fit it with "
                           f"`unspin calibrate --scorer neural`")
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    model = LogisticModel.from_dict(data["span"])
    if model.features != NEURAL_SPAN_FEATURES:
        raise IncompatibleCalibration(f"{path}: the neural span model's features {list(model.features)} differ "
                                      f"from the code's {list(NEURAL_SPAN_FEATURES)}")
    return model


@dataclass
class DocumentView:
    """How the engine judged a decoded document (`Engine.judge`).

    >>> DocumentView([], [], {}, 0.03).spin_probability
    0.03
    """

    decodings: list[SentenceDecoding]  # what restoration works from: the spun pass's when it ran
    token_probs: list[list[float]]     # P(substituted) per token of those decodings (token model)
    features: dict[str, float]         # the document features of the first pass
    spin_probability: float
    # `document_word_counts` of the document (both passes decode the same tokens).
    word_counts: dict[str, int] = field(default_factory=dict)
    # `TokenFeatures` per token of `decodings` (None for punctuation): what `token_probs` and the flags read.
    token_features: list[list[TokenFeatures | None]] = field(default_factory=list)


@dataclass
class Span:
    """A suspected substitution: text[start:end], its likely original, and why.

    `suggestion` is None for a word that looks substituted but whose original the channel does not
    know; `confidence` is then P(substituted), else P(the suggestion is the original).

    `suspect`: whether the span reads as a substitution, what a report shows: its words' P(substituted)
    reaches the calibrated flag threshold, or its suggestion is confident (at the check's
    `min_confidence`). A decoded change that is neither stays in the result, so that a lower
    `min_confidence` can still apply it, but it is not called suspicious: a weak guess on a word
    that reads as genuine.

    >>> Span(4, 13, "mentioned", "said", 0.91).to_dict()["suggestion"]
    'said'
    """

    start: int
    end: int
    text: str
    suggestion: str | None
    confidence: float
    evidence: dict = field(default_factory=dict)
    suspect: bool = True

    def to_dict(self) -> dict:
        """The JSON form of the span.

        >>> Span(0, 3, "odd", None, 0.7).to_dict()
        {'start': 0, 'end': 3, 'text': 'odd', 'suggestion': None, 'confidence': 0.7, 'evidence': {}, 'suspect': True}
        """
        return asdict(self)


@dataclass
class CheckResult:
    """What `Engine.check` found: the spin probability and verdict, the suspicious spans, and the
    restored text.

    `spin_probability` is None when the text cannot be judged (not English). `text` is the text the
    span offsets index: the input itself, or with `input_format == "html"` the main text extracted
    from the HTML page (then `to_dict()` includes it too).

    >>> r = CheckResult(0.97, "spun", [Span(4, 13, "mentioned", "said", 0.91)], "The said it.",
    ...                 text="The mentioned it.")
    >>> r.to_dict()["spin_probability"], r.to_dict()["input_format"]
    (0.97, 'text')
    >>> print(r.to_text(source="example").splitlines()[1])
    spin probability: 0.97  verdict: spun  (0 words, 1 suspicious spans)
    """

    spin_probability: float | None
    verdict: str
    spans: list[Span]
    restored: str
    language: str = "en"
    reliable: bool = True
    warnings: list[str] = field(default_factory=list)
    features: dict = field(default_factory=dict)
    n_words: int = 0
    input_format: str = "text"  # "text", or "html" when `text` is the main text of an HTML page
    text: str = ""              # the checked text: every span offset indexes it

    @property
    def suspicious_spans(self) -> list[Span]:
        """The spans that read as substitutions (`Span.suspect`): what a report marks.

        >>> CheckResult(0.9, "spun", [Span(0, 3, "Odd", "Old", 0.8), Span(4, 7, "one", "won", 0.1, suspect=False)],
        ...             "Old one.").suspicious_spans[0].text
        'Odd'
        """
        return [s for s in self.spans if s.suspect]

    def to_dict(self) -> dict:
        """The JSON form (the CLI's `--format json` and JSONL rows); `text` only for HTML input.

        >>> foreign = CheckResult(None, NOT_ENGLISH, [], "Der Plan.", language="non-English")
        >>> foreign.to_dict()["spin_probability"] is None
        True
        """
        d = {
            "spin_probability": None if self.spin_probability is None else round(self.spin_probability, 4),
            "verdict": self.verdict,
            "language": self.language,
            "reliable": self.reliable,
            "n_words": self.n_words,
            "input_format": self.input_format,
        }
        if self.input_format == "html":
            d["text"] = self.text
        d.update({
            "spans": [s.to_dict() for s in self.spans],
            "restored": self.restored,
            "warnings": self.warnings,
            "features": {k: round(v, 4) for k, v in self.features.items()},
        })
        return d

    def to_text(self, source: str = "text", min_confidence: float = DEFAULT_MIN_CONFIDENCE) -> str:
        """A terminal report (`unspin check`'s default format); `source` names the input in its title;
        suggestions under `min_confidence` are shown as "original unknown".

        >>> CheckResult(0.1, "not spun", [], "Fine.", text="Fine.").to_text().splitlines()[0]
        'unspin check: text'
        """
        return render_text(self, source, self.text, min_confidence)

    def to_html(self, source: str = "text", thresholds: "VerdictThresholds | None" = None,
                min_confidence: float = DEFAULT_MIN_CONFIDENCE) -> str:
        """A self-contained HTML page (`unspin.report.render_html`, the web page's report): the verdict
        on a gauge with the verdict `thresholds`, confident originals shown above their spans, the
        restored text and the table of changes.

        >>> 'class="us-orig">Old<' in CheckResult(0.9, "spun", [Span(0, 3, "Odd", "Old", 0.8)], "Old.",
        ...                                        text="Odd.").to_html()
        True
        """
        return render_html(self, source, self.text, thresholds=thresholds or DEFAULT_THRESHOLDS,
                           min_confidence=min_confidence)


@dataclass
class RestoreResult:
    """The likely original wording (`text`) and the changes applied to make it; `input_format` says
    whether the input was reduced from HTML (then offsets index its extracted main text).

    >>> RestoreResult("The minister said it.", []).text
    'The minister said it.'
    """

    text: str
    changes: list[Span]
    input_format: str = "text"


class IncompatibleCalibration(ModelMissing, ValueError):
    """A calibration file that this code cannot use: an old format, or feature names (or their order)
    other than the code's. Refit it with `unspin calibrate`. The CLI reports it as a missing model.

    >>> Calibration.from_dict({"coef": [0.5] * 9, "intercept": 0.0})   # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    unspin.detect.IncompatibleCalibration: calibration: not a calibration with named features (an old format?); ...
    """


@dataclass
class Calibration:
    """The calibrated models: document features -> P(spun); token features -> P(substituted), with
    the flag threshold; span features -> P(the suggestion is right), or, without a span model,
    Platt scaling of the decoder's posterior.

    >>> cal = Calibration.uncalibrated()
    >>> cal.document.features == FEATURES, cal.span_confidence(0.5)
    (True, 0.5)
    """

    document: LogisticModel
    token: LogisticModel | None = None   # absent: no token flags
    # Change confidence: boosted trees since session 6 (a logistic model is still read); absent:
    # Platt scaling of the posterior (span_a, span_b).
    span: LogisticModel | BoostedTrees | None = None
    span_a: float = 1.0
    span_b: float = 0.0
    # A word counts as flagged, for the document features, at or above this P(substituted).
    token_threshold: float = 0.5
    # Flags shown to the user: P(substituted | the word's evidence, the document's P(spun)), boosted
    # trees since session 10; absent: the token model alone. flag_threshold is chosen for token F1.
    flag: LogisticModel | BoostedTrees | None = None
    flag_threshold: float = 0.5
    trained_on: str = ""
    # (min words, log-odds shift) per length band, shortest first: the share of spun texts P(spun)
    # is stated for, by length (`length_shift`); empty: one share for every length.
    length_shifts: tuple[tuple[int, float], ...] = ()

    def __post_init__(self):
        for name, expected in MODEL_FEATURES.items():
            model = getattr(self, name)
            if model is not None and model.features != expected:
                raise IncompatibleCalibration(
                    f"the {name} model's features {list(model.features)} differ from the code's {list(expected)}")

    def doc_probability(self, features: Mapping[str, float]) -> float:
        """P(spun) of a document from its `DocumentFeatures` (a dict, as `Engine.features` gives).

        >>> round(Calibration.uncalibrated().doc_probability(dict.fromkeys(FEATURES, 0.0)), 3)
        0.002
        """
        p = self.document.probability(features)
        shift = length_shift(self.length_shifts, features)
        return sigmoid(logit(p) + shift) if shift else p

    def token_probability(self, feats: TokenFeatures | Mapping[str, float]) -> float:
        """P(a word was substituted) from its `TokenFeatures`; 0 without a token model.

        >>> Calibration.uncalibrated().token_probability(TokenFeatures(*[0.0] * len(TOKEN_FEATURES)))
        0.0
        """
        if self.token is None:
            return 0.0
        return self.token.probability(feats)

    def flag_probabilities(self, token_feats: Sequence[Sequence[TokenFeatures | None]],
                           token_probs: Sequence[Sequence[float]], doc_p: float) -> list[list[float]]:
        """P(a word was substituted) for each token of each sentence of a document, knowing its
        P(spun) (0 for punctuation, whose features are None, and below `FLAG_FLOOR`); the token
        model's own probabilities when no flag model is fitted. One call per document: the trees
        see all its words at once.

        >>> Calibration.uncalibrated().flag_probabilities([[None, TokenFeatures(*[0.0] * 14)]], [[0.0, 0.7]], 0.01)
        [[0.0, 0.7]]
        """
        if self.flag is None:
            return [[0.0 if f is None else tp for f, tp in zip(fs, ps)] for fs, ps in zip(token_feats, token_probs)]
        out = [[0.0] * len(ps) for ps in token_probs]
        at = [(s, k) for s, (fs, ps) in enumerate(zip(token_feats, token_probs))
              for k, (f, tp) in enumerate(zip(fs, ps)) if f is not None and tp >= FLAG_FLOOR]
        if not at:
            return out
        doc_logit = logit(doc_p)
        if isinstance(self.flag, BoostedTrees):
            # Rows in FLAG_FEATURES order (the token features, then the two logits): the model's own
            # feature names are checked against FLAG_FEATURES when it is loaded.
            rows = [[*token_feats[s][k], logit(token_probs[s][k]), doc_logit] for s, k in at]
            probs = [sigmoid(float(z)) for z in self.flag.raw_scores(rows)]
        else:
            probs = [self.flag.probability(flag_features(token_feats[s][k], token_probs[s][k], doc_p)) for s, k in at]
        for (s, k), q in zip(at, probs):
            out[s][k] = q
        return out

    def span_confidence(self, posterior: float, feats: SpanFeatures | Mapping[str, float] | None = None) -> float:
        """P(a change's suggestion is the original), from its `SpanFeatures` when a model is fitted.

        >>> Calibration.uncalibrated().span_confidence(0.8)   # no span model: identity Platt scaling
        0.8
        """
        return self.span_confidences([posterior], None if feats is None else [feats])[0]

    def span_confidences(self, posteriors: Sequence[float],
                         feats: Sequence[SpanFeatures | Mapping[str, float]] | None = None) -> list[float]:
        """`span_confidence` of many changes at once (a tree model evaluates them together).

        >>> Calibration.uncalibrated().span_confidences([0.8, 0.3])
        [0.8, 0.3]
        """
        if self.span is not None and feats is not None:
            if isinstance(self.span, BoostedTrees):
                confidences = self.span.probabilities(feats)
            else:
                confidences = [self.span.probability(f) for f in feats]
            # A change can be right only in a spun text: its confidence never exceeds the text's
            # calibrated P(spun). The change model alone can say more where a genuine paragraph holds
            # one very plausible swap ("photos" -> "pictures" at 0.55 in a paragraph at P(spun) 0.07).
            return [min(c, sigmoid(feature_vector(("doc_logit",), f)[0])) for c, f in zip(confidences, feats)]
        return [sigmoid(self.span_a * logit(p) + self.span_b) for p in posteriors]

    # -- persistence ---------------------------------------------------------
    def to_dict(self) -> dict:
        """The JSON form: each model with its feature names.

        >>> sorted(Calibration.uncalibrated().to_dict())
        ['document', 'flag', 'flag_threshold', 'span', 'span_platt', 'token', 'token_threshold', 'trained_on']
        """
        return {
            "trained_on": self.trained_on,
            "document": self.document.to_dict(),
            "token": None if self.token is None else self.token.to_dict(),
            "token_threshold": self.token_threshold,
            "flag": None if self.flag is None else self.flag.to_dict(),
            "flag_threshold": self.flag_threshold,
            "span": None if self.span is None else self.span.to_dict(),
            "span_platt": {"a": self.span_a, "b": self.span_b},
            # Only when there are bands: a file from before them reads and writes back as it was.
            **({"length_shifts": [list(band) for band in self.length_shifts]} if self.length_shifts else {}),
        }

    @classmethod
    def from_dict(cls, data: Mapping, source: str = "calibration") -> "Calibration":
        """Read `to_dict()`'s form; refuse (`IncompatibleCalibration`) other feature names.

        >>> Calibration.from_dict(Calibration.uncalibrated().to_dict()) == Calibration.uncalibrated()
        True
        """
        if not isinstance(data, Mapping) or "document" not in data:
            raise IncompatibleCalibration(
                f"{source}: not a calibration with named features (an old format?); "
                f"refit it with `unspin calibrate`")
        models = {}
        try:
            for name, expected in MODEL_FEATURES.items():
                d = data.get(name)
                kind = BoostedTrees if isinstance(d, Mapping) and d.get("kind") == "boosted_trees" else LogisticModel
                models[name] = None if d is None else kind.from_dict(d, expected, name=f"the {name} model")
        except ValueError as err:
            raise IncompatibleCalibration(f"{source}: {err}; refit it with `unspin calibrate`") from None
        platt = data.get("span_platt") or {}
        return cls(**models, span_a=platt.get("a", 1.0), span_b=platt.get("b", 0.0),
                   token_threshold=data.get("token_threshold", 0.5),
                   flag_threshold=data.get("flag_threshold", data.get("token_threshold", 0.5)),
                   trained_on=data.get("trained_on", ""),
                   length_shifts=tuple((int(w), float(x)) for w, x in data.get("length_shifts") or ()))

    @classmethod
    def load(cls, path: str | Path = DEFAULT_CALIBRATION_PATH) -> "Calibration":
        """Read a calibration JSON file (`unspin calibrate` writes them).

        >>> Calibration.load().token_threshold       # doctest: +SKIP
        0.25
        """
        with open(path, encoding="utf-8") as f:
            return cls.from_dict(json.load(f), source=str(path))

    def save(self, path: str | Path) -> None:
        """Write the calibration as JSON (read back by `load`).

        >>> Calibration.uncalibrated().save("/tmp/calibration.json")   # doctest: +SKIP
        """
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")

    @classmethod
    def uncalibrated(cls) -> "Calibration":
        """A neutral starting point for fitting and for tests; never what `Engine.load` ships.

        >>> Calibration.uncalibrated().token is None
        True
        """
        # (coefficient, mean, scale) by feature; the others weigh nothing.
        prior = {"changes_per_100": (1.5, 2.0, 2.0), "mass_per_100": (1.0, 2.0, 2.0),
                 "gain_per_word": (1.0, 0.05, 0.05), "content_share": (0.5, 0.05, 0.05),
                 "logprob_per_word": (0.0, -1.5, 0.5), "rewriter_marks": (0.5, 0.0, 1.0),
                 "oov_share": (0.0, 0.02, 0.05)}
        coef, mean, scale = zip(*(prior.get(name, (0.0, 0.0, 1.0)) for name in FEATURES))
        document = LogisticModel(FEATURES, coef=coef, intercept=-2.0, mean=mean, scale=scale)
        return cls(document=document, trained_on="uncalibrated prior")


class Engine:
    """The loaded models; create once (`Engine.load()`), then call `check`/`restore` many times,
    or `pipe` over a stream of texts.

    >>> engine = Engine.load()                                   # doctest: +SKIP
    >>> engine.check("The minister mentioned the plan.").spans   # doctest: +SKIP
    [Span(start=13, end=22, text='mentioned', suggestion='said', ...)]
    """

    def __init__(self, lm: LanguageModel, channel: Channel, calibration: Calibration,
                 config: DecoderConfig | None = None, thresholds: "VerdictThresholds | None" = None,
                 consistency: ProfileWeights | None = DEFAULT_CONSISTENCY, profile: SpinnerProfile | None = None,
                 rescorer: NeuralRescorer | None = None, neural_span: LogisticModel | None = None,
                 time_budget_s: float | None = None, names: NameGazetteer | None = None,
                 spun_prior_boost: float | None = DEFAULT_SPUN_PRIOR_BOOST):
        self.lm = lm
        self.channel = channel
        self.calibration = calibration
        self.config = config
        self.names = names
        # With a spun pass, both decoders score the same lattice windows: share the scores.
        scoring_lm = CachedScores(lm) if spun_prior_boost else lm
        self.decoder = Decoder(scoring_lm, channel, config, names)
        # The spun pass (`spun_pass`): a decoder whose substitution prior is `spun_prior_boost` log10
        # looser, for texts that read as spun (None: one pass only).
        self.spun_prior_boost = spun_prior_boost
        self.spun_pass_at = SPUN_PASS_AT
        self.spun_decoder = None
        if spun_prior_boost:
            base = self.decoder.config
            looser = replace(base.weights, log_p_sub=base.weights.log_p_sub + spun_prior_boost)
            self.spun_decoder = Decoder(scoring_lm, channel, replace(
                base, weights=looser, max_candidates=max(base.max_candidates, SPUN_PASS_MAX_CANDIDATES)), names,
                ranking=self.decoder)
        self.thresholds = thresholds if thresholds is not None else DEFAULT_THRESHOLDS
        # Document consistency: a second decoding pass with the evidence of the other sentences
        # (None: each sentence alone). `profile`: a learned spinner profile added to that evidence.
        self.consistency = consistency
        self.profile = profile
        # The neural path: a rescorer re-decides the decoder's uncertain spans in full context, and
        # `neural_span` gives the confidence of what it decided.
        if rescorer is not None and neural_span is None:
            raise ValueError("a neural rescorer needs its confidence model (load_neural_span_model())")
        self.rescorer = rescorer
        self.neural_span = neural_span
        # Seconds one `check` may spend (None: no limit); past it, the rest of the text is left
        # unjudged and the result's warnings say so.
        if time_budget_s is not None and not time_budget_s > 0:
            raise ValueError(f"time_budget_s must be positive (or None), got {time_budget_s}")
        self.time_budget_s = time_budget_s

    @classmethod
    def load(cls, lm_path: str | None = None, channel: Channel | None = None,
             calibration: Calibration | str | Path | None = None, config: DecoderConfig | None = None,
             thresholds: "VerdictThresholds | None" = None,
             consistency: ProfileWeights | None = DEFAULT_CONSISTENCY,
             profile: SpinnerProfile | str | Path | None = None, scorer: str = "ngram",
             neural_options: Mapping | None = None, time_budget_s: float | None = None,
             names: NameGazetteer | None = None,
             spun_prior_boost: float | None = DEFAULT_SPUN_PRIOR_BOOST) -> "Engine":
        """The shipped models (with the shipped name gazetteer), or the LM file / channel /
        calibration / gazetteer given instead.

        >>> engine = Engine.load(thresholds=VerdictThresholds(spun=0.95))   # doctest: +SKIP
        """
        lm = load_lm(lm_path)
        channel = channel if channel is not None else Channel.load_default()
        if isinstance(calibration, (str, Path)):
            calibration = Calibration.load(calibration)
        elif calibration is None:
            if not DEFAULT_CALIBRATION_PATH.exists():
                raise ModelMissing(f"calibration not found at {DEFAULT_CALIBRATION_PATH}; "
                                   f"fit it with `unspin calibrate`")
            calibration = Calibration.load(DEFAULT_CALIBRATION_PATH)
        if isinstance(profile, (str, Path)):
            profile = SpinnerProfile.load(profile)
        if scorer not in SCORERS:
            raise ValueError(f"unknown scorer {scorer!r}; choose one of {', '.join(SCORERS)}")
        rescorer = neural_span = None
        if scorer == "neural":
            neural_span = load_neural_span_model()
            rescorer = NeuralRescorer(NeuralScorer.load(**dict(neural_options or {})))
        names = names if names is not None else NameGazetteer.load_default()
        return cls(lm, channel, calibration, config, thresholds, consistency, profile, rescorer, neural_span,
                   time_budget_s, names, spun_prior_boost)

    def __reduce__(self):
        """Pickled for `pipe` workers that do not fork: by its collaborators (each of which pickles
        itself compactly), never by its caches."""
        return (Engine, (self.lm, self.channel, self.calibration, self.config, self.thresholds,
                         self.consistency, self.profile, self.rescorer, self.neural_span, self.time_budget_s,
                         self.names, self.spun_prior_boost))

    # -- decoding ----------------------------------------------------------
    def learn_profile(self, texts: Iterable[str], iterations: int = 2,
                      progress: Callable[[int], None] | None = None,
                      sources: Callable[[str], Sequence] | None = None) -> SpinnerProfile:
        """A spinner profile learned from many texts of one source, with no original text: decode
        them all, pool the posteriors of every change, and decode again with that evidence as the
        prior (hard EM over the decoder's posteriors, the channel's thesauri as the start).

        With `sources` (as for `check`: a text's `trace.SourceRestoration`s, e.g. from an index of
        originals), a text whose source is found is aligned to it instead: each substitution the
        source explains is an exact pair (mass 1 per occurrence), whether or not a thesaurus
        lists it; the other texts are decoded as above.

        >>> profile = engine.learn_profile(spun_texts)      # doctest: +SKIP
        >>> profile.top_pairs(3)                            # doctest: +SKIP
        [('stated', 'said', 41.2), ('mentioned', 'said', 30.9), ('extra', 'more', 12.0)]
        """
        if iterations < 1:
            raise ValueError("iterations must be at least 1")
        texts = [reduce_input(clean_surrogates(t)[0])[0] for t in texts]
        exact = SpinnerProfile(n_documents=len(texts))
        to_decode = []
        for text in texts:
            pairs = aligned_pairs(text, sources(text)) if sources is not None else []
            for key, original in pairs:
                exact.add(key, original, 1.0)
            if not pairs:
                to_decode.append(list(sentences(text)))
        saved = self.profile
        norms = [[t.norm for t in toks] for text in texts for toks in sentences(text)]
        exact.count_keys(norms)
        profile = exact if len(exact) else None
        try:
            for it in range(iterations):
                self.profile = profile
                learned = SpinnerProfile(n_documents=len(texts))
                for i, token_lists in enumerate(to_decode):
                    if self.not_english(token_lists) is None:
                        for d in self.decode_document(token_lists, pool=True):
                            learned.add_decoding(d)
                    if progress is not None:  # traced texts count as done at the start of a pass
                        progress(it * len(texts) + len(texts) - len(to_decode) + i + 1)
                # Every key counted over all the texts, whichever way its pairs were found.
                profile = SpinnerProfile(learned.merged(exact).pairs, len(texts))
                profile.count_keys(norms)
        finally:
            self.profile = saved
        return profile

    def _touches(self, prior: ProfilePrior, decoding: SentenceDecoding, min_bonus: float = 0.05) -> bool:
        """Whether a prior gives a candidate of some word of this sentence a noticeable bonus."""
        for tok, ev in zip(decoding.tokens, decoding.evidence):
            if ev.n_candidates and any(prior.bonus((tok.norm,), o) >= min_bonus
                                       for o in self.decoder.candidate_originals((tok.norm,))):
                return True
        return any(prior.bonus(tuple(t.norm for t in decoding.tokens[c.first:c.last]), c.original.lower())
                   >= min_bonus for c in decoding.changes)

    def decode_document(self, token_lists: Sequence[Sequence[Token]],
                        deadline: float | None = None, decoder: Decoder | None = None,
                        pool: bool = False) -> list[SentenceDecoding]:
        """Decode every sentence; then, with `pool` and `consistency`, decode again each sentence for
        which the other sentences (and the learned `profile`) hold evidence about its spinner's
        substitutions. With a `deadline` (a `time.monotonic()` value), sentences after it are left
        out: the result then covers only the first sentences. `decoder`: another than the engine's
        own (the spun pass)."""
        decoder = decoder or self.decoder
        # A learned profile pools many documents, so its evidence weighs more than one document's.
        weights = PROFILE_WEIGHTS if self.profile else self.consistency
        external = self.profile.prior(weights) if self.profile else None
        decodings = []
        for toks in token_lists:
            if deadline is not None and time.monotonic() > deadline:
                break
            decodings.append(decoder.decode(toks, external))
        if not pool or self.consistency is None or len(decodings) < 2:
            return decodings
        own = [SpinnerProfile.from_decodings([d]) for d in decodings]
        total = SpinnerProfile.from_decodings(decodings)
        if self.profile:
            total = total.merged(self.profile)
        out = []
        for toks, d, mine in zip(token_lists, decodings, own):
            prior = total.merged(mine, sign=-1.0).prior(weights)
            # Only sentences where some observed key has pooled evidence are worth a second pass.
            if prior and self._touches(prior, d):
                d = decoder.decode(toks, prior)
            out.append(d)
        return out

    def judge(self, text: str, token_lists: Sequence[Sequence[Token]], decodings: list[SentenceDecoding],
              deadline: float | None = None) -> "DocumentView":
        """P(spun) of a decoded document, then the decodings restoration works from (`spun_pass`) with
        their token probabilities. P(spun) comes from the first pass's view, the one it was calibrated
        on. `Engine.check` and the calibration of the neural path both judge a document this way.

        >>> view = engine.judge(text, token_lists, engine.decode_document(token_lists))   # doctest: +SKIP
        >>> round(view.spin_probability, 2), len(view.decodings) == len(token_lists)    # doctest: +SKIP
        (0.97, True)
        """
        word_counts = document_word_counts(decodings)
        token_feats = [self.token_features(d, word_counts) for d in decodings]
        token_probs = [self.token_probabilities_of(fs) for fs in token_feats]
        feats = self.features(text, decodings, token_probs)
        p = self.calibration.doc_probability(feats)
        final = self.spun_pass(token_lists, decodings, p, deadline)
        if final is not decodings:
            token_feats = [self.token_features(d, word_counts) for d in final]
            token_probs = [self.token_probabilities_of(fs) for fs in token_feats]
        return DocumentView(final, token_probs, feats, p, word_counts, token_feats)

    def spun_pass(self, token_lists: Sequence[Sequence[Token]], decodings: list[SentenceDecoding],
                  spin_probability: float, deadline: float | None = None) -> list[SentenceDecoding]:
        """The decodings restoration works from: in a text that reads as spun (P(spun) at or above
        `spun_pass_at`), every sentence decoded again with a looser substitution prior (a spun text
        has a substitution every few words, a genuine one none); otherwise `decodings` as they are.
        Sentences past the `deadline` keep their first decoding."""
        if self.spun_decoder is None or spin_probability < self.spun_pass_at:
            return decodings
        # The whole document at once: document consistency pools over its sentences in this pass,
        # the one restoration reads (the first pass stays as the document model was calibrated).
        redone = self.decode_document(token_lists[:len(decodings)], deadline, decoder=self.spun_decoder, pool=True)
        return redone + decodings[len(redone):]

    def decode(self, text: str) -> list[SentenceDecoding]:
        """The decoder's result for each sentence of `text`.

        >>> [d.n_words for d in engine.decode("It rained. We stayed in.")]   # doctest: +SKIP
        [2, 3]
        """
        return [self.decoder.decode(toks) for toks in sentences(text)]

    def token_features(self, decoding: SentenceDecoding,
                       word_counts: Mapping[str, int] | None = None) -> list[TokenFeatures | None]:
        """`TokenFeatures` for each token of a sentence (None for punctuation). `word_counts`: the
        document's `document_word_counts` (None: the sentence's own).

        >>> engine.token_features(engine.decode("It rained.")[0])[-1] is None   # doctest: +SKIP
        True
        """
        if word_counts is None:
            word_counts = document_word_counts([decoding])
        covered = {}
        for c in decoding.changes:
            for i in range(c.first, c.last):
                covered[i] = 1 - c.p_identity
        out: list[TokenFeatures | None] = []
        evidence = decoding.evidence
        for i, (tok, ev) in enumerate(zip(decoding.tokens, evidence)):
            if tok.kind == "punct":
                out.append(None)
                continue
            # A substituted word also makes the next word less predictable than its frequency says.
            nxt = evidence[i + 1] if i + 1 < len(evidence) else None
            out.append(TokenFeatures(
                suspicion_logit=logit(ev.suspicion),
                logprob=ev.logprob,
                unigram=ev.unigram,
                pmi=ev.logprob - ev.unigram,
                ngram=float(ev.ngram),
                function_word=float(tok.norm in FUNCTION_WORDS),
                capitalized=float(i > 0 and tok.text[:1].isupper()),
                log_candidates=math.log1p(ev.n_candidates),
                change_p_spun=covered.get(i, 0.0),
                next_pmi=(nxt.logprob - nxt.unigram) if nxt else 0.0,
                best_alternative_gain=ev.best_gain,
                next_ngram=float(nxt.ngram) if nxt else 4.0,
                after_next_ngram=float(evidence[i + 2].ngram) if i + 2 < len(evidence) else 4.0,
                repeats=math.log1p(min(word_counts.get(tok.norm, 1) - 1, 3)) if tok.norm in word_counts else 0.0,
            ))
        return out

    def token_probabilities(self, decoding: SentenceDecoding,
                            word_counts: Mapping[str, int] | None = None) -> list[float]:
        """P(substituted) for each token of a sentence (0 for punctuation); `word_counts` as for
        `token_features`.

        >>> engine.token_probabilities(engine.decode("It rained.")[0])[-1]   # doctest: +SKIP
        0.0
        """
        return self.token_probabilities_of(self.token_features(decoding, word_counts))

    def token_probabilities_of(self, token_feats: Sequence[TokenFeatures | None]) -> list[float]:
        """P(substituted) for each of a sentence's `token_features` (0 for punctuation).

        >>> engine.token_probabilities_of([None])   # doctest: +SKIP
        [0.0]
        """
        return [0.0 if f is None else self.calibration.token_probability(f) for f in token_feats]

    def features(self, text: str, decodings: Sequence[SentenceDecoding],
                 token_probs: Sequence[Sequence[float]] | None = None) -> dict[str, float]:
        """The `DocumentFeatures` of a decoded text, as a dict (in `FEATURES` order).

        >>> text = "The minister mentioned the plan."
        >>> engine.features(text, engine.decode(text))["changes_per_100"]   # doctest: +SKIP
        20.0
        """
        if token_probs is None:
            counts = document_word_counts(decodings)
            token_probs = [self.token_probabilities(d, counts) for d in decodings]
        word_probs = [p for d, ps in zip(decodings, token_probs) for t, p in zip(d.tokens, ps) if t.kind != "punct"]
        n_words = sum(d.n_words for d in decodings)
        words = [t for d in decodings for t in d.tokens if t.kind != "punct"]
        n = max(n_words, 1)
        changes = [c for d in decodings for c in d.changes]
        content = [t for t in words if t.kind == "word" and len(t.text) > 3]
        touched_content = sum(1 for c in changes if len(c.observed) > 3)
        oov = sum(1 for t in words if not self.lm.contains(t.norm))
        marks = count_rewriter_marks(text)
        length = math.sqrt(n_words) / 10.0
        mass_per_100 = 100.0 * sum(1 - c.p_identity for c in changes) / n
        gain_per_word = sum(max(0.0, c.lm_gain) for c in changes) / n
        flagged_per_100 = 100.0 * sum(1 for p in word_probs if p >= self.calibration.token_threshold) / n
        mean_token_p = sum(word_probs) / n
        return DocumentFeatures(
            changes_per_100=100.0 * sum(1 for c in changes if c.posterior >= 0.5) / n,
            mass_per_100=mass_per_100,
            gain_per_word=gain_per_word,
            content_share=touched_content / max(len(content), 1),
            logprob_per_word=sum(d.observed_logprob for d in decodings) / n,
            rewriter_marks=math.log1p(sum(marks.values())),
            oov_share=oov / n,
            flagged_per_100=flagged_per_100,
            mean_token_p=mean_token_p,
            length=length,
            mass_x_length=mass_per_100 * length,
            flagged_x_length=flagged_per_100 * length,
            token_p_x_length=mean_token_p * length,
            gain_x_length=gain_per_word * length,
        )._asdict()

    def not_english(self, token_lists: Sequence[Sequence[Token]]) -> str | None:
        """Why a text does not look English (None when it does), judged before any decoding.

        The LM's vocabulary alone is a weak test (Wikipedia holds many French and German
        words); English prose is also dense in English function words.

        >>> engine.not_english(list(sentences("Der Plan war fertig.")))   # doctest: +SKIP
        'only 25% of the words are known English words'
        """
        words = [t for toks in token_lists for t in toks if t.kind == "word"]
        if not words:
            return None
        known = sum(1 for t in words if self.lm.contains(t.norm)) / len(words)
        if known < MIN_ENGLISH_SHARE:
            return f"only {known:.0%} of the words are known English words"
        function = sum(1 for t in words if t.norm in FUNCTION_WORDS) / len(words)
        if len(words) >= 12 and function < MIN_FUNCTION_WORD_SHARE:
            return f"only {function:.0%} of the words are English function words (the, of, and, ...)"
        return None

    # -- public operations -------------------------------------------------
    def check(self, text: str, min_confidence: float = DEFAULT_MIN_CONFIDENCE, *,
              html: bool | None = None, sources: Callable[[str], Sequence] | None = None) -> CheckResult:
        """How likely `text` is spun, its suspicious spans, and the restored text.

        `text` is plain text; HTML is reduced to its main text first when `html` is True, or when
        `html` is None and `text` is clearly an HTML document (`result.input_format` says which,
        and `result.text` is the text the span offsets index). html=False never reduces.

        `sources` (optional) maps the checked text to what known sources explain of it (objects
        with `doc_id`, `segments` and `replacements`, e.g. `unspin.trace.source_restorations` on an
        index): there the source's wording is the suggestion (`with_source_spans`), the decoder's
        spans cover the rest, and each span's `evidence["origin"]` says which.

        >>> r = engine.check("The minister mentioned the plan.")           # doctest: +SKIP
        >>> r.input_format, r.restored                                      # doctest: +SKIP
        ('text', 'The minister said the plan.')
        >>> engine.check("<html><body><p>Hi.</p></body></html>").input_format   # doctest: +SKIP
        'html'
        """
        if not isinstance(text, str):
            raise TypeError(f"check() expects the text as a str, got {type(text).__name__}")
        # Lone surrogates (from JSON escapes or surrogateescape decoding) cannot be encoded; each
        # becomes U+FFFD, one character for one, so that every offset still indexes the input.
        text, n_replaced = clean_surrogates(text)
        text, input_format = reduce_input(text, html)
        result = self._check(text, min_confidence)
        result.input_format, result.text = input_format, text
        if sources is not None and result.spin_probability is not None:
            result.spans = with_source_spans(text, result.spans, sources(text))
            result.restored = apply_spans(text, result.spans, min_confidence)
        if n_replaced:
            result.warnings.append(f"{n_replaced:,} lone surrogate character{'s' * (n_replaced != 1)} (not valid "
                                   f"Unicode) replaced by U+FFFD")
        return result

    def _check(self, text: str, min_confidence: float) -> CheckResult:
        token_lists = list(sentences(text))
        n_words = sum(1 for toks in token_lists for t in toks if t.kind != "punct")
        if n_words == 0:
            return CheckResult(0.0, NO_TEXT, [], text, language="none", reliable=False,
                               warnings=["the input holds no words"], n_words=0)
        foreign = self.not_english(token_lists)
        if foreign:
            return CheckResult(
                None, NOT_ENGLISH, [], text, language="non-English", reliable=False,
                warnings=[f"{foreign}; unspin models English only"], n_words=n_words)
        deadline = time.monotonic() + self.time_budget_s if self.time_budget_s else None
        decodings = self.decode_document(token_lists, deadline)
        warnings = []
        checked_text = text
        if len(decodings) < len(token_lists):
            # Out of time: judge the part decoded so far, and say so.
            decodings = decodings or [self.decoder.decode(token_lists[0])]
            checked_words = sum(d.n_words for d in decodings)
            checked_text = text[:decodings[-1].tokens[-1].end] if decodings[-1].tokens else text
            warnings.append(f"time budget of {self.time_budget_s:g} s reached: judged the first "
                            f"{checked_words:,} of {n_words:,} words; the rest was not checked")
        view = self.judge(checked_text, token_lists, decodings, deadline)
        decodings, token_probs, feats, p = view.decodings, view.token_probs, view.features, view.spin_probability
        if self.rescorer is not None:
            rescored = []
            for d in decodings:
                over = deadline is not None and time.monotonic() > deadline
                rescored.append(d if over else self.rescorer.rescore(text, d, self.decoder))
            if deadline is not None and time.monotonic() > deadline:
                warnings.append("time budget reached during neural rescoring: later sentences keep the 4-gram's choices")
            decodings = rescored
        # What the user sees knows the verdict: in a text that reads as genuine, odd words are rarely
        # spun and changes are rarely right (flag and span models are fitted knowing P(spun)).
        flag_probs = self.calibration.flag_probabilities(view.token_features, token_probs, p)
        readings = document_readings(decodings)
        decided = [(c, self.span_features(c, ps, p, view.word_counts, readings), fps)
                   for d, ps, fps in zip(decodings, token_probs, flag_probs) for c in d.changes]
        confidences = self.change_confidences([(c, f) for c, f, _ in decided])
        spans = [self._span(c, fps, confidence, min_confidence) for (c, _, fps), confidence in zip(decided, confidences)]
        spans += [s for d, fps in zip(decodings, flag_probs)
                  for s in flagged_spans(text, d, fps, self.calibration.flag_threshold)]
        spans.sort(key=lambda s: s.start)
        restored = apply_spans(text, spans, min_confidence)
        if n_words < RELIABLE_WORDS:
            warnings.append(f"short text: the spin probability is less reliable under {RELIABLE_WORDS} words")
        return CheckResult(p, self.thresholds.label(p), spans, restored,
                           reliable=n_words >= RELIABLE_WORDS and checked_text is text,
                           warnings=warnings, features=feats, n_words=n_words)

    def restore(self, text: str, min_confidence: float = DEFAULT_MIN_CONFIDENCE, *,
                html: bool | None = None, sources: Callable[[str], Sequence] | None = None) -> RestoreResult:
        """The likely original wording: only changes at or above `min_confidence` are applied.
        Input as for `check` (plain text; HTML reduced when html=True or clearly HTML).

        >>> engine.restore("The minister mentioned the plan.").text   # doctest: +SKIP
        'The minister said the plan.'
        """
        result = self.check(text, min_confidence, html=html, sources=sources)
        applied = [s for s in result.spans if s.suggestion is not None and s.confidence >= min_confidence]
        return RestoreResult(result.restored, applied, result.input_format)

    def pipe(self, texts: Iterable[str], n_process: int = 1, batch_size: int = DEFAULT_BATCH_SIZE,
             min_confidence: float = DEFAULT_MIN_CONFIDENCE, *, html: bool | None = None) -> Iterator[CheckResult]:
        """`check` each text of a stream, yielding the results in input order (like spaCy's `nlp.pipe`).

        With n_process > 1 (-1: one per CPU), texts go in batches of `batch_size` to a pool of worker
        processes, each holding its own copy of this engine (inherited on fork, else unpickled once).

        >>> for result in engine.pipe(texts, n_process=4):   # doctest: +SKIP
        ...     print(result.verdict)
        """
        if n_process == -1:
            n_process = os.cpu_count() or 1
        if n_process < 1 or batch_size < 1:
            raise ValueError(f"n_process must be at least 1 (or -1) and batch_size at least 1; "
                             f"got n_process={n_process}, batch_size={batch_size}")
        if n_process == 1:
            for text in texts:
                yield self.check(text, min_confidence, html=html)
            return
        work = functools.partial(_pipe_check, min_confidence=min_confidence, html=html)
        with _pool_context().Pool(n_process, initializer=_pipe_init, initargs=(self,)) as pool:
            yield from pool.imap(work, texts, chunksize=batch_size)

    @staticmethod
    def span_features(change: Change, token_probs: Sequence[float], doc_probability: float,
                      word_counts: Mapping[str, int] | None = None,
                      readings: Mapping[tuple[str, ...], Mapping[str, int]] | None = None) -> SpanFeatures:
        """`SpanFeatures` of one decoded change (`token_probs`: its sentence's P(substituted) per token
        from the token model; `doc_probability`: its document's P(spun); `word_counts` and `readings`:
        the document's `document_word_counts` and `document_readings`, None when the document is
        unknown; `readings` counts this change too).

        >>> Engine.span_features(change, token_probs, 0.97).token_p   # doctest: +SKIP
        0.93
        """
        thesauri = curated_sources(change.sources)
        read = (readings or {}).get(change_key(change), {})
        same = read.get(change.original.lower(), 1) - 1
        return SpanFeatures(
            posterior_logit=logit(change.posterior),
            lm_gain=change.lm_gain,
            channel=change.channel_score,
            n_sources=float(len(thesauri)),
            cosine=change.cosine,
            zipf_gain=change.zipf_gain,
            token_p=max(token_probs[change.first:change.last], default=0.0),
            length_change=float(abs(len(change.original.split()) - (change.last - change.first))),
            glove_only=float(not thesauri),
            doc_logit=logit(doc_probability),
            original_elsewhere=original_elsewhere(change.original, word_counts or {}),
            neighbor_token_p=max((token_probs[i] for i in (change.first - 1, change.last)
                                  if 0 <= i < len(token_probs)), default=0.0),
            n_alternatives=float(len(change.alternatives)),
            alternative_margin=change.posterior - max((p for _, p in change.alternatives), default=0.0),
            agreeing_changes=math.log1p(min(same, 3)),
            other_readings=math.log1p(min(sum(read.values()) - same - 1, 3)) if read else 0.0,
            observed_repeats=math.log1p(max(min(content_count(change.observed, word_counts or {}) - 1, 3), 0)),
            original_expected=original_expected(change.original, word_counts or {}),
        )

    def change_confidences(self, changes: Sequence[tuple[Change, SpanFeatures]]) -> list[float]:
        """P(suggestion is the original) of each decoded change with its `SpanFeatures`: the neural
        confidence model for changes the neural rescorer decided, the calibration's change model (all
        of a document's changes at once) for the others.

        >>> engine.change_confidences([(change, Engine.span_features(change, token_probs, 0.97))])   # doctest: +SKIP
        [0.91]
        """
        out: list[float | None] = [None] * len(changes)
        fast = []
        for k, (change, feats) in enumerate(changes):
            if isinstance(change, RescoredChange) and self.neural_span is not None:
                out[k] = self.neural_span.probability(neural_span_features(change, feats.token_p,
                                                                           sigmoid(feats.doc_logit)))
            else:
                fast.append(k)
        batch = self.calibration.span_confidences([changes[k][0].posterior for k in fast],
                                                  [changes[k][1] for k in fast])
        for k, confidence in zip(fast, batch):
            out[k] = confidence
        if self.profile is not None:
            # The models never saw a profile. Its record of how often this spinner's words stood for
            # this original (`SpinnerProfile.reading_share`) is a probability of its own, capped like
            # every confidence by the document's P(spun): taken where it says more (bench/levers.md,
            # session 12: the traced profile's WER cut at 0.5 16% -> 21%, no false edit on genuine text).
            for k, (change, feats) in enumerate(changes):
                share = self.profile.reading_share(change_key(change), change.original.lower())
                if share:
                    out[k] = max(out[k], share * sigmoid(feats.doc_logit))
        return out

    def _span(self, change: Change, flag_probs: Sequence[float], confidence: float, min_confidence: float) -> Span:
        # Calibrated: the flag model reads the decoder's own posterior among its features.
        p_substituted = max(flag_probs[change.first:change.last], default=0.0)
        return Span(
            start=change.start, end=change.end, text=change.observed, suggestion=change.original,
            confidence=round(confidence, 4),
            # Every decoded change is kept (a lower --min-confidence may apply it), but one whose words
            # read as genuine and whose suggestion is weak is not called suspicious: such guesses were
            # most of the words wrongly marked in spun texts (bench/levers.md, session 13).
            suspect=p_substituted >= self.calibration.flag_threshold or confidence >= min_confidence,
            evidence={
                "p_spun": round(p_substituted, 4),
                "lm_gain_log10": round(change.lm_gain, 3),
                "channel_log10": round(change.channel_score, 3),
                "sources": list(change.sources),
                "alternatives": [{"text": t, "posterior": round(p, 4)} for t, p in change.alternatives],
                "scorer": "neural" if isinstance(change, RescoredChange) else "ngram",
            },
        )


def _pool_context():
    """Where `pipe` gets its worker processes: the platform's default start method."""
    return multiprocessing.get_context()


_PIPE_ENGINE: Engine | None = None  # the engine of a `pipe` worker process


def _pipe_init(engine: Engine) -> None:
    global _PIPE_ENGINE
    _PIPE_ENGINE = engine


def _pipe_check(text: str, min_confidence: float, html: bool | None) -> CheckResult:
    return _PIPE_ENGINE.check(text, min_confidence, html=html)


def document_word_counts(decodings: Sequence[SentenceDecoding]) -> dict[str, int]:
    """How often each content word (not a function word; normalized) occurs in a document.

    >>> from unspin.text import tokenize
    >>> document_word_counts([SentenceDecoding(tokenize("The rhino saw the rhino."), [], 0.0, 0.0, 5)])
    {'rhino': 2, 'saw': 1}
    """
    counts: dict[str, int] = {}
    for d in decodings:
        for tok in d.tokens:
            if tok.kind == "word" and tok.norm not in FUNCTION_WORDS:
                counts[tok.norm] = counts.get(tok.norm, 0) + 1
    return counts


def content_words(words: str) -> list[str]:
    """The content words of `words`, normalized (what `document_word_counts` counts).

    >>> content_words("The Front lines of")
    ['front', 'lines']
    """
    return [w.norm for w in tokenize(words) if w.kind == "word" and w.norm not in FUNCTION_WORDS]


def content_count(words: str, word_counts: Mapping[str, int]) -> int:
    """How often the rarest content word of `words` occurs in the document (`document_word_counts`);
    0 for function words only.

    >>> content_count("made known", {"made": 4, "known": 2}), content_count("of", {"of": 5})
    (2, 0)
    """
    return min((word_counts.get(w, 0) for w in content_words(words)), default=0)


def original_elsewhere(original: str, word_counts: Mapping[str, int]) -> float:
    """log(1 + occurrences, at most 3) in the document of the rarest content word of a suggested
    original (`content_count`); 0 for an original of function words only.

    >>> original_elsewhere("Said", {"said": 2, "plan": 1})
    1.0986
    >>> original_elsewhere("made known", {"made": 4}), original_elsewhere("of", {})
    (0.0, 0.0)
    """
    return round(math.log1p(min(content_count(original, word_counts), 3)), 4)


def original_expected(original: str, word_counts: Mapping[str, int]) -> float:
    """log(1 + the expected occurrences of the rarest content word of a suggested original among the
    document's content words (`document_word_counts`), at its wordfreq frequency); 0 for function words.

    >>> original_expected("said", {"minister": 400, "plan": 600}) > original_expected("averred", {"plan": 1000})
    True
    >>> original_expected("of", {"plan": 1000})
    0.0
    """
    content = content_words(original)
    if not content:
        return 0.0
    zipf = min(word_zipf(w) for w in content)
    return round(math.log1p(sum(word_counts.values()) * 10.0 ** (zipf - 9.0)), 4)


def change_key(change: Change) -> tuple[str, ...]:
    """The observed words of a change, normalized (`document_readings`' key).

    >>> from unspin.decode import Change
    >>> change_key(Change(0, 2, 0, 11, "Entrance traces", "Front lines", 0.9, 0.1, 2.0, -1.0, (), 0.5, 0.0, ()))
    ('entrance', 'traces')
    """
    return tuple(t.norm for t in tokenize(change.observed) if t.kind != "punct")


def document_readings(decodings: Sequence[SentenceDecoding]) -> dict[tuple[str, ...], dict[str, int]]:
    """How often the document's changes read each observed key (`change_key`) as each original
    (lowercased): the evidence `SpanFeatures.agreeing_changes` reads.

    >>> from unspin.decode import Change
    >>> c = lambda start, original: Change(0, 1, start, start + 6, "stated", original, 0.9, 0.1, 2.0, -1.0,
    ...                                    (), 0.5, 0.0, ())
    >>> document_readings([SentenceDecoding([], [c(0, "said"), c(9, "Said"), c(20, "noted")], 0.0, 0.0, 3)])
    {('stated',): {'said': 2, 'noted': 1}}
    """
    readings: dict[tuple[str, ...], dict[str, int]] = {}
    for d in decodings:
        for c in d.changes:
            counts = readings.setdefault(change_key(c), {})
            counts[c.original.lower()] = counts.get(c.original.lower(), 0) + 1
    return readings


def flagged_spans(text: str, decoding: SentenceDecoding, token_probs: Sequence[float],
                  threshold: float = 0.5) -> list[Span]:
    """Runs of words the token classifier flags that no decoded change covers: spun, original unknown.

    >>> [s.text for s in flagged_spans(text, decoding, [0.0, 0.9, 0.8, 0.0])]   # doctest: +SKIP
    ['odd weird']
    """
    covered = {i for c in decoding.changes for i in range(c.first, c.last)}
    spans: list[Span] = []
    run: list[int] = []
    for i in range(len(decoding.tokens) + 1):
        flagged = (i < len(decoding.tokens) and i not in covered and token_probs[i] >= threshold)
        if flagged:
            run.append(i)
            continue
        if run:
            toks = [decoding.tokens[j] for j in run]
            p = max(token_probs[j] for j in run)
            spans.append(Span(toks[0].start, toks[-1].end, text[toks[0].start:toks[-1].end], None,
                              round(p, 4), {"p_spun": round(p, 4), "note": "no likely original in the channel"}))
            run = []
    return spans


@dataclass(frozen=True)
class VerdictThresholds:
    """Where the spin probability turns into each verdict label (each bound inclusive).

    >>> VerdictThresholds().label(0.95), VerdictThresholds().label(0.6), VerdictThresholds().label(0.1)
    ('spun', 'likely spun', 'not spun')
    """

    spun: float = 0.9      # at or above: "spun"
    likely: float = 0.5    # at or above: "likely spun"
    possibly: float = 0.2  # at or above: "possibly spun"; below: "not spun"

    def __post_init__(self):
        if not 0.0 <= self.possibly <= self.likely <= self.spun <= 1.0:
            raise ValueError(f"verdict thresholds must satisfy 0 <= possibly <= likely <= spun <= 1, got "
                             f"possibly={self.possibly}, likely={self.likely}, spun={self.spun}")

    def label(self, p: float) -> str:
        """The verdict label of a spin probability.

        >>> VerdictThresholds(spun=0.95).label(0.92)
        'likely spun'
        """
        if p >= self.spun:
            return SPUN
        if p >= self.likely:
            return LIKELY_SPUN
        if p >= self.possibly:
            return POSSIBLY_SPUN
        return NOT_SPUN


# Verdict labels. NO_TEXT comes with probability 0; NOT_ENGLISH with none (spin_probability None).
SPUN, LIKELY_SPUN, POSSIBLY_SPUN, NOT_SPUN = "spun", "likely spun", "possibly spun", "not spun"
NO_TEXT, NOT_ENGLISH = "no text", "not English: cannot judge"
DEFAULT_THRESHOLDS = VerdictThresholds()


def verdict(p: float, thresholds: VerdictThresholds = DEFAULT_THRESHOLDS) -> str:
    """The verdict label of a spin probability.

    >>> verdict(0.3)
    'possibly spun'
    """
    return thresholds.label(p)


def with_source_spans(text: str, spans: Sequence[Span], restorations: Iterable) -> list[Span]:
    """The decoder's `spans` merged with what known sources explain of `text`: inside a source's
    segments the decoder's spans are dropped (the source shows what the words were) and each of
    the source's replacements (start, end, wording) becomes a span suggesting the source's
    wording with confidence 1.0; the other spans stay. `evidence["origin"]` is "source" (with
    `evidence["source"]`, the document id) or "decoder".

    >>> class R: doc_id, segments, replacements = "a1", [(0, 20)], [(4, 13, "said")]
    >>> [(s.text, s.suggestion, s.evidence["origin"]) for s in with_source_spans(
    ...     "The mentioned it.  A vast plan.", [Span(4, 13, "mentioned", "told", 0.6), Span(22, 26, "vast", "big", 0.7)], [R])]
    [('mentioned', 'said', 'source'), ('vast', 'big', 'decoder')]
    """
    restorations = list(restorations)
    covered = [(a, b) for r in restorations for a, b in r.segments]
    out = [replace(s, evidence={**s.evidence, "origin": "decoder"}) for s in spans
           if not any(a < s.end and s.start < b for a, b in covered)]
    for r in restorations:
        out += [Span(a, b, text[a:b], wording, 1.0, {"origin": "source", "source": r.doc_id, "p_spun": 1.0})
                for a, b, wording in r.replacements]
    return sorted(out, key=lambda s: s.start)


def aligned_pairs(text: str, restorations: Sequence) -> list[tuple[tuple[str, ...], str]]:
    """(observed key, original) for each substitution that sources explain in `text` (each
    `trace.SourceRestoration`'s replacements), normalized as the channel keys them. A replacement
    of as many words as it replaces is taken word by word: at a quarter of words spun, neighbouring
    substitutions are common ("despatched extra" for "sent more"), and the single-word pairs are
    the ones that recur in other texts of the spinner. Other parts longer than a channel key are
    left out.

    >>> from unspin.trace import SourceRestoration
    >>> aligned_pairs("The minister stated it.", [SourceRestoration("a1", [(0, 23)], [(13, 19, "said")])])
    [(('stated',), 'said')]
    >>> aligned_pairs("It was despatched extra fast.", [SourceRestoration("a1", [(0, 29)], [(7, 23, "sent more")])])
    [(('despatched',), 'sent'), (('extra',), 'more')]
    """
    out = []
    for restoration in restorations:
        for start, end, wording in restoration.replacements:
            key = tuple(t.norm for t in tokenize(text[start:end]) if t.kind != "punct")
            original = tuple(t.norm for t in tokenize(wording) if t.kind != "punct")
            if len(key) > 1 and len(key) == len(original):
                out += [((k,), o) for k, o in zip(key, original) if k != o]
            elif 0 < len(key) <= MAX_KEY_WORDS and 0 < len(original) <= MAX_KEY_WORDS and key != original:
                out.append((key, " ".join(original)))
    return out


def apply_spans(text: str, spans: Iterable[Span], min_confidence: float) -> str:
    """`text` with each confident suggestion put in place (spans never overlap).

    >>> apply_spans("It was big.", [Span(7, 10, "big", "large", 0.8)], min_confidence=0.5)
    'It was large.'
    """
    out = text
    for span in sorted(spans, key=lambda s: -s.start):
        if span.suggestion is not None and span.confidence >= min_confidence:
            out = out[:span.start] + span.suggestion + out[span.end:]
    return out


@functools.lru_cache(maxsize=1)
def default_engine() -> Engine:
    """The shipped models, loaded on first use and kept for the process.

    >>> default_engine() is default_engine()   # doctest: +SKIP
    True
    """
    return Engine.load()


def check(text: str, min_confidence: float = DEFAULT_MIN_CONFIDENCE, *, html: bool | None = None) -> CheckResult:
    """Check one text with the shipped models (loaded once per process); see `Engine.check`.

    >>> check("The minister mentioned the plan.").spin_probability   # doctest: +SKIP
    0.93
    >>> check(page_source, html=True).input_format                  # doctest: +SKIP
    'html'
    """
    return default_engine().check(text, min_confidence, html=html)


def restore(text: str, min_confidence: float = DEFAULT_MIN_CONFIDENCE, *, html: bool | None = None) -> RestoreResult:
    """Restore one text with the shipped models (loaded once per process); see `Engine.restore`.

    >>> restore("The minister mentioned the plan.").text   # doctest: +SKIP
    'The minister said the plan.'
    """
    return default_engine().restore(text, min_confidence, html=html)
