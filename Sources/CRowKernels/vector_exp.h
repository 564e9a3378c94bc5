// e^x for the decoding row kernels (private to this target; see README.md).
//
// The same operations, in the same order, as Tensors' `VectorMath.exp(_: SIMD8<Float>)`:
// a clamp, n = round(x·log₂e) by the 1.5·2²³ trick, r = x − n·ln2hi − n·ln2lo, a degree-7
// Taylor polynomial by Horner, times 2^⌊n/2⌋ · 2^(n−⌊n/2⌋), then inf / 0 / NaN fixed up.
// Every step is one IEEE operation (no contraction: the includers set FP_CONTRACT OFF), so
// each lane's bits equal the Swift routine's whatever the vector width: the 16-lane, 8-lane
// and scalar forms below agree with it and with each other.

#ifndef MTP_VECTOR_EXP_H
#define MTP_VECTOR_EXP_H

#include <stdint.h>
#include <math.h>
#include <string.h>

#pragma STDC FP_CONTRACT OFF

#define MTP_EXP_LOG2E 1.4426950408889634f
#define MTP_EXP_MAGIC 12582912.0f
#define MTP_EXP_LN2HI 0.693145751953125f
#define MTP_EXP_LN2LO 1.428606765330187e-06f

static inline float mtp_exp_scalar(float x) {
    float xc = x < -104.0f ? -104.0f : x;
    xc = x > 89.0f ? 89.0f : xc;
    const float t = xc * MTP_EXP_LOG2E + MTP_EXP_MAGIC;
    const float n = t - MTP_EXP_MAGIC;
    int32_t ti;
    memcpy(&ti, &t, 4);
    const int32_t ni = (int32_t)((uint32_t)ti - 0x4B400000u);
    const float r = xc - n * MTP_EXP_LN2HI - n * MTP_EXP_LN2LO;
    float p = 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    const int32_t n1 = ni >> 1;  // arithmetic on every compiler this package meets
    const int32_t n2 = ni - n1;
    const uint32_t b1 = (uint32_t)(n1 + 127) << 23, b2 = (uint32_t)(n2 + 127) << 23;
    float s1, s2;
    memcpy(&s1, &b1, 4);
    memcpy(&s2, &b2, 4);
    float y = p * s1 * s2;
    if (x > 88.722839f) y = __builtin_inff();
    if (x < -103.97208f) y = 0.0f;
    if (x != x) y = x;
    return y;
}

// e^x of a softmax weight, x ≤ 0 (a score minus its row's maximum), cheaper than the above:
// the same n and 2^n, but r = x − n·ln2 and a degree-6 Taylor polynomial in fused
// multiply-adds (relative error below 2·10⁻⁷ on |r| ≤ ln2/2), and 0 for x < −80 (e⁻⁸⁰ is
// 10⁻³⁵ of the row's largest weight, and no result is subnormal, which would cost a
// microcode assist). Every variant runs these operations, so their bits agree; it is not
// `VectorMath.exp` (nothing compares softmax weights with the training forward's bit for bit).
static inline float mtp_softmax_exp_scalar(float x) {
    const float t = x * MTP_EXP_LOG2E + MTP_EXP_MAGIC;
    const float n = t - MTP_EXP_MAGIC;
    int32_t ti;
    memcpy(&ti, &t, 4);
    const int32_t ni = (int32_t)((uint32_t)ti - 0x4B400000u);
    float r = fmaf(n, -MTP_EXP_LN2HI, x);
    r = fmaf(n, -MTP_EXP_LN2LO, r);
    float p = 1.0f / 720.0f;
    p = fmaf(p, r, 1.0f / 120.0f);
    p = fmaf(p, r, 1.0f / 24.0f);
    p = fmaf(p, r, 1.0f / 6.0f);
    p = fmaf(p, r, 0.5f);
    p = fmaf(p, r, 1.0f);
    p = fmaf(p, r, 1.0f);
    const uint32_t b = (uint32_t)(ni + 127) << 23;
    float scale;
    memcpy(&scale, &b, 4);
    return x < -80.0f ? 0.0f : p * scale;
}

#if defined(__x86_64__)
#include <immintrin.h>

__attribute__((target("avx2,fma"), always_inline)) static inline __m256 mtp_exp8(__m256 x) {
    __m256 xc = _mm256_blendv_ps(x, _mm256_set1_ps(-104.0f), _mm256_cmp_ps(x, _mm256_set1_ps(-104.0f), _CMP_LT_OQ));
    xc = _mm256_blendv_ps(xc, _mm256_set1_ps(89.0f), _mm256_cmp_ps(x, _mm256_set1_ps(89.0f), _CMP_GT_OQ));
    const __m256 magic = _mm256_set1_ps(MTP_EXP_MAGIC);
    const __m256 t = _mm256_add_ps(_mm256_mul_ps(xc, _mm256_set1_ps(MTP_EXP_LOG2E)), magic);
    const __m256 n = _mm256_sub_ps(t, magic);
    const __m256i ni = _mm256_sub_epi32(_mm256_castps_si256(t), _mm256_set1_epi32(0x4B400000));
    const __m256 r = _mm256_sub_ps(_mm256_sub_ps(xc, _mm256_mul_ps(n, _mm256_set1_ps(MTP_EXP_LN2HI))),
                                   _mm256_mul_ps(n, _mm256_set1_ps(MTP_EXP_LN2LO)));
    __m256 p = _mm256_set1_ps(1.0f / 5040.0f);
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(1.0f / 720.0f));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(1.0f / 120.0f));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(1.0f / 24.0f));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(1.0f / 6.0f));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(0.5f));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(1.0f));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(1.0f));
    const __m256i n1 = _mm256_srai_epi32(ni, 1);
    const __m256i n2 = _mm256_sub_epi32(ni, n1);
    const __m256i bias = _mm256_set1_epi32(127);
    const __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, bias), 23));
    const __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, bias), 23));
    __m256 y = _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
    y = _mm256_blendv_ps(y, _mm256_set1_ps(__builtin_inff()), _mm256_cmp_ps(x, _mm256_set1_ps(88.722839f), _CMP_GT_OQ));
    y = _mm256_blendv_ps(y, _mm256_setzero_ps(), _mm256_cmp_ps(x, _mm256_set1_ps(-103.97208f), _CMP_LT_OQ));
    return _mm256_blendv_ps(y, x, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
}

