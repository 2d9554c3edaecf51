/* The DiskMap: open forms, index checks, duplicates, prefixes, reads with
   conversion and ranges, views, bulk loads, cancel, binding, fingerprint,
   the writer. */
#if defined(__linux__) && !defined(_GNU_SOURCE)
#define _GNU_SOURCE 1
#endif
#include "harness.h"
#include "mload_setup.h"
#include <stdlib.h>
#include <unistd.h>
#include <time.h>
#include <sys/wait.h>
#include <signal.h>
#include <dirent.h>
#include <sys/stat.h>
#include <math.h>

static char tdir[256];

static const char *tpath(const char *name) {
    static char buf[8][512];
    static int slot;
    char *p = buf[slot++ & 7];
    snprintf(p, 512, "%s/%s", tdir, name);
    return p;
}

static void put_file(const char *name, const tbuf *b) {
    FILE *fp = fopen(tpath(name), "wb");
    if (!fp) abort();
    if (b->n && fwrite(b->p, 1, b->n, fp) != b->n) abort();
    fclose(fp);
}

static void put_text(const char *name, const char *text) {
    FILE *fp = fopen(tpath(name), "wb");
    if (!fp) abort();
    fputs(text, fp);
    fclose(fp);
}

static mload_result open_map(const char *const *paths, uint32_t n, uint32_t dup, mload_map **m, mload_error *e) {
    mload_map_desc d;
    memset(&d, 0, sizeof d);
    d.paths = paths;
    d.path_count = n;
    d.duplicates = dup;
    return mload_map_open(&d, m, e);
}

static mload_result open_one(const char *path, mload_map **m, mload_error *e) {
    return open_map(&path, 1, MLOAD_DUP_ERROR, m, e);
}

/* a file of F32 tensors named names[i] with shape [rows[i], 3] holding value base + i*100 + j */
static tbuf f32_file(const char *const *names, const unsigned *rows, int n, float base) {
    char hdr[4096];
    size_t len = 0, off = 0;
    int i;
    tbuf data = {0, 0, 0}, out;
    len += (size_t)snprintf(hdr + len, sizeof hdr - len, "{");
    for (i = 0; i < n; ++i) {
        unsigned j, cnt = rows[i] * 3;
        len += (size_t)snprintf(hdr + len, sizeof hdr - len, "%s\"%s\":{\"dtype\":\"F32\",\"shape\":[%u,3],\"data_offsets\":[%u,%u]}",
                                i ? "," : "", names[i], rows[i], (unsigned)off, (unsigned)(off + cnt * 4));
        for (j = 0; j < cnt; ++j) {
            float v = base + (float)(i * 100 + (int)j);
            tbuf_put(&data, &v, 4);
        }
        off += cnt * 4;
    }
    len += (size_t)snprintf(hdr + len, sizeof hdr - len, "}");
    out = make_st(hdr, data.n, data.p);
    tbuf_free(&data);
    return out;
}

/* ---- open forms ---- */

static void test_map_open_forms(void) {
    const char *n1[] = {"a.w", "a.b"}, *n2[] = {"b.w"};
    unsigned r1[] = {2, 1}, r2[] = {4};
    tbuf f1 = f32_file(n1, r1, 2, 0), f2 = f32_file(n2, r2, 1, 1000);
    mload_map *m;
    mload_error e;
    const char *paths[2];
    mkdir(tpath("folder"), 0755);
    put_file("folder/x-2.safetensors", &f2);
    put_file("folder/x-1.safetensors", &f1);
    put_file("folder/ignored.bin", &f1);
    put_file("one.safetensors", &f1);
    /* one path */
    CHECK_RES(open_one(tpath("one.safetensors"), &m, &e), MLOAD_OK);
    if (m) {
        CHECK_EQ_U64(mload_map_count(m), 2);
        CHECK_EQ_U64(mload_map_file_count(m), 1);
        CHECK(strcmp(mload_map_tensor(m, 0)->name, "a.b") == 0); /* name order */
        CHECK(mload_map_declared_size(m) == UINT64_MAX);
        mload_map_close(m);
    }
    /* a list */
    paths[0] = tpath("one.safetensors");
    paths[1] = tpath("folder/x-2.safetensors");
    CHECK_RES(open_map(paths, 2, 0, &m, &e), MLOAD_OK);
    if (m) {
        const mload_tensor *t = mload_map_find(m, "b.w");
        CHECK_EQ_U64(mload_map_count(m), 3);
        CHECK(t && t->file_index == 1);
        CHECK(strcmp(mload_map_file_path(m, 1), paths[1]) == 0);
        CHECK_EQ_U64(mload_map_data_size(m), (2 + 1 + 4) * 3 * 4);
        mload_map_close(m);
    }
    /* a folder: *.safetensors sorted by name */
    CHECK_RES(open_one(tpath("folder"), &m, &e), MLOAD_OK);
    if (m) {
        CHECK_EQ_U64(mload_map_file_count(m), 2);
        CHECK(strstr(mload_map_file_path(m, 0), "x-1.safetensors") != NULL);
        CHECK(strstr(mload_map_file_path(m, 1), "x-2.safetensors") != NULL);
        CHECK_EQ_U64(mload_map_find(m, "b.w")->file_index, 1);
        mload_map_close(m);
    }
    mkdir(tpath("empty"), 0755);
    CHECK_RES(open_one(tpath("empty"), &m, &e), MLOAD_ERR_NOT_FOUND);
    CHECK_RES(open_one(tpath("nothing-here.safetensors"), &m, &e), MLOAD_ERR_CANNOT_OPEN);
    CHECK(m == NULL);
    /* user sources */
    {
        mload_map_desc d;
        mload_source s[2];
        memset(&d, 0, sizeof d);
        CHECK_RES(mload_source_open_memory(f1.p, f1.n, NULL, &s[0], NULL), MLOAD_OK);
        CHECK_RES(mload_source_open_memory(f2.p, f2.n, NULL, &s[1], NULL), MLOAD_OK);
        d.sources = s;
        d.source_count = 2;
        CHECK_RES(mload_map_open(&d, &m, &e), MLOAD_OK);
        if (m) {
            CHECK_EQ_U64(mload_map_count(m), 3);
            CHECK(mload_map_file_path(m, 0) == NULL);
            mload_map_close(m);
        }
        memset(&d, 0, sizeof d);
        CHECK_RES(mload_map_open(&d, &m, &e), MLOAD_ERR_INVALID_ARGUMENT);
    }
    tbuf_free(&f1);
    tbuf_free(&f2);
}

static void test_map_duplicates(void) {
    const char *n1[] = {"w", "x"}, *n2[] = {"w"};
    unsigned r1[] = {1, 1}, r2[] = {2};
    tbuf f1 = f32_file(n1, r1, 2, 0), f2 = f32_file(n2, r2, 1, 500);
    mload_map *m;
    mload_error e;
    const char *paths[2];
    put_file("dup1.safetensors", &f1);
    put_file("dup2.safetensors", &f2);
    paths[0] = tpath("dup1.safetensors");
    paths[1] = tpath("dup2.safetensors");
    CHECK_RES(open_map(paths, 2, MLOAD_DUP_ERROR, &m, &e), MLOAD_ERR_DUPLICATE_KEY);
    CHECK(strcmp(e.tensor, "w") == 0);
    CHECK_EQ_U64(e.file_index, 1);
    CHECK(strstr(e.message, "dup1") && strstr(e.message, "dup2"));
    CHECK_RES(open_map(paths, 2, MLOAD_DUP_LAST_WINS, &m, &e), MLOAD_OK);
    if (m) {
        const mload_tensor *t = mload_map_find(m, "w");
        float v[6];
        CHECK_EQ_U64(mload_map_count(m), 2);
        CHECK(t && t->file_index == 1 && t->shape[0] == 2);
        CHECK_RES(mload_map_read(m, t, 0, v, sizeof v, &e), MLOAD_OK);
        CHECK(v[0] == 500.0f && v[5] == 505.0f);
        mload_map_close(m);
    }
    CHECK_RES(open_map(paths, 2, 7, &m, &e), MLOAD_ERR_INVALID_ARGUMENT);
    tbuf_free(&f1);
    tbuf_free(&f2);
}

/* ---- sharded checkpoints ---- */

static void write_shards(void) {
    const char *n1[] = {"l.0.w", "l.0.b"}, *n2[] = {"l.1.w"};
    unsigned r1[] = {2, 1}, r2[] = {3};
    tbuf f1 = f32_file(n1, r1, 2, 0), f2 = f32_file(n2, r2, 1, 10);
    mkdir(tpath("sh"), 0755);
    put_file("sh/s-1.safetensors", &f1);
    put_file("sh/s-2.safetensors", &f2);
    tbuf_free(&f1);
    tbuf_free(&f2);
}

static void test_map_index_ok(void) {
    mload_map *m;
    mload_error e;
    write_shards();
    put_text("sh/good.safetensors.index.json",
             "{\"metadata\": {\"total_size\": 72, \"format\": {\"x\": [1, 2]}}, \"weight_map\": {\"l.0.w\": \"s-1.safetensors\","
             " \"l.0.b\": \"s-1.safetensors\", \"l.1.w\": \"s-2.safetensors\"}, \"extra\": null}");
    CHECK_RES(open_one(tpath("sh/good.safetensors.index.json"), &m, &e), MLOAD_OK);
    if (m) {
        CHECK_EQ_U64(mload_map_count(m), 3);
        CHECK_EQ_U64(mload_map_file_count(m), 2);
        CHECK_EQ_U64(mload_map_declared_size(m), 72);
        CHECK_EQ_U64(mload_map_data_size(m), 72);
        mload_map_close(m);
    }
    /* total_size is advisory: a wrong one is reported, not fatal */
    put_text("sh/wrongsize.index.json",
             "{\"metadata\":{\"total_size\":5},\"weight_map\":{\"l.0.w\":\"s-1.safetensors\",\"l.0.b\":\"s-1.safetensors\",\"l.1.w\":\"s-2.safetensors\"}}");
    CHECK_RES(open_one(tpath("sh/wrongsize.index.json"), &m, &e), MLOAD_OK);
    if (m) {
        CHECK_EQ_U64(mload_map_declared_size(m), 5);
        CHECK(mload_map_declared_size(m) != mload_map_data_size(m));
        mload_map_close(m);
    }
}


/* index.json and folder opens give every block back with its own size,
   whichever allocation fails (a shard path was freed one byte short) */
static void test_map_free_sizes(void) {
    static const char *paths[1];
    int which;
    write_shards();
    put_text("sh/sz.safetensors.index.json",
             "{\"weight_map\": {\"l.0.w\": \"s-1.safetensors\", \"l.0.b\": \"s-1.safetensors\", \"l.1.w\": \"s-2.safetensors\"}}");
    paths[0] = tpath("sh/sz.safetensors.index.json");
    {   /* a folder of the same two shards */
        const char *n1[] = {"l.0.w", "l.0.b"};
        unsigned r1[] = {2, 1};
        tbuf f1 = f32_file(n1, r1, 2, 0);
        mkdir(tpath("szf"), 0755);
        put_file("szf/a.safetensors", &f1);
        tbuf_free(&f1);
    }
    for (which = 0; which < 2; ++which) {
        char p[512];
        long k;
        mload_result r = MLOAD_ERR_OUT_OF_MEMORY;
        snprintf(p, sizeof p, "%s", which ? tpath("szf") : paths[0]);
        for (k = -1; k < 200 && (k < 0 || r == MLOAD_ERR_OUT_OF_MEMORY); ++k) {
            wacct c;
            mload_map_desc d;
            mload_map *m = NULL;
            mload_error e;
            const char *pp = p;
            memset(&c, 0, sizeof c);
            c.fail_at = k;
            memset(&d, 0, sizeof d);
            d.paths = &pp;
            d.path_count = 1;
            d.allocator.alloc = wacct_alloc;
            d.allocator.free = wacct_free;
            d.allocator.user = &c;
            r = mload_map_open(&d, &m, &e);
            if (k < 0) CHECK_RES(r, MLOAD_OK);
            mload_map_close(m);
            CHECK(c.mismatches == 0 && c.live == 0);
            wacct_done(&c);
            if (k < 0) r = MLOAD_ERR_OUT_OF_MEMORY;
        }
        CHECK_RES(r, MLOAD_OK);
    }
}

