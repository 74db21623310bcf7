// The kernels' one-step requantization (mnn_requantize, mnn_rq_apply, mnn_rq_block_apply in
// mnn_fixedpoint.h) and the two parts softmax uses alone (mnn_srdhm, mnn_rdivpot) against a
// reference written here from TFLite's definition: x * 2^left, then
// SaturatingRoundingDoublingHighMul, then RoundingDivideByPOT (the two roundings of
// MultiplyByQuantizedMultiplier). The reference uses nothing from the header under test.
//
// Usage: test_requant [N]   N >= 1000000 random (value, multiplier, shift) triples (default 10^7)
// after the edge cases. Prints "<cases> cases, <k> differ" and exits non-zero if any differ.
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "mnn_fixedpoint.h"

#define MIN_RANDOM 1000000L

// ---- the reference ------------------------------------------------------------------------

// round(a * b / 2^31) with halves rounded up (toward +infinity), as the nudge of
// (a*b + 2^30) / 2^31 (a*b >= 0) or (a*b + 1 - 2^30) / 2^31 (a*b < 0) with a division that
// truncates gives; the one product that does not fit, INT32_MIN * INT32_MIN, saturates.
// Written here as a floor division of the exact product.
static int32_t ref_high_mul(int32_t a, int32_t b) {
    int64_t p = (int64_t)a * (int64_t)b + ((int64_t)1 << 30);
    int64_t q = p / ((int64_t)1 << 31);
    if (p % ((int64_t)1 << 31) != 0 && p < 0) {
        q -= 1;                 // C division truncates; this is floor
    }
    return q > INT32_MAX ? INT32_MAX : (int32_t)q;
}

// x / 2^e rounded to the nearest integer, halves away from zero, 0 <= e <= 31: computed on
// the magnitude in 64 bits, then the sign put back.
static int32_t ref_div_pot(int32_t x, int e) {
    if (e == 0) {
        return x;
    }
    int64_t mag = x < 0 ? -(int64_t)x : (int64_t)x;
    int64_t q = (mag + ((int64_t)1 << (e - 1))) >> e;
    return (int32_t)(x < 0 ? -q : q);
}

// TFLite's MultiplyByQuantizedMultiplier: a positive shift multiplies x by 2^shift first (in
// 32 bits: the product wraps where TFLite's would overflow), a negative one divides after.
static int32_t ref_requantize(int32_t x, int32_t m, int32_t shift) {
    int left = shift > 0 ? shift : 0;
    int right = shift > 0 ? 0 : -shift;
    int32_t a = (int32_t)((uint32_t)x * ((uint32_t)1 << left));
    return ref_div_pot(ref_high_mul(a, m), right);
}

// Slow exact checks of the reference itself on small numbers, against plain rational
// arithmetic: n / d rounded with halves up (high_mul) or away from zero (div_pot).
static int self_check(void) {
    int bad = 0;
    for (int32_t a = -300; a <= 300; a++) {
        for (int e = 0; e <= 8; e++) {
            // a / 2^e: nearest, halves away from zero
            int64_t d = (int64_t)1 << e, mag = a < 0 ? -(int64_t)a : a;
            int64_t want = mag / d + (2 * (mag % d) >= d && e > 0 ? 1 : 0);
            want = a < 0 ? -want : want;
            if (ref_div_pot(a, e) != want) {
                bad++;
            }
        }
        // a * 2^30 / 2^31 = a / 2: halves up
        int64_t half_up = a >= 0 ? (a + 1) / 2 : -((-(int64_t)a) / 2);
        if (ref_high_mul(a, 0x40000000) != half_up) {
            bad++;
        }
    }
    if (ref_high_mul(INT32_MIN, INT32_MIN) != INT32_MAX || ref_high_mul(INT32_MAX, INT32_MAX) != INT32_MAX - 1
        || ref_high_mul(INT32_MIN, INT32_MAX) != INT32_MIN + 1 || ref_div_pot(INT32_MIN, 31) != -1
        || ref_div_pot(INT32_MAX, 31) != 1 || ref_div_pot(-(1 << 29), 31) != 0 || ref_div_pot(-(1 << 30), 31) != -1) {
        bad++;
    }
    if (bad) {
        printf("the reference itself is wrong (%d checks)\n", bad);
    }
    return bad;
}

// ---- the comparison -----------------------------------------------------------------------

static uint64_t state = 0x9e3779b97f4a7c15u;

