"""Shared fixtures: a seeded random generator and Annoy's own reference program.

Every randomized test draws from `rng`, seeded from COPSE_TEST_SEED (default: a fresh seed,
printed in the test report header) so that a failure can be replayed exactly.
"""
import os
import random
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).resolve().parent
BUILD = HERE.parent / "build"
ANNOY_PKG = "r-cran-rcppannoy"
ANNOY_INCLUDE_IN_PKG = "usr/lib/R/site-library/RcppAnnoy/include"

SEED = int(os.environ.get("COPSE_TEST_SEED", random.randrange(2**32)))


def pytest_report_header(config):
    return "copse test seed: %d (replay with COPSE_TEST_SEED=%d)" % (SEED, SEED)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    # run-tests.sh runs pytest with -q, which hides the header: a failure still says its seed.
    if exitstatus != 0:
        terminalreporter.write_line(pytest_report_header(config))


@pytest.fixture
def rng(request):
    # One stream per test, derived from the run's seed and the test's name, so a test's
    # data does not depend on which other tests ran before it.
    return np.random.default_rng([SEED, sum(map(ord, request.node.nodeid))])


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    """Runs the test inside its own temporary folder (Annoy's tests write relative paths)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _fetch_annoy_package(dest):
    """Unpacks Debian's r-cran-rcppannoy (Annoy's annoylib.h) into dest; no R needed."""
    dest.mkdir(parents=True, exist_ok=True)
    if shutil.which("apt-get") is None or shutil.which("dpkg") is None:
        return "apt-get or dpkg is not available"
    got = subprocess.run(["apt-get", "download", ANNOY_PKG], cwd=dest, capture_output=True,
                         text=True)
    debs = sorted(dest.glob(ANNOY_PKG + "_*.deb"))
    if got.returncode != 0 or not debs:
        return "apt-get download %s failed: %s" % (ANNOY_PKG, got.stderr.strip()[-300:])
    subprocess.run(["dpkg", "-x", str(debs[-1]), str(dest / "root")], check=True)
    return None


def _annoy_include():
    """Folder holding annoylib.h, or (None, reason)."""
    env = os.environ.get("COPSE_ANNOY_INCLUDE")
    if env:
        return (Path(env), None) if (Path(env) / "annoylib.h").exists() else (
            None, "COPSE_ANNOY_INCLUDE=%s has no annoylib.h" % env)
    inc = BUILD / "annoy" / "root" / ANNOY_INCLUDE_IN_PKG
    if not (inc / "annoylib.h").exists():
        why = _fetch_annoy_package(BUILD / "annoy")
        if why:
            return None, why
    return inc, None


@pytest.fixture(scope="session")
def annoy_ref(tmp_path_factory):
    """Path of the compiled annoy_ref program (tests/annoy_ref.cpp built with Annoy's header).

    Skips the test when Annoy's header cannot be fetched: the only case where the
    compatibility tests may be skipped.
    """
    inc, why = _annoy_include()
    if inc is None:
        pytest.skip("Annoy's annoylib.h (Debian package %s) could not be fetched: %s"
                    % (ANNOY_PKG, why))
    if shutil.which("g++") is None:
        pytest.skip("g++ is needed to compile Annoy's reference program")
    exe = tmp_path_factory.mktemp("annoy_ref") / "annoy_ref"
    subprocess.run(["g++", "-std=c++17", "-O2", "-I", str(inc), str(HERE / "annoy_ref.cpp"),
                    "-o", str(exe), "-lpthread"], check=True)
    return exe