static void test_map_index_checks(void) {
    static const struct { const char *json; const char *needle; } bad[] = {
        {"{\"weight_map\":{\"l.0.w\":\"../s-1.safetensors\",\"l.0.b\":\"s-1.safetensors\",\"l.1.w\":\"s-2.safetensors\"}}", "plain file name"},
        {"{\"weight_map\":{\"l.0.w\":\"/tmp/s-1.safetensors\",\"l.0.b\":\"s-1.safetensors\",\"l.1.w\":\"s-2.safetensors\"}}", "plain file name"},
        {"{\"weight_map\":{\"l.0.w\":\"sub\\\\s-1.safetensors\",\"l.0.b\":\"s-1.safetensors\",\"l.1.w\":\"s-2.safetensors\"}}", "plain file name"},
        {"{\"weight_map\":{\"l.0.w\":\"..\",\"l.0.b\":\"s-1.safetensors\",\"l.1.w\":\"s-2.safetensors\"}}", "plain file name"},
        {"{\"weight_map\":{\"l.0.w\":\"\",\"l.0.b\":\"s-1.safetensors\",\"l.1.w\":\"s-2.safetensors\"}}", "plain file name"},
        {"{\"weight_map\":{\"l.0.w\":\"s-1.safetensors\\u0000x\",\"l.0.b\":\"s-1.safetensors\",\"l.1.w\":\"s-2.safetensors\"}}", "plain file name"},
        /* mapped but absent from its shard */
        {"{\"weight_map\":{\"l.0.w\":\"s-1.safetensors\",\"l.0.b\":\"s-1.safetensors\",\"l.1.w\":\"s-2.safetensors\",\"ghost\":\"s-2.safetensors\"}}", "not in it"},
        /* a shard tensor nobody maps */
        {"{\"weight_map\":{\"l.0.w\":\"s-1.safetensors\",\"l.1.w\":\"s-2.safetensors\"}}", "not in the weight_map"},
        /* mapped to the wrong shard: it is in the other one too (both opened) */
        {"{\"weight_map\":{\"l.0.w\":\"s-1.safetensors\",\"l.0.b\":\"s-2.safetensors\",\"l.1.w\":\"s-2.safetensors\"}}", "not in it"},
        /* a name mapped twice */
        {"{\"weight_map\":{\"l.0.w\":\"s-1.safetensors\",\"l.0.w\":\"s-1.safetensors\",\"l.0.b\":\"s-1.safetensors\",\"l.1.w\":\"s-2.safetensors\"}}", "mapped twice"},
        {"{\"metadata\":{}}", "no or an empty weight_map"},
        {"{\"metadata\":{\"total_size\":15},\"weight_map\":{}}", "empty weight_map"},
        {"{\"weight_map\":{\"a\":1}}", "file names"},
        {"{\"weight_map\":{\"a\":\"s-1.safetensors\",}}", "expected"},
        {"[]", "object"},
        {"{\"weight_map\":{\"x\":\"a\"}} x", "trailing"},
        {"{\"weight_map\":{},\"weight_map\":{}}", "twice"},
    };
    size_t i;
    write_shards();
    for (i = 0; i < sizeof bad / sizeof bad[0]; ++i) {
        mload_map *m = NULL;
        mload_error e;
        mload_result r;
        put_text("sh/bad.index.json", bad[i].json);
        r = open_one(tpath("sh/bad.index.json"), &m, &e);
        if (r != MLOAD_ERR_INVALID_INDEX || !strstr(e.message, bad[i].needle)) {
            th_failed_checks++;
            fprintf(stderr, "  FAIL index case %u: %s (%s)\n", (unsigned)i, mload_result_string(r), r ? e.message : "");
        }
        CHECK(m == NULL);
    }
    /* a tensor present in two shards */
    {
        const char *n3[] = {"l.0.b"};
        unsigned r3[] = {1};
        tbuf f3 = f32_file(n3, r3, 1, 0);
        mload_map *m;
        mload_error e;
        put_file("sh/s-3.safetensors", &f3);
        put_text("sh/two.index.json",
                 "{\"weight_map\":{\"l.0.w\":\"s-1.safetensors\",\"l.0.b\":\"s-1.safetensors\",\"l.1.w\":\"s-2.safetensors\",\"zz\":\"s-3.safetensors\"}}");
        CHECK_RES(open_one(tpath("sh/two.index.json"), &m, &e), MLOAD_ERR_INVALID_INDEX);
        put_text("sh/two.index.json",
                 "{\"weight_map\":{\"l.0.w\":\"s-1.safetensors\",\"l.1.w\":\"s-2.safetensors\",\"l.0.b\":\"s-3.safetensors\"}}");
        CHECK_RES(open_one(tpath("sh/two.index.json"), &m, &e), MLOAD_ERR_INVALID_INDEX);
        CHECK(strstr(e.message, "two shards") != NULL);
        CHECK(strcmp(e.tensor, "l.0.b") == 0);
        tbuf_free(&f3);
    }
    /* a missing shard file */
    {
        mload_map *m;
        mload_error e;
        put_text("sh/missing.index.json", "{\"weight_map\":{\"l.0.w\":\"nope.safetensors\"}}");
        CHECK_RES(open_one(tpath("sh/missing.index.json"), &m, &e), MLOAD_ERR_CANNOT_OPEN);
    }
}

static void test_map_official_sharded(void) {
    char path[512];
    const char *dir = fixtures_dir();
    mload_map *m;
    mload_error e;
    uint64_t i;
    if (!dir) SKIP("official fixtures absent");
    snprintf(path, sizeof path, "%s/sharded/model.safetensors.index.json", dir);
    CHECK_RES(open_one(path, &m, &e), MLOAD_OK);
    if (!m) return;
    CHECK_EQ_U64(mload_map_count(m), 36);
    CHECK_EQ_U64(mload_map_file_count(m), 6);
    CHECK_EQ_U64(mload_map_declared_size(m), mload_map_data_size(m));
    /* every tensor's bytes equal the shard's, read on its own */
    for (i = 0; i < mload_map_count(m); ++i) {
        const mload_tensor *t = mload_map_tensor(m, i);
        mload_file_desc fd;
        mload_file *f;
        unsigned char *a = (unsigned char *)malloc((size_t)t->nbytes + 1), *b = (unsigned char *)malloc((size_t)t->nbytes + 1);
        memset(&fd, 0, sizeof fd);
        fd.path = mload_map_file_path(m, t->file_index);
        CHECK_RES(mload_file_open(&fd, &f, &e), MLOAD_OK);
        if (f) {
            const mload_tensor *ft = mload_file_find(f, t->name);
            CHECK(ft != NULL);
            if (ft) {
                CHECK_RES(mload_file_read(f, ft, a, ft->nbytes, &e), MLOAD_OK);
                CHECK_RES(mload_map_read(m, t, 0, b, t->nbytes, &e), MLOAD_OK);
                CHECK(memcmp(a, b, (size_t)t->nbytes) == 0);
            }
            mload_file_close(f);
        }
        free(a);
        free(b);
    }
    mload_map_close(m);
}

/* ---- queries ---- */

static void test_map_prefix(void) {
    static const char *names[] = {"model.layers.3.b", "model.layers.30.a", "model.layers.3.a", "model.layers.2.x",
                                  "model.layers.3", "model.norm", "model.layers.3.c"};
    unsigned rows[] = {1, 1, 1, 1, 1, 1, 1};
    tbuf f = f32_file(names, rows, 7, 0);
    mload_map *m;
    mload_error e;
    uint64_t first, n, i;
    put_file("prefix.safetensors", &f);
    CHECK_RES(open_one(tpath("prefix.safetensors"), &m, &e), MLOAD_OK);
    if (m) {
        for (i = 1; i < mload_map_count(m); ++i)
            CHECK(strcmp(mload_map_tensor(m, i - 1)->name, mload_map_tensor(m, i)->name) < 0);
        n = mload_map_find_prefix(m, "model.layers.3.", &first);
        CHECK_EQ_U64(n, 3);
        CHECK(strcmp(mload_map_tensor(m, first)->name, "model.layers.3.a") == 0);
        CHECK(strcmp(mload_map_tensor(m, first + 2)->name, "model.layers.3.c") == 0);
        CHECK_EQ_U64(mload_map_find_prefix(m, "model.layers.3", &first), 5); /* 3, 3.a-c, 30.a */
        CHECK_EQ_U64(mload_map_find_prefix(m, "", &first), 7);
        CHECK_EQ_U64(first, 0);
        CHECK_EQ_U64(mload_map_find_prefix(m, "zzz", &first), 0);
        CHECK_EQ_U64(first, mload_map_count(m));
        CHECK_EQ_U64(mload_map_find_prefix(m, "model.norm.", &first), 0);
        CHECK(mload_map_find(m, "model.layers.3") != NULL);
        CHECK(mload_map_find(m, "model.layers") == NULL);
        mload_map_close(m);
    }
    tbuf_free(&f);
}

/* ---- reads ---- */

static void test_map_read_convert_and_ranges(void) {
    const char *names[] = {"w"};
    unsigned rows[] = {5};
    tbuf f = f32_file(names, rows, 1, 0); /* 5x3 F32: 0..14 */
    mload_map *m;
    mload_error e;
    put_file("ranges.safetensors", &f);
    CHECK_RES(open_one(tpath("ranges.safetensors"), &m, &e), MLOAD_OK);
    if (m) {
        const mload_tensor *t = mload_map_find(m, "w");
        float v[15];
        uint16_t h[15];
        double d[15];
        int32_t iv[15];
        int k;
        CHECK_RES(mload_map_read(m, t, MLOAD_DTYPE_F32, v, sizeof v, &e), MLOAD_OK);
        for (k = 0; k < 15; ++k) CHECK(v[k] == (float)k);
        CHECK_RES(mload_map_read(m, t, MLOAD_DTYPE_BF16, h, sizeof h, &e), MLOAD_OK);
        for (k = 0; k < 15; ++k) { uint32_t u = (uint32_t)h[k] << 16; float x; memcpy(&x, &u, 4); CHECK(x == (float)k); }
        CHECK_RES(mload_map_read(m, t, MLOAD_DTYPE_F64, d, sizeof d, &e), MLOAD_OK);
        CHECK(d[14] == 14.0);
        CHECK_RES(mload_map_read(m, t, MLOAD_DTYPE_I32, iv, sizeof iv, &e), MLOAD_OK);
        CHECK(iv[7] == 7);
        CHECK_RES(mload_map_read(m, t, MLOAD_DTYPE_F64, d, sizeof d - 1, &e), MLOAD_ERR_INVALID_ARGUMENT);
        CHECK_RES(mload_map_read(m, t, MLOAD_DTYPE_C64, d, sizeof d, &e), MLOAD_ERR_UNSUPPORTED);
        /* element ranges at the edges */
        CHECK_RES(mload_map_read_range(m, t, 0, 15, 0, v, sizeof v, &e), MLOAD_OK);
        CHECK_RES(mload_map_read_range(m, t, 14, 1, 0, v, 4, &e), MLOAD_OK);
        CHECK(v[0] == 14.0f);
        CHECK_RES(mload_map_read_range(m, t, 15, 0, 0, v, 0, &e), MLOAD_OK);
        CHECK_RES(mload_map_read_range(m, t, 15, 1, 0, v, 4, &e), MLOAD_ERR_INVALID_ARGUMENT);
        CHECK_RES(mload_map_read_range(m, t, 14, 2, 0, v, 8, &e), MLOAD_ERR_INVALID_ARGUMENT);
        CHECK_RES(mload_map_read_range(m, t, UINT64_MAX, 2, 0, v, 8, &e), MLOAD_ERR_INVALID_ARGUMENT);
        CHECK_RES(mload_map_read_range(m, t, 4, 3, MLOAD_DTYPE_F16, h, 6, &e), MLOAD_OK);
        CHECK(h[0] == 0x4400 && h[2] == 0x4600); /* 4.0, 6.0 */
        /* rows of dim 0 */
        CHECK_RES(mload_map_read_rows(m, t, 1, 2, 0, v, sizeof v, &e), MLOAD_OK);
        CHECK(v[0] == 3.0f && v[5] == 8.0f);
        CHECK_RES(mload_map_read_rows(m, t, 4, 1, 0, v, 12, &e), MLOAD_OK);
        CHECK(v[2] == 14.0f);
        CHECK_RES(mload_map_read_rows(m, t, 5, 0, 0, v, 0, &e), MLOAD_OK);
        CHECK_RES(mload_map_read_rows(m, t, 4, 2, 0, v, sizeof v, &e), MLOAD_ERR_INVALID_ARGUMENT);
        /* library-allocated */
        {
            void *p;
            uint64_t sz;
            CHECK_RES(mload_map_read_alloc(m, t, MLOAD_DTYPE_F64, &p, &sz, &e), MLOAD_OK);
            CHECK_EQ_U64(sz, 15 * 8);
            CHECK(((uintptr_t)p & 63) == 0);
            CHECK(((double *)p)[9] == 9.0);
            mload_map_free_buffer(m, p, sz);
        }
        /* a view by mmap */
        {
            mload_view vw;
            CHECK_RES(mload_view_open(m, t, &vw, &e), MLOAD_OK);
            CHECK_EQ_U64(vw.size, 60);
            if (vw.data) {
                float x;
                memcpy(&x, (const char *)vw.data + 4 * 13, 4);
                CHECK(x == 13.0f);
            }
            mload_map_close(m);
            m = NULL;
            if (vw.data) { /* outlives the map */
                float x;
                memcpy(&x, (const char *)vw.data + 4, 4);
                CHECK(x == 1.0f);
            }
            mload_view_close(&vw);
            CHECK(vw.data == NULL);
        }
    }
    mload_map_close(m);
    tbuf_free(&f);
}

static void test_map_subbyte_ranges(void) {
    tbuf f = make_st("{\"q\":{\"dtype\":\"F4\",\"shape\":[4,4],\"data_offsets\":[0,8]}}", 8, NULL);
    mload_map *m;
    mload_error e;
    unsigned char out[8];
    put_file("f4.safetensors", &f);
    CHECK_RES(open_one(tpath("f4.safetensors"), &m, &e), MLOAD_OK);
    if (m) {
        const mload_tensor *t = mload_map_find(m, "q");
        CHECK_RES(mload_map_read_range(m, t, 2, 4, 0, out, sizeof out, &e), MLOAD_OK);
        CHECK(out[0] == 1 && out[1] == 2);
        CHECK_RES(mload_map_read_range(m, t, 1, 4, 0, out, sizeof out, &e), MLOAD_ERR_INVALID_ARGUMENT);
        CHECK_RES(mload_map_read_range(m, t, 2, 3, 0, out, sizeof out, &e), MLOAD_ERR_INVALID_ARGUMENT);
        CHECK(strstr(e.message, "whole bytes") != NULL);
        CHECK_RES(mload_map_read_rows(m, t, 1, 2, 0, out, sizeof out, &e), MLOAD_OK);
        CHECK(out[0] == 2 && out[3] == 5);
        CHECK_RES(mload_map_read(m, t, MLOAD_DTYPE_F32, out, sizeof out, &e), MLOAD_ERR_UNSUPPORTED);
        mload_map_close(m);
    }
    tbuf_free(&f);
}

static void test_split_rows(void) {
    uint64_t b, c, total;
    uint32_t r;
    /* 10 rows over 4 ranks: 3,3,2,2 */
    mload_split_rows(10, 0, 4, &b, &c); CHECK(b == 0 && c == 3);
    mload_split_rows(10, 1, 4, &b, &c); CHECK(b == 3 && c == 3);
    mload_split_rows(10, 2, 4, &b, &c); CHECK(b == 6 && c == 2);
    mload_split_rows(10, 3, 4, &b, &c); CHECK(b == 8 && c == 2);
    mload_split_rows(10, 4, 4, &b, &c); CHECK(c == 0);
    mload_split_rows(3, 4, 8, &b, &c); CHECK(c == 0 && b == 3);
    mload_split_rows(3, 2, 8, &b, &c); CHECK(c == 1 && b == 2);
    mload_split_rows(7, 0, 0, &b, &c); CHECK(b == 0 && c == 7);
    for (total = 0, r = 0; r < 7; ++r) { mload_split_rows(1000003, r, 7, &b, &c); CHECK_EQ_U64(b, total); total += c; }
    CHECK_EQ_U64(total, 1000003);
}

