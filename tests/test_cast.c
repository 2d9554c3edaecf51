/* mload_cast: every supported pair checked against an independent
   reference written here.

   The reference never shifts or masks mantissas the way an implementation
   would. It works on exact values:
   - decoders turn each 8/16-bit code into a double from its fields with
     ldexp (all of these formats are exactly representable in a double);
   - narrowing to F16/BF16/F8_E4M3/F8_E5M2 looks the value up in a sorted
     table of every finite non-negative value of the target (built by decoding
     every code), picks the nearer neighbour by an exact comparison with their
     midpoint (always an exact double), ties to the code with the even last
     bit; one "virtual" entry above the largest finite value (largest + its
     ulp, i.e. the next value with an unbounded exponent) stands for overflow;
   - narrowing to F32 (from F64 or from 64-bit integers) takes any nearby
     float, walks with nextafterf until lo <= x < next(lo), and compares x
     with the exact midpoint of lo and next(lo) (2^128 stands in for the
     value after FLT_MAX);
   - U64/I64 -> F64 walks with nextafter the same way and compares the integer
     distances to the two neighbours;
   - integers are compared with doubles exactly (integer part and fraction
     separately), never through a lossy conversion;
   - float -> integer and integer -> integer go through (sign, 64-bit
     magnitude, "too large" flag) and clamp with plain comparisons. */
#include "harness.h"
#include <stdlib.h>
#include <math.h>
#include <float.h>


/* Random loops are 10x smaller under sanitizers. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_UNDEFINED__)
#define CV_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(undefined_behavior_sanitizer)
#define CV_SANITIZED 1
#endif
#endif
#ifdef CV_SANITIZED
#define CV_DIV 10
#else
#define CV_DIV 1
#endif

#define CV_MAX_SHOWN 5 /* mismatches printed per loop before it stops */

/* ------------------------------------------------------------------ basics */

static uint64_t rng_state;
static void rng_seed(uint64_t s) { rng_state = s ? s : 0x9E3779B97F4A7C15ull; }
static uint64_t rnd(void) { /* xorshift64 */
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return rng_state = x;
}
static uint32_t rnd32(void) { return (uint32_t)(rnd() >> 32); }
static int rnd_int(int lo, int hi) { return lo + (int)(rnd() % (uint64_t)(hi - lo + 1)); } /* [lo, hi] */

static size_t esize(mload_dtype t) {
    switch (t) {
    case MLOAD_DTYPE_F64: case MLOAD_DTYPE_I64: case MLOAD_DTYPE_U64: case MLOAD_DTYPE_C64: return 8;
    case MLOAD_DTYPE_F32: case MLOAD_DTYPE_I32: case MLOAD_DTYPE_U32: return 4;
    case MLOAD_DTYPE_F16: case MLOAD_DTYPE_BF16: case MLOAD_DTYPE_I16: case MLOAD_DTYPE_U16: return 2;
    case MLOAD_DTYPE_BOOL: case MLOAD_DTYPE_U8: case MLOAD_DTYPE_I8: case MLOAD_DTYPE_F8_E4M3: case MLOAD_DTYPE_F8_E5M2:
    case MLOAD_DTYPE_F8_E8M0: case MLOAD_DTYPE_F8_E4M3FNUZ: case MLOAD_DTYPE_F8_E5M2FNUZ: return 1;
    default: return 0;
    }
}
static int is_float_t(mload_dtype t) {
    return t == MLOAD_DTYPE_F64 || t == MLOAD_DTYPE_F32 || t == MLOAD_DTYPE_F16 || t == MLOAD_DTYPE_BF16 || t == MLOAD_DTYPE_F8_E4M3 ||
           t == MLOAD_DTYPE_F8_E5M2 || t == MLOAD_DTYPE_F8_E8M0 || t == MLOAD_DTYPE_F8_E4M3FNUZ || t == MLOAD_DTYPE_F8_E5M2FNUZ;
}
static int is_signed_t(mload_dtype t) {
    return t == MLOAD_DTYPE_I8 || t == MLOAD_DTYPE_I16 || t == MLOAD_DTYPE_I32 || t == MLOAD_DTYPE_I64;
}
static const char *tname(mload_dtype t) {
    const char *n = mload_dtype_name(t);
    return n ? n : "?";
}

static uint64_t get_le(const unsigned char *p, size_t n) {
    uint64_t v = 0;
    while (n--) v = (v << 8) | p[n];
    return v;
}
static void put_le(unsigned char *p, uint64_t v, size_t n) {
    size_t i;
    for (i = 0; i < n; ++i) {
        p[i] = (unsigned char)(v & 0xFF);
        v >>= 8;
    }
}
static float f32_of(uint32_t b) { float f; memcpy(&f, &b, 4); return f; }
static uint32_t bits_f32(float f) { uint32_t b; memcpy(&b, &f, 4); return b; }
static double f64_of(uint64_t b) { double d; memcpy(&d, &b, 8); return d; }
static uint64_t bits_f64(double d) { uint64_t b; memcpy(&b, &d, 8); return b; }

/* ------------------------------------------------------------- decoders */

/* value of a binary float with the given fields: (1.m or 0.m) * 2^(e - bias) */
static double fp_value(unsigned sign, unsigned e, unsigned m, int mbits, int bias) {
    double mag;
    if (e == 0) mag = ldexp((double)m, 1 - bias - mbits);
    else mag = ldexp((double)((1u << mbits) + m), (int)e - bias - mbits);
    return sign ? -mag : mag;
}
static double signed_nan(unsigned sign) { return copysign(NAN, sign ? -1.0 : 1.0); }
static double signed_inf(unsigned sign) { return sign ? -INFINITY : INFINITY; }

static double dec_f16(uint32_t c) {
    unsigned s = (c >> 15) & 1, e = (c >> 10) & 31, m = c & 1023;
    if (e == 31) return m ? signed_nan(s) : signed_inf(s);
    return fp_value(s, e, m, 10, 15);
}
static double dec_bf16(uint32_t c) {
    unsigned s = (c >> 15) & 1, e = (c >> 7) & 255, m = c & 127;
    if (e == 255) return m ? signed_nan(s) : signed_inf(s);
    return fp_value(s, e, m, 7, 127);
}
static double dec_e4m3(uint32_t c) { /* float8_e4m3fn: no Inf, S.1111.111 is NaN */
    unsigned s = (c >> 7) & 1, e = (c >> 3) & 15, m = c & 7;
    if (e == 15 && m == 7) return signed_nan(s);
    return fp_value(s, e, m, 3, 7);
}
static double dec_e5m2(uint32_t c) {
    unsigned s = (c >> 7) & 1, e = (c >> 2) & 31, m = c & 3;
    if (e == 31) return m ? signed_nan(s) : signed_inf(s);
    return fp_value(s, e, m, 2, 15);
}
static double dec_e8m0(uint32_t c) { /* 2^(c-127); 0xFF NaN; no zero, no sign */
    if (c == 0xFF) return NAN;
    return ldexp(1.0, (int)c - 127);
}
static double dec_e4m3fnuz(uint32_t c) { /* bias 8, 0x80 the only NaN, no -0 */
    if (c == 0x80) return NAN;
    return fp_value((c >> 7) & 1, (c >> 3) & 15, c & 7, 3, 8);
}
static double dec_e5m2fnuz(uint32_t c) { /* bias 16, 0x80 the only NaN, no Inf */
    if (c == 0x80) return NAN;
    return fp_value((c >> 7) & 1, (c >> 2) & 31, c & 3, 2, 16);
}

/* ------------------------------------------------------- exact input value */

typedef struct xval {
    int nan;       /* NaN */
    int sign;      /* sign bit; for a NaN without a sign (E8M0, FNUZ): -1 */
    int is_int;    /* magnitude is imag (exact integer), else fmag */
    uint64_t imag;
    double fmag;   /* |value| of a float input, may be +Inf */
} xval;

static void xval_float(xval *v, double d, int sign) {
    memset(v, 0, sizeof *v);
    v->nan = isnan(d) != 0;
    v->sign = sign;
    v->fmag = fabs(d);
}
static void xval_int(xval *v, int neg, uint64_t mag) {
    memset(v, 0, sizeof *v);
    v->is_int = 1;
    v->sign = neg && mag != 0;
    v->imag = mag;
}

/* Reads element 0 of p (dtype t, little-endian) as an exact value. */
static void decode_elem(mload_dtype t, const unsigned char *p, xval *v) {
    uint64_t b = get_le(p, esize(t));
    double d;
    switch (t) {
    case MLOAD_DTYPE_F64: xval_float(v, f64_of(b), (int)(b >> 63)); return;
    case MLOAD_DTYPE_F32: xval_float(v, (double)f32_of((uint32_t)b), (int)(b >> 31)); return;
    case MLOAD_DTYPE_F16: d = dec_f16((uint32_t)b); xval_float(v, d, (int)(b >> 15)); return;
    case MLOAD_DTYPE_BF16: d = dec_bf16((uint32_t)b); xval_float(v, d, (int)(b >> 15)); return;
    case MLOAD_DTYPE_F8_E4M3: d = dec_e4m3((uint32_t)b); xval_float(v, d, (int)(b >> 7)); return;
    case MLOAD_DTYPE_F8_E5M2: d = dec_e5m2((uint32_t)b); xval_float(v, d, (int)(b >> 7)); return;
    case MLOAD_DTYPE_F8_E8M0: d = dec_e8m0((uint32_t)b); xval_float(v, d, isnan(d) ? -1 : 0); return;
    case MLOAD_DTYPE_F8_E4M3FNUZ: d = dec_e4m3fnuz((uint32_t)b); xval_float(v, d, isnan(d) ? -1 : signbit(d) != 0); return;
    case MLOAD_DTYPE_F8_E5M2FNUZ: d = dec_e5m2fnuz((uint32_t)b); xval_float(v, d, isnan(d) ? -1 : signbit(d) != 0); return;
    case MLOAD_DTYPE_BOOL: xval_int(v, 0, b != 0); return;
    case MLOAD_DTYPE_U8: case MLOAD_DTYPE_U16: case MLOAD_DTYPE_U32: case MLOAD_DTYPE_U64: xval_int(v, 0, b); return;
    case MLOAD_DTYPE_I8: case MLOAD_DTYPE_I16: case MLOAD_DTYPE_I32: case MLOAD_DTYPE_I64: {
        unsigned nb = (unsigned)esize(t) * 8;
        int neg = (int)((b >> (nb - 1)) & 1);
        uint64_t mask = nb == 64 ? ~0ull : ((1ull << nb) - 1);
        /* magnitude of a negative two's complement value: (~b + 1) in nb bits */
        xval_int(v, neg, neg ? ((~b + 1) & mask) : b);
        return;
    }
    default: memset(v, 0, sizeof *v); return;
    }
}

/* -1, 0, 1 as the integer v is below, equal to or above the double d >= 0 */
static int cmp_u64_double(uint64_t v, double d) {
    double fl;
    uint64_t fi;
    if (d >= 18446744073709551616.0) return -1; /* 2^64, and +Inf */
    fl = floor(d);
    fi = (uint64_t)fl;
    if (v != fi) return v < fi ? -1 : 1;
    return d > fl ? -1 : 0;
}
/* compares |value| with d >= 0 exactly */
static int cmp_mag(const xval *v, double d) {
    if (v->is_int) return cmp_u64_double(v->imag, d);
    return v->fmag < d ? -1 : v->fmag > d ? 1 : 0;
}

/* ----------------------------------------------------- value tables */

typedef struct tentry { double v; uint32_t code; } tentry;
typedef struct ftab {
    int n;                    /* finite non-negative values in e[0..n-1]; e[n] is virtual */
    tentry e[32768 + 1];
} ftab;
static ftab tab_f16, tab_bf16, tab_e4m3, tab_e5m2, tab_e4m3fnuz, tab_e5m2fnuz;
static int tabs_ok = -1;

static int cmp_tentry(const void *a, const void *b) {
    double x = ((const tentry *)a)->v, y = ((const tentry *)b)->v;
    return x < y ? -1 : x > y ? 1 : 0;
}
static int build_tab(ftab *t, double (*dec)(uint32_t), unsigned bits) {
    uint32_t c, ncodes = 1u << (bits - 1); /* sign bit clear */
    int i;
    t->n = 0;
    for (c = 0; c < ncodes; ++c) {
        double d = dec(c);
        if (!isfinite(d)) continue;
        t->e[t->n].v = d;
        t->e[t->n].code = c;
        t->n++;
    }
    qsort(t->e, (size_t)t->n, sizeof t->e[0], cmp_tentry);
    for (i = 1; i < t->n; ++i)
        if (!(t->e[i - 1].v < t->e[i].v)) return 0;
    if (t->e[0].v != 0 || signbit(t->e[0].v)) return 0;
    /* the value after the largest one with an unbounded exponent: the top
       binade's spacing is constant, so it is max + (max - previous); its code
       would be the next one, whose last bit decides ties */
    t->e[t->n].v = 2 * t->e[t->n - 1].v - t->e[t->n - 2].v;
    t->e[t->n].code = t->e[t->n - 1].code + 1;
    return 1;
}
static int tables_ready(void) {
    if (tabs_ok < 0) {
        tabs_ok = build_tab(&tab_f16, dec_f16, 16) && build_tab(&tab_bf16, dec_bf16, 16) &&
                  build_tab(&tab_e4m3, dec_e4m3, 8) && build_tab(&tab_e5m2, dec_e5m2, 8) &&
                  build_tab(&tab_e4m3fnuz, dec_e4m3fnuz, 8) && build_tab(&tab_e5m2fnuz, dec_e5m2fnuz, 8) &&
                  tab_e4m3fnuz.n == 128 && tab_e5m2fnuz.n == 128 && tab_e4m3fnuz.e[127].v == 240 &&
                  tab_e5m2fnuz.e[127].v == 57344 && tab_e4m3fnuz.e[128].v == 256 && tab_e5m2fnuz.e[128].v == 65536 &&
                  tab_f16.n == 31744 && tab_bf16.n == 32640 && tab_e4m3.n == 127 && tab_e5m2.n == 124 &&
                  tab_f16.e[tab_f16.n - 1].v == 65504 && tab_e4m3.e[tab_e4m3.n - 1].v == 448 &&
                  tab_e5m2.e[tab_e5m2.n - 1].v == 57344 && tab_e4m3.e[tab_e4m3.n].v == 480 &&
                  tab_f16.e[tab_f16.n].v == 65536 && tab_e5m2.e[tab_e5m2.n].v == 65536;
        if (!tabs_ok) fprintf(stderr, "  test_convert: reference tables are wrong\n");
    }
    return tabs_ok;
}

/* Code of |v| rounded to nearest (ties to the even code) in t, or -1 when
   it rounds to the virtual entry or beyond (overflow). */
static long tab_round(const ftab *t, const xval *v) {
    int lo = 0, hi = t->n + 1, c;
    double mid;
    while (hi - lo > 1) { /* largest lo with e[lo].v <= |v| */
        int m = (lo + hi) / 2;
        if (cmp_mag(v, t->e[m].v) >= 0) lo = m;
        else hi = m;
    }
    if (lo == t->n) return -1;
    if (cmp_mag(v, t->e[lo].v) == 0) return (long)t->e[lo].code;
    mid = (t->e[lo].v + t->e[lo + 1].v) / 2; /* exact: both have few bits */
    c = cmp_mag(v, mid);
    if (c == 0) c = (t->e[lo].code & 1) ? 1 : -1;
    if (c < 0) return (long)t->e[lo].code;
    return lo + 1 == t->n ? -1 : (long)t->e[lo + 1].code;
}

/* F32 bits of |v| correctly rounded, or -1 for overflow. */
static int64_t f32_round(const xval *v) {
    float lo;
    double hi;
    uint32_t lo_b, hi_b;
    int c;
    if (cmp_mag(v, FLT_MAX) >= 0) {
        lo = FLT_MAX;
    } else {
        lo = v->is_int ? (float)v->imag : (float)v->fmag; /* any nearby float */
        while (cmp_mag(v, lo) < 0) lo = nextafterf(lo, 0.0f);
        while (cmp_mag(v, nextafterf(lo, INFINITY)) >= 0) lo = nextafterf(lo, INFINITY);
    }
    lo_b = bits_f32(lo);
    if (cmp_mag(v, lo) == 0) return lo_b;
    if (lo == FLT_MAX) {
        hi = ldexp(1.0, 128);
        hi_b = 0x7F800000u;
    } else {
        float h = nextafterf(lo, INFINITY);
        hi = h;
        hi_b = bits_f32(h);
    }
    c = cmp_mag(v, ((double)lo + hi) / 2); /* exact midpoint: 25 bits */
    if (c == 0) c = (lo_b & 1) ? 1 : -1;
    if (c < 0) return lo_b;
    return hi_b == 0x7F800000u ? -1 : (int64_t)hi_b;
}

