/* Sources, reads, allocators, ownership and failure paths. */
#if defined(__linux__) && !defined(_GNU_SOURCE)
#define _GNU_SOURCE 1
#endif
#include "harness.h"
#include <stdlib.h>
#include <unistd.h>
#include <sys/stat.h>

#define TWO "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"U8\",\"shape\":[3],\"data_offsets\":[8,11]}}"

/* ---- a source that records what it is asked for ---- */
typedef struct counting_src {
    const unsigned char *data;
    uint64_t size;
    int reads, closes;
    uint64_t lo[8], hi[8];
    int fail_after; /* fail reads with IO after this many (-1 = never) */
} counting_src;

static mload_result cs_read(void *u, uint64_t off, void *dst, size_t n) {
    counting_src *c = (counting_src *)u;
    if (c->fail_after >= 0 && c->reads >= c->fail_after) return MLOAD_ERR_IO;
    if (c->reads < 8) { c->lo[c->reads] = off; c->hi[c->reads] = off + n; }
    c->reads++;
    if (off > c->size || n > c->size - off) return MLOAD_ERR_IO;
    memcpy(dst, c->data + off, n);
    return MLOAD_OK;
}
static mload_result cs_size(void *u, uint64_t *out) { *out = ((counting_src *)u)->size; return MLOAD_OK; }
static void cs_close(void *u) { ((counting_src *)u)->closes++; }

static mload_source make_cs(counting_src *c, const tbuf *b) {
    mload_source s;
    memset(&s, 0, sizeof s); /* no optional capabilities */
    memset(c, 0, sizeof *c);
    c->data = b->p;
    c->size = b->n;
    c->fail_after = -1;
    s.read_at = cs_read;
    s.size = cs_size;
    s.close = cs_close;
    s.user = c;
    return s;
}

/* opens b through a counting source c whose reads fail after fail_after
   (-1: never); *f is the file or NULL */
static mload_result open_counting(const tbuf *b, counting_src *c, int fail_after, mload_file **f, mload_error *e) {
    mload_source s = make_cs(c, b);
    mload_file_desc d;
    memset(&d, 0, sizeof d);
    d.source = &s;
    c->fail_after = fail_after;
    return mload_file_open(&d, f, e);
}

static void test_parse_reads_only_header(void) {
    tbuf b = make_st(TWO, 11, NULL);
    counting_src c;
    mload_file *f;
    mload_error e;
    CHECK_RES(open_counting(&b, &c, -1, &f, &e), MLOAD_OK);
    CHECK_EQ_U64(c.reads, 2);
    CHECK_EQ_U64(c.lo[0], 0);
    CHECK_EQ_U64(c.hi[0], 8);
    CHECK_EQ_U64(c.lo[1], 8);
    CHECK_EQ_U64(c.hi[1], 8 + strlen(TWO));
    if (f) {
        unsigned char out[11];
        const mload_tensor *t = mload_file_find(f, "b");
        CHECK_RES(mload_file_read(f, t, out, sizeof out, &e), MLOAD_OK);
        CHECK_EQ_U64(c.reads, 3); /* exactly the tensor's bytes */
        CHECK_EQ_U64(c.lo[2], 8 + strlen(TWO) + 8);
        CHECK_EQ_U64(c.hi[2], 8 + strlen(TWO) + 11);
        CHECK(out[0] == 8 && out[1] == 9 && out[2] == 10);
        CHECK_EQ_U64(c.closes, 0);
        mload_file_close(f);
    }
    CHECK_EQ_U64(c.closes, 1);
    tbuf_free(&b);
}

static void test_user_source_closed_on_failure(void) {
    tbuf b = make_st("{\"a\":1}", 0, NULL);
    counting_src c;
    mload_source s = make_cs(&c, &b);
    mload_file_desc d;
    mload_file *f = (mload_file *)&c; /* must be reset to NULL */
    mload_error e;
    memset(&d, 0, sizeof d);
    d.source = &s;
    CHECK_RES(mload_file_open(&d, &f, &e), MLOAD_ERR_INVALID_HEADER_DESERIALIZATION);
    CHECK(f == NULL);
    CHECK_EQ_U64(c.closes, 1);
    /* invalid desc: the source is still closed */
    d.data = b.p;
    CHECK_RES(mload_file_open(&d, &f, &e), MLOAD_ERR_INVALID_ARGUMENT);
    CHECK_EQ_U64(c.closes, 2);
    tbuf_free(&b);
}

