/* st_write.h - builds safetensors images for the tests, the benchmarks and
   tests/gen_checkpoint.c. Header-only (static inline functions, so an
   includer that uses only some of them gets no unused-function warnings),
   plain C99, independent of modelload.h.

   A safetensors image is an 8-byte little-endian header length N, N bytes
   of JSON header, then the data. The usual use:

       st_buf b = ST_BUF_INIT;
       st_begin(&b);                                   8-byte slot for N
       st_printf(&b, "{\"__metadata__\":{\"format\":\"pt\"}");
       st_tensor(&b, "w", "F32", 2, shape, 0, 24);     ,"w":{"dtype":...}
       st_printf(&b, "}");
       n = st_end_header(&b, ST_PAD8);                 spaces to a multiple of 8, N filled in
       st_put(&b, data, 24);                           or write b.p, b.n and stream the data
       if (b.failed) ...out of memory...
       st_free(&b);

   Memory errors are sticky: after a failed allocation every append is a
   no-op and b.failed stays set, so a caller checks once at the end. */
#ifndef MLOAD_TEST_ST_WRITE_H
#define MLOAD_TEST_ST_WRITE_H
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A growable byte buffer. */
typedef struct st_buf {
    unsigned char *p;
    size_t n, cap;
    int failed; /* an allocation failed; the contents are incomplete */
} st_buf;
#define ST_BUF_INIT {NULL, 0, 0, 0}

enum { ST_NO_PAD = 0, ST_PAD8 = 1 };

/* room for `extra` more bytes (plus a NUL for st_printf); 0 on failure */
static inline int st_reserve(st_buf *b, size_t extra) {
    size_t need, c;
    unsigned char *np;
    if (b->failed) return 0;
    if (extra > (size_t)-1 - b->n - 1) { b->failed = 1; return 0; }
    need = b->n + extra + 1;
    if (need <= b->cap) return 1;
    c = b->cap ? b->cap : 64;
    while (c < need) c = c > (size_t)-1 / 2 ? need : c * 2;
    np = (unsigned char *)realloc(b->p, c);
    if (!np) { b->failed = 1; return 0; }
    b->p = np;
    b->cap = c;
    return 1;
}

static inline void st_put(st_buf *b, const void *data, size_t n) {
    if (!st_reserve(b, n)) return;
    if (n) memcpy(b->p + b->n, data, n);
    b->n += n;
}

static inline void st_putc(st_buf *b, unsigned char c) { st_put(b, &c, 1); }

/* appends formatted text (without the terminating NUL, which is kept
   after the last byte while it fits) */
static inline void st_vprintf(st_buf *b, const char *fmt, va_list ap) {
    va_list aq;
    int k;
    if (!st_reserve(b, 0)) return;
    va_copy(aq, ap);
    k = vsnprintf((char *)b->p + b->n, b->cap - b->n, fmt, aq);
    va_end(aq);
    if (k < 0) { b->failed = 1; return; }
    if ((size_t)k >= b->cap - b->n) {
        if (!st_reserve(b, (size_t)k)) return;
        k = vsnprintf((char *)b->p + b->n, b->cap - b->n, fmt, ap);
        if (k < 0) { b->failed = 1; return; }
    }
    b->n += (size_t)k;
}

static inline void st_printf(st_buf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    st_vprintf(b, fmt, ap);
    va_end(ap);
}

static inline void st_free(st_buf *b) {
    free(b->p);
    b->p = NULL;
    b->n = b->cap = 0;
    b->failed = 0;
}

/* v as 8 little-endian bytes */
static inline void st_le64(unsigned char out[8], uint64_t v) {
    int i;
    for (i = 0; i < 8; ++i) out[i] = (unsigned char)((v >> (8 * i)) & 0xFFu);
}

/* Starts an image at the current end of b: an 8-byte slot for the header
   length, which st_end_header fills in. */
static inline void st_begin(st_buf *b) {
    static const unsigned char zero[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    st_put(b, zero, 8);
}

/* Ends the header of the image that st_begin started at the start of b:
   with ST_PAD8, appends spaces until the header length is a multiple of 8
   (the reference writer's layout); writes the length into the slot.
   Returns the header length N. */
static inline uint64_t st_end_header(st_buf *b, int pad) {
    size_t len;
    if (b->failed || b->n < 8) { b->failed = 1; return 0; }
    if (pad == ST_PAD8)
        while ((b->n - 8) % 8u) st_putc(b, ' ');
    if (b->failed) return 0;
    len = b->n - 8;
    st_le64(b->p, (uint64_t)len);
    return (uint64_t)len;
}

/* Appends one header entry "NAME":{"dtype":"DTYPE","shape":[..],
   "data_offsets":[BEGIN,END]}, preceded by a comma unless it directly
   follows the header's opening brace. NAME is written as given (no JSON
   escaping). */
static inline void st_tensor(st_buf *b, const char *name, const char *dtype, unsigned rank, const uint64_t *shape,
                             uint64_t begin, uint64_t end) {
    unsigned d;
    st_printf(b, "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[", b->n > 0 && b->p[b->n - 1] == '{' ? "" : ",", name, dtype);
    for (d = 0; d < rank; ++d) st_printf(b, d ? ",%llu" : "%llu", (unsigned long long)shape[d]);
    st_printf(b, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)begin, (unsigned long long)end);
}

/* A whole image in one call: length, header (header_len bytes, NUL bytes
   allowed), padding as asked, then data_len bytes of data. */
static inline void st_image(st_buf *b, const void *header, size_t header_len, int pad, const void *data,
                            size_t data_len) {
    st_begin(b);
    st_put(b, header, header_len);
    st_end_header(b, pad);
    st_put(b, data, data_len);
}

/* Writes the bytes of b to fp; 0 on success (b complete and every byte
   written), -1 otherwise. */
static inline int st_write_file(FILE *fp, const st_buf *b) {
    if (b->failed) return -1;
    return b->n == 0 || fwrite(b->p, 1, b->n, fp) == b->n ? 0 : -1;
}

#endif
