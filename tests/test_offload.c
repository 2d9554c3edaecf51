/* The offload manager: defaulting, every tier combination on real bytes,
   the hard cap under adversarial orders (checked on every allocation),
   eviction choices, prefetch, budget errors, group moves, statistics. */
#if defined(__linux__) && !defined(_GNU_SOURCE)
#define _GNU_SOURCE 1
#endif
#include "harness.h"
#include "mload_setup.h"
#include <stdarg.h>
#include <stdlib.h>
#include <time.h>

#define NL 6    /* layers */
#define R 32
#define C 16

/* ---- a model in memory: layer i has "l.i.w" F32 [R,C] and "l.i.b" F32 [C] ---- */
static tbuf g_model;

static float wval(int i, int j) { return (float)((i * 37 + j * 11) % 1000) * 0.37f - 150.0f; }

static void build_model(void) {
    char hdr[4096];
    size_t len = 0, off = 0;
    int i, j;
    tbuf data = {0, 0, 0};
    len += (size_t)sprintf(hdr, "{");
    for (i = 0; i < NL; ++i) {
        len += (size_t)sprintf(hdr + len, "%s\"l.%d.b\":{\"dtype\":\"F32\",\"shape\":[%d],\"data_offsets\":[%lu,%lu]},", i ? "," : "", i, C,
                               (unsigned long)off, (unsigned long)(off + C * 4));
        off += C * 4;
        len += (size_t)sprintf(hdr + len, "\"l.%d.w\":{\"dtype\":\"F32\",\"shape\":[%d,%d],\"data_offsets\":[%lu,%lu]}", i, R, C,
                               (unsigned long)off, (unsigned long)(off + R * C * 4));
        off += R * C * 4;
        for (j = 0; j < C; ++j) { float v = wval(i + 100, j); tbuf_put(&data, &v, 4); }
        for (j = 0; j < R * C; ++j) { float v = wval(i, j); tbuf_put(&data, &v, 4); }
    }
    sprintf(hdr + len, "}");
    g_model = make_st(hdr, data.n, data.p);
    tbuf_free(&data);
}

static mload_map *open_model(void) {
    mload_map *m = NULL;
    mload_error e;
    if (map_open_memory(g_model.p, g_model.n, NULL, &m, &e) != MLOAD_OK) fprintf(stderr, "  (map: %s)\n", e.message);
    return m;
}

/* ---- a device that checks the budget on every allocation ---- */
typedef struct checked {
    mload_device inner;
    uint64_t budget, outstanding, peak, allocs;
    int over;
    /* the 0.3 members: counted, and a switch that fails uploads */
    int host_allocs, host_frees, converts, fail_uploads;
    uint64_t host_bytes;
} checked;

static mload_result ck_alloc(void *u, uint64_t size, uint64_t align, void **p) {
    checked *c = (checked *)u;
    mload_result r = c->inner.alloc(c->inner.user, size, align, p);
    if (r == MLOAD_OK) {
        c->outstanding += size;
        c->allocs++;
        if (c->outstanding > c->peak) c->peak = c->outstanding;
        if (c->outstanding > c->budget) c->over = 1;
    }
    return r;
}
static void ck_free(void *u, void *p, uint64_t size) {
    checked *c = (checked *)u;
    c->outstanding -= size;
    c->inner.free(c->inner.user, p, size);
}
static mload_result ck_up(void *u, void *d, const void *s, uint64_t n, uint64_t *f) {
    checked *c = (checked *)u;
    return c->fail_uploads ? MLOAD_ERR_DEVICE : c->inner.upload(c->inner.user, d, s, n, f);
}
static mload_result ck_down(void *u, void *d, const void *s, uint64_t n, uint64_t *f) { checked *c = (checked *)u; return c->inner.download(c->inner.user, d, s, n, f); }
static mload_result ck_wait(void *u, uint64_t f) { checked *c = (checked *)u; return c->inner.wait(c->inner.user, f); }
static mload_result ck_conv(void *u, void *d, mload_dtype dt, const void *s, mload_dtype st, uint64_t n) {
    checked *c = (checked *)u;
    return c->inner.convert(c->inner.user, d, dt, s, st, n);
}
static mload_result ck_conv_async(void *u, void *d, mload_dtype dt, const void *s2, mload_dtype st, uint64_t n, uint32_t fl, uint64_t *f) {
    checked *c = (checked *)u;
    __atomic_fetch_add(&c->converts, 1, __ATOMIC_RELAXED);
    return c->inner.convert_async(c->inner.user, d, dt, s2, st, n, fl, f);
}
static mload_result ck_halloc(void *u, uint64_t n, void **p) {
    checked *c = (checked *)u;
    __atomic_fetch_add(&c->host_allocs, 1, __ATOMIC_RELAXED);
    __atomic_fetch_add(&c->host_bytes, n, __ATOMIC_RELAXED);
    return c->inner.host_alloc(c->inner.user, n, p);
}
static void ck_hfree(void *u, void *p, uint64_t n) {
    checked *c = (checked *)u;
    __atomic_fetch_add(&c->host_frees, 1, __ATOMIC_RELAXED);
    __atomic_fetch_sub(&c->host_bytes, n, __ATOMIC_RELAXED);
    c->inner.host_free(c->inner.user, p, n);
}
static const char *ck_detail(void *u) { return ((checked *)u)->fail_uploads ? "fakeErrorLaunchFailure: the fake device says no" : NULL; }

/* a checked device over the simulated one (host = 0) or the host one (host
   = 1: synchronous copies, bps unused); convert may be disabled to force the
   host path */
static mload_device make_checked_on(checked *c, uint64_t budget, int with_convert, uint64_t bps, int host) {
    mload_device d;
    memset(c, 0, sizeof *c);
    if (host) mload_device_create_host(&c->inner, NULL);
    else mload_device_create_sim(1ull << 40, bps, &c->inner, NULL);
    c->budget = budget ? budget : UINT64_MAX;
    memset(&d, 0, sizeof d);
    d.name = "checked";
    d.alloc = ck_alloc;
    d.free = ck_free;
    d.upload = ck_up;
    d.download = ck_down;
    d.wait = ck_wait;
    d.convert = with_convert ? ck_conv : NULL;
    d.convert_async = with_convert && c->inner.convert_async ? ck_conv_async : NULL;
    d.host_alloc = c->inner.host_alloc ? ck_halloc : NULL;
    d.host_free = c->inner.host_alloc ? ck_hfree : NULL;
    d.error_detail = ck_detail;
    d.user = c;
    return d;
}
/* a checked sim device */
static mload_device make_checked(checked *c, uint64_t budget, int with_convert, uint64_t bps) {
    return make_checked_on(c, budget, with_convert, bps, 0);
}

static mload_offload *make_mgr(mload_map *m, mload_device dev, uint64_t budget, uint32_t policy, uint32_t depth) {
    mload_offload *o = NULL;
    mload_error e;
    if (offload_open(m, dev, budget, policy, depth, &o, &e) != MLOAD_OK) fprintf(stderr, "  (create: %s)\n", e.message);
    return o;
}

/* a manager over m on dev under budget (0: derived), ordered against the
   caller's stream; NULL on failure (reported) */
static mload_offload *make_mgr_on(mload_map *m, mload_device dev, uint64_t budget, void *stream) {
    mload_offload_desc d;
    mload_offload *o = NULL;
    mload_error e;
    memset(&d, 0, sizeof d);
    d.map = m;
    d.device = dev;
    d.device_budget = budget;
    d.stream = stream;
    CHECK_RES(mload_offload_create(&d, &o, &e), MLOAD_OK);
    return o;
}

/* tiers resting in HOST memory as host_dt, prepared on the device as
   prep_dt, computed as comp_dt */
static mload_tiers host_then_device(mload_dtype host_dt, mload_dtype prep_dt, mload_dtype comp_dt) {
    mload_tiers t;
    memset(&t, 0, sizeof t);
    t.offload.place = MLOAD_PLACE_HOST;
    t.offload.dtype = host_dt;
    t.preparing.place = MLOAD_PLACE_DEVICE;
    t.preparing.dtype = prep_dt;
    t.computation.dtype = comp_dt;
    return t;
}

/* destroys a manager, then its checked device; ck->outstanding keeps the
   device bytes the manager did not free */
static void destroy_mgr(mload_offload *o, checked *ck) {
    mload_offload_destroy(o);
    mload_device_destroy(&ck->inner);
}

static void add_layers(mload_offload *o, const mload_tiers *t, uint32_t *units) {
    int i;
    for (i = 0; i < NL; ++i) {
        char pre[32], name[32];
        const char *p = pre;
        mload_error e;
        snprintf(pre, sizeof pre, "l.%d.", i);
        snprintf(name, sizeof name, "layer%d", i);
        if (mload_offload_add_unit(o, name, &p, 1, t, &units[i], &e) != MLOAD_OK) fprintf(stderr, "  (add: %s)\n", e.message);
    }
}

static uint64_t unit_bytes(mload_dtype dt) { return ((C * mload_dtype_bits(dt) / 8 + 63) & ~63ull) + ((R * C * mload_dtype_bits(dt) / 8 + 63) & ~63ull); }

/* expected bytes of tensor "l.i.w"/"l.i.b" through a chain of dtypes (0 entries skipped) */
static int expect_chain(const mload_unit_tensor *ut, const mload_dtype *chain, int n) {
    unsigned char a[R * C * 8], b[R * C * 8];
    mload_dtype cur = MLOAD_DTYPE_F32;
    uint64_t numel = ut->tensor->numel;
    int k;
    int layer = atoi(ut->tensor->name + 2), isb = ut->tensor->name[strlen(ut->tensor->name) - 1] == 'b';
    uint64_t j;
    for (j = 0; j < numel; ++j) { float v = isb ? wval(layer + 100, (int)j) : wval(layer, (int)j); memcpy(a + 4 * j, &v, 4); }
    for (k = 0; k < n; ++k) {
        if (!chain[k] || chain[k] == cur) continue;
        if (mload_cast(b, chain[k], a, cur, numel, 0, NULL) != MLOAD_OK) return 0;
        memcpy(a, b, (size_t)(numel * mload_dtype_bits(chain[k]) / 8));
        cur = chain[k];
    }
    return cur == ut->dtype && memcmp(a, ut->data, (size_t)ut->nbytes) == 0;
}

/* ---- defaulting ---- */

/* Tier fidelity (issue 10 items 2 and 4): an integer tier dtype is refused
   for float weights, naming unit and tensor; an onload dtype given without
   a place keeps its dtype (it came back as the offload tier's). */
static void test_offload_tier_fidelity(void) {
    mload_map *m = open_model();
    checked ck;
    mload_offload *o;
    mload_tiers t, got;
    uint32_t u;
    mload_error e;
    const char *p0 = "l.0.", *p1 = "l.1.";
    if (!m) return;
    o = make_mgr(m, make_checked(&ck, 0, 1, 0), 0, 0, 0);
    CHECK(o != NULL);
    if (!o) { mload_map_close(m); return; }
    memset(&t, 0, sizeof t);
    t.offload.place = MLOAD_PLACE_HOST;
    t.offload.dtype = MLOAD_DTYPE_I8;
    CHECK_RES(mload_offload_add_unit(o, "ints", &p0, 1, &t, &u, &e), MLOAD_ERR_INVALID_ARGUMENT);
    CHECK(strstr(e.message, "'ints'") != NULL && strncmp(e.tensor, "l.0.", 4) == 0);
    memset(&t, 0, sizeof t);
    t.offload.place = MLOAD_PLACE_HOST;
    t.offload.dtype = MLOAD_DTYPE_F16;
    t.onload.dtype = MLOAD_DTYPE_BF16; /* no place: the computation device, this dtype */
    t.computation.dtype = MLOAD_DTYPE_F32;
    CHECK_RES(mload_offload_add_unit(o, "b", &p1, 1, &t, &u, &e), MLOAD_OK);
    CHECK_RES(mload_offload_get_tiers(o, u, &got, NULL), MLOAD_OK);
    CHECK(got.onload.place == MLOAD_PLACE_DEVICE && got.onload.dtype == MLOAD_DTYPE_BF16);
    destroy_mgr(o, &ck);
    CHECK_EQ_U64(ck.outstanding, 0);
    mload_map_close(m);
}

/* four F32 values {1000, -1000, 1.5, 2} in "u.w", and a map over them that
   casts without saturating F8 */