static void test_source_errors(void) {
    tbuf b = make_st(TWO, 11, NULL);
    counting_src c;
    mload_source s;
    mload_file_desc d;
    mload_file *f;
    mload_error e;
    CHECK_RES(open_counting(&b, &c, 0, &f, &e), MLOAD_ERR_IO);
    CHECK_RES(open_counting(&b, &c, 1, &f, &e), MLOAD_ERR_IO);
    CHECK_RES(open_counting(&b, &c, 2, &f, &e), MLOAD_OK);
    if (f) {
        float x[2];
        CHECK_RES(mload_file_read(f, mload_file_find(f, "a"), x, sizeof x, &e), MLOAD_ERR_IO);
        CHECK(strcmp(e.tensor, "a") == 0);
        mload_file_close(f);
    }
    s = make_cs(&c, &b);
    s.size = NULL;
    memset(&d, 0, sizeof d);
    d.source = &s;
    CHECK_RES(mload_file_open(&d, &f, &e), MLOAD_ERR_INVALID_ARGUMENT);
    CHECK_EQ_U64(c.closes, 1);
    tbuf_free(&b);
}

static void test_read_bounds(void) {
    tbuf b = make_st(TWO, 11, NULL), b2 = make_st(TWO, 11, NULL);
    mload_file *f, *g;
    mload_error e;
    unsigned char out[16];
    CHECK_RES(open_mem(&b, &f, &e), MLOAD_OK);
    CHECK_RES(open_mem(&b2, &g, &e), MLOAD_OK);
    if (f && g) {
        const mload_tensor *a = mload_file_find(f, "a"), *bb = mload_file_find(f, "b");
        memset(out, 0xEE, sizeof out);
        CHECK_RES(mload_file_read(f, a, out, 7, &e), MLOAD_ERR_INVALID_ARGUMENT);
        CHECK(out[0] == 0xEE); /* nothing written */
        CHECK_RES(mload_file_read(f, a, out, 8, &e), MLOAD_OK);
        CHECK(out[0] == 0 && out[7] == 7 && out[8] == 0xEE);
        CHECK_RES(mload_file_read(f, mload_file_find(g, "a"), out, 8, &e), MLOAD_ERR_INVALID_ARGUMENT);
        CHECK_RES(mload_file_read(f, NULL, out, 8, &e), MLOAD_ERR_INVALID_ARGUMENT);
        CHECK_RES(mload_file_read(NULL, a, out, 8, &e), MLOAD_ERR_INVALID_ARGUMENT);
        CHECK_RES(mload_file_read(f, a, NULL, 8, &e), MLOAD_ERR_INVALID_ARGUMENT);
        /* byte ranges: edges */
        CHECK_RES(mload_file_read_bytes(f, bb, 0, 3, out, &e), MLOAD_OK);
        CHECK(out[0] == 8 && out[2] == 10);
        CHECK_RES(mload_file_read_bytes(f, bb, 2, 1, out, &e), MLOAD_OK);
        CHECK(out[0] == 10);
        CHECK_RES(mload_file_read_bytes(f, bb, 3, 0, out, &e), MLOAD_OK);
        CHECK_RES(mload_file_read_bytes(f, bb, 3, 1, out, &e), MLOAD_ERR_INVALID_ARGUMENT);
        CHECK_RES(mload_file_read_bytes(f, bb, 2, 2, out, &e), MLOAD_ERR_INVALID_ARGUMENT);
        CHECK_RES(mload_file_read_bytes(f, bb, 4, 0, out, &e), MLOAD_ERR_INVALID_ARGUMENT);
        CHECK_RES(mload_file_read_bytes(f, bb, 1, UINT64_MAX, out, &e), MLOAD_ERR_INVALID_ARGUMENT);
        CHECK_RES(mload_file_read_bytes(f, bb, UINT64_MAX, 2, out, &e), MLOAD_ERR_INVALID_ARGUMENT);
    }
    mload_file_close(f);
    mload_file_close(g);
    tbuf_free(&b);
    tbuf_free(&b2);
}

