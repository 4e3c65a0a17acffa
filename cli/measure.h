/*
 * measure.h: timing of batch queries and recall against ground truth, shared by
 * `copse bench` and `copse demo`.
 */
#ifndef COPSE_CLI_MEASURE_H
#define COPSE_CLI_MEASURE_H

#include <stdint.h>

#include "cli.h"

typedef struct batch_run {
    int64_t search_k;   /* ignored when exact */
    int exact;
    int n_threads;
    int64_t *ids;       /* nq * k results, filled by timed_batch */
    double seconds;     /* wall time of the batch */
} batch_run;

/* Answers nq queries with copse_search_batch and times it. */
int timed_batch(const copse_index *ix, copse_scratch *s, const float *qs, int64_t nq,
                int64_t k, batch_run *run, cli_err *err);

/* Mean over queries of |found ∩ truth| / min(k, truth entries), where row i of found has k
 * ids and row i of truth has truth_k ids (-1 marks an empty slot in either). */
double recall_at_k(const int64_t *found, int64_t k, const int64_t *truth, int64_t truth_k,
                   int64_t nq);

#endif /* COPSE_CLI_MEASURE_H */
