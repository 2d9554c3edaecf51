/* mload_setup.h - set-up steps shared by the unit tests and the benchmarks:
   a map over one checkpoint image in memory, an offload manager from its
   usual settings. Header-only (static inline), C99; include it after
   modelload.h. */
#ifndef MLOAD_TEST_SETUP_H
#define MLOAD_TEST_SETUP_H
#include <string.h>

/* Opens a map over the image [data, data + size) with an optional
   converter; *m is the map, or NULL on failure. */
static inline mload_result map_open_memory(const void *data, size_t size, const mload_converter *conv, mload_map **m,
                                           mload_error *e) {
    mload_map_desc d;
    mload_source s;
    memset(&d, 0, sizeof d);
    mload_source_open_memory(data, size, NULL, &s, NULL);
    d.sources = &s;
    d.source_count = 1;
    d.converter = conv;
    return mload_map_open(&d, m, e);
}

/* Creates an offload manager over m on dev; *o is the manager, or NULL on
   failure. */
static inline mload_result offload_open(mload_map *m, mload_device dev, uint64_t budget, uint32_t policy, uint32_t depth,
                                        mload_offload **o, mload_error *e) {
    const mload_offload_desc d = {.map = m, .device = dev, .device_budget = budget, .policy = policy, .prefetch_depth = depth};
    return mload_offload_create(&d, o, e);
}

#endif
