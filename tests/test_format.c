/* Format checks: the reference's own malformed-input tests (format.md), then
   our own for every class, the order of checks and the accepted edge cases. */
#include "harness.h"
#include <stdlib.h>

static mload_result open_bytes(const void *p, size_t n, mload_error *e) {
    mload_file_desc d;
    mload_file *f = NULL;
    mload_result r;
    memset(&d, 0, sizeof(d));
    d.data = p ? p : "";
    d.data_size = n;
    r = mload_file_open(&d, &f, e);
    mload_file_close(f);
    return r;
}

#define I32_22 "{\"test\":{\"dtype\":\"I32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}"

/* ---- the reference's list ---- */

static void test_ref_empty(void) {
    mload_error e;
    CHECK_RES(open_bytes(NULL, 0, &e), MLOAD_ERR_HEADER_TOO_SMALL);
}

static void test_ref_length_only(void) {
    unsigned char b[8] = {60, 0, 0, 0, 0, 0, 0, 0};
    mload_error e;
    CHECK_RES(open_bytes(b, 8, &e), MLOAD_ERR_INVALID_HEADER_LENGTH);
}

static void test_ref_bad_utf8(void) {
    unsigned char b[9] = {1, 0, 0, 0, 0, 0, 0, 0, 0xFF};
    mload_error e;
    CHECK_RES(open_bytes(b, 9, &e), MLOAD_ERR_INVALID_HEADER);
    CHECK_EQ_U64(e.offset, 8);
}

static void test_ref_open_brace(void) {
    unsigned char b[9] = {1, 0, 0, 0, 0, 0, 0, 0, '{'};
    mload_error e;
    CHECK_RES(open_bytes(b, 9, &e), MLOAD_ERR_INVALID_HEADER_DESERIALIZATION);
}

static void test_ref_too_large(void) {
    unsigned char b[8] = {0x3c, 0, 0, 0, 0, 0xff, 0xff, 0xff};
    mload_error e;
    CHECK_RES(open_bytes(b, 8, &e), MLOAD_ERR_HEADER_TOO_LARGE);
}

static void test_ref_trailing_bytes(void) {
    tbuf b = make_st(I32_22, 16 + 34, NULL);
    mload_error e;
    CHECK_RES(open_bytes(b.p, b.n, &e), MLOAD_ERR_METADATA_INCOMPLETE_BUFFER);
    tbuf_free(&b);
}

static void test_ref_missing_bytes(void) {
    tbuf b = make_st(I32_22, 16 - 2, NULL);
    mload_error e;
    CHECK_RES(open_bytes(b.p, b.n, &e), MLOAD_ERR_METADATA_INCOMPLETE_BUFFER);
    tbuf_free(&b);
}

static void test_ref_invalid_info(void) {
    mload_error e;
    CHECK_RES(parse_hdr("{\"test\":{\"dtype\":\"I32\",\"shape\":[2,2],\"data_offsets\":[0,4]}}", 4, &e),
              MLOAD_ERR_TENSOR_INVALID_INFO);
    CHECK(strcmp(e.tensor, "test") == 0);
}

static void test_ref_overflow(void) {
    mload_error e;
    CHECK_RES(parse_hdr("{\"test\":{\"dtype\":\"I32\",\"shape\":[2,18446744073709551614],\"data_offsets\":[0,16]}}", 16, &e),
              MLOAD_ERR_VALIDATION_OVERFLOW);
    CHECK_RES(parse_hdr("{\"test\":{\"dtype\":\"I32\",\"shape\":[2,9223372036854775807],\"data_offsets\":[0,16]}}", 16, &e),
              MLOAD_ERR_VALIDATION_OVERFLOW);
    CHECK(strcmp(e.tensor, "test") == 0);
}

/* a header of count F32 tensors "weight_I" of the given shape, all at
   data_offsets [0,end] (NUL-terminated) */
static tbuf same_offset_header(int count, const char *shape, unsigned end) {
    tbuf h = {0, 0, 0};
    int i;
    char s[128];
    tbuf_put(&h, "{", 1);
    for (i = 0; i < count; ++i) {
        int n = snprintf(s, sizeof s, "%s\"weight_%d\":{\"dtype\":\"F32\",\"shape\":[%s],\"data_offsets\":[0,%u]}",
                         i ? "," : "", i, shape, end);
        tbuf_put(&h, s, (size_t)n);
    }
    tbuf_put(&h, "}", 2);
    return h;
}

