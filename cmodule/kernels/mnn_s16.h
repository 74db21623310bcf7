// Shared pieces of the 16x8 kernels (int16 activations, int8 weights):
// FULLY_CONNECTED_S16, CONV_2D_S16 and DEPTHWISE_CONV_2D_S16.
//
// Two requantizations, as TFLite chooses by the bias type:
// - acc64 (int64 bias): the int64 sum plus bias times the multiplier rounded
//   to 16 bits, m16 = (mult + 2^15) >> 16 (0x7FFF from 0x7FFF0000 on), then
//   shifted right by 15 - shift, rounding half up: TFLite's
//   MultiplyByQuantizedMultiplier(int64_t, ...). The loader keeps every sum
//   plus bias within 2^47 and shift in [-31, 14], so the product stays below
//   2^62 and the shift in [1, 46].
// - otherwise (int32 bias): the sum wraps in int32, plus the bias, and goes
//   through the int8 ops' double-rounding requantization.
#ifndef MICRONN_S16_H
#define MICRONN_S16_H

#include <stdint.h>
#include <string.h>

#include "mnn_kernels.h"
#include "mnn_fixedpoint.h"
#include "mnn_simd.h"

// One output channel's requantization, prepared once per channel.
typedef struct {
    int64_t bias;       // acc64: int64 bias; else the int32 bias
    int32_t m16;        // acc64: the 16-bit multiplier
    int32_t t;          // acc64: right shift, 15 - shift
    mnn_rq_t rq;        // int32 path
    int64_t b;          // acc64: bias * m16 + 2^(t - 1) (mnn_s16_round)
    int64_t b2;         // acc64, u >= 0: b * 2^(32 - t) (t < 32, saturated to +-2^62) or b
    int32_t m2;         // acc64, u >= 0: m16 * 2^(32 - t) (t < 32) or m16
    int32_t u;          // acc64: t - 32 (t >= 32), 0 (17 <= t < 32), -1 (t < 17: mnn_s16_round)
} mnn_s16_rq_t;

// The DSP kernels' requantization: its constants (mnn_s16_rq_prepare_dsp),
// mnn_s16_round and mnn_s16_out32. Compiled where the kernels use them, and
// for their host test (tests/c/test_s16_round.c defines MNN_S16_TEST).
#if MNN_DSP || defined(MNN_S16_TEST)
// acc64: the constants from bias, m16 and t.
static inline void mnn_s16_rq_prepare_dsp(mnn_s16_rq_t *r) {
    r->b = r->bias * r->m16 + ((int64_t)1 << (r->t - 1));
    if (r->t >= 32) {
        r->b2 = r->b;
        r->m2 = r->m16;
        r->u = r->t - 32;
    } else if (r->t >= 17) {
        const int64_t big = (int64_t)1 << (30 + r->t);
        r->b2 = r->b >= big ? (int64_t)1 << 62 : r->b <= -big ? -((int64_t)1 << 62)
            : r->b * ((int64_t)1 << (32 - r->t));
        r->m2 = r->m16 * (1 << (32 - r->t));
        r->u = 0;
    } else {
        r->u = -1;
    }
}
#endif

static inline mnn_s16_rq_t mnn_s16_rq_prepare(const void *bias, int acc64, const int32_t *mult,
    const int32_t *shift, uint32_t q, uint32_t ch) {
    mnn_s16_rq_t r;
    memset(&r, 0, sizeof(r));
    const int32_t m = mnn_ld32(mult, q), s = mnn_ld32(shift, q);
    if (acc64) {
        if (bias) {
            memcpy(&r.bias, (const uint8_t *)bias + 8 * ch, sizeof(r.bias));
        }
        r.m16 = m < 0x7FFF0000 ? (int32_t)(((int64_t)m + 32768) >> 16) : 0x7FFF;
        r.t = 15 - s;
        #if MNN_DSP
        mnn_s16_rq_prepare_dsp(&r);
        #endif
    } else {
        if (bias) {
            r.bias = mnn_ld32((const int32_t *)bias, ch);
        }
        r.rq = mnn_rq_prepare(m, s);
    }
    return r;
}

static inline int16_t mnn_s16_clamp(int64_t v, int32_t lo, int32_t hi) {
    v = v < lo ? lo : v;
    return (int16_t)(v > hi ? hi : v);
}

// The output value of a channel's sum (sum of the products, without bias).
static inline int16_t mnn_s16_out(const mnn_s16_rq_t *r, int acc64, int64_t sum, int32_t lo, int32_t hi) {
    if (acc64) {
        const int64_t x = sum + r->bias;
        return mnn_s16_clamp((x * r->m16 + ((int64_t)1 << (r->t - 1))) >> r->t, lo, hi);
    }
    const int32_t x = (int32_t)((uint32_t)(uint64_t)sum + (uint32_t)r->bias);
    return mnn_s16_clamp(mnn_rq_apply(&r->rq, x), lo, hi);
}

