"""Does the neural context scorer pick the true original more often than the 4-gram? (evaluation only)

    unspin bench neural-dev [--pairs FILE] [--top 5] [--speed] [--cold]

Real spun/original pairs (shared data, dev/real_pairs.jsonl) are aligned line by line and token
by token as `unspin coverage` does; every replaced span of 1-4 tokens whose true original is
among the decoder's channel candidates for the observed span is one case. For each case:

(a) 4-gram + channel: every candidate scored as the decoder's lattice does (KenLM on a window
    of `DecoderConfig.window` observed words either side, plus the channel score); reported
    among the candidates alone and with the observed words (the identity) competing too.
(b) neural: the 4-gram's top `--top` candidates plus the observed words, rescored with
    `NeuralScorer.score_alternatives` on the surface sentence, plus `w_ch` x the channel score
    (the identity's channel score is the decoder's keep cost), plus optionally `w_lm` x the 4-gram
    window score. A grid over the weights is printed.

Every case above is a true substitution, so the identity is always wrong there and any weight
that favours keeping words looks bad; to see the other side, `--unchanged N` words that the
spinner left alone (and that have channel candidates) are scored the same way, and the grid says
how many of them each setting keeps (a false change otherwise).

The context is the spun sentence as written (other spun words included), as the decoder sees it.
Also `--speed`: candidates per second of the scorer and its load times and memory.
"""
from __future__ import annotations

import argparse
import dataclasses
import difflib
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Sequence

from ..decode import _surface
from ..lexicon import DISTRIBUTIONAL_SOURCES, MAX_LEN
from ..text import Token, match_case, sentences
from .corpus import default_data_dir


@dataclasses.dataclass
class Case:
    """One real substitution, located in the sentence of the spun text that holds it."""

    doc: str
    line: str  # the spun line
    sent: list[Token]  # the sentence's tokens (offsets into `line`)
    first: int  # observed span [first, last) in `sent`
    last: int
    gold: tuple[str, ...]  # the original's normalized tokens (the observed ones if unchanged)
    changed: bool = True  # False: a word the spinner left alone (the identity is right)

    @property
    def key(self) -> tuple[str, ...]:
        return tuple(t.norm for t in self.sent[self.first:self.last])

def _line_pairs(spun: str, original: str) -> list[tuple[str, str]]:
    """Spun and original lines paired by similarity (as unspin.build.coverage.dev_substitutions)."""
    sl = [l for l in spun.split("\n") if l.strip()]
    ol = [l for l in original.split("\n") if l.strip()]
    sm = difflib.SequenceMatcher(None, [l[:30] for l in sl], [l[:30] for l in ol], autojunk=False)
    pairs = []
    for tag, i1, i2, j1, j2 in sm.get_opcodes():
        if tag == "equal" or (tag == "replace" and i2 - i1 == j2 - j1):
            pairs += list(zip(sl[i1:i2], ol[j1:j2]))
        elif tag == "replace":
            pairs.append((" ".join(sl[i1:i2]), " ".join(ol[j1:j2])))
    return pairs


def located_cases(path: str | os.PathLike | None = None, unchanged: bool = False) -> list[Case]:
    """Every aligned substitution (1-4 tokens a side) of the pairs file, with its sentence; with
    `unchanged`, also every single word the alignment found equal on both sides."""
    path = Path(path) if path else default_data_dir() / "dev" / "real_pairs.jsonl"
    from ..text import tokenize

    out = []
    for raw in open(path, encoding="utf-8"):
        d = json.loads(raw)
        for s, o in _line_pairs(d["spun"], d["original"]):
            # Align all tokens of the line (as `unspin coverage` does), then find each span in the
            # sentence the decoder would see (by character offset; sentence splitting may drop a
            # closing quote, never a word).
            sents = list(sentences(s))
            where = {t.start: (k, j) for k, toks in enumerate(sents) for j, t in enumerate(toks)}
            st = tokenize(s)
            so = [t.norm for t in st]
            oo = [t.norm for t in tokenize(o)]
            sm = difflib.SequenceMatcher(None, so, oo, autojunk=False)
            for tag, i1, i2, j1, j2 in sm.get_opcodes():
                if tag == "equal" and unchanged:
                    for i in range(i1, i2):
                        loc = where.get(st[i].start)
                        if loc is not None and st[i].kind == "word":
                            k, a = loc
                            out.append(Case(d.get("id", "?"), s, sents[k], a, a + 1, (so[i],), changed=False))
                    continue
                if tag != "replace" or not (1 <= i2 - i1 <= MAX_LEN and 1 <= j2 - j1 <= MAX_LEN):
                    continue
                locs = [where.get(t.start) for t in st[i1:i2]]
                if None in locs or len({k for k, _ in locs}) != 1:  # outside or across sentences
                    continue
                k, a = locs[0]
                out.append(Case(d.get("id", "?"), s, sents[k], a, locs[-1][1] + 1, tuple(oo[j1:j2])))
    return out


