#!/usr/bin/env bash
# bench/filtered/retag.sh: what a tag or id filter costs once the index changed under it
# (retag.c says what it measures; bench/FILTERED.md, "Filters after changes", has a run).
# Runs under the bench lock (/tmp/copse-bench.lock) so no other benchmark overlaps it.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
OUT="$ROOT/bench/out/filtered"
mkdir -p "$OUT"
need=()
for p in dataset-fashion-mnist zlib1g-dev gcc cmake; do
  dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
cmake -S "$ROOT" -B "$OUT/copse-build" -DCMAKE_BUILD_TYPE=Release -DCOPSE_BUILD_TESTS=OFF \
  -DCOPSE_BUILD_CLI=OFF -DCOPSE_WERROR=OFF >"$OUT/copse-build.log" 2>&1
cmake --build "$OUT/copse-build" --target copse_static -j2 >>"$OUT/copse-build.log" 2>&1
gcc -O2 -std=c11 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -I"$ROOT/include" -o "$OUT/retag" \
  "$HERE/retag.c" "$OUT/copse-build/libcopse.a" -lz -lpthread -lm
echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(git -C "$ROOT" rev-parse --short HEAD) $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-), load $(cut -d' ' -f1-3 /proc/loadavg)"
exec flock /tmp/copse-bench.lock "$OUT/retag" "$OUT"
