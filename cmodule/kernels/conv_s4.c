// 2-D convolution with int4 weights (CONV_2D_S4): the int8 convolution's
// arithmetic (any kernel size, stride, dilation, padding and group count;
// per-channel requantization), the weights [out_c, k_h, k_w, in_c / groups]
// read as packed nibbles in place from the blob.
//
// Output channels go in blocks of MNN_RQ_BLOCK (the requantization constants
// prepared once per block). mnn_conv_s4 picks the variant:
// - a column, when the blob reserved the scratch for it (the packer does):
//   each output pixel's receptive field copied once per block into an int16
//   column with the input offset added (taps in the padding become 0), in
//   groups of eight values ordered as the pairs (0, 4), (2, 6), (1, 5),
//   (3, 7); then every channel's row of nibbles meets the column. With the
//   DSP extension that order is what a word of eight weights gives after
//   two masks and four SXTB16 (each value times 16, see fully_connected_s4.c),
//   so SMLAD takes the column's words as they are, two channels per pass;
//   without it the same groups in plain C. The weights are unpacked on the
//   fly rather than into scratch: a channel's row meets each column once, so
//   a copy would add a store and a load per weight to the same extraction.
// - direct loops over the taps otherwise (no scratch).
#include "mnn_kernels.h"
#include "mnn_fixedpoint.h"
#include "mnn_simd.h"

// The sum of output channel oc at the pixel whose window starts at (iy0, ix0)
// of image xb, over the taps inside the input (no bias).
static uint32_t sum_s4(const mnn_conv_args_t *a, const int8_t *xb, int32_t iy0, int32_t ix0, uint32_t oc) {
    const mnn_geom_t *g = &a->g;
    const uint8_t *w = (const uint8_t *)a->weights;
    const uint32_t fc = g->in_c / a->groups;
    const int8_t *xg = xb + (oc / (g->out_c / a->groups)) * fc;
    const uint32_t w0 = oc * g->k_h * g->k_w * fc;
    uint32_t acc = 0;
    for (uint32_t ky = 0; ky < g->k_h; ky++) {
        const int32_t iy = iy0 + (int32_t)(ky * g->dil_h);
        if (iy < 0 || iy >= (int32_t)g->in_h) {
            continue;
        }
        for (uint32_t kx = 0; kx < g->k_w; kx++) {
            const int32_t ix = ix0 + (int32_t)(kx * g->dil_w);
            if (ix < 0 || ix >= (int32_t)g->in_w) {
                continue;
            }
            acc += mnn_dot_s4(xg + ((uint32_t)iy * g->in_w + (uint32_t)ix) * g->in_c, w,
                w0 + (ky * g->k_w + kx) * fc, fc, a->input_offset, 0);
        }
    }
    return acc;
}

static void conv_direct_s4(const mnn_conv_args_t *a) {
    const mnn_geom_t *g = &a->g;
    mnn_rq_block_t blk;
    uint32_t sums[MNN_RQ_BLOCK];
    for (uint32_t c0 = 0; c0 < g->out_c; c0 += MNN_RQ_BLOCK) {
        const uint32_t n = g->out_c - c0 > MNN_RQ_BLOCK ? MNN_RQ_BLOCK : g->out_c - c0;
        mnn_rq_block_prepare(&blk, a->bias, a->mult, a->shift, c0, n, a->output_offset, a->act_min, a->act_max);
        mnn_pace_t pace;
        mnn_pace_init(&pace, mnn_sat_mul(n, g->k_h * g->k_w * (g->in_c / a->groups)));
        int8_t *y = a->output + c0;
        for (uint32_t b = 0; b < g->batches; b++) {
            const int8_t *xb = a->input + b * g->in_h * g->in_w * g->in_c;
            for (uint32_t oy = 0; oy < g->out_h; oy++) {
                const int32_t iy0 = (int32_t)(oy * g->stride_h) - g->pad_top;
                for (uint32_t ox = 0; ox < g->out_w; ox++, y += g->out_c) {
                    const int32_t ix0 = (int32_t)(ox * g->stride_w) - g->pad_left;
                    mnn_pace(&pace);
                    for (uint32_t i = 0; i < n; i++) {
                        sums[i] = sum_s4(a, xb, iy0, ix0, c0 + i);
                    }
                    mnn_rq_block_apply(&blk, sums, 1, n, y, 1, 1);
                }
            }
        }
    }
}

