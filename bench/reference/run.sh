#!/usr/bin/env bash
# bench/reference/run.sh: Annoy's recall on the data of tests/test_recall.c, next to copse's.
# Dumps each test case's items and queries (COPSE_DUMP_DIR), builds annoy_recall against
# Annoy's annoylib.h from Debian's r-cran-rcppannoy, and prints one line per case.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out="$root/bench/out/reference"
mkdir -p "$out/data"
vendor="$root/bench/peers/vendor/annoy"
if [ ! -f "$vendor/annoylib.h" ]; then
    tmp=$(mktemp -d)
    (cd "$tmp" && apt-get download r-cran-rcppannoy >/dev/null && dpkg -x r-cran-rcppannoy_*.deb x)
    mkdir -p "$vendor"
    cp "$tmp"/x/usr/lib/R/site-library/RcppAnnoy/include/{annoylib.h,kissrandom.h,mman.h} "$vendor/"
    rm -rf "$tmp"
fi
# Annoy's own setup.py flags.
g++ -O3 -march=native -ffast-math -fno-associative-math -std=c++14 -I"$vendor" \
    -o "$out/annoy_recall" "$here/annoy_recall.cc"
cmake -S "$root" -B "$root/build" >/dev/null && cmake --build "$root/build" -j2 --target copse_tests >/dev/null
COPSE_DUMP_DIR="$out/data" "$root/build/tests/copse_tests" recall/ | grep -E '^  ' | while read -r line; do
    echo "copse $line"
done
for base in "$out"/data/*.base.fvecs; do
    name=$(basename "$base" .base.fvecs)
    IFS=_ read -r metric kind n_trees search_k <<<"$name"
    r=$("$out/annoy_recall" "$metric" "$n_trees" "$search_k" "$base" "$out/data/$name.query.fvecs")
    echo "annoy $metric $kind trees=$n_trees search_k=$search_k: recall@10 $r"
done