/* F64 bits of the integer m correctly rounded. */
static uint64_t f64_round_u64(uint64_t m) {
    double lo = (double)m, hi;
    uint64_t d, u, lo_b;
    while (cmp_u64_double(m, lo) < 0) lo = nextafter(lo, 0.0);
    while (cmp_u64_double(m, nextafter(lo, INFINITY)) >= 0) lo = nextafter(lo, INFINITY);
    lo_b = bits_f64(lo);
    d = m - (uint64_t)lo; /* lo <= m < 2^64 is an integer */
    if (d == 0) return lo_b;
    hi = nextafter(lo, INFINITY); /* may be 2^64 */
    u = (uint64_t)(hi - lo);      /* a power of two <= 2^11 */
    if (2 * d < u) return lo_b;
    if (2 * d > u) return bits_f64(hi);
    return (lo_b & 1) ? bits_f64(hi) : lo_b;
}

/* ------------------------------------------------------- reference */

enum { EXP_EXACT, EXP_NAN_SIGNED, EXP_NAN_ANY };
typedef struct expv { uint64_t bits; int mode; } expv;

static int nan_code(mload_dtype t, uint64_t b) {
    switch (t) {
    case MLOAD_DTYPE_F64: return (b & 0x7FFFFFFFFFFFFFFFull) > 0x7FF0000000000000ull;
    case MLOAD_DTYPE_F32: return (b & 0x7FFFFFFFu) > 0x7F800000u;
    case MLOAD_DTYPE_F16: return (b & 0x7FFF) > 0x7C00;
    case MLOAD_DTYPE_BF16: return (b & 0x7FFF) > 0x7F80;
    case MLOAD_DTYPE_F8_E5M2: return (b & 0x7F) > 0x7C;
    case MLOAD_DTYPE_F8_E4M3: return (b & 0x7F) == 0x7F;
    case MLOAD_DTYPE_F8_E4M3FNUZ: case MLOAD_DTYPE_F8_E5M2FNUZ: return b == 0x80;
    default: return 0;
    }
}

static int is_fnuz(mload_dtype t) { return t == MLOAD_DTYPE_F8_E4M3FNUZ || t == MLOAD_DTYPE_F8_E5M2FNUZ; }
static int is_f8_dst(mload_dtype t) { return t == MLOAD_DTYPE_F8_E4M3 || t == MLOAD_DTYPE_F8_E5M2 || is_fnuz(t); }
static const ftab *tab_of(mload_dtype t) {
    switch (t) {
    case MLOAD_DTYPE_F16: return &tab_f16;
    case MLOAD_DTYPE_BF16: return &tab_bf16;
    case MLOAD_DTYPE_F8_E4M3: return &tab_e4m3;
    case MLOAD_DTYPE_F8_E4M3FNUZ: return &tab_e4m3fnuz;
    case MLOAD_DTYPE_F8_E5M2FNUZ: return &tab_e5m2fnuz;
    default: return &tab_e5m2;
    }
}

/* Expected dst element for the exact input v. */
static void ref_convert(const xval *v, mload_dtype dst, uint32_t flags, expv *out) {
    unsigned nb = (unsigned)esize(dst) * 8;
    uint64_t sbit = 1ull << (nb - 1);
    int nonsat = (flags & MLOAD_F8_OVERFLOW_NONSAT) != 0;
    out->mode = EXP_EXACT;
    if (dst == MLOAD_DTYPE_BOOL) {
        out->bits = v->nan || (v->is_int ? v->imag != 0 : v->fmag != 0);
        return;
    }
    if (is_float_t(dst)) {
        uint64_t ovf = 0, nanb = 0;
        long c = 0;
        switch (dst) {
        case MLOAD_DTYPE_F64: nanb = 0x7FF8000000000000ull; break;
        case MLOAD_DTYPE_F32: nanb = 0x7FC00000u; ovf = 0x7F800000u; break;
        case MLOAD_DTYPE_F16: nanb = 0x7E00; ovf = 0x7C00; break;
        case MLOAD_DTYPE_BF16: nanb = 0x7FC0; ovf = 0x7F80; break;
        case MLOAD_DTYPE_F8_E4M3: nanb = 0x7F; ovf = nonsat ? 0x7F : 0x7E; break;
        case MLOAD_DTYPE_F8_E5M2: nanb = 0x7E; ovf = nonsat ? 0x7C : 0x7B; break;
        case MLOAD_DTYPE_F8_E4M3FNUZ: case MLOAD_DTYPE_F8_E5M2FNUZ: nanb = 0x80; ovf = nonsat ? 0x80 : 0x7F; break;
        default: break;
        }
        if (v->nan) {
            out->bits = nanb | (v->sign == 1 ? sbit : 0);
            out->mode = v->sign < 0 || is_fnuz(dst) ? EXP_NAN_ANY : EXP_NAN_SIGNED; /* FNUZ: one NaN, 0x80 */
            return;
        }
        switch (dst) {
        case MLOAD_DTYPE_F64: out->bits = v->is_int ? f64_round_u64(v->imag) : bits_f64(v->fmag); break;
        case MLOAD_DTYPE_F32: {
            int64_t r = f32_round(v);
            out->bits = r < 0 ? ovf : (uint64_t)r;
            break;
        }
        default: {
            c = tab_round(tab_of(dst), v);
            out->bits = c < 0 ? ovf : (uint64_t)c;
            break;
        }
        }
        /* FNUZ has no -0: a negative value that rounds to zero gives 0x00 */
        if (v->sign == 1 && !(is_fnuz(dst) && out->bits == 0)) out->bits |= sbit;
        return;
    }
    { /* integer destination */
        int neg, huge = 0;
        uint64_t mag = 0, r, mask = nb == 64 ? ~0ull : ((1ull << nb) - 1);
        if (v->nan) { out->bits = 0; return; }
        if (v->is_int) {
            neg = v->sign == 1;
            mag = v->imag;
        } else {
            double t = floor(v->fmag); /* truncation of the magnitude; Inf stays Inf */
            huge = t >= 18446744073709551616.0;
            if (!huge) mag = (uint64_t)t;
            neg = v->sign == 1 && (huge || mag != 0);
        }
        if (!is_signed_t(dst)) {
            if (neg) r = 0;
            else r = (huge || mag > mask) ? mask : mag;
        } else {
            uint64_t lim = 1ull << (nb - 1); /* |min| */
            if (neg) r = (huge || mag >= lim) ? (0 - lim) : (0 - mag);
            else r = (huge || mag >= lim) ? lim - 1 : mag;
        }
        out->bits = r & mask;
    }
}

static int exp_match(mload_dtype dst, uint64_t got, const expv *e) {
    uint64_t sbit = 1ull << (esize(dst) * 8 - 1);
    if (e->mode == EXP_EXACT) return got == e->bits;
    if (!nan_code(dst, got)) return 0;
    return e->mode == EXP_NAN_ANY || (got & sbit) == (e->bits & sbit);
}

/* ------------------------------------------------------- checking runs */

#define CV_GUARD 16

/* Converts n elements of src (dtype src_t) with the source and destination
   placed at the given byte offsets in fresh buffers (the source buffer is
   exactly as long as needed, so ASan sees over-reads), checks the result
   code, the guard bytes around the destination and every element against the
   reference (a byte copy when src_t == dst_t). Prints the first few
   mismatches; returns their number (0 = pass). */
static long conv_check_at(const char *what, mload_dtype src_t, const unsigned char *src, size_t n,
                          mload_dtype dst_t, uint32_t flags, size_t src_off, size_t dst_off,
                          unsigned char *out_copy) {
    size_t ss = esize(src_t), ds = esize(dst_t), i, total = CV_GUARD + dst_off + n * ds + CV_GUARD;
    unsigned char *sb = (unsigned char *)malloc(src_off + n * ss ? src_off + n * ss : 1);
    unsigned char *db = (unsigned char *)malloc(total), *d;
    long bad = 0;
    mload_result r;
    if (!sb || !db) {
        fprintf(stderr, "  %s: out of memory\n", what);
        free(sb);
        free(db);
        return 1;
    }
    if (n) memcpy(sb + src_off, src, n * ss);
    memset(db, 0xA5, total);
    d = db + CV_GUARD + dst_off;
    r = mload_cast(d, dst_t, sb + src_off, src_t, (uint64_t)n, flags, NULL);
    if (r != MLOAD_OK) {
        fprintf(stderr, "  %s: mload_cast(%s <- %s, n=%lu, flags=%u, NULL) gave %s\n", what, tname(dst_t),
                tname(src_t), (unsigned long)n, (unsigned)flags, mload_result_string(r));
        free(sb);
        free(db);
        return 1;
    }
    for (i = 0; i < total; ++i) {
        if (i == CV_GUARD + dst_off) i += n * ds;
        if (i < total && db[i] != 0xA5) {
            fprintf(stderr, "  %s: %s <- %s n=%lu wrote outside the destination (byte %ld)\n", what, tname(dst_t),
                    tname(src_t), (unsigned long)n, (long)i - (long)(CV_GUARD + dst_off));
            bad++;
            break;
        }
    }
    for (i = 0; i < n && bad < CV_MAX_SHOWN; ++i) {
        uint64_t got = get_le(d + i * ds, ds), sbits = get_le(src + i * ss, ss);
        expv e;
        if (src_t == dst_t) {
            e.bits = sbits;
            e.mode = EXP_EXACT;
        } else {
            xval v;
            decode_elem(src_t, src + i * ss, &v);
            ref_convert(&v, dst_t, flags, &e);
        }
        if (!exp_match(dst_t, got, &e)) {
            if (++bad <= CV_MAX_SHOWN)
                fprintf(stderr, "  %s: %s 0x%0*llx -> %s%s: got 0x%0*llx, expected %s0x%0*llx (element %lu)\n",
                        what, tname(src_t), (int)ss * 2, (unsigned long long)sbits, tname(dst_t),
                        (flags & MLOAD_F8_OVERFLOW_NONSAT) ? " NONSAT" : "", (int)ds * 2, (unsigned long long)got,
                        e.mode == EXP_EXACT ? "" : "a NaN like ", (int)ds * 2, (unsigned long long)e.bits,
                        (unsigned long)i);
        }
    }
    if (out_copy && n) memcpy(out_copy, d, n * ds);
    free(sb);
    free(db);
    return bad;
}
static long conv_check(const char *what, mload_dtype src_t, const unsigned char *src, size_t n, mload_dtype dst_t,
                       uint32_t flags) {
    return conv_check_at(what, src_t, src, n, dst_t, flags, 0, 0, NULL);
}

/* Runs conv_check over n elements in chunks; one failed CHECK at most. */
#define CV_CHUNK 65536
static void conv_check_all(const char *what, mload_dtype src_t, const unsigned char *src, size_t n,
                           mload_dtype dst_t, uint32_t flags) {
    size_t i, ss = esize(src_t);
    long bad = 0;
    for (i = 0; i < n && !bad; i += CV_CHUNK)
        bad = conv_check(what, src_t, src + i * ss, n - i < CV_CHUNK ? n - i : CV_CHUNK, dst_t, flags);
    if (bad) {
        th_failed_checks++;
        fprintf(stderr, "  FAIL %s:%d: %s: %s <- %s flags=%u mismatches (first shown)\n", __FILE__, __LINE__, what,
                tname(dst_t), tname(src_t), (unsigned)flags);
    }
}

static const mload_dtype all_dsts[] = {MLOAD_DTYPE_F64, MLOAD_DTYPE_F32, MLOAD_DTYPE_F16, MLOAD_DTYPE_BF16, MLOAD_DTYPE_F8_E4M3,
                                       MLOAD_DTYPE_F8_E5M2, MLOAD_DTYPE_BOOL, MLOAD_DTYPE_U8, MLOAD_DTYPE_I8, MLOAD_DTYPE_U16,
                                       MLOAD_DTYPE_I16, MLOAD_DTYPE_U32, MLOAD_DTYPE_I32, MLOAD_DTYPE_U64, MLOAD_DTYPE_I64,
                                       MLOAD_DTYPE_F8_E4M3FNUZ, MLOAD_DTYPE_F8_E5M2FNUZ};
#define N_DSTS (sizeof all_dsts / sizeof all_dsts[0])
static const mload_dtype narrow_dsts[] = {MLOAD_DTYPE_F16, MLOAD_DTYPE_BF16, MLOAD_DTYPE_F8_E4M3, MLOAD_DTYPE_F8_E5M2,
                                          MLOAD_DTYPE_F8_E4M3FNUZ, MLOAD_DTYPE_F8_E5M2FNUZ};
#define N_NARROW (sizeof narrow_dsts / sizeof narrow_dsts[0])

/* Every destination with the default flags, and with MLOAD_F8_OVERFLOW_NONSAT:
   for every destination when all_flags, else for the F8 ones only (the
   flag must not change the others). */
static void conv_check_every_dst(const char *what, mload_dtype src_t, const unsigned char *src, size_t n,
                                 int all_flags) {
    size_t k;
    for (k = 0; k < N_DSTS; ++k) {
        conv_check_all(what, src_t, src, n, all_dsts[k], MLOAD_F8_OVERFLOW_SATURATE);
        if (all_flags || is_f8_dst(all_dsts[k]))
            conv_check_all(what, src_t, src, n, all_dsts[k], MLOAD_F8_OVERFLOW_NONSAT);
    }
}

/* A growable array of elements of one dtype. */
typedef struct ebuf { unsigned char *p; size_t n, cap, es; } ebuf;
static void eb_init(ebuf *b, mload_dtype t) { memset(b, 0, sizeof *b); b->es = esize(t); }
static void eb_push(ebuf *b, uint64_t bits) {
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 1024;
        unsigned char *p = (unsigned char *)realloc(b->p, cap * b->es);
        if (!p) { fprintf(stderr, "out of memory\n"); exit(2); }
        b->p = p;
        b->cap = cap;
    }
    put_le(b->p + b->n * b->es, bits, b->es);
    b->n++;
}
static void eb_free(ebuf *b) { free(b->p); memset(b, 0, sizeof *b); }

/* F32 bits of a double that is known to be in float range (any rounding). */
static uint32_t f32_bits_near(double d) {
    if (d > FLT_MAX) return 0x7F800000u;
    if (d < -FLT_MAX) return 0xFF800000u;
    return bits_f32((float)d);
}

/* ------------------------------------------------------- 0. known answers */

