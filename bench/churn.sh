#!/usr/bin/env bash
# bench/churn.sh: the living-index benchmark of issue 11 (bench/churn.cc): copse after 50%
# churn against a fresh build of the same live set and against hnswlib, on Fashion-MNIST.
#
#   bash bench/churn.sh                 recall on all 10,000 test queries, QPS on 2,000 in 3
#                                       rounds (about 5 minutes on a quiet machine, twice that
#                                       when other work shares it); writes bench/CHURN.md
#   bash bench/churn.sh --nq 1000 --reps 1
#                                       a short run (about 2 minutes); any option narrows the
#                                       run, which then writes build-bench/CHURN-partial.md
#                                       (and .csv) instead of bench/CHURN.md and CHURN.csv
#   options (passed to churn): --nq N (10000)  --nq-time N (2000)  --reps R (3)
#                              --base B (40000)  --batch N (1000)
#
# It installs what is missing from Debian (the data set, hnswlib, zlib, a compiler, cmake),
# builds copse's static library with its own CMake project in build-bench/ (Release, as a user
# builds it), compiles churn.cc there (-O3 -march=native: hnswlib's own flags; copse keeps its
# runtime dispatch), and runs it under flock /tmp/copse-bench.lock, so no other benchmark on
# the machine runs at the same time.
set -euo pipefail

BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH/.." && pwd)"
BUILD="$ROOT/build-bench"
case "${1:-}" in -h|--help) sed -n '2,/^set -e/p' "$0" | sed '$d'; exit 0 ;; esac
log() { printf '[churn.sh %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

bash "$ROOT/scripts/deps.sh" churn
DATA="$(dirname "$(dpkg -L dataset-fashion-mnist | grep 'train-images-idx3-ubyte.gz$')")"

log "building copse (cmake, Release) in build-bench"
mkdir -p "$BUILD"
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DCOPSE_BUILD_TESTS=OFF >"$BUILD/churn-build.log" 2>&1 ||
  { tail -20 "$BUILD/churn-build.log" >&2; exit 1; }
cmake --build "$BUILD" -j2 --target copse_static >>"$BUILD/churn-build.log" 2>&1 ||
  { tail -20 "$BUILD/churn-build.log" >&2; exit 1; }
log "compiling churn.cc"
g++ -std=c++17 -O3 -march=native -fopenmp-simd -Wall -Wextra -I"$ROOT/include" -o "$BUILD/churn" \
  "$BENCH/churn.cc" "$BUILD/libcopse.a" -lz -lpthread -lm

# CHURN.csv: the figures the targets are judged on, which bench/summarize.py puts into
# RESULTS.md (python3 bench/summarize.py --churn-only --md bench/RESULTS.md).
if [ $# -eq 0 ]; then OUTMD="$BENCH/CHURN.md" OUTCSV="$BENCH/CHURN.csv"
else OUTMD="$BUILD/CHURN-partial.md" OUTCSV="$BUILD/CHURN-partial.csv"; fi
log "waiting for /tmp/copse-bench.lock, then running (progress below)"
flock /tmp/copse-bench.lock "$BUILD/churn" --data "$DATA" --work "$BUILD" --csv "$BUILD/churn.csv" "$@" \
  >"$BUILD/churn.out"

commit="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
git -C "$ROOT" diff --quiet HEAD -- src include CMakeLists.txt 2>/dev/null || commit="$commit (library changed since)"
{
  cat "$BUILD/churn.csv"
  echo "meta,commit,,$commit"
  echo "meta,date,,$(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "meta,command,,bash bench/churn.sh${*:+ $*}"
} >"$OUTCSV"
{
  echo "# Living index: copse after 50% churn (issue 11)"
  echo
  echo "Written by \`bash bench/churn.sh${*:+ $*}\` on $(date -u '+%Y-%m-%d %H:%M UTC'); do not edit by hand."
  echo "Method: the comment at the top of \`bench/churn.cc\`."
  echo
  echo "| | |"
  echo "|---|---|"
  echo "| CPU | $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores |"
  echo "| copse | $commit, Release build (-O2, kernels chosen at run time) |"
  echo "| hnswlib | $(dpkg-query -W -f '${Version}' libhnswlib-dev) (Debian), -O3 -march=native |"
  echo "| compiler | $(g++ --version | head -1) |"
  echo
  echo "The machine is a shared 2-core VM: the run holds /tmp/copse-bench.lock, so no other"
  echo "benchmark ran beside it, but other work (builds, tests) may have; the load average below"
  echo "says how busy it was (about 1.0 is this program alone). Compare figures within this run."
  echo
  cat "$BUILD/churn.out"
} >"$OUTMD"
log "wrote ${OUTMD#"$ROOT"/} and ${OUTCSV#"$ROOT"/}"
cat "$BUILD/churn.out"
