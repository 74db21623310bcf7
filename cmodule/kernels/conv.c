// 2-D convolution (int8, per-channel requantization), any kernel size,
// stride, dilation, padding and group count. Portable C.
#include "mnn_kernels.h"
#include "mnn_fixedpoint.h"

// Sums wrap (as two's complement) rather than overflow: identical to TFLite
// wherever TFLite's int32 sums do not overflow, and defined where they would.
static inline int8_t finish(uint32_t sum, const int32_t *bias, const int32_t *mult, const int32_t *shift,
    uint32_t oc, int32_t out_off, int32_t lo, int32_t hi) {
    if (bias) {
        sum += (uint32_t)mnn_ld32(bias, oc);
    }
    int32_t acc = (int32_t)sum;
    acc = mnn_requantize(acc, mnn_ld32(mult, oc), mnn_ld32(shift, oc)) + out_off;
    acc = acc < lo ? lo : acc;
    return (int8_t)(acc > hi ? hi : acc);
}

void mnn_conv_s8(const mnn_conv_args_t *a) {
    const mnn_geom_t *g = &a->g;
    const uint32_t fc = g->in_c / a->groups;
    const uint32_t oc_per_group = g->out_c / a->groups;
    const uint32_t wsize = g->k_h * g->k_w * fc;
    int8_t *y = a->output;
    for (uint32_t b = 0; b < g->batches; b++) {
        const int8_t *xb = a->input + b * g->in_h * g->in_w * g->in_c;
        for (uint32_t oy = 0; oy < g->out_h; oy++) {
            const int32_t iy0 = (int32_t)(oy * g->stride_h) - g->pad_top;
            for (uint32_t ox = 0; ox < g->out_w; ox++) {
                const int32_t ix0 = (int32_t)(ox * g->stride_w) - g->pad_left;
                for (uint32_t oc = 0; oc < g->out_c; oc++) {
                    const uint32_t ic0 = (oc / oc_per_group) * fc;
                    const int8_t *w = a->weights + oc * wsize;
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
                            const int8_t *x = xb + ((uint32_t)iy * g->in_w + (uint32_t)ix) * g->in_c + ic0;
                            const int8_t *wk = w + (ky * g->k_w + kx) * fc;
                            for (uint32_t c = 0; c < fc; c++) {
                                acc += (uint32_t)((x[c] + a->input_offset) * wk[c]);
                            }
                        }
                    }
                    *y++ = finish(acc, a->bias, a->mult, a->shift, oc, a->output_offset, a->act_min, a->act_max);
                }
            }
        }
    }
}
