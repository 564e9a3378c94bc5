// Attention of one decoding query row against a KV cache (see README.md and row_kernels.h).
//
// Legend: n query heads, g key/value heads (head h reads key/value head h / (n/g)), d the head
// dimension, H = g·d the cache's row width, L the visible positions, c = 1/√d (the caller's scale).
//
// For every head h, with K, V that head's cached keys and values:
//   s_j = (Σ_c q[c]·K[c][j], an fma chain over c from +0) · c            j < L
//   e_j = exp(s_j − max_j s_j)                                           (vector_exp.h)
//   t   = lane sums a_i = Σ_b e_{8b+i} (8 lanes, blocks b in order, from +0), then
//         a_0 + a_1 + … + a_7 left to right
//   o[c] = (Σ_j e_j·V[j][c], an fma chain over j from +0) · (1/t)
// Keys are lanes of the scores, columns are lanes of the output: nothing depends on the
// vector width, so the AVX-512 (16-lane), AVX2 (8-lane) and scalar variants agree bit for
// bit, and nothing depends on other query rows. The AVX-512 variant adds each 16-lane block
// of e into the 8 lane sums as its low half, then its high half, which is the 8-lane order.

#include "row_kernels.h"
#include "vector_exp.h"

#include <math.h>
#include <stdlib.h>

#pragma STDC FP_CONTRACT OFF

/// a_0 + a_1 + … + a_7, left to right.
static inline float sumLanes(const float a[8]) {
    float t = a[0];
    for (int i = 1; i < 8; i++) t = t + a[i];
    return t;
}

// MARK: - Generic (any CPU)

static void attend_generic(const float *q, long heads, long kvHeads, long d, const float *keysT, long capacity,
                           const float *values, long visible, float scale, float *s, float *out) {
    const long group = heads / kvHeads, width = kvHeads * d;
    for (long h = 0; h < heads; h++) {
        const long kv = h / group;
        const float *qh = q + h * d, *k = keysT + kv * d * capacity, *v = values + kv * d;
        float m = -__builtin_inff();
        for (long j = 0; j < visible; j++) {
            float acc = 0.0f;
            for (long c = 0; c < d; c++) acc = fmaf(qh[c], k[c * capacity + j], acc);
            s[j] = acc * scale;
            m = s[j] > m ? s[j] : m;
        }
        float lanes[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        for (long j = 0; j < visible; j++) {
            s[j] = mtp_exp_scalar(s[j] - m);
            lanes[j % 8] = lanes[j % 8] + s[j];
        }
        const float inverse = 1.0f / sumLanes(lanes);
        float *o = out + h * d;
        for (long c = 0; c < d; c++) {
            float acc = 0.0f;
            for (long j = 0; j < visible; j++) acc = fmaf(s[j], v[j * width + c], acc);
            o[c] = acc * inverse;
        }
    }
}

#if defined(__x86_64__)

// MARK: - AVX-512

// Independent fma chains, for instruction-level parallelism: a tile is up to 8 (head, key
// block) pairs for the scores, up to 8 (head, column chunk) pairs for the weighted values.

// Scores of tile pairs first ..< first + U, pair p = (head p / blocks, block p % blocks), masked past L.
__attribute__((target("avx512f"), always_inline)) static inline void
scores512(const float *q, long group, long d, const float *keysT, long capacity, long blocks, long first, long visible,
          float scale, float *s, long stride, const int U) {
    __m512 acc[8];
    __mmask16 mask[8];
    const float *qh[8], *k[8];
    float *out[8];
    for (int u = 0; u < U; u++) {
        const long h = (first + u) / blocks, b = (first + u) % blocks, left = visible - 16 * b;
        mask[u] = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);
        qh[u] = q + h * d;
        k[u] = keysT + (h / group) * d * capacity + 16 * b;
        out[u] = s + h * stride + 16 * b;
        acc[u] = _mm512_setzero_ps();
    }
    for (long c = 0; c < d; c++)
        for (int u = 0; u < U; u++)
            acc[u] = _mm512_fmadd_ps(_mm512_set1_ps(qh[u][c]), _mm512_maskz_loadu_ps(mask[u], k[u] + c * capacity), acc[u]);
    for (int u = 0; u < U; u++)
        _mm512_storeu_ps(out[u], _mm512_mask_blend_ps(mask[u], _mm512_set1_ps(-__builtin_inff()),
                                                      _mm512_mul_ps(acc[u], _mm512_set1_ps(scale))));
}

