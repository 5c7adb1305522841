#!/usr/bin/env bash
# Regenerates tests/golden/: what `stepsim run` writes for every ready
# scenario (scenarios/*.textproto), which tests/e2e/golden_outputs_test.cc
# compares byte for byte. Run it only when an output changes on purpose, and
# say so in the commit that changes it.
#   tools/regen_goldens.sh [BUILD_DIR]      # default build/
#
# Per scenario NAME:
#   NAME.summary.txt   the terminal summary
#   NAME.report.json   --report
#   NAME.csv           --timeline at a coarse resolution (small enough to keep;
#                      it shows where a change is)
#   NAME.sha256        SHA-256 of the full --timeline CSV and of the
#                      --chrome-trace JSON (too large to keep)
# The resolution is the step time over 16, rounded up to whole microseconds,
# so every file stays a few kB whatever the scenario.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
stepsim="$build/stepsim"
golden=tests/golden
[[ -x $stepsim ]] || { echo "regen_goldens: $stepsim not built" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$golden"
rm -f "$golden"/*.summary.txt "$golden"/*.report.json "$golden"/*.csv "$golden"/*.sha256

for scenario in scenarios/*.textproto; do
  name=$(basename "$scenario" .textproto)
  "$stepsim" run "$scenario" --report "$golden/$name.report.json" >"$golden/$name.summary.txt"
  resolution=$(/usr/bin/python3 -c 'import json,math,sys
print(max(1, math.ceil(float(json.load(open(sys.argv[1]))["step_time_us"]) / 16)))' \
    "$golden/$name.report.json")
  "$stepsim" run "$scenario" --timeline "$golden/$name.csv" \
    --timeline-resolution-us "$resolution" >/dev/null
  "$stepsim" run "$scenario" --timeline "$tmp/full.csv" >/dev/null
  "$stepsim" run "$scenario" --chrome-trace "$tmp/trace.json" >/dev/null
  {
    echo "resolution_us $resolution"
    echo "timeline $(sha256sum <"$tmp/full.csv" | cut -d' ' -f1)"
    echo "chrome_trace $(sha256sum <"$tmp/trace.json" | cut -d' ' -f1)"
  } >"$golden/$name.sha256"
  echo "regen_goldens: $name" >&2
done