typedef struct kat { mload_dtype src; uint64_t sbits; mload_dtype dst; uint32_t flags; uint64_t want; } kat;
#define NS MLOAD_F8_OVERFLOW_NONSAT
static const kat known[] = {
    /* the contract's examples */
    {MLOAD_DTYPE_F32, 0x43E80000u /* 464.0 */, MLOAD_DTYPE_F8_E4M3, 0, 0x7E},
    {MLOAD_DTYPE_F32, 0x43E80000u, MLOAD_DTYPE_F8_E4M3, NS, 0x7E},
    {MLOAD_DTYPE_F32, 0x43E80003u /* 464.0001f */, MLOAD_DTYPE_F8_E4M3, 0, 0x7E},
    {MLOAD_DTYPE_F32, 0x43E80003u, MLOAD_DTYPE_F8_E4M3, NS, 0x7F},
    {MLOAD_DTYPE_F32, 0xC3E80003u, MLOAD_DTYPE_F8_E4M3, 0, 0xFE},
    {MLOAD_DTYPE_F32, 0xC3E80003u, MLOAD_DTYPE_F8_E4M3, NS, 0xFF},
    /* FNUZ targets: no -0, one NaN (0x80), no Inf */
    {MLOAD_DTYPE_F32, 0x3F800000u /* 1.0 */, MLOAD_DTYPE_F8_E4M3FNUZ, 0, 0x40},
    {MLOAD_DTYPE_F32, 0x3F800000u, MLOAD_DTYPE_F8_E5M2FNUZ, 0, 0x40},
    {MLOAD_DTYPE_F32, 0x80000000u /* -0 */, MLOAD_DTYPE_F8_E4M3FNUZ, 0, 0x00},
    {MLOAD_DTYPE_F16, 0x8001 /* -tiny */, MLOAD_DTYPE_F8_E5M2FNUZ, 0, 0x00},
    {MLOAD_DTYPE_F32, 0xFFC00000u /* -NaN */, MLOAD_DTYPE_F8_E4M3FNUZ, 0, 0x80},
    {MLOAD_DTYPE_F32, 0x43960000u /* 300 */, MLOAD_DTYPE_F8_E4M3FNUZ, 0, 0x7F},
    {MLOAD_DTYPE_F32, 0xC3960000u /* -300 */, MLOAD_DTYPE_F8_E4M3FNUZ, 0, 0xFF},
    {MLOAD_DTYPE_F32, 0xC3960000u, MLOAD_DTYPE_F8_E4M3FNUZ, NS, 0x80},
    {MLOAD_DTYPE_F32, 0x7F800000u /* +Inf */, MLOAD_DTYPE_F8_E5M2FNUZ, 0, 0x7F},
    {MLOAD_DTYPE_F32, 0x7F800000u, MLOAD_DTYPE_F8_E5M2FNUZ, NS, 0x80},
    {MLOAD_DTYPE_F8_E4M3FNUZ, 0xFF /* -240: a tie, to -256 */, MLOAD_DTYPE_F8_E5M2FNUZ, 0, 0xE0},
    {MLOAD_DTYPE_F32, 0x43E00000u /* 448 */, MLOAD_DTYPE_F8_E4M3, NS, 0x7E},
    {MLOAD_DTYPE_F32, 0x476F0000u /* 61184 */, MLOAD_DTYPE_F8_E5M2, NS, 0x7B},
    {MLOAD_DTYPE_F32, 0x47700000u /* 61440 */, MLOAD_DTYPE_F8_E5M2, 0, 0x7B},
    {MLOAD_DTYPE_F32, 0x47700000u, MLOAD_DTYPE_F8_E5M2, NS, 0x7C},
    {MLOAD_DTYPE_F32, 0xC7700000u, MLOAD_DTYPE_F8_E5M2, NS, 0xFC},
    {MLOAD_DTYPE_F32, 0x477FE000u /* 65504 */, MLOAD_DTYPE_F16, 0, 0x7BFF},
    {MLOAD_DTYPE_F32, 0x477FEFFDu /* 65519.99f */, MLOAD_DTYPE_F16, 0, 0x7BFF},
    {MLOAD_DTYPE_F32, 0x477FF000u /* 65520 */, MLOAD_DTYPE_F16, 0, 0x7C00},
    {MLOAD_DTYPE_F32, 0xC77FF000u, MLOAD_DTYPE_F16, 0, 0xFC00},
    {MLOAD_DTYPE_U32, 70000, MLOAD_DTYPE_F16, 0, 0x7C00},
    {MLOAD_DTYPE_I64, 0x4000000000000001ull /* 2^62+1 */, MLOAD_DTYPE_F32, 0, 0x5E800000u},
    /* simple values */
    {MLOAD_DTYPE_F32, 0x3F800000u, MLOAD_DTYPE_F16, 0, 0x3C00},
    {MLOAD_DTYPE_F32, 0x3F800000u, MLOAD_DTYPE_BF16, 0, 0x3F80},
    {MLOAD_DTYPE_F32, 0x3F800000u, MLOAD_DTYPE_F8_E4M3, 0, 0x38},
    {MLOAD_DTYPE_F32, 0x3F800000u, MLOAD_DTYPE_F8_E5M2, 0, 0x3C},
    {MLOAD_DTYPE_F32, 0xC0400000u /* -3 */, MLOAD_DTYPE_F8_E4M3, 0, 0xC4},
    {MLOAD_DTYPE_F32, 0x80000000u, MLOAD_DTYPE_F16, 0, 0x8000},
    {MLOAD_DTYPE_F32, 0x80000000u, MLOAD_DTYPE_BF16, 0, 0x8000},
    {MLOAD_DTYPE_F32, 0x80000000u, MLOAD_DTYPE_F8_E4M3, 0, 0x80},
    {MLOAD_DTYPE_F32, 0x80000000u, MLOAD_DTYPE_F8_E5M2, 0, 0x80},
    {MLOAD_DTYPE_F32, 0x80000000u, MLOAD_DTYPE_F64, 0, 0x8000000000000000ull},
    {MLOAD_DTYPE_F32, 0xB0000000u /* -2^-31 */, MLOAD_DTYPE_F16, 0, 0x8000},
    {MLOAD_DTYPE_F32, 0x33000000u /* 2^-25: tie 0 / 2^-24 */, MLOAD_DTYPE_F16, 0, 0x0000},
    {MLOAD_DTYPE_F32, 0x33000001u, MLOAD_DTYPE_F16, 0, 0x0001},
    {MLOAD_DTYPE_F32, 0x33C00000u /* 3*2^-25 */, MLOAD_DTYPE_F16, 0, 0x0002},
    {MLOAD_DTYPE_F32, 0x387FE000u /* 2^-14 - 2^-25: tie */, MLOAD_DTYPE_F16, 0, 0x0400},
    {MLOAD_DTYPE_F32, 0x3A800000u /* 2^-10: tie 0 / 2^-9 */, MLOAD_DTYPE_F8_E4M3, 0, 0x00},
    {MLOAD_DTYPE_F32, 0xBA800000u, MLOAD_DTYPE_F8_E4M3, 0, 0x80},
    {MLOAD_DTYPE_F32, 0x3B400000u /* 3*2^-10 */, MLOAD_DTYPE_F8_E4M3, 0, 0x02},
    {MLOAD_DTYPE_F32, 0x37000000u /* 2^-17: tie 0 / 2^-16 */, MLOAD_DTYPE_F8_E5M2, 0, 0x00},
    {MLOAD_DTYPE_F32, 0x3F808000u /* 1 + 2^-8: tie */, MLOAD_DTYPE_BF16, 0, 0x3F80},
    {MLOAD_DTYPE_F32, 0x3F808001u, MLOAD_DTYPE_BF16, 0, 0x3F81},
    {MLOAD_DTYPE_F32, 0x3F818000u, MLOAD_DTYPE_BF16, 0, 0x3F82},
    {MLOAD_DTYPE_F32, 0x7F7F7FFFu, MLOAD_DTYPE_BF16, 0, 0x7F7F},
    {MLOAD_DTYPE_F32, 0x7F7F8000u, MLOAD_DTYPE_BF16, 0, 0x7F80},
    {MLOAD_DTYPE_F32, 0x7F7FFFFFu /* FLT_MAX */, MLOAD_DTYPE_BF16, 0, 0x7F80},
    {MLOAD_DTYPE_F32, 0x00000001u, MLOAD_DTYPE_BF16, 0, 0x0000},
    {MLOAD_DTYPE_F32, 0x00010000u, MLOAD_DTYPE_BF16, 0, 0x0001},
    {MLOAD_DTYPE_F32, 0x00018000u /* tie 1 / 2 */, MLOAD_DTYPE_BF16, 0, 0x0002},
    {MLOAD_DTYPE_F32, 0x7F800000u, MLOAD_DTYPE_F16, 0, 0x7C00},
    {MLOAD_DTYPE_F32, 0x7F800000u, MLOAD_DTYPE_F16, NS, 0x7C00},
    {MLOAD_DTYPE_F32, 0x7F800000u, MLOAD_DTYPE_F8_E4M3, 0, 0x7E},
    {MLOAD_DTYPE_F32, 0x7F800000u, MLOAD_DTYPE_F8_E4M3, NS, 0x7F},
    {MLOAD_DTYPE_F32, 0xFF800000u, MLOAD_DTYPE_F8_E4M3, 0, 0xFE},
    {MLOAD_DTYPE_F32, 0xFF800000u, MLOAD_DTYPE_F8_E4M3, NS, 0xFF},
    {MLOAD_DTYPE_F32, 0x7F800000u, MLOAD_DTYPE_F8_E5M2, 0, 0x7B},
    {MLOAD_DTYPE_F32, 0xFF800000u, MLOAD_DTYPE_F8_E5M2, NS, 0xFC},
    {MLOAD_DTYPE_F32, 0x7FC00000u, MLOAD_DTYPE_F8_E4M3, 0, 0x7F},
    {MLOAD_DTYPE_F32, 0xFFC00000u, MLOAD_DTYPE_F8_E4M3, 0, 0xFF},
    {MLOAD_DTYPE_F32, 0xFF800001u, MLOAD_DTYPE_F8_E4M3, NS, 0xFF},
    /* widening */
    {MLOAD_DTYPE_F16, 0x0001, MLOAD_DTYPE_F32, 0, 0x33800000u},
    {MLOAD_DTYPE_F16, 0x7BFF, MLOAD_DTYPE_F32, 0, 0x477FE000u},
    {MLOAD_DTYPE_F16, 0x8000, MLOAD_DTYPE_F32, 0, 0x80000000u},
    {MLOAD_DTYPE_F16, 0xFC00, MLOAD_DTYPE_F32, 0, 0xFF800000u},
    {MLOAD_DTYPE_F16, 0x3C01, MLOAD_DTYPE_F64, 0, 0x3FF0040000000000ull},
    {MLOAD_DTYPE_BF16, 0x3F81, MLOAD_DTYPE_F32, 0, 0x3F810000u},
    {MLOAD_DTYPE_BF16, 0x0001, MLOAD_DTYPE_F32, 0, 0x00010000u},
    {MLOAD_DTYPE_F8_E4M3, 0x01, MLOAD_DTYPE_F32, 0, 0x3B000000u},
    {MLOAD_DTYPE_F8_E4M3, 0x7E, MLOAD_DTYPE_F32, 0, 0x43E00000u},
    {MLOAD_DTYPE_F8_E4M3, 0xFE, MLOAD_DTYPE_F16, 0, 0xDF00},
    {MLOAD_DTYPE_F8_E4M3, 0x78 /* 256 */, MLOAD_DTYPE_BF16, 0, 0x4380},
    {MLOAD_DTYPE_F8_E5M2, 0x7C, MLOAD_DTYPE_F32, 0, 0x7F800000u},
    {MLOAD_DTYPE_F8_E5M2, 0x01, MLOAD_DTYPE_F32, 0, 0x37800000u},
    {MLOAD_DTYPE_F8_E5M2, 0x7C, MLOAD_DTYPE_F8_E4M3, 0, 0x7E},
    {MLOAD_DTYPE_F8_E5M2, 0x7C, MLOAD_DTYPE_F8_E4M3, NS, 0x7F},
    {MLOAD_DTYPE_F8_E5M2, 0x7B, MLOAD_DTYPE_F8_E4M3, 0, 0x7E},
    {MLOAD_DTYPE_F8_E5M2, 0xFB, MLOAD_DTYPE_F8_E4M3, NS, 0xFF},
    {MLOAD_DTYPE_F8_E4M3, 0x7E, MLOAD_DTYPE_F8_E5M2, 0, 0x5F},
    {MLOAD_DTYPE_F8_E4M3, 0x01 /* 2^-9 */, MLOAD_DTYPE_F8_E5M2, 0, 0x18},
    {MLOAD_DTYPE_F8_E8M0, 0x7F, MLOAD_DTYPE_F32, 0, 0x3F800000u},
    {MLOAD_DTYPE_F8_E8M0, 0x00, MLOAD_DTYPE_F32, 0, 0x00400000u},
    {MLOAD_DTYPE_F8_E8M0, 0xFE, MLOAD_DTYPE_F32, 0, 0x7F000000u},
    {MLOAD_DTYPE_F8_E8M0, 0x00, MLOAD_DTYPE_F16, 0, 0x0000},
    {MLOAD_DTYPE_F8_E8M0, 0x8F /* 2^16 */, MLOAD_DTYPE_F16, 0, 0x7C00},
    {MLOAD_DTYPE_F8_E8M0, 0x86 /* 128 */, MLOAD_DTYPE_F8_E4M3, 0, 0x70},
    {MLOAD_DTYPE_F8_E8M0, 0xFE, MLOAD_DTYPE_F8_E4M3, NS, 0x7F},
    {MLOAD_DTYPE_F8_E8M0, 0x7F, MLOAD_DTYPE_I32, 0, 1},
    {MLOAD_DTYPE_F8_E4M3FNUZ, 0x7F, MLOAD_DTYPE_F32, 0, 0x43700000u},
    {MLOAD_DTYPE_F8_E4M3FNUZ, 0x08, MLOAD_DTYPE_F32, 0, 0x3C000000u},
    {MLOAD_DTYPE_F8_E4M3FNUZ, 0x01, MLOAD_DTYPE_F32, 0, 0x3A800000u},
    {MLOAD_DTYPE_F8_E4M3FNUZ, 0xFF, MLOAD_DTYPE_F32, 0, 0xC3700000u},
    {MLOAD_DTYPE_F8_E4M3FNUZ, 0x40 /* 1.0 */, MLOAD_DTYPE_F8_E4M3, 0, 0x38},
    {MLOAD_DTYPE_F8_E5M2FNUZ, 0x7F, MLOAD_DTYPE_F32, 0, 0x47600000u},
    {MLOAD_DTYPE_F8_E5M2FNUZ, 0x01, MLOAD_DTYPE_F32, 0, 0x37000000u},
    {MLOAD_DTYPE_F8_E5M2FNUZ, 0x40 /* 1.0 */, MLOAD_DTYPE_F16, 0, 0x3C00},
    /* F64: one rounding, never through F32 */
    {MLOAD_DTYPE_F64, 0x3FF0020000010000ull /* 1 + 2^-11 + 2^-36 */, MLOAD_DTYPE_F16, 0, 0x3C01},
    {MLOAD_DTYPE_F64, 0x3FF0020000000000ull /* 1 + 2^-11 */, MLOAD_DTYPE_F16, 0, 0x3C00},
    {MLOAD_DTYPE_F64, 0x3FF1000000000001ull /* 1 + 2^-4 + 2^-52 */, MLOAD_DTYPE_F8_E4M3, 0, 0x39},
    {MLOAD_DTYPE_F64, 0x3FF0100000000001ull /* 1 + 2^-8 + 2^-52 */, MLOAD_DTYPE_BF16, 0, 0x3F81},
    {MLOAD_DTYPE_F64, 0x3FF0000010000000ull /* 1 + 2^-24 */, MLOAD_DTYPE_F32, 0, 0x3F800000u},
    {MLOAD_DTYPE_F64, 0x3FF0000010000001ull, MLOAD_DTYPE_F32, 0, 0x3F800001u},
    {MLOAD_DTYPE_F64, 0x3FF0000030000000ull /* 1 + 3*2^-24 */, MLOAD_DTYPE_F32, 0, 0x3F800002u},
    {MLOAD_DTYPE_F64, 0x7E37E43C8800759Cull /* 1e300 */, MLOAD_DTYPE_F32, 0, 0x7F800000u},
    {MLOAD_DTYPE_F64, 0xFE37E43C8800759Cull, MLOAD_DTYPE_F32, 0, 0xFF800000u},
    {MLOAD_DTYPE_F64, 0x01A56E1FC2F8F359ull /* 1e-300 */, MLOAD_DTYPE_F32, 0, 0x00000000u},
    {MLOAD_DTYPE_F64, 0x81A56E1FC2F8F359ull, MLOAD_DTYPE_F32, 0, 0x80000000u},
    {MLOAD_DTYPE_F64, 0x3690000000000000ull /* 2^-150 */, MLOAD_DTYPE_F32, 0, 0x00000000u},
    {MLOAD_DTYPE_F64, 0x3690000000000001ull, MLOAD_DTYPE_F32, 0, 0x00000001u},
    {MLOAD_DTYPE_F64, 0x36A8000000000000ull /* 3*2^-150 */, MLOAD_DTYPE_F32, 0, 0x00000002u},
    {MLOAD_DTYPE_F64, 0x47EFFFFFEFFFFFFFull /* just below FLT_MAX + half ulp */, MLOAD_DTYPE_F32, 0, 0x7F7FFFFFu},
    {MLOAD_DTYPE_F64, 0x47EFFFFFF0000000ull /* FLT_MAX + half ulp: tie */, MLOAD_DTYPE_F32, 0, 0x7F800000u},
    {MLOAD_DTYPE_F64, 0x7FEFFFFFFFFFFFFFull, MLOAD_DTYPE_F8_E4M3, 0, 0x7E},
    {MLOAD_DTYPE_F64, 0x7FEFFFFFFFFFFFFFull, MLOAD_DTYPE_F8_E5M2, NS, 0x7C},
    {MLOAD_DTYPE_F64, 0x0000000000000001ull, MLOAD_DTYPE_F16, 0, 0x0000},
    {MLOAD_DTYPE_F64, 0x8000000000000001ull, MLOAD_DTYPE_F8_E4M3, 0, 0x80},
    {MLOAD_DTYPE_F64, 0x3FF0000000000000ull, MLOAD_DTYPE_F8_E5M2, 0, 0x3C},
    /* integers to float */
    {MLOAD_DTYPE_U16, 65535, MLOAD_DTYPE_F16, 0, 0x7C00},
    {MLOAD_DTYPE_U16, 65519, MLOAD_DTYPE_F16, 0, 0x7BFF},
    {MLOAD_DTYPE_I16, 0x8000 /* -32768 */, MLOAD_DTYPE_F16, 0, 0xF800},
    {MLOAD_DTYPE_U8, 255, MLOAD_DTYPE_F8_E4M3, 0, 0x78},
    {MLOAD_DTYPE_U8, 255, MLOAD_DTYPE_F8_E5M2, 0, 0x5C},
    {MLOAD_DTYPE_U16, 464, MLOAD_DTYPE_F8_E4M3, NS, 0x7E},
    {MLOAD_DTYPE_U16, 465, MLOAD_DTYPE_F8_E4M3, NS, 0x7F},
    {MLOAD_DTYPE_U16, 465, MLOAD_DTYPE_F8_E4M3, 0, 0x7E},
    {MLOAD_DTYPE_I16, 0xFE2F /* -465 */, MLOAD_DTYPE_F8_E4M3, NS, 0xFF},
    {MLOAD_DTYPE_U16, 257, MLOAD_DTYPE_BF16, 0, 0x4380},
    {MLOAD_DTYPE_U16, 259, MLOAD_DTYPE_BF16, 0, 0x4382},
    {MLOAD_DTYPE_I32, 16777217, MLOAD_DTYPE_F32, 0, 0x4B800000u},
    {MLOAD_DTYPE_I32, 16777219, MLOAD_DTYPE_F32, 0, 0x4B800002u},
    {MLOAD_DTYPE_I32, 0x7FFFFFFF, MLOAD_DTYPE_F32, 0, 0x4F000000u},
    {MLOAD_DTYPE_I32, 0x80000000u, MLOAD_DTYPE_F32, 0, 0xCF000000u},
    {MLOAD_DTYPE_U32, 0xFFFFFFFFu, MLOAD_DTYPE_F32, 0, 0x4F800000u},
    {MLOAD_DTYPE_U32, 0xFFFFFFFFu, MLOAD_DTYPE_F16, NS, 0x7C00},
    {MLOAD_DTYPE_U64, 0xFFFFFFFFFFFFFFFFull, MLOAD_DTYPE_F32, 0, 0x5F800000u},
    {MLOAD_DTYPE_U64, 0xFFFFFFFFFFFFFFFFull, MLOAD_DTYPE_F64, 0, 0x43F0000000000000ull},
    {MLOAD_DTYPE_U64, 0xFFFFFFFFFFFFFBFFull, MLOAD_DTYPE_F64, 0, 0x43EFFFFFFFFFFFFFull},
    {MLOAD_DTYPE_U64, 0xFFFFFFFFFFFFFC00ull /* tie */, MLOAD_DTYPE_F64, 0, 0x43F0000000000000ull},
    {MLOAD_DTYPE_U64, 0xFFFFFF7FFFFFFFFFull, MLOAD_DTYPE_F32, 0, 0x5F7FFFFFu},
    {MLOAD_DTYPE_U64, 0xFFFFFF8000000000ull /* tie */, MLOAD_DTYPE_F32, 0, 0x5F800000u},
    {MLOAD_DTYPE_U64, 0xFFFFFFFFFFFFFFFFull, MLOAD_DTYPE_BF16, 0, 0x5F80},
    {MLOAD_DTYPE_I64, 0x8000000000000000ull, MLOAD_DTYPE_F32, 0, 0xDF000000u},
    {MLOAD_DTYPE_I64, 0x8000000000000000ull, MLOAD_DTYPE_F64, 0, 0xC3E0000000000000ull},
    {MLOAD_DTYPE_I64, 0x7FFFFFFFFFFFFFFFull, MLOAD_DTYPE_F64, 0, 0x43E0000000000000ull},
    {MLOAD_DTYPE_I64, 0x0020000000000001ull /* 2^53+1 */, MLOAD_DTYPE_F64, 0, 0x4340000000000000ull},
    {MLOAD_DTYPE_I64, 0x0020000000000003ull /* 2^53+3 */, MLOAD_DTYPE_F64, 0, 0x4340000000000002ull},
    {MLOAD_DTYPE_I64, 0xFFDFFFFFFFFFFFFDull /* -(2^53+3) */, MLOAD_DTYPE_F64, 0, 0xC340000000000002ull},
    {MLOAD_DTYPE_I64, 0x4000004000000000ull /* 2^62 + 2^38: tie */, MLOAD_DTYPE_F32, 0, 0x5E800000u},
    {MLOAD_DTYPE_I64, 0x4000004000000001ull, MLOAD_DTYPE_F32, 0, 0x5E800001u},
    {MLOAD_DTYPE_I64, 0x0000000001000001ull /* 2^24+1: tie */, MLOAD_DTYPE_F32, 0, 0x4B800000u},
    {MLOAD_DTYPE_I64, 0xFFFFFFFFFFFFFFFFull, MLOAD_DTYPE_F8_E4M3, 0, 0xB8},
    {MLOAD_DTYPE_I8, 0x80, MLOAD_DTYPE_F8_E5M2, 0, 0xD8},
    {MLOAD_DTYPE_BOOL, 0x02, MLOAD_DTYPE_F32, 0, 0x3F800000u},
    {MLOAD_DTYPE_BOOL, 0x80, MLOAD_DTYPE_F16, 0, 0x3C00},
    {MLOAD_DTYPE_BOOL, 0xFF, MLOAD_DTYPE_F8_E4M3, 0, 0x38},
    {MLOAD_DTYPE_BOOL, 0x00, MLOAD_DTYPE_F64, 0, 0},
    /* integer to integer */
    {MLOAD_DTYPE_I32, 0xFFFFFFFBu /* -5 */, MLOAD_DTYPE_U8, 0, 0},
    {MLOAD_DTYPE_I32, 300, MLOAD_DTYPE_U8, 0, 255},
    {MLOAD_DTYPE_U64, 0xFFFFFFFFFFFFFFFFull, MLOAD_DTYPE_I64, 0, 0x7FFFFFFFFFFFFFFFull},
    {MLOAD_DTYPE_U64, 0x8000000000000000ull, MLOAD_DTYPE_I64, 0, 0x7FFFFFFFFFFFFFFFull},
    {MLOAD_DTYPE_I64, 0xFFFFFFFFFFFFFFFFull, MLOAD_DTYPE_U64, 0, 0},
    {MLOAD_DTYPE_I64, 0x8000000000000000ull, MLOAD_DTYPE_I32, 0, 0x80000000u},
    {MLOAD_DTYPE_I64, 0x0000000100000000ull, MLOAD_DTYPE_U32, 0, 0xFFFFFFFFu},
    {MLOAD_DTYPE_I16, 0xFF7F /* -129 */, MLOAD_DTYPE_I8, 0, 0x80},
    {MLOAD_DTYPE_U16, 0x0100, MLOAD_DTYPE_I8, 0, 0x7F},
    {MLOAD_DTYPE_U8, 0xFF, MLOAD_DTYPE_I8, 0, 0x7F},
    {MLOAD_DTYPE_I8, 0xFF, MLOAD_DTYPE_I64, 0, 0xFFFFFFFFFFFFFFFFull},
    {MLOAD_DTYPE_I8, 0x80, MLOAD_DTYPE_U64, 0, 0},
    {MLOAD_DTYPE_U32, 0xFFFFFFFFu, MLOAD_DTYPE_I32, 0, 0x7FFFFFFFu},
    {MLOAD_DTYPE_BOOL, 0x07, MLOAD_DTYPE_I64, 0, 1},
    {MLOAD_DTYPE_U64, 0x0000000100000000ull, MLOAD_DTYPE_BOOL, 0, 1},
    {MLOAD_DTYPE_U16, 0x0100, MLOAD_DTYPE_BOOL, 0, 1},
    {MLOAD_DTYPE_I64, 0x8000000000000000ull, MLOAD_DTYPE_BOOL, 0, 1},
};
#undef NS

