/*
 * leaks.c: long construct / save / load / query / verify / unload / free loops, error paths
 * included. Under ASan, LeakSanitizer reports any block still allocated at exit (the run
 * fails). In every build the loop also checks that open file descriptors and mappings do not
 * grow (LeakSanitizer does not see a leaked mmap or fd), and in a build without ASan that the
 * heap in use (mallinfo2) does not grow between the 20th and the last round.
 *   leaks [ROUNDS]     (default 150)
 */
#include <dirent.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "copse.h"

static int passed, failed;
static void check(int ok, const char *what)
{
    printf("%s %s\n", ok ? "ok  " : "FAIL", what);
    fflush(stdout);
    if (ok)
        passed++;
    else
        failed++;
}

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        n++;
    if (d)
        closedir(d);
    return n;
}

/* Mappings of this test's index files (ASan's own mappings come and go). */
static int count_maps(void)
{
    FILE *f = fopen("/proc/self/maps", "r");
    char line[1024];
    int n = 0;
    while (f && fgets(line, sizeof line, f))
        n += strstr(line, "copse-leaks-") != NULL;
    if (f)
        fclose(f);
    return n;
}

static size_t heap_in_use(void)
{
#if defined(__SANITIZE_ADDRESS__)
    return 0;
#else
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
#endif
}

enum { DIM = 12, N = 400 };

static int round_trip(const float *x, const char *dir, int r)
{
    int bad = 0;
    char path[512], disk[512];
    snprintf(path, sizeof path, "%s/leaks.copse", dir);
    snprintf(disk, sizeof disk, "%s/leaks-disk.copse", dir);
    copse_metric m = (copse_metric)(r % 5);
    copse_index *ix = NULL, *ld = NULL;
    copse_scratch *s = NULL;
    bad |= copse_scratch_new(&s) != COPSE_OK;
    bad |= copse_new(DIM, m, &ix) != COPSE_OK;
    bad |= copse_set_seed(ix, (uint64_t)r) != COPSE_OK;
    bad |= copse_add_items(ix, N, NULL, 0, x) != COPSE_OK;
    for (int i = 0; i < N; i += 3) {
        char label[32];
        snprintf(label, sizeof label, "w%d-%d", i, r);
        bad |= copse_set_label(ix, i, label) != COPSE_OK;
    }
    /* Error paths allocate messages and scratch too. */
    float nanv[DIM] = {0};
    nanv[2] = 0.0f / 0.0f;
    bad |= copse_add_item(ix, 5, nanv) != COPSE_ERR_VALUE;
    bad |= copse_build(ix, r % 2 ? -1 : 4, 2) != COPSE_OK;
    int64_t ids[20], n, counts[5];
    float d[20];
    bad |= copse_search_vector(ix, s, x, 10, -1, ids, d, &n) != COPSE_OK;
    bad |= copse_search_vector(ix, NULL, x, 10, 100, ids, d, &n) != COPSE_OK;
    bad |= copse_search_vector(ix, s, nanv, 10, -1, ids, d, &n) != COPSE_ERR_VALUE;
    bad |= copse_search_batch(ix, NULL, x, 5, 4, -1, r % 2, 3, ids, d, counts) != COPSE_OK;
    if (r % 7 == 0) { /* unbuild and build again */
        bad |= copse_unbuild(ix) != COPSE_OK;
        bad |= copse_build(ix, 3, 1) != COPSE_OK;
    }
    bad |= copse_save(ix, path) != COPSE_OK;
    bad |= copse_save(ix, "/nonexistent-copse-dir/x.copse") != COPSE_ERR_IO;
    /* Load three ways; failed loads on the way. */
    bad |= copse_open(path, r % 2, &ld) != COPSE_OK;
    bad |= copse_verify(ld) != COPSE_OK;
    bad |= copse_search_item(ld, s, 3, 10, -1, ids, d, &n) != COPSE_OK;
    int64_t id;
    bad |= copse_find_label(ld, "w3-0", &id) == COPSE_ERR_STATE;
    bad |= copse_unload(ld) != COPSE_OK;
    bad |= copse_load(ld, "/nonexistent-copse-dir/x.copse", 0) != COPSE_ERR_IO;
    size_t len = (size_t)copse_file_size(ix);
    unsigned char *buf = malloc(len + 1);
    FILE *f = fopen(path, "rb");
    bad |= !f || fread(buf + 1, 1, len, f) != len;
    if (f)
        fclose(f);
    bad |= copse_load_buffer(ld, buf + 1, len - 1) != COPSE_ERR_CORRUPT; /* truncated */
    bad |= copse_load_buffer(ld, buf + 1, len) != COPSE_OK;               /* unaligned: copied */
    bad |= copse_search_vector(ld, s, x, 10, -1, ids, d, &n) != COPSE_OK;
    copse_free(ld); /* frees a loaded-from-buffer index without unload */
    ld = NULL;
    copse_index *other = NULL;
    bad |= copse_open("/nonexistent-copse-dir/x.copse", 0, &other) != COPSE_ERR_IO;
    copse_free(other);
    free(buf);
    /* On-disk builds: one finished, one abandoned. */
    copse_index *od = NULL;
    bad |= copse_new(DIM, m, &od) != COPSE_OK;
    bad |= copse_on_disk_build(od, disk) != COPSE_OK;
    bad |= copse_add_items(od, N / 2, NULL, 0, x) != COPSE_OK;
    if (r % 3)
        bad |= copse_build(od, 2, 1) != COPSE_OK;
    copse_free(od);
    copse_free(ix);
    copse_scratch_free(s);
    unlink(path);
    unlink(disk);
    return bad;
}

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 150;
    char dir[256];
    snprintf(dir, sizeof dir, "%s/copse-leaks-%d", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp",
             (int)getpid());
    mkdir(dir, 0777);
    float *x = malloc(sizeof(float) * N * DIM);
    for (int i = 0; i < N * DIM; i++)
        x[i] = (float)((i * 7919 + i / DIM * 31) % 1000) / 500.0f - 1.0f;
    int bad = 0, fds0 = 0, maps0 = 0;
    size_t heap0 = 0;
    for (int r = 0; r < rounds; r++) {
        bad |= round_trip(x, dir, r);
        if (r == 19) {
            fds0 = count_fds();
            maps0 = count_maps();
            heap0 = heap_in_use();
        }
    }
    check(!bad, "every call in every round returned what it should");
    int fds1 = count_fds(), maps1 = count_maps();
    size_t heap1 = heap_in_use();
    printf("  after round 20 / %d: %d / %d fds, %d / %d mappings, %zu / %zu heap bytes\n",
           rounds, fds0, fds1, maps0, maps1, heap0, heap1);
    check(fds1 <= fds0, "no file descriptor leaked");
    check(maps1 == 0 && maps0 == 0, "no mapping of an index file left");
#if !defined(__SANITIZE_ADDRESS__)
    check(heap1 <= heap0 + 64 * 1024, "heap in use does not grow");
#endif
    rmdir(dir);
    free(x);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
