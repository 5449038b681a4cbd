"""Fit the calibration: document features -> P(spun), span posterior -> P(suggestion is right).

Training data is made, never borrowed: articles and paragraphs of the "calib"
corpus split (text the LM never saw and the benchmarks never read), half left
genuine and half spun by the synthetic spinner at a spread of rates.

    unspin calibrate [--n-docs 400] [--dictionary moby] [--exclude moby] [--out unspin/models/calibration.json]
"""
from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import random
import sys
import time
from pathlib import Path
from typing import Callable

from ..detect import (DEFAULT_CALIBRATION_PATH, DEFAULT_NEURAL_CALIBRATION_PATH, FEATURES, FLAG_FEATURES,
                      FLAG_FLOOR, NEURAL_SPAN_FEATURES, SPAN_FEATURES, TOKEN_FEATURES, Calibration, Engine,
                      document_readings, document_word_counts, flag_features, length_shift, neural_span_features,
                      text_words)
from ..lexicon import Channel
from ..logistic import LogisticModel, feature_vector, logit, sigmoid
from ..neural import NeuralScorer
from ..rescore import NeuralRescorer, RescoredChange
from ..text import overlaps, sentences
from ..trees import LEAF, BoostedTrees
from .channel import build_channel
from .corpus import iter_articles
from .spinner import Spinner, add_rewriter_marks


def change_correct(change, truth: dict[tuple[int, int], str]) -> bool:
    """A decoded change is right when a spinner change at the same place had that original."""
    right = truth.get((change.start, change.end))
    return right is not None and right == change.original.lower()


def spin_truth(spin_changes) -> dict[tuple[int, int], str]:
    return {(c.start, c.end): c.original_text.lower() for c in spin_changes}


# Shares of words the synthetic spinner changes in calibration documents. Real spun pages change
# 18-50% of their words (WER to the original on the dev pairs); below 15% a spin is too faint to
# tell from genuine prose, and teaching the document model to call such text spun raises its
# false alarms on genuine news.
SPIN_RATES = (0.15, 0.25, 0.35, 0.45)
# AI rewriters paraphrase rather than swap dictionary words: the copies that carry their marks
# ("4, 000", "U. N.", a flipped quote) are given fewer synonym swaps, so that the marks
# themselves are learned as evidence.
REWRITER_SPIN_RATES = (0.1, 0.2, 0.3)
# P(spun) is stated for a share of spun texts among those checked lower than the training set's one
# in two: the largest of `SPUN_PRIORS` at which at most `MAX_GENUINE_PARAGRAPHS_SPUN` of the genuine
# calibration paragraphs read as spun, their P(spun) from models fitted without their article (5-fold
# cross-validation; `choose_spun_prior`). Session 10's models: 5.0% at one in two, one in four chosen.
SPUN_PRIOR = "auto"
SPUN_PRIORS = (0.5, 0.45, 0.4, 0.35, 0.3, 0.25, 0.2, 0.15, 0.1, 0.05)
MAX_GENUINE_PARAGRAPHS_SPUN = 0.02