static void test_path_open_and_shrink(void) {
    tbuf b = make_st(TWO, 11, NULL);
    const char *p = write_tmp(0, b.p, b.n);
    mload_file_desc d;
    mload_file *f;
    mload_error e;
    memset(&d, 0, sizeof d);
    d.path = p;
    CHECK_RES(mload_file_open(&d, &f, &e), MLOAD_OK);
    if (f) {
        unsigned char out[8];
        CHECK_EQ_U64(mload_file_size(f), b.n);
        CHECK_RES(mload_file_read(f, mload_file_find(f, "a"), out, 8, &e), MLOAD_OK);
        CHECK(out[3] == 3);
        /* the file shrinks under us: a clean IO error, no crash */
        CHECK(truncate(p, (off_t)(b.n - 2)) == 0);
        CHECK_RES(mload_file_read(f, mload_file_find(f, "b"), out, 3, &e), MLOAD_ERR_IO);
        CHECK(strstr(e.message, "short read") != NULL);
        CHECK_RES(mload_file_read(f, mload_file_find(f, "a"), out, 8, &e), MLOAD_OK);
        mload_file_close(f);
    }
    unlink(p);
    d.path = "/nonexistent/dir/x.safetensors";
    CHECK_RES(mload_file_open(&d, &f, &e), MLOAD_ERR_CANNOT_OPEN);
    CHECK(strstr(e.message, "/nonexistent/dir/x.safetensors") != NULL);
    d.path = "/tmp";
    CHECK_RES(mload_file_open(&d, &f, &e), MLOAD_ERR_CANNOT_OPEN);
    tbuf_free(&b);
    /* a FIFO is refused at once instead of blocking in open() */
    {
        char fifo[600];
        snprintf(fifo, sizeof fifo, "%s.fifo", p);
        if (mkfifo(fifo, 0600) != 0) SKIP("mkfifo failed: FIFO refusal not checked");
        d.path = fifo;
        CHECK_RES(mload_file_open(&d, &f, &e), MLOAD_ERR_CANNOT_OPEN);
        CHECK(strstr(e.message, "regular") != NULL);
        unlink(fifo);
    }
}

static void test_desc_validation(void) {
    tbuf b = make_st(TWO, 11, NULL);
    mload_file_desc d;
    mload_file *f;
    mload_error e;
    memset(&d, 0, sizeof d);
    CHECK_RES(mload_file_open(&d, &f, &e), MLOAD_ERR_INVALID_ARGUMENT);
    CHECK_RES(mload_file_open(NULL, &f, &e), MLOAD_ERR_INVALID_ARGUMENT);
    CHECK_RES(mload_file_open(&d, NULL, NULL), MLOAD_ERR_INVALID_ARGUMENT);
    d.data = b.p;
    d.data_size = b.n;
    d.path = "x";
    CHECK_RES(mload_file_open(&d, &f, &e), MLOAD_ERR_INVALID_ARGUMENT);
    d.path = NULL;
    d.allocator.alloc = NULL;
    d.allocator.free = (void (*)(void *, size_t, void *))1; /* half-set */
    CHECK_RES(mload_file_open(&d, &f, &e), MLOAD_ERR_INVALID_ARGUMENT);
    d.allocator.free = NULL;
    CHECK_RES(mload_file_open(&d, &f, NULL), MLOAD_OK); /* err may be NULL */
    mload_file_close(f);
    mload_file_close(NULL);
    mload_source_close(NULL);
    CHECK(mload_file_count(NULL) == 0);
    CHECK(mload_file_find(NULL, "a") == NULL);
    tbuf_free(&b);
}

static void test_memory_source(void) {
    unsigned char data[4] = {1, 2, 3, 4}, out[4];
    mload_source s;
    uint64_t n = 0;
    CHECK_RES(mload_source_open_memory(data, 4, NULL, &s, NULL), MLOAD_OK);
    CHECK_RES(s.size(s.user, &n), MLOAD_OK);
    CHECK_EQ_U64(n, 4);
    CHECK_RES(s.read_at(s.user, 1, out, 3), MLOAD_OK);
    CHECK(out[0] == 2 && out[2] == 4);
    CHECK_RES(s.read_at(s.user, 2, out, 3), MLOAD_ERR_IO);
    CHECK_RES(s.read_at(s.user, UINT64_MAX, out, 1), MLOAD_ERR_IO);
    mload_source_close(&s);
    CHECK(s.read_at == NULL);
    CHECK_RES(mload_source_open_memory(NULL, 4, NULL, &s, NULL), MLOAD_ERR_INVALID_ARGUMENT);
}

/* ---- allocator accounting and failure injection ---- */
typedef struct acct_t {
    long live;          /* blocks outstanding */
    long long bytes;    /* bytes outstanding, by the sizes given to free */
    long calls;
    long fail_at;       /* fail the n-th allocation (0-based); -1 never */
    int bad_align;
} acct_t;

static void *acct_alloc(size_t size, size_t align, void *user) {
    acct_t *a = (acct_t *)user;
    void *p;
    if (a->fail_at >= 0 && a->calls++ == a->fail_at) return NULL;
    if (a->fail_at < 0) a->calls++;
    if (align < sizeof(void *)) align = sizeof(void *);
    if (posix_memalign(&p, align, size) != 0) return NULL;
    if (((uintptr_t)p & (align - 1)) != 0) a->bad_align = 1;
    a->live++;
    a->bytes += (long long)size;
    /* poison: the library must not rely on zeroed memory */
    memset(p, 0xA5, size);
    return p;
}
static void acct_free(void *p, size_t size, void *user) {
    acct_t *a = (acct_t *)user;
    a->live--;
    a->bytes -= (long long)size;
    free(p);
}

