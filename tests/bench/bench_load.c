#define MODELLOAD_IMPLEMENTATION
#include "modelload.h"

/* bench_load.c - targets B2-B6 of shared/design/performance.md: loading
   tensor data, measured against baselines taken in the same run.

   Build (from the repository root):
       cc -std=c99 -O2 -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Werror \
          -I. tests/bench/bench_load.c -o build/bench_load -pthread

   Environment:
       MLOAD_BENCH_MB   size of the generated LLM-shaped checkpoint in MiB
                        (default 1024; at least one layer is always written)
       TMPDIR           where the temporary folder goes (default /tmp)

   It writes, in a fresh mkdtemp folder removed at exit:
     model.safetensors  LLM-shaped BF16 checkpoint: embedding [16384, 2048],
                        N layers of q,k,v,o (GQA, kv 512), gate/up/down
                        (5632), two norms, final norm, lm_head. Real bytes:
                        pseudo-random BF16 values in the normal range.
     cast.safetensors   one 16 Mi-element tensor each of BF16, F16,
                        F8_E4M3 and F32 for the cast-on-read figures.

   Measured (each a median of interleaved repetitions, the baseline timed in
   the same repetition; figures in GB/s = 1e9 bytes/s):
     B2  warm full load into pre-touched caller buffers: mload_map_load with
         1 and 2 threads vs pread loops with 1 and 2 threads; mload_map_read
         per tensor vs pread.
     B3  cast on read, 1 thread, pre-touched output: (a) the mload_cast
         kernel on ~64 MiB of output vs memcpy of the output bytes (info)
         and as a fraction of the bandwidth ceiling, memcpy's speed x
         2 out / (in + out) (judged: >= 0.9); (b) mload_map_read with `as`
         from the warm file vs the same-dtype read of the same tensor (info)
         and vs the kernel alone on the same elements (judged: <= 1.3x), for
         the default map (read_at into scratch, then cast) and for one opened
         with MLOAD_CAST_READ_VIEW (cast from the mapped pages).
     B4  cold full load (drop_caches before each run): mload_map_load with
         MLOAD_IO_DIRECT (2 and 1 threads) and without, vs
         `dd iflag=direct bs=16M`. Needs root; skipped otherwise. Up to 5
         reps, fewer when a 60 s budget is spent. "Cold" is the guest's
         page cache only: a VM host may still cache the disk.
     B5  library-allocated loads: mload_map_read_alloc of every tensor vs
         malloc + memset + pread of the same bytes (both pay first touch).
     B6  resident memory (VmRSS / VmHWM of /proc/self/status): one tensor
         into a pre-touched caller buffer; the whole model streamed through a
         64 MiB staging buffer.
   Exit status: 0 when everything ran (a MISS is a report, not a failure),
   1 on a real error. */

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#if defined(__linux__)
#include <sys/vfs.h>
#endif

#define BENCH_NAME "bench_load"
#include "bench_util.h"
#include "../st_write.h"

#define MIB ((uint64_t)1 << 20)
#define STAGE_BYTES (64u * MIB) /* B3a output size, B6 staging size */
#define CAST_N ((uint64_t)16 << 20) /* elements per tensor of cast.safetensors */

/* ------------------------------------------------------------ utilities */

static char g_dir[4096];
static char g_model[4200], g_cast[4200];
static volatile sig_atomic_t g_have_dir = 0;

static void cleanup(void) {
    if (g_model[0]) (void)unlink(g_model);
    if (g_cast[0]) (void)unlink(g_cast);
    if (g_have_dir) { (void)rmdir(g_dir); g_have_dir = 0; }
}

static void on_signal(int sig) {
    cleanup(); /* unlink and rmdir are async-signal-safe */
    signal(sig, SIG_DFL);
    raise(sig);
}

static void die_mload(const char *what, mload_result r, const mload_error *e) {
    die("%s: %s (%s): %s%s%s", what, mload_result_string(r), mload_result_string(e->code), e->message,
        e->tensor[0] ? " tensor " : "", e->tensor);
}

/* Big buffers: fresh anonymous mappings (so freeing gives the pages back,
   which keeps the RSS figures honest), pre-touched unless touch == 0. */
static unsigned char *big_alloc(uint64_t n, int touch) {
    void *p = mmap(NULL, (size_t)n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) die("mmap of %llu bytes: %s", (unsigned long long)n, strerror(errno));
    if (touch) memset(p, 0x5A, (size_t)n);
    return (unsigned char *)p;
}

static void big_free(unsigned char *p, uint64_t n) {
    if (p && munmap(p, (size_t)n) != 0) die("munmap: %s", strerror(errno));
}

static double mib(uint64_t bytes) { return (double)bytes / (double)MIB; }

static volatile uint64_t g_sink;

/* Fletcher-style 64-bit checksum over 8-byte words (n % 8 == 0) */
typedef struct cksum { uint64_t a, b; } cksum;
static void ck_update(cksum *c, const unsigned char *p, uint64_t n) {
    uint64_t a = c->a, b = c->b, i;
    for (i = 0; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        a += w;
        b += a;
    }
    c->a = a;
    c->b = b;
}

/* ------------------------------------------------------- /proc readings */

/* a "Key:   123 kB" line of /proc/self/status, in bytes; 0 when absent */
static uint64_t status_bytes(const char *key) {
    char line[256];
    size_t kl = strlen(key);
    uint64_t v = 0;
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return 0;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, key, kl) == 0 && line[kl] == ':') {
            v = (uint64_t)strtoull(line + kl + 1, NULL, 10) * 1024u;
            break;
        }
    }
    fclose(f);
    return v;
}

/* resets VmHWM to the current RSS (Linux >= 4.0); 1 on success */
static int reset_hwm(void) {
    int fd = open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC);
    ssize_t w;
    if (fd < 0) return 0;
    w = write(fd, "5", 1);
    if (close(fd) != 0) return 0;
    return w == 1;
}

