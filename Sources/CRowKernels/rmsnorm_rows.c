// RMSNorm, decoding and training (see README.md and row_kernels.h).
//
// Forward: y = (x · r) · w with r = 1 / √(s / D + ε), s = x·x summed in the order of Tensors'
// `VectorMath.dot`: eight lane sums a_i = Σ_b x[8b + i]² over the full blocks of 8 in order
// (each square rounded, then added), then a_0 + a_1 + … + a_7 left to right (what Swift's
// `SIMD8.sum()` does), then the tail's squares one by one. Decoding (`mtp_rmsnorm_rows`) and
// the training forward (`mtp_rmsnorm_forward`, which also keeps r) run the one loop below.
// Backward, with g the upstream gradient: a = g·w, t = a·x summed in the same order as s,
// c = ((r·r)·t) / D, then ∂x = r · (a − x·c) and ∂w += (g·x)·r, element by element.
// Each step is one IEEE operation in that order, so every variant's bits agree (and equal
// the Swift loops these replaced).

#include "row_kernels.h"

#include <math.h>
#include <stdlib.h>

#pragma STDC FP_CONTRACT OFF

// The lane sums, added left to right, plus the tail's products one by one.
static inline float finish_dot(const float lanes[8], const float *a, const float *b, long full, long d) {
    float s = lanes[0];
    for (int i = 1; i < 8; i++) s = s + lanes[i];
    for (long j = full; j < d; j++) s = s + a[j] * b[j];
    return s;
}

static inline float scale_of(float s, long d, float epsilon) { return 1.0f / sqrtf(s / (float)d + epsilon); }

static float dot_generic(const float *a, const float *b, long d) {
    const long full = d / 8 * 8;
    float lanes[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (long j = 0; j < full; j++) lanes[j % 8] = lanes[j % 8] + a[j] * b[j];
    return finish_dot(lanes, a, b, full, d);
}

// `rstd` (r per row) is written only when not NULL.
static void forward_generic(const float *x, long rows, long d, const float *w, float epsilon, float *y, long stride,
                            float *rstd) {
    for (long r = 0; r < rows; r++) {
        const float *xr = x + r * d;
        const float scale = scale_of(dot_generic(xr, xr, d), d, epsilon);
        if (rstd) rstd[r] = scale;
        float *yr = y + r * stride;
        for (long j = 0; j < d; j++) yr[j] = xr[j] * scale * w[j];
    }
}

static void backward_generic(const float *x, const float *g, const float *w, const float *rstd, long rows, long d,
                             float *dx, float *dw) {
    for (long row = 0; row < rows; row++) {
        const float *xr = x + row * d, *gr = g + row * d;
        float *dxr = dx + row * d;
        const float r = rstd[row];
        for (long j = 0; j < d; j++) dxr[j] = gr[j] * w[j];
        const float c = r * r * dot_generic(dxr, xr, d) / (float)d;
        for (long j = 0; j < d; j++) {
            dw[j] = dw[j] + gr[j] * xr[j] * r;
            dxr[j] = r * (dxr[j] - xr[j] * c);
        }
    }
}

#if defined(__x86_64__)
#include <immintrin.h>

__attribute__((target("avx2,fma"))) static float dot_avx2(const float *a, const float *b, long d) {
    const long full = d / 8 * 8;
    __m256 acc = _mm256_setzero_ps();
    for (long j = 0; j < full; j += 8) acc = _mm256_add_ps(acc, _mm256_mul_ps(_mm256_loadu_ps(a + j), _mm256_loadu_ps(b + j)));
    float lanes[8];
    _mm256_storeu_ps(lanes, acc);
    return finish_dot(lanes, a, b, full, d);
}

__attribute__((target("avx2,fma"))) static void forward_avx2(const float *x, long rows, long d, const float *w,
                                                             float epsilon, float *y, long stride, float *rstd) {
    const long full = d / 8 * 8;
    for (long r = 0; r < rows; r++) {
        const float *xr = x + r * d;
        const float scale = scale_of(dot_avx2(xr, xr, d), d, epsilon);
        if (rstd) rstd[r] = scale;
        const __m256 s = _mm256_set1_ps(scale);
        float *yr = y + r * stride;
        for (long j = 0; j < full; j += 8)
            _mm256_storeu_ps(yr + j, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(xr + j), s), _mm256_loadu_ps(w + j)));
        for (long j = full; j < d; j++) yr[j] = xr[j] * scale * w[j];
    }
}

