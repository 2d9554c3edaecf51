/* stream_layers: run a model's layers through a smaller device under a hard byte budget (offload manager).

   Build:  cc -std=c99 -O2 -I. examples/stream_layers.c -o stream_layers -pthread
   Usage:  ./stream_layers CHECKPOINT BUDGET_BYTES [PASSES]
   One unit per "model.layers.N." prefix, on a simulated device (the host one or
   your own mload_device plug in alike). Each pass (default 2) acquires the layers
   in order, the next one prefetched (pass 1 teaches the order); prints counters. */
#define MODELLOAD_IMPLEMENTATION
#include "modelload.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    static uint32_t unit[1024];
    mload_map_desc md;
    mload_offload_desc od;
    mload_map *map = NULL;
    mload_offload *o = NULL;
    mload_device dev;
    mload_offload_stats st;
    mload_error err;
    uint64_t budget = argc > 2 ? strtoull(argv[2], NULL, 10) : 0, first;
    unsigned layers, l, pass, passes = argc > 3 ? (unsigned)strtoul(argv[3], NULL, 10) : 2u;
    int rc = 1;

    if (argc < 3 || argc > 4 || budget == 0) {
        fprintf(stderr, "usage: stream_layers CHECKPOINT BUDGET_BYTES [PASSES]\n");
        return 2;
    }
    memset(&dev, 0, sizeof dev); /* destroying a zeroed device does nothing */
    memset(&md, 0, sizeof md);
    md.paths = (const char *const *)(argv + 1);
    md.path_count = 1;
    memset(&od, 0, sizeof od);
    od.device_budget = budget; od.prefetch_depth = 1; /* a hard cap: temporaries and prefetches count too */
    if (mload_map_open(&md, &map, &err) != MLOAD_OK || mload_device_create_sim(budget, 0, &dev, &err) != MLOAD_OK)
        goto fail;
    od.map = map; od.device = dev;
    if (mload_offload_create(&od, &o, &err) != MLOAD_OK) goto fail;
    for (layers = 0; layers < sizeof unit / sizeof unit[0]; ++layers) { /* a unit per layer the map has */
        char name[32];
        const char *prefix = name;
        snprintf(name, sizeof name, "model.layers.%u.", layers);
        if (mload_map_find_prefix(map, prefix, &first) == 0) break;
        if (mload_offload_add_unit(o, name, &prefix, 1, NULL, &unit[layers], &err) != MLOAD_OK) goto fail;
    }
    if (layers == 0) { fprintf(stderr, "stream_layers: %s has no model.layers.N.* tensor\n", argv[1]); goto done; }
    for (pass = 0; pass < passes; ++pass)
        for (l = 0; l < layers; ++l) {
            const mload_unit_tensor *t; /* n tensors on the device, in the computation dtype */
            uint64_t n;
            if (mload_offload_acquire(o, unit[l], &t, &n, &err) != MLOAD_OK) goto fail;
            mload_offload_release(o, unit[l]); /* compute with t[i].data before this */
        }
    mload_offload_get_stats(o, &st);
    printf("%u layers x %u passes: budget=%llu peak_device_bytes=%llu hits=%llu misses=%llu prefetch_hits=%llu\n",
           layers, passes, (unsigned long long)st.device_budget, (unsigned long long)st.peak_device_bytes,
           (unsigned long long)st.hits, (unsigned long long)st.misses, (unsigned long long)st.prefetch_hits);
    rc = 0;
    goto done;
fail:
    fprintf(stderr, "stream_layers: %s: %s\n", mload_result_string(err.code), err.message);
done:
    mload_offload_destroy(o); /* NULL is ignored: safe on every path */
    mload_device_destroy(&dev);
    mload_map_close(map);
    return rc;
}