/* One element sbits of dtype src cast to dst with flags: the reference
   model must give want (else the table is wrong), and so must mload_cast,
   writing one element and nothing after it. label and i name the case in
   messages; *shown counts the mload_cast failures (the first 10 are shown). */
static void check_one_answer(const char *label, size_t i, mload_dtype src, uint64_t sbits, mload_dtype dst,
                             uint32_t flags, uint64_t want, int *shown) {
    unsigned char s[8], d[8 + 1];
    size_t ds = esize(dst);
    xval v;
    expv e;
    uint64_t got;
    mload_result r;
    put_le(s, sbits, esize(src));
    /* the reference agrees with the hand-computed answer */
    decode_elem(src, s, &v);
    ref_convert(&v, dst, flags, &e);
    if (e.bits != want) {
        fprintf(stderr, "  %s %lu: the reference gives 0x%llx, the table 0x%llx\n", label, (unsigned long)i,
                (unsigned long long)e.bits, (unsigned long long)want);
        CHECK(0);
    }
    memset(d, 0xA5, sizeof d);
    r = mload_cast(d, dst, s, src, 1, flags, NULL);
    got = get_le(d, ds);
    if (r != MLOAD_OK || got != want || d[ds] != 0xA5) {
        th_failed_checks++;
        if (++*shown <= 10)
            fprintf(stderr, "  FAIL %s %lu: %s 0x%llx -> %s flags=%u: %s, got 0x%llx, expected 0x%llx\n", label,
                    (unsigned long)i, tname(src), (unsigned long long)sbits, tname(dst), (unsigned)flags,
                    mload_result_string(r), (unsigned long long)got, (unsigned long long)want);
    }
}

static void test_convert_known_answers(void) {
    size_t i;
    int shown = 0;
    if (!tables_ready()) { CHECK(0); return; }
    for (i = 0; i < sizeof known / sizeof known[0]; ++i)
        check_one_answer("known answer", i, known[i].src, known[i].sbits, known[i].dst, known[i].flags, known[i].want,
                         &shown);
}

/* ------------------------------------------------------- 1. small floats */

/* every code of each (8- or 16-bit) source dtype to every destination */
static void check_every_code(const char *label, const mload_dtype *srcs, size_t n) {
    size_t k;
    for (k = 0; k < n; ++k) {
        ebuf b;
        uint64_t c, nc = 1ull << (esize(srcs[k]) * 8);
        eb_init(&b, srcs[k]);
        for (c = 0; c < nc; ++c) eb_push(&b, c);
        conv_check_every_dst(label, srcs[k], b.p, b.n, 1);
        eb_free(&b);
    }
}

static void test_convert_small_float_sources_exhaustive(void) {
    static const mload_dtype srcs[] = {MLOAD_DTYPE_F16, MLOAD_DTYPE_BF16, MLOAD_DTYPE_F8_E4M3, MLOAD_DTYPE_F8_E5M2,
                                       MLOAD_DTYPE_F8_E8M0, MLOAD_DTYPE_F8_E4M3FNUZ, MLOAD_DTYPE_F8_E5M2FNUZ};
    if (!tables_ready()) { CHECK(0); return; }
    check_every_code("all codes", srcs, sizeof srcs / sizeof srcs[0]);
}

/* ------------------------------------------------------- 2. F32 narrowing */

/* adds F32 patterns x, x+1 ulp, x-1 ulp (toward zero / away), both signs */
static void push_f32_around(ebuf *b, uint32_t x) {
    uint32_t mag = x & 0x7FFFFFFFu;
    eb_push(b, mag);
    eb_push(b, mag | 0x80000000u);
    if (mag < 0x7F800000u) { eb_push(b, mag + 1); eb_push(b, (mag + 1) | 0x80000000u); }
    if (mag > 0) { eb_push(b, mag - 1); eb_push(b, (mag - 1) | 0x80000000u); }
}


static void push_f32_specials(ebuf *b) {
    static const uint32_t sp[] = {0x00000000u, 0x7F800000u, 0x7FC00000u, 0x7F800001u, 0x7FFFFFFFu, 0x7FA00000u,
                                  0x7FC00001u, 0x00000001u, 0x007FFFFFu, 0x00800000u, 0x7F7FFFFFu, 0x3F800000u,
                                  0x3F7FFFFFu, 0x3F800001u, 0x4B000000u, 0x5F000000u, 0x4F000000u};
    size_t i;
    for (i = 0; i < sizeof sp / sizeof sp[0]; ++i) {
        eb_push(b, sp[i]);
        eb_push(b, sp[i] | 0x80000000u);
    }
}

static void test_convert_f32_edges(void) {
    size_t k;
    int i;
    if (!tables_ready()) { CHECK(0); return; }
    for (k = 0; k < N_NARROW; ++k) {
        const ftab *t = tab_of(narrow_dsts[k]);
        ebuf b;
        eb_init(&b, MLOAD_DTYPE_F32);
        push_f32_specials(&b);
        /* every value of the target, every midpoint (also the one to the
           virtual value above the maximum), and one F32 ulp either side */
        for (i = 0; i <= t->n; ++i) {
            double mid;
            if (t->e[i].v <= FLT_MAX) push_f32_around(&b, f32_bits_near(t->e[i].v));
            if (i == t->n) break;
            mid = (t->e[i].v + t->e[i + 1].v) / 2;
            if (mid <= FLT_MAX && (double)(float)mid == mid) push_f32_around(&b, bits_f32((float)mid));
            else if (mid <= FLT_MAX) { CHECK(0); break; }
        }
        conv_check_all("F32 edges", MLOAD_DTYPE_F32, b.p, b.n, narrow_dsts[k], MLOAD_F8_OVERFLOW_SATURATE);
        conv_check_all("F32 edges", MLOAD_DTYPE_F32, b.p, b.n, narrow_dsts[k], MLOAD_F8_OVERFLOW_NONSAT);
        conv_check_all("F32 edges", MLOAD_DTYPE_F32, b.p, b.n, MLOAD_DTYPE_F64, 0);
        eb_free(&b);
    }
}

static void test_convert_f32_random_bits(void) {
    size_t i, k, n = 2000000 / CV_DIV;
    ebuf b;
    if (!tables_ready()) { CHECK(0); return; }
    rng_seed(0x5EED0001);
    eb_init(&b, MLOAD_DTYPE_F32);
    for (i = 0; i < n; ++i) eb_push(&b, rnd32());
    for (k = 0; k < N_NARROW; ++k) {
        conv_check_all("random F32 bits", MLOAD_DTYPE_F32, b.p, b.n, narrow_dsts[k], MLOAD_F8_OVERFLOW_SATURATE);
        if (is_f8_dst(narrow_dsts[k])) conv_check_all("random F32 bits", MLOAD_DTYPE_F32, b.p, b.n, narrow_dsts[k], MLOAD_F8_OVERFLOW_NONSAT);
    }
    eb_free(&b);
}

/* random F32 values whose magnitude lies from a quarter of the target's
   smallest subnormal to four times its largest value; a quarter of them sit
   within 2 F32 ulps of a rounding midpoint of the target */
static void test_convert_f32_random_in_range(void) {
    size_t i, k, n = 1000000 / CV_DIV;
    if (!tables_ready()) { CHECK(0); return; }
    rng_seed(0x5EED0002);
    for (k = 0; k < N_NARROW; ++k) {
        const ftab *t = tab_of(narrow_dsts[k]);
        int elo = ilogb(t->e[1].v) - 2, ehi = ilogb(t->e[t->n - 1].v) + 2;
        ebuf b;
        eb_init(&b, MLOAD_DTYPE_F32);
        for (i = 0; i < n; ++i) {
            uint32_t x;
            if (rnd() % 4 == 0) {
                int j = rnd_int(0, t->n - 1);
                double mid = (t->e[j].v + t->e[j + 1].v) / 2;
                x = f32_bits_near(mid);
                if (x < 0x7F800000u) x = (uint32_t)((int64_t)x + rnd_int(-2, 2));
                if (x >= 0x7F800000u) x = 0x7F7FFFFFu;
            } else {
                double d = ldexp((double)(0x800000u | (rnd32() & 0x7FFFFFu)), rnd_int(elo, ehi) - 23);
                x = f32_bits_near(d);
            }
            eb_push(&b, x | (rnd() & 1 ? 0x80000000u : 0));
        }
        conv_check_all("in-range F32", MLOAD_DTYPE_F32, b.p, b.n, narrow_dsts[k], MLOAD_F8_OVERFLOW_SATURATE);
        conv_check_all("in-range F32", MLOAD_DTYPE_F32, b.p, b.n, narrow_dsts[k], MLOAD_F8_OVERFLOW_NONSAT);
        eb_free(&b);
    }
}

