/*
 * check.c: checks index files against the status codes expected.txt lists for them.
 *
 *   golden_check DIR      reads DIR/expected.txt (NAME LOAD VERIFY [CHANGE] per line)
 *
 * Each file is opened two ways, copse_open (mapped from the path) and copse_load_buffer
 * (from an exact-size heap copy, so ASan sees any read past the end), into a handle of the
 * dimension and metric its header claims; both must return LOAD. When it loads, copse_verify
 * must return VERIFY; then queries by vector and by item, exact queries and item lookups must
 * each return OK or COPSE_ERR_CORRUPT, and only OK when the file verified. With CHANGE, adding
 * an item to the mapped file must then return CHANGE (a changed file's lists and norms are
 * checked by the first change, not the load), and a failed one must leave the index as it was,
 * still answering. Prints one line per file and "N passed, N failed".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "copse.h"
#include "fmt.h"

static int parse_code(const char *s)
{
    static const struct { const char *n; int c; } t[] = {
        {"OK", COPSE_OK}, {"NOTCOPSE", COPSE_ERR_NOTCOPSE}, {"VERSION", COPSE_ERR_VERSION},
        {"CORRUPT", COPSE_ERR_CORRUPT}, {"IO", COPSE_ERR_IO}, {"-", -1}};
    for (size_t i = 0; i < sizeof t / sizeof *t; i++)
        if (strcmp(s, t[i].n) == 0)
            return t[i].c;
    return 1; /* not a status */
}

static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = malloc(n > 0 ? (size_t)n : 1);
    *len = fread(buf, 1, (size_t)n, f);
    fclose(f);
    return buf;
}

static int bad;
#define EXPECT(cond, ...)                                                                    \
    do {                                                                                      \
        if (!(cond)) {                                                                        \
            fprintf(stderr, "  %s: ", name);                                                  \
            fprintf(stderr, __VA_ARGS__);                                                     \
            fprintf(stderr, "\n");                                                            \
            bad = 1;                                                                          \
        }                                                                                     \
    } while (0)

/* Queries on a loaded index: OK, or CORRUPT when the file is damaged. */
static void query_all(const char *name, copse_index *ix, int verified)
{
    int dim = copse_dim(ix);
    float *q = calloc((size_t)dim, sizeof *q);
    int64_t ids[10], n;
    float d[10];
    copse_scratch *s;
    copse_scratch_new(&s);
    for (int variant = 0; variant < 4; variant++) {
        for (int j = 0; j < dim; j++)
            q[j] = (float)((j + variant) % 3) - 1.0f;
        int rc = copse_search_vector(ix, s, q, 10, -1, ids, d, &n);
        EXPECT(rc == COPSE_OK || (!verified && rc == COPSE_ERR_CORRUPT),
               "search_vector returned %d (%s)", rc, copse_scratch_errmsg(s));
        rc = copse_search_vector(ix, s, q, 5, 1000, ids, d, &n);
        EXPECT(rc == COPSE_OK || (!verified && rc == COPSE_ERR_CORRUPT),
               "search_vector (search_k 1000) returned %d (%s)", rc, copse_scratch_errmsg(s));
        if (rc == COPSE_OK) {
            EXPECT(n >= 0 && n <= 5, "%lld results for k 5", (long long)n);
            /* (a damaged id index may hide an item from the lookup; a verified one may not) */
            for (int64_t i = 0; verified && i < n; i++)
                EXPECT(copse_has_item(ix, ids[i]), "result id %lld is not an item", (long long)ids[i]);
        }
        rc = copse_exact_vector(ix, s, q, 3, ids, d, &n);
        EXPECT(rc == COPSE_OK || (!verified && rc == COPSE_ERR_CORRUPT),
               "exact_vector returned %d", rc);
        /* Filtered by tag (reads the tag section) approximately and exactly: only items
         * carrying the tag. */
        copse_filter *f = NULL;
        EXPECT(copse_filter_new_tags(ix, 1ull << variant, 0, &f) == COPSE_OK, "filter_new_tags");
        for (int exact = 0; f && exact < 2; exact++) {
            rc = exact ? copse_exact_vector_filtered(ix, s, q, 5, f, ids, d, &n)
                       : copse_search_vector_filtered(ix, s, q, 5, 100, f, ids, d, &n);
            EXPECT(rc == COPSE_OK || (!verified && rc == COPSE_ERR_CORRUPT),
                   "%s_vector_filtered returned %d (%s)", exact ? "exact" : "search", rc,
                   copse_scratch_errmsg(s));
            for (int64_t i = 0; rc == COPSE_OK && i < n; i++) {
                uint64_t mask = 0;
                EXPECT(!verified || (copse_get_tags(ix, ids[i], &mask) == COPSE_OK &&
                                     (mask >> variant & 1)),
                       "filtered result %lld lacks tag %d", (long long)ids[i], variant);
            }
        }
        copse_filter_free(f);
    }
    for (int64_t pos = 0; pos < copse_n_items(ix); pos += 7) {
        int64_t id;
        EXPECT(copse_item_id_at(ix, pos, &id) == COPSE_OK, "item_id_at %lld", (long long)pos);
        if (!copse_has_item(ix, id)) {
            EXPECT(!verified, "item %lld at %lld not found", (long long)id, (long long)pos);
            continue;
        }
        EXPECT(copse_get_item(ix, id, q) == COPSE_OK, "get_item %lld", (long long)id);
        int rc = copse_search_item(ix, s, id, 10, -1, ids, d, &n);
        EXPECT(rc == COPSE_OK || (!verified && rc == COPSE_ERR_CORRUPT),
               "search_item returned %d", rc);
        const char *label;
        size_t llen;
        EXPECT(copse_get_label(ix, id, &label, &llen) == COPSE_OK, "get_label");
        if (label) {
            EXPECT(label[llen] == '\0', "label not NUL-terminated");
            int64_t back;
            rc = copse_find_label(ix, label, &back);
            EXPECT(rc == COPSE_OK || (!verified && rc == COPSE_ERR_NOTFOUND),
                   "find_label returned %d", rc);
        }
    }
    copse_scratch_free(s);
    free(q);
}

