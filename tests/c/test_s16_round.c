// mnn_s16_round and mnn_s16_out32 (the 16x8 kernels' requantizations with 32-bit shifts,
// mnn_s16.h) against mnn_s16_out's 64-bit form: for sums and int64 biases within the loader's bounds (sum plus
// bias within 2^47, shift in [-31, 14], so t = 15 - shift in [1, 46]), every shift, edge
// multipliers and sums whose shifted value lands at the edges of int16 and int32, and random
// cases. Prints "<cases> cases, <k> differ" and exits non-zero if any differ.
//
// Usage: test_s16_round [N]   N random cases after the edge cases (default 10^7).
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#define MNN_S16_TEST 1     // the DSP kernels' requantization, compiled for the host
#include "mnn_s16.h"


static uint64_t state = 0x9E3779B97F4A7C15u;

static uint64_t next(void) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
}

static long cases, differ;

static void check(int64_t sum, int64_t bias, int32_t mult, int32_t shift, int32_t lo, int32_t hi) {
    const int64_t lim = (int64_t)1 << 47;
    if (sum + bias > lim || sum + bias < -lim) {
        return;
    }
    mnn_s16_rq_t r = mnn_s16_rq_prepare(&bias, 1, &mult, &shift, 0, 0);
    mnn_s16_rq_prepare_dsp(&r);     // the host build has no DSP extension: its constants here
    int16_t want = mnn_s16_out(&r, 1, sum, lo, hi);
    int16_t got = mnn_s16_round(r.b + sum * r.m16, r.t, lo, hi);
    // mnn_s16_out32 takes the sums of at most 511 products of 2^22 (int32)
    const int fits = sum >= -((int64_t)511 << 22) && sum <= (int64_t)511 << 22;
    int16_t got32 = fits ? mnn_s16_out32(&r, (int32_t)sum, lo, hi) : want;
    cases++;
    if (got != want || got32 != want) {
        got = got != want ? got : got32;
        if (differ++ < 10) {
            printf("sum %" PRId64 " bias %" PRId64 " mult %" PRId32 " shift %" PRId32 ": %d != %d\n", sum, bias, mult,
                shift, got, want);
        }
    }
}

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 10000000L;
    static const int32_t mults[] = {0, 1, 32767, 32768, 1 << 30, 0x7FFF0000, 0x7FFF8000, INT32_MAX, -(1 << 30)};
    static const int32_t ranges[][2] = {{-32768, 32767}, {-100, 2500}, {0, 0}};
    for (int32_t shift = -31; shift <= 14; shift++) {
        const int32_t t = 15 - shift;
        for (unsigned mi = 0; mi < sizeof(mults) / sizeof(mults[0]); mi++) {
            const int32_t m = mults[mi];
            const int64_t m16 = m < 0x7FFF0000 ? (((int64_t)m + 32768) >> 16) : 0x7FFF;
            for (unsigned ri = 0; ri < 3; ri++) {
                // sums whose value v >> t is near 0, +-2^15, +-2^31 and their neighbours
                static const int64_t targets[] = {0, 1, -1, 32767, 32768, -32768, -32769, INT32_MAX, INT32_MIN,
                                                  (int64_t)INT32_MAX + 1, (int64_t)INT32_MIN - 1};
                for (unsigned k = 0; k < sizeof(targets) / sizeof(targets[0]); k++) {
                    if (m16 == 0) {
                        break;
                    }
                    const int64_t mag = targets[k] < 0 ? -targets[k] : targets[k];
                    if (mag >= (int64_t)1 << (61 - t)) {
                        continue;
                    }
                    int64_t base = targets[k] * ((int64_t)1 << t) / m16;
                    for (int64_t d = -3; d <= 3; d++) {
                        check(base + d, 0, m, shift, ranges[ri][0], ranges[ri][1]);
                        check(base / 2 + d, base - base / 2, m, shift, ranges[ri][0], ranges[ri][1]);
                    }
                }
                check((int64_t)1 << 46, (int64_t)1 << 46, m, shift, ranges[ri][0], ranges[ri][1]);
                check(-((int64_t)1 << 46), -((int64_t)1 << 46), m, shift, ranges[ri][0], ranges[ri][1]);
            }
        }
    }
    for (long i = 0; i < n; i++) {
        const uint64_t r = next();
        const int32_t shift = (int32_t)(r % 46) - 31;
        const int32_t m = (int32_t)(uint32_t)(next() >> 32);
        // sums of every magnitude up to 2^46, biases likewise
        const int64_t sum = (int64_t)(next() >> ((r >> 8 & 63) | 17)) * ((r >> 14 & 1) ? -1 : 1);
        const int64_t bias = (r >> 15 & 3) ? (int64_t)(next() >> ((r >> 17 & 63) | 17)) * ((r >> 23 & 1) ? -1 : 1) : 0;
        check(sum, bias, m, shift, -32768, 32767);
    }
    printf("%ld cases, %ld differ\n", cases, differ);
    return differ != 0;
}
