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

// Tiles, for instruction-level parallelism: up to 8 independent fma chains at once, NH heads
// × NU units (key blocks for the scores, column chunks for the weighted values) of each, so a
// tile needs NH query / weight pointers and NH broadcasts per step, not one per chain.
// `TILES` walks every (head, unit) of a call: whole heads NH at a time while a head has
// fewer than 8 units, else one head 8 units at a time.
#define TILE_CASES(F, ...)                                                                                            \
    switch (nh * 16 + nu) {                                                                                          \
    case 0x11: F(__VA_ARGS__, 1, 1); break;                                                                          \
    case 0x12: F(__VA_ARGS__, 1, 2); break;                                                                          \
    case 0x13: F(__VA_ARGS__, 1, 3); break;                                                                          \
    case 0x14: F(__VA_ARGS__, 1, 4); break;                                                                          \
    case 0x15: F(__VA_ARGS__, 1, 5); break;                                                                          \
    case 0x16: F(__VA_ARGS__, 1, 6); break;                                                                          \
    case 0x17: F(__VA_ARGS__, 1, 7); break;                                                                          \
    case 0x18: F(__VA_ARGS__, 1, 8); break;                                                                          \
    case 0x21: F(__VA_ARGS__, 2, 1); break;                                                                          \
    case 0x22: F(__VA_ARGS__, 2, 2); break;                                                                          \
    case 0x23: F(__VA_ARGS__, 2, 3); break;                                                                          \
    case 0x24: F(__VA_ARGS__, 2, 4); break;                                                                          \
    case 0x41: F(__VA_ARGS__, 4, 1); break;                                                                          \
    case 0x42: F(__VA_ARGS__, 4, 2); break;                                                                          \
    case 0x81: F(__VA_ARGS__, 8, 1); break;                                                                          \
    default: abort();                                                                                                \
    }

#define TILES(F, heads, units, ...)                                                                                  \
    if ((units) >= 8) {                                                                                              \
        for (long h = 0; h < (heads); h++)                                                                           \
            for (long u0 = 0; u0 < (units); u0 += 8) {                                                               \
                const long nh = 1, nu = (units) - u0 < 8 ? (units) - u0 : 8;                                         \
                TILE_CASES(F, __VA_ARGS__, h, u0)                                                                    \
            }                                                                                                        \
    } else {                                                                                                         \
        const long wide = 8 / (units) >= 8 ? 8 : 8 / (units) >= 4 ? 4 : 8 / (units) >= 2 ? 2 : 1;                    \
        for (long h = 0; h < (heads);) {                                                                             \
            long nh = wide;                                                                                          \
            while (nh > (heads) - h) nh /= 2;                                                                        \
            const long nu = (units), u0 = 0;                                                                         \
            TILE_CASES(F, __VA_ARGS__, h, u0)                                                                        \
            h += nh;                                                                                                 \
        }                                                                                                            \
    }

// MARK: - AVX-512

// Scores of heads h0 ..< h0 + NH, key blocks b0 ..< b0 + NB (16 keys each, masked past L).
__attribute__((target("avx512f"), always_inline)) static inline void
scores512(const float *q, long group, long d, const float *keysT, long capacity, long visible, float scale, float *s,
          long stride, long h0, long b0, const int NH, const int NB) {
    __m512 acc[8];
    __mmask16 mask[8];
    const float *qh[8], *k[8];
    for (int i = 0; i < NH; i++) {
        qh[i] = q + (h0 + i) * d;
        k[i] = keysT + ((h0 + i) / group) * d * capacity + 16 * b0;
    }
    for (int b = 0; b < NB; b++) {
        const long left = visible - 16 * (b0 + b);
        mask[b] = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);
    }
    for (int u = 0; u < NH * NB; u++) acc[u] = _mm512_setzero_ps();
    for (long c = 0; c < d; c++)
        for (int i = 0; i < NH; i++) {
            const __m512 qc = _mm512_set1_ps(qh[i][c]);
            for (int b = 0; b < NB; b++)
                acc[i * NB + b] = _mm512_fmadd_ps(qc, _mm512_maskz_loadu_ps(mask[b], k[i] + c * capacity + 16 * b), acc[i * NB + b]);
        }
    for (int i = 0; i < NH; i++)
        for (int b = 0; b < NB; b++)
            _mm512_storeu_ps(s + (h0 + i) * stride + 16 * (b0 + b),
                             _mm512_mask_blend_ps(mask[b], _mm512_set1_ps(-__builtin_inff()),
                                                  _mm512_mul_ps(acc[i * NB + b], _mm512_set1_ps(scale))));
}

