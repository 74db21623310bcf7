// The op loop and the graph-boundary conversions. Everything was validated
// at load, so nothing here checks.
#include <math.h>
#include <string.h>

#include "mnn.h"
#include "mnn_ops.h"

uint32_t mnn_variant_calls[MNN_V_COUNT];
#define MNN_VARIANT_NAME(name) #name,
const char *const mnn_variant_names[MNN_V_COUNT] = { MNN_VARIANTS(MNN_VARIANT_NAME) };

void (*mnn_poll_hook)(void);
// Zero (in .bss: a native module can have no initialised writable data):
// mnn_run() sets it before any work.
uint32_t mnn_work_left;

void mnn_poll(void) {
    mnn_work_left = MNN_POLL_WORK;
    if (mnn_poll_hook) {
        mnn_poll_hook();
    }
}

// a * b, saturating.
static uint64_t mul_sat(uint64_t a, uint64_t b) {
    return b && a > UINT64_MAX / b ? UINT64_MAX : a * b;
}

static uint64_t geom_work(const mnn_geom_t *g, uint64_t per_tap) {
    uint64_t out = (uint64_t)g->batches * g->out_h * g->out_w * g->out_c;     // < 2^32 (the loader)
    return mul_sat(out, mul_sat((uint64_t)g->k_h * g->k_w, per_tap));
}

uint64_t mnn_op_cost(const mnn_op_t *op) {
    uint64_t work = 0;
    switch (op->opcode) {
        case MNN_OPCODE_FULLY_CONNECTED:
        case MNN_OPCODE_FULLY_CONNECTED_S4:
            work = mul_sat((uint64_t)op->u.fc.batches * op->u.fc.out_depth, op->u.fc.accum_depth);
            break;
        case MNN_OPCODE_CONV_2D:
        case MNN_OPCODE_CONV_2D_MAXPOOL:
        case MNN_OPCODE_CONV_2D_S4: {
            const mnn_conv_args_t *a = &op->u.conv;
            work = geom_work(&a->g, a->g.in_c / a->groups);
            break;
        }
        case MNN_OPCODE_DEPTHWISE_CONV_2D:
        case MNN_OPCODE_DEPTHWISE_CONV_2D_S4:
            work = geom_work(&op->u.conv.g, 1);
            break;
        case MNN_OPCODE_FULLY_CONNECTED_S16:
            work = mul_sat((uint64_t)op->u.fc_s16.batches * op->u.fc_s16.out_depth, op->u.fc_s16.accum_depth);
            break;
        case MNN_OPCODE_CONV_2D_S16:
            work = geom_work(&op->u.conv_s16.g, op->u.conv_s16.g.in_c / op->u.conv_s16.groups);
            break;
        case MNN_OPCODE_DEPTHWISE_CONV_2D_S16:
            work = geom_work(&op->u.conv_s16.g, 1);
            break;
        case MNN_OPCODE_MAX_POOL_2D:
        case MNN_OPCODE_AVERAGE_POOL_2D:
            work = geom_work(&op->u.pool.g, 1);
            break;
        case MNN_OPCODE_MAX_POOL_S16:
        case MNN_OPCODE_AVG_POOL_S16:
            work = geom_work(&op->u.pool16.g, 1);
            break;
        case MNN_OPCODE_BATCH_MATMUL: {
            // MACs, plus the right operand widened once per batch
            const mnn_batch_matmul_args_t *a = &op->u.matmul;
            uint64_t batches = (uint64_t)(a->lhs_batch[0] > a->rhs_batch[0] ? a->lhs_batch[0] : a->rhs_batch[0])
                * (a->lhs_batch[1] > a->rhs_batch[1] ? a->lhs_batch[1] : a->rhs_batch[1]);
            work = mul_sat(batches, mul_sat((uint64_t)a->depth * a->cols, (uint64_t)a->rows + 1));
            break;
        }
        case MNN_OPCODE_TRANSPOSE_CONV: {
            // MACs: each input value meets k_h * k_w * out_c weights
            const mnn_tconv_args_t *a = &op->u.tconv;
            uint64_t in = (uint64_t)a->batches * a->in_h * a->in_w * a->in_c;     // < 2^32 (the loader)
            work = mul_sat(in, mul_sat((uint64_t)a->k_h * a->k_w, a->out_c));
            break;
        }
        case MNN_OPCODE_SVDF: {
            // MACs (feature and time sums), plus the state moved by one value
            const mnn_svdf_args_t *a = &op->u.svdf;
            work = mul_sat((uint64_t)a->batches * a->num_filters, (uint64_t)a->input_size + 2 * (uint64_t)a->memory);
            break;
        }
        case MNN_OPCODE_LSTM: {
            // MACs: per row and step, four gates of units * (input_size + units)
            const mnn_lstm_args_t *a = &op->u.lstm;
            work = mul_sat((uint64_t)a->batches * a->steps, 4 * (uint64_t)a->units * ((uint64_t)a->input_size + a->units));
            break;
        }
        case MNN_OPCODE_RESIZE_BILINEAR:   // four products per value
            work = mul_sat(op->elems, 4);
            break;
        case MNN_OPCODE_STRIDED_COPY:      // the copies report each value they move
        case MNN_OPCODE_GATHER:
        case MNN_OPCODE_MIRROR_PAD:
            work = op->elems;
            break;
    }
    return work + op->elems < work ? UINT64_MAX : work + op->elems;
}

