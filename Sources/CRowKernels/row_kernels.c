// The few-row projection kernel of decoding (see README.md and row_kernels.h).
//
// Legend: R rows of a call (1 … 8), K = in, N = out, P = ⌈N/16⌉ panels, a "vector" is 16
// (AVX-512) or 8 (AVX2) consecutive output columns, C the vectors of one pass.
//
// Weight layout (`mtp_rows_pack`): panels of 16 output columns, panel p holding
// w[k][16p ..< 16p + 16] for k = 0 … K − 1 contiguously ([P][K][16], one 64-byte line per k,
// columns past N zero). A pass covers R rows × C vectors of columns: for k = 0 … K − 1 it
// loads the C vectors of line k of its panels once, broadcasts x[r][k] for each row and
// multiply-adds into R·C accumulators. Every accumulator lane is the fma chain of one output
// over k in order, so no result depends on R, on C or on which pass a column falls in; C(R)
// only keeps the R·C accumulators (plus the C weight vectors) inside the register file.
// Each pass streams its own panels front to back, so a matrix's bytes are read once,
// spread over all its passes, while the passes compute (with w row-major, a pass over a
// few columns read a narrow strip of every row and the first pass waited on memory
// alone). The last vector of a row is stored under a mask, never writing past y's row.

#include "row_kernels.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

// Only the explicit fmaf / fmadd below may fuse: no contraction of anything else.
#pragma STDC FP_CONTRACT OFF

/// Floats of one panel line.
#define PANEL 16

// MARK: - Packing

long mtp_rows_packed_count(long in, long out) { return (out + PANEL - 1) / PANEL * PANEL * in; }

void mtp_rows_pack(const float *w, long in, long out, float *panels) {
    const long count = (out + PANEL - 1) / PANEL;
    for (long p = 0; p < count; p++) {
        const long j0 = p * PANEL, n = out - j0 < PANEL ? out - j0 : PANEL;
        for (long k = 0; k < in; k++) {
            float *line = panels + (p * in + k) * PANEL;
            memcpy(line, w + k * out + j0, (size_t)n * sizeof(float));
            for (long j = n; j < PANEL; j++) line[j] = 0.0f;
        }
    }
}

// MARK: - Generic (any CPU)

static void rows_generic(const float *x, long rows, long in, const float *w, long out, float *y, int accumulate) {
    float s[PANEL];
    for (long r = 0; r < rows; r++) {
        const float *xr = x + r * in;
        float *yr = y + r * out;
        for (long j0 = 0; j0 < out; j0 += PANEL) {
            const long n = out - j0 < PANEL ? out - j0 : PANEL;
            const float *panel = w + (j0 / PANEL) * in * PANEL;
            for (long j = 0; j < PANEL; j++) s[j] = 0.0f;
            for (long k = 0; k < in; k++) {
                const float xv = xr[k];
                for (long j = 0; j < PANEL; j++) s[j] = fmaf(xv, panel[k * PANEL + j], s[j]);
            }
            if (accumulate) {
                for (long j = 0; j < n; j++) yr[j0 + j] = yr[j0 + j] + s[j];
            } else {
                for (long j = 0; j < n; j++) yr[j0 + j] = s[j];
            }
        }
    }
}

#if defined(__x86_64__)
#include <immintrin.h>

// MARK: - AVX-512

// Vectors (= panels) per pass for R rows: R·C accumulators + C weights + a broadcast within 32 registers.
static const int passVectors512[MTP_ROWS_MAX + 1] = {0, 8, 8, 6, 5, 4, 4, 3, 3};

__attribute__((target("avx512f"), always_inline)) static inline void
pass512(const float *x, long in, const float *w, long out, float *y, int accumulate, long v0, const int R, const int C,
        __mmask16 last) {
    __m512 a[MTP_ROWS_MAX][8];
    for (int r = 0; r < R; r++)
        for (int c = 0; c < C; c++) a[r][c] = _mm512_setzero_ps();
    const float *panels = w + v0 * in * PANEL;
    for (long k = 0; k < in; k++) {
        __m512 wv[8];
        for (int c = 0; c < C; c++) wv[c] = _mm512_loadu_ps(panels + (c * in + k) * PANEL);
        for (int r = 0; r < R; r++) {
            const __m512 xb = _mm512_set1_ps(x[r * in + k]);
            for (int c = 0; c < C; c++) a[r][c] = _mm512_fmadd_ps(xb, wv[c], a[r][c]);
        }
    }
    for (int r = 0; r < R; r++) {
        for (int c = 0; c < C; c++) {
            float *p = y + r * out + (v0 + c) * 16;
            const __mmask16 m = c == C - 1 ? last : (__mmask16)0xFFFF;
            const __m512 v = accumulate ? _mm512_add_ps(_mm512_maskz_loadu_ps(m, p), a[r][c]) : a[r][c];
            _mm512_mask_storeu_ps(p, m, v);
        }
    }
}

