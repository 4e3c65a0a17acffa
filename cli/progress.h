/*
 * progress.h: a one-line progress bar with rate and ETA on stderr. It draws only when stderr
 * is a terminal (and the user did not ask for quiet), so logs and pipes stay clean.
 */
#ifndef COPSE_CLI_PROGRESS_H
#define COPSE_CLI_PROGRESS_H

#include <stdint.h>

typedef struct cli_progress {
    int enabled;
    const char *label;   /* "reading", "querying" */
    const char *unit;    /* "vectors" */
    double start;
    double last_draw;
    int drawn;           /* something is on the line and must be erased at the end */
} cli_progress;

/* enabled: the caller's wish; the bar still stays off unless stderr is a terminal.
 * unit NULL: no count is shown, only the fraction and the ETA. */
void progress_start(cli_progress *p, const char *label, const char *unit, int enabled);
/* fraction in 0..1, or < 0 when the total is unknown (then unit must be set); redraws at
 * most ten times a second. */
void progress_update(cli_progress *p, double fraction, int64_t done);
/* Erases the bar. */
void progress_end(cli_progress *p);

#endif /* COPSE_CLI_PROGRESS_H */
