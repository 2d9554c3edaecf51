/* zip_write.h - stored zip archives, the way torch.save writes them, for the
   tests, the fuzz target and the benchmark of PyTorch checkpoints. Header
   only, static functions (an includer that uses some gets no warning).

   zw z = {0}; zw_buf out = {0};
   zw_entry(&z, &out, "a/data.pkl", pkl, n); zw_put(&out, pkl, n);  (or write
   the header and the bytes to a file: zw_entry only adds the header to out)
   ... zw_finish(&z, &out);  then free(out.p). */
#ifndef MLOAD_ZIP_WRITE_H
#define MLOAD_ZIP_WRITE_H
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct zw_buf { unsigned char *p; size_t n, cap; } zw_buf;

#if defined(__GNUC__) || defined(__clang__)
#define ZW_FN static __attribute__((unused))
#else
#define ZW_FN static
#endif

ZW_FN void zw_put(zw_buf *b, const void *s, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 256;
        b->p = (unsigned char *)realloc(b->p, b->cap);
        if (!b->p) { fprintf(stderr, "zip_write.h: out of memory\n"); abort(); }
    }
    if (n) memcpy(b->p + b->n, s, n);
    b->n += n;
}

/* v as n little-endian bytes */
ZW_FN void zw_le(zw_buf *b, uint64_t v, int n) {
    unsigned char x[8];
    int i;
    for (i = 0; i < n; ++i) x[i] = (unsigned char)(v >> (8 * i));
    zw_put(b, x, (size_t)n);
}

ZW_FN uint32_t zw_crc32(const unsigned char *p, size_t n) {
    static uint32_t tab[256];
    uint32_t c;
    unsigned i, k;
    if (!tab[1])
        for (i = 0; i < 256; ++i) {
            for (c = i, k = 0; k < 8; ++k) c = (c & 1u) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            tab[i] = c;
        }
    for (c = 0xFFFFFFFFu; n; --n) c = tab[(c ^ *p++) & 0xFFu] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

/* an archive being written: its central directory so far, the offset of
   the next entry; align: data aligned to this many bytes through an "FB"
   extra field, as torch.save does (0 or 1: no extra field) */
typedef struct zw { zw_buf cd; uint64_t pos; uint64_t count; unsigned align; } zw;

/* The local header of an entry of len bytes (whose bytes must follow it)
   into out, and its directory record into z. */
ZW_FN void zw_entry(zw *z, zw_buf *out, const char *name, const unsigned char *data, uint64_t len) {
    size_t nl = strlen(name), pad = 0, x = 0;
    uint32_t crc = zw_crc32(data, (size_t)len);
    if (z->align > 1) {
        pad = (size_t)((z->align - (z->pos + 30 + nl + 4) % z->align) % z->align);
        x = 4 + pad;
    }
    zw_le(out, 0x04034b50u, 4); zw_le(out, 20, 2); zw_le(out, 0, 4); zw_le(out, 0, 4); zw_le(out, crc, 4);
    zw_le(out, len, 4); zw_le(out, len, 4); zw_le(out, nl, 2); zw_le(out, x, 2);
    zw_put(out, name, nl);
    if (x) {
        static const unsigned char zeros[256];
        zw_le(out, 0x4246, 2); zw_le(out, pad, 2);
        zw_put(out, zeros, pad);
    }
    zw_le(&z->cd, 0x02014b50u, 4); zw_le(&z->cd, 20, 2); zw_le(&z->cd, 20, 2); zw_le(&z->cd, 0, 4); zw_le(&z->cd, 0, 4);
    zw_le(&z->cd, crc, 4); zw_le(&z->cd, len, 4); zw_le(&z->cd, len, 4); zw_le(&z->cd, nl, 2); zw_le(&z->cd, 0, 4);
    zw_le(&z->cd, 0, 4); zw_le(&z->cd, 0, 4); zw_le(&z->cd, z->pos, 4);
    zw_put(&z->cd, name, nl);
    z->pos += 30 + nl + x + len;
    z->count++;
}

/* The central directory and its end record into out; z's memory freed. */
ZW_FN void zw_finish(zw *z, zw_buf *out) {
    zw_put(out, z->cd.p, z->cd.n);
    zw_le(out, 0x06054b50u, 4); zw_le(out, 0, 4); zw_le(out, z->count, 2); zw_le(out, z->count, 2);
    zw_le(out, z->cd.n, 4); zw_le(out, z->pos, 4); zw_le(out, 0, 2);
    free(z->cd.p);
    memset(z, 0, sizeof *z);
}

/* a whole archive of n entries in memory */
ZW_FN zw_buf zw_archive(const char *const *names, const unsigned char *const *data, const size_t *len, int n) {
    zw z;
    zw_buf out = {0};
    int i;
    memset(&z, 0, sizeof z);
    for (i = 0; i < n; ++i) {
        zw_entry(&z, &out, names[i], data[i], len[i]);
        zw_put(&out, data[i], len[i]);
    }
    zw_finish(&z, &out);
    return out;
}
#endif
