/*
 * convert.h: turning Python vectors, matrices and id lists into C arrays.
 *
 * Objects with a buffer (numpy arrays, array.array, memoryview, bytes) are read in C, element
 * by element through their strides, whatever their numeric type: no Python call per element.
 * Other objects go through len() and [] exactly as Annoy's module does, so the errors Annoy's
 * own tests pin (IndexError for a wrong length, "must be real number, not str", ...) are kept.
 * All functions need the GIL and return 0 on success or -1 with a Python exception set.
 */
#ifndef COPSE_PY_CONVERT_H
#define COPSE_PY_CONVERT_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

/* Fills out[0 .. dim-1] from a one-dimensional vector. */
int conv_vector(PyObject *obj, int dim, float *out);

/* A matrix of rows x dim floats, borrowed from a C-contiguous float32 buffer when the caller's
 * object has one, copied otherwise. Release with conv_matrix_release in every case. */
typedef struct {
    const float *data;
    Py_ssize_t rows;
    float *owned;     /* the copy, when one was made */
    Py_buffer view;   /* the borrowed buffer, when has_view */
    int has_view;
} conv_matrix;

int conv_matrix_get(PyObject *obj, int dim, conv_matrix *m);
void conv_matrix_release(conv_matrix *m);

/* Reads n item ids (a 1-D integer buffer or a sequence of ints) into a new PyMem_Raw array
 * that the caller frees with PyMem_RawFree. */
int conv_ids(PyObject *obj, Py_ssize_t n, int64_t **out);

#endif
