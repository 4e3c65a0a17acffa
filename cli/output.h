/*
 * output.h: printing query results as aligned text or as JSON lines, and JSON strings.
 */
#ifndef COPSE_CLI_OUTPUT_H
#define COPSE_CLI_OUTPUT_H

#include <stdint.h>
#include <stdio.h>

#include "copse.h"

/* One query's answer as the output functions take it. */
typedef struct query_result {
    const char *title;    /* "item 17", "words chinese river", "row 3 (king)" */
    const int64_t *ids;
    const float *dists;
    int64_t n;
} query_result;

/* Writes s as a JSON string literal; bytes that are not valid UTF-8 become U+FFFD. */
void out_json_string(FILE *f, const char *s);
/* "query: TITLE" then a table of rank, id, distance and (when the index has labels) label. */
void out_results_text(FILE *f, const copse_index *ix, const query_result *q);
/* {"query": TITLE, "results": [{"id": .., "distance": .., "label": ..}, ..]} on one line. */
void out_results_json(FILE *f, const copse_index *ix, const query_result *q);

#endif /* COPSE_CLI_OUTPUT_H */
