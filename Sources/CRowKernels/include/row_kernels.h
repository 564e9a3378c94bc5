// The decoding row kernels of NN's frozen layers (the projection of `Linear.Frozen` for a few
// rows, one query row's attention, SwiGLU, the rotation, RMSNorm, KV-cache appends) and the
// elementwise kernels of NN's training step (private; see README.md).
#ifndef MTP_ROW_KERNELS_H
#define MTP_ROW_KERNELS_H

#ifdef __cplusplus
extern "C" {
#endif

/// The most rows one call takes.
#define MTP_ROWS_MAX 8

/// Instruction-set variants of the kernel (all give the same bits, see README.md).
enum {
    MTP_ROWS_GENERIC = 0,
    MTP_ROWS_AVX2 = 1,
    MTP_ROWS_AVX512 = 2,
};

/// The floats of `w` ([in, out]) in the kernel's panel layout: ⌈out/16⌉ · 16 · in.
long mtp_rows_packed_count(long in, long out);

/// Packs `w` (in × out, row-major) into `panels` (`mtp_rows_packed_count` floats): panel p holds
/// columns 16p ..< 16p + 16 of every row k, one 16-float line per k, columns past `out` zero.
void mtp_rows_pack(const float *w, long in, long out, float *panels);

/// y[r][j] = Σ_k x[r][k]·w[k][j] (accumulate: y[r][j] += that sum), for r < rows ≤ 8, j < out.
/// Each sum is a chain of fused multiply-adds over k = 0, 1, …, in − 1 from +0, then one
/// addition to y when accumulating: the bits of row r depend on x's row r and w alone.
/// x: rows × in, row-major; w: packed by `mtp_rows_pack`; y: rows × out, row-major.
void mtp_rows_matmul(const float *x, long rows, long in, const float *w, long out, float *y, int accumulate);

/// The same with a chosen variant (which must be supported: see `mtp_rows_supported`).
void mtp_rows_matmul_variant(int variant, const float *x, long rows, long in, const float *w, long out, float *y,
                             int accumulate);

/// Whether this CPU runs `variant`.
int mtp_rows_supported(int variant);

/// The variant `mtp_rows_matmul` runs: the widest supported, unless the environment variable
/// MTP_ROW_KERNEL (generic, avx2, avx512) names a supported narrower one.
int mtp_rows_variant(void);

/// The widest supported variant, or a narrower supported one named (generic, avx2,
/// avx512) by the environment variable `variable` (how MTP_ROW_KERNEL and
/// MTP_ATTENTION_KERNEL are read).
int mtp_kernel_variant_from_environment(const char *variable);

/// The most query heads `mtp_attend_row` takes.
#define MTP_ATTEND_HEADS_MAX 256

/// Attention of one query row against a cache, all heads (see attention_row.c for the exact
/// order of operations, which every variant follows, so their bits agree):
/// for head h (key/value head h / (heads / kvHeads)), s_j = scale · q_h·K[:, j] for j < visible,
/// out_h = softmax(s) · V. The row's bits depend on the row and the cache alone.
/// query: heads × d; keysT: kvHeads × d × capacity (component c of position j at
/// [kv][c][j], capacity a multiple of 8; positions past `visible` may be read, never
/// used); values: capacity × (kvHeads · d), token-major; scores: at least
/// `mtp_attend_scores_capacity(visible)` floats of scratch; out: heads × d.
void mtp_attend_row(const float *query, long heads, long kvHeads, long d, const float *keysT, long capacity,
                    const float *values, long visible, float scale, float *scores, float *out);

/// The same with a chosen variant (which must be supported).
void mtp_attend_row_variant(int variant, const float *query, long heads, long kvHeads, long d, const float *keysT,
                            long capacity, const float *values, long visible, float scale, float *scores, float *out);

/// The scratch floats `mtp_attend_row` needs for `heads` heads and `visible` positions.
long mtp_attend_scores_capacity(long heads, long visible);

/// out[i] = gate[i] · σ(gate[i]) · up[i] for i < n, σ(a) = 1 / (1 + e^(−a)) with vector_exp.h's
/// exp (bit for bit the training forward `mtp_swiglu_forward`; every variant gives the same bits).
/// `out` may be `gate`.
void mtp_swiglu(const float *gate, const float *up, float *out, long n);

/// The same with a chosen variant (which must be supported).
void mtp_swiglu_variant(int variant, const float *gate, const float *up, float *out, long n);

/// The SwiGLU forward of training, `rows` rows of n: row r's gate and up start at gate + r·stride
/// and up + r·stride (stride ≥ n when rows > 1), its outputs at out + r·n and sigma + r·n.
/// out = gate · σ(gate) · up, the operations (and bits) of `mtp_swiglu`; σ is kept in `sigma`.
void mtp_swiglu_forward(const float *gate, const float *up, long rows, long n, long stride, float *out, float *sigma);

/// The same with a chosen variant (which must be supported).
void mtp_swiglu_forward_variant(int variant, const float *gate, const float *up, long rows, long n, long stride,
                                float *out, float *sigma);

/// The SwiGLU backward of training, laid out as `mtp_swiglu_forward` (grad and sigma at r·n, the
/// rest at r·stride): with g = grad, a = gate, u = up, σ = sigma,
/// upGrad = (g·a)·σ and gateGrad = ((g·u)·σ)·(1 + a·(1 − σ)), in that order on every variant.
void mtp_swiglu_backward(const float *grad, const float *gate, const float *up, const float *sigma, long rows, long n,
                         long stride, float *gateGrad, float *upGrad);

/// The same with a chosen variant (which must be supported).
void mtp_swiglu_backward_variant(int variant, const float *grad, const float *gate, const float *up, const float *sigma,
                                 long rows, long n, long stride, float *gateGrad, float *upGrad);

/// Rotates, in place, `rows` token rows of `heads` heads of d floats (d even): in every head,
/// (x[i], x[i + d/2]) → (x[i]·cos[i] − x[i + d/2]·sin[i], x[i + d/2]·cos[i] + x[i]·sin[i]) for
/// i < d/2, with row r's angles at cos + r·d/2 and sin + r·d/2; bit for bit the training
/// forward's `mtp_rotate_heads`.
void mtp_rotate_rows(float *x, long rows, long heads, long d, const float *cos, const float *sin);

/// The same with a chosen variant (which must be supported).
void mtp_rotate_rows_variant(int variant, float *x, long rows, long heads, long d, const float *cos, const float *sin);

/// The rotation of training, from x into y (y may be x): row r's head h (d floats, d even) at
/// r·rowStride + h·headStride, for h < heads and r < rows, turned as `mtp_rotate_rows` turns it
/// with row r's angles at cos + r·d/2 and sin + r·d/2 — or by minus the angles when `inverse`
/// (the backward): (x₁·cos + x₂·sin, x₂·cos − x₁·sin), bit for bit the forward with sin negated.
/// Then, when y is not x, the `copy` floats after the last head of every row are copied (the
/// values of a packed q/k/v row). headStride ≥ d; the rows must not overlap.
void mtp_rotate_heads(const float *x, float *y, long rows, long rowStride, long heads, long headStride, long d,
                      const float *cos, const float *sin, int inverse, long copy);

/// The same with a chosen variant (which must be supported).
void mtp_rotate_heads_variant(int variant, const float *x, float *y, long rows, long rowStride, long heads,
                              long headStride, long d, const float *cos, const float *sin, int inverse, long copy);

/// Appends `count` positions to a KV cache holding `length`: keysT is [width, capacity]
/// (the [heads, d, capacity] layout, row i = component i of every position), values is
/// [capacity, width] token-major; keys and newValues are `count` token-major rows of `width`.
/// Precondition: length + count ≤ capacity.
void mtp_kv_append(float *keysT, float *values, long capacity, long width, long length, const float *keys,
                   const float *newValues, long count);

/// RMSNorm of `rows` rows of d floats (x contiguous, row r of y at y + r·stride): bit for bit
/// the training forward `mtp_rmsnorm_forward`, y = x · (1/√(x·x/d + ε)) · w (see rmsnorm_rows.c
/// for the order of the sum).
void mtp_rmsnorm_rows(const float *x, long rows, long d, const float *w, float epsilon, float *y, long stride);

/// The same with a chosen variant (which must be supported).
void mtp_rmsnorm_rows_variant(int variant, const float *x, long rows, long d, const float *w, float epsilon, float *y,
                              long stride);

/// The RMSNorm forward of training: `mtp_rmsnorm_rows` (the same loop, the same bits) with y
/// contiguous, keeping each row's r = 1/√(x·x/d + ε) in rstd[row].
void mtp_rmsnorm_forward(const float *x, long rows, long d, const float *w, float epsilon, float *y, float *rstd);

/// The same with a chosen variant (which must be supported).
void mtp_rmsnorm_forward_variant(int variant, const float *x, long rows, long d, const float *w, float epsilon, float *y,
                                 float *rstd);

/// The RMSNorm backward of training for `rows` contiguous rows of d (rstd from the forward):
/// dx = r · (a − x · ((r·r)·(a·x))/d) with a = grad·w (the sum in `mtp_rmsnorm_rows`' order),
/// and dw[j] += (grad[j]·x[j])·r row after row (the caller zeroes dw first). `dx` must not
/// overlap the inputs. Every variant gives the same bits.
void mtp_rmsnorm_backward(const float *x, const float *grad, const float *w, const float *rstd, long rows, long d,
                          float *dx, float *dw);

/// The same with a chosen variant (which must be supported).
void mtp_rmsnorm_backward_variant(int variant, const float *x, const float *grad, const float *w, const float *rstd,
                                  long rows, long d, float *dx, float *dw);

/// One AdamW update of n parameters (see adamw_rows.c for the order of operations, which every
/// variant follows, so their bits agree): with g = grad·gradScale (0·gradScale when grad is
/// NULL), m ← β₁m + (1−β₁)g, v ← β₂v + (1−β₂)g², out = θ − lr·((m/c1)/(√(v/c2) + ε) + decay·θ).
/// m and v are updated in place; out may be theta.
void mtp_adamw_update(const float *theta, const float *grad, float gradScale, float *m, float *v, float *out, long n,
                      float beta1, float beta2, float c1, float c2, float lr, float epsilon, float decay);

/// The same with a chosen variant (which must be supported).
void mtp_adamw_update_variant(int variant, const float *theta, const float *grad, float gradScale, float *m, float *v,
                              float *out, long n, float beta1, float beta2, float c1, float c2, float lr, float epsilon,
                              float decay);

#ifdef __cplusplus
}
#endif

#endif
