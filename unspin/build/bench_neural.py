"""Does neural rescoring of the decoder's changes restore spun text better? (evaluation only)

    unspin bench neural [--n-articles 10] [--seed 13] [--engines]

Held-out articles (`unspin.build.bench_core.load_articles`) are spun with the Moby spinner to
about 25% changed words (the seeds of `unspin bench core`); the engine's channel excludes Moby
(`build_bench_channel(("moby",))`, cached under ~/.cache/unspin). For each article, spun and genuine:

(i)   fast path: `Engine.check(text).restored` (calibrated confidences, min_confidence 0.5);
(i')  the same decodings with the decoder's raw posterior thresholded (same footing as (ii));
(ii)  fast path + `unspin.rescore.NeuralRescorer`: every decoded change and every suspicious
      undecided word re-decided by the neural scorer; changes whose new posterior is at or above
      a threshold are applied. Several weight settings are decided from the same neural scores.

Reported: WER before/after restoring (pooled over articles) and its relative cut, false edits per
100 genuine words, seconds per 500 words, and how often rescoring changed the decoder's decision
(switched original, dropped change, added change) and whether that was right, against the
spinner's gold changes (offsets into the spun text and the original wording).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

from ..text import normalize_token, overlaps, sentences
from .metrics import false_edits, per_100, rate, relative_cut, word_edits

THRESHOLDS = (0.5, 0.7, 0.9)


def _settings():
    from ..rescore import RescoreWeights

    return {
        "decoder=1": RescoreWeights(decoder=1.0),
        "decoder=0.5": RescoreWeights(decoder=0.5),
        "ch=1,lm=0.25": RescoreWeights(decoder=0.0, channel=1.0, lm=0.25),
        "ch=1,lm=0.5": RescoreWeights(decoder=0.0, channel=1.0, lm=0.5),
    }


def _norm(s: str) -> str:
    return " ".join(normalize_token(s).split())


class Tally:
    """How rescoring changed the decoder's decisions, judged against the gold changes."""

    def __init__(self):
        self.c = {k: 0 for k in ("switched", "switched_right", "switched_wrong", "dropped", "dropped_right",
                                 "dropped_wrong", "added", "added_right", "added_wrong", "kept", "kept_right")}

    def add(self, old_changes, new_changes, gold: dict | None, intervals: list | None):
        """gold: (start, end) -> normalized original of each spinner change (None: genuine text)."""
        def truth(c):  # the gold wording of the change's span, or None if the span was not spun
            if gold is None:
                return None
            g = gold.get((c.start, c.end))
            if g is not None:
                return g
            if any(overlaps(a, b, c.start, c.end) for a, b in intervals):
                return "<partial>"
            return None

        new_by_span = {(c.start, c.end): c for c in new_changes}
        for old in old_changes:
            new = new_by_span.pop((old.start, old.end), None)
            t = truth(old)
            if new is None:
                self.c["dropped"] += 1
                if t is None:
                    self.c["dropped_right"] += 1  # a false change removed
                elif _norm(old.original) == t:
                    self.c["dropped_wrong"] += 1  # a right restoration lost
            elif _norm(new.original) != _norm(old.original):
                self.c["switched"] += 1
                if t is not None and _norm(new.original) == t:
                    self.c["switched_right"] += 1
                elif t is not None and _norm(old.original) == t:
                    self.c["switched_wrong"] += 1
            else:
                self.c["kept"] += 1
                self.c["kept_right"] += t is not None and _norm(old.original) == t
        for new in new_by_span.values():
            t = truth(new)
            self.c["added"] += 1
            if t is not None and _norm(new.original) == t:
                self.c["added_right"] += 1
            elif t is None:
                self.c["added_wrong"] += 1


def _apply(text: str, changes, thr: float) -> str:
    from ..rescore import apply_changes

    return apply_changes(text, changes, thr)


