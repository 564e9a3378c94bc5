// One instruction set's copy of the tiled attention kernel (see attention_kernels.c, which
// includes this file once per variant with AT_W float lanes a vector, AT_NVMAX vectors a
// micro-kernel pass, AT_FN(name) the variant's name for `name` and AT_FMA(a, b, c)).
//
// Legend: Sq queries, Sk keys, d head dimension, dp = d rounded up to AT_W, W = AT_W,
// a query block of br ≤ AT_BR rows, a key tile of w ≤ AT_BC keys starting at j0.
// Workspace (floats; every piece starts on a 16-float boundary):
//   kt  [d][Sk + W]    keys transposed (columns ≥ Sk zero): the B operand of S = Q·Kᵀ
//   vt  [d][Sk + W]    values transposed (backward): the B operand of dP = dO·Vᵀ
//   kv  [Sk][dp]       forward: values, backward: keys, columns ≥ d zero (B of P·V, dS·K)
//   dk, dv [Sk + MR][dp]  backward accumulators of the unit's key/value head
//   qp, gp, acc [br][dp]  the block's queries, output gradients, output (or dQ) accumulator
//   s, ds [br][AT_BC]  scores / probabilities, dP / dS of one tile
//   m, l, dd [br]      running max, running sum, D = rowsum(dO ⊙ O)

#define VF AT_FN(vf)
#define VI AT_FN(vi)
typedef float VF __attribute__((ext_vector_type(AT_W)));
typedef int VI __attribute__((ext_vector_type(AT_W)));

#define AT_INLINE __attribute__((always_inline)) static inline

AT_INLINE VF AT_FN(load)(const float *p) {
    VF v;
    __builtin_memcpy(&v, p, sizeof v);
    return v;
}

AT_INLINE void AT_FN(store)(float *p, VF v) { __builtin_memcpy(p, &v, sizeof v); }

AT_INLINE VF AT_FN(splat)(float x) { return (VF)(x); }

/// e^x for x ≤ ~0 (the shifted scores of a softmax): x = n·ln2 + r, |r| ≤ ln2/2, e^r by its
/// degree-7 Taylor polynomial, times 2^n. Below −87.3 (e^x < 2⁻¹²⁵, only ever a
/// probability next to a maximum of 1) the result is 0, as for −inf; NaN stays NaN.
AT_INLINE VF AT_FN(exp)(VF x) {
    const VF floor = AT_FN(splat)(-87.3f);
    const VI under = x < floor;
    const VF xc = (VF)(((VI)floor & under) | ((VI)x & ~under));
    const VF magic = AT_FN(splat)(12582912.0f);
    const VF t = xc * 1.44269504088896341f + magic;
    const VF n = t - magic;
    const VI ni = (VI)t - 0x4B400000;
    const VF r = xc - n * 0.693145751953125f - n * 1.428606765330187e-06f;
    VF p = AT_FN(splat)(1.0f / 5040);
    p = AT_FMA(p, r, AT_FN(splat)(1.0f / 720));
    p = AT_FMA(p, r, AT_FN(splat)(1.0f / 120));
    p = AT_FMA(p, r, AT_FN(splat)(1.0f / 24));
    p = AT_FMA(p, r, AT_FN(splat)(1.0f / 6));
    p = AT_FMA(p, r, AT_FN(splat)(0.5f));
    p = AT_FMA(p, r, AT_FN(splat)(1.0f));
    p = AT_FMA(p, r, AT_FN(splat)(1.0f));
    const VF y = p * (VF)((ni + 127) << 23);
    return (VF)((VI)y & ~under);
}

AT_INLINE float AT_FN(exp1)(float x) { return AT_FN(exp)(AT_FN(splat)(x))[0]; }

// MARK: - Micro-kernel

