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
// overflowing case INT32_MIN * INT32_MIN.
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

// x * multiplier * 2^shift with TFLite rounding; shift in [-31, 30].
static inline int32_t mnn_requantize(int32_t x, int32_t multiplier, int32_t shift) {
    int left = shift > 0 ? shift : 0;
    int right = shift > 0 ? 0 : -shift;
    return mnn_rdivpot(mnn_srdhm((int32_t)((uint32_t)x << left), multiplier), right);
}

#endif // MICRONN_FIXEDPOINT_H