/* ---- bulk loads ---- */

static tbuf big_bf16_file(int ntensors, unsigned elems) {
    char *hdr = (char *)malloc((size_t)ntensors * 96 + 16);
    size_t len = 0;
    int i;
    unsigned j;
    tbuf data = {0, 0, 0}, out;
    len += (size_t)sprintf(hdr + len, "{");
    for (i = 0; i < ntensors; ++i) {
        len += (size_t)sprintf(hdr + len, "%s\"t.%03d\":{\"dtype\":\"BF16\",\"shape\":[%u],\"data_offsets\":[%lu,%lu]}", i ? "," : "", i,
                               elems, (unsigned long)((size_t)i * elems * 2), (unsigned long)((size_t)(i + 1) * elems * 2));
        for (j = 0; j < elems; ++j) {
            uint16_t v = (uint16_t)(0x3F80 + ((unsigned)i * 7 + j) % 127); /* 1.0 .. ~2 */
            tbuf_put(&data, &v, 2);
        }
    }
    sprintf(hdr + len, "}");
    out = make_st(hdr, data.n, data.p);
    tbuf_free(&data);
    free(hdr);
    return out;
}

static int count_progress(void *user, uint64_t done, uint64_t total) {
    uint64_t *u = (uint64_t *)user;
    u[0]++;
    u[1] = done;
    u[2] = total;
    return 0;
}

static int cancel_after_two(void *user, uint64_t done, uint64_t total) {
    int *n = (int *)user;
    (void)done;
    (void)total;
    return ++*n >= 2;
}

/* ZeRO-3's flat partition (issue 10 item 10): ceil(numel / world) per rank,
   the last rank padded, and a binding that fills a rank's padded buffer. */
static void test_split_flat_and_bind(void) {
    uint64_t f, c, p;
    float v[30], got[4][8];
    int i, r;
    tbuf b;
    mload_map *m = NULL;
    mload_error e;
    mload_split_flat(30, 0, 4, &f, &c, &p); CHECK(f == 0 && c == 8 && p == 8);
    mload_split_flat(30, 2, 4, &f, &c, &p); CHECK(f == 16 && c == 8 && p == 8);
    mload_split_flat(30, 3, 4, &f, &c, &p); CHECK(f == 24 && c == 6 && p == 8);
    mload_split_flat(2, 3, 4, &f, &c, &p);  CHECK(f == 2 && c == 0 && p == 1);
    mload_split_flat(30, 4, 4, &f, &c, &p); CHECK(c == 0 && p == 0);
    for (i = 0; i < 30; ++i) v[i] = (float)i;
    b = make_st("{\"w\":{\"dtype\":\"F32\",\"shape\":[10,3],\"data_offsets\":[0,120]}}", 120, (const unsigned char *)v);
    put_file("flat.safetensors", &b);
    CHECK_RES(open_one(tpath("flat.safetensors"), &m, &e), MLOAD_OK);
    for (r = 0; m && r < 4; ++r) {
        mload_binding bd;
        mload_bind_result res;
        uint64_t shape8[1] = {8};
        memset(&bd, 0, sizeof bd);
        memset(got[r], 0x7F, sizeof got[r]);
        bd.name = "w";
        bd.rank = 1;
        bd.shape = shape8;
        bd.dst = got[r];
        bd.dst_size = sizeof got[r];
        bd.shard_rank = (uint32_t)r;
        bd.shard_world = 4;
        bd.shard_mode = MLOAD_SHARD_FLAT;
        CHECK_RES(mload_map_bind(m, &bd, 1, NULL, &res, NULL, &e), MLOAD_OK);
        for (i = 0; i < 8; ++i) CHECK(got[r][i] == (r * 8 + i < 30 ? (float)(r * 8 + i) : 0.0f));
        if (r == 3) { /* the library allocates the padded buffer too */
            bd.dst = NULL;
            bd.dst_size = 0;
            CHECK_RES(mload_map_bind(m, &bd, 1, NULL, &res, NULL, &e), MLOAD_OK);
            CHECK(res.allocated && res.dst_size == 32);
            if (res.dst) CHECK(((float *)res.dst)[5] == 29.0f && ((float *)res.dst)[7] == 0.0f);
            mload_map_free_buffer(m, res.dst, res.dst_size);
        }
    }
    mload_map_close(m);
    tbuf_free(&b);
}

static void test_map_bulk(void) {
    tbuf f = big_bf16_file(24, 30000);
    mload_map *m;
    mload_error e;
    put_file("bulk.safetensors", &f);
    CHECK_RES(open_one(tpath("bulk.safetensors"), &m, &e), MLOAD_OK);
    if (m) {
        uint64_t n = mload_map_count(m), k;
        mload_load_item *it = (mload_load_item *)calloc((size_t)n, sizeof *it);
        float *ref = (float *)malloc((size_t)n * 30000 * 4), *got = (float *)malloc((size_t)n * 30000 * 4);
        uint32_t threads[] = {1, 2, 4};
        int ti, direct;
        for (k = 0; k < n; ++k)
            CHECK_RES(mload_map_read(m, mload_map_tensor(m, k), MLOAD_DTYPE_F32, ref + k * 30000, 30000 * 4, &e), MLOAD_OK);
        for (direct = 0; direct < 2; ++direct) {
            for (ti = 0; ti < 3; ++ti) {
                mload_load_opts o;
                uint64_t prog[3] = {0, 0, 0};
                memset(&o, 0, sizeof o);
                o.threads = threads[ti];
                o.chunk_bytes = 10000; /* many chunks per tensor */
                o.progress = count_progress;
                o.progress_user = prog;
                o.io = direct ? MLOAD_IO_DIRECT : MLOAD_IO_DEFAULT;
                memset(got, 0, (size_t)n * 30000 * 4);
                for (k = 0; k < n; ++k) {
                    it[k].tensor = mload_map_tensor(m, k);
                    it[k].as = MLOAD_DTYPE_F32;
                    it[k].dst = got + k * 30000;
                    it[k].dst_size = 30000 * 4;
                    it[k].first = 0;
                    it[k].count = 0;
                }
                CHECK_RES(mload_map_load(m, it, n, &o, &e), MLOAD_OK);
                CHECK(memcmp(ref, got, (size_t)n * 30000 * 4) == 0);
                CHECK_EQ_U64(prog[1], n * 30000 * 2);
                CHECK_EQ_U64(prog[2], n * 30000 * 2);
                CHECK(prog[0] >= n * 6);
            }
        }
        /* same dtype, partial ranges, arena */
        {
            void *arena;
            uint64_t asz;
            for (k = 0; k < n; ++k) {
                it[k].tensor = mload_map_tensor(m, k);
                it[k].as = 0;
                it[k].dst = NULL;
                it[k].first = k;
                it[k].count = 1000;
            }
            CHECK_RES(mload_map_load_arena(m, it, n, NULL, &arena, &asz, &e), MLOAD_OK);
            if (arena) {
                for (k = 0; k < n; ++k) {
                    uint16_t v;
                    uint32_t u;
                    float x;
                    CHECK(((uintptr_t)it[k].dst & 63) == 0);
                    CHECK_EQ_U64(it[k].dst_size, 2000);
                    memcpy(&v, (char *)it[k].dst + 2 * 999, 2);
                    u = (uint32_t)v << 16;
                    memcpy(&x, &u, 4);
                    CHECK(x == ref[k * 30000 + k + 999]);
                }
                mload_map_free_buffer(m, arena, asz);
            }
        }
        /* cancel: stops early, says so */
        {
            mload_load_opts o;
            int calls = 0;
            memset(&o, 0, sizeof o);
            o.threads = 1;
            o.chunk_bytes = 4096;
            o.progress = cancel_after_two;
            o.progress_user = &calls;
            for (k = 0; k < n; ++k) { it[k].as = MLOAD_DTYPE_F32; it[k].dst = got + k * 30000; it[k].dst_size = 30000 * 4; it[k].first = 0; it[k].count = 0; }
            CHECK_RES(mload_map_load(m, it, n, &o, &e), MLOAD_ERR_CANCELLED);
            CHECK_EQ_U64(calls, 2);
            o.threads = 4;
            calls = 0;
            CHECK_RES(mload_map_load(m, it, n, &o, &e), MLOAD_ERR_CANCELLED);
            CHECK(calls >= 2 && calls < 40);
        }
        /* every item is checked before reading */
        it[3].dst_size = 7;
        CHECK_RES(mload_map_load(m, it, n, NULL, &e), MLOAD_ERR_INVALID_ARGUMENT);
        CHECK(strcmp(e.tensor, "t.003") == 0);
        free(it);
        free(ref);
        free(got);
        mload_map_close(m);
    }
    tbuf_free(&f);
}

/* ---- binding ---- */

typedef struct toy_model {
    float embed[4][3];
    float layer0[2][3];
    float layer1[2][3];
} toy_model;

static void test_map_bind(void) {
    const char *names[] = {"embed", "layer.0", "layer.1", "extra"};
    unsigned rows[] = {4, 2, 2, 1};
    tbuf f = f32_file(names, rows, 4, 0);
    mload_map *m;
    mload_error e;
    put_file("bind.safetensors", &f);
    CHECK_RES(open_one(tpath("bind.safetensors"), &m, &e), MLOAD_OK);
    if (m) {
        toy_model tm;
        uint64_t s43[] = {4, 3}, s23[] = {2, 3}, s33[] = {3, 3};
        mload_binding b[3];
        mload_bind_report rep;
        mload_bind_opts strict, lenient;
        const mload_tensor *unexp[4];
        memset(b, 0, sizeof b);
        memset(&strict, 0, sizeof strict);
        memset(&lenient, 0, sizeof lenient);
        lenient.mode = MLOAD_BIND_LENIENT;
        b[0].name = "embed"; b[0].rank = 2; b[0].shape = s43; b[0].dst = tm.embed; b[0].dst_size = sizeof tm.embed;
        b[1].name = "layer.0"; b[1].rank = 2; b[1].shape = s23; b[1].dst = tm.layer0; b[1].dst_size = sizeof tm.layer0;
        b[2].name = "layer.1"; b[2].rank = 2; b[2].shape = s23; b[2].dst = tm.layer1; b[2].dst_size = sizeof tm.layer1;
        /* strict: "extra" is unexpected -> nothing written */
        memset(&tm, 0x7F, sizeof tm);
        memset(&rep, 0xA5, sizeof rep); /* the report is output only: the library sets every field */
        strict.unexpected = unexp;
        strict.unexpected_cap = 4;
        CHECK_RES(mload_map_bind(m, b, 3, &strict, NULL, &rep, &e), MLOAD_ERR_BIND_MISMATCH);
        CHECK_EQ_U64(rep.unexpected, 1);
        CHECK(strcmp(unexp[0]->name, "extra") == 0);
        CHECK(((unsigned char *)&tm)[0] == 0x7F && ((unsigned char *)&tm)[sizeof tm - 1] == 0x7F);
        /* lenient: loads the three */
        CHECK_RES(mload_map_bind(m, b, 3, &lenient, NULL, &rep, &e), MLOAD_OK);
        CHECK_EQ_U64(rep.loaded, 3);
        CHECK(tm.embed[3][2] == 11.0f && tm.layer0[0][0] == 100.0f && tm.layer1[1][2] == 205.0f);
        /* missing, shape mismatch, small buffer, bad dtype: each reported */
        {
            mload_binding c[5];
            mload_bind_result cr[5];
            float small[2];
            uint64_t got_rows;
            memset(c, 0, sizeof c);
            c[0].name = "nope";
            c[1].name = "embed"; c[1].rank = 2; c[1].shape = s33;
            c[2].name = "layer.0"; c[2].dst = small; c[2].dst_size = sizeof small;
            c[3].name = "layer.1"; c[3].dtype = MLOAD_DTYPE_C64;
            c[4].name = "extra"; c[4].dtype = MLOAD_DTYPE_F16; /* allocate */
            memset(&rep, 0, sizeof rep);
            CHECK_RES(mload_map_bind(m, c, 5, NULL, NULL, &rep, &e), MLOAD_ERR_INVALID_ARGUMENT); /* allocating: needs results */
            CHECK_RES(mload_map_bind(m, c, 5, NULL, cr, &rep, &e), MLOAD_ERR_BIND_MISMATCH);
            CHECK(cr[4].dst == NULL && !cr[4].allocated); /* strict: nothing allocated */
            CHECK(cr[0].status == MLOAD_ERR_NOT_FOUND && cr[1].status == MLOAD_ERR_SHAPE_MISMATCH &&
                  cr[2].status == MLOAD_ERR_INVALID_ARGUMENT && cr[3].status == MLOAD_ERR_UNSUPPORTED);
            CHECK(rep.missing == 1 && rep.mismatched == 3 && rep.unexpected == 0);
            CHECK_RES(mload_map_bind(m, c, 5, &lenient, cr, &rep, &e), MLOAD_OK);
            CHECK_EQ_U64(rep.loaded, 1);
            CHECK(cr[4].allocated && cr[4].dst != NULL && cr[4].dst_size == 6);
            if (cr[4].dst) CHECK(((uint16_t *)cr[4].dst)[2] == 0x5CB8); /* 302.0 in F16 */
            mload_map_free_buffer(m, cr[4].dst, cr[4].dst_size);
            /* a rank's slice of rows */
            memset(c, 0, sizeof c);
            c[0].name = "embed"; c[0].shard_rank = 1; c[0].shard_world = 3; /* 4 rows: 2,1,1 -> rank 1 gets row 2 */
            CHECK_RES(mload_map_bind(m, c, 1, &lenient, cr, &rep, &e), MLOAD_OK);
            got_rows = cr[0].dst_size / 12;
            CHECK_EQ_U64(got_rows, 1);
            if (cr[0].dst) CHECK(((float *)cr[0].dst)[0] == 6.0f);
            mload_map_free_buffer(m, cr[0].dst, cr[0].dst_size);
        }
        mload_map_close(m);
    }
    tbuf_free(&f);
}

/* ---- fingerprint, checked by Python's hashlib ---- */

