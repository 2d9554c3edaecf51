/* Interop ground truth: files written by the official safetensors library
   (../shared/fixtures/official). Skipped, visibly, when absent. */
#include "harness.h"
#include <stdlib.h>
#include <math.h>

static mload_file *open_fixture(const char *rel) {
    char path[512];
    mload_file_desc d;
    mload_file *f = NULL;
    mload_error e;
    const char *dir = fixtures_dir();
    if (!dir) return NULL;
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    memset(&d, 0, sizeof d);
    d.path = path;
    if (mload_file_open(&d, &f, &e) != MLOAD_OK) {
        th_failed_checks++;
        fprintf(stderr, "  FAIL open %s: %s: %s\n", path, mload_result_string(e.code), e.message);
        return NULL;
    }
    return f;
}

/* independent decoder: IEEE half bits -> double */
static double half_to_double(uint16_t h) {
    int ex = (h >> 10) & 0x1F, man = h & 0x3FF;
    double v;
    if (ex == 0) v = ldexp((double)man, -24);
    else if (ex == 31) v = man ? NAN : INFINITY;
    else v = ldexp((double)(man | 0x400), ex - 25);
    return (h & 0x8000) ? -v : v;
}

static uint64_t le(const unsigned char *p, int n) {
    uint64_t v = 0;
    while (n--) v = (v << 8) | p[n];
    return v;
}

/* value i of an arange tensor, decoded from its bytes, as a double */
static double element(const mload_tensor *t, const unsigned char *p, uint64_t i) {
    switch (t->dtype) {
    case MLOAD_DTYPE_BOOL: case MLOAD_DTYPE_U8: return (double)p[i];
    case MLOAD_DTYPE_I8: return (double)(int8_t)p[i];
    case MLOAD_DTYPE_I16: return (double)(int16_t)le(p + 2 * i, 2);
    case MLOAD_DTYPE_I32: return (double)(int32_t)le(p + 4 * i, 4);
    case MLOAD_DTYPE_I64: return (double)(int64_t)le(p + 8 * i, 8);
    case MLOAD_DTYPE_F16: return half_to_double((uint16_t)le(p + 2 * i, 2));
    case MLOAD_DTYPE_F32: { uint32_t u = (uint32_t)le(p + 4 * i, 4); float f; memcpy(&f, &u, 4); return f; }
    case MLOAD_DTYPE_F64: { uint64_t u = le(p + 8 * i, 8); double d; memcpy(&d, &u, 8); return d; }
    default: return -1;
    }
}

static void test_fixture_numpy_values(void) {
    static const char *dt[] = {"float16", "float32", "float64", "bool", "uint8", "int8", "int16", "int32", "int64"};
    static const mload_dtype want[] = {MLOAD_DTYPE_F16, MLOAD_DTYPE_F32, MLOAD_DTYPE_F64, MLOAD_DTYPE_BOOL, MLOAD_DTYPE_U8, MLOAD_DTYPE_I8, MLOAD_DTYPE_I16, MLOAD_DTYPE_I32, MLOAD_DTYPE_I64};
    static const char *sh[] = {"3", "35", "357"};
    mload_file *f;
    size_t a, s;
    if (!fixtures_dir()) SKIP("official fixtures absent");
    f = open_fixture("non_sharded/model.numpy.safetensors");
    if (!f) return;
    CHECK_EQ_U64(mload_file_count(f), 27);
    CHECK(!mload_file_has_metadata(f));
    for (a = 0; a < 9; ++a) {
        for (s = 0; s < 3; ++s) {
            char name[32];
            const mload_tensor *t;
            unsigned char *buf;
            uint64_t i, numel = s == 0 ? 3 : s == 1 ? 15 : 105;
            mload_error e;
            snprintf(name, sizeof name, "%s_%s", dt[a], sh[s]);
            t = mload_file_find(f, name);
            CHECK(t != NULL);
            if (!t) continue;
            CHECK(t->dtype == want[a]);
            CHECK_EQ_U64(t->rank, s + 1);
            CHECK_EQ_U64(t->shape[0], 3);
            if (s >= 1) CHECK_EQ_U64(t->shape[1], 5);
            if (s >= 2) CHECK_EQ_U64(t->shape[2], 7);
            CHECK_EQ_U64(t->numel, numel);
            CHECK_EQ_U64(t->nbytes, numel * mload_dtype_bits(t->dtype) / 8);
            buf = (unsigned char *)malloc((size_t)t->nbytes);
            CHECK_RES(mload_file_read(f, t, buf, t->nbytes, &e), MLOAD_OK);
            for (i = 0; i < numel; ++i) {
                double expect = want[a] == MLOAD_DTYPE_BOOL ? (double)(i % 2) : (double)i;
                if (element(t, buf, i) != expect) {
                    th_failed_checks++;
                    fprintf(stderr, "  FAIL %s[%llu] = %g, expected %g\n", name, (unsigned long long)i, element(t, buf, i), expect);
                    break;
                }
            }
            free(buf);
        }
    }
    mload_file_close(f);
}