#if MNN_DSP || defined(MNN_S16_TEST)
// acc64: the output of v = (sum + bias) * m16 + 2^(t - 1) (r->b + sum *
// r->m16; |v| < 2^62 by the loader's bounds): v >> t clamped to [lo, hi],
// mnn_s16_out's value, with 32-bit shifts. t >= 32: the high word shifted;
// else the low 32 bits of v >> t, or a saturated value where v >> t leaves
// int32 (its bits from t + 31 on are not all equal).
static inline int16_t mnn_s16_round(int64_t v, int32_t t, int32_t lo, int32_t hi) {
    const int32_t vh = (int32_t)(uint32_t)((uint64_t)v >> 32);
    int32_t q;
    if (t >= 32) {
        q = vh >> (t - 32);
    } else {
        const int32_t top = vh >> (t - 1);
        if (top != vh >> 31) {
            q = vh < 0 ? INT32_MIN : INT32_MAX;
        } else {
            q = (int32_t)(((uint32_t)v >> t) | ((uint32_t)vh << (32 - t)));
        }
    }
    q = q < lo ? lo : q;
    return (int16_t)(q > hi ? hi : q);
}

// acc64: the output of an int32 sum s (mnn_s16_out's value). With u >= 0,
// the high word of b2 + s * m2 (one SMLAL) shifted right by u: for t >= 32
// that is v >> t; for 17 <= t < 32 b2 and m2 are b and m16 times 2^(32 - t),
// so the high word is v >> t again (|b| < 2^(30 + t) keeps it below 2^63;
// a larger |b| saturated to 2^62 gives a high word past 2^29 of the same
// sign, clamped as v >> t, at least 2^30 - 2^29 then, is).
static inline int16_t mnn_s16_out32(const mnn_s16_rq_t *r, int32_t s, int32_t lo, int32_t hi) {
    if (r->u < 0) {
        return mnn_s16_round(r->b + (int64_t)s * r->m16, r->t, lo, hi);
    }
    int32_t q = (int32_t)(uint32_t)((uint64_t)(r->b2 + (int64_t)s * r->m2) >> 32) >> r->u;
    q = q < lo ? lo : q;
    return (int16_t)(q > hi ? hi : q);
}
#endif

// Two sums at once, of x[i] * w0[i] and x[i] * w1[i] for i < n, added to
// *t0 and *t1: each input pair read (and, with the DSP extension, packed)
// once for two weight rows. int32 partial sums of at most 511 products
// (511 * 2^22 < 2^31), then into the int64 totals.
static inline void mnn_dot2_s16(const int16_t *x, const int8_t *w0, const int8_t *w1, uint32_t n, int64_t *t0,
    int64_t *t1) {
    uint32_t i = 0;
    while (i < n) {
        const uint32_t end = n - i > 511 ? i + 511 : n;
        int32_t a0 = 0, a1 = 0;
        #if MNN_DSP
        for (; i + 4 <= end; i += 4) {
            const uint32_t x01 = mnn_rd32(x + i), x23 = mnn_rd32(x + i + 2);
            const uint32_t x02 = (x01 & 0xffffu) | (x23 << 16), x13 = (x01 >> 16) | (x23 & 0xffff0000u);
            const uint32_t wa = mnn_rd32(w0 + i), wb = mnn_rd32(w1 + i);
            a0 = mnn_smlad(x02, mnn_sxtb16(wa), a0);
            a0 = mnn_smlad(x13, mnn_sxtb16_ror8(wa), a0);
            a1 = mnn_smlad(x02, mnn_sxtb16(wb), a1);
            a1 = mnn_smlad(x13, mnn_sxtb16_ror8(wb), a1);
        }
        #endif
        for (; i < end; i++) {
            a0 += x[i] * w0[i];
            a1 += x[i] * w1[i];
        }
        *t0 += a0;
        *t1 += a1;
    }
}

#if MNN_DSP
// First and one-past-last tap k (of k taps dil apart, the first at i0) with
// 0 <= i0 + k * dil < n: the taps of a window inside the input.
static inline void mnn_s16_taps(int32_t i0, uint32_t dil, uint32_t k, uint32_t n, uint32_t *lo, uint32_t *hi) {
    uint32_t first = 0, last = k;
    if (i0 < 0) {
        first = ((uint32_t)(-i0) + dil - 1) / dil;
    }
    const int32_t over = i0 + (int32_t)((k - 1) * dil) - (int32_t)(n - 1);
    if (over > 0) {
        const uint32_t cut = ((uint32_t)over + dil - 1) / dil;
        last = cut < k ? k - cut : 0;
    }
    *lo = first;
    *hi = last > first ? last : first;
}
#endif

#endif // MICRONN_S16_H
