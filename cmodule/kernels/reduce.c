// MEAN over the middle axis of [outer, reduce, inner], in each of the ways
// TFLite Micro computes an int8 mean (the host picks the mode).
#include "mnn_format.h"
#include "mnn_kernels.h"
#include "mnn_fixedpoint.h"

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
        const int32_t n = (int32_t)a->reduce;
        for (uint32_t i = 0; i < a->inner; i++) {
            int32_t v;
            if (a->mode == MNN_MEAN_TRUNC) {
                v = a->scratch[i] / n;
            } else {
                int32_t acc = mnn_requantize(a->scratch[i] + a->input_offset * n, a->mult, a->shift);
                acc = mnn_wadd(acc, a->output_offset);
                v = acc < -128 ? -128 : (acc > 127 ? 127 : acc);
            }
            y[i] = (int8_t)v;
        }
    }
}
