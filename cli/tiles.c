/*
 * tiles.c: the tile grid and its PNG file. libpng's simplified API (png_image) writes the
 * whole picture in one call, with no setjmp error handling to get wrong. libpng is optional
 * (COPSE_HAVE_PNG): without it there is no writer and grid_can_write_png says so.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tiles.h"

#define FRAME 2      /* frame width around each tile, in output pixels */
#define GAP 4        /* space between cells */
#define WIDE_GAP 16  /* space after the query column */

static int cell_w(const tile_grid *g) { return g->tile_w * g->scale + 2 * FRAME; }
static int cell_h(const tile_grid *g) { return g->tile_h * g->scale + 2 * FRAME; }

static int col_x(const tile_grid *g, int col)
{
    int x = GAP + col * (cell_w(g) + GAP);
    if (g->gap_after_col >= 0 && col > g->gap_after_col)
        x += WIDE_GAP - GAP;
    return x;
}

int grid_new(tile_grid *g, int rows, int cols, int tile_w, int tile_h, int scale,
             int gap_after_col, cli_err *err)
{
    memset(g, 0, sizeof *g);
    g->rows = rows;
    g->cols = cols;
    g->tile_w = tile_w;
    g->tile_h = tile_h;
    g->scale = scale;
    g->gap_after_col = gap_after_col;
    g->width = col_x(g, cols - 1) + cell_w(g) + GAP;
    g->height = GAP + rows * (cell_h(g) + GAP);
    g->rgb = cli_alloc_array((size_t)g->width * (size_t)g->height, 3);
    if (g->rgb == NULL)
        return cli_fail(err, EXIT_FAIL, "out of memory for a %dx%d picture", g->width,
                        g->height);
    memset(g->rgb, 255, (size_t)g->width * (size_t)g->height * 3);
    return 0;
}

void grid_free(tile_grid *g)
{
    free(g->rgb);
    g->rgb = NULL;
}

static void put_pixel(tile_grid *g, int x, int y, uint8_t r, uint8_t gr, uint8_t b)
{
    uint8_t *p = g->rgb + ((size_t)y * (size_t)g->width + (size_t)x) * 3;
    p[0] = r;
    p[1] = gr;
    p[2] = b;
}

static uint8_t ink(float v)
{
    float c = v < 0.0f ? 0.0f : v > 255.0f ? 255.0f : v;
    return (uint8_t)(255.0f - c + 0.5f);
}

void grid_draw(tile_grid *g, int row, int col, const float *pixels, const uint8_t rgb_frame[3])
{
    int x0 = col_x(g, col), y0 = GAP + row * (cell_h(g) + GAP);
    for (int y = 0; y < cell_h(g); y++)
        for (int x = 0; x < cell_w(g); x++)
            put_pixel(g, x0 + x, y0 + y, rgb_frame[0], rgb_frame[1], rgb_frame[2]);
    for (int y = 0; y < g->tile_h * g->scale; y++) {
        for (int x = 0; x < g->tile_w * g->scale; x++) {
            uint8_t v = ink(pixels[(y / g->scale) * g->tile_w + x / g->scale]);
            put_pixel(g, x0 + FRAME + x, y0 + FRAME + y, v, v, v);
        }
    }
}

#if COPSE_HAVE_PNG
#include <png.h>

int grid_can_write_png(void)
{
    return 1;
}

int grid_write_png(const tile_grid *g, const char *path, cli_err *err)
{
    size_t len = strlen(path);
    char *tmp = malloc(len + 16);
    if (tmp == NULL)
        return cli_fail(err, EXIT_FAIL, "out of memory");
    snprintf(tmp, len + 16, "%s.%ld~", path, (long)getpid() % 100000);
    png_image image;
    memset(&image, 0, sizeof image);
    image.version = PNG_IMAGE_VERSION;
    image.width = (png_uint_32)g->width;
    image.height = (png_uint_32)g->height;
    image.format = PNG_FORMAT_RGB;
    int rc = 0;
    if (!png_image_write_to_file(&image, tmp, 0, g->rgb, g->width * 3, NULL))
        rc = cli_fail(err, EXIT_IO, "%s: %s", path, image.message);
    else if (rename(tmp, path) != 0)
        rc = cli_fail(err, EXIT_IO, "%s: %s", path, strerror(errno));
    if (rc != 0)
        remove(tmp);
    png_image_free(&image);
    free(tmp);
    return rc;
}
#else
int grid_can_write_png(void)
{
    return 0;
}

int grid_write_png(const tile_grid *g, const char *path, cli_err *err)
{
    (void)g;
    return cli_fail(err, EXIT_FAIL, "%s: this copse was built without libpng", path);
}
#endif
