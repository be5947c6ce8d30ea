#!/bin/bash
# A/B timing of two builds of an example that prints "best <ms> ms per call ...", e.g.
#   cargo build --release --example soft_timing && cp target/release/examples/soft_timing /tmp/a
#   (change, rebuild, copy to /tmp/b)
#   LANDMARKS=given benches/ab.sh /tmp/a /tmp/b 6
# Runs A and B alternately (this VM's speed drifts within seconds, and both should see the
# same drift), REPS repetitions per run (default 150), and prints min and median per binary.
set -euo pipefail
rounds=${3:-8}
for _ in $(seq "$rounds"); do
  for b in "$1" "$2"; do echo "$b $("$b" "${REPS:-150}" | awk '{print $2}')"; done
done | python3 -c '
import statistics as st, sys
d = {}
for line in sys.stdin:
    b, t = line.split()
    d.setdefault(b, []).append(float(t))
for b, v in d.items():
    print(b, "min %.4f med %.4f" % (min(v), st.median(v)), " ".join("%.3f" % x for x in v))
'
