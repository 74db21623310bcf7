// Max and average pooling (int8). Only taps inside the input count, as in
// TFLite; the average rounds half away from zero.
#include "mnn_kernels.h"

#include "mnn_simd.h"

// The taps [*lo, *hi) of a window starting at `start` that fall inside 0..n-1.
static inline void clip(int32_t start, uint32_t k, uint32_t n, int32_t *lo, int32_t *hi) {
    *lo = start < 0 ? 0 : start;
    int32_t end = start + (int32_t)k;
    *hi = end > (int32_t)n ? (int32_t)n : end;
    if (*hi < *lo) {
        *hi = *lo;
    }
}

static inline int32_t clamp(int32_t v, const mnn_pool_args_t *a) {
    v = v < a->act_min ? a->act_min : v;
    return v > a->act_max ? a->act_max : v;
}


// Each output pixel's window is clipped to the input once; then every
// channel runs over the same taps. An empty window gives -128 (max) or 0
// (average) before the activation clamp.
void mnn_max_pool_s8(const mnn_pool_args_t *a) {
    const mnn_geom_t *g = &a->g;
    const uint32_t C = g->in_c;
    int8_t *y = a->output;
    for (uint32_t b = 0; b < g->batches; b++) {
        const int8_t *xb = a->input + b * g->in_h * g->in_w * C;
        for (uint32_t oy = 0; oy < g->out_h; oy++) {
            int32_t y0, y1;
            clip((int32_t)(oy * g->stride_h) - g->pad_top, g->k_h, g->in_h, &y0, &y1);
            for (uint32_t ox = 0; ox < g->out_w; ox++, y += C) {
                int32_t x0, x1;
                clip((int32_t)(ox * g->stride_w) - g->pad_left, g->k_w, g->in_w, &x0, &x1);
                uint32_t c = 0;
                #if MNN_DSP
                const uint32_t lo4 = 0x01010101u * (uint8_t)a->act_min, hi4 = 0x01010101u * (uint8_t)a->act_max;
                for (; c + 4 <= C; c += 4) {
                    uint32_t m = 0x80808080u;
                    for (int32_t iy = y0; iy < y1; iy++) {
                        const int8_t *xp = xb + ((uint32_t)iy * g->in_w + (uint32_t)x0) * C + c;
                        for (int32_t ix = x0; ix < x1; ix++, xp += C) {
                            m = mnn_smax8(m, mnn_rd32(xp));
                        }
                    }
                    m = mnn_smax8(m, lo4);
                    // min(m, hi4): where hi4 >= m per lane keep m, else hi4
                    uint32_t t = mnn_smax8(m, hi4);     // lanes of hi4 where hi4 >= m, else m
                    m = m ^ hi4 ^ t;                      // the other one of each pair
                    mnn_wr32(y + c, m);
                }
                #endif
                for (; c < C; c++) {
                    int32_t m = -128;
                    for (int32_t iy = y0; iy < y1; iy++) {
                        const int8_t *xp = xb + ((uint32_t)iy * g->in_w + (uint32_t)x0) * C + c;
                        for (int32_t ix = x0; ix < x1; ix++, xp += C) {
                            m = *xp > m ? *xp : m;
                        }
                    }
                    y[c] = (int8_t)clamp(m, a);
                }
            }
        }
    }
}

void mnn_avg_pool_s8(const mnn_pool_args_t *a) {
    const mnn_geom_t *g = &a->g;
    const uint32_t C = g->in_c;
    int8_t *y = a->output;
    for (uint32_t b = 0; b < g->batches; b++) {
        const int8_t *xb = a->input + b * g->in_h * g->in_w * C;
        for (uint32_t oy = 0; oy < g->out_h; oy++) {
            int32_t y0, y1;
            clip((int32_t)(oy * g->stride_h) - g->pad_top, g->k_h, g->in_h, &y0, &y1);
            for (uint32_t ox = 0; ox < g->out_w; ox++, y += C) {
                int32_t x0, x1;
                clip((int32_t)(ox * g->stride_w) - g->pad_left, g->k_w, g->in_w, &x0, &x1);
                const int32_t count = (y1 - y0) * (x1 - x0);
                uint32_t c = 0;
                #if MNN_DSP
                if (count <= 256) {
                    // Four channels at a time in 16-bit lanes: |sum| <= 128 * 256 fits.
                    for (; c + 4 <= C; c += 4) {
                        uint32_t s02 = 0, s13 = 0;
                        for (int32_t iy = y0; iy < y1; iy++) {
                            const int8_t *xp = xb + ((uint32_t)iy * g->in_w + (uint32_t)x0) * C + c;
                            for (int32_t ix = x0; ix < x1; ix++, xp += C) {
                                uint32_t v = mnn_rd32(xp);
                                s02 = mnn_sxtab16(s02, v);
                                s13 = mnn_sxtab16_ror8(s13, v);
                            }
                        }
                        const int32_t sums[4] = { (int16_t)(s02 & 0xffff), (int16_t)(s13 & 0xffff),
                                                  (int16_t)(s02 >> 16), (int16_t)(s13 >> 16) };
                        for (int k = 0; k < 4; k++) {
                            int32_t sum = sums[k];
                            int32_t v = count == 0 ? 0
                                : (sum > 0 ? (sum + count / 2) / count : (sum - count / 2) / count);
                            y[c + k] = (int8_t)clamp(v, a);
                        }
                    }
                }
                #endif
                for (; c < C; c++) {
                    int32_t sum = 0;
                    for (int32_t iy = y0; iy < y1; iy++) {
                        const int8_t *xp = xb + ((uint32_t)iy * g->in_w + (uint32_t)x0) * C + c;
                        for (int32_t ix = x0; ix < x1; ix++, xp += C) {
                            sum += *xp;
                        }
                    }
                    int32_t v = count == 0 ? 0
                        : (sum > 0 ? (sum + count / 2) / count : (sum - count / 2) / count);
                    y[c] = (int8_t)clamp(v, a);
                }
            }
        }
    }
}
