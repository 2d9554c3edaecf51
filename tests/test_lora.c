/* LoRA adapters merged on read: the fixtures of tests/lora (made by
   tests/lora/make_fixtures.py with numpy) against numpy's merged weights,
   for the PEFT, kohya and old diffusers layouts, ranks 1, 4 and 64, alpha
   stored, given and absent, linear and convolution weights, two adapters at
   once; every read path; the errors. */
#include "harness.h"
#include <math.h>
#include <stdlib.h>
#include <unistd.h>

#define LORA_DIR "tests/lora/"

static mload_map *open_with(const mload_lora *l, uint64_t n, mload_error *e) {
    static const char *base = LORA_DIR "base.safetensors";
    mload_map_desc d;
    mload_map *m = NULL;
    memset(&d, 0, sizeof d);
    d.paths = &base;
    d.path_count = 1;
    d.loras = l;
    d.lora_count = n;
    if (mload_map_open(&d, &m, e) != MLOAD_OK) return NULL;
    return m;
}

static mload_map *open_path(const char *p) {
    mload_map_desc d;
    mload_map *m = NULL;
    mload_error e;
    memset(&d, 0, sizeof d);
    d.paths = &p;
    d.path_count = 1;
    if (mload_map_open(&d, &m, &e) != MLOAD_OK) fprintf(stderr, "  cannot open %s: %s\n", p, e.message);
    return m;
}

static float *read_f32(const mload_map *m, const mload_tensor *t) {
    float *p = (float *)calloc((size_t)t->numel + 1, 4);
    mload_error e;
    if (mload_map_read(m, t, MLOAD_DTYPE_F32, p, t->numel * 4, &e) != MLOAD_OK) {
        fprintf(stderr, "  read %s: %s\n", t->name, e.message);
        free(p);
        return NULL;
    }
    return p;
}

/* the merged map against numpy's reference ref_CASE.safetensors */
static void check_case(const char *name, const mload_lora *l, uint64_t nl) {
    char refpath[256];
    mload_error e;
    mload_map *m = open_with(l, nl, &e), *plain = open_with(NULL, 0, &e), *ref;
    uint64_t i, merged = 0;
    snprintf(refpath, sizeof refpath, LORA_DIR "ref_%s.safetensors", name);
    ref = open_path(refpath);
    if (!m) fprintf(stderr, "  %s: %s\n", name, e.message);
    CHECK(m && plain && ref);
    if (!m || !plain || !ref) goto done;
    for (i = 0; i < mload_map_count(m); ++i) {
        const mload_tensor *t = mload_map_tensor(m, i), *want = mload_map_find(ref, t->name), *p = mload_map_find(plain, t->name);
        char nm[160];
        float *got, *base;
        CHECK(p != NULL);
        if (!p) continue;
        got = read_f32(m, t);
        base = read_f32(plain, p);
        CHECK(got && base);
        if (want && got) { /* merged: within numpy's F32 rounding, BF16 as numpy rounds it */
            const mload_tensor *bound_t, *bf_t;
            float *w = read_f32(ref, want), *bound;
            uint16_t *bf = (uint16_t *)calloc((size_t)t->numel + 1, 2), *wbf = (uint16_t *)calloc((size_t)t->numel + 1, 2);
            uint64_t k, bad = 0, badbf = 0, first = t->numel / 3, count = t->numel / 2;
            float *part = (float *)calloc((size_t)count + 1, 4), *bulk = (float *)calloc((size_t)t->numel + 1, 4);
            mload_load_item it[2];
            merged++;
            snprintf(nm, sizeof nm, "%s.bound", t->name);
            bound_t = mload_map_find(ref, nm);
            snprintf(nm, sizeof nm, "%s.bf16", t->name);
            bf_t = mload_map_find(ref, nm);
            bound = bound_t ? read_f32(ref, bound_t) : NULL;
            CHECK(w && bound && bf_t && !mload_map_is_direct(m, t));
            if (w && bound && bf_t) {
                for (k = 0; k < t->numel; ++k)
                    if (fabs((double)got[k] - (double)w[k]) > 64.0 * ldexp(1.0, -24) * (double)bound[k]) bad++;
                CHECK_RES(mload_map_read(m, t, MLOAD_DTYPE_BF16, bf, t->numel * 2, &e), MLOAD_OK);
                CHECK_RES(mload_map_read(ref, bf_t, MLOAD_DTYPE_INVALID, wbf, t->numel * 2, &e), MLOAD_OK);
                for (k = 0; k < t->numel; ++k) /* equal, or the neighbour when numpy's sum sits on a rounding edge */
                    if (bf[k] != wbf[k] && (bf[k] + 1 != wbf[k] && wbf[k] + 1 != bf[k])) badbf++;
                if (bad || badbf) fprintf(stderr, "  %s %s: %llu F32 and %llu BF16 values off\n", name, t->name,
                                          (unsigned long long)bad, (unsigned long long)badbf);
                CHECK(bad == 0 && badbf == 0);
                for (k = 0; k < t->numel && memcmp(got, base, (size_t)t->numel * 4) != 0; ++k) {}
                CHECK(memcmp(got, base, (size_t)t->numel * 4) != 0); /* the adapter changed something */
            }
            { /* the portable loops give the SIMD kernel's bits */
                mload_simd was = mload_cast_simd();
                float *again;
                mload_cast_set_simd(MLOAD_SIMD_PORTABLE);
                again = read_f32(m, t);
                mload_cast_set_simd(was);
                CHECK(again && memcmp(again, got, (size_t)t->numel * 4) == 0);
                free(again);
            }
            /* a range, rows and a bulk load in two pieces: the whole read's values */
            CHECK_RES(mload_map_read_range(m, t, first, count, MLOAD_DTYPE_F32, part, count * 4, &e), MLOAD_OK);
            CHECK(memcmp(part, got + first, (size_t)count * 4) == 0);
            CHECK_RES(mload_map_read_rows(m, t, 1, 2, MLOAD_DTYPE_F32, part, count * 4, &e), MLOAD_OK);
            CHECK(memcmp(part, got + t->numel / t->shape[0], (size_t)(2 * t->numel / t->shape[0]) * 4) == 0);
            memset(it, 0, sizeof it);
            it[0].tensor = it[1].tensor = t;
            it[0].as = it[1].as = MLOAD_DTYPE_F32;
            it[0].dst = bulk;
            it[0].dst_size = first * 4;
            it[0].count = first;
            it[1].dst = bulk + first;
            it[1].dst_size = (t->numel - first) * 4;
            it[1].first = first;
            it[1].count = t->numel - first;
            CHECK_RES(mload_map_load(m, it, 2, NULL, &e), MLOAD_OK);
            CHECK(memcmp(bulk, got, (size_t)t->numel * 4) == 0);
            free(w);
            free(bound);
            free(bf);
            free(wbf);
            free(part);
            free(bulk);
        } else if (got && base) { /* untouched: the base, still direct */
            CHECK(memcmp(got, base, (size_t)t->numel * 4) == 0);
            CHECK(mload_map_is_direct(m, t) == mload_map_is_direct(plain, p));
        }
        free(got);
        free(base);
    }
    CHECK_EQ_U64(merged, mload_map_count(ref) / 3);
done:
    mload_map_close(m);
    mload_map_close(plain);
    mload_map_close(ref);
}

