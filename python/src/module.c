/*
 * module.c: copse._copse, the CPython binding of copse, shaped as a drop-in for Annoy 1.17's
 * annoy.AnnoyIndex (its annoymodule.cc is the reference for names, keywords, defaults,
 * return values and exception classes).
 *
 * Design notes
 * - One Python object owns one copse_index. The pure-Python layer (copse/__init__.py)
 *   subclasses the type here and adds what needs numpy; docs/PYTHON.md lists every
 *   deliberate difference from Annoy.
 * - Threads. Long calls (build, save, load, add_items, queries) release the GIL. A built or
 *   loaded copse_index is immutable, so any number of Python threads may query one object at
 *   once; each OS thread keeps one copse_scratch in thread-local storage, freed by a pthread
 *   key destructor when the thread ends. A call that changes the index must not overlap a
 *   query running without the GIL (Annoy crashes then). A reader count and a writer flag, only
 *   touched with the GIL held, turn that overlap into a RuntimeError instead.
 *   Rejected alternative: a lock taken without the GIL would make the overlap wait, but a
 *   thread blocked on it while another waits for the GIL is a deadlock waiting to happen.
 * - Ids are 64-bit and sparse: get_n_items() keeps Annoy's meaning (largest id + 1) so loops
 *   over range(get_n_items()) behave as before, while len() gives the number of items held.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

#include <math.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

#include "convert.h"
#include "copse.h"

typedef struct {
    PyObject_HEAD
    copse_index *ix;
    int f;
    copse_metric metric;
    int readers;    /* reads (queries, serialize) running with the GIL released */
    int writer;     /* a change running with the GIL released */
    int verbose;
    int has_seed;   /* set_seed was called: applied to every later build */
    uint64_t seed;
    int graph_degree; /* set_graph_degree's value, or -1: the library's default */
    copse_storage storage; /* the storage keyword: applied to every build */
    Py_buffer data;  /* the caller's buffer a deserialized index reads from, when has_data */
    int has_data;
    int living;     /* copse.Index: adds, deletes and saves after build, beside queries */
    int changing;   /* such a change running with the GIL released */
    int calling;    /* queries with a callable filter running (see pyfilter) */
} IndexObject;

/* ---- errors ------------------------------------------------------------------------------ */

static PyObject *exception_for(int status)
{
    switch (status) {
    case COPSE_ERR_ID:
    case COPSE_ERR_NOTFOUND:
    case COPSE_ERR_DIM:
        return PyExc_IndexError;
    case COPSE_ERR_ARG:
    case COPSE_ERR_VALUE:
    case COPSE_ERR_METRIC:
        return PyExc_ValueError;
    case COPSE_ERR_NOMEM:
        return PyExc_MemoryError;
    case COPSE_ERR_IO:
    case COPSE_ERR_NOTCOPSE:
    case COPSE_ERR_VERSION:
    case COPSE_ERR_CORRUPT:
        return PyExc_OSError;
    default:
        return PyExc_RuntimeError;
    }
}

/* Raises exc (or the class matching status when exc is NULL) with the library's detail
 * message, falling back to the static text of the code. Always returns NULL. */
static PyObject *raise_status(PyObject *exc, int status, const char *detail)
{
    if (exc == NULL)
        exc = exception_for(status);
    if (detail != NULL && detail[0] != '\0')
        PyErr_SetString(exc, detail);
    else
        PyErr_SetString(exc, copse_strerror(status));
    return NULL;
}

/* After a failed call that changes the index: copse_errmsg holds that call's detail. */
static PyObject *raise_index(IndexObject *self, PyObject *exc, int status)
{
    return raise_status(exc, status, copse_errmsg(self->ix));
}

/* After a failed call on a const index (copse_get_item, copse_get_distance): such a call has
 * nowhere to write its detail, so copse_errmsg still holds an earlier call's message, which
 * must not be shown as this one's. The code's text, after what was asked, says it. */
static PyObject *raise_const(const char *what, int status)
{
    return PyErr_Format(exception_for(status), "%s: %s", what, copse_strerror(status));
}

/* ---- per-thread scratch ------------------------------------------------------------------ */

static pthread_key_t scratch_key;

static void scratch_destroy(void *p)
{
    copse_scratch_free(p);
}

/* This thread's scratch, created on first use. NULL when it cannot be made: the library then
 * allocates a temporary one per call. Needs no GIL. */
static copse_scratch *thread_scratch(void)
{
    copse_scratch *s = pthread_getspecific(scratch_key);
    if (s == NULL && copse_scratch_new(&s) == COPSE_OK && pthread_setspecific(scratch_key, s) != 0) {
        copse_scratch_free(s);
        s = NULL;
    }
    return s;
}

static PyObject *raise_query(int status, copse_scratch *s)
{
    return raise_status(NULL, status, s ? copse_scratch_errmsg(s) : NULL);
}

/* ---- guarding against calls that overlap across threads ---------------------------------- */

/* The index whose callable filter this thread is running, while Python code runs inside it:
 * that code must not use the same index (copse.h forbids calling the library on the queried
 * index from the callback). */
static _Thread_local IndexObject *calling_back;

static int reentry_error(IndexObject *self)
{
    if (calling_back != self)
        return 0;
    PyErr_SetString(PyExc_RuntimeError, "a filter callable must not use the index it filters");
    return -1;
}

static int busy_error(void)
{
    PyErr_SetString(PyExc_RuntimeError,
                    "the index is being changed by another thread (build, save, load, add_items)");
    return -1;
}

/* What calls on the index refuse, in this order: a call from a filter callable on this index,
 * a write running with the GIL released, and the calls `others` counts (others_msg says
 * which; 0 for reads). */
static int refuse_beside(IndexObject *self, int others, const char *others_msg)
{
    if (reentry_error(self) < 0)
        return -1;
    if (self->writer)
        return busy_error();
    if (others) {
        PyErr_SetString(PyExc_RuntimeError, others_msg);
        return -1;
    }
    return 0;
}

/* For reads that keep the GIL. */
static int check_readable(IndexObject *self)
{
    return refuse_beside(self, 0, NULL);
}

static const char queried_msg[] =
    "the index is being queried by another thread; it cannot change meanwhile";

/* For changes that keep the GIL: no query may be running without it. */
static int check_writable(IndexObject *self)
{
    return refuse_beside(self, self->readers, queried_msg);
}

/* A change that releases the GIL: refuse_beside's checks, then no change may be running
 * (changing_msg); sets *flag (writer or changing) until the matching end_*. */
static int begin_guarded(IndexObject *self, int *flag, int others, const char *others_msg,
                         const char *changing_msg)
{
    if (refuse_beside(self, others, others_msg) < 0)
        return -1;
    if (self->changing) {
        PyErr_SetString(PyExc_RuntimeError, changing_msg);
        return -1;
    }
    *flag = 1;
    return 0;
}

/* A change that releases the GIL (build, save, load, add_items): from begin_write to
 * end_write every other call on the object is refused. */
static int begin_write(IndexObject *self)
{
    return begin_guarded(self, &self->writer, self->readers, queried_msg,
                         "the index is being changed by another thread "
                         "(add, delete, compact, save)");
}

/* A change to a built or loaded living index (add, delete, compact, save): the library lets
 * queries run beside it, so only other changes are refused. */
static int begin_change(IndexObject *self)
{
    return begin_guarded(self, &self->changing, self->calling,
                         "the index is being queried with a callable filter by another "
                         "thread; changes cannot run beside such a query",
                         "another thread is changing the index (one change at a time: "
                         "add, delete, compact, save)");
}

static void end_change(IndexObject *self)
{
    self->changing = 0;
}

/* Annoy refuses adds once an index is built; copse.AnnoyIndex keeps that, copse.Index adds. */
static int check_addable(IndexObject *self, const char *what)
{
    if (self->living || copse_state(self->ix) == COPSE_STATE_ADDING)
        return 0;
    PyErr_Format(PyExc_RuntimeError, "%s: the index is %s; items can only be added before "
                 "build (unbuild or unload first, or use copse.Index, which adds after build)",
                 what, copse_state(self->ix) == COPSE_STATE_BUILT ? "built" : "loaded");
    return -1;
}

static void end_write(IndexObject *self)
{
    self->writer = 0;
}

/* A read that releases the GIL (queries, serialize): from begin_read to end_read, changes
 * are refused and other reads may run beside it. */
static int begin_read(IndexObject *self)
{
    if (check_readable(self) < 0)
        return -1;
    self->readers++;
    return 0;
}

static void end_read(IndexObject *self)
{
    self->readers--;
}

/* begin_read for a query, which also needs a built or loaded index. The state is read only
 * once no writer can be changing it. */
