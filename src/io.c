/*
 * io.c: every operating-system call the library makes (open, pread/pwrite, mmap, fsync,
 * rename). Algorithm files stay free of platform code.
 *
 * Saving is atomic: a temporary file is created in the target's own folder (so rename stays
 * within one file system), written, fsynced and renamed over the target, then the folder is
 * fsynced so the rename itself survives a crash.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

static int io_fail(cp_err *err, const char *what, const char *name)
{
    return cp_fail(err, COPSE_ERR_IO, "%s %s: %s", what, name, strerror(errno));
}

int cp_io_map_fd(int fd, uint64_t len, void **addr, size_t *out_len, const char *name, cp_err *err)
{
    if (len > SIZE_MAX)
        return cp_fail(err, COPSE_ERR_NOMEM, "map %s: %llu bytes do not fit in memory", name,
                       (unsigned long long)len);
    void *p = mmap(NULL, (size_t)len, PROT_READ, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED)
        return io_fail(err, "map", name);
    *addr = p;
    *out_len = (size_t)len;
    return COPSE_OK;
}

int cp_io_map_file(const char *path, int prefault, void **addr, size_t *len, cp_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return io_fail(err, "open", path);
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int rc = io_fail(err, "stat", path);
        close(fd);
        return rc;
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return cp_fail(err, COPSE_ERR_IO, "open %s: not a regular file", path);
    }
    if (st.st_size == 0) {
        close(fd);
        return cp_fail(err, COPSE_ERR_NOTCOPSE, "%s: empty file", path);
    }
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED | (prefault ? MAP_POPULATE : 0),
                   fd, 0);
    int saved = errno;
    close(fd);
    if (p == MAP_FAILED) {
        errno = saved;
        return io_fail(err, "map", path);
    }
    *addr = p;
    *len = (size_t)st.st_size;
    return COPSE_OK;
}

void cp_io_unmap(void *addr, size_t len)
{
    if (addr)
        munmap(addr, len);
}

/* Six characters of the temporary name from 64 random bits. Without an entropy source (a
 * kernel older than getrandom) the clock and pid serve: the name needs only to be unlikely to
 * exist, because O_EXCL refuses one that does and the caller tries again. */
static void random_suffix(char *out, unsigned attempt)
{
    static const char letters[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    uint64_t r;
    if (getentropy(&r, sizeof r) != 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        r = ((uint64_t)ts.tv_nsec << 24) ^ (uint64_t)ts.tv_sec ^ ((uint64_t)getpid() << 44);
        r = (r ^ attempt) * 0x9E3779B97F4A7C15ull;
    }
    for (int i = 0; i < 6; i++) {
        out[i] = letters[r % 62];
        r /= 62;
    }
}

/* The temporary file is opened with O_CREAT | O_EXCL and mode 0666, so the kernel applies the
 * process's umask (or the folder's default ACL) as it does for any new file. mkostemp would
 * make it 0600, and widening that needs the umask, which only umask() reports, by changing
 * it: a process-wide setting that other threads creating files at that instant would see.
 * O_EXCL also fails on any existing name, a symbolic link included, so a name someone else
 * took is never written through; another is tried. */
int cp_io_temp_beside(const char *path, int *fd, char **tmp_name, cp_err *err)
{
    /* The file will be renamed over path: never over a directory, device or pipe. */
    struct stat st;
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode))
        return cp_fail(err, COPSE_ERR_IO, "%s exists and is not a regular file", path);
    size_t len = strlen(path);
    char *name = cp_malloc(len + 16);
    if (!name)
        return cp_fail(err, COPSE_ERR_NOMEM, "no memory for a file name");
    memcpy(name, path, len);
    memcpy(name + len, ".tmp-XXXXXX", 12);
    int f = -1;
    for (unsigned attempt = 0; attempt < 100 && f < 0; attempt++) {
        random_suffix(name + len + 5, attempt);
        f = open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (f < 0 && errno != EEXIST)
            break;
    }
    if (f < 0) {
        int rc = io_fail(err, "create a temporary file beside", path);
        cp_free(name);
        return rc;
    }
    *fd = f;
    *tmp_name = name;
    return COPSE_OK;
}

int cp_io_pwrite_all(int fd, const void *buf, size_t len, uint64_t off, const char *name, cp_err *err)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t w = pwrite(fd, p, len > (1u << 30) ? (1u << 30) : len, (off_t)off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return io_fail(err, "write", name);
        p += w;
        len -= (size_t)w;
        off += (uint64_t)w;
    }
    return COPSE_OK;
}

int cp_io_pread_all(int fd, void *buf, size_t len, uint64_t off, const char *name, cp_err *err)
{
    char *p = buf;
    while (len > 0) {
        ssize_t r = pread(fd, p, len > (1u << 30) ? (1u << 30) : len, (off_t)off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return io_fail(err, "read", name);
        if (r == 0)
            return cp_fail(err, COPSE_ERR_IO, "read %s: unexpected end of file", name);
        p += r;
        len -= (size_t)r;
        off += (uint64_t)r;
    }
    return COPSE_OK;
}

int cp_io_truncate(int fd, uint64_t size, const char *name, cp_err *err)
{
    if (ftruncate(fd, (off_t)size) != 0)
        return io_fail(err, "resize", name);
    return COPSE_OK;
}

static void fsync_dir_of(const char *path)
{
    size_t len = strlen(path);
    char *copy = cp_malloc(len + 1);
    if (!copy)
        return;
    memcpy(copy, path, len + 1);
    int dfd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    cp_free(copy);
}

int cp_io_commit(int fd, const char *tmp, const char *path, cp_err *err)
{
    if (fsync(fd) != 0)
        return io_fail(err, "sync", tmp);
    if (rename(tmp, path) != 0)
        return io_fail(err, "rename the finished index to", path);
    /* Renamed and synced: what close could report (a delayed write error) fsync reported. */
    close(fd);
    fsync_dir_of(path);
    return COPSE_OK;
}

void cp_io_discard(int fd, const char *tmp)
{
    if (fd >= 0)
        close(fd);
    if (tmp)
        unlink(tmp);
}