static tbuf nonsat_image(void) {
    float vals[4] = {1000.0f, -1000.0f, 1.5f, 2.0f};
    return make_st("{\"u.w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 16, (const unsigned char *)vals);
}
static mload_map *open_nonsat(const tbuf *img) {
    mload_map_desc d;
    mload_source src;
    mload_map *m = NULL;
    mload_error e;
    memset(&d, 0, sizeof d);
    mload_source_open_memory(img->p, img->n, NULL, &src, NULL);
    d.sources = &src;
    d.source_count = 1;
    d.f8_overflow = MLOAD_F8_OVERFLOW_NONSAT;
    CHECK_RES(mload_map_open(&d, &m, &e), MLOAD_OK);
    return m;
}

/* A map opened non-saturating: every conversion path of the manager
   honours it (issue 10 item 3). 1000.0 stored as F8_E4M3 is NaN whether the
   prepared copy is filled from the map or from a host copy (it saturated
   to 448 from the host copy); with and without a device convert. */
static void test_offload_nonsat_everywhere(void) {
    tbuf img = nonsat_image();
    int dconv;
    for (dconv = 0; dconv < 2; ++dconv) {
        mload_map *m = open_nonsat(&img);
        checked ck;
        mload_offload *o;
        mload_tiers t;
        uint32_t u;
        mload_error e;
        const char *pre = "u.";
        int pass;
        if (!m) continue;
        o = make_mgr(m, make_checked(&ck, 0, dconv, 0), 0, 0, 0);
        t = host_then_device(MLOAD_DTYPE_BF16, MLOAD_DTYPE_F8_E4M3, MLOAD_DTYPE_F32);
        CHECK_RES(mload_offload_add_unit(o, "u", &pre, 1, &t, &u, &e), MLOAD_OK);
        for (pass = 0; pass < 2; ++pass) { /* 0: filled from the map; 1: from the host copy the offload made */
            const mload_unit_tensor *ut;
            uint64_t n;
            if (pass == 1) CHECK_RES(mload_offload_group_offload(o, &u, 1, &e), MLOAD_OK);
            CHECK_RES(mload_offload_acquire(o, u, &ut, &n, &e), MLOAD_OK);
            if (ut) {
                const float *f = (const float *)ut[0].data;
                CHECK(f[0] != f[0] && f[1] != f[1] && f[2] == 1.5f && f[3] == 2.0f);
                if (!(f[0] != f[0])) fprintf(stderr, "  device convert %d, pass %d: 1000 came back as %g\n", dconv, pass, (double)f[0]);
            }
            mload_offload_release(o, u);
        }
        destroy_mgr(o, &ck);
        mload_map_close(m);
    }
    tbuf_free(&img);
}

/* Values depend on the tiers only, never on which copies exist (issue 10
   item 1): a unit resting in HOST F16 and computed in F32 returns the same
   F16-rounded values before and after a group offload made its host copy
   (it returned the exact F32 values first). */
static void test_offload_values_independent_of_history(void) {
    float vals[4] = {1.0001f, 3.14159265f, -2.71828f, 65504.5f};
    tbuf img = make_st("{\"h.w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 16, (const unsigned char *)vals);
    mload_map *m = NULL;
    checked ck;
    mload_offload *o;
    mload_tiers t;
    uint32_t u;
    mload_error e;
    const char *pre = "h.";
    float first[4], expect[4];
    uint16_t h[4];
    int pass, k;
    CHECK_RES(mload_cast(h, MLOAD_DTYPE_F16, vals, MLOAD_DTYPE_F32, 4, MLOAD_F8_OVERFLOW_SATURATE, NULL), MLOAD_OK);
    CHECK_RES(mload_cast(expect, MLOAD_DTYPE_F32, h, MLOAD_DTYPE_F16, 4, MLOAD_F8_OVERFLOW_SATURATE, NULL), MLOAD_OK);
    CHECK_RES(map_open_memory(img.p, img.n, NULL, &m, &e), MLOAD_OK);
    if (!m) { tbuf_free(&img); return; }
    o = make_mgr(m, make_checked(&ck, 0, 1, 0), 0, 0, 0);
    memset(&t, 0, sizeof t);
    t.offload.place = MLOAD_PLACE_HOST;
    t.offload.dtype = MLOAD_DTYPE_F16;
    t.computation.dtype = MLOAD_DTYPE_F32;
    CHECK_RES(mload_offload_add_unit(o, "h", &pre, 1, &t, &u, &e), MLOAD_OK);
    for (pass = 0; pass < 3; ++pass) { /* 0: no host copy yet; 1: after the offload made it; 2: after an onload */
        const mload_unit_tensor *ut;
        uint64_t n;
        if (pass == 1) CHECK_RES(mload_offload_group_offload(o, &u, 1, &e), MLOAD_OK);
        if (pass == 2) CHECK_RES(mload_offload_group_onload(o, &u, 1, &e), MLOAD_OK);
        CHECK_RES(mload_offload_acquire(o, u, &ut, &n, &e), MLOAD_OK);
        if (ut) {
            const float *f = (const float *)ut[0].data;
            if (pass == 0) memcpy(first, f, sizeof first);
            for (k = 0; k < 4; ++k) CHECK(f[k] == expect[k] && f[k] == first[k]);
        }
        mload_offload_release(o, u);
    }
    destroy_mgr(o, &ck);
    mload_map_close(m);
    tbuf_free(&img);
}

/* A declared schedule: prefetch hits from the first pass (issue 10 item 11;
   learning from the acquires gives none in the first pass). */
static void test_offload_schedule(void) {
    mload_map *m = open_model();
    uint32_t units[NL];
    int sched;
    if (!m) return;
    for (sched = 0; sched < 2; ++sched) {
        checked ck;
        uint64_t budget = 3 * unit_bytes(MLOAD_DTYPE_F8_E4M3) + unit_bytes(MLOAD_DTYPE_BF16);
        mload_offload *o = make_mgr(m, make_checked(&ck, budget, 1, 200u << 20), budget, 0, 1);
        mload_tiers t;
        mload_offload_stats st;
        mload_error e;
        int i;
        memset(&t, 0, sizeof t);
        t.preparing.dtype = MLOAD_DTYPE_F8_E4M3;
        t.computation.dtype = MLOAD_DTYPE_BF16;
        add_layers(o, &t, units);
        if (sched) {
            uint32_t twice[2];
            twice[0] = units[0];
            twice[1] = units[0];
            CHECK_RES(mload_offload_set_schedule(o, twice, 2, &e), MLOAD_ERR_INVALID_ARGUMENT);
            CHECK_RES(mload_offload_set_schedule(o, units, NL, &e), MLOAD_OK);
        }
        for (i = 0; i < NL; ++i) { /* one pass */
            const mload_unit_tensor *ut;
            uint64_t n;
            CHECK_RES(mload_offload_acquire(o, units[i], &ut, &n, &e), MLOAD_OK);
            mload_offload_release(o, units[i]);
        }
        mload_offload_get_stats(o, &st);
        if (sched) CHECK(st.prefetch_hits >= (uint64_t)NL - 1);
        else CHECK(st.prefetch_hits == 0);
        destroy_mgr(o, &ck);
        CHECK_EQ_U64(ck.outstanding, 0);
    }
    mload_map_close(m);
}

static void test_offload_defaults(void) {
    mload_map *m = open_model();
    checked ck;
    mload_offload *o;
    mload_tiers t, got;
    uint32_t u;
    mload_error e;
    const char *p0 = "l.0.", *p1 = "l.1.", *p2 = "l.2.", *p3 = "l.3.";
    if (!m) return;
    o = make_mgr(m, make_checked(&ck, 0, 1, 0), 0, 0, 0);
    CHECK(o != NULL);
    if (!o) { mload_map_close(m); return; }
    CHECK_RES(mload_offload_add_unit(o, "a", &p0, 1, NULL, &u, &e), MLOAD_OK);
    CHECK_RES(mload_offload_get_tiers(o, u, &got, NULL), MLOAD_OK);
    /* the original's rules: every tier on the computation device, in the computation dtype */
    CHECK(got.offload.place == MLOAD_PLACE_DEVICE && got.onload.place == MLOAD_PLACE_DEVICE && got.preparing.place == MLOAD_PLACE_DEVICE &&
          got.computation.place == MLOAD_PLACE_DEVICE && got.computation.dtype == 0 && got.preparing.dtype == 0 &&
          got.offload.dtype == 0 && got.onload.dtype == 0);
    memset(&t, 0, sizeof t);
    t.offload.place = MLOAD_PLACE_HOST;
    t.offload.dtype = MLOAD_DTYPE_BF16;
    t.computation.dtype = MLOAD_DTYPE_F32;
    CHECK_RES(mload_offload_add_unit(o, "b", &p1, 1, &t, &u, &e), MLOAD_OK);
    mload_offload_get_tiers(o, u, &got, NULL);
    CHECK(got.onload.place == MLOAD_PLACE_DEVICE && got.onload.dtype == MLOAD_DTYPE_F32); /* device, computation dtype */
    CHECK(got.preparing.place == MLOAD_PLACE_DEVICE && got.preparing.dtype == MLOAD_DTYPE_F32); /* missing dtype = computation's */
    memset(&t, 0, sizeof t);
    t.onload.place = MLOAD_PLACE_DEVICE;
    t.onload.dtype = MLOAD_DTYPE_F8_E4M3;
    t.offload.place = MLOAD_PLACE_DISK;
    t.offload.dtype = MLOAD_DTYPE_F16; /* a disk tier has no dtype */
    t.computation.dtype = MLOAD_DTYPE_BF16;
    CHECK_RES(mload_offload_add_unit(o, "c", &p2, 1, &t, &u, &e), MLOAD_OK);
    mload_offload_get_tiers(o, u, &got, NULL);
    CHECK(got.preparing.place == MLOAD_PLACE_DEVICE && got.preparing.dtype == MLOAD_DTYPE_BF16 && got.offload.dtype == 0);
    t.preparing.place = MLOAD_PLACE_HOST; /* an onload tier on the device needs the preparing tier there */
    CHECK_RES(mload_offload_add_unit(o, "d", &p3, 1, &t, &u, &e), MLOAD_ERR_INVALID_ARGUMENT);
    memset(&t, 0, sizeof t);
    t.computation.place = MLOAD_PLACE_HOST;
    CHECK_RES(mload_offload_add_unit(o, "d", &p3, 1, &t, &u, &e), MLOAD_ERR_INVALID_ARGUMENT);
    memset(&t, 0, sizeof t);
    t.computation.dtype = MLOAD_DTYPE_C64;
    CHECK_RES(mload_offload_add_unit(o, "d", &p3, 1, &t, &u, &e), MLOAD_ERR_UNSUPPORTED);
    /* a tensor in two units; an empty unit; an unknown name */
    CHECK_RES(mload_offload_add_unit(o, "again", &p0, 1, NULL, &u, &e), MLOAD_ERR_INVALID_ARGUMENT);
    CHECK(strcmp(e.tensor, "l.0.b") == 0);
    {
        const char *none = "zz.";
        const char *lst[2] = {"l.4.w", "nope"};
        CHECK_RES(mload_offload_add_unit(o, "empty", &none, 1, NULL, &u, &e), MLOAD_ERR_NOT_FOUND);
        CHECK_RES(mload_offload_add_unit_list(o, "lst", lst, 2, NULL, &u, &e), MLOAD_ERR_NOT_FOUND);
        CHECK_RES(mload_offload_add_unit_list(o, "lst", lst, 1, NULL, &u, &e), MLOAD_OK);
    }
    destroy_mgr(o, &ck);
    CHECK_EQ_U64(ck.outstanding, 0);
    mload_map_close(m);
}

/* ---- every tier combination, on real bytes ---- */

typedef struct combo { mload_place op; mload_dtype od; mload_place np; mload_dtype nd; mload_place pp; mload_dtype pd; mload_dtype cd; } combo;

static void run_combo(const combo *cb, int with_convert) {
    mload_map *m = open_model();
    checked ck;
    mload_offload *o;
    mload_tiers t;
    uint32_t units[NL], i;
    mload_error e;
    if (!m) return;
    o = make_mgr(m, make_checked(&ck, 0, with_convert, 0), 0, 0, 1);
    memset(&t, 0, sizeof t);
    t.offload.place = cb->op; t.offload.dtype = cb->od;
    t.onload.place = cb->np; t.onload.dtype = cb->nd;
    t.preparing.place = cb->pp; t.preparing.dtype = cb->pd;
    t.computation.place = MLOAD_PLACE_DEVICE; t.computation.dtype = cb->cd;
    add_layers(o, &t, units);
    CHECK_RES(mload_offload_group_offload(o, units, NL, &e), MLOAD_OK);
    CHECK_RES(mload_offload_group_onload(o, units, NL, &e), MLOAD_OK);
    for (i = 0; i < 2 * NL; ++i) {
        const mload_unit_tensor *ut;
        uint64_t n, k;
        mload_tiers tt;
        uint32_t u = units[i % NL];
        mload_offload_get_tiers(o, u, &tt, NULL);
        CHECK_RES(mload_offload_acquire(o, u, &ut, &n, &e), MLOAD_OK);
        if (ut) {
            CHECK_EQ_U64(n, 2);
            for (k = 0; k < n; ++k) {
                /* the documented chain: offload tier, onload tier (DISK: none), prepared copy (if on
                   the device), computation */
                mload_dtype chain[4] = {0, 0, 0, 0};
                if (tt.offload.place != MLOAD_PLACE_DISK) chain[0] = tt.offload.dtype;
                if (tt.onload.place != MLOAD_PLACE_DISK) chain[1] = tt.onload.dtype;
                if (tt.preparing.place == MLOAD_PLACE_DEVICE) chain[2] = tt.preparing.dtype;
                chain[3] = tt.computation.dtype ? tt.computation.dtype : MLOAD_DTYPE_F32;
                if (!expect_chain(&ut[k], chain, 4)) {
                    th_failed_checks++;
                    fprintf(stderr, "  FAIL combo %d/%d/%d/%d/%d/%d/%d conv=%d tensor %s\n", cb->op, cb->od, cb->np, cb->nd, cb->pp, cb->pd,
                            cb->cd, with_convert, ut[k].tensor->name);
                    break;
                }
            }
            mload_offload_release(o, u);
        }
    }
    CHECK_RES(mload_offload_group_offload(o, units, NL, &e), MLOAD_OK);
    {
        mload_offload_stats st;
        mload_offload_get_stats(o, &st);
        /* offload frees every device copy, but one parked on the device whose values the move
           does not change (the onload tier on DISK or in the offload tier's dtype) */
        if (cb->op != MLOAD_PLACE_DEVICE || (cb->np != MLOAD_PLACE_DISK && cb->nd != cb->od)) CHECK_EQ_U64(st.device_bytes, 0);
        else if (!(st.device_bytes > 0)) { th_failed_checks++; fprintf(stderr, "  FAIL combo %d/%d/%d/%d: device copy not kept\n", cb->op, cb->od, cb->np, cb->nd); }
        if (cb->op == MLOAD_PLACE_HOST) CHECK(st.host_bytes > 0);
        else CHECK_EQ_U64(st.host_bytes, 0);
    }
    destroy_mgr(o, &ck);
    CHECK_EQ_U64(ck.outstanding, 0);
    mload_map_close(m);
}

static void test_offload_tier_combinations(void) {
    static const combo combos[] = {
        /* everything on disk, fp8 preparing, bf16 computation (the original's disk offload) */
        {MLOAD_PLACE_DISK, 0, MLOAD_PLACE_DISK, 0, MLOAD_PLACE_DEVICE, MLOAD_DTYPE_F8_E4M3, MLOAD_DTYPE_BF16},
        {MLOAD_PLACE_DISK, 0, MLOAD_PLACE_DISK, 0, MLOAD_PLACE_DEVICE, MLOAD_DTYPE_F8_E5M2, MLOAD_DTYPE_F32},
        {MLOAD_PLACE_DISK, 0, MLOAD_PLACE_DISK, 0, MLOAD_PLACE_DEVICE, 0, 0},
        /* host offload in a narrow dtype, computation wider */
        {MLOAD_PLACE_HOST, MLOAD_DTYPE_BF16, MLOAD_PLACE_HOST, MLOAD_DTYPE_BF16, MLOAD_PLACE_DEVICE, MLOAD_DTYPE_BF16, MLOAD_DTYPE_F32},
        {MLOAD_PLACE_HOST, MLOAD_DTYPE_F8_E4M3, MLOAD_PLACE_HOST, MLOAD_DTYPE_F8_E4M3, MLOAD_PLACE_DEVICE, MLOAD_DTYPE_F8_E4M3, MLOAD_DTYPE_BF16},
        {MLOAD_PLACE_HOST, MLOAD_DTYPE_F16, MLOAD_PLACE_HOST, MLOAD_DTYPE_F32, MLOAD_PLACE_DEVICE, MLOAD_DTYPE_F16, MLOAD_DTYPE_F32},
        /* offload to disk, onload to host */
        {MLOAD_PLACE_DISK, 0, MLOAD_PLACE_HOST, MLOAD_DTYPE_BF16, MLOAD_PLACE_DEVICE, MLOAD_DTYPE_F8_E4M3, MLOAD_DTYPE_F32},
        /* onload on the device (the preparing tier) */
        {MLOAD_PLACE_HOST, MLOAD_DTYPE_BF16, MLOAD_PLACE_DEVICE, MLOAD_DTYPE_BF16, MLOAD_PLACE_DEVICE, MLOAD_DTYPE_BF16, MLOAD_DTYPE_F32},
        {MLOAD_PLACE_DISK, 0, MLOAD_PLACE_DEVICE, MLOAD_DTYPE_F8_E4M3, MLOAD_PLACE_DEVICE, MLOAD_DTYPE_F8_E4M3, MLOAD_DTYPE_BF16},
        /* an onload tier on the device in another dtype than the preparing tier's (item 9) */
        {MLOAD_PLACE_HOST, MLOAD_DTYPE_F16, MLOAD_PLACE_DEVICE, MLOAD_DTYPE_F32, MLOAD_PLACE_DEVICE, MLOAD_DTYPE_F8_E4M3, MLOAD_DTYPE_BF16},
        {MLOAD_PLACE_DISK, 0, MLOAD_PLACE_DEVICE, MLOAD_DTYPE_BF16, MLOAD_PLACE_DEVICE, MLOAD_DTYPE_F32, MLOAD_DTYPE_F32},
        {MLOAD_PLACE_HOST, MLOAD_DTYPE_F8_E5M2, MLOAD_PLACE_DEVICE, MLOAD_DTYPE_F16, MLOAD_PLACE_DEVICE, MLOAD_DTYPE_BF16, MLOAD_DTYPE_F32},
        /* parked on the device (the defaults, and fp8 on the device) */
        {MLOAD_PLACE_DEVICE, 0, MLOAD_PLACE_DEVICE, 0, MLOAD_PLACE_DEVICE, 0, 0},
        {MLOAD_PLACE_DEVICE, MLOAD_DTYPE_F8_E4M3, MLOAD_PLACE_DEVICE, MLOAD_DTYPE_F8_E4M3, MLOAD_PLACE_DEVICE, MLOAD_DTYPE_F8_E4M3, MLOAD_DTYPE_BF16},
        {MLOAD_PLACE_DEVICE, MLOAD_DTYPE_BF16, MLOAD_PLACE_HOST, MLOAD_DTYPE_F16, MLOAD_PLACE_DEVICE, MLOAD_DTYPE_F32, MLOAD_DTYPE_F32},
        /* no preparing copy: every acquire makes a temporary computation copy */
        {MLOAD_PLACE_HOST, MLOAD_DTYPE_BF16, MLOAD_PLACE_HOST, MLOAD_DTYPE_BF16, MLOAD_PLACE_HOST, MLOAD_DTYPE_BF16, MLOAD_DTYPE_F32},
        {MLOAD_PLACE_DISK, 0, MLOAD_PLACE_DISK, 0, MLOAD_PLACE_DISK, 0, MLOAD_DTYPE_BF16},
    };
    size_t i;
    int conv;
    for (conv = 0; conv < 2; ++conv)
        for (i = 0; i < sizeof combos / sizeof combos[0]; ++i) run_combo(&combos[i], conv);
}

/* The presets (issue 10 item 6): the original's disk offload exactly as its
   load_model_with_disk_offload sets it up, host offload, fp8 on the device;
   each runs through the tier combinations' checks. */
static void test_offload_presets(void) {
    mload_tiers t = mload_tiers_preset(MLOAD_PRESET_DISK_OFFLOAD, 0, MLOAD_DTYPE_BF16);
    combo cb;
    int conv;
    CHECK(t.offload.place == MLOAD_PLACE_DISK && t.onload.place == MLOAD_PLACE_DISK && t.preparing.place == MLOAD_PLACE_DEVICE &&
          t.preparing.dtype == MLOAD_DTYPE_F8_E4M3 && t.computation.place == MLOAD_PLACE_DEVICE && t.computation.dtype == MLOAD_DTYPE_BF16);
    t = mload_tiers_preset(MLOAD_PRESET_HOST_OFFLOAD, MLOAD_DTYPE_BF16, MLOAD_DTYPE_F32);
    CHECK(t.offload.place == MLOAD_PLACE_HOST && t.offload.dtype == MLOAD_DTYPE_BF16 && t.onload.place == MLOAD_PLACE_HOST &&
          t.onload.dtype == MLOAD_DTYPE_BF16 && t.preparing.place == MLOAD_PLACE_DEVICE && t.preparing.dtype == 0 &&
          t.computation.dtype == MLOAD_DTYPE_F32);
    t = mload_tiers_preset(MLOAD_PRESET_FP8_DEVICE, 0, MLOAD_DTYPE_BF16);
    CHECK(t.offload.place == MLOAD_PLACE_DEVICE && t.offload.dtype == MLOAD_DTYPE_F8_E4M3 && t.onload.place == MLOAD_PLACE_DEVICE &&
          t.onload.dtype == MLOAD_DTYPE_F8_E4M3 && t.preparing.dtype == MLOAD_DTYPE_F8_E4M3 && t.computation.dtype == MLOAD_DTYPE_BF16);
    t = mload_tiers_preset(MLOAD_PRESET_ON_DEVICE, MLOAD_DTYPE_F16, 0);
    CHECK(t.offload.place == MLOAD_PLACE_DEVICE && t.offload.dtype == MLOAD_DTYPE_F16 && t.preparing.dtype == MLOAD_DTYPE_F16 &&
          t.computation.dtype == 0);
    t = mload_tiers_preset((mload_preset)99, MLOAD_DTYPE_F16, MLOAD_DTYPE_F32);
    CHECK(t.offload.place == 0 && t.offload.dtype == 0 && t.computation.dtype == 0); /* unknown: all defaults */
    for (conv = 0; conv < 2; ++conv) {
        int p;
        for (p = MLOAD_PRESET_ON_DEVICE; p <= MLOAD_PRESET_FP8_DEVICE; ++p) {
            t = mload_tiers_preset((mload_preset)p, 0, MLOAD_DTYPE_BF16);
            cb.op = t.offload.place; cb.od = t.offload.dtype;
            cb.np = t.onload.place; cb.nd = t.onload.dtype;
            cb.pp = t.preparing.place; cb.pd = t.preparing.dtype;
            cb.cd = t.computation.dtype;
            run_combo(&cb, conv);
        }
    }
}

/* ---- the hard cap, checked on every allocation ---- */

static void test_offload_hard_cap(void) {
    mload_map *m = open_model();
    uint32_t units[NL];
    int order_kind, depth;
    if (!m) return;
    for (order_kind = 0; order_kind < 3; ++order_kind) {
        for (depth = 0; depth <= 2; ++depth) {
            checked ck;
            /* room for 2 F8 prepared copies + one F32 computation copy, not more */
            uint64_t budget = 2 * unit_bytes(MLOAD_DTYPE_F8_E4M3) + unit_bytes(MLOAD_DTYPE_F32) + 100;
            mload_offload *o = make_mgr(m, make_checked(&ck, budget, 1, 0), budget, order_kind == 2 ? MLOAD_EVICT_LRU : 0, (uint32_t)depth);
            mload_tiers t;
            unsigned seed = 12345u + (unsigned)order_kind;
            int it;
            mload_offload_stats st;
            memset(&t, 0, sizeof t);
            t.preparing.place = MLOAD_PLACE_DEVICE;
            t.preparing.dtype = MLOAD_DTYPE_F8_E4M3;
            t.computation.dtype = MLOAD_DTYPE_F32;
            add_layers(o, &t, units);
            for (it = 0; it < 60; ++it) {
                const mload_unit_tensor *ut;
                uint64_t n;
                mload_error e;
                uint32_t u;
                seed = seed * 1103515245u + 12345u;
                u = order_kind == 1 ? (uint32_t)(NL - 1 - it % NL) : (order_kind == 0 ? (seed >> 16) % NL : (uint32_t)(it % NL));
                CHECK_RES(mload_offload_acquire(o, units[u], &ut, &n, &e), MLOAD_OK);
                mload_offload_release(o, units[u]);
            }
            mload_offload_get_stats(o, &st);
            CHECK(!ck.over);
            CHECK(ck.peak <= budget && st.peak_device_bytes <= budget);
            CHECK(st.peak_device_bytes == ck.peak);
            destroy_mgr(o, &ck);
            CHECK_EQ_U64(ck.outstanding, 0);
        }
    }
    mload_map_close(m);
}

/* ---- eviction choices ---- */

static void run_cycle(mload_offload *o, const uint32_t *units, int passes, uint64_t *misses_last) {
    int p, i;
    mload_offload_stats st;
    for (p = 0; p < passes; ++p) {
        if (p == passes - 1) mload_offload_reset_stats(o);
        for (i = 0; i < NL; ++i) {
            const mload_unit_tensor *ut;
            uint64_t n;
            mload_error e;
            if (mload_offload_acquire(o, units[i], &ut, &n, &e) != MLOAD_OK) { th_failed_checks++; fprintf(stderr, "  FAIL %s\n", e.message); return; }
            mload_offload_release(o, units[i]);
        }
    }
    mload_offload_get_stats(o, &st);
    *misses_last = st.misses;
}

static void test_offload_eviction(void) {
    mload_map *m = open_model();
    uint32_t units[NL];
    uint64_t miss_lru = 0, miss_next = 0;
    int pol;
    if (!m) return;
    for (pol = 0; pol < 2; ++pol) {
        checked ck;
        uint64_t budget = 3 * unit_bytes(MLOAD_DTYPE_F32); /* three layers fit */
        mload_offload *o = make_mgr(m, make_checked(&ck, budget, 1, 0), budget, pol ? MLOAD_EVICT_LRU : MLOAD_EVICT_NEXT_USE, 0);
        mload_tiers dt;
        memset(&dt, 0, sizeof dt);
        dt.offload.place = dt.onload.place = MLOAD_PLACE_DISK; /* a group offload empties the device */
        add_layers(o, &dt, units);
        run_cycle(o, units, 4, pol ? &miss_lru : &miss_next);
        /* the choice itself: with the cycle 0..5 learned, the cache emptied and
           1, 2, 3 loaded in order, acquiring 4 evicts the unit used furthest
           ahead (3, next needed 5 steps on) with next-use, the least recently
           released (1) with LRU */
        {
            const mload_unit_tensor *ut;
            uint64_t n;
            mload_error e;
            int i;
            mload_offload_acquire(o, units[0], &ut, &n, &e); /* closes the cycle: 5 -> 0 */
            mload_offload_release(o, units[0]);
            CHECK_RES(mload_offload_group_offload(o, units, NL, &e), MLOAD_OK);
            for (i = 1; i <= 3; ++i) { mload_offload_acquire(o, units[i], &ut, &n, &e); mload_offload_release(o, units[i]); }
            CHECK(mload_offload_is_resident(o, units[1]) && mload_offload_is_resident(o, units[2]) && mload_offload_is_resident(o, units[3]));
            CHECK_RES(mload_offload_acquire(o, units[4], &ut, &n, &e), MLOAD_OK);
            mload_offload_release(o, units[4]);
            if (pol) CHECK(!mload_offload_is_resident(o, units[1]) && mload_offload_is_resident(o, units[2]) && mload_offload_is_resident(o, units[3]));
            else CHECK(!mload_offload_is_resident(o, units[3]) && mload_offload_is_resident(o, units[1]) && mload_offload_is_resident(o, units[2]));
        }
        /* pinned units stay */
        {
            const mload_unit_tensor *ut;
            uint64_t n;
            mload_error e;
            int i;
            mload_offload_pin(o, units[5], NULL);
            mload_offload_acquire(o, units[5], &ut, &n, &e);
            mload_offload_release(o, units[5]);
            for (i = 0; i < 2 * NL; ++i) {
                mload_offload_acquire(o, units[i % 5], &ut, &n, &e);
                mload_offload_release(o, units[i % 5]);
                CHECK(mload_offload_is_resident(o, units[5]));
            }
        }
        destroy_mgr(o, &ck);
        CHECK_EQ_U64(ck.outstanding, 0);
    }
    /* a cyclic order thrashes LRU (every acquire misses); next-use keeps two of three */
    CHECK_EQ_U64(miss_lru, NL);
    CHECK(miss_next < miss_lru);
    CHECK(miss_next <= NL - 2);
    mload_map_close(m);
}

/* eviction choices on a random (permuted) order, learned then replayed */
static void test_offload_eviction_permuted(void) {
    static const uint32_t perm[NL] = {3, 0, 5, 1, 4, 2};
    mload_map *m = open_model();
    uint32_t units[NL];
    int pol;
    if (!m) return;
    for (pol = 0; pol < 2; ++pol) {
        checked ck;
        uint64_t budget = 3 * unit_bytes(MLOAD_DTYPE_F32);
        mload_offload *o = make_mgr(m, make_checked(&ck, budget, 1, 0), budget, pol ? MLOAD_EVICT_LRU : MLOAD_EVICT_NEXT_USE, 0);
        const mload_unit_tensor *ut;
        uint64_t n;
        mload_error e;
        int i, p;
        add_layers(o, NULL, units);
        for (p = 0; p < 2; ++p)
            for (i = 0; i < NL; ++i) { mload_offload_acquire(o, units[perm[i]], &ut, &n, &e); mload_offload_release(o, units[perm[i]]); }
        mload_offload_acquire(o, units[perm[0]], &ut, &n, &e); /* closes the learned cycle */
        mload_offload_release(o, units[perm[0]]);
        CHECK_RES(mload_offload_group_offload(o, units, NL, &e), MLOAD_OK);
        for (i = 1; i <= 3; ++i) { mload_offload_acquire(o, units[perm[i]], &ut, &n, &e); mload_offload_release(o, units[perm[i]]); }
        CHECK_RES(mload_offload_acquire(o, units[perm[4]], &ut, &n, &e), MLOAD_OK);
        mload_offload_release(o, units[perm[4]]);
        /* next-use evicts perm[3] (needed again in 5 steps); LRU evicts perm[1] */
        if (pol) CHECK(!mload_offload_is_resident(o, units[perm[1]]) && mload_offload_is_resident(o, units[perm[3]]));
        else CHECK(!mload_offload_is_resident(o, units[perm[3]]) && mload_offload_is_resident(o, units[perm[1]]) && mload_offload_is_resident(o, units[perm[2]]));
        destroy_mgr(o, &ck);
        CHECK_EQ_U64(ck.outstanding, 0);
    }
    mload_map_close(m);
}

/* ---- prefetch: same results at every depth, prefetch hits after learning ---- */

static void test_offload_prefetch(void) {
    mload_map *m = open_model();
    uint32_t units[NL];
    unsigned char ref[NL][R * C * 2];
    int depth;
    if (!m) return;
    for (depth = 0; depth <= 2; ++depth) {
        checked ck;
        /* three prepared F8 copies and the BF16 computation copy: layers must be reloaded every pass */
        uint64_t budget = 3 * unit_bytes(MLOAD_DTYPE_F8_E4M3) + unit_bytes(MLOAD_DTYPE_BF16);
        mload_offload *o = make_mgr(m, make_checked(&ck, budget, 1, 200u << 20), budget, 0, (uint32_t)depth);
        mload_tiers t;
        mload_offload_stats st;
        int p, i;
        memset(&t, 0, sizeof t);
        t.preparing.dtype = MLOAD_DTYPE_F8_E4M3;
        t.computation.dtype = MLOAD_DTYPE_BF16;
        add_layers(o, &t, units);
        for (p = 0; p < 3; ++p) {
            for (i = 0; i < NL; ++i) {
                const mload_unit_tensor *ut;
                uint64_t n;
                mload_error e;
                CHECK_RES(mload_offload_acquire(o, units[i], &ut, &n, &e), MLOAD_OK);
                if (!ut) continue;
                if (depth == 0 && p == 0) memcpy(ref[i], ut[1].data, (size_t)ut[1].nbytes);
                else if (memcmp(ref[i], ut[1].data, (size_t)ut[1].nbytes) != 0) { th_failed_checks++; fprintf(stderr, "  FAIL prefetch depth %d: layer %d differs\n", depth, i); }
                mload_offload_release(o, units[i]);
            }
        }
        mload_offload_get_stats(o, &st);
        if (depth == 0) CHECK(st.prefetch_issued == 0 && st.prefetch_hits == 0);
        else if (st.prefetch_hits < (uint64_t)NL) {
            th_failed_checks++;
            fprintf(stderr, "  FAIL depth %d: %llu prefetch hits of %llu issued, %llu misses\n", depth, (unsigned long long)st.prefetch_hits,
                    (unsigned long long)st.prefetch_issued, (unsigned long long)st.misses);
        }
        CHECK(!ck.over);
        destroy_mgr(o, &ck);
        CHECK_EQ_U64(ck.outstanding, 0);
    }
    mload_map_close(m);
}

/* ---- budget errors leave nothing behind ---- */

static void test_offload_budget_errors(void) {
    mload_map *m = open_model();
    checked ck;
    uint32_t units[NL];
    uint64_t budget = unit_bytes(MLOAD_DTYPE_F32) + unit_bytes(MLOAD_DTYPE_F32) / 2; /* one F32 layer, not two */
    mload_offload *o;
    const mload_unit_tensor *ut, *ut2;
    uint64_t n, before;
    mload_error e;
    mload_tiers t;
    if (!m) return;
    o = make_mgr(m, make_checked(&ck, budget, 1, 0), budget, 0, 0);
    add_layers(o, NULL, units);
    CHECK_RES(mload_offload_acquire(o, units[0], &ut, &n, &e), MLOAD_OK);
    before = ck.outstanding;
    /* layer 0 is acquired, so layer 1 cannot fit */
    CHECK_RES(mload_offload_acquire(o, units[1], &ut2, &n, &e), MLOAD_ERR_BUDGET);
    CHECK(strstr(e.message, "needed") && strstr(e.message, "available"));
    CHECK(ut2 == NULL && n == 0);
    CHECK_EQ_U64(ck.outstanding, before);
    CHECK_RES(mload_offload_acquire(o, units[0], &ut2, &n, &e), MLOAD_ERR_INVALID_ARGUMENT); /* twice */
    mload_offload_release(o, units[0]);
    CHECK_RES(mload_offload_acquire(o, units[1], &ut2, &n, &e), MLOAD_OK); /* evicts layer 0 */
    CHECK(!mload_offload_is_resident(o, units[0]));
    mload_offload_release(o, units[1]);
    destroy_mgr(o, &ck);
    CHECK_EQ_U64(ck.outstanding, 0);
    /* a unit larger than the whole budget; a computation copy that cannot fit */
    o = make_mgr(m, make_checked(&ck, 100, 1, 0), 100, 0, 0);
    add_layers(o, NULL, units);
    CHECK_RES(mload_offload_acquire(o, units[2], &ut, &n, &e), MLOAD_ERR_BUDGET);
    CHECK_EQ_U64(ck.outstanding, 0);
    destroy_mgr(o, &ck);
    budget = unit_bytes(MLOAD_DTYPE_F8_E4M3) + 64;
    o = make_mgr(m, make_checked(&ck, budget, 1, 0), budget, 0, 0);
    memset(&t, 0, sizeof t);
    t.preparing.dtype = MLOAD_DTYPE_F8_E4M3;
    t.computation.dtype = MLOAD_DTYPE_F32;
    add_layers(o, &t, units);
    CHECK_RES(mload_offload_acquire(o, units[0], &ut, &n, &e), MLOAD_ERR_BUDGET);
    CHECK(ck.outstanding <= budget);
    {
        mload_offload_stats st;
        mload_offload_get_stats(o, &st);
        CHECK(st.peak_device_bytes <= budget);
    }
    destroy_mgr(o, &ck);
    CHECK_EQ_U64(ck.outstanding, 0);
    mload_map_close(m);
}

/* Over the budget the original never fails while the computation copy fits
   (issue 10 item 7): a prepared copy that cannot be kept beside the
   computation copy, or at all, is dropped and the unit runs on a temporary
   copy alone, with the values of the tiers; a pinned unit keeps its copy
   (then Budget); Budget when the computation copy itself cannot fit. */
static void run_fallback(mload_map *m, mload_dtype prep, mload_dtype comp, uint64_t budget, int with_convert, int pin,
                         mload_result want) {
    checked ck;
    uint32_t units[NL];
    mload_offload *o = make_mgr(m, make_checked(&ck, budget, with_convert, 0), budget, 0, 0);
    const mload_unit_tensor *ut;
    uint64_t n, i;
    mload_error e;
    mload_tiers t;
    mload_dtype chain[2];
    mload_offload_stats st;
    int pass;
    if (!o) { CHECK(0); return; }
    memset(&t, 0, sizeof t);
    t.preparing.dtype = prep;
    t.computation.dtype = comp;
    add_layers(o, &t, units);
    if (pin) CHECK_RES(mload_offload_pin(o, units[1], &e), MLOAD_OK);
    chain[0] = prep;
    chain[1] = comp;
    for (pass = 0; pass < 2; ++pass) /* twice: the second acquire finds no prepared copy either */
        for (i = pin ? 1 : 0; i < (pin ? 2u : NL); ++i) { /* with pin: the pinned unit only */
            mload_result r = mload_offload_acquire(o, units[i], &ut, &n, &e);
            CHECK_RES(r, want);
            if (pin) CHECK(mload_offload_is_resident(o, units[i])); /* its prepared copy stays */
            if (r == MLOAD_OK) {
                uint64_t k;
                for (k = 0; k < n; ++k) CHECK(expect_chain(&ut[k], chain, 2));
                CHECK(ck.outstanding <= budget);
                mload_offload_release(o, units[i]);
            } else {
                CHECK(strstr(e.message, "needed") != NULL);
            }
            CHECK(!ck.over);
        }
    mload_offload_get_stats(o, &st);
    CHECK(st.peak_device_bytes <= budget);
    destroy_mgr(o, &ck);
    CHECK_EQ_U64(ck.outstanding, 0);
}

static void test_offload_temp_fallback(void) {
    mload_map *m = open_model();
    uint64_t f8 = unit_bytes(MLOAD_DTYPE_F8_E4M3), f32 = unit_bytes(MLOAD_DTYPE_F32), bf = unit_bytes(MLOAD_DTYPE_BF16);
    int conv;
    if (!m) return;
    for (conv = 0; conv < 2; ++conv) {
        /* F8 prepared + F32 computation do not fit together; F32 alone does */
        run_fallback(m, MLOAD_DTYPE_F8_E4M3, MLOAD_DTYPE_F32, f32 + f8 / 2, conv, 0, MLOAD_OK);
        /* the prepared copy (F32) cannot fit at all; the BF16 computation copy does */
        run_fallback(m, MLOAD_DTYPE_F32, MLOAD_DTYPE_BF16, bf + 64, conv, 0, MLOAD_OK);
        /* a pinned unit keeps its prepared copy: Budget */
        run_fallback(m, MLOAD_DTYPE_F8_E4M3, MLOAD_DTYPE_F32, f32 + f8 / 2, conv, 1, MLOAD_ERR_BUDGET);
        /* the computation copy alone is over the budget */
        run_fallback(m, MLOAD_DTYPE_F8_E4M3, MLOAD_DTYPE_F32, f32 - 64, conv, 0, MLOAD_ERR_BUDGET);
    }
    mload_map_close(m);
}

/* ---- group moves and statistics ---- */

static void test_offload_group_and_stats(void) {
    mload_map *m = open_model();
    checked ck;
    uint32_t units[NL];
    mload_offload *o;
    mload_tiers t;
    mload_offload_stats st;
    mload_error e;
    const mload_unit_tensor *ut;
    uint64_t n;
    if (!m) return;
    o = make_mgr(m, make_checked(&ck, 0, 1, 0), 0, 0, 0);
    memset(&t, 0, sizeof t);
    t.offload.place = MLOAD_PLACE_HOST;
    t.offload.dtype = MLOAD_DTYPE_BF16;
    t.onload.place = MLOAD_PLACE_HOST;
    t.onload.dtype = MLOAD_DTYPE_F32;
    t.computation.dtype = MLOAD_DTYPE_F32;
    add_layers(o, &t, units);
    CHECK_RES(mload_offload_group_offload(o, units, NL, &e), MLOAD_OK);
    mload_offload_get_stats(o, &st);
    CHECK_EQ_U64(st.disk_to_host, NL * unit_bytes(MLOAD_DTYPE_BF16));
    CHECK_EQ_U64(st.host_bytes, NL * unit_bytes(MLOAD_DTYPE_BF16));
    CHECK_RES(mload_offload_group_onload(o, units, NL, &e), MLOAD_OK);
    mload_offload_get_stats(o, &st);
    CHECK_EQ_U64(st.disk_to_host, NL * unit_bytes(MLOAD_DTYPE_BF16)); /* converted from the host copies, not re-read */
    CHECK_EQ_U64(st.host_bytes, NL * unit_bytes(MLOAD_DTYPE_F32));
    CHECK(st.peak_host_bytes >= NL * unit_bytes(MLOAD_DTYPE_F32));
    CHECK_RES(mload_offload_acquire(o, units[0], &ut, &n, &e), MLOAD_OK);
    CHECK_RES(mload_offload_group_offload(o, units, 1, &e), MLOAD_ERR_INVALID_ARGUMENT); /* acquired */
    mload_offload_release(o, units[0]);
    CHECK_RES(mload_offload_acquire(o, units[0], &ut, &n, &e), MLOAD_OK);
    mload_offload_release(o, units[0]);
    mload_offload_get_stats(o, &st);
    CHECK_EQ_U64(st.acquires, 2);
    CHECK_EQ_U64(st.misses, 1);
    CHECK_EQ_U64(st.hits, 1);
    CHECK_EQ_U64(st.host_to_device, unit_bytes(MLOAD_DTYPE_F32));
    CHECK_EQ_U64(st.disk_to_device, 0);
    CHECK_EQ_U64(st.device_bytes, unit_bytes(MLOAD_DTYPE_F32));
    CHECK(st.device_budget == UINT64_MAX);
    mload_offload_reset_stats(o);
    mload_offload_get_stats(o, &st);
    CHECK(st.acquires == 0 && st.hits == 0 && st.host_to_device == 0);
    CHECK_EQ_U64(st.device_bytes, unit_bytes(MLOAD_DTYPE_F32)); /* levels stay */
    CHECK_EQ_U64(st.peak_device_bytes, unit_bytes(MLOAD_DTYPE_F32));
    CHECK_RES(mload_offload_group_offload(o, units, NL, &e), MLOAD_OK);
    mload_offload_get_stats(o, &st);
    CHECK_EQ_U64(st.device_bytes, 0);
    CHECK_EQ_U64(st.host_bytes, NL * unit_bytes(MLOAD_DTYPE_BF16));
    destroy_mgr(o, &ck);
    CHECK_EQ_U64(ck.outstanding, 0);
    /* a budget derived from the device's free memory minus a reserve */
    {
        mload_offload_desc d;
        mload_device sim;
        mload_device_create_sim(1000000, 0, &sim, NULL);
        memset(&d, 0, sizeof d);
        d.map = m;
        d.device = sim;
        d.device_reserve = 250000;
        CHECK_RES(mload_offload_create(&d, &o, &e), MLOAD_OK);
        mload_offload_get_stats(o, &st);
        CHECK_EQ_U64(st.device_budget, 750000);
        mload_offload_destroy(o);
        mload_device_destroy(&sim);
    }
    {
        mload_device cu;
        CHECK_RES(mload_device_create_cuda(0, &cu, NULL), MLOAD_ERR_UNSUPPORTED);
    }
    mload_map_close(m);
}

/* regressions found in review */
static int g_fail_uploads; /* uploads from threads other than the first caller fail */
static mload_result flaky_up(void *u, void *d, const void *s2, uint64_t n, uint64_t *f) {
    checked *c = (checked *)u;
    if (g_fail_uploads) return MLOAD_ERR_DEVICE;
    return c->inner.upload(c->inner.user, d, s2, n, f);
}

static void test_offload_regressions(void) {
    mload_map *m = open_model();
    uint32_t units[NL];
    const mload_unit_tensor *ut;
    uint64_t n;
    mload_error e;
    if (!m) return;
    /* units added while a prefetch is in flight (a slow device) */
    {
        checked ck;
        mload_offload *o = make_mgr(m, make_checked(&ck, 0, 1, 2000000), 0, 0, 2);
        const char *p0 = "l.0.", *p1 = "l.1.", *p2 = "l.2.";
        uint32_t a, b, c;
        mload_offload_add_unit(o, "a", &p0, 1, NULL, &a, &e);
        mload_offload_add_unit(o, "b", &p1, 1, NULL, &b, &e);
        mload_offload_acquire(o, a, &ut, &n, &e); mload_offload_release(o, a);
        mload_offload_acquire(o, b, &ut, &n, &e); mload_offload_release(o, b);
        mload_offload_group_offload(o, &a, 1, &e);
        mload_offload_acquire(o, b, &ut, &n, &e); mload_offload_release(o, b); /* prefetches a (slow) */
        CHECK_RES(mload_offload_add_unit(o, "c", &p2, 1, NULL, &c, &e), MLOAD_OK);
        CHECK_RES(mload_offload_acquire(o, a, &ut, &n, &e), MLOAD_OK);
        mload_offload_release(o, a);
        CHECK_RES(mload_offload_acquire(o, c, &ut, &n, &e), MLOAD_OK);
        mload_offload_release(o, c);
        destroy_mgr(o, &ck);
        CHECK_EQ_U64(ck.outstanding, 0);
    }
    /* a failed prefetch is not reported by a later call; the acquire retries */
    {
        checked ck;
        mload_device dev = make_checked(&ck, 0, 1, 0);
        mload_offload *o;
        dev.upload = flaky_up;
        o = make_mgr(m, dev, 2 * unit_bytes(MLOAD_DTYPE_F32), 0, 1);
        add_layers(o, NULL, units);
        mload_offload_acquire(o, units[0], &ut, &n, &e); mload_offload_release(o, units[0]);
        mload_offload_acquire(o, units[1], &ut, &n, &e); mload_offload_release(o, units[1]);
        mload_offload_group_offload(o, units, NL, &e);
        mload_offload_acquire(o, units[0], &ut, &n, &e);
        g_fail_uploads = 1; /* the prefetch of unit 1 happens inside this acquire... */
        mload_offload_release(o, units[0]);
        mload_offload_acquire(o, units[2], &ut, &n, &e); /* (fails: uploads fail now) */
        g_fail_uploads = 0;
        CHECK_RES(mload_offload_acquire(o, units[1], &ut, &n, &e), MLOAD_OK);
        mload_offload_release(o, units[1]);
        CHECK_RES(mload_offload_group_offload(o, units, NL, &e), MLOAD_OK);
        destroy_mgr(o, &ck);
        CHECK_EQ_U64(ck.outstanding, 0);
    }
    /* a request that cannot fit evicts nothing */
    {
        checked ck;
        uint64_t budget = 2 * unit_bytes(MLOAD_DTYPE_F32);
        mload_offload *o = make_mgr(m, make_checked(&ck, budget, 1, 0), budget, 0, 0);
        mload_tiers wide;
        mload_offload_stats st;
        const char *p0 = "l.0.", *p1 = "l.1.", *p2 = "l.2.";
        uint32_t a, b, c;
        memset(&wide, 0, sizeof wide);
        wide.computation.dtype = MLOAD_DTYPE_F64; /* twice the bytes */
        mload_offload_add_unit(o, "a", &p0, 1, NULL, &a, &e);
        mload_offload_add_unit(o, "b", &p1, 1, NULL, &b, &e);
        mload_offload_add_unit(o, "c", &p2, 1, &wide, &c, &e);
        mload_offload_acquire(o, a, &ut, &n, &e); /* held */
        mload_offload_acquire(o, b, &ut, &n, &e);
        mload_offload_release(o, b);             /* resident, evictable */
        mload_offload_reset_stats(o);
        CHECK_RES(mload_offload_acquire(o, c, &ut, &n, &e), MLOAD_ERR_BUDGET);
        mload_offload_get_stats(o, &st);
        CHECK_EQ_U64(st.evictions, 0);
        CHECK(mload_offload_is_resident(o, b));
        mload_offload_release(o, a);
        destroy_mgr(o, &ck);
        CHECK_EQ_U64(ck.outstanding, 0);
    }
    /* a group onload does not evict its own members */
    {
        checked ck;
        uint64_t budget = 2 * unit_bytes(MLOAD_DTYPE_F32);
        mload_offload *o = make_mgr(m, make_checked(&ck, budget, 1, 0), budget, 0, 0);
        mload_tiers t;
        memset(&t, 0, sizeof t);
        t.onload.place = MLOAD_PLACE_DEVICE;
        add_layers(o, &t, units);
        CHECK_RES(mload_offload_group_onload(o, units + 2, 3, &e), MLOAD_ERR_BUDGET); /* three do not fit in two */
        CHECK(mload_offload_is_resident(o, units[2]) && mload_offload_is_resident(o, units[3]));
        destroy_mgr(o, &ck);
        CHECK_EQ_U64(ck.outstanding, 0);
    }
    mload_map_close(m);
}

/* ---- randomised acceptance (issue 10) ----
   Fixed seeds; sequences of acquire, release, group onload, group offload,
   pin and unpin over units with mixed tier set-ups, at prefetch depth 0, 1
   and 2, on the simulated device (with and without convert) and the host
   device (with and without convert), each wrapped to check the budget on
   every allocation. After every step: every acquired tensor equals the
   map's direct read rounded through the unit's chain (docs/offload.md
   "Which values a unit has"; the chain is fixed at acquire), the budget
   held, the manager's device bytes are the device's. */

#define FZ_STEPS 150
#define FZ_NDEV 4
static const char *const fz_dev_names[FZ_NDEV] = {"sim+convert", "sim", "host+convert", "host"};

static uint64_t fz_state;
static uint64_t fz_rnd(void) { /* xorshift64 */
    fz_state ^= fz_state << 13;
    fz_state ^= fz_state >> 7;
    fz_state ^= fz_state << 17;
    return fz_state;
}
static uint32_t fz_below(uint32_t n) { return (uint32_t)((fz_rnd() >> 33) % n); }

/* the tier set-ups units pick from */
static mload_tiers fz_tiers(int k) {
    mload_tiers t;
    memset(&t, 0, sizeof t);
    switch (k) {
    case 0: break; /* the defaults: everything on the device, F32 */
    case 1: return mload_tiers_preset(MLOAD_PRESET_DISK_OFFLOAD, 0, MLOAD_DTYPE_BF16);
    case 2: return mload_tiers_preset(MLOAD_PRESET_HOST_OFFLOAD, MLOAD_DTYPE_BF16, MLOAD_DTYPE_F32);
    case 3: return mload_tiers_preset(MLOAD_PRESET_FP8_DEVICE, 0, MLOAD_DTYPE_BF16);
    case 4: /* onload on the device in another dtype than the preparing tier's */
        t.offload.place = MLOAD_PLACE_HOST; t.offload.dtype = MLOAD_DTYPE_F16;
        t.onload.place = MLOAD_PLACE_DEVICE; t.onload.dtype = MLOAD_DTYPE_F32;
        t.preparing.place = MLOAD_PLACE_DEVICE; t.preparing.dtype = MLOAD_DTYPE_F8_E4M3;
        t.computation.dtype = MLOAD_DTYPE_BF16;
        break;
    case 5: /* no prepared copy: every acquire makes a temporary one */
        t.offload.place = MLOAD_PLACE_HOST; t.offload.dtype = MLOAD_DTYPE_BF16;
        t.onload.place = MLOAD_PLACE_HOST; t.onload.dtype = MLOAD_DTYPE_F32;
        t.preparing.place = MLOAD_PLACE_HOST;
        t.computation.dtype = MLOAD_DTYPE_F32;
        break;
    /* set-ups whose onload tier rounds more than the offload tier: values change at a group onload */
    case 6:
        t.offload.place = MLOAD_PLACE_DISK;
        t.onload.place = MLOAD_PLACE_HOST; t.onload.dtype = MLOAD_DTYPE_BF16;
        t.preparing.place = MLOAD_PLACE_DEVICE; t.preparing.dtype = MLOAD_DTYPE_F8_E4M3;
        t.computation.dtype = MLOAD_DTYPE_F32;
        break;
    case 7: /* parked on the device in F32, onloaded there through BF16 */
        t.offload.place = MLOAD_PLACE_DEVICE; t.offload.dtype = MLOAD_DTYPE_F32;
        t.onload.place = MLOAD_PLACE_DEVICE; t.onload.dtype = MLOAD_DTYPE_BF16;
        t.preparing.place = MLOAD_PLACE_DEVICE; t.preparing.dtype = MLOAD_DTYPE_F32;
        t.computation.dtype = MLOAD_DTYPE_F32;
        break;
    case 8: /* parked on the device in F16, onloaded to the host in BF16 */
        t.offload.place = MLOAD_PLACE_DEVICE; t.offload.dtype = MLOAD_DTYPE_F16;
        t.onload.place = MLOAD_PLACE_HOST; t.onload.dtype = MLOAD_DTYPE_BF16;
        t.preparing.place = MLOAD_PLACE_DEVICE; t.preparing.dtype = MLOAD_DTYPE_F32;
        t.computation.dtype = MLOAD_DTYPE_F32;
        break;
    case 9: /* on disk, onloaded to the device through BF16 into an F32 prepared copy */
        t.offload.place = MLOAD_PLACE_DISK;
        t.onload.place = MLOAD_PLACE_DEVICE; t.onload.dtype = MLOAD_DTYPE_BF16;
        t.preparing.place = MLOAD_PLACE_DEVICE; t.preparing.dtype = MLOAD_DTYPE_F32;
        t.computation.dtype = MLOAD_DTYPE_F32;
        break;
    case 10: /* host F32, onloaded to the host in F16, computed in BF16 on an F8_E5M2 prepared copy */
        t.offload.place = MLOAD_PLACE_HOST; t.offload.dtype = MLOAD_DTYPE_F32;
        t.onload.place = MLOAD_PLACE_HOST; t.onload.dtype = MLOAD_DTYPE_F16;
        t.preparing.place = MLOAD_PLACE_DEVICE; t.preparing.dtype = MLOAD_DTYPE_F8_E5M2;
        t.computation.dtype = MLOAD_DTYPE_BF16;
        break;
    case 11: /* the original's disk offload computed in F32: its F8 prepared copy and F32 computation copy */
        return mload_tiers_preset(MLOAD_PRESET_DISK_OFFLOAD, 0, MLOAD_DTYPE_F32);
    case 12: /* host F32, onloaded to the host in BF16, no prepared copy */
        t.offload.place = MLOAD_PLACE_HOST; t.offload.dtype = MLOAD_DTYPE_F32;
        t.onload.place = MLOAD_PLACE_HOST; t.onload.dtype = MLOAD_DTYPE_BF16;
        t.preparing.place = MLOAD_PLACE_HOST;
        t.computation.dtype = MLOAD_DTYPE_F32;
        break;
    case 13: /* host F16, onloaded to disk; a prepared copy wider than the computation copy */
        t.offload.place = MLOAD_PLACE_HOST; t.offload.dtype = MLOAD_DTYPE_F16;
        t.onload.place = MLOAD_PLACE_DISK;
        t.preparing.place = MLOAD_PLACE_DEVICE; t.preparing.dtype = MLOAD_DTYPE_F32;
        t.computation.dtype = MLOAD_DTYPE_BF16;
        break;
    }
    return t;
}
#define FZ_NSETUPS 14

typedef struct fz_run {
    const mload_map *m;
    mload_offload *o;
    checked *ck;
    uint64_t budget;
    unsigned seed;
    int depth, dev, policy, step;
    const char *op;
    int failed;
    int setup[NL];
    int held[NL], onloaded[NL];
    mload_tiers tiers[NL];          /* in force (mload_offload_get_tiers) */
    mload_dtype chain[NL][4];       /* of each held unit, fixed at its acquire */
    const mload_unit_tensor *views[NL];
    mload_unit_tensor copy[NL][2];  /* the views as acquire returned them */
    uint64_t count[NL];
    int nheld, pinned;
} fz_run;

/* a failed check: counted, and reported with what reproduces it */
static void fz_fail(fz_run *r, int unit, const char *fmt, ...) {
    va_list ap;
    th_failed_checks++;
    r->failed = 1;
    fprintf(stderr, "  FAIL random offload: seed %u depth %d device %s policy %s step %d (%s) unit %d (set-up %d, onloaded %d): ", r->seed,
            r->depth, fz_dev_names[r->dev], r->policy ? "lru" : "next-use", r->step, r->op, unit, unit >= 0 ? r->setup[unit] : -1,
            unit >= 0 ? r->onloaded[unit] : -1);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* the documented chain: the offload tier's dtype (not DISK), the onload
   tier's once onloaded (not DISK), the preparing dtype when that tier is on
   the device, the computation dtype (0: the tensor's own, F32 here) */
static void fz_chain(const mload_tiers *t, int onloaded, mload_dtype ch[4]) {
    ch[0] = t->offload.place != MLOAD_PLACE_DISK ? t->offload.dtype : 0;
    ch[1] = onloaded && t->onload.place != MLOAD_PLACE_DISK ? t->onload.dtype : 0;
    ch[2] = t->preparing.place == MLOAD_PLACE_DEVICE ? t->preparing.dtype : 0;
    ch[3] = t->computation.dtype ? t->computation.dtype : MLOAD_DTYPE_F32;
}

/* one held tensor against the map's direct read (as F32) rounded through
   the chain with the map's F8 overflow mode, and against the model's
   generator (expect_chain); 0 after reporting a failure */
static int fz_check_tensor(fz_run *r, int unit, const mload_unit_tensor *ut) {
    float a[R * C], b[R * C * 2], got[R * C];
    mload_dtype cur = MLOAD_DTYPE_F32;
    const mload_dtype *ch = r->chain[unit];
    uint64_t numel = ut->tensor->numel, j;
    mload_f8_overflow ov = mload_map_f8_overflow(r->m);
    int k;
    if (numel > R * C || mload_map_read(r->m, ut->tensor, MLOAD_DTYPE_F32, a, sizeof a, NULL) != MLOAD_OK) {
        fz_fail(r, unit, "tensor %s: direct read failed", ut->tensor->name);
        return 0;
    }
    for (k = 0; k < 4; ++k) {
        if (!ch[k] || ch[k] == cur) continue;
        if (mload_cast(b, ch[k], a, cur, numel, ov, NULL) != MLOAD_OK) { fz_fail(r, unit, "cast to %d failed", (int)ch[k]); return 0; }
        memcpy(a, b, (size_t)(numel * mload_dtype_bits(ch[k]) / 8));
        cur = ch[k];
    }
    if (ut->dtype != cur || ut->nbytes != numel * mload_dtype_bits(cur) / 8) {
        fz_fail(r, unit, "tensor %s: dtype %d, %llu bytes; expected dtype %d", ut->tensor->name, (int)ut->dtype,
                (unsigned long long)ut->nbytes, (int)cur);
        return 0;
    }
    if (memcmp(a, ut->data, (size_t)ut->nbytes) != 0) {
        size_t es = (size_t)(mload_dtype_bits(cur) / 8);
        float want[R * C];
        mload_cast(got, MLOAD_DTYPE_F32, ut->data, cur, numel, ov, NULL);
        mload_cast(want, MLOAD_DTYPE_F32, a, cur, numel, ov, NULL);
        for (j = 0; j < numel; ++j)
            if (memcmp((const unsigned char *)a + j * es, (const unsigned char *)ut->data + j * es, es) != 0) break;
        fz_fail(r, unit, "tensor %s element %llu is %.9g, expected %.9g (chain %d,%d,%d,%d)", ut->tensor->name, (unsigned long long)j,
                (double)got[j], (double)want[j], (int)ch[0], (int)ch[1], (int)ch[2], (int)ch[3]);
        return 0;
    }
    if (!expect_chain(ut, ch, 4)) {
        fz_fail(r, unit, "tensor %s differs from the generator's values through the chain", ut->tensor->name);
        return 0;
    }
    return 1;
}

/* the invariants after every step */
static void fz_check_all(fz_run *r) {
    mload_offload_stats st;
    int u;
    uint64_t k;
    for (u = 0; u < NL && !r->failed; ++u) {
        if (!r->held[u]) continue;
        for (k = 0; k < r->count[u] && !r->failed; ++k) {
            const mload_unit_tensor *ut = &r->views[u][k];
            if (ut->tensor != r->copy[u][k].tensor || ut->data != r->copy[u][k].data || ut->dtype != r->copy[u][k].dtype ||
                ut->nbytes != r->copy[u][k].nbytes)
                fz_fail(r, u, "the tensors acquire returned changed while held");
            else
                fz_check_tensor(r, u, ut);
        }
    }
    if (r->failed) return;
    mload_offload_get_stats(r->o, &st);
    if (r->ck->over) fz_fail(r, -1, "a device allocation went over the budget (peak %llu of %llu)", (unsigned long long)r->ck->peak,
                             (unsigned long long)r->budget);
    else if (r->ck->outstanding > r->budget || st.peak_device_bytes > r->budget)
        fz_fail(r, -1, "device bytes %llu, peak %llu, budget %llu", (unsigned long long)r->ck->outstanding,
                (unsigned long long)st.peak_device_bytes, (unsigned long long)r->budget);
    else if (st.device_bytes != r->ck->outstanding)
        fz_fail(r, -1, "the manager counts %llu device bytes, the device %llu", (unsigned long long)st.device_bytes,
                (unsigned long long)r->ck->outstanding);
}

/* Budget is allowed only when the units that cannot be evicted leave no
   room. Device bytes a unit may hold: its prepared copy (preparing tier on
   the device) and, when acquired, a computation copy (a dtype other than
   the prepared copy's, or none prepared); a held unit whose prepared copy
   could not be kept holds the computation copy alone. */
static mload_dtype fz_dt(mload_dtype dt) { return dt ? dt : MLOAD_DTYPE_F32; }
static uint64_t fz_bytes(mload_dtype dt) { return unit_bytes(fz_dt(dt)); }
static uint64_t fz_prep_bytes(const mload_tiers *t) { return t->preparing.place == MLOAD_PLACE_DEVICE ? fz_bytes(t->preparing.dtype) : 0; }
static uint64_t fz_held_bytes(const mload_tiers *t) {
    uint64_t comp = fz_bytes(t->computation.dtype);
    if (t->preparing.place == MLOAD_PLACE_DEVICE && fz_dt(t->preparing.dtype) == fz_dt(t->computation.dtype)) return comp;
    return fz_prep_bytes(t) + comp;
}
/* the most device bytes that the held units and the pinned one (other than
   `unit`) can keep from eviction */
static uint64_t fz_blocked(const fz_run *r, int unit) {
    uint64_t n = 0;
    int u;
    for (u = 0; u < NL; ++u)
        if (r->held[u]) n += fz_held_bytes(&r->tiers[u]);
    if (r->pinned >= 0 && r->pinned != unit && !r->held[r->pinned]) n += fz_prep_bytes(&r->tiers[r->pinned]);
    return n;
}

static void fz_acquire(fz_run *r, int u, uint64_t *ok, uint64_t *budget_errs) {
    static const mload_unit_tensor sentinel[1];
    const mload_unit_tensor *ut = sentinel; /* acquire must clear it on failure */
    uint64_t n = 99, k;
    mload_error e;
    mload_result res;
    /* the least an acquire needs: the computation copy alone, or beside the prepared copy a pinned unit keeps */
    uint64_t blocked = fz_blocked(r, u), need = r->pinned == u ? fz_held_bytes(&r->tiers[u]) : fz_bytes(r->tiers[u].computation.dtype);
    r->op = "acquire";
    res = mload_offload_acquire(r->o, (uint32_t)u, &ut, &n, &e);
    if (res == MLOAD_ERR_BUDGET) {
        ++*budget_errs;
        if (ut != NULL || n != 0) fz_fail(r, u, "Budget, but tensors %p, count %llu", (const void *)ut, (unsigned long long)n);
        else if (!strstr(e.message, "needed")) fz_fail(r, u, "Budget without the bytes needed: %s", e.message);
        else if (blocked + need <= r->budget)
            fz_fail(r, u, "Budget, though at most %llu bytes are held or pinned and it needs %llu of %llu: %s", (unsigned long long)blocked,
                    (unsigned long long)need, (unsigned long long)r->budget, e.message);
        return;
    }
    if (res != MLOAD_OK) { fz_fail(r, u, "acquire gave %s: %s", mload_result_string(res), e.message); return; }
    ++*ok;
    if (!ut || n != 2) { fz_fail(r, u, "acquire returned %llu tensors", (unsigned long long)n); return; }
    r->held[u] = 1;
    r->nheld++;
    r->views[u] = ut;
    r->count[u] = n;
    for (k = 0; k < n; ++k) {
        char pre[32];
        snprintf(pre, sizeof pre, "l.%d.", u);
        r->copy[u][k] = ut[k];
        if (strncmp(ut[k].tensor->name, pre, strlen(pre)) != 0) fz_fail(r, u, "tensor %s is not the unit's", ut[k].tensor->name);
    }
    fz_chain(&r->tiers[u], r->onloaded[u], r->chain[u]);
}

static void fz_release(fz_run *r, int u) {
    r->op = "release";
    mload_offload_release(r->o, (uint32_t)u);
    r->held[u] = 0;
    r->nheld--;
}

static int fz_pick(fz_run *r, int held) { /* a random unit held (held = 1) or not; -1 when none */
    int cand[NL], n = 0, u;
    for (u = 0; u < NL; ++u)
        if (r->held[u] == held) cand[n++] = u;
    return n ? cand[fz_below((uint32_t)n)] : -1;
}

static void fz_run_one(const mload_map *m, unsigned seed, int depth, int dev, uint64_t *ok, uint64_t *budget_errs) {
    checked ck;
    fz_run r;
    uint32_t units[NL];
    int order[FZ_NSETUPS], i, last = -1, last_released = -1, pin_resident = 0;
    uint64_t run_ok = 0;
    mload_error e;
    memset(&r, 0, sizeof r);
    r.m = m;
    r.ck = &ck;
    r.seed = seed;
    r.depth = depth;
    r.dev = dev;
    r.pinned = -1;
    r.op = "set-up";
    /* each run its own set-ups and sequence */
    fz_state = 0x9E3779B97F4A7C15ull ^ ((uint64_t)seed * 0xD1B54A32D192ED03ull) ^ ((uint64_t)(depth * FZ_NDEV + dev + 1) << 40);
    r.policy = (int)fz_below(2);
    /* 2.25 or 2.5 F32 units: two held units and a pinned one do not fit, and an F8-prepared F32-computed
       unit beside a held F32 unit needs its computation copy alone at 2.25 */
    r.budget = unit_bytes(MLOAD_DTYPE_F32) * (9 + fz_below(2)) / 4;
    r.o = make_mgr((mload_map *)m, make_checked_on(&ck, r.budget, dev % 2 == 0, dev < 2 ? 200u << 20 : 0, dev >= 2), r.budget,
                   (uint32_t)(r.policy ? MLOAD_EVICT_LRU : MLOAD_EVICT_NEXT_USE), (uint32_t)depth);
    if (!r.o) { fz_fail(&r, -1, "no manager"); mload_device_destroy(&ck.inner); return; }
    /* a random choice of set-ups, all different, one per unit */
    for (i = 0; i < FZ_NSETUPS; ++i) order[i] = i;
    for (i = FZ_NSETUPS - 1; i > 0; --i) {
        int j = (int)fz_below((uint32_t)i + 1), x = order[i];
        order[i] = order[j];
        order[j] = x;
    }
    for (i = 0; i < NL; ++i) {
        char pre[32], name[32];
        const char *p = pre;
        mload_tiers t = fz_tiers(order[i]);
        r.setup[i] = order[i];
        snprintf(pre, sizeof pre, "l.%d.", i);
        snprintf(name, sizeof name, "layer%d", i);
        if (mload_offload_add_unit(r.o, name, &p, 1, &t, &units[i], &e) != MLOAD_OK || units[i] != (uint32_t)i)
            fz_fail(&r, i, "add_unit: %s", e.message);
        else if (mload_offload_get_tiers(r.o, units[i], &r.tiers[i], &e) != MLOAD_OK)
            fz_fail(&r, i, "get_tiers: %s", e.message);
    }
    for (r.step = 0; r.step < FZ_STEPS && !r.failed; ++r.step) {
        uint32_t op = fz_below(100);
        int u, grouped = -1;
        if (op < 40 && r.nheld >= 2) op = 40; /* at most two held: release instead */
        if (op >= 40 && op < 65 && r.nheld == 0) op = 0;
        if (op < 40) { /* acquire: the next unit of the cycle half the time (prefetch learns it), else any */
            u = last >= 0 && fz_below(2) ? (last + 1) % NL : -1;
            if (u < 0 || r.held[u]) u = fz_pick(&r, 0);
            fz_acquire(&r, u, &run_ok, budget_errs);
            last = u;
        } else if (op < 65) {
            last_released = fz_pick(&r, 1);
            fz_release(&r, last_released);
        } else if (op < 89) { /* a group move of one unit not held */
            mload_result res;
            u = last_released >= 0 && !r.held[last_released] && fz_below(2) ? last_released : fz_pick(&r, 0); /* often one with a device copy */
            grouped = u;
            if (op < 77) {
                /* only an onload tier on the device needs device bytes: the prepared copy */
                int on_device = r.tiers[u].onload.place == MLOAD_PLACE_DEVICE;
                uint64_t blocked = fz_blocked(&r, u), need = fz_prep_bytes(&r.tiers[u]);
                r.op = "group onload";
                res = mload_offload_group_onload(r.o, &units[u], 1, &e);
                r.onloaded[u] = 1; /* with Budget too: only its device copy is missing */
                if (res == MLOAD_ERR_BUDGET && (!on_device || blocked + need <= r.budget))
                    fz_fail(&r, u, "onload: Budget, though its onload tier is %s, at most %llu bytes are held or pinned and it needs %llu of %llu: %s",
                            on_device ? "on the device" : "not on the device", (unsigned long long)blocked, (unsigned long long)need,
                            (unsigned long long)r.budget, e.message);
                else if (res != MLOAD_OK && res != MLOAD_ERR_BUDGET) fz_fail(&r, u, "onload gave %s: %s", mload_result_string(res), e.message);
            } else {
                r.op = "group offload";
                res = mload_offload_group_offload(r.o, &units[u], 1, &e);
                r.onloaded[u] = 0;
                if (res != MLOAD_OK) fz_fail(&r, u, "offload gave %s: %s", mload_result_string(res), e.message);
            }
        } else if (r.pinned >= 0) {
            r.op = "unpin";
            u = r.pinned;
            if (mload_offload_unpin(r.o, units[u], &e) != MLOAD_OK) fz_fail(&r, u, "unpin: %s", e.message);
            r.pinned = -1;
        } else {
            r.op = "pin";
            u = (int)fz_below(NL);
            if (mload_offload_pin(r.o, units[u], &e) != MLOAD_OK) fz_fail(&r, u, "pin: %s", e.message);
            r.pinned = u;
        }
        if (!r.failed) fz_check_all(&r);
        /* a pinned unit's prepared copy stays until a group move of that unit */
        if (!r.failed && r.pinned >= 0) {
            int res = mload_offload_is_resident(r.o, units[r.pinned]);
            if (pin_resident && !res && grouped != r.pinned) fz_fail(&r, r.pinned, "the pinned unit's prepared copy was evicted");
            pin_resident = res;
        } else {
            pin_resident = 0;
        }
    }
    /* a last pass over every unit, each alone */
    r.op = "final pass";
    for (i = 0; i < NL; ++i)
        if (r.held[i]) fz_release(&r, i);
    for (i = 0; i < NL && !r.failed; ++i) {
        fz_acquire(&r, i, &run_ok, budget_errs);
        if (!r.failed) fz_check_all(&r);
        if (r.held[i]) fz_release(&r, i);
    }
    *ok += run_ok;
    if (!r.failed && run_ok < FZ_STEPS / 5) fz_fail(&r, -1, "only %llu acquires succeeded", (unsigned long long)run_ok);
    if (!r.failed && ck.peak > r.budget) fz_fail(&r, -1, "device peak %llu over the budget", (unsigned long long)ck.peak);
    destroy_mgr(r.o, &ck);
    if (ck.outstanding != 0) fz_fail(&r, -1, "%llu device bytes left after destroy", (unsigned long long)ck.outstanding);
}

static void test_offload_random(void) {
    static const unsigned seeds[] = {1u, 2u, 3u, 0xC0FFEEu, 20240611u, 0xBADF00Du};
    mload_map *m = open_model();
    uint64_t ok = 0, budget_errs = 0;
    size_t s;
    int depth, dev;
    if (!m) { CHECK(0); return; }
    for (s = 0; s < sizeof seeds / sizeof seeds[0]; ++s)
        for (depth = 0; depth <= 2; ++depth)
            for (dev = 0; dev < FZ_NDEV; ++dev) fz_run_one(m, seeds[s], depth, dev, &ok, &budget_errs);
    /* not vacuous: most acquires succeed, and the budget is tight enough to refuse some */
    CHECK(ok >= sizeof seeds / sizeof seeds[0] * 3 * FZ_NDEV * (FZ_STEPS / 5));
    CHECK(budget_errs > 0);
    mload_map_close(m);
}

/* The original's vram_limit (issue 10 item 8): device_limit bounds the
   device's whole use (every user's allocations, by mem_info), re-measured
   at each promotion; over it a unit runs on a temporary copy (acquire still
   succeeds, with the same values), under it again once the other user
   frees its memory. Refused without mem_info. */
static void test_offload_device_limit(void) {
    mload_map *m = open_model();
    mload_device sim, nomem;
    mload_offload_desc d;
    mload_offload *o = NULL;
    uint32_t units[NL];
    const mload_unit_tensor *ut;
    uint64_t n, k, ub = unit_bytes(MLOAD_DTYPE_F32);
    void *other = NULL;
    mload_error e;
    mload_dtype chain[1] = {MLOAD_DTYPE_F32};
    int i;
    if (!m) return;
    CHECK_RES(mload_device_create_sim(1u << 24, 0, &sim, &e), MLOAD_OK);
    memset(&d, 0, sizeof d);
    d.map = m;
    d.device = sim;
    d.device_budget = 1u << 22;      /* the hard cap: far above */
    d.device_limit = 3 * ub + ub / 2; /* three prepared copies, and the other user's */
    CHECK_RES(mload_offload_create(&d, &o, &e), MLOAD_OK);
    if (!o) { mload_device_destroy(&sim); mload_map_close(m); return; }
    add_layers(o, NULL, units);
    /* another user holds two units' worth: one promotion fits */
    CHECK_RES(sim.alloc(sim.user, 2 * ub, 64, &other), MLOAD_OK);
    for (i = 0; i < 3; ++i) {
        CHECK_RES(mload_offload_acquire(o, units[i], &ut, &n, &e), MLOAD_OK);
        for (k = 0; ut && k < n; ++k) CHECK(expect_chain(&ut[k], chain, 1));
        mload_offload_release(o, units[i]);
    }
    CHECK(mload_offload_is_resident(o, units[0]) && !mload_offload_is_resident(o, units[1]) && !mload_offload_is_resident(o, units[2]));
    /* re-measured at the next promotion: with the memory back, units are promoted again */
    sim.free(sim.user, other, 2 * ub);
    for (i = 1; i < 3; ++i) {
        CHECK_RES(mload_offload_acquire(o, units[i], &ut, &n, &e), MLOAD_OK);
        mload_offload_release(o, units[i]);
        CHECK(mload_offload_is_resident(o, units[i]));
    }
    mload_offload_destroy(o);
    /* without mem_info the limit cannot be measured */
    nomem = sim;
    nomem.mem_info = NULL;
    d.device = nomem;
    CHECK_RES(mload_offload_create(&d, &o, &e), MLOAD_ERR_INVALID_ARGUMENT);
    CHECK(o == NULL && strstr(e.message, "mem_info") != NULL);
    mload_device_destroy(&sim);
    mload_map_close(m);
}

/* acquires and releases units[0 .. n) in turn; how many stay resident */
static int pass_of(mload_offload *o, const uint32_t *units, int n) {
    const mload_unit_tensor *ut;
    uint64_t cnt;
    mload_error e;
    int i, resident = 0;
    for (i = 0; i < n; ++i) {
        CHECK_RES(mload_offload_acquire(o, units[i], &ut, &cnt, &e), MLOAD_OK);
        mload_offload_release(o, units[i]);
    }
    for (i = 0; i < n; ++i) resident += mload_offload_is_resident(o, units[i]);
    return resident;
}

/* a budget derived from the device's free memory (device_budget 0) is
   re-measured at each device allocation: memory another user takes shrinks
   it (units are evicted to keep device_reserve free), memory given back
   grows it again */
static void test_offload_budget_follows_free_memory(void) {
    mload_map *m = open_model();
    mload_device sim;
    mload_offload_desc d;
    mload_offload *o = NULL;
    mload_offload_stats st;
    uint32_t units[NL];
    uint64_t ub = unit_bytes(MLOAD_DTYPE_F32), reserve = ub + 100; /* room for a unit: kept free */
    void *other = NULL;
    mload_error e;
    int resident;
    if (!m) return;
    CHECK_RES(mload_device_create_sim(4 * ub + reserve, 0, &sim, &e), MLOAD_OK);
    memset(&d, 0, sizeof d);
    d.map = m;
    d.device = sim;
    d.device_reserve = reserve;
    CHECK_RES(mload_offload_create(&d, &o, &e), MLOAD_OK);
    if (!o) { mload_device_destroy(&sim); mload_map_close(m); return; }
    add_layers(o, NULL, units);
    mload_offload_get_stats(o, &st);
    CHECK_EQ_U64(st.device_budget, 4 * ub);
    /* another user takes two units' worth: two prepared copies fit */
    CHECK_RES(sim.alloc(sim.user, 2 * ub, 64, &other), MLOAD_OK);
    resident = pass_of(o, units, 4);
    mload_offload_get_stats(o, &st);
    CHECK(resident == 2 && st.evictions == 2);
    CHECK_EQ_U64(st.device_budget, 2 * ub);
    CHECK(st.peak_device_bytes <= 2 * ub);
    /* given back: four fit again, nothing more is evicted */
    sim.free(sim.user, other, 2 * ub);
    mload_offload_reset_stats(o);
    resident = pass_of(o, units, 4);
    mload_offload_get_stats(o, &st);
    CHECK(resident == 4 && st.evictions == 0);
    CHECK_EQ_U64(st.device_budget, 4 * ub);
    mload_offload_destroy(o);
    mload_device_destroy(&sim);
    mload_map_close(m);
}

/* ---- mload_map_load_device ---- */

static int g_dl_fail_after; /* uploads after this many fail (-1: none) */
static int g_dl_uploads;
static mload_result dl_up(void *u, void *d, const void *s2, uint64_t n, uint64_t *f) {
    checked *c = (checked *)u;
    if (g_dl_fail_after >= 0 && __atomic_fetch_add(&g_dl_uploads, 1, __ATOMIC_RELAXED) >= g_dl_fail_after) return MLOAD_ERR_DEVICE;
    return c->inner.upload(c->inner.user, d, s2, n, f);
}
static int dl_cancel_at; /* the progress callback cancels at this call (0: never) */
static int dl_progress(void *user, uint64_t done, uint64_t total) {
    int *calls = (int *)user;
    (void)done;
    (void)total;
    return ++*calls == dl_cancel_at;
}

/* every tensor (as stored, as BF16, and a range as F8_E4M3) into device
   memory, through a slow simulated device (copies lag behind the reads, so a
   staging buffer refilled before its copy ran would show) and the host one;
   small chunks reuse each staging buffer many times; then the bytes read
   back from the device against mload_map_read; a failing upload, a
   cancellation and bad arguments; every device byte freed */
static void test_device_load(void) {
    static const mload_dtype as[] = {MLOAD_DTYPE_INVALID, MLOAD_DTYPE_BF16, MLOAD_DTYPE_F8_E4M3};
    mload_map *m = open_model();
    uint64_t nt, i, k;
    int host, threads, round;
    mload_error e;
    if (!m) return;
    nt = mload_map_count(m);
    for (host = 0; host < 2; ++host)
        for (threads = 1; threads <= 2; ++threads)
            for (round = 0; round < 4; ++round) { /* 0: all good, 1: an upload fails, 2: cancelled, 3: DIRECT asked (memory source: plain) */
                checked ck;
                mload_device dev = make_checked_on(&ck, 0, 1, 2000000, host);
                mload_load_item items[64];
                mload_load_opts o;
                mload_result r;
                int calls = 0;
                memset(items, 0, sizeof items);
                for (i = 0; i < nt && i < 64; ++i) {
                    const mload_tensor *t = mload_map_tensor(m, i);
                    items[i].tensor = t;
                    items[i].as = as[i % 3];
                    if (i % 3 == 2) { items[i].first = 3; items[i].count = t->numel - 5; }
                    items[i].dst_size = (items[i].count ? items[i].count : t->numel) * mload_dtype_bits(items[i].as ? items[i].as : t->dtype) / 8u;
                    CHECK_RES(dev.alloc(dev.user, items[i].dst_size, 64, &items[i].dst), MLOAD_OK);
                }
                memset(&o, 0, sizeof o);
                o.threads = (uint32_t)threads;
                o.chunk_bytes = 200; /* 50 F32 elements: many chunks per tensor */
                o.io = round == 3 ? MLOAD_IO_DIRECT : MLOAD_IO_DEFAULT;
                o.progress = dl_progress;
                o.progress_user = &calls;
                g_dl_fail_after = round == 1 ? 7 : -1;
                g_dl_uploads = 0;
                dl_cancel_at = round == 2 ? 5 : 0;
                dev.upload = dl_up;
                r = mload_map_load_device(m, items, nt, &dev, &o, &e);
                if (round == 1) {
                    CHECK_RES(r, MLOAD_ERR_DEVICE);
                    CHECK(strstr(e.message, "copy") != NULL && e.tensor[0] != 0);
                } else if (round == 2) {
                    CHECK_RES(r, MLOAD_ERR_CANCELLED);
                } else {
                    CHECK_RES(r, MLOAD_OK);
                    CHECK(calls > (int)nt); /* a callback per chunk */
                    for (i = 0; i < nt; ++i) {
                        unsigned char want[R * C * 4], got[R * C * 4];
                        uint64_t f = 0, cnt = items[i].count ? items[i].count : items[i].tensor->numel;
                        CHECK_RES(mload_map_read_range(m, items[i].tensor, items[i].first, cnt, items[i].as, want, sizeof want, &e), MLOAD_OK);
                        CHECK_RES(dev.download(dev.user, got, items[i].dst, items[i].dst_size, &f), MLOAD_OK);
                        CHECK_RES(dev.wait(dev.user, f), MLOAD_OK);
                        CHECK(memcmp(want, got, (size_t)items[i].dst_size) == 0);
                    }
                }
                /* every copy is complete: the buffers go now (ASan sees a late copy) */
                for (i = 0; i < nt; ++i) dev.free(dev.user, items[i].dst, items[i].dst_size);
                CHECK_EQ_U64(ck.outstanding, 0);
                mload_device_destroy(&ck.inner);
            }
    {
        checked ck;
        mload_device dev = make_checked(&ck, 0, 1, 0);
        mload_load_item it;
        memset(&it, 0, sizeof it);
        CHECK_RES(mload_map_load_device(m, &it, 1, NULL, NULL, &e), MLOAD_ERR_INVALID_ARGUMENT);
        dev.upload = NULL;
        CHECK_RES(mload_map_load_device(m, &it, 1, &dev, NULL, &e), MLOAD_ERR_INVALID_ARGUMENT);
        CHECK(strstr(e.message, "upload") != NULL);
        dev.upload = ck_up;
        CHECK_RES(mload_map_load_device(m, &it, 1, &dev, NULL, &e), MLOAD_ERR_INVALID_ARGUMENT); /* no tensor */
        for (k = 0; k < 1; ++k) CHECK_RES(mload_map_load_device(m, NULL, 0, &dev, NULL, &e), MLOAD_OK); /* nothing to do */
        mload_device_destroy(&ck.inner);
    }
    mload_map_close(m);
}

/* ---- the members added to mload_device in 0.3 ---- */

/* convert_async narrows on the device with the map's F8 mode (convert alone
   could not: the host did it); host copies and staging come from host_alloc
   and go back to host_free; a device failure's detail reaches the message */
static void test_device_v2_members(void) {
    const unsigned char want[4] = {0x7F, 0xFF, 0x3C, 0x40}; /* F8_E4M3, not saturating: +-NaN for 1000 */
    tbuf img = nonsat_image();
    int async;
    for (async = 0; async < 2; ++async) {
        mload_map *m = open_nonsat(&img);
        mload_offload *o = NULL;
        mload_offload_stats st;
        mload_tiers t;
        checked v;
        mload_device dev = make_checked(&v, 0, 1, 0);
        const mload_unit_tensor *ut;
        uint64_t n;
        uint32_t u;
        mload_error e;
        const char *pre = "u.";
        if (!m) { mload_device_destroy(&v.inner); continue; }
        if (!async) dev.convert_async = NULL; /* convert alone: saturating, so the host narrows */
        o = make_mgr_on(m, dev, 0, NULL);
        t = host_then_device(MLOAD_DTYPE_F32, MLOAD_DTYPE_F32, MLOAD_DTYPE_F8_E4M3);
        CHECK_RES(mload_offload_add_unit(o, "u", &pre, 1, &t, &u, &e), MLOAD_OK);
        CHECK_RES(mload_offload_group_offload(o, &u, 1, &e), MLOAD_OK); /* a host copy */
        CHECK(v.host_allocs >= 1);
        CHECK_RES(mload_offload_acquire(o, u, &ut, &n, &e), MLOAD_OK);
        if (ut) {
            unsigned char got[4];
            uint64_t f = 0;
            CHECK(n == 1 && ut[0].dtype == MLOAD_DTYPE_F8_E4M3 && ut[0].nbytes == 4);
            CHECK_RES(dev.download(dev.user, got, ut[0].data, 4, &f), MLOAD_OK);
            CHECK_RES(dev.wait(dev.user, f), MLOAD_OK);
            CHECK(memcmp(got, want, 4) == 0);
        }
        mload_offload_release(o, u);
        mload_offload_get_stats(o, &st);
        if (async) CHECK(v.converts == 1 && st.device_convert > 0); /* on the device, in the map's mode */
        else CHECK(v.converts == 0 && st.device_convert == 0);    /* convert saturates: the host narrowed */
        /* a failing device: its detail in the message */
        CHECK_RES(mload_offload_group_offload(o, &u, 1, &e), MLOAD_OK);
        v.fail_uploads = 1;
        CHECK_RES(mload_offload_acquire(o, u, &ut, &n, &e), MLOAD_ERR_DEVICE);
        CHECK(strstr(e.message, "fakeErrorLaunchFailure: the fake device says no") != NULL);
        {
            mload_load_item it;
            void *buf = NULL;
            int before = v.host_allocs;
            memset(&it, 0, sizeof it);
            it.tensor = mload_map_find(m, "u.w");
            it.dst_size = 16;
            CHECK_RES(dev.alloc(dev.user, 16, 64, &buf), MLOAD_OK);
            it.dst = buf;
            CHECK_RES(mload_map_load_device(m, &it, 1, &dev, NULL, &e), MLOAD_ERR_DEVICE);
            CHECK(strstr(e.message, "u.w") != NULL && strstr(e.message, "fakeErrorLaunchFailure") != NULL);
            v.fail_uploads = 0;
            CHECK_RES(mload_map_load_device(m, &it, 1, &dev, NULL, &e), MLOAD_OK);
            CHECK(v.host_allocs >= before + 4); /* two staging buffers per load, from host_alloc */
            dev.free(dev.user, buf, 16);
        }
        mload_offload_destroy(o);
        CHECK(v.host_allocs == v.host_frees && v.host_bytes == 0);
        mload_device_destroy(&v.inner);
        mload_map_close(m);
    }
    tbuf_free(&img);
}

/* ---- stream order (device record / event_wait / stream_wait) ---- */
typedef struct kjob {
    const unsigned char *data; /* what the "kernel" reads: a unit's tensor on the device */
    size_t n;
    unsigned char want[R * C * 4];
    int ok;
} kjob;
/* a stand-in for a kernel: it checks it reads the unit's values (so its
   copies must have arrived), then takes its time, so that the next
   kernels run late (as on a GPU) */
static void slow_kernel(void *arg) {
    kjob *k = (kjob *)arg;
    struct timespec ts = {0, 15 * 1000000L};
    k->ok = memcmp(k->data, k->want, k->n) == 0;
    nanosleep(&ts, NULL);
}

/* with a stream in the desc, acquire makes the stream wait for the unit's
   copies (slow ones here: the host does not wait) and release records an
   event on it, after which alone the memory the unit used (its prepared
   copy, or its computation copy) is reused: kernels queued on a late
   simulated stream read every unit intact while the manager, on a budget of
   one unit, evicts each unit for the next; also on the host device (events
   pass at once); a stream with a device lacking record is refused */
static void test_offload_stream_order(void) {
    mload_map *m = open_model();
    mload_error e;
    int computed, host;
    if (!m) return;
    for (host = 0; host < 2; ++host)
        for (computed = 0; computed < 2; ++computed) { /* 0: the prepared copy is used; 1: a BF16 computation copy */
            mload_device dev;
            mload_offload *o = NULL;
            mload_tiers t;
            uint32_t units[NL];
            static kjob jobs[NL];
            void *stream;
            mload_dtype cdt = computed ? MLOAD_DTYPE_BF16 : MLOAD_DTYPE_F32;
            uint64_t ev = 0;
            int i, good = 0;
            if (host) mload_device_create_host(&dev, NULL);
            else mload_device_create_sim(1ull << 30, 1000000, &dev, NULL); /* slow copies: acquire returns before they end */
            stream = host ? (void *)&dev : mload_device_sim_stream(&dev); /* any handle for the host device */
            CHECK(stream != NULL);
            o = make_mgr_on(m, dev, unit_bytes(MLOAD_DTYPE_F32) + (computed ? unit_bytes(MLOAD_DTYPE_BF16) : 0), stream); /* one unit */
            if (!o) { mload_device_destroy(&dev); continue; }
            memset(&t, 0, sizeof t);
            t.computation.dtype = cdt;
            add_layers(o, &t, units);
            for (i = 0; i < NL; ++i) {
                const mload_unit_tensor *ut;
                uint64_t n, k;
                CHECK_RES(mload_offload_acquire(o, units[i], &ut, &n, &e), MLOAD_OK);
                for (k = 0; ut && k < n; ++k)
                    if (ut[k].tensor->numel == R * C) { /* the weight: a kernel reads it later */
                        jobs[i].data = (const unsigned char *)ut[k].data;
                        jobs[i].n = (size_t)ut[k].nbytes;
                        jobs[i].ok = -1;
                        CHECK_RES(mload_map_read(m, ut[k].tensor, cdt, jobs[i].want, sizeof jobs[i].want, &e), MLOAD_OK);
                        if (host) slow_kernel(&jobs[i]); /* host work: now */
                        else CHECK_RES(mload_device_sim_launch(&dev, stream, slow_kernel, &jobs[i]), MLOAD_OK);
                    }
                mload_offload_release(o, units[i]);
            }
            CHECK_RES(dev.record(dev.user, stream, &ev), MLOAD_OK);
            CHECK_RES(dev.event_wait(dev.user, ev), MLOAD_OK);
            for (i = 0; i < NL; ++i) good += jobs[i].ok == 1;
            CHECK(good == NL);
            if (good != NL) fprintf(stderr, "  %s device, %s copy: %d of %d kernels read their unit intact\n", host ? "host" : "sim",
                                    computed ? "computation" : "prepared", good, NL);
            mload_offload_destroy(o);
            mload_device_destroy(&dev);
        }
    {   /* an upload from a unit's host copy may still run after acquire returns: a group
           move that drops the host copy right away frees it only after that upload (ASan
           would see the late copy read freed memory) */
        mload_device dev;
        mload_offload *o = NULL;
        mload_tiers t;
        uint32_t units[NL];
        const mload_unit_tensor *ut;
        uint64_t n, ev = 0;
        void *stream;
        mload_device_create_sim(1ull << 30, 100000, &dev, NULL); /* 2 KiB: about 20 ms */
        stream = mload_device_sim_stream(&dev);
        o = make_mgr_on(m, dev, 0, stream);
        t = host_then_device(MLOAD_DTYPE_F32, MLOAD_DTYPE_F32, MLOAD_DTYPE_F32); /* the host copy's dtype: uploaded straight from it */
        t.onload.place = MLOAD_PLACE_DISK;
        if (o) {
            add_layers(o, &t, units);
            CHECK_RES(mload_offload_group_offload(o, units, 1, &e), MLOAD_OK); /* a host copy */
            CHECK_RES(mload_offload_acquire(o, units[0], &ut, &n, &e), MLOAD_OK); /* uploads from it, queued */
            mload_offload_release(o, units[0]);
            CHECK_RES(mload_offload_group_onload(o, units, 1, &e), MLOAD_OK);   /* onload tier DISK: the host copy goes */
            CHECK_RES(dev.record(dev.user, stream, &ev), MLOAD_OK);
            CHECK_RES(dev.event_wait(dev.user, ev), MLOAD_OK);
            mload_offload_destroy(o);
        }
        mload_device_destroy(&dev);
    }
    {   /* a device that refuses memory says why (the simulated one: its sizes) */
        mload_device dev;
        mload_offload *o = NULL;
        uint32_t units[NL];
        const mload_unit_tensor *ut;
        uint64_t n;
        mload_device_create_sim(1000, 0, &dev, NULL);
        o = make_mgr(m, dev, 1u << 20, 0, 0);
        if (o) {
            add_layers(o, NULL, units);
            CHECK_RES(mload_offload_acquire(o, units[0], &ut, &n, &e), MLOAD_ERR_DEVICE);
            CHECK(strstr(e.message, "refused") != NULL && strstr(e.message, "sim: ") != NULL && strstr(e.message, "of 1000 free") != NULL);
            mload_offload_destroy(o);
        }
        mload_device_destroy(&dev);
    }
    {   /* a stream needs record, event_wait and stream_wait */
        mload_device dev;
        mload_offload_desc d;
        mload_offload *o = NULL;
        mload_device_create_sim(1u << 20, 0, &dev, NULL);
        memset(&d, 0, sizeof d);
        d.map = m;
        d.device = dev;
        d.stream = mload_device_sim_stream(&dev);
        d.device.record = NULL;
        CHECK_RES(mload_offload_create(&d, &o, &e), MLOAD_ERR_INVALID_ARGUMENT);
        CHECK(o == NULL && strstr(e.message, "record") != NULL);
        CHECK(mload_device_sim_stream(&d.device) == NULL); /* not a simulated device's table any more */
        mload_device_destroy(&dev);
    }
    mload_map_close(m);
}

void area_offload(void) {
    build_model();
    RUN(test_offload_defaults);
    RUN(test_offload_tier_fidelity);
    RUN(test_offload_nonsat_everywhere);
    RUN(test_offload_values_independent_of_history);
    RUN(test_offload_schedule);
    RUN(test_offload_temp_fallback);
    RUN(test_offload_device_limit);
    RUN(test_offload_budget_follows_free_memory);
    RUN(test_device_load);
    RUN(test_device_v2_members);
    RUN(test_offload_stream_order);
    RUN(test_offload_tier_combinations);
    RUN(test_offload_presets);
    RUN(test_offload_hard_cap);
    RUN(test_offload_eviction);
    RUN(test_offload_eviction_permuted);
    RUN(test_offload_prefetch);
    RUN(test_offload_budget_errors);
    RUN(test_offload_group_and_stats);
    RUN(test_offload_regressions);
    RUN(test_offload_random);
    tbuf_free(&g_model);
}
