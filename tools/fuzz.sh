#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz/targets.txt with clang
# (AddressSanitizer and UBSan on) and fuzzes each in turn, starting from its
# seed folders, sharing the given total number of seconds (default 180).
#   tools/fuzz.sh [total-seconds] [build-dir] [target...]
# New inputs go to BUILD/corpus/TARGET; a crashing input (a signal, a
# sanitizer report, or a failure stepsim reports about itself) is written to
# the current folder as TARGET-crash-<hash> and the script exits non-zero
# after trying every target.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-180}
build=${2:-build-fuzz}
shift $(($# > 2 ? 2 : $#))

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

# name -> seed folders, from tests/fuzz/targets.txt.
declare -A seeds_of
targets=()
while read -r name folders; do
  [[ -z "$name" || "$name" == \#* ]] && continue
  targets+=("$name")
  seeds_of[$name]=$folders
done <tests/fuzz/targets.txt
if (($#)); then targets=("$@"); fi

cmake -S . -B "$build" -G Ninja -DCMAKE_CXX_COMPILER=clang++ -DSTEPSIM_FUZZ=ON \
  -DSTEPSIM_TESTS=OFF >/dev/null
cmake --build "$build" --target "${targets[@]}"

# The fuzz build lets UBSan recover (-fsanitize=fuzzer-no-link,...): make
# its first report end the run, as a crash, so that libFuzzer keeps the input.
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}

per=$((seconds / ${#targets[@]}))
((per >= 1)) || per=1
failed=()
for name in "${targets[@]}"; do
  [[ -n "${seeds_of[$name]+x}" ]] || { echo "fuzz: unknown target $name" >&2; exit 2; }
  corpus="$build/corpus/$name"
  seeds=$(mktemp -d)
  mkdir -p "$corpus"
  for folder in ${seeds_of[$name]}; do
    find "$folder" -maxdepth 1 -type f -exec cp {} "$seeds/" \;
  done
  log="$build/fuzz-$name.log"
  echo "fuzz: $name for $per s (seeds: ${seeds_of[$name]})"
  if "$build/tests/$name" -max_total_time="$per" -timeout=20 -rss_limit_mb=4096 \
    -print_final_stats=1 -artifact_prefix="$name-" "$corpus" "$seeds" >"$log" 2>&1; then
    grep -E "^Done|number_of_executed_units|new_units_added|peak_rss_mb" "$log" || tail -n 5 "$log"
  else
    tail -n 80 "$log"
    echo "fuzz: $name found a problem (input saved as $name-* in $(pwd))" >&2
    failed+=("$name")
  fi
  rm -rf "$seeds"
done
if ((${#failed[@]})); then
  echo "fuzz: problems found by: ${failed[*]}" >&2
  exit 1
fi
