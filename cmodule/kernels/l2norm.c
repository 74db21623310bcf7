// L2 normalisation over the last axis (int8 -> int8, output scale 1/128,
// zero point 0), TFLite Micro's integer algorithm: the sum of squares of the
// offset inputs, its inverse square root as a multiplier and shift found by
// Newton-Raphson in Q3.28 fixed point, and every value requantized with it.
// Portable: the work is one multiply-accumulate and one requantization per
// value, and the inverse square root runs once per row.
#include "mnn_kernels.h"
#include "mnn_fixedpoint.h"

static int clz32(uint32_t x) {
    int n = 0;
    while (!(x & 0x80000000u)) {
        x <<= 1;
        n++;
    }
    return n;
}

// 1 / sqrt(sum) as a Q31 multiplier and a (left) shift, for 2 <= sum < 2^31.
static void inv_sqrt(int32_t sum, int32_t *mult, int32_t *shift) {
    int s = 11;
    while (sum >= (1 << 29)) {
        sum /= 4;
        s++;
    }
    // Bring sum into [2^27, 2^29) by an even shift.
    const int pairs = (clz32((uint32_t)sum) - 1) / 2 - 1;
    s -= pairs;
    sum <<= 2 * pairs;
    const int32_t half_input = mnn_rdivpot(sum >> 1, 1);     // sum / 2 in Q3.28
    const int32_t three_halves = (1 << 28) + (1 << 27);     // 1.5 in Q3.28
    int32_t x = 1 << 28;                                    // 1.0 in Q3.28
    // x^3 is Q9.22 and the products Q6.25: back to Q3.28. TFLite's shifts
    // saturate and its subtraction may wrap, but for no sum in [2^27, 2^29)
    // does either happen (a one-off exhaustive run: x stays in [1, 2) of
    // Q3.28 at every step), so plain shifts compute the same.
    for (int i = 0; i < 5; i++) {
        int32_t x3 = (int32_t)((uint32_t)mnn_srdhm(mnn_srdhm(x, x), x) << 6);
        x = (int32_t)((uint32_t)(mnn_srdhm(three_halves, x) - mnn_srdhm(half_input, x3)) << 3);
    }
    x = mnn_srdhm(x, 1518500250);                           // times sqrt(2) / 2
    if (s < 0) {
        x = (int32_t)((uint32_t)x << -s);
        s = 0;
    }
    *mult = x;
    *shift = -s;
}

void mnn_l2norm_s8(const mnn_l2norm_args_t *a) {
    MNN_COUNT_VARIANT(L2NORM);
    const uint32_t depth = a->depth;
    const int32_t off = a->input_offset;
    mnn_pace_t pace;
    mnn_pace_init(&pace, 2 * depth);
    for (uint32_t r = 0; r < a->rows; r++) {
        const int8_t *x = a->input + r * depth;
        int8_t *y = a->output + r * depth;
        // |x + off| <= 256 and depth <= 2^14 (the loader): no overflow.
        int32_t sum = 0;
        for (uint32_t i = 0; i < depth; i++) {
            int32_t v = x[i] + off;
            sum += v * v;
        }
        int32_t mult = INT32_MAX, shift = 0;
        if (sum > 1) {
            inv_sqrt(sum, &mult, &shift);
        }
        // The output scale 1/128 folds into the shift: shift + 7 in [-5, 7].
        const mnn_rq_t q = mnn_rq_prepare(mult, shift + 7);
        for (uint32_t i = 0; i < depth; i++) {
            y[i] = (int8_t)mnn_sat8(mnn_rq_apply(&q, x[i] + off));
        }
        mnn_pace(&pace);
    }
}
