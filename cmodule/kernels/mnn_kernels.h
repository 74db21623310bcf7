// micronn int8 kernels: plain C, no allocation, no I/O.
//
// Every kernel takes one argument record that the loader filled and checked
// at load time, so kernels do no validation of their own. One op family per
// file; each family has one entry point that picks the fastest variant.
#ifndef MICRONN_KERNELS_H
#define MICRONN_KERNELS_H

#include <stdint.h>

// Long runs stay interruptible. Kernels report their work as they go, in
// element operations (a MAC, a compared or copied value), through mnn_work();
// every MNN_POLL_WORK units mnn_poll() calls mnn_poll_hook, which the binding
// sets. The hook may not return: MicroPython raises a pending exception
// (KeyboardInterrupt) from it, which unwinds the kernel; kernels hold nothing
// that needs releasing, and the next run recomputes the whole arena.
#define MNN_POLL_WORK 65536u
extern void (*mnn_poll_hook)(void);
extern uint32_t mnn_work_left;
void mnn_poll(void);

static inline void mnn_work(uint32_t n) {
    if (n >= mnn_work_left) {
        mnn_poll();
    } else {
        mnn_work_left -= n;
    }
}

// The kernel variants, counted each time an op family's entry point picks one
// (once per op, so it costs nothing measurable): a test can see that the fast
// path it expects is the one that runs, on every core.
#define MNN_VARIANTS(X) \
    X(CONV_IM2COL_W4) X(CONV_IM2COL_PLAIN) X(CONV_IM2COL_SLOW) X(CONV_DIRECT) \
    X(CONV_POOL_FAST) X(CONV_POOL_DIRECT) X(DEPTHWISE_MULT1) X(DEPTHWISE_GENERIC) \
    X(FC_DSP) X(FC_PLAIN) X(FC_OFFSET) X(MAX_POOL) X(AVG_POOL) X(ADD_TABLES) X(ADD_DIRECT) \
    X(MUL) X(LUT) X(CONCAT) X(PAD) X(MEAN) X(SOFTMAX) \
    X(COPY_RUNS) X(COPY_ELEMS) X(GATHER) X(MIRROR_PAD) \
    X(MATMUL_DSP) X(MATMUL_PLAIN) \
    X(ARG_MINMAX) X(REDUCE_MINMAX) X(L2NORM) X(LOG_SOFTMAX) \
    X(RESIZE_NEAREST) X(RESIZE_BILINEAR) X(TRANSPOSE_CONV) \
    X(SUB) X(SQUARED_DIFFERENCE) X(MAXIMUM) X(MINIMUM) X(PRELU) \
    X(FC_S4) X(FC_S4_DSP) X(CONV_S4) X(CONV_S4_COL) X(DEPTHWISE_S4) X(DEPTHWISE_S4_DSP) \
    X(SVDF) X(SVDF_DSP) \
    X(LSTM) X(LSTM_DSP) \
    X(FC_S16) X(FC_S16_DSP) X(CONV_S16) X(CONV_S16_DSP) X(DEPTHWISE_S16) X(DEPTHWISE_S16_DSP) X(SOFTMAX_S8_S16)
#define MNN_VARIANT_ENUM(name) MNN_V_##name,
enum { MNN_VARIANTS(MNN_VARIANT_ENUM) MNN_V_COUNT };
extern uint32_t mnn_variant_calls[MNN_V_COUNT];
extern const char *const mnn_variant_names[MNN_V_COUNT];
#define MNN_COUNT_VARIANT(name) (mnn_variant_calls[MNN_V_##name]++)

// a * b, or UINT32_MAX where the product does not fit.
static inline uint32_t mnn_sat_mul(uint32_t a, uint32_t b) {
    uint64_t p = (uint64_t)a * b;
    return p > UINT32_MAX ? UINT32_MAX : (uint32_t)p;
}

