"""copse.Index: a numpy-first living index: items can be added, replaced and deleted after
build and on a loaded file, with queries running beside the changes.

The engine is the same C core as copse.AnnoyIndex (``copse._copse.Index``); this class gives
it array-in, array-out calls and the changes Annoy never had. Every call that does work
releases the GIL.
"""

import os

from . import _copse

try:
    import numpy as _np
except ImportError:  # pragma: no cover - numpy is required for copse.Index
    _np = None


class _Core(_copse.Index):
    __slots__ = ()


def _need_numpy():
    if _np is None:
        raise ImportError("copse.Index needs numpy")


def _rows(X, dim, what):
    """X as a C-contiguous float32 array of shape (m, dim): a single vector gives m = 1."""
    a = _np.asarray(X, dtype=_np.float32)
    if a.ndim == 1:
        a = a.reshape(1, -1)
    if a.ndim != 2 or a.shape[1] != dim:
        raise ValueError("%s: expected shape (m, %d) or (%d,), got %s"
                         % (what, dim, dim, _np.shape(X)))
    if not _np.isfinite(a).all():
        raise ValueError("%s: NaN or infinite component" % what)
    return _np.ascontiguousarray(a)


def _ids(ids, n, what):
    a = _np.asarray(ids)
    if a.ndim == 0:
        a = a.reshape(1)
    if a.ndim != 1 or (n is not None and a.shape[0] != n):
        raise ValueError("%s: expected %s ids, got shape %s"
                         % (what, n if n is not None else "a 1-D array of", a.shape))
    if a.size and not _np.issubdtype(a.dtype, _np.integer):
        raise ValueError("%s: ids must be integers, got %s" % (what, a.dtype))
    a = a.astype(_np.int64, copy=False)
    if a.size and a.min() < 0:
        raise ValueError("%s: ids must be non-negative (got %d)" % (what, int(a.min())))
    return _np.ascontiguousarray(a)


def _tag_rows(tags, n):
    """Checks add's tags (one tag list per row) before anything is added."""
    if isinstance(tags, (str, bytes)) or len(tags) != n:
        raise ValueError("add: expected one tag list per row (%d), got %s"
                         % (n, len(tags) if not isinstance(tags, (str, bytes)) else "a string"))
    return [_copse.Tags(any=t).any for t in tags]  # ValueError / TypeError for a bad tag


