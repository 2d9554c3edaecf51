#define MODELLOAD_IMPLEMENTATION
#include "modelload.h"

/* bench_parse.c - target B1 of shared/design/performance.md:
   open + parse + index of safetensors headers, measured against baselines
   taken in the same run (raw open+pread+close of the header bytes, a plain
   in-memory scan of the header bytes).

   Build (from the repository root):
       cc -std=c99 -O2 -I. tests/bench/bench_parse.c -o build/bench_parse

   It generates its own synthetic files in a fresh mkdtemp folder under
   $TMPDIR (or /tmp) and removes them at exit:
     many.safetensors   20,000 small tensors, ~2 MB header, real zero data
     llm.safetensors    TinyLlama-shaped BF16 checkpoint (~2.2 GB), sparse:
                        only the 8-byte length and the header are written,
                        the data is an ftruncate() hole
     small.safetensors  150 tensors: a shard of a small Llama (embedding,
                        16 full layers, first tensors of layer 16)
   Every figure is the median of several repetitions, the measured
   operations interleaved per repetition so drift hits all sides alike.
   Exit status: 0 when everything ran (a MISS is a report, not a failure),
   1 on a real error. */

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#define BENCH_NAME "bench_parse"
#include "bench_util.h"
#include "../st_write.h"

/* ------------------------------------------------------------ utilities */

static char g_dir[4096];
static char g_paths[3][4200];
static int g_have_dir = 0;

static void cleanup(void) {
    int i;
    for (i = 0; i < 3; ++i)
        if (g_paths[i][0]) { (void)unlink(g_paths[i]); g_paths[i][0] = '\0'; }
    if (g_have_dir) { (void)rmdir(g_dir); g_have_dir = 0; }
}

static void die_mload(const char *what, const char *path, const mload_error *e) {
    die("%s '%s': %s: %s", what, path, mload_result_string(e->code), e->message);
}

static volatile uint64_t g_sink; /* keeps measured work alive */

/* ---------------------------------------------------------- generation */

typedef struct spec {
    char name[96];
    const char *dtype;
    unsigned rank;
    uint64_t dims[3];
    uint64_t nbytes;
} spec;

typedef struct specs { spec *v; size_t n, cap; } specs;

static void specs_add(specs *s, const char *dtype, unsigned rank, uint64_t d0, uint64_t d1, uint64_t d2,
                      const char *fmt, ...) {
    spec *t;
    va_list ap;
    uint64_t esize, numel = 1;
    unsigned i;
    s->v = (spec *)grow_array(s->v, &s->cap, s->n, sizeof(spec));
    t = &s->v[s->n++];
    va_start(ap, fmt);
    format_name(t->name, sizeof(t->name), fmt, ap);
    va_end(ap);
    t->dtype = dtype;
    t->rank = rank;
    t->dims[0] = d0;
    t->dims[1] = d1;
    t->dims[2] = d2;
    esize = strcmp(dtype, "F32") == 0 ? 4u : 2u;
    for (i = 0; i < rank; ++i) numel *= t->dims[i];
    t->nbytes = numel * esize;
}

/* Writes a safetensors file the way the reference writer lays it out:
   8-byte little-endian N, compact JSON header ("__metadata__" first),
   data_offsets contiguous in header order, header padded with spaces to a
   multiple of 8. sparse: the data is left as an ftruncate hole. Returns the
   header length N; *file_size gets the total size. */