// Work reported from a loop of many small steps (output pixels): once every
// `every` steps, for that many steps, so that a step costs a countdown and
// not a report; a step of MNN_POLL_WORK / 4 units or more reports each time.
typedef struct {
    uint32_t every, left, chunk;
} mnn_pace_t;

static inline void mnn_pace_init(mnn_pace_t *p, uint32_t step_work) {
    const uint32_t big = MNN_POLL_WORK / 4;
    p->every = step_work >= big ? 1 : big / (step_work ? step_work : 1);
    p->left = p->every;
    p->chunk = mnn_sat_mul(step_work, p->every);
}

static inline void mnn_pace(mnn_pace_t *p) {
    if (--p->left == 0) {
        p->left = p->every;
        mnn_work(p->chunk);
    }
}

// For the hottest loops: how many steps of step_work units make one report
// (the loop runs in segments of that many steps and reports once a segment).
static inline uint32_t mnn_segment(uint32_t step_work) {
    return step_work >= MNN_POLL_WORK / 4 ? 1 : (MNN_POLL_WORK / 4) / (step_work ? step_work : 1);
}

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

// Convolution geometry shared by conv, depthwise conv and pooling. Padding
// is explicit (top/left); taps outside the input are skipped.
typedef struct {
    uint32_t batches;
    uint32_t in_h, in_w, in_c;
    uint32_t out_h, out_w, out_c;
    uint32_t k_h, k_w;
    uint32_t stride_h, stride_w;
    uint32_t dil_h, dil_w;
    int32_t pad_top, pad_left;
} mnn_geom_t;

// 2-D convolution, NHWC, weights [out_c, k_h, k_w, in_c / groups]; and
// depthwise convolution, weights [1, k_h, k_w, out_c], out_c = in_c * depth_mult.
typedef struct {
    mnn_geom_t g;
    uint32_t groups;         // convolution
    uint32_t depth_mult;     // depthwise convolution
    const int8_t *input;
    const int8_t *weights;
    const int32_t *bias;     // [out_c] or NULL
    const int32_t *mult;     // [out_c]
    const int32_t *shift;    // [out_c]
    int8_t *output;
    int32_t input_offset;
    int32_t output_offset;
    int32_t act_min;
    int32_t act_max;
    // Convolution followed by max pooling (mnn_conv_pool_s8): the windows,
    // non-overlapping; 1 x 1 otherwise.
    uint32_t pool_h, pool_w;
    // Convolution: 2 * 2 * k_h * k_w * (in_c / groups) bytes for im2col
    // columns (with pooling: 2 * K2 * (out_c + pool_h * pool_w), K2 the taps
    // rounded up to even), or NULL (the slower direct loops then run instead).
    int16_t *scratch;
} mnn_conv_args_t;

void mnn_conv_s8(const mnn_conv_args_t *a);
// Convolution (groups 1, every multiplier >= 0 and shift <= 0) whose output
// is max-pooled: output [batches, out_h / pool_h, out_w / pool_w, out_c].
void mnn_conv_pool_s8(const mnn_conv_args_t *a);
void mnn_depthwise_conv_s8(const mnn_conv_args_t *a);

// Max and average pooling (out_c == in_c, dilation 1); input and output
// share one quantization.
typedef struct {
    mnn_geom_t g;
    const int8_t *input;
    int8_t *output;
    int32_t act_min;
    int32_t act_max;
} mnn_pool_args_t;

void mnn_max_pool_s8(const mnn_pool_args_t *a);
void mnn_avg_pool_s8(const mnn_pool_args_t *a);

