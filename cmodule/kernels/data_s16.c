// PAD_S16: constant padding of int16 values (PAD's record and arguments, the
// pointers holding int16 data).
#include <string.h>

#include "mnn_kernels.h"

void mnn_pad_s16(const mnn_pad_args_t *a) {
    uint32_t od[4];
    for (int d = 0; d < 4; d++) {
        od[d] = a->before[d] + a->in_dims[d] + a->after[d];
    }
    int16_t *y = (int16_t *)(void *)a->output;
    const int16_t *x = (const int16_t *)(const void *)a->input;
    const size_t total = (size_t)od[0] * od[1] * od[2] * od[3];
    for (size_t k = 0; k < total; k++) {
        y[k] = (int16_t)a->value;
    }
    for (uint32_t i0 = 0; i0 < a->in_dims[0]; i0++) {
        for (uint32_t i1 = 0; i1 < a->in_dims[1]; i1++) {
            for (uint32_t i2 = 0; i2 < a->in_dims[2]; i2++) {
                size_t at = (((size_t)(i0 + a->before[0]) * od[1] + i1 + a->before[1]) * od[2]
                             + i2 + a->before[2]) * od[3] + a->before[3];
                memcpy(y + at, x, (size_t)a->in_dims[3] * 2);
                x += a->in_dims[3];
            }
        }
    }
}