void mnn_run(const mnn_op_t *ops, uint16_t first, uint16_t last) {
    mnn_work_left = MNN_POLL_WORK;      // every run polls at the same points
    for (uint16_t k = first; k < last; k++) {
        const mnn_op_t *op = &ops[k];
        mnn_work(op->elems);
        switch (op->opcode) {
            #if MNN_WITH_OP(FULLY_CONNECTED)
            case MNN_OPCODE_FULLY_CONNECTED:
                mnn_fully_connected_s8(&op->u.fc);
                break;
            #endif
            #if MNN_WITH_OP(SOFTMAX)
            case MNN_OPCODE_SOFTMAX:
                mnn_softmax_s8(&op->u.softmax);
                break;
            #endif
            #if MNN_WITH_OP(CONV_2D)
            case MNN_OPCODE_CONV_2D:
                mnn_conv_s8(&op->u.conv);
                break;
            #endif
            #if MNN_WITH_OP(CONV_2D_MAXPOOL)
            case MNN_OPCODE_CONV_2D_MAXPOOL:
                mnn_conv_pool_s8(&op->u.conv);
                break;
            #endif
            #if MNN_WITH_OP(DEPTHWISE_CONV_2D)
            case MNN_OPCODE_DEPTHWISE_CONV_2D:
                mnn_depthwise_conv_s8(&op->u.conv);
                break;
            #endif
            #if MNN_WITH_OP(MAX_POOL_2D)
            case MNN_OPCODE_MAX_POOL_2D:
                mnn_max_pool_s8(&op->u.pool);
                break;
            #endif
            #if MNN_WITH_OP(AVERAGE_POOL_2D)
            case MNN_OPCODE_AVERAGE_POOL_2D:
                mnn_avg_pool_s8(&op->u.pool);
                break;
            #endif
            #if MNN_WITH_OP(ADD)
            case MNN_OPCODE_ADD:
                mnn_add_s8(&op->u.bin);
                break;
            #endif
            #if MNN_WITH_OP(MUL)
            case MNN_OPCODE_MUL:
                MNN_COUNT_VARIANT(MUL);     // the one-variant families are counted here
                mnn_mul_s8(&op->u.bin);
                break;
            #endif
            #if MNN_WITH_OP(LUT)
            case MNN_OPCODE_LUT:
                mnn_lut_s8(&op->u.lut);
                break;
            #endif
            #if MNN_WITH_OP(CONCATENATION)
            case MNN_OPCODE_CONCATENATION:
                MNN_COUNT_VARIANT(CONCAT);
                mnn_concat_s8(&op->u.concat);
                break;
            #endif
            #if MNN_WITH_OP(PAD)
            case MNN_OPCODE_PAD:
                MNN_COUNT_VARIANT(PAD);
                mnn_pad_s8(&op->u.pad);
                break;
            #endif
            #if MNN_WITH_OP(MEAN)
            case MNN_OPCODE_MEAN:
                MNN_COUNT_VARIANT(MEAN);
                mnn_mean_s8(&op->u.mean);
                break;
            #endif
            // === dispatch ELEMENTWISE ===
            #if MNN_WITH_OP(SUB)
            case MNN_OPCODE_SUB:
                MNN_COUNT_VARIANT(SUB);
                mnn_sub_s8(&op->u.bin);
                break;
            #endif
            #if MNN_WITH_OP(SQUARED_DIFFERENCE)
            case MNN_OPCODE_SQUARED_DIFFERENCE:
                MNN_COUNT_VARIANT(SQUARED_DIFFERENCE);
                mnn_squared_difference_s8(&op->u.bin);
                break;
            #endif
            #if MNN_WITH_OP(MAXIMUM)
            case MNN_OPCODE_MAXIMUM:
                MNN_COUNT_VARIANT(MAXIMUM);
                mnn_maximum_s8(&op->u.bin);
                break;
            #endif
            #if MNN_WITH_OP(MINIMUM)
            case MNN_OPCODE_MINIMUM:
                MNN_COUNT_VARIANT(MINIMUM);
                mnn_minimum_s8(&op->u.bin);
                break;
            #endif
            #if MNN_WITH_OP(PRELU)
            case MNN_OPCODE_PRELU:
                MNN_COUNT_VARIANT(PRELU);
                mnn_prelu_s8(&op->u.bin);
                break;
            #endif
            // === dispatch MOVEMENT ===
            #if MNN_WITH_OP(STRIDED_COPY)
            case MNN_OPCODE_STRIDED_COPY:
                mnn_strided_copy_s8(&op->u.copy);
                break;
            #endif
            #if MNN_WITH_OP(GATHER)
            case MNN_OPCODE_GATHER:
                mnn_gather_s8(&op->u.gather);
                break;
            #endif
            #if MNN_WITH_OP(MIRROR_PAD)
            case MNN_OPCODE_MIRROR_PAD:
                mnn_mirror_pad_s8(&op->u.mirror_pad);
                break;
            #endif
            // === dispatch RESIZE ===
            #if MNN_WITH_OP(RESIZE_NEAREST)
            case MNN_OPCODE_RESIZE_NEAREST:
                mnn_resize_nearest_s8(&op->u.resize);
                break;
            #endif
            #if MNN_WITH_OP(RESIZE_BILINEAR)
            case MNN_OPCODE_RESIZE_BILINEAR:
                mnn_resize_bilinear_s8(&op->u.resize);
                break;
            #endif
            #if MNN_WITH_OP(TRANSPOSE_CONV)
            case MNN_OPCODE_TRANSPOSE_CONV:
                mnn_transpose_conv_s8(&op->u.tconv);
                break;
            #endif
            // === dispatch REDUCE ===
            #if MNN_WITH_OP(ARG_MAX)
            case MNN_OPCODE_ARG_MAX:
                mnn_arg_minmax_s8(&op->u.reduce);
                break;
            #endif
            #if MNN_WITH_OP(ARG_MIN)
            case MNN_OPCODE_ARG_MIN:
                mnn_arg_minmax_s8(&op->u.reduce);
                break;
            #endif
            #if MNN_WITH_OP(REDUCE_MAX)
            case MNN_OPCODE_REDUCE_MAX:
                mnn_reduce_minmax_s8(&op->u.reduce);
                break;
            #endif
            #if MNN_WITH_OP(REDUCE_MIN)
            case MNN_OPCODE_REDUCE_MIN:
                mnn_reduce_minmax_s8(&op->u.reduce);
                break;
            #endif
            #if MNN_WITH_OP(L2_NORMALIZATION)
            case MNN_OPCODE_L2_NORMALIZATION:
                mnn_l2norm_s8(&op->u.l2norm);
                break;
            #endif
            #if MNN_WITH_OP(LOG_SOFTMAX)
            case MNN_OPCODE_LOG_SOFTMAX:
                mnn_log_softmax_s8(&op->u.log_softmax);
                break;
            #endif
            // === dispatch MATMUL ===
            #if MNN_WITH_OP(BATCH_MATMUL)
            case MNN_OPCODE_BATCH_MATMUL:
                mnn_batch_matmul_s8(&op->u.matmul);
                break;
            #endif
            // === dispatch STATE ===
            #if MNN_WITH_OP(ASSIGN)
            case MNN_OPCODE_ASSIGN:
                memmove(op->u.assign.target, op->u.assign.source, op->u.assign.nbytes);
                break;
            #endif
            // === dispatch SVDF ===
            #if MNN_WITH_OP(SVDF)
            case MNN_OPCODE_SVDF:
                mnn_svdf_s8(&op->u.svdf);
                break;
            #endif
            // === dispatch SEQUENCE ===
            #if MNN_WITH_OP(LSTM)
            case MNN_OPCODE_LSTM:
                mnn_lstm_s8(&op->u.lstm);
                break;
            #endif
            // === dispatch S16 ===
            #if MNN_WITH_OP(FULLY_CONNECTED_S16)
            case MNN_OPCODE_FULLY_CONNECTED_S16:
                mnn_fully_connected_s16(&op->u.fc_s16);
                break;
            #endif
            #if MNN_WITH_OP(CONV_2D_S16)
            case MNN_OPCODE_CONV_2D_S16:
                mnn_conv_s16(&op->u.conv_s16);
                break;
            #endif
            #if MNN_WITH_OP(DEPTHWISE_CONV_2D_S16)
            case MNN_OPCODE_DEPTHWISE_CONV_2D_S16:
                mnn_depthwise_conv_s16(&op->u.conv_s16);
                break;
            #endif
            #if MNN_WITH_OP(SOFTMAX_S8_S16)
            case MNN_OPCODE_SOFTMAX_S8_S16:
                mnn_softmax_s8_s16(&op->u.softmax);
                break;
            #endif
            // === dispatch S16X ===
            #if MNN_WITH_OP(ADD_S16)
            case MNN_OPCODE_ADD_S16:
                mnn_add_s16(&op->u.bin16);
                break;
            #endif
            #if MNN_WITH_OP(MUL_S16)
            case MNN_OPCODE_MUL_S16:
                mnn_mul_s16(&op->u.bin16);
                break;
            #endif
            #if MNN_WITH_OP(MAX_POOL_S16)
            case MNN_OPCODE_MAX_POOL_S16:
                mnn_max_pool_s16(&op->u.pool16);
                break;
            #endif
            #if MNN_WITH_OP(AVG_POOL_S16)
            case MNN_OPCODE_AVG_POOL_S16:
                mnn_avg_pool_s16(&op->u.pool16);
                break;
            #endif
            #if MNN_WITH_OP(SOFTMAX_S16)
            case MNN_OPCODE_SOFTMAX_S16:
                mnn_softmax_s16(&op->u.softmax16);
                break;
            #endif
            #if MNN_WITH_OP(TANH_S16)
            case MNN_OPCODE_TANH_S16:
                mnn_tanh_s16(&op->u.sigmoid16);
                break;
            #endif
            #if MNN_WITH_OP(LOGISTIC_S16)
            case MNN_OPCODE_LOGISTIC_S16:
                mnn_logistic_s16(&op->u.sigmoid16);
                break;
            #endif
            #if MNN_WITH_OP(REQUANT)
            case MNN_OPCODE_REQUANT:
                mnn_requant(&op->u.requant);
                break;
            #endif
            #if MNN_WITH_OP(PAD_S16)
            case MNN_OPCODE_PAD_S16:
                mnn_pad_s16(&op->u.pad);
                break;
            #endif
            #if MNN_WITH_OP(CONCATENATION_S16)
            case MNN_OPCODE_CONCATENATION_S16:
                mnn_concat_s8(&op->u.concat);
                break;
            #endif
            // === dispatch S4 ===
            #if MNN_WITH_OP(FULLY_CONNECTED_S4)
            case MNN_OPCODE_FULLY_CONNECTED_S4:
                mnn_fully_connected_s4(&op->u.fc);
                break;
            #endif
            #if MNN_WITH_OP(CONV_2D_S4)
            case MNN_OPCODE_CONV_2D_S4:
                mnn_conv_s4(&op->u.conv);
                break;
            #endif
            #if MNN_WITH_OP(DEPTHWISE_CONV_2D_S4)
            case MNN_OPCODE_DEPTHWISE_CONV_2D_S4:
                mnn_depthwise_conv_s4(&op->u.conv);
                break;
            #endif
        }
    }
}