/* The first change to a loaded index: an item added under a new id, with an item's vector. */
static void change_one(const char *name, copse_index *ix, int want)
{
    int64_t n = copse_n_items(ix), id = 0, ids[5], got;
    float *x = calloc((size_t)copse_dim(ix), sizeof *x);
    EXPECT(n > 0 && copse_item_id_at(ix, 0, &id) == COPSE_OK && copse_get_item(ix, id, x) == COPSE_OK,
           "no item to copy");
    int rc = copse_add_item(ix, copse_max_id(ix) + 1, x);
    EXPECT(rc == want, "add_item returned %d (%s), expected %d (%s)", rc, copse_errmsg(ix), want,
           copse_strerror(want));
    if (rc != COPSE_OK) {
        EXPECT(copse_n_items(ix) == n, "a failed add changed the item count");
        rc = copse_search_vector(ix, NULL, x, 5, 100, ids, NULL, &got);
        EXPECT(rc == COPSE_OK || rc == COPSE_ERR_CORRUPT, "search after a failed add returned %d", rc);
    }
    free(x);
}

static void check_one(const char *dir, const char *name, int want_load, int want_verify,
                      int want_change)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s.copse", dir, name);
    size_t len = 0;
    unsigned char *img = slurp(path, &len);
    EXPECT(img != NULL, "cannot read %s", path);
    if (!img)
        return;

    /* 1. From the path. */
    copse_index *ix = NULL;
    int rc = copse_open(path, 0, &ix);
    EXPECT(rc == want_load, "copse_open returned %d (%s: %s), expected %d (%s)", rc,
           copse_strerror(rc), copse_errmsg(ix), want_load, copse_strerror(want_load));
    if (rc != COPSE_OK)
        EXPECT(copse_errmsg(ix)[0] != '\0', "failed without a message");
    if (rc == COPSE_OK) {
        int vrc = copse_verify(ix);
        EXPECT(vrc == want_verify, "copse_verify returned %d (%s: %s), expected %d (%s)", vrc,
               copse_strerror(vrc), copse_errmsg(ix), want_verify, copse_strerror(want_verify));
        query_all(name, ix, vrc == COPSE_OK);
        if (want_change != -1)
            change_one(name, ix, want_change);
    }
    copse_free(ix);

    /* 2. From an exact-size buffer, into a handle made for the header's dim and metric. */
    int dim = 8;
    copse_metric m = COPSE_EUCLIDEAN;
    if (len >= 32 && fmt_rd32(img + 28) >= 1 && fmt_rd32(img + 28) <= COPSE_MAX_DIM &&
        fmt_rd32(img + 24) <= COPSE_HAMMING) {
        dim = (int)fmt_rd32(img + 28);
        m = (copse_metric)fmt_rd32(img + 24);
    }
    unsigned char *exact = malloc(len ? len : 1);
    memcpy(exact, img, len);
    EXPECT(copse_new(dim, m, &ix) == COPSE_OK, "copse_new(%d, %d)", dim, (int)m);
    rc = copse_load_buffer(ix, exact, len);
    EXPECT(rc == want_load, "copse_load_buffer returned %d (%s: %s), expected %d (%s)", rc,
           copse_strerror(rc), copse_errmsg(ix), want_load, copse_strerror(want_load));
    if (rc == COPSE_OK) {
        int vrc = copse_verify(ix);
        EXPECT(vrc == want_verify, "verify after load_buffer returned %d, expected %d", vrc,
               want_verify);
        query_all(name, ix, vrc == COPSE_OK);
        /* Unload, and the handle is reusable: the same bytes load again. */
        EXPECT(copse_unload(ix) == COPSE_OK, "unload");
        EXPECT(copse_load_buffer(ix, exact, len) == COPSE_OK, "reload after unload");
    } else {
        EXPECT(copse_state(ix) == COPSE_STATE_ADDING && copse_n_items(ix) == 0,
               "a failed load left the handle changed");
    }
    copse_free(ix);
    free(exact);
    free(img);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: golden_check DIR\n");
        return 2;
    }
    char path[1024], line[512];
    snprintf(path, sizeof path, "%s/expected.txt", argv[1]);
    FILE *f = fopen(path, "r");
    if (!f) {
        perror(path);
        return 2;
    }
    int passed = 0, failed = 0;
    while (fgets(line, sizeof line, f)) {
        char name[256], l[32], v[32], c[32] = "-";
        if (line[0] == '#' || sscanf(line, "%255s %31s %31s %31s", name, l, v, c) < 3)
            continue;
        int want_load = parse_code(l), want_verify = parse_code(v), want_change = parse_code(c);
        bad = 0;
        if (want_load == 1 || want_verify == 1 || want_change == 1 || want_load == -1 ||
            (want_load == COPSE_OK) == (want_verify == -1) ||
            (want_load != COPSE_OK && want_change != -1)) {
            fprintf(stderr, "  %s: bad line in expected.txt\n", name);
            bad = 1;
        } else {
            check_one(argv[1], name, want_load, want_verify, want_change);
        }
        printf("%s %s (load %s, verify %s)\n", bad ? "FAIL" : "ok  ", name, l, v);
        if (bad)
            failed++;
        else
            passed++;
    }
    fclose(f);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : passed ? 0 : 3;
}
