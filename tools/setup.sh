#!/usr/bin/env bash
# Installs the Debian packages stepsim needs (only those missing) and builds
# it into build/. Safe to run again: it only installs and rebuilds what changed.
#   tools/setup.sh            # release build with debug info
#   BUILD_DIR=build-asan CMAKE_ARGS=-DSTEPSIM_SANITIZE=ON tools/setup.sh
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  cmake ninja-build g++ pkg-config
  libsimgrid-dev libboost-graph-dev libprotobuf-dev protobuf-compiler
  libspdlog-dev libgtest-dev libcli11-dev nlohmann-json3-dev
  python3-matplotlib python3-pandas
  python3-torch  # the calibration harness; tests read memory snapshots with torch
  slurm-wlm munge  # the Slurm round-trip test's local cluster (tools/slurm/)
)
# The viewer tests load traces in the DevTools trace engine (tests/viewers):
# Node and npm, Debian's unless the machine has its own (this one has Node 20).
if ! command -v npm >/dev/null || ! command -v node >/dev/null; then
  packages+=(nodejs npm)
fi
missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if ((${#missing[@]})); then
  sudo=""
  if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
  echo "setup: installing ${missing[*]}" >&2
  $sudo apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi

# The npm package the viewer tests load, pinned in its package-lock.json.
viewers=tests/viewers
if [[ ! -f $viewers/node_modules/.package-lock.json ]] ||
   ! cmp -s $viewers/package-lock.json $viewers/node_modules/.stepsim-lock; then
  echo "setup: npm ci in $viewers" >&2
  (cd "$viewers" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  cp $viewers/package-lock.json $viewers/node_modules/.stepsim-lock
fi

echo "setup: packages ready after $SECONDS s" >&2

build_dir=${BUILD_DIR:-build}
# shellcheck disable=SC2086  # CMAKE_ARGS is a list of words
cmake -S . -B "$build_dir" -G Ninja ${CMAKE_ARGS:-} >/dev/null
cmake --build "$build_dir"
