"""How often the channel holds the true original of a real substitution (`unspin build-channel --coverage`).

Real spun/original pairs (shared data, dev/) are aligned token by token; each replaced span
of 1-4 tokens is a substitution, and the report says for which share the original is among
the channel's candidates, overall and with one source removed or alone.
"""
from __future__ import annotations

import argparse
import difflib
import json
import os
from pathlib import Path

from ..lexicon import MAX_LEN, Channel
from ..text import FUNCTION_WORDS, tokenize
from .corpus import default_data_dir


def _gather_pairs(spun: str, original: str) -> list[tuple[tuple[str, ...], tuple[str, ...]]]:
    """Substitutions (observed span -> original span, 1-4 tokens each) by aligning token norms."""
    so = [t.norm for t in tokenize(spun)]
    oo = [t.norm for t in tokenize(original)]
    sm = difflib.SequenceMatcher(None, so, oo, autojunk=False)
    out = []
    for tag, i1, i2, j1, j2 in sm.get_opcodes():
        if tag != "replace":
            continue
        if 1 <= i2 - i1 <= MAX_LEN and 1 <= j2 - j1 <= MAX_LEN:
            out.append((tuple(so[i1:i2]), tuple(oo[j1:j2])))
    return out


def dev_substitutions(path: str | os.PathLike | None = None) -> list[tuple[tuple[str, ...], tuple[str, ...], str]]:
    """Aligned (observed, original, doc id) substitutions from real spun/original pairs, line by line."""
    path = Path(path) if path else default_data_dir() / "dev" / "real_pairs.jsonl"
    out = []
    with open(path, encoding="utf-8") as f:
        docs = [json.loads(line) for line in f if line.strip()]
    for d in docs:
        sl = [l for l in d["spun"].split("\n") if l.strip()]
        ol = [l for l in d["original"].split("\n") if l.strip()]
        # Pair lines by similarity, then align tokens inside each pair.
        lm = difflib.SequenceMatcher(None, [l[:30] for l in sl], [l[:30] for l in ol], autojunk=False)
        pairs = []
        for tag, i1, i2, j1, j2 in lm.get_opcodes():
            if tag == "equal" or (tag == "replace" and i2 - i1 == j2 - j1):
                pairs += list(zip(sl[i1:i2], ol[j1:j2]))
            elif tag == "replace":
                pairs.append((" ".join(sl[i1:i2]), " ".join(ol[j1:j2])))
        for s, o in pairs:
            for obs, orig in _gather_pairs(s, o):
                out.append((obs, orig, d.get("id", "?")))
    return out


def _is_content(orig: tuple[str, ...]) -> bool:
    """A substitution whose original has a content word (not only function words or numbers)."""
    return any(t[0].isalpha() and t not in FUNCTION_WORDS for t in orig)


def _covered(ch: Channel, obs: tuple[str, ...], gold: tuple[str, ...], ok, segmented: bool) -> bool:
    """Is `gold` among the (filtered) candidates of `obs`; if segmented, may the substitution be
    split left to right into sub-substitutions (<= MAX_LEN tokens a side), each identical or covered?"""
    def hit(o, g):
        return any(c.original == " ".join(g) and ok(c) for c in ch.candidates(o))
    if not segmented:
        return hit(obs, gold)
    memo: dict[tuple[int, int], bool] = {}

    def rec(i: int, j: int) -> bool:
        if i == len(obs) and j == len(gold):
            return True
        if (i, j) in memo:
            return memo[i, j]
        r = False
        for a in range(1, MAX_LEN + 1):
            for b in range(1, MAX_LEN + 1):
                if i + a > len(obs) or j + b > len(gold):
                    continue
                o, g = obs[i:i + a], gold[j:j + b]
                if (o == g or hit(o, g)) and rec(i + a, j + b):
                    r = True
                    break
            if r:
                break
        memo[i, j] = r
        return r
    return rec(0, 0)


def coverage_report(pairs, channel: Channel | None = None, ablation: bool = True) -> str:
    """Markdown table: share of substitutions whose original is among the candidates of the
    observed span.  `pairs`: (observed tokens, original tokens[, ...]) as from dev_substitutions.

    Ablation rows filter the candidates of one channel by their source flags ("X only": kept if
    it has source X; "all - X": kept if it has a source other than X).  The per-key cap was
    applied with all sources, so rows are approximate for rebuilt channels (see bench notes).
    """
    ch = channel or Channel.load_default()
    subs = [(tuple(p[0]), tuple(p[1])) for p in pairs]
    content = [(o, g) for o, g in subs if _is_content(g)]
    structural = {"inflection"}
    srcs = [s for s in ch.sources if s not in structural]
    filters = [("all sources", lambda c: True)]
    if ablation:
        for s in srcs:
            filters.append((f"{s} only", lambda c, s=s: s in c.sources))
        for s in srcs:
            filters.append((f"all - {s}", lambda c, s=s: bool(c.sources - {s, "inflection"})))
        filters.append(("all - inflection", lambda c: "inflection" not in c.sources))
    rows = [f"| candidates | all, whole span (n={len(subs)}) | all, segmented | content, whole span (n={len(content)}) | content, segmented |",
            "|---|---|---|---|---|"]
    for name, ok in filters:
        cells = []
        for ss in (subs, content):
            for seg in (False, True):
                h = sum(1 for o, g in ss if _covered(ch, o, g, ok, seg))
                cells.append(f"{h / max(len(ss), 1):.1%} ({h})")
        rows.append(f"| {name} | {cells[0]} | {cells[1]} | {cells[2]} | {cells[3]} |")
    return "\n".join(rows)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of `unspin coverage`."""
    p.add_argument("--channel", default=None, help="channel file (default: the shipped one)")
    p.add_argument("--pairs", default=None, help="real spun/original pairs, JSONL {id, spun, original} "
                   "(default: dev/real_pairs.jsonl of the shared data)")
    p.add_argument("--no-ablation", action="store_true", help="only the all-sources row")


def run(args: argparse.Namespace) -> int:
    """`unspin coverage`: print the Markdown coverage table."""
    channel = Channel.load(args.channel) if args.channel else Channel.load_default()
    print(coverage_report(dev_substitutions(args.pairs), channel, ablation=not args.no_ablation))
    return 0
