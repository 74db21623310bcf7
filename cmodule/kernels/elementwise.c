// Elementwise int8 ops: ADD and MUL with TFLite's broadcasting, and table
// lookups for every unary op (the host computes the table).
#include "mnn_kernels.h"
#include "mnn_fixedpoint.h"
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

BINARY(add_direct, add_one)
BINARY(mnn_mul_s8, mul_one)

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
