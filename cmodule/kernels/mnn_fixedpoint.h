// Fixed-point arithmetic with TensorFlow Lite's integer semantics
// ("double rounding", the TFLite and CMSIS-NN default).
#ifndef MICRONN_FIXEDPOINT_H
#define MICRONN_FIXEDPOINT_H

#include <stdint.h>
#include <string.h>

// Element i of an int32 array that may sit at any address (blobs in flash
// or frozen bytes objects are not necessarily 4-byte aligned).
static inline int32_t mnn_ld32(const int32_t *p, uint32_t i) {
    int32_t v;
    memcpy(&v, (const uint8_t *)p + 4 * i, sizeof(v));
    return v;
}

// a + b wrapping (no overflow, hence no undefined behaviour, whatever a
// hostile blob's multipliers make of a sum; valid models never get near).
static inline int32_t mnn_wadd(int32_t a, int32_t b) {
    return (int32_t)((uint32_t)a + (uint32_t)b);
}

// Rounding doubling high multiply: round(a * b / 2^31), saturating the one
// overflowing case INT32_MIN * INT32_MIN. Softmax uses it as is; with
// mnn_rdivpot it is the definition mnn_requantize below computes in one step.
static inline int32_t mnn_srdhm(int32_t a, int32_t b) {
    if (a == INT32_MIN && b == INT32_MIN) {
        return INT32_MAX;
    }
    int64_t ab = (int64_t)a * (int64_t)b;
    int64_t nudge = ab >= 0 ? (1 << 30) : (1 - (1 << 30));
    // Division truncates toward zero, as the reference does.
    return (int32_t)((ab + nudge) / ((int64_t)1 << 31));
}