/* F32 and F64 sources to the wide and integer destinations */
static void test_convert_f32_f64_other_dsts(void) {
    static const mload_dtype dsts[] = {MLOAD_DTYPE_F64, MLOAD_DTYPE_BOOL, MLOAD_DTYPE_U8, MLOAD_DTYPE_I8, MLOAD_DTYPE_U16, MLOAD_DTYPE_I16,
                                       MLOAD_DTYPE_U32, MLOAD_DTYPE_I32, MLOAD_DTYPE_U64, MLOAD_DTYPE_I64};
    size_t i, k, n = 300000 / CV_DIV;
    ebuf b32, b64;
    if (!tables_ready()) { CHECK(0); return; }
    rng_seed(0x5EED0003);
    eb_init(&b32, MLOAD_DTYPE_F32);
    eb_init(&b64, MLOAD_DTYPE_F64);
    push_f32_specials(&b32);
    for (i = 0; i < n; ++i) {
        /* magnitudes 2^-3 .. 2^70: fractions, every integer width */
        double d = ldexp((double)(rnd() >> 11), rnd_int(-3, 70) - 53) * (rnd() & 1 ? -1 : 1);
        eb_push(&b64, bits_f64(d));
        eb_push(&b32, f32_bits_near(d));
        eb_push(&b64, rnd());
        eb_push(&b32, rnd32());
    }
    for (k = 0; k < sizeof dsts / sizeof dsts[0]; ++k) {
        conv_check_all("F32 to wide/int", MLOAD_DTYPE_F32, b32.p, b32.n, dsts[k], 0);
        if (dsts[k] != MLOAD_DTYPE_F64) conv_check_all("F64 to int", MLOAD_DTYPE_F64, b64.p, b64.n, dsts[k], 0);
    }
    eb_free(&b32);
    eb_free(&b64);
}

/* ------------------------------------------------------- 3. F64 narrowing */

static void push_f64_pm(ebuf *b, double d) {
    eb_push(b, bits_f64(d));
    eb_push(b, bits_f64(-d));
}
/* d and its neighbours: one double ulp and a relative 2^-30 either side
   (the latter round to d in F32 whenever d is a float: they catch double
   rounding through F32) */
static void push_f64_around(ebuf *b, double d) {
    push_f64_pm(b, d);
    push_f64_pm(b, nextafter(d, INFINITY));
    if (d > 0) push_f64_pm(b, nextafter(d, 0.0));
    push_f64_pm(b, d + ldexp(d, -30));
    push_f64_pm(b, d - ldexp(d, -30));
}

static void test_convert_f64_narrowing(void) {
    static const mload_dtype dsts[] = {MLOAD_DTYPE_F32, MLOAD_DTYPE_F16, MLOAD_DTYPE_BF16, MLOAD_DTYPE_F8_E4M3, MLOAD_DTYPE_F8_E5M2};
    size_t i, k, n = 250000 / CV_DIV;
    int j;
    ebuf b;
    if (!tables_ready()) { CHECK(0); return; }
    rng_seed(0x5EED0004);
    eb_init(&b, MLOAD_DTYPE_F64);
    { /* specials */
        static const uint64_t sp[] = {0, 0x7FF0000000000000ull, 0x7FF8000000000000ull, 0x7FF0000000000001ull,
                                      0x7FF8000000000001ull, 0x7FFFFFFFFFFFFFFFull, 1, 0x000FFFFFFFFFFFFFull,
                                      0x0010000000000000ull, 0x7FEFFFFFFFFFFFFFull};
        for (i = 0; i < sizeof sp / sizeof sp[0]; ++i) {
            eb_push(&b, sp[i]);
            eb_push(&b, sp[i] | 0x8000000000000000ull);
        }
    }
    /* F32 edges: FLT_MAX and the overflow midpoint, the subnormal range */
    push_f64_around(&b, FLT_MAX);
    push_f64_around(&b, ldexp(1.0, 128) - ldexp(1.0, 103));
    push_f64_around(&b, ldexp(1.0, 128));
    push_f64_around(&b, ldexp(1.0, -150));
    push_f64_around(&b, ldexp(3.0, -150));
    push_f64_around(&b, ldexp(1.0, -149));
    push_f64_around(&b, ldexp(1.0, -126) - ldexp(1.0, -150));
    push_f64_around(&b, ldexp(1.0, -126));
    push_f64_around(&b, ldexp(1.0, -151));
    /* every midpoint and value of each narrow target */
    for (k = 0; k < N_NARROW; ++k) {
        const ftab *t = tab_of(narrow_dsts[k]);
        for (j = 0; j <= t->n; ++j) {
            push_f64_around(&b, t->e[j].v);
            if (j < t->n) push_f64_around(&b, (t->e[j].v + t->e[j + 1].v) / 2);
        }
    }
    /* random F32 midpoints (ties at F32 precision) */
    for (i = 0; i < n / 8; ++i) {
        uint32_t x = rnd32() & 0x7FFFFFFFu;
        if (x >= 0x7F7FFFFFu) x = 0x7F7FFFFEu;
        push_f64_around(&b, ((double)f32_of(x) + (double)f32_of(x + 1)) / 2);
    }
    /* random doubles: bit patterns, and values across every target's range */
    for (i = 0; i < n; ++i) {
        eb_push(&b, rnd());
        eb_push(&b, bits_f64(ldexp((double)((rnd() >> 11) | (1ull << 52)), rnd_int(-155, 130) - 52) *
                             (rnd() & 1 ? -1 : 1)));
        eb_push(&b, bits_f64(ldexp((double)((rnd() >> 11) | (1ull << 52)), rnd_int(-27, 18) - 52) *
                             (rnd() & 1 ? -1 : 1)));
    }
    for (k = 0; k < sizeof dsts / sizeof dsts[0]; ++k) {
        conv_check_all("F64 narrowing", MLOAD_DTYPE_F64, b.p, b.n, dsts[k], MLOAD_F8_OVERFLOW_SATURATE);
        if (k >= 3) conv_check_all("F64 narrowing", MLOAD_DTYPE_F64, b.p, b.n, dsts[k], MLOAD_F8_OVERFLOW_NONSAT);
    }
    eb_free(&b);
}

/* ------------------------------------------------------- 4. round trips */

/* src -> mid -> src is the identity for every non-NaN code of src (NaN stays
   a NaN of the same sign): mid holds every value of src exactly. (E5M2 goes
   back with MLOAD_F8_OVERFLOW_NONSAT: by default an infinite input saturates.) */
static long roundtrip(mload_dtype t, mload_dtype mid, uint32_t back_flags) {
    size_t es = esize(t), ms = esize(mid), n = (size_t)1 << (8 * es), c;
    unsigned char *a = (unsigned char *)malloc(n * es), *m = (unsigned char *)malloc(n * ms);
    unsigned char *back = (unsigned char *)malloc(n * es);
    uint64_t sbit = 1ull << (8 * es - 1);
    long shown = 0;
    if (!a || !m || !back) { free(a); free(m); free(back); return 1; }
    for (c = 0; c < n; ++c) put_le(a + es * c, c, es);
    memset(back, 0, n * es);
    if (mload_cast(m, mid, a, t, n, 0, NULL) != MLOAD_OK || mload_cast(back, t, m, mid, n, back_flags, NULL) != MLOAD_OK) {
        fprintf(stderr, "  %s -> %s -> %s failed\n", tname(t), tname(mid), tname(t));
        shown = 1;
    }
    for (c = 0; c < n && !shown; ++c) {
        uint64_t got = get_le(back + es * c, es);
        int ok = nan_code(t, c) ? nan_code(t, got) && (got & sbit) == (c & sbit) : got == c;
        if (!ok && ++shown <= CV_MAX_SHOWN)
            fprintf(stderr, "  %s 0x%0*lx -> %s 0x%0*llx -> %s 0x%0*llx\n", tname(t), (int)es * 2, (unsigned long)c,
                    tname(mid), (int)ms * 2, (unsigned long long)get_le(m + ms * c, ms), tname(t), (int)es * 2,
                    (unsigned long long)got);
    }
    free(a);
    free(m);
    free(back);
    return shown;
}

static void test_convert_roundtrips(void) {
    CHECK(roundtrip(MLOAD_DTYPE_F16, MLOAD_DTYPE_F32, 0) == 0);
    CHECK(roundtrip(MLOAD_DTYPE_BF16, MLOAD_DTYPE_F32, 0) == 0);
    CHECK(roundtrip(MLOAD_DTYPE_F16, MLOAD_DTYPE_F64, 0) == 0);
    CHECK(roundtrip(MLOAD_DTYPE_BF16, MLOAD_DTYPE_F64, 0) == 0);
    CHECK(roundtrip(MLOAD_DTYPE_F8_E4M3, MLOAD_DTYPE_F32, 0) == 0);
    CHECK(roundtrip(MLOAD_DTYPE_F8_E4M3, MLOAD_DTYPE_F32, MLOAD_F8_OVERFLOW_NONSAT) == 0);
    CHECK(roundtrip(MLOAD_DTYPE_F8_E4M3, MLOAD_DTYPE_F16, 0) == 0);
    CHECK(roundtrip(MLOAD_DTYPE_F8_E4M3, MLOAD_DTYPE_BF16, 0) == 0);
    CHECK(roundtrip(MLOAD_DTYPE_F8_E5M2, MLOAD_DTYPE_F32, MLOAD_F8_OVERFLOW_NONSAT) == 0);
    CHECK(roundtrip(MLOAD_DTYPE_F8_E5M2, MLOAD_DTYPE_F16, MLOAD_F8_OVERFLOW_NONSAT) == 0);
    CHECK(roundtrip(MLOAD_DTYPE_F8_E5M2, MLOAD_DTYPE_BF16, MLOAD_F8_OVERFLOW_NONSAT) == 0);
}

/* ------------------------------------------------------- 5. integer sources */

static void test_convert_int_small_exhaustive(void) {
    static const mload_dtype srcs[] = {MLOAD_DTYPE_U8, MLOAD_DTYPE_I8, MLOAD_DTYPE_U16, MLOAD_DTYPE_I16};
    if (!tables_ready()) { CHECK(0); return; }
    check_every_code("all values", srcs, 4);
}

static void push_int_pm(ebuf *b, uint64_t v) { eb_push(b, v); eb_push(b, 0 - v); }

static void test_convert_int_wide(void) {
    static const mload_dtype srcs[] = {MLOAD_DTYPE_I32, MLOAD_DTYPE_U32, MLOAD_DTYPE_I64, MLOAD_DTYPE_U64};
    static const uint64_t fixed[] = {0, 1, 2, 3, 127, 128, 255, 256, 448, 464, 465, 480, 32767, 32768, 57344,
                                     61439, 61440, 61441, 65504, 65519, 65520, 65535, 65536, 70000,
                                     0x7FFFFFFFull, 0x80000000ull, 0xFFFFFFFFull, 0x100000000ull,
                                     0x7FFFFFFFFFFFFFFFull, 0x8000000000000000ull, 0xFFFFFFFFFFFFFFFFull};
    static const int precs[] = {3, 4, 8, 11, 24, 53}; /* significand bits of E5M2 E4M3 BF16 F16 F32 F64 */
    size_t i, k, n = 60000 / CV_DIV;
    int e, p;
    ebuf b;
    if (!tables_ready()) { CHECK(0); return; }
    rng_seed(0x5EED0005);
    eb_init(&b, MLOAD_DTYPE_U64);
    for (i = 0; i < sizeof fixed / sizeof fixed[0]; ++i) {
        push_int_pm(&b, fixed[i]);
        push_int_pm(&b, fixed[i] + 1);
        push_int_pm(&b, fixed[i] - 1);
    }
    for (e = 0; e < 64; ++e) {
        uint64_t pw = 1ull << e;
        push_int_pm(&b, pw);
        push_int_pm(&b, pw + 1);
        push_int_pm(&b, pw - 1);
        /* ties at each precision: 2^e + (odd) * 2^(e-p), and 1 either side */
        for (p = 0; p < 6; ++p) {
            if (e - precs[p] < 0) continue;
            {
                uint64_t half = 1ull << (e - precs[p]), t1 = pw + half, t3 = pw + 3 * half;
                push_int_pm(&b, t1);
                push_int_pm(&b, t1 + 1);
                push_int_pm(&b, t1 - 1);
                push_int_pm(&b, t3);
                push_int_pm(&b, t3 + 1);
                push_int_pm(&b, t3 - 1);
                if (e >= 1) push_int_pm(&b, (pw << 1) - half); /* top of the binade: tie to 2^(e+1) */
            }
        }
    }
    for (i = 0; i < n; ++i) {
        eb_push(&b, rnd());
        eb_push(&b, rnd() >> rnd_int(0, 63));
        eb_push(&b, 0 - (rnd() >> rnd_int(0, 63)));
    }
    /* each source reads the same values truncated to its width */
    for (k = 0; k < 4; ++k) {
        ebuf s;
        size_t es = esize(srcs[k]);
        eb_init(&s, srcs[k]);
        for (i = 0; i < b.n; ++i) eb_push(&s, get_le(b.p + 8 * i, es));
        conv_check_every_dst("wide ints", srcs[k], s.p, s.n, 0);
        eb_free(&s);
    }
    eb_free(&b);
}

/* ------------------------------------------------------- 6. float -> int */

