/* The dtype table: all 22 dtypes, exact-name lookup. */
#include "harness.h"

static void test_dtype_table(void) {
    static const struct { const char *name; unsigned bits; mload_kind kind; } want[] = {
        {"BOOL", 8, MLOAD_KIND_BOOL}, {"F4", 4, MLOAD_KIND_FLOAT}, {"F6_E2M3", 6, MLOAD_KIND_FLOAT},
        {"F6_E3M2", 6, MLOAD_KIND_FLOAT}, {"U8", 8, MLOAD_KIND_UINT}, {"I8", 8, MLOAD_KIND_SINT},
        {"F8_E5M2", 8, MLOAD_KIND_FLOAT}, {"F8_E4M3", 8, MLOAD_KIND_FLOAT}, {"F8_E8M0", 8, MLOAD_KIND_FLOAT},
        {"F8_E4M3FNUZ", 8, MLOAD_KIND_FLOAT}, {"F8_E5M2FNUZ", 8, MLOAD_KIND_FLOAT}, {"I16", 16, MLOAD_KIND_SINT},
        {"U16", 16, MLOAD_KIND_UINT}, {"F16", 16, MLOAD_KIND_FLOAT}, {"BF16", 16, MLOAD_KIND_FLOAT},
        {"I32", 32, MLOAD_KIND_SINT}, {"U32", 32, MLOAD_KIND_UINT}, {"F32", 32, MLOAD_KIND_FLOAT},
        {"C64", 64, MLOAD_KIND_COMPLEX}, {"F64", 64, MLOAD_KIND_FLOAT}, {"I64", 64, MLOAD_KIND_SINT},
        {"U64", 64, MLOAD_KIND_UINT},
    };
    size_t i;
    CHECK_EQ_U64(MLOAD_DTYPE_COUNT - 1, 22);
    for (i = 0; i < 22; ++i) {
        mload_dtype d = mload_dtype_from_name(want[i].name, strlen(want[i].name));
        CHECK(d != MLOAD_DTYPE_INVALID);
        CHECK(strcmp(mload_dtype_name(d), want[i].name) == 0);
        CHECK_EQ_U64(mload_dtype_bits(d), want[i].bits);
        CHECK(mload_dtype_kind(d) == want[i].kind);
    }
}

static void test_dtype_exact_names(void) {
    static const char *bad[] = {"", "F", "F3", "f32", "F32 ", " F32", "F320", "BF", "F8_E4M3FN", "F128", "C128",
                                "I4", "bool", "F8_E4M", "U", "I", "float32", "F8_E4M3FNUZZ"};
    size_t i;
    for (i = 0; i < sizeof bad / sizeof bad[0]; ++i)
        CHECK(mload_dtype_from_name(bad[i], strlen(bad[i])) == MLOAD_DTYPE_INVALID);
    /* a prefix of a longer buffer is matched by length, not by NUL */
    CHECK(mload_dtype_from_name("F32XYZ", 3) == MLOAD_DTYPE_F32);
    CHECK(mload_dtype_from_name("F8_E4M3FNUZ", 7) == MLOAD_DTYPE_F8_E4M3);
    CHECK(mload_dtype_from_name(NULL, 0) == MLOAD_DTYPE_INVALID);
    CHECK(mload_dtype_name(MLOAD_DTYPE_INVALID) == NULL);
    CHECK(mload_dtype_name(MLOAD_DTYPE_COUNT) == NULL);
    CHECK(mload_dtype_bits((mload_dtype)77) == 0);
    CHECK(mload_dtype_kind((mload_dtype)-3) == MLOAD_KIND_INVALID);
}

void area_dtype(void) {
    RUN(test_dtype_table);
    RUN(test_dtype_exact_names);
}