static uint64_t write_safetensors(const char *path, const specs *s, int sparse, uint64_t *file_size) {
    st_buf b = ST_BUF_INIT;
    size_t i;
    uint64_t off = 0, n;
    int fd;
    st_begin(&b);
    st_printf(&b, "{\"__metadata__\":{\"format\":\"pt\"}");
    for (i = 0; i < s->n; ++i) {
        st_tensor(&b, s->v[i].name, s->v[i].dtype, s->v[i].rank, s->v[i].dims, off, off + s->v[i].nbytes);
        off += s->v[i].nbytes;
    }
    st_printf(&b, "}");
    n = st_end_header(&b, ST_PAD8);
    if (b.failed) die("out of memory");

    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) die("create '%s': %s", path, strerror(errno));
    write_all(fd, b.p, b.n, path); /* length and header */
    if (sparse) {
        if (ftruncate(fd, (off_t)(8u + n + off)) != 0) die("ftruncate '%s': %s", path, strerror(errno));
    } else {
        static const unsigned char zeros[65536];
        uint64_t left = off;
        while (left > 0) {
            size_t c = left > sizeof(zeros) ? sizeof(zeros) : (size_t)left;
            write_all(fd, zeros, c, path);
            left -= c;
        }
    }
    if (close(fd) != 0) die("close '%s': %s", path, strerror(errno));
    st_free(&b);
    *file_size = 8u + n + off;
    return n;
}

/* 20,000 tiny tensors, F32/BF16 mixed, rank 1-3, <= 64 elements each. */
static void gen_many(specs *s) {
    unsigned i;
    for (i = 0; i < 20000u; ++i) {
        const char *dt = (i % 3u == 0) ? "F32" : "BF16";
        unsigned rank = 1u + i % 3u;
        uint64_t d0, d1 = 0, d2 = 0;
        if (rank == 1) {
            d0 = 1u + (i / 3u) % 64u;
        } else if (rank == 2) {
            d0 = 1u + (i / 3u) % 8u;
            d1 = 1u + (i / 24u) % 8u;
        } else {
            d0 = 1u + (i / 3u) % 4u;
            d1 = 1u + (i / 12u) % 4u;
            d2 = 1u + (i / 48u) % 4u;
        }
        specs_add(s, dt, rank, d0, d1, d2, "model.layers.%u.block.%u.weight_%u", i / 20u, i % 20u, i);
    }
}

/* Llama-style layer tensors, in the order of the HF state dict. */
static void add_llama_layer(specs *s, unsigned l, uint64_t hid, uint64_t kv, uint64_t inter, unsigned limit) {
    unsigned k = 0;
#define LAYER_ADD(rank, a, b, nm) \
    do { if (k++ < limit) specs_add(s, "BF16", rank, a, b, 0, "model.layers.%u." nm, l); } while (0)
    LAYER_ADD(2, hid, hid, "self_attn.q_proj.weight");
    LAYER_ADD(2, kv, hid, "self_attn.k_proj.weight");
    LAYER_ADD(2, kv, hid, "self_attn.v_proj.weight");
    LAYER_ADD(2, hid, hid, "self_attn.o_proj.weight");
    LAYER_ADD(2, inter, hid, "mlp.gate_proj.weight");
    LAYER_ADD(2, inter, hid, "mlp.up_proj.weight");
    LAYER_ADD(2, hid, inter, "mlp.down_proj.weight");
    LAYER_ADD(1, hid, 0, "input_layernorm.weight");
    LAYER_ADD(1, hid, 0, "post_attention_layernorm.weight");
#undef LAYER_ADD
}

/* TinyLlama-1.1B shapes: hidden 2048, GQA kv 256, intermediate 5632,
   22 layers, vocab 32000 -> 201 tensors, ~2.2 GB of BF16. */
static void gen_llm(specs *s) {
    unsigned l;
    specs_add(s, "BF16", 2, 32000, 2048, 0, "model.embed_tokens.weight");
    for (l = 0; l < 22u; ++l) add_llama_layer(s, l, 2048, 256, 5632, 9);
    specs_add(s, "BF16", 1, 2048, 0, 0, "model.norm.weight");
    specs_add(s, "BF16", 2, 32000, 2048, 0, "lm_head.weight");
}

/* A 150-tensor shard of a small Llama: embedding, layers 0-15 complete,
   the first 5 tensors of layer 16 (shards split mid-layer). Small data. */
