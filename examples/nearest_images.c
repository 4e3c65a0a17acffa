/*
 * nearest_images.c: the nearest images of a few images, in C with copse.h alone.
 *
 * Reads an IDX file of 8-bit images (MNIST's and Fashion-MNIST's format, uncompressed:
 * `gunzip -k train-images-idx3-ubyte.gz`), indexes every image under the euclidean metric,
 * saves the index, maps it again as another process would, and prints the nearest images of
 * the first few with their distances, beside how many of them exhaustive search agrees with.
 *
 *   cc -O2 -std=c11 nearest_images.c $(pkg-config --cflags --libs copse) -o nearest_images
 *   ./nearest_images train-images-idx3-ubyte images.copse [QUERIES]
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <copse.h>

#define K 5

/* The images as floats, n rows of *dim pixels; NULL with a message on failure. */
static float *read_idx_images(const char *path, int64_t *n, int *dim)
{
    FILE *f = fopen(path, "rb");
    unsigned char head[16];
    if (f == NULL || fread(head, 1, 16, f) != 16 || head[2] != 0x08 || head[3] != 3) {
        fprintf(stderr, "%s: not an uncompressed IDX file of 8-bit images\n", path);
        if (f != NULL)
            fclose(f);
        return NULL;
    }
    uint32_t v[3];
    for (int i = 0; i < 3; i++)
        v[i] = (uint32_t)head[4 + 4 * i] << 24 | (uint32_t)head[5 + 4 * i] << 16 |
               (uint32_t)head[6 + 4 * i] << 8 | head[7 + 4 * i];
    *n = v[0];
    *dim = (int)(v[1] * v[2]);
    size_t total = (size_t)*n * (size_t)*dim;
    unsigned char *bytes = malloc(total);
    float *pixels = malloc(total * sizeof *pixels);
    if (bytes == NULL || pixels == NULL || fread(bytes, 1, total, f) != total) {
        fprintf(stderr, "%s: truncated or out of memory\n", path);
        free(pixels);
        pixels = NULL;
    }
    for (size_t i = 0; pixels != NULL && i < total; i++)
        pixels[i] = bytes[i];
    free(bytes);
    fclose(f);
    return pixels;
}

/* Builds the index and saves it: every call returns a status, copse_errmsg says why. */
static int build(const float *pixels, int64_t n, int dim, const char *path)
{
    copse_index *ix = NULL;
    int st = copse_new(dim, COPSE_EUCLIDEAN, &ix);
    if (st == COPSE_OK)
        st = copse_add_items(ix, n, NULL, 0, pixels); /* ids 0 .. n-1 */
    if (st == COPSE_OK)
        st = copse_build(ix, -1, 0); /* tree count chosen by copse, one thread per CPU */
    if (st == COPSE_OK)
        st = copse_save(ix, path);
    if (st != COPSE_OK)
        fprintf(stderr, "build: %s\n", copse_errmsg(ix)[0] ? copse_errmsg(ix)
                                                           : copse_strerror(st));
    copse_free(ix);
    return st;
}

static int show_neighbours(const copse_index *ix, copse_scratch *s, int64_t q)
{
    int64_t ids[K + 1], exact[K + 1], n = 0, n_exact = 0;
    float dists[K + 1];
    /* K + 1: the image itself comes first, at distance 0. */
    int st = copse_search_item(ix, s, q, K + 1, -1, ids, dists, &n);
    if (st == COPSE_OK)
        st = copse_exact_item(ix, s, q, K + 1, exact, NULL, &n_exact);
    if (st != COPSE_OK) {
        fprintf(stderr, "query %lld: %s\n", (long long)q, copse_scratch_errmsg(s));
        return st;
    }
    int agree = 0;
    printf("image %lld:", (long long)q);
    for (int64_t i = 1; i < n; i++) {
        printf(" %lld (%.0f)", (long long)ids[i], dists[i]);
        for (int64_t j = 1; j < n_exact; j++)
            agree += ids[i] == exact[j];
    }
    printf("   [%d of %lld also found by exhaustive search]\n", agree, (long long)n_exact - 1);
    return COPSE_OK;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s IMAGES-idx3-ubyte INDEX [QUERIES]\n", argv[0]);
        return 2;
    }
    int64_t n = 0, queries = argc > 3 ? atoll(argv[3]) : 5;
    int dim = 0;
    float *pixels = read_idx_images(argv[1], &n, &dim);
    if (pixels == NULL || build(pixels, n, dim, argv[2]) != COPSE_OK)
        return 1;
    free(pixels);

    /* A reader maps the file: instant, and shared with every process that opens it. */
    copse_index *ix = NULL;
    copse_scratch *s = NULL;
    int st = copse_open(argv[2], 0, &ix);
    if (st != COPSE_OK || copse_scratch_new(&s) != COPSE_OK) {
        fprintf(stderr, "%s: %s\n", argv[2], copse_errmsg(ix));
        copse_free(ix);
        return 1;
    }
    printf("%s: %lld images of %d pixels, %d trees; the %d nearest (distance):\n", argv[2],
           (long long)copse_n_items(ix), copse_dim(ix), copse_n_trees(ix), K);
    for (int64_t q = 0; st == COPSE_OK && q < queries && q < n; q++)
        st = show_neighbours(ix, s, q);
    copse_scratch_free(s);
    copse_free(ix);
    return st == COPSE_OK ? 0 : 1;
}
