/* cast_kernel.cu - the dtype conversion kernel of modelload.h's CUDA back end
   (issue 9; the back end that loads its PTX is not built yet).

   F32, F16, BF16, F8_E4M3 and F8_E5M2 to one another, with the bytes that
   mload_cast writes on the host: one rounding to nearest even from the
   exact value, NaN written as the host kernels write it, F8 overflow
   saturating (default) or not (MLOAD_F8_OVERFLOW_NONSAT). Integer
   operations only: no floating-point instruction, so the result cannot
   depend on a rounding mode or flush-to-zero setting, and the PTX can
   carry an old .version/.target (tests/gpu/ptx.sh: .version 6.0, .target
   sm_70) that drivers since CUDA 9 can JIT, checked by ptxas for sm_75 to
   sm_120.

   The same file compiles as C99 without CUDA: tests/test_cast_kernel.c
   includes it and compares it with mload_cast on every 8- and 16-bit code
   and on F32 bit patterns, so its arithmetic is checked on any machine.

   Kernel: mload_cast_kernel(dst, dst_t, src, src_t, n, flags), a
   grid-stride loop over n elements; dst_t and src_t are modelload.h's
   mload_dtype numbers; buffers aligned to their element size. */

#if defined(__CUDACC__)
#define MLOAD_KD static __device__ __forceinline__
#define MLOAD_KERNEL extern "C" __global__ void
#else
#define MLOAD_KD static
#define MLOAD_KERNEL static void
#endif

/* modelload.h's mload_dtype numbers and MLOAD_F8_OVERFLOW_NONSAT (the
   tests check that they agree) */
#define MLOAD_K_F8_E5M2 7
#define MLOAD_K_F8_E4M3 8
#define MLOAD_K_F16 14
#define MLOAD_K_BF16 15
#define MLOAD_K_F32 18
#define MLOAD_K_NONSAT 1u

typedef unsigned int mload_k32;
typedef unsigned long long mload_k64;

/* m / 2^sh rounded to nearest even (sh >= 1) */
MLOAD_KD mload_k32 mload_k_rne(mload_k32 m, mload_k32 sh) {
    mload_k32 q, rem, half;
    if (sh > 31u) return 0u; /* m < 2^24: below half of the step */
    q = m >> sh;
    rem = m & ((1u << sh) - 1u);
    half = 1u << (sh - 1u);
    return q + (rem > half || (rem == half && (q & 1u)) ? 1u : 0u);
}

/* the value of a finite non-normal F32 region: subnormal targets. a is
   |f| below the target's smallest normal; step_shift is 150 - log2(step)
   of the target's subnormal step (F16 126, F8_E4M3 141, F8_E5M2 134) */
MLOAD_KD mload_k32 mload_k_sub(mload_k32 a, mload_k32 step_shift) {
    mload_k32 e = a >> 23;
    if (e == 0u) return 0u; /* F32 subnormals are far below every step here */
    return mload_k_rne((a & 0x7FFFFFu) | 0x800000u, step_shift - e);
}

/* ---- widening to F32 bits (exact) ---- */

MLOAD_KD mload_k32 mload_k_h2f(mload_k32 h) {
    mload_k32 sign = (h & 0x8000u) << 16, em = h & 0x7FFFu, s = 0u;
    if (em >= 0x7C00u) return sign | 0x7F800000u | (em << 13); /* Inf, NaN with its payload */
    if (em >= 0x400u) return sign | ((em << 13) + 0x38000000u);
    if (em == 0u) return sign;
    while (!(em & 0x400u)) { em <<= 1; ++s; } /* a subnormal: normalised */
    return sign | ((113u - s) << 23) | ((em & 0x3FFu) << 13);
}

MLOAD_KD mload_k32 mload_k_e4m3f(mload_k32 b) {
    mload_k32 sign = (b & 0x80u) << 24, em = b & 0x7Fu, p;
    if (em == 0x7Fu) return sign | 0x7FC00000u;
    if (em >= 8u) return sign | ((em << 20) + 0x3C000000u);
    if (em == 0u) return sign;
    p = em >= 4u ? 2u : em >= 2u ? 1u : 0u; /* em * 2^-9 = 1.x * 2^(p - 9) */
    return sign | ((118u + p) << 23) | ((em << (23u - p)) & 0x7FFFFFu);
}

/* ---- narrowing from F32 bits (one rounding) ---- */

MLOAD_KD mload_k32 mload_k_f2h(mload_k32 f) {
    mload_k32 sign = (f >> 16) & 0x8000u, a = f & 0x7FFFFFFFu, c;
    if (a > 0x7F800000u) return sign | 0x7E00u;
    if (a < 0x38800000u) return sign | mload_k_sub(a, 126u);
    c = a < 0x477FF000u ? a : 0x477FF000u; /* what rounds to Inf */
    return sign | ((c + 0xC8000FFFu + ((c >> 13) & 1u)) >> 13);
}

MLOAD_KD mload_k32 mload_k_f2bf(mload_k32 f) {
    if ((f & 0x7FFFFFFFu) > 0x7F800000u) return ((f >> 16) & 0x8000u) | 0x7FC0u;
    return (f + 0x7FFFu + ((f >> 16) & 1u)) >> 16;
}

