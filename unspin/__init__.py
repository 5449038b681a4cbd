"""unspin: catch machine-spun text and undo it.

>>> from unspin import check
>>> result = check("The minister mentioned the plan.")   # doctest: +SKIP
>>> result.spin_probability, result.spans                 # doctest: +SKIP
>>> print(result.to_text())                               # doctest: +SKIP
>>> check(page_source).input_format                       # doctest: +SKIP
'html'
>>> from unspin import Engine
>>> engine = Engine.load()                                # doctest: +SKIP
>>> for r in engine.pipe(texts, n_process=4):             # doctest: +SKIP
...     print(r.verdict)
>>> from unspin import Index
>>> Index("refs.sqlite").trace(spun_text)                # doctest: +SKIP
"""
__version__ = "0.1.0"

from .detect import (CheckResult, Engine, RestoreResult, Span, VerdictThresholds, check,  # noqa: E402
                     restore)
from .index import Index  # noqa: E402
from .trace import Match  # noqa: E402

__all__ = ["check", "restore", "Engine", "CheckResult", "RestoreResult", "Span", "VerdictThresholds", "Index",
           "Match", "__version__"]
