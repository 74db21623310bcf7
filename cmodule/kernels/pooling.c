// Max and average pooling (int8). Only taps inside the input count, as in
// TFLite; the average rounds half away from zero.
#include "mnn_kernels.h"

typedef int32_t (*pool_fn)(const int8_t *x, const mnn_geom_t *g, int32_t iy0, int32_t ix0);

// The taps [*lo, *hi) of a window starting at `start` that fall inside 0..n-1.
static inline void clip(int32_t start, uint32_t k, uint32_t n, int32_t *lo, int32_t *hi) {
    *lo = start < 0 ? 0 : start;
    int32_t end = start + (int32_t)k;
    *hi = end > (int32_t)n ? (int32_t)n : end;
}

static int32_t window_max(const int8_t *x, const mnn_geom_t *g, int32_t iy0, int32_t ix0) {
    int32_t y0, y1, x0, x1, m = -128;
    clip(iy0, g->k_h, g->in_h, &y0, &y1);
    clip(ix0, g->k_w, g->in_w, &x0, &x1);
    for (int32_t iy = y0; iy < y1; iy++) {
        for (int32_t ix = x0; ix < x1; ix++) {
            int32_t v = x[((uint32_t)iy * g->in_w + (uint32_t)ix) * g->in_c];
            m = v > m ? v : m;
        }
    }
    return m;
}

static int32_t window_avg(const int8_t *x, const mnn_geom_t *g, int32_t iy0, int32_t ix0) {
    int32_t y0, y1, x0, x1, sum = 0;
    clip(iy0, g->k_h, g->in_h, &y0, &y1);
    clip(ix0, g->k_w, g->in_w, &x0, &x1);
    for (int32_t iy = y0; iy < y1; iy++) {
        for (int32_t ix = x0; ix < x1; ix++) {
            sum += x[((uint32_t)iy * g->in_w + (uint32_t)ix) * g->in_c];
        }
    }
    int32_t count = (y1 > y0 && x1 > x0) ? (y1 - y0) * (x1 - x0) : 0;
    if (count == 0) {
        return 0;
    }
    return sum > 0 ? (sum + count / 2) / count : (sum - count / 2) / count;
}

static void pool(const mnn_pool_args_t *a, pool_fn fn) {
    const mnn_geom_t *g = &a->g;
    int8_t *y = a->output;
    for (uint32_t b = 0; b < g->batches; b++) {
        const int8_t *xb = a->input + b * g->in_h * g->in_w * g->in_c;
        for (uint32_t oy = 0; oy < g->out_h; oy++) {
            const int32_t iy0 = (int32_t)(oy * g->stride_h) - g->pad_top;
            for (uint32_t ox = 0; ox < g->out_w; ox++) {
                const int32_t ix0 = (int32_t)(ox * g->stride_w) - g->pad_left;
                for (uint32_t c = 0; c < g->in_c; c++) {
                    int32_t v = fn(xb + c, g, iy0, ix0);
                    v = v < a->act_min ? a->act_min : v;
                    *y++ = (int8_t)(v > a->act_max ? a->act_max : v);
                }
            }
        }
    }
}

void mnn_max_pool_s8(const mnn_pool_args_t *a) {
    pool(a, window_max);
}

void mnn_avg_pool_s8(const mnn_pool_args_t *a) {
    pool(a, window_avg);
}
