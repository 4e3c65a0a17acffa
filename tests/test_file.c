/*
 * test_file.c: the index file. Round trips give identical answers; files are byte-identical
 * across thread counts for one seed and between on-disk and in-memory builds; buffers load
 * like files; damaged files are refused at load, caught by verify, and never crash a query; a
 * process killed while it saves or builds on disk leaves the old file or the whole new one.
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fmt.h"
#include "tests.h"

static void same_answers(t_ctx *t, copse_index *a, copse_index *b, const float *qs, int nq, int dim)
{
    int64_t ia[10], ib[10], na, nb;
    float da[10], db[10];
    for (int q = 0; q < nq; q++) {
        CHECK_OK(t, copse_search_vector(a, NULL, qs + q * dim, 10, -1, ia, da, &na));
        CHECK_OK(t, copse_search_vector(b, NULL, qs + q * dim, 10, -1, ib, db, &nb));
        CHECK(t, na == nb && memcmp(ia, ib, sizeof(int64_t) * (size_t)na) == 0 &&
                     memcmp(da, db, sizeof(float) * (size_t)na) == 0);
    }
}

static void test_round_trip(t_ctx *t)
{
    for (int m = COPSE_ANGULAR; m <= COPSE_HAMMING; m++) {
        int dim = m == COPSE_HAMMING ? 100 : 12;
        float *x = m == COPSE_HAMMING ? t_bits(t, 1050, dim, 1, 0.5) : t_clustered(t, 1050, dim, 8, 0.3);
        copse_index *ix;
        CHECK_OK(t, copse_new(dim, (copse_metric)m, &ix));
        /* Ids with holes, out of order, and labels: all must survive. */
        for (int i = 0; i < 1000; i++)
            CHECK_OK(t, copse_add_item(ix, (int64_t)(1000 - i) * 7, x + i * dim));
        CHECK_OK(t, copse_set_label(ix, 7, "seven"));
        CHECK_OK(t, copse_build(ix, 5, 2));
        const char *path = t_path(t, "rt.copse");
        CHECK_OK(t, copse_save(ix, path));
        copse_index *ld;
        CHECK_OK(t, copse_open(path, 0, &ld));
        CHECK(t, copse_dim(ld) == dim && copse_get_metric(ld) == (copse_metric)m);
        CHECK(t, copse_n_items(ld) == 1000 && copse_n_trees(ld) == 5 && copse_max_id(ld) == 7000);
        CHECK(t, copse_state(ld) == COPSE_STATE_LOADED);
        CHECK(t, copse_file_size(ld) == copse_file_size(ix));
        /* The section table reads the same built (computed) and loaded (from the file). */
        CHECK(t, copse_n_sections(ld) == copse_n_sections(ix) && copse_n_sections(ix) >= 5);
        for (int i = 0; i < copse_n_sections(ix); i++) {
            const char *n1, *n2;
            uint64_t o1, o2, l1, l2;
            uint32_t c1, c2;
            CHECK_OK(t, copse_section_info(ix, i, &n1, &o1, &l1, &c1));
            CHECK_OK(t, copse_section_info(ld, i, &n2, &o2, &l2, &c2));
            CHECK(t, strcmp(n1, n2) == 0 && o1 == o2 && l1 == l2 && c1 == c2 && o1 % 64 == 0);
        }
        CHECK_RC(t, copse_section_info(ix, copse_n_sections(ix), NULL, NULL, NULL, NULL), COPSE_ERR_ARG);
        CHECK_OK(t, copse_verify(ld));
        same_answers(t, ix, ld, x + 1000 * dim, 50, dim);
        float a[100], b[100];
        CHECK_OK(t, copse_get_item(ld, 7 * 555, a));
        CHECK_OK(t, copse_get_item(ix, 7 * 555, b));
        CHECK(t, memcmp(a, b, sizeof(float) * (size_t)dim) == 0);
        int64_t id;
        CHECK_OK(t, copse_find_label(ld, "seven", &id));
        CHECK(t, id == 7);
        /* Saving a loaded index writes the same bytes. */
        CHECK_OK(t, copse_save(ld, t_path(t, "rt2.copse")));
        size_t l1, l2;
        unsigned char *f1 = t_read_file(path, &l1), *f2 = t_read_file(t_path(t, "rt2.copse"), &l2);
        CHECK(t, f1 && f2 && l1 == l2 && memcmp(f1, f2, l1) == 0);
        /* save_buffer writes the file's bytes; too small a buffer is refused. */
        unsigned char *mem = malloc(l1);
        CHECK_RC(t, copse_save_buffer(ix, mem, l1 - 1), COPSE_ERR_ARG);
        CHECK_OK(t, copse_save_buffer(ix, mem, l1));
        CHECK(t, memcmp(mem, f1, l1) == 0);
        memset(mem, 0xAB, l1);
        CHECK_OK(t, copse_save_buffer(ld, mem, l1));
        CHECK(t, memcmp(mem, f1, l1) == 0);
        free(mem);
        /* A buffer, aligned or not, loads like the file. */
        unsigned char *shifted = malloc(l1 + 1);
        memcpy(shifted + 1, f1, l1);
        copse_index *fb;
        CHECK_OK(t, copse_new(dim, (copse_metric)m, &fb));
        CHECK_OK(t, copse_load_buffer(fb, shifted + 1, l1));
        same_answers(t, ix, fb, x + 1000 * dim, 20, dim);
        copse_free(fb);
        free(shifted);
        free(f1);
        free(f2);
        copse_free(ld);
        copse_free(ix);
        free(x);
    }
}