/// c[m][0 ..< NV·W] (+)= Σ_k a[m·ars + k·acs] · b[k·ldb + 0 ..< NV·W] for m < AT_MR: AT_MR·NV
/// accumulators, each the chain of fused multiply-adds over k in order.
AT_INLINE void AT_FN(block)(const int NV, long kn, const float *a, long ars, long acs, const float *b, long ldb, float *c,
                            long ldc, int accumulate) {
    VF acc[AT_MR][AT_NVMAX];
    for (int r = 0; r < AT_MR; r++)
        for (int v = 0; v < NV; v++) acc[r][v] = accumulate ? AT_FN(load)(c + r * ldc + v * AT_W) : AT_FN(splat)(0);
    for (long k = 0; k < kn; k++) {
        VF bv[AT_NVMAX];
        for (int v = 0; v < NV; v++) bv[v] = AT_FN(load)(b + k * ldb + v * AT_W);
        for (int r = 0; r < AT_MR; r++) {
            const VF ar = AT_FN(splat)(a[r * ars + k * acs]);
            for (int v = 0; v < NV; v++) acc[r][v] = AT_FMA(ar, bv[v], acc[r][v]);
        }
    }
    for (int r = 0; r < AT_MR; r++)
        for (int v = 0; v < NV; v++) AT_FN(store)(c + r * ldc + v * AT_W, acc[r][v]);
}

/// C[M][nv·W] (+)= A[M][K]·B[K][nv·W], M a multiple of AT_MR; A's element (m, k) at
/// a[m·ars + k·acs], B's row k at b + k·ldb, C's row m at c + m·ldc.
static void AT_FN(gemm)(long m, long nv, long kn, const float *a, long ars, long acs, const float *b, long ldb, float *c,
                        long ldc, int accumulate) {
    for (long v0 = 0; v0 < nv; v0 += AT_NVMAX) {
        const long n = nv - v0 < AT_NVMAX ? nv - v0 : AT_NVMAX;
        for (long m0 = 0; m0 < m; m0 += AT_MR) {
            const float *ab = a + m0 * ars;
            const float *bb = b + v0 * AT_W;
            float *cb = c + m0 * ldc + v0 * AT_W;
            switch (n) {
            case 1: AT_FN(block)(1, kn, ab, ars, acs, bb, ldb, cb, ldc, accumulate); break;
            case 2: AT_FN(block)(2, kn, ab, ars, acs, bb, ldb, cb, ldc, accumulate); break;
#if AT_NVMAX >= 4
            case 3: AT_FN(block)(3, kn, ab, ars, acs, bb, ldb, cb, ldc, accumulate); break;
            case 4: AT_FN(block)(4, kn, ab, ars, acs, bb, ldb, cb, ldc, accumulate); break;
#endif
            default: abort();
            }
        }
    }
}

// MARK: - Rows

/// Scores row ← scale·row where key j0 + j is visible (a ≤ j < e, and the ids match unless
/// the row is pure), −inf elsewhere, for j < cols (a multiple of W); returns the row's max
/// (NaN when a score is NaN).
static float AT_FN(maskRow)(float *row, long cols, long a, long e, float scale, int pure, const int64_t *keyIDs,
                            int64_t queryID) {
    const VF sc = AT_FN(splat)(scale), ninf = AT_FN(splat)(-INFINITY);
    VI lane;
    for (int i = 0; i < AT_W; i++) lane[i] = i;
    VF mx = ninf;
    VI nan = (VI)(0);
    for (long j = 0; j < cols; j += AT_W) {
        const VI idx = lane + (int)j;
        const VI in = (idx >= (int)a) & (idx < (int)e);
        const VF x = AT_FN(load)(row + j) * sc;
        const VF y = (VF)(((VI)x & in) | ((VI)ninf & ~in));
        AT_FN(store)(row + j, y);
        mx = __builtin_elementwise_max(mx, y);
        nan |= y != y;
    }
    if (!pure) {
        for (long j = a; j < e; j++) {
            if (keyIDs[j] != queryID) row[j] = -INFINITY;
        }
        mx = ninf;
        nan = (VI)(0);
        for (long j = 0; j < cols; j += AT_W) {
            const VF y = AT_FN(load)(row + j);
            mx = __builtin_elementwise_max(mx, y);
            nan |= y != y;
        }
    }
    // Whole-vector reductions: a lane loop with an early return spilled both vectors to the
    // stack once per lane (store-to-load stalls; half of the forward's time at S = 64). No
    // lane is NaN past the test, and the max of non-NaN values does not depend on the order.
    if (__builtin_reduce_or(nan)) return NAN;
    return __builtin_reduce_max(mx);
}

