"""Documentation from one source: every public function's runtime docstring is the stub's."""

import ast
import inspect
from pathlib import Path

import pytest
import softcore
import softcore._core as core

STUB = Path(core.__file__).with_name("_core.pyi")


def stub_docs():
    tree = ast.parse(STUB.read_text())
    docs = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            doc = ast.get_docstring(node)
            if doc:
                docs[node.name] = doc
    return docs


FUNCTIONS = [n for n in softcore.__all__ if inspect.isbuiltin(getattr(softcore, n))]


@pytest.mark.parametrize("name", FUNCTIONS)
def test_runtime_doc_is_the_stub_doc(name):
    docs = stub_docs()
    assert name in docs, f"{name} has no docstring in _core.pyi"
    runtime = getattr(softcore, name).__doc__
    assert runtime is not None, f"{name}.__doc__ is None"
    assert inspect.cleandoc(runtime) == docs[name]


def test_every_public_function_is_checked():
    assert len(FUNCTIONS) >= 23