static unsigned char *build_file(t_ctx *t, const float *x, int n, int dim, uint64_t seed,
                                 int threads, size_t *len, const char *name)
{
    copse_index *ix;
    CHECK_OK(t, copse_new(dim, COPSE_ANGULAR, &ix));
    CHECK_OK(t, copse_set_seed(ix, seed));
    CHECK_OK(t, copse_add_items(ix, n, NULL, 0, x));
    CHECK_OK(t, copse_build(ix, 8, threads));
    CHECK_OK(t, copse_save(ix, t_path(t, name)));
    copse_free(ix);
    return t_read_file(t_path(t, name), len);
}

static void test_deterministic(t_ctx *t)
{
    float *x = t_clustered(t, 3000, 20, 10, 0.4);
    size_t l1, l2, l3, l4;
    unsigned char *a = build_file(t, x, 3000, 20, 42, 1, &l1, "t1.copse");
    unsigned char *b = build_file(t, x, 3000, 20, 42, 2, &l2, "t2.copse");
    unsigned char *c = build_file(t, x, 3000, 20, 42, 5, &l3, "t5.copse");
    unsigned char *d = build_file(t, x, 3000, 20, 43, 2, &l4, "s43.copse");
    CHECK(t, a && b && c && d);
    CHECK(t, l1 == l2 && memcmp(a, b, l1) == 0);
    CHECK(t, l1 == l3 && memcmp(a, c, l1) == 0);
    CHECK(t, !(l1 == l4 && memcmp(a, d, l1) == 0)); /* another seed, another forest */
    free(a);
    free(b);
    free(c);
    free(d);
    free(x);
}

static int temp_files_left(t_ctx *t)
{
    char dir[512];
    snprintf(dir, sizeof dir, "%s", t_path(t, ""));
    DIR *dp = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (dp && (e = readdir(dp)))
        n += strstr(e->d_name, ".tmp-") != NULL;
    if (dp)
        closedir(dp);
    return n;
}