static uint32_t next(void) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return (uint32_t)(state >> 16);
}

static long checked, failed;

static void report(const char *what, int32_t x, int32_t m, int32_t s, int32_t got, int32_t want) {
    if (failed++ < 10) {
        printf("%s x=%" PRId32 " m=%" PRId32 " shift=%" PRId32 ": got %" PRId32 ", reference %" PRId32 "\n",
            what, x, m, s, got, want);
    }
}

static void check(int32_t x, int32_t m, int32_t s) {
    int32_t want = ref_requantize(x, m, s);
    mnn_rq_t q = mnn_rq_prepare(m, s);
    int32_t got = mnn_requantize(x, m, s);
    int32_t applied = mnn_rq_apply(&q, x);
    checked++;
    if (got != want) {
        report("mnn_requantize", x, m, s, got, want);
    }
    if (applied != want) {
        report("mnn_rq_apply", x, m, s, applied, want);
    }
    // the two halves softmax uses on their own
    int32_t a = (int32_t)((uint32_t)x << (s > 0 ? s : 0));
    if (mnn_srdhm(a, m) != ref_high_mul(a, m)) {
        report("mnn_srdhm", a, m, 0, mnn_srdhm(a, m), ref_high_mul(a, m));
    }
    if (s <= 0 && mnn_rdivpot(x, -s) != ref_div_pot(x, -s)) {
        report("mnn_rdivpot", x, 0, s, mnn_rdivpot(x, -s), ref_div_pot(x, -s));
    }
}

// A value near a tie of the second rounding: the high product lands on (2k + 1) * 2^(e - 1).
static int32_t near_tie(int32_t m, int e) {
    if (m == 0 || e == 0) {
        return (int32_t)next();
    }
    // |v| <= 2^30, so that x = v * 2^31 / m (m >= 2^30) stays near the int32 range
    int64_t odd_max = ((int64_t)1 << (31 - e)) - 1;                 // |2k + 1| <= odd_max
    int64_t k = (int64_t)(next() % (uint32_t)((odd_max + 1) / 2 + 1)) * ((next() & 1) ? 1 : -1);
    int64_t odd = 2 * k + 1;
    odd = odd > odd_max ? odd_max : (odd < -odd_max ? -odd_max : odd);
    int64_t v = odd * ((int64_t)1 << (e - 1));
    int64_t x = v * ((int64_t)1 << 31) / m + (int64_t)(next() % 7) - 3;
    return (int32_t)(x > INT32_MAX ? INT32_MAX : (x < INT32_MIN ? INT32_MIN : x));
}

static int32_t random_multiplier(void) {
    uint32_t r = next() % 64;
    if (r == 0) {
        return 0;
    }
    if (r == 1) {
        return 0x7fffffff;
    }
    return (int32_t)(0x40000000u + (next() & 0x3fffffffu));      // [2^30, 2^31): QuantizeMultiplier's range
}

