// Depthwise convolution, 16x8 (DEPTHWISE_CONV_2D_S16): NHWC int16 input,
// int8 weights [1, k_h, k_w, out_c], out_c = in_c * depth_mult, any stride,
// dilation and padding; int64 (or wrapping int32) sums requantized per
// channel to int16 (mnn_s16.h). Taps outside the input are skipped.
//
// Output channels in blocks of DW_BLOCK: for each output pixel the taps
// inside the input are visited once and each adds one product to every
// channel of the block (the channels of a tap are consecutive in both the
// input, with depth multiplier 1, and the weights). No scratch.
#include "mnn_s16.h"

#define DW_BLOCK 16

void mnn_depthwise_conv_s16(const mnn_conv_s16_args_t *a) {
    const mnn_geom_t *g = &a->g;
    const uint32_t dm = a->depth_mult, C = g->out_c;
    const int acc64 = a->acc64;
    MNN_COUNT_VARIANT(DEPTHWISE_S16);
    mnn_s16_rq_t rq[DW_BLOCK];
    int64_t sums[DW_BLOCK];
    for (uint32_t c0 = 0; c0 < C; c0 += DW_BLOCK) {
        const uint32_t n = C - c0 > DW_BLOCK ? DW_BLOCK : C - c0;
        for (uint32_t i = 0; i < n; i++) {
            rq[i] = mnn_s16_rq_prepare(a->bias, acc64, a->mult, a->shift, c0 + i, c0 + i);
        }
        mnn_pace_t pace;
        mnn_pace_init(&pace, mnn_sat_mul(n, g->k_h * g->k_w));
        int16_t *y = a->output + c0;
        for (uint32_t b = 0; b < g->batches; b++) {
            const int16_t *xb = a->input + b * g->in_h * g->in_w * g->in_c;
            for (uint32_t oy = 0; oy < g->out_h; oy++) {
                const int32_t iy0 = (int32_t)(oy * g->stride_h) - g->pad_top;
                for (uint32_t ox = 0; ox < g->out_w; ox++, y += C) {
                    const int32_t ix0 = (int32_t)(ox * g->stride_w) - g->pad_left;
                    mnn_pace(&pace);
                    for (uint32_t i = 0; i < n; i++) {
                        sums[i] = 0;
                    }
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
                            const int16_t *x = xb + ((uint32_t)iy * g->in_w + (uint32_t)ix) * g->in_c;
                            const int8_t *w = a->weights + (ky * g->k_w + kx) * C + c0;
                            if (dm == 1) {
                                x += c0;
                                for (uint32_t i = 0; i < n; i++) {
                                    sums[i] += x[i] * w[i];
                                }
                            } else {
                                for (uint32_t i = 0; i < n; i++) {
                                    sums[i] += x[(c0 + i) / dm] * w[i];
                                }
                            }
                        }
                    }
                    for (uint32_t i = 0; i < n; i++) {
                        y[i] = mnn_s16_out(&rq[i], acc64, sums[i], a->act_min, a->act_max);
                    }
                }
            }
        }
    }
}
