/*
 * tiles.h: a grid of greyscale image tiles with coloured frames, written as a PNG through
 * libpng when the build has it. Used by the demo to show queries and their neighbours.
 */
#ifndef COPSE_CLI_TILES_H
#define COPSE_CLI_TILES_H

#include <stdint.h>

#include "cli.h"

/* The help line of `copse demo -o`: what the option does in this build. */
#if COPSE_HAVE_PNG
#define TILES_PNG_HELP "  -o, --png FILE       the picture (default fashion-mnist-neighbours.png)\n"
#else
#define TILES_PNG_HELP                                                                        \
    "  -o, --png FILE       the picture; this copse was built without libpng, so it draws\n"  \
    "                       none and says so\n"
#endif

typedef struct tile_grid {
    int rows, cols;       /* tiles */
    int tile_w, tile_h;   /* source pixels per tile */
    int scale;            /* each source pixel becomes scale x scale */
    int gap_after_col;    /* a wider gap after this column (the query), -1 for none */
    uint8_t *rgb;         /* the picture, width * height * 3 bytes */
    int width, height;
} tile_grid;

int grid_new(tile_grid *g, int rows, int cols, int tile_w, int tile_h, int scale,
             int gap_after_col, cli_err *err);
void grid_free(tile_grid *g);
/* Draws tile (row, col) from tile_w * tile_h intensities in 0..255 (dark on light: the
 * values are inverted) inside a frame of colour rgb_frame. */
void grid_draw(tile_grid *g, int row, int col, const float *pixels, const uint8_t rgb_frame[3]);
/* 1 when this build writes PNG files (libpng was found when it was configured). */
int grid_can_write_png(void);
/* Writes the picture to path atomically (a temporary file renamed into place); fails with
 * EXIT_FAIL in a build without libpng. */
int grid_write_png(const tile_grid *g, const char *path, cli_err *err);

#endif /* COPSE_CLI_TILES_H */
