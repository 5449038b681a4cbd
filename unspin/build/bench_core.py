"""Benchmark harness for the core engine (detection, localization, restoration, speed).

    unspin bench core|all [--n-articles N] [--out bench/] [--seed S]
                           [--engine MODULE:CALLABLE] [--no-wordnet] [--no-dev]

Data (held-out only, see unspin.build.corpus): articles of 300-800 words mixed from held-out
Wikinews, the held-out enwiki file and GUM documents (news and other genres, cut to 800
words). Each article is kept genuine and spun with the Moby spinner (unspin.build.spinner, ~25%
of words changed, fixed seeds). The engine's channel EXCLUDES the spinner's dictionary
(unspin.build.channel.build_channel(exclude=("moby",))). A second condition spins with the
WordNet spinner, checked by an engine whose channel excludes "wordnet". A third spins the first
articles with Moby plus the channel's function-word sets (real spinners swap "despite" and "in spite
of", which Moby's sets never do; those sets are in every channel, as common grammar is). The `dev`
part runs the real spun pairs of shared/data/dev/real_pairs.jsonl.

Metrics (pure functions in unspin.build.metrics, unit-tested in tests/test_bench_metrics.py):
  detection    ROC-AUC and P/R/F1 at threshold 0.5, whole articles and single paragraphs (>= 40 words)
  localization token-level P/R/F1 of flagged word tokens (overlapped by a span) vs tokens the spinner changed
  restoration  WER spun->original before, restored->original after, relative cut
  false edits  words changed by restore on genuine text, per 100 words
  genuine news the share of held-out Wikinews paragraphs the shipped engine calls spun (P >= 0.5)
  speed        words/s per core of `check` (CPU time), wall time, Engine.load time, peak RSS

`all` adds the spinner calibration table (changed-word share at several rates).
Results: <out>/core.json (machine-readable, with date, git commit, config) and <out>/core.md.

Runtime (2-core machine, defaults: 120 articles, 60 of them again with function-word spins, 60
WordNet articles, paragraphs, levers, restore --index, genuine news, dev): 341 s with the shipped
engine in session 8. Before the function-word condition, a test engine at ~9k words/s per core took
90 s, of which ~55 s were the harness itself (data, spinning, metrics). Add words/engine speed for a slower engine; a soft
budget (--budget-s, default 540) shrinks the WordNet condition to fit. The first run after a
change of unspin/build/channel.py or resources.py builds the two benchmark channels (exclude
moby / exclude wordnet) in subprocesses, ~100 s each, cached under ~/.cache/unspin/bench_channel_*.npz.
Progress (bars and messages) goes to stderr when it is a terminal, or with --progress.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import importlib
import itertools
import json
import logging
import math
import os
import platform
import random
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

from tqdm import tqdm

from ..detect import CheckResult, Engine, Span, apply_spans, verdict
from ..index import Index
from ..lexicon import Channel
from ..profile import ProfileWeights
from ..logistic import sigmoid
from ..text import tokenize
from ..trace import source_restorations
from . import channel as channel_build, corpus, resources
from .channel import build_channel
from .corpus import add_progress_option, progress_enabled
from .metrics import (detection_metrics, edit_distance, false_edits, mean, n_words, per_100, prf, rate, relative_cut,
                      roc_auc, span_token_mask, token_counts, word_edits, word_tokens)
from .spinner import Spinner, changed_token_mask

logger = logging.getLogger(__name__)

ENWIKI_HELDOUT_FILE = "enwiki_minisearch/enwiki_AG.txt.gz"
DEFAULT_N_ARTICLES = 120
MIN_PARAGRAPH_WORDS = 40

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
        # CPU seconds and words of the texts read as spun (decoded again by the spun pass) and of
        # the others: a crawl is mostly the second kind.
        self.by_reading = {"spun": [0.0, 0], "genuine": [0.0, 0]}

    def check(self, text: str):
        w0, c0 = time.perf_counter(), time.process_time()
        result = None
        try:
            result = self.engine.check(text)
            return result
        except Exception as e:  # one failing text must not sink a 10-minute run: count and go on
            self.errors += 1
            if self.first_error is None:
                self.first_error = f"{type(e).__name__}: {e}"[:500]
                logger.warning("engine.check failed: %s", self.first_error)
            return _result(0.5, [], text)
        finally:
            dt = time.perf_counter() - w0
            cpu = time.process_time() - c0
            if self.calls == 0:
                self.first_call_s = dt
            self.wall += dt
            self.cpu += cpu
            self.words += n_words(text)
            self.calls += 1
            p = getattr(result, "spin_probability", None)
            if p is not None:
                reading = self.by_reading["spun" if p >= getattr(self.engine, "spun_pass_at", 0.5) else "genuine"]
                reading[0] += cpu
                reading[1] += n_words(text)

    def summary(self) -> dict:
        return {
            "calls": self.calls, "words": self.words, "wall_s": round(self.wall, 2), "cpu_s": round(self.cpu, 2),
            "words_per_s_wall": round(self.words / self.wall, 1) if self.wall else None,
            "words_per_s_per_core": round(self.words / self.cpu, 1) if self.cpu else None,
            "first_check_s": round(self.first_call_s, 3) if self.first_call_s is not None else None,
            "errors": self.errors, "first_error": self.first_error,
            "by_reading": {name: {"words": words, "cpu_s": round(cpu, 2),
                                  "words_per_s_per_core": round(words / cpu, 1) if cpu else None}
                           for name, (cpu, words) in self.by_reading.items()},
        }


def _lexicon_fingerprint() -> str:
    """Hash of the channel builder's sources (the builder and its resource readers), so that cached
    benchmark channels follow their changes."""
    h = hashlib.sha1()
    try:
        for module in (channel_build, resources):
            h.update(Path(module.__file__).read_bytes())
    except OSError:
        return "none"
    return h.hexdigest()[:12]


def _channel_cache_path(exclude: tuple[str, ...]) -> Path:
    return corpus.cache_dir() / f"bench_channel_{'-'.join(exclude)}_{_lexicon_fingerprint()}.npz"


def build_bench_channel(exclude: tuple[str, ...], use_cache: bool = True) -> tuple[Any, dict]:
    """A channel without the spinner's dictionary (and how it was obtained)."""
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
            subprocess.run([sys.executable, "-c", "import sys; from unspin.build.bench_core import save_bench_channel; "
                            "save_bench_channel(sys.argv[1].split(','), sys.argv[2])", ",".join(exclude), str(cache)],
                           check=True, cwd=Path(__file__).resolve().parents[2], timeout=1800)
            ch = Channel.load(cache)
            for old in cache.parent.glob(f"bench_channel_{'-'.join(exclude)}_*.npz"):
                if old != cache:  # caches of older channel builder versions
                    old.unlink(missing_ok=True)
            info.update(channel=f"build_channel(exclude={exclude}) [built in a subprocess, cached {cache}]",
                        build_s=round(time.perf_counter() - t0, 2))
            return ch, info
        except Exception as e:
            info["subprocess_build_error"] = repr(e)[:300]
    ch = build_channel(exclude=exclude)
    info.update(channel=f"build_channel(exclude={exclude})", build_s=round(time.perf_counter() - t0, 2))
    return ch, info


