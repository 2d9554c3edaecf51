/* Concurrent use of one map, run under ThreadSanitizer by `make test`:
   several threads read (with and without conversion, whole and ranges)
   while bulk loads with their own workers run. Prints "N passed, N failed". */
#define MODELLOAD_IMPLEMENTATION
#include "../modelload.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NT 16
#define NE 4096

static mload_map *g_map;
static float g_ref[NT][NE];
static int g_fail;
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;

static void fail(const char *what, int t) {
    pthread_mutex_lock(&g_mu);
    if (g_fail++ < 5) fprintf(stderr, "  FAIL %s (tensor %d)\n", what, t);
    pthread_mutex_unlock(&g_mu);
}

static void *reader(void *arg) {
    unsigned seed = (unsigned)(size_t)arg * 2654435761u + 1u;
    float buf[NE];
    uint16_t h[NE];
    int it;
    for (it = 0; it < 300; ++it) {
        int t;
        const mload_tensor *tt;
        mload_error e;
        uint64_t first, cnt;
        seed = seed * 1103515245u + 12345u;
        t = (int)((seed >> 8) % NT);
        tt = mload_map_tensor(g_map, (uint64_t)t);
        first = (seed >> 3) % NE;
        cnt = NE - first;
        switch (it % 3) {
        case 0:
            if (mload_map_read(g_map, tt, MLOAD_DTYPE_F32, buf, sizeof buf, &e) != MLOAD_OK || memcmp(buf, g_ref[t], sizeof buf))
                fail("read F32", t);
            break;
        case 1:
            if (mload_map_read_range(g_map, tt, first, cnt, MLOAD_DTYPE_F32, buf, sizeof buf, &e) != MLOAD_OK ||
                memcmp(buf, g_ref[t] + first, (size_t)cnt * 4))
                fail("range F32", t);
            break;
        default:
            if (mload_map_read(g_map, tt, MLOAD_DTYPE_INVALID, h, sizeof h, &e) != MLOAD_OK) fail("raw read", t);
            break;
        }
    }
    return NULL;
}

static void *bulk(void *arg) {
    static float dst[2][NT][NE];
    int which = (int)(size_t)arg, k;
    mload_load_item items[NT];
    mload_load_opts o;
    mload_error e;
    memset(&o, 0, sizeof o);
    o.threads = 3;
    o.chunk_bytes = 1024;
    for (k = 0; k < NT; ++k) {
        memset(&items[k], 0, sizeof items[k]);
        items[k].tensor = mload_map_tensor(g_map, (uint64_t)k);
        items[k].as = MLOAD_DTYPE_F32;
        items[k].dst = dst[which][k];
        items[k].dst_size = sizeof dst[which][k];
    }
    if (mload_map_load(g_map, items, NT, &o, &e) != MLOAD_OK || memcmp(dst[which], g_ref, sizeof g_ref)) fail("bulk", -1);
    return NULL;
}

int main(void) {
    char path[] = "/tmp/mload_threads_XXXXXX";
    uint16_t *data = (uint16_t *)malloc(sizeof(uint16_t) * NT * NE);
    mload_write_tensor w[NT];
    char names[NT][16];
    uint64_t shape[1] = {NE};
    mload_map_desc d;
    mload_error e;
    const char *p = path;
    pthread_t th[6];
    int k, i, fd = mkstemp(path), passed = 0;
    if (fd < 0 || !data) return 1;
    close(fd);
    memset(w, 0, sizeof w);
    for (k = 0; k < NT; ++k) {
        for (i = 0; i < NE; ++i) {
            uint32_t u;
            data[k * NE + i] = (uint16_t)(0x3F80 + (k * 31 + i) % 200);
            u = (uint32_t)data[k * NE + i] << 16;
            memcpy(&g_ref[k][i], &u, 4);
        }
        snprintf(names[k], sizeof names[k], "t%02d", k);
        w[k].name = names[k];
        w[k].dtype = MLOAD_DTYPE_BF16;
        w[k].rank = 1;
        w[k].shape = shape;
        w[k].data = data + k * NE;
    }
    if (mload_write(path, w, NT, NULL, &e) != MLOAD_OK) { fprintf(stderr, "write: %s\n", e.message); return 1; }
    memset(&d, 0, sizeof d);
    d.paths = &p;
    d.path_count = 1;
    if (mload_map_open(&d, &g_map, &e) != MLOAD_OK) { fprintf(stderr, "open: %s\n", e.message); return 1; }
    /* the offload manager's prefetch worker and the simulated device's copy
       thread, while other threads read the same map */
    {
        mload_device dev;
        mload_offload_desc od;
        mload_offload *o;
        uint32_t units[NT];
        mload_tiers tiers;
        int pass;
        mload_device_create_sim(1u << 30, 1u << 30, &dev, NULL);
        memset(&od, 0, sizeof od);
        memset(&tiers, 0, sizeof tiers);
        tiers.preparing.dtype = MLOAD_DTYPE_F8_E4M3;
        tiers.computation.dtype = MLOAD_DTYPE_F32;
        od.map = g_map;
        od.device = dev;
        od.device_budget = 3 * NE + 2 * NE * 4 + 4096; /* a few prepared F8 units and one F32 copy */
        od.prefetch_depth = 2;
        if (mload_offload_create(&od, &o, &e) != MLOAD_OK) { fprintf(stderr, "offload: %s\n", e.message); return 1; }
        for (k = 0; k < NT; ++k) {
            const char *nm = names[k];
            if (mload_offload_add_unit_list(o, names[k], &nm, 1, &tiers, &units[k], &e) != MLOAD_OK) { fprintf(stderr, "unit: %s\n", e.message); return 1; }
        }
        for (k = 0; k < 2; ++k) pthread_create(&th[k], NULL, reader, (void *)(size_t)(k + 10));
        for (pass = 0; pass < 4; ++pass)
            for (k = 0; k < NT; ++k) {
                const mload_unit_tensor *ut;
                uint64_t n;
                if (mload_offload_acquire(o, units[k], &ut, &n, &e) != MLOAD_OK) { fail("acquire", k); continue; }
                {
                    unsigned char q;
                    float want;
                    mload_cast(&q, MLOAD_DTYPE_F8_E4M3, &g_ref[k][7], MLOAD_DTYPE_F32, 1, 0, NULL); /* through the F8 prepared copy */
                    mload_cast(&want, MLOAD_DTYPE_F32, &q, MLOAD_DTYPE_F8_E4M3, 1, 0, NULL);
                    if (((const float *)ut[0].data)[7] != want) fail("offload value", k);
                }
                mload_offload_release(o, units[k]);
            }
        for (k = 0; k < 2; ++k) pthread_join(th[k], NULL);
        mload_offload_destroy(o);
        mload_device_destroy(&dev);
    }
    for (k = 0; k < 4; ++k) pthread_create(&th[k], NULL, reader, (void *)(size_t)k);
    pthread_create(&th[4], NULL, bulk, (void *)(size_t)0);
    pthread_create(&th[5], NULL, bulk, (void *)(size_t)1);
    for (k = 0; k < 6; ++k) pthread_join(th[k], NULL);
    mload_map_close(g_map);
    unlink(path);
    free(data);
    passed = g_fail ? 0 : 1;
    printf("%d passed, %d failed\n", passed, g_fail ? 1 : 0);
    return g_fail ? 1 : 0;
}
