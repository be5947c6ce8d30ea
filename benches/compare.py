"""Side-by-side timings of softcore against NumPy, SciPy and PyTorch (when installed).

    python benches/compare.py [--quick] [--threads N]

The same table as `python -m softcore bench`; every ratio is measured in one run.
"""

import sys

from softcore.__main__ import main

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]]))