class Index:
    """Index(dim, metric="angular", storage="f32")

    A living index of vectors of dimension ``dim`` under ``metric`` ('angular', 'euclidean',
    'manhattan', 'dot' or 'hamming'), its vectors stored as ``storage`` says: 'f32', 'f16'
    or 'i8' (see AnnoyIndex; items added after build stay float32 until ``compact``). ``add`` items, ``build``, then ``search``; after build
    (and on a file opened with ``copse.open``), ``add`` and ``delete`` keep working and queries
    from other threads may run meanwhile. ``compact`` folds the changes into a fresh build.
    """

    __slots__ = ("_core",)

    def __init__(self, dim, metric="angular", storage="f32", _core=None):
        _need_numpy()
        if _core is None:
            _core = _Core(dim, metric, storage=storage)
        _core._make_living()
        self._core = _core

    @property
    def dim(self):
        return self._core.f

    @property
    def metric(self):
        return self._core.metric

    @property
    def storage(self):
        """'f32', 'f16' or 'i8': how the built or loaded base stores its vectors."""
        return self._core.storage

    @property
    def state(self):
        """'adding', 'built', 'loaded' (or 'busy' while another thread builds or loads)."""
        return self._core.state

    def add(self, X, ids=None, tags=None):
        """Adds the rows of ``X`` (shape (m, dim), or one vector); returns their ids.

        ``ids`` default to consecutive numbers after the largest id so far. An id already in
        the index gets its new vector. Works before build and after (then the new items are
        linked into the index's graph as they arrive). ``tags`` is one tag list per row (ints
        in 0..63, for ``search(filter=copse.Tags(...))``), given to the rows once they are
        added (so a query from another thread may meet a new row before its tags); without
        ``tags`` a replaced item keeps the tags it had. Raises ValueError for a bad shape, a
        NaN, a negative id or a bad tag (TypeError for a tag that is not an int); nothing is
        added then."""
        X = _rows(X, self.dim, "add")
        if ids is None:
            start = self._core._max_id() + 1
            ids = _np.arange(start, start + X.shape[0], dtype=_np.int64)
        else:
            ids = _ids(ids, X.shape[0], "add")
        if tags is not None:
            tags = _tag_rows(tags, X.shape[0])
        if X.shape[0]:
            self._core.add_items(ids, X)
        if tags is not None:
            for i, t in zip(ids.tolist(), tags):
                self._core.set_tags(i, t)
        return ids

    def delete(self, ids):
        """Deletes the items ``ids`` (one id or a sequence): all of them, or none when one is
        not in the index (KeyError). Built or loaded indexes only."""
        ids = _ids(ids, None, "delete")
        self._core._delete(ids)

    def build(self, n_trees=-1, n_threads=-1):
        """Builds the forest and the graph (``n_trees=-1``: copse picks the count)."""
        self._core.build(n_trees, n_threads)
        return self

    def search(self, Q, k=10, search_k=-1, n_threads=-1, filter=None):  # noqa: A002
        """The ``k`` nearest items to each row of ``Q`` (shape (m, dim), or one vector, which
        gives m = 1): returns ``(ids, dists)``, int64 and float32 arrays of shape (m, k).
        A row with fewer than k results (fewer than k items, or fewer allowed) is padded
        with -1 and nan. ``search_k`` trades speed for recall as in AnnoyIndex; ``n_threads``
        threads (-1: every CPU) answer the rows with the GIL released.

        ``filter`` keeps the results to allowed items: an array or sequence of allowed ids
        (matching items added after build too), a callable ``f(id) -> bool`` (called with the
        GIL, on one thread; no change may run beside such a query: RuntimeError), or
        ``copse.Tags(any=[...], all=[...])`` (the tags as they are when the query runs)."""
        Q = _rows(Q, self.dim, "search")
        if k < 0:
            raise ValueError("search: k must be non-negative, got %d" % k)
        rows, got, ids, dists, counts = self._core._search_batch(Q, k, search_k, True, n_threads,
                                                                 False, filter)
        ids_a = _np.full((rows, k), -1, dtype=_np.int64)
        dists_a = _np.full((rows, k), _np.nan, dtype=_np.float32)
        if got:
            ids_a[:, :got] = _np.frombuffer(ids, dtype=_np.int64).reshape(rows, got)
            dists_a[:, :got] = _np.frombuffer(dists, dtype=_np.float32).reshape(rows, got)
        return ids_a, dists_a

    def save(self, path):
        """Writes the index and its changes to ``path`` atomically (OSError on failure).
        Processes that have the old file open keep reading it."""
        self._core.save(os.fspath(path))

    def compact(self, n_threads=-1):
        """Rebuilds the index from its live items: frees what deleted items held and brings
        queries back to a fresh build's speed and recall."""
        self._core._compact(n_threads)

    @property
    def n_added(self):
        """Items added since the base was built (0 after build and after compact)."""
        return self._core._changes()[0]

    @property
    def n_deleted(self):
        """Items deleted or replaced since the base was built, still held until compact."""
        return self._core._changes()[1]

    def get_vector(self, id):
        """The vector of item ``id`` as a float32 array (KeyError for an unknown id)."""
        try:
            return _np.asarray(self._core.get_item_vector(id), dtype=_np.float32)
        except IndexError:
            raise KeyError(id) from None

    def set_tags(self, id, tags):
        """Gives item ``id`` the tags ``tags`` (an int or an iterable of ints in 0..63),
        replacing any it had; ``[]`` clears them. Before build and after, on a loaded file
        too: queries from other threads see the change at once, ``save`` writes it. Raises
        KeyError for an id not in the index, ValueError for a tag out of range."""
        try:
            self._core.set_tags(id, tags)
        except IndexError:
            raise KeyError(id) from None

    def get_tags(self, id):
        """The tags of item ``id`` as a sorted list (KeyError for an unknown id)."""
        try:
            return self._core.get_tags(id)
        except IndexError:
            raise KeyError(id) from None

    def __len__(self):
        return len(self._core)

    def __contains__(self, id):
        return id in self._core

    def __repr__(self):
        return "<copse.Index dim=%d metric=%r %s: %d items>" % (
            self.dim, self.metric, self.state, len(self))


def open(path, prefault=False):  # noqa: A001 - the module's name for it, as the issue asks
    """Opens an index file (copse's, format 1 or 2) as an ``Index`` ready for queries and for
    changes; the file itself is never written until ``save``."""
    _need_numpy()
    core = _Core(1, "euclidean")
    core._open(os.fspath(path), prefault)
    return Index(core.f, core.metric, _core=core)
