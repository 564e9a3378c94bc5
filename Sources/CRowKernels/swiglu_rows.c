// SwiGLU, decoding and training (see README.md and row_kernels.h).
//
// Forward: out[i] = (a·σ) · u with σ = 1 / (1 + e^(−a)) and vector_exp.h's exp, σ kept for the
// backward when asked. Decoding (`mtp_swiglu`) and the training forward (`mtp_swiglu_forward`)
// run the one loop below, so their bits agree.
// Backward, with g the upstream gradient: ∂u = (g·a)·σ, ∂a = ((g·u)·σ) · (1 + a·(1 − σ)).
// Each step is one IEEE operation in the order written (no contraction), so every variant
// gives the same bits; the AVX2 tail is the generic loop, the AVX-512 tail a masked vector.

#include "row_kernels.h"
#include "vector_exp.h"

#include <stdlib.h>

#pragma STDC FP_CONTRACT OFF

// σ is written only when `sigma` is not NULL; `out` may be `a`.
static void forward_generic(const float *a, const float *u, float *out, float *sigma, long n) {
    for (long i = 0; i < n; i++) {
        const float av = a[i];
        const float s = 1.0f / (1.0f + mtp_exp_scalar(-av));
        if (sigma) sigma[i] = s;
        out[i] = av * s * u[i];
    }
}

static void backward_generic(const float *g, const float *a, const float *u, const float *sigma, float *da, float *du,
                             long n) {
    for (long i = 0; i < n; i++) {
        const float s = sigma[i];
        du[i] = g[i] * a[i] * s;
        da[i] = g[i] * u[i] * s * (1.0f + a[i] * (1.0f - s));
    }
}

#if defined(__x86_64__)
static inline __mmask16 tail_mask(long left) { return left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1); }

__attribute__((target("avx512f"))) static void forward_avx512(const float *a, const float *u, float *out, float *sigma,
                                                              long n) {
    const __m512 one = _mm512_set1_ps(1.0f);
    const __m512i sign = _mm512_set1_epi32((int)0x80000000u);
    for (long i = 0; i < n; i += 16) {
        const __mmask16 m = tail_mask(n - i);
        const __m512 av = _mm512_maskz_loadu_ps(m, a + i);
        const __m512 s = _mm512_div_ps(one, _mm512_add_ps(one, mtp_exp16(_mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(av), sign)))));
        if (sigma) _mm512_mask_storeu_ps(sigma + i, m, s);
        _mm512_mask_storeu_ps(out + i, m, _mm512_mul_ps(_mm512_mul_ps(av, s), _mm512_maskz_loadu_ps(m, u + i)));
    }
}

__attribute__((target("avx512f"))) static void backward_avx512(const float *g, const float *a, const float *u,
                                                               const float *sigma, float *da, float *du, long n) {
    const __m512 one = _mm512_set1_ps(1.0f);
    for (long i = 0; i < n; i += 16) {
        const __mmask16 m = tail_mask(n - i);
        const __m512 gv = _mm512_maskz_loadu_ps(m, g + i), av = _mm512_maskz_loadu_ps(m, a + i);
        const __m512 uv = _mm512_maskz_loadu_ps(m, u + i), s = _mm512_maskz_loadu_ps(m, sigma + i);
        _mm512_mask_storeu_ps(du + i, m, _mm512_mul_ps(_mm512_mul_ps(gv, av), s));
        const __m512 slope = _mm512_add_ps(one, _mm512_mul_ps(av, _mm512_sub_ps(one, s)));
        _mm512_mask_storeu_ps(da + i, m, _mm512_mul_ps(_mm512_mul_ps(_mm512_mul_ps(gv, uv), s), slope));
    }
}