static void gen_small(specs *s) {
    unsigned l;
    specs_add(s, "BF16", 2, 512, 64, 0, "model.embed_tokens.weight");
    for (l = 0; l < 16u; ++l) add_llama_layer(s, l, 64, 16, 172, 9);
    add_llama_layer(s, 16, 64, 16, 172, 5);
}

/* ----------------------------------------------------------- measuring */

typedef struct file_result {
    uint64_t header_size, file_size, count;
    double lib_med, lib_min;     /* mload_file_open(path) + close, ns */
    double arena_med, arena_min; /* same, allocating from pre-touched memory */
    double io_med, io_min;       /* open + pread(8+N) + close, ns */
    double mem_med, mem_min;     /* mload_file_open(data) + close, ns */
    double loop_med, loop_min;   /* byte loop counting '"', ns */
    double mchr_med, mchr_min;   /* memchr loop counting '"', ns */
    double full_med, full_min;   /* one memchr for an absent byte: a SIMD pass */
} file_result;

static uint64_t count_quotes_loop(const char *p, size_t n) {
    uint64_t c = 0;
    size_t i;
    for (i = 0; i < n; ++i) c += (p[i] == '"');
    return c;
}

static uint64_t count_quotes_memchr(const char *p, size_t n) {
    uint64_t c = 0;
    const char *end = p + n;
    while (p < end) {
        const char *q = (const char *)memchr(p, '"', (size_t)(end - p));
        if (!q) break;
        ++c;
        p = q + 1;
    }
    return c;
}

/* One vectorised pass over every byte (libc memchr for a byte that the
   ASCII header does not contain): the speed of touching the bytes at all. */
static uint64_t full_scan(const char *p, size_t n) {
    return memchr(p, 0x01, n) == NULL ? (uint64_t)n : 0u;
}

/* The I/O floor: what any loader must do to get the header bytes. */
static void baseline_io(const char *path, char *buf, size_t n) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) die("open '%s': %s", path, strerror(errno));
    read_exact(fd, buf, n, 0, path);
    if (close(fd) != 0) die("close '%s': %s", path, strerror(errno));
}

/* opens d (path names it in messages); dies on an error */
static mload_file *open_desc(const mload_file_desc *d, const char *path, const char *what) {
    mload_file *f = NULL;
    mload_error e;
    memset(&e, 0, sizeof(e));
    if (mload_file_open(d, &f, &e) != MLOAD_OK) die_mload(what, path, &e);
    return f;
}

static mload_file *open_path(const char *path) {
    mload_file_desc d;
    memset(&d, 0, sizeof(d));
    d.path = path;
    return open_desc(&d, path, "mload_file_open");
}

/* closes f after checking its tensor count */
static void close_counted(mload_file *f, const char *path, const char *what, uint64_t expect_count) {
    if (mload_file_count(f) != expect_count) die("'%s' (%s): %llu tensors, expected %llu", path, what,
                                                 (unsigned long long)mload_file_count(f),
                                                 (unsigned long long)expect_count);
    mload_file_close(f);
}

static void lib_open_path(const char *path, uint64_t expect_count) {
    close_counted(open_path(path), path, "mload_file_open", expect_count);
}

/* A bump allocator over memory touched once up front: the library's
   allocations then pay no first-touch page faults, like the pre-touched
   buffer of the pread baseline (performance.md: never let one side of a
   comparison pay faults the other does not). Reset before each open. */
static unsigned char *g_arena;
static size_t g_arena_cap, g_arena_used;

static void *arena_alloc(size_t size, size_t align, void *user) {
    size_t at = (g_arena_used + (align - 1)) & ~(align - 1);
    (void)user;
    if (at > g_arena_cap || size > g_arena_cap - at) return NULL;
    g_arena_used = at + size;
    return g_arena + at;
}
static void arena_free(void *p, size_t size, void *user) { (void)p; (void)size; (void)user; }

static void lib_open_arena(const char *path, uint64_t expect_count) {
    mload_file_desc d;
    memset(&d, 0, sizeof(d));
    d.path = path;
    d.allocator.alloc = arena_alloc;
    d.allocator.free = arena_free;
    g_arena_used = 0;
    close_counted(open_desc(&d, path, "mload_file_open (arena)"), path, "arena", expect_count);
}