def save_bench_channel(exclude: Iterable[str], path: str | os.PathLike) -> None:
    """Build the channel without `exclude` and write it to `path` atomically (run in a child process)."""
    ch = build_channel(exclude=tuple(exclude))
    tmp = Path(str(path) + f".tmp{os.getpid()}.npz")
    ch.save(tmp)
    os.replace(tmp, path)


def default_engine_factory(channel):
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
        words = [t for t in tokenize(text) if t.is_word and not t.text[0].isupper()]
        spans = [Span(t.start, t.end, t.text, None, 0.5) for t in words
                 if self._z(t.norm, "en") < self.threshold]
        share = len(spans) / max(len(words), 1)
        p = sigmoid((share - 0.12) * 40)
        return _result(p, spans, text)

    def restore(self, text: str, min_confidence: float = 0.5):
        return _result(0.0, [], text)


# ============================================================================ runs


def _rss_mb() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r / 1024 if sys.platform != "darwin" else r / 2**20


class Progress:
    """Progress of a run: messages and loop bars on stderr through tqdm when `enabled`; otherwise
    messages go to this module's logger and the bars are silent."""

    def __init__(self, enabled: bool = False):
        self.t0 = time.perf_counter()
        self.enabled = enabled

    def __call__(self, msg: str) -> None:
        if self.enabled:
            tqdm.write(f"[bench {time.perf_counter() - self.t0:7.1f}s] {msg}", file=sys.stderr)
        else:
            logger.info(msg)

    def bar(self, iterable: Iterable, total: int | None = None, desc: str = ""):
        """`iterable`, with a progress bar when enabled."""
        return tqdm(iterable, total=total, desc=desc, unit="text", file=sys.stderr, dynamic_ncols=True,
                    leave=False, disable=not self.enabled)


