/*
 * crash.c: crash safety. A process killed with SIGKILL in the middle of copse_save or of an
 * on-disk build must leave no partial file under the target name: the file there is, byte
 * for byte, either the index that was there before or the complete new one, and it loads and
 * verifies.
 *
 *   crash [DIR]      (default: a fresh folder under $TMPDIR or /tmp)
 *
 * The kill times are spread over the measured length of the operation; the test also counts
 * how many kills landed while a temporary file existed (i.e. during the write), and fails if
 * too few did, so it cannot pass by always killing before or after the work.
 * Temporary files a killed process leaves beside the target (".tmp-XXXXXX": nothing can
 * remove them after SIGKILL) are counted and reported, then removed.
 * Prints one line per check and "N passed, N failed".
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "copse.h"

static int passed, failed;
static void check(int ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#include <stdarg.h>
static void check(int ok, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("%s ", ok ? "ok  " : "FAIL");
    vprintf(fmt, ap);
    printf("\n");
    fflush(stdout);
    va_end(ap);
    if (ok)
        passed++;
    else
        failed++;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void sleep_s(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = malloc((size_t)n + 1);
    *len = fread(buf, 1, (size_t)n, f);
    fclose(f);
    return buf;
}

static float *data(int64_t n, int dim, uint64_t seed)
{
    float *x = malloc(sizeof(float) * (size_t)n * (size_t)dim);
    uint64_t s = seed;
    for (int64_t i = 0; i < n * dim; i++) {
        uint64_t z = (s += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        x[i] = (float)((double)((z ^ (z >> 31)) >> 11) / 9007199254740992.0) + (float)(i / dim % 4);
    }
    return x;
}

static copse_index *make(const float *x, int64_t n, int dim, uint64_t seed, int trees)
{
    copse_index *ix;
    if (copse_new(dim, COPSE_EUCLIDEAN, &ix) != COPSE_OK || copse_set_seed(ix, seed) != COPSE_OK ||
        copse_add_items(ix, n, NULL, 0, x) != COPSE_OK || copse_build(ix, trees, 0) != COPSE_OK) {
        fprintf(stderr, "crash: cannot build: %s\n", copse_errmsg(ix));
        exit(2);
    }
    return ix;
}

static const char *dir;
static char target[1024];

/* Files in dir other than the target: temporaries (counted, removed) and anything else. */
static int leftovers(int *others)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int tmp = 0;
    *others = 0;
    const char *base = strrchr(target, '/') + 1;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.' || strcmp(e->d_name, base) == 0)
            continue;
        char p[2048];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        if (strncmp(e->d_name, base, strlen(base)) == 0 && strstr(e->d_name, ".tmp-")) {
            tmp++;
            unlink(p);
        } else {
            (*others)++;
        }
    }
    if (d)
        closedir(d);
    return tmp;
}

static int temp_exists(void)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int found = 0;
    while (d && (e = readdir(d)))
        found |= strstr(e->d_name, ".tmp-") != NULL;
    if (d)
        closedir(d);
    return found;
}

/* The target is exactly one of the allowed images, and loads and verifies. */
static int target_intact(const unsigned char *a, size_t alen, const unsigned char *b, size_t blen,
                         int *which)
{
    size_t len;
    unsigned char *img = slurp(target, &len);
    *which = 0;
    if (!img)
        return 0;
    if (len == alen && memcmp(img, a, alen) == 0)
        *which = 1;
    else if (b && len == blen && memcmp(img, b, blen) == 0)
        *which = 2;
    free(img);
    if (!*which)
        return 0;
    copse_index *ix;
    int ok = copse_open(target, 0, &ix) == COPSE_OK && copse_verify(ix) == COPSE_OK;
    copse_free(ix);
    return ok;
}

/* Runs child_fn in a child killed after delay seconds (it announces its start on a pipe).
 * Returns whether a temporary file existed at the moment of the kill. */
static int run_and_kill(void (*child_fn)(void *), void *arg, double delay, int *finished)
{
    int p[2];
    if (pipe(p) != 0)
        exit(2);
    pid_t pid = fork();
    if (pid == 0) {
        close(p[0]);
        if (write(p[1], "g", 1) != 1)
            _exit(3);
        child_fn(arg);
        _exit(0);
    }
    close(p[1]);
    char c;
    if (read(p[0], &c, 1) != 1)
        exit(2);
    close(p[0]);
    int during = 0;
    if (delay >= 0) { /* a negative delay: let it finish */
        sleep_s(delay);
        during = temp_exists();
        kill(pid, SIGKILL);
    }
    int st;
    waitpid(pid, &st, 0);
    *finished = WIFEXITED(st);
    return during;
}

static copse_index *big_index;
static void child_save(void *arg)
{
    (void)arg;
    for (;;)
        if (copse_save(big_index, target) != COPSE_OK)
            _exit(4);
}

typedef struct disk_job {
    const float *x;
    int64_t n;
    int dim;
} disk_job;

static void child_disk_build(void *arg)
{
    disk_job *j = arg;
    copse_index *ix;
    if (copse_new(j->dim, COPSE_EUCLIDEAN, &ix) != COPSE_OK || copse_set_seed(ix, 99) != COPSE_OK ||
        copse_on_disk_build(ix, target) != COPSE_OK)
        _exit(4);
    for (int64_t i = 0; i < j->n; i++)
        if (copse_add_item(ix, i, j->x + i * j->dim) != COPSE_OK)
            _exit(4);
    if (copse_build(ix, 4, 1) != COPSE_OK)
        _exit(4);
    copse_free(ix);
}

