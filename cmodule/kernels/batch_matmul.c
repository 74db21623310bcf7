// Batched matrix product (int8), TFLite Micro's BATCH_MATMUL:
//   out[b][m][n] = clamp(requantize(sum_k (lhs[b][m][k] + lhs_off) * (rhs[b][k][n] + rhs_off)) + out_off)
// with one (per-tensor) multiplier and shift, batch dimensions broadcast.
//
// Per batch the right operand is widened once into scratch as int16 rows
// [N][K2] with its offset added (K2 = K rounded up to even, the pad value 0),
// and each left row the same way into one of two more rows (the Cortex-M4/M7
// path takes left rows in pairs): every output is then the
// dot product of two contiguous int16 rows, whatever adj_x and adj_y say and
// whatever the zero points (both operands are activations, so neither offset
// can be folded into a bias as FULLY_CONNECTED does). Widening costs K * N
// per batch and K per row against M * K * N multiply-accumulates.
#include "mnn_kernels.h"
#include "mnn_fixedpoint.h"
#include "mnn_simd.h"

// Sums wrap (two's complement) instead of overflowing; see conv.c.
static uint32_t dot16(const int16_t *x, const int16_t *w, uint32_t k2) {
    uint32_t acc0 = 0, acc1 = 0;
    for (uint32_t i = 0; i < k2; i += 2) {
        acc0 += (uint32_t)(x[i] * w[i]);
        acc1 += (uint32_t)(x[i + 1] * w[i + 1]);
    }
    return acc0 + acc1;
}

#if MNN_DSP
// Four columns w, w + k2, w + 2 k2, w + 3 k2 against one row: each word of
// the row (two int16 values) is loaded once for four SMLADs, eight MACs.
static void dot4_dsp(const int16_t *x, const int16_t *w, uint32_t k2, uint32_t r[4]) {
    const int16_t *end = x + k2;
    const uint32_t n2 = 2 * k2, n3 = 3 * k2;
    int32_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (; x < end; x += 2, w += 2) {
        const uint32_t xv = mnn_rd32(x);
        s0 = mnn_smlad(xv, mnn_rd32(w), s0);
        s1 = mnn_smlad(xv, mnn_rd32(w + k2), s1);
        s2 = mnn_smlad(xv, mnn_rd32(w + n2), s2);
        s3 = mnn_smlad(xv, mnn_rd32(w + n3), s3);
    }
    r[0] = (uint32_t)s0;
    r[1] = (uint32_t)s1;
    r[2] = (uint32_t)s2;
    r[3] = (uint32_t)s3;
}

// Two rows x and x + k2 against three columns w, w + k2, w + 2 k2: each step
// loads two row words and three column words for six SMLADs (12 MACs). The
// thirteen values live in the loop fit the core's registers; a fourth column
// would not, and spilling costs more than it saves.
static void dot2x3_dsp(const int16_t *x, const int16_t *w, uint32_t k2, uint32_t r[6]) {
    const int16_t *end = x + k2;
    int32_t a0 = 0, a1 = 0, a2 = 0, b0 = 0, b1 = 0, b2 = 0;
    for (; x < end; x += 2, w += 2) {
        const uint32_t x0 = mnn_rd32(x), x1 = mnn_rd32(x + k2);
        uint32_t wv = mnn_rd32(w);
        a0 = mnn_smlad(x0, wv, a0);
        b0 = mnn_smlad(x1, wv, b0);
        wv = mnn_rd32(w + k2);
        a1 = mnn_smlad(x0, wv, a1);
        b1 = mnn_smlad(x1, wv, b1);
        wv = mnn_rd32(w + 2 * k2);
        a2 = mnn_smlad(x0, wv, a2);
        b2 = mnn_smlad(x1, wv, b2);
    }
    r[0] = (uint32_t)a0;
    r[1] = (uint32_t)a1;
    r[2] = (uint32_t)a2;
    r[3] = (uint32_t)b0;
    r[4] = (uint32_t)b1;
    r[5] = (uint32_t)b2;
}

static uint32_t dot1_dsp(const int16_t *x, const int16_t *w, uint32_t k2) {
    int32_t s = 0;
    for (uint32_t i = 0; i < k2; i += 2) {
        s = mnn_smlad(mnn_rd32(x + i), mnn_rd32(w + i), s);
    }
    return (uint32_t)s;
}
#endif

// Values of an int8 matrix stored [a][b] (element (i, k) at i * b + k) or,
// transposed, [b][a] (at k * a + i): row i of length len into dst as int16
// plus off, padded to even length with 0.
static void widen_row(int16_t *dst, const int8_t *src, uint32_t i, uint32_t len, uint32_t other, uint32_t transposed,
    int32_t off) {
    if (transposed) {
        const int8_t *s = src + i;
        for (uint32_t k = 0; k < len; k++, s += other) {
            dst[k] = (int16_t)(*s + off);
        }
    } else {
        const int8_t *s = src + i * len;
        for (uint32_t k = 0; k < len; k++) {
            dst[k] = (int16_t)(s[k] + off);
        }
    }
    if (len & 1) {
        dst[len] = 0;
    }
}

