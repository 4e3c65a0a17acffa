#!/bin/sh
# Builds copse's Python module in place and runs its pytest suite with Debian's python3.
# Called by the root `make test`; extra arguments go to pytest (e.g. -k recall, -x).
# Exits non-zero on any failure, including a run that collected no tests.
set -eu
cd "$(dirname "$0")"
PYTHON=${PYTHON:-/usr/bin/python3}

mkdir -p build
"$PYTHON" setup.py -q build_ext --inplace >build/build-ext.log 2>&1 || {
    cat build/build-ext.log >&2
    echo "run-tests.sh: building the extension failed" >&2
    exit 1
}

status=0
"$PYTHON" -m pytest -q -p no:cacheprovider "$@" || status=$?  # testpaths: tests
if [ "$status" -eq 5 ]; then
    echo "run-tests.sh: pytest collected no tests" >&2
    exit 1
fi
exit "$status"