/// row[j] ← e^(row[j] − shift) for j < cols; returns the sum (lanes added in a fixed order).
static float AT_FN(expRow)(float *row, long cols, float shift) {
    const VF sh = AT_FN(splat)(shift);
    VF sum = AT_FN(splat)(0);
    for (long j = 0; j < cols; j += AT_W) {
        const VF p = AT_FN(exp)(AT_FN(load)(row + j) - sh);
        AT_FN(store)(row + j, p);
        sum += p;
    }
    float total = 0;
    for (int i = 0; i < AT_W; i++) total += sum[i];
    return total;
}

static void AT_FN(scaleRow)(float *row, long cols, float s) {
    const VF sv = AT_FN(splat)(s);
    for (long j = 0; j < cols; j += AT_W) AT_FN(store)(row + j, AT_FN(load)(row + j) * sv);
}

static void AT_FN(zeroRows)(float *x, long rows, long cols, long ld) {
    if (ld == cols) {
        memset(x, 0, (size_t)(rows * cols) * sizeof(float));
        return;
    }
    for (long r = 0; r < rows; r++) memset(x + r * ld, 0, (size_t)cols * sizeof(float));
}

/// dst[0 ..< n] = src[0 ..< n]: whole vectors, then 4 floats at a time, then single floats
/// (no read past n).
AT_INLINE void AT_FN(copy)(float *dst, const float *src, long n) {
    long c = 0;
    for (; c + AT_W <= n; c += AT_W) AT_FN(store)(dst + c, AT_FN(load)(src + c));
    for (; c + 4 <= n; c += 4) {
        float4 v;
        __builtin_memcpy(&v, src + c, sizeof v);
        __builtin_memcpy(dst + c, &v, sizeof v);
    }
#pragma clang loop vectorize(disable)
    for (; c < n; c++) dst[c] = src[c];
}

/// dst[r][c] = src[r·ld + c] for r < rows, c < d; columns d ..< dp zero.
static void AT_FN(packRows)(float *dst, long dp, const float *src, long ld, long rows, long d) {
    for (long r = 0; r < rows; r++) {
        float *row = dst + r * dp;
        for (long c = d / AT_W * AT_W; c < dp; c += AT_W) AT_FN(store)(row + c, AT_FN(splat)(0));
        AT_FN(copy)(row, src + r * ld, d);
    }
}

/// dst[r·ld + c] = src[r][c] for r < rows, c < d.
static void AT_FN(unpackRows)(float *dst, long ld, const float *src, long dp, long rows, long d) {
    for (long r = 0; r < rows; r++) AT_FN(copy)(dst + r * ld, src + r * dp, d);
}

/// dst[c][j] = src[j·ld + c] for j < rows, c < d; columns rows ..< width zero. In 4 × 4
/// blocks (four loads, eight shuffles, four stores), the edges one float at a time.
static void AT_FN(packTransposed)(float *dst, long width, const float *src, long ld, long rows, long d) {
    for (long c = 0; c < d; c++) memset(dst + c * width + rows, 0, (size_t)(width - rows) * sizeof(float));
    const long rows4 = rows / 4 * 4, d4 = d / 4 * 4;
    for (long j = 0; j < rows4; j += 4) {
        for (long c = 0; c < d4; c += 4) {
            float4 r0, r1, r2, r3;
            __builtin_memcpy(&r0, src + (j + 0) * ld + c, sizeof r0);
            __builtin_memcpy(&r1, src + (j + 1) * ld + c, sizeof r1);
            __builtin_memcpy(&r2, src + (j + 2) * ld + c, sizeof r2);
            __builtin_memcpy(&r3, src + (j + 3) * ld + c, sizeof r3);
            const float4 t0 = __builtin_shufflevector(r0, r1, 0, 4, 1, 5), t1 = __builtin_shufflevector(r0, r1, 2, 6, 3, 7);
            const float4 t2 = __builtin_shufflevector(r2, r3, 0, 4, 1, 5), t3 = __builtin_shufflevector(r2, r3, 2, 6, 3, 7);
            const float4 c0 = __builtin_shufflevector(t0, t2, 0, 1, 4, 5), c1 = __builtin_shufflevector(t0, t2, 2, 3, 6, 7);
            const float4 c2 = __builtin_shufflevector(t1, t3, 0, 1, 4, 5), c3 = __builtin_shufflevector(t1, t3, 2, 3, 6, 7);
            __builtin_memcpy(dst + (c + 0) * width + j, &c0, sizeof c0);
            __builtin_memcpy(dst + (c + 1) * width + j, &c1, sizeof c1);
            __builtin_memcpy(dst + (c + 2) * width + j, &c2, sizeof c2);
            __builtin_memcpy(dst + (c + 3) * width + j, &c3, sizeof c3);
        }
#pragma clang loop vectorize(disable)
        for (long c = d4; c < d; c++)
            for (long i = j; i < j + 4; i++) dst[c * width + i] = src[i * ld + c];
    }
    for (long j = rows4; j < rows; j++) {
#pragma clang loop vectorize(disable)
        for (long c = 0; c < d; c++) dst[c * width + j] = src[j * ld + c];
    }
}