@dataclasses.dataclass
class Scored:
    """The candidates of one case with the 4-gram's view of them, best 4-gram score first."""

    case: Case
    words: list[tuple[str, ...]]  # candidates' words; the identity (observed words) last
    surface: list[str]
    channel: list[float]
    window: list[float]  # KenLM log10 of the window around the span with this wording
    gold_index: int


def fourgram(decoder, case: Case) -> Scored | None:
    """The case's candidates scored as the decoder's lattice scores them, or None if the gold is not among them
    (for an unchanged word: None if the observed word has no candidates)."""
    cfg = decoder.config
    norms = [t.norm for t in case.sent]
    i, last = case.first, case.last
    name_like = i > 0 and case.sent[i].text[:1].isupper()
    cands = [c for c in decoder.scored_candidates(case.key)
             if not (name_like and c[2].sources <= DISTRIBUTIONAL_SOURCES)]
    gold = " ".join(case.gold)
    if not cands or (case.changed and not any(joined == gold for joined, *_ in cands)):
        return None
    observed = case.sent[case.first:case.last]
    rows = [(tuple(joined.split()), match_case(observed[0].text, joined), ch,
             decoder.window_score(norms, i, last, joined)) for joined, ch, _cand in cands]
    rows.sort(key=lambda r: -(r[2] + r[3]))
    rows.append((case.key, _surface(observed), cfg.log_p_keep * (last - i),
                 decoder.window_score(norms, i, last, " ".join(case.key))))
    gi = next(k for k, r in enumerate(rows) if " ".join(r[0]) == gold)
    return Scored(case, [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows], [r[3] for r in rows], gi)


def _context(case: Case, whole_line: bool) -> tuple[str, str]:
    """Surface text left and right of the span: within its sentence, or from the line start."""
    obs = case.sent[case.first:case.last]
    start = 0 if whole_line else case.sent[0].start
    return case.line[start:obs[0].start].strip(), case.line[obs[-1].end:case.sent[-1].end].strip()


def neural_scores(scorer, sc: Scored, top: int, whole_line: bool) -> tuple[list[int], list[float]]:
    """(pool indices into sc rows: the 4-gram's `top` candidates + the identity, neural scores)."""
    pool = list(range(min(top, len(sc.words) - 1))) + [len(sc.words) - 1]
    left, right = _context(sc.case, whole_line)
    return pool, scorer.score_alternatives(left, [sc.surface[k] for k in pool], right)


def _argmax(xs: Sequence[float]) -> int:
    return max(range(len(xs)), key=lambda k: xs[k])


