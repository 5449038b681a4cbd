"""Check and restore: the decoder run over a whole document, calibrated.

`Engine` holds the loaded language model, channel and calibration; `check()`
decodes every sentence, turns decoder statistics into a calibrated spin
probability, and reports each substitution as a `Span` with a confidence.
"""
from __future__ import annotations

import functools
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from .decode import Change, Decoder, DecoderConfig, SentenceDecoding
from .lexicon import Channel, curated_sources
from .logistic import logit, sigmoid
from .lm import MODELS_DIR, LanguageModel, ModelMissing, load_lm
from .text import FUNCTION_WORDS, Token, count_rewriter_marks, sentences

DEFAULT_CALIBRATION_PATH = MODELS_DIR / "calibration.json"
# Below this share of words the LM knows, a text is not treated as English.
MIN_ENGLISH_SHARE = 0.6
# English prose runs at 40-55% function words; French or German at a few percent of ours.
MIN_FUNCTION_WORD_SHARE = 0.10
DEFAULT_MIN_CONFIDENCE = 0.5

FEATURES = (
    "changes_per_100",
    "mass_per_100",
    "gain_per_word",
    "content_share",
    "logprob_per_word",
    "rewriter_marks_per_100",
    "oov_share",
    "flagged_per_100",
    "mean_token_p",
)

# Per-token evidence for P(this word was substituted): the decoder's local suspicion, how well the
# word fits its context beyond its own frequency, and whether a decoded change covers it.
TOKEN_FEATURES = (
    "suspicion_logit",
    "logprob",
    "unigram",
    "pmi",
    "ngram",
    "function_word",
    "capitalized",
    "log_candidates",
    "change_p_spun",
    "next_pmi",
    "best_alternative_gain",
    "next_ngram",
    "after_next_ngram",
)

# Per-change evidence for P(the suggestion is the original wording).
SPAN_FEATURES = (
    "posterior_logit",
    "lm_gain",
    "channel",
    "n_sources",
    "cosine",
    "zipf_gain",
    "token_p",
    "length_change",
    "glove_only",
)


@dataclass
class Span:
    """A suspected substitution: text[start:end], its likely original, and why."""

    start: int
    end: int
    text: str
    suggestion: str | None
    confidence: float
    evidence: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class CheckResult:
    spin_probability: float
    verdict: str
    spans: list[Span]
    restored: str
    language: str = "en"
    reliable: bool = True
    warnings: list[str] = field(default_factory=list)
    features: dict = field(default_factory=dict)
    n_words: int = 0

    def to_dict(self) -> dict:
        return {
            "spin_probability": round(self.spin_probability, 4),
            "verdict": self.verdict,
            "language": self.language,
            "reliable": self.reliable,
            "n_words": self.n_words,
            "spans": [s.to_dict() for s in self.spans],
            "restored": self.restored,
            "warnings": self.warnings,
            "features": {k: round(v, 4) for k, v in self.features.items()},
        }


@dataclass
class RestoreResult:
    text: str
    changes: list[Span]


