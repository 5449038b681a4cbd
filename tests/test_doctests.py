"""The `>>>` examples in the docstrings run and say what the code does.

Examples that need the shipped models (the channel, the KenLM model, the decoder built on
them), input files or an index file are marked `# doctest: +SKIP`; the rest run here without
any model file. A failing
example's expected and actual output is printed to the captured stdout.
"""
import doctest
import importlib

import pytest

MODULES = ["unspin.text", "unspin.lexicon", "unspin.lm", "unspin.decode", "unspin.profile", "unspin.names",
           "unspin.fingerprint", "unspin.inputs", "unspin.trace", "unspin.index", "unspin.report", "unspin.serve",
           "unspin.scan", "unspin.trees", "unspin.logistic"]
# Modules with examples of pure functions: at least one must really run.
MUST_RUN = {"unspin.text", "unspin.profile", "unspin.names", "unspin.fingerprint", "unspin.inputs", "unspin.trace",
            "unspin.index", "unspin.scan", "unspin.trees"}


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    results = doctest.testmod(module, verbose=False, report=True)
    assert results.failed == 0, f"{results.failed} of {results.attempted} doctest examples failed in {name}"
    if name in MUST_RUN:
        assert results.attempted > 0, f"no doctest example ran in {name}"
