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


// A window clipped to the input: rows [y0, y1), columns [x0, x1) of the
// image xb, C channels per pixel.
typedef struct {
    const int8_t *xb;
    int32_t y0, y1, x0, x1;
    uint32_t in_w, C;
} window_t;

static inline const int8_t *tap(const window_t *w, int32_t iy, uint32_t c) {
    return w->xb + ((uint32_t)iy * w->in_w + (uint32_t)w->x0) * w->C + c;
}

static inline int32_t rounded_mean(int32_t sum, int32_t count) {
    return count == 0 ? 0 : (sum > 0 ? (sum + count / 2) / count : (sum - count / 2) / count);
}

// The C outputs of one pixel: the largest value of each channel in the window
// (-128 for an empty window), clamped.
static void max_window(const mnn_pool_args_t *a, const window_t *w, int8_t *y) {
    const uint32_t C = w->C;
    uint32_t c = 0;
    #if MNN_DSP
    const uint32_t lo4 = 0x01010101u * (uint8_t)a->act_min, hi4 = 0x01010101u * (uint8_t)a->act_max;
    for (; c + 4 <= C; c += 4) {
        uint32_t m = 0x80808080u;
        for (int32_t iy = w->y0; iy < w->y1; iy++) {
            const int8_t *xp = tap(w, iy, c);
            for (int32_t ix = w->x0; ix < w->x1; ix++, xp += C) {
                m = mnn_smax8(m, mnn_rd32(xp));
            }
        }
        m = mnn_smax8(m, lo4);
        // min(m, hi4): the lane of each pair that max did not pick
        uint32_t t = mnn_smax8(m, hi4);
        mnn_wr32(y + c, m ^ hi4 ^ t);
    }
    #endif
    for (; c < C; c++) {
        int32_t m = -128;
        for (int32_t iy = w->y0; iy < w->y1; iy++) {
            const int8_t *xp = tap(w, iy, c);
            for (int32_t ix = w->x0; ix < w->x1; ix++, xp += C) {
                m = *xp > m ? *xp : m;
            }
        }
        y[c] = (int8_t)clamp(m, a);
    }
}

// The rounded mean of each channel over the taps in the window (0 when
// empty), clamped.
static void avg_window(const mnn_pool_args_t *a, const window_t *w, int8_t *y) {
    const uint32_t C = w->C;
    const int32_t count = (w->y1 - w->y0) * (w->x1 - w->x0);
    uint32_t c = 0;
    #if MNN_DSP
    if (count <= 256) {
        // Four channels at a time in 16-bit lanes: |sum| <= 128 * 256 fits.
        for (; c + 4 <= C; c += 4) {
            uint32_t s02 = 0, s13 = 0;
            for (int32_t iy = w->y0; iy < w->y1; iy++) {
                const int8_t *xp = tap(w, iy, c);
                for (int32_t ix = w->x0; ix < w->x1; ix++, xp += C) {
                    uint32_t v = mnn_rd32(xp);
                    s02 = mnn_sxtab16(s02, v);
                    s13 = mnn_sxtab16_ror8(s13, v);
                }
            }
            y[c] = (int8_t)clamp(rounded_mean((int16_t)(s02 & 0xffff), count), a);
            y[c + 1] = (int8_t)clamp(rounded_mean((int16_t)(s13 & 0xffff), count), a);
            y[c + 2] = (int8_t)clamp(rounded_mean((int16_t)(s02 >> 16), count), a);
            y[c + 3] = (int8_t)clamp(rounded_mean((int16_t)(s13 >> 16), count), a);
        }
    }
    #endif
    for (; c < C; c++) {
        int32_t sum = 0;
        for (int32_t iy = w->y0; iy < w->y1; iy++) {
            const int8_t *xp = tap(w, iy, c);
            for (int32_t ix = w->x0; ix < w->x1; ix++, xp += C) {
                sum += *xp;
            }
        }
        y[c] = (int8_t)clamp(rounded_mean(sum, count), a);
    }
}

// Each output pixel's window is clipped to the input once; then every
// channel runs over the same taps.
static void pool(const mnn_pool_args_t *a, void (*window)(const mnn_pool_args_t *, const window_t *, int8_t *)) {
    const mnn_geom_t *g = &a->g;
    window_t w;
    w.in_w = g->in_w;
    w.C = g->in_c;
    const uint32_t px_work = mnn_sat_mul(w.C, mnn_sat_mul(g->k_h, g->k_w)), seg = mnn_segment(px_work);
    int8_t *y = a->output;
    for (uint32_t b = 0; b < g->batches; b++) {
        w.xb = a->input + b * g->in_h * g->in_w * w.C;
        for (uint32_t oy = 0; oy < g->out_h; oy++) {
            clip((int32_t)(oy * g->stride_h) - g->pad_top, g->k_h, g->in_h, &w.y0, &w.y1);
            for (uint32_t ox0 = 0, ox1; ox0 < g->out_w; ox0 = ox1) {
                ox1 = g->out_w - ox0 > seg ? ox0 + seg : g->out_w;
                mnn_work(mnn_sat_mul(px_work, ox1 - ox0));
                for (uint32_t ox = ox0; ox < ox1; ox++, y += w.C) {
                    clip((int32_t)(ox * g->stride_w) - g->pad_left, g->k_w, g->in_w, &w.x0, &w.x1);
                    window(a, &w, y);
                }
            }
        }
    }
}

void mnn_max_pool_s8(const mnn_pool_args_t *a) {
    MNN_COUNT_VARIANT(MAX_POOL);
    pool(a, max_window);
}

void mnn_avg_pool_s8(const mnn_pool_args_t *a) {
    MNN_COUNT_VARIANT(AVG_POOL);
    pool(a, avg_window);
}