static int begin_query(IndexObject *self)
{
    if (begin_read(self) < 0)
        return -1;
    if (copse_state(self->ix) == COPSE_STATE_ADDING) {
        end_read(self);
        PyErr_SetString(PyExc_RuntimeError,
                        "the index is not built: call build() or load() before querying");
        return -1;
    }
    return 0;
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ---- construction ------------------------------------------------------------------------ */

static int parse_metric(const char *name, copse_metric *out)
{
    if (name == NULL) {
        /* Annoy's warning, word for word, so code that filters it keeps working. */
        if (PyErr_WarnEx(PyExc_FutureWarning,
                         "The default argument for metric will be removed in future version of "
                         "Annoy. Please pass metric='angular' explicitly.", 1) < 0)
            return -1;
        *out = COPSE_ANGULAR;
        return 0;
    }
    if (copse_metric_from_name(name, out) != COPSE_OK) {
        PyErr_SetString(PyExc_ValueError, "No such metric");
        return -1;
    }
    return 0;
}

static int new_handle(int f, copse_metric metric, copse_index **out)
{
    copse_index *ix = NULL;
    int st = copse_new(f, metric, &ix);
    if (st != COPSE_OK) {
        raise_status(st == COPSE_ERR_NOMEM ? PyExc_MemoryError : PyExc_ValueError, st,
                     copse_errmsg(ix));
        copse_free(ix);
        return -1;
    }
    *out = ix;
    return 0;
}

/* Puts fresh in place of the current handle. The old handle goes first: it may still read
 * from the buffer it was deserialized from, which is released after it. data (may be NULL)
 * is the buffer fresh reads from, now owned by self. */
static void replace_handle(IndexObject *self, copse_index *fresh, Py_buffer *data)
{
    copse_free(self->ix);
    self->ix = fresh;
    /* Settings for the next build outlive unload, as set_seed's does. */
    if (fresh && copse_state(fresh) == COPSE_STATE_ADDING) {
        if (self->has_seed)
            copse_set_seed(fresh, self->seed);
        if (self->graph_degree >= 0)
            copse_set_graph_degree(fresh, self->graph_degree);
        copse_set_storage(fresh, self->storage); /* checked when the keyword was given */
    }
    if (self->has_data)
        PyBuffer_Release(&self->data);
    self->has_data = data != NULL;
    if (data)
        self->data = *data;
}

/* The storage keyword: None or "f32", "f16", "i8". */
static int parse_storage(const char *name, copse_storage *out)
{
    *out = COPSE_STORAGE_F32;
    if (name && copse_storage_from_name(name, out) != COPSE_OK) {
        PyErr_Format(PyExc_ValueError, "storage must be 'f32', 'f16' or 'i8', got '%s'", name);
        return -1;
    }
    return 0;
}

static PyObject *Index_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"f", "metric", "storage", NULL};
    int f;
    const char *metric_name = NULL, *storage_name = NULL;
    copse_metric metric;
    copse_storage storage;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "i|z$z", kwlist, &f, &metric_name,
                                     &storage_name))
        return NULL;
    if (parse_storage(storage_name, &storage) < 0)
        return NULL;
    if (f < 1 || f > COPSE_MAX_DIM)
        return PyErr_Format(PyExc_ValueError, "f must be between 1 and %d, got %d",
                            COPSE_MAX_DIM, f);
    if (parse_metric(metric_name, &metric) < 0)
        return NULL;
    IndexObject *self = (IndexObject *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    self->f = f;
    self->metric = metric;
    self->graph_degree = -1;
    self->storage = storage;
    if (new_handle(f, metric, &self->ix) < 0) {
        Py_DECREF(self);
        return NULL;
    }
    int st = copse_set_storage(self->ix, storage);
    if (st != COPSE_OK) { /* hamming: its bits are packed already */
        raise_index(self, PyExc_ValueError, st);
        Py_DECREF(self);
        return NULL;
    }
    return (PyObject *)self;
}

/* The arguments were used by Index_new; this only accepts them (as Annoy's py_an_init). */
static int Index_init(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"f", "metric", "storage", NULL};
    int f;
    const char *metric = NULL, *storage = NULL;
    (void)self;
    return PyArg_ParseTupleAndKeywords(args, kwargs, "i|z$z", kwlist, &f, &metric, &storage) ? 0
                                                                                              : -1;
}

static void Index_dealloc(IndexObject *self)
{
    replace_handle(self, NULL, NULL);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* ---- arguments --------------------------------------------------------------------------- */

/* Room for one vector of the index's dimension (PyMem_RawFree it), or NULL with MemoryError. */
static float *alloc_vector(IndexObject *self)
{
    float *v = PyMem_RawMalloc((size_t)self->f * sizeof(float));
    if (v == NULL)
        PyErr_NoMemory();
    return v;
}

/* A vector argument (list, tuple, buffer or sequence of f numbers) as f floats in a new
 * array (PyMem_RawFree it), or NULL with the exception that convert.c raised. */
static float *vector_arg(IndexObject *self, PyObject *obj)
{
    float *v = alloc_vector(self);
    if (v != NULL && conv_vector(obj, self->f, v) < 0) {
        PyMem_RawFree(v);
        v = NULL;
    }
    return v;
}

/* The file name of save, load and on_disk_build (str, bytes or os.PathLike, as Annoy takes
 * it) as a bytes object in the file system's encoding (PyUnicode_FSConverter, which also
 * refuses NUL bytes), or NULL with the exception set. With prefault NULL the only argument
 * is fn; otherwise (fn, prefault=False). */
static PyObject *path_arg(PyObject *args, PyObject *kwargs, int *prefault)
{
    static char *kw_fn[] = {"fn", NULL};
    static char *kw_fn_prefault[] = {"fn", "prefault", NULL};
    PyObject *path = NULL;
    int ok = prefault ? PyArg_ParseTupleAndKeywords(args, kwargs, "O&|p", kw_fn_prefault,
                                                    PyUnicode_FSConverter, &path, prefault)
                      : PyArg_ParseTupleAndKeywords(args, kwargs, "O&", kw_fn,
                                                    PyUnicode_FSConverter, &path);
    return ok ? path : NULL;
}

/* ---- filters ----------------------------------------------------------------------------- */

/* copse.Tags(any=..., all=...): a tag condition for the filter= keyword, kept as the two
 * masks copse_filter_new_tags takes. */
typedef struct {
    PyObject_HEAD
    uint64_t any_mask, all_mask;
} TagsObject;

static int add_tag(PyObject *item, const char *what, uint64_t *mask)
{
    if (!PyLong_Check(item) || PyBool_Check(item)) {
        PyErr_Format(PyExc_TypeError, "%s: a tag must be an int, not %.80s", what,
                     Py_TYPE(item)->tp_name);
        return -1;
    }
    int overflow;
    long long t = PyLong_AsLongLongAndOverflow(item, &overflow);
    if (t == -1 && PyErr_Occurred())
        return -1;
    if (overflow || t < 0 || t > COPSE_MAX_TAG) {
        PyErr_Format(PyExc_ValueError, "%s: tag %R is outside 0..%d", what, item, COPSE_MAX_TAG);
        return -1;
    }
    *mask |= 1ull << t;
    return 0;
}

/* Tags as a mask: an int, or an iterable of ints, each 0..COPSE_MAX_TAG. TypeError for what
 * is not an integer, ValueError for one out of range. */
static int tag_mask(PyObject *obj, const char *what, uint64_t *mask)
{
    *mask = 0;
    if (obj == NULL || obj == Py_None)
        return 0;
    if (PyLong_Check(obj))
        return add_tag(obj, what, mask);
    PyObject *it = PyObject_GetIter(obj), *item;
    if (it == NULL) {
        PyErr_Clear();
        PyErr_Format(PyExc_TypeError, "%s: tags must be an int or an iterable of ints, not %.80s",
                     what, Py_TYPE(obj)->tp_name);
        return -1;
    }
    while ((item = PyIter_Next(it)) != NULL) {
        int r = add_tag(item, what, mask);
        Py_DECREF(item);
        if (r < 0) {
            Py_DECREF(it);
            return -1;
        }
    }
    Py_DECREF(it);
    return PyErr_Occurred() ? -1 : 0;
}

static PyObject *mask_to_list(uint64_t mask)
{
    PyObject *l = PyList_New(0);
    for (int t = 0; l != NULL && t <= COPSE_MAX_TAG; t++) {
        if (!(mask >> t & 1))
            continue;
        PyObject *x = PyLong_FromLong(t);
        if (x == NULL || PyList_Append(l, x) < 0)
            Py_CLEAR(l);
        Py_XDECREF(x);
    }
    return l;
}

static int Tags_init(TagsObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"any", "all", NULL};
    PyObject *any = NULL, *all = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|OO", kwlist, &any, &all))
        return -1;
    if (tag_mask(any, "Tags(any=...)", &self->any_mask) < 0 ||
        tag_mask(all, "Tags(all=...)", &self->all_mask) < 0)
        return -1;
    return 0;
}

static PyObject *Tags_get_any(TagsObject *self, void *closure)
{
    (void)closure;
    return mask_to_list(self->any_mask);
}

static PyObject *Tags_get_all(TagsObject *self, void *closure)
{
    (void)closure;
    return mask_to_list(self->all_mask);
}

static PyObject *Tags_repr(TagsObject *self)
{
    PyObject *any = mask_to_list(self->any_mask), *all = mask_to_list(self->all_mask);
    PyObject *r = any && all ? PyUnicode_FromFormat("copse.Tags(any=%R, all=%R)", any, all) : NULL;
    Py_XDECREF(any);
    Py_XDECREF(all);
    return r;
}