/* the first line of what cmd prints (newline cut), in out; 0 when it
   cannot run or prints nothing */
static int first_line(const char *cmd, char *out, size_t n) {
    FILE *p = popen(cmd, "r");
    int ok;
    out[0] = '\0';
    ok = p && fgets(out, (int)n, p) != NULL;
    if (p) pclose(p);
    out[strcspn(out, "\n")] = '\0';
    return ok;
}

static void test_map_fingerprint(void) {
    tbuf f = make_st("{\"b.w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},"
                     "\"a\":{\"dtype\":\"U8\",\"shape\":[],\"data_offsets\":[24,25]},"
                     "\"a.b\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[25,26]},"
                     "\"a:c\":{\"dtype\":\"U8\",\"shape\":[1,1,1],\"data_offsets\":[26,27]},"
                     "\"sc\xc3\xa9\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[27,27]},"
                     "\"e\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[27,35]}}", 35, NULL);
    mload_map *m;
    mload_error e;
    char fp[33], cmd[1024], py[64] = {0};
    put_file("fp.safetensors", &f);
    CHECK_RES(open_one(tpath("fp.safetensors"), &m, &e), MLOAD_OK);
    if (!m) { tbuf_free(&f); return; }
    CHECK_RES(mload_map_fingerprint(m, fp, &e), MLOAD_OK);
    CHECK(strlen(fp) == 32);
    mload_map_close(m);
    tbuf_free(&f);
    if (system("python3 -c 'import hashlib, json, struct' > /dev/null 2>&1") != 0) SKIP("python3 absent: fingerprint not cross-checked");
    snprintf(cmd, sizeof cmd,
             "python3 -c 'import hashlib,json,struct,sys\n"
             "b=open(sys.argv[1],\"rb\").read(); n=struct.unpack(\"<Q\",b[:8])[0]; h=json.loads(b[8:8+n])\n"
             "keys=[]\n"
             "for k,v in h.items():\n"
             "  if k==\"__metadata__\": continue\n"
             "  keys.append(k+\":\"+\"_\".join(map(str,v[\"shape\"]))); keys.append(k)\n"
             "keys.sort(); print(hashlib.md5(\",\".join(keys).encode(\"utf-8\")).hexdigest())' %s",
             tpath("fp.safetensors"));
    CHECK(first_line(cmd, py, sizeof py));
    if (strcmp(py, fp) != 0) {
        th_failed_checks++;
        fprintf(stderr, "  FAIL fingerprint %s, python %s\n", fp, py);
    }
}

/* A caller's table of known models (issue 10 item 12): the files'
   fingerprint (stored names, with or without shapes) picks the converter
   at open; mload_map_fingerprint_ex hashes stored or converted names, with
   or without shapes. */
static mload_result open_models(const char *path, const mload_model_entry *mt, uint64_t n, const mload_converter *c, mload_map **m,
                                mload_error *e) {
    mload_map_desc d;
    memset(&d, 0, sizeof d);
    d.paths = &path;
    d.path_count = 1;
    d.models = mt;
    d.model_count = n;
    d.converter = c;
    return mload_map_open(&d, m, e);
}

static void test_map_models(void) {
    tbuf f = make_st("{\"model.diffusion_model.a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},"
                     "\"model.diffusion_model.b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[24,40]}}", 40, NULL);
    char full[33], ns[33], fp[33], py[64] = {0}, cmd[512];
    mload_rules *strip = NULL, *pre = NULL;
    mload_converter cs, cp;
    mload_model_entry mt[3];
    mload_map *m = NULL;
    mload_error e;
    put_file("models.safetensors", &f);
    tbuf_free(&f);
    memset(&cs, 0, sizeof cs);
    memset(&cp, 0, sizeof cp);
    CHECK_RES(mload_rules_create("strip-prefix model.diffusion_model.\n", 36, NULL, &strip, &e), MLOAD_OK);
    CHECK_RES(mload_rules_create("add-prefix other.\n", 18, NULL, &pre, &e), MLOAD_OK);
    cs.rules = mload_rules_list(strip, &cs.rule_count);
    cp.rules = mload_rules_list(pre, &cp.rule_count);
    /* the variants */
    CHECK_RES(open_one(tpath("models.safetensors"), &m, &e), MLOAD_OK);
    CHECK_RES(mload_map_fingerprint(m, full, &e), MLOAD_OK);
    CHECK_RES(mload_map_fingerprint_ex(m, MLOAD_FP_NO_SHAPES, ns, &e), MLOAD_OK);
    CHECK(strcmp(full, ns) != 0);
    CHECK_RES(mload_map_fingerprint_ex(m, 4, fp, &e), MLOAD_ERR_INVALID_ARGUMENT);
    CHECK(mload_map_model(m) == UINT64_MAX);
    mload_map_close(m);
    CHECK_RES(open_models(tpath("models.safetensors"), NULL, 0, &cs, &m, &e), MLOAD_OK);
    CHECK_RES(mload_map_fingerprint(m, fp, &e), MLOAD_OK);
    CHECK(strcmp(fp, full) != 0); /* converted names */
    CHECK_RES(mload_map_fingerprint_ex(m, MLOAD_FP_STORED_NAMES, fp, &e), MLOAD_OK);
    CHECK(strcmp(fp, full) == 0);
    CHECK_RES(mload_map_fingerprint_ex(m, MLOAD_FP_STORED_NAMES | MLOAD_FP_NO_SHAPES, fp, &e), MLOAD_OK);
    CHECK(strcmp(fp, ns) == 0);
    mload_map_close(m);
    /* matched at open: the second entry (without shapes) */
    memset(mt, 0, sizeof mt);
    mt[0].fingerprint = "00000000000000000000000000000000"; mt[0].converter = &cp; mt[0].name = "other";
    mt[1].fingerprint = ns; mt[1].flags = MLOAD_FP_NO_SHAPES; mt[1].converter = &cs; mt[1].name = "unet";
    mt[2].fingerprint = full; mt[2].converter = &cp; mt[2].name = "later";
    CHECK_RES(open_models(tpath("models.safetensors"), mt, 3, &cp, &m, &e), MLOAD_OK);
    CHECK(m && mload_map_model(m) == 1 && mload_map_find(m, "a") && mload_map_find(m, "b") && mload_map_count(m) == 2);
    mload_map_close(m);
    /* with shapes */
    CHECK_RES(open_models(tpath("models.safetensors"), mt + 2, 1, NULL, &m, &e), MLOAD_OK);
    CHECK(m && mload_map_model(m) == 0 && mload_map_find(m, "other.model.diffusion_model.a"));
    mload_map_close(m);
    /* no match: the desc's converter */
    CHECK_RES(open_models(tpath("models.safetensors"), mt, 1, &cs, &m, &e), MLOAD_OK);
    CHECK(m && mload_map_model(m) == UINT64_MAX && mload_map_find(m, "a"));
    mload_map_close(m);
    /* bad tables */
    mt[0].flags = 8;
    CHECK_RES(open_models(tpath("models.safetensors"), mt, 1, NULL, &m, &e), MLOAD_ERR_INVALID_ARGUMENT);
    CHECK(m == NULL);
    CHECK_RES(open_models(tpath("models.safetensors"), NULL, 2, NULL, &m, &e), MLOAD_ERR_INVALID_ARGUMENT);
    mload_rules_destroy(strip);
    mload_rules_destroy(pre);
    /* the variant without shapes, cross-checked with Python's hashlib */
    if (system("python3 -c 'import hashlib' > /dev/null 2>&1") != 0) SKIP("python3 absent: the variant without shapes not cross-checked");
    snprintf(cmd, sizeof cmd, "python3 -c 'import hashlib; print(hashlib.md5(\",\".join(sorted([\"model.diffusion_model.a\",\"model.diffusion_model.b\"])).encode()).hexdigest())'");
    CHECK(first_line(cmd, py, sizeof py));
    CHECK(strcmp(py, ns) == 0);
}

/* ---- writer ---- */

static void test_writer_roundtrip(void) {
    float a[6] = {1, 2, 3, 4, 5, 6};
    uint8_t b[3] = {7, 8, 9};
    double c = 3.25;
    uint64_t sa[] = {2, 3}, sb[] = {3};
    mload_write_tensor w[3];
    mload_kv meta[1];
    mload_write_opts o;
    mload_map *m, *m2;
    mload_error e;
    memset(w, 0, sizeof w);
    memset(&o, 0, sizeof o);
    w[0].name = "u8"; w[0].dtype = MLOAD_DTYPE_U8; w[0].rank = 1; w[0].shape = sb; w[0].data = b;
    w[1].name = "f32"; w[1].dtype = MLOAD_DTYPE_F32; w[1].rank = 2; w[1].shape = sa; w[1].data = a;
    w[2].name = "scal\"ar"; w[2].dtype = MLOAD_DTYPE_F64; w[2].rank = 0; w[2].data = &c;
    meta[0].key = "format"; meta[0].key_len = 6; meta[0].value = "pt"; meta[0].value_len = 2;
    o.metadata = meta;
    o.metadata_count = 1;
    CHECK_RES(mload_write(tpath("w1.safetensors"), w, 3, &o, &e), MLOAD_OK);
    CHECK_RES(open_one(tpath("w1.safetensors"), &m, &e), MLOAD_OK);
    if (!m) return;
    {
        const mload_file *f = mload_map_file(m, 0);
        uint64_t i;
        float ra[6];
        double rc;
        CHECK(mload_file_header_size(f) % 8 == 0);
        CHECK(mload_file_metadata_find(f, "format") && strcmp(mload_file_metadata_find(f, "format")->value, "pt") == 0);
        for (i = 0; i < mload_file_count(f); ++i) { /* aligned to element size in the file */
            const mload_tensor *t = mload_file_tensor(f, i);
            CHECK(t->offset % (mload_dtype_bits(t->dtype) / 8) == 0);
        }
        CHECK(strcmp(mload_file_tensor(f, 0)->name, "scal\"ar") == 0); /* F64 first */
        CHECK_RES(mload_map_read(m, mload_map_find(m, "f32"), 0, ra, sizeof ra, &e), MLOAD_OK);
        CHECK(memcmp(ra, a, sizeof a) == 0);
        CHECK_RES(mload_map_read(m, mload_map_find(m, "scal\"ar"), 0, &rc, 8, &e), MLOAD_OK);
        CHECK(rc == 3.25);
    }
    /* from a map, converted, sharded */
    {
        mload_write_tensor w2[3];
        uint64_t i;
        memset(w2, 0, sizeof w2);
        memset(&o, 0, sizeof o);
        for (i = 0; i < 3; ++i) {
            w2[i].name = mload_map_tensor(m, i)->name;
            w2[i].map = m;
            w2[i].src = mload_map_tensor(m, i);
        }
        w2[1].dtype = MLOAD_DTYPE_BF16; /* "scal\"ar" F64 -> BF16 */
        o.shard_bytes = 8;
        CHECK_RES(mload_write(tpath("w2.safetensors"), w2, 3, &o, &e), MLOAD_OK);
        CHECK_RES(open_one(tpath("w2.safetensors.index.json"), &m2, &e), MLOAD_OK);
        if (m2) {
            uint16_t h;
            float ra[6];
            uint8_t rb[3];
            CHECK_EQ_U64(mload_map_file_count(m2), 2);
            CHECK(strstr(mload_map_file_path(m2, 0), "w2-00001-of-00002.safetensors") != NULL);
            CHECK_EQ_U64(mload_map_declared_size(m2), 24 + 3 + 2);
            CHECK_RES(mload_map_read(m2, mload_map_find(m2, "scal\"ar"), 0, &h, 2, &e), MLOAD_OK);
            CHECK(h == 0x4050); /* 3.25 */
            CHECK_RES(mload_map_read(m2, mload_map_find(m2, "f32"), 0, ra, sizeof ra, &e), MLOAD_OK);
            CHECK(memcmp(ra, a, sizeof a) == 0);
            CHECK_RES(mload_map_read(m2, mload_map_find(m2, "u8"), 0, rb, 3, &e), MLOAD_OK);
            CHECK(memcmp(rb, b, 3) == 0);
            mload_map_close(m2);
        }
    }
    /* refusals */
    {
        mload_write_tensor d2[2];
        memset(d2, 0, sizeof d2);
        d2[0] = w[0];
        d2[1] = w[0];
        CHECK_RES(mload_write(tpath("w3.safetensors"), d2, 2, NULL, &e), MLOAD_ERR_DUPLICATE_KEY);
        d2[1].name = "__metadata__";
        CHECK_RES(mload_write(tpath("w3.safetensors"), d2, 2, NULL, &e), MLOAD_ERR_INVALID_ARGUMENT);
        d2[1].name = "bad\xff";
        CHECK_RES(mload_write(tpath("w3.safetensors"), d2, 2, NULL, &e), MLOAD_ERR_INVALID_ARGUMENT);
        CHECK(access(tpath("w3.safetensors"), F_OK) != 0);
    }
    mload_map_close(m);
}

/* writer edge cases: an empty tensor without data, a name holding a NUL
   byte (name_len), metadata given as counted strings without a terminating
   NUL, and a duplicate metadata key */
