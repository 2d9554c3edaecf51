#define MODELLOAD_IMPLEMENTATION
#include "modelload.h"

/* bench_torch.c - B10: PyTorch checkpoints against the same weights as
   safetensors, both warm in the page cache:
     listing  mload_map_open + close of a 20,000-tensor checkpoint (small
              tensors: the cost is the container, the pickle and the table)
     loading  mload_map_load of a checkpoint of MLOAD_BENCH_MB MiB (default
              256) of F32 weights, 1 thread and 2 threads
   The .bin is written here the way torch.save writes it (a stored zip,
   PREFIX/data.pkl as protocol-2 pickle, one 64-byte aligned entry per
   storage), the .safetensors by mload_write, in a fresh mkdtemp folder
   removed at exit. Each figure is the median of the repetitions, the two
   formats interleaved. Reported as ratios .bin / .safetensors.

   Build: cc -std=c99 -O2 -I. tests/bench/bench_torch.c -o build/bench_torch -pthread */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define BENCH_NAME "bench_torch"
#include "bench_util.h"
#include "../zip_write.h"

static char g_dir[4096], g_files[4][4200];

static void cleanup(void) {
    if (getenv("MLOAD_BENCH_KEEP")) return;
    int i;
    for (i = 0; i < 4; ++i)
        if (g_files[i][0]) (void)unlink(g_files[i]);
    if (g_dir[0]) (void)rmdir(g_dir);
}

#define PUT_LIT(b, lit) zw_put(b, lit, sizeof(lit) - 1)
static void pk_str(zw_buf *b, const char *s) {
    zw_put(b, "X", 1);
    zw_le(b, strlen(s), 4);
    zw_put(b, s, strlen(s));
}
static void pk_int(zw_buf *b, uint64_t v) {
    zw_put(b, "J", 1);
    zw_le(b, v, 4);
}

typedef struct spec { char name[64]; uint64_t rows, cols; } spec;

/* a torch.save-style archive of F32 tensors (values from `data`, laid end to end) */
static void write_bin(const char *path, const spec *s, size_t n, const float *data) {
    zw_buf pk = {0};
    zw z;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    uint64_t off = 0;
    size_t i;
    if (fd < 0) die("create %s: %s", path, strerror(errno));
    memset(&z, 0, sizeof z);
    z.align = 64;
    PUT_LIT(&pk, "\x80\x02}q\x00(");
    for (i = 0; i < n; ++i) {
        char key[32];
        snprintf(key, sizeof key, "%zu", i);
        pk_str(&pk, s[i].name);
        PUT_LIT(&pk, "ctorch._utils\n_rebuild_tensor_v2\n((");
        pk_str(&pk, "storage");
        PUT_LIT(&pk, "ctorch\nFloatStorage\n");
        pk_str(&pk, key);
        pk_str(&pk, "cpu");
        pk_int(&pk, s[i].rows * s[i].cols);
        PUT_LIT(&pk, "tQ");
        pk_int(&pk, 0);
        PUT_LIT(&pk, "(");
        pk_int(&pk, s[i].rows);
        pk_int(&pk, s[i].cols);
        PUT_LIT(&pk, "t(");
        pk_int(&pk, s[i].cols);
        pk_int(&pk, 1);
        PUT_LIT(&pk, "t\x89" "ccollections\nOrderedDict\n)RtR");
    }
    PUT_LIT(&pk, "u.");
    for (i = 0; i <= n; ++i) { /* data.pkl, then each storage, 64-byte aligned as torch.save does */
        char name[64];
        const unsigned char *d = i == 0 ? pk.p : (const unsigned char *)(data + off);
        uint64_t len = i == 0 ? pk.n : s[i - 1].rows * s[i - 1].cols * 4;
        zw_buf h = {0};
        if (i == 0) snprintf(name, sizeof name, "bench/data.pkl");
        else snprintf(name, sizeof name, "bench/data/%zu", i - 1);
        zw_entry(&z, &h, name, d, len);
        write_all(fd, h.p, h.n, path);
        write_all(fd, d, (size_t)len, path);
        if (i) off += len / 4;
        free(h.p);
    }
    if (z.pos + z.cd.n > 0xFFFFFFFFu) die("the benchmark archive needs ZIP64: lower MLOAD_BENCH_MB");
    {
        zw_buf e = {0};
        zw_finish(&z, &e);
        write_all(fd, e.p, e.n, path);
        free(e.p);
    }
    close(fd);
    free(pk.p);
}

