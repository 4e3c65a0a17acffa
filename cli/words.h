/*
 * words.h: a query made of words, as word2vec's `distance` tool makes one: the sum of the
 * words' vectors (unit vectors under the angular metric), answered with the query words
 * themselves left out. Shared by `copse query --words` and `copse demo-words`.
 *
 * Words are item labels. A word missing as written is tried once more in lower case (ASCII
 * letters only), because word-vector files such as GloVe's hold lower-case words only:
 * "Chinese" then finds "chinese", and the caller says so.
 */
#ifndef COPSE_CLI_WORDS_H
#define COPSE_CLI_WORDS_H

#include <stdint.h>
#include <stdio.h>

#include "cli.h"

typedef struct word_query {
    char *text;       /* the argument, split in place into the words */
    char **words;     /* each word as given */
    char **folded;    /* its lower-case form when only that was found, else NULL */
    int64_t *ids;     /* the item each word names */
    int n;
    float *sum;       /* the query vector, copse_dim() floats */
} word_query;

/* Splits arg at spaces and tabs, finds each word's item and sums their vectors.
 * index_name names the index in messages. Returns 0 or an exit code: EXIT_USAGE for no
 * words, EXIT_DATA for an index without labels or a word it does not hold (the message
 * names the word). words_free must be called in every case. */
int words_prepare(const copse_index *ix, const char *index_name, const char *arg,
                  word_query *w, cli_err *err);
/* Prints "copse CMD: 'Chinese' is not in INDEX; using 'chinese'" for each folded word
 * (stdout is flushed first, so the note comes where it belongs when both go to one place). */
void words_print_folds(const word_query *w, const char *cmd, const char *index_name, FILE *f);
/* Removes the query words from n results (ids and, when not NULL, dists), keeping the first
 * k others in order; returns how many are kept. */
int64_t words_drop(const word_query *w, int64_t *ids, float *dists, int64_t n, int64_t k);
void words_free(word_query *w);

#endif /* COPSE_CLI_WORDS_H */
