// REQUANT: TFLite's Requantize between int8 and int16 (QUANTIZE ops between
// integer types): (x - input zero point) requantized, plus the output zero
// point, clamped to the output type.
#include "mnn_kernels.h"
#include "mnn_fixedpoint.h"

void mnn_requant(const mnn_requant_args_t *a) {
    const mnn_rq_t rq = mnn_rq_prepare(a->mult, a->shift);
    const int32_t lo = a->out16 ? -32768 : -128, hi = a->out16 ? 32767 : 127;
    for (uint32_t i = 0; i < a->count; i++) {
        const int32_t x = a->in16 ? ((const int16_t *)a->input)[i] : ((const int8_t *)a->input)[i];
        int32_t v = mnn_wadd(mnn_rq_apply(&rq, x - a->input_zero_point), a->output_offset);
        v = v < lo ? lo : (v > hi ? hi : v);
        if (a->out16) {
            ((int16_t *)a->output)[i] = (int16_t)v;
        } else {
            ((int8_t *)a->output)[i] = (int8_t)v;
        }
    }
}
