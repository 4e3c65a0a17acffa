/*
 * test_io.c: the operating-system layer as a multi-threaded application sees it. Saving and
 * on-disk builds create files; they must do it without touching process-wide settings (the
 * umask), and the files they leave must have the mode any other new file gets.
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>
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

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
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
    for (double end = now() + 3; saves < 40000 && now() < end; saves++)
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

const t_case io_cases[] = {
    {"io/modes", test_modes},
    {"io/umask-untouched", test_umask_untouched},
    {NULL, NULL},
};
