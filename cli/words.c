/*
 * words.c: queries made of words (see words.h).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "words.h"

void words_free(word_query *w)
{
    if (w->folded != NULL)
        for (int i = 0; i < w->n; i++)
            free(w->folded[i]);
    free(w->text);
    free(w->words);
    free(w->folded);
    free(w->ids);
    free(w->sum);
    memset(w, 0, sizeof *w);
}

static int split_words(const char *arg, word_query *w, cli_err *err)
{
    size_t len = strlen(arg);
    w->text = cli_strdup(arg);
    w->words = cli_alloc_array(len / 2 + 1, sizeof *w->words);
    w->folded = calloc(len / 2 + 1, sizeof *w->folded);
    w->ids = cli_alloc_array(len / 2 + 1, sizeof *w->ids);
    if (w->text == NULL || w->words == NULL || w->folded == NULL || w->ids == NULL)
        return cli_fail(err, EXIT_FAIL, "out of memory");
    for (char *p = w->text; *p != '\0';) {
        p += strspn(p, " \t");
        if (*p == '\0')
            break;
        w->words[w->n++] = p;
        p += strcspn(p, " \t");
        if (*p != '\0')
            *p++ = '\0';
    }
    if (w->n == 0)
        return cli_fail(err, EXIT_USAGE, "--words: no words given");
    return 0;
}

/* The word with ASCII upper-case letters lowered (bytes of UTF-8 sequences are all >= 0x80,
 * so they pass unchanged), or NULL when that changes nothing or memory runs out. */
static char *lower_case(const char *word)
{
    int changed = 0;
    for (const char *p = word; *p != '\0'; p++)
        changed |= *p >= 'A' && *p <= 'Z';
    char *low = changed ? cli_strdup(word) : NULL;
    for (char *p = low; p != NULL && *p != '\0'; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    return low;
}

static int find_word(const copse_index *ix, const char *index_name, word_query *w, int i,
                     cli_err *err)
{
    const char *word = w->words[i];
    int st = copse_find_label(ix, word, &w->ids[i]);
    if (st != COPSE_ERR_NOTFOUND)
        return st == COPSE_OK ? 0 : cli_fail_status(err, st, ix, index_name);
    char *low = lower_case(word);
    if (low != NULL && copse_find_label(ix, low, &w->ids[i]) == COPSE_OK) {
        w->folded[i] = low;
        return 0;
    }
    int rc = low != NULL ? cli_fail(err, EXIT_DATA,
                                    "--words: '%s' is not in %s (no item labelled '%s' or '%s')",
                                    word, index_name, word, low)
                         : cli_fail(err, EXIT_DATA,
                                    "--words: '%s' is not in %s (no item labelled '%s')", word,
                                    index_name, word);
    free(low);
    return rc;
}

/* Adds item id's vector to w->sum; for the angular metric as a unit vector, as word2vec
 * does, so that every word weighs the same whatever its vector's length. */
static int add_vector(const copse_index *ix, const char *index_name, int64_t id, float *tmp,
                      float *sum, cli_err *err)
{
    int st = copse_get_item(ix, id, tmp);
    if (st != COPSE_OK)
        return cli_fail_status(err, st, ix, index_name);
    int dim = copse_dim(ix);
    double norm = 1.0;
    if (copse_get_metric(ix) == COPSE_ANGULAR) {
        double ss = 0.0;
        for (int i = 0; i < dim; i++)
            ss += (double)tmp[i] * tmp[i];
        norm = ss > 0.0 ? sqrt(ss) : 1.0;
    }
    for (int i = 0; i < dim; i++)
        sum[i] += (float)(tmp[i] / norm);
    return 0;
}

int words_prepare(const copse_index *ix, const char *index_name, const char *arg,
                  word_query *w, cli_err *err)
{
    memset(w, 0, sizeof *w);
    int dim = copse_dim(ix);
    if (!copse_has_labels(ix))
        return cli_fail(err, EXIT_DATA, "%s: the index has no labels (words come from word2vec "
                                        "files)",
                        index_name);
    int rc = split_words(arg, w, err);
    if (rc != 0)
        return rc;
    w->sum = calloc((size_t)dim, sizeof *w->sum);
    float *tmp = cli_alloc_array((size_t)dim, sizeof *tmp);
    if (w->sum == NULL || tmp == NULL)
        rc = cli_fail(err, EXIT_FAIL, "out of memory");
    for (int i = 0; i < w->n && rc == 0; i++) {
        rc = find_word(ix, index_name, w, i, err);
        if (rc == 0)
            rc = add_vector(ix, index_name, w->ids[i], tmp, w->sum, err);
    }
    free(tmp);
    return rc;
}

void words_print_folds(const word_query *w, const char *cmd, const char *index_name, FILE *f)
{
    fflush(stdout);
    for (int i = 0; i < w->n; i++)
        if (w->folded[i] != NULL)
            fprintf(f, "copse %s: '%s' is not in %s; using '%s'\n", cmd, w->words[i],
                    index_name, w->folded[i]);
}

static int is_query_word(const word_query *w, int64_t id)
{
    for (int i = 0; i < w->n; i++)
        if (w->ids[i] == id)
            return 1;
    return 0;
}

int64_t words_drop(const word_query *w, int64_t *ids, float *dists, int64_t n, int64_t k)
{
    int64_t kept = 0;
    for (int64_t i = 0; i < n && kept < k; i++) {
        if (is_query_word(w, ids[i]))
            continue;
        ids[kept] = ids[i];
        if (dists != NULL)
            dists[kept] = dists[i];
        kept++;
    }
    return kept;
}
