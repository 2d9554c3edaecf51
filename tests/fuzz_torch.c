/* Fuzz target for PyTorch checkpoints: an input that starts with "PK" is a
   whole file; any other input is a pickle (data.pkl) placed in an archive
   with four storages ("0".."3", 64 bytes each) so that the fuzzer spends its
   time in the pickle machine. A file that opens is read whole, by ranges
   and through a map, and checked for consistency.

   libFuzzer:  clang -g -O1 -fsanitize=fuzzer,address,undefined -DMLOAD_LIBFUZZER \
                   -I. tests/fuzz_torch.c -o build/fuzz_torch -pthread
   replay:     cc -g -I. tests/fuzz_torch.c -o build/fuzz_torch_replay -pthread
               build/fuzz_torch_replay FILE_OR_DIR... */
#define MODELLOAD_IMPLEMENTATION
#include "../modelload.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void check(int ok, const char *what) {
    if (!ok) {
        fprintf(stderr, "invariant violated: %s\n", what);
        abort();
    }
}

typedef struct zbuf { unsigned char *p; size_t n, cap; } zbuf;

static void zput(zbuf *b, const void *s, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = (unsigned char *)realloc(b->p, b->cap);
        check(b->p != NULL, "realloc");
    }
    if (n) memcpy(b->p + b->n, s, n);
    b->n += n;
}
static void zle(zbuf *b, uint64_t v, int n) {
    unsigned char x[8];
    int i;
    for (i = 0; i < n; ++i) x[i] = (unsigned char)(v >> (8 * i));
    zput(b, x, (size_t)n);
}
static uint32_t zcrc(const unsigned char *p, size_t n) {
    uint32_t c = 0xFFFFFFFFu;
    unsigned k;
    while (n--) {
        c ^= *p++;
        for (k = 0; k < 8; ++k) c = (c & 1u) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    }
    return c ^ 0xFFFFFFFFu;
}

/* the archive around a pickle: f/data.pkl and f/data/0..3 */
static zbuf wrap(const uint8_t *pkl, size_t n) {
    static const unsigned char storage[64] = {0x00, 0x3F, 0x80, 0x7F, 0xFF, 0x01, 0x02, 0x03};
    const char *names[5] = {"f/data.pkl", "f/data/0", "f/data/1", "f/data/2", "f/data/3"};
    zbuf z = {0}, cd = {0};
    size_t i, cd_at;
    for (i = 0; i < 5; ++i) {
        const unsigned char *d = i ? storage : pkl;
        size_t len = i ? sizeof storage : n, nl = strlen(names[i]), at = z.n;
        uint32_t crc = zcrc(d, len);
        zle(&z, 0x04034b50u, 4); zle(&z, 20, 2); zle(&z, 0, 4); zle(&z, 0, 4);
        zle(&z, crc, 4); zle(&z, len, 4); zle(&z, len, 4); zle(&z, nl, 2); zle(&z, 0, 2);
        zput(&z, names[i], nl);
        zput(&z, d, len);
        zle(&cd, 0x02014b50u, 4); zle(&cd, 20, 2); zle(&cd, 20, 2); zle(&cd, 0, 4); zle(&cd, 0, 4);
        zle(&cd, crc, 4); zle(&cd, len, 4); zle(&cd, len, 4); zle(&cd, nl, 2); zle(&cd, 0, 4); zle(&cd, 0, 4);
        zle(&cd, 0, 4); zle(&cd, at, 4);
        zput(&cd, names[i], nl);
    }
    cd_at = z.n;
    zput(&z, cd.p, cd.n);
    zle(&z, 0x06054b50u, 4); zle(&z, 0, 4); zle(&z, 5, 2); zle(&z, 5, 2); zle(&z, cd.n, 4); zle(&z, cd_at, 4); zle(&z, 0, 2);
    free(cd.p);
    return z;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    zbuf z = {0};
    const void *bytes = data;
    size_t n = size;
    mload_map_desc d;
    mload_source src;
    mload_map *m = NULL;
    mload_error e;
    mload_result r;
    uint64_t i;
    static unsigned char whole[1 << 16], part[1 << 16];
    if (size > (1u << 20)) return 0;
    if (size < 2 || data[0] != 'P' || data[1] != 'K') {
        z = wrap(data, size);
        bytes = z.p;
        n = z.n;
    }
    memset(&e, 0, sizeof e);
    check(mload_source_open_memory(bytes, n, NULL, &src, &e) == MLOAD_OK, "memory source");
    memset(&d, 0, sizeof d);
    d.sources = &src;
    d.source_count = 1;
    r = mload_map_open(&d, &m, &e);
    if (r != MLOAD_OK) {
        check(m == NULL && e.code == r && e.message[0] != '\0', "failed open");
        free(z.p);
        return 0;
    }
    check(mload_file_format(mload_map_file(m, 0)) == MLOAD_FORMAT_PYTORCH, "format");
    for (i = 0; i < mload_map_count(m); ++i) {
        const mload_tensor *t = mload_map_tensor(m, i);
        const mload_file *f = mload_map_file(m, 0);
        const mload_tensor *ft = mload_file_find_n(f, t->name, t->name_len);
        uint64_t eb = mload_dtype_bits(t->dtype) / 8u;
        check(ft != NULL && eb > 0 && t->nbytes == t->numel * eb, "table");
        check(mload_map_is_direct(m, t) == (mload_file_strides(f, ft) == NULL), "direct iff row-major");
        if (t->nbytes > sizeof whole) continue;
        check(mload_map_read(m, t, MLOAD_DTYPE_INVALID, whole, sizeof whole, &e) == MLOAD_OK, "read");
        check(mload_file_read(f, ft, part, sizeof part, &e) == MLOAD_OK && memcmp(part, whole, (size_t)t->nbytes) == 0,
              "file read equals map read");
        if (t->numel > 1) {
            check(mload_map_read_range(m, t, 1, t->numel - 1, MLOAD_DTYPE_INVALID, part, sizeof part, &e) == MLOAD_OK, "range");
            check(memcmp(part, whole + eb, (size_t)(t->nbytes - eb)) == 0, "range equals the whole read");
        }
        if (mload_dtype_kind(t->dtype) == MLOAD_KIND_FLOAT && t->numel * 8 <= sizeof part)
            check(mload_map_read(m, t, MLOAD_DTYPE_F64, part, sizeof part, &e) == MLOAD_OK, "cast read");
    }
    mload_map_close(m);
    free(z.p);
    return 0;
}

#ifndef MLOAD_LIBFUZZER
#include "fuzz_replay.h"
static void fuzz_done(void) {}
#endif