static mload_lora lora(const char *file, double scale, double alpha) {
    static char paths[8][128];
    static int next;
    mload_lora l;
    char *p = paths[next++ % 8];
    memset(&l, 0, sizeof l);
    snprintf(p, 128, LORA_DIR "%s.safetensors", file);
    l.path = p;
    l.scale = scale;
    l.alpha = alpha;
    return l;
}

static void t_layouts_and_ranks(void) {
    mload_rules *rules = NULL;
    mload_converter c;
    mload_error e;
    mload_lora l[2];
    const char *text = "strip-prefix base_model.model.\n";
    CHECK_RES(mload_rules_create(text, strlen(text), NULL, &rules, &e), MLOAD_OK);
    memset(&c, 0, sizeof c);
    c.rules = mload_rules_list(rules, &c.rule_count);
    l[0] = lora("peft_r1", 1.0, 0.0); /* PEFT, rank 1, alpha absent (= rank), names through rules */
    l[0].converter = &c;
    check_case("peft_r1", l, 1);
    l[0] = lora("peft_r1", 0.5, 8.0); /* alpha from the caller */
    l[0].converter = &c;
    check_case("peft_r1_alpha", l, 1);
    mload_rules_destroy(rules);
    l[0] = lora("peft_r4", 1.0, 0.0); /* rank 4, into F32 and BF16 weights */
    check_case("peft_r4", l, 1);
    l[0] = lora("peft_r64", 2.0, 16.0);
    check_case("peft_r64", l, 1);
    l[0] = lora("kohya_r4", 1.0, 0.0); /* kohya: alpha stored (and absent), linear, conv 3x3 and 1x1 */
    check_case("kohya_r4", l, 1);
    l[0] = lora("kohya_r64", 0.75, 0.0); /* lora_te_, an underscore inside a base name */
    check_case("kohya_r64", l, 1);
    l[0] = lora("diffusers_r4", 1.0, 0.0);
    check_case("diffusers_r4", l, 1);
    l[0] = lora("peft_r4", 0.5, 0.0); /* two adapters at once */
    l[1] = lora("kohya_r4", 1.5, 0.0);
    check_case("two", l, 2);
}