#define P512(R, C) case C: pass512(x, in, w, out, y, accumulate, v, R, C, last); break;

__attribute__((target("avx512f"))) static void
rows_avx512(const float *x, long rows, long in, const float *w, long out, float *y, int accumulate) {
    const long vectors = (out + 15) / 16;
    const int perPass = passVectors512[rows];
    for (long v = 0; v < vectors;) {
        const int c = vectors - v < perPass ? (int)(vectors - v) : perPass;
        const long left = out - (v + c - 1) * 16;  // columns of the pass's last vector, 1 … 16
        const __mmask16 last = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);
        switch (rows) {
        case 1: switch (c) { P512(1, 1) P512(1, 2) P512(1, 3) P512(1, 4) P512(1, 5) P512(1, 6) P512(1, 7) P512(1, 8) } break;
        case 2: switch (c) { P512(2, 1) P512(2, 2) P512(2, 3) P512(2, 4) P512(2, 5) P512(2, 6) P512(2, 7) P512(2, 8) } break;
        case 3: switch (c) { P512(3, 1) P512(3, 2) P512(3, 3) P512(3, 4) P512(3, 5) P512(3, 6) } break;
        case 4: switch (c) { P512(4, 1) P512(4, 2) P512(4, 3) P512(4, 4) P512(4, 5) } break;
        case 5: switch (c) { P512(5, 1) P512(5, 2) P512(5, 3) P512(5, 4) } break;
        case 6: switch (c) { P512(6, 1) P512(6, 2) P512(6, 3) P512(6, 4) } break;
        case 7: switch (c) { P512(7, 1) P512(7, 2) P512(7, 3) } break;
        case 8: switch (c) { P512(8, 1) P512(8, 2) P512(8, 3) } break;
        default: abort();
        }
        v += c;
    }
}

// MARK: - AVX2 + FMA

// Vectors per pass for R rows within 16 registers. Vector v is half v % 2 of panel v / 2.
static const int passVectors256[MTP_ROWS_MAX + 1] = {0, 8, 4, 3, 2, 2, 2, 1, 1};

__attribute__((target("avx2,fma"), always_inline)) static inline void
pass256(const float *x, long in, const float *w, long out, float *y, int accumulate, long v0, const int R, const int C,
        int left) {
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i last = _mm256_cmpgt_epi32(_mm256_set1_epi32(left), lane);
    const int partial = left < 8;
    __m256 a[MTP_ROWS_MAX][8];
    const float *column[8];
    for (int c = 0; c < C; c++) column[c] = w + ((v0 + c) / 2) * in * PANEL + ((v0 + c) % 2) * 8;
    for (int r = 0; r < R; r++)
        for (int c = 0; c < C; c++) a[r][c] = _mm256_setzero_ps();
    for (long k = 0; k < in; k++) {
        __m256 wv[8];
        for (int c = 0; c < C; c++) wv[c] = _mm256_loadu_ps(column[c] + k * PANEL);
        for (int r = 0; r < R; r++) {
            const __m256 xb = _mm256_broadcast_ss(x + r * in + k);
            for (int c = 0; c < C; c++) a[r][c] = _mm256_fmadd_ps(xb, wv[c], a[r][c]);
        }
    }
    for (int r = 0; r < R; r++) {
        for (int c = 0; c < C; c++) {
            float *p = y + r * out + (v0 + c) * 8;
            if (c == C - 1 && partial) {
                const __m256 v = accumulate ? _mm256_add_ps(_mm256_maskload_ps(p, last), a[r][c]) : a[r][c];
                _mm256_maskstore_ps(p, last, v);
            } else {
                _mm256_storeu_ps(p, accumulate ? _mm256_add_ps(_mm256_loadu_ps(p), a[r][c]) : a[r][c]);
            }
        }
    }
}

