"""The bench's machinery: interleaved medians, rows printed as measured and recorded for
--json, the floor column, and the command line (--version, bench --quick --json)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import pytest
import softcore
from softcore._bench_core import Bench, interleaved_medians


def test_interleaved_medians_calls_in_turn():
    order = []
    t = interleaved_medians(
        [lambda: order.append("a"), lambda: order.append("b")], budget=0.0, min_rounds=3
    )
    assert len(t) == 2 and all(x >= 0 for x in t)
    assert order == ["a", "b"] + ["a", "b"] * 3  # one warm-up call each, then alternating


def test_row_prints_and_records_with_a_floor():
    out = io.StringIO()
    bench = Bench(quick=True, out=out)
    line = bench.row("x", (2, 3), lambda: None, {"peer": lambda: None}, floor=("copy", lambda: 0))
    assert out.getvalue().strip() == line.strip()
    assert "| floor copy" in line and "peer" in line
    rec = bench.records[0]
    assert rec["name"] == "x" and rec["shape"] == [2, 3]
    assert set(rec["peers_ms"]) == {"peer"} and rec["floor"]["name"] == "copy"


def test_version_flag():
    r = subprocess.run(
        [sys.executable, "-m", "softcore", "--version"], capture_output=True, text=True
    )
    assert r.returncode == 0 and r.stdout.strip() == f"softcore {softcore.__version__}"


@pytest.mark.skipif("SOFTCORE_ISA" in os.environ, reason="once, on the default SIMD path")
def test_quick_bench_writes_json(tmp_path):
    path = tmp_path / "bench.json"
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    r = subprocess.run(
        [sys.executable, "-m", "softcore", "bench", "--quick", "--json", str(path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr
    data = json.loads(path.read_text())
    assert data["machine"]["isa"] == softcore.isa()
    names = {row["name"] for row in data["rows"]}
    assert {"softmax f32", "linear_attention elu1", "decode_attention"} <= names
    assert all(row["softcore_ms"] > 0 for row in data["rows"])