static inline int8_t requant(const mnn_batch_matmul_args_t *a, const mnn_rq_t *q, uint32_t sum) {
    return mnn_clamp8(mnn_wadd(mnn_rq_apply(q, (int32_t)sum), a->output_offset), a->act_min, a->act_max);
}

void mnn_batch_matmul_s8(const mnn_batch_matmul_args_t *a) {
    const uint32_t m_n = a->rows, k_n = a->depth, n_n = a->cols, k2 = k_n + (k_n & 1);
    const uint32_t lb0 = a->lhs_batch[0], lb1 = a->lhs_batch[1], rb0 = a->rhs_batch[0], rb1 = a->rhs_batch[1];
    const uint32_t ob0 = lb0 > rb0 ? lb0 : rb0, ob1 = lb1 > rb1 ? lb1 : rb1;
    const uint32_t lhs_size = m_n * k_n, rhs_size = k_n * n_n;    // each within its tensor (the loader)
    int16_t *cols = a->scratch;             // [N][K2]: rhs transposed, plus its offset
    int16_t *row = a->scratch + n_n * k2;   // [2][K2]: lhs rows, plus its offset (DSP: two at once)
    const mnn_rq_t q = mnn_rq_prepare(a->output_mult, a->output_shift);
    int8_t *y = a->output;
    uint32_t widened = UINT32_MAX;          // the rhs batch now in cols (none yet; ri < UINT32_MAX)
    #if MNN_DSP
    MNN_COUNT_VARIANT(MATMUL_DSP);
    #else
    // Cortex-M3 and hosts: no SMLAD; the int16 rows still keep the loop to two
    // loads and a multiply-accumulate per MAC.
    MNN_COUNT_VARIANT(MATMUL_PLAIN);
    #endif
    for (uint32_t b0 = 0; b0 < ob0; b0++) {
        for (uint32_t b1 = 0; b1 < ob1; b1++) {
            // A batch dimension of 1 broadcasts (the loader checked the others are equal).
            const uint32_t li = (lb0 == 1 ? 0 : b0) * lb1 + (lb1 == 1 ? 0 : b1);
            const uint32_t ri = (rb0 == 1 ? 0 : b0) * rb1 + (rb1 == 1 ? 0 : b1);
            const int8_t *x = a->lhs + li * lhs_size;
            const int8_t *w = a->rhs + ri * rhs_size;
            if (ri != widened) {
                // Column n of rhs: stored [K][N] (element (k, n) at k * N + n), or [N][K] with adj_y.
                // A broadcast rhs (the same ri for consecutive batches) is widened once.
                mnn_work(rhs_size);
                for (uint32_t n = 0; n < n_n; n++) {
                    widen_row(cols + n * k2, w, n, k_n, n_n, !a->adj_y, a->rhs_offset);
                }
                widened = ri;
            }
            uint32_t m = 0;
            #if MNN_DSP
            // Rows in pairs: each column word loaded serves two rows.
            for (; m + 2 <= m_n; m += 2, y += 2 * n_n) {
                mnn_work(mnn_sat_mul(2, rhs_size));
                widen_row(row, x, m, k_n, m_n, a->adj_x, a->lhs_offset);
                widen_row(row + k2, x, m + 1, k_n, m_n, a->adj_x, a->lhs_offset);
                uint32_t n = 0;
                for (; n + 3 <= n_n; n += 3) {
                    uint32_t s[6];
                    dot2x3_dsp(row, cols + n * k2, k2, s);
                    for (uint32_t j = 0; j < 3; j++) {
                        y[n + j] = requant(a, &q, s[j]);
                        y[n_n + n + j] = requant(a, &q, s[3 + j]);
                    }
                }
                for (; n < n_n; n++) {
                    y[n] = requant(a, &q, dot1_dsp(row, cols + n * k2, k2));
                    y[n_n + n] = requant(a, &q, dot1_dsp(row + k2, cols + n * k2, k2));
                }
            }
            #endif
            for (; m < m_n; m++, y += n_n) {
                mnn_work(rhs_size);
                // Row m of lhs: stored [M][K], or [K][M] with adj_x.
                widen_row(row, x, m, k_n, m_n, a->adj_x, a->lhs_offset);
                uint32_t n = 0;
                #if MNN_DSP
                for (; n + 4 <= n_n; n += 4) {
                    uint32_t s[4];
                    dot4_dsp(row, cols + n * k2, k2, s);
                    for (uint32_t j = 0; j < 4; j++) {
                        y[n + j] = requant(a, &q, s[j]);
                    }
                }
                for (; n < n_n; n++) {
                    y[n] = requant(a, &q, dot1_dsp(row, cols + n * k2, k2));
                }
                #endif
                for (; n < n_n; n++) {
                    y[n] = requant(a, &q, dot16(row, cols + n * k2, k2));
                }
            }
        }
    }
}