/* 1 when the page cache was dropped */
static int drop_caches(void) {
    int fd;
    ssize_t w;
    sync();
    fd = open("/proc/sys/vm/drop_caches", O_WRONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    w = write(fd, "3\n", 2);
    if (close(fd) != 0) return 0;
    return w == 2;
}

/* fraction of the file's pages in the page cache (mincore), or -1 */
static double cached_fraction(const char *path, uint64_t size) {
    long pg = sysconf(_SC_PAGESIZE);
    size_t pages, i, n = 0;
    unsigned char *vec;
    void *p;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || pg <= 0) { if (fd >= 0) close(fd); return -1.0; }
    pages = (size_t)((size + (uint64_t)pg - 1) / (uint64_t)pg);
    p = mmap(NULL, (size_t)size, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (p == MAP_FAILED) return -1.0;
    vec = (unsigned char *)xmalloc(pages);
    if (mincore(p, (size_t)size, vec) != 0) { free(vec); munmap(p, (size_t)size); return -1.0; }
    for (i = 0; i < pages; ++i) n += vec[i] & 1u;
    free(vec);
    munmap(p, (size_t)size);
    return (double)n / (double)pages;
}

/* ------------------------------------------------------- result table */

typedef struct row {
    char id[8], what[64], fig[24], base[24], ratio[12], target[16], verdict[8];
} row;
static row g_rows[128];
static size_t g_nrows = 0;

static void add_row(const char *id, const char *what, const char *fig, const char *base, const char *ratio,
                    const char *target, const char *verdict) {
    row *r;
    if (g_nrows >= sizeof g_rows / sizeof g_rows[0]) die("too many table rows");
    r = &g_rows[g_nrows++];
    snprintf(r->id, sizeof r->id, "%s", id);
    snprintf(r->what, sizeof r->what, "%s", what);
    snprintf(r->fig, sizeof r->fig, "%s", fig);
    snprintf(r->base, sizeof r->base, "%s", base);
    snprintf(r->ratio, sizeof r->ratio, "%s", ratio);
    snprintf(r->target, sizeof r->target, "%s", target);
    snprintf(r->verdict, sizeof r->verdict, "%s", verdict);
}

/* a throughput row: figure and baseline in GB/s, ratio = fig / base;
   target <= 0 means an informational row */
static void add_tp_row(const char *id, const char *what, double fig_gbps, double base_gbps, double target) {
    char f[24], b[24], r[12], t[16];
    double ratio = base_gbps > 0 ? fig_gbps / base_gbps : 0.0;
    snprintf(f, sizeof f, "%.2f GB/s", fig_gbps);
    snprintf(b, sizeof b, "%.2f GB/s", base_gbps);
    snprintf(r, sizeof r, "%.2fx", ratio);
    if (target > 0) snprintf(t, sizeof t, ">= %.2fx", target);
    else snprintf(t, sizeof t, "info");
    add_row(id, what, f, b, r, t, target > 0 ? (ratio >= target ? "PASS" : "MISS") : "-");
}

/* a row comparing times: figure / baseline must stay <= target */
static void add_time_row(const char *id, const char *what, double fig_ns, double base_ns, double target) {
    char f[24], b[24], r[12], t[16];
    double ratio = base_ns > 0 ? fig_ns / base_ns : 0.0;
    snprintf(f, sizeof f, "%.2f ms", fig_ns / 1e6);
    snprintf(b, sizeof b, "%.2f ms", base_ns / 1e6);
    snprintf(r, sizeof r, "%.2fx", ratio);
    snprintf(t, sizeof t, "<= %.2fx", target);
    add_row(id, what, f, b, r, t, ratio <= target ? "PASS" : "MISS");
}

static void print_table(void) {
    size_t i, npass = 0, nmiss = 0, nskip = 0;
    printf("\n%-4s %-50s %-13s %-13s %-7s %-11s %s\n", "id", "what", "figure", "baseline", "ratio", "target",
           "verdict");
    for (i = 0; i < 120; ++i) putchar('-');
    putchar('\n');
    for (i = 0; i < g_nrows; ++i) {
        const row *r = &g_rows[i];
        printf("%-4s %-50s %-13s %-13s %-7s %-11s %s\n", r->id, r->what, r->fig, r->base, r->ratio, r->target,
               r->verdict);
        npass += strcmp(r->verdict, "PASS") == 0;
        nmiss += strcmp(r->verdict, "MISS") == 0;
        nskip += strcmp(r->verdict, "skip") == 0;
    }
    printf("summary: %zu PASS, %zu MISS, %zu skipped, %zu informational rows\n", npass, nmiss, nskip,
           g_nrows - npass - nmiss - nskip);
}

/* ---------------------------------------------------------- generation */

typedef struct tspec {
    char name[96];
    mload_dtype dt;
    unsigned rank;
    uint64_t d[2];
    uint64_t nbytes;
    const unsigned char *data; /* NULL: the BF16 generator stream */
} tspec;

typedef struct tlist { tspec *v; size_t n, cap; } tlist;

static void tl_add(tlist *l, mload_dtype dt, unsigned rank, uint64_t d0, uint64_t d1, const unsigned char *data,
                   const char *fmt, ...) {
    tspec *t;
    va_list ap;
    l->v = (tspec *)grow_array(l->v, &l->cap, l->n, sizeof(tspec));
    t = &l->v[l->n++];
    va_start(ap, fmt);
    format_name(t->name, sizeof t->name, fmt, ap);
    va_end(ap);
    t->dt = dt;
    t->rank = rank;
    t->d[0] = d0;
    t->d[1] = rank > 1 ? d1 : 1;
    t->nbytes = t->d[0] * t->d[1] * (mload_dtype_bits(dt) / 8u);
    t->data = data;
}

static uint64_t rng_next(uint64_t *s) {
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *s = x;
    return x;
}

/* n bytes (n % 8 == 0) of the generator stream, each 64-bit word stored
   little-endian */
static void gen_raw(unsigned char *p, size_t n, uint64_t *s) {
    size_t i;
    int k;
    for (i = 0; i + 8 <= n; i += 8) {
        uint64_t r = rng_next(s);
        for (k = 0; k < 8; ++k) p[i + (size_t)k] = (unsigned char)((r >> (8 * k)) & 0xFFu);
    }
}

/* n bytes (n % 8 == 0) of little-endian floats of esz (2 or 4) bytes, cut
   from the generator's words: random sign and mantissa (the bits in keep),
   exponent field base + (0..ebits) at bit `shift` */
static inline void gen_float(unsigned char *p, size_t n, uint64_t *s, unsigned esz, uint32_t keep, uint32_t base,
                             uint32_t ebits, unsigned shift) {
    uint64_t mask = ((uint64_t)1 << (8 * esz)) - 1;
    size_t i;
    unsigned k, j;
    for (i = 0; i + 8 <= n; i += 8) {
        uint64_t r = rng_next(s);
        for (k = 0; k < 8; k += esz) {
            uint32_t u = (uint32_t)((r >> (8 * k)) & mask);
            uint32_t v = (u & keep) | ((base + ((u >> shift) & ebits)) << shift);
            for (j = 0; j < esz; ++j) p[i + k + j] = (unsigned char)((v >> (8 * j)) & 0xFFu);
        }
    }
}

/* BF16 and F16: exponent 2^-7 .. 2^0 (normal numbers, weight-like) */
static void gen_bf16(unsigned char *p, size_t n, uint64_t *s) { gen_float(p, n, s, 2, 0x807Fu, 120u, 7u, 7); }
static void gen_f16(unsigned char *p, size_t n, uint64_t *s) { gen_float(p, n, s, 2, 0x83FFu, 8u, 7u, 10); }
/* F32: exponent 2^-7 .. 2^8 (inside F8_E4M3's range, past E5M2's subnormals) */
static void gen_f32(unsigned char *p, size_t n, uint64_t *s) { gen_float(p, n, s, 4, 0x807FFFFFu, 120u, 15u, 23); }

/* F8_E4M3: any byte except the NaNs S.1111.111 */
static void gen_f8(unsigned char *p, size_t n, uint64_t *s) {
    size_t i;
    gen_raw(p, n, s);
    for (i = 0; i < (n & ~(size_t)7); ++i)
        if ((p[i] & 0x7Fu) == 0x7Fu) p[i] ^= 1u;
}

/* Writes a safetensors file: 8-byte N, compact JSON header padded with
   spaces to a multiple of 8, contiguous data in list order. Tensors without
   data get the BF16 generator stream; *ck receives the checksum of the whole
   data region. fsync'd, so later cold-cache runs start clean. */
static uint64_t write_st(const char *path, const tlist *l, uint64_t seed, cksum *ck, uint64_t *data_bytes) {
    st_buf b = ST_BUF_INIT;
    size_t i, bufsz = (size_t)(4u * MIB);
    uint64_t off = 0, n, s = seed;
    unsigned char *buf;
    int fd;
    st_begin(&b);
    st_printf(&b, "{\"__metadata__\":{\"format\":\"pt\"}");
    for (i = 0; i < l->n; ++i) {
        const tspec *t = &l->v[i];
        st_tensor(&b, t->name, mload_dtype_name(t->dt), t->rank, t->d, off, off + t->nbytes);
        off += t->nbytes;
    }
    st_printf(&b, "}");
    n = st_end_header(&b, ST_PAD8);
    if (b.failed) die("out of memory");

    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) die("create '%s': %s", path, strerror(errno));
    write_all(fd, b.p, b.n, path); /* length and header */
    st_free(&b);
    buf = (unsigned char *)xmalloc(bufsz);
    ck->a = ck->b = 0;
    for (i = 0; i < l->n; ++i) {
        const tspec *t = &l->v[i];
        uint64_t left = t->nbytes, done = 0;
        if (t->nbytes % 8u) die("tensor '%s': size not a multiple of 8", t->name);
        while (left > 0) {
            size_t c = left > bufsz ? bufsz : (size_t)left;
            const unsigned char *src;
            if (t->data) {
                src = t->data + done;
            } else {
                gen_bf16(buf, c, &s);
                src = buf;
            }
            ck_update(ck, src, c);
            write_all(fd, src, c, path);
            left -= c;
            done += c;
        }
    }
    free(buf);
    if (fsync(fd) != 0) die("fsync '%s': %s", path, strerror(errno));
    if (close(fd) != 0) die("close '%s': %s", path, strerror(errno));
    *data_bytes = off;
    return 8u + n + off;
}

