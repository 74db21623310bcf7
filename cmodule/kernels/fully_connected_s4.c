// Fully connected with int4 weights (FULLY_CONNECTED_S4): the int8 kernel's
// arithmetic, sum((x + in_off) * (w + w_off)) + bias requantized per tensor
// or per channel, the weights read as packed nibbles in place (the blob's
// packing runs over the whole matrix, so a row starts in the middle of a
// byte when out row and depth are both odd).
//
// The weights are unpacked on the fly, never into scratch: each weight meets
// each input row once, so a scratch copy would add a store and a load per
// weight to the same extraction, and the op would need scratch memory. With
// the DSP extension (Cortex-M4/M7) a word of eight weights becomes four
// int16 pairs in seven instructions: the even values (low nibbles) shifted
// into the high nibble of their byte and the odd ones masked in place, so
// SXTB16 sign-extends each as 16 times its value, and SMLAD then takes two
// products at a time against the input pairs in the same order, which are
// prepared once per word of input for two rows. Sums of 16 times the
// products are exact within blocks of S4_BLOCK values (no int32 overflow),
// then divided by 16 exactly.
#include "mnn_kernels.h"
#include "mnn_fixedpoint.h"
#include "mnn_simd.h"

static inline int8_t requant_one(const mnn_fc_args_t *a, uint32_t sum, uint32_t o) {
    return mnn_requant_out(sum, a->bias, o, a->mult, a->shift, a->per_channel ? o : 0, a->output_offset, a->act_min,
        a->act_max);
}

#if MNN_DSP
// Values per block of 16-times sums: |(x + off) * w * 16| <= 383 * 8 * 16 < 2^16,
// so 2^14 of them stay below 2^30.
#define S4_BLOCK (1u << 14)

// Two rows starting on byte boundaries (w0, w1 at value 0 of their row), n
// values, a multiple of 8: the two sums of (x + x_off) * w.
static void dot2_s4_dsp(const int8_t *x, const uint8_t *w0, const uint8_t *w1, uint32_t n, int32_t x_off,
    uint32_t *r0, uint32_t *r1) {
    const uint32_t off2 = ((uint32_t)x_off & 0xffff) | ((uint32_t)x_off << 16);
    uint32_t t0 = 0, t1 = 0;
    for (uint32_t done = 0; done < n; ) {
        const uint32_t m = n - done < S4_BLOCK ? n - done : S4_BLOCK;
        int32_t s0 = 0, s1 = 0;
        for (uint32_t i = 0; i < m; i += 8, x += 8, w0 += 4, w1 += 4) {
            // inputs 0..7 as pairs (0, 4), (2, 6), (1, 5), (3, 7), offset added
            const uint32_t xa = mnn_rd32(x), xb = mnn_rd32(x + 4);
            const uint32_t e0 = mnn_sxtab16(off2, xa), e1 = mnn_sxtab16(off2, xb);
            const uint32_t o0 = mnn_sxtab16_ror8(off2, xa), o1 = mnn_sxtab16_ror8(off2, xb);
            const uint32_t p04 = (e0 & 0xffff) | (e1 << 16), p26 = (e0 >> 16) | (e1 & 0xffff0000u);
            const uint32_t p15 = (o0 & 0xffff) | (o1 << 16), p37 = (o0 >> 16) | (o1 & 0xffff0000u);
            uint32_t wv = mnn_rd32(w0);
            uint32_t ev = (wv << 4) & 0xf0f0f0f0u, ov = wv & 0xf0f0f0f0u;
            // ev bytes: 16 * values 0, 2, 4, 6; ov: 16 * values 1, 3, 5, 7
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

void mnn_fully_connected_s4(const mnn_fc_args_t *a) {
    const uint32_t depth = a->accum_depth;
    const uint8_t *w = (const uint8_t *)a->weights;
    const int8_t *x = a->input;
    int8_t *y = a->output;
    const uint32_t work = mnn_sat_mul(depth, a->out_depth);
    #if MNN_DSP
    // Rows in pairs, each starting on a byte: depth even; filter offset 0 (TFLite's int4 weights
    // are symmetric). The last depth % 8 values of each row go through the portable loop.
    const int dsp = a->filter_offset == 0 && depth % 2 == 0 && depth >= 8;
    if (dsp) {
        MNN_COUNT_VARIANT(FC_S4_DSP);
    } else
    #endif
    {
        MNN_COUNT_VARIANT(FC_S4);
    }
    for (uint32_t b = 0; b < a->batches; b++, x += depth, y += a->out_depth) {
        mnn_work(work);
        uint32_t o = 0;
        #if MNN_DSP
        if (dsp) {
            const uint32_t head = depth & ~7u, row = depth / 2;
            for (; o + 2 <= a->out_depth; o += 2) {
                uint32_t s0, s1;
                dot2_s4_dsp(x, w + o * row, w + (o + 1) * row, head, a->input_offset, &s0, &s1);
                s0 += mnn_dot_s4(x + head, w, o * depth + head, depth - head, a->input_offset, 0);
                s1 += mnn_dot_s4(x + head, w, (o + 1) * depth + head, depth - head, a->input_offset, 0);
                y[o] = requant_one(a, s0, o);
                y[o + 1] = requant_one(a, s1, o + 1);
            }
        }
        #endif
        for (; o < a->out_depth; o++) {
            const uint32_t sum = mnn_dot_s4(x, w, o * depth, depth, a->input_offset, a->filter_offset);
            y[o] = requant_one(a, sum, o);
        }
    }
}