static void write_st(const char *path, const spec *s, size_t n, const float *data) {
    mload_write_tensor *w = (mload_write_tensor *)xmalloc(n * sizeof *w);
    uint64_t *shapes = (uint64_t *)xmalloc(2 * n * sizeof(uint64_t)), off = 0;
    mload_error e;
    size_t i;
    memset(w, 0, n * sizeof *w);
    for (i = 0; i < n; ++i) {
        shapes[2 * i] = s[i].rows;
        shapes[2 * i + 1] = s[i].cols;
        w[i].name = s[i].name;
        w[i].dtype = MLOAD_DTYPE_F32;
        w[i].rank = 2;
        w[i].shape = shapes + 2 * i;
        w[i].data = data + off;
        off += s[i].rows * s[i].cols;
    }
    if (mload_write(path, w, n, NULL, &e) != MLOAD_OK) die("write %s: %s", path, e.message);
    free(w);
    free(shapes);
}


static uint64_t time_list(const char *path) {
    uint64_t t0 = now_ns();
    mload_map_close(bench_open_map(path, NULL, 0));
    return now_ns() - t0;
}

static uint64_t time_load(const char *path, void *dst, uint32_t threads) {
    mload_map *m = bench_open_map(path, NULL, 0);
    uint64_t n = mload_map_count(m), i, off = 0, t0;
    mload_load_item *it = (mload_load_item *)xmalloc((size_t)n * sizeof *it);
    mload_load_opts o;
    mload_error e;
    memset(it, 0, (size_t)n * sizeof *it);
    memset(&o, 0, sizeof o);
    o.threads = threads;
    for (i = 0; i < n; ++i) {
        it[i].tensor = mload_map_tensor(m, i);
        it[i].dst = (unsigned char *)dst + off;
        it[i].dst_size = it[i].tensor->nbytes;
        it[i].count = it[i].tensor->numel;
        off += it[i].tensor->nbytes;
    }
    t0 = now_ns();
    if (mload_map_load(m, it, n, &o, &e) != MLOAD_OK) die("load %s: %s", path, e.message);
    t0 = now_ns() - t0;
    free(it);
    mload_map_close(m);
    return t0;
}

