// Fully connected, 16x8 (FULLY_CONNECTED_S16): int16 input rows times int8
// weight rows, int64 (or wrapping int32) sums, per-tensor or per-channel
// requantization to int16 (mnn_s16.h).
//
// Weight rows in pairs, each input row read once for both (mnn_dot2_s16:
// SMLAD on cores with the DSP extension).
#include "mnn_s16.h"

void mnn_fully_connected_s16(const mnn_fc_s16_args_t *a) {
    const uint32_t depth = a->accum_depth;
    const int acc64 = a->acc64;
    const uint32_t work = mnn_sat_mul(mnn_sat_mul(depth, a->batches), 2);
    #if MNN_DSP
    MNN_COUNT_VARIANT(FC_S16_DSP);
    #else
    MNN_COUNT_VARIANT(FC_S16);
    #endif
    for (uint32_t o = 0; o < a->out_depth; o += 2) {
        mnn_work(work);
        const int two = o + 1 < a->out_depth;
        const mnn_s16_rq_t rq0 = mnn_s16_rq_prepare(a->bias, acc64, a->mult, a->shift, a->per_channel ? o : 0, o);
        const mnn_s16_rq_t rq1 = mnn_s16_rq_prepare(a->bias, acc64, a->mult, a->shift,
            a->per_channel && two ? o + 1 : 0, two ? o + 1 : o);
        const int8_t *w0 = a->weights + o * depth, *w1 = two ? w0 + depth : w0;
        const int16_t *x = a->input;
        int16_t *y = a->output + o;
        for (uint32_t b = 0; b < a->batches; b++, x += depth, y += a->out_depth) {
            int64_t t0 = 0, t1 = 0;
            mnn_dot2_s16(x, w0, w1, depth, &t0, &t1);
            y[0] = mnn_s16_out(&rq0, acc64, t0, a->act_min, a->act_max);
            if (two) {
                y[1] = mnn_s16_out(&rq1, acc64, t1, a->act_min, a->act_max);
            }
        }
    }
}