static void test_writer_edges(void) {
    uint64_t s0[] = {0}, s1[] = {2};
    uint16_t h[2] = {0x3c00, 0xc000};
    char key[3] = {'f', 'm', 't'}, val[2] = {'p', 't'}; /* no NUL after them */
    mload_write_tensor w[2];
    mload_kv meta[2];
    mload_write_opts o;
    mload_map *m;
    mload_error e;
    memset(w, 0, sizeof w);
    memset(&o, 0, sizeof o);
    memset(meta, 0, sizeof meta);
    w[0].name = "empty"; w[0].dtype = MLOAD_DTYPE_F32; w[0].rank = 1; w[0].shape = s0; w[0].data = NULL;
    w[1].name = "x\0y"; w[1].name_len = 3; w[1].dtype = MLOAD_DTYPE_F16; w[1].rank = 1; w[1].shape = s1; w[1].data = h;
    meta[0].key = key; meta[0].key_len = 3; meta[0].value = val; meta[0].value_len = 2;
    o.metadata = meta;
    o.metadata_count = 1;
    CHECK_RES(mload_write(tpath("edge.safetensors"), w, 2, &o, &e), MLOAD_OK);
    CHECK_RES(open_one(tpath("edge.safetensors"), &m, &e), MLOAD_OK);
    if (m) {
        const mload_tensor *t = mload_map_find(m, "empty");
        const mload_file *f = mload_map_file(m, 0);
        uint16_t r[2];
        CHECK(t != NULL && t->nbytes == 0 && t->rank == 1 && t->shape[0] == 0);
        t = mload_map_find_n(m, "x\0y", 3);
        CHECK(t != NULL);
        CHECK(mload_map_find(m, "x") == NULL);
        if (t) {
            CHECK_RES(mload_map_read(m, t, 0, r, sizeof r, &e), MLOAD_OK);
            CHECK(memcmp(r, h, sizeof h) == 0);
        }
        CHECK(mload_file_metadata_find(f, "fmt") && strcmp(mload_file_metadata_find(f, "fmt")->value, "pt") == 0);
        mload_map_close(m);
    }
    /* a NUL name byte with name_len 0 is the C string "x": a different tensor */
    w[1].name_len = 0;
    CHECK_RES(mload_write(tpath("edge2.safetensors"), w, 2, NULL, &e), MLOAD_OK);
    CHECK_RES(open_one(tpath("edge2.safetensors"), &m, &e), MLOAD_OK);
    if (m) {
        CHECK(mload_map_find(m, "x") != NULL);
        mload_map_close(m);
    }
    /* the same metadata key twice is refused, nothing is left behind */
    meta[1] = meta[0];
    o.metadata_count = 2;
    CHECK_RES(mload_write(tpath("edge3.safetensors"), w, 2, &o, &e), MLOAD_ERR_DUPLICATE_KEY);
    CHECK(strstr(e.message, "'fmt'") != NULL && strcmp(e.tensor, "fmt") == 0);
    CHECK(access(tpath("edge3.safetensors"), F_OK) != 0);
    /* sharded: U8 sorts after F16, so the empty tensor gets a shard of
       its own with no data bytes at all */
    o.metadata_count = 1;
    o.shard_bytes = 2;
    w[0].dtype = MLOAD_DTYPE_U8;
    CHECK_RES(mload_write(tpath("edge4.safetensors"), w, 2, &o, &e), MLOAD_OK);
    CHECK_RES(open_one(tpath("edge4.safetensors.index.json"), &m, &e), MLOAD_OK);
    if (m) {
        CHECK_EQ_U64(mload_map_file_count(m), 2);
        CHECK(mload_map_find(m, "empty") != NULL);
        CHECK(mload_map_find(m, "x") != NULL);
        mload_map_close(m);
    }
}

/* whole file into a tbuf (empty when absent) */
static tbuf slurp(const char *path) {
    tbuf b = {0, 0, 0};
    unsigned char chunk[4096];
    size_t got;
    FILE *fp = fopen(path, "rb");
    if (!fp) return b;
    while ((got = fread(chunk, 1, sizeof chunk, fp)) > 0) tbuf_put(&b, chunk, got);
    fclose(fp);
    return b;
}

static int same_file(const char *path, const tbuf *want) {
    tbuf b = slurp(path);
    int same = b.n == want->n && (b.n == 0 || memcmp(b.p, want->p, b.n) == 0);
    tbuf_free(&b);
    return same;
}

/* a sharded write through a sized allocator that fails each allocation in
   turn: every outcome frees exactly what it took and leaves no temporaries */
static void test_writer_allocator_balanced(void) {
    float a[4] = {1, 2, 3, 4};
    uint8_t b[4] = {9, 10, 11, 12};
    uint64_t s4[] = {4};
    mload_kv meta[1];
    mload_write_tensor w[2];
    mload_write_opts o;
    mload_error e;
    wacct acc;
    long k;
    int pass;
    char cmd[700];
    mload_result r;
    memset(w, 0, sizeof w);
    memset(&o, 0, sizeof o);
    w[0].name = "a"; w[0].dtype = MLOAD_DTYPE_F32; w[0].rank = 1; w[0].shape = s4; w[0].data = a;
    w[1].name = "b"; w[1].dtype = MLOAD_DTYPE_U8; w[1].rank = 1; w[1].shape = s4; w[1].data = b;
    meta[0].key = "format"; meta[0].key_len = 6; meta[0].value = "pt"; meta[0].value_len = 2;
    o.metadata = meta;
    o.metadata_count = 1;
    o.shard_bytes = 16;
    o.allocator.alloc = wacct_alloc;
    o.allocator.free = wacct_free;
    o.allocator.user = &acc;
    mkdir(tpath("wa"), 0755);
    for (pass = 0; pass < 2; ++pass) { /* sharded, then one file */
        o.shard_bytes = pass ? 0 : 16;
        r = MLOAD_ERR_OUT_OF_MEMORY;
        for (k = 0; k < 200 && r == MLOAD_ERR_OUT_OF_MEMORY; ++k) {
            memset(&acc, 0, sizeof acc);
            acc.fail_at = k;
            r = mload_write(tpath(pass ? "wa/one.safetensors" : "wa/m.safetensors"), w, 2, &o, &e);
            wacct_done(&acc);
            if (acc.bytes != 0 || acc.live != 0) {
                CHECK(acc.bytes == 0 && acc.live == 0);
                fprintf(stderr, "  failing allocation %ld: %lld bytes in %ld blocks not returned\n", k, acc.bytes, acc.live);
                break;
            }
        }
        CHECK_RES(r, MLOAD_OK);
        CHECK(k > 3); /* the failures were really exercised */
    }
    snprintf(cmd, sizeof cmd, "ls '%s' | grep -q tmp", tpath("wa"));
    CHECK(system(cmd) != 0);
}

/* a sharded rewrite that fails in its second shard leaves the existing
   checkpoint exactly as it was, and no temporary files */
static void test_writer_failed_rewrite_keeps_old(void) {
    float a[4] = {1, 2, 3, 4}, a2[4] = {5, 6, 7, 8};
    uint8_t bsrc[4] = {9, 10, 11, 12};
    uint64_t s4[] = {4};
    mload_write_tensor w[2];
    mload_write_opts o;
    mload_map *src = NULL;
    mload_error e;
    tbuf old1, old2, oldi;
    char cmd[700];
    memset(w, 0, sizeof w);
    memset(&o, 0, sizeof o);
    /* 16 + 4 data bytes in shards of at most 16: two shards */
    w[0].name = "a"; w[0].dtype = MLOAD_DTYPE_F32; w[0].rank = 1; w[0].shape = s4; w[0].data = a;
    w[1].name = "b"; w[1].dtype = MLOAD_DTYPE_U8; w[1].rank = 1; w[1].shape = s4; w[1].data = bsrc;
    o.shard_bytes = 16;
    mkdir(tpath("rw"), 0755);
    CHECK_RES(mload_write(tpath("rw/m.safetensors"), w, 2, &o, &e), MLOAD_OK);
    old1 = slurp(tpath("rw/m-00001-of-00002.safetensors"));
    old2 = slurp(tpath("rw/m-00002-of-00002.safetensors"));
    oldi = slurp(tpath("rw/m.safetensors.index.json"));
    CHECK(old1.n > 0 && old2.n > 0 && oldi.n > 0);
    /* the second shard's tensor comes from a map whose file then shrinks */
    CHECK_RES(mload_write(tpath("rw_src.safetensors"), &w[1], 1, NULL, &e), MLOAD_OK);
    CHECK_RES(open_one(tpath("rw_src.safetensors"), &src, &e), MLOAD_OK);
    if (src) {
        CHECK(truncate(tpath("rw_src.safetensors"), 10) == 0);
        w[0].data = a2;
        w[1].data = NULL;
        w[1].map = src;
        w[1].src = mload_map_find(src, "b");
        CHECK_RES(mload_write(tpath("rw/m.safetensors"), w, 2, &o, &e), MLOAD_ERR_IO);
        mload_map_close(src);
    }
    CHECK(same_file(tpath("rw/m-00001-of-00002.safetensors"), &old1));
    CHECK(same_file(tpath("rw/m-00002-of-00002.safetensors"), &old2));
    CHECK(same_file(tpath("rw/m.safetensors.index.json"), &oldi));
    snprintf(cmd, sizeof cmd, "ls '%s' | grep -q tmp", tpath("rw"));
    CHECK(system(cmd) != 0); /* no temporaries left */
    tbuf_free(&old1);
    tbuf_free(&old2);
    tbuf_free(&oldi);
}

/* the writer's files re-read bit for bit, many dtypes, by the official
   library too when it is installed */
static void test_writer_official_reads(void) {
    char cmd[1024];
    float a[4] = {0.5f, -1.0f, 3.0f, 1e-3f};
    int64_t b[2] = {-5, 1LL << 40};
    uint64_t sa[] = {2, 2}, sb[] = {2};
    mload_write_tensor w[2];
    mload_error e;
    memset(w, 0, sizeof w);
    w[0].name = "a"; w[0].dtype = MLOAD_DTYPE_F32; w[0].rank = 2; w[0].shape = sa; w[0].data = a;
    w[1].name = "b"; w[1].dtype = MLOAD_DTYPE_I64; w[1].rank = 1; w[1].shape = sb; w[1].data = b;
    CHECK_RES(mload_write(tpath("off.safetensors"), w, 2, NULL, &e), MLOAD_OK);
    if (system("python3 -c 'import safetensors.numpy' > /dev/null 2>&1") != 0) SKIP("python safetensors absent: not cross-read");
    snprintf(cmd, sizeof cmd,
             "python3 -c 'import sys; from safetensors.numpy import load_file; d=load_file(sys.argv[1]);"
             "assert d[\"a\"].tolist()==[[0.5,-1.0],[3.0,0.0010000000474974513]], d; assert d[\"b\"].tolist()==[-5,1<<40]' %s",
             tpath("off.safetensors"));
    CHECK(system(cmd) == 0);
}

static void rm_rf(const char *dir) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "  (could not remove %s)\n", dir);
}

/* A user source over memory that offers the optional capabilities and counts
   their use: views and direct bulk loads go through them, never through a
   comparison with the built-in sources. */
typedef struct cap_src {
    const unsigned char *data;
    uint64_t size;
    int views, releases, direct_calls, refuse_direct;
    const unsigned char *caller_lo, *caller_hi; /* direct reads landing in [lo, hi) are counted in caller_reads */
    int caller_reads;
} cap_src;

static mload_result cap_read(void *u, uint64_t off, void *dst, size_t n) {
    cap_src *c = (cap_src *)u;
    if (off > c->size || n > c->size - off) return MLOAD_ERR_IO;
    memcpy(dst, c->data + off, n);
    return MLOAD_OK;
}
static mload_result cap_size(void *u, uint64_t *out) { *out = ((cap_src *)u)->size; return MLOAD_OK; }
static void cap_release(mload_view *v) { ((cap_src *)v->base)->releases++; }
static mload_result cap_view(void *u, uint64_t off, uint64_t n, mload_view *out) {
    cap_src *c = (cap_src *)u;
    c->views++;
    out->data = c->data + off;
    out->size = n;
    out->release = cap_release;
    out->base = c;
    return MLOAD_OK;
}
static mload_result cap_direct(void *u, uint64_t off, void *dst, size_t n, size_t *got) {
    cap_src *c = (cap_src *)u;
    __atomic_fetch_add(&c->direct_calls, 1, __ATOMIC_RELAXED); /* bulk loads call from several threads */
    if (off % MLOAD_DIRECT_ALIGN || n % MLOAD_DIRECT_ALIGN || (uintptr_t)dst % MLOAD_DIRECT_ALIGN) return MLOAD_ERR_IO;
    if (c->refuse_direct) return MLOAD_ERR_UNSUPPORTED;
    if ((const unsigned char *)dst >= c->caller_lo && (const unsigned char *)dst < c->caller_hi) c->caller_reads++;
    *got = off >= c->size ? 0 : (c->size - off < n ? (size_t)(c->size - off) : n);
    memcpy(dst, c->data + off, *got);
    return MLOAD_OK;
}

/* a map over img through a cap_src offering read_direct (no view) */
static mload_result open_direct_cap(cap_src *c, const tbuf *img, mload_map **m, mload_error *e) {
    mload_source s;
    mload_map_desc d;
    c->data = img->p;
    c->size = img->n;
    memset(&s, 0, sizeof s);
    s.read_at = cap_read;
    s.size = cap_size;
    s.read_direct = cap_direct;
    s.user = c;
    memset(&d, 0, sizeof d);
    d.sources = &s;
    d.source_count = 1;
    return mload_map_open(&d, m, e);
}