// Elementwise binary ops over a 4-D output with broadcasting: element
// (i0,i1,i2,i3) of input k is at sum(i_d * stride_k[d]) (stride 0 broadcasts).
typedef struct {
    uint32_t dims[4];
    uint32_t stride1[4];
    uint32_t stride2[4];
    const int8_t *input1;
    const int8_t *input2;
    int8_t *output;
    int32_t input1_offset;
    int32_t input2_offset;
    int32_t output_offset;
    int32_t act_min;
    int32_t act_max;
    // ADD: inputs are scaled to a common scale first (TFLite's scheme).
    int32_t left_shift;
    int32_t input1_mult, input1_shift;
    int32_t input2_mult, input2_shift;
    int32_t output_mult, output_shift;
    // ADD: 2 * 256 int32 for rescaling tables (MNN_ADD_SCRATCH), or NULL.
    int32_t *scratch;
} mnn_binary_args_t;

void mnn_add_s8(const mnn_binary_args_t *a);
void mnn_mul_s8(const mnn_binary_args_t *a);

// Any int8 -> int8 elementwise function as a 256-entry table (index q + 128).
typedef struct {
    const int8_t *input;
    int8_t *output;
    const int8_t *table;
    uint32_t count;
} mnn_lut_args_t;

void mnn_lut_s8(const mnn_lut_args_t *a);

// Concatenation: outer blocks; each input contributes chunk[k] bytes per block.
#define MNN_CONCAT_MAX_INPUTS 8
typedef struct {
    const int8_t *inputs[MNN_CONCAT_MAX_INPUTS];
    uint32_t chunk[MNN_CONCAT_MAX_INPUTS];
    uint32_t n_inputs;
    uint32_t outer;
    int8_t *output;
} mnn_concat_args_t;

void mnn_concat_s8(const mnn_concat_args_t *a);

// Padding of a 4-D tensor with a constant value.
typedef struct {
    uint32_t in_dims[4];
    uint32_t before[4];
    uint32_t after[4];
    const int8_t *input;
    int8_t *output;
    int32_t value;
} mnn_pad_args_t;

void mnn_pad_s8(const mnn_pad_args_t *a);

// Mean over the middle axis of [outer, reduce, inner] (e.g. H*W of NHWC).
typedef struct {
    uint32_t outer, reduce, inner;
    const int8_t *input;
    int8_t *output;
    int32_t *scratch;       // inner int32 sums
    uint32_t mode;          // MNN_MEAN_TRUNC or MNN_MEAN_SCALED (mnn_format.h)
    int32_t input_offset;   // SCALED
    int32_t mult;           // SCALED
    int32_t shift;          // SCALED
    int32_t output_offset;
} mnn_mean_args_t;

void mnn_mean_s8(const mnn_mean_args_t *a);

// === kernels ELEMENTWISE ===

// SUB, SQUARED_DIFFERENCE, MAXIMUM, MINIMUM and PRELU (input 2 is alpha) over
// mnn_binary_args_t (format.py documents which fields each uses; scratch unused).
void mnn_sub_s8(const mnn_binary_args_t *a);
void mnn_squared_difference_s8(const mnn_binary_args_t *a);
void mnn_maximum_s8(const mnn_binary_args_t *a);
void mnn_minimum_s8(const mnn_binary_args_t *a);
void mnn_prelu_s8(const mnn_binary_args_t *a);

// === kernels MOVEMENT ===

// Strided copy (mnn_format.h STRIDED_COPY): output element (i0..i5) =
// input[start + sum(i_d * strides[d])]; a unit inner stride copies runs.
#define MNN_COPY_DIMS 6
typedef struct {
    uint32_t dims[MNN_COPY_DIMS];
    int32_t strides[MNN_COPY_DIMS];
    uint32_t start;
    const int8_t *input;
    int8_t *output;
} mnn_copy_args_t;

void mnn_strided_copy_s8(const mnn_copy_args_t *a);

// Gather with constant indices: output [outer, count, inner] from input
// [outer, axis_size, inner]; every index in [0, axis_size).
typedef struct {
    uint32_t outer, axis_size, inner, count;
    const int32_t *indices;
    const int8_t *input;
    int8_t *output;
} mnn_gather_args_t;

void mnn_gather_s8(const mnn_gather_args_t *a);

