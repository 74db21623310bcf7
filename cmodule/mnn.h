// micronn core: blob loader and runtime. Plain C: no MicroPython headers,
// no allocation, no I/O. The binding (modmicronn.c) owns all memory.
#ifndef MICRONN_MNN_H
#define MICRONN_MNN_H

#include <stddef.h>
#include <stdint.h>

#include "mnn_format.h"
#include "kernels/mnn_kernels.h"

typedef enum {
    MNN_OK = 0,
    MNN_E_TRUNCATED,        // a structure runs past the end of the buffer
    MNN_E_MAGIC,            // not a micronn blob
    MNN_E_VERSION,          // format major version this module cannot read
    MNN_E_SIZE,             // total_size disagrees with the buffer
    MNN_E_CRC,              // checksum mismatch
    MNN_E_HEADER,           // a header field is out of range
    MNN_E_SECTION,          // a section entry is bad or missing
    MNN_E_TENSOR,           // a tensor record is bad
    MNN_E_OP,               // an op record or its parameters are bad
    MNN_E_OP_UNSUPPORTED,   // an op code this module does not know
    MNN_E_IO,               // graph inputs/outputs are bad
    MNN_E_META,             // a metadata entry is bad
    MNN_E_OP_ABSENT,        // an op this build leaves out (mnn_ops.h); what names it
} mnn_status_t;

// Where and why loading failed; what names the field or check.
typedef struct {
    mnn_status_t status;
    const char *what;
    int32_t index;          // op, tensor or section index; -1 if none
    uint32_t value;         // the offending value
    uint32_t limit;         // what it was checked against
} mnn_error_t;

// Everything the binding needs to know about a graph input or output.
typedef struct {
    uint8_t dtype;
    uint8_t ndim;
    uint32_t dims[MNN_MAX_DIMS];
    uint32_t nbytes;
    uint32_t offset;        // in the arena
    float scale;
    int32_t zero_point;
} mnn_tensor_info_t;

typedef struct {
    uint8_t opcode;
    uint32_t elems;         // the larger of its first input and output, in elements
    union {
        mnn_fc_args_t fc;
        mnn_softmax_args_t softmax;
        mnn_conv_args_t conv;
        mnn_pool_args_t pool;
        mnn_binary_args_t bin;
        mnn_lut_args_t lut;
        mnn_concat_args_t concat;
        mnn_pad_args_t pad;
        mnn_mean_args_t mean;
        // === union ELEMENTWISE ===
        // === union MOVEMENT ===
        mnn_copy_args_t copy;
        mnn_gather_args_t gather;
        mnn_mirror_pad_args_t mirror_pad;
        // === union RESIZE ===
        mnn_resize_args_t resize;
        mnn_tconv_args_t tconv;
        // === union REDUCE ===
        mnn_reduce_args_t reduce;
        mnn_l2norm_args_t l2norm;
        mnn_log_softmax_args_t log_softmax;
        // === union MATMUL ===
        mnn_batch_matmul_args_t matmul;
        // === union STATE ===
        mnn_assign_args_t assign;
        // === union SVDF ===
        mnn_svdf_args_t svdf;
        // === union SEQUENCE ===
        mnn_lstm_args_t lstm;
        // === union S16 ===
        mnn_fc_s16_args_t fc_s16;
        mnn_conv_s16_args_t conv_s16;
        // === union S16X ===
        mnn_binary16_args_t bin16;
        mnn_pool16_args_t pool16;
        mnn_softmax16_args_t softmax16;
        mnn_sigmoid16_args_t sigmoid16;
        mnn_requant_args_t requant;
        // (PAD_S16 uses pad, CONCATENATION_S16 concat)
        // === union S4 ===
        // (the S4 ops use fc and conv: their weights pointer holds packed int4)
    } u;
} mnn_op_t;

typedef struct {
    const uint8_t *blob;
    uint32_t size;
    uint16_t version_minor;
    uint32_t flags;         // MNN_HDR_FLAG_* (FLOAT_INPUT, FLOAT_OUTPUT)
    uint16_t tensor_count;
    uint16_t op_count;
    uint16_t input_count;
    uint16_t output_count;
    uint32_t arena_size;
    uint32_t scratch_size;
    uint32_t const_size;
    uint32_t macs;
    uint32_t state_size;    // bytes of model state (STATE tensors), the model's own memory
    uint16_t once_count;    // the first once_count ops run once, at load (initial state); runs start after them
    uint32_t tensors_off;   // absolute offsets of the sections
    uint32_t ops_off;
    uint32_t ops_size;
    uint32_t io_off;
    uint32_t const_off;
    const char *name;       // metadata (not NUL-terminated), NULL if absent
    uint32_t name_len;
    const char *labels;     // '\n'-separated
    uint32_t labels_len;
    const char *input_names;    // '\n'-separated, one per graph input (INPUT_NAMES), NULL if absent
    uint32_t input_names_len;
    const char *output_names;   // the same for the outputs (OUTPUT_NAMES)
    uint32_t output_names_len;
} mnn_model_t;

// Validate a blob completely. On success every later call is safe.
mnn_status_t mnn_model_load(mnn_model_t *m, const uint8_t *blob, size_t len, mnn_error_t *err);

// Fill ops[op_count] with kernel arguments pointing into the blob, the arena
// (arena_size + scratch_size bytes) and the state (state_size bytes, 8-byte
// aligned; NULL when state_size is 0). Only after a successful mnn_model_load.
void mnn_model_bind(const mnn_model_t *m, mnn_op_t *ops, uint8_t *arena, uint8_t *state);

// Set every state tensor to its zero point (TFLite Micro's Reset()). Loading a
// model is this, then running ops [0, once_count) (the initial values); runs
// are ops [once_count, op_count).
void mnn_model_reset(const mnn_model_t *m, uint8_t *state);

// Graph input (i < input_count) or output (i < output_count) description.
void mnn_model_input(const mnn_model_t *m, uint16_t i, mnn_tensor_info_t *info);
void mnn_model_output(const mnn_model_t *m, uint16_t i, mnn_tensor_info_t *info);

// Name of an op code (for repr and profiling).
const char *mnn_opcode_name(uint8_t opcode);

// Run ops[first..last) over the bound arena. Interruptible through
// mnn_poll_hook (mnn_kernels.h).
void mnn_run(const mnn_op_t *ops, uint16_t first, uint16_t last);

// What one bound op costs, in the units kernels report to mnn_work(): its
// multiply-accumulates or compared values plus one per element it writes.
uint64_t mnn_op_cost(const mnn_op_t *op);

// Element size of a dtype (0 if unknown).
uint32_t mnn_dtype_size(uint8_t dtype);

// CRC-32 (zlib polynomial) of data, continuing from crc.
uint32_t mnn_crc32(uint32_t crc, const uint8_t *data, size_t len);

// Quantize float values to int8 with TFLite's rounding and clamping.
void mnn_quantize_s8(const float *x, int8_t *q, size_t n, float scale, int32_t zero_point);
void mnn_dequantize_s8(const int8_t *q, float *x, size_t n, float scale, int32_t zero_point);
// The same for int16 inputs and outputs (16x8 models).
void mnn_quantize_s16(const float *x, int16_t *q, size_t n, float scale, int32_t zero_point);
void mnn_dequantize_s16(const int16_t *q, float *x, size_t n, float scale, int32_t zero_point);

#endif // MICRONN_MNN_H
