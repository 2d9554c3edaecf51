/* Fuzz target for the safetensors parser.

   libFuzzer:  clang -g -O1 -fsanitize=fuzzer,address,undefined -DMLOAD_LIBFUZZER \
                   -I. tests/fuzz_parse.c -o build/fuzz_parse
   replay:     cc -g -I. tests/fuzz_parse.c -o build/fuzz_replay
               build/fuzz_replay FILE_OR_DIR...      (every file is one input)

   Each input is parsed twice: as a whole file, and as a bare header (the
   bytes get an 8-byte length prefix and no data) so the JSON reader is
   reached without the fuzzer having to learn the length prefix. Invariants
   of an accepted file are checked and abort() when violated. */
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

static void run_one(const uint8_t *data, size_t size) {
    mload_file_desc d;
    mload_file *f = NULL;
    mload_error e;
    mload_result r;
    uint64_t i, end = 0;
    memset(&d, 0, sizeof d);
    d.data = size ? (const void *)data : (const void *)"";
    d.data_size = size;
    r = mload_file_open(&d, &f, &e);
    if (r != MLOAD_OK) {
        check(f == NULL, "failed open returns NULL");
        check(e.code == r, "error detail carries the code");
        check(memchr(e.message, '\0', sizeof e.message) != NULL, "message terminated");
        check(memchr(e.tensor, '\0', sizeof e.tensor) != NULL, "tensor terminated");
        return;
    }
    check(mload_file_data_offset(f) + 0 <= size, "data offset inside the file");
    end = mload_file_data_offset(f);
    for (i = 0; i < mload_file_count(f); ++i) {
        const mload_tensor *t = mload_file_tensor(f, i);
        uint64_t numel = 1;
        uint32_t k;
        unsigned char buf[64];
        check(t->offset == end, "tensors contiguous in file order");
        check(t->offset + t->nbytes <= size, "tensor inside the file");
        end = t->offset + t->nbytes;
        for (k = 0; k < t->rank; ++k) numel *= t->shape[k];
        check(numel == t->numel, "numel");
        check(t->nbytes * 8 == t->numel * mload_dtype_bits(t->dtype), "nbytes");
        check(mload_file_find_n(f, t->name, t->name_len) == t, "find returns the tensor");
        check(t->name[t->name_len] == '\0', "name terminated");
        if (t->nbytes <= sizeof buf) {
            check(mload_file_read(f, t, buf, sizeof buf, &e) == MLOAD_OK, "read");
            check(t->nbytes == 0 || memcmp(buf, data + t->offset, (size_t)t->nbytes) == 0, "read bytes");
        } else {
            check(mload_file_read_bytes(f, t, t->nbytes - 8, 8, buf, &e) == MLOAD_OK, "read tail");
            check(memcmp(buf, data + t->offset + t->nbytes - 8, 8) == 0, "tail bytes");
        }
    }
    check(end == size, "tensors fill the data buffer");
    for (i = 0; i < mload_file_metadata_count(f); ++i) {
        const mload_kv *kv = mload_file_metadata(f, i);
        check(kv->key[kv->key_len] == '\0' && kv->value[kv->value_len] == '\0', "kv terminated");
        if (!memchr(kv->key, '\0', kv->key_len))
            check(mload_file_metadata_find(f, kv->key) == kv, "metadata find");
    }
    mload_file_close(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint8_t *w;
    size_t k;
    run_one(data, size);
    if (size > 1u << 20) return 0;
    w = (uint8_t *)malloc(size + 8);
    if (!w) return 0;
    for (k = 0; k < 8; ++k) w[k] = (uint8_t)((uint64_t)size >> (8 * k));
    if (size) memcpy(w + 8, data, size);
    run_one(w, size + 8);
    free(w);
    return 0;
}

#ifndef MLOAD_LIBFUZZER
#include "fuzz_replay.h"
static void fuzz_done(void) {}
#endif