def evaluate_condition(timer: EngineTimer, articles: list[Article], spinner, target_fraction: float, seed: int,
                       n_paragraphs: int, genuine_cache: dict | None = None,
                       progress: Progress | None = None, consistent: bool = False) -> dict:
    """Genuine vs spun articles (and paragraphs) through one engine: all metrics but speed.
    `consistent`: the spinner treats every occurrence of a term alike (`Spinner.spin`)."""
    progress = progress or Progress()
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
    for i, art in enumerate(progress.bar(articles, desc=f"{spinner.name}: articles")):
        # Genuine side.
        if art.id not in gen_cache:
            g = timer.check(art.text)
            gen_cache[art.id] = (g.spin_probability, false_edits(art.text, g.restored), g.spans)
        p_gen, (edits, words), gen_spans = gen_cache[art.id]
        fe_edits += edits
        fe_words += words
        for thr, acc in tradeoff.items():
            e, w = false_edits(art.text, _apply(art.text, gen_spans, thr))
            acc[1] += e
            acc[2] += w
        labels.append(0); scores.append(p_gen); sources.append(art.source)
        # Spun side.
        sr = spinner.spin_to_fraction(art.text, target_fraction, seed=seed + i, consistent=consistent)
        gold = changed_token_mask(sr)
        r = timer.check(sr.text)
        labels.append(1); scores.append(r.spin_probability); sources.append(art.source)
        for acc, thr in ((loc_any, None), (loc_conf, 0.5)):
            # "Any span": what a report marks as suspicious (`Span.suspect`).
            tp, fp, fn = token_counts(span_token_mask(sr.text, [s for s in r.spans if s.suspect], thr), gold)
            acc[0] += tp; acc[1] += fp; acc[2] += fn
        before, n_ref = word_edits(sr.text, art.text)
        after, _ = word_edits(r.restored, art.text)
        wer_before += before; wer_after += after; ref_words += n_ref
        for thr, acc in tradeoff.items():
            acc[0] += word_edits(_apply(sr.text, r.spans, thr), art.text)[0]
        per_article.append({"id": art.id, "source": art.source, "words": n_ref,
                            "changed_share": round(rate(sum(gold), len(gold)), 4),
                            "p_genuine": round(p_gen, 4), "p_spun": round(r.spin_probability, 4),
                            "wer_before": round(rate(before, n_ref), 4),
                            "wer_after": round(rate(after, n_ref), 4),
                            "false_edits_per_100": round(per_100(edits, words), 3)})
    progress(f"{spinner.name}: {len(articles)} articles in {time.perf_counter() - t0:.0f}s")
    by_source = {}
    for src in sorted(set(sources)):
        ls = [y for y, s in zip(labels, sources) if s == src]
        ss = [x for x, s in zip(scores, sources) if s == src]
        by_source[src] = {"n": len(ls) // 2, "auc": roc_auc(ls, ss)}
    out = {
        "spinner": spinner.name,
        "target_changed_fraction": target_fraction,
        "mean_changed_fraction": mean([a["changed_share"] for a in per_article]),
        "detection_articles": detection_metrics(labels, scores),
        "detection_articles_by_source": by_source,
        "localization_any_span": prf(*loc_any),
        "localization_confident_span": prf(*loc_conf),
        "restoration": {"wer_before": rate(wer_before, ref_words), "wer_after": rate(wer_after, ref_words),
                        "relative_cut": relative_cut(rate(wer_before, ref_words), rate(wer_after, ref_words)),
                        "mean_article_wer_before": mean([a["wer_before"] for a in per_article]),
                        "mean_article_wer_after": mean([a["wer_after"] for a in per_article])},
        "false_edits_per_100_genuine": per_100(fe_edits, fe_words),
        "restore_tradeoff": [
            {"min_confidence": thr,
             "wer_cut": relative_cut(rate(wer_before, ref_words), rate(acc[0], ref_words)),
             "false_edits_per_100_genuine": per_100(acc[1], acc[2])}
            for thr, acc in tradeoff.items()],
        "per_article": per_article,
    }
    # Paragraph level: single paragraphs of >= 40 words, genuine vs spun (spun on their own).
    paras = [p for a in articles for p in paragraphs_of(a.text)]
    rng = random.Random(seed)
    if len(paras) > n_paragraphs:
        paras = rng.sample(paras, n_paragraphs)
    pl, ps = [], []
    for j, p in enumerate(progress.bar(paras, desc=f"{spinner.name}: paragraphs")):
        pl.append(0); ps.append(timer.check(p).spin_probability)
        sp = spinner.spin_to_fraction(p, target_fraction, seed=seed + 100000 + j, consistent=consistent)
        pl.append(1); ps.append(timer.check(sp.text).spin_probability)
    out["detection_paragraphs"] = detection_metrics(pl, ps)
    progress(f"{spinner.name}: {len(paras)} paragraphs done")
    return out


RESTORE_THRESHOLDS = (0.2, 0.3, 0.4, 0.5, 0.7)
# The lever ablation: test articles (the first of the Moby condition's) and the documents a
# spinner profile is learned from (other held-out news, spun with the same dictionary).
LEVER_TEST_ARTICLES = 40
LEVER_PROFILE_DOCUMENTS = 200


def evaluate_levers(factory: Callable, channel, articles: list[Article], spinner, target_fraction: float,
                    seed: int, progress: Progress | None = None) -> list[dict]:
    """Restoration levers on the same articles and spins: the fast path without and with document
    consistency, and with a spinner profile learned from other documents of the spinner (blind, and
    traced to their indexed originals)."""
    progress = progress or Progress()
    test = articles[:LEVER_TEST_ARTICLES]
    seen = {a.text for a in articles}
    learn = [t for t in corpus.iter_articles("heldout", 300, 800, None, [corpus.WIKINEWS_FILE]) if t not in seen]
    learn = learn[-LEVER_PROFILE_DOCUMENTS:]  # the far end of the held-out news: away from the test articles
    spun_learn = [spinner.spin_to_fraction(t, target_fraction, seed=seed + 500000 + i).text
                  for i, t in enumerate(learn)]
    rows = []
    engine = factory(channel)
    t0 = time.perf_counter()
    profile = engine.learn_profile(spun_learn)
    learn_s = time.perf_counter() - t0
    # The supervised profile: the same documents' originals indexed, each copy traced and aligned.
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "learn.sqlite")
        with Index(path, channel=channel) as idx:
            idx.add([{"id": f"learn-{i}", "text": t} for i, t in enumerate(learn)])
        with Index(path, channel=channel, create=False) as idx:
            traced = engine.learn_profile(spun_learn, sources=lambda t: source_restorations(idx, t))
    traced_s = time.perf_counter() - t0
    variants = [("fast path, each sentence alone (--no-consistency)", dict(consistency=None, profile=None)),
                ("fast path (4-gram + channel, document consistency: the default)",
                 dict(consistency=ProfileWeights(), profile=None)),
                (f"+ spinner profile ({len(spun_learn)} other documents)",
                 dict(consistency=ProfileWeights(), profile=profile)),
                (f"+ spinner profile from the same {len(spun_learn)} documents traced to their indexed originals",
                 dict(consistency=ProfileWeights(), profile=traced))]
    for name, settings in variants:
        engine.consistency, engine.profile = settings["consistency"], settings["profile"]
        timer = EngineTimer(engine)
        r = evaluate_condition(timer, test, spinner, target_fraction, seed, 0, progress=progress)
        rows.append({"lever": name, "n_articles": len(test),
                     "wer_cut": r["restoration"]["relative_cut"],
                     "false_edits_per_100_genuine": r["false_edits_per_100_genuine"],
                     "token_f1": r["localization_any_span"]["f1"],
                     "tradeoff": r["restore_tradeoff"],
                     "words_per_s_per_core": timer.summary()["words_per_s_per_core"]})
    rows[-2]["profile_learn_s"] = round(learn_s, 1)
    rows[-2]["profile_pairs"] = len(profile)
    rows[-1]["profile_learn_s"] = round(traced_s, 1)
    rows[-1]["profile_pairs"] = len(traced)
    return rows


