/*
 * query.c: `copse query`, nearest neighbours of an item, a label, a vector, a sum of words,
 * or every row of a query file (answered in parallel by copse_search_batch), restricted by
 * --allow and --tags to some items (one copse_filter serves every query of the run).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "output.h"
#include "readers/reader.h"
#include "words.h"

typedef enum query_kind { Q_NONE, Q_ITEM, Q_LABEL, Q_VECTOR, Q_WORDS, Q_FILE } query_kind;

typedef struct query_opts {
    const char *index;
    query_kind kind;
    const char *arg;      /* the --item / --label / --vector / --words / -q value */
    reader_options in;
    int64_t k;
    int64_t search_k;
    int exact;
    int n_threads;
    int json;
    int prefault;
    const char *allow;    /* --allow FILE, "-" for standard input */
    int has_tags;         /* --tags given */
    uint64_t any_mask, all_mask;
} query_opts;

/* What one query needs: the index, the options, a scratch and the output buffers. */
typedef struct query_ctx {
    const query_opts *o;
    copse_index *ix;
    copse_scratch *scratch;
    copse_filter *filter; /* NULL: every item */
    int64_t *ids;
    float *dists;
    int64_t cap;          /* entries in ids and dists */
    int64_t printed;      /* queries printed so far */
} query_ctx;

static const char query_help[] =
    "usage: copse query INDEX (--item ID | --label WORD | --vector X,Y,.. | --words \"W ..\" |\n"
    "                          -q FILE) [options]\n"
    "\n"
    "Prints the k nearest items, nearest first (for the dot metric: largest inner product\n"
    "first), as an aligned table (rank, id, distance, label when the index has labels) or as\n"
    "one JSON object per query.\n"
    "\n"
    "  --item ID          neighbours of item ID (the item itself comes first, at distance 0)\n"
    "  --label WORD       neighbours of the item labelled WORD\n"
    "  --vector X,Y,..    neighbours of a vector (commas or spaces between components)\n"
    "  --words \"W1 W2\"    neighbours of the sum of the words' vectors (unit vectors for the\n"
    "                     angular metric), leaving the words themselves out, like word2vec's\n"
    "                     distance tool; a word missing as written is looked up in lower\n"
    "                     case (GloVe's words are), with a note on stderr\n"
    "  -q, --queries FILE neighbours of every vector in FILE (any input format), answered in\n"
    "                     parallel\n"
    "  -k N               number of neighbours (default 10)\n"
    "      --search-k N   search effort, larger is slower and more accurate: with a graph the\n"
    "                     width of the graph walk, without one the candidates gathered from\n"
    "                     the forest (default -1: k times the number of trees)\n"
    "      --exact        brute force over every item instead of the forest\n"
    "      --allow FILE   return only the items whose ids FILE lists, one a line (\"-\":\n"
    "                     standard input; ids not in the index are ignored)\n"
    "      --tags any:T,T return only items carrying at least one of the tags T (0..63)\n"
    "      --tags all:T,T return only items carrying every one of them; both may be given,\n"
    "                     and with --allow an item must pass all of them. Few allowed items\n"
    "                     are ranked exactly (the true nearest); more, by a filtered walk\n"
    "  -j, --threads N    threads for -q (default 0: one per CPU)\n"
    "      --json         one JSON object per query and line\n"
    "      --prefault     read the whole index into memory first\n";

enum {
    OPT_ITEM = 1,
    OPT_LABEL,
    OPT_VECTOR,
    OPT_WORDS,
    OPT_QUERIES,
    OPT_K,
    OPT_SEARCH_K,
    OPT_EXACT,
    OPT_THREADS,
    OPT_JSON,
    OPT_PREFAULT,
    OPT_ALLOW,
    OPT_TAGS
};

static const cli_opt query_options[] = {
    {"item", 0, 1, OPT_ITEM},
    {"label", 0, 1, OPT_LABEL},
    {"vector", 0, 1, OPT_VECTOR},
    {"words", 0, 1, OPT_WORDS},
    {"queries", 'q', 1, OPT_QUERIES},
    {"k", 'k', 1, OPT_K},
    {"search-k", 0, 1, OPT_SEARCH_K},
    {"exact", 0, 0, OPT_EXACT},
    {"threads", 'j', 1, OPT_THREADS},
    {"json", 0, 0, OPT_JSON},
    {"prefault", 0, 0, OPT_PREFAULT},
    {"allow", 0, 1, OPT_ALLOW},
    {"tags", 0, 1, OPT_TAGS},
    {NULL, 0, 0, 0},
};

static int set_kind(query_opts *o, query_kind kind, const char *v, cli_err *err)
{
    if (o->kind != Q_NONE)
        return cli_fail(err, EXIT_USAGE, "give only one of --item, --label, --vector, --words "
                                         "and -q");
    o->kind = kind;
    o->arg = v;
    return 0;
}

