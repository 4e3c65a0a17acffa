#!/usr/bin/env bash
# The Fashion-MNIST demo (`make demo`): installs Debian's dataset-fashion-mnist when it is
# missing, builds the copse command when it is not built yet, and runs `copse demo` on the
# 60,000 training and 10,000 test images. Extra arguments go to `copse demo` (see
# `copse demo --help`), e.g. `bash scripts/demo.sh --trees 20`.
#
# Environment: COPSE_BUILD_DIR (default: build/ in the source tree), COPSE (the copse
# executable, default $COPSE_BUILD_DIR/cli/copse), COPSE_DEMO_PNG (the picture, default
# $COPSE_BUILD_DIR/fashion-mnist-neighbours.png).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${COPSE_BUILD_DIR:-$root/build}
copse=${COPSE:-$build/cli/copse}
png=${COPSE_DEMO_PNG:-$build/fashion-mnist-neighbours.png}
package=dataset-fashion-mnist

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
  echo "demo: installing $package (Debian package, about 30 MB)" >&2
  # A fresh machine may have no package lists yet; update only when the install needs it.
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$package" ||
    { as_root apt-get update -q && as_root env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -q "$package"; }
fi

images=$(dpkg -L "$package" | grep -E '/train-images-idx3-ubyte(\.gz)?$' | head -n 1)
if [ -z "$images" ]; then
  echo "demo: $package is installed but has no train-images-idx3-ubyte" >&2
  exit 4
fi
data=$(dirname "$images")

if [ ! -x "$copse" ]; then
  echo "demo: building the copse command in $build" >&2
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$build" --target copse_cli -j "$(nproc)" >/dev/null
fi

mkdir -p "$(dirname "$png")"
# Exhaustive search of all 10,000 test images is most of the demo's time (about 1.5 minutes on
# 2 cores); recall measured on the first 2,000 keeps `make demo` near its 3-minute budget.
exec "$copse" demo "$data" -o "$png" --exact-limit 2000 "$@"