#define P256(R, C) case C: pass256(x, in, w, out, y, accumulate, v, R, C, (int)left); break;

__attribute__((target("avx2,fma"))) static void
rows_avx2(const float *x, long rows, long in, const float *w, long out, float *y, int accumulate) {
    const long vectors = (out + 7) / 8;
    const int perPass = passVectors256[rows];
    for (long v = 0; v < vectors;) {
        const int c = vectors - v < perPass ? (int)(vectors - v) : perPass;
        const long left = out - (v + c - 1) * 8;  // columns of the pass's last vector, 1 … 8
        switch (rows) {
        case 1: switch (c) { P256(1, 1) P256(1, 2) P256(1, 3) P256(1, 4) P256(1, 5) P256(1, 6) P256(1, 7) P256(1, 8) } break;
        case 2: switch (c) { P256(2, 1) P256(2, 2) P256(2, 3) P256(2, 4) } break;
        case 3: switch (c) { P256(3, 1) P256(3, 2) P256(3, 3) } break;
        case 4: switch (c) { P256(4, 1) P256(4, 2) } break;
        case 5: switch (c) { P256(5, 1) P256(5, 2) } break;
        case 6: switch (c) { P256(6, 1) P256(6, 2) } break;
        case 7: switch (c) { P256(7, 1) } break;
        case 8: switch (c) { P256(8, 1) } break;
        default: abort();
        }
        v += c;
    }
}
#endif

// MARK: - Dispatch

int mtp_rows_supported(int variant) {
    switch (variant) {
    case MTP_ROWS_GENERIC: return 1;
#if defined(__x86_64__)
    case MTP_ROWS_AVX2: return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case MTP_ROWS_AVX512: return __builtin_cpu_supports("avx512f");
#endif
    default: return 0;
    }
}

int mtp_kernel_variant_from_environment(const char *variable) {
    int best = MTP_ROWS_GENERIC;
    if (mtp_rows_supported(MTP_ROWS_AVX2)) best = MTP_ROWS_AVX2;
    if (mtp_rows_supported(MTP_ROWS_AVX512)) best = MTP_ROWS_AVX512;
    const char *forced = getenv(variable);
    if (forced) {
        int asked = strcmp(forced, "generic") == 0 ? MTP_ROWS_GENERIC
                  : strcmp(forced, "avx2") == 0    ? MTP_ROWS_AVX2
                  : strcmp(forced, "avx512") == 0  ? MTP_ROWS_AVX512
                                                   : -1;
        if (asked >= 0 && asked <= best && mtp_rows_supported(asked)) best = asked;
    }
    return best;
}

int mtp_rows_variant(void) {
    // A benign race: every thread computes the same value.
    static int chosen = -1;
    int v = __atomic_load_n(&chosen, __ATOMIC_RELAXED);
    if (v < 0) {
        v = mtp_kernel_variant_from_environment("MTP_ROW_KERNEL");
        __atomic_store_n(&chosen, v, __ATOMIC_RELAXED);
    }
    return v;
}

static inline void run(int variant, const float *x, long rows, long in, const float *w, long out, float *y,
                       int accumulate) {
    if (rows < 1 || rows > MTP_ROWS_MAX || in < 1 || out < 1) abort();
    switch (variant) {
#if defined(__x86_64__)
    case MTP_ROWS_AVX512: rows_avx512(x, rows, in, w, out, y, accumulate); return;
    case MTP_ROWS_AVX2: rows_avx2(x, rows, in, w, out, y, accumulate); return;
#endif
    default: rows_generic(x, rows, in, w, out, y, accumulate); return;
    }
}

void mtp_rows_matmul_variant(int variant, const float *x, long rows, long in, const float *w, long out, float *y,
                             int accumulate) {
    if (!mtp_rows_supported(variant)) abort();
    run(variant, x, rows, in, w, out, y, accumulate);
}

void mtp_rows_matmul(const float *x, long rows, long in, const float *w, long out, float *y, int accumulate) {
    run(mtp_rows_variant(), x, rows, in, w, out, y, accumulate);
}