/* LLM-shaped BF16 checkpoint: hidden 2048, GQA kv 512, intermediate 5632,
   vocab 16384 (embedding and lm_head are 64 MiB each) */
#define HID 2048u
#define KV 512u
#define INTER 5632u
#define VOCAB 16384u

static unsigned gen_model_list(tlist *l, uint64_t target_bytes) {
    uint64_t layer = 2u * ((uint64_t)HID * HID * 2u + (uint64_t)KV * HID * 2u + (uint64_t)INTER * HID * 3u + 2u * HID);
    uint64_t fixed = 2u * 2u * (uint64_t)VOCAB * HID + 2u * HID;
    unsigned nl = target_bytes > fixed ? (unsigned)((target_bytes - fixed) / layer) : 0u, i;
    if (nl < 1) nl = 1;
    tl_add(l, MLOAD_DTYPE_BF16, 2, VOCAB, HID, NULL, "model.embed_tokens.weight");
    for (i = 0; i < nl; ++i) {
        tl_add(l, MLOAD_DTYPE_BF16, 2, HID, HID, NULL, "model.layers.%u.self_attn.q_proj.weight", i);
        tl_add(l, MLOAD_DTYPE_BF16, 2, KV, HID, NULL, "model.layers.%u.self_attn.k_proj.weight", i);
        tl_add(l, MLOAD_DTYPE_BF16, 2, KV, HID, NULL, "model.layers.%u.self_attn.v_proj.weight", i);
        tl_add(l, MLOAD_DTYPE_BF16, 2, HID, HID, NULL, "model.layers.%u.self_attn.o_proj.weight", i);
        tl_add(l, MLOAD_DTYPE_BF16, 2, INTER, HID, NULL, "model.layers.%u.mlp.gate_proj.weight", i);
        tl_add(l, MLOAD_DTYPE_BF16, 2, INTER, HID, NULL, "model.layers.%u.mlp.up_proj.weight", i);
        tl_add(l, MLOAD_DTYPE_BF16, 2, HID, INTER, NULL, "model.layers.%u.mlp.down_proj.weight", i);
        tl_add(l, MLOAD_DTYPE_BF16, 1, HID, 0, NULL, "model.layers.%u.input_layernorm.weight", i);
        tl_add(l, MLOAD_DTYPE_BF16, 1, HID, 0, NULL, "model.layers.%u.post_attention_layernorm.weight", i);
    }
    tl_add(l, MLOAD_DTYPE_BF16, 1, HID, 0, NULL, "model.norm.weight");
    tl_add(l, MLOAD_DTYPE_BF16, 2, VOCAB, HID, NULL, "lm_head.weight");
    return nl;
}

/* ------------------------------------------------------------ the model */

typedef struct model {
    mload_map *m;
    const mload_tensor **t; /* file order (ascending offset) */
    uint64_t n, data_off, data_size, file_size, header;
    int fd; /* for the baselines */
    const char *path;
} model;

static int cmp_tensor_off(const void *a, const void *b) {
    const mload_tensor *x = *(const mload_tensor *const *)a, *y = *(const mload_tensor *const *)b;
    return x->offset < y->offset ? -1 : (x->offset > y->offset ? 1 : 0);
}

static void model_open_as(model *md, const char *path, mload_cast_read cast_read) {
    mload_map_desc d;
    mload_error e;
    mload_result r;
    const mload_file *f;
    uint64_t i;
    memset(md, 0, sizeof *md);
    memset(&d, 0, sizeof d);
    memset(&e, 0, sizeof e);
    d.paths = &path;
    d.path_count = 1;
    d.cast_read = cast_read;
    r = mload_map_open(&d, &md->m, &e);
    if (r != MLOAD_OK) die_mload("mload_map_open", r, &e);
    md->path = path;
    md->n = mload_map_count(md->m);
    md->t = (const mload_tensor **)xmalloc((size_t)md->n * sizeof(*md->t));
    for (i = 0; i < md->n; ++i) {
        md->t[i] = mload_map_tensor(md->m, i);
        if (!md->t[i]) die("mload_map_tensor(%llu) returned NULL", (unsigned long long)i);
    }
    qsort(md->t, (size_t)md->n, sizeof(*md->t), cmp_tensor_off);
    f = mload_map_file(md->m, 0);
    if (!f) die("mload_map_file(0) returned NULL");
    md->data_off = mload_file_data_offset(f);
    md->header = mload_file_header_size(f);
    md->file_size = mload_file_size(f);
    md->data_size = mload_map_data_size(md->m);
    if (md->data_off + md->data_size != md->file_size) die("'%s': data region does not end the file", path);
    md->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (md->fd < 0) die("open '%s': %s", path, strerror(errno));
}

static void model_open(model *md, const char *path) { model_open_as(md, path, MLOAD_CAST_READ_COPY); }

static void model_close(model *md) {
    mload_map_close(md->m);
    close(md->fd);
    free(md->t);
    memset(md, 0, sizeof *md);
}

static const mload_tensor *model_find(const model *md, const char *name) {
    const mload_tensor *t = mload_map_find(md->m, name);
    if (!t) die("'%s': tensor '%s' not found", md->path, name);
    return t;
}

/* items for a full load into an arena laid out like the file's data region */
static mload_load_item *model_items(const model *md, unsigned char *arena) {
    mload_load_item *it = (mload_load_item *)xmalloc((size_t)md->n * sizeof(*it));
    uint64_t i;
    memset(it, 0, (size_t)md->n * sizeof(*it));
    for (i = 0; i < md->n; ++i) {
        it[i].tensor = md->t[i];
        it[i].as = MLOAD_DTYPE_INVALID;
        it[i].dst = arena + (md->t[i]->offset - md->data_off);
        it[i].dst_size = md->t[i]->nbytes;
    }
    return it;
}

static void lib_load(const model *md, mload_load_item *items, uint32_t threads, mload_io io) {
    mload_load_opts o;
    mload_error e;
    mload_result r;
    memset(&o, 0, sizeof o);
    memset(&e, 0, sizeof e);
    o.threads = threads;
    o.io = io;
    r = mload_map_load(md->m, items, md->n, &o, &e);
    if (r != MLOAD_OK) die_mload("mload_map_load", r, &e);
}

static void lib_read_each(const model *md, unsigned char *arena) {
    uint64_t i;
    for (i = 0; i < md->n; ++i) {
        const mload_tensor *t = md->t[i];
        mload_error e;
        mload_result r = mload_map_read(md->m, t, MLOAD_DTYPE_INVALID, arena + (t->offset - md->data_off), t->nbytes, &e);
        if (r != MLOAD_OK) die_mload("mload_map_read", r, &e);
    }
}

/* baseline: pread of every tensor's bytes inside [a, b) of the data region */
static void pread_window(const model *md, unsigned char *arena, uint64_t a, uint64_t b) {
    uint64_t i;
    for (i = 0; i < md->n; ++i) {
        uint64_t ro = md->t[i]->offset - md->data_off, lo, hi;
        lo = ro > a ? ro : a;
        hi = ro + md->t[i]->nbytes < b ? ro + md->t[i]->nbytes : b;
        if (lo < hi) read_exact(md->fd, arena + lo, hi - lo, md->data_off + lo, md->path);
    }
}

typedef struct pr_job { const model *md; unsigned char *arena; uint64_t a, b; } pr_job;

static void *pr_main(void *arg) {
    pr_job *j = (pr_job *)arg;
    pread_window(j->md, j->arena, j->a, j->b);
    return NULL;
}

/* baseline with T threads (T <= 16): the calling thread and T-1 others, each
   reading an equal share of the bytes */
static void pread_threads(const model *md, unsigned char *arena, unsigned T) {
    pthread_t tid[16];
    pr_job job[16];
    unsigned k;
    if (T < 1 || T > 16) die("bad thread count");
    for (k = 0; k < T; ++k) {
        job[k].md = md;
        job[k].arena = arena;
        job[k].a = md->data_size * k / T;
        job[k].b = md->data_size * (k + 1) / T;
    }
    for (k = 1; k < T; ++k)
        if (pthread_create(&tid[k], NULL, pr_main, &job[k]) != 0) die("pthread_create failed");
    pr_main(&job[0]);
    for (k = 1; k < T; ++k)
        if (pthread_join(tid[k], NULL) != 0) die("pthread_join failed");
}

