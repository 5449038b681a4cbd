"""Benchmark harness for the core engine (detection, localization, restoration, speed).

    unspin bench core|all [--n-articles N] [--out bench/] [--seed S]
                           [--engine MODULE:CALLABLE] [--no-wordnet] [--no-dev]

Data (held-out only, see unspin.corpus): articles of 300-800 words mixed from held-out
Wikinews, the held-out enwiki file and GUM documents (news and other genres, cut to 800
words). Each article is kept genuine and spun with the Moby spinner (unspin.spin, ~25% of
words changed, fixed seeds). The engine's channel EXCLUDES the spinner's dictionary
(lexicon.build_channel(exclude=("moby",))). A second condition spins with the WordNet
spinner, checked by an engine whose channel excludes "wordnet". The `dev` part runs the real
spun pairs of shared/data/dev/real_pairs.jsonl.

Metrics (pure functions below, unit-tested in tests/test_bench_metrics.py):
  detection    ROC-AUC and P/R/F1 at threshold 0.5, whole articles and single paragraphs (>= 40 words)
  localization token-level P/R/F1 of flagged word tokens (overlapped by a span) vs tokens the spinner changed
  restoration  WER spun->original before, restored->original after, relative cut
  false edits  words changed by restore on genuine text, per 100 words
  speed        words/s per core of `check` (CPU time), wall time, Engine.load time, peak RSS

`all` adds the spinner calibration table (changed-word share at several rates).
Results: <out>/core.json (machine-readable, with date, git commit, config) and <out>/core.md.

Runtime (2-core machine, default 120 articles + 60 WordNet articles + 360 paragraphs + dev,
~225k words checked): 90 s with a test engine at ~9k words/s per core, of which ~55 s are the
harness itself (data, spinning, metrics). Add words/engine speed for a slower engine; a soft
budget (--budget-s, default 540) shrinks the WordNet condition to fit. The first run after
lexicon.py changes builds the two benchmark channels (exclude moby / exclude wordnet) in
subprocesses, ~100 s each, cached under ~/.cache/unspin/bench_channel_*.npz.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import importlib
import itertools
import json
import math
import os
import platform
import random
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from . import corpus
from ..text import tokenize

ENWIKI_HELDOUT_FILE = "enwiki_minisearch/enwiki_AG.txt.gz"
DEFAULT_N_ARTICLES = 120
MIN_PARAGRAPH_WORDS = 40

# ============================================================================ metrics


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
    out = {"n": len(labels), "n_spun": int(sum(labels)), "auc": roc_auc(labels, scores)}
    out.update(binary_metrics(labels, scores, threshold))
    pos = [s for y, s in zip(labels, scores) if y]
    neg = [s for y, s in zip(labels, scores) if not y]
    out["mean_p_spun"] = sum(pos) / len(pos) if pos else float("nan")
    out["mean_p_genuine"] = sum(neg) / len(neg) if neg else float("nan")
    return out


def word_tokens(text: str) -> list[str]:
    """Lowercased word-level tokens (words, numbers, clitics; no punctuation) for WER."""
    return [t.norm for t in tokenize(text) if t.kind != "punct"]


def edit_distance(a: Sequence[str], b: Sequence[str]) -> int:
    """Levenshtein distance between two token lists (rapidfuzz, a dependency)."""
    from rapidfuzz.distance import Levenshtein

    return int(Levenshtein.distance(list(a), list(b)))


def wer(hypothesis: str, reference: str) -> float:
    """Word error rate of `hypothesis` against `reference` (lowercased word tokens)."""
    ref = word_tokens(reference)
    hyp = word_tokens(hypothesis)
    if not ref:
        return 0.0 if not hyp else 1.0
    return edit_distance(hyp, ref) / len(ref)


def relative_cut(before: float, after: float) -> float:
    """Share of the error removed: (before - after) / before (negative when worse)."""
    if before == 0:
        return 0.0 if after == 0 else float("-inf")
    return (before - after) / before


def false_edits_per_100(genuine: str, restored: str) -> float:
    """Words changed by restoring a genuine text, per 100 words of it."""
    ref = word_tokens(genuine)
    if not ref:
        return 0.0
    return 100.0 * edit_distance(word_tokens(restored), ref) / len(ref)


def span_token_mask(text: str, spans: Iterable[Any], min_confidence: float | None = None) -> list[bool]:
    """For each word token of `tokenize(text)`: is it overlapped by any span (optionally confident)?"""
    ivs = sorted((s.start, s.end) for s in spans
                 if min_confidence is None or getattr(s, "confidence", 1.0) >= min_confidence)
    words = [t for t in tokenize(text) if t.is_word]
    mask = []
    for t in words:
        mask.append(any(a < t.end and t.start < b for a, b in ivs if a < t.end))
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
    return prf(*token_counts(pred, gold))


def n_words(text: str) -> int:
    return sum(1 for t in tokenize(text) if t.kind != "punct")


def _mean(xs: Sequence[float]) -> float:
    xs = [x for x in xs if x is not None and not (isinstance(x, float) and math.isnan(x))]
    return sum(xs) / len(xs) if xs else float("nan")


# ============================================================================ data


@dataclass
class Article:
    id: str
    source: str
    text: str


def _take_spread(it: Iterable[str], n: int, stride: int) -> list[str]:
    """Every `stride`-th item, n of them (spreads the sample over more of the file)."""
    return list(itertools.islice(itertools.islice(it, 0, None, stride), n))


def _cut_words(text: str, max_words: int) -> str:
    """Whole paragraphs (lines) from the start, up to max_words words."""
    out, n = [], 0
    for para in text.split("\n"):
        w = len(para.split())
        if n + w > max_words and n:
            break
        if para.strip():
            out.append(para)
            n += w
    return "\n".join(out)


def load_articles(n: int, data_dir: str | None = None, min_words: int = 300, max_words: int = 800,
                  stride: int = 3) -> list[Article]:
    """n held-out articles: ~40% Wikinews, ~30% enwiki held-out, ~30% GUM (news first)."""
    n_gum = n * 3 // 10
    n_wiki = n * 3 // 10
    n_news = n - n_gum - n_wiki
    arts: list[Article] = []
    news = _take_spread(corpus.iter_articles("heldout", min_words, max_words, data_dir, [corpus.WIKINEWS_FILE]),
                        n_news, stride)
    arts += [Article(f"wikinews-{i}", "wikinews", t) for i, t in enumerate(news)]
    wiki = _take_spread(corpus.iter_articles("heldout", min_words, max_words, data_dir, [ENWIKI_HELDOUT_FILE]),
                        n_wiki, stride)
    arts += [Article(f"enwiki-{i}", "enwiki", t) for i, t in enumerate(wiki)]
    docs = list(corpus.iter_gum_documents(data_dir))
    # News first, then the other genres in turn.
    docs.sort(key=lambda d: (d.get("genre") != "news", d.get("id", "")))
    by_genre: dict[str, list[dict]] = {}
    for d in docs:
        by_genre.setdefault(d.get("genre", "other"), []).append(d)
    order = by_genre.pop("news", [])[: max(n_gum // 2, 1)]
    rest = list(itertools.chain.from_iterable(itertools.zip_longest(*by_genre.values())))
    order += [d for d in rest if d is not None]
    for d in order:
        if sum(1 for a in arts if a.source.startswith("gum")) >= n_gum:
            break
        text = _cut_words(d["text"], max_words)
        if len(text.split()) >= min_words:
            arts.append(Article(d.get("id", "gum"), f"gum-{d.get('genre', 'other')}", text))
    return arts


def paragraphs_of(text: str, min_words: int = MIN_PARAGRAPH_WORDS) -> list[str]:
    return [p for p in text.split("\n") if len(p.split()) >= min_words]


def load_dev_pairs(path: str | os.PathLike | None = None) -> list[dict]:
    path = Path(path) if path else corpus.default_data_dir() / "dev" / "real_pairs.jsonl"
    if not path.exists():
        return []
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


# ============================================================================ engine plumbing


class EngineTimer:
    """Wraps an engine: times `check` calls (wall and CPU) and counts words."""

    def __init__(self, engine):
        self.engine = engine
        self.wall = 0.0
        self.cpu = 0.0
        self.words = 0
        self.calls = 0
        self.errors = 0
        self.first_error: str | None = None
        self.first_call_s: float | None = None

    def check(self, text: str):
        w0, c0 = time.perf_counter(), time.process_time()
        try:
            return self.engine.check(text)
        except Exception as e:  # one failing text must not sink a 10-minute run: count and go on
            self.errors += 1
            if self.first_error is None:
                self.first_error = f"{type(e).__name__}: {e}"[:500]
                print(f"engine.check failed: {self.first_error}", file=sys.stderr)
            return _result(0.5, [], text)
        finally:
            dt = time.perf_counter() - w0
            if self.calls == 0:
                self.first_call_s = dt
            self.wall += dt
            self.cpu += time.process_time() - c0
            self.words += n_words(text)
            self.calls += 1

    def summary(self) -> dict:
        return {
            "calls": self.calls, "words": self.words, "wall_s": round(self.wall, 2), "cpu_s": round(self.cpu, 2),
            "words_per_s_wall": round(self.words / self.wall, 1) if self.wall else None,
            "words_per_s_per_core": round(self.words / self.cpu, 1) if self.cpu else None,
            "first_check_s": round(self.first_call_s, 3) if self.first_call_s is not None else None,
            "errors": self.errors, "first_error": self.first_error,
        }


def _lexicon_fingerprint() -> str:
    try:
        from . import channel as lexicon

        p = Path(lexicon.__file__)
        return hashlib.sha1(p.read_bytes()).hexdigest()[:12]
    except Exception:
        return "none"


def _channel_cache_path(exclude: tuple[str, ...]) -> Path:
    return corpus.cache_dir() / f"bench_channel_{'-'.join(exclude)}_{_lexicon_fingerprint()}.npz"


def build_bench_channel(exclude: tuple[str, ...], use_cache: bool = True) -> tuple[Any, dict]:
    """A channel without the spinner's dictionary (and how it was obtained)."""
    from ..lexicon import Channel
    from .channel import build_channel

    info: dict[str, Any] = {"exclude": list(exclude)}
    t0 = time.perf_counter()
    cache = _channel_cache_path(exclude)
    if use_cache and cache.exists():
        try:
            ch = Channel.load(cache)
            info.update(channel=f"build_channel(exclude={exclude}) [cached {cache}]",
                        build_s=round(time.perf_counter() - t0, 2))
            return ch, info
        except Exception:
            pass
    # Build in a child process when caching, so that the build's memory does not count in the
    # engine's peak RSS; fall back to building here.
    if use_cache:
        try:
            cache.parent.mkdir(parents=True, exist_ok=True)
            subprocess.run([sys.executable, "-c", "import sys; from unspin.build.bench_core import _build_and_save; "
                            "_build_and_save(sys.argv[1].split(','), sys.argv[2])", ",".join(exclude), str(cache)],
                           check=True, cwd=Path(__file__).resolve().parents[2], timeout=1800)
            ch = Channel.load(cache)
            for old in cache.parent.glob(f"bench_channel_{'-'.join(exclude)}_*.npz"):
                if old != cache:  # caches of older lexicon.py versions
                    old.unlink(missing_ok=True)
            info.update(channel=f"build_channel(exclude={exclude}) [built in a subprocess, cached {cache}]",
                        build_s=round(time.perf_counter() - t0, 2))
            return ch, info
        except Exception as e:
            info["subprocess_build_error"] = repr(e)[:300]
    ch = build_channel(exclude=exclude, progress=False)
    info.update(channel=f"build_channel(exclude={exclude})", build_s=round(time.perf_counter() - t0, 2))
    return ch, info


