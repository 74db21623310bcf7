// LSTM, TFLite Micro's integer UNIDIRECTIONAL_SEQUENCE_LSTM (int8 input, weights
// and hidden state, int32 bias, int16 gates and cell state). One step of one batch
// row, for each unit i:
//   1. each gate's pre-activation: the input sum sum_k W[g][i][k] * (x[k] +
//      input_offset) + bias[g][i] requantized to int16 (scale 2^-12), the
//      recurrent sum sum_k R[g][i][k] * (h[k] - hidden_zero_point) requantized
//      alike, the two added with int16 saturation;
//   2. the input, forget and output gates through int16 LOGISTIC, the cell gate
//      through int16 TANH (the only activation a .tflite can give it), both
//      with input multiplier 3 and no shift (TFLite Micro's power-of-two case of the 2^-12 scale); outputs in
//      2^-15 steps;
//   3. cell = sat16(rq(f * cell)) + sat16(rq(i * g)), saturated to int16, then
//      clipped to [-cell_clip, cell_clip] when cell_clip > 0;
//   4. hidden = rq(tanh(cell) * o) + hidden_zero_point, clamped to int8, where
//      tanh(cell) scales the cell by cell_tanh_mult/shift first.
// Every unit's gates read the old hidden state, so the new hidden values go to
// the step's output row first and are copied into the state at the end of the
// step. The gates of unit i and its cell value depend on nothing else of the
// step, so one unit is done at a time (TFLite Micro does one gate at a time
// over all units: the same arithmetic in another order) and no scratch is used.
//
// The four gates' sums run together over the input (and over the hidden
// state), each value read once for the four weight rows. On cores with the DSP
// extension they take two MACs per SMLAD: four int8 values widened with the
// offset added (SXTAB16) once for the four rows, four weights (SXTB16).
#include <string.h>

#include "mnn_kernels.h"
#include "mnn_fixedpoint.h"
#include "mnn_simd.h"

