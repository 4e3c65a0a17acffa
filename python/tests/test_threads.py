"""Many Python threads querying one index give the answers one thread gives."""
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from copse import AnnoyIndex

THREADS = 8


@pytest.fixture
def index_and_queries(rng):
    X = rng.normal(size=(4000, 16)).astype(np.float32)
    Q = rng.normal(size=(150, 16)).astype(np.float32)
    t = AnnoyIndex(16, "angular")
    t.add_items(None, X)
    t.build(10)
    return t, Q


def answers(t, Q, order):
    out = {}
    for j in order:
        out[("v", j)] = t.get_nns_by_vector(Q[j], 20, include_distances=True)
        out[("i", j)] = t.get_nns_by_item(int(j) * 7, 20, search_k=500)
    return out


def test_threads_agree_with_one_thread(index_and_queries, rng):
    t, Q = index_and_queries
    want = answers(t, Q, range(len(Q)))
    orders = [rng.permutation(len(Q)) for _ in range(THREADS)]
    with ThreadPoolExecutor(THREADS) as pool:
        got = list(pool.map(lambda o: answers(t, Q, o), orders))
    for g in got:
        assert g == want


def test_batch_queries_from_threads(index_and_queries):
    t, Q = index_and_queries
    want = t.get_nns_by_vectors(Q, 15, n_threads=1)
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda n: t.get_nns_by_vectors(Q, 15, n_threads=n), [1, 2, -1, 3]))
    for g in got:
        assert (g == want).all()


def test_loaded_index_from_threads(index_and_queries, tmp_path):
    t, Q = index_and_queries
    t.save(str(tmp_path / "t.ann"))
    u = AnnoyIndex(16, "angular")
    u.load(str(tmp_path / "t.ann"))
    want = [t.get_nns_by_vector(q, 10) for q in Q]
    with ThreadPoolExecutor(THREADS) as pool:
        got = list(pool.map(lambda q: u.get_nns_by_vector(q, 10), Q))
    assert got == want


def test_build_releases_the_gil(rng):
    """A second thread keeps running Python code while build works."""
    t = AnnoyIndex(32, "euclidean")
    t.add_items(None, rng.normal(size=(20000, 32)).astype(np.float32))
    ticks = []
    stop = threading.Event()

    def ticker():
        while not stop.is_set():
            ticks.append(1)
            time.sleep(0.001)

    th = threading.Thread(target=ticker)
    th.start()
    start = len(ticks)
    t0 = time.monotonic()
    t.build(30, n_jobs=1)
    elapsed = time.monotonic() - t0
    stop.set()
    th.join()
    if elapsed < 0.05:
        pytest.skip("build finished too fast (%.3f s) to observe another thread" % elapsed)
    assert len(ticks) - start >= 5


def test_change_during_query_is_refused(rng):
    """unload while another thread queries without the GIL: RuntimeError, not a crash."""
    t = AnnoyIndex(32, "euclidean")
    t.add_items(None, rng.normal(size=(20000, 32)).astype(np.float32))
    t.build(20)
    Q = rng.normal(size=(500, 32)).astype(np.float32)
    result = {}

    def query():
        result["ids"] = t.get_nns_by_vectors(Q, 10, search_k=20000, n_threads=1)

    th = threading.Thread(target=query)
    th.start()
    time.sleep(0.05)
    refused = None
    try:
        t.unbuild()
    except RuntimeError as e:
        refused = e
    th.join()
    if refused is None:
        pytest.skip("the query finished before the test could interfere")
    assert "queried by another thread" in str(refused)
    assert result["ids"].shape == (500, 10)
    assert t.unbuild() is True  # allowed once the query is over


def test_serialize_is_a_reader(rng):
    """serialize only reads the index: it runs beside a query (Annoy's pair of calls need no
    exclusive access), while unbuild during it is refused as during a query."""
    t = AnnoyIndex(32, "euclidean")
    t.add_items(None, rng.normal(size=(20000, 32)).astype(np.float32))
    t.build(20)
    want = t.serialize()
    Q = rng.normal(size=(500, 32)).astype(np.float32)
    overlapped = threading.Event()

    def query():
        t.get_nns_by_vectors(Q, 10, search_k=20000, n_threads=1)

    th = threading.Thread(target=query)
    th.start()
    time.sleep(0.05)
    got = t.serialize()  # RuntimeError here before serialize became a reader
    if th.is_alive():
        overlapped.set()
    th.join()
    if not overlapped.is_set():
        pytest.skip("the query finished before serialize ran beside it")
    assert got == want
