/* read_tensor: read one tensor as F32, whatever its stored dtype, and print
   its first values and their sum.

   Build:  cc -std=c99 -O2 -I. examples/read_tensor.c -o read_tensor -pthread
   Usage:  ./read_tensor PATH NAME [COUNT]
           PATH is a file, a folder or an *.index.json; COUNT values are
           printed (default 4).

   Output:
       model.norm.weight: F32 [64], 64 values
       first: 0.5 -1.25 3 0
       sum: 12.75
   Exit status 1 when the checkpoint cannot be opened, NAME is not in it or
   its dtype does not convert to F32 (C64, for one). */
#define MODELLOAD_IMPLEMENTATION
#include "modelload.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    const char *path = argc > 2 ? argv[1] : NULL;
    unsigned long show = argc > 3 ? strtoul(argv[3], NULL, 10) : 4;
    mload_map_desc md;
    mload_map *m = NULL;
    const mload_tensor *t;
    mload_error e;
    void *buf = NULL;
    uint64_t size = 0, i;
    double sum = 0;
    int status = 1;

    if (!path) {
        fprintf(stderr, "usage: read_tensor PATH NAME [COUNT]\n");
        return 2;
    }
    memset(&md, 0, sizeof md);
    md.paths = &path;
    md.path_count = 1;
    if (mload_map_open(&md, &m, &e) != MLOAD_OK) {
        fprintf(stderr, "read_tensor: opening %s failed: %s (%s)\n", path, e.message, mload_result_string(e.code));
        return 1;
    }
    t = mload_map_find(m, argv[2]);
    if (t == NULL) {
        fprintf(stderr, "read_tensor: %s has no tensor named \"%s\"\n", path, argv[2]);
    } else if (mload_map_read_alloc(m, t, MLOAD_DTYPE_F32, &buf, &size, &e) != MLOAD_OK) {
        /* BF16, F16, F8, integers... are converted; the library allocated buf */
        fprintf(stderr, "read_tensor: reading %s as F32 failed: %s (%s)\n", t->name, e.message,
                mload_result_string(e.code));
    } else {
        const float *v = (const float *)buf;
        printf("%s: %s [", t->name, mload_dtype_name(t->dtype));
        for (i = 0; i < t->rank; ++i) printf("%s%llu", i ? "," : "", (unsigned long long)t->shape[i]);
        printf("], %llu values\nfirst:", (unsigned long long)t->numel);
        for (i = 0; i < t->numel; ++i) {
            if (i < show) printf(" %.9g", (double)v[i]);
            sum += (double)v[i];
        }
        printf("\nsum: %.9g\n", sum);
        status = 0;
    }
    mload_map_free_buffer(m, buf, size); /* NULL is ignored */
    mload_map_close(m);
    return status;
}