static mload_result open_with(acct_t *a, const tbuf *b, mload_file **f, mload_error *e) {
    mload_file_desc d;
    memset(&d, 0, sizeof d);
    d.data = b->p;
    d.data_size = b->n;
    d.allocator.alloc = acct_alloc;
    d.allocator.free = acct_free;
    d.allocator.user = a;
    return mload_file_open(&d, f, e);
}

static void test_allocator_balanced(void) {
    /* a header large enough to force growth, out of order to force the sort */
    tbuf h = {0, 0, 0}, b;
    char s[200];
    int i, n = 3000;
    acct_t a;
    mload_file *f;
    mload_error e;
    {
        const char *pre = "{\"__metadata__\":{\"x\":\"y\",\"z\":\"w\"}";
        tbuf_put(&h, pre, strlen(pre));
    }
    for (i = n - 1; i >= 0; --i) {
        int k = snprintf(s, sizeof s, ",\"layer.%d.w\":{\"dtype\":\"F32\",\"shape\":[2,1],\"data_offsets\":[%d,%d]}", i, i * 8,
                         i * 8 + 8);
        tbuf_put(&h, s, (size_t)k);
    }
    tbuf_put(&h, "}", 1);
    b = make_st_n((const char *)h.p, h.n, (size_t)n * 8, NULL);
    memset(&a, 0, sizeof a);
    a.fail_at = -1;
    CHECK_RES(open_with(&a, &b, &f, &e), MLOAD_OK);
    if (f) {
        CHECK(strcmp(mload_file_tensor(f, 0)->name, "layer.0.w") == 0);
        CHECK(strcmp(mload_file_tensor(f, (uint64_t)n - 1)->name, "layer.2999.w") == 0);
        CHECK(mload_file_find(f, "layer.1234.w") == mload_file_tensor(f, 1234));
        CHECK(a.live > 0);
        mload_file_close(f);
    }
    CHECK_EQ_U64(a.live, 0);
    CHECK_EQ_U64(a.bytes, 0);
    CHECK(!a.bad_align);
    /* every allocation failing in turn: OutOfMemory, nothing leaked */
    {
        long total = a.calls, k;
        for (k = 0; k < total; ++k) {
            acct_t q;
            memset(&q, 0, sizeof q);
            q.fail_at = k;
            CHECK_RES(open_with(&q, &b, &f, &e), MLOAD_ERR_OUT_OF_MEMORY);
            CHECK(f == NULL);
            if (q.live != 0 || q.bytes != 0) {
                th_failed_checks++;
                fprintf(stderr, "  FAIL leak when allocation %ld fails: %ld blocks %lld bytes\n", k, q.live, q.bytes);
            }
        }
    }
    tbuf_free(&b);
    tbuf_free(&h);
}

static void test_allocator_balanced_on_every_error(void) {
    /* each error class returns with nothing outstanding */
    static const char *hdrs[] = {
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
        "{\"a\":{\"dtype\":\"F4\",\"shape\":[1],\"data_offsets\":[0,4]}}",
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,5]}}",
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[9223372036854775807,3],\"data_offsets\":[0,5]}}",
        "{\"__metadata__\":{\"k\":\"v\",\"k\":\"v\"}}",
        "{\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]},\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[1,2,3,4],\"data_offsets\":[0,4]},\"x\":[",
        "\xff",
    };
    size_t i;
    for (i = 0; i < sizeof hdrs / sizeof hdrs[0]; ++i) {
        tbuf b = make_st(hdrs[i], 9, NULL);
        acct_t a;
        mload_file *f;
        mload_error e;
        memset(&a, 0, sizeof a);
        a.fail_at = -1;
        CHECK(open_with(&a, &b, &f, &e) != MLOAD_OK);
        CHECK(f == NULL);
        CHECK_EQ_U64(a.live, 0);
        tbuf_free(&b);
    }
}

void area_read(void) {
    RUN(test_parse_reads_only_header);
    RUN(test_user_source_closed_on_failure);
    RUN(test_source_errors);
    RUN(test_read_bounds);
    RUN(test_path_open_and_shrink);
    RUN(test_desc_validation);
    RUN(test_memory_source);
    RUN(test_allocator_balanced);
    RUN(test_allocator_balanced_on_every_error);
}
