// The AdamW update of training, elementwise (see README.md and row_kernels.h). With
// g = grad·scale (0·scale without a gradient) and b̄ = 1 − b computed once in float:
//   m ← (β₁·m) + (β̄₁·g)        v ← (β₂·v) + ((β̄₂·g)·g)
//   θ ← θ − lr·((m/c₁) / (√(v/c₂) + ε) + λ·θ)
// each step one IEEE operation in that order (square root and division correctly rounded),
// so every variant gives the same bits, those of the Swift loop this replaced.

#include "row_kernels.h"

#include <math.h>
#include <stdlib.h>

#pragma STDC FP_CONTRACT OFF

typedef struct {
    float b1, b2, nb1, nb2, c1, c2, lr, eps, decay, scale;
} adamw_constants;

static void adamw_generic(const float *theta, const float *grad, float *m, float *v, float *out, long n,
                          const adamw_constants *k) {
    for (long j = 0; j < n; j++) {
        const float g = grad ? grad[j] * k->scale : 0.0f * k->scale;
        const float mj = k->b1 * m[j] + k->nb1 * g;
        const float vj = k->b2 * v[j] + k->nb2 * g * g;
        m[j] = mj;
        v[j] = vj;
        const float mh = mj / k->c1, vh = vj / k->c2;
        out[j] = theta[j] - k->lr * (mh / (sqrtf(vh) + k->eps) + k->decay * theta[j]);
    }
}

#if defined(__x86_64__)
#include <immintrin.h>

__attribute__((target("avx512f"))) static void adamw_avx512(const float *theta, const float *grad, float *m, float *v,
                                                            float *out, long n, const adamw_constants *k) {
    const __m512 b1 = _mm512_set1_ps(k->b1), b2 = _mm512_set1_ps(k->b2), nb1 = _mm512_set1_ps(k->nb1);
    const __m512 nb2 = _mm512_set1_ps(k->nb2), c1 = _mm512_set1_ps(k->c1), c2 = _mm512_set1_ps(k->c2);
    const __m512 lr = _mm512_set1_ps(k->lr), eps = _mm512_set1_ps(k->eps), decay = _mm512_set1_ps(k->decay);
    const __m512 scale = _mm512_set1_ps(k->scale), zero = _mm512_set1_ps(0.0f * k->scale);
    for (long j = 0; j < n; j += 16) {
        const long left = n - j;
        const __mmask16 mk = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);
        const __m512 g = grad ? _mm512_mul_ps(_mm512_maskz_loadu_ps(mk, grad + j), scale) : zero;
        const __m512 mj = _mm512_add_ps(_mm512_mul_ps(b1, _mm512_maskz_loadu_ps(mk, m + j)), _mm512_mul_ps(nb1, g));
        const __m512 vj = _mm512_add_ps(_mm512_mul_ps(b2, _mm512_maskz_loadu_ps(mk, v + j)), _mm512_mul_ps(_mm512_mul_ps(nb2, g), g));
        _mm512_mask_storeu_ps(m + j, mk, mj);
        _mm512_mask_storeu_ps(v + j, mk, vj);
        const __m512 step = _mm512_div_ps(_mm512_div_ps(mj, c1), _mm512_add_ps(_mm512_sqrt_ps(_mm512_div_ps(vj, c2)), eps));
        const __m512 t = _mm512_maskz_loadu_ps(mk, theta + j);
        _mm512_mask_storeu_ps(out + j, mk, _mm512_sub_ps(t, _mm512_mul_ps(lr, _mm512_add_ps(step, _mm512_mul_ps(decay, t)))));
    }
}

__attribute__((target("avx2,fma"))) static void adamw_avx2(const float *theta, const float *grad, float *m, float *v,
                                                           float *out, long n, const adamw_constants *k) {
    const __m256 b1 = _mm256_set1_ps(k->b1), b2 = _mm256_set1_ps(k->b2), nb1 = _mm256_set1_ps(k->nb1);
    const __m256 nb2 = _mm256_set1_ps(k->nb2), c1 = _mm256_set1_ps(k->c1), c2 = _mm256_set1_ps(k->c2);
    const __m256 lr = _mm256_set1_ps(k->lr), eps = _mm256_set1_ps(k->eps), decay = _mm256_set1_ps(k->decay);
    const __m256 scale = _mm256_set1_ps(k->scale), zero = _mm256_set1_ps(0.0f * k->scale);
    long j = 0;
    for (; j + 8 <= n; j += 8) {
        const __m256 g = grad ? _mm256_mul_ps(_mm256_loadu_ps(grad + j), scale) : zero;
        const __m256 mj = _mm256_add_ps(_mm256_mul_ps(b1, _mm256_loadu_ps(m + j)), _mm256_mul_ps(nb1, g));
        const __m256 vj = _mm256_add_ps(_mm256_mul_ps(b2, _mm256_loadu_ps(v + j)), _mm256_mul_ps(_mm256_mul_ps(nb2, g), g));
        _mm256_storeu_ps(m + j, mj);
        _mm256_storeu_ps(v + j, vj);
        const __m256 step = _mm256_div_ps(_mm256_div_ps(mj, c1), _mm256_add_ps(_mm256_sqrt_ps(_mm256_div_ps(vj, c2)), eps));
        const __m256 t = _mm256_loadu_ps(theta + j);
        _mm256_storeu_ps(out + j, _mm256_sub_ps(t, _mm256_mul_ps(lr, _mm256_add_ps(step, _mm256_mul_ps(decay, t)))));
    }
    adamw_generic(theta + j, grad ? grad + j : NULL, m + j, v + j, out + j, n - j, k);
}
#endif

void mtp_adamw_update_variant(int variant, const float *theta, const float *grad, float gradScale, float *m, float *v,
                              float *out, long n, float beta1, float beta2, float c1, float c2, float lr, float epsilon,
                              float decay) {
    if (n < 0 || !mtp_rows_supported(variant)) abort();
    const adamw_constants k = {beta1, beta2, 1.0f - beta1, 1.0f - beta2, c1, c2, lr, epsilon, decay, gradScale};
    switch (variant) {
#if defined(__x86_64__)
    case MTP_ROWS_AVX512: adamw_avx512(theta, grad, m, v, out, n, &k); return;
    case MTP_ROWS_AVX2: adamw_avx2(theta, grad, m, v, out, n, &k); return;
#endif
    default: adamw_generic(theta, grad, m, v, out, n, &k); return;
    }
}

void mtp_adamw_update(const float *theta, const float *grad, float gradScale, float *m, float *v, float *out, long n,
                      float beta1, float beta2, float c1, float c2, float lr, float epsilon, float decay) {
    mtp_adamw_update_variant(mtp_rows_variant(), theta, grad, gradScale, m, v, out, n, beta1, beta2, c1, c2, lr, epsilon,
                             decay);
}
