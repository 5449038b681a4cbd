"""Gradient-boosted decision trees over named features, evaluated with numpy.

The change-confidence model (`unspin.detect.Calibration.span`) is a boosted tree ensemble: on the
calibration set it separates right from wrong changes better than a logistic regression over the
same evidence (bench/levers.md, session 6), because the evidence interacts (an LM gain means more
where the posterior has no close rival, and less beside other suspect words). It is fitted offline
with scikit-learn (`unspin.build.calibrate`), stored as plain numbers in the calibration JSON, and
evaluated here without scikit-learn.

A tree is a table of nodes; an inner node sends a row left when its feature is at most the node's
threshold. P(y=1) = sigmoid(base + the sum over trees of the leaf each row reaches).

>>> stump = BoostedTrees(("x",), base=0.0, feature=(0, -1, -1), threshold=(1.0, 0.0, 0.0),
...                      left=(1, -1, -1), right=(2, -1, -1), value=(0.0, -2.0, 2.0), roots=(0,))
>>> round(stump.probability({"x": 0.5}), 3), round(stump.probability({"x": 3.0}), 3)
(0.119, 0.881)
>>> BoostedTrees.from_dict(stump.to_dict(), expected=("x",)) == stump
True
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from .logistic import feature_vector, require_features, sigmoid

LEAF = -1  # the `feature` of a leaf node


@dataclass(frozen=True, eq=False)
class BoostedTrees:
    """A boosted ensemble of binary trees over named features (see the module docstring).

    The nodes of all trees share flat tables: node k tests `features[feature[k]] <= threshold[k]`
    and goes to `left[k]` or `right[k]`; a leaf has `feature[k] == LEAF` and contributes `value[k]`.
    `roots` holds each tree's first node.
    """

    features: tuple[str, ...]
    base: float
    feature: tuple[int, ...]
    threshold: tuple[float, ...]
    left: tuple[int, ...]
    right: tuple[int, ...]
    value: tuple[float, ...]
    roots: tuple[int, ...]

    def __post_init__(self):
        for name in ("features", "feature", "threshold", "left", "right", "value", "roots"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        n = len(self.feature)
        if not len(self.threshold) == len(self.left) == len(self.right) == len(self.value) == n:
            raise ValueError("every node needs a feature, threshold, left, right and value")
        if len(set(self.features)) != len(self.features):
            raise ValueError(f"duplicate feature names in {list(self.features)}")
        feature = np.asarray(self.feature, dtype=np.int64)
        inner = feature != LEAF
        if np.any(feature[inner] >= len(self.features)) or np.any(feature[inner] < 0):
            raise ValueError("a node tests a feature the model does not name")
        children = np.concatenate([np.asarray(self.left)[inner], np.asarray(self.right)[inner],
                                   np.asarray(self.roots, dtype=np.int64)])
        if children.size and (children.min() < 0 or children.max() >= n):
            raise ValueError("a node points outside the node table")
        # The arrays evaluation works on: each node's (left, right) child, a leaf pointing to itself.
        own = np.arange(n)
        left = np.where(inner, np.asarray(self.left, dtype=np.int64), own)
        right = np.where(inner, np.asarray(self.right, dtype=np.int64), own)
        _check_acyclic(left, right, np.asarray(self.roots, dtype=np.int64))
        object.__setattr__(self, "_leaf", ~inner)
        object.__setattr__(self, "_feature", np.where(inner, feature, 0))
        object.__setattr__(self, "_threshold", np.asarray(self.threshold, dtype=np.float64))
        object.__setattr__(self, "_children", np.stack([left, right], axis=1))
        object.__setattr__(self, "_value", np.asarray(self.value, dtype=np.float64))
        object.__setattr__(self, "_roots", np.asarray(self.roots, dtype=np.int64))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, BoostedTrees):
            return NotImplemented
        return all(getattr(self, f) == getattr(other, f) for f in
                   ("features", "base", "feature", "threshold", "left", "right", "value", "roots"))

    def raw_scores(self, rows: Sequence[Sequence[float]]) -> np.ndarray:
        """The ensemble's log-odds for each row of feature values (in `self.features` order)."""
        X = np.asarray(rows, dtype=np.float64).reshape(-1, len(self.features))
        m, n_trees = X.shape[0], len(self._roots)
        if m == 0 or n_trees == 0:
            return np.full(m, self.base)
        # One position per (row, tree); only those not yet at a leaf take the next step.
        at = np.tile(self._roots, m)
        row = np.repeat(np.arange(m), n_trees)
        live = np.flatnonzero(~self._leaf[at])
        while live.size:
            nodes = at[live]
            go_right = X[row[live], self._feature[nodes]] > self._threshold[nodes]
            at[live] = self._children[nodes, go_right.astype(np.intp)]
            live = live[~self._leaf[at[live]]]
        return self.base + self._value[at].reshape(m, n_trees).sum(axis=1)

    def probabilities(self, rows: Sequence[Mapping[str, float] | Any]) -> list[float]:
        """P(y=1) of each named feature vector (a mapping or a NamedTuple).

        >>> BoostedTrees(("x",), 0.0, (-1,), (0.0,), (-1,), (-1,), (1.0,), (0,)).probabilities([{"x": 5}])
        [0.7310585786300049]
        """
        return [sigmoid(float(z)) for z in self.raw_scores([feature_vector(self.features, r) for r in rows])]

    def probability(self, features: Mapping[str, float] | Any) -> float:
        """P(y=1 | features), as `LogisticModel.probability` (one named feature vector)."""
        return self.probabilities([features])[0]

    def to_dict(self) -> dict:
        """The JSON form: feature names with the node tables (`kind` tells it from a logistic model)."""
        return {"kind": "boosted_trees", "features": list(self.features), "base": self.base,
                "roots": list(self.roots), "feature": list(self.feature),
                "threshold": list(self.threshold), "left": list(self.left), "right": list(self.right),
                "value": list(self.value)}

    @classmethod
    def from_dict(cls, data: Mapping, expected: Sequence[str] | None = None, name: str = "model") -> "BoostedTrees":
        """Read `to_dict()`'s form; with `expected`, refuse (ValueError) other feature names or order."""
        try:
            model = cls(tuple(data["features"]), float(data["base"]), data["feature"], data["threshold"],
                        data["left"], data["right"], data["value"], data["roots"])
        except (KeyError, TypeError) as err:
            raise ValueError(f"{name}: not a boosted tree model with named features ({err})") from None
        except ValueError as err:
            raise ValueError(f"{name}: {err}") from None
        if expected is not None:
            require_features(model.features, expected, name)
        return model


def _check_acyclic(left: np.ndarray, right: np.ndarray, roots: np.ndarray) -> None:
    """Refuse (ValueError) node tables in which a walk from a root could go on for ever."""
    frontier, steps = np.unique(roots), 0
    while frontier.size:
        nxt = np.concatenate([left[frontier], right[frontier]])
        frontier = np.unique(nxt[nxt != np.concatenate([frontier, frontier])])
        steps += 1
        if steps > len(left):
            raise ValueError("the node tables hold a cycle")