static void lib_open_mem(const char *path, const void *data, uint64_t size, uint64_t expect_count) {
    mload_file_desc d;
    memset(&d, 0, sizeof(d));
    d.data = data;
    d.data_size = size;
    close_counted(open_desc(&d, path, "mload_file_open (memory)"), path, "memory", expect_count);
}

/* Checks the file once (count, header size, every tensor's shape and size
   against the generator), then times reps interleaved repetitions. */
static void bench_file(const char *path, const specs *s, uint64_t expect_header, uint64_t expect_size,
                       size_t reps, file_result *out) {
    mload_file *f;
    uint64_t *t_lib, *t_io, *t_mem, *t_loop, *t_mchr, *t_full, *t_arena;
    uint64_t n, i;
    char *hbuf;
    void *whole;
    int mapped;
    size_t r;

    f = open_path(path);
    n = mload_file_header_size(f);
    if (n != expect_header) die("'%s': header size %llu, generator wrote %llu", path,
                                (unsigned long long)n, (unsigned long long)expect_header);
    if (mload_file_size(f) != expect_size) die("'%s': file size mismatch", path);
    if (mload_file_count(f) != s->n) die("'%s': %llu tensors, generator wrote %zu", path,
                                         (unsigned long long)mload_file_count(f), s->n);
    for (i = 0; i < s->n; ++i) {
        const spec *g = &s->v[i];
        const mload_tensor *t = mload_file_tensor(f, i);
        unsigned k;
        if (!t || strcmp(t->name, g->name) != 0 || t->nbytes != g->nbytes || t->rank != g->rank ||
            strcmp(mload_dtype_name(t->dtype), g->dtype) != 0)
            die("'%s': tensor %llu does not match the generator", path, (unsigned long long)i);
        for (k = 0; k < g->rank; ++k)
            if (t->shape[k] != g->dims[k]) die("'%s': tensor %llu shape mismatch", path, (unsigned long long)i);
    }
    mload_file_close(f);

    out->header_size = n;
    out->file_size = expect_size;
    out->count = s->n;

    /* the header bytes for the baselines, pre-touched */
    hbuf = (char *)xmalloc((size_t)(8u + n));
    memset(hbuf, 0, (size_t)(8u + n));

    /* the whole file in memory for the parse-from-memory figure: read into
       a buffer when small, mapped when it is the 2 GB sparse file (only
       the header pages are ever touched) */
    mapped = expect_size > ((uint64_t)256 << 20);
    {
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) die("open '%s': %s", path, strerror(errno));
        if (mapped) {
            whole = mmap(NULL, (size_t)expect_size, PROT_READ, MAP_PRIVATE, fd, 0);
            if (whole == MAP_FAILED) die("mmap '%s': %s", path, strerror(errno));
        } else {
            whole = xmalloc((size_t)expect_size);
            read_exact(fd, whole, expect_size, 0, path);
        }
        (void)close(fd);
    }

    t_lib = (uint64_t *)xmalloc(reps * sizeof(uint64_t));
    t_io = (uint64_t *)xmalloc(reps * sizeof(uint64_t));
    t_mem = (uint64_t *)xmalloc(reps * sizeof(uint64_t));
    t_loop = (uint64_t *)xmalloc(reps * sizeof(uint64_t));
    t_mchr = (uint64_t *)xmalloc(reps * sizeof(uint64_t));
    t_full = (uint64_t *)xmalloc(reps * sizeof(uint64_t));
    t_arena = (uint64_t *)xmalloc(reps * sizeof(uint64_t));

    /* warm-up: page cache, allocator, branch predictors */
    lib_open_path(path, s->n);
    baseline_io(path, hbuf, (size_t)(8u + n));
    lib_open_mem(path, whole, expect_size, s->n);
    lib_open_arena(path, s->n);

    for (r = 0; r < reps; ++r) {
        uint64_t t0, t1, t2, t3, t4, t5, t6, t7;
        t0 = now_ns();
        lib_open_path(path, s->n);
        t1 = now_ns();
        baseline_io(path, hbuf, (size_t)(8u + n));
        t2 = now_ns();
        lib_open_mem(path, whole, expect_size, s->n);
        t3 = now_ns();
        g_sink += count_quotes_loop(hbuf + 8, (size_t)n);
        t4 = now_ns();
        g_sink += count_quotes_memchr(hbuf + 8, (size_t)n);
        t5 = now_ns();
        g_sink += full_scan(hbuf + 8, (size_t)n);
        t6 = now_ns();
        lib_open_arena(path, s->n);
        t7 = now_ns();
        t_arena[r] = t7 - t6;
        t_lib[r] = t1 - t0;
        t_io[r] = t2 - t1;
        t_mem[r] = t3 - t2;
        t_loop[r] = t4 - t3;
        t_mchr[r] = t5 - t4;
        t_full[r] = t6 - t5;
    }
    out->lib_min = min_ns(t_lib, reps);   out->lib_med = median_ns(t_lib, reps);
    out->arena_min = min_ns(t_arena, reps); out->arena_med = median_ns(t_arena, reps);
    out->io_min = min_ns(t_io, reps);     out->io_med = median_ns(t_io, reps);
    out->mem_min = min_ns(t_mem, reps);   out->mem_med = median_ns(t_mem, reps);
    out->loop_min = min_ns(t_loop, reps); out->loop_med = median_ns(t_loop, reps);
    out->mchr_min = min_ns(t_mchr, reps); out->mchr_med = median_ns(t_mchr, reps);
    out->full_min = min_ns(t_full, reps); out->full_med = median_ns(t_full, reps);

    if (mapped) (void)munmap(whole, (size_t)expect_size);
    else free(whole);
    free(hbuf);
    free(t_lib); free(t_io); free(t_mem); free(t_loop); free(t_mchr); free(t_full); free(t_arena);
}

