#!/usr/bin/env bash
# tests/run-all.sh: the whole test suite, as `make test` and CI run it. Each layer runs even
# if an earlier one failed; the counts of every layer are added up into the closing line
# "N passed, N failed". Exit status 0 only when every layer ran and nothing failed.
#   layers: C unit tests (release), C tests under ASan+UBSan, threaded tests under TSan, the
#           layering check, ARM kernels under qemu, CLI tests (ctest), Python tests (pytest),
#           the examples/ programs, golden index files and the fuzz corpus replayed (both
#           ASan+UBSan). docs/TESTING.md describes each.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
jobs=${JOBS:-2}
passed=0
failed=0
broken=""

# Adds the counts found in a layer's output; a layer that printed no counts is broken.
tally() { # name, log, exit status
    local name=$1 log=$2 rc=$3 p f
    p=$(grep -Eo '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -1 | cut -d' ' -f1)
    f=$(grep -Eo '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -1 | cut -d' ' -f3)
    if [ -z "$p" ]; then
        broken="$broken $name"
        echo "== $name: no result line (exit $rc)"
        return
    fi
    passed=$((passed + p))
    failed=$((failed + f))
    [ "$rc" = 0 ] || [ "$f" != 0 ] || broken="$broken $name"
    echo "== $name: $p passed, $f failed"
}

configure() { # dir, extra cmake args
    local dir=$1
    shift
    cmake -S . -B "$dir" -DCOPSE_BUILD_TESTS=ON -DCOPSE_WERROR=ON "$@" >"$dir.configure.log" 2>&1 &&
        cmake --build "$dir" -j"$jobs" >"$dir.build.log" 2>&1 ||
        { cat "$dir.configure.log" "$dir.build.log" 2>/dev/null | tail -30; return 1; }
}

layer() { # name, command...
    local name=$1 log
    shift
    log=$(mktemp)
    echo "== $name"
    "$@" 2>&1 | tee "$log"
    tally "$name" "$log" "${PIPESTATUS[0]}"
    rm -f "$log"
}

# ctest's own summary, turned into the common line.
ctest_layer() { # build dir, ctest args...
    local dir=$1 out rc
    shift
    out=$(cd "$dir" && ctest --output-on-failure "$@" 2>&1)
    rc=$?
    echo "$out"
    local total fail
    total=$(echo "$out" | grep -Eo 'tests failed out of [0-9]+' | grep -Eo '[0-9]+$')
    fail=$(echo "$out" | grep -Eo '[0-9]+ tests failed' | grep -Eo '^[0-9]+')
    [ -n "$total" ] && echo "$((total - fail)) passed, $fail failed"
    return $rc
}

mkdir -p build-test
if configure build-test/release -DCMAKE_BUILD_TYPE=RelWithDebInfo; then
    layer "C unit tests" build-test/release/tests/copse_tests
    layer "layering: no circles among the library's objects" \
        python3 tests/layers/check.py $(find build-test/release/CMakeFiles/copse_obj.dir -name '*.o' | sort)
    layer "CLI tests" ctest_layer build-test/release -L cli -j"$jobs"
else
    broken="$broken release-build"
fi
if CC=gcc configure build-test/asan -DCOPSE_SANITIZE=address,undefined -DCOPSE_BUILD_CLI=OFF; then
    layer "C tests under ASan+UBSan" env ASAN_OPTIONS=detect_leaks=1 build-test/asan/tests/copse_tests
else
    broken="$broken asan-build"
fi
if CC=gcc configure build-test/tsan -DCOPSE_SANITIZE=thread -DCOPSE_BUILD_CLI=OFF; then
    layer "threaded C tests under TSan" env TSAN_OPTIONS=halt_on_error=1 build-test/tsan/tests/copse_tests threads/
else
    broken="$broken tsan-build"
fi
# ARM: the library and the C tests cross-compiled for aarch64 and run under qemu-user, so the
# NEON and ARMv8 CRC kernels meet the scalar reference and the forest's recall tests run on
# them (correctness only: emulated timings mean nothing). The graph recall cases are left to
# the native layers: under emulation they alone would take a minute; of quantized storage's,
# the round trip and the 8-bit recall cases run here (about 25 s), as the NEON code kernels'
# end-to-end check.
arm_layer() {
    local out rc
    configure build-test/aarch64 -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake \
        -DCOPSE_BUILD_CLI=OFF || return 1
    out=$(qemu-aarch64 -L /usr/aarch64-linux-gnu build-test/aarch64/tests/copse_tests \
        kernels/ checksum/ recall/forest/ storage/round_trip storage/recall/i8_ 2>&1)
    rc=$?
    echo "$out"
    # A build that fell back to the scalar kernels would pass while testing nothing of ARM's.
    if ! grep -q "compared with scalar: neon" <<<"$out" ||
        ! grep -q "tested: .*armv8" <<<"$out"; then
        echo "the NEON or ARMv8 CRC kernels did not run"
        echo "0 passed, 1 failed"
        return 1
    fi
    return $rc
}
layer "ARM kernels and recall under qemu-aarch64" arm_layer

# pytest's closing line ("40 passed, 2 xfailed in 9.1s", "1 failed, 39 passed ...") in
# the common form.
pytest_layer() {
    local out rc p f e
    out=$(bash python/run-tests.sh 2>&1)
    rc=$?
    echo "$out"
    local last
    last=$(echo "$out" | grep -E '[0-9]+ (passed|failed)' | tail -1)
    p=$(echo "$last" | grep -Eo '[0-9]+ passed' | grep -Eo '[0-9]+' || echo 0)
    f=$(echo "$last" | grep -Eo '[0-9]+ failed' | grep -Eo '[0-9]+' || echo 0)
    e=$(echo "$last" | grep -Eo '[0-9]+ errors?' | grep -Eo '[0-9]+' || echo 0)
    [ -n "$last" ] && echo "$p passed, $((f + e)) failed"
    return $rc
}
layer "Python tests" pytest_layer
# The programs in examples/, on small data (after the Python tests: they build the module).
layer "examples" /usr/bin/python3 tests/cli/run_examples.py --lib build-test/release/libcopse.a

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1

# Adds a "N passed, N failed" line from a program's output to the counts in $sub_passed and
# $sub_failed; a program that printed none, or failed without saying so, counts one failure.
sub_count() { # output, exit status
    local line
    line=$(grep -Eo '^[0-9]+ passed, [0-9]+ failed' <<<"$1" | tail -1)
    if [ -z "$line" ]; then
        sub_failed=$((sub_failed + 1))
        return
    fi
    set -- "$2" $line
    sub_passed=$((sub_passed + $2))
    sub_failed=$((sub_failed + $4))
    [ "$1" = 0 ] || [ "$4" != 0 ] || sub_failed=$((sub_failed + 1))
}

# Golden files (tests/golden, ASan+UBSan): the committed set, written by the library of the
# commit that made it (old files must keep reading), and a fresh set the generator writes with
# this library (valid files follow format changes).
golden_layer() {
    local out=build-test/golden log
    sub_passed=0 sub_failed=0
    make --no-print-directory -s -C tests/golden >"$out.build.log" 2>&1 ||
        { tail -30 "$out.build.log"; echo "0 passed, 1 failed"; return 1; }
    rm -rf "$out/fresh"
    if "$out/golden_gen" "$out/fresh" >"$out.gen.log" 2>&1; then
        echo "ok   the generator writes a fresh set"
        sub_passed=1
    else
        tail -30 "$out.gen.log"
        echo "FAIL the generator writes a fresh set"
        sub_failed=1
    fi
    for dir in tests/golden/files "$out/fresh"; do
        echo "-- $dir"
        log=$("$out/golden_check" "$dir" 2>&1)
        sub_count "$log" $?
        echo "$log"
    done
    echo "$sub_passed passed, $sub_failed failed"
    [ "$sub_failed" = 0 ]
}

# The fuzz corpus and regression inputs (tests/fuzz) through each target's replay driver
# (gcc, ASan+UBSan, no libFuzzer); a failing target names its failing inputs.
fuzz_layer() {
    local out=build-test/fuzz logs=build-test/fuzz-replay bin t dirs d f
    sub_passed=0 sub_failed=0
    make --no-print-directory -s -C tests/fuzz replay >"$out.build.log" 2>&1 ||
        { tail -30 "$out.build.log"; echo "0 passed, 1 failed"; return 1; }
    mkdir -p "$logs" # not beside the drivers, whose names the loop takes from the folder
    for bin in "$out"/replay-*; do
        t=${bin##*/replay-}
        dirs=""
        for d in tests/fuzz/corpus/$t tests/fuzz/regressions/$t; do
            [ -d "$d" ] && dirs="$dirs $d"
        done
        if [ -z "$dirs" ]; then
            echo "FAIL fuzz replay $t: no corpus"
            sub_failed=$((sub_failed + 1))
            continue
        fi
        # shellcheck disable=SC2086
        if "$bin" $dirs >"$logs/$t.log" 2>&1; then
            echo "ok   fuzz replay $t ($(tail -1 "$logs/$t.log" | grep -Eo '[0-9]+') inputs)"
            sub_passed=$((sub_passed + 1))
        else
            for f in $(find $dirs -type f | sort); do
                "$bin" "$f" >/dev/null 2>"$logs/one.log" || {
                    echo "  failing input: $f"
                    grep -E 'ERROR|invariant|runtime error' "$logs/one.log" | head -3
                }
            done
            echo "FAIL fuzz replay $t"
            sub_failed=$((sub_failed + 1))
        fi
    done
    echo "$sub_passed passed, $sub_failed failed"
    [ "$sub_failed" = 0 ]
}

# They use the ASan tree above; without it they report failure.
layer "golden index files (ASan+UBSan)" golden_layer
layer "fuzz corpus replay (ASan+UBSan)" fuzz_layer

echo
[ -n "$broken" ] && echo "layers with failures or no result:$broken"
echo "$passed passed, $failed failed"
[ -z "$broken" ] && [ "$failed" = 0 ]
