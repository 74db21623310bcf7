// Elementwise int8 ops: ADD, MUL, SUB, SQUARED_DIFFERENCE, MAXIMUM, MINIMUM and
// PRELU with TFLite's broadcasting, and table lookups for every unary op (the
// host computes the table).
#include "mnn_kernels.h"
#include "mnn_fixedpoint.h"
#include "mnn_simd.h"
#include "../mnn_ops.h"

static inline int32_t add_one(const mnn_binary_args_t *a, int32_t x1, int32_t x2) {
    int32_t s1 = (x1 + a->input1_offset) * (1 << a->left_shift);
    int32_t s2 = (x2 + a->input2_offset) * (1 << a->left_shift);
    int32_t sum = mnn_wadd(mnn_requantize(s1, a->input1_mult, a->input1_shift),
        mnn_requantize(s2, a->input2_mult, a->input2_shift));
    return mnn_wadd(mnn_requantize(sum, a->output_mult, a->output_shift), a->output_offset);
}

static inline int32_t mul_one(const mnn_binary_args_t *a, int32_t x1, int32_t x2) {
    return mnn_wadd(mnn_requantize((x1 + a->input1_offset) * (x2 + a->input2_offset), a->output_mult,
        a->output_shift), a->output_offset);
}

#define BINARY(name, one) \
    void name(const mnn_binary_args_t *a) { \
        int8_t *y = a->output; \
        for (uint32_t i0 = 0; i0 < a->dims[0]; i0++) { \
            for (uint32_t i1 = 0; i1 < a->dims[1]; i1++) { \
                for (uint32_t i2 = 0; i2 < a->dims[2]; i2++) { \
                    const int8_t *p1 = a->input1 + i0 * a->stride1[0] + i1 * a->stride1[1] + i2 * a->stride1[2]; \
                    const int8_t *p2 = a->input2 + i0 * a->stride2[0] + i1 * a->stride2[1] + i2 * a->stride2[2]; \
                    for (uint32_t i3 = 0; i3 < a->dims[3]; i3++) { \
                        int32_t v = one(a, p1[i3 * a->stride1[3]], p2[i3 * a->stride2[3]]); \
                        v = v < a->act_min ? a->act_min : v; \
                        *y++ = (int8_t)(v > a->act_max ? a->act_max : v); \
                    } \
                } \
            } \
        } \
    }

// SUB: ADD's rescaling, then input 1 less input 2 (wrapping, so that no blob's
// multipliers make it undefined; valid models stay far from int32's limits).
static inline int32_t sub_one(const mnn_binary_args_t *a, int32_t x1, int32_t x2) {
    int32_t s1 = mnn_requantize((x1 + a->input1_offset) * (1 << a->left_shift), a->input1_mult, a->input1_shift);
    int32_t s2 = mnn_requantize((x2 + a->input2_offset) * (1 << a->left_shift), a->input2_mult, a->input2_shift);
    int32_t diff = (int32_t)((uint32_t)s1 - (uint32_t)s2);
    return mnn_wadd(mnn_requantize(diff, a->output_mult, a->output_shift), a->output_offset);
}

// SQUARED_DIFFERENCE: as SUB (left shift 7), the difference squared, then
// requantized. The square is taken modulo 2^32: a valid model's is below 2^31.
static inline int32_t squared_difference_one(const mnn_binary_args_t *a, int32_t x1, int32_t x2) {
    int32_t s1 = mnn_requantize((x1 + a->input1_offset) * (1 << a->left_shift), a->input1_mult, a->input1_shift);
    int32_t s2 = mnn_requantize((x2 + a->input2_offset) * (1 << a->left_shift), a->input2_mult, a->input2_shift);
    uint32_t diff = (uint32_t)s1 - (uint32_t)s2;
    int32_t square = (int32_t)(diff * diff);
    return mnn_wadd(mnn_requantize(square, a->output_mult, a->output_shift), a->output_offset);
}

// MAXIMUM and MINIMUM compare the stored int8 values, as TFLite Micro does
// (the loader allows them no narrower activation range: nothing to clamp).
static inline int32_t maximum_one(const mnn_binary_args_t *a, int32_t x1, int32_t x2) {
    (void)a;
    return x1 > x2 ? x1 : x2;
}

static inline int32_t minimum_one(const mnn_binary_args_t *a, int32_t x1, int32_t x2) {
    (void)a;
    return x1 < x2 ? x1 : x2;
}

// PRELU (input 2 is alpha): the identity rescaling for x >= 0, x * alpha
// rescaled by the output multiplier below.
static inline int32_t prelu_one(const mnn_binary_args_t *a, int32_t x1, int32_t x2) {
    int32_t x = x1 + a->input1_offset;
    int32_t v = x >= 0 ? mnn_requantize(x, a->input1_mult, a->input1_shift)
        : mnn_requantize(x * (x2 + a->input2_offset), a->output_mult, a->output_shift);
    return mnn_wadd(v, a->output_offset);
}

