// 2-D convolution, 16x8 (CONV_2D_S16): NHWC int16 input, int8 weights
// [out_c, k_h, k_w, in_c / groups], any stride, dilation, padding and group
// count; int64 (or wrapping int32) sums requantized per channel to int16
// (mnn_s16.h). Taps outside the input are skipped (the zero point is 0).
//
// Output channels in blocks of CONV_BLOCK (their requantization prepared
// once per block); for each output pixel the channels go in pairs, each tap
// inside the input adding one run of in_c / groups values to both sums, the
// inputs read once for the two weight rows (mnn_dot2_s16: SMLAD on cores with
// the DSP extension). No scratch.
#include "mnn_s16.h"

#define CONV_BLOCK 16

void mnn_conv_s16(const mnn_conv_s16_args_t *a) {
    const mnn_geom_t *g = &a->g;
    const uint32_t cin = g->in_c / a->groups, per_group = g->out_c / a->groups;
    const uint32_t K = g->k_h * g->k_w * cin;
    const int acc64 = a->acc64;
    #if MNN_DSP
    MNN_COUNT_VARIANT(CONV_S16_DSP);
    #else
    MNN_COUNT_VARIANT(CONV_S16);
    #endif
    mnn_s16_rq_t rq[CONV_BLOCK];
    for (uint32_t c0 = 0; c0 < g->out_c; c0 += CONV_BLOCK) {
        const uint32_t nb = g->out_c - c0 > CONV_BLOCK ? CONV_BLOCK : g->out_c - c0;
        for (uint32_t i = 0; i < nb; i++) {
            rq[i] = mnn_s16_rq_prepare(a->bias, acc64, a->mult, a->shift, c0 + i, c0 + i);
        }
        mnn_pace_t pace;
        mnn_pace_init(&pace, mnn_sat_mul(nb, K));
        int16_t *y = a->output;
        for (uint32_t b = 0; b < g->batches; b++) {
            const int16_t *xb = a->input + b * g->in_h * g->in_w * g->in_c;
            for (uint32_t oy = 0; oy < g->out_h; oy++) {
                const int32_t iy0 = (int32_t)(oy * g->stride_h) - g->pad_top;
                for (uint32_t ox = 0; ox < g->out_w; ox++, y += g->out_c) {
                    const int32_t ix0 = (int32_t)(ox * g->stride_w) - g->pad_left;
                    mnn_pace(&pace);
                    for (uint32_t i = 0; i < nb; ) {
                        const uint32_t oc = c0 + i;
                        // a pair shares its input channels: both in one group
                        const int two = i + 1 < nb && (oc + 1) / per_group == oc / per_group;
                        const uint32_t xc = oc / per_group * cin;
                        const int8_t *w0 = a->weights + oc * K, *w1 = two ? w0 + K : w0;
                        int64_t t0 = 0, t1 = 0;
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
                                const int16_t *x = xb + ((uint32_t)iy * g->in_w + (uint32_t)ix) * g->in_c + xc;
                                const uint32_t wo = (ky * g->k_w + kx) * cin;
                                mnn_dot2_s16(x, w0 + wo, w1 + wo, cin, &t0, &t1);
                            }
                        }
                        y[oc] = mnn_s16_out(&rq[i], acc64, t0, a->act_min, a->act_max);
                        if (two) {
                            y[oc + 1] = mnn_s16_out(&rq[i + 1], acc64, t1, a->act_min, a->act_max);
                        }
                        i += two ? 2 : 1;
                    }
                }
            }
        }
    }
}
