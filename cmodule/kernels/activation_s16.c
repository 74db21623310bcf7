// int16 TANH and LOGISTIC (TFLite Micro's int16 kernels): the input scaled to
// the table's steps, y = (x * input_mult + rounding) >> input_shift, then its
// magnitude interpolated in the 256-entry uint16 sigmoid table (tanh(x) is
// 2 * sigmoid(2x) - 1, so TANH reads the table at twice LOGISTIC's step) and
// the sign folded back in. input_mult <= 32767 and input_shift <= 31 (the
// loader), so x * input_mult plus the rounding fits an int32.
#include "mnn_kernels.h"

static inline uint32_t tabu16(const uint8_t *t, uint32_t i) {
    return (uint32_t)t[2 * i] | ((uint32_t)t[2 * i + 1] << 8);
}

static inline int32_t scaled(const mnn_sigmoid16_args_t *a, int32_t x, int32_t round) {
    return (x * a->input_mult + round) >> a->input_shift;
}

void mnn_tanh_s16(const mnn_sigmoid16_args_t *a) {
    const int32_t round = a->input_shift > 0 ? (int32_t)(1u << (a->input_shift - 1)) : 0;
    for (uint32_t i = 0; i < a->count; i++) {
        const int32_t v = scaled(a, a->input[i], round);
        const uint32_t mag = v < 0 ? (uint32_t)-v : (uint32_t)v;
        const uint32_t uh = mag >> 8;
        int32_t r;
        if (uh >= 255) {
            r = 0xffff << 8;
        } else {
            const uint32_t ua = tabu16(a->table, uh), ub = tabu16(a->table, uh + 1);
            r = (int32_t)((ua << 8) + (mag & 0xff) * (ub - ua));
        }
        r = v >= 0 ? r - (1 << 23) + (1 << 7) : -r + (1 << 23) + (1 << 7) - 1;
        a->output[i] = (int16_t)(r >> 8);
    }
}

void mnn_logistic_s16(const mnn_sigmoid16_args_t *a) {
    const int32_t round = a->input_shift > 0 ? (int32_t)(1u << (a->input_shift - 1)) : 0;
    for (uint32_t i = 0; i < a->count; i++) {
        const int32_t v = scaled(a, a->input[i], round);
        const uint32_t mag = v < 0 ? (uint32_t)-v : (uint32_t)v;
        const uint32_t uh = mag >> 9;
        uint32_t r;
        if (uh >= 255) {
            r = 0x7fffu << 10;
        } else {
            const uint32_t ua = tabu16(a->table, uh), ub = tabu16(a->table, uh + 1);
            r = (ua << 9) + (mag & 0x1ff) * (ub - ua);
        }
        r = v >= 0 ? r + (1u << 9) : (1u << 25) - r + (1u << 9) - 1;
        a->output[i] = (int16_t)(r >> 10);
    }
}