int main(int argc, char **argv)
{
    char made[512];
    if (argc > 1) {
        dir = argv[1];
    } else {
        snprintf(made, sizeof made, "%s/copse-crash-%d", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp",
                 (int)getpid());
        mkdir(made, 0777);
        dir = made;
    }
    snprintf(target, sizeof target, "%s/index.copse", dir);
    srand(12345);

    /* The old index at the target: small. */
    enum { DIM = 32 };
    float *xa = data(2000, DIM, 1);
    copse_index *a = make(xa, 2000, DIM, 1, 3);
    check(copse_save(a, target) == COPSE_OK, "save the old index");
    size_t alen;
    unsigned char *aimg = slurp(target, &alen);

    /* 1. Killed during copse_save of a larger index over it. */
    int64_t nb = 150000;
    float *xb = data(nb, DIM, 2);
    big_index = make(xb, nb, DIM, 2, 4);
    char bpath[1100];
    snprintf(bpath, sizeof bpath, "%s/reference.bin", dir);
    double t0 = now();
    check(copse_save(big_index, bpath) == COPSE_OK, "save the new index elsewhere");
    double tsave = now() - t0;
    size_t blen;
    unsigned char *bimg = slurp(bpath, &blen);
    unlink(bpath);
    printf("  one save of %zu bytes takes %.3f s\n", blen, tsave);
    int rounds = 24, during = 0, bad = 0, saw_new = 0, tmp_left = 0, others = 0;
    for (int r = 0; r < rounds; r++) {
        /* Kill points spread over one and a half saves, plus jitter. */
        double delay = tsave * 1.5 * (r + (double)rand() / RAND_MAX) / rounds;
        int finished;
        during += run_and_kill(child_save, NULL, delay, &finished);
        int which, o;
        if (!target_intact(aimg, alen, bimg, blen, &which)) {
            bad++;
            printf("  round %d (kill after %.3f s): the target is neither index\n", r, delay);
        }
        saw_new += which == 2;
        tmp_left += leftovers(&o);
        others += o;
        /* Put the old index back for the next round. */
        if (copse_save(a, target) != COPSE_OK)
            bad++;
    }
    check(bad == 0, "save killed %d times: the target is always the old or the new index, "
          "whole, and verifies (new index %d times)", rounds, saw_new);
    check(during >= rounds / 4, "kills landed during a write %d of %d times", during, rounds);
    check(others == 0, "no stray files beside the target (%d)", others);
    printf("  temporary files left by killed saves: %d (removed)\n", tmp_left);

    /* 2. Killed during an on-disk build aimed at the target. */
    int64_t nd = 60000;
    float *xd = data(nd, DIM, 3);
    disk_job job = {xd, nd, DIM};
    t0 = now();
    int finished;
    run_and_kill(child_disk_build, &job, -1, &finished); /* measure: not killed */
    double tdisk = now() - t0;
    check(finished, "an on-disk build left alone finishes");
    size_t dlen;
    unsigned char *dimg = slurp(target, &dlen);
    check(dimg && !(dlen == alen && memcmp(dimg, aimg, alen) == 0),
          "an on-disk build that completes replaces the target");
    copse_save(a, target);
    printf("  one on-disk build takes %.3f s\n", tdisk);
    (void)tdisk;
    bad = during = saw_new = tmp_left = others = 0;
    rounds = 16;
    for (int r = 0; r < rounds; r++) {
        double delay = tdisk * 1.2 * (r + (double)rand() / RAND_MAX) / rounds;
        during += run_and_kill(child_disk_build, &job, delay, &finished);
        int which, o;
        if (!target_intact(aimg, alen, dimg, dlen, &which)) {
            bad++;
            printf("  round %d (kill after %.3f s): the target is neither index\n", r, delay);
        }
        saw_new += which == 2;
        tmp_left += leftovers(&o);
        others += o;
        if (copse_save(a, target) != COPSE_OK)
            bad++;
    }
    check(bad == 0, "on-disk build killed %d times: the target is always the old index or the "
          "finished new one, and verifies (new %d times)", rounds, saw_new);
    check(during >= rounds / 2, "kills landed during the build %d of %d times", during, rounds);
    check(others == 0, "no stray files beside the target (%d)", others);
    printf("  temporary files left by killed on-disk builds: %d (removed)\n", tmp_left);

    /* 3. No old index: a killed save leaves either nothing or the whole new index. */
    unlink(target);
    bad = 0;
    for (int r = 0; r < 8; r++) {
        double delay = tsave * 1.5 * (r + 0.5) / 8;
        run_and_kill(child_save, NULL, delay, &finished);
        int which, o;
        if (access(target, F_OK) == 0 && !target_intact(bimg, blen, NULL, 0, &which))
            bad++;
        leftovers(&o);
        unlink(target);
    }
    check(bad == 0, "with no old index, a killed save leaves nothing or the whole new index");

    copse_free(a);
    copse_free(big_index);
    free(xa);
    free(xb);
    free(xd);
    free(aimg);
    free(bimg);
    free(dimg);
    unlink(target);
    if (argc <= 1)
        rmdir(made);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