static void test_ref_ten_at_same_offset(void) {
    tbuf h = same_offset_header(10, "2,2", 16);
    mload_error e;
    CHECK_RES(parse_hdr((const char *)h.p, 16, &e), MLOAD_ERR_INVALID_OFFSET);
    CHECK(strncmp(e.tensor, "weight_", 7) == 0);
    tbuf_free(&h);
}

static void test_ref_f4_misaligned(void) {
    mload_error e;
    CHECK_RES(parse_hdr("{\"test\":{\"dtype\":\"F4\",\"shape\":[1,3],\"data_offsets\":[0,2]}}", 2, &e),
              MLOAD_ERR_MISALIGNED_SLICE);
}

static void test_ref_header_cut(void) {
    tbuf b = make_st(I32_22, 16, NULL);
    uint64_t n = strlen(I32_22);
    mload_error e;
    CHECK_RES(open_bytes(b.p, 8 + (size_t)(n / 2), &e), MLOAD_ERR_INVALID_HEADER_LENGTH);
    tbuf_free(&b);
}

static void test_ref_big_tensor_one_byte(void) {
    mload_error e;
    CHECK_RES(parse_hdr("{\"test\":{\"dtype\":\"F32\",\"shape\":[1024,1024],\"data_offsets\":[0,4194304]}}", 1, &e),
              MLOAD_ERR_METADATA_INCOMPLETE_BUFFER);
}

static void test_ref_88_bytes_claiming_1000(void) {
    unsigned char b[88];
    mload_error e;
    memset(b, ' ', sizeof b);
    b[0] = 0xe8; b[1] = 0x03; memset(b + 2, 0, 6); /* N = 1000 */
    CHECK_RES(open_bytes(b, sizeof b, &e), MLOAD_ERR_INVALID_HEADER_LENGTH);
}

static void test_ref_huge_header(void) {
    /* 10M tensors would give a ~750 MB header: the length alone is refused,
       before any of it is read */
    unsigned char b[64];
    uint64_t n = 750000000u;
    int i;
    mload_error e;
    memset(b, ' ', sizeof b);
    for (i = 0; i < 8; ++i) b[i] = (unsigned char)(n >> (8 * i));
    CHECK_RES(open_bytes(b, sizeof b, &e), MLOAD_ERR_HEADER_TOO_LARGE);
}

static void test_ref_100k_same_offset(void) {
    tbuf h = same_offset_header(100000, "200,200", 160000);
    mload_error e;
    CHECK_RES(parse_hdr((const char *)h.p, 160000, &e), MLOAD_ERR_INVALID_OFFSET);
    tbuf_free(&h);
}

/* ---- accepted by the reference ---- */

static void test_ref_accepted(void) {
    mload_error e;
    tbuf b;
    mload_file *f;
    static const char spaces[] = "{}      ";
    CHECK_RES(parse_hdr("{}\r \t\n", 0, &e), MLOAD_OK);
    CHECK_RES(parse_hdr("\t\n{}\r ", 0, &e), MLOAD_OK);
    CHECK_RES(parse_hdr("{\"s\":{\"dtype\":\"I32\",\"shape\":[],\"data_offsets\":[0,4]}}", 4, &e), MLOAD_OK);
    /* I32 [2,0] at [0,0], N = 55 (not a multiple of 8) */
    b = make_st("{\"z\":{\"dtype\":\"I32\",\"shape\":[2,0],\"data_offsets\":[0,0]}} ", 0, NULL); /* N = 57 */
    CHECK(((b.n - 8) % 8) != 0);
    CHECK_RES(open_mem(&b, &f, &e), MLOAD_OK);
    if (f) {
        CHECK_EQ_U64(mload_file_tensor(f, 0)->numel, 0);
        CHECK_EQ_U64(mload_file_tensor(f, 0)->nbytes, 0);
        mload_file_close(f);
    }
    tbuf_free(&b);
    b = make_st_n(spaces, 8, 0, NULL);
    CHECK_RES(open_mem(&b, &f, &e), MLOAD_OK);
    if (f) {
        CHECK_EQ_U64(mload_file_count(f), 0);
        CHECK_EQ_U64(mload_file_header_size(f), 8);
        CHECK_EQ_U64(mload_file_data_offset(f), 16);
        mload_file_close(f);
    }
    tbuf_free(&b);
}

/* ---- our own, per class ---- */

