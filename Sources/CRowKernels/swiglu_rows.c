// SwiGLU of decoding rows (see README.md and row_kernels.h): out[i] = (a·σ(a))·u with
// σ(a) = 1 / (1 + e^(−a)) and vector_exp.h's exp, in the order of NN's `swiGLUForward`:
// every variant gives the same bits, within rounding of the training kernel's (whose exp
// has no fused multiply-adds; vector_exp.h's costs half the instructions).

#include "row_kernels.h"
#include "vector_exp.h"

#include <stdlib.h>

#pragma STDC FP_CONTRACT OFF

static void swiglu_generic(const float *a, const float *u, float *out, long n) {
    for (long i = 0; i < n; i++) {
        const float s = 1.0f / (1.0f + mtp_exp_scalar(-a[i]));
        out[i] = a[i] * s * u[i];
    }
}

#if defined(__x86_64__)
__attribute__((target("avx512f"))) static void swiglu_avx512(const float *a, const float *u, float *out, long n) {
    const __m512 one = _mm512_set1_ps(1.0f);
    const __m512i sign = _mm512_set1_epi32((int)0x80000000u);
    for (long i = 0; i < n; i += 16) {
        const long left = n - i;
        const __mmask16 m = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);
        const __m512 av = _mm512_maskz_loadu_ps(m, a + i);
        const __m512 s = _mm512_div_ps(one, _mm512_add_ps(one, mtp_exp16(_mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(av), sign)))));
        _mm512_mask_storeu_ps(out + i, m, _mm512_mul_ps(_mm512_mul_ps(av, s), _mm512_maskz_loadu_ps(m, u + i)));
    }
}

__attribute__((target("avx2,fma"))) static void swiglu_avx2(const float *a, const float *u, float *out, long n) {
    const __m256 one = _mm256_set1_ps(1.0f), sign = _mm256_set1_ps(-0.0f);
    long i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 av = _mm256_loadu_ps(a + i);
        const __m256 s = _mm256_div_ps(one, _mm256_add_ps(one, mtp_exp8(_mm256_xor_ps(av, sign))));
        _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_mul_ps(av, s), _mm256_loadu_ps(u + i)));
    }
    swiglu_generic(a + i, u + i, out + i, n - i);
}
#endif

void mtp_swiglu_variant(int variant, const float *gate, const float *up, float *out, long n) {
    if (n < 0 || !mtp_rows_supported(variant)) abort();
    switch (variant) {
#if defined(__x86_64__)
    case MTP_ROWS_AVX512: swiglu_avx512(gate, up, out, n); return;
    case MTP_ROWS_AVX2: swiglu_avx2(gate, up, out, n); return;
#endif
    default: swiglu_generic(gate, up, out, n); return;
    }
}

void mtp_swiglu(const float *gate, const float *up, float *out, long n) { mtp_swiglu_variant(mtp_rows_variant(), gate, up, out, n); }
