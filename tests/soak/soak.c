/*
 * soak.c: `make soak`. One writer and eight readers on one living index for a while (600 s
 * by default; SOAK_SECONDS sets it), every answer checked, and saves and compactions killed
 * with SIGKILL at random points.
 *
 *   soak DIR [SECONDS]
 *
 * The writer adds batches (a fifth of them replacing live ids), deletes batches, compacts
 * now and then, and keeps a model of the live set: an item's vector is a function of its id
 * and version, so any answer can be checked. A reader notes the writer's change counters
 * before and after each query: when no change ran during the query, the answer is checked
 * strictly against brute force over the model (exact queries equal it; approximate ones
 * contain no deleted id and their recall@10 is recorded); otherwise every returned item must
 * have been live at the start or the end and its distance must be exact for its vector.
 * Meanwhile a child process opens the saved file, changes it, saves it (or compacts and
 * saves), and is killed at a random moment: the file must then load and verify, holding the
 * item count from before the child's change or after it, never anything else.
 *
 * It prints what it checked and what it found; exit status 1 if anything was wrong.
 */
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "copse.h"

enum { DIM = 16, BASE = 20000, K = 10, READERS = 8, BATCH = 200, MAX_ID = 400000 };

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static uint64_t mix(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Item id's vector at a version: clustered, so neighbours are meaningful. */
static void vec(int64_t id, uint32_t version, float *v)
{
    uint64_t z = mix((uint64_t)id * 1000003u + version);
    uint64_t c = z % 64;
    for (int d = 0; d < DIM; d++) {
        z = mix(z + (uint64_t)d);
        v[d] = (float)(mix(c * 131 + (uint64_t)d) % 1000) / 100.0f + (float)(z % 1000) / 1000.0f;
    }
}

/* The writer's model: version per id (0: absent), under a lock readers share. */
typedef struct shared {
    copse_index *ix;
    pthread_rwlock_t model_lock;
    uint32_t *version;   /* MAX_ID entries */
    _Atomic uint64_t started, finished; /* changes begun and ended */
    _Atomic int stop;
    _Atomic long strict, loose, wrong, exact_checked, queries;
    _Atomic long recall_hits, recall_total;
} shared;

static float dist2(const float *a, const float *b)
{
    float s = 0;
    for (int d = 0; d < DIM; d++)
        s += (a[d] - b[d]) * (a[d] - b[d]);
    return s;
}

/* The k smallest squared distances of the model to q (model lock held). */
static void brute(const shared *sh, const float *q, float *best)
{
    int n = 0;
    float v[DIM];
    for (int64_t id = 0; id < MAX_ID; id++) {
        if (!sh->version[id])
            continue;
        vec(id, sh->version[id], v);
        float d = dist2(q, v);
        if (n == K && d >= best[K - 1])
            continue;
        int j = n < K ? n++ : K - 1;
        while (j > 0 && best[j - 1] > d) {
            best[j] = best[j - 1];
            j--;
        }
        best[j] = d;
    }
    for (; n < K; n++)
        best[n] = INFINITY;
}

static void *reader(void *arg)
{
    shared *sh = arg;
    copse_scratch *s;
    if (copse_scratch_new(&s) != COPSE_OK)
        return NULL;
    uint64_t z = mix((uint64_t)(uintptr_t)&s);
    float q[DIM], v[DIM], truth[K];
    while (!sh->stop) {
        z = mix(z);
        vec((int64_t)(z % MAX_ID), 7, q);
        int exact = z % 16 == 0;
        uint64_t f1 = sh->finished, s1 = sh->started;
        int64_t ids[K], n = 0;
        float d[K];
        int rc = exact ? copse_exact_vector(sh->ix, s, q, K, ids, d, &n)
                       : copse_search_vector(sh->ix, s, q, K, 80, ids, d, &n);
        pthread_rwlock_rdlock(&sh->model_lock);
        int quiet = s1 == f1 && sh->started == s1;
        int ok = rc == COPSE_OK && n == K;
        for (int64_t j = 0; ok && j < n; j++) {
            uint32_t ver = ids[j] >= 0 && ids[j] < MAX_ID ? sh->version[ids[j]] : 0;
            if (!ver) {
                /* Deleted since? Only acceptable when a change ran during the query. */
                ok = !quiet;
                continue;
            }
            vec(ids[j], ver, v);
            float e = sqrtf(dist2(q, v));
            /* A replaced item may show its old vector if the change raced the query. */
            ok = (fabsf(e - d[j]) <= 1e-3f * (1 + e) || !quiet) && (j == 0 || d[j - 1] <= d[j]);
            for (int64_t h = 0; h < j; h++)
                ok &= ids[h] != ids[j];
        }
        if (ok && quiet) {
            brute(sh, q, truth);
            if (sh->started == s1) { /* the model stayed put while we compared */
                long hits = 0;
                for (int64_t j = 0; j < n; j++)
                    hits += d[j] * d[j] <= truth[K - 1] * (1 + 1e-4f) + 1e-6f;
                if (exact) {
                    for (int64_t j = 0; j < n; j++)
                        ok &= fabsf(d[j] * d[j] - truth[j]) <= 1e-3f * (1 + truth[j]);
                    sh->exact_checked++;
                } else {
                    sh->recall_hits += hits;
                    sh->recall_total += K;
                }
                sh->strict++;
            } else {
                sh->loose++;
            }
        } else if (ok) {
            sh->loose++;
        }
        pthread_rwlock_unlock(&sh->model_lock);
        if (!ok)
            sh->wrong++;
        sh->queries++;
    }
    copse_scratch_free(s);
    return NULL;
}

/* A change: counted as begun, done to the index, then to the model. */
static int writer_step(shared *sh, uint64_t *z, int64_t *live, int64_t *n_live, int64_t *next)
{
    int64_t ids[BATCH];
    float rows[BATCH * DIM];
    uint32_t ver[BATCH];
    int rc = COPSE_OK;
    *z = mix(*z);
    sh->started++;
    if (*z % 3 && *next + BATCH < MAX_ID) { /* add, a fifth replacing */
        for (int i = 0; i < BATCH; i++) {
            int replace = i % 5 == 0 && *n_live > BATCH;
            ids[i] = replace ? live[mix(*z + (uint64_t)i) % (uint64_t)*n_live] : (*next)++;
            for (int j = 0; j < i; j++)
                if (ids[j] == ids[i])
                    ids[i] = (*next)++;
            ver[i] = sh->version[ids[i]] + 1;
            vec(ids[i], ver[i], rows + i * DIM);
        }
        rc = copse_add_items(sh->ix, BATCH, ids, 0, rows);
        pthread_rwlock_wrlock(&sh->model_lock);
        for (int i = 0; rc == COPSE_OK && i < BATCH; i++) {
            if (sh->version[ids[i]] == 0)
                live[(*n_live)++] = ids[i];
            sh->version[ids[i]] = ver[i];
        }
        pthread_rwlock_unlock(&sh->model_lock);
    } else { /* delete */
        int m = 0;
        for (int i = 0; i < BATCH / 2 && *n_live > K * 4; i++) {
            int64_t at = (int64_t)(mix(*z + (uint64_t)i) % (uint64_t)*n_live);
            ids[m++] = live[at];
            live[at] = live[--*n_live];
        }
        rc = copse_delete_items(sh->ix, m, ids);
        pthread_rwlock_wrlock(&sh->model_lock);
        for (int i = 0; rc == COPSE_OK && i < m; i++)
            sh->version[ids[i]] = 0;
        pthread_rwlock_unlock(&sh->model_lock);
    }
    if (rc == COPSE_OK && *z % 97 == 0)
        rc = copse_compact(sh->ix, 1);
    sh->finished++;
    return rc;
}

/* A child changes the saved file and saves it; killed at a random moment. The file must then
 * hold the items from before or after, and verify. */
static int crash_round(const char *path, uint64_t z, long *landed, long *before_after)
{
    copse_index *ix;
    if (copse_open(path, 0, &ix) != COPSE_OK)
        return 0;
    int64_t old_n = copse_n_items(ix);
    copse_free(ix);
    pid_t pid = fork();
    if (pid == 0) {
        copse_index *c;
        if (copse_open(path, 0, &c) != COPSE_OK)
            _exit(2);
        int64_t ids[BATCH];
        float rows[BATCH * DIM];
        for (int i = 0; i < BATCH; i++) {
            ids[i] = MAX_ID + i;
            vec(ids[i], 1, rows + i * DIM);
        }
        int rc = copse_add_items(c, BATCH, ids, 0, rows);
        if (rc == COPSE_OK && z % 2)
            rc = copse_compact(c, 1);
        if (rc == COPSE_OK)
            rc = copse_save(c, path);
        _exit(rc == COPSE_OK ? 0 : 3);
    }
    usleep((useconds_t)(mix(z) % 1500000));
    kill(pid, SIGKILL);
    int status;
    waitpid(pid, &status, 0);
    *landed += WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (copse_open(path, 0, &ix) != COPSE_OK)
        return 0;
    int64_t n = copse_n_items(ix);
    int ok = (n == old_n || n == old_n + BATCH) && copse_verify(ix) == COPSE_OK;
    *before_after += ok;
    copse_free(ix);
    return ok;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: soak DIR [SECONDS]\n");
        return 2;
    }
    double seconds = argc > 2 ? atof(argv[2]) : 600;
    char path[4096], crash_path[4200];
    snprintf(path, sizeof path, "%s/soak.copse", argv[1]);
    snprintf(crash_path, sizeof crash_path, "%s/soak-crash.copse", argv[1]);
    static shared sh;
    sh.version = calloc(MAX_ID + BATCH, sizeof *sh.version);
    int64_t *live = malloc(MAX_ID * sizeof *live), n_live = 0, next = BASE;
    pthread_rwlock_init(&sh.model_lock, NULL);
    if (copse_new(DIM, COPSE_EUCLIDEAN, &sh.ix) != COPSE_OK)
        return 1;
    float v[DIM];
    for (int64_t id = 0; id < BASE; id++) {
        vec(id, 1, v);
        copse_add_item(sh.ix, id, v);
        sh.version[id] = 1;
        live[n_live++] = id;
    }
    if (copse_build(sh.ix, -1, 0) != COPSE_OK || copse_save(sh.ix, path) != COPSE_OK) {
        fprintf(stderr, "soak: %s\n", copse_errmsg(sh.ix));
        return 1;
    }
    pthread_t tid[READERS];
    for (int i = 0; i < READERS; i++)
        pthread_create(&tid[i], NULL, reader, &sh);
    double t0 = now(), next_crash = t0 + 5;
    uint64_t z = 12345;
    long changes = 0, failed = 0, saves = 0, crashes = 0, landed = 0, intact = 0;
    while (now() - t0 < seconds) {
        if (writer_step(&sh, &z, live, &n_live, &next) != COPSE_OK) {
            fprintf(stderr, "soak: change failed: %s\n", copse_errmsg(sh.ix));
            failed++;
        }
        changes++;
        if (changes % 50 == 0) {
            failed += copse_save(sh.ix, path) != COPSE_OK;
            saves++;
        }
        if (now() >= next_crash) {
            /* The child's file is its own: the writer saves only to path. */
            crashes++;
            failed += copse_save(sh.ix, crash_path) != COPSE_OK;
            failed += !crash_round(crash_path, z, &landed, &intact);
            next_crash = now() + 5;
        }
    }
    sh.stop = 1;
    for (int i = 0; i < READERS; i++)
        pthread_join(tid[i], NULL);
    double recall = sh.recall_total ? (double)sh.recall_hits / (double)sh.recall_total : 1;
    printf("soak: %.0f s, 1 writer and %d readers\n", now() - t0, READERS);
    printf("  writer: %ld changes (adds of %d, a fifth replacing; deletes of %d; compactions), "
           "%ld saves, %ld failed\n", changes, BATCH, BATCH / 2, saves, failed);
    printf("  readers: %ld queries: %ld checked against brute force over the live set (%ld exact, "
           "all equal; recall@10 of the rest %.4f), %ld checked loosely (a change ran during "
           "them), %ld wrong\n", (long)sh.queries, (long)sh.strict, (long)sh.exact_checked,
           recall, (long)sh.loose, (long)sh.wrong);
    printf("  kills: %ld children killed while changing and saving (%ld had finished): the file "
           "loaded, verified and held the old or the new items %ld times\n", crashes, landed,
           intact);
    printf("  final: %lld live items, %lld added and %lld deleted since the last compaction\n",
           (long long)copse_n_items(sh.ix), (long long)copse_n_added(sh.ix),
           (long long)copse_n_deleted(sh.ix));
    int bad = sh.wrong || failed || intact != crashes || recall < 0.9;
    printf("soak: %s\n", bad ? "FAILED" : "ok");
    copse_free(sh.ix);
    free(sh.version);
    free(live);
    return bad;
}
