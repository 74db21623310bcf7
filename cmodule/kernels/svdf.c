// SVDF, TFLite Micro's integer kernel (int8 input and output, int8 feature
// weights, int16 time weights and state):
//   1. every state row (one per batch and filter, memory values) moves left
//      by one value;
//   2. each filter's feature sum_c wf[f][c] * (x[b][c] + input_offset),
//      requantized by feature_mult/shift and clamped to int16 (the state's
//      zero point is 0), becomes the row's last value;
//   3. output[b][u] = bias[u] + sum over the unit's rank filters f of
//      sum_j wt[f][j] * state[b][f][j], requantized by time_mult/shift, plus
//      output_offset, clamped to int8. TFLite Micro applies no fused
//      activation on this path, so neither does this kernel.
// The per-filter sums of step 3 go straight into the unit's sum (TFLite Micro
// keeps them in scratch first; the wrapping int32 sums are the same), so the
// kernel needs no scratch.
//
// On cores with the DSP extension both dot products take two MACs per SMLAD:
// the feature sum widens four input values at a time with the offset added
// (SXTAB16) and four weights (SXTB16), the time sum multiplies
// int16 pairs as they are stored. The state moves left a word at a time (not
// memmove: MicroPython's bare-metal memmove copies bytes, a third of the op).
#include <string.h>

#include "mnn_kernels.h"
#include "mnn_fixedpoint.h"
#include "mnn_simd.h"

// Element i of an int16 array of the blob, which may sit at any address.
static inline int32_t ld16(const int16_t *p, uint32_t i) {
    int16_t v;
    memcpy(&v, (const uint8_t *)p + 2 * i, sizeof(v));
    return v;
}

// Sums wrap (two's complement) instead of overflowing, as everywhere in the kernels.
static uint32_t feature_dot(const int8_t *w, const int8_t *x, uint32_t n, int32_t offset) {
    uint32_t acc = 0;
    const int8_t *end = w + n;
    #if MNN_DSP
    const uint32_t off2 = ((uint32_t)offset & 0xffffu) * 0x00010001u;
    int32_t s = 0;
    for (const int8_t *end4 = w + (n & ~3u); w < end4; w += 4, x += 4) {
        const uint32_t xv = mnn_rd32(x), wv = mnn_rd32(w);
        s = mnn_smlad(mnn_sxtab16(off2, xv), mnn_sxtb16(wv), s);
        s = mnn_smlad(mnn_sxtab16_ror8(off2, xv), mnn_sxtb16_ror8(wv), s);
    }
    acc = (uint32_t)s;
    #endif
    while (w < end) {
        acc += (uint32_t)(*w++ * (*x++ + offset));
    }
    return acc;
}

static uint32_t time_dot(const int16_t *w, const int16_t *s, uint32_t n) {
    uint32_t acc = 0;
    uint32_t j = 0;
    #if MNN_DSP
    int32_t a = 0;
    for (const int16_t *end2 = w + (n & ~1u); w < end2; w += 2, s += 2) {
        a = mnn_smlad(mnn_rd32(w), mnn_rd32(s), a);
    }
    acc = (uint32_t)a;
    j = n & ~1u;
    w -= j;
    s -= j;
    #endif
    for (; j < n; j++) {
        acc += (uint32_t)(ld16(w, j) * s[j]);
    }
    return acc;
}

// state[i] = state[i + 1] for i < n - 1: the whole state one value to the left
// (each row's first value goes, the next row's first value lands in the row's
// last place, which the new feature value then takes). state is 4-byte
// aligned (the loader places state tensors at multiples of 8); the source
// words are read unaligned where the core allows it.
static void shift_left(int16_t *state, uint32_t n) {
    uint32_t i = 0;
    for (; i + 5 <= n; i += 4) {
        const uint32_t a = mnn_rd32(state + i + 1), b = mnn_rd32(state + i + 3);
        mnn_wr32(state + i, a);
        mnn_wr32(state + i + 2, b);
    }
    for (; i + 1 < n; i++) {
        state[i] = state[i + 1];
    }
}

void mnn_svdf_s8(const mnn_svdf_args_t *a) {
    #if MNN_DSP
    MNN_COUNT_VARIANT(SVDF_DSP);
    #else
    MNN_COUNT_VARIANT(SVDF);
    #endif
    const uint32_t nf = a->num_filters, mem = a->memory, in = a->input_size, rank = a->rank;
    const uint32_t units = nf / rank;
    const uint32_t total = a->batches * nf * mem;
    // 1. every row one value to the left (the last value of a row is written below)
    shift_left(a->state, total);
    const mnn_rq_t q1 = mnn_rq_prepare(a->feature_mult, a->feature_shift);
    const mnn_rq_t q2 = mnn_rq_prepare(a->time_mult, a->time_shift);
    for (uint32_t b = 0; b < a->batches; b++) {
        const int8_t *x = a->input + b * in;
        int16_t *rows = a->state + b * nf * mem;
        // 2. the new feature values
        for (uint32_t f = 0; f < nf; f++) {
            int32_t v = mnn_rq_apply(&q1, (int32_t)feature_dot(a->weights_feature + f * in, x, in, a->input_offset));
            v = v < -32768 ? -32768 : v;
            rows[f * mem + mem - 1] = (int16_t)(v > 32767 ? 32767 : v);
            mnn_work(in);
        }
        // 3. the outputs
        for (uint32_t u = 0; u < units; u++) {
            uint32_t sum = a->bias ? (uint32_t)mnn_ld32(a->bias, u) : 0;
            for (uint32_t r = 0; r < rank; r++) {
                const uint32_t f = u * rank + r;
                sum += time_dot(a->weights_time + f * mem, rows + f * mem, mem);
            }
            mnn_work(rank * mem);
            a->output[b * units + u] = mnn_clamp8(mnn_wadd(mnn_rq_apply(&q2, (int32_t)sum), a->output_offset),
                -128, 127);
        }
    }
}