// The four gates' sums of one unit: acc[g] = sum_k w[g * stride + k] * (x[k] + offset),
// the four weight rows in one pass over x (each value of x widened once for all
// four). Sums wrap (two's complement) instead of overflowing, as everywhere in the
// kernels.
static inline void lstm_dot4(const int8_t *w, uint32_t stride, const int8_t *x, uint32_t n, int32_t offset,
    uint32_t acc[4]) {
    const int8_t *w0 = w, *w1 = w + stride, *w2 = w + 2 * stride, *w3 = w + 3 * stride;
    uint32_t k = 0;
    uint32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    #if MNN_DSP
    const uint32_t off2 = ((uint32_t)offset & 0xffffu) * 0x00010001u;
    int32_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (; k + 4 <= n; k += 4) {
        const uint32_t xv = mnn_rd32(x + k);
        const uint32_t xa = mnn_sxtab16(off2, xv), xb = mnn_sxtab16_ror8(off2, xv);
        uint32_t wv = mnn_rd32(w0 + k);
        s0 = mnn_smlad(xb, mnn_sxtb16_ror8(wv), mnn_smlad(xa, mnn_sxtb16(wv), s0));
        wv = mnn_rd32(w1 + k);
        s1 = mnn_smlad(xb, mnn_sxtb16_ror8(wv), mnn_smlad(xa, mnn_sxtb16(wv), s1));
        wv = mnn_rd32(w2 + k);
        s2 = mnn_smlad(xb, mnn_sxtb16_ror8(wv), mnn_smlad(xa, mnn_sxtb16(wv), s2));
        wv = mnn_rd32(w3 + k);
        s3 = mnn_smlad(xb, mnn_sxtb16_ror8(wv), mnn_smlad(xa, mnn_sxtb16(wv), s3));
    }
    a0 = (uint32_t)s0;
    a1 = (uint32_t)s1;
    a2 = (uint32_t)s2;
    a3 = (uint32_t)s3;
    #endif
    for (; k < n; k++) {
        const int32_t xv = x[k] + offset;
        a0 += (uint32_t)(w0[k] * xv);
        a1 += (uint32_t)(w1[k] * xv);
        a2 += (uint32_t)(w2[k] * xv);
        a3 += (uint32_t)(w3[k] * xv);
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}

static inline int32_t sat16(int32_t v) {
    return v < -32768 ? -32768 : (v > 32767 ? 32767 : v);
}

// Entry i of the uint16 table (in the blob: any address, little-endian as the cores).
static inline uint32_t tab(const uint8_t *t, uint32_t i) {
    uint16_t v;
    memcpy(&v, t + 2 * i, sizeof(v));
    return v;
}

// TFLite's int16 logistic of an input already scaled to the table's steps. The
// gates pass 3 * an int16 value, so mag >> 9 <= 192 and TFLite's saturation
// (at 255 and above) never applies.
static int32_t logistic16(const uint8_t *t, int32_t v) {
    const uint32_t mag = v < 0 ? (uint32_t)-v : (uint32_t)v;
    const uint32_t uh = mag >> 9;
    const uint32_t ua = tab(t, uh), ub = tab(t, uh + 1);
    uint32_t r = (ua << 9) + (mag & 0x1ff) * (ub - ua);
    r = v >= 0 ? r + (1u << 9) : (1u << 25) - r + (1u << 9) - 1;
    return (int16_t)(r >> 10);
}

// TFLite's int16 tanh of an input already scaled to the table's steps.
static int32_t tanh16(const uint8_t *t, int32_t v) {
    const uint32_t mag = v < 0 ? (uint32_t)-v : (uint32_t)v;
    const uint32_t uh = mag >> 8;
    int32_t r;
    if (uh >= 255) {
        r = 0xffff << 8;
    } else {
        const uint32_t ua = tab(t, uh), ub = tab(t, uh + 1);
        r = (int32_t)((ua << 8) + (mag & 0xff) * (ub - ua));
    }
    r = v >= 0 ? r - (1 << 23) + (1 << 7) : -r + (1 << 23) + (1 << 7) - 1;
    return (int16_t)(r >> 8);
}

typedef struct {
    mnn_rq_t in[4], rec[4], forget, update, hidden;
} lstm_rq_t;

// The four gates of unit i before their activations, int16 in 2^-12 steps.
static inline void gate_sums(const mnn_lstm_args_t *a, const lstm_rq_t *q, uint32_t i, const int8_t *x,
    const int8_t *h, int32_t v[4]) {
    const uint32_t units = a->units, in = a->input_size;
    uint32_t si[4], sr[4];
    lstm_dot4(a->weights_input + i * in, units * in, x, in, a->input_offset, si);
    lstm_dot4(a->weights_recurrent + i * units, units * units, h, units, -a->hidden_zero_point, sr);
    for (uint32_t g = 0; g < 4; g++) {
        const uint32_t sum = si[g] + (uint32_t)mnn_ld32(a->bias, g * units + i);
        const int32_t vi = sat16(mnn_rq_apply(&q->in[g], (int32_t)sum));
        const int32_t vr = sat16(mnn_rq_apply(&q->rec[g], (int32_t)sr[g]));
        v[g] = sat16(vi + vr);
    }
}

void mnn_lstm_s8(const mnn_lstm_args_t *a) {
    #if MNN_DSP
    MNN_COUNT_VARIANT(LSTM_DSP);
    #else
    MNN_COUNT_VARIANT(LSTM);
    #endif
    lstm_rq_t q;
    for (uint32_t g = 0; g < 4; g++) {
        q.in[g] = mnn_rq_prepare(a->input_mult[g], a->input_shift[g]);
        q.rec[g] = mnn_rq_prepare(a->recurrent_mult[g], a->recurrent_shift[g]);
    }
    q.forget = mnn_rq_prepare(a->forget_mult, a->forget_shift);
    q.update = mnn_rq_prepare(a->update_mult, a->update_shift);
    q.hidden = mnn_rq_prepare(a->hidden_mult, a->hidden_shift);
    const uint32_t units = a->units, in = a->input_size;
    const int32_t clip = a->cell_clip;
    const int32_t tround = a->cell_tanh_shift > 0 ? (int32_t)(1u << (a->cell_tanh_shift - 1)) : 0;
    const uint8_t *t = a->table;
    for (uint32_t b = 0; b < a->batches; b++) {
        int8_t *h = a->hidden + b * units;
        int16_t *c = a->cell + b * units;
        for (uint32_t s = 0; s < a->steps; s++) {
            const uint32_t r = a->time_major ? s * a->batches + b : b * a->steps + s;
            const int8_t *x = a->input + r * in;
            int8_t *y = a->output + r * units;
            for (uint32_t i = 0; i < units; i++) {
                int32_t gv[4];
                gate_sums(a, &q, i, x, h, gv);
                const int32_t ig = logistic16(t, 3 * gv[0]);
                const int32_t fg = logistic16(t, 3 * gv[1]);
                const int32_t cg = tanh16(t, 3 * gv[2]);
                const int32_t og = logistic16(t, 3 * gv[3]);
                int32_t v = sat16(mnn_rq_apply(&q.forget, fg * c[i]));
                v = sat16(v + sat16(mnn_rq_apply(&q.update, ig * cg)));
                if (clip > 0) {
                    v = v > clip ? clip : (v < -clip ? -clip : v);
                }
                c[i] = (int16_t)v;
                const int32_t th = tanh16(t, (v * a->cell_tanh_mult + tround) >> a->cell_tanh_shift);
                y[i] = mnn_clamp8(mnn_wadd(mnn_rq_apply(&q.hidden, th * og), a->hidden_zero_point), -128, 127);
                mnn_work(4 * (in + units));
            }
            memcpy(h, y, units);
        }
    }
}
