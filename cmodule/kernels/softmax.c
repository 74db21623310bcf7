// Softmax (int8 -> int8), TFLite's reference integer algorithm: exponentials
// and the reciprocal of their sum in gemmlowp-style fixed point.
#include "mnn_kernels.h"
#include "mnn_fixedpoint.h"

#define SCALED_DIFF_INT_BITS 5      // the input differences are Q5.26
#define ACCUM_INT_BITS 12           // the sum of exponentials is Q12.19

// x * 2^exponent, saturating (exponent > 0) or rounding (exponent < 0).
static int32_t mul_pot(int32_t x, int exponent) {
    if (exponent <= 0) {
        return mnn_rdivpot(x, -exponent);
    }
    int32_t threshold = (int32_t)(((uint32_t)1 << (31 - exponent)) - 1);
    if (x > threshold) {
        return INT32_MAX;
    }
    if (x < -threshold) {
        return INT32_MIN;
    }
    return (int32_t)((uint32_t)x << exponent);
}

// exp(a) for a in [-1/4, 0), a and the result in Q0.31.
static int32_t exp_quarter(int32_t a) {
    const int32_t exp_minus_one_eighth = 1895147668;
    const int32_t one_third = 715827883;
    int32_t x = a + (1 << 28);       // a + 1/8
    int32_t x2 = mnn_srdhm(x, x);
    int32_t x3 = mnn_srdhm(x2, x);
    int32_t x4 = mnn_srdhm(x2, x2);
    int32_t x4_over_4 = mul_pot(x4, -2);
    int32_t poly = mul_pot(mnn_srdhm(x4_over_4 + x3, one_third) + x2, -1);
    return exp_minus_one_eighth + mnn_srdhm(exp_minus_one_eighth, x + poly);
}

// exp(a) for a <= 0; a in Q5.26, the result in Q0.31.
static int32_t exp_negative(int32_t a) {
    const int frac_bits = 31 - SCALED_DIFF_INT_BITS;
    const int32_t quarter = 1 << (frac_bits - 2);
    int32_t a_mod_quarter_minus_quarter = (a & (quarter - 1)) - quarter;
    int32_t result = exp_quarter(mul_pot(a_mod_quarter_minus_quarter, SCALED_DIFF_INT_BITS));
    int32_t remainder = a_mod_quarter_minus_quarter - a;
    // exp(-2^k) for k = -2 .. 4, in Q0.31.
    static const int32_t exp_neg_pot[7] = {
        1672461947, 1302514674, 790015084, 290630308, 39332535, 720401, 242,
    };
    for (int k = 0; k < 7; k++) {
        if (remainder & (1 << (frac_bits - 2 + k))) {
            result = mnn_srdhm(result, exp_neg_pot[k]);
        }
    }
    return a == 0 ? INT32_MAX : result;
}

// 1 / (1 + x) for x in [0, 1), Q0.31 in and out (Newton-Raphson, 3 steps).
static int32_t one_over_one_plus_x(int32_t x) {
    int64_t sum = (int64_t)x + INT32_MAX;
    int32_t half_denominator = (int32_t)((sum + (sum >= 0 ? 1 : -1)) / 2);
    const int32_t c48_over_17 = 1515870810;       // Q2.29
    const int32_t c_neg32_over_17 = -1010580540;  // Q2.29
    int32_t r = (int32_t)((uint32_t)c48_over_17 + (uint32_t)mnn_srdhm(half_denominator, c_neg32_over_17));
    const int32_t one_q2 = 1 << 29;
    // Additions wrap as TFLite's raw int32 ones do: a row whose sum wrapped
    // (see mnn_softmax_s8) reaches here with x outside [0, 1).
    for (int i = 0; i < 3; i++) {
        int32_t hd_r = mnn_srdhm(half_denominator, r);
        int32_t one_minus = (int32_t)((uint32_t)one_q2 - (uint32_t)hd_r);
        r = (int32_t)((uint32_t)r + (uint32_t)mul_pot(mnn_srdhm(r, one_minus), 2));
    }
    return mul_pot(r, 1);
}

static int clz32(uint32_t x) {
    if (x == 0) {
        return 32;
    }
    int n = 0;
    while (!(x & 0x80000000u)) {
        x <<= 1;
        n++;
    }
    return n;
}

void mnn_softmax_s8(const mnn_softmax_args_t *a) {
    MNN_COUNT_VARIANT(SOFTMAX);
    const uint32_t n = a->row_size;
    for (uint32_t r = 0; r < a->rows; r++) {
        const int8_t *x = a->input + r * n;
        int8_t *y = a->output + r * n;
        int32_t max = -128;
        for (uint32_t i = 0; i < n; i++) {
            max = x[i] > max ? x[i] : max;
        }
        // The sum of exponentials in Q12.19 wraps like TFLite's int32 sum
        // (rows of 4,096 or more equal maxima pass 2^31) but without
        // undefined behaviour; every later step takes it as TFLite does.
        uint32_t sum = 0;
        for (uint32_t i = 0; i < n; i++) {
            int32_t diff = x[i] - max;
            if (diff >= a->diff_min) {
                int32_t scaled = mnn_srdhm((int32_t)((uint32_t)diff << a->input_left_shift), a->input_mult);
                sum += (uint32_t)mnn_rdivpot(exp_negative(scaled), ACCUM_INT_BITS);
            }
        }
        int headroom_plus_one = clz32(sum);
        int num_bits_over_unit = ACCUM_INT_BITS - headroom_plus_one;
        uint32_t shifted_sum = headroom_plus_one < 32 ? sum << headroom_plus_one : 0;
        int32_t shifted_sum_minus_one = (int32_t)(shifted_sum - ((uint32_t)1 << 31));
        int32_t recip = one_over_one_plus_x(shifted_sum_minus_one);
        for (uint32_t i = 0; i < n; i++) {
            int32_t diff = x[i] - max;
            int32_t out = -128;
            if (diff >= a->diff_min) {
                int32_t scaled = mnn_srdhm((int32_t)((uint32_t)diff << a->input_left_shift), a->input_mult);
                int32_t e = exp_negative(scaled);
                // For rows of hundreds of near-equal values the exponent
                // passes 31 (TFLite Micro stops at an assertion there); the
                // non-negative quotient is then 0.
                int exponent = num_bits_over_unit + 31 - 8;
                out = (exponent > 31 ? 0 : mnn_rdivpot(mnn_srdhm(recip, e), exponent)) - 128;
                out = out > 127 ? 127 : (out < -128 ? -128 : out);
            }
            y[i] = (int8_t)out;
        }
    }
}