// Weighted values of tile pairs first ..< first + U, pair p = (head p / chunks, chunk p % chunks), masked past d.
__attribute__((target("avx512f"), always_inline)) static inline void
values512(const float *s, long stride, const float *inverse, long group, long d, const float *values, long width,
          long chunks, long first, long visible, float *o, const int U) {
    __m512 acc[8];
    __mmask16 mask[8];
    const float *e[8], *v[8];
    for (int u = 0; u < U; u++) {
        const long h = (first + u) / chunks, c = (first + u) % chunks, left = d - 16 * c;
        mask[u] = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);
        e[u] = s + h * stride;
        v[u] = values + (h / group) * d + 16 * c;
        acc[u] = _mm512_setzero_ps();
    }
    for (long j = 0; j < visible; j++)
        for (int u = 0; u < U; u++)
            acc[u] = _mm512_fmadd_ps(_mm512_set1_ps(e[u][j]), _mm512_maskz_loadu_ps(mask[u], v[u] + j * width), acc[u]);
    for (int u = 0; u < U; u++) {
        const long h = (first + u) / chunks, c = (first + u) % chunks;
        _mm512_mask_storeu_ps(o + h * d + 16 * c, mask[u], _mm512_mul_ps(acc[u], _mm512_set1_ps(inverse[h])));
    }
}

#define TILE(f, n, ...)                                                                                                  \
    for (long p = 0; p < (n); p += 8) {                                                                                  \
        switch ((n) - p < 8 ? (n) - p : 8) {                                                                             \
        case 1: f(__VA_ARGS__, p, 1); break;                                                                             \
        case 2: f(__VA_ARGS__, p, 2); break;                                                                             \
        case 3: f(__VA_ARGS__, p, 3); break;                                                                             \
        case 4: f(__VA_ARGS__, p, 4); break;                                                                             \
        case 5: f(__VA_ARGS__, p, 5); break;                                                                             \
        case 6: f(__VA_ARGS__, p, 6); break;                                                                             \
        case 7: f(__VA_ARGS__, p, 7); break;                                                                             \
        default: f(__VA_ARGS__, p, 8); break;                                                                            \
        }                                                                                                                \
    }

#define SCORES512(q, group, d, keysT, capacity, blocks, visible, scale, s, stride, first, U) \
    scores512(q, group, d, keysT, capacity, blocks, first, visible, scale, s, stride, U)
#define VALUES512(s, stride, inverse, group, d, values, width, chunks, visible, out, first, U) \
    values512(s, stride, inverse, group, d, values, width, chunks, first, visible, out, U)

