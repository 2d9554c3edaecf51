/* Fuzz target for sharded-checkpoint indexes (*.index.json) through
   mload_map_open: each input is written as an index next to two small valid
   shards (a.safetensors: tensors "x" and "y"; b.safetensors: "z").

   libFuzzer:  clang -g -O1 -fsanitize=fuzzer,address,undefined -DMLOAD_LIBFUZZER \
                   -I. tests/fuzz_index.c -o build/fuzz_index -pthread
   replay:     cc -g -I. tests/fuzz_index.c -o build/fuzz_index_replay -pthread
               build/fuzz_index_replay FILE_OR_DIR... */
#define MODELLOAD_IMPLEMENTATION
#include "../modelload.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char g_dir[64];

static void put(const char *name, const void *data, size_t n) {
    char p[128];
    FILE *fp;
    snprintf(p, sizeof p, "%s/%s", g_dir, name);
    fp = fopen(p, "wb");
    if (!fp) abort();
    if (n && fwrite(data, 1, n, fp) != n) abort();
    fclose(fp);
}

static void put_st(const char *name, const char *hdr, size_t data_len) {
    unsigned char buf[512];
    size_t n = strlen(hdr), i;
    for (i = 0; i < 8; ++i) buf[i] = (unsigned char)((uint64_t)n >> (8 * i));
    memcpy(buf + 8, hdr, n);
    memset(buf + 8 + n, 0, data_len);
    put(name, buf, 8 + n + data_len);
}

static void setup(void) {
    if (g_dir[0]) return;
    snprintf(g_dir, sizeof g_dir, "/tmp/mload_fuzz_index_XXXXXX");
    if (!mkdtemp(g_dir)) abort();
    put_st("a.safetensors", "{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                            "\"y\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[8,9]}}", 9);
    put_st("b.safetensors", "{\"z\":{\"dtype\":\"I16\",\"shape\":[3],\"data_offsets\":[0,6]}}", 6);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char p[128];
    const char *pp = p;
    mload_map_desc d;
    mload_map *m = NULL;
    mload_error e;
    mload_result r;
    setup();
    put("model.safetensors.index.json", data, size);
    snprintf(p, sizeof p, "%s/model.safetensors.index.json", g_dir);
    memset(&d, 0, sizeof d);
    d.paths = &pp;
    d.path_count = 1;
    r = mload_map_open(&d, &m, &e);
    if (r == MLOAD_OK) {
        uint64_t i;
        char fp[33];
        /* an accepted index maps every tensor of the shards it names: a
           subset of {x, y} (a.safetensors) and {z} (b.safetensors), whole */
        if (mload_map_count(m) != 1 && mload_map_count(m) != 2 && mload_map_count(m) != 3) abort();
        if (!((mload_map_find(m, "x") != NULL) == (mload_map_find(m, "y") != NULL))) abort();
        for (i = 0; i < mload_map_count(m); ++i)
            if (mload_map_find_n(m, mload_map_tensor(m, i)->name, mload_map_tensor(m, i)->name_len) != mload_map_tensor(m, i)) abort();
        if (mload_map_fingerprint(m, fp, &e) != MLOAD_OK) abort();
        mload_map_close(m);
    } else if (m != NULL || e.code != r) {
        abort();
    }
    return 0;
}

#ifndef MLOAD_LIBFUZZER
#include "fuzz_replay.h"
static void fuzz_done(void) {
    char cmd[128];
    if (!g_dir[0]) return;
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", g_dir);
}
#endif