static void test_source_capabilities(void) {
    /* two F32 tensors of 3000 elements: values i and 10000 + i */
    tbuf hb = {0, 0, 0}, img;
    float *vals = (float *)malloc(6000 * sizeof(float)), *got = (float *)malloc(6000 * sizeof(float));
    const char *hdr = "{\"a\":{\"dtype\":\"F32\",\"shape\":[3000],\"data_offsets\":[0,12000]},"
                      "\"b\":{\"dtype\":\"F32\",\"shape\":[3000],\"data_offsets\":[12000,24000]}}";
    int k, pass;
    (void)hb;
    for (k = 0; k < 6000; ++k) vals[k] = (float)(k < 3000 ? k : 10000 + k - 3000);
    img = make_st(hdr, 24000, (const unsigned char *)vals);
    for (pass = 0; pass < 3; ++pass) { /* 0: view + direct, 1: direct refused, 2: no capability */
        cap_src c;
        mload_source s;
        mload_map_desc d;
        mload_map *m = NULL;
        mload_error e;
        mload_view v;
        mload_load_item it[2];
        mload_load_opts o;
        memset(&c, 0, sizeof c);
        c.data = img.p;
        c.size = img.n;
        c.refuse_direct = pass == 1;
        memset(&s, 0, sizeof s);
        s.read_at = cap_read;
        s.size = cap_size;
        s.user = &c;
        if (pass < 2) {
            s.view = cap_view;
            s.read_direct = cap_direct;
        }
        memset(&d, 0, sizeof d);
        d.sources = &s;
        d.source_count = 1;
        CHECK_RES(mload_map_open(&d, &m, &e), MLOAD_OK);
        if (!m) continue;
        if (pass < 2) {
            CHECK_RES(mload_view_open(m, mload_map_find(m, "b"), &v, &e), MLOAD_OK);
            CHECK(c.views == 1 && v.size == 12000 && v.data && memcmp(v.data, vals + 3000, 12000) == 0);
            mload_view_close(&v);
            CHECK(c.releases == 1 && v.data == NULL);
        } else {
            CHECK_RES(mload_view_open(m, mload_map_find(m, "b"), &v, &e), MLOAD_ERR_UNSUPPORTED);
        }
        memset(it, 0, sizeof it);
        memset(got, 0, 6000 * sizeof(float));
        it[0].tensor = mload_map_find(m, "a");
        it[0].dst = got;
        it[0].dst_size = 12000;
        it[1].tensor = mload_map_find(m, "b");
        it[1].as = MLOAD_DTYPE_F64; /* a casting direct read: through scratch */
        it[1].dst = malloc(24000);
        it[1].dst_size = 24000;
        memset(&o, 0, sizeof o);
        o.io = MLOAD_IO_DIRECT;
        o.threads = 2;
        o.chunk_bytes = 5000; /* several unaligned chunks per tensor */
        CHECK_RES(mload_map_load(m, it, 2, &o, &e), MLOAD_OK);
        CHECK(memcmp(got, vals, 12000) == 0);
        if (it[1].dst) CHECK(((double *)it[1].dst)[0] == 10000.0 && ((double *)it[1].dst)[2999] == 12999.0);
        if (pass == 0) CHECK(c.direct_calls >= 6); /* every chunk through read_direct */
        if (pass == 1) CHECK(c.direct_calls >= 1); /* asked, refused, plain reads after */
        if (pass == 2) CHECK(c.direct_calls == 0);
        free(it[1].dst);
        mload_map_close(m);
    }
    tbuf_free(&img);
    free(vals);
    free(got);
}

/* MLOAD_IO_DIRECT into a caller buffer: the aligned middle is read straight
   into it, in place when the buffer is aligned like the file, else a block
   below and moved up; the bounce buffer takes only the head and tail; both
   give the stored bytes and nothing around them, whatever the chunk size */
static void test_map_direct_into_caller(void) {
    char hdr[4089];
    const size_t n = 300000; /* F32 elements: 1.2 MB, several bounce buffers */
    unsigned char *data = (unsigned char *)malloc(100 + n * 4), *buf = (unsigned char *)aligned_alloc(4096, (n * 4 + 8192 + 4095) / 4096 * 4096);
    size_t k;
    int len, pass;
    tbuf img = {0, 0, 0};
    if (!data || !buf) { CHECK(0); free(data); free(buf); return; }
    for (k = 0; k < 100 + n * 4; ++k) data[k] = (unsigned char)(k * 7 + (k >> 9));
    /* the data starts at file offset 4096: "a" at 4196, 100 past a boundary */
    len = snprintf(hdr, sizeof hdr, "{\"pre\":{\"dtype\":\"U8\",\"shape\":[100],\"data_offsets\":[0,100]},"
                                    "\"a\":{\"dtype\":\"F32\",\"shape\":[%zu],\"data_offsets\":[100,%zu]}}", n, 100 + n * 4);
    memset(hdr + len, ' ', sizeof hdr - 1 - (size_t)len);
    hdr[sizeof hdr - 1] = 0;
    img = make_st_n(hdr, 4088, 100 + n * 4, data);
    for (pass = 0; pass < 4; ++pass) { /* buffer offset 100 (alike) or 150 (not); chunks of 8 MiB or 5000 bytes */
        cap_src c;
        mload_map *m = NULL;
        mload_error e;
        mload_load_item it;
        mload_load_opts o;
        unsigned char *dst = buf + (pass < 2 ? 100 : 150); /* 150: each middle lands 50 bytes low */
        memset(&c, 0, sizeof c);
        c.caller_lo = buf;
        c.caller_hi = buf + n * 4 + 8192;
        CHECK_RES(open_direct_cap(&c, &img, &m, &e), MLOAD_OK);
        if (!m) continue;
        CHECK_EQ_U64(mload_map_find(m, "a")->offset, 4196);
        memset(buf, 0xEE, n * 4 + 8192);
        memset(&it, 0, sizeof it);
        it.tensor = mload_map_find(m, "a");
        it.dst = dst;
        it.dst_size = n * 4;
        memset(&o, 0, sizeof o);
        o.io = MLOAD_IO_DIRECT;
        o.threads = 1;
        o.chunk_bytes = pass % 2 ? 5000 : 0;
        CHECK_RES(mload_map_load(m, &it, 1, &o, &e), MLOAD_OK);
        CHECK(memcmp(dst, data + 100, n * 4) == 0);
        CHECK(dst[-1] == 0xEE && dst[n * 4] == 0xEE);
        if (pass % 2 == 0) CHECK(c.caller_reads == 1 && c.direct_calls == 3); /* the middle, then head and tail */
        if (pass == 1) CHECK(c.caller_reads >= 40);  /* the chunks of 5000 bytes with a whole block after the head */
        if (pass == 3) CHECK(c.caller_reads >= 40);
        mload_map_close(m);
    }
    tbuf_free(&img);
    free(data);
    free(buf);
}

/* MLOAD_IO_DIRECT over random geometry: where the tensor starts in the
   file, where the destination starts in memory, which elements, which
   chunk size, one or two threads, as stored or cast to F32: always the
   stored bytes (or their cast), nothing written around them */
static void test_map_direct_random(void) {
    static const unsigned pres[] = {0, 1, 100, 4095, 4103};
    const size_t n = 300000;
    unsigned char *data = (unsigned char *)malloc(8192 + n), *buf = (unsigned char *)malloc(n * 4 + 8192);
    size_t pi, k;
    int it;
    uint64_t rng = 0x5EED0007;
    if (!data || !buf) { CHECK(0); free(data); free(buf); return; }
    for (k = 0; k < 8192 + n; ++k) data[k] = (unsigned char)(k * 131 + (k >> 11));
    for (pi = 0; pi < sizeof pres / sizeof pres[0]; ++pi) {
        char hdr[256];
        tbuf img;
        cap_src c;
        mload_map *m = NULL;
        mload_error e;
        snprintf(hdr, sizeof hdr, "{\"pre\":{\"dtype\":\"U8\",\"shape\":[%u],\"data_offsets\":[0,%u]},"
                                  "\"u\":{\"dtype\":\"U8\",\"shape\":[%zu],\"data_offsets\":[%u,%zu]}}",
                 pres[pi], pres[pi], n, pres[pi], pres[pi] + n);
        img = make_st(hdr, pres[pi] + n, data);
        memset(&c, 0, sizeof c);
        CHECK_RES(open_direct_cap(&c, &img, &m, &e), MLOAD_OK);
        for (it = 0; m && it < 60; ++it) {
            mload_load_item item;
            mload_load_opts o;
            const mload_tensor *t = mload_map_find(m, "u");
            size_t first, count, at, eb, j;
            int cast;
            rng = rng * 6364136223846793005ull + 1442695040888963407ull;
            first = (size_t)(rng >> 40) % n;
            count = 1 + (size_t)(rng >> 20) % (n - first);
            at = (size_t)(rng >> 8) % 4096;
            cast = (rng >> 60) == 0; /* 1 in 16 */
            eb = cast ? 4 : 1;
            if (count * eb + at + 64 > n * 4 + 8192) count = (n * 4 + 8192 - at - 64) / eb;
            memset(buf, 0xEE, n * 4 + 8192);
            memset(&item, 0, sizeof item);
            item.tensor = t;
            item.as = cast ? MLOAD_DTYPE_F32 : MLOAD_DTYPE_INVALID;
            item.first = first;
            item.count = count;
            item.dst = buf + at;
            item.dst_size = count * eb;
            memset(&o, 0, sizeof o);
            o.io = MLOAD_IO_DIRECT;
            o.threads = 1 + (uint32_t)((rng >> 4) & 1);
            o.chunk_bytes = (rng >> 5) & 1 ? 1 + (rng >> 24) % 70000 : 0;
            CHECK_RES(mload_map_load(m, &item, 1, &o, &e), MLOAD_OK);
            for (j = 0; j < count; ++j) {
                unsigned char want = data[pres[pi] + first + j];
                if (cast) {
                    float f;
                    memcpy(&f, buf + at + 4 * j, 4);
                    if (f != (float)want) break;
                } else if (buf[at + j] != want) {
                    break;
                }
            }
            CHECK(j == count);
            CHECK((at == 0 || buf[at - 1] == 0xEE) && buf[at + count * eb] == 0xEE);
            if (j != count) {
                fprintf(stderr, "  pre %u first %zu count %zu at %zu cast %d chunk %llu: element %zu wrong\n", pres[pi], first,
                        count, at, cast, (unsigned long long)o.chunk_bytes, j);
                break;
            }
        }
        mload_map_close(m);
        tbuf_free(&img);
    }
    free(data);
    free(buf);
}

/* MLOAD_CAST_READ_VIEW: reads that cast give the bytes of the default copy
   path, from a file (mmap), a memory buffer and a user source (whose views
   are all released), whole and in ranges; a source without views copies;
   a cast_read beyond the enum is refused */
static void test_map_cast_read_views(void) {
    static const mload_dtype as[] = {MLOAD_DTYPE_BF16, MLOAD_DTYPE_F16, MLOAD_DTYPE_F8_E4M3, MLOAD_DTYPE_F64, MLOAD_DTYPE_I32};
    const char *names[] = {"a", "b"};
    unsigned rows[] = {5000, 7};
    tbuf f = f32_file(names, rows, 2, 0.25f);
    unsigned char *want = (unsigned char *)malloc(15000 * 8), *got = (unsigned char *)malloc(15000 * 8);
    const char *path;
    mload_map *copy = NULL, *view = NULL, *mem = NULL, *user = NULL;
    mload_map_desc d;
    mload_source s;
    cap_src c;
    mload_error e;
    size_t k, j;
    put_file("castviews.safetensors", &f);
    path = tpath("castviews.safetensors");
    CHECK_RES(open_one(path, &copy, &e), MLOAD_OK);
    memset(&d, 0, sizeof d);
    d.paths = &path;
    d.path_count = 1;
    d.cast_read = (mload_cast_read)2;
    CHECK_RES(mload_map_open(&d, &view, &e), MLOAD_ERR_INVALID_ARGUMENT);
    d.cast_read = MLOAD_CAST_READ_VIEW;
    CHECK_RES(mload_map_open(&d, &view, &e), MLOAD_OK);
    CHECK_RES(mload_source_open_memory(f.p, f.n, NULL, &s, &e), MLOAD_OK);
    d.paths = NULL;
    d.path_count = 0;
    d.sources = &s;
    d.source_count = 1;
    CHECK_RES(mload_map_open(&d, &mem, &e), MLOAD_OK);
    memset(&c, 0, sizeof c);
    c.data = f.p;
    c.size = f.n;
    memset(&s, 0, sizeof s);
    s.read_at = cap_read;
    s.size = cap_size;
    s.view = cap_view;
    s.user = &c;
    CHECK_RES(mload_map_open(&d, &user, &e), MLOAD_OK);
    for (k = 0; copy && view && mem && user && want && got && k < sizeof as / sizeof as[0]; ++k) {
        mload_map *ms[3];
        const mload_tensor *t = mload_map_find(copy, "a");
        uint64_t eb = mload_dtype_bits(as[k]) / 8u;
        ms[0] = view;
        ms[1] = mem;
        ms[2] = user;
        CHECK_RES(mload_map_read(copy, t, as[k], want, 15000 * eb, &e), MLOAD_OK);
        for (j = 0; j < 3; ++j) {
            const mload_tensor *u = mload_map_find(ms[j], "a");
            memset(got, 0xEE, 15000 * 8);
            CHECK_RES(mload_map_read(ms[j], u, as[k], got, 15000 * eb, &e), MLOAD_OK);
            CHECK(memcmp(want, got, 15000 * eb) == 0);
            memset(got, 0xEE, 15000 * 8);
            CHECK_RES(mload_map_read_range(ms[j], u, 7, 1001, as[k], got, 1001 * eb, &e), MLOAD_OK);
            CHECK(memcmp(want + 7 * eb, got, 1001 * eb) == 0 && got[1001 * eb] == 0xEE);
        }
    }
    CHECK(c.views == 10 && c.releases == 10); /* two casting reads per dtype, each through one released view */
    {   /* the same tensor as stored: no view needed, read_at into dst */
        int before = c.views;
        if (user) CHECK_RES(mload_map_read(user, mload_map_find(user, "b"), MLOAD_DTYPE_INVALID, got, 84, &e), MLOAD_OK);
        CHECK(c.views == before);
    }
    mload_map_close(copy);
    mload_map_close(view);
    mload_map_close(mem);
    mload_map_close(user);
    free(want);
    free(got);
    tbuf_free(&f);
}

/* A shard replaced by a FIFO after open: the O_DIRECT re-open of its path
   must not block (it did: the load hung), and the load reads the file the
   map opened. An alarm turns a hang into a failure. */
static void test_map_direct_fifo(void) {
    const char *names[] = {"w"};
    unsigned rows[] = {4096};
    tbuf b = f32_file(names, rows, 1, 1.0f);
    char path[512];
    mload_map *m = NULL;
    mload_error e;
    mload_load_item it;
    mload_load_opts o;
    float *got = (float *)malloc(4096 * 3 * sizeof(float));
    put_file("fifo.safetensors", &b);
    snprintf(path, sizeof path, "%s", tpath("fifo.safetensors"));
    CHECK_RES(open_one(path, &m, &e), MLOAD_OK);
    if (m && got && unlink(path) == 0 && mkfifo(path, 0600) == 0) {
        memset(&it, 0, sizeof it);
        it.tensor = mload_map_find(m, "w");
        it.dst = got;
        it.dst_size = 4096 * 3 * sizeof(float);
        memset(&o, 0, sizeof o);
        o.io = MLOAD_IO_DIRECT;
        alarm(30);
        CHECK_RES(mload_map_load(m, &it, 1, &o, &e), MLOAD_OK);
        alarm(0);
        CHECK(memcmp(got, b.p + b.n - 4096 * 3 * sizeof(float), 4096 * 3 * sizeof(float)) == 0);
    } else {
        CHECK(0);
    }
    unlink(path);
    mload_map_close(m);
    free(got);
    tbuf_free(&b);
}