// Mirror padding of a 4-D tensor: offset 1 REFLECT, 0 SYMMETRIC.
typedef struct {
    uint32_t in_dims[4];
    uint32_t before[4];
    uint32_t after[4];
    uint32_t offset;
    const int8_t *input;
    int8_t *output;
} mnn_mirror_pad_args_t;

void mnn_mirror_pad_s8(const mnn_mirror_pad_args_t *a);

// === kernels RESIZE ===

// Resizing, NHWC, int8 (input and output share one quantization). Nearest:
// y_table[out_h] and x_table[out_w] are the input row and column of each
// output row and column. Bilinear: y_table[out_h][3] and x_table[out_w][3]
// are (lower, upper, position - 1024 * lower), TFLite Micro's 10-bit
// fixed-point positions.
typedef struct {
    uint32_t batches, in_h, in_w, channels, out_h, out_w;
    const int8_t *input;
    const int32_t *y_table;
    const int32_t *x_table;
    int8_t *output;
} mnn_resize_args_t;

void mnn_resize_nearest_s8(const mnn_resize_args_t *a);
void mnn_resize_bilinear_s8(const mnn_resize_args_t *a);

// Transposed convolution, NHWC: weights [out_c, k_h, k_w, in_c]; input pixel
// (iy, ix) contributes to output (iy * stride_h - pad_top + ky, ix * stride_w
// - pad_left + kx); per-channel requantization as in convolution.
typedef struct {
    uint32_t batches, in_h, in_w, in_c, out_h, out_w, out_c;
    uint32_t k_h, k_w, stride_h, stride_w, pad_top, pad_left;
    const int8_t *input;
    const int8_t *weights;
    const int32_t *bias;     // [out_c] or NULL
    const int32_t *mult;     // [out_c]
    const int32_t *shift;    // [out_c]
    int8_t *output;
    int32_t input_offset;
    int32_t output_offset;
    int32_t act_min;
    int32_t act_max;
} mnn_tconv_args_t;

void mnn_transpose_conv_s8(const mnn_tconv_args_t *a);

// === kernels REDUCE ===

// Arg max / arg min (ARG_MAX, ARG_MIN) and maximum / minimum (REDUCE_MAX,
// REDUCE_MIN) over the middle axis of [outer, reduce, inner].
typedef struct {
    uint32_t outer, reduce, inner;
    const int8_t *input;
    void *output;           // arg: int32 or int64 [outer, inner]; min/max: int8 [outer, inner]
    uint8_t is_min;         // ARG_MIN, REDUCE_MIN
    uint8_t wide;           // arg: int64 indices
} mnn_reduce_args_t;

void mnn_arg_minmax_s8(const mnn_reduce_args_t *a);
void mnn_reduce_minmax_s8(const mnn_reduce_args_t *a);

// L2 normalisation over the last axis: output scale 1/128, zero point 0.
typedef struct {
    const int8_t *input;
    int8_t *output;
    uint32_t rows;
    uint32_t depth;
    int32_t input_offset;
} mnn_l2norm_args_t;

void mnn_l2norm_s8(const mnn_l2norm_args_t *a);

// Log-softmax over the last axis: output scale 16/256, zero point 127.
typedef struct {
    const int8_t *input;
    int8_t *output;
    int32_t input_mult;
    int32_t input_left_shift;
    int32_t reverse_mult;
    int32_t reverse_shift;
    int32_t diff_min;
    uint32_t rows;
    uint32_t row_size;
} mnn_log_softmax_args_t;

void mnn_log_softmax_s8(const mnn_log_softmax_args_t *a);

// === kernels MATMUL ===

