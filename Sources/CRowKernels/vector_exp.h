// e^x for the decoding row kernels (private to this target; see README.md): the softmax
// weights of attention_row.c and SwiGLU's σ(a) = 1 / (1 + e^(−a)) in swiglu_rows.c.
//
// x is clamped to [−87, 88] (e⁻⁸⁷ ≈ 10⁻³⁸ vanishes next to the 1 of σ or the row's largest
// softmax weight, and no result is subnormal, which would cost a microcode assist); then
// n = round(x·log₂e) by the 1.5·2²³ trick, r = x − n·ln2 (ln2 in two parts, fused
// multiply-adds), a degree-7 Taylor polynomial in r by Horner with fused multiply-adds,
// times 2ⁿ built in the exponent bits; +inf above 88.722839 (where e^x overflows). A NaN
// becomes e⁻⁸⁷, and the caller's NaN input carries on through its own arithmetic.
// Relative error within about 2 ulp of e^x. It is not Tensors' `VectorMath.exp` (no fused
// multiply-adds there), so these kernels agree with the training forward within rounding,
// not bit for bit. The 16-lane, 8-lane and scalar forms run the same operations, so every
// lane's bits agree whatever the vector width.

#ifndef MTP_VECTOR_EXP_H
#define MTP_VECTOR_EXP_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#pragma STDC FP_CONTRACT OFF

#define MTP_EXP_LOG2E 1.4426950408889634f
#define MTP_EXP_MAGIC 12582912.0f
#define MTP_EXP_LN2HI 0.693145751953125f
#define MTP_EXP_LN2LO 1.428606765330187e-06f

static inline float mtp_exp_scalar(float x) {
    float xc = x > -87.0f ? x : -87.0f;  // NaN → −87, as max_ps does; σ's NaN then comes from a
    xc = xc < 88.0f ? xc : 88.0f;
    const float t = xc * MTP_EXP_LOG2E + MTP_EXP_MAGIC;
    const float n = t - MTP_EXP_MAGIC;
    int32_t ti;
    memcpy(&ti, &t, 4);
    const int32_t ni = (int32_t)((uint32_t)ti - 0x4B400000u);
    float r = fmaf(n, -MTP_EXP_LN2HI, xc);
    r = fmaf(n, -MTP_EXP_LN2LO, r);
    float p = 1.0f / 5040.0f;
    p = fmaf(p, r, 1.0f / 720.0f);
    p = fmaf(p, r, 1.0f / 120.0f);
    p = fmaf(p, r, 1.0f / 24.0f);
    p = fmaf(p, r, 1.0f / 6.0f);
    p = fmaf(p, r, 0.5f);
    p = fmaf(p, r, 1.0f);
    p = fmaf(p, r, 1.0f);
    const uint32_t b = (uint32_t)(ni + 127) << 23;
    float scale;
    memcpy(&scale, &b, 4);
    return x > 88.722839f ? __builtin_inff() : p * scale;
}

#if defined(__x86_64__)
#include <immintrin.h>

__attribute__((target("avx2,fma"), always_inline)) static inline __m256 mtp_exp8(__m256 x) {
    const __m256 xc = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.0f)), _mm256_set1_ps(88.0f));
    const __m256 magic = _mm256_set1_ps(MTP_EXP_MAGIC);
    const __m256 t = _mm256_add_ps(_mm256_mul_ps(xc, _mm256_set1_ps(MTP_EXP_LOG2E)), magic);
    const __m256 n = _mm256_sub_ps(t, magic);
    const __m256i ni = _mm256_sub_epi32(_mm256_castps_si256(t), _mm256_set1_epi32(0x4B400000));
    __m256 r = _mm256_fmadd_ps(n, _mm256_set1_ps(-MTP_EXP_LN2HI), xc);
    r = _mm256_fmadd_ps(n, _mm256_set1_ps(-MTP_EXP_LN2LO), r);
    __m256 p = _mm256_set1_ps(1.0f / 5040.0f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 720.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    const __m256 scale = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(ni, _mm256_set1_epi32(127)), 23));
    return _mm256_blendv_ps(_mm256_mul_ps(p, scale), _mm256_set1_ps(__builtin_inff()),
                            _mm256_cmp_ps(x, _mm256_set1_ps(88.722839f), _CMP_GT_OQ));
}

__attribute__((target("avx512f"), always_inline)) static inline __m512 mtp_exp16(__m512 x) {
    const __m512 xc = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-87.0f)), _mm512_set1_ps(88.0f));
    const __m512 magic = _mm512_set1_ps(MTP_EXP_MAGIC);
    const __m512 t = _mm512_add_ps(_mm512_mul_ps(xc, _mm512_set1_ps(MTP_EXP_LOG2E)), magic);
    const __m512 n = _mm512_sub_ps(t, magic);
    const __m512i ni = _mm512_sub_epi32(_mm512_castps_si512(t), _mm512_set1_epi32(0x4B400000));
    __m512 r = _mm512_fmadd_ps(n, _mm512_set1_ps(-MTP_EXP_LN2HI), xc);
    r = _mm512_fmadd_ps(n, _mm512_set1_ps(-MTP_EXP_LN2LO), r);
    __m512 p = _mm512_set1_ps(1.0f / 5040.0f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 720.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    const __m512 scale = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(ni, _mm512_set1_epi32(127)), 23));
    return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, _mm512_set1_ps(88.722839f), _CMP_GT_OQ), _mm512_mul_ps(p, scale),
                                _mm512_set1_ps(__builtin_inff()));
}
#endif

#endif