/* A folder entry named like a checkpoint file that cannot be opened (a
   dangling symlink: an interrupted download into a cache of links, or a
   FIFO) is an error naming it, not silently skipped. */
static void test_map_folder_bad_entry(void) {
    const char *names[] = {"x"};
    unsigned rows[] = {2};
    tbuf b = f32_file(names, rows, 1, 0);
    mload_map *m = NULL;
    mload_error e;
    mkdir(tpath("fb"), 0755);
    put_file("fb/a.safetensors", &b);
    CHECK_RES(open_one(tpath("fb"), &m, &e), MLOAD_OK);
    mload_map_close(m);
    m = NULL;
    CHECK(symlink("blobs/missing", tpath("fb/b.safetensors")) == 0);
    CHECK_RES(open_one(tpath("fb"), &m, &e), MLOAD_ERR_CANNOT_OPEN);
    CHECK(m == NULL && strstr(e.message, "b.safetensors") != NULL);
    unlink(tpath("fb/b.safetensors"));
    CHECK(mkfifo(tpath("fb/c.safetensors"), 0600) == 0);
    CHECK_RES(open_one(tpath("fb"), &m, &e), MLOAD_ERR_CANNOT_OPEN);
    CHECK(strstr(e.message, "c.safetensors") != NULL);
    unlink(tpath("fb/c.safetensors"));
    tbuf_free(&b);
}

/* Messages say where and why (issue 11 item 8): index.json offsets are the
   index's own and say "index"; an I/O error gives the system's reason; a
   total_size of 2^64-1 is still a declared size; a text file gets a hint. */
static void test_map_messages(void) {
    mload_map *m = NULL;
    mload_error e;
    const char *idx = "{\"weight_map\": {\"l.0.w\": 7}}"; /* the 7 is at byte 25 */
    tbuf txt = {0, 0, 0};
    write_shards();
    put_text("sh/msg.safetensors.index.json", idx);
    CHECK_RES(open_one(tpath("sh/msg.safetensors.index.json"), &m, &e), MLOAD_ERR_INVALID_INDEX);
    CHECK_EQ_U64(e.offset, (uint64_t)(strchr(idx, '7') - idx));
    CHECK(strstr(e.message, "index JSON") != NULL && strstr(e.message, "header") == NULL);
    CHECK_RES(open_one(tpath("no/such/file.safetensors"), &m, &e), MLOAD_ERR_CANNOT_OPEN);
    CHECK(strstr(e.message, "no such file or directory") != NULL);
    put_text("sh/max.safetensors.index.json",
             "{\"metadata\":{\"total_size\":18446744073709551615},\"weight_map\":{\"l.0.w\":\"s-1.safetensors\","
             "\"l.0.b\":\"s-1.safetensors\",\"l.1.w\":\"s-2.safetensors\"}}");
    CHECK_RES(open_one(tpath("sh/max.safetensors.index.json"), &m, &e), MLOAD_OK);
    if (m) {
        CHECK(mload_map_has_declared_size(m) == 1 && mload_map_declared_size(m) == UINT64_MAX);
        mload_map_close(m);
    }
    CHECK_RES(open_one(tpath("sh/s-1.safetensors"), &m, &e), MLOAD_OK);
    if (m) {
        CHECK(mload_map_has_declared_size(m) == 0);
        mload_map_close(m);
    }
    tbuf_put(&txt, "tensor weights, as text\n", 24);
    put_file("notes.safetensors", &txt);
    CHECK_RES(open_one(tpath("notes.safetensors"), &m, &e), MLOAD_ERR_HEADER_TOO_LARGE);
    CHECK(strstr(e.message, "not a safetensors file?") != NULL);
    tbuf_free(&txt);
}

/* ---- writes that never leave a broken checkpoint ---- */

#define WV_N 6
static float wv_data[2][WV_N][256];

/* writes version v (1 or 2: tensor i holds v*100 + i) of a six-tensor
   checkpoint at path, in about `shards` shards (0: one file) */
static mload_result wv_write_a(const char *path, int v, int shards, const mload_allocator *al, mload_error *e) {
    static const uint64_t shape[1] = {256};
    static char names[WV_N][16];
    mload_write_tensor w[WV_N];
    mload_write_opts o;
    int i, k;
    memset(w, 0, sizeof w);
    memset(&o, 0, sizeof o);
    for (i = 0; i < WV_N; ++i) {
        snprintf(names[i], sizeof names[i], "t%d", i);
        for (k = 0; k < 256; ++k) wv_data[v - 1][i][k] = (float)(v * 100 + i);
        w[i].name = names[i]; w[i].dtype = MLOAD_DTYPE_F32; w[i].rank = 1; w[i].shape = shape; w[i].data = wv_data[v - 1][i];
    }
    o.shard_bytes = shards ? (uint64_t)(WV_N * 1024 / shards) : 0;
    if (al) o.allocator = *al;
    return mload_write(path, w, WV_N, &o, e);
}
static mload_result wv_write(const char *path, int v, int shards, mload_error *e) { return wv_write_a(path, v, shards, NULL, e); }

/* the version a reader of path (index, file or folder) sees: 1 or 2; 0 when
   it cannot open it; -1 for a mix, a partial or a wrong set */
static int wv_seen(const char *path) {
    mload_map *m = NULL;
    mload_error e;
    float got[256];
    int i, v = 0;
    if (open_one(path, &m, &e) != MLOAD_OK) return 0;
    if (mload_map_count(m) != WV_N) v = -1;
    for (i = 0; i < WV_N && v >= 0; ++i) {
        char name[16];
        const mload_tensor *t;
        int tv;
        snprintf(name, sizeof name, "t%d", i);
        t = mload_map_find(m, name);
        if (!t || mload_map_read(m, t, MLOAD_DTYPE_F32, got, sizeof got, &e) != MLOAD_OK) { v = -1; break; }
        tv = ((int)got[0] - i) / 100;
        if ((tv != 1 && tv != 2) || got[0] != got[255] || (int)got[0] != tv * 100 + i || (v && tv != v)) v = -1;
        else v = tv;
    }
    mload_map_close(m);
    return v;
}

/* files of dir: checkpoint files (.safetensors), index files, temporaries */
static void wv_files(const char *dir, int *st, int *idx, int *tmp) {
    DIR *d = opendir(dir);
    struct dirent *de;
    *st = *idx = *tmp = 0;
    while (d && (de = readdir(d)) != NULL) {
        size_t n = strlen(de->d_name);
        if (strstr(de->d_name, ".tmp-")) (*tmp)++;
        else if (n > 11 && strcmp(de->d_name + n - 11, ".index.json") == 0) (*idx)++;
        else if (n > 12 && strcmp(de->d_name + n - 12, ".safetensors") == 0) (*st)++;
    }
    if (d) closedir(d);
}