// Weighted values of heads h0 ..< h0 + NH, column chunks c0 ..< c0 + NC (16 columns each, masked past d).
__attribute__((target("avx512f"), always_inline)) static inline void
values512(const float *s, long stride, const float *inverse, long group, long d, const float *values, long width,
          long visible, float *o, long h0, long c0, const int NH, const int NC) {
    __m512 acc[8];
    __mmask16 mask[8];
    const float *e[8], *v[8];
    for (int i = 0; i < NH; i++) {
        e[i] = s + (h0 + i) * stride;
        v[i] = values + ((h0 + i) / group) * d + 16 * c0;
    }
    for (int c = 0; c < NC; c++) {
        const long left = d - 16 * (c0 + c);
        mask[c] = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);
    }
    for (int u = 0; u < NH * NC; u++) acc[u] = _mm512_setzero_ps();
    for (long j = 0; j < visible; j++)
        for (int i = 0; i < NH; i++) {
            const __m512 ej = _mm512_set1_ps(e[i][j]);
            for (int c = 0; c < NC; c++)
                acc[i * NC + c] = _mm512_fmadd_ps(ej, _mm512_maskz_loadu_ps(mask[c], v[i] + j * width + 16 * c), acc[i * NC + c]);
        }
    for (int i = 0; i < NH; i++)
        for (int c = 0; c < NC; c++)
            _mm512_mask_storeu_ps(o + (h0 + i) * d + 16 * (c0 + c), mask[c],
                                  _mm512_mul_ps(acc[i * NC + c], _mm512_set1_ps(inverse[h0 + i])));
}

#define SCORES512(q, group, d, keysT, capacity, visible, scale, s, stride, h0, b0, NH, NB) \
    scores512(q, group, d, keysT, capacity, visible, scale, s, stride, h0, b0, NH, NB)
#define VALUES512(s, stride, inverse, group, d, values, width, visible, out, h0, c0, NH, NC) \
    values512(s, stride, inverse, group, d, values, width, visible, out, h0, c0, NH, NC)

__attribute__((target("avx512f"))) static void
attend_avx512(const float *q, long heads, long kvHeads, long d, const float *keysT, long capacity, const float *values,
              long visible, float scale, float *s, float *out) {
    const long group = heads / kvHeads, width = kvHeads * d;
    const long blocks = (visible + 15) / 16, chunks = (d + 15) / 16, stride = 16 * blocks;
    float inverse[MTP_ATTEND_HEADS_MAX];
    TILES(SCORES512, heads, blocks, q, group, d, keysT, capacity, visible, scale, s, stride)
    for (long h = 0; h < heads; h++) {
        float *sh = s + h * stride;
        __m512 m16 = _mm512_set1_ps(-__builtin_inff());
        for (long b = 0; b < blocks; b++) m16 = _mm512_max_ps(m16, _mm512_loadu_ps(sh + 16 * b));
        const __m512 m = _mm512_set1_ps(_mm512_reduce_max_ps(m16));
        __m256 lanes = _mm256_setzero_ps();
        for (long b = 0; b < blocks; b++) {
            const long left = visible - 16 * b;
            const __mmask16 mask = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);
            // Lanes past L take exp(0) and are then zeroed.
            const __m512 e = _mm512_maskz_mov_ps(mask, mtp_exp16(_mm512_maskz_sub_ps(mask, _mm512_loadu_ps(sh + 16 * b), m)));
            _mm512_storeu_ps(sh + 16 * b, e);
            lanes = _mm256_add_ps(lanes, _mm512_castps512_ps256(e));
            lanes = _mm256_add_ps(lanes, _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(e), 1)));
        }
        float a[8];
        _mm256_storeu_ps(a, lanes);
        inverse[h] = 1.0f / sumLanes(a);
    }
    TILES(VALUES512, heads, chunks, s, stride, inverse, group, d, values, width, visible, out)
}

// MARK: - AVX2 + FMA

__attribute__((target("avx2,fma"), always_inline)) static inline __m256i mask256(long left) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(left < 8 ? left : 8)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// Scores of heads h0 ..< h0 + NH, key blocks b0 ..< b0 + NB (8 keys each). Plain loads: a block
// ends within the capacity (a multiple of 8); lanes past L are blended out.
__attribute__((target("avx2,fma"), always_inline)) static inline void
scores256(const float *q, long group, long d, const float *keysT, long capacity, long visible, float scale, float *s,
          long stride, long h0, long b0, const int NH, const int NB) {
    __m256 acc[8];
    const float *qh[8], *k[8];
    for (int i = 0; i < NH; i++) {
        qh[i] = q + (h0 + i) * d;
        k[i] = keysT + ((h0 + i) / group) * d * capacity + 8 * b0;
    }
    for (int u = 0; u < NH * NB; u++) acc[u] = _mm256_setzero_ps();
    for (long c = 0; c < d; c++)
        for (int i = 0; i < NH; i++) {
            const __m256 qc = _mm256_broadcast_ss(qh[i] + c);
            for (int b = 0; b < NB; b++)
                acc[i * NB + b] = _mm256_fmadd_ps(qc, _mm256_loadu_ps(k[i] + c * capacity + 8 * b), acc[i * NB + b]);
        }
    for (int i = 0; i < NH; i++)
        for (int b = 0; b < NB; b++)
            _mm256_storeu_ps(s + (h0 + i) * stride + 8 * (b0 + b),
                             _mm256_blendv_ps(_mm256_set1_ps(-__builtin_inff()), _mm256_mul_ps(acc[i * NB + b], _mm256_set1_ps(scale)),
                                              _mm256_castsi256_ps(mask256(visible - 8 * (b0 + b)))));
}