// One block of channels through mnn_rq_block_apply (the kernels' output step), each value
// against clamp(reference + offset).
static void check_block(void) {
    int32_t mult[MNN_RQ_BLOCK], shift[MNN_RQ_BLOCK], bias[MNN_RQ_BLOCK];
    uint32_t sums[MNN_RQ_BLOCK];
    int8_t y[MNN_RQ_BLOCK];
    uint32_t n = 1 + next() % MNN_RQ_BLOCK;
    int right_only = next() & 1;
    for (uint32_t i = 0; i < n; i++) {
        mult[i] = random_multiplier();
        shift[i] = right_only ? -(int32_t)(1 + next() % 31) : (int32_t)(next() % 42) - 31;
        bias[i] = (int32_t)next() >> (next() % 32);
        sums[i] = next() >> (next() % 32);
    }
    int32_t off = (int32_t)(next() % 256) - 128;
    int32_t lo = -128, hi = 127;
    if (next() & 1) {
        lo = (int32_t)(next() % 256) - 128;
        hi = lo + (int32_t)(next() % (uint32_t)(128 - lo));
    }
    mnn_rq_block_t blk;
    mnn_rq_block_prepare(&blk, bias, mult, shift, 0, n, off, lo, hi);
    mnn_rq_block_apply(&blk, sums, 1, n, y, 1, 1);
    for (uint32_t i = 0; i < n; i++) {
        int32_t v = (int32_t)(sums[i] + (uint32_t)bias[i]);
        int64_t r = (int64_t)ref_requantize(v, mult[i], shift[i]) + off;
        int32_t want = (int32_t)(r < lo ? lo : (r > hi ? hi : r));
        checked++;
        if (y[i] != want) {
            report("mnn_rq_block_apply", v, mult[i], shift[i], y[i], want);
        }
    }
}

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 10 * MIN_RANDOM;
    if (n < MIN_RANDOM) {
        printf("at least %ld random cases, not %ld\n", MIN_RANDOM, n);
        return 2;
    }
    if (self_check()) {
        return 1;
    }
    // Edge cases: every shift, the extreme values and multipliers, and ties.
    static const int32_t xs[] = { 0, 1, -1, 2, -2, 3, -3, 127, -128, 255, -256, 0x3fffffff, -0x40000000,
                                  0x40000000, -0x3fffffff, INT32_MAX, INT32_MIN, INT32_MIN + 1, INT32_MAX - 1,
                                  12345, -12345, 1 << 16, -(1 << 16) };
    static const int32_t ms[] = { 0, 1, 2, 0x40000000, 0x40000001, 0x5a827999, 0x60000000, 0x7ffffffe,
                                  0x7fffffff };
    for (int32_t s = -31; s <= 30; s++) {
        for (size_t i = 0; i < sizeof(xs) / sizeof(xs[0]); i++) {
            for (size_t j = 0; j < sizeof(ms) / sizeof(ms[0]); j++) {
                check(xs[i], ms[j], s);
            }
        }
        // With m = 2^30 (one half) the products are exact halves: every value from -5000 to
        // 5000 walks over both roundings' ties.
        for (int32_t v = -5000; v <= 5000; v++) {
            check(v, 0x40000000, s);
            check(v, 0x7fffffff, s);
        }
    }
    // Ties of the second rounding reached through a full-width value: x * 2^30 / 2^31 / 2^e
    // is a half exactly for x = (2k + 1) * 2^e.
    for (int e = 1; e <= 31; e++) {
        for (int64_t k = -40; k <= 40; k++) {
            for (int64_t x = (2 * k + 1) * ((int64_t)1 << e) - 1, end = x + 2; x <= end; x++) {
                if (x >= INT32_MIN && x <= INT32_MAX) {
                    check((int32_t)x, 0x40000000, -e);
                }
            }
        }
    }
    // mnn_srdhm on its own, as softmax uses it: any two int32 (negative multipliers too).
    static const int32_t specials[] = { INT32_MIN, INT32_MIN + 1, -0x40000000, -1, 0, 1, 0x40000000, INT32_MAX };
    for (size_t i = 0; i < sizeof(specials) / sizeof(specials[0]); i++) {
        for (size_t j = 0; j < sizeof(specials) / sizeof(specials[0]); j++) {
            int32_t a = specials[i], b = specials[j];
            checked++;
            if (mnn_srdhm(a, b) != ref_high_mul(a, b)) {
                report("mnn_srdhm", a, b, 0, mnn_srdhm(a, b), ref_high_mul(a, b));
            }
        }
    }
    for (long i = 0; i < MIN_RANDOM; i++) {
        int32_t a = (int32_t)next() >> (next() % 32), b = (int32_t)next() >> (next() % 32);
        checked++;
        if (mnn_srdhm(a, b) != ref_high_mul(a, b)) {
            report("mnn_srdhm", a, b, 0, mnn_srdhm(a, b), ref_high_mul(a, b));
        }
    }
    long edge = checked;
    // Random triples: values over the whole int32 range, small values, values near ties.
    for (long i = 0; i < n; i++) {
        int32_t m = random_multiplier();
        int32_t s = (int32_t)(next() % 62) - 31;      // [-31, 30], what the loader accepts
        int32_t x;
        switch (next() % 4) {
            case 0:
                x = (int32_t)next();
                break;
            case 1:
                x = (int32_t)next() >> (next() % 32);   // small accumulators, every magnitude
                break;
            case 2:
                s = -(int32_t)(1 + next() % 31);
                x = near_tie(m, -s);
                break;
            default:
                x = (int32_t)(next() % 4001) - 2000;
                break;
        }
        check(x, m, s);
        if ((i & 63) == 0) {
            check_block();
        }
    }
    printf("%ld edge cases, %ld random; %ld cases, %ld differ\n", edge, n, checked, failed);
    return failed != 0;
}
