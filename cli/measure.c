/*
 * measure.c: timed batches and recall@k.
 */
#include "measure.h"

int timed_batch(const copse_index *ix, copse_scratch *s, const float *qs, int64_t nq,
                int64_t k, batch_run *run, cli_err *err)
{
    double t0 = cli_now();
    int st = copse_search_batch(ix, s, qs, nq, k, run->search_k, run->exact, run->n_threads,
                                run->ids, NULL, NULL);
    run->seconds = cli_now() - t0;
    if (st != COPSE_OK)
        return cli_fail_scratch(err, st, s, run->exact ? "exact search" : "search");
    return 0;
}

static int contains(const int64_t *row, int64_t n, int64_t id)
{
    for (int64_t i = 0; i < n; i++)
        if (row[i] == id)
            return 1;
    return 0;
}

/* Recall of one query; -1 when its truth row is empty (nothing to find). */
static double recall_one(const int64_t *found, int64_t k, const int64_t *truth, int64_t truth_k)
{
    int64_t want = truth_k < k ? truth_k : k;
    while (want > 0 && truth[want - 1] < 0)
        want--;
    if (want == 0)
        return -1.0;
    int64_t hits = 0;
    for (int64_t i = 0; i < k; i++)
        if (found[i] >= 0 && contains(truth, want, found[i]))
            hits++;
    return (double)hits / (double)want;
}

double recall_at_k(const int64_t *found, int64_t k, const int64_t *truth, int64_t truth_k,
                   int64_t nq)
{
    double sum = 0.0;
    int64_t counted = 0;
    for (int64_t q = 0; q < nq; q++) {
        double r = recall_one(found + q * k, k, truth + q * truth_k, truth_k);
        if (r >= 0.0) {
            sum += r;
            counted++;
        }
    }
    return counted > 0 ? sum / (double)counted : 1.0;
}
