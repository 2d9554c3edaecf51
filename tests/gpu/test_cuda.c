/* test_cuda.c - the CUDA back end on a GPU (tests/gpu/run.sh builds and
   runs it; it needs a GPU and prints "N passed, N failed" then the B8
   table):
   1. conversions on the device, every pair among F32, F16, BF16, F8_E4M3
      and F8_E5M2 in both F8 modes, on every 8/16-bit code and on F32
      patterns, bit-identical to mload_cast on the host;
   2. mload_map_load_device of a generated checkpoint (as stored and cast,
      ranges, small chunks, 1 and 4 threads) against mload_map_read;
   3. the offload manager on the GPU under a budget of two units with
      prefetch, the caller's stream given: each acquired weight is copied
      on that stream (a stand-in for a kernel that reads it) after the
      manager reuses memory, and every copy holds the unit's values;
   4. B8: the staged load into device memory against one cudaMemcpy of the
      same bytes from page-locked memory; a streamed pass (each unit
      acquired, "computed" by a device-to-device copy) against
      max(compute, transfer) of the same pass. */
#define MODELLOAD_IMPLEMENTATION
#include "modelload.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int g_pass, g_fail;
#define EXPECT(c, ...) do { if (c) g_pass++; else { g_fail++; printf("FAIL "); printf(__VA_ARGS__); printf("\n"); } } while (0)

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}
static uint64_t g_rng = 0x9E3779B97F4A7C15ull;
static uint32_t rnd32(void) { g_rng ^= g_rng << 13; g_rng ^= g_rng >> 7; g_rng ^= g_rng << 17; return (uint32_t)(g_rng >> 32); }

static const mload_dtype kt[] = {MLOAD_DTYPE_F32, MLOAD_DTYPE_F16, MLOAD_DTYPE_BF16, MLOAD_DTYPE_F8_E4M3, MLOAD_DTYPE_F8_E5M2};

/* n elements of src (dtype st) through the device to every dtype, both modes */
static void check_convert(mload_device *dev, const unsigned char *src, mload_dtype st, size_t n) {
    size_t sb = mload_dtype_bits(st) / 8, k;
    unsigned char *ref = malloc(n * 4), *got = malloc(n * 4);
    void *ds = NULL, *dd = NULL;
    uint64_t f = 0;
    unsigned mode;
    EXPECT(dev->alloc(dev->user, n * sb, 64, &ds) == MLOAD_OK && dev->alloc(dev->user, n * 4, 64, &dd) == MLOAD_OK, "alloc");
    EXPECT(dev->upload(dev->user, ds, src, n * sb, &f) == MLOAD_OK && dev->wait(dev->user, f) == MLOAD_OK, "upload");
    for (k = 0; k < sizeof kt / sizeof kt[0]; ++k)
        for (mode = 0; mode < 2; ++mode) {
            size_t db = mload_dtype_bits(kt[k]) / 8;
            mload_cast(ref, kt[k], src, st, n, (mload_f8_overflow)mode, NULL);
            EXPECT(dev->convert_async(dev->user, dd, kt[k], ds, st, n, mode, &f) == MLOAD_OK, "convert_async %s->%s", mload_dtype_name(st), mload_dtype_name(kt[k]));
            EXPECT(dev->download(dev->user, got, dd, n * db, &f) == MLOAD_OK && dev->wait(dev->user, f) == MLOAD_OK, "download");
            EXPECT(memcmp(ref, got, n * db) == 0, "device %s -> %s (%s) bit-identical to the host", mload_dtype_name(st), mload_dtype_name(kt[k]),
                   mode ? "nonsat" : "sat");
        }
    dev->free(dev->user, ds, n * sb);
    dev->free(dev->user, dd, n * 4);
    free(ref);
    free(got);
}

/* a checkpoint in memory: L layers of F32 [rows, cols] weights with random values */
#define L 16
static unsigned char *make_model(size_t rows, size_t cols, size_t *size) {
    size_t per = rows * cols * 4, hcap = 64 * L + 64, hl = 0, i, j;
    char *h = malloc(hcap * 2);
    unsigned char *img;
    uint64_t hlen;
    hl += (size_t)sprintf(h + hl, "{");
    for (i = 0; i < L; ++i)
        hl += (size_t)sprintf(h + hl, "%s\"l.%zu.w\":{\"dtype\":\"F32\",\"shape\":[%zu,%zu],\"data_offsets\":[%zu,%zu]}", i ? "," : "", i, rows, cols,
                              i * per, (i + 1) * per);
    hl += (size_t)sprintf(h + hl, "}");
    while (hl % 8) h[hl++] = ' ';
    *size = 8 + hl + per * L;
    img = malloc(*size);
    hlen = hl;
    memcpy(img, &hlen, 8);
    memcpy(img + 8, h, hl);
    for (j = 0; j < per * L / 4; ++j) {
        float v = (float)((int32_t)rnd32() % 100000) / 997.0f;
        memcpy(img + 8 + hl + 4 * j, &v, 4);
    }
    free(h);
    return img;
}

