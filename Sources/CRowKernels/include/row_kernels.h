// The decoding projection kernel of NN's `Linear.Frozen` for a few rows (private; see README.md).
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

/// y[r][j] = Σ_k x[r][k]·w[k][j] (accumulate: y[r][j] += that sum), for r < rows ≤ 8, j < out.
/// Each sum is a chain of fused multiply-adds over k = 0, 1, …, in − 1 from +0, then one
/// addition to y when accumulating: the bits of row r depend on x's row r and w alone.
/// x: rows × in, row-major; w: in × out, row-major; y: rows × out, row-major.
void mtp_rows_matmul(const float *x, long rows, long in, const float *w, long out, float *y, int accumulate);

/// The same with a chosen variant (which must be supported: see `mtp_rows_supported`).
void mtp_rows_matmul_variant(int variant, const float *x, long rows, long in, const float *w, long out, float *y,
                             int accumulate);

/// Whether this CPU runs `variant`.
int mtp_rows_supported(int variant);

/// The variant `mtp_rows_matmul` runs: the widest supported, unless the environment variable
/// MTP_ROW_KERNEL (generic, avx2, avx512) names a supported narrower one.
int mtp_rows_variant(void);

#ifdef __cplusplus
}
#endif

#endif
