/* convert.c: Python objects to C arrays for the binding; see convert.h for the contract. */
#include "convert.h"

#include <string.h>

typedef enum { KIND_NONE, KIND_FLOAT, KIND_SIGNED, KIND_UNSIGNED } elem_kind;

/* The struct-module letter of a buffer's elements when they are single numbers in this
 * machine's byte order ('f', 'q', ...; a missing format means 'B'), else 0 (records, foreign
 * byte order, multi-letter formats). */
static char format_code(const Py_buffer *v)
{
    const char *f = v->format ? v->format : "B";
    if (*f == '@' || *f == '=')
        f++;
#if !PY_BIG_ENDIAN
    else if (*f == '<')
        f++;
#endif
    return f[0] != '\0' && f[1] == '\0' ? f[0] : 0;
}

/* The kind of a buffer's elements, or KIND_NONE for formats left to Python's own conversion
 * (half floats, records, foreign byte order). */
static elem_kind buffer_kind(const Py_buffer *v)
{
    int int_size = v->itemsize == 1 || v->itemsize == 2 || v->itemsize == 4 || v->itemsize == 8;
    switch (format_code(v)) {
    case 'f':
        return v->itemsize == 4 ? KIND_FLOAT : KIND_NONE;
    case 'd':
        return v->itemsize == 8 ? KIND_FLOAT : KIND_NONE;
    case 'b': case 'h': case 'i': case 'l': case 'q': case 'n':
        return int_size ? KIND_SIGNED : KIND_NONE;
    case 'B': case 'H': case 'I': case 'L': case 'Q': case 'N': case '?':
        return int_size ? KIND_UNSIGNED : KIND_NONE;
    default:
        return KIND_NONE;
    }
}

/* memcpy reads: strided views need not be aligned for their element type. */
static int64_t elem_signed(const char *p, Py_ssize_t size)
{
    int8_t a; int16_t b; int32_t c; int64_t d;
    switch (size) {
    case 1: memcpy(&a, p, 1); return a;
    case 2: memcpy(&b, p, 2); return b;
    case 4: memcpy(&c, p, 4); return c;
    default: memcpy(&d, p, 8); return d;
    }
}

static uint64_t elem_unsigned(const char *p, Py_ssize_t size)
{
    uint8_t a; uint16_t b; uint32_t c; uint64_t d;
    switch (size) {
    case 1: memcpy(&a, p, 1); return a;
    case 2: memcpy(&b, p, 2); return b;
    case 4: memcpy(&c, p, 4); return c;
    default: memcpy(&d, p, 8); return d;
    }
}

static double elem_value(const char *p, elem_kind kind, Py_ssize_t size)
{
    if (kind == KIND_FLOAT) {
        if (size == 4) {
            float x;
            memcpy(&x, p, 4);
            return x;
        }
        double x;
        memcpy(&x, p, 8);
        return x;
    }
    if (kind == KIND_SIGNED)
        return (double)elem_signed(p, size);
    return (double)elem_unsigned(p, size);
}

static void read_row(const char *p, Py_ssize_t stride, elem_kind kind, Py_ssize_t size, int dim,
                     float *out)
{
    for (int z = 0; z < dim; z++, p += stride)
        out[z] = (float)elem_value(p, kind, size);
}

static int wrong_length(int dim, Py_ssize_t got)
{
    PyErr_Format(PyExc_IndexError, "Vector has wrong length (expected %d, got %zd)", dim, got);
    return -1;
}

/* obj's buffer, with strides and format, and the kind of its elements: 1 when there is one,
 * 0 when obj has none or refuses this request (the error is cleared), so that the caller
 * falls back to the sequence path. */
static int get_buffer(PyObject *obj, Py_buffer *v, elem_kind *kind)
{
    if (!PyObject_CheckBuffer(obj))
        return 0;
    if (PyObject_GetBuffer(obj, v, PyBUF_RECORDS_RO) < 0) {
        PyErr_Clear();
        return 0;
    }
    *kind = buffer_kind(v);
    return 1;
}

/* 0 done, -1 error, 1 the object's buffer cannot be read here: use the sequence path. */
static int vector_from_buffer(PyObject *obj, int dim, float *out)
{
    Py_buffer v;
    elem_kind kind;
    if (!get_buffer(obj, &v, &kind))
        return 1;
    int r = 1;
    if (v.ndim == 1 && kind != KIND_NONE) {
        if (v.shape[0] != dim) {
            r = wrong_length(dim, v.shape[0]);
        } else {
            read_row(v.buf, v.strides[0], kind, v.itemsize, dim, out);
            r = 0;
        }
    }
    PyBuffer_Release(&v);
    return r;
}

