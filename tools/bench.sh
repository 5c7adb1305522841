#!/usr/bin/env bash
# Benchmarks `stepsim run` on DeepSeek-V3 and prints the figures: wall time
# (best of N runs) and peak RSS, report only and with a Chrome trace, for
# several micro-batch counts and pipeline sizes, and the trace write rate.
#   tools/bench.sh [build-dir] [runs]
# Needs GNU time (/usr/bin/time, Debian package `time`).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
runs=${2:-5}
bin="$build/stepsim"
scenario=scenarios/deepseek_v3.textproto
[[ -x $bin ]] || { echo "bench: build first (tools/setup.sh)" >&2; exit 2; }
[[ -x /usr/bin/time ]] || { echo "bench: needs /usr/bin/time (apt-get install time)" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# best wall seconds and max RSS (KiB) over $runs runs of "$@"
measure() {
  local best="" rss=0
  for ((i = 0; i < runs; i++)); do
    /usr/bin/time -f "%e %M" -o "$tmp/time" "$@" >/dev/null
    read -r wall kib <"$tmp/time"
    if [[ -z $best ]] || awk -v a="$wall" -v b="$best" 'BEGIN{exit !(a<b)}'; then best=$wall; fi
    ((kib > rss)) && rss=$kib
  done
  echo "$best $rss"
}

echo "stepsim benchmark: $(nproc) cores, $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
printf '%-34s %10s %10s %12s %14s\n' "case" "wall s" "RSS MiB" "trace MiB" "trace MiB/s"
for pp in 8 16 32; do
  for m in 64 128 256; do
    [[ $pp != 16 && $m != 128 ]] && continue
    sets=(--set "parallel.pp=$pp" --set parallel.layout= --set "batch.num_microbatches=$m")
    read -r wall kib < <(measure "$bin" run "$scenario" "${sets[@]}")
    printf '%-34s %10s %10d %12s %14s\n' "V3 PP$pp m=$m report only" "$wall" $((kib / 1024)) "-" "-"
    if [[ $m == 128 ]]; then
      read -r twall tkib < <(measure "$bin" run "$scenario" "${sets[@]}" --chrome-trace "$tmp/t.json")
      size=$(stat -c %s "$tmp/t.json")
      rate=$(awk -v s="$size" -v t="$twall" 'BEGIN{printf "%.0f", s / 1048576 / (t > 0 ? t : 1e-9)}')
      printf '%-34s %10s %10d %12d %14s\n' "V3 PP$pp m=$m with trace" "$twall" $((tkib / 1024)) \
        $((size / 1048576)) "$rate"
    fi
  done
done