// TFLite's QUANTIZE: round(x / scale) half away from zero, in float.
void mnn_quantize_s8(const float *x, int8_t *q, size_t n, float scale, int32_t zero_point) {
    for (size_t i = 0; i < n; i++) {
        float r = roundf(x[i] / scale);
        int32_t v;
        if (!(r == r)) {
            v = zero_point;                 // NaN
        } else if (r > 1000.0f) {
            v = 127;
        } else if (r < -1000.0f) {
            v = -128;
        } else {
            v = (int32_t)r + zero_point;
        }
        q[i] = (int8_t)(v < -128 ? -128 : (v > 127 ? 127 : v));
    }
}

void mnn_dequantize_s8(const int8_t *q, float *x, size_t n, float scale, int32_t zero_point) {
    for (size_t i = 0; i < n; i++) {
        x[i] = scale * (float)(q[i] - zero_point);
    }
}

// The same to int16 (16x8 models): round(x / scale) half away from zero in
// float, plus the zero point, clamped to int16; NaN gives the zero point and
// a quotient beyond +-1e6 saturates (TFLite Micro's int32 cast of it is undefined).
void mnn_quantize_s16(const float *x, int16_t *q, size_t n, float scale, int32_t zero_point) {
    for (size_t i = 0; i < n; i++) {
        float r = roundf(x[i] / scale);
        int32_t v;
        if (!(r == r)) {
            v = zero_point;
        } else if (r > 1000000.0f) {
            v = 32767;
        } else if (r < -1000000.0f) {
            v = -32768;
        } else {
            v = (int32_t)r + zero_point;
        }
        q[i] = (int16_t)(v < -32768 ? -32768 : (v > 32767 ? 32767 : v));
    }
}

void mnn_dequantize_s16(const int16_t *q, float *x, size_t n, float scale, int32_t zero_point) {
    for (size_t i = 0; i < n; i++) {
        x[i] = scale * (float)((int32_t)q[i] - zero_point);
    }
}