__attribute__((target("avx512f"))) static void
attend_avx512(const float *q, long heads, long kvHeads, long d, const float *keysT, long capacity, const float *values,
              long visible, float scale, float *s, float *out) {
    const long group = heads / kvHeads, width = kvHeads * d;
    const long blocks = (visible + 15) / 16, chunks = (d + 15) / 16, stride = 16 * blocks;
    float inverse[MTP_ATTEND_HEADS_MAX];
    TILE(SCORES512, heads * blocks, q, group, d, keysT, capacity, blocks, visible, scale, s, stride)
    for (long h = 0; h < heads; h++) {
        float *sh = s + h * stride;
        __m512 m16 = _mm512_set1_ps(-__builtin_inff());
        for (long b = 0; b < blocks; b++) m16 = _mm512_max_ps(m16, _mm512_loadu_ps(sh + 16 * b));
        const __m512 m = _mm512_set1_ps(_mm512_reduce_max_ps(m16));
        __m256 lanes = _mm256_setzero_ps();
        for (long b = 0; b < blocks; b++) {
            const long left = visible - 16 * b;
            const __mmask16 mask = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);
            // Lanes past L take exp(0), not exp(−inf): an underflowing result costs a microcode assist.
            const __m512 e = _mm512_maskz_mov_ps(mask, mtp_exp16(_mm512_maskz_sub_ps(mask, _mm512_loadu_ps(sh + 16 * b), m)));
            _mm512_storeu_ps(sh + 16 * b, e);
            lanes = _mm256_add_ps(lanes, _mm512_castps512_ps256(e));
            lanes = _mm256_add_ps(lanes, _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(e), 1)));
        }
        float a[8];
        _mm256_storeu_ps(a, lanes);
        inverse[h] = 1.0f / sumLanes(a);
    }
    TILE(VALUES512, heads * chunks, s, stride, inverse, group, d, values, width, chunks, visible, out)
}

// MARK: - AVX2 + FMA

__attribute__((target("avx2,fma"), always_inline)) static inline __m256i mask256(long left) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(left < 8 ? left : 8)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

__attribute__((target("avx2,fma"), always_inline)) static inline void
scores256(const float *q, long group, long d, const float *keysT, long capacity, long blocks, long first, long visible,
          float scale, float *s, long stride, const int U) {
    __m256 acc[8];
    __m256i mask[8];
    const float *qh[8], *k[8];
    float *out[8];
    for (int u = 0; u < U; u++) {
        const long h = (first + u) / blocks, b = (first + u) % blocks;
        mask[u] = mask256(visible - 8 * b);
        qh[u] = q + h * d;
        k[u] = keysT + (h / group) * d * capacity + 8 * b;
        out[u] = s + h * stride + 8 * b;
        acc[u] = _mm256_setzero_ps();
    }
    // Plain loads: a block of 8 keys ends within the capacity (a multiple of 8); lanes past L are blended out below.
    for (long c = 0; c < d; c++)
        for (int u = 0; u < U; u++)
            acc[u] = _mm256_fmadd_ps(_mm256_broadcast_ss(qh[u] + c), _mm256_loadu_ps(k[u] + c * capacity), acc[u]);
    for (int u = 0; u < U; u++)
        _mm256_storeu_ps(out[u], _mm256_blendv_ps(_mm256_set1_ps(-__builtin_inff()), _mm256_mul_ps(acc[u], _mm256_set1_ps(scale)),
                                                  _mm256_castsi256_ps(mask[u])));
}

__attribute__((target("avx2,fma"), always_inline)) static inline void
values256(const float *s, long stride, const float *inverse, long group, long d, const float *values, long width,
          long chunks, long first, long visible, float *o, const int U, const int masked) {
    __m256 acc[8];
    __m256i mask[8];
    const float *e[8], *v[8];
    for (int u = 0; u < U; u++) {
        const long h = (first + u) / chunks, c = (first + u) % chunks;
        mask[u] = mask256(d - 8 * c);
        e[u] = s + h * stride;
        v[u] = values + (h / group) * d + 8 * c;
        acc[u] = _mm256_setzero_ps();
    }
    for (long j = 0; j < visible; j++)
        for (int u = 0; u < U; u++)
            acc[u] = _mm256_fmadd_ps(_mm256_broadcast_ss(e[u] + j),
                                     masked ? _mm256_maskload_ps(v[u] + j * width, mask[u]) : _mm256_loadu_ps(v[u] + j * width),
                                     acc[u]);
    for (int u = 0; u < U; u++) {
        const long h = (first + u) / chunks, c = (first + u) % chunks;
        _mm256_maskstore_ps(o + h * d + 8 * c, mask[u], _mm256_mul_ps(acc[u], _mm256_set1_ps(inverse[h])));
    }
}

