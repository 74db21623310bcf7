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
    X(SUB) X(SQUARED_DIFFERENCE) X(MAXIMUM) X(MINIMUM) X(PRELU)
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

#endif // MICRONN_KERNELS_H