static void test_on_disk(t_ctx *t)
{
    float *x = t_clustered(t, 2000, 16, 10, 0.4);
    copse_index *mem, *disk;
    CHECK_OK(t, copse_new(16, COPSE_DOT, &mem));
    CHECK_OK(t, copse_new(16, COPSE_DOT, &disk));
    char path[512];
    snprintf(path, sizeof path, "%s", t_path(t, "disk.copse"));
    CHECK_OK(t, copse_on_disk_build(disk, path));
    for (int i = 0; i < 2000; i++) {
        CHECK_OK(t, copse_add_item(mem, i, x + i * 16));
        CHECK_OK(t, copse_add_item(disk, i, x + i * 16));
    }
    CHECK_OK(t, copse_add_item(disk, 5, x)); /* replacement goes to the file too */
    CHECK_OK(t, copse_add_item(mem, 5, x));
    CHECK(t, access(path, F_OK) != 0); /* nothing under the target name until build ends */
    float v[16];
    CHECK_OK(t, copse_get_item(disk, 5, v));
    CHECK(t, memcmp(v, x, sizeof v) == 0);
    CHECK_OK(t, copse_build(mem, 6, 2));
    CHECK_OK(t, copse_build(disk, 6, 1));
    CHECK(t, copse_state(disk) == COPSE_STATE_BUILT);
    CHECK_RC(t, copse_unbuild(disk), COPSE_ERR_STATE);
    CHECK_OK(t, copse_save(mem, t_path(t, "mem.copse")));
    size_t l1, l2;
    unsigned char *a = t_read_file(path, &l1), *b = t_read_file(t_path(t, "mem.copse"), &l2);
    CHECK(t, a && b && l1 == l2 && memcmp(a, b, l1) == 0);
    CHECK_OK(t, copse_verify(disk));
    same_answers(t, mem, disk, x, 20, 16);
    CHECK(t, temp_files_left(t) == 0);
    /* An on-disk build abandoned before build leaves nothing behind. */
    copse_index *gone;
    CHECK_OK(t, copse_new(16, COPSE_DOT, &gone));
    CHECK_OK(t, copse_on_disk_build(gone, t_path(t, "gone.copse")));
    CHECK_OK(t, copse_add_item(gone, 0, x));
    copse_free(gone);
    CHECK(t, temp_files_left(t) == 0 && access(t_path(t, "gone.copse"), F_OK) != 0);
    free(a);
    free(b);
    copse_free(mem);
    copse_free(disk);
    free(x);
}

static unsigned char *good_image(t_ctx *t, size_t *len, copse_metric m)
{
    float *x = t_clustered(t, 600, 8, 5, 0.3);
    copse_index *ix = t_index(t, 8, m, x, 600, 4, 1);
    unsigned char *img = NULL;
    if (ix && copse_save(ix, t_path(t, "good.copse")) == COPSE_OK)
        img = t_read_file(t_path(t, "good.copse"), len);
    copse_free(ix);
    free(x);
    return img;
}

/* Loads an edited image; returns the status and, when it loads, runs queries and verify. */
static int try_image(t_ctx *t, const unsigned char *img, size_t len, int *verify_rc)
{
    copse_index *ix;
    copse_new(8, COPSE_EUCLIDEAN, &ix);
    int rc = copse_load_buffer(ix, img, len);
    *verify_rc = COPSE_OK;
    if (rc == COPSE_OK) {
        float q[8] = {0};
        int64_t ids[10], n;
        for (int i = 0; i < 5; i++) {
            q[i] = 1;
            int qrc = copse_search_vector(ix, NULL, q, 10, 500, ids, NULL, &n);
            CHECK(t, qrc == COPSE_OK || qrc == COPSE_ERR_CORRUPT);
        }
        *verify_rc = copse_verify(ix);
    }
    copse_free(ix);
    return rc;
}