static PyGetSetDef Tags_getset[] = {
    {"any", (getter)Tags_get_any, NULL, "Tags of which an item needs at least one (list).", NULL},
    {"all", (getter)Tags_get_all, NULL, "Tags an item needs every one of (list).", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

PyDoc_STRVAR(Tags_doc,
"Tags(any=(), all=())\n--\n\n"
"A filter by the tags items carry (set_tags, Index.add(tags=...)): an item passes when it\n"
"has at least one of ``any`` (no condition when empty) and every one of ``all``. Each is an\n"
"int or an iterable of ints in 0..63 (ValueError otherwise; TypeError for non-integers).\n"
"``Tags()`` allows every item.");

static PyTypeObject TagsType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "copse.Tags",
    .tp_basicsize = sizeof(TagsObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = Tags_doc,
    .tp_getset = Tags_getset,
    .tp_repr = (reprfunc)Tags_repr,
    .tp_init = (initproc)Tags_init,
    .tp_new = PyType_GenericNew,
};

/* The filter= argument of one query call, parsed with the GIL and turned into a copse_filter
 * (made with the GIL released, per call: see docs/PYTHON.md for its cost).
 * A callable is called from inside the library: call_allow takes the GIL for each call, as
 * the query runs without it. Holding the GIL for the whole query instead would deadlock
 * against a living index: a change waits for the query's read lock while another thread,
 * holding the GIL, waits behind that change for its own read lock (the lock prefers
 * writers). Taking it per call rules that out only if no change overlaps the query, which is
 * why such queries and changes refuse each other (IndexObject.calling, begin_change). */
enum { PF_NONE, PF_IDS, PF_TAGS, PF_CALL };

typedef struct {
    int kind;
    int64_t *ids; /* PF_IDS, PyMem_Raw */
    int64_t n_ids;
    uint64_t any_mask, all_mask;  /* PF_TAGS */
    PyObject *call;               /* PF_CALL, borrowed from the caller's arguments */
    IndexObject *owner;
    PyObject *exc_type, *exc_value, *exc_tb; /* the callable's first exception */
    copse_filter *made;
} pyfilter;

static int call_allow(void *ctx, int64_t id)
{
    pyfilter *pf = ctx;
    PyGILState_STATE g = PyGILState_Ensure();
    int ok = 0;
    if (pf->exc_type == NULL) {
        IndexObject *outer = calling_back;
        calling_back = pf->owner;
        PyObject *arg = PyLong_FromLongLong(id);
        PyObject *r = arg ? PyObject_CallOneArg(pf->call, arg) : NULL;
        calling_back = outer;
        Py_XDECREF(arg);
        ok = r ? PyObject_IsTrue(r) : -1;
        Py_XDECREF(r);
        if (ok < 0) {
            /* Kept for the caller; every later call allows nothing, so the query ends soon. */
            PyErr_Fetch(&pf->exc_type, &pf->exc_value, &pf->exc_tb);
            ok = 0;
        }
    }
    PyGILState_Release(g);
    return ok;
}

static int filter_type_error(PyObject *obj)
{
    PyErr_Format(PyExc_TypeError, "filter must be a sequence or array of allowed ids, a "
                 "callable f(id) -> bool or copse.Tags, not %.80s", Py_TYPE(obj)->tp_name);
    return -1;
}

static int filter_parse(IndexObject *self, PyObject *obj, pyfilter *pf)
{
    memset(pf, 0, sizeof *pf);
    pf->owner = self;
    if (obj == NULL || obj == Py_None)
        return 0;
    if (PyObject_TypeCheck(obj, &TagsType)) {
        pf->kind = PF_TAGS;
        pf->any_mask = ((TagsObject *)obj)->any_mask;
        pf->all_mask = ((TagsObject *)obj)->all_mask;
        return 0;
    }
    if (PyCallable_Check(obj)) {
        pf->kind = PF_CALL;
        pf->call = obj;
        return 0;
    }
    if (PyUnicode_Check(obj) || PyBytes_Check(obj) || PyByteArray_Check(obj) ||
        PyDict_Check(obj) || PyBool_Check(obj) || PyLong_Check(obj))
        return filter_type_error(obj);
    Py_ssize_t n = PyObject_Length(obj);
    if (n < 0) {
        PyErr_Clear();
        return filter_type_error(obj);
    }
    pf->kind = PF_IDS;
    pf->n_ids = n;
    return conv_ids(obj, n, &pf->ids);
}

static void filter_release(pyfilter *pf)
{
    PyMem_RawFree(pf->ids);
    pf->ids = NULL;
    copse_filter_free(pf->made);
    pf->made = NULL;
    Py_CLEAR(pf->exc_type);
    Py_CLEAR(pf->exc_value);
    Py_CLEAR(pf->exc_tb);
}

/* Makes pf->made for ix (NULL for no filter). Needs no GIL. */
static int filter_make(const copse_index *ix, pyfilter *pf)
{
    copse_filter_free(pf->made);
    pf->made = NULL;
    switch (pf->kind) {
    case PF_IDS:
        return copse_filter_new_ids(ix, pf->ids, pf->n_ids, &pf->made);
    case PF_TAGS:
        return copse_filter_new_tags(ix, pf->any_mask, pf->all_mask, &pf->made);
    case PF_CALL:
        return copse_filter_new_callback(call_allow, pf, &pf->made);
    default:
        return COPSE_OK;
    }
}

/* A query with a callable filter, from its start to its end (with the GIL): no change to the
 * index may overlap it (see pyfilter). */
static int filter_begin(IndexObject *self, const pyfilter *pf)
{
    if (pf->kind != PF_CALL)
        return 0;
    if (self->changing) {
        PyErr_SetString(PyExc_RuntimeError, "the index is being changed by another thread; a "
                        "query with a callable filter cannot run beside a change (add, delete, "
                        "compact, save)");
        return -1;
    }
    self->calling++;
    return 0;
}

/* Ends what filter_begin started; returns -1 with the callable's exception raised if it
 * failed (the query's answer is then discarded). */
static int filter_end(IndexObject *self, pyfilter *pf)
{
    if (pf->kind != PF_CALL)
        return 0;
    self->calling--;
    if (pf->exc_type == NULL)
        return 0;
    PyErr_Restore(pf->exc_type, pf->exc_value, pf->exc_tb);
    pf->exc_type = pf->exc_value = pf->exc_tb = NULL;
    return -1;
}

/* ---- adding ------------------------------------------------------------------------------ */

static int check_new_id(long long id)
{
    if (id < 0) {
        PyErr_SetString(PyExc_IndexError, "Item index can not be negative");
        return -1;
    }
    return 0;
}

PyDoc_STRVAR(add_item_doc,
"add_item($self, i, vector)\n--\n\n"
"Adds item ``i`` (any non-negative integer below 2**63) with ``vector``.\n\n"
"``vector`` is a sequence of ``f`` numbers: a list, tuple, array.array or numpy array.\n"
"Adding an existing id again replaces its vector. Ids need not be dense: memory grows with\n"
"the number of items, not with the largest id.\n\n"
"Raises IndexError for a negative id or a vector of the wrong length, ValueError for a NaN\n"
"or infinite component, RuntimeError once the index is built or loaded.");

static PyObject *Index_add_item(IndexObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"i", "vector", NULL};
    long long id;
    PyObject *vec;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "LO", kwlist, &id, &vec))
        return NULL;
    if (check_addable(self, "add_item") < 0 || check_new_id(id) < 0)
        return NULL;
    int after_build = copse_state(self->ix) != COPSE_STATE_ADDING;
    if (!after_build && check_writable(self) < 0)
        return NULL;
    float *w = vector_arg(self, vec);
    if (w == NULL)
        return NULL;
    int st;
    if (after_build) {
        if (begin_change(self) < 0) {
            PyMem_RawFree(w);
            return NULL;
        }
        Py_BEGIN_ALLOW_THREADS
        st = copse_add_item(self->ix, id, w);
        Py_END_ALLOW_THREADS
        end_change(self);
    } else {
        st = copse_add_item(self->ix, id, w);
    }
    PyMem_RawFree(w);
    if (st != COPSE_OK)
        return raise_index(self, NULL, st);
    Py_RETURN_NONE;
}

/* The caller checked writability before converting its arguments; the check is made again
 * here because the conversion may have run Python code (a __float__ method). */
static int add_rows(IndexObject *self, Py_ssize_t n, const int64_t *ids, const float *data)
{
    int st, after_build = copse_state(self->ix) != COPSE_STATE_ADDING;
    if (after_build ? begin_change(self) < 0 : begin_write(self) < 0)
        return -1;
    Py_BEGIN_ALLOW_THREADS
    st = copse_add_items(self->ix, n, ids, copse_max_id(self->ix) + 1, data);
    Py_END_ALLOW_THREADS
    if (after_build)
        end_change(self);
    else
        end_write(self);
    if (st != COPSE_OK) {
        raise_index(self, NULL, st);
        return -1;
    }
    return 0;
}