__attribute__((target("avx2,fma"))) static void backward_avx2(const float *x, const float *g, const float *w,
                                                              const float *rstd, long rows, long d, float *dx, float *dw) {
    const long full = d / 8 * 8;
    for (long row = 0; row < rows; row++) {
        const float *xr = x + row * d, *gr = g + row * d;
        float *dxr = dx + row * d;
        const float r = rstd[row];
        for (long j = 0; j < full; j += 8) _mm256_storeu_ps(dxr + j, _mm256_mul_ps(_mm256_loadu_ps(gr + j), _mm256_loadu_ps(w + j)));
        for (long j = full; j < d; j++) dxr[j] = gr[j] * w[j];
        const float c = r * r * dot_avx2(dxr, xr, d) / (float)d;
        const __m256 rv = _mm256_set1_ps(r), cv = _mm256_set1_ps(c);
        for (long j = 0; j < full; j += 8) {
            const __m256 xv = _mm256_loadu_ps(xr + j);
            _mm256_storeu_ps(dw + j, _mm256_add_ps(_mm256_loadu_ps(dw + j), _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(gr + j), xv), rv)));
            _mm256_storeu_ps(dxr + j, _mm256_mul_ps(rv, _mm256_sub_ps(_mm256_loadu_ps(dxr + j), _mm256_mul_ps(xv, cv))));
        }
        for (long j = full; j < d; j++) {
            dw[j] = dw[j] + gr[j] * xr[j] * r;
            dxr[j] = r * (dxr[j] - xr[j] * c);
        }
    }
}
#endif

// Sixteen-lane AVX-512 gains nothing on rows of ~100 floats (and the sums have eight lanes);
// the AVX2 loops are the same operations.
static void forward(int variant, const float *x, long rows, long d, const float *w, float epsilon, float *y, long stride,
                    float *rstd) {
    switch (variant) {
#if defined(__x86_64__)
    case MTP_ROWS_AVX512:
    case MTP_ROWS_AVX2: forward_avx2(x, rows, d, w, epsilon, y, stride, rstd); return;
#endif
    default: forward_generic(x, rows, d, w, epsilon, y, stride, rstd); return;
    }
}

void mtp_rmsnorm_rows_variant(int variant, const float *x, long rows, long d, const float *w, float epsilon, float *y,
                              long stride) {
    if (rows < 0 || d < 1 || stride < d || !mtp_rows_supported(variant)) abort();
    forward(variant, x, rows, d, w, epsilon, y, stride, NULL);
}

void mtp_rmsnorm_rows(const float *x, long rows, long d, const float *w, float epsilon, float *y, long stride) {
    mtp_rmsnorm_rows_variant(mtp_rows_variant(), x, rows, d, w, epsilon, y, stride);
}

void mtp_rmsnorm_forward_variant(int variant, const float *x, long rows, long d, const float *w, float epsilon, float *y,
                                 float *rstd) {
    if (rows < 0 || d < 1 || !mtp_rows_supported(variant)) abort();
    forward(variant, x, rows, d, w, epsilon, y, d, rstd);
}

void mtp_rmsnorm_forward(const float *x, long rows, long d, const float *w, float epsilon, float *y, float *rstd) {
    mtp_rmsnorm_forward_variant(mtp_rows_variant(), x, rows, d, w, epsilon, y, rstd);
}

void mtp_rmsnorm_backward_variant(int variant, const float *x, const float *grad, const float *w, const float *rstd,
                                  long rows, long d, float *dx, float *dw) {
    if (rows < 0 || d < 1 || !mtp_rows_supported(variant)) abort();
    switch (variant) {
#if defined(__x86_64__)
    case MTP_ROWS_AVX512:
    case MTP_ROWS_AVX2: backward_avx2(x, grad, w, rstd, rows, d, dx, dw); return;
#endif
    default: backward_generic(x, grad, w, rstd, rows, d, dx, dw); return;
    }
}

void mtp_rmsnorm_backward(const float *x, const float *grad, const float *w, const float *rstd, long rows, long d,
                          float *dx, float *dw) {
    mtp_rmsnorm_backward_variant(mtp_rows_variant(), x, grad, w, rstd, rows, d, dx, dw);
}