// Batched matrix product: output [ob0, ob1, rows, cols] with obd = max(lhs_batch[d], rhs_batch[d]); lhs per batch
// [rows, depth] ([depth, rows] with adj_x), rhs [depth, cols] ([cols, depth] with adj_y); a batch dimension of 1
// broadcasts. Scratch: 2 * K2 * (cols + 2) bytes, K2 = depth rounded up to even (int16 rows).
typedef struct {
    const int8_t *lhs;
    const int8_t *rhs;
    int8_t *output;
    int16_t *scratch;
    uint32_t lhs_batch[2];
    uint32_t rhs_batch[2];
    uint32_t rows, depth, cols;
    uint32_t adj_x, adj_y;
    int32_t lhs_offset;
    int32_t rhs_offset;
    int32_t output_mult;
    int32_t output_shift;
    int32_t output_offset;
    int32_t act_min;
    int32_t act_max;
} mnn_batch_matmul_args_t;

void mnn_batch_matmul_s8(const mnn_batch_matmul_args_t *a);

// === kernels STATE ===

// ASSIGN: a copy (memmove) of nbytes; reads and writes of the model state.
typedef struct {
    const void *source;
    void *target;
    uint32_t nbytes;
} mnn_assign_args_t;

// === kernels SVDF ===

// SVDF (TFLite Micro's integer kernel, int16 state and time weights): per run every state row
// [batches][num_filters][memory] moves left by one value and takes the filter's new feature value
// (requantized, clamped to int16) last; output[b][u] = requantized(bias[u] + the sum over the unit's
// rank filters of sum_j weights_time[f][j] * state[b][f][j]) + output_offset, clamped to int8.
typedef struct {
    const int8_t *input;            // [batches][input_size]
    const int8_t *weights_feature;  // [num_filters][input_size]
    const int16_t *weights_time;    // [num_filters][memory], in the blob (any 2-byte alignment)
    const int32_t *bias;            // [num_filters / rank] or NULL, in the blob (any address)
    int16_t *state;                 // [batches][num_filters][memory], the model's state
    int8_t *output;                 // [batches][num_filters / rank]
    uint32_t batches, input_size, num_filters, memory, rank;
    int32_t input_offset;
    int32_t feature_mult;
    int32_t feature_shift;
    int32_t time_mult;
    int32_t time_shift;
    int32_t output_offset;
} mnn_svdf_args_t;

void mnn_svdf_s8(const mnn_svdf_args_t *a);

// === kernels SEQUENCE ===

// LSTM (TFLite Micro's UNIDIRECTIONAL_SEQUENCE_LSTM, int8 activations and weights, int16 gates
// and cell state): per batch row and step, each unit's four gates from the input and the old
// hidden state, the unit's cell updated in place, the new hidden value written to the output
// step; the step's output row then becomes the hidden state.
typedef struct {
    const int8_t *input;            // [batches][steps][input_size] (time major: [steps][batches][...])
    const int8_t *weights_input;    // [4][units][input_size]: gates input, forget, cell, output
    const int8_t *weights_recurrent; // [4][units][units]
    const int32_t *bias;            // [4][units], in the blob (any address)
    const uint8_t *table;           // uint16 [256] sigmoid table, in the blob
    int8_t *hidden;                 // [batches][units], the model's state
    int16_t *cell;                  // [batches][units], the model's state
    int8_t *output;                 // [batches][steps][units] (time major: [steps][batches][units])
    uint32_t batches, steps, input_size, units;
    int32_t input_mult[4], recurrent_mult[4];
    int32_t forget_mult, update_mult, hidden_mult;
    int32_t cell_tanh_mult;
    // Narrow fields (the loader's ranges), so that this record is no larger than the
    // convolution's: every op record (mnn_op_t) is as large as the largest.
    int16_t input_offset;           // [-127, 128]
    int16_t hidden_zero_point;      // int8
    int16_t cell_clip;              // [0, 32767]
    int8_t input_shift[4], recurrent_shift[4];      // [-31, 30]
    int8_t forget_shift, update_shift, hidden_shift;
    int8_t cell_tanh_shift;         // [0, 31]
    uint8_t time_major;
} mnn_lstm_args_t;

void mnn_lstm_s8(const mnn_lstm_args_t *a);

// === kernels S16 ===