static void test_too_small_each_length(void) {
    unsigned char b[8] = {0};
    size_t n;
    mload_error e;
    for (n = 0; n < 8; ++n) CHECK_RES(open_bytes(b, n, &e), MLOAD_ERR_HEADER_TOO_SMALL);
    CHECK_RES(open_bytes(b, 8, &e), MLOAD_ERR_INVALID_HEADER_DESERIALIZATION); /* N = 0: empty header */
}

static void put_len(unsigned char *b, uint64_t n) {
    int i;
    for (i = 0; i < 8; ++i) b[i] = (unsigned char)(n >> (8 * i));
}

static void test_header_limit_boundary(void) {
    unsigned char b[16];
    mload_error e;
    memset(b, ' ', sizeof b);
    put_len(b, 100000001u);
    CHECK_RES(open_bytes(b, sizeof b, &e), MLOAD_ERR_HEADER_TOO_LARGE);
    put_len(b, 100000000u); /* allowed by the limit, but longer than the file */
    CHECK_RES(open_bytes(b, sizeof b, &e), MLOAD_ERR_INVALID_HEADER_LENGTH);
    put_len(b, UINT64_MAX);
    CHECK_RES(open_bytes(b, sizeof b, &e), MLOAD_ERR_HEADER_TOO_LARGE);
    put_len(b, 9); /* one past the end */
    CHECK_RES(open_bytes(b, sizeof b, &e), MLOAD_ERR_INVALID_HEADER_LENGTH);
    put_len(b, 8);
    b[8] = '{'; b[9] = '}';
    CHECK_RES(open_bytes(b, sizeof b, &e), MLOAD_OK);
}

static void test_utf8_classes(void) {
    static const char *bad[] = {
        "{\"\xC0\xAF\":1}",          /* overlong 2-byte */
        "{\"\xC1\xBF\":1}",
        "{\"\xE0\x80\xAF\":1}",      /* overlong 3-byte */
        "{\"\xF0\x80\x80\xAF\":1}",  /* overlong 4-byte */
        "{\"\xED\xA0\x80\":1}",      /* UTF-16 surrogate */
        "{\"\xED\xBF\xBF\":1}",
        "{\"\xF4\x90\x80\x80\":1}",  /* > U+10FFFF */
        "{\"\xF5\x80\x80\x80\":1}",
        "{\"\x80\":1}",              /* lone continuation */
        "{\"\xC3\":1}",              /* truncated */
        "{\"\xE2\x82\":1}",
        "{\"\xFE\":1}",
        "{\"\xFF\":1}",
        "{}\xC3",                    /* truncated at the very end */
    };
    size_t i;
    mload_error e;
    for (i = 0; i < sizeof bad / sizeof bad[0]; ++i) {
        mload_result r = parse_hdr(bad[i], 0, &e);
        if (r != MLOAD_ERR_INVALID_HEADER) {
            th_failed_checks++;
            fprintf(stderr, "  FAIL utf8 case %u: %s\n", (unsigned)i, mload_result_string(r));
        }
    }
    /* offset of the first bad byte */
    CHECK_RES(parse_hdr("{\"abc\xC0\xAF\":1}", 0, &e), MLOAD_ERR_INVALID_HEADER);
    CHECK_EQ_U64(e.offset, 8 + 5);
    /* valid multi-byte forms at each boundary */
    CHECK_RES(parse_hdr("{\"\xC2\x80\xDF\xBF\xE0\xA0\x80\xED\x9F\xBF\xEE\x80\x80\xF0\x90\x80\x80\xF4\x8F\xBF\xBF\":"
                        "{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0,0]}}", 0, &e),
              MLOAD_OK);
}

static void test_invalid_offset_kinds(void) {
    mload_error e;
    /* gap at the start */
    CHECK_RES(parse_hdr("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, &e), MLOAD_ERR_INVALID_OFFSET);
    CHECK(strcmp(e.tensor, "a") == 0);
    /* gap between two */
    CHECK_RES(parse_hdr("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                        "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[5,9]}}", 9, &e),
              MLOAD_ERR_INVALID_OFFSET);
    CHECK(strcmp(e.tensor, "b") == 0);
    /* overlap */
    CHECK_RES(parse_hdr("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                        "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, &e),
              MLOAD_ERR_INVALID_OFFSET);
    /* end < begin */
    CHECK_RES(parse_hdr("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                        "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,0]}}", 4, &e),
              MLOAD_ERR_INVALID_OFFSET);
    /* offsets summing to near 2^64: no overflow in any check, the buffer
       check compares without adding (the reference overflows here) */
    {
        tbuf h = {0, 0, 0};
        char s[160];
        int i;
        uint64_t chunk = 2305843009213693951ull; /* 2^61 - 1 bytes of U8 */
        tbuf_put(&h, "{", 1);
        for (i = 0; i < 8; ++i) {
            int n = snprintf(s, sizeof s, "%s\"t%d\":{\"dtype\":\"U8\",\"shape\":[%llu],\"data_offsets\":[%llu,%llu]}",
                             i ? "," : "", i, (unsigned long long)chunk, (unsigned long long)(chunk * (uint64_t)i),
                             (unsigned long long)(chunk * (uint64_t)(i + 1)));
            tbuf_put(&h, s, (size_t)n);
        }
        tbuf_put(&h, "}", 2);
        CHECK_RES(parse_hdr((const char *)h.p, 4, &e), MLOAD_ERR_METADATA_INCOMPLETE_BUFFER);
        tbuf_free(&h);
    }
}