static int store_float(PyObject *item, float *slot)
{
    double x = PyFloat_AsDouble(item);
    if (x == -1.0 && PyErr_Occurred())
        return -1;
    *slot = (float)x;
    return 0;
}

/* Lists and tuples: items read directly, each held while converted because a __float__
 * method could change the list under us. */
static int vector_from_list_or_tuple(PyObject *obj, int dim, float *out)
{
    int is_list = PyList_Check(obj);
    Py_ssize_t n = is_list ? PyList_GET_SIZE(obj) : PyTuple_GET_SIZE(obj);
    if (n != dim)
        return wrong_length(dim, n);
    for (int z = 0; z < dim; z++) {
        if (is_list && z >= PyList_GET_SIZE(obj))
            return wrong_length(dim, PyList_GET_SIZE(obj));
        PyObject *item = is_list ? PyList_GET_ITEM(obj, z) : PyTuple_GET_ITEM(obj, z);
        Py_INCREF(item);
        int r = store_float(item, &out[z]);
        Py_DECREF(item);
        if (r < 0)
            return -1;
    }
    return 0;
}

/* Any other object: len() then [z], as Annoy's convert_list_to_vector does. */
static int vector_from_sequence(PyObject *obj, int dim, float *out)
{
    Py_ssize_t n = PyObject_Size(obj);
    if (n == -1)
        return -1;
    if (n != dim)
        return wrong_length(dim, n);
    for (int z = 0; z < dim; z++) {
        PyObject *key = PyLong_FromLong(z);
        if (key == NULL)
            return -1;
        PyObject *item = PyObject_GetItem(obj, key);
        Py_DECREF(key);
        if (item == NULL)
            return -1;
        int r = store_float(item, &out[z]);
        Py_DECREF(item);
        if (r < 0)
            return -1;
    }
    return 0;
}

int conv_vector(PyObject *obj, int dim, float *out)
{
    int r = vector_from_buffer(obj, dim, out);
    if (r != 1)
        return r;
    if (PyList_Check(obj) || PyTuple_Check(obj))
        return vector_from_list_or_tuple(obj, dim, out);
    return vector_from_sequence(obj, dim, out);
}

/* rows * dim floats, or NULL with MemoryError (also when the size overflows). */
static float *alloc_rows(Py_ssize_t rows, int dim)
{
    if (rows > (Py_ssize_t)(PY_SSIZE_T_MAX / sizeof(float)) / dim) {
        PyErr_NoMemory();
        return NULL;
    }
    size_t bytes = (size_t)rows * (size_t)dim * sizeof(float);
    float *p = PyMem_RawMalloc(bytes ? bytes : 1);
    if (p == NULL)
        PyErr_NoMemory();
    return p;
}

static int matrix_take_buffer(Py_buffer *v, elem_kind kind, int dim, conv_matrix *m)
{
    if (v->ndim != 2) {
        PyErr_Format(PyExc_ValueError, "expected a 2-D array of shape (n, %d), got %d dimension%s",
                     dim, v->ndim, v->ndim == 1 ? "" : "s");
        return -1;
    }
    if (v->shape[1] != dim)
        return wrong_length(dim, v->shape[1]);
    m->rows = v->shape[0];
    if (kind == KIND_FLOAT && v->itemsize == 4 && PyBuffer_IsContiguous(v, 'C')) {
        m->data = v->buf;
        m->view = *v;
        m->has_view = 1;
        return 0;
    }
    m->owned = alloc_rows(m->rows, dim);
    if (m->owned == NULL)
        return -1;
    for (Py_ssize_t r = 0; r < m->rows; r++)
        read_row((const char *)v->buf + r * v->strides[0], v->strides[1], kind, v->itemsize, dim,
                 m->owned + r * dim);
    m->data = m->owned;
    return 0;
}

/* 0 done, -1 error, 1 use the sequence path. */
static int matrix_from_buffer(PyObject *obj, int dim, conv_matrix *m)
{
    Py_buffer v;
    elem_kind kind;
    if (!get_buffer(obj, &v, &kind))
        return 1;
    if (kind == KIND_NONE) {
        PyBuffer_Release(&v);
        return 1;
    }
    int r = matrix_take_buffer(&v, kind, dim, m);
    if (!m->has_view)
        PyBuffer_Release(&v);
    return r;
}