BINARY(add_direct, add_one)
BINARY(mnn_mul_s8, mul_one)
// SUB, SQUARED_DIFFERENCE and PRELU run one portable loop each: their
// per-element work is a few requantizations with 64-bit products (no 16-bit
// SIMD form), and they are rare and small in the models that use them
// (normalisation statistics, activations). MAXIMUM and MINIMUM also have a
// four-lane DSP path below for inputs that are not broadcast.
BINARY(mnn_sub_s8, sub_one)
BINARY(mnn_squared_difference_s8, squared_difference_one)
static BINARY(maximum_loop, maximum_one)
static BINARY(minimum_loop, minimum_one)
BINARY(mnn_prelu_s8, prelu_one)

#if MNN_DSP
// Four int8 lanes at a time: SSUB8 sets each lane's GE flag where a >= b
// (signed), SEL then takes that lane from its first operand, else from its
// second. One asm block, so that nothing comes between the flags and SEL.
static inline uint32_t max4(uint32_t a, uint32_t b) {
    uint32_t r;
    __asm__ ("ssub8 %0, %1, %2\n\tsel %0, %1, %2" : "=&r" (r) : "r" (a), "r" (b) : "cc");
    return r;
}

static inline uint32_t min4(uint32_t a, uint32_t b) {
    uint32_t r;
    __asm__ ("ssub8 %0, %1, %2\n\tsel %0, %2, %1" : "=&r" (r) : "r" (a), "r" (b) : "cc");
    return r;
}

// Both inputs laid out as the output (no broadcast axis): one flat run.
static int minmax_flat(const mnn_binary_args_t *a) {
    uint32_t natural = 1;
    for (int d = 3; d >= 0; d--) {
        if (a->dims[d] > 1 && (a->stride1[d] != natural || a->stride2[d] != natural)) {
            return 0;
        }
        natural *= a->dims[d];
    }
    return 1;
}

static void minmax_dsp(const mnn_binary_args_t *a, int is_max) {
    const uint32_t n = a->dims[0] * a->dims[1] * a->dims[2] * a->dims[3];     // < 2^31 (the loader)
    uint32_t i = 0;
    for (; n - i >= 4; i += 4) {
        uint32_t x1 = mnn_rd32(a->input1 + i), x2 = mnn_rd32(a->input2 + i);
        mnn_wr32(a->output + i, is_max ? max4(x1, x2) : min4(x1, x2));
    }
    for (; i < n; i++) {
        a->output[i] = (int8_t)(is_max ? maximum_one(a, a->input1[i], a->input2[i])
            : minimum_one(a, a->input1[i], a->input2[i]));
    }
}
#endif

void mnn_maximum_s8(const mnn_binary_args_t *a) {
    #if MNN_DSP
    if (minmax_flat(a)) {
        minmax_dsp(a, 1);
        return;
    }
    #endif
    maximum_loop(a);
}

void mnn_minimum_s8(const mnn_binary_args_t *a) {
    #if MNN_DSP
    if (minmax_flat(a)) {
        minmax_dsp(a, 0);
        return;
    }
    #endif
    minimum_loop(a);
}

// ADD with the per-input rescaling, a function of one int8 value, computed
// once for all 256 values into two tables of the scratch; then one
// requantization per element instead of three.
static void add_tables(const mnn_binary_args_t *a) {
    int32_t *t1 = a->scratch + 128, *t2 = a->scratch + 256 + 128;
    for (int32_t q = -128; q < 128; q++) {
        t1[q] = mnn_requantize((q + a->input1_offset) * (1 << a->left_shift), a->input1_mult, a->input1_shift);
        t2[q] = mnn_requantize((q + a->input2_offset) * (1 << a->left_shift), a->input2_mult, a->input2_shift);
    }
    const mnn_rq_t rq = mnn_rq_prepare(a->output_mult, a->output_shift);
    const int32_t off = a->output_offset, lo = a->act_min, hi = a->act_max;
    int8_t *y = a->output;
    for (uint32_t i0 = 0; i0 < a->dims[0]; i0++) {
        for (uint32_t i1 = 0; i1 < a->dims[1]; i1++) {
            for (uint32_t i2 = 0; i2 < a->dims[2]; i2++) {
                const int8_t *p1 = a->input1 + i0 * a->stride1[0] + i1 * a->stride1[1] + i2 * a->stride1[2];
                const int8_t *p2 = a->input2 + i0 * a->stride2[0] + i1 * a->stride2[1] + i2 * a->stride2[2];
                const uint32_t s1 = a->stride1[3], s2 = a->stride2[3], n = a->dims[3];
                for (uint32_t i3 = 0; i3 < n; i3++) {
                    int32_t v = mnn_wadd(mnn_rq_apply(&rq, mnn_wadd(t1[p1[i3 * s1]], t2[p2[i3 * s2]])), off);
                    v = v < lo ? lo : v;
                    *y++ = (int8_t)(v > hi ? hi : v);
                }
            }
        }
    }
}

void mnn_add_s8(const mnn_binary_args_t *a) {
    if (a->scratch) {
        MNN_COUNT_VARIANT(ADD_TABLES);
        add_tables(a);
    } else if (MNN_WITH_VARIANT(ADD_DIRECT)) {      // only without scratch (mnn_ops.h)
        MNN_COUNT_VARIANT(ADD_DIRECT);
        add_direct(a);
    }
}

void mnn_lut_s8(const mnn_lut_args_t *a) {
    MNN_COUNT_VARIANT(LUT);
    const int8_t *table = a->table + 128;
    for (uint32_t i = 0; i < a->count; i++) {
        a->output[i] = table[a->input[i]];
    }
}
