"""Fit the calibration: document features -> P(spun), span posterior -> P(suggestion is right).

Training data is made, never borrowed: articles and paragraphs of the "calib"
corpus split (text the LM never saw and the benchmarks never read), half left
genuine and half spun by the synthetic spinner at a spread of rates.

    unspin calibrate [--n-docs 400] [--dictionary moby] [--exclude moby] [--out unspin/models/calibration.json]
"""
from __future__ import annotations

import argparse
import itertools
import math
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from .corpus import iter_articles
from .detect import DEFAULT_CALIBRATION_PATH, FEATURES, Calibration, Engine


@dataclass
class LabelledSpan:
    posterior: float
    correct: bool


def span_labels(decodings, spin_changes) -> list[LabelledSpan]:
    """Each decoded change, labelled right when a spinner change at the same place had that original."""
    truth = {(c.start, c.end): c.original_text.lower() for c in spin_changes}
    out = []
    for d in decodings:
        for c in d.changes:
            right = truth.get((c.start, c.end))
            out.append(LabelledSpan(c.posterior, right is not None and right == c.original.lower()))
    return out


def make_documents(n_docs: int, seed: int, spinner, min_words=40, max_words=800):
    """(text, label, spin result or None) rows: articles and single paragraphs, half spun."""
    rng = random.Random(seed)
    articles = list(itertools.islice(iter_articles("calib", min_words=300, max_words=max_words), n_docs))
    rows = []
    for i, art in enumerate(articles):
        if i % 3 == 2:  # a third as single paragraphs, the unit many users check
            paras = [p for p in art.split("\n") if len(p.split()) >= min_words]
            if paras:
                art = rng.choice(paras)
        if i % 2 == 0:
            rows.append((art, 0, None))
        else:
            fraction = rng.choice([0.08, 0.15, 0.25, 0.35, 0.45])
            res = spinner.spin_to_fraction(art, fraction, seed=seed + i)
            rows.append((res.text, 1, res))
    return rows


def fit(engine: Engine, rows, description: str) -> Calibration:
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    X, y, spans = [], [], []
    t0 = time.time()
    for k, (text, label, spin_result) in enumerate(rows):
        decodings = engine.decode(text)
        feats = engine.features(text, decodings)
        X.append([feats[f] for f in FEATURES])
        y.append(label)
        if spin_result is not None:
            spans.extend(span_labels(decodings, spin_result.changes))
        else:
            spans.extend(LabelledSpan(c.posterior, False) for d in decodings for c in d.changes)
        if (k + 1) % 25 == 0:
            print(f"  decoded {k + 1}/{len(rows)} documents ({time.time() - t0:.0f}s)", file=sys.stderr)
    X = np.array(X)
    y = np.array(y)
    mean = X.mean(axis=0)
    scale = X.std(axis=0)
    scale[scale == 0] = 1.0
    doc_model = LogisticRegression(C=1.0, max_iter=1000).fit((X - mean) / scale, y)

    span_a, span_b = 1.0, 0.0
    if len({s.correct for s in spans}) == 2:
        logits = np.array([[math.log(min(max(s.posterior, 1e-6), 1 - 1e-6) / (1 - min(max(s.posterior, 1e-6), 1 - 1e-6)))]
                           for s in spans])
        span_model = LogisticRegression(C=10.0, max_iter=1000).fit(logits, [s.correct for s in spans])
        span_a, span_b = float(span_model.coef_[0][0]), float(span_model.intercept_[0])
    return Calibration(coef=[float(c) for c in doc_model.coef_[0]], intercept=float(doc_model.intercept_[0]),
                       mean=[float(m) for m in mean], scale=[float(s) for s in scale],
                       span_a=span_a, span_b=span_b,
                       trained_on=f"{description}; {len(rows)} documents, {len(spans)} decoded changes "
                                  f"({sum(s.correct for s in spans)} right)")


def main(argv=None) -> int:
    from .lexicon import Channel, build_channel
    from .spin import Spinner

    ap = argparse.ArgumentParser(prog="unspin calibrate", description=__doc__.split("\n\n")[0])
    ap.add_argument("--n-docs", type=int, default=400)
    ap.add_argument("--dictionary", default="moby", help="synthetic spinner dictionary (moby|wordnet)")
    ap.add_argument("--exclude", nargs="*", default=[], help="channel sources to leave out while fitting")
    ap.add_argument("--channel", help="a prebuilt channel file to fit with (instead of building one)")
    ap.add_argument("--lm", help="KenLM model (default: the shipped one)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--out", default=str(DEFAULT_CALIBRATION_PATH))
    args = ap.parse_args(argv)
    if args.channel:
        channel = Channel.load(args.channel)
    else:
        channel = build_channel(exclude=tuple(args.exclude)) if args.exclude else Channel.load_default()
    engine = Engine.load(lm_path=args.lm, channel=channel, calibration=Calibration.uncalibrated())
    spinner = Spinner.from_name(args.dictionary)
    rows = make_documents(args.n_docs, args.seed, spinner)
    channel_desc = (f"channel file {Path(args.channel).name}" if args.channel
                    else f"channel without {','.join(args.exclude) or 'nothing'}")
    desc = f"corpus split 'calib' (Wikinews); spinner dictionary {args.dictionary}; {channel_desc}"
    cal = fit(engine, rows, desc)
    cal.save(args.out)
    print(f"wrote {args.out}: {cal.trained_on}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
