// micronn int8 kernels: plain C, no allocation, no I/O.
//
// Every kernel takes one argument record that the loader filled and checked
// at load time, so kernels do no validation of their own. One op family per
// file; each family has one entry point that picks the fastest variant.
#ifndef MICRONN_KERNELS_H
#define MICRONN_KERNELS_H

#include <stdint.h>

// Fully connected, int8 activations and weights, int32 bias.
typedef struct {
    const int8_t *input;     // [batches, accum_depth]
    const int8_t *weights;   // [out_depth, accum_depth]
    const int32_t *bias;     // [out_depth] or NULL
    const int32_t *mult;     // [out_depth], or [1] when per_channel == 0
    const int32_t *shift;    // same length as mult
    int8_t *output;          // [batches, out_depth]
    int32_t input_offset;
    int32_t filter_offset;
    int32_t output_offset;
    int32_t act_min;
    int32_t act_max;
    uint32_t batches;
    uint32_t accum_depth;
    uint32_t out_depth;
    uint8_t per_channel;
} mnn_fc_args_t;

void mnn_fully_connected_s8(const mnn_fc_args_t *a);

// Softmax over the last axis, int8 in, int8 out (scale 1/256, zero point -128).
typedef struct {
    const int8_t *input;
    int8_t *output;
    int32_t input_mult;
    int32_t input_left_shift;
    int32_t diff_min;
    uint32_t rows;
    uint32_t row_size;
} mnn_softmax_args_t;

void mnn_softmax_s8(const mnn_softmax_args_t *a);

#endif // MICRONN_KERNELS_H