static void check_arena(const model *md, const unsigned char *arena, const cksum *want, const char *what) {
    cksum c = {0, 0};
    ck_update(&c, arena, md->data_size);
    if (c.a != want->a || c.b != want->b) die("%s: the loaded bytes differ from the generated ones", what);
}

/* ---------------------------------------------------------------- B2 */

static void bench_b2(const model *md, unsigned char *arena, mload_load_item *items, const cksum *ck, size_t reps) {
    enum { L1, P1, L2, P2, RD, NOPS };
    static const char *names[NOPS] = {"mload_map_load, threads=1", "baseline: pread loop, 1 thread",
                                      "mload_map_load, threads=2", "baseline: pread, 2 threads",
                                      "mload_map_read per tensor, 1 thread"};
    uint64_t t[NOPS][64];
    size_t r;
    int op;

    /* warm-up and correctness: each path once into a cleared arena */
    memset(arena, 0, (size_t)md->data_size);
    pread_threads(md, arena, 1);
    check_arena(md, arena, ck, "pread baseline");
    memset(arena, 0, (size_t)md->data_size);
    lib_load(md, items, 1, MLOAD_IO_DEFAULT);
    check_arena(md, arena, ck, "mload_map_load threads=1");
    memset(arena, 0, (size_t)md->data_size);
    lib_load(md, items, 2, MLOAD_IO_DEFAULT);
    check_arena(md, arena, ck, "mload_map_load threads=2");
    memset(arena, 0, (size_t)md->data_size);
    lib_read_each(md, arena);
    check_arena(md, arena, ck, "mload_map_read loop");

    for (r = 0; r < reps; ++r) {
        int k;
        for (k = 0; k < NOPS; ++k) {
            uint64_t t0;
            op = (int)(((size_t)k + r) % NOPS); /* rotate the order per rep */
            t0 = now_ns();
            switch (op) {
            case L1: lib_load(md, items, 1, MLOAD_IO_DEFAULT); break;
            case P1: pread_threads(md, arena, 1); break;
            case L2: lib_load(md, items, 2, MLOAD_IO_DEFAULT); break;
            case P2: pread_threads(md, arena, 2); break;
            default: lib_read_each(md, arena); break;
            }
            t[op][r] = now_ns() - t0;
        }
    }
    printf("\nB2 warm full load into pre-touched caller buffers: %llu tensors, %.1f MiB, %zu reps\n",
           (unsigned long long)md->n, mib(md->data_size), reps);
    printf("  %-40s %10s %10s %9s\n", "measurement", "median ms", "min ms", "GB/s");
    for (op = 0; op < NOPS; ++op)
        printf("  %-40s %10.2f %10.2f %9.2f\n", names[op], median_ns(t[op], reps) / 1e6, min_ns(t[op], reps) / 1e6,
               gbps(md->data_size, median_ns(t[op], reps)));
    add_tp_row("B2", "warm load, mload_map_load T=1 vs pread 1 thread", gbps(md->data_size, median_ns(t[L1], reps)),
               gbps(md->data_size, median_ns(t[P1], reps)), 0.9);
    add_tp_row("B2", "warm load, mload_map_load T=2 vs pread 2 threads", gbps(md->data_size, median_ns(t[L2], reps)),
               gbps(md->data_size, median_ns(t[P2], reps)), 0.9);
    add_tp_row("B2", "warm load, mload_map_read loop vs pread 1 thread", gbps(md->data_size, median_ns(t[RD], reps)),
               gbps(md->data_size, median_ns(t[P1], reps)), 0.9);
}

/* ---------------------------------------------------------------- B3 */

typedef struct cast_pair { mload_dtype s, d; } cast_pair;
static const cast_pair g_pairs[] = {
    {MLOAD_DTYPE_BF16, MLOAD_DTYPE_F32},    {MLOAD_DTYPE_F16, MLOAD_DTYPE_F32},   {MLOAD_DTYPE_F8_E4M3, MLOAD_DTYPE_BF16},
    {MLOAD_DTYPE_F8_E4M3, MLOAD_DTYPE_F32}, {MLOAD_DTYPE_F32, MLOAD_DTYPE_BF16},  {MLOAD_DTYPE_F32, MLOAD_DTYPE_F16},
    {MLOAD_DTYPE_F32, MLOAD_DTYPE_F8_E4M3}, {MLOAD_DTYPE_F32, MLOAD_DTYPE_F8_E5M2},
};
#define NPAIRS (sizeof g_pairs / sizeof g_pairs[0])

typedef struct cast_src { const unsigned char *bf16, *f16, *f8, *f32; } cast_src;

static const unsigned char *src_of(const cast_src *cs, mload_dtype t) {
    switch (t) {
    case MLOAD_DTYPE_BF16: return cs->bf16;
    case MLOAD_DTYPE_F16: return cs->f16;
    case MLOAD_DTYPE_F8_E4M3: return cs->f8;
    default: return cs->f32;
    }
}

static const char *tensor_of(mload_dtype t) {
    switch (t) {
    case MLOAD_DTYPE_BF16: return "bf16";
    case MLOAD_DTYPE_F16: return "f16";
    case MLOAD_DTYPE_F8_E4M3: return "f8_e4m3";
    default: return "f32";
    }
}

static uint64_t esize(mload_dtype t) { return mload_dtype_bits(t) / 8u; }

static void pair_name(char *out, size_t n, const cast_pair *p) {
    const char *a = mload_dtype_name(p->s), *b = mload_dtype_name(p->d);
    snprintf(out, n, "%s->%s", a ? a : "?", b ? b : "?");
}

static void convert_or_die(void *dst, mload_dtype dt, const void *src, mload_dtype st, uint64_t count) {
    mload_result r = mload_cast(dst, dt, src, st, count, MLOAD_F8_OVERFLOW_SATURATE, NULL);
    if (r != MLOAD_OK) die("mload_cast %s->%s: %s", mload_dtype_name(st), mload_dtype_name(dt), mload_result_string(r));
}

/* A traffic floor for each pair: the same bytes read and written with the
   cheapest possible element operation (a shift), so "kernel / floor" says how
   far a kernel is from being memory-bound. Diagnostic only, not a target. */
#if defined(__GNUC__) && !defined(__clang__)
#define BENCH_VECTORIZE __attribute__((optimize("tree-vectorize")))
#else
#define BENCH_VECTORIZE
#endif

BENCH_VECTORIZE static void floor_kernel(unsigned char *d, uint64_t db, const unsigned char *s, uint64_t sb, uint64_t n) {
    uint64_t i;
    if (sb == 2 && db == 4) {
        for (i = 0; i < n; ++i) {
            uint16_t v;
            uint32_t w;
            memcpy(&v, s + 2 * i, 2);
            w = (uint32_t)v << 16;
            memcpy(d + 4 * i, &w, 4);
        }
    } else if (sb == 1 && db == 2) {
        for (i = 0; i < n; ++i) {
            uint16_t w = (uint16_t)((unsigned)s[i] << 8);
            memcpy(d + 2 * i, &w, 2);
        }
    } else if (sb == 1 && db == 4) {
        for (i = 0; i < n; ++i) {
            uint32_t w = (uint32_t)s[i] << 24;
            memcpy(d + 4 * i, &w, 4);
        }
    } else if (sb == 4 && db == 2) {
        for (i = 0; i < n; ++i) {
            uint32_t v;
            uint16_t w;
            memcpy(&v, s + 4 * i, 4);
            w = (uint16_t)(v >> 16);
            memcpy(d + 2 * i, &w, 2);
        }
    } else if (sb == 4 && db == 1) {
        for (i = 0; i < n; ++i) {
            uint32_t v;
            memcpy(&v, s + 4 * i, 4);
            d[i] = (unsigned char)(v >> 24);
        }
    } else {
        die("floor_kernel: no floor for %llu -> %llu bytes", (unsigned long long)sb, (unsigned long long)db);
    }
}