PyDoc_STRVAR(add_items_doc,
"add_items($self, ids, X)\n--\n\n"
"Adds many items in one call: item ``ids[k]`` gets row ``X[k]``.\n\n"
"``X`` is a 2-D array of shape (n, f) (a float32 C-contiguous array is used without a\n"
"copy) or a sequence of vectors; ``ids`` is a sequence or 1-D integer array of n ids, or\n"
"None to number the rows from the largest id so far + 1. Every row is checked before any\n"
"is added, so on error nothing was added. The GIL is released while adding.");

static PyObject *Index_add_items(IndexObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"ids", "X", NULL};
    PyObject *ids_obj, *x_obj;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OO", kwlist, &ids_obj, &x_obj))
        return NULL;
    if (check_addable(self, "add_items") < 0)
        return NULL;
    if (copse_state(self->ix) == COPSE_STATE_ADDING && check_writable(self) < 0)
        return NULL;
    conv_matrix m;
    if (conv_matrix_get(x_obj, self->f, &m) < 0) {
        conv_matrix_release(&m);
        return NULL;
    }
    int64_t *ids = NULL;
    int ok = ids_obj == Py_None || conv_ids(ids_obj, m.rows, &ids) == 0;
    if (ok && m.rows > 0)
        ok = add_rows(self, m.rows, ids, m.data) == 0;
    PyMem_RawFree(ids);
    conv_matrix_release(&m);
    return ok ? Py_NewRef(Py_None) : NULL;
}

/* ---- building ---------------------------------------------------------------------------- */

PyDoc_STRVAR(build_doc,
"build($self, n_trees, n_jobs=-1)\n--\n\n"
"Builds a forest of ``n_trees`` trees; returns True.\n\n"
"More trees give higher precision when querying. ``n_trees=-1`` lets copse pick the count:\n"
"one tree beside the graph, which only seeds its walk; when set_graph_degree(0) leaves out\n"
"the graph, trees are added until the forest takes half the space of the vectors.\n"
"``n_jobs`` threads build the trees; -1 uses every CPU. The result does not depend on\n"
"``n_jobs`` for a given seed. After build no more items can be added (see unbuild). The GIL\n"
"is released meanwhile.");

static PyObject *Index_build(IndexObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"n_trees", "n_jobs", NULL};
    int n_trees, n_jobs = -1, st;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "i|i", kwlist, &n_trees, &n_jobs))
        return NULL;
    if (begin_write(self) < 0)
        return NULL;
    if (self->has_seed && copse_state(self->ix) == COPSE_STATE_ADDING)
        copse_set_seed(self->ix, self->seed);
    double t0 = now_seconds();
    Py_BEGIN_ALLOW_THREADS
    st = copse_build(self->ix, n_trees, n_jobs);
    Py_END_ALLOW_THREADS
    end_write(self);
    if (st != COPSE_OK)
        return raise_index(self, NULL, st);
    if (self->verbose)
        PySys_WriteStderr("copse: built %d trees over %lld items in %.3f s\n",
                          copse_n_trees(self->ix), (long long)copse_n_items(self->ix),
                          now_seconds() - t0);
    Py_RETURN_TRUE;
}

PyDoc_STRVAR(unbuild_doc,
"unbuild($self)\n--\n\n"
"Drops the trees so that items can be added again; returns True.\n\n"
"build() has to be called again before querying. Raises RuntimeError for a loaded index.");

static PyObject *Index_unbuild(IndexObject *self, PyObject *noargs)
{
    (void)noargs;
    if (check_writable(self) < 0)
        return NULL;
    int st = copse_unbuild(self->ix);
    if (st != COPSE_OK)
        return raise_index(self, NULL, st);
    Py_RETURN_TRUE;
}

/* ---- files ------------------------------------------------------------------------------- */

PyDoc_STRVAR(save_doc,
"save($self, fn, prefault=False)\n--\n\n"
"Writes the built index to the file ``fn``; returns True.\n\n"
"The file is written beside ``fn`` and renamed over it once complete, so readers that have\n"
"the old file loaded keep a valid view and a crash never leaves half a file. The index stays\n"
"usable in memory; ``prefault`` is accepted for compatibility and has no effect.\n"
"Raises OSError on any failure, including an index that was not built (as Annoy does).");

static PyObject *Index_save(IndexObject *self, PyObject *args, PyObject *kwargs)
{
    int prefault = 0, st;
    PyObject *path = path_arg(args, kwargs, &prefault);
    if (path == NULL)
        return NULL;
    /* A living index saves beside queries, as the library allows; AnnoyIndex as before. */
    int beside = self->living && copse_state(self->ix) != COPSE_STATE_ADDING;
    if (beside ? begin_change(self) < 0 : begin_write(self) < 0) {
        Py_DECREF(path);
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    st = copse_save(self->ix, PyBytes_AS_STRING(path));
    Py_END_ALLOW_THREADS
    if (beside)
        end_change(self);
    else
        end_write(self);
    Py_DECREF(path);
    if (st != COPSE_OK)
        return raise_index(self, PyExc_OSError, st);
    Py_RETURN_TRUE;
}

PyDoc_STRVAR(serialize_doc,
"serialize($self)\n--\n\n"
"Returns the built or loaded index as bytes: the copse file save() would write.\n\n"
"deserialize() reads them back, in this process or another. Raises OSError when the\n"
"index is not built (as save does).");

/* A reader: writing the image changes nothing in the index, so queries and other serialize
 * calls may run beside it. The calls that can fail (not built, too large) fail with the GIL
 * held, before any other thread could be inside copse_save_buffer. */
static PyObject *Index_serialize(IndexObject *self, PyObject *Py_UNUSED(ignored))
{
    int st;
    if (begin_read(self) < 0)
        return NULL;
    uint64_t size = copse_file_size(self->ix);
    if (copse_state(self->ix) == COPSE_STATE_ADDING || size > (uint64_t)PY_SSIZE_T_MAX) {
        end_read(self);
        return raise_index(self, PyExc_OSError, copse_save_buffer(self->ix, NULL, 0));
    }
    PyObject *out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)size);
    if (!out) {
        end_read(self);
        return NULL;
    }
    char *buf = PyBytes_AS_STRING(out);
    Py_BEGIN_ALLOW_THREADS
    st = copse_save_buffer(self->ix, buf, (size_t)size);
    Py_END_ALLOW_THREADS
    end_read(self);
    if (st != COPSE_OK) {
        Py_DECREF(out);
        return raise_index(self, PyExc_OSError, st);
    }
    return out;
}

/* Loads path into the fresh handle ix: a copse file, or else an Annoy file (read into memory,
 * so prefault has nothing to do there). Runs without the GIL. */
static int load_any(copse_index *ix, const char *path, int prefault)
{
    int st = copse_load(ix, path, prefault);
    if (st == COPSE_ERR_NOTCOPSE)
        st = copse_load_annoy(ix, path);
    return st;
}

PyDoc_STRVAR(load_doc,
"load($self, fn, prefault=False)\n--\n\n"
"Maps the index file ``fn`` (read-only, shared between processes); returns True.\n\n"
"Accepts copse files and Annoy .ann files (written with the same f and metric; those are\n"
"read into memory and answer with Annoy's neighbours). ``prefault=True`` reads a copse\n"
"file's pages in now. Whatever the\n"
"index held before is replaced; on failure it is kept. Raises OSError for a missing,\n"
"damaged or foreign file and for a dimension or metric that does not match.");

static PyObject *Index_load(IndexObject *self, PyObject *args, PyObject *kwargs)
{
    int prefault = 0, st;
    copse_index *fresh;
    PyObject *path = path_arg(args, kwargs, &prefault);
    if (path == NULL || begin_write(self) < 0) {
        Py_XDECREF(path);
        return NULL;
    }
    if (new_handle(self->f, self->metric, &fresh) < 0) {
        end_write(self);
        Py_DECREF(path);
        return NULL;
    }
    double t0 = now_seconds();
    Py_BEGIN_ALLOW_THREADS
    st = load_any(fresh, PyBytes_AS_STRING(path), prefault);
    Py_END_ALLOW_THREADS
    end_write(self);
    Py_DECREF(path);
    if (st != COPSE_OK) {
        raise_status(PyExc_OSError, st, copse_errmsg(fresh));
        copse_free(fresh);
        return NULL;
    }
    replace_handle(self, fresh, NULL);
    if (self->verbose)
        PySys_WriteStderr("copse: loaded %lld items, %d trees in %.3f s\n",
                          (long long)copse_n_items(fresh), copse_n_trees(fresh),
                          now_seconds() - t0);
    Py_RETURN_TRUE;
}

PyDoc_STRVAR(unload_doc,
"unload($self)\n--\n\n"
"Unmaps a loaded file (or drops a built or partly filled index); returns True.\n\n"
"The index is then empty, ready for add_item or load, with the same f and metric.");

static PyObject *Index_unload(IndexObject *self, PyObject *noargs)
{
    (void)noargs;
    copse_index *fresh;
    if (check_writable(self) < 0 || new_handle(self->f, self->metric, &fresh) < 0)
        return NULL;
    replace_handle(self, fresh, NULL);
    Py_RETURN_TRUE;
}