// Weighted values of heads h0 ..< h0 + NH, column chunks c0 ..< c0 + NC (8 columns each; the
// last chunk of a head is loaded and stored under a mask when d is not a multiple of 8).
__attribute__((target("avx2,fma"), always_inline)) static inline void
values256(const float *s, long stride, const float *inverse, long group, long d, const float *values, long width,
          long visible, float *o, long h0, long c0, const int NH, const int NC) {
    __m256 acc[8];
    const float *e[8], *v[8];
    const int partial = d % 8 != 0 && c0 + NC == (d + 7) / 8;
    const __m256i last = mask256(d - 8 * (c0 + NC - 1));
    for (int i = 0; i < NH; i++) {
        e[i] = s + (h0 + i) * stride;
        v[i] = values + ((h0 + i) / group) * d + 8 * c0;
    }
    for (int u = 0; u < NH * NC; u++) acc[u] = _mm256_setzero_ps();
    if (partial) {
        for (long j = 0; j < visible; j++)
            for (int i = 0; i < NH; i++) {
                const __m256 ej = _mm256_broadcast_ss(e[i] + j);
                for (int c = 0; c < NC; c++) {
                    const float *p = v[i] + j * width + 8 * c;
                    const __m256 vj = c == NC - 1 ? _mm256_maskload_ps(p, last) : _mm256_loadu_ps(p);
                    acc[i * NC + c] = _mm256_fmadd_ps(ej, vj, acc[i * NC + c]);
                }
            }
    } else {
        for (long j = 0; j < visible; j++)
            for (int i = 0; i < NH; i++) {
                const __m256 ej = _mm256_broadcast_ss(e[i] + j);
                for (int c = 0; c < NC; c++)
                    acc[i * NC + c] = _mm256_fmadd_ps(ej, _mm256_loadu_ps(v[i] + j * width + 8 * c), acc[i * NC + c]);
            }
    }
    for (int i = 0; i < NH; i++)
        for (int c = 0; c < NC; c++) {
            float *p = o + (h0 + i) * d + 8 * (c0 + c);
            const __m256 r = _mm256_mul_ps(acc[i * NC + c], _mm256_set1_ps(inverse[h0 + i]));
            if (partial && c == NC - 1) _mm256_maskstore_ps(p, last, r);
            else _mm256_storeu_ps(p, r);
        }
}

#define SCORES256(q, group, d, keysT, capacity, visible, scale, s, stride, h0, b0, NH, NB) \
    scores256(q, group, d, keysT, capacity, visible, scale, s, stride, h0, b0, NH, NB)
#define VALUES256(s, stride, inverse, group, d, values, width, visible, out, h0, c0, NH, NC) \
    values256(s, stride, inverse, group, d, values, width, visible, out, h0, c0, NH, NC)

__attribute__((target("avx2,fma"))) static void
attend_avx2(const float *q, long heads, long kvHeads, long d, const float *keysT, long capacity, const float *values,
            long visible, float scale, float *s, float *out) {
    const long group = heads / kvHeads, width = kvHeads * d;
    const long blocks = (visible + 7) / 8, chunks = (d + 7) / 8, stride = 16 * ((visible + 15) / 16);
    float inverse[MTP_ATTEND_HEADS_MAX];
    TILES(SCORES256, heads, blocks, q, group, d, keysT, capacity, visible, scale, s, stride)
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
            // Lanes past L take exp(0) and are then zeroed.
            const __m256 live = _mm256_castsi256_ps(mask256(visible - 8 * b));
            const __m256 e = _mm256_and_ps(mtp_exp8(_mm256_and_ps(_mm256_sub_ps(_mm256_loadu_ps(sh + 8 * b), m), live)), live);
            _mm256_storeu_ps(sh + 8 * b, e);
            lanes = _mm256_add_ps(lanes, e);
        }
        float a[8];
        _mm256_storeu_ps(a, lanes);
        inverse[h] = 1.0f / sumLanes(a);
    }
    TILES(VALUES256, heads, chunks, s, stride, inverse, group, d, values, width, visible, out)
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
