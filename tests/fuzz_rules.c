/* Fuzz target for converters: each input is rules text applied to a fixed
   small checkpoint (several ranks, dtypes and layer indexes); an accepted
   converted view is read whole, by ranges and by a bulk load, and checked
   for consistency.

   libFuzzer:  clang -g -O1 -fsanitize=fuzzer,address,undefined -DMLOAD_LIBFUZZER \
                   -I. tests/fuzz_rules.c -o build/fuzz_rules -pthread
   replay:     cc -g -I. tests/fuzz_rules.c -o build/fuzz_rules_replay -pthread
               build/fuzz_rules_replay FILE_OR_DIR... */
#define MODELLOAD_IMPLEMENTATION
#include "../modelload.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static unsigned char *g_ckpt;
static size_t g_size;

static void build(void) {
    static const char *hdr =
        "{\"model.layers.0.q\":{\"dtype\":\"F32\",\"shape\":[4,3],\"data_offsets\":[0,48]},"
        "\"model.layers.0.k\":{\"dtype\":\"F32\",\"shape\":[4,3],\"data_offsets\":[48,96]},"
        "\"model.layers.1.q\":{\"dtype\":\"BF16\",\"shape\":[2,3],\"data_offsets\":[96,108]},"
        "\"model.layers.1.k\":{\"dtype\":\"BF16\",\"shape\":[2,3],\"data_offsets\":[108,120]},"
        "\"model.embed\":{\"dtype\":\"F16\",\"shape\":[6,2,1],\"data_offsets\":[120,144]},"
        "\"model.norm\":{\"dtype\":\"F8_E4M3\",\"shape\":[8],\"data_offsets\":[144,152]},"
        "\"model.ids\":{\"dtype\":\"I32\",\"shape\":[],\"data_offsets\":[152,156]},"
        "\"model.f4\":{\"dtype\":\"F4\",\"shape\":[2,4],\"data_offsets\":[156,160]}}";
    size_t n = strlen(hdr), i;
    g_size = 8 + n + 160;
    g_ckpt = (unsigned char *)malloc(g_size);
    for (i = 0; i < 8; ++i) g_ckpt[i] = (unsigned char)((uint64_t)n >> (8 * i));
    memcpy(g_ckpt + 8, hdr, n);
    for (i = 0; i < 160; ++i) g_ckpt[8 + n + i] = (unsigned char)(i * 37u + 11u) & 0x3F; /* small values in every dtype */
}

static void check(int ok, const char *what) {
    if (!ok) {
        fprintf(stderr, "invariant violated: %s\n", what);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    mload_rules *rules = NULL;
    mload_converter conv;
    mload_map_desc d;
    mload_source src;
    mload_map *m = NULL;
    mload_error e;
    mload_result r;
    uint64_t i;
    if (!g_ckpt) build();
    if (size > 4096) return 0;
    r = mload_rules_create((const char *)data, size, NULL, &rules, &e);
    if (r != MLOAD_OK) {
        check(rules == NULL && e.code == r, "failed parse");
        return 0;
    }
    memset(&conv, 0, sizeof conv);
    conv.rules = mload_rules_list(rules, &conv.rule_count);
    memset(&d, 0, sizeof d);
    mload_source_open_memory(g_ckpt, g_size, NULL, &src, NULL);
    d.sources = &src;
    d.source_count = 1;
    d.converter = &conv;
    r = mload_map_open(&d, &m, &e);
    mload_rules_destroy(rules);
    if (r != MLOAD_OK) {
        check(m == NULL && e.code == r, "failed open");
        return 0;
    }
    for (i = 0; i < mload_map_count(m); ++i) {
        const mload_tensor *t = mload_map_tensor(m, i);
        unsigned char whole[4096], part[4096];
        uint64_t eb = mload_dtype_bits(t->dtype);
        check(mload_map_find_n(m, t->name, t->name_len) == t, "find");
        if (t->nbytes > sizeof whole) continue;
        check(mload_map_read(m, t, MLOAD_DTYPE_INVALID, whole, sizeof whole, &e) == MLOAD_OK, "read");
        if (eb % 8 == 0 && t->numel > 1 && mload_map_read_range(m, t, 1, t->numel - 1, MLOAD_DTYPE_INVALID, part, sizeof part, &e) == MLOAD_OK)
            check(memcmp(part, whole + eb / 8, (size_t)(t->nbytes - eb / 8)) == 0, "range equals the whole read");
        if (mload_dtype_kind(t->dtype) == MLOAD_KIND_FLOAT && eb % 8 == 0 && t->numel * 8 <= sizeof part)
            (void)mload_map_read(m, t, MLOAD_DTYPE_F64, part, sizeof part, &e);
    }
    {
        char fp[33];
        check(mload_map_fingerprint(m, fp, &e) == MLOAD_OK, "fingerprint");
    }
    mload_map_close(m);
    return 0;
}

#ifndef MLOAD_LIBFUZZER
#include "fuzz_replay.h"
static void fuzz_done(void) { free(g_ckpt); }
#endif
