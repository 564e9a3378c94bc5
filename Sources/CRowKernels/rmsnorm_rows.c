// RMSNorm of decoding rows (see README.md and row_kernels.h): y = (x · r) · w with
// r = 1 / √(s / D + ε), s = x·x summed as NN's `rmsNormRow` sums it (Tensors' `VectorMath.dot`):
// eight lane sums a_i = Σ_b x[8b + i]² over the full blocks of 8 in order (each square rounded,
// then added), then a_0 + a_1 + … + a_7 left to right (what Swift's `SIMD8.sum()` does), then
// the tail's squares one by one. Each step is one IEEE operation in that order, so every
// variant's bits equal the training kernel's.

#include "row_kernels.h"

#include <math.h>
#include <stdlib.h>

#pragma STDC FP_CONTRACT OFF

static inline float finish(const float a[8], const float *x, long full, long d, float epsilon) {
    float s = a[0];
    for (int i = 1; i < 8; i++) s = s + a[i];
    for (long j = full; j < d; j++) s = s + x[j] * x[j];
    return 1.0f / sqrtf(s / (float)d + epsilon);
}

static void rmsnorm_generic(const float *x, long rows, long d, const float *w, float epsilon, float *y, long stride) {
    const long full = d / 8 * 8;
    for (long r = 0; r < rows; r++) {
        const float *xr = x + r * d;
        float a[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        for (long j = 0; j < full; j++) a[j % 8] = a[j % 8] + xr[j] * xr[j];
        const float scale = finish(a, xr, full, d, epsilon);
        float *yr = y + r * stride;
        for (long j = 0; j < d; j++) yr[j] = xr[j] * scale * w[j];
    }
}

#if defined(__x86_64__)
#include <immintrin.h>

__attribute__((target("avx2,fma"))) static void rmsnorm_avx2(const float *x, long rows, long d, const float *w,
                                                             float epsilon, float *y, long stride) {
    const long full = d / 8 * 8;
    for (long r = 0; r < rows; r++) {
        const float *xr = x + r * d;
        __m256 acc = _mm256_setzero_ps();
        for (long j = 0; j < full; j += 8) {
            const __m256 v = _mm256_loadu_ps(xr + j);
            acc = _mm256_add_ps(acc, _mm256_mul_ps(v, v));
        }
        float a[8];
        _mm256_storeu_ps(a, acc);
        const float scale = finish(a, xr, full, d, epsilon);
        const __m256 s = _mm256_set1_ps(scale);
        float *yr = y + r * stride;
        for (long j = 0; j < full; j += 8)
            _mm256_storeu_ps(yr + j, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(xr + j), s), _mm256_loadu_ps(w + j)));
        for (long j = full; j < d; j++) yr[j] = xr[j] * scale * w[j];
    }
}
#endif

void mtp_rmsnorm_rows_variant(int variant, const float *x, long rows, long d, const float *w, float epsilon, float *y,
                              long stride) {
    if (rows < 0 || d < 1 || stride < d || !mtp_rows_supported(variant)) abort();
    switch (variant) {
#if defined(__x86_64__)
    // Sixteen-lane AVX-512 gains nothing on rows of ~100 floats; the AVX2 loop is the same operations.
    case MTP_ROWS_AVX512:
    case MTP_ROWS_AVX2: rmsnorm_avx2(x, rows, d, w, epsilon, y, stride); return;
#endif
    default: rmsnorm_generic(x, rows, d, w, epsilon, y, stride); return;
    }
}

void mtp_rmsnorm_rows(const float *x, long rows, long d, const float *w, float epsilon, float *y, long stride) {
    mtp_rmsnorm_rows_variant(mtp_rows_variant(), x, rows, d, w, epsilon, y, stride);
}