#define SCORES256(q, group, d, keysT, capacity, blocks, visible, scale, s, stride, first, U) \
    scores256(q, group, d, keysT, capacity, blocks, first, visible, scale, s, stride, U)
#define VALUES256(s, stride, inverse, group, d, values, width, chunks, visible, out, first, U)                     \
    if (d % 8 == 0) values256(s, stride, inverse, group, d, values, width, chunks, first, visible, out, U, 0); \
    else values256(s, stride, inverse, group, d, values, width, chunks, first, visible, out, U, 1)

__attribute__((target("avx2,fma"))) static void
attend_avx2(const float *q, long heads, long kvHeads, long d, const float *keysT, long capacity, const float *values,
            long visible, float scale, float *s, float *out) {
    const long group = heads / kvHeads, width = kvHeads * d;
    const long blocks = (visible + 7) / 8, chunks = (d + 7) / 8, stride = 16 * ((visible + 15) / 16);
    float inverse[MTP_ATTEND_HEADS_MAX];
    TILE(SCORES256, heads * blocks, q, group, d, keysT, capacity, blocks, visible, scale, s, stride)
    for (long h = 0; h < heads; h++) {
        float *sh = s + h * stride;
        __m256 m8 = _mm256_set1_ps(-__builtin_inff());
        for (long b = 0; b < blocks; b++) m8 = _mm256_max_ps(m8, _mm256_loadu_ps(sh + 8 * b));
        float mm[8];
        _mm256_storeu_ps(mm, m8);
        float mx = mm[0];
        for (int i = 1; i < 8; i++) mx = mm[i] > mx ? mm[i] : mx;
        const __m256 m = _mm256_set1_ps(mx);
        __m256 lanes = _mm256_setzero_ps();
        for (long b = 0; b < blocks; b++) {
            // Lanes past L take exp(0), not exp(−inf): an underflowing result costs a microcode assist.
            const __m256 live = _mm256_castsi256_ps(mask256(visible - 8 * b));
            const __m256 e = _mm256_and_ps(mtp_exp8(_mm256_and_ps(_mm256_sub_ps(_mm256_loadu_ps(sh + 8 * b), m), live)), live);
            _mm256_storeu_ps(sh + 8 * b, e);
            lanes = _mm256_add_ps(lanes, e);
        }
        float a[8];
        _mm256_storeu_ps(a, lanes);
        inverse[h] = 1.0f / sumLanes(a);
    }
    TILE(VALUES256, heads * chunks, s, stride, inverse, group, d, values, width, chunks, visible, out)
}
#endif

// MARK: - Dispatch

long mtp_attend_scores_capacity(long heads, long visible) { return heads * ((visible + 15) / 16 * 16); }

void mtp_attend_row_variant(int variant, const float *query, long heads, long kvHeads, long d, const float *keysT,
                            long capacity, const float *values, long visible, float scale, float *scores, float *out) {
    if (heads < 1 || heads > MTP_ATTEND_HEADS_MAX || kvHeads < 1 || heads % kvHeads != 0 || d < 1 || visible < 1 ||
        visible > capacity || capacity % 8 != 0)
        abort();
    if (!mtp_rows_supported(variant)) abort();
    switch (variant) {
#if defined(__x86_64__)
    case MTP_ROWS_AVX512: attend_avx512(query, heads, kvHeads, d, keysT, capacity, values, visible, scale, scores, out); return;
    case MTP_ROWS_AVX2: attend_avx2(query, heads, kvHeads, d, keysT, capacity, values, visible, scale, scores, out); return;
#endif
    default: attend_generic(query, heads, kvHeads, d, keysT, capacity, values, visible, scale, scores, out); return;
    }
}

void mtp_attend_row(const float *query, long heads, long kvHeads, long d, const float *keysT, long capacity,
                    const float *values, long visible, float scale, float *scores, float *out) {
    mtp_attend_row_variant(mtp_rows_variant(), query, heads, kvHeads, d, keysT, capacity, values, visible, scale, scores,
                           out);
}