/* (a) the kernel on memory: ~64 MiB of output per call */
static void bench_b3a(const cast_src *cs, unsigned char *dst, const unsigned char *cpy_src, size_t reps) {
    uint64_t tk[NPAIRS][64], tm[NPAIRS][64], tf[NPAIRS][64];
    size_t r, p;
    for (p = 0; p < NPAIRS; ++p) { /* warm-up */
        uint64_t n = STAGE_BYTES / esize(g_pairs[p].d);
        convert_or_die(dst, g_pairs[p].d, src_of(cs, g_pairs[p].s), g_pairs[p].s, n);
    }
    for (r = 0; r < reps; ++r) {
        for (p = 0; p < NPAIRS; ++p) {
            const cast_pair *cp = &g_pairs[p];
            uint64_t n = STAGE_BYTES / esize(cp->d);
            int k;
            for (k = 0; k < 3; ++k) {
                int op = (int)(((size_t)k + r) % 3u);
                uint64_t t0 = now_ns(), dt;
                if (op == 0) convert_or_die(dst, cp->d, src_of(cs, cp->s), cp->s, n);
                else if (op == 1) memcpy(dst, cpy_src, (size_t)STAGE_BYTES);
                else floor_kernel(dst, esize(cp->d), src_of(cs, cp->s), esize(cp->s), n);
                dt = now_ns() - t0;
                if (op == 0) tk[p][r] = dt;
                else if (op == 1) tm[p][r] = dt;
                else tf[p][r] = dt;
            }
            g_sink += dst[r];
        }
    }
    printf("\nB3a mload_cast kernel (%s kernels), 1 thread, %.0f MiB of output per call into pre-touched memory, %zu reps\n",
           mload_simd_name(mload_cast_simd()), mib(STAGE_BYTES), reps);
    printf("  %-18s %9s %9s %9s %12s %8s %10s %12s %9s\n", "pair", "median ms", "out GB/s", "in GB/s",
           "memcpy GB/s", "ratio", "floor GB/s", "kernel/floor", "ceiling");
    for (p = 0; p < NPAIRS; ++p) {
        const cast_pair *cp = &g_pairs[p];
        uint64_t n = STAGE_BYTES / esize(cp->d);
        double k = median_ns(tk[p], reps), mc = median_ns(tm[p], reps), fl = median_ns(tf[p], reps);
        char nm[24], what[64];
        pair_name(nm, sizeof nm, cp);
        /* the bandwidth ceiling: memcpy moves 2 x out bytes, the kernel in + out */
        double ceil_gbps = gbps(STAGE_BYTES, mc) * 2.0 * (double)esize(cp->d) / (double)(esize(cp->s) + esize(cp->d));
        printf("  %-18s %9.2f %9.2f %9.2f %12.2f %7.2fx %10.2f %11.2fx %8.2fx\n", nm, k / 1e6, gbps(STAGE_BYTES, k),
               gbps(n * esize(cp->s), k), gbps(STAGE_BYTES, mc), mc / k, gbps(STAGE_BYTES, fl), fl / k,
               gbps(STAGE_BYTES, k) / ceil_gbps);
        snprintf(what, sizeof what, "convert kernel %s (out bytes) vs memcpy", nm);
        add_tp_row("B3a", what, gbps(STAGE_BYTES, k), gbps(STAGE_BYTES, mc), 0.0); /* judged against the ceiling below */
        snprintf(what, sizeof what, "kernel %s vs bandwidth ceiling", nm);
        add_tp_row("B3a", what, gbps(STAGE_BYTES, k), ceil_gbps, 0.9);
    }
    printf("  (ratio: output bytes/s vs memcpy of the output bytes; floor: the same bytes read and written with\n"
           "   one shift per element, compiled here, i.e. how far the kernel is from memory speed; ceiling: output\n"
           "   bytes/s vs memcpy's speed x 2 out / (in + out), the kernel's speed if it were bound by memory traffic)\n");
}

/* (b) mload_map_read with `as` from the warm cast file */
static void bench_b3b(const model *cf, const model *cfv, const cast_src *cs, unsigned char *dst, unsigned char *chk,
                      const unsigned char *cpy_src, size_t reps) {
    uint64_t tc[NPAIRS][64], ts[NPAIRS][64], tm[NPAIRS][64], tv[NPAIRS][64], tk[NPAIRS][64], tw[NPAIRS][64];
    size_t r, p;
    for (p = 0; p < NPAIRS; ++p) { /* correctness + warm-up */
        const cast_pair *cp = &g_pairs[p];
        const mload_tensor *t = model_find(cf, tensor_of(cp->s));
        mload_error e;
        mload_result rr;
        if (t->dtype != cp->s || t->numel != CAST_N) die("cast.safetensors: tensor '%s' is not as written", t->name);
        rr = mload_map_read(cf->m, t, cp->d, dst, STAGE_BYTES, &e);
        if (rr != MLOAD_OK) die_mload("mload_map_read (converting)", rr, &e);
        convert_or_die(chk, cp->d, src_of(cs, cp->s), cp->s, CAST_N);
        if (memcmp(dst, chk, (size_t)(CAST_N * esize(cp->d))) != 0)
            die("mload_map_read %s->%s differs from mload_cast of the same bytes", mload_dtype_name(cp->s),
                mload_dtype_name(cp->d));
        rr = mload_map_read(cfv->m, model_find(cfv, tensor_of(cp->s)), cp->d, dst, STAGE_BYTES, &e);
        if (rr != MLOAD_OK) die_mload("mload_map_read (MLOAD_CAST_READ_VIEW)", rr, &e);
        if (memcmp(dst, chk, (size_t)(CAST_N * esize(cp->d))) != 0)
            die("mload_map_read %s->%s through views differs from mload_cast of the same bytes", mload_dtype_name(cp->s),
                mload_dtype_name(cp->d));
    }
    for (r = 0; r < reps; ++r) {
        for (p = 0; p < NPAIRS; ++p) {
            const cast_pair *cp = &g_pairs[p];
            const mload_tensor *t = model_find(cf, tensor_of(cp->s));
            uint64_t out = CAST_N * esize(cp->d);
            int k;
            for (k = 0; k < 6; ++k) {
                int op = (int)(((size_t)k + r) % 6u);
                mload_error e;
                mload_result rr = MLOAD_OK;
                uint64_t t0 = now_ns(), dt;
                if (op == 0) {
                    rr = mload_map_read(cf->m, t, cp->d, dst, STAGE_BYTES, &e);
                } else if (op == 1) {
                    rr = mload_map_read(cf->m, t, MLOAD_DTYPE_INVALID, dst, STAGE_BYTES, &e);
                } else if (op == 2) {
                    memcpy(dst, cpy_src, (size_t)out);
                } else if (op == 4) { /* the kernel alone, on the same elements in memory */
                    convert_or_die(dst, cp->d, src_of(cs, cp->s), cp->s, CAST_N);
                } else if (op == 5) { /* the map opened with MLOAD_CAST_READ_VIEW */
                    rr = mload_map_read(cfv->m, model_find(cfv, tensor_of(cp->s)), cp->d, dst, STAGE_BYTES, &e);
                } else { /* the alternative with the public API: convert straight from a view */
                    mload_view v;
                    rr = mload_view_open(cf->m, t, &v, &e);
                    if (rr == MLOAD_OK) {
                        convert_or_die(dst, cp->d, v.data, cp->s, CAST_N);
                        mload_view_close(&v);
                    }
                }
                dt = now_ns() - t0;
                if (rr != MLOAD_OK) die_mload(op == 3 ? "mload_view_open" : "mload_map_read", rr, &e);
                if (op == 0) tc[p][r] = dt;
                else if (op == 1) ts[p][r] = dt;
                else if (op == 2) tm[p][r] = dt;
                else if (op == 3) tv[p][r] = dt;
                else if (op == 4) tk[p][r] = dt;
                else tw[p][r] = dt;
            }
        }
    }
    printf("\nB3b mload_map_read with `as`, warm file, 1 thread, %llu elements per tensor, %zu reps\n",
           (unsigned long long)CAST_N, reps);
    printf("  %-18s %8s %9s %13s %8s %12s %10s %15s %10s %9s %13s %9s\n", "pair", "cast ms", "out GB/s", "same-dtype ms",
           "vs same", "memcpy GB/s", "vs memcpy", "view+convert ms", "kernel ms", "/kernel", "VIEW cast ms", "/kernel");
    for (p = 0; p < NPAIRS; ++p) {
        const cast_pair *cp = &g_pairs[p];
        uint64_t out = CAST_N * esize(cp->d), in = CAST_N * esize(cp->s);
        double c = median_ns(tc[p], reps), s = median_ns(ts[p], reps), mc = median_ns(tm[p], reps);
        double vc = median_ns(tv[p], reps), kn = median_ns(tk[p], reps), vw = median_ns(tw[p], reps);
        char nm[24], what[64];
        pair_name(nm, sizeof nm, cp);
        printf("  %-18s %8.2f %9.2f %13.2f %7.2fx %12.2f %9.2fx %15.2f %10.2f %8.2fx %13.2f %8.2fx\n", nm, c / 1e6,
               gbps(out, c), s / 1e6, s / c, gbps(out, mc), mc / c, vc / 1e6, kn / 1e6, c / kn, vw / 1e6, vw / kn);
        snprintf(what, sizeof what, "map_read %s vs same-dtype read", nm);
        /* same source bytes on both sides: the ratio of times */
        add_tp_row("B3b", what, gbps(in, c), gbps(in, s), 0.0);
        snprintf(what, sizeof what, "map_read %s (copy) vs kernel alone", nm);
        add_time_row("B3b", what, c, kn, 1.3);
        snprintf(what, sizeof what, "map_read %s (VIEW) vs kernel alone", nm);
        add_time_row("B3b", what, vw, kn, 1.3);
    }
    printf("  (vs same: same-dtype read time / cast read time, i.e. source bytes/s ratio; vs memcpy: output\n"
           "   bytes/s against memcpy of the output bytes; view+convert: mload_view_open + mload_cast, info;\n"
           "   kernel: mload_cast of the same elements from memory; /kernel: read time / kernel time, for the\n"
           "   default map (copy: read_at into cache-sized scratch, then cast) and one opened with\n"
           "   MLOAD_CAST_READ_VIEW (cast straight from the file's mapped pages))\n");
}