typedef struct f2i { mload_dtype src; uint64_t sbits; mload_dtype dst; uint64_t want; } f2i;
static const f2i f2i_cases[] = {
    {MLOAD_DTYPE_F32, 0x7FC00000u, MLOAD_DTYPE_I32, 0}, {MLOAD_DTYPE_F32, 0xFFC00000u, MLOAD_DTYPE_I8, 0},
    {MLOAD_DTYPE_F32, 0x7FC00000u, MLOAD_DTYPE_U64, 0}, {MLOAD_DTYPE_F32, 0x7F800001u, MLOAD_DTYPE_I64, 0},
    {MLOAD_DTYPE_F64, 0x7FF8000000000000ull, MLOAD_DTYPE_I64, 0}, {MLOAD_DTYPE_F16, 0x7E00, MLOAD_DTYPE_U16, 0},
    {MLOAD_DTYPE_F8_E4M3, 0x7F, MLOAD_DTYPE_U8, 0}, {MLOAD_DTYPE_F8_E8M0, 0xFF, MLOAD_DTYPE_I32, 0},
    {MLOAD_DTYPE_F8_E4M3FNUZ, 0x80, MLOAD_DTYPE_I16, 0},
    {MLOAD_DTYPE_F32, 0x7F800000u, MLOAD_DTYPE_I8, 0x7F}, {MLOAD_DTYPE_F32, 0x7F800000u, MLOAD_DTYPE_U8, 0xFF},
    {MLOAD_DTYPE_F32, 0x7F800000u, MLOAD_DTYPE_I16, 0x7FFF}, {MLOAD_DTYPE_F32, 0x7F800000u, MLOAD_DTYPE_U16, 0xFFFF},
    {MLOAD_DTYPE_F32, 0x7F800000u, MLOAD_DTYPE_I32, 0x7FFFFFFF}, {MLOAD_DTYPE_F32, 0x7F800000u, MLOAD_DTYPE_U32, 0xFFFFFFFFu},
    {MLOAD_DTYPE_F32, 0x7F800000u, MLOAD_DTYPE_I64, 0x7FFFFFFFFFFFFFFFull},
    {MLOAD_DTYPE_F32, 0x7F800000u, MLOAD_DTYPE_U64, 0xFFFFFFFFFFFFFFFFull},
    {MLOAD_DTYPE_F32, 0xFF800000u, MLOAD_DTYPE_I8, 0x80}, {MLOAD_DTYPE_F32, 0xFF800000u, MLOAD_DTYPE_U8, 0},
    {MLOAD_DTYPE_F32, 0xFF800000u, MLOAD_DTYPE_I16, 0x8000}, {MLOAD_DTYPE_F32, 0xFF800000u, MLOAD_DTYPE_I32, 0x80000000u},
    {MLOAD_DTYPE_F32, 0xFF800000u, MLOAD_DTYPE_I64, 0x8000000000000000ull}, {MLOAD_DTYPE_F32, 0xFF800000u, MLOAD_DTYPE_U64, 0},
    {MLOAD_DTYPE_F16, 0x7C00, MLOAD_DTYPE_U16, 0xFFFF}, {MLOAD_DTYPE_F16, 0xFC00, MLOAD_DTYPE_I64, 0x8000000000000000ull},
    {MLOAD_DTYPE_F8_E5M2, 0x7C, MLOAD_DTYPE_U32, 0xFFFFFFFFu},
    {MLOAD_DTYPE_F32, 0x80000000u, MLOAD_DTYPE_I32, 0}, {MLOAD_DTYPE_F32, 0x80000000u, MLOAD_DTYPE_U8, 0},
    {MLOAD_DTYPE_F64, 0x8000000000000000ull, MLOAD_DTYPE_I64, 0}, {MLOAD_DTYPE_F16, 0x8000, MLOAD_DTYPE_U64, 0},
    {MLOAD_DTYPE_F32, 0x3F000000u /* 0.5 */, MLOAD_DTYPE_I32, 0}, {MLOAD_DTYPE_F32, 0xBF000000u, MLOAD_DTYPE_I32, 0},
    {MLOAD_DTYPE_F32, 0xBF000000u, MLOAD_DTYPE_U32, 0}, {MLOAD_DTYPE_F32, 0x3FC00000u /* 1.5 */, MLOAD_DTYPE_I8, 1},
    {MLOAD_DTYPE_F32, 0xBFC00000u, MLOAD_DTYPE_I8, 0xFF}, {MLOAD_DTYPE_F32, 0xBFC00000u, MLOAD_DTYPE_I64, 0xFFFFFFFFFFFFFFFFull},
    {MLOAD_DTYPE_F32, 0xBFC00000u, MLOAD_DTYPE_U16, 0}, {MLOAD_DTYPE_F32, 0x40200000u /* 2.5 */, MLOAD_DTYPE_U8, 2},
    {MLOAD_DTYPE_F32, 0xBF666666u /* -0.9 */, MLOAD_DTYPE_I32, 0}, {MLOAD_DTYPE_F32, 0xBF666666u, MLOAD_DTYPE_U32, 0},
    {MLOAD_DTYPE_F32, 0xBF666666u, MLOAD_DTYPE_I8, 0}, {MLOAD_DTYPE_F32, 0xBF666666u, MLOAD_DTYPE_U64, 0},
    {MLOAD_DTYPE_F32, 0x437FE666u /* 255.9 */, MLOAD_DTYPE_U8, 255}, {MLOAD_DTYPE_F32, 0x43800000u /* 256 */, MLOAD_DTYPE_U8, 255},
    {MLOAD_DTYPE_F32, 0xBF800000u /* -1 */, MLOAD_DTYPE_U8, 0}, {MLOAD_DTYPE_F32, 0xBF800000u, MLOAD_DTYPE_I16, 0xFFFF},
    {MLOAD_DTYPE_F32, 0x42FFE666u /* 127.95 */, MLOAD_DTYPE_I8, 127}, {MLOAD_DTYPE_F32, 0x43000000u /* 128 */, MLOAD_DTYPE_I8, 127},
    {MLOAD_DTYPE_F32, 0xC300E666u /* -128.9 */, MLOAD_DTYPE_I8, 0x80}, {MLOAD_DTYPE_F32, 0xC3010000u /* -129 */, MLOAD_DTYPE_I8, 0x80},
    {MLOAD_DTYPE_F32, 0x4F000000u /* 2^31 */, MLOAD_DTYPE_I32, 0x7FFFFFFF},
    {MLOAD_DTYPE_F32, 0xCF000000u /* -2^31 */, MLOAD_DTYPE_I32, 0x80000000u},
    {MLOAD_DTYPE_F32, 0xCF000001u, MLOAD_DTYPE_I32, 0x80000000u},
    {MLOAD_DTYPE_F32, 0x4EFFFFFFu /* 2^31 - 128 */, MLOAD_DTYPE_I32, 0x7FFFFF80u},
    {MLOAD_DTYPE_F32, 0x4F800000u /* 2^32 */, MLOAD_DTYPE_U32, 0xFFFFFFFFu},
    {MLOAD_DTYPE_F32, 0x4F7FFFFFu /* 2^32 - 256 */, MLOAD_DTYPE_U32, 0xFFFFFF00u},
    {MLOAD_DTYPE_F32, 0x5F000000u /* 2^63 */, MLOAD_DTYPE_I64, 0x7FFFFFFFFFFFFFFFull},
    {MLOAD_DTYPE_F32, 0xDF000000u /* -2^63 */, MLOAD_DTYPE_I64, 0x8000000000000000ull},
    {MLOAD_DTYPE_F32, 0x5F800000u /* 2^64 */, MLOAD_DTYPE_U64, 0xFFFFFFFFFFFFFFFFull},
    {MLOAD_DTYPE_F32, 0x5F7FFFFFu /* 2^64 - 2^40 */, MLOAD_DTYPE_U64, 0xFFFFFF0000000000ull},
    {MLOAD_DTYPE_F32, 0x7149F2CAu /* 1e30 */, MLOAD_DTYPE_U64, 0xFFFFFFFFFFFFFFFFull},
    {MLOAD_DTYPE_F64, 0x43E0000000000000ull /* 2^63 */, MLOAD_DTYPE_I64, 0x7FFFFFFFFFFFFFFFull},
    {MLOAD_DTYPE_F64, 0xC3E0000000000000ull /* -2^63 */, MLOAD_DTYPE_I64, 0x8000000000000000ull},
    {MLOAD_DTYPE_F64, 0xC3E0000000000001ull, MLOAD_DTYPE_I64, 0x8000000000000000ull},
    {MLOAD_DTYPE_F64, 0x43DFFFFFFFFFFFFFull /* 2^63 - 1024 */, MLOAD_DTYPE_I64, 0x7FFFFFFFFFFFFC00ull},
    {MLOAD_DTYPE_F64, 0x46293E5939A08CEAull /* 1e30 */, MLOAD_DTYPE_U64, 0xFFFFFFFFFFFFFFFFull},
    {MLOAD_DTYPE_F64, 0x43F0000000000000ull /* 2^64 */, MLOAD_DTYPE_U64, 0xFFFFFFFFFFFFFFFFull},
    {MLOAD_DTYPE_F64, 0x43EFFFFFFFFFFFFFull /* 2^64 - 2048 */, MLOAD_DTYPE_U64, 0xFFFFFFFFFFFFF800ull},
    {MLOAD_DTYPE_F64, 0x41EFFFFFFFF00000ull /* 4294967295.5 */, MLOAD_DTYPE_U32, 0xFFFFFFFFu},
    {MLOAD_DTYPE_F64, 0x41DFFFFFFFE00000ull /* 2147483647.5 */, MLOAD_DTYPE_I32, 0x7FFFFFFFu},
    {MLOAD_DTYPE_F64, 0xC1E0000000100000ull /* -2147483648.5 */, MLOAD_DTYPE_I32, 0x80000000u},
    {MLOAD_DTYPE_F64, 0xC1E0000000200000ull /* -2147483649 */, MLOAD_DTYPE_I32, 0x80000000u},
    {MLOAD_DTYPE_F64, 0x3FEFFFFFFFFFFFFFull /* 1 - 2^-53 */, MLOAD_DTYPE_U64, 0},
    {MLOAD_DTYPE_F64, 0x0000000000000001ull, MLOAD_DTYPE_I8, 0},
    {MLOAD_DTYPE_F16, 0x7BFF /* 65504 */, MLOAD_DTYPE_U16, 65504}, {MLOAD_DTYPE_F16, 0x7BFF, MLOAD_DTYPE_I16, 0x7FFF},
    {MLOAD_DTYPE_F16, 0x7BFF, MLOAD_DTYPE_U8, 255}, {MLOAD_DTYPE_F16, 0xFBFF, MLOAD_DTYPE_I16, 0x8000},
    {MLOAD_DTYPE_F16, 0xFBFF, MLOAD_DTYPE_I32, 0xFFFF0020u}, {MLOAD_DTYPE_F16, 0x3BFF /* 0.9995 */, MLOAD_DTYPE_U8, 0},
    {MLOAD_DTYPE_BF16, 0x4F00 /* 2^31 */, MLOAD_DTYPE_I32, 0x7FFFFFFF}, {MLOAD_DTYPE_BF16, 0xDF00, MLOAD_DTYPE_I64, 0x8000000000000000ull},
    {MLOAD_DTYPE_F8_E4M3, 0x7E /* 448 */, MLOAD_DTYPE_U8, 255}, {MLOAD_DTYPE_F8_E4M3, 0x7E, MLOAD_DTYPE_I16, 448},
    {MLOAD_DTYPE_F8_E4M3, 0xFE, MLOAD_DTYPE_I8, 0x80}, {MLOAD_DTYPE_F8_E4M3, 0x33 /* 0.6875 */, MLOAD_DTYPE_I8, 0},
    {MLOAD_DTYPE_F8_E5M2, 0x7B, MLOAD_DTYPE_I16, 0x7FFF}, {MLOAD_DTYPE_F8_E5M2, 0x7B, MLOAD_DTYPE_U16, 57344},
    {MLOAD_DTYPE_F8_E8M0, 0xFE /* 2^127 */, MLOAD_DTYPE_U64, 0xFFFFFFFFFFFFFFFFull}, {MLOAD_DTYPE_F8_E8M0, 0x00, MLOAD_DTYPE_U64, 0},
    {MLOAD_DTYPE_F8_E8M0, 0x81 /* 4 */, MLOAD_DTYPE_I8, 4},
    {MLOAD_DTYPE_F8_E4M3FNUZ, 0xFF /* -240 */, MLOAD_DTYPE_I8, 0x80}, {MLOAD_DTYPE_F8_E5M2FNUZ, 0x7F, MLOAD_DTYPE_I16, 0x7FFF},
};

static void test_convert_float_to_int_rules(void) {
    size_t i;
    int shown = 0;
    for (i = 0; i < sizeof f2i_cases / sizeof f2i_cases[0]; ++i)
        check_one_answer("float->int case", i, f2i_cases[i].src, f2i_cases[i].sbits, f2i_cases[i].dst, 0,
                         f2i_cases[i].want, &shown);
}

/* ------------------------------------------------------- 7. BOOL */

static void test_convert_bool(void) {
    static const struct { mload_dtype src; uint64_t sbits; uint64_t want; } to_bool[] = {
        {MLOAD_DTYPE_F32, 0x7FC00000u, 1}, {MLOAD_DTYPE_F32, 0xFFFFFFFFu, 1}, {MLOAD_DTYPE_F32, 0x00000000u, 0},
        {MLOAD_DTYPE_F32, 0x80000000u, 0}, {MLOAD_DTYPE_F32, 0x00000001u, 1}, {MLOAD_DTYPE_F32, 0x80000001u, 1},
        {MLOAD_DTYPE_F32, 0xFF800000u, 1}, {MLOAD_DTYPE_F32, 0x3F000000u, 1},
        {MLOAD_DTYPE_F64, 0x0000000000000001ull, 1}, /* 2^-1074: zero in every narrower format */
        {MLOAD_DTYPE_F64, 0x01A56E1FC2F8F359ull, 1}, {MLOAD_DTYPE_F64, 0x8000000000000000ull, 0},
        {MLOAD_DTYPE_F64, 0xFFF8000000000000ull, 1}, {MLOAD_DTYPE_F16, 0x8000, 0}, {MLOAD_DTYPE_F16, 0x0001, 1},
        {MLOAD_DTYPE_F16, 0x7E00, 1}, {MLOAD_DTYPE_BF16, 0x8000, 0}, {MLOAD_DTYPE_BF16, 0x0001, 1},
        {MLOAD_DTYPE_F8_E4M3, 0x80, 0}, {MLOAD_DTYPE_F8_E4M3, 0x7F, 1}, {MLOAD_DTYPE_F8_E4M3, 0x01, 1},
        {MLOAD_DTYPE_F8_E5M2, 0x80, 0}, {MLOAD_DTYPE_F8_E5M2, 0xFD, 1}, {MLOAD_DTYPE_F8_E8M0, 0x00, 1},
        {MLOAD_DTYPE_F8_E8M0, 0xFF, 1}, {MLOAD_DTYPE_F8_E4M3FNUZ, 0x00, 0}, {MLOAD_DTYPE_F8_E4M3FNUZ, 0x80, 1},
        {MLOAD_DTYPE_F8_E5M2FNUZ, 0x00, 0}, {MLOAD_DTYPE_F8_E5M2FNUZ, 0x01, 1},
        {MLOAD_DTYPE_I64, 0x8000000000000000ull, 1}, {MLOAD_DTYPE_U64, 0x0000000100000000ull, 1},
        {MLOAD_DTYPE_U64, 0x8000000000000000ull, 1}, {MLOAD_DTYPE_I32, 0x00000100u, 1}, {MLOAD_DTYPE_U32, 0x80000000u, 1},
        {MLOAD_DTYPE_I16, 0x0100, 1}, {MLOAD_DTYPE_U16, 0x0100, 1}, {MLOAD_DTYPE_I8, 0x80, 1}, {MLOAD_DTYPE_U8, 0x00, 0},
        {MLOAD_DTYPE_I64, 0, 0}, {MLOAD_DTYPE_U64, 0, 0},
    };
    static const struct { mload_dtype dst; uint64_t one; } from_bool[] = {
        {MLOAD_DTYPE_F64, 0x3FF0000000000000ull}, {MLOAD_DTYPE_F32, 0x3F800000u}, {MLOAD_DTYPE_F16, 0x3C00},
        {MLOAD_DTYPE_BF16, 0x3F80}, {MLOAD_DTYPE_F8_E4M3, 0x38}, {MLOAD_DTYPE_F8_E5M2, 0x3C}, {MLOAD_DTYPE_U8, 1}, {MLOAD_DTYPE_I8, 1},
        {MLOAD_DTYPE_U16, 1}, {MLOAD_DTYPE_I16, 1}, {MLOAD_DTYPE_U32, 1}, {MLOAD_DTYPE_I32, 1}, {MLOAD_DTYPE_U64, 1}, {MLOAD_DTYPE_I64, 1},
    };
    unsigned char all[256], out[256 * 8];
    size_t i, k;
    for (i = 0; i < 256; ++i) all[i] = (unsigned char)i;
    for (i = 0; i < sizeof to_bool / sizeof to_bool[0]; ++i) {
        unsigned char s[8], d[2] = {0xA5, 0xA5};
        put_le(s, to_bool[i].sbits, esize(to_bool[i].src));
        CHECK_RES(mload_cast(d, MLOAD_DTYPE_BOOL, s, to_bool[i].src, 1, 0, NULL), MLOAD_OK);
        if (d[0] != to_bool[i].want || d[1] != 0xA5) {
            th_failed_checks++;
            fprintf(stderr, "  FAIL %s 0x%llx -> BOOL gave %u, expected %u\n", tname(to_bool[i].src),
                    (unsigned long long)to_bool[i].sbits, d[0], (unsigned)to_bool[i].want);
        }
    }
    /* every BOOL byte to every destination: != 0 counts as true */
    for (k = 0; k < sizeof from_bool / sizeof from_bool[0]; ++k) {
        size_t ds = esize(from_bool[k].dst);
        int bad = 0;
        CHECK_RES(mload_cast(out, from_bool[k].dst, all, MLOAD_DTYPE_BOOL, 256, 0, NULL), MLOAD_OK);
        for (i = 0; i < 256 && !bad; ++i) {
            uint64_t got = get_le(out + i * ds, ds), want = i ? from_bool[k].one : 0;
            if (got != want) {
                bad = 1;
                th_failed_checks++;
                fprintf(stderr, "  FAIL BOOL 0x%02x -> %s gave 0x%llx, expected 0x%llx\n", (unsigned)i,
                        tname(from_bool[k].dst), (unsigned long long)got, (unsigned long long)want);
            }
        }
    }
    /* BOOL -> BOOL is the identity pair: a byte copy (bytes other than 0/1 kept) */
    memset(out, 0, 256);
    CHECK_RES(mload_cast(out, MLOAD_DTYPE_BOOL, all, MLOAD_DTYPE_BOOL, 256, 0, NULL), MLOAD_OK);
    CHECK(memcmp(out, all, 256) == 0);
}

