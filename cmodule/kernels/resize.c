// Resizing, int8 NHWC: nearest neighbour and bilinear, as TensorFlow Lite
// Micro computes them. The host works out every index and weight (TFLite
// Micro's float index arithmetic for nearest, its 10-bit fixed-point
// positions for bilinear) into per-row and per-column tables, so the kernels
// only gather. No DSP path: nearest is a copy, and bilinear's four products
// per value have weights shared by a whole pixel (one multiply each), which
// SMLAD's pairs do not shorten.
#include <string.h>

#include "mnn_kernels.h"
#include "mnn_fixedpoint.h"

void mnn_resize_nearest_s8(const mnn_resize_args_t *a) {
    MNN_COUNT_VARIANT(RESIZE_NEAREST);
    const uint32_t c = a->channels;
    const size_t row = (size_t)a->in_w * c;
    int8_t *y = a->output;
    for (uint32_t b = 0; b < a->batches; b++) {
        const int8_t *img = a->input + (size_t)b * a->in_h * row;
        for (uint32_t oy = 0; oy < a->out_h; oy++) {
            const int32_t iy = mnn_ld32(a->y_table, oy);
            const int8_t *src = img + (size_t)iy * row;
            if (oy > 0 && iy == mnn_ld32(a->y_table, oy - 1)) {
                // upsampling: the row just written again
                memcpy(y, y - (size_t)a->out_w * c, (size_t)a->out_w * c);
            } else if (c == 1) {
                for (uint32_t ox = 0; ox < a->out_w; ox++) {
                    y[ox] = src[mnn_ld32(a->x_table, ox)];
                }
            } else {
                for (uint32_t ox = 0; ox < a->out_w; ox++) {
                    memcpy(y + (size_t)ox * c, src + (size_t)mnn_ld32(a->x_table, ox) * c, c);
                }
            }
            y += (size_t)a->out_w * c;
            mnn_work(a->out_w * c);
        }
    }
}

// TFLite Micro's rounding of a 20-bit fixed-point value: half away from zero.
static inline int8_t round20(int32_t s) {
    int32_t r = s > 0 ? (1 << 19) : -(1 << 19);
    return (int8_t)((s + r) / (1 << 20));
}

void mnn_resize_bilinear_s8(const mnn_resize_args_t *a) {
    MNN_COUNT_VARIANT(RESIZE_BILINEAR);
    const uint32_t c = a->channels;
    const size_t row = (size_t)a->in_w * c;
    int8_t *y = a->output;
    for (uint32_t b = 0; b < a->batches; b++) {
        const int8_t *img = a->input + (size_t)b * a->in_h * row;
        for (uint32_t oy = 0; oy < a->out_h; oy++) {
            const int8_t *r0 = img + (size_t)mnn_ld32(a->y_table, 3 * oy) * row;
            const int8_t *r1 = img + (size_t)mnn_ld32(a->y_table, 3 * oy + 1) * row;
            const int32_t dy = mnn_ld32(a->y_table, 3 * oy + 2);
            const int32_t ey = 1024 - dy;
            for (uint32_t ox = 0; ox < a->out_w; ox++) {
                const size_t x0 = (size_t)mnn_ld32(a->x_table, 3 * ox) * c;
                const size_t x1 = (size_t)mnn_ld32(a->x_table, 3 * ox + 1) * c;
                const int32_t dx = mnn_ld32(a->x_table, 3 * ox + 2);
                const int32_t ex = 1024 - dx;
                // |dy|, |dx| <= 1024 and |1024 - d| <= 1536 (the loader), so the sum
                // of the four products stays below 2^29 in magnitude
                const int32_t w00 = ey * ex, w10 = dy * ex, w01 = ey * dx, w11 = dy * dx;
                for (uint32_t k = 0; k < c; k++) {
                    int32_t s = r0[x0 + k] * w00 + r1[x0 + k] * w10 + r0[x1 + k] * w01 + r1[x1 + k] * w11;
                    y[k] = round20(s);
                }
                y += c;
            }
            mnn_work(mnn_sat_mul(a->out_w * c, 4));
        }
    }
}
