"""unspin: catch machine-spun text and undo it.

>>> from unspin import check
>>> result = check("The minister mentioned the plan.")   # doctest: +SKIP
>>> result.spin_probability, result.spans                 # doctest: +SKIP
>>> from unspin import Index
>>> Index("refs.sqlite").trace(spun_text)                # doctest: +SKIP
"""
__version__ = "0.1.0"

from .detect import CheckResult, Engine, RestoreResult, Span, check, restore  # noqa: E402
from .index import Index  # noqa: E402

__all__ = ["check", "restore", "Engine", "CheckResult", "RestoreResult", "Span", "Index", "__version__"]
