"""The logistic function, its inverse, and a standardized logistic regression over named features:
one home for all three (the decoder's posteriors, the calibrated probabilities and the confidence
models all go through them).

>>> model = LogisticModel(("a", "b"), coef=(1.0, -1.0), intercept=0.0, mean=(0.0, 0.0), scale=(1.0, 1.0))
>>> round(model.probability({"a": 2.0, "b": 2.0}), 3)
0.5
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

# Probabilities are clipped this far from 0 and 1 before a logit, so that a certain
# posterior gives a large finite evidence value rather than infinity.
EPSILON = 1e-6


def sigmoid(x: float) -> float:
    """1 / (1 + e^-x), without overflow for large |x|.

    >>> sigmoid(0.0)
    0.5
    """
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


def logit(p: float, eps: float = EPSILON) -> float:
    """log(p / (1 - p)), with p clipped to [eps, 1 - eps].

    >>> round(logit(0.5), 6)
    0.0
    """
    p = min(max(p, eps), 1 - eps)
    return math.log(p / (1 - p))


def feature_vector(names: Sequence[str], features: Mapping[str, float] | Any) -> list[float]:
    """The values of `features` in the order of `names`: the one place where a named feature
    vector (a mapping, or a NamedTuple such as `unspin.detect.TokenFeatures`) becomes an array.

    >>> feature_vector(("b", "a"), {"a": 1.0, "b": 2.0, "unused": 9.0})
    [2.0, 1.0]
    >>> feature_vector(("a", "c"), {"a": 1.0})
    Traceback (most recent call last):
    ...
    KeyError: "feature vector lacks ['c'] (has ['a'])"
    """
    fields = getattr(features, "_fields", None)
    if fields is not None:  # a NamedTuple: in order already when its fields are the names
        if tuple(fields) == tuple(names):
            return [float(x) for x in features]
        features = features._asdict()
    try:
        return [float(features[n]) for n in names]
    except KeyError:
        missing = [n for n in names if n not in features]
        raise KeyError(f"feature vector lacks {missing} (has {sorted(features)})") from None


@dataclass(frozen=True)
class LogisticModel:
    """A logistic regression over standardized named features:
    P(y=1 | x) = sigmoid(intercept + sum_i coef_i * (x_i - mean_i) / scale_i).

    >>> m = LogisticModel(("x",), coef=(2.0,), intercept=-1.0, mean=(1.0,), scale=(0.5,))
    >>> round(m.probability({"x": 1.25}), 4)        # z = -1 + 2 * 0.25 / 0.5 = 0
    0.5
    >>> LogisticModel.from_dict(m.to_dict(), expected=("x",)) == m
    True
    """

    features: tuple[str, ...]
    coef: tuple[float, ...]
    intercept: float
    mean: tuple[float, ...]
    scale: tuple[float, ...]

    def __post_init__(self):
        for name in ("features", "coef", "mean", "scale"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        n = len(self.features)
        if len(set(self.features)) != n:
            raise ValueError(f"duplicate feature names in {list(self.features)}")
        if not len(self.coef) == len(self.mean) == len(self.scale) == n:
            raise ValueError(f"a logistic model over {n} features needs {n} coefficients, means and scales; "
                             f"got {len(self.coef)}, {len(self.mean)}, {len(self.scale)}")

    @classmethod
    def zero(cls, features: Sequence[str]) -> "LogisticModel":
        """A model that says 0.5 for everything (a placeholder while other models are fitted).

        >>> LogisticModel.zero(("a", "b")).probability({"a": 3.0, "b": -1.0})
        0.5
        """
        n = len(features)
        return cls(tuple(features), (0.0,) * n, 0.0, (0.0,) * n, (1.0,) * n)

    def vector(self, features: Mapping[str, float] | Any) -> list[float]:
        """This model's features of a named vector, in its order (see `feature_vector`).

        >>> LogisticModel.zero(("b", "a")).vector({"a": 1.0, "b": 2.0})
        [2.0, 1.0]
        """
        return feature_vector(self.features, features)

    def probability(self, features: Mapping[str, float] | Any) -> float:
        """P(y=1 | features); `features` maps each of `self.features` to its value.

        >>> LogisticModel(("a",), (1.0,), 0.0, (0.0,), (1.0,)).probability({"a": 0.0})
        0.5
        """
        z = self.intercept
        for x, c, m, s in zip(self.vector(features), self.coef, self.mean, self.scale):
            z += c * (x - m) / s
        return sigmoid(z)

    def to_dict(self) -> dict:
        """The JSON form: feature names stored with the numbers.

        >>> LogisticModel.zero(("a",)).to_dict()
        {'features': ['a'], 'coef': [0.0], 'intercept': 0.0, 'mean': [0.0], 'scale': [1.0]}
        """
        return {"features": list(self.features), "coef": list(self.coef), "intercept": self.intercept,
                "mean": list(self.mean), "scale": list(self.scale)}

    @classmethod
    def from_dict(cls, data: Mapping, expected: Sequence[str] | None = None, name: str = "model") -> "LogisticModel":
        """Read `to_dict()`'s form; with `expected`, refuse (ValueError) other feature names or order.

        >>> LogisticModel.from_dict({"features": ["b"], "coef": [1], "intercept": 0, "mean": [0], "scale": [1]},
        ...                         expected=("a",))
        Traceback (most recent call last):
        ...
        ValueError: model features ['b'] differ from the code's ['a'] (missing ['a']; unknown ['b'])
        """
        try:
            features = list(data["features"])
            model = cls(tuple(features), tuple(data["coef"]), data["intercept"], tuple(data["mean"]),
                        tuple(data["scale"]))
        except (KeyError, TypeError) as err:
            raise ValueError(f"{name}: not a logistic model with named features ({err})") from None
        if expected is not None:
            require_features(features, expected, name)
        return model


def require_features(features: Sequence[str], expected: Sequence[str], name: str = "model") -> None:
    """Refuse (ValueError) a stored model whose feature names or their order differ from the code's:
    its numbers would be applied to the wrong evidence.

    >>> require_features(["a", "b"], ("a", "b"))
    >>> require_features(["b", "a"], ("a", "b"))
    Traceback (most recent call last):
    ...
    ValueError: model features ['b', 'a'] differ from the code's ['a', 'b'] (same names, other order)
    """
    if tuple(features) == tuple(expected):
        return
    missing = [f for f in expected if f not in features]
    unknown = [f for f in features if f not in expected]
    detail = (f"missing {missing}; unknown {unknown}" if missing or unknown else "same names, other order")
    raise ValueError(f"{name} features {list(features)} differ from the code's {list(expected)} ({detail})")