def run_bench(n_articles: int = 10, seed: int = 13, fraction: float = 0.25, dtype: str = "bfloat16",
              threads: int = 1, thresholds=THRESHOLDS, min_suspicion: float = 0.3, top: int = 4,
              max_left_tokens: int = 192, right_words: int = 12, log=None) -> dict:
    from ..detect import Engine
    from ..neural import NeuralScorer
    from ..rescore import NeuralRescorer, RescoreWeights
    from .bench_core import build_bench_channel, load_articles
    from .spinner import Spinner

    log = log or (lambda m: print(m, file=sys.stderr, flush=True))
    t0 = time.time()
    channel, ch_info = build_bench_channel(("moby",))
    engine = Engine.load(channel=channel)
    scorer = NeuralScorer.load(threads=threads, dtype=dtype, max_left_tokens=max_left_tokens,
                               max_right_words=right_words)
    spinner = Spinner.from_moby()
    articles = load_articles(n_articles)
    log(f"loaded in {time.time() - t0:.0f}s: {len(articles)} articles")
    settings = _settings()
    base = RescoreWeights(min_suspicion=min_suspicion, top=top)
    rescorer = NeuralRescorer(scorer, base)
    settings = {k: replace(w, min_suspicion=min_suspicion, top=top) for k, w in settings.items()}

    acc = {"ref_words": 0, "before": 0, "gen_words": 0, "fast_after": 0, "fast_false": 0}
    raw = {thr: [0, 0] for thr in thresholds}  # decoder posterior thresholded: [after edits, false edits]
    res = {(name, thr): [0, 0] for name in settings for thr in thresholds}
    tallies = {name: Tally() for name in settings}
    times = {"check_s": 0.0, "decode_s": 0.0, "neural_s": 0.0, "words": 0}
    spans_scored = {"changes": 0, "suspicious": 0}
    for i, art in enumerate(articles):
        sr = spinner.spin_to_fraction(art.text, fraction, seed=seed + i)
        gold = {(c.start, c.end): _norm(c.original_text) for c in sr.changes}
        intervals = list(gold)
        before, n_ref = word_edits(sr.text, art.text)
        acc["before"] += before
        acc["ref_words"] += n_ref
        for side, text in (("spun", sr.text), ("genuine", art.text)):
            w0 = time.perf_counter()
            fast = engine.check(text).restored
            times["check_s"] += time.perf_counter() - w0
            w0 = time.perf_counter()
            decodings = engine.decode_document(list(sentences(text)))
            times["decode_s"] += time.perf_counter() - w0
            w0 = time.perf_counter()
            scorings = [rescorer.score_spans(text, d, engine.decoder) for d in decodings]
            times["neural_s"] += time.perf_counter() - w0
            times["words"] += sum(d.n_words for d in decodings)
            for scs in scorings:
                for sc in scs:
                    spans_scored["changes" if sc.change is not None else "suspicious"] += 1
            old = [c for d in decodings for c in d.changes]
            if side == "spun":
                acc["fast_after"] += word_edits(fast, art.text)[0]
                for thr in thresholds:
                    raw[thr][0] += word_edits(_apply(text, old, thr), art.text)[0]
            else:
                e, w = false_edits(art.text, fast)
                acc["fast_false"] += e
                acc["gen_words"] += w
                for thr in thresholds:
                    raw[thr][1] += false_edits(art.text, _apply(text, old, thr))[0]
            for name, weights in settings.items():
                new = [c for d, scs in zip(decodings, scorings) for c in rescorer.decide(d, scs, weights).changes]
                tallies[name].add(old, new, gold if side == "spun" else None, intervals)
                for thr in thresholds:
                    restored = _apply(text, new, thr)
                    if side == "spun":
                        res[(name, thr)][0] += word_edits(restored, art.text)[0]
                    else:
                        res[(name, thr)][1] += false_edits(art.text, restored)[0]
        log(f"article {i + 1}/{len(articles)}: {times['words']} words, neural {times['neural_s']:.0f}s")
    wer_before = rate(acc["before"], acc["ref_words"])

    def row(label, after, false):
        wer_after = rate(after, acc["ref_words"])
        return {"method": label, "wer_after": round(wer_after, 4),
                "wer_cut": round(relative_cut(wer_before, wer_after), 4),
                "false_edits_per_100": round(per_100(false, acc["gen_words"]), 3)}

    rows = [row("fast path (check, calibrated >= 0.5)", acc["fast_after"], acc["fast_false"])]
    rows += [row(f"fast path, decoder posterior >= {thr}", *raw[thr]) for thr in thresholds]
    rows += [row(f"rescored [{name}], posterior >= {thr}", *res[(name, thr)])
             for name in settings for thr in thresholds]
    words = max(times["words"], 1)
    return {
        "n_articles": len(articles), "seed": seed, "target_fraction": fraction, "dtype": dtype, "threads": threads,
        "min_suspicion": min_suspicion, "top": top, "max_left_tokens": max_left_tokens,
        "right_words": right_words, "channel": ch_info.get("channel"),
        "ref_words": acc["ref_words"], "genuine_words": acc["gen_words"], "wer_before": round(wer_before, 4),
        "rows": rows,
        "decisions": {name: t.c for name, t in tallies.items()},
        "spans_scored": spans_scored, "scorer_calls": rescorer.calls,
        "alternatives_scored": rescorer.alternatives_scored,
        "speed": {"words_checked": times["words"],
                  "fast_check_s_per_500_words": round(500 * times["check_s"] / words, 3),
                  "decode_s_per_500_words": round(500 * times["decode_s"] / words, 3),
                  "neural_s_per_500_words": round(500 * times["neural_s"] / words, 3),
                  "rescored_path_s_per_500_words": round(500 * (times["decode_s"] + times["neural_s"]) / words, 3)},
        "weights": {name: {k: getattr(w, k) for k in ("decoder", "channel", "lm")} for name, w in settings.items()},
    }


