// The tiled attention kernel of training (see README.md and attention_kernels.h).
//
// Legend: Sq queries, Sk keys, d head dimension, br query rows of a block, w keys of a tile.
// Forward, per query block (FlashAttention): for each key tile any of its rows may see,
// S = scale·Q·Kᵀ [br, w], masked; running max m and sum l per row, rescaling the output
// accumulator by e^(m_old − m_new); O = acc / l and lse = m + log l at the end. The score
// matrix never exists beyond one tile, and tiles outside every row's [lo, hi) key span are
// never computed (causality and contiguous documents).
// Backward, per key/value head (FlashAttention-2, sequential over the unit, so deterministic):
// for each query block and key tile, P = e^(scale·Q·Kᵀ − lse) again, dP = dO·Vᵀ,
// dS = scale · P ⊙ (dP − D) with D = rowsum(dO ⊙ O), then dV += Pᵀ·dO, dK += dSᵀ·Q,
// dQ += dS·K. The unit's query heads add into one dK, dV accumulator in head order.
// The instruction-set variants run the same loops; their sums fuse differently (generic has
// no fused multiply-add), so they agree to rounding, not bit for bit.

#include "attention_kernels.h"
#include "row_kernels.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

// Only the explicit AT_FMA below fuses.
#pragma STDC FP_CONTRACT OFF

/// Query rows of a block (a multiple of AT_MR, at most AT_BR): smaller blocks waste less of
/// the diagonal tile on short rows.
static inline long AT_blockRows(long queries) { return queries <= 128 ? 16 : 32; }

#define AT_MR 4

typedef float float4 __attribute__((ext_vector_type(4)));
#define AT_BR 32
#define AT_BC 64

// MARK: - Generic (any CPU)

#define AT_W 4
#define AT_NVMAX 2
#define AT_FN(name) name##_generic
#define AT_FMA(a, b, c) ((a) * (b) + (c))
#include "attention_tiles.h"
#undef AT_W
#undef AT_NVMAX
#undef AT_FN
#undef AT_FMA

#if defined(__x86_64__)
// MARK: - AVX2 + FMA

#define AT_W 8
#define AT_NVMAX 2
#define AT_FN(name) name##_avx2
#define AT_FMA(a, b, c) __builtin_elementwise_fma(a, b, c)
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#include "attention_tiles.h"
#pragma clang attribute pop
#undef AT_W
#undef AT_NVMAX
#undef AT_FN
#undef AT_FMA

// MARK: - AVX-512

#define AT_W 16
#define AT_NVMAX 4
#define AT_FN(name) name##_avx512
#define AT_FMA(a, b, c) __builtin_elementwise_fma(a, b, c)
#pragma clang attribute push(__attribute__((target("avx512f,avx512dq,avx512vl,avx512bw,avx2,fma"))), apply_to = function)
#include "attention_tiles.h"
#pragma clang attribute pop
#undef AT_W
#undef AT_NVMAX
#undef AT_FN
#undef AT_FMA
#endif

// MARK: - Dispatch

long mtp_attention_workspace(long keys, long dim) {
    long n = parts_generic(NULL, keys, dim, &(Parts_generic){0});
#if defined(__x86_64__)
    const long n2 = parts_avx2(NULL, keys, dim, &(Parts_avx2){0});
    const long n3 = parts_avx512(NULL, keys, dim, &(Parts_avx512){0});
    n = n2 > n ? n2 : n;
    n = n3 > n ? n3 : n;
#endif
    return n;
}

int mtp_attention_variant(void) {
    // A benign race: every thread computes the same value.
    static int chosen = -1;
    int v = __atomic_load_n(&chosen, __ATOMIC_RELAXED);
    if (v < 0) {
        v = mtp_kernel_variant_from_environment("MTP_ATTENTION_KERNEL");
        __atomic_store_n(&chosen, v, __ATOMIC_RELAXED);
    }
    return v;
}

static void check(int variant, const mtp_attention_unit *u) {
    if (!mtp_rows_supported(variant) || u->queries < 0 || u->keys < u->queries || u->dim < 0 || u->heads < 0 ||
        u->keys > 0x3FFFFFFF)
        abort();
}

void mtp_attention_forward_variant(int variant, const mtp_attention_unit *u, float *workspace) {
    check(variant, u);
    switch (variant) {
#if defined(__x86_64__)
    case MTP_ROWS_AVX512: forward_avx512(u, workspace); return;
    case MTP_ROWS_AVX2: forward_avx2(u, workspace); return;
#endif
    default: forward_generic(u, workspace); return;
    }
}

void mtp_attention_backward_variant(int variant, const mtp_attention_unit *u, float *workspace) {
    check(variant, u);
    switch (variant) {
#if defined(__x86_64__)
    case MTP_ROWS_AVX512: backward_avx512(u, workspace); return;
    case MTP_ROWS_AVX2: backward_avx2(u, workspace); return;
#endif
    default: backward_generic(u, workspace); return;
    }
}

void mtp_attention_forward(const mtp_attention_unit *u, float *workspace) {
    mtp_attention_forward_variant(mtp_attention_variant(), u, workspace);
}

void mtp_attention_backward(const mtp_attention_unit *u, float *workspace) {
    mtp_attention_backward_variant(mtp_attention_variant(), u, workspace);
}