MLOAD_KD mload_k32 mload_k_f2e4m3(mload_k32 f, mload_k32 flags) {
    mload_k32 sign = (f >> 24) & 0x80u, a = f & 0x7FFFFFFFu, c;
    if (a > 0x7F800000u) return sign | 0x7Fu;
    if (a > 0x43E80000u && (flags & MLOAD_K_NONSAT)) return sign | 0x7Fu; /* beyond 464: NaN */
    if (a < 0x3C800000u) return sign | mload_k_sub(a, 141u);
    c = a < 0x43E80000u ? a : 0x43E80000u; /* 464 rounds (tie, even) to 448 */
    return sign | (((c + 0x7FFFFu + ((c >> 20) & 1u)) >> 20) - 0x3C0u);
}

MLOAD_KD mload_k32 mload_k_f2e5m2(mload_k32 f, mload_k32 flags) {
    mload_k32 sign = (f >> 24) & 0x80u, a = f & 0x7FFFFFFFu, c;
    if (a > 0x7F800000u) return sign | 0x7Eu;
    if (a >= 0x47700000u && (flags & MLOAD_K_NONSAT)) return sign | 0x7Cu; /* from 61440: Inf */
    if (a < 0x38800000u) return sign | mload_k_sub(a, 134u);
    c = a < 0x476FFFFFu ? a : 0x476FFFFFu; /* just below 61440: rounds to 57344 */
    return sign | (((c + 0xFFFFFu + ((c >> 21) & 1u)) >> 21) - 0x1C0u);
}

/* ---- one element ---- */

MLOAD_KD mload_k32 mload_k_load(const void *src, int t, mload_k64 i) {
    switch (t) {
    case MLOAD_K_F32: return ((const mload_k32 *)src)[i];
    case MLOAD_K_F16: return mload_k_h2f(((const unsigned short *)src)[i]);
    case MLOAD_K_BF16: return (mload_k32)((const unsigned short *)src)[i] << 16;
    case MLOAD_K_F8_E4M3: return mload_k_e4m3f(((const unsigned char *)src)[i]);
    default: return mload_k_h2f((mload_k32)((const unsigned char *)src)[i] << 8); /* F8_E5M2: an F16's top byte */
    }
}

MLOAD_KD void mload_k_store(void *dst, int t, mload_k64 i, mload_k32 f, mload_k32 flags) {
    switch (t) {
    case MLOAD_K_F32: ((mload_k32 *)dst)[i] = f; break;
    case MLOAD_K_F16: ((unsigned short *)dst)[i] = (unsigned short)mload_k_f2h(f); break;
    case MLOAD_K_BF16: ((unsigned short *)dst)[i] = (unsigned short)mload_k_f2bf(f); break;
    case MLOAD_K_F8_E4M3: ((unsigned char *)dst)[i] = (unsigned char)mload_k_f2e4m3(f, flags); break;
    default: ((unsigned char *)dst)[i] = (unsigned char)mload_k_f2e5m2(f, flags); break;
    }
}

MLOAD_KD void mload_k_one(void *dst, int dst_t, const void *src, int src_t, mload_k64 i, mload_k32 flags) {
    if (src_t == MLOAD_K_F8_E5M2 && dst_t == MLOAD_K_F16) { /* the host shifts: a NaN keeps its payload */
        ((unsigned short *)dst)[i] = (unsigned short)((mload_k32)((const unsigned char *)src)[i] << 8);
    } else if (src_t == MLOAD_K_F8_E5M2 && dst_t == MLOAD_K_BF16) { /* the host truncates the exact F32: the same */
        ((unsigned short *)dst)[i] = (unsigned short)(mload_k_load(src, src_t, i) >> 16);
    } else if (src_t == dst_t) {
        if (src_t == MLOAD_K_F32) ((mload_k32 *)dst)[i] = ((const mload_k32 *)src)[i];
        else if (src_t == MLOAD_K_F16 || src_t == MLOAD_K_BF16) ((unsigned short *)dst)[i] = ((const unsigned short *)src)[i];
        else ((unsigned char *)dst)[i] = ((const unsigned char *)src)[i];
    } else {
        mload_k_store(dst, dst_t, i, mload_k_load(src, src_t, i), flags);
    }
}

#if defined(__CUDACC__)
MLOAD_KERNEL mload_cast_kernel(void *dst, int dst_t, const void *src, int src_t, mload_k64 n, unsigned flags) {
    mload_k64 i = (mload_k64)blockIdx.x * blockDim.x + threadIdx.x, step = (mload_k64)gridDim.x * blockDim.x;
    for (; i < n; i += step) mload_k_one(dst, dst_t, src, src_t, i, flags);
}
#else
MLOAD_KERNEL mload_cast_kernel(void *dst, int dst_t, const void *src, int src_t, mload_k64 n, unsigned flags) {
    mload_k64 i;
    for (i = 0; i < n; ++i) mload_k_one(dst, dst_t, src, src_t, i, flags);
}
#endif
