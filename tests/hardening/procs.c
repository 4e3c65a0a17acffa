/*
 * procs.c: several processes query one index file at once. Each maps it (copse_open with
 * prefault), answers the same queries, and must give exactly the answers of the parent; while
 * they all hold it, /proc/PID/smaps must show the file's pages resident, shared between the
 * processes and never copied: Shared_Clean near Rss, no Private_Dirty, no anonymous pages, and
 * a proportional share (Pss) near Rss / number of processes.
 *   procs [DIR]
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
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

enum { DIM = 64, N = 120000, NQ = 200, K = 10, PROCS = 4 };

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

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    char path[1024];
    snprintf(path, sizeof path, "%s/copse-procs-%d.copse", dir, (int)getpid());
    float *x = malloc(sizeof(float) * (size_t)(N + NQ) * DIM);
    uint64_t r = 7;
    for (size_t i = 0; i < (size_t)(N + NQ) * DIM; i++) {
        r = r * 6364136223846793005ull + 1442695040888963407ull;
        x[i] = (float)(r >> 40) / 16777216.0f + (float)(i / DIM % 9);
    }
    copse_index *ix;
    int ok = copse_new(DIM, COPSE_ANGULAR, &ix) == COPSE_OK &&
             copse_add_items(ix, N, NULL, 0, x) == COPSE_OK && copse_build(ix, 6, 0) == COPSE_OK &&
             copse_save(ix, path) == COPSE_OK;
    check(ok, "build and save the shared index");
    copse_free(ix);
    struct stat st;
    stat(path, &st);
    long file_kb = (long)(st.st_size / 1024);
    printf("  file: %ld kB\n", file_kb);

    /* The parent's answers, from its own mapping. */
    static int64_t ref[NQ * K];
    copse_index *ld;
    ok = copse_open(path, 0, &ld) == COPSE_OK &&
         copse_search_batch(ld, NULL, x + (size_t)N * DIM, NQ, K, 500, 0, 1, ref, NULL, NULL) == COPSE_OK;
    copse_free(ld);
    check(ok, "reference answers");

    int to_parent[2], go[2];
    if (pipe(to_parent) != 0 || pipe(go) != 0)
        return 2;
    pid_t pids[PROCS];
    for (int p = 0; p < PROCS; p++) {
        if ((pids[p] = fork()) == 0) {
            close(to_parent[0]);
            close(go[1]);
            static int64_t ids[NQ * K];
            copse_index *c;
            char res = 'x';
            if (copse_open(path, 1, &c) == COPSE_OK) {
                int same = 1;
                for (int q = 0; q < NQ; q++) {
                    int64_t n;
                    same &= copse_search_vector(c, NULL, x + (size_t)(N + q) * DIM, K, 500,
                                                ids + q * K, NULL, &n) == COPSE_OK && n == K;
                }
                same &= memcmp(ids, ref, sizeof ids) == 0;
                res = same ? 'y' : 'n';
            }
            if (write(to_parent[1], &res, 1) != 1)
                _exit(3);
            char c2;
            if (read(go[0], &c2, 1) < 0) /* hold the mapping until the parent has looked */
                _exit(3);
            copse_free(c);
            _exit(0);
        }
    }
    close(to_parent[1]);
    close(go[0]);
    int same = 0;
    for (int p = 0; p < PROCS; p++) {
        char c;
        if (read(to_parent[0], &c, 1) == 1 && c == 'y')
            same++;
    }
    check(same == PROCS, "every process answers exactly as the parent");
    int shared_ok = 1;
    for (int p = 0; p < PROCS; p++) {
        smaps_entry e = {0};
        int found = read_smaps(pids[p], path, &e);
        printf("  process %d: Rss %ld kB, Pss %ld kB, Shared_Clean %ld kB, Private_Clean %ld kB, "
               "Private_Dirty %ld kB, Anonymous %ld kB\n", (int)pids[p], e.rss, e.pss,
               e.shared_clean, e.private_clean, e.private_dirty, e.anonymous);
        shared_ok &= found && e.rss >= file_kb * 9 / 10 && e.shared_clean >= e.rss * 95 / 100 &&
                     e.private_dirty == 0 && e.anonymous == 0 &&
                     e.pss <= e.rss / PROCS + e.rss / 10;
    }
    check(shared_ok, "the file's pages are resident once, shared by every process (smaps)");
    if (write(go[1], "gogo", PROCS) != PROCS)
        return 2;
    int exits_ok = 1;
    for (int p = 0; p < PROCS; p++) {
        int wst;
        waitpid(pids[p], &wst, 0);
        exits_ok &= WIFEXITED(wst) && WEXITSTATUS(wst) == 0;
    }
    check(exits_ok, "every process exits cleanly");
    unlink(path);
    free(x);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
