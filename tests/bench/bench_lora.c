#define MODELLOAD_IMPLEMENTATION
#include "modelload.h"

/* bench_lora.c - B9: the cost of merging a LoRA adapter on read, as a
   ratio of the plain read of the same weight (warm page cache, output as
   F32 into pre-touched memory). A 4096 x 4096 base weight (F32, then BF16)
   and a PEFT adapter of rank 64 are written by mload_write into a fresh
   mkdtemp folder removed at exit. Rows: mload_map_read (1 thread) and
   mload_map_load split in 8 pieces over 2 threads, each with and without the
   adapter; the median of 7, the two interleaved.

   Build: cc -std=c99 -O2 -I. tests/bench/bench_lora.c -o build/bench_lora -pthread */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BENCH_NAME "bench_lora"
#include "bench_util.h"

#define N 4096u
#define RANK 64u

static char g_dir[4096], g_files[3][4200];

static void cleanup(void) {
    int i;
    for (i = 0; i < 3; ++i)
        if (g_files[i][0]) (void)unlink(g_files[i]);
    if (g_dir[0]) (void)rmdir(g_dir);
}

static void write1(const char *path, const char *const *names, const mload_dtype *dt, const uint64_t *shapes,
                   const void *const *data, uint64_t n) {
    mload_write_tensor w[3];
    mload_error e;
    uint64_t i;
    memset(w, 0, sizeof w);
    for (i = 0; i < n; ++i) {
        w[i].name = names[i];
        w[i].dtype = dt[i];
        w[i].rank = 2;
        w[i].shape = shapes + 2 * i;
        w[i].data = data[i];
    }
    if (mload_write(path, w, n, NULL, &e) != MLOAD_OK) die("write %s: %s", path, e.message);
}


static uint64_t time_read(const mload_map *m, const char *name, float *dst, int bulk) {
    const mload_tensor *t = mload_map_find(m, name);
    mload_error e;
    uint64_t t0 = now_ns(), k;
    if (!t) die("no tensor %s", name);
    if (!bulk) {
        if (mload_map_read(m, t, MLOAD_DTYPE_F32, dst, t->numel * 4, &e) != MLOAD_OK) die("read: %s", e.message);
    } else {
        mload_load_item it[8];
        mload_load_opts o;
        memset(it, 0, sizeof it);
        memset(&o, 0, sizeof o);
        o.threads = 2;
        for (k = 0; k < 8; ++k) {
            it[k].tensor = t;
            it[k].as = MLOAD_DTYPE_F32;
            it[k].first = k * (t->numel / 8);
            it[k].count = t->numel / 8;
            it[k].dst = dst + it[k].first;
            it[k].dst_size = it[k].count * 4;
        }
        if (mload_map_load(m, it, 8, &o, &e) != MLOAD_OK) die("load: %s", e.message);
    }
    return now_ns() - t0;
}

int main(void) {
    static const char *const names[2] = {"w.weight", "w_bf16.weight"};
    const char *lnames[2] = {"w.lora_A.weight", "w.lora_B.weight"};
    const char *lnames2[2] = {"w_bf16.lora_A.weight", "w_bf16.lora_B.weight"};
    uint64_t shapes[4] = {N, N, N, N}, lshapes[4] = {RANK, N, N, RANK}, i;
    mload_dtype dt[2] = {MLOAD_DTYPE_F32, MLOAD_DTYPE_BF16}, ldt[2] = {MLOAD_DTYPE_F32, MLOAD_DTYPE_F32};
    float *w = (float *)xmalloc((size_t)N * N * 4), *a = (float *)xmalloc((size_t)RANK * N * 4), *b = (float *)xmalloc((size_t)N * RANK * 4);
    uint16_t *wb = (uint16_t *)xmalloc((size_t)N * N * 2);
    float *dst = (float *)xmalloc((size_t)N * N * 4);
    const void *data[2];
    mload_lora l;
    mload_map *plain, *merged;
    size_t reps = 7, k, row, col;
    atexit(cleanup);
    make_tmpdir(g_dir, sizeof g_dir, "bench_lora");
    snprintf(g_files[0], sizeof g_files[0], "%s/base.safetensors", g_dir);
    snprintf(g_files[1], sizeof g_files[1], "%s/lora.safetensors", g_dir);
    for (i = 0; i < (uint64_t)N * N; ++i) {
        w[i] = (float)((i * 2654435761u) % 1000u) * 0.001f - 0.5f;
        wb[i] = (uint16_t)(0x3C00u + (i % 256u));
    }
    for (i = 0; i < (uint64_t)RANK * N; ++i) a[i] = b[i] = (float)((i * 40503u) % 100u) * 0.0001f;
    data[0] = w;
    data[1] = wb;
    write1(g_files[0], names, dt, shapes, data, 2);
    {
        mload_write_tensor lw[4];
        mload_error e;
        memset(lw, 0, sizeof lw);
        for (k = 0; k < 4; ++k) {
            lw[k].name = k < 2 ? lnames[k] : lnames2[k - 2];
            lw[k].dtype = ldt[k % 2];
            lw[k].rank = 2;
            lw[k].shape = lshapes + 2 * (k % 2);
            lw[k].data = k % 2 ? (const void *)b : (const void *)a;
        }
        if (mload_write(g_files[1], lw, 4, NULL, &e) != MLOAD_OK) die("write adapter: %s", e.message);
    }
    memset(&l, 0, sizeof l);
    l.path = g_files[1];
    l.scale = 1.0;
    plain = bench_open_map(g_files[0], NULL, 0);
    merged = bench_open_map(g_files[0], &l, 1);
    memset(dst, 0, (size_t)N * N * 4);
    printf("\nB9 LoRA merged on read (4096 x 4096 base, PEFT rank 64, warm page cache, F32 out, median of %zu)\n", reps);
    printf("  %-44s %10s %10s %8s\n", "", "plain", "merged", "ratio");
    for (col = 0; col < 2; ++col)
        for (row = 0; row < 2; ++row) {
            uint64_t *tp = (uint64_t *)xmalloc(reps * 8), *tm = (uint64_t *)xmalloc(reps * 8);
            char what[96];
            (void)time_read(plain, names[col], dst, (int)row);
            (void)time_read(merged, names[col], dst, (int)row);
            for (k = 0; k < reps; ++k) {
                tp[k] = time_read(plain, names[col], dst, (int)row);
                tm[k] = time_read(merged, names[col], dst, (int)row);
            }
            snprintf(what, sizeof what, "%s base, %s", col ? "BF16" : "F32", row ? "mload_map_load 8 pieces, T=2" : "mload_map_read, 1 thread");
            printf("  %-44s %7.1f ms %7.1f ms %8.2f\n", what, median_ns(tp, reps) / 1e6, median_ns(tm, reps) / 1e6,
                   median_ns(tm, reps) / median_ns(tp, reps));
            free(tp);
            free(tm);
        }
    printf("  (ratio: merged time / plain time; the merge is %llu multiply-adds per weight)\n", (unsigned long long)RANK);
    mload_map_close(plain);
    mload_map_close(merged);
    free(w);
    free(wb);
    free(a);
    free(b);
    free(dst);
    return 0;
}