static int matrix_from_sequence(PyObject *obj, int dim, conv_matrix *m)
{
    PyObject *seq = PySequence_Fast(obj, "expected a 2-D array or a sequence of vectors");
    if (seq == NULL)
        return -1;
    m->rows = PySequence_Fast_GET_SIZE(seq);
    m->owned = alloc_rows(m->rows, dim);
    int r = m->owned ? 0 : -1;
    for (Py_ssize_t i = 0; r == 0 && i < m->rows; i++) {
        if (i >= PySequence_Fast_GET_SIZE(seq)) {
            PyErr_SetString(PyExc_RuntimeError, "the sequence changed size while being read");
            r = -1;
            break;
        }
        PyObject *row = PySequence_Fast_GET_ITEM(seq, i);
        Py_INCREF(row);
        r = conv_vector(row, dim, m->owned + i * dim);
        Py_DECREF(row);
    }
    Py_DECREF(seq);
    m->data = m->owned;
    return r;
}

int conv_matrix_get(PyObject *obj, int dim, conv_matrix *m)
{
    memset(m, 0, sizeof *m);
    int r = matrix_from_buffer(obj, dim, m);
    if (r == 1)
        r = matrix_from_sequence(obj, dim, m);
    return r;
}

void conv_matrix_release(conv_matrix *m)
{
    if (m->has_view)
        PyBuffer_Release(&m->view);
    PyMem_RawFree(m->owned);
    memset(m, 0, sizeof *m);
}

static int ids_count_mismatch(Py_ssize_t got, Py_ssize_t want)
{
    PyErr_Format(PyExc_ValueError, "ids has %zd entries but there are %zd vectors", got, want);
    return -1;
}

/* 0 done, -1 error, 1 use the sequence path. */
static int ids_from_buffer(PyObject *obj, Py_ssize_t n, int64_t *ids)
{
    Py_buffer v;
    elem_kind kind;
    if (!get_buffer(obj, &v, &kind))
        return 1;
    int r = 1;
    if (kind == KIND_FLOAT) {
        PyErr_SetString(PyExc_TypeError, "ids must be integers, not floating point numbers");
        r = -1;
    } else if (kind != KIND_NONE && v.ndim != 1) {
        PyErr_Format(PyExc_ValueError, "ids must be one-dimensional, got %d dimensions", v.ndim);
        r = -1;
    } else if (kind != KIND_NONE && v.shape[0] != n) {
        r = ids_count_mismatch(v.shape[0], n);
    } else if (kind != KIND_NONE) {
        r = 0;
        for (Py_ssize_t i = 0; i < n && r == 0; i++) {
            const char *p = (const char *)v.buf + i * v.strides[0];
            if (kind == KIND_SIGNED) {
                ids[i] = elem_signed(p, v.itemsize);
            } else {
                uint64_t u = elem_unsigned(p, v.itemsize);
                if (u > (uint64_t)INT64_MAX) {
                    PyErr_SetString(PyExc_OverflowError, "item id does not fit in 64 bits");
                    r = -1;
                }
                ids[i] = (int64_t)u;
            }
        }
    }
    PyBuffer_Release(&v);
    return r;
}

static int ids_from_sequence(PyObject *obj, Py_ssize_t n, int64_t *ids)
{
    PyObject *seq = PySequence_Fast(obj, "ids must be a sequence of integers");
    if (seq == NULL)
        return -1;
    int r = 0;
    if (PySequence_Fast_GET_SIZE(seq) != n)
        r = ids_count_mismatch(PySequence_Fast_GET_SIZE(seq), n);
    for (Py_ssize_t i = 0; r == 0 && i < n; i++) {
        if (i >= PySequence_Fast_GET_SIZE(seq)) {
            r = ids_count_mismatch(PySequence_Fast_GET_SIZE(seq), n);
            break;
        }
        PyObject *item = PySequence_Fast_GET_ITEM(seq, i);
        Py_INCREF(item);
        long long x = PyLong_AsLongLong(item);
        Py_DECREF(item);
        if (x == -1 && PyErr_Occurred())
            r = -1;
        ids[i] = (int64_t)x;
    }
    Py_DECREF(seq);
    return r;
}

int conv_ids(PyObject *obj, Py_ssize_t n, int64_t **out)
{
    *out = NULL;
    if ((size_t)n > PY_SSIZE_T_MAX / sizeof(int64_t)) {
        PyErr_NoMemory();
        return -1;
    }
    int64_t *ids = PyMem_RawMalloc(n ? (size_t)n * sizeof(int64_t) : 1);
    if (ids == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    int r = ids_from_buffer(obj, n, ids);
    if (r == 1)
        r = ids_from_sequence(obj, n, ids);
    if (r < 0) {
        PyMem_RawFree(ids);
        return -1;
    }
    *out = ids;
    return 0;
}
