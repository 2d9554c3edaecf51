/* bench_util.h - helpers shared by the benchmarks in tests/bench/: fatal
   errors, allocation, clocks, medians, whole reads and writes, the
   temporary folder. Header-only, static inline (an includer that uses only
   some gets no unused-function warnings).

   Define BENCH_NAME (the program's name, a string literal) before including
   it, and include it after modelload.h (whose implementation part selects
   the POSIX feature macros these functions need). */
#ifndef MLOAD_BENCH_UTIL_H
#define MLOAD_BENCH_UTIL_H
#ifndef BENCH_NAME
#error "define BENCH_NAME before including bench_util.h"
#endif
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

/* prints "BENCH_NAME: error: ..." and exits 1 (atexit handlers remove
   temporary files) */
static inline void die(const char *fmt, ...) {
    va_list ap;
    fflush(stdout);
    fprintf(stderr, BENCH_NAME ": error: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

static inline void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) die("out of memory (%zu bytes)", n);
    return p;
}

static inline uint64_t now_ns(void) {
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0) die("clock_gettime failed");
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline double now_s(void) { return (double)now_ns() * 1e-9; }

static inline int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : (x > y ? 1 : 0);
}

/* median of n > 0 values (sorts a copy: the caller's order is kept) */
static inline double median_ns(const uint64_t *v, size_t n) {
    uint64_t *tmp;
    double m;
    if (n == 0) die("median of no values");
    tmp = (uint64_t *)xmalloc(n * sizeof(uint64_t));
    memcpy(tmp, v, n * sizeof(uint64_t));
    qsort(tmp, n, sizeof(uint64_t), cmp_u64);
    m = n % 2 ? (double)tmp[n / 2] : ((double)tmp[n / 2 - 1] + (double)tmp[n / 2]) / 2.0;
    free(tmp);
    return m;
}

static inline double min_ns(const uint64_t *v, size_t n) {
    uint64_t m = UINT64_MAX;
    size_t i;
    for (i = 0; i < n; ++i) if (v[i] < m) m = v[i];
    return (double)m;
}

/* bytes per nanosecond = GB/s */
static inline double gbps(uint64_t bytes, double ns) { return ns > 0 ? (double)bytes / ns : 0.0; }

static inline void write_all(int fd, const void *buf, size_t n, const char *path) {
    const unsigned char *p = (const unsigned char *)buf;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            die("write '%s': %s", path, strerror(errno));
        }
        p += w;
        n -= (size_t)w;
    }
}

/* n bytes at offset off, in preads of at most 1 GiB */
static inline void read_exact(int fd, void *dst, uint64_t n, uint64_t off, const char *path) {
    unsigned char *p = (unsigned char *)dst;
    while (n > 0) {
        size_t want = n > ((uint64_t)1 << 30) ? (size_t)1 << 30 : (size_t)n;
        ssize_t r = pread(fd, p, want, (off_t)off);
        if (r < 0) {
            if (errno == EINTR) continue;
            die("pread '%s': %s", path, strerror(errno));
        }
        if (r == 0) die("pread '%s': unexpected end of file", path);
        p += r;
        n -= (uint64_t)r;
        off += (uint64_t)r;
    }
}

/* v (an array of *cap elements of esize bytes, n of them used), grown when
   full so that one more fits */
static inline void *grow_array(void *v, size_t *cap, size_t n, size_t esize) {
    size_t ncap;
    void *nv;
    if (n < *cap) return v;
    ncap = *cap ? *cap * 2 : 64;
    nv = realloc(v, ncap * esize);
    if (!nv) die("out of memory");
    *cap = ncap;
    return nv;
}

/* formats a tensor name into dst[cap]; dies when it does not fit */
static inline void format_name(char *dst, size_t cap, const char *fmt, va_list ap) {
    int k = vsnprintf(dst, cap, fmt, ap);
    if (k < 0 || (size_t)k >= cap) die("tensor name too long");
}

/* creates a fresh folder $TMPDIR/NAME.XXXXXX (TMPDIR default /tmp); its
   path goes to dir */
static inline void make_tmpdir(char *dir, size_t cap, const char *name) {
    const char *tmp = getenv("TMPDIR");
    int k;
    if (!tmp || !tmp[0]) tmp = "/tmp";
    k = snprintf(dir, cap, "%s/%s.XXXXXX", tmp, name);
    if (k < 0 || (size_t)k >= cap) die("TMPDIR path too long");
    if (!mkdtemp(dir)) die("mkdtemp '%s': %s", dir, strerror(errno));
}

#ifdef MODELLOAD_H
/* a map over one path, with n LoRA adapters (l may be NULL); exits on failure */
static inline mload_map *bench_open_map(const char *path, const mload_lora *l, uint64_t n) {
    mload_map_desc d;
    mload_map *m = NULL;
    mload_error e;
    memset(&d, 0, sizeof d);
    d.paths = &path;
    d.path_count = 1;
    d.loras = l;
    d.lora_count = n;
    if (mload_map_open(&d, &m, &e) != MLOAD_OK) die("open %s: %s", path, e.message);
    return m;
}
#endif

#endif