def _apply(text: str, spans, min_confidence: float) -> str:
    """The text restored at another confidence threshold, from spans of the documented contract."""
    return apply_spans(text, spans, min_confidence)


def evaluate_restore_from_source(engine: Engine, articles: list[Article], spinner, target_fraction: float,
                                 seed: int, n_other: int = 2000, progress: Progress | None = None) -> dict:
    """`restore --index`: the articles' originals indexed among `n_other` unrelated held-out
    paragraphs, their spun copies restored with the sources found (`trace.source_restorations`)
    and without; WER to the original before and after each."""
    progress = progress or Progress()
    others = list(itertools.islice(corpus.iter_paragraphs("heldout", files=sorted(corpus.HELDOUT_FILES)), n_other))
    spun = [spinner.spin_to_fraction(a.text, target_fraction, seed=seed + 700000 + i).text
            for i, a in enumerate(articles)]
    before = with_index = without = ref_words = 0
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "refs.sqlite")
        with Index(path) as idx:
            idx.add([{"id": f"article-{i}", "text": a.text} for i, a in enumerate(articles)] +
                    [{"id": f"other-{i}", "text": t} for i, t in enumerate(others)])
        with Index(path, create=False) as idx:
            for text, a in zip(progress.bar(spun, desc="restore --index"), articles):
                ref = word_tokens(a.text)
                before += edit_distance(word_tokens(text), ref)
                with_index += edit_distance(word_tokens(engine.restore(
                    text, sources=lambda t: source_restorations(idx, t)).text), ref)
                without += edit_distance(word_tokens(engine.restore(text).text), ref)
                ref_words += len(ref)
    wer_before = rate(before, ref_words)
    return {"n_articles": len(articles), "n_other_documents": len(others), "wer_before": wer_before,
            "wer_with_index": rate(with_index, ref_words), "wer_without": rate(without, ref_words),
            "cut_with_index": relative_cut(wer_before, rate(with_index, ref_words)),
            "cut_without": relative_cut(wer_before, rate(without, ref_words))}