PyDoc_STRVAR(deserialize_doc,
"deserialize($self, data, prefault=False)\n--\n\n"
"Loads an index from ``data``, the bytes of a copse file (see serialize); returns True.\n\n"
"Any object with a buffer works (bytes, bytearray, mmap, numpy array); it is read in place\n"
"and kept (a bytearray cannot be resized meanwhile) until the index is unloaded or another\n"
"is loaded. ``prefault`` is accepted for Annoy's signature and has no effect. Replaces the\n"
"index's contents only on success; raises OSError for data that is not a valid index of\n"
"this dimension and metric.");

static PyObject *Index_deserialize(IndexObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"data", "prefault", NULL};
    Py_buffer view;
    int prefault = 0, st;
    copse_index *fresh;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "y*|p", kwlist, &view, &prefault))
        return NULL;
    if (begin_write(self) < 0) {
        PyBuffer_Release(&view);
        return NULL;
    }
    if (new_handle(self->f, self->metric, &fresh) < 0) {
        end_write(self);
        PyBuffer_Release(&view);
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    st = copse_load_buffer(fresh, view.buf, (size_t)view.len);
    Py_END_ALLOW_THREADS
    end_write(self);
    if (st != COPSE_OK) {
        raise_status(PyExc_OSError, st, copse_errmsg(fresh));
        copse_free(fresh);
        PyBuffer_Release(&view);
        return NULL;
    }
    replace_handle(self, fresh, &view);
    Py_RETURN_TRUE;
}

PyDoc_STRVAR(on_disk_build_doc,
"on_disk_build($self, fn)\n--\n\n"
"Builds in the file ``fn`` instead of in memory, for data larger than RAM; returns True.\n\n"
"Call it before adding items. Vectors go to a temporary file beside ``fn`` as they are\n"
"added; build() writes the forest there, renames the file to ``fn`` and maps it, so save()\n"
"is not needed. Raises OSError when the folder is not writable or items were added.");

static PyObject *Index_on_disk_build(IndexObject *self, PyObject *args, PyObject *kwargs)
{
    PyObject *path = path_arg(args, kwargs, NULL);
    if (path == NULL)
        return NULL;
    if (check_writable(self) < 0) {
        Py_DECREF(path);
        return NULL;
    }
    int st = copse_on_disk_build(self->ix, PyBytes_AS_STRING(path));
    Py_DECREF(path);
    if (st != COPSE_OK)
        return raise_index(self, PyExc_OSError, st);
    Py_RETURN_TRUE;
}

/* ---- queries ----------------------------------------------------------------------------- */

/* Room for at most n results: never more than the items held, so n=10**9 costs nothing. */
static int64_t result_room(IndexObject *self, long long n)
{
    int64_t items = copse_n_items(self->ix);
    return n < items ? n : items;
}

static PyObject *results_to_python(const int64_t *ids, const float *dists, int64_t count)
{
    PyObject *l = PyList_New((Py_ssize_t)count);
    PyObject *d = dists ? PyList_New((Py_ssize_t)count) : NULL;
    if (l == NULL || (dists && d == NULL))
        goto fail;
    for (int64_t i = 0; i < count; i++) {
        PyObject *id = PyLong_FromLongLong(ids[i]);
        if (id == NULL)
            goto fail;
        PyList_SET_ITEM(l, i, id);
        if (d) {
            PyObject *x = PyFloat_FromDouble(dists[i]);
            if (x == NULL)
                goto fail;
            PyList_SET_ITEM(d, i, x);
        }
    }
    if (d == NULL)
        return l;
    PyObject *t = PyTuple_Pack(2, l, d);
    Py_DECREF(l);
    Py_DECREF(d);
    return t;
fail:
    Py_XDECREF(l);
    Py_XDECREF(d);
    return NULL;
}

/* One query: by item when vec is NULL, else by the vector. */
typedef struct {
    int64_t item;
    const float *vec;
    int64_t k, search_k;
    int64_t *ids;
    float *dists;
    int64_t n_out;
} query;

static int run_query(const copse_index *ix, query *q, pyfilter *pf, copse_scratch *s)
{
    /* A compaction beside the query (copse.Index) between making the filter and using it
     * leaves the filter working (copse.h). */
    int st = filter_make(ix, pf);
    if (st != COPSE_OK)
        return st;
    if (q->vec)
        return copse_search_vector_filtered(ix, s, q->vec, q->k, q->search_k, pf->made, q->ids,
                                            q->dists, &q->n_out);
    return copse_search_item_filtered(ix, s, q->item, q->k, q->search_k, pf->made, q->ids,
                                      q->dists, &q->n_out);
}

static PyObject *answer(IndexObject *self, query *q, pyfilter *pf, long long n,
                        int include_distances)
{
    if (n < 0)
        return PyErr_Format(PyExc_ValueError, "n must be non-negative, got %lld", n);
    if (begin_query(self) < 0)
        return NULL;
    if (filter_begin(self, pf) < 0) {
        end_read(self);
        return NULL;
    }
    q->k = result_room(self, n);
    size_t room = (size_t)(q->k > 0 ? q->k : 1);
    q->ids = PyMem_RawMalloc(room * sizeof(int64_t));
    q->dists = include_distances ? PyMem_RawMalloc(room * sizeof(float)) : NULL;
    PyObject *result = NULL;
    if (q->ids == NULL || (include_distances && q->dists == NULL)) {
        filter_end(self, pf);
        PyErr_NoMemory();
    } else {
        int st;
        copse_scratch *s;
        Py_BEGIN_ALLOW_THREADS
        s = thread_scratch();
        st = run_query(self->ix, q, pf, s);
        Py_END_ALLOW_THREADS
        if (filter_end(self, pf) == 0)
            result = st == COPSE_OK ? results_to_python(q->ids, q->dists, q->n_out)
                                    : raise_query(st, s);
    }
    end_read(self);
    PyMem_RawFree(q->ids);
    PyMem_RawFree(q->dists);
    return result;
}

/* Annoy's messages for an id that cannot be queried. */
static int check_item(IndexObject *self, long long id)
{
    if (check_new_id(id) < 0)
        return -1;
    if (check_readable(self) < 0)
        return -1;
    if (id > copse_max_id(self->ix)) {
        PyErr_SetString(PyExc_IndexError, "Item index larger than the largest item index");
        return -1;
    }
    if (!copse_has_item(self->ix, id)) {
        PyErr_Format(PyExc_IndexError, "Item %lld was never added", id);
        return -1;
    }
    return 0;
}

#define FILTER_DOC \
":param filter: None, or which items may be returned: a sequence or 1-D integer array of\n" \
"allowed ids (ids not in the index are ignored), a callable ``f(id) -> bool`` (called with\n" \
"the GIL held, once per item the search reaches), or ``copse.Tags(any=..., all=...)``.\n" \
"Results then hold only allowed items (see docs/PYTHON.md, Filtered search).\n"

/* The parameters get_nns_by_item and get_nns_by_vector share. */
#define QUERY_PARAMS_DOC \
":param search_k: the effort: the width of the walk over the neighbour graph, which starts\n" \
"from the n items the forest finds first (without a graph, see set_graph_degree: how many\n" \
"candidate items to gather from the forest before ranking them exactly); larger is slower\n" \
"and more accurate. -1 means ``n * n_trees``.\n" \
":param include_distances: if True, returns a tuple of two lists: the ids and their\n" \
"distances.\n" \
FILTER_DOC \
"\n"

PyDoc_STRVAR(get_nns_by_item_doc,
"get_nns_by_item($self, i, n, search_k=-1, include_distances=False, filter=None)\n--\n\n"
"Returns the ``n`` closest items to item ``i`` (itself first), as a list of ids.\n\n"
QUERY_PARAMS_DOC
"Raises IndexError for an id that was never added. The GIL is released while searching.");

static PyObject *Index_get_nns_by_item(IndexObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"i", "n", "search_k", "include_distances", "filter", NULL};
    long long id, n, search_k = -1;
    int include_distances = 0;
    PyObject *filter = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "LL|LpO", kwlist, &id, &n, &search_k,
                                     &include_distances, &filter))
        return NULL;
    if (check_item(self, id) < 0)
        return NULL;
    pyfilter pf;
    if (filter_parse(self, filter, &pf) < 0) {
        filter_release(&pf);
        return NULL;
    }
    query q = {.item = id, .search_k = search_k};
    PyObject *result = answer(self, &q, &pf, n, include_distances);
    filter_release(&pf);
    return result;
}

PyDoc_STRVAR(get_nns_by_vector_doc,
"get_nns_by_vector($self, vector, n, search_k=-1, include_distances=False, filter=None)\n"
"--\n\n"
"Returns the ``n`` closest items to ``vector``, as a list of ids.\n\n"
QUERY_PARAMS_DOC
"Raises IndexError for a vector of the wrong length. The GIL is released while searching.");

static PyObject *Index_get_nns_by_vector(IndexObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"vector", "n", "search_k", "include_distances", "filter", NULL};
    PyObject *vec, *filter = NULL;
    long long n, search_k = -1;
    int include_distances = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OL|LpO", kwlist, &vec, &n, &search_k,
                                     &include_distances, &filter))
        return NULL;
    float *w = vector_arg(self, vec);
    if (w == NULL)
        return NULL;
    pyfilter pf;
    if (filter_parse(self, filter, &pf) < 0) {
        filter_release(&pf);
        PyMem_RawFree(w);
        return NULL;
    }
    query q = {.vec = w, .search_k = search_k};
    PyObject *result = answer(self, &q, &pf, n, include_distances);
    filter_release(&pf);
    PyMem_RawFree(w);
    return result;
}