// Divide by 2^exponent, rounding half away from zero. 0 <= exponent <= 31.
static inline int32_t mnn_rdivpot(int32_t x, int exponent) {
    int32_t mask = (int32_t)(((uint32_t)1 << exponent) - 1);
    int32_t remainder = x & mask;
    int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

// x * multiplier * 2^shift with TFLite's double rounding, shift in [-31, 30]:
// rdivpot(srdhm(x << max(shift, 0), multiplier), max(-shift, 0)).
//
// Both roundings fold into one 64-bit add and shift. srdhm(a, m) equals
// floor((a*m + 2^30) / 2^31) (the reference's truncating division with its
// sign-dependent nudge comes to the same), rdivpot(v, e) for e >= 1 equals
// floor((v + 2^(e-1) - [v < 0]) / 2^e), and floor((floor(p / q) + c) / r) ==
// floor((p + c*q) / (q*r)) for integers. With m >= 0 (TFLite multipliers are
// in [2^30, 2^31) or 0), v < 0 only if a < 0, and where a < 0 but v == 0 both
// choices of the [v < 0] term give 0. So for e >= 1:
//   result = (a*m + 2^30 + 2^(30+e) - [a < 0] * 2^31) >> (31 + e).
// A negative multiplier (never produced by a converter) gives some other
// value but no overflow: every term stays below 2^63.
//
// Kernels that apply one channel's multiplier to many sums prepare the
// per-channel constants once (mnn_rq_prepare), then each sum costs a 64-bit
// multiply-accumulate and a shift (mnn_rq_apply).
typedef struct {
    int32_t mult;
    int32_t shift;      // >= 0: left shift of the sum (e == 0)
    int32_t rs;         // e - 1 for shift = -e < 0
    uint32_t k_lo;      // k = 2^30 + 2^(30 + e) (e >= 1) or 2^30, as two words
    int32_t k_hi;
} mnn_rq_t;

static inline mnn_rq_t mnn_rq_prepare(int32_t multiplier, int32_t shift) {
    mnn_rq_t q;
    q.mult = multiplier;
    q.shift = shift;
    q.rs = -shift - 1;
    q.k_lo = shift == -1 ? 0xc0000000u : 0x40000000u;
    q.k_hi = shift <= -2 ? (int32_t)(1u << (-shift - 2)) : 0;
    return q;
}

// mnn_rq_apply for shift < 0.
static inline int32_t mnn_rq_apply_right(const mnn_rq_t *q, int32_t x) {
    int64_t p = (int64_t)(((uint64_t)(uint32_t)q->k_hi << 32) | q->k_lo) + (int64_t)x * q->mult;
    p -= (int64_t)((uint32_t)(x >> 31) & 0x80000000u);     // 2^31 when x < 0
    // p >> (31 + e) == (high word of p) >> (e - 1)
    return (int32_t)(p >> 32) >> q->rs;
}

static inline int32_t mnn_rq_apply(const mnn_rq_t *q, int32_t x) {
    if (q->shift >= 0) {
        int32_t a = (int32_t)((uint32_t)x << q->shift);
        return (int32_t)(((int64_t)a * q->mult + ((int64_t)1 << 30)) >> 31);
    }
    return mnn_rq_apply_right(q, x);
}

static inline int32_t mnn_requantize(int32_t x, int32_t multiplier, int32_t shift) {
    const mnn_rq_t q = mnn_rq_prepare(multiplier, shift);
    return mnn_rq_apply(&q, x);
}

static inline int8_t mnn_clamp8(int32_t v, int32_t lo, int32_t hi) {
    v = v < lo ? lo : v;
    return (int8_t)(v > hi ? hi : v);
}

// One output value: sum + bias[ch] (wrapping, like the sums; bias may be
// NULL) requantized with multiplier and shift q, plus the output offset,
// clamped to [lo, hi].
static inline int8_t mnn_requant_out(uint32_t sum, const int32_t *bias, uint32_t ch, const int32_t *mult,
    const int32_t *shift, uint32_t q, int32_t off, int32_t lo, int32_t hi) {
    if (bias) {
        sum += (uint32_t)mnn_ld32(bias, ch);
    }
    return mnn_clamp8(mnn_wadd(mnn_requantize((int32_t)sum, mnn_ld32(mult, q), mnn_ld32(shift, q)), off), lo, hi);
}

// Per-channel constants of a block of output channels, prepared once per
// kernel call and block, and the requantization of a block's sums.
#define MNN_RQ_BLOCK 32

typedef struct {
    mnn_rq_t rq[MNN_RQ_BLOCK];
    uint32_t bias[MNN_RQ_BLOCK];
    int32_t off, lo, hi;
    int right_only;     // every shift < 0 (the usual case): no left shifts
} mnn_rq_block_t;

// Channels [c0, c0 + n), n <= MNN_RQ_BLOCK; bias may be NULL.
static inline void mnn_rq_block_prepare(mnn_rq_block_t *blk, const int32_t *bias, const int32_t *mult,
    const int32_t *shift, uint32_t c0, uint32_t n, int32_t off, int32_t lo, int32_t hi) {
    blk->right_only = 1;
    for (uint32_t i = 0; i < n; i++) {
        blk->rq[i] = mnn_rq_prepare(mnn_ld32(mult, c0 + i), mnn_ld32(shift, c0 + i));
        blk->bias[i] = bias ? (uint32_t)mnn_ld32(bias, c0 + i) : 0;
        blk->right_only &= blk->rq[i].shift < 0;
    }
    blk->off = off;
    blk->lo = lo;
    blk->hi = hi;
}

// Saturation to int8 (SSAT on Arm).
static inline int32_t mnn_sat8(int32_t v) {
    #if defined(__ARM_FEATURE_SAT) && __ARM_FEATURE_SAT
    int32_t r;
    __asm__ ("ssat %0, #8, %1" : "=r" (r) : "r" (v));
    return r;
    #else
    return v < -128 ? -128 : (v > 127 ? 127 : v);
    #endif
}

// The activation range is the whole int8 range (ReLU included when its zero
// point is -128) and every shift is a right shift: the usual case, where one
// saturation clamps.
static inline int mnn_rq_block_saturates(const mnn_rq_block_t *blk) {
    return blk->right_only && blk->lo == -128 && blk->hi == 127;
}

// y[i * y_step] = requantized sums[i * s_step] of channel i, for i < n, plus
// the channel's bias unless the sums hold it already (add_bias 0).
static inline void mnn_rq_block_apply(const mnn_rq_block_t *blk, const uint32_t *sums, uint32_t s_step, uint32_t n,
    int8_t *y, uint32_t y_step, int add_bias) {
    const int32_t off = blk->off, lo = blk->lo, hi = blk->hi;
    const uint32_t *bias = blk->bias;
    if (mnn_rq_block_saturates(blk)) {
        for (uint32_t i = 0; i < n; i++, sums += s_step, y += y_step) {
            const int32_t v = (int32_t)(*sums + (add_bias ? bias[i] : 0));
            *y = (int8_t)mnn_sat8(mnn_wadd(mnn_rq_apply_right(&blk->rq[i], v), off));
        }
        return;
    }
    for (uint32_t i = 0; i < n; i++, sums += s_step, y += y_step) {
        const int32_t v = (int32_t)(*sums + (add_bias ? bias[i] : 0));
        *y = mnn_clamp8(mnn_wadd(mnn_rq_apply(&blk->rq[i], v), off), lo, hi);
    }
}

// Two sums per channel (two pixels): y0[i] from sums[2i], y1[i] from sums[2i + 1].
static inline void mnn_rq_block_apply2(const mnn_rq_block_t *blk, const uint32_t *sums, uint32_t n,
    int8_t *y0, int8_t *y1) {
    if (mnn_rq_block_saturates(blk)) {
        const int32_t off = blk->off;
        for (uint32_t i = 0; i < n; i++, sums += 2) {
            const mnn_rq_t *q = &blk->rq[i];
            const uint32_t b = blk->bias[i];
            y0[i] = (int8_t)mnn_sat8(mnn_wadd(mnn_rq_apply_right(q, (int32_t)(sums[0] + b)), off));
            y1[i] = (int8_t)mnn_sat8(mnn_wadd(mnn_rq_apply_right(q, (int32_t)(sums[1] + b)), off));
        }
        return;
    }
    mnn_rq_block_apply(blk, sums, 2, n, y0, 1, 1);
    mnn_rq_block_apply(blk, sums + 1, 2, n, y1, 1, 1);
}

#endif // MICRONN_FIXEDPOINT_H
