// Fully connected (int8): out = requantize(sum((x + in_off) * (w + w_off)) + bias).
#include "mnn_kernels.h"
#include "mnn_fixedpoint.h"

// The packer folds the input offset into the bias when the weights are
// symmetric, so the common case is a plain int8 dot product.
// Sums wrap (two's complement) instead of overflowing; see conv.c.
static uint32_t dot_s8(const int8_t *x, const int8_t *w, uint32_t n) {
    uint32_t acc0 = 0, acc1 = 0;
    uint32_t i = 0;
    for (; i + 4 <= n; i += 4) {
        acc0 += (uint32_t)(x[i] * w[i] + x[i + 2] * w[i + 2]);
        acc1 += (uint32_t)(x[i + 1] * w[i + 1] + x[i + 3] * w[i + 3]);
    }
    for (; i < n; i++) {
        acc0 += (uint32_t)(x[i] * w[i]);
    }
    return acc0 + acc1;
}

static uint32_t dot_offset_s8(const int8_t *x, const int8_t *w, uint32_t n,
    int32_t x_off, int32_t w_off) {
    uint32_t acc = 0;
    for (uint32_t i = 0; i < n; i++) {
        acc += (uint32_t)((x[i] + x_off) * (w[i] + w_off));
    }
    return acc;
}

void mnn_fully_connected_s8(const mnn_fc_args_t *a) {
    const uint32_t depth = a->accum_depth;
    const int plain = a->input_offset == 0 && a->filter_offset == 0;
    const int8_t *x = a->input;
    int8_t *y = a->output;
    for (uint32_t b = 0; b < a->batches; b++) {
        const int8_t *w = a->weights;
        for (uint32_t o = 0; o < a->out_depth; o++) {
            uint32_t sum = plain ? dot_s8(x, w, depth)
                : dot_offset_s8(x, w, depth, a->input_offset, a->filter_offset);
            if (a->bias) {
                sum += (uint32_t)mnn_ld32(a->bias, o);
            }
            int32_t acc = (int32_t)sum;
            uint32_t q = a->per_channel ? o : 0;
            acc = mnn_requantize(acc, mnn_ld32(a->mult, q), mnn_ld32(a->shift, q)) + a->output_offset;
            acc = acc < a->act_min ? a->act_min : acc;
            acc = acc > a->act_max ? a->act_max : acc;
            y[o] = (int8_t)acc;
            w += depth;
        }
        x += depth;
        y += a->out_depth;
    }
}