// int16 activations with int8 weights (TFLite's 16x8 mode): FULLY_CONNECTED_S16,
// CONV_2D_S16, DEPTHWISE_CONV_2D_S16. Zero points are 0, so there are no offsets.
// acc64: int64 sums and bias, TFLite's 64-bit requantization (the multiplier
// rounded to 16 bits); else int32 sums (wrapping) and bias, the int8 ops'
// requantization. The loader bounds every sum plus bias below 2^47 (acc64).
typedef struct {
    const int16_t *input;    // [batches, accum_depth]
    const int8_t *weights;   // [out_depth, accum_depth]
    const void *bias;        // int64 (acc64) or int32 [out_depth], any alignment, or NULL
    const int32_t *mult;     // [out_depth], or [1] when per_channel == 0
    const int32_t *shift;    // same length as mult
    int16_t *output;         // [batches, out_depth]
    int32_t act_min;
    int32_t act_max;
    uint32_t batches;
    uint32_t accum_depth;
    uint32_t out_depth;
    uint8_t per_channel;
    uint8_t acc64;
} mnn_fc_s16_args_t;

typedef struct {
    mnn_geom_t g;
    uint32_t groups;         // convolution
    uint32_t depth_mult;     // depthwise convolution
    const int16_t *input;
    const int8_t *weights;   // conv [out_c, k_h, k_w, in_c / groups]; depthwise [1, k_h, k_w, out_c]
    const void *bias;        // int64 (acc64) or int32 [out_c], any alignment, or NULL
    const int32_t *mult;     // [out_c]
    const int32_t *shift;    // [out_c]
    int16_t *output;
    int32_t act_min;
    int32_t act_max;
    uint8_t acc64;
} mnn_conv_s16_args_t;

void mnn_fully_connected_s16(const mnn_fc_s16_args_t *a);
void mnn_conv_s16(const mnn_conv_s16_args_t *a);
void mnn_depthwise_conv_s16(const mnn_conv_s16_args_t *a);
// SOFTMAX_S8_S16: softmax of int8 values to int16 ones (scale 1/65536, zero
// point -32768); the softmax arguments, whose output then points at int16.
void mnn_softmax_s8_s16(const mnn_softmax_args_t *a);

// === kernels S16X ===

// int16 activations (TFLite's 16x8 mode), TFLite Micro's int16 kernels. Zero
// points are 0 (the loader checks), so no offsets appear. Tables that come
// from the blob are read byte by byte (little-endian int16/uint16).

// ADD_S16, MUL_S16: ADD's and MUL's arithmetic and broadcasting on int16
// values (ADD with left_shift 15); strides count elements.
typedef struct {
    const int16_t *input1;
    const int16_t *input2;
    int16_t *output;
    uint32_t dims[4];
    uint32_t stride1[4];
    uint32_t stride2[4];
    int32_t act_min;
    int32_t act_max;
    int32_t left_shift;
    int32_t input1_mult;
    int32_t input1_shift;
    int32_t input2_mult;
    int32_t input2_shift;
    int32_t output_mult;
    int32_t output_shift;
} mnn_binary16_args_t;

void mnn_add_s16(const mnn_binary16_args_t *a);
void mnn_mul_s16(const mnn_binary16_args_t *a);

// MAX_POOL_S16, AVG_POOL_S16: the int8 pooling on int16 values (windows of
// fewer than 2^16 taps, so an average's sum fits an int32).
typedef struct {
    mnn_geom_t g;
    const int16_t *input;
    int16_t *output;
    int32_t act_min;
    int32_t act_max;
} mnn_pool16_args_t;

void mnn_max_pool_s16(const mnn_pool16_args_t *a);
void mnn_avg_pool_s16(const mnn_pool16_args_t *a);

