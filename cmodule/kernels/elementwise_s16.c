// Elementwise int16 ops of TFLite's 16x8 mode: ADD_S16 and MUL_S16, with
// TFLite's broadcasting (strides in elements, 0 on a broadcast axis).
// TFLite Micro's arithmetic: ADD rescales both inputs (shifted left by
// left_shift, 15) to a common scale, adds and requantizes; MUL requantizes
// the product. Zero points are 0 (the loader checks), so |x| <= 2^15 and
// every intermediate fits an int32 before the requantizations.
#include "mnn_kernels.h"
#include "mnn_fixedpoint.h"

// The three requantizations, prepared once per call (mnn_fixedpoint.h).
typedef struct {
    mnn_rq_t in1, in2, out;
    int32_t left_shift;
} rq3_t;

static inline int32_t add16_one(const rq3_t *q, int32_t x1, int32_t x2) {
    int32_t s1 = mnn_rq_apply(&q->in1, x1 * (1 << q->left_shift));
    int32_t s2 = mnn_rq_apply(&q->in2, x2 * (1 << q->left_shift));
    return mnn_rq_apply(&q->out, mnn_wadd(s1, s2));
}

static inline int32_t mul16_one(const rq3_t *q, int32_t x1, int32_t x2) {
    return mnn_rq_apply(&q->out, x1 * x2);
}

#define BINARY16(name, one) \
    void name(const mnn_binary16_args_t *a) { \
        int16_t *y = a->output; \
        const int32_t lo = a->act_min, hi = a->act_max; \
        const rq3_t q = { mnn_rq_prepare(a->input1_mult, a->input1_shift), \
                          mnn_rq_prepare(a->input2_mult, a->input2_shift), \
                          mnn_rq_prepare(a->output_mult, a->output_shift), a->left_shift }; \
        for (uint32_t i0 = 0; i0 < a->dims[0]; i0++) { \
            for (uint32_t i1 = 0; i1 < a->dims[1]; i1++) { \
                for (uint32_t i2 = 0; i2 < a->dims[2]; i2++) { \
                    const int16_t *p1 = a->input1 + i0 * a->stride1[0] + i1 * a->stride1[1] + i2 * a->stride1[2]; \
                    const int16_t *p2 = a->input2 + i0 * a->stride2[0] + i1 * a->stride2[1] + i2 * a->stride2[2]; \
                    const uint32_t s1 = a->stride1[3], s2 = a->stride2[3], n = a->dims[3]; \
                    for (uint32_t i3 = 0; i3 < n; i3++) { \
                        int32_t v = one(&q, p1[i3 * s1], p2[i3 * s2]); \
                        v = v < lo ? lo : v; \
                        *y++ = (int16_t)(v > hi ? hi : v); \
                    } \
                } \
            } \
        } \
    }

BINARY16(mnn_add_s16, add16_one)
BINARY16(mnn_mul_s16, mul16_one)