def evaluate_genuine_news(timer: EngineTimer, n: int, progress: Progress | None = None) -> dict:
    """P(spun) of genuine held-out Wikinews paragraphs (>= MIN_PARAGRAPH_WORDS words), as
    `evaluate_genuine_paragraphs` reports it."""
    paras = list(itertools.islice((p for p in corpus.iter_paragraphs("heldout", files=[corpus.WIKINEWS_FILE])
                                   if n_words(p) >= MIN_PARAGRAPH_WORDS), n))
    return evaluate_genuine_paragraphs(timer, paras, "genuine news", progress)


def evaluate_genuine_paragraphs(timer: EngineTimer, paragraphs: list[str], desc: str,
                                progress: Progress | None = None) -> dict:
    """P(spun) of genuine paragraphs: the share at or above 0.5 (called likely spun) and at or above
    0.2 (possibly spun); and the words that restoring them at the default confidence changes (false
    edits per 100 words)."""
    bar = progress.bar(paragraphs, desc=desc) if progress is not None else paragraphs
    probs, edits, words = [], 0, 0
    for para in bar:
        result = timer.check(para)
        if result.spin_probability is not None:
            probs.append(result.spin_probability)
        e, w = false_edits(para, result.restored)
        edits += e
        words += w
    return {"n": len(probs), "words": words, "flagged_0.5": rate(sum(p >= 0.5 for p in probs), len(probs)),
            "flagged_0.2": rate(sum(p >= 0.2 for p in probs), len(probs)), "mean_p": mean(probs),
            "false_edits_per_100": per_100(edits, words)}


# Genuine modern business and technology news, paragraphs written for unspin in the style of wire
# copy (no text copied from anywhere): the vocabulary ("chipmaker", "Treasury note", "surged") that
# a Wikipedia-trained 4-gram model reads as odd.
MODERN_NEWS_PATH = Path(__file__).parent / "data" / "genuine_modern_news.txt"


def load_modern_news(path: str | os.PathLike = MODERN_NEWS_PATH) -> list[str]:
    """The paragraphs of `path`, one per line (blank lines skipped)."""
    return [line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]