def _build_and_save(exclude, path) -> None:
    from .channel import build_channel

    ch = build_channel(exclude=tuple(exclude), progress=False)
    tmp = Path(str(path) + f".tmp{os.getpid()}.npz")
    ch.save(tmp)
    os.replace(tmp, path)


def default_engine_factory(channel):
    from ..detect import Engine

    return Engine.load(channel=channel)


def resolve_factory(spec: str | None) -> Callable:
    """`MODULE:CALLABLE` (called with the channel) or None for unspin.detect.Engine.load."""
    if not spec:
        return default_engine_factory
    if spec == "baseline":
        return lambda channel: RareWordBaseline()
    mod, _, attr = spec.partition(":")
    obj = getattr(importlib.import_module(mod), attr or "Engine")
    if hasattr(obj, "load"):
        return lambda channel: obj.load(channel=channel)
    return obj


def _result(p: float, spans: list, text: str):
    """A CheckResult from a reference engine (the bench reads only the documented fields)."""
    from ..detect import CheckResult, verdict

    return CheckResult(p, verdict(p), spans, text)


class RareWordBaseline:
    """A trivial reference engine (`--engine baseline`): flags uncommon words, restores nothing.

    It gives the harness something to run before the real engine exists, and a floor to
    compare the engine with.
    """

    def __init__(self, zipf_threshold: float = 3.5):
        from wordfreq import zipf_frequency

        self._z = zipf_frequency
        self.threshold = zipf_threshold

    def check(self, text: str):
        from ..detect import Span

        words = [t for t in tokenize(text) if t.is_word and not t.text[0].isupper()]
        spans = [Span(t.start, t.end, t.text, None, 0.5) for t in words
                 if self._z(t.norm, "en") < self.threshold]
        share = len(spans) / max(len(words), 1)
        p = 1 / (1 + math.exp(-(share - 0.12) * 40))
        return _result(p, spans, text)

    def restore(self, text: str, min_confidence: float = 0.5):
        return _result(0.0, [], text)