def evaluate(engine, scorer, cases: list[Case], top: int = 5, whole_line: bool = False,
             n_unchanged: int = 150,
             w_channel: Sequence[float] = (0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5),
             w_lm: Sequence[float] = (0.0, 0.25, 0.5)) -> dict:
    """How often the gold wording is ranked first, by the 4-gram + channel and by the neural
    rescoring, on real substitutions (gold: the original) and on words the spinner left alone
    (gold: the identity; `n_unchanged` of them, evenly sampled among those with candidates)."""
    decoder = engine.decoder
    subs = [s for s in (fourgram(decoder, c) for c in cases if c.changed) if s is not None]
    kept = [s for s in (fourgram(decoder, c) for c in cases if not c.changed) if s is not None]
    if n_unchanged and len(kept) > n_unchanged:
        step = len(kept) / n_unchanged
        kept = [kept[int(k * step)] for k in range(n_unchanged)]
    elif not n_unchanged:
        kept = []
    res: dict = {"cases": sum(c.changed for c in cases), "covered": len(subs), "unchanged": len(kept), "top": top}
    total = lambda s: [s.window[k] + s.channel[k] for k in range(len(s.words))]  # noqa: E731
    res["fourgram_among_candidates"] = sum(_argmax(total(s)[:-1]) == s.gold_index for s in subs)
    res["fourgram_with_identity"] = sum(_argmax(total(s)) == s.gold_index for s in subs)
    res["fourgram_unchanged_kept"] = sum(_argmax(total(s)) == s.gold_index for s in kept)
    res["gold_in_pool"] = sum(s.gold_index < top for s in subs)
    if scorer is None:
        return res
    t0 = time.time()
    neural = [neural_scores(scorer, s, top, whole_line) for s in subs + kept]
    res["neural_seconds"] = round(time.time() - t0, 2)
    res["neural_calls"] = len(neural)
    res["neural_alternatives"] = sum(len(p) for p, _ in neural)
    grid = []
    for wl in w_lm:
        for wc in w_channel:
            hit_id = hit_cand = keep = 0
            for n, (s, (pool, ns)) in enumerate(zip(subs + kept, neural)):
                tot = [ns[j] + wc * s.channel[k] + wl * s.window[k] for j, k in enumerate(pool)]
                if n < len(subs):
                    hit_id += pool[_argmax(tot)] == s.gold_index
                    hit_cand += pool[_argmax(tot[:-1])] == s.gold_index
                else:
                    keep += pool[_argmax(tot)] == s.gold_index
            grid.append({"w_lm": wl, "w_channel": wc, "with_identity": hit_id, "among_candidates": hit_cand,
                         "unchanged_kept": keep})
    res["grid"] = grid
    res["best_among_candidates"] = max(grid, key=lambda g: (g["among_candidates"], g["with_identity"]))
    return res


# -- speed -------------------------------------------------------------------
# Hand-written text for the timing runs (about 40 tokens of left context, 10 words right).
_SPEED_LEFT = ("After a long night of talks in the capital, the two delegations finally agreed on a short "
               "joint statement, and a spokesman for the ministry of foreign affairs told reporters late on Friday "
               "that")
_SPEED_ALTS = ["the", "both", "these", "those", "all", "the two"]
_SPEED_RIGHT = "sides would meet again next month to settle remaining questions."


def _rss_mb() -> float:
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def speed(scorer, rounds: int = 20) -> dict:
    """Candidates per second for a 40-token left, 6 alternatives, 10 right words; fresh left each
    call (no state reuse) and the same left again (state reused)."""
    n_left = len(scorer._encode(_SPEED_LEFT))
    words = _SPEED_LEFT.split()
    t0 = time.time()
    for r in range(rounds):
        # A different first word each round: the left's state cannot be reused.
        scorer.clear_cache()
        scorer.score_alternatives(f"{words[r % len(words)]} {_SPEED_LEFT}", _SPEED_ALTS, _SPEED_RIGHT)
    fresh = time.time() - t0
    scorer.score_alternatives(_SPEED_LEFT, _SPEED_ALTS, _SPEED_RIGHT)
    t0 = time.time()
    for r in range(rounds):
        scorer.score_alternatives(_SPEED_LEFT, _SPEED_ALTS[r % 2:], _SPEED_RIGHT)
    reused = time.time() - t0
    n_reused = sum(len(_SPEED_ALTS[r % 2:]) for r in range(rounds))
    texts = [_join_sentence(a) for a in _SPEED_ALTS] * 2
    t0 = time.time()
    scorer.sentence_logprob(texts)
    sent = time.time() - t0
    return {"left_tokens": n_left, "alternatives": len(_SPEED_ALTS), "right_words": len(_SPEED_RIGHT.split()),
            "candidates_per_s_fresh_left": round(rounds * len(_SPEED_ALTS) / fresh, 1),
            "calls_per_s_fresh_left": round(rounds / fresh, 2),
            "candidates_per_s_reused_left": round(n_reused / reused, 1),
            "sentences_per_s": round(len(texts) / sent, 1), "rss_mb": round(_rss_mb(), 0),
            "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 0)}


def _join_sentence(alt: str) -> str:
    return f"{_SPEED_LEFT} {alt} {_SPEED_RIGHT}"


# -- command line ------------------------------------------------------------
def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--pairs", default=None, help="real spun/original pairs, JSONL {id, spun, original} "
                   "(default: dev/real_pairs.jsonl of the shared data)")
    p.add_argument("--top", type=int, default=5, help="4-gram candidates the neural scorer chooses among "
                   "(plus the observed words)")
    p.add_argument("--whole-line", action="store_true", help="left context from the start of the line "
                   "(paragraph), not the sentence")
    p.add_argument("--unchanged", type=int, default=150, help="unchanged words (with candidates) to test "
                   "for false changes, evenly sampled (0: none)")
    p.add_argument("--right-words", type=int, default=12, help="right context cap, words")
    p.add_argument("--left-tokens", type=int, default=64, help="left context cap, tokens")
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"],
                   help="the scorer's weights: float32 (default) or bfloat16 (faster on CPUs with bf16 units)")
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    p.add_argument("--cache-dir", default=None, help="converted model folder (default $UNSPIN_CACHE/smollm2-135m)")
    p.add_argument("--speed", action="store_true", help="also time the scorer")
    p.add_argument("--speed-only", action="store_true", help="time the scorer, skip the evaluation")
    p.add_argument("--cold", action="store_true", help="also time a cold load (conversion into a temporary folder)")
    p.add_argument("--no-neural", action="store_true", help="4-gram numbers only")
    p.add_argument("--json", default=None, help="write the results here as JSON")


