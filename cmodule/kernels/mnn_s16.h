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
} mnn_s16_rq_t;

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

#endif // MICRONN_S16_H