static void wv_clear(const char *dir) {
    DIR *d = opendir(dir);
    struct dirent *de;
    char p[1024];
    while (d && (de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.') continue;
        snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
        unlink(p);
    }
    if (d) closedir(d);
}

/* Every transition (shards to fewer shards, shards to one file, one file to
   shards, nothing to shards) with each rename, then each sync, failing in
   turn: after a failure readers of the folder and of the index see the
   complete old set (or nothing, where there was nothing); after success the
   new set, and no file of the old set or temporary is left. */
static void test_writer_all_or_nothing(void) {
    static const int from[] = {3, 3, 0, -1}, to[] = {2, 0, 3, 2}; /* fewer shards, one file, shards, new */
    int tr, kind;
    for (tr = 0; tr < 4; ++tr) {
        char dir[512], path[600], idx[620];
        snprintf(dir, sizeof dir, "%s", tpath(tr == 0 ? "aon0" : tr == 1 ? "aon1" : tr == 2 ? "aon2" : "aon3"));
        snprintf(path, sizeof path, "%s/m.safetensors", dir);
        snprintf(idx, sizeof idx, "%s.index.json", path);
        mkdir(dir, 0755);
        for (kind = 0; kind < 2; ++kind) {
            long k;
            mload_error e;
            mload_result r = MLOAD_ERR_IO;
            int old = from[tr] < 0 ? 0 : 1, nst, nidx, ntmp, seen;
            wv_clear(dir);
            if (from[tr] >= 0) CHECK_RES(wv_write(path, 1, from[tr], &e), MLOAD_OK);
            for (k = 0; k < 40 && r != MLOAD_OK; ++k) {
                th_renames = th_fsyncs = 0;
                if (kind == 0) th_fail_rename_at = k;
                else th_fail_fsync_at = k;
                r = wv_write(path, 2, to[tr], &e);
                th_fail_rename_at = th_fail_fsync_at = -1;
                if (r == MLOAD_OK) break;
                /* before the commit the old set, after it (a sync of the folder failed) the new one */
                seen = wv_seen(dir);
                CHECK(seen == old || seen == 2);
                if (seen != 2) CHECK(wv_seen(from[tr] > 0 ? idx : path) == old);
                if (seen != old && seen != 2)
                    fprintf(stderr, "  transition %d, kind %d, failure %ld: readers see %d, expected %d\n", tr, kind, k, seen, old);
                if (seen == 2) old = 2;
            }
            CHECK_RES(r, MLOAD_OK);
            CHECK(k > 1); /* failures were injected */
            CHECK(wv_seen(dir) == 2);
            CHECK(wv_seen(to[tr] ? idx : path) == 2);
            wv_files(dir, &nst, &nidx, &ntmp);
            CHECK(ntmp == 0 && nidx == (to[tr] ? 1 : 0) && nst == (to[tr] ? to[tr] : 1));
            if (ntmp || nidx != (to[tr] ? 1 : 0) || nst != (to[tr] ? to[tr] : 1))
                fprintf(stderr, "  transition %d, kind %d: %d files, %d indexes, %d temporaries\n", tr, kind, nst, nidx, ntmp);
        }
    }
}

/* The writer killed at random points: readers see the old or the new set,
   never a mix; the next write removes what the killed ones left. */
static void test_writer_killed_anywhere(void) {
    char dir[512], path[600];
    int i, seen, nst, nidx, ntmp;
    mload_error e;
    double t0, t_write;
    struct timespec ts;
    snprintf(dir, sizeof dir, "%s", tpath("kill"));
    snprintf(path, sizeof path, "%s/m.safetensors", dir);
    mkdir(dir, 0755);
    CHECK_RES(wv_write(path, 1, 2, &e), MLOAD_OK);
    clock_gettime(CLOCK_MONOTONIC, &ts);
    t0 = (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
    CHECK_RES(wv_write(path, 1, 3, &e), MLOAD_OK);
    clock_gettime(CLOCK_MONOTONIC, &ts);
    t_write = (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9 - t0;
    seen = 1;
    srand(12345);
    if (getenv("MLOAD_TEST_VERBOSE")) fprintf(stderr, "  one write takes %.0f us\n", t_write * 1e6);
    for (i = 0; i < 40; ++i) {
        int v = 1 + (i % 2), now;
        pid_t pid = fork();
        if (pid == 0) {
            mload_error ce;
            _exit(wv_write(path, v, (i % 3 == 2) ? 0 : 2 + i % 2, &ce) == MLOAD_OK ? 0 : 1);
        }
        if (pid < 0) { CHECK(0); break; }
        usleep((useconds_t)(t_write * 2e6 * (double)rand() / (double)RAND_MAX));
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        now = wv_seen(dir);
        CHECK(now == seen || now == v);
        if (now != seen && now != v) {
            char cmd[1400];
            fprintf(stderr, "  kill %d: readers see %d (before %d, writing %d)\n", i, now, seen, v);
            snprintf(cmd, sizeof cmd, "ls -la '%s' >&2; cat '%s/m.safetensors.index.json' >&2", dir, dir);
            if (system(cmd) != 0) fprintf(stderr, "  (no listing)\n");
        }
        if (now > 0) seen = now;
        if (getenv("MLOAD_TEST_VERBOSE")) fprintf(stderr, "  kill %d: readers see %d\n", i, now);
    }
    CHECK_RES(wv_write(path, 2, 2, &e), MLOAD_OK);
    CHECK(wv_seen(dir) == 2);
    wv_files(dir, &nst, &nidx, &ntmp);
    CHECK(ntmp == 0 && nidx == 1 && nst == 2);
}

/* A rewrite keeps the file's mode; a read-only file and a symlink at the
   destination are not replaced (documented); dead writers' temporaries
   are removed, a running writer's are not. */
static void test_writer_destination(void) {
    char dir[512], path[600], link[600], junk[3][700];
    struct stat st;
    mload_error e;
    pid_t dead;
    int k;
    snprintf(dir, sizeof dir, "%s", tpath("wdst"));
    snprintf(path, sizeof path, "%s/m.safetensors", dir);
    snprintf(link, sizeof link, "%s/l.safetensors", dir);
    mkdir(dir, 0755);
    th_fsyncs = 0;
    CHECK_RES(wv_write(path, 1, 0, &e), MLOAD_OK);
    CHECK(th_fsyncs >= 2); /* the file, then its folder */
    CHECK(chmod(path, 0600) == 0);
    CHECK_RES(wv_write(path, 2, 0, &e), MLOAD_OK);
    CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
    CHECK(chmod(path, 0444) == 0);
    CHECK_RES(wv_write(path, 1, 0, &e), MLOAD_ERR_CANNOT_OPEN);
    CHECK(strstr(e.message, "read-only") != NULL && wv_seen(path) == 2);
    CHECK(chmod(path, 0644) == 0);
    CHECK(symlink("m.safetensors", link) == 0);
    CHECK_RES(wv_write(link, 1, 0, &e), MLOAD_ERR_CANNOT_OPEN);
    CHECK(strstr(e.message, "symbolic link") != NULL && lstat(link, &st) == 0 && S_ISLNK(st.st_mode));
    unlink(link);
    dead = fork();
    if (dead == 0) _exit(0);
    waitpid(dead, NULL, 0);
    snprintf(junk[0], sizeof junk[0], "%s.tmp-%08x-12345678", path, (unsigned)dead);
    snprintf(junk[1], sizeof junk[1], "%s/m-00001-of-00002.safetensors.tmp-%08x-abcdef01", dir, (unsigned)dead);
    snprintf(junk[2], sizeof junk[2], "%s.index.json.tmp-%08x-0badf00d", path, (unsigned)getppid()); /* running */
    for (k = 0; k < 3; ++k) {
        FILE *fp = fopen(junk[k], "wb");
        if (fp) fclose(fp);
    }
    CHECK_RES(wv_write(path, 2, 2, &e), MLOAD_OK);
    CHECK(access(junk[0], F_OK) != 0 && access(junk[1], F_OK) != 0);
    CHECK(access(junk[2], F_OK) == 0);
    unlink(junk[2]);
}

/* ---- the review's findings (each failed before its fix) ---- */

static const char *g_watch_dir;
static long g_watch_bad;
/* after every rename of a write: readers of the folder see a whole version */
static int g_watch_refused_ok; /* readers may be refused (never shown a mix) */
static void watch_readers(const char *to) {
    int v = wv_seen(g_watch_dir);
    (void)to;
    if (v != 1 && v != 2 && !(v == 0 && g_watch_refused_ok)) g_watch_bad++;
}

/* the folder opens and reads whole (any tensor set) */
static void watch_readers_any(const char *to) {
    mload_map *m = NULL;
    mload_error e;
    (void)to;
    if (open_one(g_watch_dir, &m, &e) != MLOAD_OK) g_watch_bad++;
    mload_map_close(m);
}

/* an empty folder tpath(name) for checkpoint dir/m.safetensors and its index path */
static void wr_fresh(const char *name, char dir[512], char path[600], char idx[620]) {
    snprintf(dir, 512, "%s", tpath(name));
    snprintf(path, 600, "%s/m.safetensors", dir);
    snprintf(idx, 620, "%s.index.json", path);
    mkdir(dir, 0755);
    wv_clear(dir);
}

/* 1. the index cannot be read (memory): the write stops, it does not take
   the index for absent and write over the live shards */
static void wr_index_unreadable(void) {
    char dir[512], path[600];
    wacct acc;
    mload_allocator al;
    mload_error e;
    long k;
    int bad = 0;
    snprintf(dir, sizeof dir, "%s", tpath("rv1"));
    snprintf(path, sizeof path, "%s/m.safetensors", dir);
    mkdir(dir, 0755);
    wv_clear(dir);
    CHECK_RES(wv_write(path, 1, 2, &e), MLOAD_OK);
    memset(&al, 0, sizeof al);
    al.alloc = wacct_alloc;
    al.free = wacct_free;
    al.user = &acc;
    for (k = 0; k < 60 && !bad; ++k) {
        memset(&acc, 0, sizeof acc);
        acc.fail_at = k;
        th_renames = 0;
        th_fail_rename_at = 1; /* and the second shard's rename fails */
        (void)wv_write_a(path, 2, 2, &al, &e);
        wacct_done(&acc);
        th_fail_rename_at = -1;
        if (wv_seen(dir) != 1) {
            bad = 1;
            fprintf(stderr, "  failing allocation %ld: the old checkpoint is gone (readers see %d)\n", k, wv_seen(dir));
        }
    }
    CHECK(!bad);
}

/* 2. shards without an index (the folder reader reads them all): a failed
   sharded write leaves them, a single write is refused, a sharded one
   replaces them */
static void wr_loose_shards(void) {
    char dir[512], path[600], idx[620];
    mload_error e;
    int nst, nidx, ntmp;
    wr_fresh("rv2", dir, path, idx);
    CHECK_RES(wv_write(path, 1, 3, &e), MLOAD_OK);
    CHECK(unlink(idx) == 0);
    CHECK(wv_seen(dir) == 1);
    th_renames = 0;
    th_fail_rename_at = 2;
    CHECK(wv_write(path, 2, 3, &e) != MLOAD_OK);
    th_fail_rename_at = -1;
    CHECK(wv_seen(dir) == 1);
    CHECK_RES(wv_write(path, 2, 0, &e), MLOAD_ERR_INVALID_ARGUMENT);
    CHECK(strstr(e.message, "without an index") != NULL && wv_seen(dir) == 1);
    g_watch_dir = dir;
    g_watch_bad = 0;
    g_watch_refused_ok = 1; /* an index naming nothing guards the write: readers are refused until the commit */
    th_after_rename = watch_readers;
    CHECK_RES(wv_write(path, 2, 3, &e), MLOAD_OK);
    th_after_rename = NULL;
    CHECK_EQ_U64(g_watch_bad, 0);
    CHECK(wv_seen(dir) == 2 && wv_seen(idx) == 2);
    wv_files(dir, &nst, &nidx, &ntmp);
    CHECK(nst == 3 && nidx == 1 && ntmp == 0);
}

/* 3. a single write over an index that names only that file (what a killed
   single-to-shards write leaves): readers see a whole version after every
   rename (the index named the old tensors against the new file) */
static void wr_index_of_self(void) {
    char dir[512], path[600], idx[620], text[1024];
    size_t len = 0;
    mload_error e;
    FILE *fp;
    int i;
    wr_fresh("rv3", dir, path, idx);
    CHECK_RES(wv_write(path, 1, 0, &e), MLOAD_OK);
    len += (size_t)snprintf(text + len, sizeof text - len, "{\"metadata\":{},\"weight_map\":{");
    for (i = 0; i < WV_N; ++i) len += (size_t)snprintf(text + len, sizeof text - len, "%s\"t%d\":\"m.safetensors\"", i ? "," : "", i);
    snprintf(text + len, sizeof text - len, "}}");
    fp = fopen(idx, "wb");
    if (fp) { fputs(text, fp); fclose(fp); }
    CHECK(wv_seen(dir) == 1);
    {   /* a different tensor set: two tensors u0, u1 */
        static float d0[4] = {1, 2, 3, 4};
        uint64_t s4[1] = {4};
        mload_write_tensor w[2];
        mload_map *m = NULL;
        memset(w, 0, sizeof w);
        w[0].name = "u0"; w[0].dtype = MLOAD_DTYPE_F32; w[0].rank = 1; w[0].shape = s4; w[0].data = d0;
        w[1].name = "u1"; w[1].dtype = MLOAD_DTYPE_F32; w[1].rank = 1; w[1].shape = s4; w[1].data = d0;
        g_watch_bad = 0;
        g_watch_dir = dir;
        th_after_rename = watch_readers_any;
        CHECK_RES(mload_write(path, w, 2, NULL, &e), MLOAD_OK);
        th_after_rename = NULL;
        CHECK_EQ_U64(g_watch_bad, 0);
        CHECK(access(idx, F_OK) != 0);
        CHECK_RES(open_one(dir, &m, &e), MLOAD_OK);
        CHECK(m && mload_map_count(m) == 2);
        mload_map_close(m);
    }
}

/* 4. a converted tensor that can only be read whole (a transpose) larger
   than the writer's 4 MiB buffer */
static void wr_transpose_large(void) {
    enum { TR = 1100, TC = 1000 };
    char hdr[256];
    float *v = (float *)malloc((size_t)TR * TC * 4), *want = (float *)malloc((size_t)TR * TC * 4),
          *got = (float *)malloc((size_t)TR * TC * 4);
    tbuf img;
    mload_rules *rs = NULL;
    mload_converter c;
    mload_map *m = NULL, *back = NULL;
    mload_write_tensor w;
    mload_error e;
    const mload_tensor *t;
    size_t i;
    if (!v || !want || !got) { CHECK(0); free(v); free(want); free(got); return; }
    for (i = 0; i < (size_t)TR * TC; ++i) v[i] = (float)i;
    snprintf(hdr, sizeof hdr, "{\"w\":{\"dtype\":\"F32\",\"shape\":[%d,%d],\"data_offsets\":[0,%lu]}}", TR, TC, (unsigned long)TR * TC * 4);
    img = make_st(hdr, (size_t)TR * TC * 4, (const unsigned char *)v);
    memset(&c, 0, sizeof c);
    CHECK_RES(mload_rules_create("transpose w w\n", 14, NULL, &rs, &e), MLOAD_OK);
    c.rules = mload_rules_list(rs, &c.rule_count);
    CHECK_RES(map_open_memory(img.p, img.n, &c, &m, &e), MLOAD_OK);
    mload_rules_destroy(rs);
    if (m && (t = mload_map_find(m, "w")) != NULL) {
        CHECK_RES(mload_map_read(m, t, MLOAD_DTYPE_F32, want, (uint64_t)TR * TC * 4, &e), MLOAD_OK);
        memset(&w, 0, sizeof w);
        w.name = "w"; w.dtype = MLOAD_DTYPE_F32; w.rank = t->rank; w.shape = t->shape; w.map = m; w.src = t;
        CHECK_RES(mload_write(tpath("rv4.safetensors"), &w, 1, NULL, &e), MLOAD_OK);
        CHECK_RES(open_one(tpath("rv4.safetensors"), &back, &e), MLOAD_OK);
        if (back && (t = mload_map_find(back, "w")) != NULL) {
            CHECK_RES(mload_map_read(back, t, MLOAD_DTYPE_F32, got, (uint64_t)TR * TC * 4, &e), MLOAD_OK);
            CHECK(memcmp(got, want, (size_t)TR * TC * 4) == 0 && t->shape[0] == TC && t->shape[1] == TR);
        } else CHECK(0);
        mload_map_close(back);
    } else CHECK(0);
    mload_map_close(m);
    tbuf_free(&img);
    free(v); free(want); free(got);
}

/* 6. a sharded write checks what it will replace or remove first: a
   read-only single file, a symlinked index; 7. the sweep leaves another
   checkpoint's temporaries ("m_ema" beside "m") */
static void wr_checked_first(void) {
    char dir[512], path[600], idx[620], other[700];
    struct stat st;
    mload_error e;
    pid_t dead;
    FILE *fp;
    wr_fresh("rv6", dir, path, idx);
    CHECK_RES(wv_write(path, 1, 0, &e), MLOAD_OK);
    CHECK(chmod(path, 0444) == 0);
    CHECK_RES(wv_write(path, 2, 2, &e), MLOAD_ERR_CANNOT_OPEN);
    CHECK(strstr(e.message, "read-only") != NULL && wv_seen(path) == 1 && access(idx, F_OK) != 0);
    CHECK(chmod(path, 0644) == 0);
    CHECK(symlink("elsewhere.json", idx) == 0);
    CHECK_RES(wv_write(path, 2, 2, &e), MLOAD_ERR_CANNOT_OPEN);
    CHECK(strstr(e.message, "symbolic link") != NULL && lstat(idx, &st) == 0 && S_ISLNK(st.st_mode) && wv_seen(path) == 1);
    unlink(idx);
    dead = fork();
    if (dead == 0) _exit(0);
    waitpid(dead, NULL, 0);
    snprintf(other, sizeof other, "%s/m_ema.safetensors.tmp-%08x-12345678", dir, (unsigned)dead);
    fp = fopen(other, "wb");
    if (fp) fclose(fp);
    CHECK_RES(wv_write(path, 2, 2, &e), MLOAD_OK);
    CHECK(access(other, F_OK) == 0);
    unlink(other);
}

/* 5. shards to one file with another checkpoint file left in the folder
   (a killed write's, under a name no sweep knows): the index naming only
   the new file stays, so the folder still opens through it */
static void wr_leftover_kept_out(void) {
    char dir[512], path[600], idx[620], other[620];
    static float d0[256];
    uint64_t s1[1] = {256};
    mload_write_tensor w;
    mload_error e;
    snprintf(dir, sizeof dir, "%s", tpath("rv5"));
    snprintf(path, sizeof path, "%s/m.safetensors", dir);
    snprintf(idx, sizeof idx, "%s.index.json", path);
    snprintf(other, sizeof other, "%s/x.safetensors", dir);
    mkdir(dir, 0755);
    wv_clear(dir);
    CHECK_RES(wv_write(path, 1, 2, &e), MLOAD_OK);
    memset(&w, 0, sizeof w);
    w.name = "t0"; w.dtype = MLOAD_DTYPE_F32; w.rank = 1; w.shape = s1; w.data = d0;
    CHECK_RES(mload_write(other, &w, 1, NULL, &e), MLOAD_OK);
    CHECK_RES(wv_write(path, 2, 0, &e), MLOAD_OK);
    CHECK(wv_seen(dir) == 2 && access(idx, F_OK) == 0);
    unlink(other);
    CHECK_RES(wv_write(path, 1, 0, &e), MLOAD_OK); /* alone now: the index goes */
    CHECK(wv_seen(dir) == 1 && access(idx, F_OK) != 0);
}

static void test_writer_review_regressions(void) {
    wr_leftover_kept_out();
    wr_index_unreadable();
    wr_loose_shards();
    wr_index_of_self();
    wr_transpose_large();
    wr_checked_first();
}

void area_map(void) {
    snprintf(tdir, sizeof tdir, "/tmp/mload_map_test_XXXXXX");
    if (!mkdtemp(tdir)) abort();
    RUN(test_map_open_forms);
    RUN(test_map_duplicates);
    RUN(test_map_index_ok);
    RUN(test_map_index_checks);
    RUN(test_map_free_sizes);
    RUN(test_map_official_sharded);
    RUN(test_map_prefix);
    RUN(test_map_read_convert_and_ranges);
    RUN(test_map_subbyte_ranges);
    RUN(test_split_rows);
    RUN(test_split_flat_and_bind);
    RUN(test_map_bulk);
    RUN(test_map_bind);
    RUN(test_source_capabilities);
    RUN(test_map_cast_read_views);
    RUN(test_map_direct_into_caller);
    RUN(test_map_direct_random);
    RUN(test_map_direct_fifo);
    RUN(test_map_folder_bad_entry);
    RUN(test_map_messages);
    RUN(test_map_fingerprint);
    RUN(test_map_models);
    RUN(test_writer_roundtrip);
    RUN(test_writer_edges);
    RUN(test_writer_failed_rewrite_keeps_old);
    RUN(test_writer_all_or_nothing);
    RUN(test_writer_killed_anywhere);
    RUN(test_writer_destination);
    RUN(test_writer_review_regressions);
    RUN(test_writer_allocator_balanced);
    RUN(test_writer_official_reads);
    rm_rf(tdir);
}