static void t_errors(void) {
    mload_error e;
    mload_lora l = lora("bad_shape", 1.0, 0.0);
    mload_map *m;
    mload_lora_info info;
    CHECK(open_with(&l, 1, &e) == NULL);
    CHECK_EQ_U64(e.code, MLOAD_ERR_SHAPE_MISMATCH);
    CHECK(strstr(e.message, "lin.lora_A.weight") && strstr(e.message, "lin.weight"));
    l = lora("bad_rank", 1.0, 0.0);
    CHECK(open_with(&l, 1, &e) == NULL);
    CHECK_EQ_U64(e.code, MLOAD_ERR_SHAPE_MISMATCH);
    CHECK(strstr(e.message, "lin.lora_A.weight") && strstr(e.message, "lin.lora_B.weight"));
    l = lora("nomatch", 1.0, 0.0);
    CHECK(open_with(&l, 1, &e) == NULL);
    CHECK_EQ_U64(e.code, MLOAD_ERR_NOT_FOUND);
    CHECK(strstr(e.message, "nothing.lora_A.weight") != NULL);
    l.flags = MLOAD_LORA_LENIENT; /* the same adapter, reported instead */
    m = open_with(&l, 1, &e);
    CHECK(m != NULL);
    if (m) {
        CHECK_RES(mload_map_lora_info(m, 0, &info), MLOAD_OK);
        CHECK_EQ_U64(info.pairs, 1);
        CHECK_EQ_U64(info.unmatched, 1);
        CHECK(info.first_unmatched && strcmp(info.first_unmatched, "nothing.lora_A.weight") == 0);
        CHECK(!mload_map_is_direct(m, mload_map_find(m, "lin.weight")));
        CHECK(mload_map_is_direct(m, mload_map_find(m, "conv.weight")));
        CHECK_RES(mload_map_lora_info(m, 1, &info), MLOAD_ERR_INVALID_ARGUMENT);
        mload_map_close(m);
    }
    l = lora("bad_shape", 1.0, 0.0); /* lenient: shapes that do not fit are reported too */
    l.flags = MLOAD_LORA_LENIENT;
    m = open_with(&l, 1, &e);
    CHECK(m != NULL);
    if (m) {
        CHECK_RES(mload_map_lora_info(m, 0, &info), MLOAD_OK);
        CHECK(info.pairs == 0 && info.unmatched == 1);
        mload_map_close(m);
    }
    l = lora("missing_file", 1.0, 0.0);
    CHECK(open_with(&l, 1, &e) == NULL);
    CHECK_EQ_U64(e.code, MLOAD_ERR_CANNOT_OPEN);
}

/* the writer makes a merged checkpoint that reads like the merged map */
static void t_write_merged(void) {
    mload_error e;
    mload_lora l[2];
    mload_map *m, *w;
    char out[256];
    uint64_t i, n;
    l[0] = lora("peft_r4", 0.5, 0.0);
    l[1] = lora("kohya_r4", 1.5, 0.0);
    m = open_with(l, 2, &e);
    CHECK(m != NULL);
    if (!m) return;
    n = mload_map_count(m);
    CHECK_RES(write_map_copy(m, "lora", out, sizeof out, &e), MLOAD_OK);
    w = open_path(out);
    CHECK(w != NULL);
    for (i = 0; w && i < n; ++i) {
        const mload_tensor *a = mload_map_tensor(m, i), *b = mload_map_find(w, a->name);
        float *x = read_f32(m, a), *y = b ? read_f32(w, b) : NULL;
        CHECK(b && b->dtype == a->dtype && x && y);
        if (x && y && a->dtype == MLOAD_DTYPE_F32) CHECK(memcmp(x, y, (size_t)a->numel * 4) == 0);
        free(x);
        free(y);
    }
    mload_map_close(w);
    mload_map_close(m);
    remove(out);
}

#if !defined(MODELLOAD_NO_OFFLOAD)
/* an offload unit over a map with an adapter holds the merged weights */
static void t_offload_merged(void) {
    static const char *const names[] = {"lin.weight", "conv.weight", "lin_bf16.weight"};
    mload_error e;
    mload_lora l = lora("kohya_r4", 1.0, 0.0);
    mload_map *m = open_with(&l, 1, &e);
    CHECK(m != NULL);
    if (m) CHECK_EQ_U64(host_unit_mismatches(m, names, 3, m), 0);
    mload_map_close(m);
}
#endif

void area_lora(void) {
#if !defined(MODELLOAD_NO_OFFLOAD)
    RUN(t_offload_merged);
#endif
    RUN(t_layouts_and_ranks);
    RUN(t_errors);
    RUN(t_write_merged);
}