/// The keys any of rows i0 ..< i0 + rows may see: [*from, *to) (empty when from ≥ to).
static void AT_FN(blockKeys)(const mtp_attention_unit *u, long i0, long rows, long *from, long *to) {
    long lo = u->keys, hi = 0;
    for (long r = 0; r < rows; r++) {
        const long a = u->lo[i0 + r], e = u->hi[i0 + r];
        if (a >= e) continue;
        lo = a < lo ? a : lo;
        hi = e > hi ? e : hi;
    }
    *from = lo;
    *to = hi;
}

/// The probabilities of a tile's row from its raw scores: e^(scale·s − lse) on the visible
/// keys, 0 elsewhere (and on a row that sees nothing).
static void AT_FN(probabilityRow)(const mtp_attention_unit *u, float *row, long cols, long i, long j0, long w, float lse) {
    const long a0 = u->lo[i] - j0, e0 = u->hi[i] - j0;
    const long a = a0 > 0 ? a0 : 0, e = e0 < w ? e0 : w;
    if (e <= a || lse == -INFINITY) {
        memset(row, 0, (size_t)cols * sizeof(float));
        return;
    }
    const int pure = u->pure == NULL || u->pure[i];
    AT_FN(maskRow)(row, cols, a, e, u->scale, pure, pure ? NULL : u->key_ids + j0, pure ? 0 : u->query_ids[i]);
    AT_FN(expRow)(row, cols, lse);
}

// MARK: - Layout of the workspace

typedef struct {
    float *kt, *vt, *kv, *dk, *dv, *qp, *gp, *acc, *s, *ds, *m, *l, *dd;
} AT_FN(Parts);

static long AT_FN(parts)(float *base, long keys, long dim, AT_FN(Parts) *p) {
    const long dp = (dim + AT_W - 1) / AT_W * AT_W, width = keys + AT_W;
    const long sizes[13] = {dim * width, dim * width, keys * dp, (keys + AT_MR) * dp, (keys + AT_MR) * dp,
                            AT_BR * dp, AT_BR * dp, AT_BR * dp, AT_BR * AT_BC, AT_BR * AT_BC, AT_BR, AT_BR, AT_BR};
    float **slots[13] = {&p->kt, &p->vt, &p->kv, &p->dk, &p->dv, &p->qp, &p->gp, &p->acc, &p->s, &p->ds, &p->m, &p->l, &p->dd};
    long offset = 0;
    for (int i = 0; i < 13; i++) {
        if (base) *slots[i] = base + offset;
        offset += (sizes[i] + 15) / 16 * 16;
    }
    return offset;
}

// MARK: - Forward