__attribute__((target("avx2,fma"))) static void forward_avx2(const float *a, const float *u, float *out, float *sigma,
                                                             long n) {
    const __m256 one = _mm256_set1_ps(1.0f), sign = _mm256_set1_ps(-0.0f);
    long i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 av = _mm256_loadu_ps(a + i);
        const __m256 s = _mm256_div_ps(one, _mm256_add_ps(one, mtp_exp8(_mm256_xor_ps(av, sign))));
        if (sigma) _mm256_storeu_ps(sigma + i, s);
        _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_mul_ps(av, s), _mm256_loadu_ps(u + i)));
    }
    forward_generic(a + i, u + i, out + i, sigma ? sigma + i : NULL, n - i);
}

__attribute__((target("avx2,fma"))) static void backward_avx2(const float *g, const float *a, const float *u,
                                                             const float *sigma, float *da, float *du, long n) {
    const __m256 one = _mm256_set1_ps(1.0f);
    long i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 gv = _mm256_loadu_ps(g + i), av = _mm256_loadu_ps(a + i);
        const __m256 uv = _mm256_loadu_ps(u + i), s = _mm256_loadu_ps(sigma + i);
        _mm256_storeu_ps(du + i, _mm256_mul_ps(_mm256_mul_ps(gv, av), s));
        const __m256 slope = _mm256_add_ps(one, _mm256_mul_ps(av, _mm256_sub_ps(one, s)));
        _mm256_storeu_ps(da + i, _mm256_mul_ps(_mm256_mul_ps(_mm256_mul_ps(gv, uv), s), slope));
    }
    backward_generic(g + i, a + i, u + i, sigma + i, da + i, du + i, n - i);
}
#endif

static void forward(int variant, const float *a, const float *u, float *out, float *sigma, long n) {
    switch (variant) {
#if defined(__x86_64__)
    case MTP_ROWS_AVX512: forward_avx512(a, u, out, sigma, n); return;
    case MTP_ROWS_AVX2: forward_avx2(a, u, out, sigma, n); return;
#endif
    default: forward_generic(a, u, out, sigma, n); return;
    }
}

void mtp_swiglu_variant(int variant, const float *gate, const float *up, float *out, long n) {
    if (n < 0 || !mtp_rows_supported(variant)) abort();
    forward(variant, gate, up, out, NULL, n);
}

void mtp_swiglu(const float *gate, const float *up, float *out, long n) { mtp_swiglu_variant(mtp_rows_variant(), gate, up, out, n); }

void mtp_swiglu_forward_variant(int variant, const float *gate, const float *up, long rows, long n, long stride,
                                float *out, float *sigma) {
    if (rows < 0 || n < 0 || (rows > 1 && stride < n) || !mtp_rows_supported(variant)) abort();
    for (long r = 0; r < rows; r++) forward(variant, gate + r * stride, up + r * stride, out + r * n, sigma + r * n, n);
}

void mtp_swiglu_forward(const float *gate, const float *up, long rows, long n, long stride, float *out, float *sigma) {
    mtp_swiglu_forward_variant(mtp_rows_variant(), gate, up, rows, n, stride, out, sigma);
}

void mtp_swiglu_backward_variant(int variant, const float *grad, const float *gate, const float *up, const float *sigma,
                                 long rows, long n, long stride, float *gateGrad, float *upGrad) {
    if (rows < 0 || n < 0 || (rows > 1 && stride < n) || !mtp_rows_supported(variant)) abort();
    for (long r = 0; r < rows; r++) {
        const float *g = grad + r * n, *a = gate + r * stride, *u = up + r * stride, *s = sigma + r * n;
        float *da = gateGrad + r * stride, *du = upGrad + r * stride;
        switch (variant) {
#if defined(__x86_64__)
        case MTP_ROWS_AVX512: backward_avx512(g, a, u, s, da, du, n); break;
        case MTP_ROWS_AVX2: backward_avx2(g, a, u, s, da, du, n); break;
#endif
        default: backward_generic(g, a, u, s, da, du, n); break;
        }
    }
}

void mtp_swiglu_backward(const float *grad, const float *gate, const float *up, const float *sigma, long rows, long n,
                         long stride, float *gateGrad, float *upGrad) {
    mtp_swiglu_backward_variant(mtp_rows_variant(), grad, gate, up, sigma, rows, n, stride, gateGrad, upGrad);
}
