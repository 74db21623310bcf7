// Fully connected (int8): out = requantize(sum((x + in_off) * (w + w_off)) + bias).
#include "mnn_kernels.h"
#include "mnn_fixedpoint.h"
#include "mnn_simd.h"

// The packer folds the input offset into the bias when the weights are
// symmetric, so the common case is a plain int8 dot product.
// Sums wrap (two's complement) instead of overflowing; see conv.c.
static uint32_t dot_s8(const int8_t *x, const int8_t *w, uint32_t n) {
    uint32_t acc0 = 0, acc1 = 0;
    uint32_t i = 0;
    for (; i + 4 <= n; i += 4) {
        acc0 += (uint32_t)(x[i] * w[i] + x[i + 2] * w[i + 2]);
        acc1 += (uint32_t)(x[i + 1] * w[i + 1] + x[i + 3] * w[i + 3]);
    }
    for (; i < n; i++) {
        acc0 += (uint32_t)(x[i] * w[i]);
    }
    return acc0 + acc1;
}

static uint32_t dot_offset_s8(const int8_t *x, const int8_t *w, uint32_t n,
    int32_t x_off, int32_t w_off) {
    uint32_t acc = 0;
    for (uint32_t i = 0; i < n; i++) {
        acc += (uint32_t)((x[i] + x_off) * (w[i] + w_off));
    }
    return acc;
}

#if MNN_DSP
// Two rows at once against one input: (x + x_off) . w0 and (x + x_off) . w1,
// four values per step (each input word expanded once for both rows).
static void dot2_dsp(const int8_t *x, const int8_t *w0, const int8_t *w1, uint32_t n, int32_t x_off,
    uint32_t *r0, uint32_t *r1) {
    const uint32_t off2 = ((uint32_t)x_off & 0xffff) | ((uint32_t)x_off << 16);
    int32_t s0 = 0, s1 = 0;
    uint32_t i = 0;
    for (; i + 4 <= n; i += 4) {
        uint32_t xv = mnn_rd32(x + i);
        uint32_t xa = mnn_sxtab16(off2, xv), xb = mnn_sxtab16_ror8(off2, xv);
        uint32_t wv = mnn_rd32(w0 + i);
        s0 = mnn_smlad(xa, mnn_sxtb16(wv), s0);
        s0 = mnn_smlad(xb, mnn_sxtb16_ror8(wv), s0);
        wv = mnn_rd32(w1 + i);
        s1 = mnn_smlad(xa, mnn_sxtb16(wv), s1);
        s1 = mnn_smlad(xb, mnn_sxtb16_ror8(wv), s1);
    }
    uint32_t t0 = (uint32_t)s0, t1 = (uint32_t)s1;
    for (; i < n; i++) {
        t0 += (uint32_t)((x[i] + x_off) * w0[i]);
        t1 += (uint32_t)((x[i] + x_off) * w1[i]);
    }
    *r0 = t0;
    *r1 = t1;
}

// Four rows w, w + n, w + 2n, w + 3n at once against an input without offset
// (the packer folds it into the bias): 16 MACs per input word in 19
// instructions plus the loop; the rows are addressed from one pointer so the
// loop stays in registers.
static void dot4_dsp(const int8_t *x, const int8_t *w, uint32_t n, uint32_t r[4]) {
    const int8_t *end = x + (n & ~3u);
    const uint32_t n2 = 2 * n, n3 = 3 * n;
    int32_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (; x < end; x += 4, w += 4) {
        uint32_t xv = mnn_rd32(x);
        uint32_t xa = mnn_sxtb16(xv), xb = mnn_sxtb16_ror8(xv);
        uint32_t wv = mnn_rd32(w);
        s0 = mnn_smlad(xa, mnn_sxtb16(wv), s0);
        s0 = mnn_smlad(xb, mnn_sxtb16_ror8(wv), s0);
        wv = mnn_rd32(w + n);
        s1 = mnn_smlad(xa, mnn_sxtb16(wv), s1);
        s1 = mnn_smlad(xb, mnn_sxtb16_ror8(wv), s1);
        wv = mnn_rd32(w + n2);
        s2 = mnn_smlad(xa, mnn_sxtb16(wv), s2);
        s2 = mnn_smlad(xb, mnn_sxtb16_ror8(wv), s2);
        wv = mnn_rd32(w + n3);
        s3 = mnn_smlad(xa, mnn_sxtb16(wv), s3);
        s3 = mnn_smlad(xb, mnn_sxtb16_ror8(wv), s3);
    }
    uint32_t t0 = (uint32_t)s0, t1 = (uint32_t)s1, t2 = (uint32_t)s2, t3 = (uint32_t)s3;
    for (uint32_t i = 0; i < (n & 3u); i++) {
        const int32_t v = x[i];
        t0 += (uint32_t)(v * w[i]);
        t1 += (uint32_t)(v * w[n + i]);
        t2 += (uint32_t)(v * w[n2 + i]);
        t3 += (uint32_t)(v * w[n3 + i]);
    }
    r[0] = t0;
    r[1] = t1;
    r[2] = t2;
    r[3] = t3;
}
#endif

static inline int8_t requant_one(const mnn_fc_args_t *a, uint32_t sum, uint32_t o) {
    return mnn_requant_out(sum, a->bias, o, a->mult, a->shift, a->per_channel ? o : 0, a->output_offset, a->act_min,
        a->act_max);
}

void mnn_fully_connected_s8(const mnn_fc_args_t *a) {
    const uint32_t depth = a->accum_depth;
    const int plain = a->input_offset == 0 && a->filter_offset == 0;
    const int8_t *x = a->input;
    int8_t *y = a->output;
    const uint32_t work = mnn_sat_mul(depth, a->out_depth);
    #if MNN_DSP
    if (a->filter_offset == 0) {
        MNN_COUNT_VARIANT(FC_DSP);
    } else
    #endif
    if (plain) {
        MNN_COUNT_VARIANT(FC_PLAIN);
    } else {
        MNN_COUNT_VARIANT(FC_OFFSET);
    }
    for (uint32_t b = 0; b < a->batches; b++, x += depth, y += a->out_depth) {
        mnn_work(work);
        const int8_t *w = a->weights;
        uint32_t o = 0;
        #if MNN_DSP
        if (a->filter_offset == 0) {
            // Symmetric weights (the norm): rows in fours, then pairs, through the
            // DSP dot products.
            for (; a->input_offset == 0 && o + 4 <= a->out_depth; o += 4, w += 4 * depth) {
                uint32_t s[4];
                dot4_dsp(x, w, depth, s);
                for (uint32_t j = 0; j < 4; j++) {
                    y[o + j] = requant_one(a, s[j], o + j);
                }
            }
            for (; o + 2 <= a->out_depth; o += 2, w += 2 * depth) {
                uint32_t s0, s1;
                dot2_dsp(x, w, w + depth, depth, a->input_offset, &s0, &s1);
                y[o] = requant_one(a, s0, o);
                y[o + 1] = requant_one(a, s1, o + 1);
            }
        }
        #endif
        for (; o < a->out_depth; o++, w += depth) {
            uint32_t sum = plain ? dot_s8(x, w, depth)
                : dot_offset_s8(x, w, depth, a->input_offset, a->filter_offset);
            y[o] = requant_one(a, sum, o);
        }
    }
}
