/*
 * test_io.c: the operating-system layer as a multi-threaded application sees it. Saving and
 * on-disk builds create files; they must do it without touching process-wide settings (the
 * umask), and the files they leave must have the mode any other new file gets. A mapped
 * file's pages are shared by every process that opens it, never copied.
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tests.h"

static int mode_of(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (int)(st.st_mode & 07777) : -1;
}

/* A saved index and an on-disk build get 0666 less the umask, like fopen(path, "w"). */
static void test_modes(t_ctx *t)
{
    float *x = t_uniform(t, 200, 8);
    copse_index *ix = t_index(t, 8, COPSE_EUCLIDEAN, x, 200, 2, 1);
    REQUIRE(t, ix);
    static const mode_t masks[] = {022, 027, 077, 0, 0266};
    mode_t old = umask(022);
    for (size_t i = 0; i < sizeof masks / sizeof *masks; i++) {
        umask(masks[i]);
        char path[512];
        snprintf(path, sizeof path, "%s", t_path(t, "saved.copse"));
        unlink(path);
        CHECK_OK(t, copse_save(ix, path));
        int m = mode_of(path);
        if (m != (int)(0666 & ~masks[i])) {
            fprintf(stderr, "  umask %03o: saved file has mode %03o\n", (unsigned)masks[i], m);
            t->failed = 1;
        }
        /* An on-disk build's file is made the same way, then renamed into place. */
        snprintf(path, sizeof path, "%s", t_path(t, "disk.copse"));
        unlink(path);
        copse_index *d = NULL;
        CHECK_OK(t, copse_new(8, COPSE_EUCLIDEAN, &d));
        CHECK_OK(t, copse_on_disk_build(d, path));
        CHECK_OK(t, copse_add_items(d, 200, NULL, 0, x));
        CHECK_OK(t, copse_build(d, 2, 1));
        copse_free(d);
        m = mode_of(path);
        if (m != (int)(0666 & ~masks[i])) {
            fprintf(stderr, "  umask %03o: on-disk build has mode %03o\n", (unsigned)masks[i], m);
            t->failed = 1;
        }
    }
    umask(old);
    copse_free(ix);
    free(x);
}

typedef struct creator {
    char dir[512];
    int id;
    atomic_int *stop;
    long made, wrong;
    int last_wrong;
} creator;

/* Another part of the application: it creates files and expects the umask it set. */
static void *create_files(void *arg)
{
    creator *c = arg;
    char path[600];
    snprintf(path, sizeof path, "%s/other-%d", c->dir, c->id);
    while (!atomic_load(c->stop)) {
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd < 0)
            continue;
        struct stat st;
        if (fstat(fd, &st) == 0 && (st.st_mode & 0777) != 0644) {
            c->wrong++;
            c->last_wrong = (int)(st.st_mode & 0777);
        }
        c->made++;
        close(fd);
        unlink(path);
    }
    return NULL;
}

/* Saving must not change the umask even for an instant: a thread creating its own files at
 * the same time would make them with whatever mask it saw (world-writable, under umask 0).
 * The old umask(0); umask(mask) pair was caught in 8 runs of 8 (from 1 to 9,000 files with
 * mode 666 in each), so the test saves for up to 3 s, tens of thousands of times, in
 * memory-backed /dev/shm when there is one (no disk to sync). */