typedef struct find_result {
    double lib_med, lib_min, floor_med, floor_min; /* shuffled order */
    double seq_med, seq_min;                       /* header order */
    size_t lookups;
} find_result;

/* n lookups by exact name, in a fixed shuffled order. The floor is the
   work any lookup has to do on the key: strlen + one memcmp against the
   right tensor's name. */
static void bench_find(const char *path, const specs *s, size_t reps, find_result *out) {
    mload_file *f;
    const char **names;
    const mload_tensor **want;
    uint64_t *t_lib, *t_floor, *t_seq;
    size_t i, r, n = s->n;
    uint64_t x = 0x2545F4914F6CDD1Dull;

    f = open_path(path);
    names = (const char **)xmalloc(n * sizeof(char *));
    want = (const mload_tensor **)xmalloc(n * sizeof(mload_tensor *));
    for (i = 0; i < n; ++i) names[i] = s->v[i].name;
    for (i = n; i > 1; --i) { /* Fisher-Yates with xorshift64 */
        size_t j;
        const char *tmp;
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        j = (size_t)(x % i);
        tmp = names[i - 1]; names[i - 1] = names[j]; names[j] = tmp;
    }
    for (i = 0; i < n; ++i) {
        want[i] = mload_file_find(f, names[i]);
        if (!want[i] || strcmp(want[i]->name, names[i]) != 0) die("mload_file_find('%s') failed", names[i]);
    }
    if (mload_file_find(f, "model.layers.0.block.0.weight_1") != NULL) die("mload_file_find found an absent name");

    t_lib = (uint64_t *)xmalloc(reps * sizeof(uint64_t));
    t_floor = (uint64_t *)xmalloc(reps * sizeof(uint64_t));
    t_seq = (uint64_t *)xmalloc(reps * sizeof(uint64_t));
    for (r = 0; r < reps + 1; ++r) { /* first round is a warm-up */
        uint64_t t0, t1, t2, t3, acc = 0, miss = 0;
        t0 = now_ns();
        for (i = 0; i < n; ++i) {
            const mload_tensor *t = mload_file_find(f, names[i]);
            if (t != want[i]) ++miss;
            acc += (uint64_t)(uintptr_t)t;
        }
        t1 = now_ns();
        for (i = 0; i < n; ++i) {
            size_t len = strlen(names[i]);
            acc += (uint64_t)(want[i]->name_len == len && memcmp(want[i]->name, names[i], len) == 0);
        }
        t2 = now_ns();
        for (i = 0; i < n; ++i) {
            const mload_tensor *t = mload_file_find(f, s->v[i].name);
            if (!t) ++miss;
            acc += (uint64_t)(uintptr_t)t;
        }
        t3 = now_ns();
        if (miss) die("mload_file_find returned a wrong tensor");
        g_sink += acc;
        if (r > 0) { t_lib[r - 1] = t1 - t0; t_floor[r - 1] = t2 - t1; t_seq[r - 1] = t3 - t2; }
    }
    out->lookups = n;
    out->lib_min = min_ns(t_lib, reps);     out->lib_med = median_ns(t_lib, reps);
    out->floor_min = min_ns(t_floor, reps); out->floor_med = median_ns(t_floor, reps);
    out->seq_min = min_ns(t_seq, reps);     out->seq_med = median_ns(t_seq, reps);
    free(t_lib); free(t_floor); free(t_seq); free(names); free(want);
    mload_file_close(f);
}

