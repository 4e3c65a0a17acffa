/*
 * progress.c: the progress bar. Rates and ETA come from the elapsed time and the fraction
 * done, so they need no history.
 */
#include <stdio.h>
#include <unistd.h>

#include "cli.h"
#include "progress.h"

#define BAR_WIDTH 24
#define REDRAW_SECONDS 0.1

void progress_start(cli_progress *p, const char *label, const char *unit, int enabled)
{
    p->enabled = enabled && isatty(STDERR_FILENO);
    p->label = label;
    p->unit = unit;
    p->start = cli_now();
    /* The first draw waits one interval, so quick jobs never flash a bar. */
    p->last_draw = p->start;
    p->drawn = 0;
}

/* "12.3k" style counts keep the line short and steady. */
static void format_rate(double v, char *buf, size_t size)
{
    if (v >= 1e6)
        snprintf(buf, size, "%.1fM", v / 1e6);
    else if (v >= 1e3)
        snprintf(buf, size, "%.1fk", v / 1e3);
    else
        snprintf(buf, size, "%.0f", v);
}

static void format_duration(double s, char *buf, size_t size)
{
    if (s < 10.0)
        snprintf(buf, size, "%.1fs", s);
    else if (s < 600.0)
        snprintf(buf, size, "%.0fs", s);
    else
        snprintf(buf, size, "%ldm%02lds", (long)(s + 0.5) / 60, (long)(s + 0.5) % 60);
}

static void draw_bar(double fraction)
{
    int filled = (int)(fraction * BAR_WIDTH + 0.5);
    fputc('[', stderr);
    for (int i = 0; i < BAR_WIDTH; i++)
        fputc(i < filled ? '#' : '-', stderr);
    fprintf(stderr, "] %3d%%", (int)(fraction * 100.0));
}

void progress_update(cli_progress *p, double fraction, int64_t done)
{
    if (!p->enabled)
        return;
    double now = cli_now();
    if (now - p->last_draw < REDRAW_SECONDS)
        return;
    p->last_draw = now;
    double elapsed = now - p->start;
    char rate[32];
    format_rate(elapsed > 0 ? (double)done / elapsed : 0.0, rate, sizeof rate);
    fprintf(stderr, "\r%s ", p->label);
    if (fraction >= 0.0) {
        draw_bar(fraction);
        if (p->unit) /* a count to show; a build reports only its fraction */
            fprintf(stderr, "  %lld %s  %s/s", (long long)done, p->unit, rate);
        if (fraction > 0.01) {
            char eta[32];
            format_duration(elapsed * (1.0 - fraction) / fraction, eta, sizeof eta);
            fprintf(stderr, "  ETA %s", eta);
        }
    } else {
        char spent[32];
        format_duration(elapsed, spent, sizeof spent);
        fprintf(stderr, "%lld %s  %s/s  %s", (long long)done, p->unit, rate, spent);
    }
    fputs("\033[K", stderr);
    p->drawn = 1;
    fflush(stderr);
}

void progress_end(cli_progress *p)
{
    if (!p->enabled || !p->drawn)
        return;
    fputs("\r\033[K", stderr);
    fflush(stderr);
}