/* --tags any:3,5 or all:2,7; repeats add to the same set. */
static int parse_tags_option(query_opts *o, const char *v, cli_err *err)
{
    uint64_t *mask = strncmp(v, "any:", 4) == 0 ? &o->any_mask
                     : strncmp(v, "all:", 4) == 0 ? &o->all_mask
                                                  : NULL;
    if (mask == NULL)
        return cli_fail(err, EXIT_USAGE, "--tags: '%s' is not any:T,T.. or all:T,T..", v);
    uint64_t got = 0;
    const char *bad = NULL;
    if (cli_tag_mask(v + 4, &got, &bad) != 0)
        return cli_fail(err, EXIT_USAGE, "--tags: '%.20s' is not a tag 0..%d", bad,
                        COPSE_MAX_TAG);
    if (got == 0)
        return cli_fail(err, EXIT_USAGE, "--tags: no tags after '%.4s'", v);
    *mask |= got;
    o->has_tags = 1;
    return 0;
}

static int apply_option(void *ctx, int key, const char *v, cli_err *err)
{
    query_opts *o = ctx;
    switch (key) {
    case OPT_ITEM:
    case OPT_LABEL:
    case OPT_VECTOR:
    case OPT_WORDS:
    case OPT_QUERIES:
        return set_kind(o, (query_kind)(Q_ITEM + (key - OPT_ITEM)), v, err);
    case OPT_K:
        return cli_parse_i64(v, 1, 1000000, "-k", &o->k, err);
    case OPT_SEARCH_K:
        return cli_parse_i64(v, -1, INT64_MAX, "--search-k", &o->search_k, err);
    case OPT_EXACT:
        o->exact = 1;
        return 0;
    case OPT_THREADS:
        return cli_parse_int(v, 0, 4096, "--threads", &o->n_threads, err);
    case OPT_JSON:
        o->json = 1;
        return 0;
    case OPT_PREFAULT:
        o->prefault = 1;
        return 0;
    case OPT_ALLOW:
        o->allow = v;
        return 0;
    case OPT_TAGS:
        return parse_tags_option(o, v, err);
    default: /* CLI_POSITIONAL */
        return cli_take_argument(&o->index, v, err);
    }
}

static int parse_query_args(int argc, char **argv, query_opts *o, cli_err *err)
{
    memset(o, 0, sizeof *o);
    reader_options_init(&o->in);
    o->k = 10;
    o->search_k = -1;
    const cli_command cmd = {query_help, query_options, apply_option, o, &o->in};
    int rc = cli_parse(&cmd, argc, argv, err);
    if (rc != 0)
        return rc;
    if (o->index == NULL)
        return cli_fail(err, EXIT_USAGE, "no INDEX given (see copse query --help)");
    if (o->kind == Q_NONE)
        return cli_fail(err, EXIT_USAGE, "give one of --item, --label, --vector, --words or -q");
    return 0;
}

/* ---- the filter ---------------------------------------------------------------------------- */

typedef struct id_list {
    int64_t *v;
    size_t n, cap;
} id_list;

static int push_id(id_list *l, int64_t id, cli_err *err)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 1024;
        int64_t *grown = cli_alloc_array(cap, sizeof *grown);
        if (grown == NULL)
            return cli_fail(err, EXIT_FAIL, "out of memory");
        if (l->n)
            memcpy(grown, l->v, l->n * sizeof *grown);
        free(l->v);
        l->v = grown;
        l->cap = cap;
    }
    l->v[l->n++] = id;
    return 0;
}

/* One line of an --allow file: an id. */
static int allow_line(void *ctx, char *text, const char *name, int64_t n, cli_err *err)
{
    int64_t id;
    char *rest;
    if (cli_line_id(text, &id, &rest) != 0 || rest[strspn(rest, " \t")] != '\0')
        return cli_fail(err, EXIT_DATA, "%s:%lld: '%.40s' is not an item id", name,
                        (long long)n, text);
    return push_id(ctx, id, err);
}

static int has_tags(const copse_index *ix, int64_t id, const query_opts *o)
{
    uint64_t t;
    if (copse_get_tags(ix, id, &t) != COPSE_OK)
        return 0; /* not in the index: the filter ignores it anyway */
    return (o->any_mask == 0 || (t & o->any_mask) != 0) && (t & o->all_mask) == o->all_mask;
}

/* The filter of --allow and --tags (NULL when neither is given). With both, the allowed ids
 * are narrowed to those carrying the tags, so one id filter says both. */