/* Output of _search_batch: bytearrays the Python layer views as arrays. */
typedef struct {
    PyObject *ids, *dists, *counts;
} batch_out;

static int batch_alloc(batch_out *o, Py_ssize_t nq, int64_t k, int include_distances)
{
    o->ids = o->dists = o->counts = NULL;
    if (k > 0 && nq > PY_SSIZE_T_MAX / 8 / k) {
        PyErr_NoMemory();
        return -1;
    }
    o->ids = PyByteArray_FromStringAndSize(NULL, nq * k * (Py_ssize_t)sizeof(int64_t));
    o->counts = PyByteArray_FromStringAndSize(NULL, nq * (Py_ssize_t)sizeof(int64_t));
    if (include_distances)
        o->dists = PyByteArray_FromStringAndSize(NULL, nq * k * (Py_ssize_t)sizeof(float));
    if (o->ids == NULL || o->counts == NULL || (include_distances && o->dists == NULL))
        return -1;
    memset(PyByteArray_AS_STRING(o->counts), 0, (size_t)nq * sizeof(int64_t));
    return 0;
}

static void batch_free(batch_out *o)
{
    Py_XDECREF(o->ids);
    Py_XDECREF(o->dists);
    Py_XDECREF(o->counts);
}

/* A batch with a callable filter runs on the calling thread alone: the GIL serialises every
 * call of the callable anyway, so more workers would only queue for it. */
static int batch_run(IndexObject *self, const conv_matrix *m, int64_t k, long long search_k,
                     int exact, int n_threads, pyfilter *pf, batch_out *o)
{
    if (m->rows == 0 || k == 0)
        return 0;
    if (pf->kind == PF_CALL)
        n_threads = 1;
    if (filter_begin(self, pf) < 0)
        return -1;
    int64_t *ids = (int64_t *)PyByteArray_AS_STRING(o->ids);
    float *dists = o->dists ? (float *)PyByteArray_AS_STRING(o->dists) : NULL;
    int64_t *counts = (int64_t *)PyByteArray_AS_STRING(o->counts);
    int st;
    copse_scratch *s;
    Py_BEGIN_ALLOW_THREADS
    s = thread_scratch();
    st = filter_make(self->ix, pf);
    if (st == COPSE_OK)
        st = copse_search_batch_filtered(self->ix, s, m->data, m->rows, k, search_k, exact,
                                         n_threads, pf->made, ids, dists, counts);
    Py_END_ALLOW_THREADS
    if (filter_end(self, pf) < 0)
        return -1;
    if (st != COPSE_OK) {
        raise_query(st, s);
        return -1;
    }
    return 0;
}

PyDoc_STRVAR(search_batch_doc,
"_search_batch($self, Q, n, search_k=-1, include_distances=False, n_threads=-1, exact=False,\n"
"              filter=None)\n"
"--\n\n"
"Engine of AnnoyIndex.get_nns_by_vectors: returns (rows, k, ids, dists, counts) where ids\n"
"(int64), dists (float32, or None) and counts (int64) are bytearrays in row-major order.");

static PyObject *Index_search_batch(IndexObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"Q", "n", "search_k", "include_distances", "n_threads", "exact",
                             "filter", NULL};
    PyObject *q_obj, *filter = NULL;
    long long n, search_k = -1;
    int include_distances = 0, n_threads = -1, exact = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OL|LpipO", kwlist, &q_obj, &n, &search_k,
                                     &include_distances, &n_threads, &exact, &filter))
        return NULL;
    if (n < 0)
        return PyErr_Format(PyExc_ValueError, "n must be non-negative, got %lld", n);
    conv_matrix m;
    if (conv_matrix_get(q_obj, self->f, &m) < 0) {
        conv_matrix_release(&m);
        return NULL;
    }
    PyObject *result = NULL;
    batch_out o = {NULL, NULL, NULL};
    pyfilter pf;
    if (filter_parse(self, filter, &pf) == 0 && begin_query(self) == 0) {
        int64_t k = result_room(self, n);
        if (batch_alloc(&o, m.rows, k, include_distances) == 0 &&
            batch_run(self, &m, k, search_k, exact, n_threads, &pf, &o) == 0)
            result = Py_BuildValue("nLOOO", m.rows, (long long)k, o.ids,
                                   o.dists ? o.dists : Py_None, o.counts);
        end_read(self);
    }
    filter_release(&pf);
    batch_free(&o);
    conv_matrix_release(&m);
    return result;
}

/* ---- items and facts --------------------------------------------------------------------- */

PyDoc_STRVAR(set_tags_doc,
"set_tags($self, i, tags)\n--\n\n"
"Gives item ``i`` the tags ``tags`` (an int or an iterable of ints in 0..63), replacing any it\n"
"had; ``[]`` clears them. Tags are saved with the index and queries can keep to the items\n"
"carrying some or all of a set of them (``filter=copse.Tags(...)``). A copse extension (Annoy\n"
"has no tags): it works before build and after, on a built or loaded index too, where queries\n"
"from other threads see the change at once; save() writes it.\n\n"
"Raises ValueError for a tag out of range, TypeError for a non-integer, IndexError for an\n"
"item not in the index (never added, or deleted).");

static PyObject *Index_set_tags(IndexObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"i", "tags", NULL};
    long long id;
    PyObject *tags;
    uint64_t mask;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "LO", kwlist, &id, &tags))
        return NULL;
    if (tag_mask(tags, "set_tags", &mask) < 0)
        return NULL;
    uint32_t list[COPSE_MAX_TAG + 1];
    int n = 0, st;
    for (uint32_t b = 0; b <= COPSE_MAX_TAG; b++)
        if (mask >> b & 1)
            list[n++] = b;
    if (copse_state(self->ix) == COPSE_STATE_ADDING) {
        if (check_writable(self) < 0)
            return NULL;
        st = copse_set_tags(self->ix, id, list, n);
    } else {
        /* A change beside queries, as delete: it waits for the write lock without the GIL,
         * which a query with a callable filter may need meanwhile. */
        if (begin_change(self) < 0)
            return NULL;
        Py_BEGIN_ALLOW_THREADS
        st = copse_set_tags(self->ix, id, list, n);
        Py_END_ALLOW_THREADS
        end_change(self);
    }
    if (st != COPSE_OK)
        return raise_index(self, NULL, st);
    Py_RETURN_NONE;
}

PyDoc_STRVAR(get_tags_doc,
"get_tags($self, i)\n--\n\n"
"The tags of item ``i`` as a sorted list of ints (``[]`` when it has none). Raises IndexError\n"
"for an item not in the index.");

static PyObject *Index_get_tags(IndexObject *self, PyObject *args)
{
    long long id;
    uint64_t mask;
    if (!PyArg_ParseTuple(args, "L", &id) || check_item(self, id) < 0)
        return NULL;
    int st = copse_get_tags(self->ix, id, &mask);
    if (st != COPSE_OK)
        return raise_const("get_tags", st);
    return mask_to_list(mask);
}

PyDoc_STRVAR(get_item_vector_doc,
"get_item_vector($self, i)\n--\n\n"
"Returns the vector of item ``i`` as a list of floats (for hamming: 0.0 and 1.0).\n\n"
"Raises IndexError for an id that was never added.");

static PyObject *Index_get_item_vector(IndexObject *self, PyObject *args)
{
    long long id;
    if (!PyArg_ParseTuple(args, "L", &id) || check_item(self, id) < 0)
        return NULL;
    float *v = alloc_vector(self);
    if (v == NULL)
        return NULL;
    PyObject *l = NULL;
    int st = copse_get_item(self->ix, id, v);
    if (st != COPSE_OK)
        raise_const("get_item_vector", st);
    else
        l = PyList_New(self->f);
    for (int z = 0; l != NULL && z < self->f; z++) {
        PyObject *x = PyFloat_FromDouble(v[z]);
        if (x == NULL)
            Py_CLEAR(l);
        else
            PyList_SET_ITEM(l, z, x);
    }
    PyMem_RawFree(v);
    return l;
}

PyDoc_STRVAR(get_distance_doc,
"get_distance($self, i, j)\n--\n\n"
"Returns the distance between items ``i`` and ``j``, as queries report it: angular\n"
"sqrt(2 - 2 cos), euclidean, manhattan, dot (the inner product) or hamming (bits that\n"
"differ). Works before build. Raises IndexError for an id that was never added.");

static PyObject *Index_get_distance(IndexObject *self, PyObject *args)
{
    long long i, j;
    float d;
    if (!PyArg_ParseTuple(args, "LL", &i, &j) || check_item(self, i) < 0 ||
        check_item(self, j) < 0)
        return NULL;
    int st = copse_get_distance(self->ix, i, j, &d);
    if (st != COPSE_OK)
        return raise_const("get_distance", st);
    return PyFloat_FromDouble(d);
}