/* -------------------------------------------------------------- report */

static void print_row(const char *what, double med_ns, double best_ns, uint64_t bytes, double ref_ns) {
    printf("  %-40s %11.1f %11.1f %9.3f", what, med_ns / 1000.0, best_ns / 1000.0, gbps(bytes, med_ns));
    if (ref_ns > 0) printf(" %8.2fx\n", med_ns / ref_ns);
    else printf("        -\n");
}

static void print_file(const char *label, const file_result *r) {
    printf("\n%s: %llu tensors, header %llu bytes, file %llu bytes\n", label, (unsigned long long)r->count,
           (unsigned long long)r->header_size, (unsigned long long)r->file_size);
    printf("  %-40s %11s %11s %9s %9s\n", "measurement", "median us", "min us", "hdr GB/s", "vs I/O");
    print_row("mload_file_open(path) + close", r->lib_med, r->lib_min, r->header_size, r->io_med);
    print_row("mload_file_open(path), pre-touched alloc", r->arena_med, r->arena_min, r->header_size, r->io_med);
    print_row("baseline: open + pread(8+N) + close", r->io_med, r->io_min, r->header_size, r->io_med);
    print_row("mload_file_open(memory) + close", r->mem_med, r->mem_min, r->header_size, r->io_med);
    print_row("baseline: byte loop counting '\"'", r->loop_med, r->loop_min, r->header_size, r->io_med);
    print_row("baseline: memchr loop counting '\"'", r->mchr_med, r->mchr_min, r->header_size, r->io_med);
    print_row("baseline: one memchr pass (SIMD floor)", r->full_med, r->full_min, r->header_size, r->io_med);
    printf("  ratios: open(path) = %.2fx the I/O floor; parse from memory = %.2fx the byte loop, "
           "%.2fx the memchr loop;\n          I/O share of open(path) ~ %.0f%%\n",
           r->lib_med / r->io_med, r->mem_med / r->loop_med, r->mem_med / r->mchr_med,
           100.0 * (r->lib_med - r->mem_med) / r->lib_med);
}

