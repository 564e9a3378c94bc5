// The tiled attention kernel of NN's AttentionKernel (private; see README.md).
#ifndef MTP_ATTENTION_KERNELS_H
#define MTP_ATTENTION_KERNELS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// One unit of work: the query heads that share one key/value head, of one batch row.
///
/// Strides are in floats. Query head t of the unit reads q + t·q_head (row i at + i·q_row);
/// its output, log-sum-exp, output gradient and query gradient are laid out likewise. The
/// key/value head is k (row j at + j·k_row) and v; its gradients dk, dv.
/// Query i may see key j when lo[i] ≤ j < hi[i] and, unless pure[i] (or pure is NULL), also
/// key_ids[j] == query_ids[i]. The caller guarantees that every visible key lies in
/// [lo[i], hi[i]).
typedef struct mtp_attention_unit {
    long queries, keys, dim, heads;
    float scale;
    const float *q;
    long q_row, q_head;
    const float *k;
    long k_row;
    const float *v;
    long v_row;
    /// Written by the forward, read by the backward.
    float *o;
    long o_row, o_head;
    /// [heads][queries] with head stride lse_head: log Σ exp(scale·q·k) over the visible keys
    /// (−inf for a row with none). Written by the forward, read by the backward.
    float *lse;
    long lse_head;
    /// Backward only: ∂L/∂o in, ∂L/∂q, ∂L/∂k, ∂L/∂v out (every element written, nothing read).
    const float *dout;
    long dout_row, dout_head;
    float *dq;
    long dq_row, dq_head;
    float *dk;
    long dk_row;
    float *dv;
    long dv_row;
    const int32_t *lo;
    const int32_t *hi;
    const uint8_t *pure;
    const int64_t *query_ids;
    const int64_t *key_ids;
} mtp_attention_unit;

/// The floats of workspace one call needs for `keys` keys of dimension `dim` (every variant).
long mtp_attention_workspace(long keys, long dim);

/// o = softmax(scale·q·kᵀ, visible keys only)·v and lse, for every query head of the unit.
void mtp_attention_forward(const mtp_attention_unit *unit, float *workspace);

/// dq, dk, dv from dout, o, lse (FlashAttention-2 style recomputation of the probabilities).
void mtp_attention_backward(const mtp_attention_unit *unit, float *workspace);

/// The same with a chosen variant (MTP_ROWS_GENERIC, _AVX2, _AVX512 of row_kernels.h), which
/// must be supported (`mtp_rows_supported`).
void mtp_attention_forward_variant(int variant, const mtp_attention_unit *unit, float *workspace);
void mtp_attention_backward_variant(int variant, const mtp_attention_unit *unit, float *workspace);

/// The variant the two calls above run: the widest supported, unless MTP_ATTENTION_KERNEL
/// (generic, avx2, avx512) names a supported narrower one.
int mtp_attention_variant(void);

#ifdef __cplusplus
}
#endif

#endif
