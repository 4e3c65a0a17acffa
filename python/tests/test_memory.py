"""Repeated construct / load / unload / destroy does not grow the process's memory (RSS)."""
import gc
import os

import numpy as np
import pytest

from copse import AnnoyIndex

PAGE = os.sysconf("SC_PAGE_SIZE")
# Allocator noise stays far below this; leaking one index handle (~1 KiB) per round of
# 3000 would exceed it.
SLACK = 2**20


def rss():
    with open("/proc/self/statm") as fp:
        return int(fp.read().split()[1]) * PAGE


def growth(step, warmup=100, rounds=3000):
    """RSS growth over `rounds` calls of step(), measured after `warmup` calls settle the
    allocator's pools."""
    for _ in range(warmup):
        step()
    gc.collect()
    before = rss()
    for _ in range(rounds):
        step()
    gc.collect()
    return rss() - before


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    rng = np.random.default_rng(5)
    path = str(tmp_path_factory.mktemp("mem") / "m.ann")
    t = AnnoyIndex(10, "angular")
    t.add_items(None, rng.normal(size=(2000, 10)).astype(np.float32))
    t.build(10)
    t.save(path)
    return path


def test_construct_add_build_destroy():
    X = np.random.default_rng(1).normal(size=(200, 10)).astype(np.float32)

    def step():
        t = AnnoyIndex(10, "euclidean")
        t.add_items(None, X)
        t.add_item(1000, X[0])
        t.build(3, n_jobs=1)
        t.get_nns_by_vector(X[1], 5, include_distances=True)

    assert growth(step) < SLACK


def test_load_unload(saved):
    t = AnnoyIndex(10, "angular")

    def step():
        t.load(saved)
        t.unload()

    assert growth(step, rounds=3000) < SLACK


def test_construct_load_destroy(saved):
    def step():
        t = AnnoyIndex(10, "angular")
        t.load(saved, prefault=True)
        t.get_nns_by_item(0, 10)

    assert growth(step, rounds=3000) < SLACK


def test_deserialize_unload(saved):
    data = open(saved, "rb").read()
    t = AnnoyIndex(10, "angular")

    def step():
        t.deserialize(bytearray(data))
        t.get_nns_by_item(1, 5)
        t.unload()

    assert growth(step, rounds=1000) < SLACK


def test_queries_and_errors(saved):
    t = AnnoyIndex(10, "angular")
    t.load(saved)
    Q = np.random.default_rng(2).normal(size=(20, 10)).astype(np.float32)

    def step():
        t.get_nns_by_item(3, 50, include_distances=True)
        t.get_nns_by_vectors(Q, 10, include_distances=True, n_threads=2)
        t.get_item_vector(7)
        for bad in (lambda: t.get_nns_by_item(10**6, 1), lambda: t.load("/nonexistent.ann"),
                    lambda: t.get_nns_by_vector([1.0] * 9, 1)):
            try:
                bad()
            except (IndexError, OSError):
                pass

    assert growth(step) < SLACK


def test_threads_free_their_scratch(saved):
    import threading
    t = AnnoyIndex(10, "angular")
    t.load(saved)

    def step():
        th = threading.Thread(target=t.get_nns_by_item, args=(0, 100))
        th.start()
        th.join()

    assert growth(step, rounds=1000) < SLACK