static void test_header_order_is_not_file_order(void) {
    /* tensors listed out of data order are fine: the table is in file order */
    tbuf b = make_st("{\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]},"
                     "\"z\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[4,4]},"
                     "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                     "\"y\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[8,8]}}", 8, NULL);
    mload_file *f;
    mload_error e;
    CHECK_RES(open_mem(&b, &f, &e), MLOAD_OK);
    if (f) {
        CHECK(strcmp(mload_file_tensor(f, 0)->name, "a") == 0);
        CHECK(strcmp(mload_file_tensor(f, 1)->name, "z") == 0); /* [4,4] sorts before [4,8] */
        CHECK(strcmp(mload_file_tensor(f, 2)->name, "b") == 0);
        CHECK(strcmp(mload_file_tensor(f, 3)->name, "y") == 0);
        CHECK_EQ_U64(mload_file_tensor(f, 2)->offset, mload_file_data_offset(f) + 4);
        CHECK(mload_file_find(f, "b") == mload_file_tensor(f, 2));
        CHECK_EQ_U64(mload_file_tensor_index(f, mload_file_find(f, "y")), 3);
        mload_file_close(f);
    }
    tbuf_free(&b);
}

/* one header each, the data length after it and the class it must give;
   the tests below check one group each */
static const struct { const char *group; hcase c; } class_cases[] = {
    /* overflow: a zero dim first keeps the product at 0: accepted */
    {"fold", {"{\"a\":{\"dtype\":\"F32\",\"shape\":[0,9223372036854775807,9223372036854775807],"
              "\"data_offsets\":[0,0]}}", 0, MLOAD_OK}},
    /* the product overflows before the zero is reached: refused */
    {"fold", {"{\"a\":{\"dtype\":\"F32\",\"shape\":[9223372036854775807,9223372036854775807,0],"
              "\"data_offsets\":[0,0]}}", 0, MLOAD_ERR_VALIDATION_OVERFLOW}},
    /* elements fit, bits do not */
    {"fold", {"{\"a\":{\"dtype\":\"F64\",\"shape\":[288230376151711744],\"data_offsets\":[0,0]}}", 0,
              MLOAD_ERR_VALIDATION_OVERFLOW}},
    {"fold", {"{\"a\":{\"dtype\":\"F64\",\"shape\":[288230376151711743],\"data_offsets\":[0,0]}}", 0,
              MLOAD_ERR_TENSOR_INVALID_INFO}},
    /* sub-byte dtypes */
    {"subbyte", {"{\"a\":{\"dtype\":\"F4\",\"shape\":[3],\"data_offsets\":[0,2]}}", 2, MLOAD_ERR_MISALIGNED_SLICE}},
    {"subbyte", {"{\"a\":{\"dtype\":\"F4\",\"shape\":[2],\"data_offsets\":[0,1]}}", 1, MLOAD_OK}},
    {"subbyte", {"{\"a\":{\"dtype\":\"F4\",\"shape\":[3,2],\"data_offsets\":[0,3]}}", 3, MLOAD_OK}},
    {"subbyte", {"{\"a\":{\"dtype\":\"F6_E2M3\",\"shape\":[3],\"data_offsets\":[0,3]}}", 3, MLOAD_ERR_MISALIGNED_SLICE}},
    {"subbyte", {"{\"a\":{\"dtype\":\"F6_E3M2\",\"shape\":[4],\"data_offsets\":[0,3]}}", 3, MLOAD_OK}},
    {"subbyte", {"{\"a\":{\"dtype\":\"F6_E3M2\",\"shape\":[4],\"data_offsets\":[0,4]}}", 4, MLOAD_ERR_TENSOR_INVALID_INFO}},
    {"subbyte", {"{\"a\":{\"dtype\":\"F4\",\"shape\":[],\"data_offsets\":[0,1]}}", 1, MLOAD_ERR_MISALIGNED_SLICE}},
    /* invalid tensor info */
    {"info", {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,9]}}", 9, MLOAD_ERR_TENSOR_INVALID_INFO}},
    {"info", {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,7]}}", 7, MLOAD_ERR_TENSOR_INVALID_INFO}},
    {"info", {"{\"a\":{\"dtype\":\"BOOL\",\"shape\":[0],\"data_offsets\":[0,1]}}", 1, MLOAD_ERR_TENSOR_INVALID_INFO}},
    {"info", {"{\"a\":{\"dtype\":\"C64\",\"shape\":[3],\"data_offsets\":[0,24]}}", 24, MLOAD_OK}},
    /* bytes after the data */
    {"incomplete", {"{}", 1, MLOAD_ERR_METADATA_INCOMPLETE_BUFFER}},
    {"incomplete", {"{\"__metadata__\":{\"a\":\"b\"}}", 3, MLOAD_ERR_METADATA_INCOMPLETE_BUFFER}},
    {"incomplete", {"{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}}", 4,
                    MLOAD_ERR_METADATA_INCOMPLETE_BUFFER}},
};

