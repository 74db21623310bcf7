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

// Rounding doubling high multiply: round(a * b / 2^31), saturating the one
// overflowing case INT32_MIN * INT32_MIN. (The reference definition; the
// kernels use mnn_requantize below, which is equal to it for b >= 0.)
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
static inline int32_t mnn_requantize(int32_t x, int32_t multiplier, int32_t shift) {
    if (shift >= 0) {
        int32_t a = (int32_t)((uint32_t)x << shift);
        return (int32_t)(((int64_t)a * multiplier + ((int64_t)1 << 30)) >> 31);
    }
    int e = -shift;
    int64_t k = ((int64_t)1 << 30) + ((int64_t)1 << (30 + e)) - (x < 0 ? ((int64_t)1 << 31) : 0);
    return (int32_t)(((int64_t)x * multiplier + k) >> (31 + e));
}

// mnn_requantize split in two for kernels that apply one channel's
// multiplier to several sums: the per-channel constants once, then a few
// instructions per sum (a multiply-accumulate into 64 bits and a shift).
typedef struct {
    int32_t mult;
    int32_t shift;
    int64_t k;      // 2^30 + 2^(30 + e) for shift = -e < 0; 2^30 otherwise
} mnn_rq_t;

static inline mnn_rq_t mnn_rq_prepare(int32_t multiplier, int32_t shift) {
    mnn_rq_t q;
    q.mult = multiplier;
    q.shift = shift;
    q.k = ((int64_t)1 << 30) + (shift < 0 ? (int64_t)1 << (30 - shift) : 0);
    return q;
}

static inline int32_t mnn_rq_apply(const mnn_rq_t *q, int32_t x) {
    if (q->shift >= 0) {
        int32_t a = (int32_t)((uint32_t)x << q->shift);
        return (int32_t)(((int64_t)a * q->mult + q->k) >> 31);
    }
    int64_t p = (int64_t)x * q->mult + q->k - (x < 0 ? ((int64_t)1 << 31) : 0);
    // p >> (31 + e) == (high word of p) >> (e - 1), e >= 1
    return (int32_t)(p >> 32) >> (-q->shift - 1);
}

// The reference composition, for tests.
static inline int32_t mnn_requantize_ref(int32_t x, int32_t multiplier, int32_t shift) {
    int left = shift > 0 ? shift : 0;
    int right = shift > 0 ? 0 : -shift;
    return mnn_rdivpot(mnn_srdhm((int32_t)((uint32_t)x << left), multiplier), right);
}

#endif // MICRONN_FIXEDPOINT_H
