"""copse: approximate nearest neighbours with a forest of random-projection trees.

``copse.Index`` (and ``copse.open``) is the numpy-first living index: items are added,
replaced and deleted after build and on a loaded file, beside running queries.

``copse.AnnoyIndex`` is a drop-in for ``annoy.AnnoyIndex`` (Annoy 1.17): the same methods,
keywords, defaults, return types and exceptions, so ``from copse import AnnoyIndex`` is the
only change most code needs. It adds batch calls that take and return numpy arrays and use
every core: ``add_items`` and ``get_nns_by_vectors``. See docs/PYTHON.md for the differences
from Annoy.

numpy is optional: without it, ``get_nns_by_vectors`` returns lists.

``copse.dask`` (import it explicitly; it needs numpy) splits one index into shards built and
queried as Dask distributed tasks, or in this process without a cluster.
"""

from . import _copse
from ._copse import Tags
from .living import Index, open  # noqa: A004 - copse.open is the living index's opener

try:
    import numpy as _np
except ImportError:  # numpy is optional; only the batch results need it
    _np = None

__all__ = ["AnnoyIndex", "Index", "Tags", "open", "__version__", "LIBRARY_VERSION", "FORMAT_VERSION"]

LIBRARY_VERSION = _copse.LIBRARY_VERSION
__version__ = LIBRARY_VERSION
FORMAT_VERSION = _copse.FORMAT_VERSION


def _rows_as_lists(rows, k, ids, dists, counts):
    """Batch results as lists of lists, each trimmed to its row's count (no numpy)."""
    ids_v = memoryview(ids).cast("q")
    counts_v = memoryview(counts).cast("q")
    dists_v = memoryview(dists).cast("f") if dists is not None else None
    out_ids, out_dists = [], []
    for r in range(rows):
        lo, hi = r * k, r * k + counts_v[r]
        out_ids.append(ids_v[lo:hi].tolist())
        if dists_v is not None:
            out_dists.append(dists_v[lo:hi].tolist())
    return (out_ids, out_dists) if dists_v is not None else out_ids


def _rows_as_arrays(rows, k, ids, dists):
    ids_a = _np.frombuffer(ids, dtype=_np.int64).reshape(rows, k)
    if dists is None:
        return ids_a
    return ids_a, _np.frombuffer(dists, dtype=_np.float32).reshape(rows, k)


class AnnoyIndex(_copse.Index):
    """AnnoyIndex(f, metric, *, storage="f32")

    An index of vectors of dimension ``f`` under ``metric``: 'angular', 'euclidean',
    'manhattan', 'dot' or 'hamming'. Leaving out ``metric`` gives 'angular' with Annoy's
    FutureWarning. ``storage`` (a copse keyword, Annoy has none) says how build stores the
    vectors: 'f32' as added, 'f16' (IEEE half, half the bytes) or 'i8' (8-bit codes per
    dimension, a quarter); the trees and graph are built from the full vectors either way,
    and get_item_vector then returns the decoded, approximate vector. ValueError for an
    unknown storage, or 'f16'/'i8' with 'hamming'.

    Life of an index: add_item / add_items, then build (or on_disk_build before adding),
    then query; or load a file saved earlier (copse's, or Annoy's .ann). A built or loaded index
    may be queried from many threads at once.
    """

    __slots__ = ()

    def get_nns_by_vectors(self, Q, n, search_k=-1, include_distances=False, n_threads=-1,
                           exact=False, filter=None):  # noqa: A002 - the issue's keyword
        """Returns the ``n`` closest items to each row of ``Q``, answered on ``n_threads``
        threads (-1: every CPU) with the GIL released. ``exact=True`` compares each row with
        every item (brute force: the ground truth for recall; ``search_k`` is then ignored).

        ``Q`` is a 2-D array of shape (m, f) or a sequence of vectors. With numpy, returns an
        int64 array of shape (m, k), k = min(n, len(self)), and with ``include_distances`` a
        tuple (ids, dists) with float32 distances; a row with fewer than k results is padded
        with id -1 and distance nan. Without numpy, returns lists of lists, each as long as
        its row's results.

        ``filter`` keeps the results to allowed items, as in get_nns_by_vector; a batch with
        a callable filter runs on one thread (the callable needs the GIL for every call).
        """
        rows, k, ids, dists, counts = self._search_batch(
            Q, n, search_k, include_distances, n_threads, exact, filter)
        if _np is None:
            return _rows_as_lists(rows, k, ids, dists, counts)
        return _rows_as_arrays(rows, k, ids, dists)

    def __repr__(self):
        cls = type(self)
        name = "copse.AnnoyIndex" if cls is AnnoyIndex else "%s.%s" % (cls.__module__,
                                                                       cls.__qualname__)
        state = self.state
        if state == "busy":
            return "<%s f=%d metric=%r busy>" % (name, self.f, self.metric)
        return "<%s f=%d metric=%r %s: %d items, %d trees>" % (
            name, self.f, self.metric, state, len(self), self.get_n_trees())