// SOFTMAX_S16 (TFLite Micro's SoftmaxInt16): exp and 1 / (1 + x) tables of
// 513 int16 values each; rows of at most 65535 values, input shift <= 15.
typedef struct {
    const int16_t *input;
    int16_t *output;
    const uint8_t *exp_table;       // int16 [513], in the blob
    const uint8_t *recip_table;     // int16 [513], in the blob
    int32_t input_mult;
    int32_t input_shift;
    uint32_t rows;
    uint32_t row_size;
} mnn_softmax16_args_t;

void mnn_softmax_s16(const mnn_softmax16_args_t *a);

// TANH_S16, LOGISTIC_S16 (TFLite Micro's int16 Tanh and Logistic): the input
// scaled by (x * input_mult + rounding) >> input_shift, then interpolated in
// the 256-entry uint16 sigmoid table.
typedef struct {
    const int16_t *input;
    int16_t *output;
    const uint8_t *table;           // uint16 [256], in the blob
    uint32_t count;
    int32_t input_mult;             // [0, 32767]
    int32_t input_shift;            // [0, 31]
} mnn_sigmoid16_args_t;

void mnn_tanh_s16(const mnn_sigmoid16_args_t *a);
void mnn_logistic_s16(const mnn_sigmoid16_args_t *a);

// REQUANT (TFLite's Requantize): int8 or int16 in and out.
typedef struct {
    const void *input;
    void *output;
    uint32_t count;
    uint8_t in16;                   // 1: the input is int16, else int8
    uint8_t out16;                  // 1: the output is int16, else int8
    int32_t input_zero_point;
    int32_t mult;
    int32_t shift;
    int32_t output_offset;
} mnn_requant_args_t;

void mnn_requant(const mnn_requant_args_t *a);

// PAD_S16: PAD's record with int16 values (input and output point to int16
// data); CONCATENATION_S16 runs mnn_concat_s8 (its chunks are byte counts).
void mnn_pad_s16(const mnn_pad_args_t *a);

// === kernels S4 ===

// int8 activations with int4 weights (FULLY_CONNECTED_S4, CONV_2D_S4,
// DEPTHWISE_CONV_2D_S4): the int8 ops' argument records, whose weights
// pointer then holds int4 values packed two per byte over the flattened
// tensor (value 2k in the low nibble of byte k), read in place from the
// blob; the arithmetic is the int8 kernels' on the unpacked values.
void mnn_fully_connected_s4(const mnn_fc_args_t *a);
void mnn_conv_s4(const mnn_conv_args_t *a);
void mnn_depthwise_conv_s4(const mnn_conv_args_t *a);

// Value i of packed int4 data, sign-extended.
static inline int32_t mnn_s4_at(const uint8_t *w, uint32_t i) {
    return (int32_t)((uint32_t)w[i >> 1] << (28 - 4 * (i & 1)) & 0xf0000000u) >> 28;
}

// sum over i < n of (x[i] + x_off) * (w4[start + i] + w_off), wrapping like
// the int8 kernels' sums: a byte (two values) per step once the run is
// byte-aligned (a run may start in a high nibble).
static inline uint32_t mnn_dot_s4(const int8_t *x, const uint8_t *w, uint32_t start, uint32_t n, int32_t x_off,
    int32_t w_off) {
    uint32_t acc = 0, i = 0;
    if (n && (start & 1)) {
        acc = (uint32_t)((x[0] + x_off) * (mnn_s4_at(w, start) + w_off));
        i = 1;
    }
    const uint8_t *p = w + ((start + i) >> 1);
    for (; i + 2 <= n; i += 2, p++) {
        const uint32_t b = *p;
        const int32_t lo = (int32_t)(b << 28) >> 28, hi = (int32_t)(b << 24) >> 28;
        acc += (uint32_t)((x[i] + x_off) * (lo + w_off)) + (uint32_t)((x[i + 1] + x_off) * (hi + w_off));
    }
    if (i < n) {
        acc += (uint32_t)((x[i] + x_off) * (((int32_t)((uint32_t)*p << 28) >> 28) + w_off));     // a low nibble
    }
    return acc;
}

#endif // MICRONN_KERNELS_H