static void check_class_group(const char *group) {
    size_t i;
    for (i = 0; i < sizeof class_cases / sizeof class_cases[0]; ++i)
        if (strcmp(class_cases[i].group, group) == 0) check_hdr_cases(group, &class_cases[i].c, 1);
}

static void test_overflow_fold_order(void) { check_class_group("fold"); }
static void test_subbyte(void) { check_class_group("subbyte"); }
static void test_invalid_info_kinds(void) { check_class_group("info"); }
static void test_incomplete_buffer_kinds(void) { check_class_group("incomplete"); }

/* checks apply in the reference's order: per tensor in file order, offset,
   overflow, alignment, size; the buffer check last. */
static void test_check_order(void) {
    mload_error e;
    /* a (first in file order) is misaligned, b (later) has a gap: misaligned wins */
    CHECK_RES(parse_hdr("{\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[7,11]},"
                        "\"a\":{\"dtype\":\"F4\",\"shape\":[3],\"data_offsets\":[0,2]}}", 11, &e),
              MLOAD_ERR_MISALIGNED_SLICE);
    CHECK(strcmp(e.tensor, "a") == 0);
    /* offset checked before size inside one tensor */
    CHECK_RES(parse_hdr("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[1,2]}}", 2, &e), MLOAD_ERR_INVALID_OFFSET);
    /* a bad UTF-8 byte beats bad JSON */
    CHECK_RES(parse_hdr("{\xFF", 0, &e), MLOAD_ERR_INVALID_HEADER);
    /* JSON (and duplicates) before offsets */
    CHECK_RES(parse_hdr("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[5,9]},\"a\":{\"dtype\":\"F32\",\"shape\":[1],"
                        "\"data_offsets\":[5,9]}}", 0, &e),
              MLOAD_ERR_DUPLICATE_KEY);
    /* size before buffer */
    CHECK_RES(parse_hdr("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,3]}}", 100, &e),
              MLOAD_ERR_TENSOR_INVALID_INFO);
}

static void test_high_rank(void) {
    /* no rank cap: 64 and 1000 dims of 1 */
    int ranks[] = {64, 1000};
    size_t k;
    for (k = 0; k < 2; ++k) {
        tbuf h = {0, 0, 0};
        int i;
        mload_file *f;
        mload_error e;
        tbuf b;
        const char *pre = "{\"r\":{\"dtype\":\"F32\",\"data_offsets\":[0,8],\"shape\":[2";
        tbuf_put(&h, pre, strlen(pre));
        for (i = 1; i < ranks[k]; ++i) tbuf_put(&h, ",1", 2);
        tbuf_put(&h, "]}}", 3);
        b = make_st_n((const char *)h.p, h.n, 8, NULL);
        CHECK_RES(open_mem(&b, &f, &e), MLOAD_OK);
        if (f) {
            const mload_tensor *t = mload_file_find(f, "r");
            CHECK(t && t->rank == (uint32_t)ranks[k] && t->shape[0] == 2 && t->shape[ranks[k] - 1] == 1);
            CHECK(t && t->numel == 2);
            mload_file_close(f);
        }
        tbuf_free(&b);
        tbuf_free(&h);
    }
}

