"""The examples in every public function's docstring run (doctest), as users read them in
`help(softcore.X)`."""

from __future__ import annotations

import doctest
import inspect

import numpy as np
import pytest
import softcore

FUNCTIONS = [n for n in softcore.__all__ if inspect.isbuiltin(getattr(softcore, n))]
WITH_EXAMPLES = [n for n in FUNCTIONS if ">>>" in (getattr(softcore, n).__doc__ or "")]


@pytest.mark.parametrize("name", WITH_EXAMPLES)
def test_docstring_examples_run(name):
    doc = getattr(softcore, name).__doc__
    globs = {"np": np, "softcore": softcore}
    test = doctest.DocTestParser().get_doctest(doc, globs, f"softcore.{name}", None, 0)
    flags = doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS
    runner = doctest.DocTestRunner(optionflags=flags)
    runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples of {name} failed"


def test_most_functions_have_examples():
    assert len(WITH_EXAMPLES) >= len(FUNCTIONS) // 2, sorted(set(FUNCTIONS) - set(WITH_EXAMPLES))