static void AT_FN(forward)(const mtp_attention_unit *u, float *ws) {
    const long sq = u->queries, sk = u->keys, d = u->dim;
    const long dp = (d + AT_W - 1) / AT_W * AT_W, width = sk + AT_W, nvd = dp / AT_W;
    const long br = AT_blockRows(sq);
    AT_FN(Parts) p;
    AT_FN(parts)(ws, sk, d, &p);
    AT_FN(packTransposed)(p.kt, width, u->k, u->k_row, sk, d);
    AT_FN(packRows)(p.kv, dp, u->v, u->v_row, sk, d);
    for (long t = 0; t < u->heads; t++) {
        const float *q = u->q + t * u->q_head;
        float *o = u->o + t * u->o_head, *lse = u->lse + t * u->lse_head;
        for (long i0 = 0; i0 < sq; i0 += br) {
            const long rows = sq - i0 < br ? sq - i0 : br, rowsPadded = (rows + AT_MR - 1) / AT_MR * AT_MR;
            AT_FN(packRows)(p.qp, dp, q + i0 * u->q_row, u->q_row, rows, d);
            AT_FN(zeroRows)(p.qp + rows * dp, rowsPadded - rows, dp, dp);
            AT_FN(zeroRows)(p.acc, rowsPadded, dp, dp);
            for (long r = 0; r < rowsPadded; r++) {
                p.m[r] = -INFINITY;
                p.l[r] = 0;
            }
            long from, to;
            AT_FN(blockKeys)(u, i0, rows, &from, &to);
            for (long j0 = from; j0 < to; j0 += AT_BC) {
                const long w = to - j0 < AT_BC ? to - j0 : AT_BC, cols = (w + AT_W - 1) / AT_W * AT_W;
                AT_FN(gemm)(rowsPadded, cols / AT_W, d, p.qp, dp, 1, p.kt + j0, width, p.s, AT_BC, 0);
                for (long r = 0; r < rowsPadded; r++) {
                    float *row = p.s + r * AT_BC;
                    const long i = i0 + r;
                    const long a0 = r < rows ? u->lo[i] - j0 : 0, e0 = r < rows ? u->hi[i] - j0 : 0;
                    const long a = a0 > 0 ? a0 : 0, e = e0 < w ? e0 : w;
                    const int pure = r >= rows || u->pure == NULL || u->pure[i];
                    const float mx = e > a ? AT_FN(maskRow)(row, cols, a, e, u->scale, pure, pure ? NULL : u->key_ids + j0,
                                                            pure ? 0 : u->query_ids[i])
                                           : -INFINITY;
                    if (mx == -INFINITY) {
                        memset(row, 0, (size_t)cols * sizeof(float));
                        continue;
                    }
                    const float m = mx > p.m[r] || mx != mx ? mx : p.m[r];
                    const float alpha = AT_FN(exp1)(p.m[r] - m);
                    const float sum = AT_FN(expRow)(row, cols, m);
                    p.l[r] = p.l[r] * alpha + sum;
                    p.m[r] = m;
                    if (alpha != 1) AT_FN(scaleRow)(p.acc + r * dp, dp, alpha);
                }
                AT_FN(gemm)(rowsPadded, nvd, w, p.s, AT_BC, 1, p.kv + j0 * dp, dp, p.acc, dp, 1);
            }
            for (long r = 0; r < rows; r++) {
                const float inv = p.l[r] == 0 ? 0 : 1 / p.l[r];
                AT_FN(scaleRow)(p.acc + r * dp, dp, inv);
                AT_FN(copy)(o + (i0 + r) * u->o_row, p.acc + r * dp, d);
                lse[i0 + r] = p.l[r] == 0 ? -INFINITY : p.m[r] + logf(p.l[r]);
            }
        }
    }
}

// MARK: - Backward

