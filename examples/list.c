/* list: print the tensors of a checkpoint, one line each.

   Build:  cc -std=c99 -O2 -I. examples/list.c -o list -pthread
   Usage:  ./list PATH
           PATH is a .safetensors file, a folder of them, or a sharded
           checkpoint's *.index.json.

   Prints NAME<TAB>DTYPE<TAB>[SHAPE]<TAB>BYTES per tensor, in name order,
   then a total:
       model.norm.weight   F32   [64]   256
       10 tensors, 5984 bytes in 1 file(s)
   Exit status 1 when the checkpoint cannot be opened or is invalid. */
#define MODELLOAD_IMPLEMENTATION
#include "modelload.h"

#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
    mload_map_desc desc;
    mload_map *map;
    mload_error err;
    const char *path;
    uint64_t i, d;

    if (argc != 2) {
        fprintf(stderr, "usage: %s PATH (a .safetensors file, a folder or an *.index.json)\n", argv[0]);
        return 2;
    }
    path = argv[1];
    memset(&desc, 0, sizeof desc); /* every zero field means "the default" */
    desc.paths = &path;
    desc.path_count = 1;
    if (mload_map_open(&desc, &map, &err) != MLOAD_OK) {
        /* nothing to release: on failure the map is not created */
        fprintf(stderr, "list: %s: %s: %s\n", path, mload_result_string(err.code), err.message);
        return 1;
    }

    for (i = 0; i < mload_map_count(map); ++i) {
        const mload_tensor *t = mload_map_tensor(map, i);
        printf("%s\t%s\t[", t->name, mload_dtype_name(t->dtype));
        for (d = 0; d < t->rank; ++d) printf(d > 0 ? ",%llu" : "%llu", (unsigned long long)t->shape[d]);
        printf("]\t%llu\n", (unsigned long long)t->nbytes);
    }
    printf("%llu tensors, %llu bytes in %llu file(s)\n", (unsigned long long)mload_map_count(map),
           (unsigned long long)mload_map_data_size(map), (unsigned long long)mload_map_file_count(map));

    mload_map_close(map);
    return 0;
}