static void test_damaged(t_ctx *t)
{
    size_t len;
    unsigned char *img = good_image(t, &len, COPSE_EUCLIDEAN);
    REQUIRE(t, img);
    unsigned char *bad = malloc(len);
    int vrc;
    CHECK_OK(t, try_image(t, img, len, &vrc));
    CHECK_OK(t, vrc);
    /* Truncated anywhere: refused at load. */
    for (size_t cut = 0; cut < len; cut += len / 97 + 1)
        CHECK(t, try_image(t, img, cut, &vrc) != COPSE_OK);
    /* Trailing garbage. */
    unsigned char *longer = calloc(len + 64, 1);
    memcpy(longer, img, len);
    CHECK_RC(t, try_image(t, longer, len + 64, &vrc), COPSE_ERR_CORRUPT);
    free(longer);
    /* Wrong magic, future version, foreign byte order, flipped header byte. */
    memcpy(bad, img, len);
    bad[1] = 'X';
    CHECK_RC(t, try_image(t, bad, len, &vrc), COPSE_ERR_NOTCOPSE);
    memcpy(bad, img, len);
    bad[12] = COPSE_FORMAT_MAJOR + 1;
    CHECK_RC(t, try_image(t, bad, len, &vrc), COPSE_ERR_VERSION);
    memcpy(bad, img, len);
    fmt_wr32(bad + 8, __builtin_bswap32(fmt_rd32(img + 8)));
    CHECK_RC(t, try_image(t, bad, len, &vrc), COPSE_ERR_VERSION);
    for (size_t at = 16; at < 512; at += 7) {
        memcpy(bad, img, len);
        bad[at] ^= 0x40;
        CHECK_RC(t, try_image(t, bad, len, &vrc), COPSE_ERR_CORRUPT);
    }
    /* A flipped byte in any section: loads (sections are not read at load) but verify finds
     * the checksum mismatch, and queries never crash. */
    for (size_t at = 512; at < len; at += len / 61 + 1) {
        memcpy(bad, img, len);
        bad[at] ^= 0x5a;
        if (try_image(t, bad, len, &vrc) == COPSE_OK)
            CHECK_RC(t, vrc, COPSE_ERR_CORRUPT);
    }
    free(bad);
    free(img);
}

/* Structural damage behind valid checksums: only verify and the query-time bounds checks
 * can see it. */
static void test_structure(t_ctx *t)
{
    size_t len;
    unsigned char *img = good_image(t, &len, COPSE_EUCLIDEAN);
    REQUIRE(t, img);
    unsigned char *bad = malloc(len);
    uint64_t off, slen;
    int vrc;
    REQUIRE(t, fmt_find(img, len, SEC_NODES, &off, &slen));
    /* A child reference out of bounds. */
    memcpy(bad, img, len);
    fmt_wr64(bad + off, 1ull << 40);
    fmt_reseal(bad, len);
    CHECK_OK(t, try_image(t, bad, len, &vrc));
    CHECK_RC(t, vrc, COPSE_ERR_CORRUPT);
    /* A cycle: node 0's child points back at node 0. */
    memcpy(bad, img, len);
    fmt_wr64(bad + off, 0);
    fmt_wr64(bad + off + 8, 0);
    fmt_reseal(bad, len);
    CHECK_OK(t, try_image(t, bad, len, &vrc));
    CHECK_RC(t, vrc, COPSE_ERR_CORRUPT);
    /* A leaf item out of bounds, and a leaf running past its section. */
    REQUIRE(t, fmt_find(img, len, SEC_LEAF_ITEMS, &off, &slen));
    memcpy(bad, img, len);
    fmt_wr32(bad + off, 999999);
    fmt_reseal(bad, len);
    CHECK_OK(t, try_image(t, bad, len, &vrc));
    CHECK_RC(t, vrc, COPSE_ERR_CORRUPT);
    REQUIRE(t, fmt_find(img, len, SEC_LEAVES, &off, &slen));
    memcpy(bad, img, len);
    fmt_wr64(bad + off, 1ull << 50);
    fmt_reseal(bad, len);
    CHECK_OK(t, try_image(t, bad, len, &vrc));
    CHECK_RC(t, vrc, COPSE_ERR_CORRUPT);
    /* A graph neighbour out of bounds: verify names it, queries stop with CORRUPT. */
    REQUIRE(t, fmt_find(img, len, SEC_GRAPH, &off, &slen));
    memcpy(bad, img, len);
    for (uint64_t i = 0; i < slen; i += 4)
        fmt_wr32(bad + off + i, 700000);
    fmt_reseal(bad, len);
    CHECK_OK(t, try_image(t, bad, len, &vrc));
    CHECK_RC(t, vrc, COPSE_ERR_CORRUPT);
    /* A root out of bounds is caught at load. */
    REQUIRE(t, fmt_find(img, len, SEC_ROOTS, &off, &slen));
    memcpy(bad, img, len);
    fmt_wr64(bad + off, 123456789);
    fmt_reseal(bad, len);
    CHECK_RC(t, try_image(t, bad, len, &vrc), COPSE_ERR_CORRUPT);
    free(bad);
    free(img);
}


