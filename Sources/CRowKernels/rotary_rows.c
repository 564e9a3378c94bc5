// The rotary position embedding, decoding and training (see README.md and row_kernels.h):
// every pair (x₁, x₂) = (x[i], x[i + d/2]) of a head becomes
//   (x₁·cos − x₂·sin, x₂·cos + x₁·sin)            (forward)
//   (x₁·cos + x₂·sin, x₂·cos − x₁·sin)            (inverse, the backward's turn by −angle)
// with one IEEE multiply, multiply and add/subtract in that order. The inverse is the forward
// with sin negated, bit for bit: x·(−s) = −(x·s) exactly and a − (−b) = a + b, so both directions
// give the bits of the Swift `rotateHalf` these loops replaced (which multiplied sin by a sign
// of ±1), on every variant.

#include "row_kernels.h"

#include <stdlib.h>
#include <string.h>

#pragma STDC FP_CONTRACT OFF

static void pairs_generic(const float *x, float *y, long half, const float *c, const float *s, int inverse) {
    for (long i = 0; i < half; i++) {
        const float x1 = x[i], x2 = x[i + half];
        if (inverse) {
            y[i] = x1 * c[i] + x2 * s[i];
            y[i + half] = x2 * c[i] - x1 * s[i];
        } else {
            y[i] = x1 * c[i] - x2 * s[i];
            y[i + half] = x2 * c[i] + x1 * s[i];
        }
    }
}

static void rotate_generic(const float *x, float *y, long rows, long rowStride, long heads, long headStride, long d,
                           const float *cos, const float *sin, int inverse) {
    const long half = d / 2;
    for (long r = 0; r < rows; r++)
        for (long h = 0; h < heads; h++) {
            const long o = r * rowStride + h * headStride;
            pairs_generic(x + o, y + o, half, cos + r * half, sin + r * half, inverse);
        }
}

#if defined(__x86_64__)
#include <immintrin.h>

__attribute__((target("avx512f"))) static void rotate_avx512(const float *x, float *y, long rows, long rowStride,
                                                             long heads, long headStride, long d, const float *cos,
                                                             const float *sin, int inverse) {
    const long half = d / 2;
    for (long r = 0; r < rows; r++) {
        for (long i = 0; i < half; i += 16) {
            const long left = half - i;
            const __mmask16 m = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);
            const __m512 c = _mm512_maskz_loadu_ps(m, cos + r * half + i), s = _mm512_maskz_loadu_ps(m, sin + r * half + i);
            for (long h = 0; h < heads; h++) {
                const long o = r * rowStride + h * headStride + i;
                const __m512 x1 = _mm512_maskz_loadu_ps(m, x + o), x2 = _mm512_maskz_loadu_ps(m, x + o + half);
                const __m512 x1c = _mm512_mul_ps(x1, c), x2s = _mm512_mul_ps(x2, s);
                const __m512 x2c = _mm512_mul_ps(x2, c), x1s = _mm512_mul_ps(x1, s);
                _mm512_mask_storeu_ps(y + o, m, inverse ? _mm512_add_ps(x1c, x2s) : _mm512_sub_ps(x1c, x2s));
                _mm512_mask_storeu_ps(y + o + half, m, inverse ? _mm512_sub_ps(x2c, x1s) : _mm512_add_ps(x2c, x1s));
            }
        }
    }
}

__attribute__((target("avx2,fma"))) static void rotate_avx2(const float *x, float *y, long rows, long rowStride,
                                                            long heads, long headStride, long d, const float *cos,
                                                            const float *sin, int inverse) {
    const long half = d / 2, full = half / 8 * 8;
    for (long r = 0; r < rows; r++) {
        const float *cr = cos + r * half, *sr = sin + r * half;
        for (long h = 0; h < heads; h++) {
            const long o = r * rowStride + h * headStride;
            for (long i = 0; i < full; i += 8) {
                const __m256 c = _mm256_loadu_ps(cr + i), s = _mm256_loadu_ps(sr + i);
                const __m256 x1 = _mm256_loadu_ps(x + o + i), x2 = _mm256_loadu_ps(x + o + half + i);
                const __m256 x1c = _mm256_mul_ps(x1, c), x2s = _mm256_mul_ps(x2, s);
                const __m256 x2c = _mm256_mul_ps(x2, c), x1s = _mm256_mul_ps(x1, s);
                _mm256_storeu_ps(y + o + i, inverse ? _mm256_add_ps(x1c, x2s) : _mm256_sub_ps(x1c, x2s));
                _mm256_storeu_ps(y + o + half + i, inverse ? _mm256_sub_ps(x2c, x1s) : _mm256_add_ps(x2c, x1s));
            }
            // The tail of the pairs: pairs_generic from i = full, on the same half-width.
            const float *xt = x + o + full;
            float *yt = y + o + full;
            for (long i = 0; i < half - full; i++) {
                const float x1 = xt[i], x2 = xt[i + half], c = cr[full + i], s = sr[full + i];
                yt[i] = inverse ? x1 * c + x2 * s : x1 * c - x2 * s;
                yt[i + half] = inverse ? x2 * c - x1 * s : x2 * c + x1 * s;
            }
        }
    }
}
#endif

void mtp_rotate_heads_variant(int variant, const float *x, float *y, long rows, long rowStride, long heads,
                              long headStride, long d, const float *cos, const float *sin, int inverse, long copy) {
    if (rows < 0 || heads < 1 || d < 2 || d % 2 != 0 || headStride < d || copy < 0 ||
        (rows > 1 && rowStride < (heads - 1) * headStride + d + copy) || !mtp_rows_supported(variant))
        abort();
    switch (variant) {
#if defined(__x86_64__)
    case MTP_ROWS_AVX512: rotate_avx512(x, y, rows, rowStride, heads, headStride, d, cos, sin, inverse); break;
    case MTP_ROWS_AVX2: rotate_avx2(x, y, rows, rowStride, heads, headStride, d, cos, sin, inverse); break;
#endif
    default: rotate_generic(x, y, rows, rowStride, heads, headStride, d, cos, sin, inverse); break;
    }
    if (copy > 0 && x != y) {
        const long from = (heads - 1) * headStride + d;
        for (long r = 0; r < rows; r++) memcpy(y + r * rowStride + from, x + r * rowStride + from, (size_t)copy * sizeof(float));
    }
}

void mtp_rotate_heads(const float *x, float *y, long rows, long rowStride, long heads, long headStride, long d,
                      const float *cos, const float *sin, int inverse, long copy) {
    mtp_rotate_heads_variant(mtp_rows_variant(), x, y, rows, rowStride, heads, headStride, d, cos, sin, inverse, copy);
}

void mtp_rotate_rows_variant(int variant, float *x, long rows, long heads, long d, const float *cos, const float *sin) {
    mtp_rotate_heads_variant(variant, x, x, rows, heads * d, heads, d, d, cos, sin, 0, 0);
}

void mtp_rotate_rows(float *x, long rows, long heads, long d, const float *cos, const float *sin) {
    mtp_rotate_rows_variant(mtp_rows_variant(), x, rows, heads, d, cos, sin);
}
