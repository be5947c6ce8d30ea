"""Static typing: the README's examples and the package itself pass ``mypy --strict``.

The README examples are type-checked against the repository's stub (``python/softcore`` put on
``MYPYPATH``), so a wrong or missing overload (``softmax_regression(..., hessian=True)``
returning three values, ``pinv(..., return_info=True)`` two, ...) fails here. Both checks share
one mypy cache, so the second reuses NumPy's parsed stubs.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

try:
    from mypy import api as mypy_api
except ImportError:  # a test dependency (pip install .[test]); only skip without it
    mypy_api = None

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
PACKAGE = ROOT / "python" / "softcore"
CONFIG = ROOT / "pyproject.toml"

requires_mypy = pytest.mark.skipif(mypy_api is None, reason="mypy is not installed")


@pytest.fixture(scope="module")
def mypy_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("mypy_cache")


def run_mypy(args: list[str], cache: Path) -> tuple[int, str]:
    assert mypy_api is not None
    stdout, stderr, status = mypy_api.run(
        ["--strict", "--config-file", str(CONFIG), "--cache-dir", str(cache), *args]
    )
    return status, stdout + stderr


def readme_blocks() -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", README.read_text(encoding="utf-8"), re.M | re.S)


@requires_mypy
def test_readme_examples_type_check(
    tmp_path: Path, mypy_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocks = readme_blocks()
    assert blocks, "README.md has no ```python block"
    files = []
    for i, code in enumerate(blocks):
        path = tmp_path / f"readme_example_{i}.py"
        path.write_text(code, encoding="utf-8")
        files.append(str(path))
    # softcore from the repository's sources and stub, not whichever copy is installed.
    monkeypatch.setenv("MYPYPATH", str(PACKAGE.parent))
    status, out = run_mypy(files, mypy_cache)
    assert status == 0, f"mypy --strict on the README examples:\n{out}"


@requires_mypy
def test_package_is_strictly_typed(mypy_cache: Path) -> None:
    status, out = run_mypy([str(PACKAGE)], mypy_cache)
    assert status == 0, f"mypy --strict python/softcore:\n{out}"
    assert "Success: no issues found" in out, out