def evaluate_dev(timer: EngineTimer, pairs: list[dict], progress: Progress | None = None) -> dict:
    """Real spun/original pairs through one engine: WER before/after restoring the spun side, false
    edits on the original side, and how well the spin probability tells the two sides apart."""
    progress = progress or Progress()
    rows = []
    tb = ta = tw = fe = fw = 0
    for pair in progress.bar(pairs, desc="dev pairs"):
        spun, orig = pair["spun"], pair["original"]
        rs = timer.check(spun)
        ro = timer.check(orig)
        before, n_ref = word_edits(spun, orig)
        after, _ = word_edits(rs.restored, orig)
        e, w = false_edits(orig, ro.restored)
        tb += before; ta += after; tw += n_ref; fe += e; fw += w
        rows.append({"id": pair.get("id"), "style": pair.get("style"), "words": n_ref,
                     "wer_before": round(rate(before, n_ref), 4),
                     "wer_after": round(rate(after, n_ref), 4),
                     "relative_cut": round(relative_cut(before, after), 4) if before else 0.0,
                     "p_spun_side": round(rs.spin_probability, 4),
                     "p_original_side": round(ro.spin_probability, 4),
                     "false_edits_per_100_original": round(per_100(e, w), 3)})
    overall = {"wer_before": rate(tb, tw), "wer_after": rate(ta, tw),
               "relative_cut": relative_cut(rate(tb, tw), rate(ta, tw)),
               "false_edits_per_100_original": per_100(fe, fw),
               "auc_spun_vs_original": roc_auc([1] * len(rows) + [0] * len(rows),
                                               [r["p_spun_side"] for r in rows] + [r["p_original_side"] for r in rows])}
    by_style = {}
    for style in sorted({r["style"] for r in rows if r["style"]}):
        sub = [r for r in rows if r["style"] == style]
        w = sum(r["words"] for r in sub)
        # Word-weighted means of the per-pair (rounded) rates.
        by_style[style] = {
            "n": len(sub),
            "wer_before": rate(sum(r["wer_before"] * r["words"] for r in sub), w),
            "wer_after": rate(sum(r["wer_after"] * r["words"] for r in sub), w)}
    return {"pairs": rows, "overall": overall, "by_style": by_style}