/* ---------------------------------------------------------------- B4 */

static void bench_b4(const model *md, unsigned char *arena, mload_load_item *items, const cksum *ck, double budget_s) {
    enum { DD, LD2, LD1, LB2, NV };
    static const char *names[NV] = {"dd iflag=direct bs=16M", "mload_map_load DIRECT, threads=2",
                                    "mload_map_load DIRECT, threads=1", "mload_map_load buffered, threads=2"};
    uint64_t t[NV][8];
    const size_t max_reps = 5;
    char cmd[4600];
    size_t reps = 0, r;
    uint64_t t_start = now_ns();
    double frac;
    int v;
#if defined(__linux__)
    struct statfs sf;
    if (statfs(md->path, &sf) == 0 && (unsigned long)sf.f_type == 0x01021994ul) {
        printf("\nB4 skipped: the files are on tmpfs, which has no cold cache\n");
        add_row("B4", "cold full load", "-", "-", "-", ">= 0.90x", "skip");
        return;
    }
#endif
    if (strchr(md->path, '\'')) die("temporary path contains a quote: '%s'", md->path);
    snprintf(cmd, sizeof cmd, "dd if='%s' of=/dev/null iflag=direct bs=16M status=none", md->path);
    if (!drop_caches()) {
        printf("\nB4 skipped: cannot write /proc/sys/vm/drop_caches (needs root)\n");
        add_row("B4", "cold full load", "-", "-", "-", ">= 0.90x", "skip");
        return;
    }
    frac = cached_fraction(md->path, md->file_size);
    printf("\nB4 cold full load: page cache dropped, %.1f%% of model.safetensors still cached\n",
           frac < 0 ? -100.0 : 100.0 * frac);
    for (r = 0; r < max_reps; ++r) {
        int k;
        for (k = 0; k < NV; ++k) {
            uint64_t t0;
            v = (int)(((size_t)k + r) % NV);
            if (r == 0 && v != DD) memset(arena, 0, (size_t)md->data_size);
            if (!drop_caches()) die("drop_caches failed after succeeding once");
            t0 = now_ns();
            if (v == DD) {
                int st = system(cmd);
                if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
                    printf("B4 skipped: '%s' failed (status %d)\n", cmd, st);
                    add_row("B4", "cold full load", "-", "-", "-", ">= 0.90x", "skip");
                    return;
                }
            } else if (v == LD2) {
                lib_load(md, items, 2, MLOAD_IO_DIRECT);
            } else if (v == LD1) {
                lib_load(md, items, 1, MLOAD_IO_DIRECT);
            } else {
                lib_load(md, items, 2, MLOAD_IO_DEFAULT);
            }
            t[v][r] = now_ns() - t0;
            if (r == 0 && v != DD) check_arena(md, arena, ck, names[v]);
        }
        reps = r + 1;
        if ((double)(now_ns() - t_start) / 1e9 > budget_s) break;
    }
    printf("  %-40s %10s %10s %9s   (%zu reps)\n", "measurement", "median ms", "min ms", "GB/s", reps);
    for (v = 0; v < NV; ++v) {
        uint64_t bytes = v == DD ? md->file_size : md->data_size;
        printf("  %-40s %10.2f %10.2f %9.2f\n", names[v], median_ns(t[v], reps) / 1e6, min_ns(t[v], reps) / 1e6,
               gbps(bytes, median_ns(t[v], reps)));
    }
    {
        double dd = gbps(md->file_size, median_ns(t[DD], reps));
        add_tp_row("B4", "cold load, DIRECT T=2 vs dd iflag=direct", gbps(md->data_size, median_ns(t[LD2], reps)), dd, 0.9);
        add_tp_row("B4", "cold load, DIRECT T=1 vs dd iflag=direct", gbps(md->data_size, median_ns(t[LD1], reps)), dd, 0.0);
        add_tp_row("B4", "cold load, buffered T=2 vs dd iflag=direct", gbps(md->data_size, median_ns(t[LB2], reps)), dd, 0.0);
    }
}

/* ---------------------------------------------------------------- B5 */

static void bench_b5(const model *md, size_t reps) {
    void **p = (void **)xmalloc((size_t)md->n * sizeof(void *));
    uint64_t *sz = (uint64_t *)xmalloc((size_t)md->n * sizeof(uint64_t));
    uint64_t tl[64], tb[64];
    size_t r;
    for (r = 0; r < reps + 1; ++r) { /* round 0 is a warm-up */
        int k;
        for (k = 0; k < 2; ++k) {
            int lib = ((size_t)k + r) % 2 == 0;
            uint64_t i, t0 = now_ns(), dt;
            if (lib) {
                for (i = 0; i < md->n; ++i) {
                    mload_error e;
                    mload_result rr = mload_map_read_alloc(md->m, md->t[i], MLOAD_DTYPE_INVALID, &p[i], &sz[i], &e);
                    if (rr != MLOAD_OK) die_mload("mload_map_read_alloc", rr, &e);
                }
            } else {
                for (i = 0; i < md->n; ++i) {
                    sz[i] = md->t[i]->nbytes;
                    p[i] = xmalloc((size_t)sz[i]);
                    memset(p[i], 0, (size_t)sz[i]);
                    read_exact(md->fd, p[i], sz[i], md->t[i]->offset, md->path);
                }
            }
            dt = now_ns() - t0;
            for (i = 0; i < md->n; ++i) {
                g_sink += ((const unsigned char *)p[i])[sz[i] / 2];
                if (lib) mload_map_free_buffer(md->m, p[i], sz[i]);
                else free(p[i]);
            }
            if (r > 0) {
                if (lib) tl[r - 1] = dt;
                else tb[r - 1] = dt;
            }
        }
    }
    printf("\nB5 library-allocated loads (fresh memory, both sides pay first touch): %zu reps\n", reps);
    printf("  %-40s %10s %10s %9s\n", "measurement", "median ms", "min ms", "GB/s");
    printf("  %-40s %10.2f %10.2f %9.2f\n", "mload_map_read_alloc, every tensor", median_ns(tl, reps) / 1e6,
           min_ns(tl, reps) / 1e6, gbps(md->data_size, median_ns(tl, reps)));
    printf("  %-40s %10.2f %10.2f %9.2f\n", "baseline: malloc + memset + pread", median_ns(tb, reps) / 1e6,
           min_ns(tb, reps) / 1e6, gbps(md->data_size, median_ns(tb, reps)));
    add_tp_row("B5", "read_alloc every tensor vs malloc+memset+pread", gbps(md->data_size, median_ns(tl, reps)),
               gbps(md->data_size, median_ns(tb, reps)), 0.9);
    free(p);
    free(sz);
}

