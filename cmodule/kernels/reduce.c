// MEAN over the middle axis of [outer, reduce, inner], in each of the ways
// TFLite Micro computes an int8 mean (the host picks the mode).
#include "mnn_format.h"
#include "mnn_kernels.h"
#include "mnn_fixedpoint.h"
#include "mnn_simd.h"

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

// Arg max / arg min over the middle axis of [outer, reduce, inner]: the first
// index of the extreme value (TFLite Micro's ArgMinMax replaces its candidate
// only on a strictly greater, or smaller, value). The index is written as
// int32 or int64, as the output tensor says. A comparison per input value;
// the strided walk along the reduced axis keeps one candidate in registers
// and needs no scratch (no DSP path: SIMD compares do not pay for the one
// index a column yields).
void mnn_arg_minmax_s8(const mnn_reduce_args_t *a) {
    MNN_COUNT_VARIANT(ARG_MINMAX);
    const uint32_t n = a->reduce, inner = a->inner;
    const int sign = a->is_min ? -1 : 1;        // arg min is arg max of -x
    mnn_pace_t pace;
    mnn_pace_init(&pace, mnn_sat_mul(n, inner));
    for (uint32_t o = 0; o < a->outer; o++) {
        const int8_t *x = a->input + o * n * inner;
        for (uint32_t i = 0; i < inner; i++) {
            int32_t best = sign * x[i];
            uint32_t at = 0;
            for (uint32_t r = 1; r < n; r++) {
                int32_t v = sign * x[r * inner + i];
                if (v > best) {
                    best = v;
                    at = r;
                }
            }
            uint32_t k = o * inner + i;
            if (a->wide) {
                ((int64_t *)a->output)[k] = (int64_t)at;
            } else {
                ((int32_t *)a->output)[k] = (int32_t)at;
            }
        }
        mnn_pace(&pace);
    }
}

// int8 maximum / minimum over the middle axis of [outer, reduce, inner]
// (TFLite Micro's REDUCE_MAX and REDUCE_MIN with one quantization in and
// out): the output row holds the running extreme, so the input is read in
// order and no scratch is needed. With the DSP extension four lanes at a time
// (SSUB8 + SEL; min(a, b) = a ^ b ^ max(a, b)): global max pooling of a
// feature map is this op over its height and width.
void mnn_reduce_minmax_s8(const mnn_reduce_args_t *a) {
    MNN_COUNT_VARIANT(REDUCE_MINMAX);
    const uint32_t n = a->reduce, inner = a->inner;
    mnn_pace_t pace;
    mnn_pace_init(&pace, mnn_sat_mul(n, inner));
    for (uint32_t o = 0; o < a->outer; o++) {
        const int8_t *x = a->input + o * n * inner;
        int8_t *y = (int8_t *)a->output + o * inner;
        uint32_t i = 0;
        #if MNN_DSP
        for (; i + 4 <= inner; i += 4) {
            uint32_t m = mnn_rd32(x + i);
            for (uint32_t r = 1; r < n; r++) {
                uint32_t v = mnn_rd32(x + r * inner + i), hi = mnn_smax8(m, v);
                m = a->is_min ? m ^ v ^ hi : hi;
            }
            mnn_wr32(y + i, m);
        }
        #endif
        for (uint32_t k = i; k < inner; k++) {
            y[k] = x[k];
        }
        for (uint32_t r = 1; r < n; r++) {
            const int8_t *row = x + r * inner;
            if (a->is_min) {
                for (uint32_t k = i; k < inner; k++) {
                    y[k] = row[k] < y[k] ? row[k] : y[k];
                }
            } else {
                for (uint32_t k = i; k < inner; k++) {
                    y[k] = row[k] > y[k] ? row[k] : y[k];
                }
            }
        }
        mnn_pace(&pace);
    }
}