// --- column ---------------------------------------------------------------

// Where value k of the receptive field goes in the column: groups of eight
// as the pairs (0, 4), (2, 6), (1, 5), (3, 7).
static inline uint32_t col_pos(uint32_t k) {
    return (k & ~7u) | ((k & 1u) << 2) | (k & 2u) | ((k >> 2) & 1u);
}

// The column of the pixel whose window starts at (iy0, ix0), input channels
// [ic0, ic0 + in_c / groups), K values then zeros up to a multiple of 8.
static void fill_col(const mnn_conv_args_t *a, const int8_t *xb, int32_t iy0, int32_t ix0, uint32_t ic0,
    int16_t *col) {
    const mnn_geom_t *g = &a->g;
    const uint32_t fc = g->in_c / a->groups;
    const int32_t off = a->input_offset;
    uint32_t k = 0;
    for (uint32_t ky = 0; ky < g->k_h; ky++) {
        const int32_t iy = iy0 + (int32_t)(ky * g->dil_h);
        for (uint32_t kx = 0; kx < g->k_w; kx++) {
            const int32_t ix = ix0 + (int32_t)(kx * g->dil_w);
            if (iy < 0 || iy >= (int32_t)g->in_h || ix < 0 || ix >= (int32_t)g->in_w) {
                for (uint32_t c = 0; c < fc; c++, k++) {
                    col[col_pos(k)] = 0;
                }
                continue;
            }
            const int8_t *x = xb + ((uint32_t)iy * g->in_w + (uint32_t)ix) * g->in_c + ic0;
            for (uint32_t c = 0; c < fc; c++, k++) {
                col[col_pos(k)] = (int16_t)(x[c] + off);
            }
        }
    }
    for (; k % 8; k++) {
        col[col_pos(k)] = 0;
    }
}

// Value j (0..7) of a word of eight packed int4 values.
static inline int32_t nib(uint32_t v, uint32_t j) {
    return (int32_t)(v << (28 - 4 * j)) >> 28;
}

// The sum of column values [k0, K) times the row's values from nibble start + k0.
static uint32_t col_tail(const int16_t *col, const uint8_t *w, uint32_t start, uint32_t k0, uint32_t K) {
    uint32_t acc = 0;
    for (uint32_t k = k0; k < K; k++) {
        acc += (uint32_t)(col[col_pos(k)] * mnn_s4_at(w, start + k));
    }
    return acc;
}

// The column times a row of K values from nibble `start`: groups of eight
// from a word of weights where the row starts on a byte.
static uint32_t col_dot(const int16_t *col, const uint8_t *w, uint32_t start, uint32_t K) {
    uint32_t acc = 0, k = 0;
    if (!(start & 1)) {
        const uint8_t *p = w + start / 2;
        const int16_t *c = col;
        for (; k + 8 <= K; k += 8, p += 4, c += 8) {
            const uint32_t v = mnn_rd32(p);
            acc += (uint32_t)(c[0] * nib(v, 0) + c[4] * nib(v, 1) + c[2] * nib(v, 2) + c[6] * nib(v, 3)
                + c[1] * nib(v, 4) + c[5] * nib(v, 5) + c[3] * nib(v, 6) + c[7] * nib(v, 7));
        }
    }
    return acc + col_tail(col, w, start, k, K);
}

#if MNN_DSP
// Values per block of 16-times sums (as in fully_connected_s4.c): exact in int32.
#define S4_BLOCK (1u << 14)

