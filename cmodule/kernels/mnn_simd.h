// The few DSP-extension instructions the fast kernels use (Cortex-M4, M7,
// M33 with DSP: __ARM_FEATURE_DSP), as inline functions, and unaligned word
// access that compiles to a single load or store where the core allows it.
//
// Packed layout used throughout: a word of four int8 values b0 b1 b2 b3
// becomes two words of int16 pairs, (b0, b2) and (b1, b3), which is what
// SXTB16 gives without any reordering. Im2col columns are stored in that
// order, so weight words need the same two instructions and nothing else.
#ifndef MICRONN_SIMD_H
#define MICRONN_SIMD_H

#include <stdint.h>
#include <string.h>

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP && !defined(MNN_NO_DSP)
#define MNN_DSP (1)
#else
#define MNN_DSP (0)
#endif

static inline uint32_t mnn_rd32(const void *p) {
    uint32_t v;
    memcpy(&v, p, sizeof(v));
    return v;
}

static inline void mnn_wr32(void *p, uint32_t v) {
    memcpy(p, &v, sizeof(v));
}

#if MNN_DSP

// (b0, b2) sign-extended to int16 pairs.
static inline uint32_t mnn_sxtb16(uint32_t x) {
    uint32_t r;
    __asm__ ("sxtb16 %0, %1" : "=r" (r) : "r" (x));
    return r;
}

// (b1, b3).
static inline uint32_t mnn_sxtb16_ror8(uint32_t x) {
    uint32_t r;
    __asm__ ("sxtb16 %0, %1, ror #8" : "=r" (r) : "r" (x));
    return r;
}

// a + (b0, b2), lane by lane.
static inline uint32_t mnn_sxtab16(uint32_t a, uint32_t x) {
    uint32_t r;
    __asm__ ("sxtab16 %0, %1, %2" : "=r" (r) : "r" (a), "r" (x));
    return r;
}

// a + (b1, b3).
static inline uint32_t mnn_sxtab16_ror8(uint32_t a, uint32_t x) {
    uint32_t r;
    __asm__ ("sxtab16 %0, %1, %2, ror #8" : "=r" (r) : "r" (a), "r" (x));
    return r;
}

// acc + x.lo * y.lo + x.hi * y.hi (wraps like the portable sums).
static inline int32_t mnn_smlad(uint32_t x, uint32_t y, int32_t acc) {
    int32_t r;
    __asm__ ("smlad %0, %1, %2, %3" : "=r" (r) : "r" (x), "r" (y), "r" (acc));
    return r;
}

// acc + x.lo * y.lo.
static inline int32_t mnn_smlabb(uint32_t x, uint32_t y, int32_t acc) {
    int32_t r;
    __asm__ ("smlabb %0, %1, %2, %3" : "=r" (r) : "r" (x), "r" (y), "r" (acc));
    return r;
}

// acc + x.hi * y.hi.
static inline int32_t mnn_smlatt(uint32_t x, uint32_t y, int32_t acc) {
    int32_t r;
    __asm__ ("smlatt %0, %1, %2, %3" : "=r" (r) : "r" (x), "r" (y), "r" (acc));
    return r;
}

// Per byte lane, the larger of two signed int8 values.
static inline uint32_t mnn_smax8(uint32_t a, uint32_t b) {
    uint32_t r;
    __asm__ ("ssub8 %0, %1, %2\n\tsel %0, %1, %2" : "=&r" (r) : "r" (a), "r" (b) : "cc");
    return r;
}

// The word at p, p + k and p + 2 * k (unaligned allowed, as mnn_rd32): one
// register-offset load each, the address never kept as its own pointer, so
// unrolled taps cost no extra registers. Volatile keeps the loads in place.
static inline uint32_t mnn_rd32_v(const void *p) {
    uint32_t r;
    __asm__ volatile ("ldr %0, [%1]" : "=r" (r) : "r" (p));
    return r;
}

static inline uint32_t mnn_rd32_at(const void *p, uint32_t k) {
    uint32_t r;
    __asm__ volatile ("ldr %0, [%1, %2]" : "=r" (r) : "r" (p), "r" (k));
    return r;
}

static inline uint32_t mnn_rd32_at2(const void *p, uint32_t k) {
    uint32_t r;
    __asm__ volatile ("ldr %0, [%1, %2, lsl #1]" : "=r" (r) : "r" (p), "r" (k));
    return r;
}

// Per byte lane, the smaller of two signed int8 values.
static inline uint32_t mnn_smin8(uint32_t a, uint32_t b) {
    uint32_t r;
    __asm__ ("ssub8 %0, %1, %2\n\tsel %0, %2, %1" : "=&r" (r) : "r" (a), "r" (b) : "cc");
    return r;
}


// (a.lo, b.lo) and (a.hi, b.hi): two words of int16 pairs (x0, x1), (x2, x3)
// become (x0, x2), (x1, x3), the order SXTB16 gives int8 weights in.
static inline uint32_t mnn_pk_lo(uint32_t a, uint32_t b) {
    uint32_t r;
    __asm__ ("pkhbt %0, %1, %2, lsl #16" : "=r" (r) : "r" (a), "r" (b));
    return r;
}

static inline uint32_t mnn_pk_hi(uint32_t a, uint32_t b) {
    uint32_t r;
    __asm__ ("pkhtb %0, %2, %1, asr #16" : "=r" (r) : "r" (a), "r" (b));
    return r;
}

// acc + x.top * y.bottom, and acc + x.bottom * y.top.
static inline int32_t mnn_smlatb(uint32_t x, uint32_t y, int32_t acc) {
    int32_t r;
    __asm__ ("smlatb %0, %1, %2, %3" : "=r" (r) : "r" (x), "r" (y), "r" (acc));
    return r;
}

static inline int32_t mnn_smlabt(uint32_t x, uint32_t y, int32_t acc) {
    int32_t r;
    __asm__ ("smlabt %0, %1, %2, %3" : "=r" (r) : "r" (x), "r" (y), "r" (acc));
    return r;
}
#endif // MNN_DSP

// acc + x.lo * y.lo + x.hi * y.hi on int16 pairs: SMLAD where the core has
// it, else the same sum in C (wrapping).
static inline int32_t mnn_dot2(uint32_t x, uint32_t y, int32_t acc) {
    #if MNN_DSP
    return mnn_smlad(x, y, acc);
    #else
    uint32_t lo = (uint32_t)((int32_t)(int16_t)x * (int16_t)y);
    uint32_t hi = (uint32_t)((int32_t)(int16_t)(x >> 16) * (int16_t)(y >> 16));
    return (int32_t)((uint32_t)acc + lo + hi);
    #endif
}

#endif // MICRONN_SIMD_H
