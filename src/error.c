/*
 * error.c: status codes, their static text, and the per-handle detail messages.
 */
#include <stdio.h>
#include <string.h>

#include "internal.h"

const char *copse_strerror(int status)
{
    switch (status) {
    case COPSE_OK: return "success";
    case COPSE_ERR_ARG: return "invalid argument";
    case COPSE_ERR_DIM: return "wrong dimension";
    case COPSE_ERR_VALUE: return "vector component is NaN or infinite";
    case COPSE_ERR_ID: return "invalid item id";
    case COPSE_ERR_STATE: return "call not allowed in the index's current state";
    case COPSE_ERR_NOTFOUND: return "item not in the index";
    case COPSE_ERR_NOMEM: return "out of memory";
    case COPSE_ERR_IO: return "input/output error";
    case COPSE_ERR_NOTCOPSE: return "not a copse index";
    case COPSE_ERR_VERSION: return "unsupported file format version";
    case COPSE_ERR_CORRUPT: return "corrupt index file";
    case COPSE_ERR_METRIC: return "unknown or mismatched metric";
    default: return "unknown status code";
    }
}

int cp_fail(cp_err *err, int status, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return status;
}
