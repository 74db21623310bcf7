// Single-precision division for the armv6m native module (cmodule/natmod.mk),
// included by modmicronn.c there (MICRONN_OWN_FDIV):
// libgcc's __aeabi_fdiv for Cortex-M0 dispatches through a table of absolute
// addresses, which tools/mpy_ld.py cannot relocate. IEEE 754 binary32, round
// to nearest even, subnormals in and out: the same results as an FPU's
// (tests/test_natmod.py checks it against the host's division).
#ifndef MICRONN_INCLUDED_MNN_FDIV_H
#define MICRONN_INCLUDED_MNN_FDIV_H

#include <stdint.h>

// The build renames the compiler's calls to __aeabi_fdiv to this function.
#ifndef MNN_FDIV_NAME
#define MNN_FDIV_NAME mnn_fdiv
#endif

typedef union {
    float f;
    uint32_t u;
} mnn_f32_t;

static float from_bits(uint32_t u) {
    mnn_f32_t v;
    v.u = u;
    return v.f;
}

float MNN_FDIV_NAME(float a, float b);

float MNN_FDIV_NAME(float a, float b) {
    mnn_f32_t x, y;
    x.f = a;
    y.f = b;
    uint32_t sign = (x.u ^ y.u) & 0x80000000u;
    int32_t ea = (int32_t)((x.u >> 23) & 0xff), eb = (int32_t)((y.u >> 23) & 0xff);
    uint32_t ma = x.u & 0x7fffffu, mb = y.u & 0x7fffffu;

    if (ea == 255 && ma) {
        return from_bits(x.u | 0x400000u);                  // NaN / b
    }
    if (eb == 255 && mb) {
        return from_bits(y.u | 0x400000u);                  // a / NaN
    }
    if (ea == 255) {
        return from_bits(eb == 255 ? 0x7fc00000u : sign | 0x7f800000u);    // inf / inf, inf / b
    }
    if (eb == 255) {
        return from_bits(sign);                             // a / inf
    }
    if (eb == 0 && mb == 0) {
        return from_bits(ea == 0 && ma == 0 ? 0x7fc00000u : sign | 0x7f800000u);   // 0 / 0, a / 0
    }
    if (ea == 0 && ma == 0) {
        return from_bits(sign);                             // 0 / b
    }
    // Significands with the leading one at bit 23 (subnormals normalised).
    if (ea == 0) {
        for (ea = 1; !(ma & 0x800000u); ea--) {
            ma <<= 1;
        }
    } else {
        ma |= 0x800000u;
    }
    if (eb == 0) {
        for (eb = 1; !(mb & 0x800000u); eb--) {
            mb <<= 1;
        }
    } else {
        mb |= 0x800000u;
    }
    int32_t e = ea - eb + 127;
    if (ma < mb) {
        ma <<= 1;
        e--;
    }
    // q = floor(ma / mb * 2^25), in [2^25, 2^26); sticky: the remainder is not 0.
    uint32_t q = 0, rem = ma;
    for (int i = 0; i < 26; i++) {
        q <<= 1;
        if (rem >= mb) {
            rem -= mb;
            q |= 1;
        }
        rem <<= 1;
    }
    uint32_t sticky = rem != 0;
    if (e >= 255) {
        return from_bits(sign | 0x7f800000u);
    }
    uint32_t shift = 2;
    int subnormal = e <= 0;
    if (subnormal) {
        if (3 - e >= 32) {
            return from_bits(sign);
        }
        shift = (uint32_t)(3 - e);
    }
    uint32_t m = q >> shift;
    uint32_t rest = q & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rest > half || (rest == half && (sticky || (m & 1)))) {
        m++;
    }
    if (subnormal) {
        return from_bits(sign | m);         // m == 2^23: the smallest normal
    }
    uint32_t enc = ((uint32_t)(e - 1) << 23) + m;
    return from_bits(sign | (enc >= 0x7f800000u ? 0x7f800000u : enc));
}

#endif // MICRONN_INCLUDED_MNN_FDIV_H
