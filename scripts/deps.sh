#!/usr/bin/env bash
# scripts/deps.sh GROUP...: installs the Debian packages a make target needs, when missing.
# Groups: build (compilers, cmake, libpng, zlib), test (build + sanitizer runtimes, Python
# headers, numpy, pytest, Dask distributed for copse.dask), demo (build + the Fashion-MNIST
# data set + python3 for the word vectors' converter; npm is found or installed by
# scripts/demo-words.sh itself, since Debian's npm conflicts with a Node.js installed from
# elsewhere), bench (demo + the peers: bench/run.sh), churn (build + the data set and
# hnswlib: bench/churn.sh).
set -euo pipefail

pkgs_build="gcc clang cmake make pkg-config libpng-dev zlib1g-dev"
pkgs_test="$pkgs_build libclang-rt-14-dev python3 python3-dev python3-numpy python3-pytest python3-setuptools python3-pip g++ python3-distributed python3-dask gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user"
pkgs_demo="$pkgs_build dataset-fashion-mnist python3"
# libopenblas0-openmp: the OpenBLAS faiss trains its IVF indexes with in bench/run.sh.
pkgs_bench="$pkgs_demo g++ libhnswlib-dev libfaiss-dev libopenblas0-openmp python3-matplotlib python3-numpy"
pkgs_churn="$pkgs_build dataset-fashion-mnist libhnswlib-dev g++"

want=""
for group in "$@"; do
    var="pkgs_$group"
    [ -n "${!var+x}" ] || { echo "deps.sh: unknown group '$group'" >&2; exit 2; }
    want="$want ${!var}"
done

missing=""
for p in $want; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    case "$status" in *"install ok installed"*) ;; *) missing="$missing $p" ;; esac
done
[ -z "$missing" ] && exit 0

echo "deps.sh: installing$missing" >&2
run=""
if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null || { echo "deps.sh: need root (or sudo) to install$missing" >&2; exit 1; }
    run="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$run apt-get update -qq
# shellcheck disable=SC2086
$run apt-get install -y -qq --no-install-recommends $missing >/dev/null