static int make_filter(query_ctx *c, cli_err *err)
{
    const query_opts *o = c->o;
    int st = COPSE_OK;
    if (o->allow == NULL && o->has_tags) {
        st = copse_filter_new_tags(c->ix, o->any_mask, o->all_mask, &c->filter);
    } else if (o->allow != NULL) {
        id_list l = {NULL, 0, 0};
        int rc = cli_each_line(o->allow, allow_line, &l, err);
        if (rc != 0) {
            free(l.v);
            return rc;
        }
        size_t kept = 0;
        for (size_t i = 0; i < l.n; i++)
            if (!o->has_tags || has_tags(c->ix, l.v[i], o))
                l.v[kept++] = l.v[i];
        st = copse_filter_new_ids(c->ix, l.v, (int64_t)kept, &c->filter);
        free(l.v);
    }
    return st == COPSE_OK ? 0 : cli_fail_status(err, st, NULL, "filter");
}

/* ---- answering ---------------------------------------------------------------------------- */

static void emit(query_ctx *c, const char *title, const int64_t *ids, const float *dists,
                 int64_t n)
{
    query_result q = {title, ids, dists, n};
    if (c->o->json) {
        out_results_json(stdout, c->ix, &q);
    } else {
        if (c->printed > 0)
            fputc('\n', stdout);
        out_results_text(stdout, c->ix, &q);
    }
    c->printed++;
}

static int reserve_results(query_ctx *c, int64_t n, cli_err *err)
{
    if (n <= c->cap)
        return 0;
    free(c->ids);
    free(c->dists);
    c->ids = cli_alloc_array((size_t)n, sizeof *c->ids);
    c->dists = cli_alloc_array((size_t)n, sizeof *c->dists);
    c->cap = c->ids != NULL && c->dists != NULL ? n : 0;
    if (c->cap == 0)
        return cli_fail(err, EXIT_FAIL, "out of memory for %lld results", (long long)n);
    return 0;
}

static int search_vector(query_ctx *c, const float *q, int64_t k, int64_t *n, cli_err *err)
{
    int rc = reserve_results(c, k, err);
    if (rc != 0)
        return rc;
    int st = c->o->exact
                 ? copse_exact_vector_filtered(c->ix, c->scratch, q, k, c->filter, c->ids,
                                               c->dists, n)
                 : copse_search_vector_filtered(c->ix, c->scratch, q, k, c->o->search_k,
                                                c->filter, c->ids, c->dists, n);
    return st == COPSE_OK ? 0 : cli_fail_scratch(err, st, c->scratch, "query");
}

static int answer_item(query_ctx *c, int64_t id, const char *title, cli_err *err)
{
    int rc = reserve_results(c, c->o->k, err);
    if (rc != 0)
        return rc;
    int64_t n = 0;
    int st = c->o->exact
                 ? copse_exact_item_filtered(c->ix, c->scratch, id, c->o->k, c->filter, c->ids,
                                             c->dists, &n)
                 : copse_search_item_filtered(c->ix, c->scratch, id, c->o->k, c->o->search_k,
                                              c->filter, c->ids, c->dists, &n);
    if (st == COPSE_ERR_NOTFOUND)
        return cli_fail(err, EXIT_DATA, "%s: no item %lld", c->o->index, (long long)id);
    if (st != COPSE_OK)
        return cli_fail_scratch(err, st, c->scratch, "query");
    emit(c, title, c->ids, c->dists, n);
    return 0;
}

static int run_item(query_ctx *c, cli_err *err)
{
    int64_t id;
    int rc = cli_parse_i64(c->o->arg, 0, INT64_MAX, "--item", &id, err);
    if (rc != 0)
        return rc;
    char title[64];
    snprintf(title, sizeof title, "item %lld", (long long)id);
    return answer_item(c, id, title, err);
}

static int find_label(query_ctx *c, const char *label, int64_t *id, cli_err *err)
{
    if (!copse_has_labels(c->ix))
        return cli_fail(err, EXIT_DATA, "%s: the index has no labels", c->o->index);
    int st = copse_find_label(c->ix, label, id);
    if (st == COPSE_ERR_NOTFOUND)
        return cli_fail(err, EXIT_DATA, "%s: no item labelled '%s'", c->o->index, label);
    return st == COPSE_OK ? 0 : cli_fail_status(err, st, c->ix, c->o->index);
}

static int run_label(query_ctx *c, cli_err *err)
{
    int64_t id;
    int rc = find_label(c, c->o->arg, &id, err);
    if (rc != 0)
        return rc;
    char title[256];
    snprintf(title, sizeof title, "label %s", c->o->arg);
    return answer_item(c, id, title, err);
}

static int check_dim(query_ctx *c, int64_t dim, const char *what, cli_err *err)
{
    if (dim == copse_dim(c->ix))
        return 0;
    return cli_fail(err, EXIT_DATA, "%s has dimension %lld, the index %s has %d", what,
                    (long long)dim, c->o->index, copse_dim(c->ix));
}