int main(void) {
    specs many = {0, 0, 0}, llm = {0, 0, 0}, small = {0, 0, 0};
    uint64_t n_many, n_llm, n_small, sz_many, sz_llm, sz_small;
    file_result r_many, r_llm, r_small;
    find_result fr;
    uint64_t t_start = now_ns(), t_gen;
    double b1_gbps, b1_us;

    make_tmpdir(g_dir, sizeof(g_dir), "bench_parse");
    g_have_dir = 1;
    if (atexit(cleanup) != 0) { cleanup(); die("atexit failed"); }
    (void)snprintf(g_paths[0], sizeof(g_paths[0]), "%s/many.safetensors", g_dir);
    (void)snprintf(g_paths[1], sizeof(g_paths[1]), "%s/llm.safetensors", g_dir);
    (void)snprintf(g_paths[2], sizeof(g_paths[2]), "%s/small.safetensors", g_dir);

    g_arena_cap = (size_t)64 << 20;
    g_arena = (unsigned char *)xmalloc(g_arena_cap);
    memset(g_arena, 1, g_arena_cap);
    gen_many(&many);
    gen_llm(&llm);
    gen_small(&small);
    n_many = write_safetensors(g_paths[0], &many, 0, &sz_many);
    n_llm = write_safetensors(g_paths[1], &llm, 1, &sz_llm);
    n_small = write_safetensors(g_paths[2], &small, 0, &sz_small);
    t_gen = now_ns();

    printf("bench_parse: modelload %s, target B1 (shared/design/performance.md)\n", mload_version_string());
    printf("files in %s (generated in %.2f s); medians of interleaved repetitions\n", g_dir,
           (double)(t_gen - t_start) / 1e9);

    bench_file(g_paths[0], &many, n_many, sz_many, 41, &r_many);
    bench_file(g_paths[1], &llm, n_llm, sz_llm, 101, &r_llm);
    bench_file(g_paths[2], &small, n_small, sz_small, 401, &r_small);
    bench_find(g_paths[0], &many, 25, &fr);

    print_file("many.safetensors (41 reps)", &r_many);
    print_file("llm.safetensors (101 reps, sparse, TinyLlama shapes)", &r_llm);
    print_file("small.safetensors (401 reps)", &r_small);

    printf("\nmload_file_find on many.safetensors: %zu exact-name lookups per rep, 25 reps\n", fr.lookups);
    printf("  mload_file_find, shuffled order           %8.1f ns/lookup (min %.1f)\n",
           fr.lib_med / (double)fr.lookups, fr.lib_min / (double)fr.lookups);
    printf("  floor: strlen + memcmp of the right name  %8.1f ns/lookup (min %.1f)  -> find = %.2fx floor\n",
           fr.floor_med / (double)fr.lookups, fr.floor_min / (double)fr.lookups, fr.lib_med / fr.floor_med);
    printf("  mload_file_find, header order             %8.1f ns/lookup (min %.1f)\n",
           fr.seq_med / (double)fr.lookups, fr.seq_min / (double)fr.lookups);

    b1_gbps = gbps(r_many.header_size, r_many.arena_med);
    b1_us = r_small.lib_med / 1000.0;
    printf("\nsmall file: open %.1f us vs baseline open+pread+close %.1f us (%.2fx); from memory %.1f us\n",
           b1_us, r_small.io_med / 1000.0, r_small.lib_med / r_small.io_med, r_small.mem_med / 1000.0);
    printf("B1 header parse (open+parse+index, path, pre-touched allocator like the pread baseline's buffer): "
           "%.3f GB/s = %.2fx the I/O floor\n", b1_gbps, r_many.arena_med / r_many.io_med);
    printf("   with the default allocator (fresh memory: first-touch page faults included): %.3f GB/s\n",
           gbps(r_many.header_size, r_many.lib_med));
    printf("B1 header parse: %.3f GB/s (target >= 1 GB/s): %s\n", b1_gbps, b1_gbps >= 1.0 ? "PASS" : "MISS");
    printf("B1 150-tensor open: %.1f us (target <= 50 us): %s\n", b1_us, b1_us <= 50.0 ? "PASS" : "MISS");
    printf("total run time %.2f s\n", (double)(now_ns() - t_start) / 1e9);

    free(many.v);
    free(llm.v);
    free(small.v);
    free(g_arena);
    cleanup();
    return 0;
}
