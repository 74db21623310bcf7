// Data movement without arithmetic (int8): the strided copy behind slices,
// splits, transposes and depth/space rearrangements, gather with constant
// indices, and mirror padding. Portable C only: each output byte is one load
// and one store, and the contiguous runs go through memcpy, which the C
// library already does word-wise; a DSP path has nothing to compute.
#include <stddef.h>
#include <string.h>

#include "mnn_kernels.h"

// Output element (i0..i5) = input[start + sum(i_d * strides[d])]. The loader
// proved every corner of that box inside the input, so every point is too;
// the walk below only visits points of the box (an odometer over axes 0..4).
void mnn_strided_copy_s8(const mnn_copy_args_t *a) {
    const uint32_t *d = a->dims;
    const int32_t *s = a->strides;
    const uint32_t run = d[MNN_COPY_DIMS - 1];
    const int32_t step = s[MNN_COPY_DIMS - 1];
    const uint32_t rows = d[0] * d[1] * d[2] * d[3] * d[4];    // < 2^32 (the loader)
    uint32_t idx[MNN_COPY_DIMS - 1] = { 0 };
    ptrdiff_t at = (ptrdiff_t)a->start;
    int8_t *y = a->output;
    mnn_pace_t pace;
    mnn_pace_init(&pace, run);
    if (step == 1) {
        MNN_COUNT_VARIANT(COPY_RUNS);
    } else {
        MNN_COUNT_VARIANT(COPY_ELEMS);
    }
    for (uint32_t r = 0; r < rows; r++) {
        const int8_t *x = a->input + at;
        if (step == 1 && run >= 8) {
            memcpy(y, x, run);
        } else if (step == 1) {
            for (uint32_t j = 0; j < run; j++) {    // a few bytes: cheaper than a call
                y[j] = x[j];
            }
        } else {
            for (uint32_t j = 0; j < run; j++) {
                y[j] = x[(ptrdiff_t)j * step];
            }
        }
        y += run;
        mnn_pace(&pace);
        for (int k = MNN_COPY_DIMS - 2; k >= 0; k--) {
            if (++idx[k] < d[k]) {
                at += s[k];
                break;
            }
            idx[k] = 0;
            at -= (ptrdiff_t)(d[k] - 1) * s[k];
        }
    }
}

// Output [outer, count, inner] = input[o, indices[k], i] of [outer, axis_size, inner].
void mnn_gather_s8(const mnn_gather_args_t *a) {
    MNN_COUNT_VARIANT(GATHER);
    int8_t *y = a->output;
    mnn_pace_t pace;
    mnn_pace_init(&pace, a->inner);
    for (uint32_t o = 0; o < a->outer; o++) {
        const int8_t *x = a->input + (size_t)o * a->axis_size * a->inner;
        for (uint32_t k = 0; k < a->count; k++) {
            memcpy(y, x + (size_t)(uint32_t)a->indices[k] * a->inner, a->inner);
            y += a->inner;
            mnn_pace(&pace);
        }
    }
}

// The input index of output index o along an axis of n values padded by
// `before` (TFLite's GetInputDimension for pads within the limits the loader
// checks: REFLECT (offset 1) below n, SYMMETRIC (offset 0) up to n).
static inline uint32_t mirror(uint32_t o, uint32_t before, uint32_t n, uint32_t offset) {
    if (o < before) {
        return before - o - 1 + offset;
    }
    o -= before;
    if (o >= n) {
        return 2 * n - 1 - offset - o;
    }
    return o;
}

void mnn_mirror_pad_s8(const mnn_mirror_pad_args_t *a) {
    MNN_COUNT_VARIANT(MIRROR_PAD);
    const uint32_t *n = a->in_dims, *b = a->before, off = a->offset;
    uint32_t od[3];
    for (int k = 0; k < 3; k++) {
        od[k] = b[k] + n[k] + a->after[k];
    }
    int8_t *y = a->output;
    mnn_pace_t pace;
    mnn_pace_init(&pace, b[3] + n[3] + a->after[3]);
    for (uint32_t o0 = 0; o0 < od[0]; o0++) {
        uint32_t i0 = mirror(o0, b[0], n[0], off);
        for (uint32_t o1 = 0; o1 < od[1]; o1++) {
            uint32_t i1 = mirror(o1, b[1], n[1], off);
            for (uint32_t o2 = 0; o2 < od[2]; o2++) {
                uint32_t i2 = mirror(o2, b[2], n[2], off);
                const int8_t *row = a->input + (((size_t)i0 * n[1] + i1) * n[2] + i2) * n[3];
                for (uint32_t j = 0; j < b[3]; j++) {
                    *y++ = row[b[3] - j - 1 + off];
                }
                memcpy(y, row, n[3]);
                y += n[3];
                for (uint32_t j = 0; j < a->after[3]; j++) {
                    *y++ = row[n[3] - 1 - off - j];
                }
                mnn_pace(&pace);
            }
        }
    }
}