static int run_vector(query_ctx *c, cli_err *err)
{
    float *q = NULL;
    int64_t n = 0, found = 0;
    int rc = cli_parse_floats(c->o->arg, "--vector", &q, &n, err);
    if (rc == 0)
        rc = check_dim(c, n, "--vector", err);
    if (rc == 0)
        rc = search_vector(c, q, c->o->k, &found, err);
    if (rc == 0)
        emit(c, "vector", c->ids, c->dists, found);
    free(q);
    return rc;
}

/* ---- words -------------------------------------------------------------------------------- */

static int run_words(query_ctx *c, cli_err *err)
{
    word_query w;
    int rc = words_prepare(c->ix, c->o->index, c->o->arg, &w, err);
    if (rc == 0)
        words_print_folds(&w, "query", c->o->index, stderr);
    int64_t n = 0;
    if (rc == 0)
        rc = search_vector(c, w.sum, c->o->k + w.n, &n, err);
    if (rc == 0) {
        char title[512];
        snprintf(title, sizeof title, "words %s", c->o->arg);
        emit(c, title, c->ids, c->dists, words_drop(&w, c->ids, c->dists, n, c->o->k));
    }
    words_free(&w);
    return rc;
}

/* ---- query files -------------------------------------------------------------------------- */

static void row_title(const cli_matrix *m, int64_t row, char *buf, size_t size)
{
    if (m->labels != NULL)
        snprintf(buf, size, "row %lld (%s)", (long long)row, m->labels[row]);
    else if (m->ids != NULL)
        snprintf(buf, size, "row %lld (id %lld)", (long long)row, (long long)m->ids[row]);
    else
        snprintf(buf, size, "row %lld", (long long)row);
}

static int answer_rows(query_ctx *c, const cli_matrix *m, cli_err *err)
{
    const query_opts *o = c->o;
    if ((uint64_t)m->n > SIZE_MAX / sizeof(float) / (uint64_t)o->k)
        return cli_fail(err, EXIT_FAIL, "out of memory");
    int rc = reserve_results(c, m->n * o->k, err);
    if (rc != 0)
        return rc;
    int64_t *counts = cli_alloc_array((size_t)m->n, sizeof *counts);
    if (counts == NULL)
        return cli_fail(err, EXIT_FAIL, "out of memory");
    int st = copse_search_batch_filtered(c->ix, c->scratch, m->data, m->n, o->k, o->search_k,
                                         o->exact, o->n_threads, c->filter, c->ids, c->dists,
                                         counts);
    if (st != COPSE_OK)
        rc = cli_fail_scratch(err, st, c->scratch, o->arg);
    for (int64_t i = 0; rc == 0 && i < m->n; i++) {
        char title[512];
        row_title(m, i, title, sizeof title);
        emit(c, title, c->ids + i * o->k, c->dists + i * o->k, counts[i]);
    }
    free(counts);
    return rc;
}

static int run_file(query_ctx *c, cli_err *err)
{
    cli_matrix m;
    int rc = reader_load(c->o->arg, &c->o->in, -1, &m, err);
    if (rc != 0)
        return rc;
    rc = check_dim(c, m.dim, c->o->arg, err);
    if (rc == 0)
        rc = answer_rows(c, &m, err);
    matrix_free(&m);
    return rc;
}

static int run_query(const query_opts *o, cli_err *err)
{
    query_ctx c = {o, NULL, NULL, NULL, NULL, NULL, 0, 0};
    int st = copse_open(o->index, o->prefault, &c.ix);
    int rc = st == COPSE_OK ? 0 : cli_fail_status(err, st, c.ix, o->index);
    if (rc == 0 && (st = copse_scratch_new(&c.scratch)) != COPSE_OK)
        rc = cli_fail_status(err, st, NULL, "scratch");
    if (rc == 0)
        rc = make_filter(&c, err);
    if (rc == 0) {
        switch (o->kind) {
        case Q_ITEM:
            rc = run_item(&c, err);
            break;
        case Q_LABEL:
            rc = run_label(&c, err);
            break;
        case Q_VECTOR:
            rc = run_vector(&c, err);
            break;
        case Q_WORDS:
            rc = run_words(&c, err);
            break;
        case Q_FILE:
        case Q_NONE:
            rc = run_file(&c, err);
            break;
        }
    }
    free(c.ids);
    free(c.dists);
    copse_scratch_free(c.scratch);
    copse_filter_free(c.filter);
    copse_free(c.ix);
    return rc;
}

int cmd_query(int argc, char **argv)
{
    cli_err err = {0, ""};
    query_opts o;
    int rc = parse_query_args(argc, argv, &o, &err);
    if (rc == 0)
        rc = run_query(&o, &err);
    return cli_finish("query", rc, &err);
}