static void AT_FN(backward)(const mtp_attention_unit *u, float *ws) {
    const long sq = u->queries, sk = u->keys, d = u->dim;
    const long dp = (d + AT_W - 1) / AT_W * AT_W, width = sk + AT_W, nvd = dp / AT_W;
    const long br = AT_blockRows(sq);
    AT_FN(Parts) p;
    AT_FN(parts)(ws, sk, d, &p);
    AT_FN(packTransposed)(p.kt, width, u->k, u->k_row, sk, d);
    AT_FN(packTransposed)(p.vt, width, u->v, u->v_row, sk, d);
    AT_FN(packRows)(p.kv, dp, u->k, u->k_row, sk, d);
    AT_FN(zeroRows)(p.dk, sk + AT_MR, dp, dp);
    AT_FN(zeroRows)(p.dv, sk + AT_MR, dp, dp);
    for (long t = 0; t < u->heads; t++) {
        const float *q = u->q + t * u->q_head, *o = u->o + t * u->o_head, *g = u->dout + t * u->dout_head;
        const float *lse = u->lse + t * u->lse_head;
        float *dq = u->dq + t * u->dq_head;
        for (long i0 = 0; i0 < sq; i0 += br) {
            const long rows = sq - i0 < br ? sq - i0 : br, rowsPadded = (rows + AT_MR - 1) / AT_MR * AT_MR;
            AT_FN(packRows)(p.qp, dp, q + i0 * u->q_row, u->q_row, rows, d);
            AT_FN(packRows)(p.gp, dp, g + i0 * u->dout_row, u->dout_row, rows, d);
            AT_FN(zeroRows)(p.qp + rows * dp, rowsPadded - rows, dp, dp);
            AT_FN(zeroRows)(p.gp + rows * dp, rowsPadded - rows, dp, dp);
            // D = rowsum(dO ⊙ O), O read through the packed block's zero-padded columns.
            AT_FN(packRows)(p.acc, dp, o + i0 * u->o_row, u->o_row, rows, d);
            for (long r = 0; r < rowsPadded; r++) {
                VF sum = AT_FN(splat)(0);
                if (r < rows)
                    for (long c = 0; c < dp; c += AT_W) sum += AT_FN(load)(p.gp + r * dp + c) * AT_FN(load)(p.acc + r * dp + c);
                float D = 0;
                for (int l = 0; l < AT_W; l++) D += sum[l];
                p.dd[r] = D;
            }
            AT_FN(zeroRows)(p.acc, rowsPadded, dp, dp);
            long from, to;
            AT_FN(blockKeys)(u, i0, rows, &from, &to);
            for (long j0 = from; j0 < to; j0 += AT_BC) {
                const long w = to - j0 < AT_BC ? to - j0 : AT_BC, cols = (w + AT_W - 1) / AT_W * AT_W;
                const long keysPadded = (w + AT_MR - 1) / AT_MR * AT_MR;
                // P from the saved log-sum-exp.
                AT_FN(gemm)(rowsPadded, cols / AT_W, d, p.qp, dp, 1, p.kt + j0, width, p.s, AT_BC, 0);
                for (long r = 0; r < rowsPadded; r++) {
                    float *row = p.s + r * AT_BC;
                    if (r < rows) AT_FN(probabilityRow)(u, row, cols, i0 + r, j0, w, lse[i0 + r]);
                    else memset(row, 0, (size_t)cols * sizeof(float));
                }
                // dP = dO·Vᵀ, then dS = scale · P ⊙ (dP − D) in place.
                AT_FN(gemm)(rowsPadded, cols / AT_W, d, p.gp, dp, 1, p.vt + j0, width, p.ds, AT_BC, 0);
                for (long r = 0; r < rowsPadded; r++) {
                    float *dsr = p.ds + r * AT_BC;
                    const float *pr = p.s + r * AT_BC;
                    const VF D = AT_FN(splat)(p.dd[r]), sc = AT_FN(splat)(u->scale);
                    for (long j = 0; j < cols; j += AT_W)
                        AT_FN(store)(dsr + j, sc * (AT_FN(load)(pr + j) * (AT_FN(load)(dsr + j) - D)));
                }
                // dV += Pᵀ·dO, dK += dSᵀ·Q, dQ += dS·K.
                AT_FN(gemm)(keysPadded, nvd, rows, p.s, 1, AT_BC, p.gp, dp, p.dv + j0 * dp, dp, 1);
                AT_FN(gemm)(keysPadded, nvd, rows, p.ds, 1, AT_BC, p.qp, dp, p.dk + j0 * dp, dp, 1);
                AT_FN(gemm)(rowsPadded, nvd, w, p.ds, AT_BC, 1, p.kv + j0 * dp, dp, p.acc, dp, 1);
            }
            AT_FN(unpackRows)(dq + i0 * u->dq_row, u->dq_row, p.acc, dp, rows, d);
        }
    }
    AT_FN(unpackRows)(u->dk, u->dk_row, p.dk, dp, sk, d);
    AT_FN(unpackRows)(u->dv, u->dv_row, p.dv, dp, sk, d);
}

#undef VF
#undef VI
#undef AT_INLINE
