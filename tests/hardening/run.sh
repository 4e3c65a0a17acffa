#!/usr/bin/env bash
# tests/hardening/run.sh LAYER: one hardening layer of `make test` (issue 6). Each prints its
# checks and ends with "N passed, N failed", which tests/run-all.sh adds up.
#   golden   golden index files, committed and freshly generated (ASan+UBSan)
#   fuzz     replay of the fuzz corpus and regression files without libFuzzer (ASan+UBSan)
#   c        C API bad-input table, leak loops (LeakSanitizer and fd/mapping/heap counts),
#            crash safety (SIGKILL during save and on-disk build), processes sharing one
#            file's pages (smaps), threads on a loaded index (TSan)
#   cli      the copse command's bad-input table
#   python   the Python module's bad-input table (pytest)
# Expects the build-test/{release,asan,tsan} trees that tests/run-all.sh configures.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"
out=$root/build-test/hardening
mkdir -p "$out"
passed=0
failed=0

# Runs a program that ends with "N passed, N failed" and adds its counts; a program that
# dies before its count line counts as one failure.
count() { # name, command...
    local name=$1 log rc p f
    shift
    log=$(mktemp)
    "$@" 2>&1 | tee "$log"
    rc=${PIPESTATUS[0]}
    p=$(grep -Eo '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -1 | cut -d' ' -f1)
    f=$(grep -Eo '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -1 | cut -d' ' -f3)
    rm -f "$log"
    if [ -z "$p" ]; then
        echo "FAIL $name: ended without a result (exit $rc)"
        failed=$((failed + 1))
        return
    fi
    [ "$rc" != 0 ] && [ "$f" = 0 ] && { echo "FAIL $name: exit $rc"; f=1; }
    passed=$((passed + p))
    failed=$((failed + f))
}

# A check that passes or fails as a whole.
one() { # name, command...
    local name=$1
    shift
    if "$@" >"$out/one.log" 2>&1; then
        echo "ok   $name"
        passed=$((passed + 1))
    else
        tail -30 "$out/one.log"
        echo "FAIL $name"
        failed=$((failed + 1))
    fi
}

build() { # make args...
    make --no-print-directory -s "$@" >"$out/build.log" 2>&1 || {
        cat "$out/build.log"
        echo "FAIL building: make $*"
        echo "$passed passed, $((failed + 1)) failed"
        exit 1
    }
}

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
export UBSAN_OPTIONS=print_stacktrace=1
case "${1:-}" in
golden)
    build -C tests/golden
    echo "-- committed files (tests/golden/files, format of the commit that wrote them)"
    count "golden files" "$out/../golden/golden_check" tests/golden/files
    echo "-- files the generator writes with this library"
    rm -rf "$out/golden-fresh"
    one "golden generator runs" "$out/../golden/golden_gen" "$out/golden-fresh"
    count "fresh golden files" "$out/../golden/golden_check" "$out/golden-fresh"
    ;;
fuzz)
    build -C tests/fuzz replay
    for bin in "$out"/../fuzz/replay-*; do
        t=${bin##*/replay-}
        dirs=""
        for d in tests/fuzz/corpus/$t tests/fuzz/regressions/$t; do
            [ -d "$d" ] && dirs="$dirs $d"
        done
        if [ -z "$dirs" ]; then
            echo "FAIL fuzz replay $t: no corpus"
            failed=$((failed + 1))
            continue
        fi
        # shellcheck disable=SC2086
        if "$bin" $dirs >"$out/replay-$t.log" 2>&1; then
            echo "ok   fuzz replay $t ($(tail -1 "$out/replay-$t.log" | grep -Eo '[0-9]+') inputs)"
            passed=$((passed + 1))
        else
            # Name the inputs that fail.
            for f in $(find $dirs -type f | sort); do
                "$bin" "$f" >/dev/null 2>"$out/replay-one.log" || {
                    echo "  failing input: $f"
                    grep -E 'ERROR|invariant|runtime error' "$out/replay-one.log" | head -3
                }
            done
            echo "FAIL fuzz replay $t"
            failed=$((failed + 1))
        fi
    done
    ;;
c)
    build -C tests/hardening all
    # A full disk and a read-only file system: small tmpfs mounts in a private mount
    # namespace (needs root or user namespaces); skipped, and said, when impossible.
    fs=$(mktemp -d)
    mkdir -p "$fs/full" "$fs/ro"
    if unshare -m true 2>/dev/null && unshare -m sh -c "mount -t tmpfs -o size=1m tmpfs '$fs/full'" 2>/dev/null; then
        count "C bad input" unshare -m sh -c "mount -t tmpfs -o size=1m tmpfs '$fs/full' && mount -t tmpfs -o ro,size=64k tmpfs '$fs/ro' && exec '$out/bad_input' --full '$fs/full' --readonly '$fs/ro'"
    else
        echo "skip full-disk and read-only cases: cannot mount a tmpfs here"
        count "C bad input" "$out/bad_input"
    fi
    rm -rf "$fs"
    count "leaks (LeakSanitizer)" "$out/leaks-asan" 80
    count "leaks (fds, mappings, heap)" "$out/leaks" 200
    count "crash safety" "$out/crash"
    count "processes share one file" "$out/procs"
    count "threads on a loaded index (TSan)" env TSAN_OPTIONS=halt_on_error=1 "$out/threads-tsan"
    ;;
cli)
    copse=$root/build-test/release/cli/copse
    count "CLI bad input" python3 "$here/cli_bad_input.py" --copse "$copse" \
        --golden "$root/tests/golden/files"
    ;;
python)
    # The module is built in place by python/run-tests.sh (the Python layer runs first).
    PYTHON=${PYTHON:-/usr/bin/python3}
    log=$(mktemp)
    (cd "$root/python" && "$PYTHON" -m pytest -q -p no:cacheprovider \
        "$here/test_python_bad_input.py") 2>&1 | tee "$log"
    last=$(grep -E '[0-9]+ (passed|failed)' "$log" | tail -1)
    p=$(echo "$last" | grep -Eo '[0-9]+ passed' | grep -Eo '[0-9]+' || echo 0)
    f=$(echo "$last" | grep -Eo '[0-9]+ failed' | grep -Eo '[0-9]+' || echo 0)
    e=$(echo "$last" | grep -Eo '[0-9]+ errors?' | grep -Eo '[0-9]+' || echo 0)
    rm -f "$log"
    [ -z "$last" ] && f=1
    passed=$((passed + p))
    failed=$((failed + f + e))
    ;;
*)
    echo "usage: $0 golden|fuzz|c|cli|python" >&2
    exit 2
    ;;
esac
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
