"""The benchmark's metrics: pure functions of labels, scores, texts and spans.

The harness (`unspin.build.bench_core`) computes every reported figure with these functions,
and tests/test_bench_metrics.py checks them on hand-made cases.

  detection    `roc_auc`, `binary_metrics`, `detection_metrics` (P/R/F1 at a threshold)
  localization `span_token_mask`, `token_counts`, `token_prf` (flagged vs changed word tokens)
  restoration  `word_edits`, `wer`, `relative_cut`
  false edits  `false_edits`, `false_edits_per_100`, `per_100`
"""
from __future__ import annotations

import math
from typing import Any, Iterable, Sequence

from rapidfuzz.distance import Levenshtein

from ..text import overlaps, tokenize


def roc_auc(labels: Sequence[int], scores: Sequence[float]) -> float:
    """Area under the ROC curve (Mann-Whitney, ties count 1/2); NaN when a class is missing."""
    pos = [s for y, s in zip(labels, scores) if y]
    neg = [s for y, s in zip(labels, scores) if not y]
    if not pos or not neg:
        return float("nan")
    pairs = sorted([(s, 1) for s in pos] + [(s, 0) for s in neg])
    # Average ranks with ties.
    rank_sum_pos = 0.0
    i = 0
    n = len(pairs)
    while i < n:
        j = i
        while j + 1 < n and pairs[j + 1][0] == pairs[i][0]:
            j += 1
        avg_rank = (i + j) / 2 + 1
        rank_sum_pos += avg_rank * sum(1 for k in range(i, j + 1) if pairs[k][1])
        i = j + 1
    u = rank_sum_pos - len(pos) * (len(pos) + 1) / 2
    return u / (len(pos) * len(neg))


def prf(tp: int, fp: int, fn: int) -> dict[str, float]:
    """Precision, recall, F1 from counts (0 where undefined)."""
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return {"precision": p, "recall": r, "f1": f, "tp": tp, "fp": fp, "fn": fn}


def binary_metrics(labels: Sequence[int], scores: Sequence[float], threshold: float = 0.5) -> dict[str, float]:
    """P/R/F1 and accuracy of `score >= threshold` as the positive decision."""
    tp = sum(1 for y, s in zip(labels, scores) if y and s >= threshold)
    fp = sum(1 for y, s in zip(labels, scores) if not y and s >= threshold)
    fn = sum(1 for y, s in zip(labels, scores) if y and s < threshold)
    tn = len(labels) - tp - fp - fn
    out = prf(tp, fp, fn)
    out["accuracy"] = (tp + tn) / len(labels) if labels else 0.0
    out["tn"] = tn
    out["threshold"] = threshold
    return out


def detection_metrics(labels: Sequence[int], scores: Sequence[float], threshold: float = 0.5) -> dict:
    """AUC, P/R/F1 at `threshold`, and the mean score of each class."""
    out = {"n": len(labels), "n_spun": int(sum(labels)), "auc": roc_auc(labels, scores)}
    out.update(binary_metrics(labels, scores, threshold))
    pos = [s for y, s in zip(labels, scores) if y]
    neg = [s for y, s in zip(labels, scores) if not y]
    out["mean_p_spun"] = sum(pos) / len(pos) if pos else float("nan")
    out["mean_p_genuine"] = sum(neg) / len(neg) if neg else float("nan")
    # The share of genuine texts called spun: what a newsroom sees as false alarms.
    out["genuine_flagged"] = sum(1 for s in neg if s >= threshold) / len(neg) if neg else float("nan")
    return out


def word_tokens(text: str) -> list[str]:
    """Lowercased word-level tokens (words, numbers, clitics; no punctuation) for WER."""
    return [t.norm for t in tokenize(text) if t.kind != "punct"]


def n_words(text: str) -> int:
    """Number of word-level tokens (as `word_tokens` counts them)."""
    return sum(1 for t in tokenize(text) if t.kind != "punct")


def edit_distance(a: Sequence[str], b: Sequence[str]) -> int:
    """Levenshtein distance between two token lists (insertions, deletions, substitutions cost 1)."""
    return int(Levenshtein.distance(list(a), list(b)))


def rate(count: float, total: float) -> float:
    """count / total, 0 for an empty total (a pooled rate over texts: edits per reference word)."""
    return count / max(total, 1)


def per_100(count: float, total: float) -> float:
    """count per 100 of total (0 for an empty total)."""
    return 100.0 * count / max(total, 1)


def word_edits(hypothesis: str, reference: str) -> tuple[int, int]:
    """(word edits turning `hypothesis` into `reference`, words of `reference`): the two sums of a
    pooled WER over several texts."""
    ref = word_tokens(reference)
    return edit_distance(word_tokens(hypothesis), ref), len(ref)


def wer(hypothesis: str, reference: str) -> float:
    """Word error rate of `hypothesis` against `reference` (lowercased word tokens)."""
    edits, words = word_edits(hypothesis, reference)
    if not words:
        return 0.0 if not edits else 1.0
    return edits / words


def relative_cut(before: float, after: float) -> float:
    """Share of the error removed: (before - after) / before (negative when worse)."""
    if before == 0:
        return 0.0 if after == 0 else float("-inf")
    return (before - after) / before


def false_edits(genuine: str, restored: str) -> tuple[int, int]:
    """(words changed by restoring a genuine text, words of it)."""
    return word_edits(restored, genuine)


def false_edits_per_100(genuine: str, restored: str) -> float:
    """Words changed by restoring a genuine text, per 100 words of it (0 for an empty text)."""
    edits, words = false_edits(genuine, restored)
    return per_100(edits, words) if words else 0.0


def span_token_mask(text: str, spans: Iterable[Any], min_confidence: float | None = None) -> list[bool]:
    """For each word token of `tokenize(text)`: is it overlapped by any span (optionally confident)?"""
    ivs = sorted((s.start, s.end) for s in spans
                 if min_confidence is None or getattr(s, "confidence", 1.0) >= min_confidence)
    words = [t for t in tokenize(text) if t.is_word]
    mask = []
    for t in words:
        mask.append(any(overlaps(a, b, t.start, t.end) for a, b in ivs))
    return mask


def token_counts(pred: Sequence[bool], gold: Sequence[bool]) -> tuple[int, int, int]:
    """(tp, fp, fn) of predicted vs gold token masks (same length)."""
    if len(pred) != len(gold):
        raise ValueError("masks differ in length")
    tp = sum(1 for p, g in zip(pred, gold) if p and g)
    fp = sum(1 for p, g in zip(pred, gold) if p and not g)
    fn = sum(1 for p, g in zip(pred, gold) if g and not p)
    return tp, fp, fn


def token_prf(pred: Sequence[bool], gold: Sequence[bool]) -> dict[str, float]:
    """P/R/F1 of predicted vs gold token masks."""
    return prf(*token_counts(pred, gold))


def mean(xs: Iterable[float | None]) -> float:
    """Mean of the values that are not None or NaN; NaN when none is left."""
    xs = [x for x in xs if x is not None and not (isinstance(x, float) and math.isnan(x))]
    return sum(xs) / len(xs) if xs else float("nan")