/* ------------------------------------------------------- 8. pairs, args */

static int is_src_ok(mload_dtype t) {
    return t == MLOAD_DTYPE_F64 || t == MLOAD_DTYPE_F32 || t == MLOAD_DTYPE_F16 || t == MLOAD_DTYPE_BF16 || t == MLOAD_DTYPE_F8_E4M3 ||
           t == MLOAD_DTYPE_F8_E5M2 || t == MLOAD_DTYPE_F8_E8M0 || t == MLOAD_DTYPE_F8_E4M3FNUZ || t == MLOAD_DTYPE_F8_E5M2FNUZ ||
           t == MLOAD_DTYPE_BOOL || t == MLOAD_DTYPE_U8 || t == MLOAD_DTYPE_I8 || t == MLOAD_DTYPE_U16 || t == MLOAD_DTYPE_I16 ||
           t == MLOAD_DTYPE_U32 || t == MLOAD_DTYPE_I32 || t == MLOAD_DTYPE_U64 || t == MLOAD_DTYPE_I64;
}
static int is_dst_ok(mload_dtype t) {
    return t == MLOAD_DTYPE_F64 || t == MLOAD_DTYPE_F32 || t == MLOAD_DTYPE_F16 || t == MLOAD_DTYPE_BF16 || t == MLOAD_DTYPE_F8_E4M3 ||
           t == MLOAD_DTYPE_F8_E5M2 || is_fnuz(t) || t == MLOAD_DTYPE_BOOL || t == MLOAD_DTYPE_U8 || t == MLOAD_DTYPE_I8 || t == MLOAD_DTYPE_U16 ||
           t == MLOAD_DTYPE_I16 || t == MLOAD_DTYPE_U32 || t == MLOAD_DTYPE_I32 || t == MLOAD_DTYPE_U64 || t == MLOAD_DTYPE_I64;
}

/* a call mload_cast(dst, d, src, s, count, overflow, NULL), with dst and/or
   src NULL where nulls says so, and the result it must give */
enum { CC_NULL_DST = 1, CC_NULL_SRC = 2 };
typedef struct cast_call {
    unsigned nulls;
    mload_dtype d, s;
    uint64_t count;
    mload_f8_overflow overflow;
    mload_result want;
} cast_call;

static void check_cast_calls(const cast_call *c, size_t n, void *dst, const void *src) {
    size_t i;
    for (i = 0; i < n; ++i) {
        void *d = (c[i].nulls & CC_NULL_DST) ? NULL : dst;
        const void *s = (c[i].nulls & CC_NULL_SRC) ? NULL : src;
        mload_result r = mload_cast(d, c[i].d, s, c[i].s, c[i].count, c[i].overflow, NULL);
        if (r != c[i].want) {
            th_failed_checks++;
            fprintf(stderr, "  FAIL mload_cast(%s, %s, %s, %s, %llu, %d) gave %s, expected %s\n", d ? "dst" : "NULL",
                    tname(c[i].d), s ? "src" : "NULL", tname(c[i].s), (unsigned long long)c[i].count,
                    (int)c[i].overflow, mload_result_string(r), mload_result_string(c[i].want));
        }
    }
}

/* all 22 x 22 pairs: supported, identity or MLOAD_ERR_UNSUPPORTED */
static void test_convert_pair_matrix(void) {
    static const cast_call named[] = {
        {0, MLOAD_DTYPE_F8_E8M0, MLOAD_DTYPE_F32, 1, 0, MLOAD_ERR_UNSUPPORTED},
        {0, MLOAD_DTYPE_C64, MLOAD_DTYPE_F32, 1, 0, MLOAD_ERR_UNSUPPORTED},
        {0, MLOAD_DTYPE_F32, MLOAD_DTYPE_F4, 2, 0, MLOAD_ERR_UNSUPPORTED},
        {0, MLOAD_DTYPE_F8_E4M3FNUZ, MLOAD_DTYPE_F16, 1, 0, MLOAD_OK},
        {0, MLOAD_DTYPE_F8_E5M2FNUZ, MLOAD_DTYPE_F8_E4M3FNUZ, 1, 0, MLOAD_OK},
        {0, MLOAD_DTYPE_F8_E8M0, MLOAD_DTYPE_F8_E4M3FNUZ, 1, 0, MLOAD_ERR_UNSUPPORTED},
        {0, MLOAD_DTYPE_F32, MLOAD_DTYPE_C64, 1, 0, MLOAD_ERR_UNSUPPORTED},
        {0, MLOAD_DTYPE_F6_E2M3, MLOAD_DTYPE_F6_E3M2, 4, 0, MLOAD_ERR_UNSUPPORTED},
        {0, MLOAD_DTYPE_F4, MLOAD_DTYPE_U8, 2, 0, MLOAD_ERR_UNSUPPORTED},
    };
    int s, d, shown = 0;
    unsigned char src[32], dst[32];
    memset(src, 0, sizeof src); /* zeros are valid in every dtype */
    for (s = 1; s < MLOAD_DTYPE_COUNT; ++s)
        for (d = 1; d < MLOAD_DTYPE_COUNT; ++d) {
            mload_result want = (s == d || (is_src_ok((mload_dtype)s) && is_dst_ok((mload_dtype)d)))
                                    ? MLOAD_OK : MLOAD_ERR_UNSUPPORTED;
            mload_result r = mload_cast(dst, (mload_dtype)d, src, (mload_dtype)s, 4, 0, NULL);
            if (r != want) {
                th_failed_checks++;
                if (++shown <= 10)
                    fprintf(stderr, "  FAIL %s <- %s gave %s, expected %s\n", tname((mload_dtype)d),
                            tname((mload_dtype)s), mload_result_string(r), mload_result_string(want));
            }
        }
    /* the named examples */
    check_cast_calls(named, sizeof named / sizeof named[0], dst, src);
}

static void test_convert_invalid_args(void) {
    static const cast_call calls[] = {
        {CC_NULL_DST, MLOAD_DTYPE_F32, MLOAD_DTYPE_F16, 1, 0, MLOAD_ERR_INVALID_ARGUMENT},
        {CC_NULL_SRC, MLOAD_DTYPE_F32, MLOAD_DTYPE_F16, 1, 0, MLOAD_ERR_INVALID_ARGUMENT},
        {CC_NULL_DST | CC_NULL_SRC, MLOAD_DTYPE_F32, MLOAD_DTYPE_F16, 3, 0, MLOAD_ERR_INVALID_ARGUMENT},
        {CC_NULL_DST, MLOAD_DTYPE_U8, MLOAD_DTYPE_U8, 1, 0, MLOAD_ERR_INVALID_ARGUMENT},
        {CC_NULL_SRC, MLOAD_DTYPE_U8, MLOAD_DTYPE_U8, 1, 0, MLOAD_ERR_INVALID_ARGUMENT},
        /* count 0 does nothing, NULL allowed */
        {CC_NULL_DST | CC_NULL_SRC, MLOAD_DTYPE_F32, MLOAD_DTYPE_F16, 0, 0, MLOAD_OK},
        {0, MLOAD_DTYPE_F16, MLOAD_DTYPE_F32, 0, 0, MLOAD_OK},
        {0, MLOAD_DTYPE_F8_E4M3, MLOAD_DTYPE_F32, 0, MLOAD_F8_OVERFLOW_NONSAT, MLOAD_OK},
        /* invalid dtypes (from here on) */
        {0, MLOAD_DTYPE_INVALID, MLOAD_DTYPE_F32, 1, 0, MLOAD_ERR_INVALID_ARGUMENT},
        {0, MLOAD_DTYPE_F32, MLOAD_DTYPE_INVALID, 1, 0, MLOAD_ERR_INVALID_ARGUMENT},
        {0, MLOAD_DTYPE_COUNT, MLOAD_DTYPE_F32, 1, 0, MLOAD_ERR_INVALID_ARGUMENT},
        {0, MLOAD_DTYPE_F32, MLOAD_DTYPE_COUNT, 1, 0, MLOAD_ERR_INVALID_ARGUMENT},
        {0, (mload_dtype)77, (mload_dtype)77, 1, 0, MLOAD_ERR_INVALID_ARGUMENT},
        {0, MLOAD_DTYPE_INVALID, MLOAD_DTYPE_INVALID, 1, 0, MLOAD_ERR_INVALID_ARGUMENT},
    };
    const size_t first_bad_dtype = 8, n = sizeof calls / sizeof calls[0];
    unsigned char src[16], dst[16];
    memset(src, 0, sizeof src);
    memset(dst, 0xA5, sizeof dst);
    check_cast_calls(calls, first_bad_dtype, dst, src);
    CHECK(dst[0] == 0xA5);
    check_cast_calls(calls + first_bad_dtype, n - first_bad_dtype, dst, src);
    CHECK(dst[0] == 0xA5);
}

/* every dtype to itself copies the bytes exactly, NaN payloads included */
static void test_convert_identity_copies(void) {
    int t;
    unsigned char src[3000], dst[3000 + CV_GUARD];
    size_t i;
    rng_seed(0x5EED0008);
    for (i = 0; i < sizeof src; ++i) src[i] = (unsigned char)rnd();
    for (t = 1; t < MLOAD_DTYPE_COUNT; ++t) {
        /* counts that fill whole bytes (F4: 2 per byte, F6: 4 per 3 bytes) */
        uint64_t count;
        size_t nbytes;
        if (t == MLOAD_DTYPE_F4) { count = 2 * 999; nbytes = 999; }
        else if (t == MLOAD_DTYPE_F6_E2M3 || t == MLOAD_DTYPE_F6_E3M2) { count = 4 * 750; nbytes = 3 * 750; }
        else { nbytes = (sizeof src / esize((mload_dtype)t)) * esize((mload_dtype)t) - 8; count = nbytes / esize((mload_dtype)t); }
        memset(dst, 0xA5, sizeof dst);
        if (mload_cast(dst, (mload_dtype)t, src, (mload_dtype)t, count, 0, NULL) != MLOAD_OK ||
            memcmp(dst, src, nbytes) != 0 || dst[nbytes] != 0xA5) {
            th_failed_checks++;
            fprintf(stderr, "  FAIL %s -> %s is not a byte copy of %lu bytes\n", tname((mload_dtype)t),
                    tname((mload_dtype)t), (unsigned long)nbytes);
        }
        memset(dst, 0xA5, sizeof dst);
        CHECK_RES(mload_cast(dst, (mload_dtype)t, src, (mload_dtype)t, count, MLOAD_F8_OVERFLOW_NONSAT, NULL), MLOAD_OK);
        CHECK(memcmp(dst, src, nbytes) == 0);
    }
    /* the non-canonical codes of the float formats survive */
    {
        static const uint32_t f32[] = {0x7F800001u, 0xFFC00123u, 0x7FBFFFFFu, 0x80000000u};
        unsigned char s[16], d[16];
        for (i = 0; i < 4; ++i) put_le(s + 4 * i, f32[i], 4);
        CHECK_RES(mload_cast(d, MLOAD_DTYPE_F32, s, MLOAD_DTYPE_F32, 4, 0, NULL), MLOAD_OK);
        CHECK(memcmp(d, s, 16) == 0);
        s[0] = 0xFF; s[1] = 0x7F; s[2] = 0xFD; s[3] = 0x80; /* E4M3 NaNs, E5M2 NaN, -0 */
        CHECK_RES(mload_cast(d, MLOAD_DTYPE_F8_E4M3, s, MLOAD_DTYPE_F8_E4M3, 4, 0, NULL), MLOAD_OK);
        CHECK(memcmp(d, s, 4) == 0);
        CHECK_RES(mload_cast(d, MLOAD_DTYPE_F8_E5M2, s, MLOAD_DTYPE_F8_E5M2, 4, MLOAD_F8_OVERFLOW_NONSAT, NULL), MLOAD_OK);
        CHECK(memcmp(d, s, 4) == 0);
    }
}

/* ------------------------------------------------------- 9, 10. layouts */

/* A source of n elements of dtype t: a mix of random codes, special values
   and values in the narrow formats' ranges. */
static void fill_src(ebuf *b, mload_dtype t, size_t n) {
    size_t i;
    eb_init(b, t);
    for (i = 0; i < n; ++i) {
        uint64_t r = rnd(), x;
        double d = ldexp((double)(rnd() >> 11), rnd_int(-30, 20) - 53) * (r & 1 ? -1 : 1);
        switch (t) {
        case MLOAD_DTYPE_F32:
            switch (r % 8) {
            case 0: x = rnd32(); break;
            case 1: {
                static const uint32_t sp[] = {0, 0x80000000u, 0x7F800000u, 0xFF800000u, 0x7FC00000u, 0xFFC00001u,
                                              0x43E80000u, 0x47700000u, 0x477FF000u, 0x00000001u, 0x33000000u,
                                              0x3F808000u};
                x = sp[(r >> 8) % (sizeof sp / sizeof sp[0])];
                break;
            }
            default: x = f32_bits_near(d); break;
            }
            break;
        case MLOAD_DTYPE_F64: x = (r % 8 == 0) ? rnd() : bits_f64(d); break;
        default: x = r >> 7; break; /* all bits random */
        }
        eb_push(b, x);
    }
}

typedef struct cpair { mload_dtype src, dst; uint32_t flags; } cpair;

static void test_convert_unaligned(void) {
    static const cpair pairs[] = {
        {MLOAD_DTYPE_F32, MLOAD_DTYPE_F16, 0}, {MLOAD_DTYPE_F32, MLOAD_DTYPE_BF16, 0}, {MLOAD_DTYPE_F32, MLOAD_DTYPE_F8_E4M3, 0},
        {MLOAD_DTYPE_F32, MLOAD_DTYPE_F8_E4M3, MLOAD_F8_OVERFLOW_NONSAT}, {MLOAD_DTYPE_F32, MLOAD_DTYPE_F8_E5M2, 0},
        {MLOAD_DTYPE_F32, MLOAD_DTYPE_F8_E5M2, MLOAD_F8_OVERFLOW_NONSAT}, {MLOAD_DTYPE_F16, MLOAD_DTYPE_F32, 0}, {MLOAD_DTYPE_BF16, MLOAD_DTYPE_F32, 0},
        {MLOAD_DTYPE_F8_E4M3, MLOAD_DTYPE_F32, 0}, {MLOAD_DTYPE_F8_E5M2, MLOAD_DTYPE_F32, 0}, {MLOAD_DTYPE_F8_E4M3, MLOAD_DTYPE_BF16, 0},
        {MLOAD_DTYPE_F8_E4M3, MLOAD_DTYPE_F16, 0}, {MLOAD_DTYPE_F16, MLOAD_DTYPE_BF16, 0}, {MLOAD_DTYPE_BF16, MLOAD_DTYPE_F16, 0},
        {MLOAD_DTYPE_F64, MLOAD_DTYPE_F32, 0}, {MLOAD_DTYPE_F32, MLOAD_DTYPE_F64, 0}, {MLOAD_DTYPE_F64, MLOAD_DTYPE_BF16, 0},
        {MLOAD_DTYPE_BF16, MLOAD_DTYPE_F64, 0}, {MLOAD_DTYPE_I32, MLOAD_DTYPE_F32, 0}, {MLOAD_DTYPE_F32, MLOAD_DTYPE_I32, 0},
        {MLOAD_DTYPE_I64, MLOAD_DTYPE_F32, 0}, {MLOAD_DTYPE_U8, MLOAD_DTYPE_F32, 0}, {MLOAD_DTYPE_I16, MLOAD_DTYPE_I8, 0}, {MLOAD_DTYPE_F32, MLOAD_DTYPE_F32, 0},
        {MLOAD_DTYPE_BF16, MLOAD_DTYPE_BF16, 0}, {MLOAD_DTYPE_F8_E8M0, MLOAD_DTYPE_F32, 0}, {MLOAD_DTYPE_F8_E4M3FNUZ, MLOAD_DTYPE_BF16, 0},
        {MLOAD_DTYPE_F16, MLOAD_DTYPE_F8_E4M3, 0}, {MLOAD_DTYPE_BF16, MLOAD_DTYPE_F8_E4M3, 0}, {MLOAD_DTYPE_F32, MLOAD_DTYPE_BOOL, 0},
    };
    static const size_t offs[][2] = {{1, 0}, {0, 1}, {1, 1}, {2, 0}, {0, 2}, {3, 1}, {1, 3}, {2, 3}, {3, 3}};
    size_t p, o, n = 300;
    if (!tables_ready()) { CHECK(0); return; }
    rng_seed(0x5EED0009);
    for (p = 0; p < sizeof pairs / sizeof pairs[0]; ++p) {
        ebuf b;
        unsigned char *aligned = (unsigned char *)malloc(n * 8), *un = (unsigned char *)malloc(n * 8);
        long bad;
        fill_src(&b, pairs[p].src, n);
        if (!aligned || !un) { free(aligned); free(un); eb_free(&b); CHECK(0); return; }
        bad = conv_check_at("aligned", pairs[p].src, b.p, n, pairs[p].dst, pairs[p].flags, 0, 0, aligned);
        for (o = 0; o < sizeof offs / sizeof offs[0] && !bad; ++o) {
            bad = conv_check_at("unaligned", pairs[p].src, b.p, n, pairs[p].dst, pairs[p].flags, offs[o][0],
                                offs[o][1], un);
            if (!bad && memcmp(aligned, un, n * esize(pairs[p].dst)) != 0) {
                fprintf(stderr, "  %s <- %s: src offset %lu dst offset %lu differs from the aligned result\n",
                        tname(pairs[p].dst), tname(pairs[p].src), (unsigned long)offs[o][0],
                        (unsigned long)offs[o][1]);
                bad = 1;
            }
        }
        if (bad) {
            th_failed_checks++;
            fprintf(stderr, "  FAIL unaligned %s <- %s\n", tname(pairs[p].dst), tname(pairs[p].src));
        }
        free(aligned);
        free(un);
        eb_free(&b);
    }
}

