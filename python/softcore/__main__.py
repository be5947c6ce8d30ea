"""`python -m softcore bench` prints softcore against NumPy/SciPy (and PyTorch if installed)."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    import softcore

    parser = argparse.ArgumentParser(prog="python -m softcore")
    parser.add_argument("--version", action="version", version=f"softcore {softcore.__version__}")
    sub = parser.add_subparsers(dest="cmd")
    b = sub.add_parser("bench", help="time softcore against NumPy/SciPy/PyTorch")
    b.add_argument("--quick", action="store_true", help="smaller sizes, fewer repeats")
    b.add_argument("--threads", type=int, default=1, help="softcore threads (default 1)")
    b.add_argument("--json", metavar="FILE", help="also write the rows and the machine as JSON")
    b.add_argument(
        "--plot",
        metavar="FILE.png",
        help="also plot softmax GB/s against size (copy roofline) and exact vs linear attention"
        " against n (needs matplotlib: pip install 'softcore[plot]')",
    )
    sub.add_parser(
        "info", help="print the version, SIMD path, threads, caches and softmax thresholds"
    )
    args = parser.parse_args(argv)
    if args.cmd == "bench":
        from softcore._bench import run

        run(quick=args.quick, threads=args.threads, json_path=args.json, plot_path=args.plot)
        return 0
    threads = softcore.get_num_threads()
    print(f"softcore {softcore.__version__}  isa={softcore.isa()}  threads={threads}")
    if args.cmd == "info":
        for key, value in softcore.cpu_info().items():
            print(f"  {key}: {value}")
    if args.cmd is None:
        parser.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