/* every tensor of a file reads; returns total bytes */
static uint64_t read_all(mload_file *f) {
    uint64_t i, total = 0;
    for (i = 0; i < mload_file_count(f); ++i) {
        const mload_tensor *t = mload_file_tensor(f, i);
        void *buf = malloc(t->nbytes ? (size_t)t->nbytes : 1);
        mload_error e;
        CHECK_RES(mload_file_read(f, t, buf, t->nbytes, &e), MLOAD_OK);
        total += t->nbytes;
        free(buf);
    }
    return total;
}

static void test_fixture_torch_files(void) {
    mload_file *f, *g;
    uint64_t i;
    if (!fixtures_dir()) SKIP("official fixtures absent");
    f = open_fixture("non_sharded/model.safetensors");
    g = open_fixture("non_sharded/model.with_metadata.safetensors");
    if (!f || !g) { mload_file_close(f); mload_file_close(g); return; }
    CHECK_EQ_U64(mload_file_count(f), 36);
    CHECK_EQ_U64(mload_file_count(g), 36);
    CHECK(mload_file_find(f, "float8_e4m3fn_357") && mload_file_find(f, "float8_e4m3fn_357")->dtype == MLOAD_DTYPE_F8_E4M3);
    CHECK(mload_file_find(f, "float8_e5m2_35") && mload_file_find(f, "float8_e5m2_35")->dtype == MLOAD_DTYPE_F8_E5M2);
    CHECK(mload_file_find(f, "bfloat16_3") && mload_file_find(f, "bfloat16_3")->dtype == MLOAD_DTYPE_BF16);
    CHECK_EQ_U64(read_all(f), mload_file_size(f) - mload_file_data_offset(f));
    CHECK_EQ_U64(read_all(g), mload_file_size(g) - mload_file_data_offset(g));
    CHECK_EQ_U64(mload_file_metadata_count(f), 0);
    CHECK_EQ_U64(mload_file_metadata_count(g), 2);
    CHECK(mload_file_metadata_find(g, "test") && strcmp(mload_file_metadata_find(g, "test")->value, "metadata") == 0);
    CHECK(mload_file_metadata_find(g, "version") && strcmp(mload_file_metadata_find(g, "version")->value, "2.2") == 0);
    /* the two files hold the same tensors, byte for byte */
    for (i = 0; i < mload_file_count(f); ++i) {
        const mload_tensor *a = mload_file_tensor(f, i), *b = mload_file_find(g, a->name);
        unsigned char *x, *y;
        mload_error e;
        CHECK(b != NULL);
        if (!b) continue;
        CHECK(a->dtype == b->dtype && a->nbytes == b->nbytes && a->rank == b->rank);
        x = (unsigned char *)malloc((size_t)a->nbytes + 1);
        y = (unsigned char *)malloc((size_t)b->nbytes + 1);
        CHECK_RES(mload_file_read(f, a, x, a->nbytes, &e), MLOAD_OK);
        CHECK_RES(mload_file_read(g, b, y, b->nbytes, &e), MLOAD_OK);
        CHECK(memcmp(x, y, (size_t)a->nbytes) == 0);
        free(x);
        free(y);
    }
    mload_file_close(f);
    mload_file_close(g);
}

static void test_fixture_shards(void) {
    /* every shard opens, carries {"format":"pt"}, and together they hold the
       index's tensors with total_size bytes */
    char path[512], *idx = NULL;
    const char *dir = fixtures_dir(), *p;
    FILE *fp;
    long n;
    int k;
    uint64_t total = 0, count = 0, want_total;
    if (!dir) SKIP("official fixtures absent");
    snprintf(path, sizeof path, "%s/sharded/model.safetensors.index.json", dir);
    fp = fopen(path, "rb");
    CHECK(fp != NULL);
    if (!fp) return;
    fseek(fp, 0, SEEK_END);
    n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    idx = (char *)calloc(1, (size_t)n + 1);
    CHECK(fread(idx, 1, (size_t)n, fp) == (size_t)n);
    fclose(fp);
    p = strstr(idx, "\"total_size\":");
    CHECK(p != NULL);
    want_total = p ? strtoull(p + 13, NULL, 10) : 0;
    for (k = 1; k <= 6; ++k) {
        char rel[64];
        mload_file *f;
        uint64_t i;
        snprintf(rel, sizeof rel, "sharded/model-%05d-of-00006.safetensors", k);
        f = open_fixture(rel);
        if (!f) continue;
        CHECK(mload_file_metadata_find(f, "format") && strcmp(mload_file_metadata_find(f, "format")->value, "pt") == 0);
        total += read_all(f);
        for (i = 0; i < mload_file_count(f); ++i) {
            /* the index maps this tensor to this shard */
            char needle[160];
            const mload_tensor *t = mload_file_tensor(f, i);
            snprintf(needle, sizeof needle, "\"%s\": \"model-%05d-of-00006.safetensors\"", t->name, k);
            if (!strstr(idx, needle)) {
                th_failed_checks++;
                fprintf(stderr, "  FAIL %s not mapped to shard %d\n", t->name, k);
            }
            count++;
        }
        mload_file_close(f);
    }
    CHECK_EQ_U64(total, want_total);
    CHECK_EQ_U64(count, 36);
    free(idx);
}

void area_fixtures(void) {
    RUN(test_fixture_numpy_values);
    RUN(test_fixture_torch_files);
    RUN(test_fixture_shards);
}