/* ---------------------------------------------------------------- B6 */

typedef struct rss_probe { uint64_t before; int hwm; } rss_probe;

static void probe_start(rss_probe *pr) {
    pr->hwm = reset_hwm();
    pr->before = status_bytes("VmRSS");
}

/* growth since probe_start: of the peak when VmHWM could be reset, else of
   the current VmRSS */
static uint64_t probe_growth(const rss_probe *pr) {
    uint64_t now = pr->hwm ? status_bytes("VmHWM") : status_bytes("VmRSS");
    return now > pr->before ? now - pr->before : 0;
}

static void add_rss_row(const char *what, uint64_t growth, uint64_t limit, int judged) {
    char f[24], b[24], t[16];
    snprintf(f, sizeof f, "+%.2f MiB", mib(growth));
    snprintf(b, sizeof b, "-");
    snprintf(t, sizeof t, judged ? "<= %.1f MiB" : "info", mib(limit));
    add_row("B6", what, f, b, "-", t, judged ? (growth <= limit ? "PASS" : "MISS") : "-");
}

/* the ways B6 moves the largest tensor, or the whole model, into a buffer */
typedef enum b6_way { W_READ, W_READ_F32, W_LOAD, W_LOAD_DIRECT } b6_way;

static mload_load_opts b6_opts(b6_way way) {
    mload_load_opts o;
    memset(&o, 0, sizeof o);
    o.io = way == W_LOAD_DIRECT ? MLOAD_IO_DIRECT : MLOAD_IO_DEFAULT;
    return o;
}

/* the largest tensor t into dst, one way */
static mload_result b6_read(const model *md, const mload_tensor *t, b6_way way, unsigned char *dst, mload_error *e) {
    mload_load_opts o = b6_opts(way);
    mload_load_item it;
    if (way == W_READ) return mload_map_read(md->m, t, MLOAD_DTYPE_INVALID, dst, t->nbytes, e);
    if (way == W_READ_F32) return mload_map_read(md->m, t, MLOAD_DTYPE_F32, dst, t->numel * 4u, e);
    memset(&it, 0, sizeof it);
    it.tensor = t;
    it.dst = dst;
    it.dst_size = t->nbytes;
    return mload_map_load(md->m, &it, 1, &o, e);
}

/* every tensor, in slices of at most STAGE_BYTES, through staging, one way
   (W_READ: mload_map_read_range; W_LOAD, W_LOAD_DIRECT: range items) */
static void b6_stream(const model *md, b6_way way, unsigned char *staging) {
    mload_load_opts o = b6_opts(way);
    mload_error e;
    mload_result rr;
    uint64_t i;
    for (i = 0; i < md->n; ++i) {
        const mload_tensor *t = md->t[i];
        uint64_t per = STAGE_BYTES / esize(t->dtype);
        mload_load_item it;
        memset(&it, 0, sizeof it);
        it.tensor = t;
        it.dst = staging;
        it.dst_size = STAGE_BYTES;
        for (it.first = 0; it.first < t->numel; it.first += per) {
            it.count = t->numel - it.first < per ? t->numel - it.first : per;
            if (way == W_READ)
                rr = mload_map_read_range(md->m, t, it.first, it.count, MLOAD_DTYPE_INVALID, staging, STAGE_BYTES, &e);
            else
                rr = mload_map_load(md->m, &it, 1, &o, &e);
            if (rr != MLOAD_OK) die_mload(way == W_READ ? "mload_map_read_range" : "mload_map_load (range item)", rr, &e);
            g_sink += staging[0]; /* "send to the device" */
        }
    }
}

static void bench_b6(const char *path) {
    static const struct { b6_way way; const char *what, *row; } reads[] = {
        {W_READ, "mload_map_read", "read largest tensor, caller buffer (beyond buffer)"},
        {W_READ_F32, "mload_map_read, converted BF16->F32", "read largest as F32, caller buffer (beyond buffer)"},
        {W_LOAD, "mload_map_load (default threads)", "map_load largest, caller buffer (beyond buffer)"},
        {W_LOAD_DIRECT, "mload_map_load DIRECT (bounce buffers)", "map_load DIRECT largest (beyond buffer; bounce)"},
    };
    static const struct { b6_way way; const char *what, *row; } streams[] = {
        {W_READ, "mload_map_read_range", "stream via 64 MiB staging, map_read_range"},
        {W_LOAD, "mload_map_load range items (default threads)", "stream via 64 MiB staging, map_load"},
        {W_LOAD_DIRECT, "mload_map_load range items, MLOAD_IO_DIRECT", "stream via 64 MiB staging, map_load DIRECT"},
    };
    model md;
    rss_probe pr;
    uint64_t r0, g_open, g, i, largest_bytes = 0;
    const mload_tensor *largest = NULL;
    unsigned char *dst, *staging;
    mload_error e;
    mload_result rr;
    int hwm_ok;
    size_t w;

    hwm_ok = reset_hwm();
    if (status_bytes("VmRSS") == 0) {
        printf("\nB6 skipped: no VmRSS in /proc/self/status\n");
        add_row("B6", "resident memory", "-", "-", "-", "-", "skip");
        return;
    }
    printf("\nB6 resident memory (%s)\n", hwm_ok ? "peak: VmHWM reset through /proc/self/clear_refs, minus VmRSS before"
                                                  : "VmRSS after minus VmRSS before; VmHWM cannot be reset here");

    /* the map itself: header + index */
    probe_start(&pr);
    r0 = pr.before;
    model_open(&md, path);
    g_open = probe_growth(&pr);
    printf("  map open (header %.2f MiB): +%.2f MiB\n", mib(md.header), mib(g_open));

    for (i = 0; i < md.n; ++i)
        if (md.t[i]->nbytes > largest_bytes) { largest_bytes = md.t[i]->nbytes; largest = md.t[i]; }
    if (!largest) die("no tensors");

    /* (1) one tensor into a pre-touched caller buffer */
    dst = big_alloc(largest_bytes * 2u, 1);
    rr = b6_read(&md, largest, W_READ, dst, &e); /* file pages warm */
    if (rr != MLOAD_OK) die_mload("mload_map_read", rr, &e);
    printf("  '%s' (%.1f MiB) into a pre-touched buffer: growth beyond the buffer\n", largest->name,
           mib(largest_bytes));
    for (w = 0; w < sizeof reads / sizeof reads[0]; ++w) {
        probe_start(&pr);
        rr = b6_read(&md, largest, reads[w].way, dst, &e);
        if (rr != MLOAD_OK) die_mload(reads[w].what, rr, &e);
        g = probe_growth(&pr);
        printf("    %-40s +%.2f MiB\n", reads[w].what, mib(g));
        add_rss_row(reads[w].row, g, MIB, 1);
    }
    big_free(dst, largest_bytes * 2u);

    {
        void *p = NULL;
        uint64_t sz = 0;
        probe_start(&pr);
        rr = mload_map_read_alloc(md.m, largest, MLOAD_DTYPE_INVALID, &p, &sz, &e);
        if (rr != MLOAD_OK) die_mload("mload_map_read_alloc", rr, &e);
        g = probe_growth(&pr);
        mload_map_free_buffer(md.m, p, sz);
        printf("  mload_map_read_alloc of it: +%.2f MiB (limit: its bytes + 1 MiB = %.2f MiB)\n", mib(g),
               mib(largest_bytes + MIB));
        add_rss_row("read_alloc largest tensor (incl. its bytes)", g, largest_bytes + MIB, 1);
    }
    {
        mload_view v;
        uint64_t k, acc = 0;
        probe_start(&pr);
        rr = mload_view_open(md.m, largest, &v, &e);
        if (rr != MLOAD_OK) die_mload("mload_view_open", rr, &e);
        for (k = 0; k < v.size; k += 4096) acc += ((const unsigned char *)v.data)[k];
        g = probe_growth(&pr);
        mload_view_close(&v);
        g_sink += acc;
        printf("  mload_view_open of it, every page touched: +%.2f MiB (shared file pages, reclaimable)\n", mib(g));
        add_rss_row("view largest tensor, touched (file pages)", g, 0, 0);
    }

    /* (2) the whole model streamed through a 64 MiB staging buffer. Growth
       counted from before the map was opened: map + staging + transients. */
    {
        uint64_t limit = STAGE_BYTES + md.header + 16u * MIB, peak_extra, t0, t1;
        uint64_t before_stage;
        staging = big_alloc(STAGE_BYTES, 1);
        before_stage = status_bytes("VmRSS");
        printf("  streaming %.1f MiB into a %.0f MiB staging buffer: RSS growth since before map open (staging %.0f +"
               " header %.2f + transient); limit %.2f MiB\n", mib(md.data_size), mib(STAGE_BYTES), mib(STAGE_BYTES),
               mib(md.header), mib(limit));
        for (w = 0; w < sizeof streams / sizeof streams[0]; ++w) {
            probe_start(&pr);
            t0 = now_ns();
            b6_stream(&md, streams[w].way, staging);
            t1 = now_ns();
            peak_extra = probe_growth(&pr);
            g = (before_stage > r0 ? before_stage - r0 : 0) + peak_extra;
            printf("    %-46s %6.2f GB/s: growth %.2f MiB (transient %.2f)\n", streams[w].what,
                   gbps(md.data_size, (double)(t1 - t0)), mib(g), mib(peak_extra));
            add_rss_row(streams[w].row, g, limit, 1);
        }
        big_free(staging, STAGE_BYTES);
    }
    model_close(&md);
}

