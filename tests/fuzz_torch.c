/* Fuzz target for PyTorch checkpoints: an input that starts with "PK" is a
   whole file; any other input is a pickle (data.pkl) placed in an archive
   with four storages ("0".."3", 64 bytes each) so that the fuzzer spends its
   time in the pickle machine. A file that opens is read whole, by ranges
   and through a map, and checked for consistency.

   libFuzzer:  clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -DMLOAD_LIBFUZZER \
                   -I. tests/fuzz_torch.c -o build/fuzz_torch -pthread
   replay:     cc -g -I. tests/fuzz_torch.c -o build/fuzz_torch_replay -pthread
               build/fuzz_torch_replay FILE_OR_DIR... */
#define MODELLOAD_IMPLEMENTATION
#include "../modelload.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "zip_write.h"

static void check(int ok, const char *what) {
    if (!ok) {
        fprintf(stderr, "invariant violated: %s\n", what);
        abort();
    }
}

/* the archive around a pickle: f/data.pkl and f/data/0..3 */
static zw_buf wrap(const uint8_t *pkl, size_t n) {
    static const unsigned char storage[64] = {0x00, 0x3F, 0x80, 0x7F, 0xFF, 0x01, 0x02, 0x03};
    const char *names[5] = {"f/data.pkl", "f/data/0", "f/data/1", "f/data/2", "f/data/3"};
    const unsigned char *data[5] = {NULL, storage, storage, storage, storage};
    size_t len[5] = {0, sizeof storage, sizeof storage, sizeof storage, sizeof storage};
    data[0] = pkl;
    len[0] = n;
    return zw_archive(names, data, len, 5);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    zw_buf z = {0};
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