def _with_proposals(engine, proposals: int):
    if proposals:
        engine.rescorer.weights = replace(engine.rescorer.weights, proposals=proposals)
    return engine


def run_engine_bench(n_articles: int = 10, seed: int = 13, fraction: float = 0.25,
                     thresholds=(0.5, 0.7), dev: bool = True, log=None, proposals: int = 0) -> dict:
    """The two engines as users run them (`check` vs `check --scorer neural`, calibrated confidences)
    on the same held-out spins, and on the real dev pairs (text the neural LM cannot have seen).
    With `proposals`, the neural engine also scores that many proposed words per single-word span
    (`RescoreWeights.proposals`)."""
    import resource

    from ..detect import Engine, apply_spans
    from .bench_core import build_bench_channel, load_articles, load_dev_pairs
    from .spinner import Spinner

    log = log or (lambda m: print(m, file=sys.stderr, flush=True))
    channel, ch_info = build_bench_channel(("moby",))
    t0 = time.perf_counter()
    engines = {"ngram": Engine.load(channel=channel)}
    t1 = time.perf_counter()
    engines["neural"] = _with_proposals(Engine.load(channel=channel, scorer="neural"), proposals)
    load = {"ngram_s": round(t1 - t0, 2), "neural_s": round(time.perf_counter() - t1, 2)}
    spinner = Spinner.from_moby()
    articles = load_articles(n_articles)
    acc = {(e, thr): [0, 0] for e in engines for thr in thresholds}
    ref = before = gen = 0
    cpu = {e: 0.0 for e in engines}
    words = 0
    for i, art in enumerate(articles):
        sr = spinner.spin_to_fraction(art.text, fraction, seed=seed + i)
        b, n_ref = word_edits(sr.text, art.text)
        before += b
        ref += n_ref
        for name, engine in engines.items():
            for side, text in (("spun", sr.text), ("genuine", art.text)):
                c0 = time.process_time()
                r = engine.check(text)
                cpu[name] += time.process_time() - c0
                if name == "ngram":
                    words += r.n_words
                for thr in thresholds:
                    restored = apply_spans(text, r.spans, thr)
                    if side == "spun":
                        acc[(name, thr)][0] += word_edits(restored, art.text)[0]
                    else:
                        e, w = false_edits(art.text, restored)
                        acc[(name, thr)][1] += e
                        if name == "ngram" and thr == thresholds[0]:
                            gen += w
        log(f"article {i + 1}/{len(articles)}")
    wer_before = rate(before, ref)
    rows = [{"engine": name, "min_confidence": thr, "wer_cut": round(relative_cut(wer_before, rate(a, ref)), 4),
             "false_edits_per_100": round(per_100(f, gen), 3)} for (name, thr), (a, f) in acc.items()]
    out = {"n_articles": len(articles), "ref_words": ref, "genuine_words": gen, "wer_before": round(wer_before, 4),
           "channel": ch_info.get("channel"), "rows": rows, "load_s": load,
           "s_per_500_words": {e: round(500 * c / max(words, 1), 3) for e, c in cpu.items()},
           "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
    if dev:
        shipped = {"ngram": Engine.load(), "neural": _with_proposals(Engine.load(scorer="neural"), proposals)}
        pairs = load_dev_pairs()
        dev_rows = []
        for name, engine in shipped.items():
            b = a = n = fe = gw = 0
            for pair in pairs:
                r = engine.check(pair["spun"])
                bb, nn = word_edits(pair["spun"], pair["original"])
                b += bb
                n += nn
                a += word_edits(r.restored, pair["original"])[0]
                e, w = false_edits(pair["original"], engine.check(pair["original"]).restored)
                fe += e
                gw += w
            dev_rows.append({"engine": name, "pairs": len(pairs), "wer_before": round(rate(b, n), 4),
                             "wer_cut": round(relative_cut(rate(b, n), rate(a, n)), 4),
                             "false_edits_per_100_original": round(per_100(fe, gw), 3)})
        out["dev"] = dev_rows
    return out


def render_engines(r: dict) -> str:
    lines = [f"{r['n_articles']} held-out articles, Moby spin (channel without Moby), WER before {r['wer_before']:.4f}; "
             f"{r['genuine_words']} genuine words.", "",
             "| engine | --min-confidence | WER cut | false edits /100 genuine |", "|---|---|---|---|"]
    lines += [f"| {x['engine']} | {x['min_confidence']} | {x['wer_cut']:.1%} | {x['false_edits_per_100']:.3f} |"
              for x in r["rows"]]
    s = r["s_per_500_words"]
    lines += ["", f"CPU seconds per 500 words (one core): ngram {s['ngram']}, neural {s['neural']}; "
              f"load: ngram {r['load_s']['ngram_s']} s, neural {r['load_s']['neural_s']} s; "
              f"peak RSS {r['peak_rss_mb']} MB"]
    if r.get("dev"):
        lines += ["", "Real spun pairs (dev; shipped channel; the neural LM cannot have seen them):", "",
                  "| engine | pairs | WER before | WER cut | false edits /100 original words |", "|---|---|---|---|---|"]
        lines += [f"| {x['engine']} | {x['pairs']} | {x['wer_before']:.4f} | {x['wer_cut']:.1%} | "
                  f"{x['false_edits_per_100_original']:.3f} |" for x in r["dev"]]
    return "\n".join(lines)


def render(r: dict) -> str:
    lines = [f"{r['n_articles']} held-out articles, Moby spin to {r['target_fraction']:.0%} (channel without Moby); "
             f"{r['ref_words']} reference words, WER before restoring {r['wer_before']:.4f}; "
             f"{r['genuine_words']} genuine words", "",
             "| method | WER after | WER cut | false edits /100 genuine words |", "|---|---|---|---|"]
    lines += [f"| {x['method']} | {x['wer_after']:.4f} | {x['wer_cut']:.1%} | {x['false_edits_per_100']:.3f} |"
              for x in r["rows"]]
    lines += ["", "Decisions changed by rescoring (spun + genuine sides; right/wrong against the spinner's gold):", "",
              "| weights | kept (right) | switched (right / wrong) | dropped (false change removed / right one lost) "
              "| added (right / false) |", "|---|---|---|---|---|"]
    for name, c in r["decisions"].items():
        lines.append(f"| {name} | {c['kept']} ({c['kept_right']}) | {c['switched']} ({c['switched_right']} / "
                     f"{c['switched_wrong']}) | {c['dropped']} ({c['dropped_right']} / {c['dropped_wrong']}) | "
                     f"{c['added']} ({c['added_right']} / {c['added_wrong']}) |")
    s = r["speed"]
    lines += ["", f"Speed ({r['dtype']}, {r['threads']} torch thread(s)): fast check {s['fast_check_s_per_500_words']} "
              f"s/500 words; decode {s['decode_s_per_500_words']} + neural {s['neural_s_per_500_words']} = "
              f"{s['rescored_path_s_per_500_words']} s/500 words rescored; {r['scorer_calls']} scorer calls "
              f"({r['spans_scored']['changes']} changes, {r['spans_scored']['suspicious']} suspicious words), "
              f"{r['alternatives_scored']} alternatives"]
    return "\n".join(lines)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of `unspin bench neural`."""
    p.add_argument("--n-articles", type=int, default=10, help="held-out articles, each spun and genuine (default 10)")
    p.add_argument("--seed", type=int, default=13, help="spinning seed (default 13, as bench core)")
    p.add_argument("--fraction", type=float, default=0.25, help="target share of changed words (default 0.25)")
    p.add_argument("--dtype", default="bfloat16", choices=["float32", "bfloat16"],
                   help="the scorer's weights in the rescoring study (default bfloat16)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--min-suspicion", type=float, default=0.3, help="suspicion for rescoring an undecided word")
    p.add_argument("--top", type=int, default=4, help="channel candidates of an undecided word")
    p.add_argument("--thresholds", type=float, nargs="+", default=list(THRESHOLDS),
                   help="posterior thresholds of the rescoring study")
    p.add_argument("--max-left-tokens", type=int, default=192, help="scorer's left context cap, tokens")
    p.add_argument("--right-words", type=int, default=12, help="scorer's right context cap, words")
    p.add_argument("--json", default=None, help="write the results here as JSON")
    p.add_argument("--engines", action="store_true", help="compare the calibrated engines (check vs check "
                   "--scorer neural) instead, on the same spins and on the dev pairs")
    p.add_argument("--md", default=None, help="also write the Markdown tables here")
    p.add_argument("--proposals", type=int, default=0,
                   help="with --engines: proposed words per single-word span for the neural engine "
                        "(RescoreWeights.proposals; default 0, off)")


def run(a: argparse.Namespace) -> int:
    """`unspin bench neural`: the rescoring study, or (--engines) the two engines side by side."""
    if a.engines:
        r = run_engine_bench(a.n_articles, a.seed, a.fraction, proposals=a.proposals)
        r["proposals"] = a.proposals
        md = render_engines(r)
    else:
        r = run_bench(a.n_articles, a.seed, a.fraction, a.dtype, a.threads, tuple(a.thresholds), a.min_suspicion,
                      a.top, a.max_left_tokens, a.right_words)
        md = render(r)
    print(md)
    if a.json:
        Path(a.json).write_text(json.dumps(r, indent=1))
    if a.md:
        Path(a.md).write_text("# Neural scorer\n\n" + md + "\n")
    return 0
