// The rotary position embedding of decoding rows, in place (see README.md and row_kernels.h):
// every pair (x₁, x₂) = (x[i], x[i + d/2]) of a head becomes
//   (x₁·cos − x₂·sin, x₂·cos + x₁·sin)
// with one IEEE multiply, multiply and add/subtract in that order, the operations of NN's
// `rotateHalf` (sign +1): each element's bits equal the training kernel's, on every variant.

#include "row_kernels.h"

#include <stdlib.h>

#pragma STDC FP_CONTRACT OFF

static void rotate_generic(float *x, long rows, long heads, long d, const float *cos, const float *sin) {
    const long half = d / 2;
    for (long r = 0; r < rows; r++) {
        const float *c = cos + r * half, *s = sin + r * half;
        for (long h = 0; h < heads; h++) {
            float *p = x + (r * heads + h) * d;
            for (long i = 0; i < half; i++) {
                const float x1 = p[i], x2 = p[i + half];
                p[i] = x1 * c[i] - x2 * s[i];
                p[i + half] = x2 * c[i] + x1 * s[i];
            }
        }
    }
}

#if defined(__x86_64__)
#include <immintrin.h>

__attribute__((target("avx512f"))) static void rotate_avx512(float *x, long rows, long heads, long d, const float *cos,
                                                             const float *sin) {
    const long half = d / 2;
    for (long r = 0; r < rows; r++) {
        for (long i = 0; i < half; i += 16) {
            const long left = half - i;
            const __mmask16 m = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);
            const __m512 c = _mm512_maskz_loadu_ps(m, cos + r * half + i), s = _mm512_maskz_loadu_ps(m, sin + r * half + i);
            for (long h = 0; h < heads; h++) {
                float *p = x + (r * heads + h) * d + i;
                const __m512 x1 = _mm512_maskz_loadu_ps(m, p), x2 = _mm512_maskz_loadu_ps(m, p + half);
                _mm512_mask_storeu_ps(p, m, _mm512_sub_ps(_mm512_mul_ps(x1, c), _mm512_mul_ps(x2, s)));
                _mm512_mask_storeu_ps(p + half, m, _mm512_add_ps(_mm512_mul_ps(x2, c), _mm512_mul_ps(x1, s)));
            }
        }
    }
}

__attribute__((target("avx2,fma"))) static void rotate_avx2(float *x, long rows, long heads, long d, const float *cos,
                                                            const float *sin) {
    const long half = d / 2, full = half / 8 * 8;
    for (long r = 0; r < rows; r++) {
        const float *cr = cos + r * half, *sr = sin + r * half;
        for (long h = 0; h < heads; h++) {
            float *p = x + (r * heads + h) * d;
            for (long i = 0; i < full; i += 8) {
                const __m256 c = _mm256_loadu_ps(cr + i), s = _mm256_loadu_ps(sr + i);
                const __m256 x1 = _mm256_loadu_ps(p + i), x2 = _mm256_loadu_ps(p + half + i);
                _mm256_storeu_ps(p + i, _mm256_sub_ps(_mm256_mul_ps(x1, c), _mm256_mul_ps(x2, s)));
                _mm256_storeu_ps(p + half + i, _mm256_add_ps(_mm256_mul_ps(x2, c), _mm256_mul_ps(x1, s)));
            }
            for (long i = full; i < half; i++) {
                const float x1 = p[i], x2 = p[i + half];
                p[i] = x1 * cr[i] - x2 * sr[i];
                p[i + half] = x2 * cr[i] + x1 * sr[i];
            }
        }
    }
}
#endif

void mtp_rotate_rows_variant(int variant, float *x, long rows, long heads, long d, const float *cos, const float *sin) {
    if (rows < 0 || heads < 1 || d < 2 || d % 2 != 0 || !mtp_rows_supported(variant)) abort();
    switch (variant) {
#if defined(__x86_64__)
    case MTP_ROWS_AVX512: rotate_avx512(x, rows, heads, d, cos, sin); return;
    case MTP_ROWS_AVX2: rotate_avx2(x, rows, heads, d, cos, sin); return;
#endif
    default: rotate_generic(x, rows, heads, d, cos, sin); return;
    }
}

void mtp_rotate_rows(float *x, long rows, long heads, long d, const float *cos, const float *sin) {
    mtp_rotate_rows_variant(mtp_rows_variant(), x, rows, heads, d, cos, sin);
}