# ============================================================================ runs


def _rss_mb() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r / 1024 if sys.platform != "darwin" else r / 2**20


class Progress:
    def __init__(self, quiet: bool = False):
        self.t0 = time.perf_counter()
        self.quiet = quiet

    def __call__(self, msg: str) -> None:
        if not self.quiet:
            print(f"[{time.perf_counter() - self.t0:7.1f}s] {msg}", file=sys.stderr, flush=True)


def evaluate_condition(timer: EngineTimer, articles: list[Article], spinner, target_fraction: float, seed: int,
                       n_paragraphs: int, genuine_cache: dict | None = None, log: Callable = print) -> dict:
    """Genuine vs spun articles (and paragraphs) through one engine: all metrics but speed."""
    labels, scores, sources = [], [], []
    loc_any = [0, 0, 0]
    loc_conf = [0, 0, 0]
    wer_before, wer_after, ref_words = 0, 0, 0
    per_article = []
    fe_edits, fe_words = 0, 0
    gen_cache = genuine_cache if genuine_cache is not None else {}
    # Restore at other --min-confidence settings: [after-edits on spun, false edits on genuine, genuine words].
    tradeoff = {thr: [0, 0, 0] for thr in RESTORE_THRESHOLDS}
    t0 = time.perf_counter()
    for i, art in enumerate(articles):
        # Genuine side.
        if art.id not in gen_cache:
            g = timer.check(art.text)
            gen_cache[art.id] = (g.spin_probability, false_edits_raw(art.text, g.restored), g.spans)
        p_gen, (edits, words), gen_spans = gen_cache[art.id]
        fe_edits += edits
        fe_words += words
        for thr, acc in tradeoff.items():
            e, w = false_edits_raw(art.text, _apply(art.text, gen_spans, thr))
            acc[1] += e
            acc[2] += w
        labels.append(0); scores.append(p_gen); sources.append(art.source)
        # Spun side.
        sr = spinner.spin_to_fraction(art.text, target_fraction, seed=seed + i)
        gold = _changed_mask(sr)
        r = timer.check(sr.text)
        labels.append(1); scores.append(r.spin_probability); sources.append(art.source)
        for acc, thr in ((loc_any, None), (loc_conf, 0.5)):
            tp, fp, fn = token_counts(span_token_mask(sr.text, r.spans, thr), gold)
            acc[0] += tp; acc[1] += fp; acc[2] += fn
        ref = word_tokens(art.text)
        before = edit_distance(word_tokens(sr.text), ref)
        after = edit_distance(word_tokens(r.restored), ref)
        wer_before += before; wer_after += after; ref_words += len(ref)
        for thr, acc in tradeoff.items():
            acc[0] += edit_distance(word_tokens(_apply(sr.text, r.spans, thr)), ref)
        per_article.append({"id": art.id, "source": art.source, "words": len(ref),
                            "changed_share": round(sum(gold) / max(len(gold), 1), 4),
                            "p_genuine": round(p_gen, 4), "p_spun": round(r.spin_probability, 4),
                            "wer_before": round(before / max(len(ref), 1), 4),
                            "wer_after": round(after / max(len(ref), 1), 4),
                            "false_edits_per_100": round(100 * edits / max(words, 1), 3)})
        if (i + 1) % 5 == 0 or i + 1 == len(articles):
            el = time.perf_counter() - t0
            log(f"  {spinner.name}: {i + 1}/{len(articles)} articles, {el:.0f}s, "
                f"~{el / (i + 1) * (len(articles) - i - 1):.0f}s left")
    by_source = {}
    for src in sorted(set(sources)):
        ls = [y for y, s in zip(labels, sources) if s == src]
        ss = [x for x, s in zip(scores, sources) if s == src]
        by_source[src] = {"n": len(ls) // 2, "auc": roc_auc(ls, ss)}
    out = {
        "spinner": spinner.name,
        "target_changed_fraction": target_fraction,
        "mean_changed_fraction": _mean([a["changed_share"] for a in per_article]),
        "detection_articles": detection_metrics(labels, scores),
        "detection_articles_by_source": by_source,
        "localization_any_span": prf(*loc_any),
        "localization_confident_span": prf(*loc_conf),
        "restoration": {"wer_before": wer_before / max(ref_words, 1), "wer_after": wer_after / max(ref_words, 1),
                        "relative_cut": relative_cut(wer_before / max(ref_words, 1), wer_after / max(ref_words, 1)),
                        "mean_article_wer_before": _mean([a["wer_before"] for a in per_article]),
                        "mean_article_wer_after": _mean([a["wer_after"] for a in per_article])},
        "false_edits_per_100_genuine": 100.0 * fe_edits / max(fe_words, 1),
        "restore_tradeoff": [
            {"min_confidence": thr,
             "wer_cut": relative_cut(wer_before / max(ref_words, 1), acc[0] / max(ref_words, 1)),
             "false_edits_per_100_genuine": 100.0 * acc[1] / max(acc[2], 1)}
            for thr, acc in tradeoff.items()],
        "per_article": per_article,
    }
    # Paragraph level: single paragraphs of >= 40 words, genuine vs spun (spun on their own).
    paras = [p for a in articles for p in paragraphs_of(a.text)]
    rng = random.Random(seed)
    if len(paras) > n_paragraphs:
        paras = rng.sample(paras, n_paragraphs)
    pl, ps = [], []
    for j, p in enumerate(paras):
        pl.append(0); ps.append(timer.check(p).spin_probability)
        sp = spinner.spin_to_fraction(p, target_fraction, seed=seed + 100000 + j)
        pl.append(1); ps.append(timer.check(sp.text).spin_probability)
    out["detection_paragraphs"] = detection_metrics(pl, ps)
    log(f"  {spinner.name}: {len(paras)} paragraphs done")
    return out


RESTORE_THRESHOLDS = (0.2, 0.3, 0.4, 0.5, 0.7)


def _apply(text: str, spans, min_confidence: float) -> str:
    """The text restored at another confidence threshold, from spans of the documented contract."""
    from ..detect import apply_spans

    return apply_spans(text, spans, min_confidence)


def _changed_mask(sr) -> list[bool]:
    from .spinner import changed_token_mask

    return changed_token_mask(sr)


def false_edits_raw(genuine: str, restored: str) -> tuple[int, int]:
    ref = word_tokens(genuine)
    return edit_distance(word_tokens(restored), ref), len(ref)


def evaluate_dev(timer: EngineTimer, pairs: list[dict]) -> dict:
    rows = []
    tb = ta = tw = fe = fw = 0
    for pair in pairs:
        spun, orig = pair["spun"], pair["original"]
        rs = timer.check(spun)
        ro = timer.check(orig)
        ref = word_tokens(orig)
        before = edit_distance(word_tokens(spun), ref)
        after = edit_distance(word_tokens(rs.restored), ref)
        e, w = false_edits_raw(orig, ro.restored)
        tb += before; ta += after; tw += len(ref); fe += e; fw += w
        rows.append({"id": pair.get("id"), "style": pair.get("style"), "words": len(ref),
                     "wer_before": round(before / max(len(ref), 1), 4),
                     "wer_after": round(after / max(len(ref), 1), 4),
                     "relative_cut": round(relative_cut(before, after), 4) if before else 0.0,
                     "p_spun_side": round(rs.spin_probability, 4),
                     "p_original_side": round(ro.spin_probability, 4),
                     "false_edits_per_100_original": round(100 * e / max(w, 1), 3)})
    overall = {"wer_before": tb / max(tw, 1), "wer_after": ta / max(tw, 1),
               "relative_cut": relative_cut(tb / max(tw, 1), ta / max(tw, 1)),
               "false_edits_per_100_original": 100 * fe / max(fw, 1),
               "auc_spun_vs_original": roc_auc([1] * len(rows) + [0] * len(rows),
                                               [r["p_spun_side"] for r in rows] + [r["p_original_side"] for r in rows])}
    by_style = {}
    for style in sorted({r["style"] for r in rows if r["style"]}):
        sub = [r for r in rows if r["style"] == style]
        w = sum(r["words"] for r in sub)
        by_style[style] = {
            "n": len(sub),
            "wer_before": sum(r["wer_before"] * r["words"] for r in sub) / max(w, 1),
            "wer_after": sum(r["wer_after"] * r["words"] for r in sub) / max(w, 1)}
    return {"pairs": rows, "overall": overall, "by_style": by_style}


def spinner_calibration(spinners: list, articles: list[Article], rates=(0.1, 0.25, 0.5, 0.75, 1.0),
                        seed: int = 0) -> dict:
    out = {}
    for sp in spinners:
        row = {"coverage": _mean([sp.coverage(a.text) for a in articles])}
        for rate in rates:
            row[f"rate_{rate}"] = _mean([sum(m) / max(len(m), 1) for m in
                                         (_changed_mask(sp.spin(a.text, rate, seed=seed + i))
                                          for i, a in enumerate(articles))])
        out[sp.name] = row
    return out


def git_commit() -> str:
    try:
        root = Path(__file__).resolve().parent.parent
        c = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        d = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                           capture_output=True, text=True, timeout=10)
        return c.stdout.strip() + ("-dirty" if d.stdout.strip() else "")
    except Exception:
        return "unknown"


