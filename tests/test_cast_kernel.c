/* The CUDA back end's conversion kernel (tests/gpu/cast_kernel.cu),
   compiled here as C, gives mload_cast's bytes: every 8- and 16-bit source
   code to every other dtype of the kernel, and F32 bit patterns (a stride
   through all 2^32, plus the values around every rounding edge), in both
   F8 overflow modes. The GPU runs the same integer arithmetic. */
#include "harness.h"
#include <stdlib.h>
#include "gpu/cast_kernel.cu"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_UNDEFINED__)
#define CK_STRIDE 100003u
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(undefined_behavior_sanitizer)
#define CK_STRIDE 100003u
#endif
#endif
#ifndef CK_STRIDE
#define CK_STRIDE 61u
#endif

static const mload_dtype ck_types[] = {MLOAD_DTYPE_F32, MLOAD_DTYPE_F16, MLOAD_DTYPE_BF16, MLOAD_DTYPE_F8_E4M3, MLOAD_DTYPE_F8_E5M2};
#define CK_NTYPES (sizeof ck_types / sizeof ck_types[0])

static void test_cast_kernel_numbers(void) {
    CHECK(MLOAD_K_F32 == MLOAD_DTYPE_F32 && MLOAD_K_F16 == MLOAD_DTYPE_F16 && MLOAD_K_BF16 == MLOAD_DTYPE_BF16);
    CHECK(MLOAD_K_F8_E4M3 == MLOAD_DTYPE_F8_E4M3 && MLOAD_K_F8_E5M2 == MLOAD_DTYPE_F8_E5M2);
    CHECK(MLOAD_K_NONSAT == (unsigned)MLOAD_F8_OVERFLOW_NONSAT);
}

/* n elements of src (dtype st) to every kernel dtype, both modes: the
   kernel's bytes against mload_cast's; the first difference is shown */
static void ck_compare(const char *what, const unsigned char *src, mload_dtype st, size_t n, unsigned char *ref,
                       unsigned char *got) {
    size_t k, i, b;
    unsigned mode;
    for (k = 0; k < CK_NTYPES; ++k)
        for (mode = 0; mode < 2; ++mode) {
            mload_dtype dt = ck_types[k];
            size_t eb = mload_dtype_bits(dt) / 8u, sb = mload_dtype_bits(st) / 8u;
            CHECK_RES(mload_cast(ref, dt, src, st, n, (mload_f8_overflow)mode, NULL), MLOAD_OK);
            mload_cast_kernel(got, (int)dt, src, (int)st, n, mode);
            if (memcmp(ref, got, n * eb) != 0) {
                for (i = 0; i < n && !memcmp(ref + i * eb, got + i * eb, eb); ++i) {}
                CHECK(0);
                fprintf(stderr, "  %s: %s -> %s (%s), element %zu of the block (source", what, mload_dtype_name(st), mload_dtype_name(dt),
                        mode ? "nonsat" : "sat", i);
                for (b = sb; b-- > 0;) fprintf(stderr, " %02x", src[i * sb + b]); /* most significant first */
                fprintf(stderr, "): kernel differs from mload_cast\n");
                return;
            }
        }
}

static void test_cast_kernel_small_sources(void) {
    static const mload_dtype srcs[] = {MLOAD_DTYPE_F16, MLOAD_DTYPE_BF16, MLOAD_DTYPE_F8_E4M3, MLOAD_DTYPE_F8_E5M2};
    unsigned char *src = (unsigned char *)malloc(65536 * 2), *ref = (unsigned char *)malloc(65536 * 4),
                  *got = (unsigned char *)malloc(65536 * 4);
    size_t k, c;
    if (!src || !ref || !got) { CHECK(0); free(src); free(ref); free(got); return; }
    for (k = 0; k < sizeof srcs / sizeof srcs[0]; ++k) {
        size_t n = mload_dtype_bits(srcs[k]) == 16 ? 65536u : 256u;
        for (c = 0; c < n; ++c) {
            if (n == 256) src[c] = (unsigned char)c;
            else { src[2 * c] = (unsigned char)c; src[2 * c + 1] = (unsigned char)(c >> 8); }
        }
        ck_compare("every code", src, srcs[k], n, ref, got);
    }
    free(src);
    free(ref);
    free(got);
}

static void ck_put32(unsigned char *p, uint32_t v) { memcpy(p, &v, 4); }

static void test_cast_kernel_f32_sources(void) {
    /* the rounding and range edges of the targets, both signs, +-2 ulps */
    static const uint32_t edges[] = {0x00000000u, 0x00000001u, 0x007FFFFFu, 0x00800000u, 0x33000000u, 0x33800000u, 0x38800000u,
                                     0x387FC000u, 0x477FE000u, 0x477FF000u, 0x47800000u, 0x7F7FFFFFu, 0x7F800000u, 0x7F800001u,
                                     0x7FC00000u, 0x7FFFFFFFu, 0x3B000000u, 0x3A800000u, 0x3C800000u, 0x43E00000u, 0x43E80000u,
                                     0x43F00000u, 0x37800000u, 0x37000000u, 0x476FFFFFu, 0x47700000u, 0x47600000u, 0x3F800000u};
    const size_t blk = 1u << 20;
    unsigned char *src = (unsigned char *)malloc(blk * 4), *ref = (unsigned char *)malloc(blk * 4), *got = (unsigned char *)malloc(blk * 4);
    size_t n = 0, i;
    uint64_t x;
    int d;
    if (!src || !ref || !got) { CHECK(0); free(src); free(ref); free(got); return; }
    for (i = 0; i < sizeof edges / sizeof edges[0]; ++i)
        for (d = -2; d <= 2; ++d) {
            uint32_t v = edges[i] + (uint32_t)d;
            ck_put32(src + 4 * n++, v);
            ck_put32(src + 4 * n++, v ^ 0x80000000u);
        }
    ck_compare("F32 edges", src, MLOAD_DTYPE_F32, n, ref, got);
    n = 0;
    for (x = 0; x < ((uint64_t)1 << 32); x += CK_STRIDE) {
        ck_put32(src + 4 * n++, (uint32_t)x);
        if (n == blk) {
            ck_compare("F32 stride", src, MLOAD_DTYPE_F32, n, ref, got);
            n = 0;
        }
    }
    if (n) ck_compare("F32 stride", src, MLOAD_DTYPE_F32, n, ref, got);
    free(src);
    free(ref);
    free(got);
}

void area_cast_kernel(void) {
    RUN(test_cast_kernel_numbers);
    RUN(test_cast_kernel_small_sources);
    RUN(test_cast_kernel_f32_sources);
}