// Two rows starting on bytes, n values (a multiple of 8) against the column.
static void col_dot2_dsp(const int16_t *col, const uint8_t *w0, const uint8_t *w1, uint32_t n, uint32_t *r0,
    uint32_t *r1) {
    uint32_t t0 = 0, t1 = 0;
    for (uint32_t done = 0; done < n; ) {
        const uint32_t m = n - done < S4_BLOCK ? n - done : S4_BLOCK;
        int32_t s0 = 0, s1 = 0;
        for (uint32_t i = 0; i < m; i += 8, col += 8, w0 += 4, w1 += 4) {
            const uint32_t p04 = mnn_rd32(col), p26 = mnn_rd32(col + 2);
            const uint32_t p15 = mnn_rd32(col + 4), p37 = mnn_rd32(col + 6);
            uint32_t wv = mnn_rd32(w0);
            uint32_t ev = (wv << 4) & 0xf0f0f0f0u, ov = wv & 0xf0f0f0f0u;
            s0 = mnn_smlad(p04, mnn_sxtb16(ev), s0);
            s0 = mnn_smlad(p26, mnn_sxtb16_ror8(ev), s0);
            s0 = mnn_smlad(p15, mnn_sxtb16(ov), s0);
            s0 = mnn_smlad(p37, mnn_sxtb16_ror8(ov), s0);
            wv = mnn_rd32(w1);
            ev = (wv << 4) & 0xf0f0f0f0u;
            ov = wv & 0xf0f0f0f0u;
            s1 = mnn_smlad(p04, mnn_sxtb16(ev), s1);
            s1 = mnn_smlad(p26, mnn_sxtb16_ror8(ev), s1);
            s1 = mnn_smlad(p15, mnn_sxtb16(ov), s1);
            s1 = mnn_smlad(p37, mnn_sxtb16_ror8(ov), s1);
        }
        t0 += (uint32_t)(s0 >> 4);
        t1 += (uint32_t)(s1 >> 4);
        done += m;
    }
    *r0 = t0;
    *r1 = t1;
}
#endif

static void conv_col_s4(const mnn_conv_args_t *a) {
    const mnn_geom_t *g = &a->g;
    const uint8_t *w = (const uint8_t *)a->weights;
    const uint32_t fc = g->in_c / a->groups, per_group = g->out_c / a->groups, K = g->k_h * g->k_w * fc;
    int16_t *col = a->scratch;
    mnn_rq_block_t blk;
    uint32_t sums[MNN_RQ_BLOCK];
    for (uint32_t c0 = 0; c0 < g->out_c; c0 += MNN_RQ_BLOCK) {
        const uint32_t n = g->out_c - c0 > MNN_RQ_BLOCK ? MNN_RQ_BLOCK : g->out_c - c0;
        mnn_rq_block_prepare(&blk, a->bias, a->mult, a->shift, c0, n, a->output_offset, a->act_min, a->act_max);
        mnn_pace_t pace;
        mnn_pace_init(&pace, mnn_sat_mul(n, K));
        int8_t *y = a->output + c0;
        for (uint32_t b = 0; b < g->batches; b++) {
            const int8_t *xb = a->input + b * g->in_h * g->in_w * g->in_c;
            for (uint32_t oy = 0; oy < g->out_h; oy++) {
                const int32_t iy0 = (int32_t)(oy * g->stride_h) - g->pad_top;
                for (uint32_t ox = 0; ox < g->out_w; ox++, y += g->out_c) {
                    const int32_t ix0 = (int32_t)(ox * g->stride_w) - g->pad_left;
                    mnn_pace(&pace);
                    uint32_t i = 0;
                    while (i < n) {
                        // the channels of one group: one column
                        const uint32_t grp = (c0 + i) / per_group;
                        const uint32_t end = (grp + 1) * per_group - c0 < n ? (grp + 1) * per_group - c0 : n;
                        fill_col(a, xb, iy0, ix0, grp * fc, col);
                        #if MNN_DSP
                        if (K % 2 == 0) {
                            const uint32_t head = K & ~7u;
                            for (; i + 2 <= end; i += 2) {
                                const uint32_t s = (c0 + i) * K;
                                col_dot2_dsp(col, w + s / 2, w + (s + K) / 2, head, &sums[i], &sums[i + 1]);
                                sums[i] += col_tail(col, w, s, head, K);
                                sums[i + 1] += col_tail(col, w, s + K, head, K);
                            }
                        }
                        #endif
                        for (; i < end; i++) {
                            sums[i] = col_dot(col, w, (c0 + i) * K, K);
                        }
                    }
                    mnn_rq_block_apply(&blk, sums, 1, n, y, 1, 1);
                }
            }
        }
    }
}

void mnn_conv_s4(const mnn_conv_args_t *a) {
    if (a->scratch) {
        MNN_COUNT_VARIANT(CONV_S4_COL);
        conv_col_s4(a);
    } else {
        MNN_COUNT_VARIANT(CONV_S4);
        conv_direct_s4(a);
    }
}
