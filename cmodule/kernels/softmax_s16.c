// int16 softmax over the last axis (TFLite Micro's SoftmaxInt16): the
// differences from the row's largest value, rescaled to [-65535, 0] for
// [-10, 0], go through an exp table; their sum, normalised, through a
// 1 / (1 + x) table; each exp value times that reciprocal is the output
// (scale 1/32768). The host computes both tables as TFLite Micro's Prepare
// does; the loader keeps every exp value in [0, 32767] and the two last ones
// at least 1, so a row's sum lies in [1, 2^31) whatever else the blob holds.
#include "mnn_kernels.h"
#include "mnn_fixedpoint.h"

static inline int32_t tab16(const uint8_t *t, uint32_t i) {
    return (int16_t)(uint16_t)(t[2 * i] | (t[2 * i + 1] << 8));
}

// TFLite's int16 table lookup: 512 steps of 128 inputs, linear interpolation
// between entry i and i + 1 (the 513th entry only gives the last slope).
static inline int32_t lookup16(const uint8_t *t, int32_t v) {
    const uint32_t index = (uint32_t)(256 + (v >> 7));
    const int32_t offset = v & 0x7f;
    const int32_t base = tab16(t, index);
    const int32_t slope = (int16_t)(tab16(t, index + 1) - base);
    return (int16_t)(base + ((slope * offset + 64) >> 7));
}

static inline int32_t sat16(int32_t v) {
    return v < -32768 ? -32768 : (v > 32767 ? 32767 : v);
}

void mnn_softmax_s16(const mnn_softmax16_args_t *a) {
    const uint32_t n = a->row_size;
    const mnn_rq_t rq = mnn_rq_prepare(a->input_mult, a->input_shift);
    mnn_pace_t pace;
    mnn_pace_init(&pace, 3 * n);
    for (uint32_t r = 0; r < a->rows; r++) {
        const int16_t *x = a->input + (size_t)r * n;
        int16_t *y = a->output + (size_t)r * n;
        int32_t max = -32768;
        for (uint32_t i = 0; i < n; i++) {
            max = x[i] > max ? x[i] : max;
        }
        // the exp values, kept in the output until the reciprocal is known
        int32_t sum = 0;
        for (uint32_t i = 0; i < n; i++) {
            int32_t e = lookup16(a->exp_table, sat16(mnn_rq_apply(&rq, x[i] - max) + 32767));
            y[i] = (int16_t)e;
            sum += e;
        }
        const uint32_t hp1 = (uint32_t)__builtin_clz((uint32_t)sum);     // sum >= 1: 1..31
        const int32_t shifted = (int32_t)((((int64_t)sum << (hp1 - 1)) + (1 << 13)) >> 14);
        const int64_t recip = lookup16(a->recip_table, sat16(shifted - ((1 << 15) + (1 << 16))));
        const uint32_t rs = 31 - hp1;
        const int64_t round = rs ? (int64_t)1 << (rs - 1) : 0;
        for (uint32_t i = 0; i < n; i++) {
            int32_t v = (int32_t)(((int64_t)y[i] * recip + round) >> rs);
            y[i] = (int16_t)(v < 0 ? 0 : (v > 32767 ? 32767 : v));
        }
        mnn_pace(&pace);
    }
}