PyDoc_STRVAR(get_n_items_doc,
"get_n_items($self)\n--\n\n"
"Returns the largest item id + 1, as Annoy does (so ``range(get_n_items())`` covers every\n"
"id). With sparse ids this is more than the number of items held: see len().");

static PyObject *Index_get_n_items(IndexObject *self, PyObject *noargs)
{
    (void)noargs;
    if (check_readable(self) < 0)
        return NULL;
    return PyLong_FromLongLong(copse_max_id(self->ix) + 1);
}

PyDoc_STRVAR(get_n_trees_doc,
"get_n_trees($self)\n--\n\n"
"Returns the number of trees in the index (0 before build).");

static PyObject *Index_get_n_trees(IndexObject *self, PyObject *noargs)
{
    (void)noargs;
    if (check_readable(self) < 0)
        return NULL;
    return PyLong_FromLong(copse_n_trees(self->ix));
}

PyDoc_STRVAR(verbose_doc,
"verbose($self, v)\n--\n\n"
"With a true ``v``, build and load print a one-line summary to stderr; returns True.");

static PyObject *Index_verbose(IndexObject *self, PyObject *args)
{
    int v;
    if (!PyArg_ParseTuple(args, "i", &v))
        return NULL;
    self->verbose = v != 0;
    Py_RETURN_TRUE;
}

PyDoc_STRVAR(set_seed_doc,
"set_seed($self, seed)\n--\n\n"
"Sets the seed of the random numbers that build uses; returns None.\n\n"
"A given seed and the same items added in the same order give the same trees (and a\n"
"byte-identical file) whatever n_jobs is. Without a call, a fixed default seed is used, so\n"
"builds are reproducible. On a loaded index the seed is kept but has no use.");

static PyObject *Index_set_seed(IndexObject *self, PyObject *args)
{
    PyObject *obj, *num;
    /* Readable suffices: with a query running the index is not ADDING, so only the stored
     * seed changes, under the GIL. */
    if (!PyArg_ParseTuple(args, "O", &obj) || check_readable(self) < 0)
        return NULL;
    if ((num = PyNumber_Index(obj)) == NULL)
        return NULL;
    /* Annoy takes any C int; the mask keeps negative seeds usable as 64-bit patterns. */
    uint64_t seed = PyLong_AsUnsignedLongLongMask(num);
    Py_DECREF(num);
    if (seed == (uint64_t)-1 && PyErr_Occurred())
        return NULL;
    self->seed = seed;
    self->has_seed = 1;
    if (copse_state(self->ix) == COPSE_STATE_ADDING)
        copse_set_seed(self->ix, seed);
    Py_RETURN_NONE;
}

PyDoc_STRVAR(set_graph_degree_doc,
"set_graph_degree($self, degree)\n--\n\n"
"Sets how many neighbours each item lists in the graph built beside the trees (0..255;\n"
"the library's default is 32, or for 200,000 items or more 0.44 of the dimension between\n"
"32 and 44, or with f16 or i8 storage 0.64 of it between 32 and 64); returns None. With a\n"
"graph, queries reach high recall with far fewer distance computations, and ``search_k``\n"
"is the width of the graph walk; each unit of degree costs 4 bytes per item in the file.\n"
"0 builds the trees alone, as Annoy does.\n"
"Call before build; kept across unload. ValueError out of range, RuntimeError once built.");

static PyObject *Index_set_graph_degree(IndexObject *self, PyObject *args)
{
    int degree;
    if (!PyArg_ParseTuple(args, "i", &degree) || check_writable(self) < 0)
        return NULL;
    int st = copse_set_graph_degree(self->ix, degree);
    if (st != COPSE_OK)
        return raise_index(self, NULL, st);
    self->graph_degree = degree;
    Py_RETURN_NONE;
}

static PyObject *Index_get_storage(IndexObject *self, void *closure)
{
    (void)closure;
    if (check_readable(self) < 0)
        return NULL;
    return PyUnicode_FromString(copse_storage_name(copse_get_storage(self->ix)));
}

static PyObject *Index_get_graph_degree(IndexObject *self, void *closure)
{
    (void)closure;
    if (check_readable(self) < 0)
        return NULL;
    return PyLong_FromLong(copse_graph_degree(self->ix));
}

PyDoc_STRVAR(set_kernels_doc,
"_set_kernels($self, name)\n--\n\n"
"Forces the distance kernels of the current index: 'scalar', 'avx2' or 'avx512'. For tests\n"
"that compare kernels; a later load or unload picks from the CPU again. ValueError when the\n"
"name is unknown or this CPU cannot run it.");

static PyObject *Index_set_kernels(IndexObject *self, PyObject *args)
{
    const char *name;
    if (!PyArg_ParseTuple(args, "s", &name) || check_writable(self) < 0)
        return NULL;
    int st = copse_set_kernels(self->ix, name);
    if (st != COPSE_OK)
        return raise_index(self, PyExc_ValueError, st);
    Py_RETURN_NONE;
}

static Py_ssize_t Index_len(IndexObject *self)
{
    if (check_readable(self) < 0)
        return -1;
    return (Py_ssize_t)copse_n_items(self->ix);
}

static int Index_contains(IndexObject *self, PyObject *key)
{
    if (!PyLong_Check(key))
        return 0;
    if (check_readable(self) < 0)
        return -1;
    int overflow;
    long long id = PyLong_AsLongLongAndOverflow(key, &overflow);
    if (id == -1 && PyErr_Occurred())
        return -1;
    return !overflow && id >= 0 && copse_has_item(self->ix, id);
}

static PyObject *Index_get_metric(IndexObject *self, void *closure)
{
    (void)closure;
    return PyUnicode_FromString(copse_metric_name(self->metric));
}

static PyObject *Index_get_kernels(IndexObject *self, void *closure)
{
    (void)closure;
    return PyUnicode_FromString(copse_kernels_name(self->ix));
}

static PyObject *Index_get_state(IndexObject *self, void *closure)
{
    (void)closure;
    if (self->writer)
        return PyUnicode_FromString("busy");
    switch (copse_state(self->ix)) {
    case COPSE_STATE_BUILT:
        return PyUnicode_FromString("built");
    case COPSE_STATE_LOADED:
        return PyUnicode_FromString("loaded");
    default:
        return PyUnicode_FromString("adding");
    }
}

/* ---- the type ---------------------------------------------------------------------------- */

#define KW (METH_VARARGS | METH_KEYWORDS)
/* ---- changes after build (copse.Index) --------------------------------------------------- */

PyDoc_STRVAR(make_living_doc,
"_make_living($self)\n--\n\n"
"Lets this object add, delete and save after build while queries run (copse.Index).");

static PyObject *Index_make_living(IndexObject *self, PyObject *noargs)
{
    (void)noargs;
    self->living = 1;
    Py_RETURN_NONE;
}

PyDoc_STRVAR(open_doc,
"_open($self, fn, prefault=False)\n--\n\n"
"Loads the copse file ``fn`` taking its dimension and metric (copse.open).");

static PyObject *Index_open(IndexObject *self, PyObject *args, PyObject *kwargs)
{
    int prefault = 0, st;
    copse_index *fresh = NULL;
    PyObject *path = path_arg(args, kwargs, &prefault);
    if (path == NULL || begin_write(self) < 0) {
        Py_XDECREF(path);
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    st = copse_open(PyBytes_AS_STRING(path), prefault, &fresh);
    Py_END_ALLOW_THREADS
    end_write(self);
    Py_DECREF(path);
    if (st != COPSE_OK) {
        raise_status(st == COPSE_ERR_NOMEM ? PyExc_MemoryError : PyExc_OSError, st,
                     copse_errmsg(fresh));
        copse_free(fresh);
        return NULL;
    }
    self->f = copse_dim(fresh);
    self->metric = copse_get_metric(fresh);
    replace_handle(self, fresh, NULL);
    Py_RETURN_NONE;
}

PyDoc_STRVAR(delete_doc,
"_delete($self, ids)\n--\n\n"
"Deletes the items ``ids`` (a sequence or 1-D integer array) from a built or loaded index:\n"
"all of them, or none when one is not there (KeyError naming it).");

static PyObject *Index_delete(IndexObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"ids", NULL};
    PyObject *ids_obj;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O", kwlist, &ids_obj))
        return NULL;
    Py_ssize_t n = PyObject_Length(ids_obj);
    if (n < 0)
        return NULL;
    int64_t *ids = NULL;
    if (conv_ids(ids_obj, n, &ids) < 0)
        return NULL;
    if (copse_state(self->ix) == COPSE_STATE_ADDING) {
        PyMem_RawFree(ids);
        PyErr_SetString(PyExc_RuntimeError, "delete: the index is not built; build() first "
                        "(before build, leave the item out)");
        return NULL;
    }
    int st = COPSE_OK;
    if (begin_change(self) < 0) {
        PyMem_RawFree(ids);
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    st = copse_delete_items(self->ix, n, ids);
    Py_END_ALLOW_THREADS
    end_change(self);
    PyMem_RawFree(ids);
    if (st != COPSE_OK)
        return raise_index(self, st == COPSE_ERR_NOTFOUND ? PyExc_KeyError : NULL, st);
    Py_RETURN_NONE;
}

PyDoc_STRVAR(compact_doc,
"_compact($self, n_threads=-1)\n--\n\n"
"Rebuilds a built or loaded index from its live items (copse_compact).");

static PyObject *Index_compact(IndexObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"n_threads", NULL};
    int n_threads = -1, st;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|i", kwlist, &n_threads))
        return NULL;
    if (begin_change(self) < 0)
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    st = copse_compact(self->ix, n_threads);
    Py_END_ALLOW_THREADS
    end_change(self);
    if (st != COPSE_OK)
        return raise_index(self, NULL, st);
    Py_RETURN_NONE;
}

