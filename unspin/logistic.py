"""The logistic function and its inverse: one home for both (the decoder's posteriors, the
calibrated probabilities and the confidence models all go through them)."""
from __future__ import annotations

import math

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