static void test_umask_untouched(t_ctx *t)
{
    float *x = t_uniform(t, 64, 4);
    copse_index *ix = t_index(t, 4, COPSE_EUCLIDEAN, x, 64, 1, 1);
    REQUIRE(t, ix);
    mode_t old = umask(022);
    char dir[512];
    snprintf(dir, sizeof dir, "/dev/shm/copse-test-%d", (int)getpid());
    if (mkdir(dir, 0700) != 0) {
        snprintf(dir, sizeof dir, "%s", t_path(t, ""));
        dir[strlen(dir) - 1] = '\0'; /* t_path(t, "") ends with the separator */
    }
    char path[600];
    snprintf(path, sizeof path, "%s/saved.copse", dir);
    /* Two creators, so one runs beside the saves even when the scheduler pairs the other
     * with the saving thread on one core. */
    atomic_int stop;
    atomic_init(&stop, 0);
    static creator c[2];
    pthread_t tid[2];
    for (int i = 0; i < 2; i++) {
        c[i] = (creator){.id = i, .stop = &stop};
        snprintf(c[i].dir, sizeof c[i].dir, "%s", dir);
        REQUIRE(t, pthread_create(&tid[i], NULL, create_files, &c[i]) == 0);
    }
    int saves = 0;
    for (double end = t_now() + 3; saves < 40000 && t_now() < end; saves++)
        CHECK_OK(t, copse_save(ix, path));
    atomic_store(&stop, 1);
    long made = 0;
    for (int i = 0; i < 2; i++) {
        pthread_join(tid[i], NULL);
        made += c[i].made;
        if (c[i].wrong) {
            fprintf(stderr, "  %ld of %ld files made during %d saves got mode %03o, not 644\n",
                    c[i].wrong, c[i].made, saves, c[i].last_wrong);
            t->failed = 1;
        }
    }
    umask(old);
    CHECK(t, made > 0 && saves > 0);
    CHECK(t, mode_of(path) == 0644);
    unlink(path);
    rmdir(dir);
    copse_free(ix);
    free(x);
}


/* ---- processes share one file's pages ---------------------------------------------------
 * Four processes map one 56 MB index (copse_open with prefault) and answer 200 queries
 * exactly as the parent; while they all hold it, /proc/PID/smaps must show the file resident
 * (Rss near its size), shared and never copied: Shared_Clean near Rss, no Private_Dirty, no
 * anonymous pages, and a proportional share (Pss) near Rss / 4: one copy for all. Release
 * build only. */
enum { SP_DIM = 64, SP_N = 120000, SP_NQ = 200, SP_K = 10, SP_PROCS = 4 };

typedef struct smaps_entry {
    long rss, pss, shared_clean, private_clean, private_dirty, anonymous;
} smaps_entry;

/* Sums the smaps fields (kB) of every mapping of path in process pid. */
static int read_smaps(pid_t pid, const char *path, smaps_entry *e)
{
    char name[64], line[1024];
    snprintf(name, sizeof name, "/proc/%d/smaps", (int)pid);
    FILE *f = fopen(name, "r");
    if (!f)
        return 0;
    memset(e, 0, sizeof *e);
    int in = 0, found = 0;
    while (fgets(line, sizeof line, f)) {
        long v;
        char key[64];
        if (sscanf(line, "%63[^:]: %ld kB", key, &v) == 2 && strchr(line, '-') == NULL) {
            if (!in)
                continue;
            if (!strcmp(key, "Rss")) e->rss += v;
            else if (!strcmp(key, "Pss")) e->pss += v;
            else if (!strcmp(key, "Shared_Clean")) e->shared_clean += v;
            else if (!strcmp(key, "Private_Clean")) e->private_clean += v;
            else if (!strcmp(key, "Private_Dirty")) e->private_dirty += v;
            else if (!strcmp(key, "Anonymous")) e->anonymous += v;
        } else {
            /* A mapping's first line: "addr-addr perms offset dev inode path". */
            size_t l = strlen(line);
            if (l && line[l - 1] == '\n')
                line[--l] = 0;
            in = l >= strlen(path) && strcmp(line + l - strlen(path), path) == 0;
            found |= in;
        }
    }
    fclose(f);
    return found;
}

/* A child: maps the file, answers the queries, tells the parent whether they matched ('y'),
 * and holds the mapping until the parent has read its smaps. */
static void shared_child(const char *path, const float *qs, const int64_t *ref, int to_parent,
                         int go)
{
    static int64_t ids[SP_NQ * SP_K];
    copse_index *c;
    char res = 'x';
    if (copse_open(path, 1, &c) == COPSE_OK) {
        int same = 1;
        for (int q = 0; q < SP_NQ; q++) {
            int64_t n;
            same &= copse_search_vector(c, NULL, qs + (size_t)q * SP_DIM, SP_K, 500,
                                        ids + q * SP_K, NULL, &n) == COPSE_OK && n == SP_K;
        }
        same &= memcmp(ids, ref, sizeof ids) == 0;
        res = same ? 'y' : 'n';
    }
    char c2;
    if (write(to_parent, &res, 1) != 1 || read(go, &c2, 1) < 0)
        _exit(3);
    copse_free(c);
    _exit(0);
}

