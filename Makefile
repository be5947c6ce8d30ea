# The two quick-start commands (README): `make demo` and `make test`.
PY ?= python3
PIP := $(PY) -m pip install --disable-pip-version-check

.PHONY: demo test test-rust test-python lint bench

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

test-python:
	$(PIP) ".[test]"
	$(PY) -m pytest tests
	SOFTCORE_ISA=scalar $(PY) -m pytest tests
	SOFTCORE_ISA=avx2 $(PY) -m pytest tests

lint:
	cargo fmt --check
	cargo clippy --all-targets -- -D warnings
	$(PY) -m ruff check python tests benches
	$(PY) -m ruff format --check python tests benches
	cd /tmp && $(PY) -m mypy.stubtest softcore

## Criterion benchmarks (minutes): every algorithm and ISA, 1K..64M elements.
bench:
	cargo bench --bench softmax