/* ---------------------------------------------------------------- main */

static uint64_t env_mb(void) {
    const char *s = getenv("MLOAD_BENCH_MB");
    char *end;
    unsigned long long v;
    if (!s || !*s) return 1024;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno || *end || v == 0 || v > (1ull << 20)) die("MLOAD_BENCH_MB='%s': want a size in MiB", s);
    return (uint64_t)v;
}

int main(void) {
    uint64_t want_mb = env_mb(), t_start = now_ns(), t_gen, data_bytes, cast_bytes, cast_size, model_size;
    tlist ml = {NULL, 0, 0}, cl = {NULL, 0, 0};
    cksum ck_model, ck_cast;
    cast_src cs;
    unsigned char *f32src, *f8src, *bf16src, *f16src, *arena, *dst, *chk;
    uint64_t seed = 0x9E3779B97F4A7C15ull;
    unsigned nl;
    model md, cf, cfv;
    mload_load_item *items;
    uint32_t one = 1;
    size_t reps;

    setvbuf(stdout, NULL, _IOLBF, 0);
    {
        unsigned char b0;
        memcpy(&b0, &one, 1);
        if (b0 != 1) die("this benchmark writes little-endian data and needs a little-endian host");
    }
    make_tmpdir(g_dir, sizeof g_dir, "bench_load");
    g_have_dir = 1;
    if (atexit(cleanup) != 0) { cleanup(); die("atexit failed"); }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    (void)snprintf(g_model, sizeof g_model, "%s/model.safetensors", g_dir);
    (void)snprintf(g_cast, sizeof g_cast, "%s/cast.safetensors", g_dir);

    /* in-memory cast sources, big enough for 64 MiB of output per pair */
    f32src = big_alloc(STAGE_BYTES * 4u, 0);
    f8src = big_alloc(STAGE_BYTES / 2u, 0);
    bf16src = big_alloc(CAST_N * 2u, 0);
    f16src = big_alloc(CAST_N * 2u, 0);
    gen_f32(f32src, (size_t)(STAGE_BYTES * 4u), &seed);
    gen_f8(f8src, (size_t)(STAGE_BYTES / 2u), &seed);
    gen_bf16(bf16src, (size_t)(CAST_N * 2u), &seed);
    gen_f16(f16src, (size_t)(CAST_N * 2u), &seed);
    cs.bf16 = bf16src;
    cs.f16 = f16src;
    cs.f8 = f8src;
    cs.f32 = f32src;

    nl = gen_model_list(&ml, want_mb * MIB);
    model_size = write_st(g_model, &ml, 0x2545F4914F6CDD1Dull, &ck_model, &data_bytes);
    tl_add(&cl, MLOAD_DTYPE_BF16, 2, CAST_N / 4096u, 4096u, bf16src, "bf16");
    tl_add(&cl, MLOAD_DTYPE_F16, 2, CAST_N / 4096u, 4096u, f16src, "f16");
    tl_add(&cl, MLOAD_DTYPE_F8_E4M3, 2, CAST_N / 4096u, 4096u, f8src, "f8_e4m3");
    tl_add(&cl, MLOAD_DTYPE_F32, 2, CAST_N / 4096u, 4096u, f32src, "f32");
    cast_size = write_st(g_cast, &cl, 1, &ck_cast, &cast_bytes);
    t_gen = now_ns();

    printf("bench_load: modelload %s, targets B2-B6 (shared/design/performance.md)\n", mload_version_string());
    printf("files in %s, written and fsync'd in %.2f s:\n", g_dir, (double)(t_gen - t_start) / 1e9);
    printf("  model.safetensors %.1f MiB (MLOAD_BENCH_MB=%llu): %zu BF16 tensors, %u layers, hidden %u, kv %u, "
           "inter %u, vocab %u\n", mib(model_size), (unsigned long long)want_mb, ml.n, nl, HID, KV, INTER, VOCAB);
    printf("  cast.safetensors  %.1f MiB: BF16, F16, F8_E4M3, F32 tensors of %llu elements\n", mib(cast_size),
           (unsigned long long)CAST_N);
    printf("medians of interleaved repetitions (order rotated per rep); GB/s = 1e9 bytes/s; ratio = figure/baseline\n");

    /* B6 first, while the heap is small (freed-but-resident heap memory would
       hide library allocations from VmRSS) */
    bench_b6(g_model);

    model_open(&md, g_model);
    if (md.data_size != data_bytes) die("model.safetensors: data size %llu, wrote %llu",
                                        (unsigned long long)md.data_size, (unsigned long long)data_bytes);
    model_open(&cf, g_cast);
    model_open_as(&cfv, g_cast, MLOAD_CAST_READ_VIEW);
    arena = big_alloc(md.data_size, 1);
    items = model_items(&md, arena);

    reps = md.data_size > 2048u * MIB ? 7 : 11;
    bench_b2(&md, arena, items, &ck_model, reps);

    dst = big_alloc(STAGE_BYTES, 1);
    chk = big_alloc(STAGE_BYTES, 1);
    bench_b3a(&cs, dst, f32src, 7);
    bench_b3b(&cf, &cfv, &cs, dst, chk, f32src, 7);
    big_free(chk, STAGE_BYTES);

    bench_b5(&md, 7);

    bench_b4(&md, arena, items, &ck_model, 60.0);

    print_table();
    printf("\ntotal run time %.1f s\n", (double)(now_ns() - t_start) / 1e9);

    free(items);
    model_close(&md);
    model_close(&cf);
    model_close(&cfv);
    big_free(arena, data_bytes);
    big_free(dst, STAGE_BYTES);
    big_free(f32src, STAGE_BYTES * 4u);
    big_free(f8src, STAGE_BYTES / 2u);
    big_free(bf16src, CAST_N * 2u);
    big_free(f16src, CAST_N * 2u);
    free(ml.v);
    free(cl.v);
    cleanup();
    return 0;
}
