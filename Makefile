# The two quick-start commands (README): `make demo` and `make test`.
PY ?= python3
PIP := $(PY) -m pip install --disable-pip-version-check

WHEELS := target/wheels
SMOKE_VENV := target/smoke-venv

.PHONY: demo test test-rust test-python wheel smoke lint bench

## Build, install and run the comparison table (softcore vs NumPy/SciPy, and PyTorch if present),
## one thread on both sides (NumPy's linalg rows use OpenBLAS, which otherwise takes every core).
demo:
	$(PIP) ".[bench]"
	cd /tmp && OPENBLAS_NUM_THREADS=1 $(PY) -m softcore bench

## Build and run every test: cargo (every ISA), pytest (default ISA, then forced scalar and AVX2),
## then the linters and the stub check.
test: test-rust test-python lint

test-rust:
	cargo test

## The abi3 wheel users install (maturin, release profile): the Python tests run on it.
wheel:
	$(PIP) "maturin>=1.9.4,<2"
	rm -rf $(WHEELS)
	$(PY) -m maturin build --release --out $(WHEELS)

## The forced-ISA runs repeat the kernel tests; the suites that test the Python surface (hostile
## input, typing, docs, Dask, threads, the bench) take the same path on every ISA and run once.
ISA_ONLY := $(foreach t,hostile typing docs doctests api_doc dask concurrency bench,\
	--ignore=tests/test_$(t).py)

test-python: wheel
	$(PY) -m pip uninstall -y -q softcore
	$(PIP) "$$(ls $(WHEELS)/softcore-*.whl)[test]"
	$(PY) -m pytest tests
	SOFTCORE_ISA=scalar $(PY) -m pytest tests $(ISA_ONLY)
	SOFTCORE_ISA=avx2 $(PY) -m pytest tests $(ISA_ONLY)
	$(MAKE) smoke

## The wheel in a clean venv (only its declared dependencies): import, compute, version.
smoke:
	rm -rf $(SMOKE_VENV)
	$(PY) -m venv $(SMOKE_VENV)
	$(SMOKE_VENV)/bin/python -m pip install -q --disable-pip-version-check $(WHEELS)/softcore-*.whl
	cd /tmp && $(CURDIR)/$(SMOKE_VENV)/bin/python -c "import numpy as np, softcore; \
	y = softcore.softmax(np.array([0.0, np.log(3.0)])); assert abs(y[1] - 0.75) < 1e-12; \
	print('smoke:', softcore.__version__, softcore.isa(), y)"
	$(SMOKE_VENV)/bin/python -m softcore --version

lint:
	cargo fmt --check
	cargo clippy --all-targets -- -D warnings
	$(PY) -m ruff check python tests benches
	$(PY) -m ruff format --check python tests benches
	cd /tmp && $(PY) -m mypy.stubtest softcore

## Criterion benchmarks (minutes): every algorithm and ISA, 1K..64M elements.
bench:
	cargo bench --bench softmax