static void test_lookup_exact(void) {
    /* "a" must not find "abc" and vice versa (prefix-matching peers) */
    tbuf b = make_st("{\"abc\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, NULL);
    mload_file *f;
    mload_error e;
    CHECK_RES(open_mem(&b, &f, &e), MLOAD_OK);
    if (f) {
        CHECK(mload_file_find(f, "a") == NULL);
        CHECK(mload_file_find(f, "ab") == NULL);
        CHECK(mload_file_find(f, "abcd") == NULL);
        CHECK(mload_file_find(f, "") == NULL);
        CHECK(mload_file_find(f, NULL) == NULL);
        CHECK(mload_file_find(f, "abc") != NULL);
        CHECK(mload_file_tensor(f, 1) == NULL);
        mload_file_close(f);
    }
    tbuf_free(&b);
}

static void test_every_dtype_parses(void) {
    int d;
    for (d = 1; d < MLOAD_DTYPE_COUNT; ++d) {
        char h[160];
        mload_error e;
        uint32_t bits = mload_dtype_bits((mload_dtype)d);
        unsigned nbytes = 8u * bits / 8u; /* 8 elements */
        mload_file *f;
        tbuf b;
        snprintf(h, sizeof h, "{\"t\":{\"dtype\":\"%s\",\"shape\":[2,4],\"data_offsets\":[0,%u]}}",
                 mload_dtype_name((mload_dtype)d), nbytes);
        b = make_st(h, nbytes, NULL);
        CHECK_RES(open_mem(&b, &f, &e), MLOAD_OK);
        if (f) {
            CHECK(mload_file_tensor(f, 0)->dtype == (mload_dtype)d);
            CHECK_EQ_U64(mload_file_tensor(f, 0)->nbytes, nbytes);
            mload_file_close(f);
        }
        tbuf_free(&b);
    }
}

static void test_result_strings(void) {
    CHECK(strcmp(mload_result_string(MLOAD_OK), "Ok") == 0);
    CHECK(strcmp(mload_result_string(MLOAD_ERR_INVALID_OFFSET), "InvalidOffset") == 0);
    CHECK(strcmp(mload_result_string(MLOAD_ERR_HEADER_TOO_LARGE), "HeaderTooLarge") == 0);
    CHECK(strcmp(mload_result_string(MLOAD_ERR_INVALID_HEADER_DESERIALIZATION), "InvalidHeaderDeserialization") == 0);
    CHECK(strcmp(mload_result_string(MLOAD_ERR_METADATA_INCOMPLETE_BUFFER), "MetadataIncompleteBuffer") == 0);
    CHECK(strcmp(mload_result_string(MLOAD_ERR_DEVICE), "Device") == 0);
    CHECK(strcmp(mload_result_string((mload_result)999), "Unknown") == 0);
    CHECK(strcmp(mload_result_string((mload_result)-1), "Unknown") == 0);
    CHECK(mload_version() == MODELLOAD_VERSION);
    CHECK(strcmp(mload_version_string(), MODELLOAD_VERSION_STRING) == 0);
}

void area_format(void) {
    RUN(test_ref_empty);
    RUN(test_ref_length_only);
    RUN(test_ref_bad_utf8);
    RUN(test_ref_open_brace);
    RUN(test_ref_too_large);
    RUN(test_ref_trailing_bytes);
    RUN(test_ref_missing_bytes);
    RUN(test_ref_invalid_info);
    RUN(test_ref_overflow);
    RUN(test_ref_ten_at_same_offset);
    RUN(test_ref_f4_misaligned);
    RUN(test_ref_header_cut);
    RUN(test_ref_big_tensor_one_byte);
    RUN(test_ref_88_bytes_claiming_1000);
    RUN(test_ref_huge_header);
    RUN(test_ref_100k_same_offset);
    RUN(test_ref_accepted);
    RUN(test_too_small_each_length);
    RUN(test_header_limit_boundary);
    RUN(test_utf8_classes);
    RUN(test_invalid_offset_kinds);
    RUN(test_header_order_is_not_file_order);
    RUN(test_overflow_fold_order);
    RUN(test_subbyte);
    RUN(test_invalid_info_kinds);
    RUN(test_incomplete_buffer_kinds);
    RUN(test_check_order);
    RUN(test_high_rank);
    RUN(test_lookup_exact);
    RUN(test_every_dtype_parses);
    RUN(test_result_strings);
}
