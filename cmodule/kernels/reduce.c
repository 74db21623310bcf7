// MEAN over the middle axis of [outer, reduce, inner], as TFLite Micro
// computes it: an integer mean when input and output share quantization,
// else TFLite's float32 rescale (kept free of fused multiply-adds).
#include <math.h>

#include "mnn_kernels.h"

void mnn_mean_s8(const mnn_mean_args_t *a) {
    for (uint32_t o = 0; o < a->outer; o++) {
        const int8_t *x = a->input + o * a->reduce * a->inner;
        int8_t *y = a->output + o * a->inner;
        for (uint32_t i = 0; i < a->inner; i++) {
            a->scratch[i] = 0;
        }
        for (uint32_t r = 0; r < a->reduce; r++) {
            for (uint32_t i = 0; i < a->inner; i++) {
                a->scratch[i] += x[r * a->inner + i];
            }
        }
        for (uint32_t i = 0; i < a->inner; i++) {
            int32_t v;
            if (a->exact) {
                v = a->scratch[i] / (int32_t)a->reduce;
            } else {
                volatile float mean = (float)a->scratch[i] / (float)a->reduce;
                volatile float scaled = mean * a->scale;
                float r = roundf(scaled + a->bias) + (float)a->output_offset;
                r = r > 127.0f ? 127.0f : (r < -128.0f ? -128.0f : r);
                v = (int32_t)r;
            }
            y[i] = (int8_t)v;
        }
    }
}
