#!/usr/bin/env bash
# bench/filtered/run.sh: filtered search on Fashion-MNIST (issue 12): copse, copse with
# post-filtering (as Annoy users do), hnswlib post-filtering and faiss HNSW with an
# IDSelector, in one process (filtered.cc says what each does). Writes the figures to stdout
# and bench/out/filtered/filtered.csv; bench/FILTERED.md holds a run's results.
#   bash bench/filtered/run.sh [--nq N] [--only "copse post hnswlib faiss"]
#   bash bench/filtered/run.sh --retag     copse alone: tag and id filters once the index has
#                                          changed under them (retag.c)
# Runs under the bench lock (/tmp/copse-bench.lock) so no other benchmark overlaps it.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
OUT="$ROOT/bench/out/filtered"
mkdir -p "$OUT"
need=()
for p in dataset-fashion-mnist libhnswlib-dev libfaiss-dev libopenblas0-openmp zlib1g-dev g++ cmake; do
  dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
# copse as the library ships (Release, no -march=native: it dispatches at run time); the
# driver with hnswlib's own flags (-O3 -march=native), as bench/run.sh builds its peers.
cmake -S "$ROOT" -B "$OUT/copse-build" -DCMAKE_BUILD_TYPE=Release -DCOPSE_BUILD_TESTS=OFF \
  -DCOPSE_BUILD_CLI=OFF -DCOPSE_WERROR=OFF >"$OUT/copse-build.log" 2>&1
cmake --build "$OUT/copse-build" --target copse_static -j2 >>"$OUT/copse-build.log" 2>&1
if [ "${1:-}" = --retag ]; then
  gcc -O2 -std=c11 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -I"$ROOT/include" -o "$OUT/retag" \
    "$HERE/retag.c" "$OUT/copse-build/libcopse.a" -lz -lpthread -lm
  echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(git -C "$ROOT" rev-parse --short HEAD) $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-), load $(cut -d' ' -f1-3 /proc/loadavg)"
  exec flock /tmp/copse-bench.lock "$OUT/retag" "$OUT"
fi
g++ -O3 -march=native -std=c++14 -fopenmp -I"$ROOT/include" -o "$OUT/filtered" "$HERE/filtered.cc" \
  "$OUT/copse-build/libcopse.a" -lfaiss -lblas -llapack -lz -lpthread -lm
echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(git -C "$ROOT" rev-parse --short HEAD) $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-)"
echo "# hnswlib $(dpkg-query -W -f '${Version}' libhnswlib-dev), faiss $(dpkg-query -W -f '${Version}' libfaiss-dev), load $(cut -d' ' -f1-3 /proc/loadavg)"
exec flock /tmp/copse-bench.lock env OMP_NUM_THREADS=1 "$OUT/filtered" "$OUT" "$@"
