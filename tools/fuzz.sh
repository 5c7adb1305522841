#!/usr/bin/env bash
# Builds the libFuzzer target with clang (AddressSanitizer and UBSan on) and
# fuzzes scenario reading, validation, accounting and small simulations for
# the given number of seconds (default 60), starting from scenarios/.
#   tools/fuzz.sh [seconds] [build-dir]
# New inputs go to build-fuzz/corpus; a crashing input is written to the
# current folder as crash-<hash> and the script exits non-zero.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
build=${2:-build-fuzz}

packages=(clang libclang-rt-14-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo=""
  [[ $(id -u) -ne 0 ]] && sudo="sudo"
  $sudo apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi
tools/setup.sh >/dev/null  # the Debian packages stepsim itself needs
cmake -S . -B "$build" -G Ninja -DCMAKE_CXX_COMPILER=clang++ -DSTEPSIM_FUZZ=ON \
  -DSTEPSIM_TESTS=OFF >/dev/null
cmake --build "$build" --target scenario_fuzzer
mkdir -p "$build/corpus"
seeds=$(mktemp -d)
trap 'rm -rf "$seeds"' EXIT
cp scenarios/*.textproto "$seeds/"
log="$build/fuzz.log"
if ! "$build/tests/scenario_fuzzer" -max_total_time="$seconds" -timeout=20 -rss_limit_mb=4096 \
  -print_final_stats=1 "$build/corpus" "$seeds" >"$log" 2>&1; then
  tail -n 80 "$log"
  echo "fuzz: the fuzzer found a problem (input saved as crash-* in $(pwd))" >&2
  exit 1
fi
grep -E "^Done|number_of_executed_units|new_units_added|peak_rss_mb" "$log" || tail -n 5 "$log"