@dataclass
class Calibration:
    """Logistic regression from document features to P(spun), and Platt scaling of span posteriors."""

    coef: list[float]
    intercept: float
    mean: list[float]
    scale: list[float]
    span_a: float = 1.0
    span_b: float = 0.0
    trained_on: str = ""
    # Token classifier (logistic regression over TOKEN_FEATURES); absent = no token flags.
    token_coef: list[float] | None = None
    token_intercept: float = 0.0
    token_mean: list[float] | None = None
    token_scale: list[float] | None = None
    token_threshold: float = 0.5  # flag a word at or above this P(substituted); chosen for token F1
    # Change confidence model (logistic regression over SPAN_FEATURES); absent = Platt scaling above.
    span_coef: list[float] | None = None
    span_intercept: float = 0.0
    span_mean: list[float] | None = None
    span_scale: list[float] | None = None

    def doc_probability(self, features: dict[str, float]) -> float:
        return _linear_probability([features[f] for f in FEATURES], self.coef, self.intercept, self.mean, self.scale)

    def token_probability(self, feats: Sequence[float]) -> float:
        if self.token_coef is None:
            return 0.0
        return _linear_probability(feats, self.token_coef, self.token_intercept, self.token_mean, self.token_scale)

    def span_confidence(self, posterior: float, feats: Sequence[float] | None = None) -> float:
        """P(a change's suggestion is the original), from its SPAN_FEATURES when a model is fitted."""
        if self.span_coef is not None and feats is not None:
            return _linear_probability(feats, self.span_coef, self.span_intercept, self.span_mean, self.span_scale)
        return sigmoid(self.span_a * logit(posterior) + self.span_b)

    @classmethod
    def load(cls, path: str | Path = DEFAULT_CALIBRATION_PATH) -> "Calibration":
        with open(path, encoding="utf-8") as f:
            return cls(**json.load(f))

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(asdict(self), indent=2) + "\n", encoding="utf-8")

    @classmethod
    def uncalibrated(cls) -> "Calibration":
        """A neutral starting point for fitting and for tests; never what `Engine.load` ships."""
        return cls(coef=[1.5, 1.0, 1.0, 0.5, 0.0, 0.5, 0.0, 0.0, 0.0], intercept=-2.0,
                   mean=[2.0, 2.0, 0.05, 0.05, -1.5, 0.0, 0.02, 0.0, 0.0],
                   scale=[2.0, 2.0, 0.05, 0.05, 0.5, 1.0, 0.05, 1.0, 1.0],
                   trained_on="uncalibrated prior")


def _linear_probability(x: Sequence[float], coef: Sequence[float], intercept: float,
                        mean: Sequence[float], scale: Sequence[float]) -> float:
    """A standardized logistic regression's P(y=1 | x)."""
    z = intercept
    for xi, c, m, s in zip(x, coef, mean, scale):
        z += c * (xi - m) / s
    return sigmoid(z)


