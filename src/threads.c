/*
 * threads.c: the only use of pthreads. Work is a range of indices handed out one at a time
 * from an atomic counter, so uneven items (trees of different depth, queries of different
 * cost) balance themselves, and which thread did an item never changes its result.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#include "internal.h"

typedef struct pf_job {
    void (*fn)(void *ctx, uint64_t i, int worker);
    void *ctx;
    uint64_t n;
    _Atomic uint64_t next;
} pf_job;

typedef struct pf_worker_arg {
    pf_job *job;
    int worker;
} pf_worker_arg;

static void *pf_worker(void *arg)
{
    pf_worker_arg *w = arg;
    for (;;) {
        uint64_t i = atomic_fetch_add_explicit(&w->job->next, 1, memory_order_relaxed);
        if (i >= w->job->n)
            return NULL;
        w->job->fn(w->job->ctx, i, w->worker);
    }
}

int cp_online_cpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : (n > 1024 ? 1024 : (int)n);
}

int cp_progress_begin(cp_progress *p, uint64_t total)
{
    p->done = 0;
    p->total = total ? total : 1;
    p->shown = 0;
    p->lock = NULL;
    if (!p->fn)
        return COPSE_OK;
    pthread_mutex_t *m = cp_malloc(sizeof *m);
    if (!m || pthread_mutex_init(m, NULL) != 0) {
        cp_free(m);
        return COPSE_ERR_NOMEM;
    }
    p->lock = m;
    p->fn(p->ctx, 0.0);
    return COPSE_OK;
}

void cp_progress_step(cp_progress *p)
{
    if (!p->lock)
        return;
    pthread_mutex_lock(p->lock);
    if (p->done < p->total)
        p->done++;
    double f = (double)p->done / (double)p->total;
    if (f > p->shown)
        p->shown = f;
    p->fn(p->ctx, p->shown);
    pthread_mutex_unlock(p->lock);
}

void cp_progress_end(cp_progress *p)
{
    if (!p->lock)
        return;
    if (p->done < p->total)
        p->fn(p->ctx, 1.0);
    pthread_mutex_destroy(p->lock);
    cp_free(p->lock);
    p->lock = NULL;
}

int cp_thread_count(int n_threads, uint64_t n)
{
    if (n_threads <= 0)
        n_threads = cp_online_cpus();
    if ((uint64_t)n_threads > n)
        n_threads = n ? (int)n : 1;
    return n_threads > CP_MAX_THREADS ? CP_MAX_THREADS : n_threads;
}

void cp_parallel_for(int n_threads, uint64_t n, void (*fn)(void *ctx, uint64_t i, int worker),
                     void *ctx)
{
    pf_job job = {fn, ctx, n, 0};
    pthread_t tids[CP_MAX_THREADS];
    pf_worker_arg args[CP_MAX_THREADS];
    int started = 0;
    n_threads = cp_thread_count(n_threads, n);
    for (int t = 1; t < n_threads; t++) {
        args[t] = (pf_worker_arg){&job, t};
        if (pthread_create(&tids[started], NULL, pf_worker, &args[t]) != 0)
            break;
        started++;
    }
    args[0] = (pf_worker_arg){&job, 0};
    pf_worker(&args[0]);
    for (int t = 0; t < started; t++)
        pthread_join(tids[t], NULL);
}

/* ---- one writer, many readers ---- */

int cp_rwlock_new(void **lock)
{
    pthread_rwlockattr_t attr;
    pthread_rwlock_t *l = cp_malloc(sizeof *l);
    *lock = NULL;
    if (!l || pthread_rwlockattr_init(&attr) != 0) {
        cp_free(l);
        return COPSE_ERR_NOMEM;
    }
    /* glibc prefers readers by default: with queries arriving back to back, a writer would
     * wait for ever. Preferring the writer bounds its wait by the queries already running. */
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    int rc = pthread_rwlock_init(l, &attr);
    pthread_rwlockattr_destroy(&attr);
    if (rc != 0) {
        cp_free(l);
        return COPSE_ERR_NOMEM;
    }
    *lock = l;
    return COPSE_OK;
}

void cp_rwlock_free(void *lock)
{
    if (!lock)
        return;
    pthread_rwlock_destroy(lock);
    cp_free(lock);
}

void cp_read_lock(void *lock) { pthread_rwlock_rdlock(lock); }
void cp_write_lock(void *lock) { pthread_rwlock_wrlock(lock); }
void cp_unlock(void *lock) { pthread_rwlock_unlock(lock); }