def run(args: argparse.Namespace) -> int:
    from ..detect import Engine
    from ..neural import NeuralScorer

    out: dict = {}
    if args.cold:
        with tempfile.TemporaryDirectory(prefix="unspin-neural-cold-") as tmp:
            s = NeuralScorer.load(Path(tmp) / "m", threads=args.threads, dtype=args.dtype)
            out["load_cold_s"] = round(s.load_seconds, 1)
            del s
    t0 = time.time()
    scorer = None if args.no_neural else NeuralScorer.load(
        args.cache_dir, threads=args.threads, dtype=args.dtype, max_left_tokens=args.left_tokens,
        max_right_words=args.right_words)
    if scorer is not None:
        out["load_warm_s"] = round(scorer.load_seconds, 1)
        out["converted_now"] = scorer.converted
        out["rss_after_load_mb"] = round(_rss_mb(), 0)
    if (args.speed or args.speed_only) and scorer is not None:
        out["speed"] = speed(scorer)
    if args.speed_only:
        print(json.dumps(out, indent=1))
        return 0
    t0 = time.time()
    engine = Engine.load()
    out["engine_load_s"] = round(time.time() - t0, 1)
    cases = located_cases(args.pairs, unchanged=args.unchanged > 0)
    out.update(evaluate(engine, scorer, cases, top=args.top, whole_line=args.whole_line,
                        n_unchanged=args.unchanged))
    out["settings"] = {k: getattr(args, k) for k in ("top", "whole_line", "right_words", "left_tokens", "dtype",
                                                      "threads")}
    print(_markdown(out))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    return 0


def _markdown(r: dict) -> str:
    cov, nk = r["covered"], r["unchanged"]
    lines = [f"Substitutions aligned: {r['cases']}; original among the decoder's candidates: {cov}; "
             f"in the 4-gram's top {r['top']}: {r['gold_in_pool']}; unchanged words with candidates sampled: {nk}",
             "",
             f"(a) 4-gram + channel ranks the original first: {r['fourgram_among_candidates']}/{cov} among the "
             f"candidates, {r['fourgram_with_identity']}/{cov} with the observed words competing; "
             f"keeps {r['fourgram_unchanged_kept']}/{nk} unchanged words"]
    if "grid" in r:
        b = r["best_among_candidates"]
        lines += [f"(b) neural + w_lm x 4-gram + w_channel x channel over the 4-gram's top {r['top']} + the observed "
                  f"words: best among candidates {b['among_candidates']}/{cov} (w_lm={b['w_lm']}, "
                  f"w_channel={b['w_channel']}); {r['neural_calls']} calls, {r['neural_alternatives']} "
                  f"alternatives in {r['neural_seconds']} s", "",
                  f"| w_lm | w_channel | substitutions: original first, among candidates (/{cov}) "
                  f"| with the observed words competing (/{cov}) | unchanged words kept (/{nk}) |",
                  "|---|---|---|---|---|"]
        lines += [f"| {g['w_lm']} | {g['w_channel']} | {g['among_candidates']} | {g['with_identity']} "
                  f"| {g['unchanged_kept']} |" for g in r["grid"]]
    skip = {"grid", "best_among_candidates", "cases", "covered", "unchanged", "top", "gold_in_pool",
            "fourgram_among_candidates", "fourgram_with_identity", "fourgram_unchanged_kept"}
    lines += ["", "```", json.dumps({k: v for k, v in r.items() if k not in skip}, indent=1), "```"]
    return "\n".join(lines)