__attribute__((target("avx512f"), always_inline)) static inline __m512 mtp_exp16(__m512 x) {
    __m512 xc = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, _mm512_set1_ps(-104.0f), _CMP_LT_OQ), x, _mm512_set1_ps(-104.0f));
    xc = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, _mm512_set1_ps(89.0f), _CMP_GT_OQ), xc, _mm512_set1_ps(89.0f));
    const __m512 magic = _mm512_set1_ps(MTP_EXP_MAGIC);
    const __m512 t = _mm512_add_ps(_mm512_mul_ps(xc, _mm512_set1_ps(MTP_EXP_LOG2E)), magic);
    const __m512 n = _mm512_sub_ps(t, magic);
    const __m512i ni = _mm512_sub_epi32(_mm512_castps_si512(t), _mm512_set1_epi32(0x4B400000));
    const __m512 r = _mm512_sub_ps(_mm512_sub_ps(xc, _mm512_mul_ps(n, _mm512_set1_ps(MTP_EXP_LN2HI))),
                                   _mm512_mul_ps(n, _mm512_set1_ps(MTP_EXP_LN2LO)));
    __m512 p = _mm512_set1_ps(1.0f / 5040.0f);
    p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(1.0f / 720.0f));
    p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(1.0f / 120.0f));
    p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(1.0f / 24.0f));
    p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(1.0f / 6.0f));
    p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(0.5f));
    p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(1.0f));
    p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(1.0f));
    const __m512i n1 = _mm512_srai_epi32(ni, 1);
    const __m512i n2 = _mm512_sub_epi32(ni, n1);
    const __m512i bias = _mm512_set1_epi32(127);
    const __m512 s1 = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(n1, bias), 23));
    const __m512 s2 = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(n2, bias), 23));
    __m512 y = _mm512_mul_ps(_mm512_mul_ps(p, s1), s2);
    y = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, _mm512_set1_ps(88.722839f), _CMP_GT_OQ), y, _mm512_set1_ps(__builtin_inff()));
    y = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, _mm512_set1_ps(-103.97208f), _CMP_LT_OQ), y, _mm512_setzero_ps());
    return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q), y, x);
}
__attribute__((target("avx2,fma"), always_inline)) static inline __m256 mtp_softmax_exp8(__m256 x) {
    const __m256 magic = _mm256_set1_ps(MTP_EXP_MAGIC);
    const __m256 t = _mm256_add_ps(_mm256_mul_ps(x, _mm256_set1_ps(MTP_EXP_LOG2E)), magic);
    const __m256 n = _mm256_sub_ps(t, magic);
    const __m256i ni = _mm256_sub_epi32(_mm256_castps_si256(t), _mm256_set1_epi32(0x4B400000));
    __m256 r = _mm256_fmadd_ps(n, _mm256_set1_ps(-MTP_EXP_LN2HI), x);
    r = _mm256_fmadd_ps(n, _mm256_set1_ps(-MTP_EXP_LN2LO), r);
    __m256 p = _mm256_set1_ps(1.0f / 720.0f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    const __m256 scale = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(ni, _mm256_set1_epi32(127)), 23));
    return _mm256_andnot_ps(_mm256_cmp_ps(x, _mm256_set1_ps(-80.0f), _CMP_LT_OQ), _mm256_mul_ps(p, scale));
}

__attribute__((target("avx512f"), always_inline)) static inline __m512 mtp_softmax_exp16(__m512 x) {
    const __m512 magic = _mm512_set1_ps(MTP_EXP_MAGIC);
    const __m512 t = _mm512_add_ps(_mm512_mul_ps(x, _mm512_set1_ps(MTP_EXP_LOG2E)), magic);
    const __m512 n = _mm512_sub_ps(t, magic);
    const __m512i ni = _mm512_sub_epi32(_mm512_castps_si512(t), _mm512_set1_epi32(0x4B400000));
    __m512 r = _mm512_fmadd_ps(n, _mm512_set1_ps(-MTP_EXP_LN2HI), x);
    r = _mm512_fmadd_ps(n, _mm512_set1_ps(-MTP_EXP_LN2LO), r);
    __m512 p = _mm512_set1_ps(1.0f / 720.0f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    const __m512 scale = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(ni, _mm512_set1_epi32(127)), 23));
    return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(x, _mm512_set1_ps(-80.0f), _CMP_NLT_UQ), _mm512_mul_ps(p, scale));
}
#endif

#endif
