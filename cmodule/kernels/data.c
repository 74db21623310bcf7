// Data movement: concatenation and padding (int8, no arithmetic).
#include <string.h>

#include "mnn_kernels.h"

void mnn_concat_s8(const mnn_concat_args_t *a) {
    int8_t *y = a->output;
    for (uint32_t o = 0; o < a->outer; o++) {
        for (uint32_t k = 0; k < a->n_inputs; k++) {
            memcpy(y, a->inputs[k] + o * a->chunk[k], a->chunk[k]);
            y += a->chunk[k];
        }
    }
}

void mnn_pad_s8(const mnn_pad_args_t *a) {
    uint32_t od[4];
    for (int d = 0; d < 4; d++) {
        od[d] = a->before[d] + a->in_dims[d] + a->after[d];
    }
    memset(a->output, (int8_t)a->value, (size_t)od[0] * od[1] * od[2] * od[3]);
    const int8_t *x = a->input;
    for (uint32_t i0 = 0; i0 < a->in_dims[0]; i0++) {
        for (uint32_t i1 = 0; i1 < a->in_dims[1]; i1++) {
            for (uint32_t i2 = 0; i2 < a->in_dims[2]; i2++) {
                size_t at = (((size_t)(i0 + a->before[0]) * od[1] + i1 + a->before[1]) * od[2]
                             + i2 + a->before[2]) * od[3] + a->before[3];
                memcpy(a->output + at, x, a->in_dims[3]);
                x += a->in_dims[3];
            }
        }
    }
}
