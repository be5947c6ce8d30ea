"""How `python -m softcore bench` times a row: softcore and its peers called in turn (peer,
..., softcore, peer, ..., softcore, ...) for a time budget, the median of each reported; the
row printed as soon as it is measured and kept for `--json`. Medians of interleaved calls, not
best-of: these VMs' speed drifts within seconds, interleaving gives every callable the same
drift and the median does not reward one lucky call."""

from __future__ import annotations

import platform
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

Fn = Callable[[], object]


def interleaved_medians(
    fns: list[Fn], budget: float = 0.5, min_rounds: int = 5, max_rounds: int = 200
) -> list[float]:
    """Median seconds per call of each callable, called in turn for about `budget` seconds."""
    for f in fns:
        f()  # warm up: first-touch allocation, caches, thread pool
    times: list[list[float]] = [[] for _ in fns]
    spent = 0.0
    rounds = 0
    while rounds < min_rounds or (spent < budget and rounds < max_rounds):
        for t, f in zip(times, fns):
            t0 = time.perf_counter()
            f()
            dt = time.perf_counter() - t0
            t.append(dt)
            spent += dt
        rounds += 1
    return [float(np.median(t)) for t in times]


def cpu_model() -> str:
    """The CPU's model name (Linux /proc/cpuinfo), else the platform's processor string."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@dataclass
class Bench:
    """Measures, prints and records rows."""

    quick: bool = False
    records: list[dict[str, Any]] = field(default_factory=list)
    out: Any = sys.stdout

    def row(
        self,
        name: str,
        shape: tuple[int, ...],
        ours: Fn,
        peers: Mapping[str, Fn],
        floor: tuple[str, Fn] | None = None,
    ) -> str:
        """One row: softcore's median ms, each peer's with (peer / softcore), and a floor
        (e.g. the copy of the same bytes) as softcore's multiple of it, not as a peer."""
        names = list(peers)
        fns = [peers[n] for n in names]
        if floor is not None:
            fns.append(floor[1])
        t = interleaved_medians([*fns, ours], budget=0.2 if self.quick else 0.6)
        mine = t[-1]
        cells = [f"{name:<28}", f"{'x'.join(map(str, shape)):>11}", f"{mine * 1e3:9.3f}"]
        for n, tp in zip(names, t):
            cells.append(f"{n} {tp * 1e3:8.3f} ({tp / mine:5.2f}x)")
        rec: dict[str, Any] = {
            "name": name,
            "shape": list(shape),
            "softcore_ms": mine * 1e3,
            "peers_ms": {n: tp * 1e3 for n, tp in zip(names, t)},
        }
        if floor is not None:
            tf = t[len(names)]
            cells.append(f"| floor {floor[0]} {tf * 1e3:8.3f} (softcore {mine / tf:4.2f}x it)")
            rec["floor"] = {"name": floor[0], "ms": tf * 1e3}
        line = "  ".join(cells)
        print(line, file=self.out, flush=True)
        self.records.append(rec)
        return line