static void test_shared_pages(t_ctx *t)
{
    T_NOT_UNDER_ASAN(); /* 75 s there, for the same pages */
    char path[512];
    snprintf(path, sizeof path, "%s", t_path(t, "shared.copse"));
    float *x = malloc(sizeof(float) * (size_t)(SP_N + SP_NQ) * SP_DIM);
    uint64_t r = 7;
    for (size_t i = 0; i < (size_t)(SP_N + SP_NQ) * SP_DIM; i++) {
        r = r * 6364136223846793005ull + 1442695040888963407ull;
        x[i] = (float)(r >> 40) / 16777216.0f + (float)(i / SP_DIM % 9);
    }
    const float *qs = x + (size_t)SP_N * SP_DIM;
    copse_index *ix = NULL;
    CHECK_OK(t, copse_new(SP_DIM, COPSE_ANGULAR, &ix));
    CHECK_OK(t, copse_add_items(ix, SP_N, NULL, 0, x));
    CHECK_OK(t, copse_build(ix, 6, 0));
    CHECK_OK(t, copse_save(ix, path));
    copse_free(ix);
    struct stat st;
    REQUIRE(t, stat(path, &st) == 0);
    long file_kb = (long)(st.st_size / 1024);
    printf("  file: %ld kB\n", file_kb);

    /* The parent's answers, from its own mapping. */
    static int64_t ref[SP_NQ * SP_K];
    copse_index *ld;
    CHECK_OK(t, copse_open(path, 0, &ld));
    CHECK_OK(t, copse_search_batch(ld, NULL, qs, SP_NQ, SP_K, 500, 0, 1, ref, NULL, NULL));
    copse_free(ld);

    int to_parent[2], go[2];
    REQUIRE(t, pipe(to_parent) == 0 && pipe(go) == 0);
    fflush(NULL);
    pid_t pids[SP_PROCS];
    for (int p = 0; p < SP_PROCS; p++)
        if ((pids[p] = fork()) == 0) {
            close(to_parent[0]);
            close(go[1]);
            shared_child(path, qs, ref, to_parent[1], go[0]);
        }
    close(to_parent[1]);
    close(go[0]);
    int same = 0;
    for (int p = 0; p < SP_PROCS; p++) {
        char c;
        if (read(to_parent[0], &c, 1) == 1 && c == 'y')
            same++;
    }
    close(to_parent[0]);
    t_step(t, same == SP_PROCS, "every process answers exactly as the parent");
    int shared_ok = 1;
    for (int p = 0; p < SP_PROCS; p++) {
        smaps_entry e = {0};
        int found = read_smaps(pids[p], path, &e);
        printf("  process %d: Rss %ld kB, Pss %ld kB, Shared_Clean %ld kB, Private_Clean %ld kB, "
               "Private_Dirty %ld kB, Anonymous %ld kB\n", (int)pids[p], e.rss, e.pss,
               e.shared_clean, e.private_clean, e.private_dirty, e.anonymous);
        shared_ok &= found && e.rss >= file_kb * 9 / 10 && e.shared_clean >= e.rss * 95 / 100 &&
                     e.private_dirty == 0 && e.anonymous == 0 &&
                     e.pss <= e.rss / SP_PROCS + e.rss / 10;
    }
    t_step(t, shared_ok, "the file's pages are resident once, shared by every process (smaps)");
    CHECK(t, write(go[1], "gogo", SP_PROCS) == SP_PROCS);
    close(go[1]);
    int exits_ok = 1;
    for (int p = 0; p < SP_PROCS; p++) {
        int wst;
        exits_ok &= waitpid(pids[p], &wst, 0) == pids[p] && WIFEXITED(wst) && WEXITSTATUS(wst) == 0;
    }
    t_step(t, exits_ok, "every process exits cleanly");
    unlink(path);
    free(x);
}

const t_case io_cases[] = {
    {"io/modes", test_modes},
    {"io/umask-untouched", test_umask_untouched},
    {"io/shared-pages", test_shared_pages},
    {NULL, NULL},
};