class Engine:
    """The loaded models; create once (`Engine.load()`), then call `check`/`restore` many times."""

    def __init__(self, lm: LanguageModel, channel: Channel, calibration: Calibration,
                 config: DecoderConfig | None = None, thresholds: "VerdictThresholds | None" = None):
        self.lm = lm
        self.channel = channel
        self.calibration = calibration
        self.decoder = Decoder(lm, channel, config)
        self.thresholds = thresholds if thresholds is not None else DEFAULT_THRESHOLDS

    @classmethod
    def load(cls, lm_path: str | None = None, channel: Channel | None = None,
             calibration: Calibration | str | Path | None = None, config: DecoderConfig | None = None,
             thresholds: "VerdictThresholds | None" = None) -> "Engine":
        lm = load_lm(lm_path)
        channel = channel if channel is not None else Channel.load_default()
        if isinstance(calibration, (str, Path)):
            calibration = Calibration.load(calibration)
        elif calibration is None:
            if not DEFAULT_CALIBRATION_PATH.exists():
                raise ModelMissing(f"calibration not found at {DEFAULT_CALIBRATION_PATH}; "
                                   f"fit it with `unspin calibrate`")
            calibration = Calibration.load(DEFAULT_CALIBRATION_PATH)
        return cls(lm, channel, calibration, config, thresholds)

    # -- decoding ----------------------------------------------------------
    def decode(self, text: str) -> list[SentenceDecoding]:
        return [self.decoder.decode(toks) for toks in sentences(text)]

    def token_features(self, decoding: SentenceDecoding) -> list[list[float] | None]:
        """TOKEN_FEATURES for each token of a sentence (None for punctuation)."""
        covered = {}
        for c in decoding.changes:
            for i in range(c.first, c.last):
                covered[i] = 1 - c.p_identity
        out: list[list[float] | None] = []
        evidence = decoding.evidence
        for i, (tok, ev) in enumerate(zip(decoding.tokens, evidence)):
            if tok.kind == "punct":
                out.append(None)
                continue
            # A substituted word also makes the next word less predictable than its frequency says.
            nxt = evidence[i + 1] if i + 1 < len(evidence) else None
            out.append([
                logit(ev.suspicion), ev.logprob, ev.unigram, ev.logprob - ev.unigram, float(ev.ngram),
                float(tok.norm in FUNCTION_WORDS), float(i > 0 and tok.text[:1].isupper()),
                math.log1p(ev.n_candidates), covered.get(i, 0.0),
                (nxt.logprob - nxt.unigram) if nxt else 0.0, ev.best_gain,
                float(nxt.ngram) if nxt else 4.0,
                float(evidence[i + 2].ngram) if i + 2 < len(evidence) else 4.0,
            ])
        return out

    def token_probabilities(self, decoding: SentenceDecoding) -> list[float]:
        """P(substituted) for each token of a sentence (0 for punctuation)."""
        return [0.0 if f is None else self.calibration.token_probability(f) for f in self.token_features(decoding)]

    def features(self, text: str, decodings: Sequence[SentenceDecoding],
                 token_probs: Sequence[Sequence[float]] | None = None) -> dict[str, float]:
        if token_probs is None:
            token_probs = [self.token_probabilities(d) for d in decodings]
        word_probs = [p for d, ps in zip(decodings, token_probs) for t, p in zip(d.tokens, ps) if t.kind != "punct"]
        n_words = sum(d.n_words for d in decodings)
        words = [t for d in decodings for t in d.tokens if t.kind != "punct"]
        n = max(n_words, 1)
        changes = [c for d in decodings for c in d.changes]
        content = [t for t in words if t.kind == "word" and len(t.text) > 3]
        touched_content = sum(1 for c in changes if len(c.observed) > 3)
        oov = sum(1 for t in words if not self.lm.contains(t.norm))
        marks = count_rewriter_marks(text)
        return {
            "changes_per_100": 100.0 * sum(1 for c in changes if c.posterior >= 0.5) / n,
            "mass_per_100": 100.0 * sum(1 - c.p_identity for c in changes) / n,
            "gain_per_word": sum(max(0.0, c.lm_gain) for c in changes) / n,
            "content_share": touched_content / max(len(content), 1),
            "logprob_per_word": sum(d.observed_logprob for d in decodings) / n,
            "rewriter_marks_per_100": 100.0 * sum(marks.values()) / n,
            "oov_share": oov / n,
            "flagged_per_100": 100.0 * sum(1 for p in word_probs if p >= self.calibration.token_threshold) / n,
            "mean_token_p": sum(word_probs) / n,
        }

    def not_english(self, token_lists: Sequence[Sequence[Token]]) -> str | None:
        """Why a text does not look English (None when it does), judged before any decoding.

        The LM's vocabulary alone is a weak test (Wikipedia holds many French and German
        words); English prose is also dense in English function words.
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
    def check(self, text: str, min_confidence: float = DEFAULT_MIN_CONFIDENCE) -> CheckResult:
        """How likely `text` is spun, its suspicious spans, and the restored text."""
        token_lists = list(sentences(text))
        n_words = sum(1 for toks in token_lists for t in toks if t.kind != "punct")
        if n_words == 0:
            return CheckResult(0.0, NO_TEXT, [], text, language="none", reliable=False,
                               warnings=["the input holds no words"], n_words=0)
        foreign = self.not_english(token_lists)
        if foreign:
            return CheckResult(
                0.5, NOT_ENGLISH, [], text, language="non-English", reliable=False,
                warnings=[f"{foreign}; unspin models English only"], n_words=n_words)
        decodings = [self.decoder.decode(toks) for toks in token_lists]
        token_probs = [self.token_probabilities(d) for d in decodings]
        feats = self.features(text, decodings, token_probs)
        p = self.calibration.doc_probability(feats)
        spans = [self._span(c, self.span_features(c, ps)) for d, ps in zip(decodings, token_probs)
                 for c in d.changes]
        spans += [s for d, ps in zip(decodings, token_probs)
                  for s in flagged_spans(text, d, ps, self.calibration.token_threshold)]
        spans.sort(key=lambda s: s.start)
        restored = apply_spans(text, spans, min_confidence)
        warnings = []
        if n_words < 40:
            warnings.append("short text: the spin probability is less reliable under 40 words")
        return CheckResult(p, self.thresholds.label(p), spans, restored, reliable=n_words >= 40,
                           warnings=warnings, features=feats, n_words=n_words)

    def restore(self, text: str, min_confidence: float = DEFAULT_MIN_CONFIDENCE) -> RestoreResult:
        """The likely original wording: only changes at or above `min_confidence` are applied."""
        result = self.check(text, min_confidence)
        applied = [s for s in result.spans if s.suggestion is not None and s.confidence >= min_confidence]
        return RestoreResult(result.restored, applied)

    @staticmethod
    def span_features(change: Change, token_probs: Sequence[float]) -> list[float]:
        """SPAN_FEATURES of one decoded change."""
        thesauri = curated_sources(change.sources)
        return [
            logit(change.posterior), change.lm_gain, change.channel_score, float(len(thesauri)), change.cosine,
            change.zipf_gain, max(token_probs[change.first:change.last], default=0.0),
            float(abs(len(change.original.split()) - (change.last - change.first))), float(not thesauri),
        ]

    def _span(self, change: Change, feats: Sequence[float]) -> Span:
        token_p = feats[SPAN_FEATURES.index("token_p")]
        return Span(
            start=change.start, end=change.end, text=change.observed, suggestion=change.original,
            confidence=round(self.calibration.span_confidence(change.posterior, feats), 4),
            evidence={
                "p_spun": round(max(1 - change.p_identity, token_p), 4),
                "lm_gain_log10": round(change.lm_gain, 3),
                "channel_log10": round(change.channel_score, 3),
                "sources": list(change.sources),
                "alternatives": [{"text": t, "posterior": round(p, 4)} for t, p in change.alternatives],
            },
        )


def flagged_spans(text: str, decoding: SentenceDecoding, token_probs: Sequence[float],
                  threshold: float = 0.5) -> list[Span]:
    """Runs of words the token classifier flags that no decoded change covers: spun, original unknown."""
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
        if p >= self.spun:
            return SPUN
        if p >= self.likely:
            return LIKELY_SPUN
        if p >= self.possibly:
            return POSSIBLY_SPUN
        return NOT_SPUN


# Verdict labels; the last two are given without a probability.
SPUN, LIKELY_SPUN, POSSIBLY_SPUN, NOT_SPUN = "spun", "likely spun", "possibly spun", "not spun"
NO_TEXT, NOT_ENGLISH = "no text", "not English: cannot judge"
DEFAULT_THRESHOLDS = VerdictThresholds()


def verdict(p: float, thresholds: VerdictThresholds = DEFAULT_THRESHOLDS) -> str:
    """The verdict label of a spin probability."""
    return thresholds.label(p)


def apply_spans(text: str, spans: Iterable[Span], min_confidence: float) -> str:
    """`text` with each confident suggestion put in place (spans never overlap)."""
    out = text
    for span in sorted(spans, key=lambda s: -s.start):
        if span.suggestion is not None and span.confidence >= min_confidence:
            out = out[:span.start] + span.suggestion + out[span.end:]
    return out


@functools.lru_cache(maxsize=1)
def default_engine() -> Engine:
    return Engine.load()


def check(text: str, min_confidence: float = DEFAULT_MIN_CONFIDENCE) -> CheckResult:
    """Check one text with the shipped models (loaded once per process)."""
    return default_engine().check(text, min_confidence)


def restore(text: str, min_confidence: float = DEFAULT_MIN_CONFIDENCE) -> RestoreResult:
    """Restore one text with the shipped models (loaded once per process)."""
    return default_engine().restore(text, min_confidence)
