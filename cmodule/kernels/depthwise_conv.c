// Depthwise convolution (int8, per-channel requantization), any depth
// multiplier, kernel size, stride, dilation and padding. Portable C.
#include "mnn_kernels.h"
#include "mnn_fixedpoint.h"

void mnn_depthwise_conv_s8(const mnn_conv_args_t *a) {
    const mnn_geom_t *g = &a->g;
    const uint32_t dm = a->depth_mult;
    int8_t *y = a->output;
    for (uint32_t b = 0; b < g->batches; b++) {
        const int8_t *xb = a->input + b * g->in_h * g->in_w * g->in_c;
        for (uint32_t oy = 0; oy < g->out_h; oy++) {
            const int32_t iy0 = (int32_t)(oy * g->stride_h) - g->pad_top;
            for (uint32_t ox = 0; ox < g->out_w; ox++) {
                const int32_t ix0 = (int32_t)(ox * g->stride_w) - g->pad_left;
                for (uint32_t oc = 0; oc < g->out_c; oc++) {
                    const uint32_t ic = oc / dm;
                    uint32_t acc = 0;      // wraps like conv.c's sums
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
                            int32_t x = xb[((uint32_t)iy * g->in_w + (uint32_t)ix) * g->in_c + ic];
                            acc += (uint32_t)((x + a->input_offset) * a->weights[(ky * g->k_w + kx) * g->out_c + oc]);
                        }
                    }
                    if (a->bias) {
                        acc += (uint32_t)mnn_ld32(a->bias, oc);
                    }
                    int32_t v = mnn_requantize((int32_t)acc, mnn_ld32(a->mult, oc), mnn_ld32(a->shift, oc))
                        + a->output_offset;
                    v = v < a->act_min ? a->act_min : v;
                    *y++ = (int8_t)(v > a->act_max ? a->act_max : v);
                }
            }
        }
    }
}