def make_documents(n_docs: int, seed: int, spinner, min_words=40, max_words=800, consistent: bool = False):
    """(text, label, spin result or None) rows: articles and single paragraphs, half spun. With
    `consistent`, half of the spun ones (alternating in pairs, so both channels of `fit` get some)
    are spun treating every occurrence of a term alike (`Spinner.spin`), as real spinners do."""
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
            fraction = rng.choice(SPIN_RATES)
            if i % 6 == 1:  # a third of the spun ones are AI-rewriter copies: marks, few swaps
                art = add_rewriter_marks(art, rng)
                fraction = rng.choice(REWRITER_SPIN_RATES)
            res = spinner.spin_to_fraction(art, fraction, seed=seed + i,
                                           consistent=consistent and (i // 4) % 2 == 1)
            rows.append((res.text, 1, res))
    return rows


def make_paragraphs(n_docs: int, seed: int, spinner, min_words=40, max_words=800, consistent: bool = False):
    """(text, label, spin result or None, article index) rows: every paragraph of the same
    calibration articles as `make_documents` (with its `n_docs`) on its own, half spun as
    `make_documents` spins. More examples of the unit many users check, for the document model
    alone: with 62 genuine paragraphs among its 743 rows it called 7% of genuine news paragraphs
    spun (bench/levers.md, session 10). `consistent` as for `make_documents`."""
    rng = random.Random(seed)
    articles = itertools.islice(iter_articles("calib", min_words=300, max_words=max_words), n_docs)
    rows = []
    for article_index, art in enumerate(articles):
        for para in art.split("\n"):
            if not min_words <= len(para.split()) <= max_words:
                continue
            i = len(rows)
            if i % 2 == 0:
                rows.append((para, 0, None, article_index))
                continue
            fraction = rng.choice(SPIN_RATES)
            if i % 6 == 1:
                para = add_rewriter_marks(para, rng)
                fraction = rng.choice(REWRITER_SPIN_RATES)
            res = spinner.spin_to_fraction(para, fraction, seed=seed + i,
                                           consistent=consistent and (i // 4) % 2 == 1)
            rows.append((res.text, 1, res, article_index))
    return rows


def token_labels(decoding, spin_changes) -> list[bool]:
    """For each token of a decoded sentence: was it inside a spinner change?"""
    return [any(overlaps(c.start, c.end, t.start, t.end) for c in spin_changes) for t in decoding.tokens]


def _logistic(names, rows, y, C: float = 1.0) -> LogisticModel:
    """A standardized logistic regression over the named features `names` of each row."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    X = np.asarray([feature_vector(names, r) for r in rows], dtype=float)
    mean = X.mean(axis=0)
    scale = X.std(axis=0)
    scale[scale == 0] = 1.0
    model = LogisticRegression(C=C, max_iter=2000).fit((X - mean) / scale, y)
    return LogisticModel(tuple(names), [float(c) for c in model.coef_[0]], float(model.intercept_[0]),
                         [float(m) for m in mean], [float(x) for x in scale])


def _decode_rows(rows, engine_of: Callable[[int], Engine]) -> list[tuple]:
    """(text, label, first-pass decodings, spin result) of each row, decoded by `engine_of(k)`."""
    decoded = []
    t0 = time.time()
    for k, (text, label, spin_result) in enumerate(rows):
        decoded.append((text, label, engine_of(k).decode(text), spin_result))
        if (k + 1) % 25 == 0:
            print(f"  decoded {k + 1}/{len(rows)} documents ({time.time() - t0:.0f}s)", file=sys.stderr)
    return decoded


def fit(engine: Engine, rows, description: str, held_out_engine: Engine | None = None,
        restore_rows=None, paragraph_rows=None, spun_prior: float | str | None = None) -> Calibration:
    """Fit, in order: the token classifier, the document model (which uses it), then, knowing each
    document's P(spun), the flag model, span Platt scaling and the span confidence model. Each model
    is stored with its feature names.

    With `held_out_engine` (the same models with a channel that lacks the spinner's dictionary),
    every other pair of documents is decoded by it instead: the models then learn from a spinner whose
    dictionary the channel holds and from one whose dictionary it does not, as real spinners are.

    With `restore_rows` (rows as `make_documents` makes them), the flag and change models learn
    from those instead of `rows`, each document with the P(spun) the document model gives it: a
    spinner that also swaps function words teaches restoration that such swaps happen without
    teaching the document model that function words are suspect (bench/levers.md).

    With `paragraph_rows` (rows as `make_paragraphs` makes them: paragraphs of the articles of
    `rows`, each with its article's index), the document model also learns from those, decoded by
    `engine`. With `spun_prior`, P(spun) is stated for that share of spun texts among those checked
    instead of the training set's own (half); "auto": the share `choose_spun_prior` picks from the
    cross-fitted P(spun) of the genuine paragraphs of `paragraph_rows`."""
    def engine_of(k: int) -> Engine:
        return held_out_engine if held_out_engine is not None and _held_out_row(k) else engine

    decoded = _decode_rows(rows, engine_of)

    tok_X, tok_y = [], []
    for text, label, decodings, spin_result in decoded:
        changes = spin_result.changes if spin_result is not None else []
        counts = document_word_counts(decodings)
        for d in decodings:
            for feats, lab in zip(engine.token_features(d, counts), token_labels(d, changes)):
                if feats is not None:
                    tok_X.append(feats)
                    tok_y.append(lab)
    token_model = _logistic(TOKEN_FEATURES, tok_X, tok_y)
    engine.calibration = Calibration(document=LogisticModel.zero(FEATURES), token=token_model)
    t_threshold = best_f1_threshold([engine.calibration.token_probability(x) for x in tok_X], tok_y,
                                    [x.change_p_spun > 0 for x in tok_X])
    engine.calibration.token_threshold = t_threshold

    doc_X = [engine.features(text, decodings) for text, _, decodings, _ in decoded]
    doc_y = [label for _, label, _, _ in decoded]
    # P(spun) is fitted on what the shipped channel sees (a genuine text decoded with a smaller
    # channel looks more genuine than it will at run time).
    main = [k for k in range(len(decoded)) if engine_of(k) is engine]
    train_X, train_y = [doc_X[k] for k in main], [doc_y[k] for k in main]
    train_article = list(main)  # row k of `rows` is article k
    if paragraph_rows:
        for text, label, decodings, article in _decode_rows(
                [(text, label, article) for text, label, _, article in paragraph_rows], lambda k: engine):
            train_X.append(engine.features(text, decodings))
            train_y.append(label)
            train_article.append(article)
    trained_document_model = _logistic(FEATURES, train_X, train_y)
    # The flag and span models learn how far to trust a document's P(spun); in-sample probabilities
    # would be over-sure, so each document gets the one a model fitted without its article gives.
    trained_models = fold_models(FEATURES, train_X, train_y, [a % CROSS_FOLDS for a in train_article])
    chosen = spun_prior == "auto"
    if chosen:
        genuine_paragraphs = [k for k in range(len(main), len(train_X)) if train_y[k] == 0]
        if not genuine_paragraphs:
            raise ValueError('spun_prior="auto" needs paragraph rows with genuine paragraphs')
        spun_prior = choose_spun_prior(
            [logit(trained_models.get(train_article[k] % CROSS_FOLDS, trained_document_model).probability(train_X[k]))
             for k in genuine_paragraphs], sum(train_y) / len(train_y))
    document_model = _at_prior(trained_document_model, train_y, spun_prior)
    models = {fold: _at_prior(model, train_y, spun_prior) for fold, model in trained_models.items()}
    shifts: tuple[tuple[int, float], ...] = ()
    if chosen:
        # The same rule for each length band, over every genuine text (articles and paragraphs).
        genuine = [k for k in range(len(train_X)) if train_y[k] == 0]
        shifts = choose_length_shifts(
            [text_words(train_X[k]) for k in genuine],
            [logit(trained_models.get(train_article[k] % CROSS_FOLDS, trained_document_model).probability(train_X[k]))
             for k in genuine], sum(train_y) / len(train_y), spun_prior)

    def cross_fitted(k: int, features) -> float:
        model = models.get(k % CROSS_FOLDS, document_model)
        return sigmoid(logit(model.probability(features)) + length_shift(shifts, features))

    if restore_rows is None:
        doc_p = [cross_fitted(k, x) for k, x in enumerate(doc_X)]
    else:
        # The same articles with other spins (row k of either set is article k).
        decoded = _decode_rows(restore_rows, engine_of)
        doc_p = [cross_fitted(k, engine.features(text, decodings))
                 for k, (text, _, decodings, _) in enumerate(decoded)]

    # What restoration works from: the spun pass for documents that read as spun, as `Engine.check` does.
    for k, ((text, label, decodings, spin_result), p) in enumerate(zip(decoded, doc_p)):
        decoded[k] = (text, label, engine_of(k).spun_pass(list(sentences(text)), decodings, p), spin_result)

    flag_X, flag_y, flag_doc = [], [], []
    # The labels of the words never flagged (P(substituted) under FLAG_FLOOR).
    below_floor: list[bool] = []
    span_X, span_y = [], []
    for k, ((text, label, decodings, spin_result), p) in enumerate(zip(decoded, doc_p)):
        changes = spin_result.changes if spin_result is not None else []
        # Changes: right when the spinner put exactly that original there; every change on genuine text is wrong.
        truth = spin_truth(changes)
        counts = document_word_counts(decodings)
        readings = document_readings(decodings)
        for d in decodings:
            token_feats = engine.token_features(d, counts)
            token_probs = engine.token_probabilities_of(token_feats)
            for feats, tp, lab in zip(token_feats, token_probs, token_labels(d, changes)):
                if feats is None:
                    continue
                if tp < FLAG_FLOOR:
                    below_floor.append(lab)
                    continue
                flag_X.append(flag_features(feats, tp, p))
                flag_y.append(lab)
                flag_doc.append(k)
            for c in d.changes:
                span_X.append(engine.span_features(c, token_probs, p, counts, readings))
                span_y.append(change_correct(c, truth))
    flag_model = _boosted_trees(FLAG_FEATURES, flag_X, flag_y, FLAG_TREES, FLAG_TREES_RISING)
    # The threshold that gives the best F1 of what a user sees, from probabilities of trees that did
    # not see the document (in-sample trees are over-sure). A user sees the words whose flag reaches
    # it, whether or not a decoded change covers them (`Span.suspect`; the confident changes, which
    # are shown too, are flagged all but always).
    flag_probs = cross_fitted_tree_probabilities(FLAG_FEATURES, flag_X, flag_y, [d % CROSS_FOLDS for d in flag_doc],
                                                 FLAG_TREES, FLAG_TREES_RISING)
    f_threshold = best_f1_threshold(flag_probs + [0.0] * len(below_floor), flag_y + below_floor)
    span_fit: dict = {}
    if len(set(span_y)) == 2:
        posterior_logit = [[x.posterior_logit] for x in span_X]
        (span_a,), span_b, _, _ = _logistic_raw(posterior_logit, span_y)
        span_fit = dict(span_a=span_a, span_b=span_b, span=_boosted_trees(SPAN_FEATURES, span_X, span_y))
    return Calibration(document=document_model, token=token_model, token_threshold=t_threshold,
                       flag=flag_model, flag_threshold=f_threshold, **span_fit, length_shifts=shifts,
                       trained_on=f"{description}; {len(rows)} documents, {len(tok_y)} word tokens "
                                  f"({sum(tok_y)} spun); document model: {len(train_y)} texts "
                                  f"({len(paragraph_rows or [])} of them paragraphs of the same articles), "
                                  f"{_prior_text(spun_prior, chosen)}{_shifts_text(shifts, spun_prior)}; "
                                  f"flag and change models: "
                                  f"{len(rows) if restore_rows is None else len(restore_rows)} documents, "
                                  f"{len(span_y)} decoded changes ({sum(span_y)} right)")


def _at_prior(model: LogisticModel, y, spun_prior: float | None) -> LogisticModel:
    """`model` (fitted on labels `y`) restated for a share `spun_prior` of spun texts: a logistic
    model's odds scale with the prior odds, so only the intercept moves."""
    if spun_prior is None:
        return model
    trained = sum(y) / len(y)
    return dataclasses.replace(model, intercept=model.intercept + logit(spun_prior) - logit(trained))


def choose_spun_prior(genuine_logits, trained_share: float, priors=SPUN_PRIORS,
                      max_spun: float = MAX_GENUINE_PARAGRAPHS_SPUN) -> float:
    """The largest share of spun texts in `priors` at which at most `max_spun` of genuine texts
    read as spun (P(spun) >= 0.5), given their P(spun) logits at the training set's share of spun
    texts (`trained_share`); the smallest of `priors` when none qualifies.

    >>> choose_spun_prior([-3.0, -2.0, -1.0, 0.3], 0.5, priors=(0.5, 0.4, 0.25), max_spun=0.2)
    0.4
    >>> choose_spun_prior([-3.0, 0.0, 0.6, 0.7], 0.5, priors=(0.5, 0.4, 0.25), max_spun=0.25)
    0.25
    """
    n = max(len(genuine_logits), 1)
    for prior in sorted(priors, reverse=True):
        shift = logit(prior) - logit(trained_share)
        if sum(1 for x in genuine_logits if x + shift >= 0.0) / n <= max_spun:
            return prior
    return min(priors)


# Length bands (minimum words) for which the share of spun texts P(spun) is stated is chosen apart,
# and the fewest genuine calibration texts a band needs for a choice of its own.
LENGTH_BANDS = (0, 50, 100, 200)
MIN_BAND_TEXTS = 100


def choose_length_shifts(words, genuine_logits, trained_share: float, spun_prior: float,
                         bands=LENGTH_BANDS, priors=SPUN_PRIORS) -> tuple[tuple[int, float], ...]:
    """(min words, log-odds shift from `spun_prior`) per band of `bands`: `choose_spun_prior` over
    the genuine texts of that length (`words` and `genuine_logits` give each one's length and its
    cross-fitted P(spun) logit at the training set's share of spun texts). A band with fewer than
    `MIN_BAND_TEXTS` texts keeps `spun_prior` (shift 0).

    >>> choose_length_shifts([40] * 100 + [500] * 100, [2.0] * 3 + [-2.0] * 97 + [-9.0] * 100, 0.5, 0.2,
    ...                      bands=(0, 200), priors=(0.5, 0.2, 0.05))
    ((0, -1.558), (200, 1.386))
    """
    out = []
    for i, lo in enumerate(bands):
        hi = bands[i + 1] if i + 1 < len(bands) else float("inf")
        band = [x for w, x in zip(words, genuine_logits) if lo <= w < hi]
        prior = choose_spun_prior(band, trained_share, priors) if len(band) >= MIN_BAND_TEXTS else spun_prior
        out.append((lo, round(logit(prior) - logit(spun_prior), 3)))
    return tuple(out)


def _shifts_text(shifts, spun_prior) -> str:
    if not shifts or spun_prior is None:
        return ""
    shares = ", ".join(f"{w}+ words {sigmoid(logit(spun_prior) + x):.2f}" for w, x in shifts)
    return f", by length (the same rule for each length band): {shares}"


def _prior_text(spun_prior: float | None, chosen: bool = False) -> str:
    if spun_prior is None:
        return "P(spun) for the training set's share of spun texts"
    how = (f" (chosen: at most {MAX_GENUINE_PARAGRAPHS_SPUN:.0%} of genuine paragraphs at P(spun) >= 0.5, "
           f"cross-validated)") if chosen else ""
    return f"P(spun) stated for {spun_prior:g} of checked texts spun{how}"


def _held_out_row(k: int) -> bool:
    """Rows go to the held-out channel in pairs, so that each channel sees genuine and spun rows
    alike (`make_documents` alternates them)."""
    return (k // 2) % 2 == 1


CROSS_FOLDS = 5


def fold_models(names, rows, y, fold_of: list[int]) -> dict[int, LogisticModel]:
    """{fold: a model fitted on the rows of the other folds} for each fold of `fold_of` (a row's
    fold) whose other rows hold both labels."""
    models = {}
    for k in sorted(set(fold_of)):
        train = [i for i in range(len(rows)) if fold_of[i] != k]
        if len({y[i] for i in train}) == 2:
            models[k] = _logistic(names, [rows[i] for i in train], [y[i] for i in train])
    return models


def fit_neural(engine: Engine, rescorer: NeuralRescorer, rows, description: str,
               progress=None) -> dict:
    """The confidence model of neural-rescored changes: P(right) from `NeuralSpanFeatures`, fitted
    on changes the rescorer decided in `rows` (a change on genuine text is always wrong)."""
    X, y = [], []
    for k, (text, _label, spin_result) in enumerate(rows):
        truth = spin_truth(spin_result.changes) if spin_result is not None else {}
        token_lists = list(sentences(text))
        if engine.not_english(token_lists) is None:
            view = engine.judge(text, token_lists, engine.decode_document(token_lists))
            # As `Engine.check` does: the token probabilities are those before rescoring.
            for d, token_probs in zip(view.decodings, view.token_probs):
                d = rescorer.rescore(text, d, engine.decoder)
                for c in d.changes:
                    if isinstance(c, RescoredChange):
                        X.append(neural_span_features(c, max(token_probs[c.first:c.last], default=0.0),
                                                      view.spin_probability))
                        y.append(change_correct(c, truth))
        if progress is not None:
            progress(k + 1)
    if len(set(y)) < 2:
        raise ValueError("the rescored changes are all right or all wrong: use more documents")
    model = _logistic(NEURAL_SPAN_FEATURES, X, y)
    return {"span": model.to_dict(),
            "trained_on": f"{description}; {len(rows)} documents, {len(y)} rescored changes ({sum(y)} right)"}


def best_f1_threshold(probs, labels, already_flagged=None) -> float:
    """The flag threshold with the best token F1, counting the tokens `already_flagged` marks (if
    given) as flagged whatever their probability."""
    if already_flagged is None:
        already_flagged = [False] * len(probs)
    best, best_f1 = 0.5, -1.0
    for thr in [x / 100 for x in range(5, 96, 5)]:
        tp = fp = fn = 0
        for p, y, covered in zip(probs, labels, already_flagged):
            pred = covered or p >= thr
            tp += pred and y
            fp += pred and not y
            fn += (not pred) and y
        f1 = 2 * tp / max(2 * tp + fp + fn, 1)
        if f1 > best_f1:
            best, best_f1 = thr, f1
    return best


# The change-confidence trees (scikit-learn's HistGradientBoostingClassifier, exported to
# `unspin.trees.BoostedTrees`). Chosen by 5-fold cross-validation over documents on the calibration
# set (bench/levers.md, session 6); no early stopping, so that a refit is deterministic.
SPAN_TREES = dict(max_iter=300, learning_rate=0.05, max_leaf_nodes=31, min_samples_leaf=20)
# Evidence the confidence may only rise with (the others may act either way): a change never loses
# confidence because the LM likes it more, the channel (or a spinner profile's bonus) scores it
# higher or its document reads more spun. Cross-validated on the calibration set the constraints
# cost 1% of the right changes at 0.5 (bench/levers.md). Whether the original stands elsewhere in
# the document is evidence either way: a spinner that draws anew at each match leaves it standing,
# one that treats a term alike throughout the page (as real ones do) removes it (session 11).
SPAN_TREES_RISING = ("posterior_logit", "lm_gain", "channel", "doc_logit", "alternative_margin")
# The flag trees (session 10): over the token model's evidence, its probability and the document's
# P(spun), rising in the last two. 5-fold cross-validation over documents on the calibration set
# (function-word spins, both channels): token F1 0.697 (the logistic flag model over the two
# probabilities) -> 0.752 (bench/levers.md).
FLAG_TREES = dict(max_iter=100, learning_rate=0.1, max_leaf_nodes=31, min_samples_leaf=20)
FLAG_TREES_RISING = ("token_logit", "doc_logit")


def _sklearn_trees(names, X, y, params: dict, rising_names: tuple[str, ...]):
    """scikit-learn's boosted trees fitted on the matrix `X` (columns: the features `names`)."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    rising = [1 if n in rising_names else 0 for n in names]
    return HistGradientBoostingClassifier(early_stopping=False, random_state=0, monotonic_cst=rising,
                                          **params).fit(X, y)


def _feature_matrix(names, rows):
    import numpy as np

    return np.asarray([feature_vector(names, r) for r in rows], dtype=float)


def cross_fitted_tree_probabilities(names, rows, y, fold_of: list[int], params: dict,
                                    rising_names: tuple[str, ...]) -> list[float]:
    """P(label) of each row from trees fitted on the rows of the other folds."""
    import numpy as np

    X, y, fold_of = _feature_matrix(names, rows), np.asarray(y), np.asarray(fold_of)
    out = np.zeros(len(rows))
    for fold in np.unique(fold_of):
        train, test = fold_of != fold, fold_of == fold
        if len(set(y[train].tolist())) < 2:
            continue
        out[test] = _sklearn_trees(names, X[train], y[train], params, rising_names).predict_proba(X[test])[:, 1]
    return out.tolist()


def _boosted_trees(names, rows, y, params: dict = SPAN_TREES,
                   rising_names: tuple[str, ...] = SPAN_TREES_RISING) -> BoostedTrees:
    """Boosted trees over the named features `names` of each row, as `unspin.trees.BoostedTrees`."""
    import numpy as np

    X = _feature_matrix(names, rows)
    clf = _sklearn_trees(names, X, y, params, rising_names)
    model = trees_from_sklearn(clf, names)
    # The export must give scikit-learn's own probabilities (its predictor layout is not public API).
    ours = model.raw_scores(X)
    theirs = clf.decision_function(X)
    if not np.allclose(ours, theirs, atol=1e-6):
        raise RuntimeError(f"exported trees differ from scikit-learn's (max |diff| {np.abs(ours - theirs).max():.3g})")
    return model


def trees_from_sklearn(clf, names) -> BoostedTrees:
    """A fitted binary HistGradientBoostingClassifier as `BoostedTrees` (numerical features, no missing values)."""
    import numpy as np

    feature, threshold, left, right, value, roots = [], [], [], [], [], []
    for predictors in clf._predictors:
        (tree,) = predictors  # binary classification: one tree per iteration
        nodes, offset = tree.nodes, len(feature)
        roots.append(offset)
        for node in nodes:
            if node["is_leaf"]:
                feature.append(LEAF); threshold.append(0.0); left.append(-1); right.append(-1)
                value.append(float(node["value"]))
            else:
                feature.append(int(node["feature_idx"])); threshold.append(float(node["num_threshold"]))
                left.append(offset + int(node["left"])); right.append(offset + int(node["right"]))
                value.append(0.0)
    base = float(np.ravel(clf._baseline_prediction)[0])
    return BoostedTrees(tuple(names), base, feature, threshold, left, right, value, roots)


def _logistic_raw(X, y, C: float = 10.0):
    """Logistic regression on unscaled inputs (Platt scaling keeps the logit's own scale)."""
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=C, max_iter=1000).fit(X, y)
    return [float(c) for c in model.coef_[0]], float(model.intercept_[0]), None, None


def _spun_prior(value: str) -> float | str:
    """`--spun-prior`: "auto" or a share strictly between 0 and 1."""
    if value == "auto":
        return value
    try:
        share = float(value)
    except ValueError:
        share = -1.0
    if not 0.0 < share < 1.0:
        raise argparse.ArgumentTypeError(f"expected 'auto' or a share between 0 and 1, got {value!r}")
    return share


def add_arguments(ap: argparse.ArgumentParser) -> None:
    """Options of `unspin calibrate`."""
    ap.add_argument("--n-docs", type=int, default=400, help="calibration documents from the 'calib' split (default 400)")
    ap.add_argument("--dictionary", default="moby", choices=("moby", "wordnet"),
                    help="synthetic spinner dictionary (default moby)")
    ap.add_argument("--exclude", nargs="*", default=[], help="channel sources to leave out while fitting")
    ap.add_argument("--channel", help="a prebuilt channel file to fit with (instead of building one)")
    ap.add_argument("--held-out-channel", help="a channel file without the spinner's dictionary (e.g. built with "
                    "--exclude moby): every other pair of documents is decoded with it, so that the models also learn "
                    "spinners whose dictionary the channel lacks")
    ap.add_argument("--function-swaps", action="store_true",
                    help="fit the flag and change confidence models on a second set of documents whose spinner "
                         "also swaps function words and phrases (the channel's function-word sets); the token "
                         "and document models still learn from the first set only")
    ap.add_argument("--consistent-spins", action="store_true",
                    help="half of the spun texts treat every occurrence of a term alike (one replacement "
                         "throughout, or none), as real spinners do within a page")
    ap.add_argument("--lm", help="KenLM model (default: the shipped one)")
    ap.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    ap.add_argument("--no-paragraphs", dest="paragraphs", action="store_false",
                    help="fit the document model on the documents alone, not also on every paragraph of "
                         "their articles (half of them spun)")
    ap.add_argument("--spun-prior", type=_spun_prior, default=SPUN_PRIOR,
                    help=f"the share of checked texts assumed spun, which P(spun) is stated for (the training "
                         f"texts are half spun); default auto: the largest share at which at most "
                         f"{MAX_GENUINE_PARAGRAPHS_SPUN * 100:g}%% of genuine calibration paragraphs read as spun "
                         f"(cross-validated; needs the paragraphs)")
    ap.add_argument("--out", default=None, help="where to write the calibration JSON (default: the shipped "
                    "calibration.json, or neural_calibration.json with --scorer neural)")
    ap.add_argument("--scorer", choices=("ngram", "neural"), default="ngram",
                    help="ngram: fit the main calibration; neural: fit only the confidence model of changes the "
                         "neural rescorer decides (needs the [neural] extra; slow: use --n-docs 40)")


def run(args: argparse.Namespace) -> int:
    """`unspin calibrate`: fit the spin-probability and confidence models and write them."""
    if args.channel:
        channel = Channel.load(args.channel)
    else:
        channel = build_channel(exclude=tuple(args.exclude)) if args.exclude else Channel.load_default()
    spinner = Spinner.from_name(args.dictionary)
    rows = make_documents(args.n_docs, args.seed, spinner, consistent=args.consistent_spins)
    if args.scorer == "neural":
        engine = Engine.load(lm_path=args.lm, channel=channel)
        rescorer = NeuralRescorer(NeuralScorer.load())
        out = args.out or str(DEFAULT_NEURAL_CALIBRATION_PATH)
        fitted = fit_neural(engine, rescorer, rows, f"corpus split 'calib' (Wikinews); spinner dictionary "
                                                    f"{args.dictionary}; the rescorer's default weights")
        Path(out).write_text(json.dumps(fitted, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {out}: {fitted['trained_on']}", file=sys.stderr)
        return 0
    engine = Engine.load(lm_path=args.lm, channel=channel, calibration=Calibration.uncalibrated())
    if args.channel:
        channel_desc = f"channel file {Path(args.channel).name}"
    else:
        channel_desc = f"channel without {','.join(args.exclude)}" if args.exclude else "the shipped channel"
    held_out = None
    if args.held_out_channel:
        held_out = Engine.load(lm_path=args.lm, channel=Channel.load(args.held_out_channel),
                               calibration=Calibration.uncalibrated())
        channel_desc += f"; every other pair of documents with channel file {Path(args.held_out_channel).name}"
    desc = f"corpus split 'calib' (Wikinews); spinner dictionary {args.dictionary}; {channel_desc}"
    if engine.spun_decoder is not None:
        desc += (f"; spun pass {engine.spun_prior_boost:g} log10 looser with "
                 f"{engine.spun_decoder.config.max_candidates} candidates per span")
    restore_rows = None
    if args.function_swaps:
        restore_rows = make_documents(args.n_docs, args.seed + 1, spinner.with_function_words(),
                                      consistent=args.consistent_spins)
        desc += "; flag and change models on other documents spun with function-word sets too"
    if args.consistent_spins:
        desc += "; half of all spun texts treat every occurrence of a term alike"
    if args.spun_prior == "auto" and not args.paragraphs:
        print("unspin calibrate: --spun-prior auto is chosen on the paragraphs; with --no-paragraphs "
              "give a share (e.g. --spun-prior 0.25)", file=sys.stderr)
        return 2
    paragraph_rows = (make_paragraphs(args.n_docs, args.seed + 2, spinner, consistent=args.consistent_spins)
                      if args.paragraphs else None)
    cal = fit(engine, rows, desc, held_out, restore_rows, paragraph_rows, args.spun_prior)
    out = args.out or str(DEFAULT_CALIBRATION_PATH)
    cal.save(out)
    print(f"wrote {out}: {cal.trained_on}", file=sys.stderr)
    return 0