PyDoc_STRVAR(changes_doc,
"_changes($self)\n--\n\n"
"Returns (added, deleted): items added and deleted since the base was built.");

static PyObject *Index_changes(IndexObject *self, PyObject *noargs)
{
    (void)noargs;
    return Py_BuildValue("LL", (long long)copse_n_added(self->ix),
                         (long long)copse_n_deleted(self->ix));
}

PyDoc_STRVAR(max_id_doc,
"_max_id($self)\n--\n\n"
"The largest id ever held (-1 for none).");

static PyObject *Index_max_id(IndexObject *self, PyObject *noargs)
{
    (void)noargs;
    return PyLong_FromLongLong((long long)copse_max_id(self->ix));
}

static PyMethodDef Index_methods[] = {
    {"_make_living", (PyCFunction)Index_make_living, METH_NOARGS, make_living_doc},
    {"_open", (PyCFunction)(void (*)(void))Index_open, KW, open_doc},
    {"_delete", (PyCFunction)(void (*)(void))Index_delete, KW, delete_doc},
    {"_compact", (PyCFunction)(void (*)(void))Index_compact, KW, compact_doc},
    {"_changes", (PyCFunction)Index_changes, METH_NOARGS, changes_doc},
    {"_max_id", (PyCFunction)Index_max_id, METH_NOARGS, max_id_doc},
    {"add_item", (PyCFunction)(void (*)(void))Index_add_item, KW, add_item_doc},
    {"add_items", (PyCFunction)(void (*)(void))Index_add_items, KW, add_items_doc},
    {"build", (PyCFunction)(void (*)(void))Index_build, KW, build_doc},
    {"unbuild", (PyCFunction)Index_unbuild, METH_NOARGS, unbuild_doc},
    {"save", (PyCFunction)(void (*)(void))Index_save, KW, save_doc},
    {"serialize", (PyCFunction)Index_serialize, METH_NOARGS, serialize_doc},
    {"load", (PyCFunction)(void (*)(void))Index_load, KW, load_doc},
    {"unload", (PyCFunction)Index_unload, METH_NOARGS, unload_doc},
    {"on_disk_build", (PyCFunction)(void (*)(void))Index_on_disk_build, KW, on_disk_build_doc},
    {"deserialize", (PyCFunction)(void (*)(void))Index_deserialize, KW, deserialize_doc},
    {"get_nns_by_item", (PyCFunction)(void (*)(void))Index_get_nns_by_item, KW,
     get_nns_by_item_doc},
    {"get_nns_by_vector", (PyCFunction)(void (*)(void))Index_get_nns_by_vector, KW,
     get_nns_by_vector_doc},
    {"_search_batch", (PyCFunction)(void (*)(void))Index_search_batch, KW, search_batch_doc},
    {"set_tags", (PyCFunction)(void (*)(void))Index_set_tags, KW, set_tags_doc},
    {"get_tags", (PyCFunction)Index_get_tags, METH_VARARGS, get_tags_doc},
    {"get_item_vector", (PyCFunction)Index_get_item_vector, METH_VARARGS, get_item_vector_doc},
    {"get_distance", (PyCFunction)Index_get_distance, METH_VARARGS, get_distance_doc},
    {"get_n_items", (PyCFunction)Index_get_n_items, METH_NOARGS, get_n_items_doc},
    {"get_n_trees", (PyCFunction)Index_get_n_trees, METH_NOARGS, get_n_trees_doc},
    {"verbose", (PyCFunction)Index_verbose, METH_VARARGS, verbose_doc},
    {"set_seed", (PyCFunction)Index_set_seed, METH_VARARGS, set_seed_doc},
    {"set_graph_degree", (PyCFunction)Index_set_graph_degree, METH_VARARGS, set_graph_degree_doc},
    {"_set_kernels", (PyCFunction)Index_set_kernels, METH_VARARGS, set_kernels_doc},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef Index_members[] = {
    {"f", T_INT, offsetof(IndexObject, f), READONLY, "Dimension of the vectors (read-only)."},
    {NULL, 0, 0, 0, NULL},
};

static PyGetSetDef Index_getset[] = {
    {"metric", (getter)Index_get_metric, NULL, "Name of the metric (read-only).", NULL},
    {"graph_degree", (getter)Index_get_graph_degree, NULL,
     "Degree of the built or loaded graph (0: none), or the setting for the next build.", NULL},
    {"storage", (getter)Index_get_storage, NULL,
     "How the vectors are stored: 'f32', 'f16' or 'i8' (the built or loaded index's, or the "
     "storage keyword's for the next build; read-only).", NULL},
    {"kernels", (getter)Index_get_kernels, NULL,
     "Distance kernels in use: 'scalar', 'avx2' or 'avx512' (read-only).", NULL},
    {"state", (getter)Index_get_state, NULL,
     "'adding', 'built', 'loaded', or 'busy' while another thread changes the index.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PySequenceMethods Index_as_sequence = {
    .sq_length = (lenfunc)Index_len,
    .sq_contains = (objobjproc)Index_contains,
};

PyDoc_STRVAR(Index_doc,
"Index(f, metric)\n--\n\n"
"The C core of copse.AnnoyIndex: an approximate nearest-neighbour index over vectors of\n"
"dimension ``f`` under ``metric`` ('angular', 'euclidean', 'manhattan', 'dot' or\n"
"'hamming'). Use copse.AnnoyIndex, which adds numpy batch queries.");

static PyTypeObject IndexType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "copse._copse.Index",
    .tp_basicsize = sizeof(IndexObject),
    .tp_dealloc = (destructor)Index_dealloc,
    .tp_as_sequence = &Index_as_sequence,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = Index_doc,
    .tp_methods = Index_methods,
    .tp_members = Index_members,
    .tp_getset = Index_getset,
    .tp_init = Index_init,
    .tp_new = Index_new,
};

/* ---- the module -------------------------------------------------------------------------- */

/* The library is compiled into this module, but a stale object file could still mix versions;
 * refuse to run on a library whose major.minor differs from the header's. */
static int check_library_version(void)
{
    if (copse_version_number() / 100 != COPSE_VERSION_NUMBER / 100) {
        PyErr_Format(PyExc_ImportError,
                     "copse: the library is version %s but this module was built for %d.%d",
                     copse_version_string(), COPSE_VERSION_MAJOR, COPSE_VERSION_MINOR);
        return -1;
    }
    return 0;
}

static int add_constants(PyObject *m)
{
    int major, minor;
    copse_format_version(&major, &minor);
    PyObject *fmt = Py_BuildValue("(ii)", major, minor);
    if (fmt == NULL || PyModule_AddObject(m, "FORMAT_VERSION", fmt) < 0) {
        Py_XDECREF(fmt);
        return -1;
    }
    if (PyModule_AddStringConstant(m, "LIBRARY_VERSION", copse_version_string()) < 0)
        return -1;
    if (PyModule_AddObjectRef(m, "Tags", (PyObject *)&TagsType) < 0)
        return -1;
    return PyModule_AddObjectRef(m, "Index", (PyObject *)&IndexType);
}

static struct PyModuleDef copse_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "copse._copse",
    .m_doc = "C core of the copse package: see copse.AnnoyIndex.",
    .m_size = -1,
};

/* The library's memory goes through Python's raw allocator (thread-safe without the GIL), so
 * tracemalloc and Python's debug hooks see it. The extension carries its own copy of the
 * library, so this choice touches no other user of copse in the process. */
static void *raw_malloc(void *ctx, size_t size)
{
    (void)ctx;
    return PyMem_RawMalloc(size);
}

static void *raw_realloc(void *ctx, void *p, size_t size)
{
    (void)ctx;
    return PyMem_RawRealloc(p, size);
}

static void raw_free(void *ctx, void *p)
{
    (void)ctx;
    PyMem_RawFree(p);
}

PyMODINIT_FUNC PyInit__copse(void)
{
    static int key_made;
    static const copse_allocator raw = {raw_malloc, raw_realloc, raw_free, NULL};
    if (check_library_version() < 0 || PyType_Ready(&IndexType) < 0 ||
        PyType_Ready(&TagsType) < 0)
        return NULL;
    /* Refused only when a handle already exists, i.e. on a second import of the module in
     * another interpreter; the allocator chosen the first time stays. */
    (void)copse_set_allocator(&raw);
    if (!key_made && pthread_key_create(&scratch_key, scratch_destroy) != 0)
        return PyErr_Format(PyExc_ImportError, "copse: no thread-local storage key left");
    key_made = 1;
    PyObject *m = PyModule_Create(&copse_module);
    if (m != NULL && add_constants(m) < 0)
        Py_CLEAR(m);
    return m;
}