def spinner_calibration(spinners: list, articles: list[Article], rates=(0.1, 0.25, 0.5, 0.75, 1.0),
                        seed: int = 0) -> dict:
    """Per spinner: dictionary coverage of the articles and the mean changed-word share at each rate."""
    out = {}
    for sp in spinners:
        row = {"coverage": mean([sp.coverage(a.text) for a in articles])}
        for r in rates:
            row[f"rate_{r}"] = mean([rate(sum(m), len(m)) for m in
                                     (changed_token_mask(sp.spin(a.text, r, seed=seed + i))
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
             spinners: dict | None = None, calibration: bool = False, progress: bool = False,
             build_channels: bool = True, budget_s: float | None = None, levers: bool = True,
             news_paragraphs: int = 300, source_articles: int = 30, n_function: int | None = None,
             n_consistent: int | None = None) -> dict:
    """Run the core benchmark; returns the JSON-able report.  `progress`: show progress bars and
    messages on stderr (otherwise messages go to this module's logger)."""
    log = Progress(progress)
    factory = engine_factory or default_engine_factory
    n_paragraphs = 2 * n_articles if n_paragraphs is None else n_paragraphs
    n_wordnet = max(n_articles // 2, 1) if n_wordnet is None else n_wordnet
    n_function = max(n_articles // 2, 1) if n_function is None else n_function
    n_consistent = max(n_articles // 2, 1) if n_consistent is None else n_consistent
    report: dict[str, Any] = {
        "benchmark": "core",
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "git_commit": git_commit(),
        "host": {"python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count()},
        "config": {"n_articles": n_articles, "n_wordnet_articles": n_wordnet if wordnet else 0,
                   "n_function_articles": n_function, "n_consistent_articles": n_consistent,
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
    genuine_checked: dict = {}  # the genuine articles' results, for the function-word condition too
    report["moby"] = evaluate_condition(timer, articles, moby, target_fraction, seed, n_paragraphs,
                                        genuine_cache=genuine_checked, progress=log)
    report["speed"].update(timer.summary())
    report["speed"]["peak_rss_mb"] = round(_rss_mb(), 1)
    if n_function > 0:
        # Real spinners swap function words and phrases too (despite / in spite of, because / since),
        # which the Moby spinner never does: the first articles again, the same engine.
        log(f"moby + function words: {n_function} articles")
        report["moby_function"] = evaluate_condition(EngineTimer(engine), articles[:n_function],
                                                     moby.with_function_words(), target_fraction, seed,
                                                     n_paragraphs * n_function // max(len(articles), 1),
                                                     genuine_cache=genuine_checked, progress=log)
    if n_consistent > 0:
        # Real spinners treat every occurrence of a term alike within a page (one replacement
        # throughout, or none): the first articles again, spun so, the same engine.
        log(f"moby, consistent spins: {n_consistent} articles")
        report["moby_consistent"] = evaluate_condition(EngineTimer(engine), articles[:n_consistent], moby,
                                                       target_fraction, seed,
                                                       n_paragraphs * n_consistent // max(len(articles), 1),
                                                       genuine_cache=genuine_checked, progress=log,
                                                       consistent=True)
    del engine, timer
    if levers and build_channels:
        report["levers"] = evaluate_levers(factory, channel, articles, moby, target_fraction, seed, progress=log)
    if source_articles and build_channels:
        # Restoration from a found source: the Moby-spun articles with their originals indexed.
        log(f"restore --index: {source_articles} articles with their sources indexed, shipped engine")
        report["restore_from_source"] = evaluate_restore_from_source(
            factory(None), articles[:source_articles], moby, target_fraction, seed, progress=log)
    if news_paragraphs:
        # Genuine news as a newsroom has it: held-out Wikinews paragraphs, the shipped engine.
        log(f"genuine news: {news_paragraphs} held-out Wikinews paragraphs, shipped engine")
        report["genuine_news"] = evaluate_genuine_news(EngineTimer(factory(None)), news_paragraphs, progress=log)
        modern = load_modern_news()
        log(f"genuine modern news: {len(modern)} paragraphs written for the benchmark, shipped engine")
        report["modern_news"] = evaluate_genuine_paragraphs(EngineTimer(factory(None)), modern, "modern news",
                                                            progress=log)
    if dev:
        # Real spins: the engine as shipped (its full channel); no synthetic dictionary to hold out here.
        pairs = load_dev_pairs() if dev_pairs is None else dev_pairs
        if pairs:
            log(f"dev: {len(pairs)} real pairs, shipped engine")
            report["dev"] = evaluate_dev(EngineTimer(factory(None)), pairs, progress=log)
            report["dev"]["engine"] = "shipped channel" if build_channels else "engine default"

    # --- WordNet condition: channel without WordNet.
    if wordnet and n_wordnet > 0 and budget_s:
        # Keep the whole run inside the time budget: shrink the WordNet condition if needed.
        elapsed = time.perf_counter() - t_start
        spent = report["speed"]["wall_s"] or 1e-9
        per_word = spent / max(report["speed"]["words"], 1)
        words_per_article = 2 * mean([n_words(a.text) for a in articles]) * 1.2  # + paragraphs
        channel_build_s = 200.0 if build_channels and not (use_channel_cache and
                                                           _channel_cache_path(("wordnet",)).exists()) else 5.0
        fit = int((budget_s - elapsed - channel_build_s) / (per_word * words_per_article))
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
        res = evaluate_condition(timer2, wn_arts, wn, target_fraction, seed + 7, n_paragraphs // 2, progress=log)
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


# The synthetic conditions, as the tables name them.
CONDITIONS = {"moby": "moby", "moby_function": "moby + function words (first articles)",
              "moby_consistent": "moby, each term alike throughout (first articles)", "wordnet": "wordnet"}


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
    conds = [c for c in CONDITIONS if c in rep]
    if conds:
        L += ["## Synthetic spin (held-out articles)", "",
              "| metric | " + " | ".join(CONDITIONS[c] for c in conds) + " |", "|---|" + "---|" * len(conds)]
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
            ("genuine paragraphs with P(spun) >= 0.5", lambda c: _f(rep[c]["detection_paragraphs"].get("genuine_flagged"))),
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
    if rep.get("levers"):
        rows = rep["levers"]
        L += ["## Restoration levers (Moby spins, channel without Moby)", "",
              f"The first {rows[0]['n_articles']} articles of the Moby condition (same spins): the fast path "
              "without and with document consistency (the default), then with a spinner profile; restore at "
              "--min-confidence 0.5, 0.4 and 0.2.", "",
              "| lever | WER cut | false edits/100 genuine | at 0.4: cut / false edits | at 0.2: cut / false edits "
              "| token F1 | words/s per core |",
              "|---|---|---|---|---|---|---|"]

        def at(r, thr):
            t = next((t for t in r["tradeoff"] if t["min_confidence"] == thr), None)
            return f"{_f(t['wer_cut'])} / {_f(t['false_edits_per_100_genuine'], 2)}" if t else "-"

        for r in rows:
            L.append(f"| {r['lever']} | {_f(r['wer_cut'])} | {_f(r['false_edits_per_100_genuine'], 2)} | "
                     f"{at(r, 0.4)} | {at(r, 0.2)} | {_f(r['token_f1'])} | {r['words_per_s_per_core']} |")
        blind, traced = (rows[-2], rows[-1]) if len(rows) >= 4 else (rows[-1], None)
        if "profile_pairs" in blind:
            L.append(f"\nThe profile: {blind['profile_pairs']} pairs learned in {blind['profile_learn_s']} s "
                     "(2 passes, no original text); false edits are measured with the profile applied to the "
                     "genuine articles too.")
        if traced is not None and "profile_pairs" in traced:
            L.append(f"The traced profile (`unspin learn --index`): the same documents' originals indexed (the test "
                     f"articles' are not), each copy traced and aligned to its source: {traced['profile_pairs']} "
                     f"pairs in {traced['profile_learn_s']} s, exact pairs where a source was found.")
        L.append("")
    if "restore_from_source" in rep:
        r = rep["restore_from_source"]
        L += ["## Restoration from a found source (`restore --index`, shipped engine)", "",
              f"{r['n_articles']} Moby-spun articles (25%) whose originals are indexed among "
              f"{r['n_other_documents']:,} unrelated held-out paragraphs: WER {_f(r['wer_before'])} -> "
              f"{_f(r['wer_with_index'])} with the index (cut {_f(r['cut_with_index'])}); without it "
              f"{_f(r['wer_without'])} (cut {_f(r['cut_without'])}).", ""]
    for key, title, what in (
            ("genuine_news", "Genuine news (held-out Wikinews paragraphs, shipped engine)",
             f"of at least {MIN_PARAGRAPH_WORDS} words"),
            ("modern_news", "Genuine modern news (business and technology paragraphs written for unspin, shipped engine)",
             "({words} words; `unspin/build/data/genuine_modern_news.txt`)")):
        if key in rep:
            g = rep[key]
            L += [f"## {title}", "",
                  f"{g['n']} paragraphs {what.format(words=g.get('words'))}: P(spun) >= 0.5 for "
                  f"{_f(g['flagged_0.5'])}, >= 0.2 for {_f(g['flagged_0.2'])}; mean P(spun) {_f(g['mean_p'])}; "
                  f"false edits per 100 words when restored {_f(g.get('false_edits_per_100'))}.", ""]
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
          *([f"- texts read as genuine: {s['by_reading']['genuine']['words_per_s_per_core']} words/s per core "
             f"({s['by_reading']['genuine']['words']} words); read as spun, so decoded again by the spun pass: "
             f"{s['by_reading']['spun']['words_per_s_per_core']} ({s['by_reading']['spun']['words']} words)"]
            if s.get("by_reading") else []),
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
    ap.add_argument("--n-function", type=int, default=None, help="articles for the condition whose spinner also "
                    "swaps function words (Moby + channel.FUNCTION_SETS; default n-articles / 2; 0 = skip)")
    ap.add_argument("--n-consistent", type=int, default=None, help="articles for the condition whose spinner "
                    "treats every occurrence of a term alike, as real spinners do within a page (Moby; default "
                    "n-articles / 2; 0 = skip)")
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
    ap.add_argument("--source-articles", type=int, default=30,
                    help="spun articles restored with their originals indexed, `restore --index` (0 = skip; default 30)")
    ap.add_argument("--news-paragraphs", type=int, default=300,
                    help="genuine held-out Wikinews paragraphs whose false-alarm rate is measured (0 = skip; default 300)")
    ap.add_argument("--no-channel-cache", action="store_true",
                    help="rebuild the held-out-dictionary channels instead of reading them from the cache")
    ap.add_argument("--no-levers", action="store_true", help="skip the restoration-lever ablation (consistency, "
                    "spinner profile)")
    add_progress_option(ap)
    ap.add_argument("--quiet", dest="progress", action="store_false", default=None,
                    help="no progress on stderr (the same as --no-progress)")


def run(args: argparse.Namespace) -> int:
    """`unspin bench core|all`: run, print the Markdown tables, write bench/core.{json,md}."""
    factory = resolve_factory(args.engine)
    rep = run_core(args.n_articles, args.seed, args.fraction,
                   engine_factory=None if args.engine is None else factory,
                   wordnet=not args.no_wordnet, dev=not args.no_dev, n_paragraphs=args.n_paragraphs,
                   n_wordnet=args.n_wordnet, use_channel_cache=not args.no_channel_cache,
                   calibration=args.part == "all", progress=progress_enabled(args.progress),
                   build_channels=args.engine != "baseline", budget_s=args.budget_s or None,
                   levers=not args.no_levers and args.engine is None,
                   news_paragraphs=args.news_paragraphs if args.engine != "baseline" else 0,
                   source_articles=args.source_articles if args.engine is None else 0,
                   n_function=args.n_function, n_consistent=args.n_consistent)
    if args.engine:
        rep["config"]["engine"] = args.engine
    pj, pm = write_report(rep, args.out)
    print(render_markdown(rep))
    print(f"wrote {pj} and {pm}", file=sys.stderr)
    return 0