/* ---- crash safety: SIGKILL in the middle of a save or an on-disk build -------------------
 * The file under the target name must be, byte for byte, the index that was there before or
 * the complete new one, and load and verify. Kill times are spread over the measured length
 * of the operation, and the cases require that enough kills landed while a temporary file
 * existed, so they cannot pass by always killing before or after the work. The temporary
 * files a killed process leaves (NAME.tmp-XXXXXX: nothing can remove them after SIGKILL)
 * are counted and removed. Release build only: no sanitizer sees into a killed child. */
enum { CRASH_DIM = 32 };

static float *crash_rows(int64_t n, uint64_t seed)
{
    float *x = malloc(sizeof(float) * (size_t)n * CRASH_DIM);
    uint64_t s = seed;
    for (int64_t i = 0; i < n * CRASH_DIM; i++) {
        uint64_t z = (s += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        x[i] = (float)((double)((z ^ (z >> 31)) >> 11) / 9007199254740992.0) +
               (float)(i / CRASH_DIM % 4);
    }
    return x;
}

static copse_index *crash_index(t_ctx *t, const float *x, int64_t n, uint64_t seed, int trees)
{
    copse_index *ix = NULL;
    if (copse_new(CRASH_DIM, COPSE_EUCLIDEAN, &ix) != COPSE_OK ||
        copse_set_seed(ix, seed) != COPSE_OK || copse_add_items(ix, n, NULL, 0, x) != COPSE_OK ||
        copse_build(ix, trees, 0) != COPSE_OK) {
        fprintf(stderr, "  cannot build: %s\n", copse_errmsg(ix));
        t->failed = 1;
        copse_free(ix);
        return NULL;
    }
    return ix;
}

/* What a crash case works on: its folder, the target, the old index's image. */
typedef struct crash_ctx {
    char dir[256], target[512];
    copse_index *old;
    unsigned char *old_img;
    size_t old_len;
    const float *x; /* the on-disk build's rows */
    int64_t n;
} crash_ctx;

/* Files in the folder other than the target: temporaries (counted, removed) and others. */
static int leftovers(const crash_ctx *c, int *others)
{
    DIR *d = opendir(c->dir);
    struct dirent *e;
    int tmp = 0;
    *others = 0;
    const char *base = strrchr(c->target, '/') + 1;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.' || strcmp(e->d_name, base) == 0)
            continue;
        char p[1024];
        snprintf(p, sizeof p, "%s/%s", c->dir, e->d_name);
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

static int temp_exists(const crash_ctx *c)
{
    DIR *d = opendir(c->dir);
    struct dirent *e;
    int found = 0;
    while (d && (e = readdir(d)))
        found |= strstr(e->d_name, ".tmp-") != NULL;
    if (d)
        closedir(d);
    return found;
}

/* The target is exactly the old image (*which 1) or the new one (2), and loads and verifies. */
static int target_intact(const crash_ctx *c, const unsigned char *b, size_t blen, int *which)
{
    size_t len;
    unsigned char *img = t_read_file(c->target, &len);
    *which = 0;
    if (!img)
        return 0;
    if (c->old_img && len == c->old_len && memcmp(img, c->old_img, len) == 0)
        *which = 1;
    else if (b && len == blen && memcmp(img, b, blen) == 0)
        *which = 2;
    free(img);
    if (!*which)
        return 0;
    copse_index *ix;
    int ok = copse_open(c->target, 0, &ix) == COPSE_OK && copse_verify(ix) == COPSE_OK;
    copse_free(ix);
    return ok;
}

static void sleep_s(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* Runs child_fn in a child killed after delay seconds from its start (it says when it starts
 * on a pipe; a negative delay lets it finish). Returns whether a temporary file existed at
 * the moment of the kill; *finished, whether the child ended by itself. */
static int run_and_kill(void (*child_fn)(const crash_ctx *, void *), const crash_ctx *c,
                        void *arg, double delay, int *finished)
{
    int p[2];
    fflush(NULL);
    if (pipe(p) != 0)
        return *finished = 0;
    pid_t pid = fork();
    if (pid == 0) {
        close(p[0]);
        if (write(p[1], "g", 1) != 1)
            _exit(3);
        child_fn(c, arg);
        _exit(0);
    }
    close(p[1]);
    char ch;
    int started = pid > 0 && read(p[0], &ch, 1) == 1;
    close(p[0]);
    int during = 0;
    if (started && delay >= 0) {
        sleep_s(delay);
        during = temp_exists(c);
        kill(pid, SIGKILL);
    }
    int st = 0;
    if (pid > 0)
        waitpid(pid, &st, 0);
    *finished = pid > 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0;
    return during;
}

static void child_save(const crash_ctx *c, void *ix)
{
    for (;;)
        if (copse_save(ix, c->target) != COPSE_OK)
            _exit(4);
}

static void child_disk_build(const crash_ctx *c, void *unused)
{
    (void)unused;
    copse_index *ix;
    if (copse_new(CRASH_DIM, COPSE_EUCLIDEAN, &ix) != COPSE_OK || copse_set_seed(ix, 99) != COPSE_OK ||
        copse_on_disk_build(ix, c->target) != COPSE_OK)
        _exit(4);
    for (int64_t i = 0; i < c->n; i++)
        if (copse_add_item(ix, i, c->x + i * CRASH_DIM) != COPSE_OK)
            _exit(4);
    if (copse_build(ix, 4, 1) != COPSE_OK)
        _exit(4);
    copse_free(ix);
}

/* Kills child_fn(c, arg) `rounds` times, at times spread over `spread` seconds (plus jitter),
 * checking after each kill that the target is the old image or new_img, whole, and verifies,
 * and putting the old index back; at least min_during kills must land while a temporary file
 * exists. `what` names the operation in the report. */
static void kill_rounds(t_ctx *t, const crash_ctx *c, void (*child_fn)(const crash_ctx *, void *),
                        void *arg, double spread, int rounds, int min_during,
                        const unsigned char *new_img, size_t new_len, const char *what)
{
    int during = 0, bad = 0, saw_new = 0, tmp_left = 0, others = 0, finished;
    for (int r = 0; r < rounds; r++) {
        double delay = spread * (r + t_unif(t)) / rounds;
        during += run_and_kill(child_fn, c, arg, delay, &finished);
        int which, o;
        if (!target_intact(c, new_img, new_len, &which)) {
            bad++;
            printf("  round %d (kill after %.3f s): the target is neither index\n", r, delay);
        }
        saw_new += which == 2;
        tmp_left += leftovers(c, &o);
        others += o;
        bad += copse_save(c->old, c->target) != COPSE_OK;
    }
    t_step(t, bad == 0, "%s killed %d times: the target is always the old index or the whole "
           "new one, and verifies (new %d times)", what, rounds, saw_new);
    t_step(t, during >= min_during, "kills landed while a temporary file existed %d of %d times",
           during, rounds);
    t_step(t, others == 0, "no stray files beside the target (%d)", others);
    printf("  temporary files left by killed %s: %d (removed)\n", what, tmp_left);
}

/* The old index (2,000 items) saved at the target of this case's folder. */
static int crash_setup(t_ctx *t, crash_ctx *c, float **xa)
{
    memset(c, 0, sizeof *c);
    snprintf(c->dir, sizeof c->dir, "%s", t_dir(t));
    snprintf(c->target, sizeof c->target, "%s/index.copse", c->dir);
    *xa = crash_rows(2000, 1);
    c->old = crash_index(t, *xa, 2000, 1, 3);
    if (!c->old || copse_save(c->old, c->target) != COPSE_OK)
        return 0;
    c->old_img = t_read_file(c->target, &c->old_len);
    return c->old_img != NULL;
}

/* Killed 24 times during copse_save of a 40 MB index over a small one; then 8 times with no
 * index at the target, where a killed save leaves nothing or the whole new index. */
static void test_crash_save(t_ctx *t)
{
    T_NOT_UNDER_ASAN(); /* 2.3 minutes there */
    crash_ctx c;
    float *xa, *xb = crash_rows(150000, 2);
    copse_index *big = crash_setup(t, &c, &xa) ? crash_index(t, xb, 150000, 2, 4) : NULL;
    REQUIRE(t, big);
    char bpath[600];
    snprintf(bpath, sizeof bpath, "%s/reference.bin", c.dir);
    double t0 = t_now();
    t_step(t, copse_save(big, bpath) == COPSE_OK, "save the new index elsewhere");
    double tsave = t_now() - t0;
    size_t blen;
    unsigned char *bimg = t_read_file(bpath, &blen);
    unlink(bpath);
    REQUIRE(t, bimg);
    printf("  one save of %zu bytes takes %.3f s\n", blen, tsave);
    /* Kill points spread over one and a half saves. */
    kill_rounds(t, &c, child_save, big, tsave * 1.5, 24, 24 / 4, bimg, blen, "saves");

    unlink(c.target);
    free(c.old_img);
    c.old_img = NULL; /* now only "nothing" or the new image is allowed */
    int bad = 0, finished;
    for (int r = 0; r < 8; r++) {
        run_and_kill(child_save, &c, big, tsave * 1.5 * (r + 0.5) / 8, &finished);
        int which, o;
        if (access(c.target, F_OK) == 0 && !target_intact(&c, bimg, blen, &which))
            bad++;
        leftovers(&c, &o);
        unlink(c.target);
    }
    t_step(t, bad == 0, "with no old index, a killed save leaves nothing or the whole new index");
    copse_free(c.old);
    copse_free(big);
    free(xa);
    free(xb);
    free(bimg);
}

/* Killed 16 times during an on-disk build (30,000 items) aimed at an existing index. */
static void test_crash_on_disk_build(t_ctx *t)
{
    T_NOT_UNDER_ASAN(); /* minutes there: the graph build dominates, and ASan slows it 5x */
    crash_ctx c;
    float *xa;
    int ready = crash_setup(t, &c, &xa);
    REQUIRE(t, ready);
    c.n = 30000; /* a build of several seconds, so most kills land inside it */
    float *xd = crash_rows(c.n, 3);
    c.x = xd;
    double t0 = t_now();
    int finished;
    run_and_kill(child_disk_build, &c, NULL, -1, &finished); /* measure: not killed */
    double tdisk = t_now() - t0;
    t_step(t, finished, "an on-disk build left alone finishes");
    size_t dlen;
    unsigned char *dimg = t_read_file(c.target, &dlen);
    t_step(t, dimg && !(dlen == c.old_len && memcmp(dimg, c.old_img, dlen) == 0),
           "an on-disk build that completes replaces the target");
    CHECK_OK(t, copse_save(c.old, c.target));
    printf("  one on-disk build takes %.3f s\n", tdisk);
    kill_rounds(t, &c, child_disk_build, NULL, tdisk * 1.2, 16, 16 / 2, dimg, dlen,
                "on-disk builds");
    copse_free(c.old);
    free(c.old_img);
    free(xa);
    free(xd);
    free(dimg);
}

const t_case file_cases[] = {
    {"file/round_trip", test_round_trip},
    {"file/deterministic", test_deterministic},
    {"file/on_disk", test_on_disk},
    {"file/damaged", test_damaged},
    {"file/structure", test_structure},
    {"file/crash_save", test_crash_save},
    {"file/crash_on_disk_build", test_crash_on_disk_build},
    {NULL, NULL},
};
