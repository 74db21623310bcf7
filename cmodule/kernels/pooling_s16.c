// Max and average pooling of int16 values (TFLite Micro's MaxPool16 and
// AveragePool16): only taps inside the input count; the average rounds half
// away from zero. Windows have fewer than 2^16 taps (the loader), so a sum
// of int16 values fits an int32.
#include <stddef.h>

#include "mnn_kernels.h"

static void pool16(const mnn_pool16_args_t *a, int is_max) {
    const mnn_geom_t *g = &a->g;
    const uint32_t C = g->in_c;
    int16_t *y = a->output;
    mnn_pace_t pace;
    mnn_pace_init(&pace, g->k_h * g->k_w * C);
    for (uint32_t b = 0; b < g->batches; b++) {
        const int16_t *xb = a->input + (size_t)b * g->in_h * g->in_w * C;
        for (uint32_t oy = 0; oy < g->out_h; oy++) {
            int32_t sy = (int32_t)(oy * g->stride_h) - g->pad_top;
            int32_t y0 = sy < 0 ? 0 : sy, y1 = sy + (int32_t)g->k_h;
            y1 = y1 > (int32_t)g->in_h ? (int32_t)g->in_h : y1;
            for (uint32_t ox = 0; ox < g->out_w; ox++) {
                int32_t sx = (int32_t)(ox * g->stride_w) - g->pad_left;
                int32_t x0 = sx < 0 ? 0 : sx, x1 = sx + (int32_t)g->k_w;
                x1 = x1 > (int32_t)g->in_w ? (int32_t)g->in_w : x1;
                const int32_t count = (y1 > y0 && x1 > x0) ? (y1 - y0) * (x1 - x0) : 0;
                for (uint32_t c = 0; c < C; c++) {
                    int32_t acc;
                    if (is_max) {
                        acc = -32768;
                        for (int32_t iy = y0; iy < y1; iy++) {
                            const int16_t *xp = xb + ((uint32_t)iy * g->in_w + (uint32_t)x0) * C + c;
                            for (int32_t ix = x0; ix < x1; ix++, xp += C) {
                                acc = *xp > acc ? *xp : acc;
                            }
                        }
                    } else {
                        acc = 0;
                        for (int32_t iy = y0; iy < y1; iy++) {
                            const int16_t *xp = xb + ((uint32_t)iy * g->in_w + (uint32_t)x0) * C + c;
                            for (int32_t ix = x0; ix < x1; ix++, xp += C) {
                                acc += *xp;
                            }
                        }
                        acc = count == 0 ? 0 : (acc > 0 ? (acc + count / 2) / count : (acc - count / 2) / count);
                    }
                    acc = acc < a->act_min ? a->act_min : acc;
                    *y++ = (int16_t)(acc > a->act_max ? a->act_max : acc);
                }
                mnn_pace(&pace);
            }
        }
    }
}

void mnn_max_pool_s16(const mnn_pool16_args_t *a) {
    pool16(a, 1);
}

void mnn_avg_pool_s16(const mnn_pool16_args_t *a) {
    pool16(a, 0);
}