int main(void) {
    const char *mbs = getenv("MLOAD_BENCH_MB");
    uint64_t mb = mbs && atoi(mbs) > 0 ? (uint64_t)atoi(mbs) : 256, total = 0, i;
    size_t nsmall = 20000, nbig, k, reps = 7;
    spec *small = (spec *)xmalloc(nsmall * sizeof(spec)), *big;
    float *data;
    void *dst_a, *dst_b;
    uint64_t *tl[2], *tb[2][2];
    atexit(cleanup);
    make_tmpdir(g_dir, sizeof g_dir, "bench_torch");
    snprintf(g_files[0], sizeof g_files[0], "%s/list.bin", g_dir);
    snprintf(g_files[1], sizeof g_files[1], "%s/list.safetensors", g_dir);
    snprintf(g_files[2], sizeof g_files[2], "%s/load.bin", g_dir);
    snprintf(g_files[3], sizeof g_files[3], "%s/load.safetensors", g_dir);
    /* listing: 20,000 small tensors named like a 1000-layer model */
    for (k = 0; k < nsmall; ++k) {
        static const char *const part[] = {"q", "k", "v", "o", "gate", "up", "down", "norm", "a", "b"};
        snprintf(small[k].name, sizeof small[k].name, "model.layers.%zu.%s.%s", k / 20, part[k % 10], k % 20 < 10 ? "weight" : "bias");
        small[k].rows = 4;
        small[k].cols = 8 + k % 8;
        total += small[k].rows * small[k].cols;
    }
    data = (float *)xmalloc((size_t)(mb << 20));
    for (i = 0; i < (mb << 20) / 4; ++i) data[i] = (float)(i % 1000) * 0.25f;
    write_bin(g_files[0], small, nsmall, data);
    write_st(g_files[1], small, nsmall, data);
    /* loading: 1024 x 1024 F32 matrices (4 MiB each) up to mb MiB */
    nbig = (size_t)(mb / 4);
    big = (spec *)xmalloc(nbig * sizeof(spec));
    for (k = 0; k < nbig; ++k) {
        snprintf(big[k].name, sizeof big[k].name, "layers.%zu.weight", k);
        big[k].rows = big[k].cols = 1024;
    }
    write_bin(g_files[2], big, nbig, data);
    write_st(g_files[3], big, nbig, data);
    dst_a = xmalloc((size_t)(mb << 20));
    dst_b = xmalloc((size_t)(mb << 20));
    memset(dst_a, 1, (size_t)(mb << 20));
    memset(dst_b, 1, (size_t)(mb << 20));
    (void)time_load(g_files[2], dst_a, 1); /* the two agree (and the page cache is warm) */
    (void)time_load(g_files[3], dst_b, 1);
    if (memcmp(dst_a, dst_b, (size_t)(mb << 20)) != 0) die("the .bin and the .safetensors load differently");
    for (k = 0; k < 2; ++k) {
        tl[k] = (uint64_t *)xmalloc(reps * sizeof(uint64_t));
        tb[k][0] = (uint64_t *)xmalloc(reps * sizeof(uint64_t));
        tb[k][1] = (uint64_t *)xmalloc(reps * sizeof(uint64_t));
    }
    (void)time_list(g_files[0]);
    (void)time_list(g_files[1]);
    for (k = 0; k < reps; ++k) {
        tl[0][k] = time_list(g_files[0]);
        tl[1][k] = time_list(g_files[1]);
        tb[0][0][k] = time_load(g_files[2], dst_a, 1);
        tb[1][0][k] = time_load(g_files[3], dst_b, 1);
        tb[0][1][k] = time_load(g_files[2], dst_a, 2);
        tb[1][1][k] = time_load(g_files[3], dst_b, 2);
    }
    printf("\nB10 PyTorch .bin vs the same weights as .safetensors (warm page cache, median of %zu)\n", reps);
    printf("  %-52s %10s %12s %8s\n", "", ".bin", ".safetensors", "ratio");
    printf("  %-52s %8.2f ms %10.2f ms %8.2f\n", "list 20,000 tensors (mload_map_open + close)", median_ns(tl[0], reps) / 1e6,
           median_ns(tl[1], reps) / 1e6, median_ns(tl[0], reps) / median_ns(tl[1], reps));
    for (k = 0; k < 2; ++k) {
        char what[96];
        snprintf(what, sizeof what, "load %llu MiB F32, mload_map_load T=%zu (GB/s)", (unsigned long long)mb, k + 1);
        printf("  %-52s %11.2f %12.2f %8.2f\n", what, gbps(mb << 20, median_ns(tb[0][k], reps)),
               gbps(mb << 20, median_ns(tb[1][k], reps)), median_ns(tb[0][k], reps) / median_ns(tb[1][k], reps));
    }
    printf("  (ratio: .bin time / .safetensors time; the listed files hold %.1f MB of data)\n", (double)total * 4 / 1e6);
    for (k = 0; k < 2; ++k) { free(tl[k]); free(tb[k][0]); free(tb[k][1]); }
    free(small);
    free(big);
    free(data);
    free(dst_a);
    free(dst_b);
    return 0;
}