static void test_convert_lengths(void) {
    static const cpair pairs[] = {
        {MLOAD_DTYPE_BF16, MLOAD_DTYPE_F32, 0}, {MLOAD_DTYPE_F16, MLOAD_DTYPE_F32, 0}, {MLOAD_DTYPE_F8_E4M3, MLOAD_DTYPE_F32, 0},
        {MLOAD_DTYPE_F8_E4M3, MLOAD_DTYPE_BF16, 0}, {MLOAD_DTYPE_F32, MLOAD_DTYPE_BF16, 0}, {MLOAD_DTYPE_F32, MLOAD_DTYPE_F16, 0},
        {MLOAD_DTYPE_F32, MLOAD_DTYPE_F8_E4M3, 0}, {MLOAD_DTYPE_F32, MLOAD_DTYPE_F8_E4M3, MLOAD_F8_OVERFLOW_NONSAT},
        {MLOAD_DTYPE_F32, MLOAD_DTYPE_F8_E5M2, 0}, {MLOAD_DTYPE_F32, MLOAD_DTYPE_F8_E5M2, MLOAD_F8_OVERFLOW_NONSAT},
        {MLOAD_DTYPE_F8_E5M2, MLOAD_DTYPE_F32, 0}, {MLOAD_DTYPE_F16, MLOAD_DTYPE_BF16, 0}, {MLOAD_DTYPE_BF16, MLOAD_DTYPE_F16, 0},
        {MLOAD_DTYPE_F64, MLOAD_DTYPE_F32, 0}, {MLOAD_DTYPE_F32, MLOAD_DTYPE_F64, 0}, {MLOAD_DTYPE_I32, MLOAD_DTYPE_F32, 0},
        {MLOAD_DTYPE_F32, MLOAD_DTYPE_I32, 0}, {MLOAD_DTYPE_U8, MLOAD_DTYPE_F32, 0}, {MLOAD_DTYPE_F32, MLOAD_DTYPE_F32, 0},
    };
    static const size_t lens[] = {0, 1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 1023, 4097};
    size_t p, l;
    if (!tables_ready()) { CHECK(0); return; }
    rng_seed(0x5EED000A);
    for (p = 0; p < sizeof pairs / sizeof pairs[0]; ++p) {
        long bad = 0;
        for (l = 0; l < sizeof lens / sizeof lens[0] && !bad; ++l) {
            ebuf b;
            fill_src(&b, pairs[p].src, lens[l]);
            bad = conv_check_at("length", pairs[p].src, b.p, lens[l], pairs[p].dst, pairs[p].flags, 0, 0, NULL);
            if (bad) fprintf(stderr, "  (length %lu)\n", (unsigned long)lens[l]);
            eb_free(&b);
        }
        if (bad) {
            th_failed_checks++;
            fprintf(stderr, "  FAIL lengths %s <- %s\n", tname(pairs[p].dst), tname(pairs[p].src));
        }
    }
}

/* Every cast is bit-exact whatever the FP control register says: with
   DAZ and FTZ set (-ffast-math programs, game engines) widening used to
   flush subnormal inputs (BF16->F64: 254 of 65,536 patterns). Compares each
   pair's output with DAZ|FTZ set against the same call with them clear. */
#if (defined(__x86_64__) || defined(__i386__)) && defined(__SSE2__)
#include <xmmintrin.h>
#define FE_CAN_SET 1
#endif

typedef struct fe_case { mload_dtype dst, src; } fe_case;

static void fe_inputs(mload_dtype src, unsigned char *in, size_t n) {
    size_t i, eb = mload_dtype_bits(src) / 8u;
    uint64_t seed = 99;
    for (i = 0; i < n; ++i) {
        uint64_t v;
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        v = seed ^ (seed >> 31);
        if (eb == 2) v = i & 0xFFFFu;                                        /* every 16-bit pattern */
        else if (eb == 4 && i % 2) v = (v & 0x807FFFFFu);                     /* F32 subnormals */
        else if (eb == 8 && i % 2) v = (v & 0x800FFFFFFFFFFFFFull) | ((uint64_t)(1023 - 150 + i % 30) << 52); /* F32-subnormal results */
        memcpy(in + i * eb, &v, eb);
    }
}

static void test_cast_independent_of_fp_env(void) {
#if defined(FE_CAN_SET)
    static const fe_case cases[] = {
        {MLOAD_DTYPE_F64, MLOAD_DTYPE_BF16}, {MLOAD_DTYPE_F64, MLOAD_DTYPE_F16}, {MLOAD_DTYPE_F64, MLOAD_DTYPE_F32},
        {MLOAD_DTYPE_F32, MLOAD_DTYPE_F64},  {MLOAD_DTYPE_BOOL, MLOAD_DTYPE_F32}, {MLOAD_DTYPE_BOOL, MLOAD_DTYPE_F64},
        {MLOAD_DTYPE_F16, MLOAD_DTYPE_F64},  {MLOAD_DTYPE_BF16, MLOAD_DTYPE_F64}, {MLOAD_DTYPE_F8_E4M3, MLOAD_DTYPE_F64},
        {MLOAD_DTYPE_F32, MLOAD_DTYPE_BF16}, {MLOAD_DTYPE_F32, MLOAD_DTYPE_F16},  {MLOAD_DTYPE_F16, MLOAD_DTYPE_F32},
        {MLOAD_DTYPE_I32, MLOAD_DTYPE_F32},  {MLOAD_DTYPE_F32, MLOAD_DTYPE_F8_E5M2}};
    const size_t n = 65536 * 2;
    unsigned char *in = (unsigned char *)malloc(n * 8), *ref = (unsigned char *)malloc(n * 8), *got = (unsigned char *)malloc(n * 8);
    unsigned csr = _mm_getcsr();
    size_t k;
    for (k = 0; in && ref && got && k < sizeof cases / sizeof cases[0]; ++k) {
        size_t bytes = n * mload_dtype_bits(cases[k].dst) / 8u;
        fe_inputs(cases[k].src, in, n);
        _mm_setcsr(csr & ~0x8040u);
        CHECK_RES(mload_cast(ref, cases[k].dst, in, cases[k].src, n, MLOAD_F8_OVERFLOW_SATURATE, NULL), MLOAD_OK);
        _mm_setcsr(csr | 0x8040u); /* FTZ | DAZ */
        CHECK_RES(mload_cast(got, cases[k].dst, in, cases[k].src, n, MLOAD_F8_OVERFLOW_SATURATE, NULL), MLOAD_OK);
        _mm_setcsr(csr);
        if (memcmp(ref, got, bytes) != 0) {
            size_t i, diff = 0, eb = mload_dtype_bits(cases[k].dst) / 8u;
            for (i = 0; i < n; ++i) diff += memcmp(ref + i * eb, got + i * eb, eb) != 0;
            CHECK(diff == 0);
            fprintf(stderr, "  %s <- %s: %zu of %zu outputs change with DAZ|FTZ\n", mload_dtype_name(cases[k].dst),
                    mload_dtype_name(cases[k].src), diff, n);
        }
    }
    free(in);
    free(ref);
    free(got);
#else
    SKIP("no x86 MXCSR to set DAZ/FTZ on this target");
#endif
}

/* ------------------------------------------------ 6. the kernel levels */

static void test_simd_levels_api(void) {
    mload_simd best = mload_cast_simd(), l;
    CHECK(mload_simd_name(best) != NULL);
    CHECK(strcmp(mload_simd_name(MLOAD_SIMD_PORTABLE), "portable") == 0);
    CHECK(mload_simd_name((mload_simd)77) == NULL);
    CHECK(mload_cast_set_simd(MLOAD_SIMD_PORTABLE) == MLOAD_SIMD_PORTABLE);
    CHECK(mload_cast_simd() == MLOAD_SIMD_PORTABLE);
    CHECK(mload_cast_set_simd((mload_simd)77) == best); /* capped by what the CPU offers */
    CHECK(mload_cast_simd() == best);
    for (l = MLOAD_SIMD_PORTABLE; l <= best; l = (mload_simd)(l + 1)) CHECK(mload_cast_set_simd(l) == l);
    mload_cast_set_simd(best);
}

/* Every F32 bit pattern, narrowed to F16, BF16, F8_E4M3 and F8_E5M2 in both
   overflow modes, gives the same bytes at every level the CPU offers as in
   the portable C loops (which the tests above check against the reference).
   Under sanitizers one block in 61 is checked. The sources and destinations
   sit one byte off alignment. */
static void test_simd_levels_every_f32(void) {
    static const mload_dtype dsts[] = {MLOAD_DTYPE_F16, MLOAD_DTYPE_BF16, MLOAD_DTYPE_F8_E4M3, MLOAD_DTYPE_F8_E5M2};
    const size_t blk = (size_t)1 << 20;
    mload_simd best = mload_cast_simd(), l;
    unsigned char *in, *ref, *got;
    uint64_t base, step = (uint64_t)blk * (CV_DIV > 1 ? 61u : 1u);
    size_t k, i;
    int mode;
    if (best == MLOAD_SIMD_PORTABLE) { SKIP("this CPU or build offers only the portable kernels"); return; }
    in = (unsigned char *)malloc(blk * 4 + 1);
    ref = (unsigned char *)malloc(blk * 2 + 1);
    got = (unsigned char *)malloc(blk * 2 + 1);
    CHECK(in && ref && got);
    for (l = (mload_simd)(MLOAD_SIMD_PORTABLE + 1); in && ref && got && l <= best; l = (mload_simd)(l + 1)) {
        unsigned long long blocks = 0, bad = 0;
        for (base = 0; base < ((uint64_t)1 << 32); base += step) {
            for (i = 0; i < blk; ++i) {
                uint32_t x = (uint32_t)(base + i);
                memcpy(in + 1 + 4 * i, &x, 4);
            }
            for (k = 0; k < sizeof dsts / sizeof dsts[0]; ++k)
                for (mode = 0; mode < (is_f8_dst(dsts[k]) ? 2 : 1); ++mode) {
                    size_t bytes = blk * esize(dsts[k]);
                    mload_cast_set_simd(MLOAD_SIMD_PORTABLE);
                    mload_cast(ref + 1, dsts[k], in + 1, MLOAD_DTYPE_F32, blk, (mload_f8_overflow)mode, NULL);
                    mload_cast_set_simd(l);
                    mload_cast(got + 1, dsts[k], in + 1, MLOAD_DTYPE_F32, blk, (mload_f8_overflow)mode, NULL);
                    if (memcmp(ref + 1, got + 1, bytes) != 0 && bad++ < CV_MAX_SHOWN) {
                        for (i = 0; i < blk && !memcmp(ref + 1 + i * esize(dsts[k]), got + 1 + i * esize(dsts[k]), esize(dsts[k])); ++i) {}
                        fprintf(stderr, "  %s: F32 0x%08llx -> %s (%s): differs from the portable loop\n", mload_simd_name(l),
                                (unsigned long long)(base + i), mload_dtype_name(dsts[k]), mode ? "nonsat" : "sat");
                    }
                }
            ++blocks;
        }
        CHECK(bad == 0);
        fprintf(stderr, "  %s: %llu blocks of 2^20 F32 patterns agree with the portable loops\n", mload_simd_name(l), blocks);
    }
    mload_cast_set_simd(best);
    free(in);
    free(ref);
    free(got);
}

/* the streaming stores of large outputs: an unaligned destination (head,
   aligned body, tail) gives the portable loop's bytes and touches nothing
   beyond the output */
static void test_simd_large_outputs(void) {
    const size_t n = ((size_t)16 << 20) + 37;
    mload_simd best = mload_cast_simd(), l;
    unsigned char *in = (unsigned char *)malloc(n * 4), *ref = (unsigned char *)malloc(n + 64), *got = (unsigned char *)malloc(n + 64);
    size_t i;
    int mode;
    if (!in || !ref || !got) { CHECK(0); free(in); free(ref); free(got); return; }
    rng_seed(0x5EED0006);
    for (i = 0; i < n; ++i) {
        uint32_t x = rnd32();
        memcpy(in + 4 * i, &x, 4);
    }
    for (l = MLOAD_SIMD_PORTABLE; l <= best; l = (mload_simd)(l + 1))
        for (mode = 0; mode < 2; ++mode) {
            mload_cast_set_simd(MLOAD_SIMD_PORTABLE);
            memset(ref, 0xA5, n + 64);
            CHECK_RES(mload_cast(ref + 3, MLOAD_DTYPE_F8_E4M3, in, MLOAD_DTYPE_F32, n, (mload_f8_overflow)mode, NULL), MLOAD_OK);
            mload_cast_set_simd(l);
            memset(got, 0xA5, n + 64);
            CHECK_RES(mload_cast(got + 3, MLOAD_DTYPE_F8_E4M3, in, MLOAD_DTYPE_F32, n, (mload_f8_overflow)mode, NULL), MLOAD_OK);
            CHECK(memcmp(ref, got, n + 64) == 0);
            CHECK(got[0] == 0xA5 && got[2] == 0xA5 && got[n + 3] == 0xA5 && got[n + 63] == 0xA5);
        }
    mload_cast_set_simd(best);
    free(in);
    free(ref);
    free(got);
}

void area_cast(void) {
    /* the whole area once per kernel level the CPU offers */
    mload_simd best = mload_cast_simd(), l;
    for (l = MLOAD_SIMD_PORTABLE; l <= best; l = (mload_simd)(l + 1)) {
        mload_cast_set_simd(l);
        fprintf(stderr, "  cast kernels: %s (of %s)\n", mload_simd_name(l), mload_simd_name(best));
        RUN(test_convert_known_answers);
        RUN(test_convert_small_float_sources_exhaustive);
        RUN(test_convert_f32_edges);
        RUN(test_convert_f32_random_bits);
        RUN(test_convert_f32_random_in_range);
        RUN(test_convert_f32_f64_other_dsts);
        RUN(test_convert_f64_narrowing);
        RUN(test_convert_roundtrips);
        RUN(test_convert_int_small_exhaustive);
        RUN(test_convert_int_wide);
        RUN(test_convert_float_to_int_rules);
        RUN(test_convert_bool);
        RUN(test_convert_pair_matrix);
        RUN(test_convert_invalid_args);
        RUN(test_convert_identity_copies);
        RUN(test_convert_unaligned);
        RUN(test_convert_lengths);
        RUN(test_cast_independent_of_fp_env);
    }
    mload_cast_set_simd(best);
    RUN(test_simd_levels_api);
    RUN(test_simd_levels_every_f32);
    RUN(test_simd_large_outputs);
}