int main(void) {
    mload_device dev;
    mload_error e;
    size_t i, msize;
    unsigned char *img, *buf;
    mload_map *m = NULL;
    mload_map_desc md;
    mload_source src;
    double t_load = 0, t_copy = 0, t_pass = 0, t_comp = 0, t_xfer = 0;
    uint64_t total = 0;
    if (mload_device_create_cuda(0, &dev, &e) != MLOAD_OK) { printf("no CUDA device: %s\n0 passed, 1 failed\n", e.message); return 1; }
    printf("CUDA device 0; conversion kernel %s\n", dev.convert_async ? "loaded" : "NOT loaded");
    EXPECT(dev.convert_async != NULL, "the PTX kernel loads");

    /* 1. conversions */
    if (dev.convert_async) {
        size_t n = 1u << 20;
        buf = malloc(n * 4);
        for (i = 0; i < 65536; ++i) { buf[2 * i] = (unsigned char)i; buf[2 * i + 1] = (unsigned char)(i >> 8); }
        check_convert(&dev, buf, MLOAD_DTYPE_F16, 65536);
        check_convert(&dev, buf, MLOAD_DTYPE_BF16, 65536);
        for (i = 0; i < 256; ++i) buf[i] = (unsigned char)i;
        check_convert(&dev, buf, MLOAD_DTYPE_F8_E4M3, 256);
        check_convert(&dev, buf, MLOAD_DTYPE_F8_E5M2, 256);
        for (i = 0; i < n; ++i) { uint32_t x = rnd32(); memcpy(buf + 4 * i, &x, 4); }
        check_convert(&dev, buf, MLOAD_DTYPE_F32, n);
        free(buf);
    }

    /* 2. loads into device memory */
    img = make_model(1024, 4096, &msize); /* 16 x 16 MiB */
    memset(&md, 0, sizeof md);
    mload_source_open_memory(img, msize, NULL, &src, NULL);
    md.sources = &src;
    md.source_count = 1;
    EXPECT(mload_map_open(&md, &m, &e) == MLOAD_OK, "map");
    if (m) {
        mload_load_item it[L];
        int threads;
        static unsigned char want[16u << 20], got[16u << 20];
        for (threads = 1; threads <= 4; threads += 3) {
            mload_load_opts o;
            memset(it, 0, sizeof it);
            for (i = 0; i < L; ++i) {
                it[i].tensor = mload_map_tensor(m, i);
                it[i].as = i % 3 == 1 ? MLOAD_DTYPE_BF16 : i % 3 == 2 ? MLOAD_DTYPE_F8_E4M3 : MLOAD_DTYPE_INVALID;
                if (i % 4 == 3) { it[i].first = 17; it[i].count = it[i].tensor->numel - 100; }
                it[i].dst_size = (it[i].count ? it[i].count : it[i].tensor->numel) * mload_dtype_bits(it[i].as ? it[i].as : MLOAD_DTYPE_F32) / 8;
                dev.alloc(dev.user, it[i].dst_size, 64, &it[i].dst);
            }
            memset(&o, 0, sizeof o);
            o.threads = (uint32_t)threads;
            o.chunk_bytes = threads == 1 ? 1u << 20 : 0;
            EXPECT(mload_map_load_device(m, it, L, &dev, &o, &e) == MLOAD_OK, "load_device: %s", e.message);
            for (i = 0; i < L; ++i) {
                uint64_t f = 0, cnt = it[i].count ? it[i].count : it[i].tensor->numel;
                mload_map_read_range(m, it[i].tensor, it[i].first, cnt, it[i].as, want, sizeof want, &e);
                dev.download(dev.user, got, it[i].dst, it[i].dst_size, &f);
                dev.wait(dev.user, f);
                EXPECT(memcmp(want, got, it[i].dst_size) == 0, "device load of %s (threads %d)", it[i].tensor->name, threads);
                dev.free(dev.user, it[i].dst, it[i].dst_size);
            }
        }
        /* B8 (a): staged load of the whole model vs one pinned cudaMemcpy of the same bytes */
        {
            void *pinned = NULL, *dbig = NULL;
            size_t bytes = msize - 8 - (size_t)mload_file_header_size(mload_map_file(m, 0));
            int rep;
            cudaMallocHost(&pinned, bytes);
            memcpy(pinned, img + msize - bytes, bytes);
            cudaMalloc(&dbig, bytes);
            for (rep = 0; rep < 3; ++rep) {
                double t0 = now_ms(), t1, t2;
                mload_load_item all[L];
                memset(all, 0, sizeof all);
                for (i = 0; i < L; ++i) {
                    all[i].tensor = mload_map_tensor(m, i);
                    all[i].dst = (unsigned char *)dbig + (all[i].tensor->offset - (8 + mload_file_header_size(mload_map_file(m, 0))));
                    all[i].dst_size = all[i].tensor->nbytes;
                }
                mload_map_load_device(m, all, L, &dev, NULL, &e);
                t1 = now_ms();
                cudaMemcpy(dbig, pinned, bytes, cudaMemcpyHostToDevice);
                t2 = now_ms();
                if (rep) { t_load += t1 - t0; t_copy += t2 - t1; }
            }
            total = bytes;
            cudaFree(dbig);
            cudaFreeHost(pinned);
        }
    }

    /* 3 + B8 (b): the manager on the GPU, a budget of two units, prefetch 1, the caller's stream */
    if (m) {
        cudaStream_t s;
        mload_offload_desc od;
        mload_offload *o = NULL;
        uint32_t units[L];
        void *scratch = NULL;
        static unsigned char want[16u << 20], got[16u << 20];
        int pass;
        cudaStreamCreate(&s);
        cudaMalloc(&scratch, 16u << 20);
        memset(&od, 0, sizeof od);
        od.map = m;
        od.device = dev;
        od.device_budget = (uint64_t)3 << 24; /* two prepared copies and a prefetch in flight */
        od.prefetch_depth = 1;
        od.stream = s;
        EXPECT(mload_offload_create(&od, &o, &e) == MLOAD_OK, "offload: %s", e.message);
        for (i = 0; o && i < L; ++i) {
            char pre[16];
            const char *p = pre;
            snprintf(pre, sizeof pre, "l.%zu.", i);
            mload_offload_add_unit(o, pre, &p, 1, NULL, &units[i], &e);
        }
        for (pass = 0; o && pass < 3; ++pass) {
            double t0 = now_ms();
            for (i = 0; i < L; ++i) {
                const mload_unit_tensor *ut;
                uint64_t n;
                EXPECT(mload_offload_acquire(o, units[i], &ut, &n, &e) == MLOAD_OK, "acquire: %s", e.message);
                if (!ut) continue;
                /* "compute": a copy of the weight on the caller's stream, then its check */
                cudaMemcpyAsync(scratch, ut[0].data, (size_t)ut[0].nbytes, cudaMemcpyDeviceToDevice, s);
                if (pass == 0) {
                    cudaMemcpyAsync(got, scratch, (size_t)ut[0].nbytes, cudaMemcpyDeviceToHost, s);
                    cudaStreamSynchronize(s);
                    mload_map_read(m, ut[0].tensor, MLOAD_DTYPE_INVALID, want, sizeof want, &e);
                    EXPECT(memcmp(want, got, (size_t)ut[0].nbytes) == 0, "unit %zu read intact on the caller's stream", i);
                }
                mload_offload_release(o, units[i]);
            }
            cudaStreamSynchronize(s);
            if (pass == 2) t_pass = now_ms() - t0;
        }
        /* the same pass's parts alone: compute (the copies) and transfer (uploads of every unit) */
        {
            double t0 = now_ms(), t1;
            for (i = 0; i < L; ++i) cudaMemcpyAsync(scratch, scratch, 16u << 20, cudaMemcpyDeviceToDevice, s);
            cudaStreamSynchronize(s);
            t1 = now_ms();
            t_comp = t1 - t0;
            for (i = 0; i < L; ++i) {
                uint64_t f = 0;
                dev.upload(dev.user, scratch, img + 8 + (msize - 8 - (size_t)L * (16u << 20)) + i * (16u << 20), 16u << 20, &f);
                dev.wait(dev.user, f);
            }
            t_xfer = now_ms() - t1;
        }
        mload_offload_destroy(o);
        cudaFree(scratch);
        cudaStreamDestroy(s);
    }
    mload_map_close(m);
    free(img);
    mload_device_destroy(&dev);
    printf("%d passed, %d failed\n", g_pass, g_fail);
    printf("\nB8 (GPU)\n");
    printf("  staged load of %.0f MiB into device memory: %.2f ms; one pinned cudaMemcpy of the same bytes: %.2f ms; ratio %.2fx (target >= 0.9x)\n",
           (double)total / 1048576.0, t_load / 2, t_copy / 2, t_load > 0 ? t_copy / t_load : 0.0);
    printf("  streamed pass, %d units through a two-unit budget: %.2f ms; max(compute %.2f, transfer %.2f) = %.2f ms; ratio %.2fx (target <= 1.1x)\n",
           L, t_pass, t_comp, t_xfer, t_comp > t_xfer ? t_comp : t_xfer, t_pass / (t_comp > t_xfer ? t_comp : t_xfer));
    return g_fail != 0;
}
