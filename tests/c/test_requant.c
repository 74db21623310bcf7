// mnn_requantize and mnn_rq_apply (one 64-bit add and shift) against the reference composition
// of TFLite's two roundings: edge values, every shift, and random values.
#include <stdio.h>
#include <stdlib.h>

#include "mnn_fixedpoint.h"

// The reference: TFLite's two roundings, one after the other.
static int32_t requantize_ref(int32_t x, int32_t multiplier, int32_t shift) {
    int left = shift > 0 ? shift : 0;
    int right = shift > 0 ? 0 : -shift;
    return mnn_rdivpot(mnn_srdhm((int32_t)((uint32_t)x << left), multiplier), right);
}

static uint64_t state = 0x9e3779b97f4a7c15u;

static uint32_t next(void) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return (uint32_t)(state >> 16);
}

static long checked, failed;

static void check(int32_t x, int32_t m, int32_t s) {
    mnn_rq_t q = mnn_rq_prepare(m, s);
    int32_t got = mnn_requantize(x, m, s), want = requantize_ref(x, m, s), got2 = mnn_rq_apply(&q, x);
    checked++;
    if (got2 != want && failed++ < 10) {
        printf("x=%ld m=%ld shift=%ld: mnn_rq_apply gives %ld, reference %ld\n", (long)x, (long)m, (long)s,
            (long)got2, (long)want);
    }
    if (got != want && failed++ < 10) {
        printf("x=%ld m=%ld shift=%ld: got %ld, reference %ld\n", (long)x, (long)m, (long)s, (long)got, (long)want);
    }
}

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 10000000;
    static const int32_t xs[] = { 0, 1, -1, 2, -2, 3, -3, 127, -128, 0x3fffffff, -0x40000000, 0x40000000,
                                  INT32_MAX, INT32_MIN, INT32_MIN + 1, 0x7ffffffe, 12345, -12345 };
    static const int32_t ms[] = { 0, 1, 0x40000000, 0x40000001, 0x5a827999, 0x7fffffff, 0x60000000 };
    for (int32_t s = -31; s <= 30; s++) {
        for (size_t i = 0; i < sizeof(xs) / sizeof(xs[0]); i++) {
            for (size_t j = 0; j < sizeof(ms) / sizeof(ms[0]); j++) {
                check(xs[i], ms[j], s);
            }
        }
        // Ties of the second rounding: x*m/2^31 landing on a half.
        for (int32_t v = -5000; v <= 5000; v++) {
            check(v, 0x40000000, s);
        }
    }
    for (long i = 0; i < n; i++) {
        uint32_t r = next();
        int32_t x = (int32_t)next();
        if (r & 1) {
            x >>= (next() % 31);     // small accumulators too
        }
        int32_t m = (int32_t)(0x40000000u + (next() & 0x3fffffffu));
        int32_t s = (int32_t)(next() % 62) - 31;
        check(x, m, s);
    }
    printf("%ld cases, %ld differ\n", checked, failed);
    return failed != 0;
}
