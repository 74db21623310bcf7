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

// out_bits 8: int8 output (zero point -128); 16: int16 output (zero point
// -32768, SOFTMAX_S8_S16), a->output then pointing at int16 values.
static void softmax_rows(const mnn_softmax_args_t *a, int out_bits) {
    const uint32_t n = a->row_size;
    const int32_t out_min = out_bits == 16 ? -32768 : -128, out_max = -out_min - 1;
    for (uint32_t r = 0; r < a->rows; r++) {
        const int8_t *x = a->input + r * n;
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
            int32_t out = out_min;
            if (diff >= a->diff_min) {
                int32_t scaled = mnn_srdhm((int32_t)((uint32_t)diff << a->input_left_shift), a->input_mult);
                int32_t e = exp_negative(scaled);
                // For rows of hundreds of near-equal values the exponent
                // passes 31 (TFLite Micro stops at an assertion there); the
                // non-negative quotient is then 0.
                int exponent = num_bits_over_unit + 31 - out_bits;
                out = (exponent > 31 ? 0 : mnn_rdivpot(mnn_srdhm(recip, e), exponent)) + out_min;
                out = out > out_max ? out_max : (out < out_min ? out_min : out);
            }
            if (out_bits == 16) {
                ((int16_t *)(void *)a->output)[r * n + i] = (int16_t)out;
            } else {
                a->output[r * n + i] = (int8_t)out;
            }
        }
    }
}

void mnn_softmax_s8(const mnn_softmax_args_t *a) {
    MNN_COUNT_VARIANT(SOFTMAX);
    softmax_rows(a, 8);
}

// SOFTMAX_S8_S16: int8 in, int16 out (a->output points at int16 values).
void mnn_softmax_s8_s16(const mnn_softmax_args_t *a) {
    MNN_COUNT_VARIANT(SOFTMAX_S8_S16);
    softmax_rows(a, 16);
}

// --- log-softmax -------------------------------------------------------------

static int32_t sat_add(int32_t a, int32_t b) {
    int64_t s = (int64_t)a + b;
    return s > INT32_MAX ? INT32_MAX : (s < INT32_MIN ? INT32_MIN : (int32_t)s);
}

static int32_t wrap_add(int32_t a, int32_t b) {
    return (int32_t)((uint32_t)a + (uint32_t)b);
}

static int32_t wrap_sub(int32_t a, int32_t b) {
    return (int32_t)((uint32_t)a - (uint32_t)b);
}

// ln(z) for z >= 1, z in Q12.19, the result in Q5.26: TFLite's
// log_x_for_x_greater_than_or_equal_to_1 (a rational approximation on the
// mantissa, reduced to [sqrt(1/2), sqrt(2)) around 2^(k/2), accumulated in
// Q6.25 and rescaled).
static int32_t log_q12(int32_t z) {
    const int32_t log_2 = 1488522236, sqrt_sqrt_half = 1805811301, sqrt_half = 1518500250;
    const int32_t alpha_n = 117049297, alpha_d = 127690142, alpha_i = 1057819769, alpha_f = 638450708;
    const int32_t quarter_q6 = 1 << 23;                     // 1/4 in Q6.25
    const int in_bits = ACCUM_INT_BITS, acc_frac = 31 - 6;
    // z >= 2^19 (the row maximum contributes 1): both counts stay below 13.
    const int za = clz32((uint32_t)z);
    int32_t r_a = mul_pot(mnn_srdhm(mul_pot(z, za - 1), sqrt_half), 1);
    int32_t adj_a = sat_add(mul_pot(in_bits - za, acc_frac), quarter_q6);
    const int zb = clz32((uint32_t)mnn_srdhm(z, sqrt_half)) - 1;
    int32_t r_b = mul_pot(z, zb);
    int32_t adj_b = sat_add(mul_pot(in_bits - zb, acc_frac), -quarter_q6);
    const int32_t r = r_a < r_b ? r_a : r_b;
    const int32_t adj = adj_a > adj_b ? adj_a : adj_b;
    int64_t hs = (int64_t)r + sqrt_sqrt_half;
    const int32_t p = (int32_t)((hs + (hs >= 0 ? 1 : -1)) / 2);
    int32_t q = wrap_sub(r, sqrt_sqrt_half);
    q = wrap_add(q, q);
    const int32_t sq = mnn_srdhm(q, q);
    const int32_t num = wrap_add(mnn_srdhm(q, r), mnn_srdhm(mnn_srdhm(q, sq), alpha_n));
    const int32_t den = wrap_add(mnn_srdhm(p, wrap_add(wrap_add(alpha_i, q), mnn_srdhm(alpha_d, sq))),
        mnn_srdhm(alpha_f, q));
    const int32_t recip = one_over_one_plus_x(den);
    const int32_t sum = wrap_add(mnn_srdhm(adj, log_2), mnn_srdhm(mnn_rdivpot(num, 6), recip));
    return mul_pot(sum, 1);
}

void mnn_log_softmax_s8(const mnn_log_softmax_args_t *a) {
    MNN_COUNT_VARIANT(LOG_SOFTMAX);
    const uint32_t n = a->row_size;
    mnn_pace_t pace;
    mnn_pace_init(&pace, 3 * n);
    for (uint32_t r = 0; r < a->rows; r++) {
        const int8_t *x = a->input + r * n;
        int8_t *y = a->output + r * n;
        int32_t max = -128;
        for (uint32_t i = 0; i < n; i++) {
            max = x[i] > max ? x[i] : max;
        }
        // The sum of exponentials in Q12.19 (wrapping like TFLite's int32
        // sum past 4,096 values near the maximum, without undefined behaviour).
        uint32_t sum = 0;
        for (uint32_t i = 0; i < n; i++) {
            int32_t diff = x[i] - max;
            if (diff >= a->diff_min) {
                int32_t scaled = mnn_srdhm((int32_t)((uint32_t)diff << a->input_left_shift), a->input_mult);
                sum += (uint32_t)mnn_rdivpot(exp_negative(scaled), ACCUM_INT_BITS);
            }
        }
        const int32_t log_sum = log_q12((int32_t)sum);
        // Differences at or below this give the lowest output.
        int32_t cut = mnn_requantize(wrap_add(log_sum, INT32_MIN), a->reverse_mult, a->reverse_shift);
        cut = cut > a->diff_min - 1 ? cut : a->diff_min - 1;
        for (uint32_t i = 0; i < n; i++) {
            int32_t diff = x[i] - max;
            int32_t out = -128;
            if (diff > cut) {
                int32_t scaled = mnn_srdhm((int32_t)((uint32_t)diff << a->input_left_shift), a->input_mult);
                // Q5.26 to the output's 16/256 steps: a division by 2^22.
                out = mnn_rdivpot(wrap_sub(scaled, log_sum), 31 - SCALED_DIFF_INT_BITS - 4) + 127;
                out = out > 127 ? 127 : (out < -128 ? -128 : out);
            }
            y[i] = (int8_t)out;
        }
        mnn_pace(&pace);
    }
}