def run_core(n_articles: int = DEFAULT_N_ARTICLES, seed: int = 13, target_fraction: float = 0.25,
             engine_factory: Callable | None = None, wordnet: bool = True, dev: bool = True,
             n_paragraphs: int | None = None, n_wordnet: int | None = None, use_channel_cache: bool = True,
             articles: list[Article] | None = None, dev_pairs: list[dict] | None = None,
             spinners: dict | None = None, calibration: bool = False, quiet: bool = False,
             build_channels: bool = True, budget_s: float | None = None) -> dict:
    """Run the core benchmark; returns the JSON-able report."""
    from .spinner import Spinner

    log = Progress(quiet)
    factory = engine_factory or default_engine_factory
    n_paragraphs = 2 * n_articles if n_paragraphs is None else n_paragraphs
    n_wordnet = max(n_articles // 2, 1) if n_wordnet is None else n_wordnet
    report: dict[str, Any] = {
        "benchmark": "core",
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "git_commit": git_commit(),
        "host": {"python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count()},
        "config": {"n_articles": n_articles, "n_wordnet_articles": n_wordnet if wordnet else 0,
                   "n_paragraphs": n_paragraphs, "seed": seed, "target_changed_fraction": target_fraction,
                   "min_paragraph_words": MIN_PARAGRAPH_WORDS, "article_words": [300, 800],
                   "detection_threshold": 0.5, "restore": "CheckResult.restored",
                   "engine": getattr(factory, "__qualname__", str(factory))},
    }
    t_start = time.perf_counter()
    if articles is None:
        log("loading held-out articles")
        articles = load_articles(n_articles)
    report["config"]["sources"] = {s: sum(1 for a in articles if a.source == s)
                                   for s in sorted({a.source for a in articles})}
    spinners = spinners or {}
    log("building spinners")
    t0 = time.perf_counter()
    moby = spinners.get("moby") or Spinner.from_moby()
    report["spinner_load_s"] = round(time.perf_counter() - t0, 2)

    # --- Moby condition: channel without Moby.
    log("building channel without moby")
    channel, ch_info = (build_bench_channel(("moby",), use_channel_cache) if build_channels
                        else (None, {"channel": "not built (engine does not use one)"}))
    report["channel"] = ch_info
    log("loading engine")
    rss_before = _rss_mb()
    t0 = time.perf_counter()
    engine = factory(channel)
    report["speed"] = {"engine_load_s": round(time.perf_counter() - t0, 2),
                       "peak_rss_before_engine_mb": round(rss_before, 1)}
    timer = EngineTimer(engine)
    log(f"engine loaded in {report['speed']['engine_load_s']}s; checking {len(articles)} articles")
    report["moby"] = evaluate_condition(timer, articles, moby, target_fraction, seed, n_paragraphs, log=log)
    report["speed"].update(timer.summary())
    report["speed"]["peak_rss_mb"] = round(_rss_mb(), 1)
    del engine, timer
    if dev:
        # Real spins: the engine as shipped (its full channel); no synthetic dictionary to hold out here.
        pairs = load_dev_pairs() if dev_pairs is None else dev_pairs
        if pairs:
            log(f"dev: {len(pairs)} real pairs, shipped engine")
            report["dev"] = evaluate_dev(EngineTimer(factory(None)), pairs)
            report["dev"]["engine"] = "shipped channel" if build_channels else "engine default"

    # --- WordNet condition: channel without WordNet.
    if wordnet and n_wordnet > 0 and budget_s:
        # Keep the whole run inside the time budget: shrink the WordNet condition if needed.
        elapsed = time.perf_counter() - t_start
        spent = report["speed"]["wall_s"] or 1e-9
        per_word = spent / max(report["speed"]["words"], 1)
        words_per_article = 2 * _mean([n_words(a.text) for a in articles]) * 1.2  # + paragraphs
        channel_build = 200.0 if build_channels and not (use_channel_cache and
                                                         _channel_cache_path(("wordnet",)).exists()) else 5.0
        fit = int((budget_s - elapsed - channel_build) / (per_word * words_per_article))
        if fit < n_wordnet:
            report["config"]["budget_note"] = (f"WordNet condition cut from {n_wordnet} to {max(fit, 0)} articles "
                                               f"to stay within --budget-s {budget_s}")
            log(report["config"]["budget_note"])
            n_wordnet = fit if fit >= 6 else 0
            report["config"]["n_wordnet_articles"] = n_wordnet
    if wordnet and n_wordnet > 0:
        log("building WordNet spinner and channel without wordnet")
        wn = spinners.get("wordnet") or Spinner.from_wordnet()
        channel, ch_info2 = (build_bench_channel(("wordnet",), use_channel_cache) if build_channels
                             else (None, {"channel": "not built (engine does not use one)"}))
        engine2 = factory(channel)
        timer2 = EngineTimer(engine2)
        wn_arts = articles[:: max(len(articles) // n_wordnet, 1)][:n_wordnet]
        res = evaluate_condition(timer2, wn_arts, wn, target_fraction, seed + 7, n_paragraphs // 2, log=log)
        res["channel"] = ch_info2
        report["wordnet"] = res
        report["speed"]["wordnet_condition"] = timer2.summary()
    if calibration:
        log("spinner calibration")
        sps = [moby] + ([spinners.get("wordnet") or Spinner.from_wordnet()] if wordnet else [])
        report["spinner_calibration"] = spinner_calibration(sps, articles[:30], seed=seed)
    report["speed"]["peak_rss_end_mb"] = round(_rss_mb(), 1)
    report["runtime_s"] = round(time.perf_counter() - t_start, 1)
    log(f"done in {report['runtime_s']}s")
    return report


# ============================================================================ output


def _f(x, nd=3) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        if math.isnan(x):
            return "n/a"
        return f"{x:.{nd}f}"
    return str(x)


def render_markdown(rep: dict) -> str:
    L = ["# unspin core benchmark", "",
         f"- date: {rep['date']}  commit: `{rep['git_commit']}`",
         f"- config: {json.dumps(rep['config'], sort_keys=True)}",
         f"- channel (moby condition): {rep.get('channel', {}).get('channel')}"
         + (f" — WARNING: {rep['channel']['warning']}" if rep.get("channel", {}).get("warning") else ""),
         f"- runtime: {rep.get('runtime_s')} s", ""]
    errs = rep.get("speed", {}).get("errors")
    if errs:
        L += [f"**WARNING: {errs} engine.check calls failed** (scored P=0.5, no spans, unchanged): "
              f"{rep['speed'].get('first_error')}", ""]
    conds = [c for c in ("moby", "wordnet") if c in rep]
    if conds:
        L += ["## Synthetic spin (held-out articles)", "",
              "| metric | " + " | ".join(conds) + " |", "|---|" + "---|" * len(conds)]
        rows = [
            ("articles (genuine + spun)", lambda c: rep[c]["detection_articles"]["n"]),
            ("mean changed-word share", lambda c: _f(rep[c]["mean_changed_fraction"])),
            ("article AUC", lambda c: _f(rep[c]["detection_articles"]["auc"])),
            ("article F1 @0.5", lambda c: _f(rep[c]["detection_articles"]["f1"])),
            ("article P / R @0.5", lambda c: f"{_f(rep[c]['detection_articles']['precision'])} / "
                                             f"{_f(rep[c]['detection_articles']['recall'])}"),
            ("mean P(spun): spun / genuine", lambda c: f"{_f(rep[c]['detection_articles']['mean_p_spun'])} / "
                                                       f"{_f(rep[c]['detection_articles']['mean_p_genuine'])}"),
            ("paragraph AUC", lambda c: _f(rep[c]["detection_paragraphs"]["auc"])),
            ("paragraph F1 @0.5", lambda c: _f(rep[c]["detection_paragraphs"]["f1"])),
            ("token P / R / F1 (any span)", lambda c: " / ".join(
                _f(rep[c]["localization_any_span"][k]) for k in ("precision", "recall", "f1"))),
            ("token P / R / F1 (conf >= 0.5)", lambda c: " / ".join(
                _f(rep[c]["localization_confident_span"][k]) for k in ("precision", "recall", "f1"))),
            ("WER spun -> original (before)", lambda c: _f(rep[c]["restoration"]["wer_before"])),
            ("WER restored -> original (after)", lambda c: _f(rep[c]["restoration"]["wer_after"])),
            ("WER relative cut", lambda c: _f(rep[c]["restoration"]["relative_cut"])),
            ("false edits / 100 words (genuine)", lambda c: _f(rep[c]["false_edits_per_100_genuine"], 2)),
        ]
        for k, thr in enumerate(RESTORE_THRESHOLDS):
            rows.append((f"restore at min-confidence {thr}: WER cut / false edits per 100",
                         lambda c, k=k: (f"{_f(rep[c]['restore_tradeoff'][k]['wer_cut'])} / "
                                         f"{_f(rep[c]['restore_tradeoff'][k]['false_edits_per_100_genuine'], 2)}")
                         if rep[c].get("restore_tradeoff") else "-"))
        for name, fn in rows:
            L.append(f"| {name} | " + " | ".join(str(fn(c)) for c in conds) + " |")
        L.append("")
        for c in conds:
            bs = rep[c].get("detection_articles_by_source", {})
            if bs:
                L.append(f"Article AUC by source ({c}): " + ", ".join(f"{k} {_f(v['auc'])} (n={v['n']})"
                                                                       for k, v in bs.items()))
        L.append("")
    if "dev" in rep:
        d = rep["dev"]
        L += ["## Real spun pairs (dev)", "",
              "| id | style | words | WER before | WER after | cut | P(spun) spun side | P(spun) original | false edits/100 (original) |",
              "|---|---|---|---|---|---|---|---|---|"]
        for r in d["pairs"]:
            L.append(f"| {r['id']} | {r['style']} | {r['words']} | {_f(r['wer_before'])} | {_f(r['wer_after'])} | "
                     f"{_f(r['relative_cut'])} | {_f(r['p_spun_side'])} | {_f(r['p_original_side'])} | "
                     f"{_f(r['false_edits_per_100_original'], 2)} |")
        o = d["overall"]
        L.append(f"| **all** | | | {_f(o['wer_before'])} | {_f(o['wer_after'])} | {_f(o['relative_cut'])} | | | "
                 f"{_f(o['false_edits_per_100_original'], 2)} |")
        L.append("")
    s = rep.get("speed", {})
    L += ["## Speed and memory", "",
          f"- Engine.load: {s.get('engine_load_s')} s; spinner load: {rep.get('spinner_load_s')} s",
          f"- check: {s.get('words')} words in {s.get('calls')} calls; {s.get('wall_s')} s wall, "
          f"{s.get('cpu_s')} s CPU; **{s.get('words_per_s_per_core')} words/s per core** "
          f"({s.get('words_per_s_wall')} words/s wall); first check (includes lazy loading): "
          f"{s.get('first_check_s')} s",
          f"- peak RSS: {s.get('peak_rss_mb')} MB (before Engine.load: {s.get('peak_rss_before_engine_mb')} MB, "
          "the harness with its spinner dictionaries and data)", ""]
    if "spinner_calibration" in rep:
        L += ["## Spinner calibration (changed-word share by rate)", ""]
        for name, row in rep["spinner_calibration"].items():
            L.append(f"- {name}: " + ", ".join(f"{k} {_f(v)}" for k, v in row.items()))
        L.append("")
    return "\n".join(L)


def _jsonable(x):
    if isinstance(x, float) and (math.isnan(x) or math.isinf(x)):
        return None
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    return x


def write_report(rep: dict, out_dir: str | os.PathLike, name: str = "core") -> tuple[Path, Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    pj, pm = out / f"{name}.json", out / f"{name}.md"
    pj.write_text(json.dumps(_jsonable(rep), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    pm.write_text(render_markdown(rep) + "\n", encoding="utf-8")
    return pj, pm


def add_arguments(ap: argparse.ArgumentParser) -> None:
    """Options of `unspin bench core` and `unspin bench all`."""
    ap.add_argument("--n-articles", type=int, default=DEFAULT_N_ARTICLES,
                    help=f"held-out articles (each checked genuine and spun); default {DEFAULT_N_ARTICLES}")
    ap.add_argument("--n-paragraphs", type=int, default=None, help="paragraphs for paragraph-level detection "
                    "(default 2 x n-articles)")
    ap.add_argument("--n-wordnet", type=int, default=None, help="articles for the WordNet condition "
                    "(default n-articles / 2)")
    ap.add_argument("--fraction", type=float, default=0.25, help="target share of words changed by the spinner "
                    "(default 0.25)")
    ap.add_argument("--seed", type=int, default=13, help="random seed for article choice and spinning (default 13)")
    ap.add_argument("--out", default="bench", help="folder for core.json and core.md (default bench/)")
    ap.add_argument("--engine", default=None, help="MODULE:CALLABLE taking a channel (default unspin.detect.Engine.load);"
                    " 'baseline' = a trivial rare-word reference engine")
    ap.add_argument("--no-wordnet", action="store_true", help="skip the WordNet-spinner condition")
    ap.add_argument("--budget-s", type=float, default=540.0,
                    help="soft wall-time budget: the WordNet condition shrinks to fit (0 = no budget; default 540)")
    ap.add_argument("--no-dev", action="store_true", help="skip the real spun/original pairs of the shared data")
    ap.add_argument("--no-channel-cache", action="store_true",
                    help="rebuild the held-out-dictionary channels instead of reading them from the cache")
    ap.add_argument("--quiet", action="store_true", help="no progress messages")


def run(args: argparse.Namespace) -> int:
    """`unspin bench core|all`: run, print the Markdown tables, write bench/core.{json,md}."""
    factory = resolve_factory(args.engine)
    rep = run_core(args.n_articles, args.seed, args.fraction,
                   engine_factory=None if args.engine is None else factory,
                   wordnet=not args.no_wordnet, dev=not args.no_dev, n_paragraphs=args.n_paragraphs,
                   n_wordnet=args.n_wordnet, use_channel_cache=not args.no_channel_cache,
                   calibration=args.part == "all", quiet=args.quiet,
                   build_channels=args.engine != "baseline", budget_s=args.budget_s or None)
    if args.engine:
        rep["config"]["engine"] = args.engine
    pj, pm = write_report(rep, args.out)
    print(render_markdown(rep))
    print(f"wrote {pj} and {pm}", file=sys.stderr)
    return 0
