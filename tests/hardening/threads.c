/*
 * threads.c: many threads on one LOADED (mapped) index, every metric, mixing every query
 * call (by vector, by item, exact, batch inside a thread, item and label lookups), each with
 * its own scratch or none; every thread must get exactly the answers one thread got first.
 * Complements tests/test_threads.c (a BUILT index, one kind of query). Run under TSan.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "copse.h"

enum { DIM = 16, N = 1500, NQ = 40, K = 8, THREADS = 6 };

typedef struct result {
    int64_t ids[4][NQ][K];
    float d[4][NQ][K];
    int64_t lab[NQ];
    int rc;
} result;

static const copse_index *ix;
static const float *qs;

static void run(result *r, int use_scratch)
{
    copse_scratch *s = NULL;
    if (use_scratch && copse_scratch_new(&s) != COPSE_OK) {
        r->rc = -1;
        return;
    }
    memset(r, 0, sizeof *r);
    for (int q = 0; q < NQ && !r->rc; q++) {
        int64_t n;
        r->rc |= copse_search_vector(ix, s, qs + q * DIM, K, 200, r->ids[0][q], r->d[0][q], &n);
        r->rc |= copse_search_item(ix, s, q * 17, K, -1, r->ids[1][q], r->d[1][q], &n);
        r->rc |= copse_exact_vector(ix, s, qs + q * DIM, K, r->ids[2][q], r->d[2][q], &n);
        const char *label;
        size_t len;
        char want[32];
        snprintf(want, sizeof want, "item-%d", q * 5);
        r->rc |= copse_find_label(ix, want, &r->lab[q]);
        r->rc |= copse_get_label(ix, r->lab[q], &label, &len);
        r->rc |= label && strcmp(label, want) == 0 ? 0 : 1;
        float v[DIM];
        r->rc |= copse_get_item(ix, q, v);
    }
    r->rc |= copse_search_batch(ix, s, qs, NQ, K, 200, 0, 2, &r->ids[3][0][0], &r->d[3][0][0], NULL);
    copse_scratch_free(s);
}

static void *worker(void *arg)
{
    result *r = arg;
    run(r, (int)(((uintptr_t)r / sizeof *r) & 1));
    return NULL;
}

int main(void)
{
    int passed = 0, failed = 0;
    char path[256];
    snprintf(path, sizeof path, "%s/copse-threads-%d.copse", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp",
             (int)getpid());
    float *x = malloc(sizeof(float) * (N + NQ) * DIM);
    uint64_t z = 3;
    for (int i = 0; i < (N + NQ) * DIM; i++) {
        z = z * 6364136223846793005ull + 1442695040888963407ull;
        x[i] = (float)(z >> 40) / 16777216.0f + (float)(i / DIM % 6);
    }
    for (int m = COPSE_ANGULAR; m <= COPSE_HAMMING; m++) {
        copse_index *b;
        int ok = copse_new(DIM, (copse_metric)m, &b) == COPSE_OK &&
                 copse_add_items(b, N, NULL, 0, x) == COPSE_OK;
        for (int i = 0; ok && i < N; i += 5) {
            char l[32];
            snprintf(l, sizeof l, "item-%d", i);
            ok = copse_set_label(b, i, l) == COPSE_OK;
        }
        ok = ok && copse_build(b, 5, 2) == COPSE_OK && copse_save(b, path) == COPSE_OK;
        copse_free(b);
        copse_index *ld = NULL;
        ok = ok && copse_open(path, 0, &ld) == COPSE_OK;
        ix = ld;
        qs = x + N * DIM;
        static result one, many[THREADS];
        run(&one, 1);
        ok = ok && one.rc == 0;
        pthread_t t[THREADS];
        for (int i = 0; i < THREADS; i++)
            pthread_create(&t[i], NULL, worker, &many[i]);
        for (int i = 0; i < THREADS; i++)
            pthread_join(t[i], NULL);
        for (int i = 0; i < THREADS; i++)
            ok = ok && many[i].rc == 0 && memcmp(&many[i], &one, sizeof one) == 0;
        printf("%s %d threads on a loaded %s index answer exactly as one thread\n", ok ? "ok  " : "FAIL",
               THREADS, copse_metric_name((copse_metric)m));
        ok ? passed++ : failed++;
        copse_free(ld);
        unlink(path);
    }
    free(x);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
