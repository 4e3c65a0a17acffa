/*
 * crc_speed.c: CRC32C throughput of each implementation this CPU runs, in cache (a 256 KiB
 * buffer hashed over and over) and from memory (a buffer of MiB megabytes, 1024 by default,
 * hashed whole each pass), beside the peer that says what memory speed is here: memchr over
 * the same buffer (glibc's vectorised scan, which only reads). Best of several passes.
 * Not part of `make test` (docs/TESTING.md quotes it); run it alone, as any timing:
 *   cmake --build build-test/release --target crc_speed
 *   flock /tmp/copse-bench.lock build-test/release/tests/crc_speed [MiB]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../src/kernels/kernels.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* GB/s of the best of `passes` runs of fn (NULL: memchr) over len bytes, `reps` times each. */
static double speed(cp_crc32c_fn fn, const unsigned char *buf, size_t len, int reps, int passes,
                    uint32_t *sink)
{
    double best = 1e30;
    for (int p = 0; p < passes; p++) {
        double t0 = now();
        for (int r = 0; r < reps; r++) {
            if (fn)
                *sink ^= fn(*sink, buf, len);
            else
                *sink ^= memchr(buf, 1, len) != NULL; /* no 1 in the buffer: reads it all */
        }
        double t = now() - t0;
        best = t < best ? t : best;
    }
    return (double)len * reps / best / 1e9;
}

int main(int argc, char **argv)
{
    size_t big = (argc > 1 ? strtoull(argv[1], NULL, 10) : 1024) << 20, small = 256 << 10;
    unsigned char *buf = malloc(big);
    if (!buf || big < small) {
        fprintf(stderr, "crc_speed: cannot have a buffer of %zu bytes\n", big);
        return 1;
    }
    /* Bytes 2..255 (never 1, so memchr reads everything), written so every page is real. */
    for (size_t i = 0; i < big; i++)
        buf[i] = (unsigned char)(2 + (i * 2654435761u >> 13) % 254);
    static const char *const names[] = {"slice8", "sse42", "armv8"};
    uint32_t sink = 0;
    double peer_small = speed(NULL, buf, small, (int)(big / small), 5, &sink);
    double peer_big = speed(NULL, buf, big, 1, 3, &sink);
    printf("%-8s %12s %12s %14s\n", "", "in cache", "from memory", "vs memchr");
    printf("%-8s %8.1f GB/s %7.1f GB/s %8.2f %5.2f\n", "memchr", peer_small, peer_big, 1.0, 1.0);
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        cp_crc32c_fn fn = cp_crc32c_by_name(names[i]);
        if (!fn)
            continue;
        double s = speed(fn, buf, small, (int)(big / small), 5, &sink);
        double b = speed(fn, buf, big, 1, 3, &sink);
        printf("%-8s %8.1f GB/s %7.1f GB/s %8.2f %5.2f\n", names[i], s, b, s / peer_small,
               b / peer_big);
    }
    printf("(%zu MiB from memory; checksum of checksums %08x)\n", big >> 20, sink);
    free(buf);
    return 0;
}
