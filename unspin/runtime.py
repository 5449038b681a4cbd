"""Process-wide settings for long runs of unspin (the CLI, scan workers).

Python's cyclic garbage collector walks every live container object on each full collection. A
long check or scan keeps hundreds of thousands of them alive on purpose (the decoder's candidate
lists, the fingerprinter's and the alignment judge's caches), so with the default thresholds
(700, 10, 10) the collector takes 10-15% of a `check --jsonl` run while finding little: almost
all of unspin's garbage is freed by reference counting. Fewer, larger collections keep cycles
collected and memory bounded at a fraction of the cost (bench/core.md, "speed").

>>> tune_garbage_collector()                     # doctest: +SKIP
>>> import gc; gc.get_threshold()                # doctest: +SKIP
(20000, 50, 50)
"""
from __future__ import annotations

import gc

# (allocations between young collections, young collections per middle one, middle per full one)
GC_THRESHOLDS = (20_000, 50, 50)


def tune_garbage_collector() -> None:
    """Set this process's collector thresholds to GC_THRESHOLDS (never lower than they are)."""
    current = gc.get_threshold()
    gc.set_threshold(*(max(a, b) for a, b in zip(GC_THRESHOLDS, current)))
