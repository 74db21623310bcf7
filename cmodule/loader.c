// Blob validation and binding. Every field is read explicitly with the
// little-endian helpers below and checked before use, so that after
// mnn_model_load() succeeds nothing the kernels touch lies outside the blob,
// the arena or the scratch area.
#include <string.h>

#include "mnn.h"
#include "mnn_ops.h"

static inline uint32_t rd_u8(const uint8_t *p) {
    return p[0];
}

static inline uint32_t rd_u16(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8);
}

static inline uint32_t rd_u32(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static inline int32_t rd_i32(const uint8_t *p) {
    return (int32_t)rd_u32(p);
}

static inline float rd_f32(const uint8_t *p) {
    uint32_t u = rd_u32(p);
    float f;
    memcpy(&f, &u, sizeof(f));
    return f;
}

static mnn_status_t fail(mnn_error_t *err, mnn_status_t st, const char *what, int32_t index,
    uint32_t value, uint32_t limit) {
    err->status = st;
    err->what = what;
    err->index = index;
    err->value = value;
    err->limit = limit;
    return st;
}

#define CHECK(cond, st, what, index, value, limit) \
    do { \
        if (!(cond)) { \
            return fail(err, st, what, index, value, limit); \
        } \
    } while (0)

// a + b <= limit without overflow.
static inline int fits(uint32_t a, uint32_t b, uint32_t limit) {
    return a <= limit && b <= limit - a;
}

uint32_t mnn_dtype_size(uint8_t dtype) {
    switch (dtype) {
        case MNN_DTYPE_INT8:
        case MNN_DTYPE_UINT8:
            return 1;
        case MNN_DTYPE_INT16:
            return 2;
        case MNN_DTYPE_INT32:
        case MNN_DTYPE_FLOAT32:
            return 4;
        case MNN_DTYPE_INT64:
            return 8;
        case MNN_DTYPE_INT4:
            return 0;       // packed two per byte: no whole-byte size (check_tensor sizes it)
        default:
            return 0;
    }
}

uint32_t mnn_crc32(uint32_t crc, const uint8_t *data, size_t len) {
    // Half-byte table: 64 bytes of flash, two lookups per byte.
    static const uint32_t table[16] = {
        0x00000000, 0x1db71064, 0x3b6e20c8, 0x26d930ac, 0x76dc4190, 0x6b6b51f4,
        0x4db26158, 0x5005713c, 0xedb88320, 0xf00f9344, 0xd6d6a3e8, 0xcb61b38c,
        0x9b64c2b0, 0x86d3d2d4, 0xa00ae278, 0xbdbdf21c,
    };
    crc = ~crc;
    for (size_t i = 0; i < len; i++) {
        crc ^= data[i];
        crc = (crc >> 4) ^ table[crc & 15];
        crc = (crc >> 4) ^ table[crc & 15];
    }
    return ~crc;
}

// A validated view of one tensor record.
typedef struct {
    uint8_t dtype;
    uint8_t storage;
    uint8_t flags;
    uint8_t ndim;
    uint32_t dims[MNN_MAX_DIMS];
    uint32_t offset;
    uint32_t nbytes;
    float scale;
    int32_t zero_point;
} tensor_t;

static void read_tensor(const mnn_model_t *m, uint32_t i, tensor_t *t) {
    const uint8_t *p = m->blob + m->tensors_off + i * MNN_TEN_RECORD_SIZE;
    t->dtype = (uint8_t)rd_u8(p + MNN_TEN_DTYPE);
    t->ndim = (uint8_t)rd_u8(p + MNN_TEN_NDIM);
    t->storage = (uint8_t)rd_u8(p + MNN_TEN_STORAGE);
    t->flags = (uint8_t)rd_u8(p + MNN_TEN_FLAGS);
    for (int d = 0; d < MNN_MAX_DIMS; d++) {
        t->dims[d] = rd_u32(p + MNN_TEN_DIMS + 4 * d);
    }
    t->offset = rd_u32(p + MNN_TEN_OFFSET);
    t->nbytes = rd_u32(p + MNN_TEN_NBYTES);
    t->scale = rd_f32(p + MNN_TEN_SCALE);
    t->zero_point = rd_i32(p + MNN_TEN_ZERO_POINT);
}

static mnn_status_t check_tensor(const mnn_model_t *m, uint32_t i, mnn_error_t *err) {
    tensor_t t;
    read_tensor(m, i, &t);
    // int4 (S4 weights only): values packed two per byte, nbytes = ceil(count / 2).
    const int packed4 = t.dtype == MNN_DTYPE_INT4;
    uint32_t esize = packed4 ? 1 : mnn_dtype_size(t.dtype);
    CHECK(esize != 0, MNN_E_TENSOR, "unknown dtype", i, t.dtype, 0);
    CHECK(!packed4 || t.storage == MNN_STORAGE_CONST, MNN_E_TENSOR, "int4 tensor not constant", i, t.storage,
        MNN_STORAGE_CONST);
    CHECK(t.flags == 0, MNN_E_TENSOR, "unknown flags", i, t.flags, 0);
    CHECK(t.ndim <= MNN_MAX_DIMS, MNN_E_TENSOR, "ndim", i, t.ndim, MNN_MAX_DIMS);
    uint64_t n = esize;
    for (int d = 0; d < MNN_MAX_DIMS; d++) {
        CHECK(d < t.ndim || t.dims[d] == 1, MNN_E_TENSOR, "unused dimension is not 1", i, t.dims[d], 1);
        CHECK(t.dims[d] > 0, MNN_E_TENSOR, "zero dimension", i, 0, 1);
        n *= t.dims[d];
        CHECK(n <= UINT32_MAX, MNN_E_TENSOR, "shape too large", i, t.dims[d], 0);
    }
    n = packed4 ? (n + 1) / 2 : n;
    CHECK(n == t.nbytes, MNN_E_TENSOR, "nbytes does not match shape", i, t.nbytes, (uint32_t)n);
    if (t.storage == MNN_STORAGE_ARENA) {
        CHECK(t.offset % MNN_ARENA_ALIGN == 0, MNN_E_TENSOR, "arena offset misaligned", i, t.offset, MNN_ARENA_ALIGN);
        CHECK(fits(t.offset, t.nbytes, m->arena_size), MNN_E_TENSOR, "outside the arena", i,
            t.offset, m->arena_size);
    } else if (t.storage == MNN_STORAGE_CONST) {
        CHECK(fits(t.offset, t.nbytes, m->const_size), MNN_E_TENSOR, "outside the constant data", i,
            t.offset, m->const_size);
    } else if (t.storage == MNN_STORAGE_STATE) {
        // Reset fills state with its zero point: int8 or int16 values that hold it.
        CHECK(t.dtype == MNN_DTYPE_INT8 || t.dtype == MNN_DTYPE_INT16, MNN_E_TENSOR, "state dtype", i, t.dtype,
            MNN_DTYPE_INT8);
        int32_t lo = t.dtype == MNN_DTYPE_INT8 ? -128 : -32768;
        CHECK(t.zero_point >= lo && t.zero_point <= -lo - 1, MNN_E_TENSOR, "state zero point", i,
            (uint32_t)t.zero_point, (uint32_t)(-lo - 1));
        CHECK(t.offset % MNN_ARENA_ALIGN == 0, MNN_E_TENSOR, "state offset misaligned", i, t.offset, MNN_ARENA_ALIGN);
        CHECK(fits(t.offset, t.nbytes, m->state_size), MNN_E_TENSOR, "outside the state", i, t.offset,
            m->state_size);
    } else {
        return fail(err, MNN_E_TENSOR, "unknown storage", i, t.storage, 0);
    }
    return MNN_OK;
}

// Operand checks shared by the per-op validators.
typedef struct {
    const mnn_model_t *m;
    uint32_t op;
    const uint8_t *idx;     // u16 tensor indices: inputs then outputs
    uint32_t n_in;
    const uint8_t *params;
    mnn_error_t *err;
} op_ctx_t;

static inline uint32_t operand(const op_ctx_t *c, uint32_t k) {
    return rd_u16(c->idx + 2 * k);
}

#define STORAGE_ANY 0xff

static mnn_status_t want(const op_ctx_t *c, uint32_t k, uint8_t dtype, uint8_t storage,
    uint32_t nbytes, const char *what, int optional) {
    mnn_error_t *err = c->err;
    uint32_t i = operand(c, k);
    if (i == MNN_NO_TENSOR) {
        CHECK(optional, MNN_E_OP, what, c->op, i, 0);
        return MNN_OK;
    }
    CHECK(i < c->m->tensor_count, MNN_E_OP, what, c->op, i, c->m->tensor_count);
    tensor_t t;
    read_tensor(c->m, i, &t);
    CHECK(t.dtype == dtype, MNN_E_OP, what, c->op, t.dtype, dtype);
    CHECK(t.storage == storage || storage == STORAGE_ANY, MNN_E_OP, what, c->op, t.storage, storage);
    CHECK(t.nbytes == nbytes, MNN_E_OP, what, c->op, t.nbytes, nbytes);
    return MNN_OK;
}

static uint32_t tensor_nbytes(const op_ctx_t *c, uint32_t k) {
    uint32_t i = operand(c, k);
    if (i == MNN_NO_TENSOR || i >= c->m->tensor_count) {
        return 0;
    }
    tensor_t t;
    read_tensor(c->m, i, &t);
    return t.nbytes;
}

#define WANT(k, dtype, storage, nbytes, what, optional) \
    do { \
        mnn_status_t st_ = want(c, k, dtype, storage, nbytes, what, optional); \
        if (st_ != MNN_OK) { \
            return st_; \
        } \
    } while (0)

static int mul_ok(uint32_t a, uint32_t b, uint32_t *out) {
    uint64_t r = (uint64_t)a * b;
    *out = (uint32_t)r;
    return r <= UINT32_MAX;
}

static mnn_status_t check_activation(const op_ctx_t *c, int32_t out_off, int32_t lo, int32_t hi) {
    mnn_error_t *err = c->err;
    CHECK(out_off >= -128 && out_off <= 127, MNN_E_OP, "output offset", c->op, (uint32_t)out_off, 127);
    CHECK(lo >= -128 && hi <= 127 && lo <= hi, MNN_E_OP, "activation range", c->op, (uint32_t)lo, (uint32_t)hi);
    return MNN_OK;
}

// Every shift of a requantization array must lie in [-31, 30].
static mnn_status_t check_shifts(const op_ctx_t *c, uint32_t k) {
    mnn_error_t *err = c->err;
    tensor_t t;
    read_tensor(c->m, operand(c, k), &t);
    const uint8_t *p = c->m->blob + c->m->const_off + t.offset;
    for (uint32_t j = 0; j < t.nbytes / 4; j++) {
        int32_t s = rd_i32(p + 4 * j);
        CHECK(s >= -31 && s <= 30, MNN_E_OP, "requantization shift", c->op, (uint32_t)s, 30);
    }
    return MNN_OK;
}

static mnn_status_t check_fully_connected(const op_ctx_t *c) {
    mnn_error_t *err = c->err;
    const uint8_t *p = c->params;
    uint32_t batches = rd_u32(p + MNN_P_FULLY_CONNECTED_BATCHES);
    uint32_t depth = rd_u32(p + MNN_P_FULLY_CONNECTED_ACCUM_DEPTH);
    uint32_t outs = rd_u32(p + MNN_P_FULLY_CONNECTED_OUT_DEPTH);
    int32_t in_off = rd_i32(p + MNN_P_FULLY_CONNECTED_INPUT_OFFSET);
    int32_t w_off = rd_i32(p + MNN_P_FULLY_CONNECTED_FILTER_OFFSET);
    uint32_t in_n, w_n, out_n, bias_n;
    CHECK(batches && depth && outs, MNN_E_OP, "zero dimension", c->op, 0, 1);
    CHECK(mul_ok(batches, depth, &in_n) && mul_ok(outs, depth, &w_n) && mul_ok(batches, outs, &out_n)
        && mul_ok(outs, 4, &bias_n), MNN_E_OP, "dimensions overflow", c->op, depth, 0);
    CHECK(in_off >= -255 && in_off <= 255 && w_off >= -255 && w_off <= 255, MNN_E_OP, "input or filter offset",
        c->op, (uint32_t)in_off, 255);
    WANT(0, MNN_DTYPE_INT8, MNN_STORAGE_ARENA, in_n, "input size", 0);
    WANT(1, MNN_DTYPE_INT8, MNN_STORAGE_CONST, w_n, "weights size", 0);
    WANT(2, MNN_DTYPE_INT32, MNN_STORAGE_CONST, bias_n, "bias size", 1);
    uint32_t q = tensor_nbytes(c, 3) == 4 ? 4 : bias_n;
    WANT(3, MNN_DTYPE_INT32, MNN_STORAGE_CONST, q, "multiplier size", 0);
    WANT(4, MNN_DTYPE_INT32, MNN_STORAGE_CONST, q, "shift size", 0);
    WANT(5, MNN_DTYPE_INT8, MNN_STORAGE_ARENA, out_n, "output size", 0);
    mnn_status_t st = check_shifts(c, 4);
    if (st != MNN_OK) {
        return st;
    }
    return check_activation(c, rd_i32(p + MNN_P_FULLY_CONNECTED_OUTPUT_OFFSET),
        rd_i32(p + MNN_P_FULLY_CONNECTED_ACT_MIN), rd_i32(p + MNN_P_FULLY_CONNECTED_ACT_MAX));
}

static mnn_status_t check_softmax(const op_ctx_t *c) {
    mnn_error_t *err = c->err;
    const uint8_t *p = c->params;
    uint32_t rows = rd_u32(p + MNN_P_SOFTMAX_ROWS);
    uint32_t size = rd_u32(p + MNN_P_SOFTMAX_ROW_SIZE);
    int32_t shift = rd_i32(p + MNN_P_SOFTMAX_INPUT_LEFT_SHIFT);
    int32_t diff_min = rd_i32(p + MNN_P_SOFTMAX_DIFF_MIN);
    uint32_t n;
    CHECK(rows && size, MNN_E_OP, "zero dimension", c->op, 0, 1);
    CHECK(mul_ok(rows, size, &n), MNN_E_OP, "dimensions overflow", c->op, size, 0);
    CHECK(shift >= 0 && shift <= 31, MNN_E_OP, "softmax input shift", c->op, (uint32_t)shift, 31);
    // Differences that pass diff_min, scaled by 2^shift, must fit in int32.
    int64_t lowest = -(int64_t)(((int64_t)31 << 26) >> shift);
    CHECK(diff_min >= lowest, MNN_E_OP, "softmax diff_min", c->op, (uint32_t)diff_min, (uint32_t)lowest);
    WANT(0, MNN_DTYPE_INT8, MNN_STORAGE_ARENA, n, "input size", 0);
    WANT(1, MNN_DTYPE_INT8, MNN_STORAGE_ARENA, n, "output size", 0);
    return MNN_OK;
}

#define GEOM_MAX (1u << 24)

// Conv and depthwise records share geometry and requantization offsets (so one
// binding serves both); pooling records share the geometry.
_Static_assert(MNN_P_CONV_2D_INPUT_OFFSET == MNN_P_DEPTHWISE_CONV_2D_INPUT_OFFSET
    && MNN_P_CONV_2D_ACT_MAX == MNN_P_DEPTHWISE_CONV_2D_ACT_MAX
    && MNN_P_CONV_2D_PAD_LEFT == MNN_P_MAX_POOL_2D_PAD_LEFT
    && MNN_P_MAX_POOL_2D_ACT_MAX == MNN_P_AVERAGE_POOL_2D_ACT_MAX
    && MNN_P_CONV_2D_GROUPS == MNN_P_CONV_2D_MAXPOOL_GROUPS, "shared parameter layouts");

static void read_geom(const uint8_t *p, mnn_geom_t *g) {
    g->batches = rd_u32(p + MNN_P_CONV_2D_BATCHES);
    g->in_h = rd_u32(p + MNN_P_CONV_2D_IN_H);
    g->in_w = rd_u32(p + MNN_P_CONV_2D_IN_W);
    g->in_c = rd_u32(p + MNN_P_CONV_2D_IN_C);
    g->out_h = rd_u32(p + MNN_P_CONV_2D_OUT_H);
    g->out_w = rd_u32(p + MNN_P_CONV_2D_OUT_W);
    g->out_c = rd_u32(p + MNN_P_CONV_2D_OUT_C);
    g->k_h = rd_u32(p + MNN_P_CONV_2D_K_H);
    g->k_w = rd_u32(p + MNN_P_CONV_2D_K_W);
    g->stride_h = rd_u32(p + MNN_P_CONV_2D_STRIDE_H);
    g->stride_w = rd_u32(p + MNN_P_CONV_2D_STRIDE_W);
    g->dil_h = rd_u32(p + MNN_P_CONV_2D_DIL_H);
    g->dil_w = rd_u32(p + MNN_P_CONV_2D_DIL_W);
    g->pad_top = rd_i32(p + MNN_P_CONV_2D_PAD_TOP);
    g->pad_left = rd_i32(p + MNN_P_CONV_2D_PAD_LEFT);
}

// Geometry of conv, depthwise and pooling: every size positive and small
// enough that no index computation can overflow; returns the input and
// output byte counts.
static mnn_status_t check_geom(const op_ctx_t *c, const mnn_geom_t *g, uint32_t *in_n, uint32_t *out_n) {
    mnn_error_t *err = c->err;
    const uint32_t v[] = {
        g->batches, g->in_h, g->in_w, g->in_c, g->out_h, g->out_w, g->out_c, g->k_h, g->k_w,
        g->stride_h, g->stride_w, g->dil_h, g->dil_w,
    };
    for (uint32_t k = 0; k < sizeof(v) / sizeof(v[0]); k++) {
        CHECK(v[k] >= 1 && v[k] < GEOM_MAX, MNN_E_OP, "geometry value", c->op, v[k], GEOM_MAX);
    }
    uint64_t reach_h = (uint64_t)g->out_h * g->stride_h + (uint64_t)g->k_h * g->dil_h;
    uint64_t reach_w = (uint64_t)g->out_w * g->stride_w + (uint64_t)g->k_w * g->dil_w;
    CHECK(reach_h < GEOM_MAX && reach_w < GEOM_MAX, MNN_E_OP, "window reach", c->op, (uint32_t)reach_h, GEOM_MAX);
    CHECK(g->pad_top > -(int32_t)GEOM_MAX && g->pad_top < (int32_t)GEOM_MAX && g->pad_left > -(int32_t)GEOM_MAX
        && g->pad_left < (int32_t)GEOM_MAX, MNN_E_OP, "padding", c->op, (uint32_t)g->pad_top, GEOM_MAX);
    uint64_t in = (uint64_t)g->batches * g->in_h * g->in_w * g->in_c;
    uint64_t out = (uint64_t)g->batches * g->out_h * g->out_w * g->out_c;
    CHECK(in <= UINT32_MAX && out <= UINT32_MAX, MNN_E_OP, "dimensions overflow", c->op, 0, 0);
    *in_n = (uint32_t)in;
    *out_n = (uint32_t)out;
    return MNN_OK;
}

#define TRY(x) \
    do { \
        mnn_status_t st_ = (x); \
        if (st_ != MNN_OK) { \
            return st_; \
        } \
    } while (0)

// Operands 0..4 of conv and depthwise: input, weights, bias?, mult, shift; output is 5.
static mnn_status_t check_conv_operands(const op_ctx_t *c, const mnn_geom_t *g, uint32_t in_n, uint32_t out_n,
    uint32_t w_n) {
    uint32_t ch4 = g->out_c * 4;
    mnn_error_t *err = c->err;
    CHECK(g->out_c < GEOM_MAX / 4, MNN_E_OP, "output channels", c->op, g->out_c, GEOM_MAX / 4);
    WANT(0, MNN_DTYPE_INT8, MNN_STORAGE_ARENA, in_n, "input size", 0);
    WANT(1, MNN_DTYPE_INT8, MNN_STORAGE_CONST, w_n, "weights size", 0);
    WANT(2, MNN_DTYPE_INT32, MNN_STORAGE_CONST, ch4, "bias size", 1);
    WANT(3, MNN_DTYPE_INT32, MNN_STORAGE_CONST, ch4, "multiplier size", 0);
    WANT(4, MNN_DTYPE_INT32, MNN_STORAGE_CONST, ch4, "shift size", 0);
    WANT(5, MNN_DTYPE_INT8, MNN_STORAGE_ARENA, out_n, "output size", 0);
    return check_shifts(c, 4);
}

static mnn_status_t check_offset(const op_ctx_t *c, int32_t off, const char *what) {
    mnn_error_t *err = c->err;
    CHECK(off >= -255 && off <= 255, MNN_E_OP, what, c->op, (uint32_t)off, 255);
    return MNN_OK;
}

// Whether the blob's scratch holds a convolution's im2col columns, and the
// fused op's columns and image: the kernels' fast variants; without it they
// take their direct loops (the binding below and check_fallback() agree).
static inline int conv_scratch_ok(const mnn_model_t *m, const mnn_geom_t *g, uint32_t groups) {
    uint64_t k = (uint64_t)g->k_h * g->k_w * (g->in_c / groups);
    return MNN_CONV_SCRATCH_PER_TAP * k <= m->scratch_size;
}

static inline int conv_pool_scratch_ok(const mnn_model_t *m, const mnn_geom_t *g, uint32_t pool_h, uint32_t pool_w) {
    uint64_t k = (uint64_t)g->k_h * g->k_w * g->in_c;
    uint64_t image = (uint64_t)g->in_h * g->in_w * g->in_c;
    return MNN_CONV_POOL_SCRATCH(k, (uint64_t)g->out_c, (uint64_t)pool_h * pool_w, image) <= m->scratch_size;
}

static mnn_status_t check_conv(const op_ctx_t *c) {
    mnn_error_t *err = c->err;
    const uint8_t *p = c->params;
    mnn_geom_t g;
    uint32_t in_n, out_n, groups = rd_u32(p + MNN_P_CONV_2D_GROUPS);
    read_geom(p, &g);
    TRY(check_geom(c, &g, &in_n, &out_n));
    CHECK(groups >= 1 && g.in_c % groups == 0 && g.out_c % groups == 0, MNN_E_OP, "groups", c->op, groups, g.in_c);
    uint64_t w_n = (uint64_t)g.out_c * g.k_h * g.k_w * (g.in_c / groups);
    CHECK(w_n <= UINT32_MAX, MNN_E_OP, "weights size", c->op, 0, 0);
    TRY(check_offset(c, rd_i32(p + MNN_P_CONV_2D_INPUT_OFFSET), "input offset"));
    TRY(check_conv_operands(c, &g, in_n, out_n, (uint32_t)w_n));
    return check_activation(c, rd_i32(p + MNN_P_CONV_2D_OUTPUT_OFFSET), rd_i32(p + MNN_P_CONV_2D_ACT_MIN),
        rd_i32(p + MNN_P_CONV_2D_ACT_MAX));
}

// CONV_2D_MAXPOOL: a convolution (groups 1) whose output is max-pooled over
// non-overlapping windows; the kernel takes the maximum before requantizing,
// exact only while requantization is monotonic (multiplier >= 0, shift <= 0).
static mnn_status_t check_conv_pool(const op_ctx_t *c) {
    mnn_error_t *err = c->err;
    const uint8_t *p = c->params;
    mnn_geom_t g;
    uint32_t in_n, out_n;
    uint32_t ph = rd_u32(p + MNN_P_CONV_2D_MAXPOOL_POOL_H), pw = rd_u32(p + MNN_P_CONV_2D_MAXPOOL_POOL_W);
    read_geom(p, &g);
    TRY(check_geom(c, &g, &in_n, &out_n));
    CHECK(rd_u32(p + MNN_P_CONV_2D_MAXPOOL_GROUPS) == 1, MNN_E_OP, "groups", c->op,
        rd_u32(p + MNN_P_CONV_2D_MAXPOOL_GROUPS), 1);
    CHECK(ph >= 1 && ph <= g.out_h, MNN_E_OP, "pool height", c->op, ph, g.out_h);
    CHECK(pw >= 1 && pw <= g.out_w, MNN_E_OP, "pool width", c->op, pw, g.out_w);
    out_n = g.batches * (g.out_h / ph) * (g.out_w / pw) * g.out_c;     // at most the checked conv output
    uint64_t w_n = (uint64_t)g.out_c * g.k_h * g.k_w * g.in_c;
    CHECK(w_n <= UINT32_MAX, MNN_E_OP, "weights size", c->op, 0, 0);
    TRY(check_offset(c, rd_i32(p + MNN_P_CONV_2D_MAXPOOL_INPUT_OFFSET), "input offset"));
    TRY(check_conv_operands(c, &g, in_n, out_n, (uint32_t)w_n));
    tensor_t t;
    read_tensor(c->m, operand(c, 3), &t);
    const uint8_t *mult = c->m->blob + c->m->const_off + t.offset;
    read_tensor(c->m, operand(c, 4), &t);
    const uint8_t *shift = c->m->blob + c->m->const_off + t.offset;
    for (uint32_t j = 0; j < g.out_c; j++) {
        CHECK(rd_i32(mult + 4 * j) >= 0, MNN_E_OP, "pooled multiplier", c->op, (uint32_t)rd_i32(mult + 4 * j), 0);
        CHECK(rd_i32(shift + 4 * j) <= 0, MNN_E_OP, "pooled shift", c->op, (uint32_t)rd_i32(shift + 4 * j), 0);
    }
    return check_activation(c, rd_i32(p + MNN_P_CONV_2D_MAXPOOL_OUTPUT_OFFSET),
        rd_i32(p + MNN_P_CONV_2D_MAXPOOL_ACT_MIN), rd_i32(p + MNN_P_CONV_2D_MAXPOOL_ACT_MAX));
}

static mnn_status_t check_depthwise(const op_ctx_t *c) {
    mnn_error_t *err = c->err;
    const uint8_t *p = c->params;
    mnn_geom_t g;
    uint32_t in_n, out_n, dm = rd_u32(p + MNN_P_DEPTHWISE_CONV_2D_DEPTH_MULT);
    read_geom(p, &g);
    TRY(check_geom(c, &g, &in_n, &out_n));
    CHECK(dm >= 1 && (uint64_t)g.in_c * dm == g.out_c, MNN_E_OP, "depth multiplier", c->op, dm, g.out_c);
    uint64_t w_n = (uint64_t)g.out_c * g.k_h * g.k_w;
    CHECK(w_n <= UINT32_MAX, MNN_E_OP, "weights size", c->op, 0, 0);
    TRY(check_offset(c, rd_i32(p + MNN_P_DEPTHWISE_CONV_2D_INPUT_OFFSET), "input offset"));
    TRY(check_conv_operands(c, &g, in_n, out_n, (uint32_t)w_n));
    return check_activation(c, rd_i32(p + MNN_P_DEPTHWISE_CONV_2D_OUTPUT_OFFSET),
        rd_i32(p + MNN_P_DEPTHWISE_CONV_2D_ACT_MIN), rd_i32(p + MNN_P_DEPTHWISE_CONV_2D_ACT_MAX));
}

static mnn_status_t check_pool(const op_ctx_t *c) {
    mnn_error_t *err = c->err;
    const uint8_t *p = c->params;
    mnn_geom_t g;
    uint32_t in_n, out_n;
    read_geom(p, &g);
    TRY(check_geom(c, &g, &in_n, &out_n));
    CHECK(g.in_c == g.out_c && g.dil_h == 1 && g.dil_w == 1, MNN_E_OP, "pool channels or dilation", c->op,
        g.out_c, g.in_c);
    // The sum of a window of int8 values must fit in int32.
    CHECK((uint64_t)g.k_h * g.k_w < (1u << 23), MNN_E_OP, "pool window", c->op, g.k_h, 1u << 23);
    WANT(0, MNN_DTYPE_INT8, MNN_STORAGE_ARENA, in_n, "input size", 0);
    WANT(1, MNN_DTYPE_INT8, MNN_STORAGE_ARENA, out_n, "output size", 0);
    return check_activation(c, 0, rd_i32(p + MNN_P_MAX_POOL_2D_ACT_MIN), rd_i32(p + MNN_P_MAX_POOL_2D_ACT_MAX));
}

static mnn_status_t check_binary(const op_ctx_t *c) {
    mnn_error_t *err = c->err;
    const uint8_t *p = c->params;
    uint64_t n = 1, reach1 = 0, reach2 = 0;
    for (int d = 0; d < 4; d++) {
        uint32_t dim = rd_u32(p + MNN_P_ADD_DIMS + 4 * d);
        uint32_t s1 = rd_u32(p + MNN_P_ADD_STRIDE1 + 4 * d), s2 = rd_u32(p + MNN_P_ADD_STRIDE2 + 4 * d);
        CHECK(dim >= 1 && dim < GEOM_MAX && s1 < GEOM_MAX && s2 < GEOM_MAX, MNN_E_OP, "broadcast shape", c->op,
            dim, GEOM_MAX);
        n *= dim;
        reach1 += (uint64_t)(dim - 1) * s1;
        reach2 += (uint64_t)(dim - 1) * s2;
    }
    CHECK(n <= UINT32_MAX, MNN_E_OP, "dimensions overflow", c->op, 0, 0);
    uint32_t n1 = tensor_nbytes(c, 0), n2 = tensor_nbytes(c, 1);
    CHECK(reach1 < n1 && reach2 < n2, MNN_E_OP, "broadcast strides reach past an input", c->op,
        (uint32_t)reach1, n1);
    WANT(0, MNN_DTYPE_INT8, STORAGE_ANY, n1, "input 1", 0);
    WANT(1, MNN_DTYPE_INT8, STORAGE_ANY, n2, "input 2", 0);
    WANT(2, MNN_DTYPE_INT8, MNN_STORAGE_ARENA, (uint32_t)n, "output size", 0);
    TRY(check_offset(c, rd_i32(p + MNN_P_ADD_INPUT1_OFFSET), "input 1 offset"));
    TRY(check_offset(c, rd_i32(p + MNN_P_ADD_INPUT2_OFFSET), "input 2 offset"));
    int32_t ls = rd_i32(p + MNN_P_ADD_LEFT_SHIFT);
    CHECK(ls >= 0 && ls <= 20, MNN_E_OP, "left shift", c->op, (uint32_t)ls, 20);
    static const uint8_t shifts[] = { MNN_P_ADD_INPUT1_SHIFT, MNN_P_ADD_INPUT2_SHIFT, MNN_P_ADD_OUTPUT_SHIFT };
    for (int k = 0; k < 3; k++) {
        int32_t s = rd_i32(p + shifts[k]);
        CHECK(s >= -31 && s <= 30, MNN_E_OP, "requantization shift", c->op, (uint32_t)s, 30);
    }
    return check_activation(c, rd_i32(p + MNN_P_ADD_OUTPUT_OFFSET), rd_i32(p + MNN_P_ADD_ACT_MIN),
        rd_i32(p + MNN_P_ADD_ACT_MAX));
}

static mnn_status_t check_lut(const op_ctx_t *c) {
    uint32_t n = rd_u32(c->params + MNN_P_LUT_COUNT);
    WANT(0, MNN_DTYPE_INT8, MNN_STORAGE_ARENA, n, "input size", 0);
    WANT(1, MNN_DTYPE_INT8, MNN_STORAGE_CONST, 256, "table size", 0);
    WANT(2, MNN_DTYPE_INT8, MNN_STORAGE_ARENA, n, "output size", 0);
    return MNN_OK;
}

static mnn_status_t check_concat(const op_ctx_t *c) {
    mnn_error_t *err = c->err;
    uint32_t outer = rd_u32(c->params + MNN_P_CONCATENATION_OUTER);
    CHECK(c->n_in >= 1 && c->n_in <= MNN_CONCAT_MAX_INPUTS, MNN_E_OP, "input count", c->op, c->n_in,
        MNN_CONCAT_MAX_INPUTS);
    CHECK(outer >= 1, MNN_E_OP, "outer size", c->op, outer, 1);
    uint64_t total = 0;
    for (uint32_t k = 0; k < c->n_in; k++) {
        uint32_t n = tensor_nbytes(c, k);
        CHECK(n % outer == 0, MNN_E_OP, "input size not a multiple of outer", c->op, n, outer);
        WANT(k, MNN_DTYPE_INT8, MNN_STORAGE_ARENA, n, "input", 0);
        total += n;
    }
    CHECK(total <= UINT32_MAX, MNN_E_OP, "dimensions overflow", c->op, 0, 0);
    WANT(c->n_in, MNN_DTYPE_INT8, MNN_STORAGE_ARENA, (uint32_t)total, "output size", 0);
    return MNN_OK;
}

static mnn_status_t check_pad(const op_ctx_t *c) {
    mnn_error_t *err = c->err;
    const uint8_t *p = c->params;
    uint64_t in = 1, out = 1;
    for (int d = 0; d < 4; d++) {
        uint32_t dim = rd_u32(p + MNN_P_PAD_IN_DIMS + 4 * d);
        uint32_t b = rd_u32(p + MNN_P_PAD_BEFORE + 4 * d), a = rd_u32(p + MNN_P_PAD_AFTER + 4 * d);
        CHECK(dim >= 1 && dim < GEOM_MAX && b < GEOM_MAX && a < GEOM_MAX, MNN_E_OP, "pad shape", c->op, dim,
            GEOM_MAX);
        in *= dim;
        out *= (uint64_t)dim + a + b;
        CHECK(out <= UINT32_MAX, MNN_E_OP, "dimensions overflow", c->op, 0, 0);
    }
    int32_t v = rd_i32(p + MNN_P_PAD_VALUE);
    CHECK(v >= -128 && v <= 127, MNN_E_OP, "pad value", c->op, (uint32_t)v, 127);
    WANT(0, MNN_DTYPE_INT8, MNN_STORAGE_ARENA, (uint32_t)in, "input size", 0);
    WANT(1, MNN_DTYPE_INT8, MNN_STORAGE_ARENA, (uint32_t)out, "output size", 0);
    return MNN_OK;
}

static mnn_status_t check_mean(const op_ctx_t *c) {
    mnn_error_t *err = c->err;
    const uint8_t *p = c->params;
    uint32_t outer = rd_u32(p + MNN_P_MEAN_OUTER), reduce = rd_u32(p + MNN_P_MEAN_REDUCE);
    uint32_t inner = rd_u32(p + MNN_P_MEAN_INNER);
    CHECK(outer >= 1 && reduce >= 1 && inner >= 1 && reduce < GEOM_MAX, MNN_E_OP, "mean shape", c->op, reduce, 1);
    uint64_t in = (uint64_t)outer * reduce * inner, out = (uint64_t)outer * inner;
    CHECK(in <= UINT32_MAX, MNN_E_OP, "dimensions overflow", c->op, 0, 0);
    CHECK((uint64_t)inner * 4 <= c->m->scratch_size, MNN_E_OP, "scratch too small", c->op, c->m->scratch_size,
        inner * 4);
    int32_t off = rd_i32(p + MNN_P_MEAN_OUTPUT_OFFSET), mode = rd_i32(p + MNN_P_MEAN_MODE);
    int32_t shift = rd_i32(p + MNN_P_MEAN_SHIFT);
    CHECK(off >= -128 && off <= 127, MNN_E_OP, "output offset", c->op, (uint32_t)off, 127);
    CHECK(mode == MNN_MEAN_TRUNC || mode == MNN_MEAN_SCALED, MNN_E_OP, "mean mode", c->op, (uint32_t)mode, 2);
    CHECK(shift >= -31 && shift <= 30, MNN_E_OP, "requantization shift", c->op, (uint32_t)shift, 30);
    TRY(check_offset(c, rd_i32(p + MNN_P_MEAN_INPUT_OFFSET), "input offset"));
    // The sum of reduce int8 values plus reduce * offset must fit in int32.
    CHECK(reduce < (1u << 22), MNN_E_OP, "mean reduce size", c->op, reduce, 1u << 22);
    WANT(0, MNN_DTYPE_INT8, MNN_STORAGE_ARENA, (uint32_t)in, "input size", 0);
    WANT(1, MNN_DTYPE_INT8, MNN_STORAGE_ARENA, (uint32_t)out, "output size", 0);
    return MNN_OK;
}

// === checks ELEMENTWISE ===

// SUB, SQUARED_DIFFERENCE, MAXIMUM, MINIMUM and PRELU share ADD's record and
// its checks (check_binary: shape, strides against the operand sizes, offsets,
// shifts, activation range); SUB and SQUARED_DIFFERENCE also take TFLite
// Micro's left shift (20 and 7) and no other, MAXIMUM and MINIMUM only the
// full int8 range.
_Static_assert(MNN_P_SUB_RECORD_SIZE == MNN_P_ADD_RECORD_SIZE
    && MNN_P_SQUARED_DIFFERENCE_LEFT_SHIFT == MNN_P_ADD_LEFT_SHIFT && MNN_P_PRELU_OUTPUT_SHIFT == MNN_P_ADD_OUTPUT_SHIFT
    && MNN_P_MAXIMUM_STRIDE2 == MNN_P_ADD_STRIDE2 && MNN_P_MINIMUM_ACT_MAX == MNN_P_ADD_ACT_MAX,
    "the elementwise records are ADD's");

static mnn_status_t check_left_shift(const op_ctx_t *c, int32_t want) {
    mnn_error_t *err = c->err;
    int32_t ls = rd_i32(c->params + MNN_P_SUB_LEFT_SHIFT);
    CHECK(ls == want, MNN_E_OP, "left shift", c->op, (uint32_t)ls, (uint32_t)want);
    return MNN_OK;
}

static mnn_status_t check_sub(const op_ctx_t *c) {
    TRY(check_binary(c));
    return check_left_shift(c, 20);
}

static mnn_status_t check_squared_difference(const op_ctx_t *c) {
    TRY(check_binary(c));
    return check_left_shift(c, 7);
}

// MAXIMUM and MINIMUM do not clamp (their DSP path could not): the range is int8's.
static mnn_status_t check_minmax(const op_ctx_t *c) {
    mnn_error_t *err = c->err;
    TRY(check_binary(c));
    int32_t lo = rd_i32(c->params + MNN_P_MAXIMUM_ACT_MIN), hi = rd_i32(c->params + MNN_P_MAXIMUM_ACT_MAX);
    CHECK(lo == -128 && hi == 127, MNN_E_OP, "maximum/minimum activation range", c->op, (uint32_t)lo, 127);
    return MNN_OK;
}

// === checks MOVEMENT ===

// STRIDED_COPY: every output element reads input[start + sum(i_d * strides[d])];
// the address is affine in the output index, so the lowest and highest reads
// are corners of the box: both must lie inside the input.
static mnn_status_t check_strided_copy(const op_ctx_t *c) {
    mnn_error_t *err = c->err;
    const uint8_t *p = c->params;
    uint32_t start = rd_u32(p + MNN_P_STRIDED_COPY_START);
    uint64_t n = 1;
    int64_t lo = start, hi = start;
    for (int d = 0; d < MNN_COPY_DIMS; d++) {
        uint32_t dim = rd_u32(p + MNN_P_STRIDED_COPY_DIMS + 4 * d);
        int32_t s = rd_i32(p + MNN_P_STRIDED_COPY_STRIDES + 4 * d);
        CHECK(dim >= 1 && dim < GEOM_MAX, MNN_E_OP, "copy shape", c->op, dim, GEOM_MAX);
        CHECK(s > -(int32_t)GEOM_MAX && s < (int32_t)GEOM_MAX, MNN_E_OP, "copy stride", c->op, (uint32_t)s,
            GEOM_MAX);
        n *= dim;
        CHECK(n <= UINT32_MAX, MNN_E_OP, "dimensions overflow", c->op, dim, 0);
        int64_t reach = (int64_t)(dim - 1) * s;     // |reach| < 2^48: six of them fit in int64
        if (reach < 0) {
            lo += reach;
        } else {
            hi += reach;
        }
    }
    uint32_t in_n = tensor_nbytes(c, 0);
    WANT(0, MNN_DTYPE_INT8, MNN_STORAGE_ARENA, in_n, "input", 0);
    CHECK(lo >= 0 && hi < (int64_t)in_n, MNN_E_OP, "copy reaches outside the input", c->op,
        (uint32_t)(lo < 0 ? lo : hi), in_n);
    WANT(1, MNN_DTYPE_INT8, MNN_STORAGE_ARENA, (uint32_t)n, "output size", 0);
    return MNN_OK;
}

static mnn_status_t check_gather(const op_ctx_t *c) {
    mnn_error_t *err = c->err;
    const uint8_t *p = c->params;
    uint32_t outer = rd_u32(p + MNN_P_GATHER_OUTER), axis = rd_u32(p + MNN_P_GATHER_AXIS_SIZE);
    uint32_t inner = rd_u32(p + MNN_P_GATHER_INNER), count = rd_u32(p + MNN_P_GATHER_COUNT);
    CHECK(outer >= 1 && outer < GEOM_MAX && axis >= 1 && axis < GEOM_MAX && inner >= 1 && inner < GEOM_MAX
        && count >= 1 && count < GEOM_MAX, MNN_E_OP, "gather shape", c->op, count, GEOM_MAX);
    uint64_t in = (uint64_t)outer * axis * inner, out = (uint64_t)outer * count * inner;
    CHECK(in <= UINT32_MAX && out <= UINT32_MAX, MNN_E_OP, "dimensions overflow", c->op, 0, 0);
    WANT(0, MNN_DTYPE_INT8, MNN_STORAGE_ARENA, (uint32_t)in, "input size", 0);
    WANT(1, MNN_DTYPE_INT32, MNN_STORAGE_CONST, count * 4, "indices size", 0);
    WANT(2, MNN_DTYPE_INT8, MNN_STORAGE_ARENA, (uint32_t)out, "output size", 0);
    tensor_t t;
    read_tensor(c->m, operand(c, 1), &t);
    // the kernel reads them as int32_t (the packer aligns every constant array to 16)
    CHECK(t.offset % 4 == 0, MNN_E_OP, "indices misaligned", c->op, t.offset, 4);
    const uint8_t *idx = c->m->blob + c->m->const_off + t.offset;
    for (uint32_t k = 0; k < count; k++) {
        uint32_t v = rd_u32(idx + 4 * k);
        CHECK(v < axis, MNN_E_OP, "gather index", c->op, v, axis);
    }
    return MNN_OK;
}

static mnn_status_t check_mirror_pad(const op_ctx_t *c) {
    mnn_error_t *err = c->err;
    const uint8_t *p = c->params;
    uint32_t off = rd_u32(p + MNN_P_MIRROR_PAD_OFFSET);
    CHECK(off <= 1, MNN_E_OP, "mirror pad mode", c->op, off, 1);
    uint64_t in = 1, out = 1;
    for (int d = 0; d < 4; d++) {
        uint32_t dim = rd_u32(p + MNN_P_MIRROR_PAD_IN_DIMS + 4 * d);
        uint32_t b = rd_u32(p + MNN_P_MIRROR_PAD_BEFORE + 4 * d), a = rd_u32(p + MNN_P_MIRROR_PAD_AFTER + 4 * d);
        CHECK(dim >= 1 && dim < GEOM_MAX, MNN_E_OP, "mirror pad shape", c->op, dim, GEOM_MAX);
        CHECK(b <= dim - off && a <= dim - off, MNN_E_OP, "mirror padding", c->op, b > a ? b : a, dim - off);
        in *= dim;
        out *= (uint64_t)dim + a + b;
        CHECK(out <= UINT32_MAX, MNN_E_OP, "dimensions overflow", c->op, 0, 0);
    }
    WANT(0, MNN_DTYPE_INT8, MNN_STORAGE_ARENA, (uint32_t)in, "input size", 0);
    WANT(1, MNN_DTYPE_INT8, MNN_STORAGE_ARENA, (uint32_t)out, "output size", 0);
    return MNN_OK;
}

// === checks RESIZE ===

// The index tables of RESIZE_NEAREST (per: 1, an input row or column per
// output one) and RESIZE_BILINEAR (per: 3, lower and upper input row or
// column and the position's fraction dy = position - 1024 * lower, which
// TFLite Micro keeps from -512 to 1023): every index inside the input, every
// fraction small enough that the kernel's sums fit in int32.
static mnn_status_t check_resize_table(const op_ctx_t *c, uint32_t k, uint32_t n, uint32_t per, uint32_t limit,
    const char *what) {
    mnn_error_t *err = c->err;
    tensor_t t;
    read_tensor(c->m, operand(c, k), &t);
    const uint8_t *p = c->m->blob + c->m->const_off + t.offset;
    for (uint32_t j = 0; j < n; j++) {
        for (uint32_t e = 0; e < (per == 3 ? 2u : 1u); e++) {
            int32_t v = rd_i32(p + 4 * (per * j + e));
            CHECK(v >= 0 && (uint32_t)v < limit, MNN_E_OP, what, c->op, (uint32_t)v, limit);
        }
        if (per == 3) {
            int32_t d = rd_i32(p + 4 * (3 * j + 2));
            CHECK(d >= -512 && d <= 1024, MNN_E_OP, "bilinear fraction", c->op, (uint32_t)d, 1024);
        }
    }
    return MNN_OK;
}

_Static_assert(MNN_P_RESIZE_NEAREST_OUT_W == MNN_P_RESIZE_BILINEAR_OUT_W
    && MNN_P_RESIZE_NEAREST_CHANNELS == MNN_P_RESIZE_BILINEAR_CHANNELS, "shared resize layouts");

static mnn_status_t check_resize(const op_ctx_t *c, uint32_t per) {
    mnn_error_t *err = c->err;
    const uint8_t *p = c->params;
    const uint32_t v[] = {
        rd_u32(p + MNN_P_RESIZE_NEAREST_BATCHES), rd_u32(p + MNN_P_RESIZE_NEAREST_IN_H),
        rd_u32(p + MNN_P_RESIZE_NEAREST_IN_W), rd_u32(p + MNN_P_RESIZE_NEAREST_CHANNELS),
        rd_u32(p + MNN_P_RESIZE_NEAREST_OUT_H), rd_u32(p + MNN_P_RESIZE_NEAREST_OUT_W),
    };
    for (uint32_t k = 0; k < 6; k++) {
        CHECK(v[k] >= 1 && v[k] < GEOM_MAX, MNN_E_OP, "resize shape", c->op, v[k], GEOM_MAX);
    }
    uint64_t in = (uint64_t)v[0] * v[1] * v[2] * v[3], out = (uint64_t)v[0] * v[4] * v[5] * v[3];
    CHECK(in <= UINT32_MAX && out <= UINT32_MAX, MNN_E_OP, "dimensions overflow", c->op, 0, 0);
    WANT(0, MNN_DTYPE_INT8, MNN_STORAGE_ARENA, (uint32_t)in, "input size", 0);
    WANT(1, MNN_DTYPE_INT32, MNN_STORAGE_CONST, v[4] * 4 * per, "row table size", 0);
    WANT(2, MNN_DTYPE_INT32, MNN_STORAGE_CONST, v[5] * 4 * per, "column table size", 0);
    WANT(3, MNN_DTYPE_INT8, MNN_STORAGE_ARENA, (uint32_t)out, "output size", 0);
    TRY(check_resize_table(c, 1, v[4], per, v[1], "resize row index"));
    return check_resize_table(c, 2, v[5], per, v[2], "resize column index");
}

static mnn_status_t check_resize_nearest(const op_ctx_t *c) {
    return check_resize(c, 1);
}

static mnn_status_t check_resize_bilinear(const op_ctx_t *c) {
    return check_resize(c, 3);
}

static mnn_status_t check_transpose_conv(const op_ctx_t *c) {
    mnn_error_t *err = c->err;
    const uint8_t *p = c->params;
    static const uint8_t sizes[] = {
        MNN_P_TRANSPOSE_CONV_BATCHES, MNN_P_TRANSPOSE_CONV_IN_H, MNN_P_TRANSPOSE_CONV_IN_W, MNN_P_TRANSPOSE_CONV_IN_C,
        MNN_P_TRANSPOSE_CONV_OUT_H, MNN_P_TRANSPOSE_CONV_OUT_W, MNN_P_TRANSPOSE_CONV_OUT_C, MNN_P_TRANSPOSE_CONV_K_H,
        MNN_P_TRANSPOSE_CONV_K_W, MNN_P_TRANSPOSE_CONV_STRIDE_H, MNN_P_TRANSPOSE_CONV_STRIDE_W,
    };
    for (uint32_t k = 0; k < sizeof(sizes); k++) {
        uint32_t v = rd_u32(p + sizes[k]);
        CHECK(v >= 1 && v < GEOM_MAX, MNN_E_OP, "geometry value", c->op, v, GEOM_MAX);
    }
    uint32_t pad_t = rd_u32(p + MNN_P_TRANSPOSE_CONV_PAD_TOP), pad_l = rd_u32(p + MNN_P_TRANSPOSE_CONV_PAD_LEFT);
    CHECK(pad_t < GEOM_MAX && pad_l < GEOM_MAX, MNN_E_OP, "padding", c->op, pad_t, GEOM_MAX);
    uint64_t n = rd_u32(p + MNN_P_TRANSPOSE_CONV_BATCHES), in_c = rd_u32(p + MNN_P_TRANSPOSE_CONV_IN_C);
    uint64_t out_c = rd_u32(p + MNN_P_TRANSPOSE_CONV_OUT_C);
    uint64_t in = n * rd_u32(p + MNN_P_TRANSPOSE_CONV_IN_H) * rd_u32(p + MNN_P_TRANSPOSE_CONV_IN_W) * in_c;
    uint64_t out = n * rd_u32(p + MNN_P_TRANSPOSE_CONV_OUT_H) * rd_u32(p + MNN_P_TRANSPOSE_CONV_OUT_W) * out_c;
    uint64_t w_n = out_c * rd_u32(p + MNN_P_TRANSPOSE_CONV_K_H) * rd_u32(p + MNN_P_TRANSPOSE_CONV_K_W) * in_c;
    CHECK(in <= UINT32_MAX && out <= UINT32_MAX, MNN_E_OP, "dimensions overflow", c->op, 0, 0);
    CHECK(w_n <= UINT32_MAX, MNN_E_OP, "weights size", c->op, 0, 0);
    CHECK(out_c < GEOM_MAX / 4, MNN_E_OP, "output channels", c->op, (uint32_t)out_c, GEOM_MAX / 4);
    uint32_t ch4 = (uint32_t)out_c * 4;
    TRY(check_offset(c, rd_i32(p + MNN_P_TRANSPOSE_CONV_INPUT_OFFSET), "input offset"));
    WANT(0, MNN_DTYPE_INT8, MNN_STORAGE_ARENA, (uint32_t)in, "input size", 0);
    WANT(1, MNN_DTYPE_INT8, MNN_STORAGE_CONST, (uint32_t)w_n, "weights size", 0);
    WANT(2, MNN_DTYPE_INT32, MNN_STORAGE_CONST, ch4, "bias size", 1);
    WANT(3, MNN_DTYPE_INT32, MNN_STORAGE_CONST, ch4, "multiplier size", 0);
    WANT(4, MNN_DTYPE_INT32, MNN_STORAGE_CONST, ch4, "shift size", 0);
    WANT(5, MNN_DTYPE_INT8, MNN_STORAGE_ARENA, (uint32_t)out, "output size", 0);
    TRY(check_shifts(c, 4));
    return check_activation(c, rd_i32(p + MNN_P_TRANSPOSE_CONV_OUTPUT_OFFSET),
        rd_i32(p + MNN_P_TRANSPOSE_CONV_ACT_MIN), rd_i32(p + MNN_P_TRANSPOSE_CONV_ACT_MAX));
}

// === checks REDUCE ===

// [outer, reduce, inner] of ARG_MAX, ARG_MIN, REDUCE_MAX and REDUCE_MIN: every
// size from 1 to GEOM_MAX - 1 and the input's size within 32 bits.
static mnn_status_t check_reduce_shape(const op_ctx_t *c, uint32_t *in_n, uint32_t *out_n) {
    mnn_error_t *err = c->err;
    const uint8_t *p = c->params;
    _Static_assert(MNN_P_ARG_MAX_OUTER == MNN_P_REDUCE_MAX_OUTER && MNN_P_ARG_MAX_REDUCE == MNN_P_REDUCE_MAX_REDUCE
        && MNN_P_ARG_MAX_INNER == MNN_P_REDUCE_MAX_INNER && MNN_P_ARG_MAX_OUTER == MNN_P_ARG_MIN_OUTER
        && MNN_P_ARG_MAX_REDUCE == MNN_P_ARG_MIN_REDUCE && MNN_P_ARG_MAX_INNER == MNN_P_ARG_MIN_INNER
        && MNN_P_REDUCE_MAX_OUTER == MNN_P_REDUCE_MIN_OUTER && MNN_P_REDUCE_MAX_REDUCE == MNN_P_REDUCE_MIN_REDUCE
        && MNN_P_REDUCE_MAX_INNER == MNN_P_REDUCE_MIN_INNER, "shared reduce layouts");
    uint32_t outer = rd_u32(p + MNN_P_ARG_MAX_OUTER), reduce = rd_u32(p + MNN_P_ARG_MAX_REDUCE);
    uint32_t inner = rd_u32(p + MNN_P_ARG_MAX_INNER);
    CHECK(outer >= 1 && outer < GEOM_MAX && reduce >= 1 && reduce < GEOM_MAX && inner >= 1 && inner < GEOM_MAX,
        MNN_E_OP, "reduce shape", c->op, reduce, GEOM_MAX);
    uint64_t in = (uint64_t)outer * reduce * inner;
    CHECK(in <= UINT32_MAX, MNN_E_OP, "dimensions overflow", c->op, 0, 0);
    *in_n = (uint32_t)in;
    *out_n = outer * inner;     // at most the input's size
    return MNN_OK;
}

// ARG_MAX / ARG_MIN: int8 input, int32 or int64 indices out.
static mnn_status_t check_arg_minmax(const op_ctx_t *c) {
    mnn_error_t *err = c->err;
    uint32_t in_n, out_n;
    TRY(check_reduce_shape(c, &in_n, &out_n));
    WANT(0, MNN_DTYPE_INT8, MNN_STORAGE_ARENA, in_n, "input size", 0);
    uint32_t i = operand(c, 1);
    uint8_t dtype = MNN_DTYPE_INT32;
    if (i < c->m->tensor_count) {
        tensor_t t;
        read_tensor(c->m, i, &t);
        dtype = t.dtype == MNN_DTYPE_INT64 ? MNN_DTYPE_INT64 : MNN_DTYPE_INT32;
    }
    uint64_t out_bytes = (uint64_t)out_n * mnn_dtype_size(dtype);
    CHECK(out_bytes <= UINT32_MAX, MNN_E_OP, "dimensions overflow", c->op, out_n, 0);
    WANT(1, dtype, MNN_STORAGE_ARENA, (uint32_t)out_bytes, "output size", 0);
    return MNN_OK;
}

// REDUCE_MAX / REDUCE_MIN: int8 in and out.
static mnn_status_t check_reduce_minmax(const op_ctx_t *c) {
    uint32_t in_n, out_n;
    TRY(check_reduce_shape(c, &in_n, &out_n));
    WANT(0, MNN_DTYPE_INT8, MNN_STORAGE_ARENA, in_n, "input size", 0);
    WANT(1, MNN_DTYPE_INT8, MNN_STORAGE_ARENA, out_n, "output size", 0);
    return MNN_OK;
}

// The sum of squares of a row of (int8 + offset) values, each at most 256 in
// magnitude, fits int32 for rows up to this long.
#define L2NORM_DEPTH_MAX (1u << 14)

static mnn_status_t check_l2norm(const op_ctx_t *c) {
    mnn_error_t *err = c->err;
    const uint8_t *p = c->params;
    uint32_t rows = rd_u32(p + MNN_P_L2_NORMALIZATION_ROWS), depth = rd_u32(p + MNN_P_L2_NORMALIZATION_DEPTH);
    int32_t off = rd_i32(p + MNN_P_L2_NORMALIZATION_INPUT_OFFSET);
    uint32_t n;
    CHECK(rows >= 1 && depth >= 1, MNN_E_OP, "zero dimension", c->op, 0, 1);
    CHECK(depth <= L2NORM_DEPTH_MAX, MNN_E_OP, "l2 normalization depth", c->op, depth, L2NORM_DEPTH_MAX);
    CHECK(mul_ok(rows, depth, &n), MNN_E_OP, "dimensions overflow", c->op, depth, 0);
    CHECK(off >= -128 && off <= 128, MNN_E_OP, "input offset", c->op, (uint32_t)off, 128);
    WANT(0, MNN_DTYPE_INT8, MNN_STORAGE_ARENA, n, "input size", 0);
    WANT(1, MNN_DTYPE_INT8, MNN_STORAGE_ARENA, n, "output size", 0);
    return MNN_OK;
}

// Rows shorter than this keep the sum of exponentials (each at most 2^19 in
// Q12.19) below 2^31, as TFLite's kernel assumes.
#define LOG_SOFTMAX_ROW_MAX 4096u

static mnn_status_t check_log_softmax(const op_ctx_t *c) {
    mnn_error_t *err = c->err;
    const uint8_t *p = c->params;
    uint32_t rows = rd_u32(p + MNN_P_LOG_SOFTMAX_ROWS), size = rd_u32(p + MNN_P_LOG_SOFTMAX_ROW_SIZE);
    int32_t shift = rd_i32(p + MNN_P_LOG_SOFTMAX_INPUT_LEFT_SHIFT);
    int32_t diff_min = rd_i32(p + MNN_P_LOG_SOFTMAX_DIFF_MIN);
    int32_t rshift = rd_i32(p + MNN_P_LOG_SOFTMAX_REVERSE_SHIFT);
    uint32_t n;
    CHECK(rows >= 1 && size >= 1, MNN_E_OP, "zero dimension", c->op, 0, 1);
    CHECK(size < LOG_SOFTMAX_ROW_MAX, MNN_E_OP, "log softmax row size", c->op, size, LOG_SOFTMAX_ROW_MAX - 1);
    CHECK(mul_ok(rows, size, &n), MNN_E_OP, "dimensions overflow", c->op, size, 0);
    CHECK(shift >= 0 && shift <= 31, MNN_E_OP, "log softmax input shift", c->op, (uint32_t)shift, 31);
    // Differences that pass diff_min, scaled by 2^shift, must fit in int32.
    int64_t lowest = -(int64_t)(((int64_t)31 << 26) >> shift);
    CHECK(diff_min >= lowest && diff_min <= 0, MNN_E_OP, "log softmax diff_min", c->op, (uint32_t)diff_min,
        (uint32_t)lowest);
    CHECK(rshift >= -31 && rshift <= 0, MNN_E_OP, "log softmax reverse shift", c->op, (uint32_t)rshift, 0);
    WANT(0, MNN_DTYPE_INT8, MNN_STORAGE_ARENA, n, "input size", 0);
    WANT(1, MNN_DTYPE_INT8, MNN_STORAGE_ARENA, n, "output size", 0);
    return MNN_OK;
}

// === checks MATMUL ===

// BATCH_MATMUL: every size below GEOM_MAX, batch dimensions that broadcast,
// operand sizes that match them exactly, and the kernel's int16 rows in scratch.
static mnn_status_t check_batch_matmul(const op_ctx_t *c) {
    mnn_error_t *err = c->err;
    const uint8_t *p = c->params;
    uint64_t lbn = 1, rbn = 1, obn = 1;
    for (int d = 0; d < 2; d++) {
        uint32_t lb = rd_u32(p + MNN_P_BATCH_MATMUL_LHS_BATCH + 4 * d);
        uint32_t rb = rd_u32(p + MNN_P_BATCH_MATMUL_RHS_BATCH + 4 * d);
        CHECK(lb >= 1 && lb < GEOM_MAX && rb >= 1 && rb < GEOM_MAX, MNN_E_OP, "batch dimension", c->op,
            lb < 1 || lb >= GEOM_MAX ? lb : rb, GEOM_MAX);
        CHECK(lb == rb || lb == 1 || rb == 1, MNN_E_OP, "batch dimensions do not broadcast", c->op, lb, rb);
        lbn *= lb;
        rbn *= rb;
        obn *= lb > rb ? lb : rb;
    }
    uint32_t rows = rd_u32(p + MNN_P_BATCH_MATMUL_ROWS), depth = rd_u32(p + MNN_P_BATCH_MATMUL_DEPTH);
    uint32_t cols = rd_u32(p + MNN_P_BATCH_MATMUL_COLS);
    CHECK(rows >= 1 && rows < GEOM_MAX && depth >= 1 && depth < GEOM_MAX && cols >= 1 && cols < GEOM_MAX, MNN_E_OP,
        "matrix size", c->op, rows < 1 || rows >= GEOM_MAX ? rows : (depth < 1 || depth >= GEOM_MAX ? depth : cols),
        GEOM_MAX);
    uint32_t adj_x = rd_u32(p + MNN_P_BATCH_MATMUL_ADJ_X), adj_y = rd_u32(p + MNN_P_BATCH_MATMUL_ADJ_Y);
    CHECK(adj_x <= 1 && adj_y <= 1, MNN_E_OP, "adj_x or adj_y", c->op, adj_x > 1 ? adj_x : adj_y, 1);
    // Matrices and batch counts below 2^48 each; checked below 2^32 before their product.
    uint64_t mk = (uint64_t)rows * depth, kn = (uint64_t)depth * cols, mn = (uint64_t)rows * cols;
    CHECK(mk <= UINT32_MAX && kn <= UINT32_MAX && mn <= UINT32_MAX && lbn <= UINT32_MAX && rbn <= UINT32_MAX
        && obn <= UINT32_MAX, MNN_E_OP, "dimensions overflow", c->op, 0, 0);
    uint64_t lhs_n = lbn * mk, rhs_n = rbn * kn, out_n = obn * mn;
    CHECK(lhs_n <= UINT32_MAX && rhs_n <= UINT32_MAX && out_n <= UINT32_MAX, MNN_E_OP, "dimensions overflow", c->op,
        0, 0);
    uint64_t scratch = 2 * ((uint64_t)depth + (depth & 1)) * ((uint64_t)cols + 2);
    CHECK(scratch <= c->m->scratch_size, MNN_E_OP, "scratch too small", c->op, c->m->scratch_size,
        scratch > UINT32_MAX ? UINT32_MAX : (uint32_t)scratch);
    TRY(check_offset(c, rd_i32(p + MNN_P_BATCH_MATMUL_LHS_OFFSET), "lhs offset"));
    TRY(check_offset(c, rd_i32(p + MNN_P_BATCH_MATMUL_RHS_OFFSET), "rhs offset"));
    int32_t shift = rd_i32(p + MNN_P_BATCH_MATMUL_OUTPUT_SHIFT);
    CHECK(shift >= -31 && shift <= 30, MNN_E_OP, "requantization shift", c->op, (uint32_t)shift, 30);
    WANT(0, MNN_DTYPE_INT8, STORAGE_ANY, (uint32_t)lhs_n, "lhs size", 0);
    WANT(1, MNN_DTYPE_INT8, STORAGE_ANY, (uint32_t)rhs_n, "rhs size", 0);
    WANT(2, MNN_DTYPE_INT8, MNN_STORAGE_ARENA, (uint32_t)out_n, "output size", 0);
    return check_activation(c, rd_i32(p + MNN_P_BATCH_MATMUL_OUTPUT_OFFSET), rd_i32(p + MNN_P_BATCH_MATMUL_ACT_MIN),
        rd_i32(p + MNN_P_BATCH_MATMUL_ACT_MAX));
}

// === checks STATE ===

// ASSIGN: a copy between tensors of one dtype and size; the target in the arena
// or the state (never a constant), the source anywhere.
static mnn_status_t check_assign(const op_ctx_t *c) {
    mnn_error_t *err = c->err;
    CHECK(operand(c, 0) < c->m->tensor_count && operand(c, 1) < c->m->tensor_count, MNN_E_OP, "operand", c->op,
        operand(c, 0), c->m->tensor_count);
    tensor_t src, dst;
    read_tensor(c->m, operand(c, 0), &src);
    read_tensor(c->m, operand(c, 1), &dst);
    CHECK(dst.storage != MNN_STORAGE_CONST, MNN_E_OP, "assign to a constant", c->op, dst.storage, 0);
    WANT(0, dst.dtype, STORAGE_ANY, dst.nbytes, "source", 0);
    return MNN_OK;
}

// === checks SVDF ===

// SVDF: sizes below GEOM_MAX whose products fit, rank dividing the filters, every
// operand exactly as large as the sizes say, the state int16 in the model's state
// with zero point 0 (the kernel's int16 clamp assumes it), shifts in [-31, 30].
static mnn_status_t check_svdf(const op_ctx_t *c) {
    mnn_error_t *err = c->err;
    const uint8_t *p = c->params;
    uint32_t batches = rd_u32(p + MNN_P_SVDF_BATCHES), in = rd_u32(p + MNN_P_SVDF_INPUT_SIZE);
    uint32_t nf = rd_u32(p + MNN_P_SVDF_NUM_FILTERS), mem = rd_u32(p + MNN_P_SVDF_MEMORY);
    uint32_t rank = rd_u32(p + MNN_P_SVDF_RANK);
    const uint32_t v[] = { batches, in, nf, mem, rank };
    for (uint32_t k = 0; k < sizeof(v) / sizeof(v[0]); k++) {
        CHECK(v[k] >= 1 && v[k] < GEOM_MAX, MNN_E_OP, "svdf size", c->op, v[k], GEOM_MAX);
    }
    CHECK(nf % rank == 0, MNN_E_OP, "svdf rank does not divide the filters", c->op, rank, nf);
    uint64_t in_n = (uint64_t)batches * in, wf_n = (uint64_t)nf * in, wt_n = (uint64_t)nf * mem * 2;
    uint64_t state_n = (uint64_t)batches * nf * mem * 2, out_n = (uint64_t)batches * (nf / rank);
    CHECK(in_n <= UINT32_MAX && wf_n <= UINT32_MAX && wt_n <= UINT32_MAX && state_n <= UINT32_MAX, MNN_E_OP,
        "dimensions overflow", c->op, 0, 0);
    TRY(check_offset(c, rd_i32(p + MNN_P_SVDF_INPUT_OFFSET), "input offset"));
    int32_t s1 = rd_i32(p + MNN_P_SVDF_FEATURE_SHIFT), s2 = rd_i32(p + MNN_P_SVDF_TIME_SHIFT);
    CHECK(s1 >= -31 && s1 <= 30, MNN_E_OP, "requantization shift", c->op, (uint32_t)s1, 30);
    CHECK(s2 >= -31 && s2 <= 30, MNN_E_OP, "requantization shift", c->op, (uint32_t)s2, 30);
    WANT(0, MNN_DTYPE_INT8, MNN_STORAGE_ARENA, (uint32_t)in_n, "input size", 0);
    WANT(1, MNN_DTYPE_INT8, MNN_STORAGE_CONST, (uint32_t)wf_n, "weights_feature size", 0);
    WANT(2, MNN_DTYPE_INT16, MNN_STORAGE_CONST, (uint32_t)wt_n, "weights_time size", 0);
    WANT(3, MNN_DTYPE_INT32, MNN_STORAGE_CONST, (uint32_t)((nf / rank) * 4), "bias size", 1);
    WANT(4, MNN_DTYPE_INT16, MNN_STORAGE_STATE, (uint32_t)state_n, "svdf state", 0);
    WANT(5, MNN_DTYPE_INT8, MNN_STORAGE_ARENA, (uint32_t)out_n, "output size", 0);
    tensor_t st;
    read_tensor(c->m, operand(c, 4), &st);
    CHECK(st.zero_point == 0, MNN_E_OP, "svdf state zero point", c->op, (uint32_t)st.zero_point, 0);
    return check_activation(c, rd_i32(p + MNN_P_SVDF_OUTPUT_OFFSET), -128, 127);
}

// === checks SEQUENCE ===

// LSTM: sizes below GEOM_MAX whose products fit, flags 0 or 1, every operand
// exactly as large as the sizes say, the states in the model's state (hidden
// int8 with the record's zero point, cell int16 with zero point 0), shifts in
// [-31, 30], multipliers >= 0, cell_clip in [0, 32767], the cell's tanh
// scaling as TANH_S16's (multiplier in [1, 32767], shift in [0, 31]: the
// scaled int16 value plus its rounding fits an int32).
static mnn_status_t check_lstm(const op_ctx_t *c) {
    mnn_error_t *err = c->err;
    const uint8_t *p = c->params;
    uint32_t batches = rd_u32(p + MNN_P_LSTM_BATCHES), steps = rd_u32(p + MNN_P_LSTM_STEPS);
    uint32_t in = rd_u32(p + MNN_P_LSTM_INPUT_SIZE), units = rd_u32(p + MNN_P_LSTM_UNITS);
    const uint32_t v[] = { batches, steps, in, units };
    for (uint32_t k = 0; k < sizeof(v) / sizeof(v[0]); k++) {
        CHECK(v[k] >= 1 && v[k] < GEOM_MAX, MNN_E_OP, "lstm size", c->op, v[k], GEOM_MAX);
    }
    CHECK(rd_u32(p + MNN_P_LSTM_TIME_MAJOR) <= 1, MNN_E_OP, "lstm time_major", c->op,
        rd_u32(p + MNN_P_LSTM_TIME_MAJOR), 1);
    uint64_t rows = (uint64_t)batches * steps;
    uint64_t in_n = rows * in, out_n = rows * units, wi_n = 4 * (uint64_t)units * in;
    uint64_t wr_n = 4 * (uint64_t)units * units, state_n = (uint64_t)batches * units;
    CHECK(in_n <= UINT32_MAX && out_n <= UINT32_MAX && wi_n <= UINT32_MAX && wr_n <= UINT32_MAX
        && state_n * 2 <= UINT32_MAX && units * 16ull <= UINT32_MAX, MNN_E_OP, "dimensions overflow", c->op, 0, 0);
    TRY(check_offset(c, rd_i32(p + MNN_P_LSTM_INPUT_OFFSET), "input offset"));
    int32_t hzp = rd_i32(p + MNN_P_LSTM_HIDDEN_ZERO_POINT);
    CHECK(hzp >= -128 && hzp <= 127, MNN_E_OP, "hidden zero point", c->op, (uint32_t)hzp, 127);
    static const uint16_t pairs[][2] = {
        { MNN_P_LSTM_INPUT_MULT, MNN_P_LSTM_INPUT_SHIFT },
        { MNN_P_LSTM_INPUT_MULT + 4, MNN_P_LSTM_INPUT_SHIFT + 4 },
        { MNN_P_LSTM_INPUT_MULT + 8, MNN_P_LSTM_INPUT_SHIFT + 8 },
        { MNN_P_LSTM_INPUT_MULT + 12, MNN_P_LSTM_INPUT_SHIFT + 12 },
        { MNN_P_LSTM_RECURRENT_MULT, MNN_P_LSTM_RECURRENT_SHIFT },
        { MNN_P_LSTM_RECURRENT_MULT + 4, MNN_P_LSTM_RECURRENT_SHIFT + 4 },
        { MNN_P_LSTM_RECURRENT_MULT + 8, MNN_P_LSTM_RECURRENT_SHIFT + 8 },
        { MNN_P_LSTM_RECURRENT_MULT + 12, MNN_P_LSTM_RECURRENT_SHIFT + 12 },
        { MNN_P_LSTM_FORGET_MULT, MNN_P_LSTM_FORGET_SHIFT },
        { MNN_P_LSTM_UPDATE_MULT, MNN_P_LSTM_UPDATE_SHIFT },
        { MNN_P_LSTM_HIDDEN_MULT, MNN_P_LSTM_HIDDEN_SHIFT },
    };
    for (uint32_t k = 0; k < sizeof(pairs) / sizeof(pairs[0]); k++) {
        int32_t m = rd_i32(p + pairs[k][0]), s = rd_i32(p + pairs[k][1]);
        CHECK(m >= 0, MNN_E_OP, "requantization multiplier", c->op, (uint32_t)m, 0);
        CHECK(s >= -31 && s <= 30, MNN_E_OP, "requantization shift", c->op, (uint32_t)s, 30);
    }
    int32_t clip = rd_i32(p + MNN_P_LSTM_CELL_CLIP);
    CHECK(clip >= 0 && clip <= 32767, MNN_E_OP, "lstm cell clip", c->op, (uint32_t)clip, 32767);
    int32_t tm = rd_i32(p + MNN_P_LSTM_CELL_TANH_MULT), ts = rd_i32(p + MNN_P_LSTM_CELL_TANH_SHIFT);
    CHECK(tm >= 1 && tm <= 32767, MNN_E_OP, "lstm cell tanh multiplier", c->op, (uint32_t)tm, 32767);
    CHECK(ts >= 0 && ts <= 31, MNN_E_OP, "lstm cell tanh shift", c->op, (uint32_t)ts, 31);
    WANT(0, MNN_DTYPE_INT8, MNN_STORAGE_ARENA, (uint32_t)in_n, "input size", 0);
    WANT(1, MNN_DTYPE_INT8, MNN_STORAGE_CONST, (uint32_t)wi_n, "input weights size", 0);
    WANT(2, MNN_DTYPE_INT8, MNN_STORAGE_CONST, (uint32_t)wr_n, "recurrent weights size", 0);
    WANT(3, MNN_DTYPE_INT32, MNN_STORAGE_CONST, units * 16, "bias size", 0);
    WANT(4, MNN_DTYPE_INT16, MNN_STORAGE_CONST, 256 * 2, "table size", 0);
    WANT(5, MNN_DTYPE_INT8, MNN_STORAGE_STATE, (uint32_t)state_n, "lstm hidden state", 0);
    WANT(6, MNN_DTYPE_INT16, MNN_STORAGE_STATE, (uint32_t)state_n * 2, "lstm cell state", 0);
    WANT(7, MNN_DTYPE_INT8, MNN_STORAGE_ARENA, (uint32_t)out_n, "output size", 0);
    tensor_t st;
    read_tensor(c->m, operand(c, 5), &st);
    CHECK(st.zero_point == hzp, MNN_E_OP, "lstm hidden state zero point", c->op, (uint32_t)st.zero_point,
        (uint32_t)hzp);
    read_tensor(c->m, operand(c, 6), &st);
    CHECK(st.zero_point == 0, MNN_E_OP, "lstm cell state zero point", c->op, (uint32_t)st.zero_point, 0);
    return MNN_OK;
}

// === checks S16 ===

// FULLY_CONNECTED_S16, CONV_2D_S16, DEPTHWISE_CONV_2D_S16: the int8 records
// (so read_geom reads them alike) plus acc64; int16 input and output, whose
// zero points are 0 (every offset 0), an int16 activation range, bias int64
// (acc64 1) or int32 (acc64 0). acc64: every sum of products plus bias stays
// within 2^47 (TFLite's bound for its 64-bit requantization): at most 2^24
// products of at most 2^22 each, and |bias| <= 2^46; shifts in [-31, 14].
_Static_assert(MNN_P_FULLY_CONNECTED_S16_OUT_DEPTH == MNN_P_FULLY_CONNECTED_OUT_DEPTH
    && MNN_P_FULLY_CONNECTED_S16_ACT_MAX == MNN_P_FULLY_CONNECTED_ACT_MAX
    && MNN_P_CONV_2D_S16_GROUPS == MNN_P_CONV_2D_GROUPS && MNN_P_CONV_2D_S16_ACT_MAX == MNN_P_CONV_2D_ACT_MAX
    && MNN_P_CONV_2D_S16_INPUT_OFFSET == MNN_P_CONV_2D_INPUT_OFFSET
    && MNN_P_DEPTHWISE_CONV_2D_S16_DEPTH_MULT == MNN_P_DEPTHWISE_CONV_2D_DEPTH_MULT
    && MNN_P_DEPTHWISE_CONV_2D_S16_ACT_MAX == MNN_P_CONV_2D_ACT_MAX
    && MNN_P_DEPTHWISE_CONV_2D_S16_INPUT_OFFSET == MNN_P_CONV_2D_INPUT_OFFSET
    && MNN_P_DEPTHWISE_CONV_2D_S16_OUTPUT_OFFSET == MNN_P_CONV_2D_OUTPUT_OFFSET, "S16 records extend the int8 ones");

#define S16_MAX_TAPS (1u << 24)
#define S16_MAX_BIAS ((int64_t)1 << 46)

static mnn_status_t check_s16_params(const op_ctx_t *c, int32_t in_off, int32_t w_off, int32_t out_off, int32_t lo,
    int32_t hi, uint32_t acc64) {
    mnn_error_t *err = c->err;
    CHECK(in_off == 0 && w_off == 0 && out_off == 0, MNN_E_OP, "16x8 offset (int16 zero points are 0)", c->op,
        (uint32_t)(in_off | w_off | out_off), 0);
    CHECK(lo >= -32768 && hi <= 32767 && lo <= hi, MNN_E_OP, "int16 activation range", c->op, (uint32_t)lo,
        (uint32_t)hi);
    CHECK(acc64 <= 1, MNN_E_OP, "acc64", c->op, acc64, 1);
    return MNN_OK;
}

// Operands: input int16 (in_n values), weights int8 (w_n), bias? (ch values,
// int64 or int32 as acc64 says), mult and shift (q bytes each), output int16
// (out_n values); taps: products in one sum.
static mnn_status_t check_s16_operands(const op_ctx_t *c, uint32_t in_n, uint32_t w_n, uint32_t ch, uint32_t q,
    uint32_t out_n, uint64_t taps, uint32_t acc64) {
    mnn_error_t *err = c->err;
    uint32_t in_b, out_b, bias_b;
    CHECK(mul_ok(in_n, 2, &in_b) && mul_ok(out_n, 2, &out_b) && mul_ok(ch, acc64 ? 8 : 4, &bias_b), MNN_E_OP,
        "dimensions overflow", c->op, in_n, out_n);
    WANT(0, MNN_DTYPE_INT16, MNN_STORAGE_ARENA, in_b, "int16 input size", 0);
    WANT(1, MNN_DTYPE_INT8, MNN_STORAGE_CONST, w_n, "weights size", 0);
    WANT(2, acc64 ? MNN_DTYPE_INT64 : MNN_DTYPE_INT32, MNN_STORAGE_CONST, bias_b,
        acc64 ? "bias (acc64: int64) dtype or size" : "bias (acc64 0: int32) dtype or size", 1);
    WANT(3, MNN_DTYPE_INT32, MNN_STORAGE_CONST, q, "multiplier size", 0);
    WANT(4, MNN_DTYPE_INT32, MNN_STORAGE_CONST, q, "shift size", 0);
    WANT(5, MNN_DTYPE_INT16, MNN_STORAGE_ARENA, out_b, "int16 output size", 0);
    if (!acc64) {
        return check_shifts(c, 4);
    }
    CHECK(taps <= S16_MAX_TAPS, MNN_E_OP, "16x8 sum length", c->op, taps > UINT32_MAX ? UINT32_MAX : (uint32_t)taps,
        S16_MAX_TAPS);
    tensor_t t;
    read_tensor(c->m, operand(c, 4), &t);
    const uint8_t *p = c->m->blob + c->m->const_off + t.offset;
    for (uint32_t j = 0; j < q / 4; j++) {
        int32_t s = rd_i32(p + 4 * j);
        CHECK(s >= -31 && s <= 14, MNN_E_OP, "16x8 requantization shift", c->op, (uint32_t)s, 14);
    }
    if (operand(c, 2) != MNN_NO_TENSOR) {
        read_tensor(c->m, operand(c, 2), &t);
        p = c->m->blob + c->m->const_off + t.offset;
        for (uint32_t j = 0; j < ch; j++) {
            int64_t b = (int64_t)((uint64_t)rd_u32(p + 8 * j) | ((uint64_t)rd_u32(p + 8 * j + 4) << 32));
            CHECK(b >= -S16_MAX_BIAS && b <= S16_MAX_BIAS, MNN_E_OP, "int64 bias out of range, past 2^46 (high word)",
                c->op, (uint32_t)(int32_t)(b >> 32), (uint32_t)(S16_MAX_BIAS >> 32));
        }
    }
    return MNN_OK;
}

static mnn_status_t check_fully_connected_s16(const op_ctx_t *c) {
    mnn_error_t *err = c->err;
    const uint8_t *p = c->params;
    uint32_t batches = rd_u32(p + MNN_P_FULLY_CONNECTED_S16_BATCHES);
    uint32_t depth = rd_u32(p + MNN_P_FULLY_CONNECTED_S16_ACCUM_DEPTH);
    uint32_t outs = rd_u32(p + MNN_P_FULLY_CONNECTED_S16_OUT_DEPTH);
    uint32_t acc64 = rd_u32(p + MNN_P_FULLY_CONNECTED_S16_ACC64);
    uint32_t in_n, w_n, out_n, q;
    CHECK(batches && depth && outs, MNN_E_OP, "zero dimension", c->op, 0, 1);
    CHECK(mul_ok(batches, depth, &in_n) && mul_ok(outs, depth, &w_n) && mul_ok(batches, outs, &out_n)
        && mul_ok(outs, 4, &q), MNN_E_OP, "dimensions overflow", c->op, depth, 0);
    TRY(check_s16_params(c, rd_i32(p + MNN_P_FULLY_CONNECTED_S16_INPUT_OFFSET),
        rd_i32(p + MNN_P_FULLY_CONNECTED_S16_FILTER_OFFSET), rd_i32(p + MNN_P_FULLY_CONNECTED_S16_OUTPUT_OFFSET),
        rd_i32(p + MNN_P_FULLY_CONNECTED_S16_ACT_MIN), rd_i32(p + MNN_P_FULLY_CONNECTED_S16_ACT_MAX), acc64));
    q = tensor_nbytes(c, 3) == 4 ? 4 : q;
    return check_s16_operands(c, in_n, w_n, outs, q, out_n, depth, acc64);
}

static mnn_status_t check_conv_s16(const op_ctx_t *c) {
    mnn_error_t *err = c->err;
    const uint8_t *p = c->params;
    mnn_geom_t g;
    uint32_t in_n, out_n, groups = rd_u32(p + MNN_P_CONV_2D_S16_GROUPS);
    read_geom(p, &g);
    TRY(check_geom(c, &g, &in_n, &out_n));
    CHECK(groups >= 1 && g.in_c % groups == 0 && g.out_c % groups == 0, MNN_E_OP, "groups", c->op, groups, g.in_c);
    CHECK(g.out_c < GEOM_MAX / 4, MNN_E_OP, "output channels", c->op, g.out_c, GEOM_MAX / 4);
    uint64_t taps = (uint64_t)g.k_h * g.k_w * (g.in_c / groups);
    uint64_t w_n = g.out_c * taps;
    CHECK(taps <= UINT32_MAX && w_n <= UINT32_MAX, MNN_E_OP, "weights size", c->op, 0, 0);
    TRY(check_s16_params(c, rd_i32(p + MNN_P_CONV_2D_S16_INPUT_OFFSET), 0, rd_i32(p + MNN_P_CONV_2D_S16_OUTPUT_OFFSET),
        rd_i32(p + MNN_P_CONV_2D_S16_ACT_MIN), rd_i32(p + MNN_P_CONV_2D_S16_ACT_MAX),
        rd_u32(p + MNN_P_CONV_2D_S16_ACC64)));
    return check_s16_operands(c, in_n, (uint32_t)w_n, g.out_c, g.out_c * 4, out_n, taps,
        rd_u32(p + MNN_P_CONV_2D_S16_ACC64));
}

static mnn_status_t check_depthwise_s16(const op_ctx_t *c) {
    mnn_error_t *err = c->err;
    const uint8_t *p = c->params;
    mnn_geom_t g;
    uint32_t in_n, out_n, dm = rd_u32(p + MNN_P_DEPTHWISE_CONV_2D_S16_DEPTH_MULT);
    read_geom(p, &g);
    TRY(check_geom(c, &g, &in_n, &out_n));
    CHECK(dm >= 1 && (uint64_t)g.in_c * dm == g.out_c, MNN_E_OP, "depth multiplier", c->op, dm, g.out_c);
    CHECK(g.out_c < GEOM_MAX / 4, MNN_E_OP, "output channels", c->op, g.out_c, GEOM_MAX / 4);
    uint64_t taps = (uint64_t)g.k_h * g.k_w;
    uint64_t w_n = g.out_c * taps;
    CHECK(w_n <= UINT32_MAX, MNN_E_OP, "weights size", c->op, 0, 0);
    TRY(check_s16_params(c, rd_i32(p + MNN_P_DEPTHWISE_CONV_2D_S16_INPUT_OFFSET), 0,
        rd_i32(p + MNN_P_DEPTHWISE_CONV_2D_S16_OUTPUT_OFFSET), rd_i32(p + MNN_P_DEPTHWISE_CONV_2D_S16_ACT_MIN),
        rd_i32(p + MNN_P_DEPTHWISE_CONV_2D_S16_ACT_MAX), rd_u32(p + MNN_P_DEPTHWISE_CONV_2D_S16_ACC64)));
    return check_s16_operands(c, in_n, (uint32_t)w_n, g.out_c, g.out_c * 4, out_n, taps,
        rd_u32(p + MNN_P_DEPTHWISE_CONV_2D_S16_ACC64));
}

// SOFTMAX_S8_S16: SOFTMAX's record and checks, with an int16 output.
_Static_assert(MNN_P_SOFTMAX_S8_S16_RECORD_SIZE == MNN_P_SOFTMAX_RECORD_SIZE
    && MNN_P_SOFTMAX_S8_S16_ROW_SIZE == MNN_P_SOFTMAX_ROW_SIZE, "SOFTMAX_S8_S16 has SOFTMAX's record");

static mnn_status_t check_softmax_s8_s16(const op_ctx_t *c) {
    mnn_error_t *err = c->err;
    const uint8_t *p = c->params;
    uint32_t rows = rd_u32(p + MNN_P_SOFTMAX_ROWS), size = rd_u32(p + MNN_P_SOFTMAX_ROW_SIZE), n, n2;
    int32_t shift = rd_i32(p + MNN_P_SOFTMAX_INPUT_LEFT_SHIFT);
    int32_t diff_min = rd_i32(p + MNN_P_SOFTMAX_DIFF_MIN);
    CHECK(rows && size, MNN_E_OP, "zero dimension", c->op, 0, 1);
    CHECK(mul_ok(rows, size, &n) && mul_ok(n, 2, &n2), MNN_E_OP, "dimensions overflow", c->op, size, 0);
    CHECK(shift >= 0 && shift <= 31, MNN_E_OP, "softmax input shift", c->op, (uint32_t)shift, 31);
    int64_t lowest = -(int64_t)(((int64_t)31 << 26) >> shift);
    CHECK(diff_min >= lowest, MNN_E_OP, "softmax diff_min", c->op, (uint32_t)diff_min, (uint32_t)lowest);
    WANT(0, MNN_DTYPE_INT8, MNN_STORAGE_ARENA, n, "input size", 0);
    WANT(1, MNN_DTYPE_INT16, MNN_STORAGE_ARENA, n2, "int16 output size", 0);
    return MNN_OK;
}

// === checks S16X ===

// int16 activations (TFLite's 16x8 mode). ADD_S16, MUL_S16, the pools,
// PAD_S16 and CONCATENATION_S16 share the int8 ops' record layouts.
_Static_assert(MNN_P_ADD_S16_RECORD_SIZE == MNN_P_ADD_RECORD_SIZE && MNN_P_MUL_S16_RECORD_SIZE == MNN_P_ADD_RECORD_SIZE
    && MNN_P_MAX_POOL_S16_RECORD_SIZE == MNN_P_MAX_POOL_2D_RECORD_SIZE
    && MNN_P_AVG_POOL_S16_RECORD_SIZE == MNN_P_MAX_POOL_2D_RECORD_SIZE
    && MNN_P_PAD_S16_RECORD_SIZE == MNN_P_PAD_RECORD_SIZE
    && MNN_P_CONCATENATION_S16_RECORD_SIZE == MNN_P_CONCATENATION_RECORD_SIZE
    && MNN_P_LOGISTIC_S16_INPUT_SHIFT == MNN_P_TANH_S16_INPUT_SHIFT, "S16X records are the int8 ones");

static mnn_status_t check_range16(const op_ctx_t *c, int32_t lo, int32_t hi) {
    mnn_error_t *err = c->err;
    CHECK(lo >= -32768 && hi <= 32767 && lo <= hi, MNN_E_OP, "activation range", c->op, (uint32_t)lo, (uint32_t)hi);
    return MNN_OK;
}

// The dtype of operand k, or 0 when the index is not a tensor (WANT then refuses it).
static uint32_t operand_dtype(const op_ctx_t *c, uint32_t k) {
    uint32_t i = operand(c, k);
    if (i >= c->m->tensor_count) {
        return 0;
    }
    tensor_t t;
    read_tensor(c->m, i, &t);
    return t.dtype;
}

// ADD_S16, MUL_S16: broadcast shapes as ADD's (strides in elements), int16
// operands, offsets 0 (TFLite's int16 zero points; with them |x| <= 2^15,
// so x << 15 and x1 * x2 fit an int32), left shift <= 15.
static mnn_status_t check_binary_s16(const op_ctx_t *c) {
    mnn_error_t *err = c->err;
    const uint8_t *p = c->params;
    uint64_t n = 1, reach1 = 0, reach2 = 0;
    for (int d = 0; d < 4; d++) {
        uint32_t dim = rd_u32(p + MNN_P_ADD_DIMS + 4 * d);
        uint32_t s1 = rd_u32(p + MNN_P_ADD_STRIDE1 + 4 * d), s2 = rd_u32(p + MNN_P_ADD_STRIDE2 + 4 * d);
        CHECK(dim >= 1 && dim < GEOM_MAX && s1 < GEOM_MAX && s2 < GEOM_MAX, MNN_E_OP, "broadcast shape", c->op,
            dim, GEOM_MAX);
        n *= dim;
        reach1 += (uint64_t)(dim - 1) * s1;
        reach2 += (uint64_t)(dim - 1) * s2;
    }
    CHECK(n <= UINT32_MAX / 2, MNN_E_OP, "dimensions overflow", c->op, 0, 0);
    uint32_t n1 = tensor_nbytes(c, 0), n2 = tensor_nbytes(c, 1);
    CHECK(reach1 < n1 / 2 && reach2 < n2 / 2, MNN_E_OP, "broadcast strides reach past an input", c->op,
        (uint32_t)reach1, n1 / 2);
    WANT(0, MNN_DTYPE_INT16, STORAGE_ANY, n1, "input 1", 0);
    WANT(1, MNN_DTYPE_INT16, STORAGE_ANY, n2, "input 2", 0);
    WANT(2, MNN_DTYPE_INT16, MNN_STORAGE_ARENA, (uint32_t)n * 2, "output size", 0);
    // a constant input is read as int16_t (the packer aligns every constant array to 16)
    for (uint32_t k = 0; k < 2; k++) {
        tensor_t t;
        read_tensor(c->m, operand(c, k), &t);
        CHECK(t.storage != MNN_STORAGE_CONST || t.offset % 2 == 0, MNN_E_OP, "int16 constant misaligned", c->op,
            t.offset, 2);
    }
    CHECK(rd_i32(p + MNN_P_ADD_INPUT1_OFFSET) == 0 && rd_i32(p + MNN_P_ADD_INPUT2_OFFSET) == 0
        && rd_i32(p + MNN_P_ADD_OUTPUT_OFFSET) == 0, MNN_E_OP, "int16 offsets must be 0", c->op,
        (uint32_t)rd_i32(p + MNN_P_ADD_INPUT1_OFFSET), 0);
    int32_t ls = rd_i32(p + MNN_P_ADD_LEFT_SHIFT);
    CHECK(ls >= 0 && ls <= 15, MNN_E_OP, "left shift", c->op, (uint32_t)ls, 15);
    static const uint8_t shifts[] = { MNN_P_ADD_INPUT1_SHIFT, MNN_P_ADD_INPUT2_SHIFT, MNN_P_ADD_OUTPUT_SHIFT };
    for (int k = 0; k < 3; k++) {
        int32_t s = rd_i32(p + shifts[k]);
        CHECK(s >= -31 && s <= 30, MNN_E_OP, "requantization shift", c->op, (uint32_t)s, 30);
    }
    return check_range16(c, rd_i32(p + MNN_P_ADD_ACT_MIN), rd_i32(p + MNN_P_ADD_ACT_MAX));
}

// MAX_POOL_S16, AVG_POOL_S16: pooling geometry; a window's sum of int16 values fits an int32.
static mnn_status_t check_pool_s16(const op_ctx_t *c) {
    mnn_error_t *err = c->err;
    const uint8_t *p = c->params;
    mnn_geom_t g;
    uint32_t in_n, out_n;
    read_geom(p, &g);
    TRY(check_geom(c, &g, &in_n, &out_n));
    CHECK(g.in_c == g.out_c && g.dil_h == 1 && g.dil_w == 1, MNN_E_OP, "pool channels or dilation", c->op,
        g.out_c, g.in_c);
    CHECK((uint64_t)g.k_h * g.k_w < (1u << 16), MNN_E_OP, "pool window", c->op, g.k_h, 1u << 16);
    CHECK(in_n <= UINT32_MAX / 2 && out_n <= UINT32_MAX / 2, MNN_E_OP, "dimensions overflow", c->op, 0, 0);
    WANT(0, MNN_DTYPE_INT16, MNN_STORAGE_ARENA, in_n * 2, "input size", 0);
    WANT(1, MNN_DTYPE_INT16, MNN_STORAGE_ARENA, out_n * 2, "output size", 0);
    return check_range16(c, rd_i32(p + MNN_P_MAX_POOL_S16_ACT_MIN), rd_i32(p + MNN_P_MAX_POOL_S16_ACT_MAX));
}

// SOFTMAX_S16: rows of at most 65535 values and an input shift of at most 15
// (a difference down to -65535, shifted, fits an int32); the exp table's
// values in [0, 32767] and its last two at least 1, so a row's sum of
// exponentials lies in [1, 2^31) (the kernel's normalisation needs it).
static mnn_status_t check_softmax_s16(const op_ctx_t *c) {
    mnn_error_t *err = c->err;
    const uint8_t *p = c->params;
    uint32_t rows = rd_u32(p + MNN_P_SOFTMAX_S16_ROWS), size = rd_u32(p + MNN_P_SOFTMAX_S16_ROW_SIZE);
    int32_t shift = rd_i32(p + MNN_P_SOFTMAX_S16_INPUT_SHIFT);
    uint32_t n;
    CHECK(rows && size && size <= 65535, MNN_E_OP, "softmax row size", c->op, size, 65535);
    CHECK(mul_ok(rows, size, &n) && n <= UINT32_MAX / 2, MNN_E_OP, "dimensions overflow", c->op, size, 0);
    CHECK(shift >= -31 && shift <= 15, MNN_E_OP, "softmax input shift", c->op, (uint32_t)shift, 15);
    WANT(0, MNN_DTYPE_INT16, MNN_STORAGE_ARENA, n * 2, "input size", 0);
    WANT(1, MNN_DTYPE_INT16, MNN_STORAGE_CONST, 513 * 2, "exp table", 0);
    WANT(2, MNN_DTYPE_INT16, MNN_STORAGE_CONST, 513 * 2, "reciprocal table", 0);
    WANT(3, MNN_DTYPE_INT16, MNN_STORAGE_ARENA, n * 2, "output size", 0);
    tensor_t t;
    read_tensor(c->m, operand(c, 1), &t);
    const uint8_t *e = c->m->blob + c->m->const_off + t.offset;
    for (uint32_t j = 0; j < 513; j++) {
        int32_t v = (int16_t)(uint16_t)rd_u16(e + 2 * j);
        CHECK(v >= (j >= 511 ? 1 : 0), MNN_E_OP, "softmax exp table", c->op, (uint32_t)v, j);
    }
    return MNN_OK;
}

// TANH_S16, LOGISTIC_S16: input multiplier <= 32767 and shift <= 31, so that
// x * multiplier plus the rounding fits an int32; the table uint16 [256].
static mnn_status_t check_sigmoid_s16(const op_ctx_t *c) {
    mnn_error_t *err = c->err;
    const uint8_t *p = c->params;
    uint32_t n = rd_u32(p + MNN_P_TANH_S16_COUNT);
    int32_t mult = rd_i32(p + MNN_P_TANH_S16_INPUT_MULT), shift = rd_i32(p + MNN_P_TANH_S16_INPUT_SHIFT);
    CHECK(n >= 1 && n <= UINT32_MAX / 2, MNN_E_OP, "count", c->op, n, UINT32_MAX / 2);
    CHECK(mult >= 0 && mult <= 32767, MNN_E_OP, "input multiplier", c->op, (uint32_t)mult, 32767);
    CHECK(shift >= 0 && shift <= 31, MNN_E_OP, "input shift", c->op, (uint32_t)shift, 31);
    WANT(0, MNN_DTYPE_INT16, MNN_STORAGE_ARENA, n * 2, "input size", 0);
    WANT(1, MNN_DTYPE_INT16, MNN_STORAGE_CONST, 256 * 2, "table size", 0);
    WANT(2, MNN_DTYPE_INT16, MNN_STORAGE_ARENA, n * 2, "output size", 0);
    return MNN_OK;
}

// REQUANT: int8 or int16 in and out, zero points inside their types.
static mnn_status_t check_requant(const op_ctx_t *c) {
    mnn_error_t *err = c->err;
    const uint8_t *p = c->params;
    uint32_t n = rd_u32(p + MNN_P_REQUANT_COUNT);
    uint32_t din = operand_dtype(c, 0), dout = operand_dtype(c, 1);
    CHECK(din == MNN_DTYPE_INT8 || din == MNN_DTYPE_INT16, MNN_E_OP, "requant input dtype", c->op, din,
        MNN_DTYPE_INT16);
    CHECK(dout == MNN_DTYPE_INT8 || dout == MNN_DTYPE_INT16, MNN_E_OP, "requant output dtype", c->op, dout,
        MNN_DTYPE_INT16);
    CHECK(n >= 1 && n <= UINT32_MAX / 2, MNN_E_OP, "count", c->op, n, UINT32_MAX / 2);
    WANT(0, din, MNN_STORAGE_ARENA, din == MNN_DTYPE_INT16 ? n * 2 : n, "input size", 0);
    WANT(1, dout, MNN_STORAGE_ARENA, dout == MNN_DTYPE_INT16 ? n * 2 : n, "output size", 0);
    int32_t zin = rd_i32(p + MNN_P_REQUANT_INPUT_ZERO_POINT), zout = rd_i32(p + MNN_P_REQUANT_OUTPUT_OFFSET);
    int32_t lin = din == MNN_DTYPE_INT16 ? 32768 : 128, lout = dout == MNN_DTYPE_INT16 ? 32768 : 128;
    CHECK(zin >= -lin && zin < lin, MNN_E_OP, "input zero point", c->op, (uint32_t)zin, (uint32_t)lin);
    CHECK(zout >= -lout && zout < lout, MNN_E_OP, "output offset", c->op, (uint32_t)zout, (uint32_t)lout);
    int32_t s = rd_i32(p + MNN_P_REQUANT_SHIFT);
    CHECK(s >= -31 && s <= 30, MNN_E_OP, "requantization shift", c->op, (uint32_t)s, 30);
    return MNN_OK;
}

// PAD_S16: PAD's shape checks, int16 values and pad value.
static mnn_status_t check_pad_s16(const op_ctx_t *c) {
    mnn_error_t *err = c->err;
    const uint8_t *p = c->params;
    uint64_t in = 1, out = 1;
    for (int d = 0; d < 4; d++) {
        uint32_t dim = rd_u32(p + MNN_P_PAD_IN_DIMS + 4 * d);
        uint32_t b = rd_u32(p + MNN_P_PAD_BEFORE + 4 * d), a = rd_u32(p + MNN_P_PAD_AFTER + 4 * d);
        CHECK(dim >= 1 && dim < GEOM_MAX && b < GEOM_MAX && a < GEOM_MAX, MNN_E_OP, "pad shape", c->op, dim,
            GEOM_MAX);
        in *= dim;
        out *= (uint64_t)dim + a + b;
        CHECK(out <= UINT32_MAX / 2, MNN_E_OP, "dimensions overflow", c->op, 0, 0);
    }
    int32_t v = rd_i32(p + MNN_P_PAD_VALUE);
    CHECK(v >= -32768 && v <= 32767, MNN_E_OP, "pad value", c->op, (uint32_t)v, 32767);
    WANT(0, MNN_DTYPE_INT16, MNN_STORAGE_ARENA, (uint32_t)in * 2, "input size", 0);
    WANT(1, MNN_DTYPE_INT16, MNN_STORAGE_ARENA, (uint32_t)out * 2, "output size", 0);
    return MNN_OK;
}

// CONCATENATION_S16: CONCATENATION's checks on int16 tensors; each block of
// an input holds whole values.
static mnn_status_t check_concat_s16(const op_ctx_t *c) {
    mnn_error_t *err = c->err;
    uint32_t outer = rd_u32(c->params + MNN_P_CONCATENATION_OUTER);
    CHECK(c->n_in >= 1 && c->n_in <= MNN_CONCAT_MAX_INPUTS, MNN_E_OP, "input count", c->op, c->n_in,
        MNN_CONCAT_MAX_INPUTS);
    CHECK(outer >= 1, MNN_E_OP, "outer size", c->op, outer, 1);
    uint64_t total = 0;
    for (uint32_t k = 0; k < c->n_in; k++) {
        uint32_t n = tensor_nbytes(c, k);
        CHECK((n / 2) % outer == 0, MNN_E_OP, "input size not a multiple of outer", c->op, n, outer);
        WANT(k, MNN_DTYPE_INT16, MNN_STORAGE_ARENA, n, "input", 0);
        total += n;
    }
    CHECK(total <= UINT32_MAX, MNN_E_OP, "dimensions overflow", c->op, 0, 0);
    WANT(c->n_in, MNN_DTYPE_INT16, MNN_STORAGE_ARENA, (uint32_t)total, "output size", 0);
    return MNN_OK;
}

// === checks S4 ===

// FULLY_CONNECTED_S4, CONV_2D_S4, DEPTHWISE_CONV_2D_S4: the int8 records
// (same layouts, so read_geom and the bindings read them alike) with the
// weights an int4 constant of exactly ceil(values / 2) bytes (check_tensor
// keeps int4 tensors constant and sized by their shape).
_Static_assert(MNN_P_FULLY_CONNECTED_S4_RECORD_SIZE == MNN_P_FULLY_CONNECTED_RECORD_SIZE
    && MNN_P_FULLY_CONNECTED_S4_OUT_DEPTH == MNN_P_FULLY_CONNECTED_OUT_DEPTH
    && MNN_P_CONV_2D_S4_RECORD_SIZE == MNN_P_CONV_2D_RECORD_SIZE && MNN_P_CONV_2D_S4_GROUPS == MNN_P_CONV_2D_GROUPS
    && MNN_P_DEPTHWISE_CONV_2D_S4_RECORD_SIZE == MNN_P_DEPTHWISE_CONV_2D_RECORD_SIZE
    && MNN_P_DEPTHWISE_CONV_2D_S4_DEPTH_MULT == MNN_P_DEPTHWISE_CONV_2D_DEPTH_MULT, "S4 records are the int8 ones");

// The output offset may be any value in [-255, 255], as the input offset (the
// kernels add it before clamping, so no value is unsafe): CMSIS-NN's own
// int4 data has one of 128 (fully_connected_int4_6), which the int8 ops'
// check_activation refuses; the activation range is int8's.
static mnn_status_t check_activation_s4(const op_ctx_t *c, int32_t out_off, int32_t lo, int32_t hi) {
    TRY(check_offset(c, out_off, "output offset"));
    return check_activation(c, 0, lo, hi);
}

// Operands: input, weights (int4, w_values packed), bias? (bias_n bytes),
// mult and shift (q bytes each), output; then the shifts.
static mnn_status_t check_s4_operands(const op_ctx_t *c, uint32_t in_n, uint32_t w_values, uint32_t bias_n,
    uint32_t q, uint32_t out_n) {
    WANT(0, MNN_DTYPE_INT8, MNN_STORAGE_ARENA, in_n, "input size", 0);
    WANT(1, MNN_DTYPE_INT4, MNN_STORAGE_CONST, (uint32_t)(((uint64_t)w_values + 1) / 2), "int4 weights", 0);
    WANT(2, MNN_DTYPE_INT32, MNN_STORAGE_CONST, bias_n, "bias size", 1);
    WANT(3, MNN_DTYPE_INT32, MNN_STORAGE_CONST, q, "multiplier size", 0);
    WANT(4, MNN_DTYPE_INT32, MNN_STORAGE_CONST, q, "shift size", 0);
    WANT(5, MNN_DTYPE_INT8, MNN_STORAGE_ARENA, out_n, "output size", 0);
    return check_shifts(c, 4);
}

static mnn_status_t check_fully_connected_s4(const op_ctx_t *c) {
    mnn_error_t *err = c->err;
    const uint8_t *p = c->params;
    uint32_t batches = rd_u32(p + MNN_P_FULLY_CONNECTED_S4_BATCHES);
    uint32_t depth = rd_u32(p + MNN_P_FULLY_CONNECTED_S4_ACCUM_DEPTH);
    uint32_t outs = rd_u32(p + MNN_P_FULLY_CONNECTED_S4_OUT_DEPTH);
    int32_t w_off = rd_i32(p + MNN_P_FULLY_CONNECTED_S4_FILTER_OFFSET);
    uint32_t in_n, w_n, out_n, bias_n;
    CHECK(batches && depth && outs, MNN_E_OP, "zero dimension", c->op, 0, 1);
    CHECK(mul_ok(batches, depth, &in_n) && mul_ok(outs, depth, &w_n) && mul_ok(batches, outs, &out_n)
        && mul_ok(outs, 4, &bias_n), MNN_E_OP, "dimensions overflow", c->op, depth, 0);
    TRY(check_offset(c, rd_i32(p + MNN_P_FULLY_CONNECTED_S4_INPUT_OFFSET), "input offset"));
    // -(an int4 zero point)
    CHECK(w_off >= -7 && w_off <= 8, MNN_E_OP, "int4 filter offset", c->op, (uint32_t)w_off, 8);
    TRY(check_s4_operands(c, in_n, w_n, bias_n, tensor_nbytes(c, 3) == 4 ? 4 : bias_n, out_n));
    return check_activation_s4(c, rd_i32(p + MNN_P_FULLY_CONNECTED_S4_OUTPUT_OFFSET),
        rd_i32(p + MNN_P_FULLY_CONNECTED_S4_ACT_MIN), rd_i32(p + MNN_P_FULLY_CONNECTED_S4_ACT_MAX));
}

static mnn_status_t check_conv_s4(const op_ctx_t *c) {
    mnn_error_t *err = c->err;
    const uint8_t *p = c->params;
    mnn_geom_t g;
    uint32_t in_n, out_n, groups = rd_u32(p + MNN_P_CONV_2D_S4_GROUPS);
    read_geom(p, &g);
    TRY(check_geom(c, &g, &in_n, &out_n));
    CHECK(groups >= 1 && g.in_c % groups == 0 && g.out_c % groups == 0, MNN_E_OP, "groups", c->op, groups, g.in_c);
    CHECK(g.out_c < GEOM_MAX / 4, MNN_E_OP, "output channels", c->op, g.out_c, GEOM_MAX / 4);
    uint64_t w_n = (uint64_t)g.out_c * g.k_h * g.k_w * (g.in_c / groups);
    CHECK(w_n <= UINT32_MAX, MNN_E_OP, "weights size", c->op, 0, 0);
    TRY(check_offset(c, rd_i32(p + MNN_P_CONV_2D_S4_INPUT_OFFSET), "input offset"));
    TRY(check_s4_operands(c, in_n, (uint32_t)w_n, g.out_c * 4, g.out_c * 4, out_n));
    return check_activation_s4(c, rd_i32(p + MNN_P_CONV_2D_S4_OUTPUT_OFFSET), rd_i32(p + MNN_P_CONV_2D_S4_ACT_MIN),
        rd_i32(p + MNN_P_CONV_2D_S4_ACT_MAX));
}

static mnn_status_t check_depthwise_s4(const op_ctx_t *c) {
    mnn_error_t *err = c->err;
    const uint8_t *p = c->params;
    mnn_geom_t g;
    uint32_t in_n, out_n, dm = rd_u32(p + MNN_P_DEPTHWISE_CONV_2D_S4_DEPTH_MULT);
    read_geom(p, &g);
    TRY(check_geom(c, &g, &in_n, &out_n));
    CHECK(dm >= 1 && (uint64_t)g.in_c * dm == g.out_c, MNN_E_OP, "depth multiplier", c->op, dm, g.out_c);
    CHECK(g.out_c < GEOM_MAX / 4, MNN_E_OP, "output channels", c->op, g.out_c, GEOM_MAX / 4);
    uint64_t w_n = (uint64_t)g.out_c * g.k_h * g.k_w;
    CHECK(w_n <= UINT32_MAX, MNN_E_OP, "weights size", c->op, 0, 0);
    TRY(check_offset(c, rd_i32(p + MNN_P_DEPTHWISE_CONV_2D_S4_INPUT_OFFSET), "input offset"));
    TRY(check_s4_operands(c, in_n, (uint32_t)w_n, g.out_c * 4, g.out_c * 4, out_n));
    return check_activation_s4(c, rd_i32(p + MNN_P_DEPTHWISE_CONV_2D_S4_OUTPUT_OFFSET),
        rd_i32(p + MNN_P_DEPTHWISE_CONV_2D_S4_ACT_MIN), rd_i32(p + MNN_P_DEPTHWISE_CONV_2D_S4_ACT_MAX));
}

typedef struct {
    uint8_t n_in;
    uint8_t n_out;
    uint16_t params_size;
    mnn_status_t (*check)(const op_ctx_t *c);
    const char *name;
} op_desc_t;

// Every op code of the format has its name here; an op this build leaves out
// (mnn_ops.h) has no check, and its checks and kernel are not linked.
static const op_desc_t *op_desc(uint32_t opcode) {
    #define OP(name, check) \
    [MNN_OPCODE_##name] = { MNN_OPERANDS_##name##_IN, MNN_OPERANDS_##name##_OUT, MNN_P_##name##_RECORD_SIZE, \
                            MNN_WITH_OP(name) ? check : NULL, #name }
    static const op_desc_t table[MNN_OPCODE_MAX + 1] = {
        OP(FULLY_CONNECTED, check_fully_connected),
        OP(SOFTMAX, check_softmax),
        OP(CONV_2D, check_conv),
        OP(DEPTHWISE_CONV_2D, check_depthwise),
        OP(MAX_POOL_2D, check_pool),
        OP(AVERAGE_POOL_2D, check_pool),
        OP(ADD, check_binary),
        OP(MUL, check_binary),
        OP(LUT, check_lut),
        OP(CONCATENATION, check_concat),
        OP(PAD, check_pad),
        OP(MEAN, check_mean),
        OP(CONV_2D_MAXPOOL, check_conv_pool),
        // === table ELEMENTWISE ===
        OP(SUB, check_sub),
        OP(SQUARED_DIFFERENCE, check_squared_difference),
        OP(MAXIMUM, check_minmax),
        OP(MINIMUM, check_minmax),
        OP(PRELU, check_binary),
        // === table MOVEMENT ===
        OP(STRIDED_COPY, check_strided_copy),
        OP(GATHER, check_gather),
        OP(MIRROR_PAD, check_mirror_pad),
        // === table RESIZE ===
        OP(RESIZE_NEAREST, check_resize_nearest),
        OP(RESIZE_BILINEAR, check_resize_bilinear),
        OP(TRANSPOSE_CONV, check_transpose_conv),
        // === table REDUCE ===
        OP(ARG_MAX, check_arg_minmax),
        OP(ARG_MIN, check_arg_minmax),
        OP(REDUCE_MAX, check_reduce_minmax),
        OP(REDUCE_MIN, check_reduce_minmax),
        OP(L2_NORMALIZATION, check_l2norm),
        OP(LOG_SOFTMAX, check_log_softmax),
        // === table MATMUL ===
        OP(BATCH_MATMUL, check_batch_matmul),
        // === table STATE ===
        OP(ASSIGN, check_assign),
        // === table SVDF ===
        OP(SVDF, check_svdf),
        // === table SEQUENCE ===
        OP(LSTM, check_lstm),
        // === table S16 ===
        OP(FULLY_CONNECTED_S16, check_fully_connected_s16),
        OP(CONV_2D_S16, check_conv_s16),
        OP(DEPTHWISE_CONV_2D_S16, check_depthwise_s16),
        OP(SOFTMAX_S8_S16, check_softmax_s8_s16),
        // === table S16X ===
        OP(ADD_S16, check_binary_s16),
        OP(MUL_S16, check_binary_s16),
        OP(MAX_POOL_S16, check_pool_s16),
        OP(AVG_POOL_S16, check_pool_s16),
        OP(SOFTMAX_S16, check_softmax_s16),
        OP(TANH_S16, check_sigmoid_s16),
        OP(LOGISTIC_S16, check_sigmoid_s16),
        OP(REQUANT, check_requant),
        OP(PAD_S16, check_pad_s16),
        OP(CONCATENATION_S16, check_concat_s16),
        // === table S4 ===
        OP(FULLY_CONNECTED_S4, check_fully_connected_s4),
        OP(CONV_2D_S4, check_conv_s4),
        OP(DEPTHWISE_CONV_2D_S4, check_depthwise_s4),
    };
    #undef OP
    if (opcode > MNN_OPCODE_MAX || table[opcode].name == NULL) {
        return NULL;
    }
    return &table[opcode];
}

// "?" for an op code this build does not run (supported_ops() leaves it out).
const char *mnn_opcode_name(uint8_t opcode) {
    const op_desc_t *d = op_desc(opcode);
    return d && d->check ? d->name : "?";
}

// Kernels read their inputs while writing their outputs: an output in the
// arena may not overlap an input, except that the elementwise ops (which
// read element i before writing element i) may write exactly over one.
static mnn_status_t check_overlap(const op_ctx_t *c, uint32_t opcode, uint32_t n_in, uint32_t n_out) {
    mnn_error_t *err = c->err;
    const int in_place = opcode == MNN_OPCODE_ASSIGN || opcode == MNN_OPCODE_LUT || opcode == MNN_OPCODE_ADD || opcode == MNN_OPCODE_MUL
        || opcode == MNN_OPCODE_SUB || opcode == MNN_OPCODE_SQUARED_DIFFERENCE || opcode == MNN_OPCODE_MAXIMUM
        || opcode == MNN_OPCODE_MINIMUM || opcode == MNN_OPCODE_PRELU
        // int16 (S16X): each reads value i before writing value i
        || opcode == MNN_OPCODE_ADD_S16 || opcode == MNN_OPCODE_MUL_S16 || opcode == MNN_OPCODE_TANH_S16
        || opcode == MNN_OPCODE_LOGISTIC_S16 || opcode == MNN_OPCODE_REQUANT;
    for (uint32_t o = n_in; o < n_in + n_out; o++) {
        tensor_t y;
        read_tensor(c->m, operand(c, o), &y);
        for (uint32_t k = 0; k < n_in; k++) {
            uint32_t i = operand(c, k);
            if (i == MNN_NO_TENSOR) {
                continue;
            }
            tensor_t x;
            read_tensor(c->m, i, &x);
            if (x.storage != y.storage || x.storage == MNN_STORAGE_CONST
                || x.offset >= y.offset + y.nbytes || y.offset >= x.offset + x.nbytes) {
                continue;
            }
            CHECK(in_place && x.offset == y.offset && x.nbytes == y.nbytes, MNN_E_OP, "output overlaps an input",
                c->op, y.offset, x.offset);
        }
    }
    return MNN_OK;
}

#if MNN_OPS_LIMITED
// A build without a kernel's fallback variant (mnn_ops.h) refuses an op that
// would take it: one the blob reserved too little scratch for.
static mnn_status_t check_fallback(const op_ctx_t *c, uint32_t opcode) {
    mnn_error_t *err = c->err;
    (void)err;
    #if MNN_WITH_OP(CONV_2D) && !MNN_WITH_VARIANT(CONV_DIRECT)
    if (opcode == MNN_OPCODE_CONV_2D) {
        mnn_geom_t g;
        read_geom(c->params, &g);
        CHECK(conv_scratch_ok(c->m, &g, rd_u32(c->params + MNN_P_CONV_2D_GROUPS)), MNN_E_OP_ABSENT,
            "CONV_2D without scratch", c->op, 0, 0);
    }
    #endif
    #if MNN_WITH_OP(CONV_2D_MAXPOOL) && !MNN_WITH_VARIANT(CONV_POOL_DIRECT)
    if (opcode == MNN_OPCODE_CONV_2D_MAXPOOL) {
        mnn_geom_t g;
        read_geom(c->params, &g);
        CHECK(conv_pool_scratch_ok(c->m, &g, rd_u32(c->params + MNN_P_CONV_2D_MAXPOOL_POOL_H),
            rd_u32(c->params + MNN_P_CONV_2D_MAXPOOL_POOL_W)), MNN_E_OP_ABSENT, "CONV_2D_MAXPOOL without scratch",
            c->op, 0, 0);
    }
    #endif
    #if MNN_WITH_OP(ADD) && !MNN_WITH_VARIANT(ADD_DIRECT)
    CHECK(opcode != MNN_OPCODE_ADD || c->m->scratch_size >= MNN_ADD_SCRATCH, MNN_E_OP_ABSENT, "ADD without scratch",
        c->op, 0, 0);
    #endif
    (void)c;
    (void)opcode;
    return MNN_OK;
}
#endif

// Walk the op records and check each one against its op's rules.
static mnn_status_t check_ops(mnn_model_t *m, mnn_error_t *err) {
    uint32_t pos = 0;
    const uint8_t *base = m->blob + m->ops_off;
    for (uint32_t k = 0; k < m->op_count; k++) {
        CHECK(fits(pos, MNN_OP_RECORD_SIZE, m->ops_size), MNN_E_TRUNCATED, "op", k, pos, m->ops_size);
        const uint8_t *p = base + pos;
        uint32_t opcode = rd_u8(p + MNN_OP_OPCODE);
        uint32_t n_in = rd_u8(p + MNN_OP_N_INPUTS);
        uint32_t n_out = rd_u8(p + MNN_OP_N_OUTPUTS);
        uint32_t size = rd_u16(p + MNN_OP_SIZE);
        uint32_t psize = rd_u16(p + MNN_OP_PARAMS_SIZE);
        uint32_t flags = rd_u8(p + MNN_OP_FLAGS);
        const op_desc_t *d = op_desc(opcode);
        CHECK(d != NULL, MNN_E_OP_UNSUPPORTED, "op code", k, opcode, MNN_OPCODE_MAX);
        CHECK(d->check != NULL, MNN_E_OP_ABSENT, d->name, k, opcode, 0);
        CHECK((n_in == d->n_in || (d->n_in == 0 && n_in >= 1)) && n_out == d->n_out, MNN_E_OP, "operand count",
            k, n_in, d->n_in);
        uint32_t idx_bytes = (2 * (n_in + n_out) + 3) & ~3u;
        CHECK(psize >= d->params_size, MNN_E_OP, "parameter record size", k, psize, d->params_size);
        CHECK(size % 4 == 0 && size == MNN_OP_RECORD_SIZE + idx_bytes + psize, MNN_E_OP, "record size",
            k, size, MNN_OP_RECORD_SIZE + idx_bytes + psize);
        CHECK(fits(pos, size, m->ops_size), MNN_E_TRUNCATED, "op", k, pos + size, m->ops_size);
        op_ctx_t c = { m, k, p + MNN_OP_RECORD_SIZE, n_in, p + MNN_OP_RECORD_SIZE + idx_bytes, err };
        CHECK(!(flags & ~(uint32_t)MNN_OP_FLAG_ONCE), MNN_E_OP, "unknown op flags", k, flags, MNN_OP_FLAG_ONCE);
        if (flags & MNN_OP_FLAG_ONCE) {
            // Initial values of the state: a prefix of ASSIGNs from constants to state.
            CHECK(k == m->once_count, MNN_E_OP, "ONCE op after a run op", k, k, m->once_count);
            CHECK(opcode == MNN_OPCODE_ASSIGN, MNN_E_OP, "ONCE op that is not an ASSIGN", k, opcode,
                MNN_OPCODE_ASSIGN);
            CHECK(operand(&c, 0) < m->tensor_count && operand(&c, 1) < m->tensor_count, MNN_E_OP, "operand", k,
                0, 0);
            tensor_t src, dst;
            read_tensor(m, operand(&c, 0), &src);
            read_tensor(m, operand(&c, 1), &dst);
            CHECK(src.storage == MNN_STORAGE_CONST && dst.storage == MNN_STORAGE_STATE, MNN_E_OP,
                "ONCE ASSIGN not from a constant to state", k, src.storage, dst.storage);
            m->once_count = (uint16_t)(k + 1);
        }
        mnn_status_t st = d->check(&c);
        if (st == MNN_OK) {
            st = check_overlap(&c, opcode, n_in, n_out);
        }
        #if MNN_OPS_LIMITED
        if (st == MNN_OK) {
            st = check_fallback(&c, opcode);
        }
        #endif
        if (st != MNN_OK) {
            return st;
        }
        pos += size;
    }
    CHECK(pos == m->ops_size, MNN_E_SECTION, "ops section size", -1, m->ops_size, pos);
    return MNN_OK;
}

// Well-formed UTF-8: no stray continuation bytes, overlong forms, surrogates
// or code points past U+10FFFF (what MicroPython's str requires).
static int utf8_valid(const uint8_t *s, uint32_t n) {
    uint32_t i = 0;
    while (i < n) {
        uint32_t c = s[i], len, cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xc2 && c <= 0xdf) {
            len = 2;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            len = 3;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            len = 4;
            cp = c & 0x07;
        } else {
            return 0;
        }
        if (n - i < len) {
            return 0;
        }
        for (uint32_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80) {
                return 0;
            }
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) || (len == 4 && (cp < 0x10000
                                                                                        || cp > 0x10ffff))) {
            return 0;
        }
        i += len;
    }
    return 1;
}

static mnn_status_t check_meta(mnn_model_t *m, uint32_t off, uint32_t size, mnn_error_t *err) {
    uint32_t pos = 0;
    int32_t k = 0;
    while (pos < size) {
        CHECK(fits(pos, MNN_META_RECORD_SIZE, size), MNN_E_META, "entry header truncated", k, pos, size);
        const uint8_t *p = m->blob + off + pos;
        uint32_t key = rd_u16(p + MNN_META_KEY);
        uint32_t vsize = rd_u32(p + MNN_META_SIZE);
        uint32_t padded = (vsize + 3) & ~3u;
        CHECK(vsize <= size && padded >= vsize, MNN_E_META, "value size", k, vsize, size);
        CHECK(fits(pos + MNN_META_RECORD_SIZE, padded, size), MNN_E_META, "value truncated", k, vsize, size);
        const char *v = (const char *)p + MNN_META_RECORD_SIZE;
        if (key == MNN_META_NAME || key == MNN_META_LABELS) {
            CHECK(utf8_valid((const uint8_t *)v, vsize), MNN_E_META, key == MNN_META_NAME ? "name is not UTF-8"
                : "labels are not UTF-8", k, 0, 0);
        }
        if (key == MNN_META_INPUT_NAMES || key == MNN_META_OUTPUT_NAMES) {
            CHECK(utf8_valid((const uint8_t *)v, vsize), MNN_E_META, "io names are not UTF-8", k, 0, 0);
        }
        if (key == MNN_META_NAME) {
            m->name = v;
            m->name_len = vsize;
        } else if (key == MNN_META_LABELS) {
            m->labels = v;
            m->labels_len = vsize;
        } else if (key == MNN_META_INPUT_NAMES) {
            m->input_names = v;
            m->input_names_len = vsize;
        } else if (key == MNN_META_OUTPUT_NAMES) {
            m->output_names = v;
            m->output_names_len = vsize;
        }
        pos += MNN_META_RECORD_SIZE + padded;
        k++;
    }
    return MNN_OK;
}

static mnn_status_t check_io(const mnn_model_t *m, mnn_error_t *err) {
    uint32_t n = m->input_count + m->output_count;
    for (uint32_t k = 0; k < n; k++) {
        uint32_t i = rd_u16(m->blob + m->io_off + 2 * k);
        CHECK(i < m->tensor_count, MNN_E_IO, "tensor index", k, i, m->tensor_count);
        tensor_t t;
        read_tensor(m, i, &t);
        CHECK(t.storage == MNN_STORAGE_ARENA, MNN_E_IO, "not an arena tensor", k, t.storage, 0);
        // Inputs are int8 or int16 (16x8 models); outputs int8, int16, or int32/int64 raw values (ARG_MAX,
        // ARG_MIN).
        int out_ok = k >= m->input_count && (t.dtype == MNN_DTYPE_INT32 || t.dtype == MNN_DTYPE_INT64);
        CHECK(t.dtype == MNN_DTYPE_INT8 || t.dtype == MNN_DTYPE_INT16 || out_ok, MNN_E_IO, "dtype", k, t.dtype,
            MNN_DTYPE_INT8);
        // int16: zero point 0 (16x8 activations), or -32768 (the output of SOFTMAX_S8_S16).
        CHECK(t.dtype != MNN_DTYPE_INT16 || t.zero_point == 0 || t.zero_point == -32768, MNN_E_IO,
            "int16 zero point", k, (uint32_t)t.zero_point, 0);
        // The binding quantizes float inputs and dequantizes int8 outputs with it.
        CHECK(t.dtype != MNN_DTYPE_INT8 || (t.zero_point >= -128 && t.zero_point <= 127), MNN_E_IO, "zero point",
            k, (uint32_t)t.zero_point, 127);
    }
    return MNN_OK;
}

mnn_status_t mnn_model_load(mnn_model_t *m, const uint8_t *b, size_t len, mnn_error_t *err) {
    memset(m, 0, sizeof(*m));
    m->blob = b;
    err->status = MNN_OK;
    CHECK(len >= MNN_HDR_RECORD_SIZE, MNN_E_TRUNCATED, "header", -1, (uint32_t)len, MNN_HDR_RECORD_SIZE);
    CHECK(b[0] == MNN_MAGIC_0 && b[1] == MNN_MAGIC_1 && b[2] == MNN_MAGIC_2 && b[3] == MNN_MAGIC_3,
        MNN_E_MAGIC, "magic", -1, rd_u32(b), 0);
    uint32_t major = rd_u16(b + MNN_HDR_VERSION_MAJOR);
    CHECK(major == MNN_VERSION_MAJOR, MNN_E_VERSION, "version_major", -1, major, MNN_VERSION_MAJOR);
    m->version_minor = (uint16_t)rd_u16(b + MNN_HDR_VERSION_MINOR);
    uint32_t total = rd_u32(b + MNN_HDR_TOTAL_SIZE);
    CHECK(total <= len, MNN_E_TRUNCATED, "blob", -1, (uint32_t)len, total);
    m->size = total;
    uint32_t hsize = rd_u16(b + MNN_HDR_HEADER_SIZE);
    CHECK(hsize >= MNN_HDR_RECORD_SIZE && hsize % 4 == 0 && hsize <= total, MNN_E_HEADER, "header_size", -1,
        hsize, MNN_HDR_RECORD_SIZE);
    uint32_t crc = mnn_crc32(0, b + MNN_HDR_CRC32 + 4, total - (MNN_HDR_CRC32 + 4));
    (void)crc;
    #ifndef MNN_FUZZING     // the fuzzer mutates past the checksum to reach the rest
    CHECK(crc == rd_u32(b + MNN_HDR_CRC32), MNN_E_CRC, "crc32", -1, crc, rd_u32(b + MNN_HDR_CRC32));
    #endif

    m->flags = rd_u32(b + MNN_HDR_FLAGS);
    m->arena_size = rd_u32(b + MNN_HDR_ARENA_SIZE);
    m->scratch_size = rd_u32(b + MNN_HDR_SCRATCH_SIZE);
    m->tensor_count = (uint16_t)rd_u16(b + MNN_HDR_TENSOR_COUNT);
    m->op_count = (uint16_t)rd_u16(b + MNN_HDR_OP_COUNT);
    m->input_count = (uint16_t)rd_u16(b + MNN_HDR_INPUT_COUNT);
    m->output_count = (uint16_t)rd_u16(b + MNN_HDR_OUTPUT_COUNT);
    m->const_size = rd_u32(b + MNN_HDR_CONST_SIZE);
    m->macs = rd_u32(b + MNN_HDR_MACS);
    m->state_size = rd_u32(b + MNN_HDR_STATE_SIZE);
    CHECK(m->state_size <= 0x7fffffff && m->state_size % MNN_ARENA_ALIGN == 0, MNN_E_HEADER, "state_size", -1,
        m->state_size, 0x7fffffff);
    for (int k = 0; k < 3; k++) {
        CHECK(rd_u32(b + MNN_HDR_RESERVED + 4 * k) == 0, MNN_E_HEADER, "reserved", -1,
            rd_u32(b + MNN_HDR_RESERVED + 4 * k), 0);
    }
    uint64_t arena_total = (uint64_t)m->arena_size + m->scratch_size;
    CHECK(arena_total <= 0x7fffffff, MNN_E_HEADER, "arena_size + scratch_size", -1,
        arena_total > UINT32_MAX ? UINT32_MAX : (uint32_t)arena_total, 0x7fffffff);
    CHECK(m->scratch_size % MNN_ARENA_ALIGN == 0, MNN_E_HEADER, "scratch_size", -1, m->scratch_size,
        MNN_ARENA_ALIGN);
    CHECK(m->arena_size % MNN_ARENA_ALIGN == 0, MNN_E_HEADER, "arena_size", -1, m->arena_size, MNN_ARENA_ALIGN);
    CHECK(m->tensor_count <= MNN_MAX_TENSORS, MNN_E_HEADER, "tensor_count", -1, m->tensor_count,
        MNN_MAX_TENSORS);
    CHECK(m->op_count <= MNN_MAX_OPS, MNN_E_HEADER, "op_count", -1, m->op_count, MNN_MAX_OPS);
    CHECK(m->input_count >= 1 && m->input_count <= MNN_MAX_IO, MNN_E_HEADER, "input_count", -1, m->input_count,
        MNN_MAX_IO);
    CHECK(m->output_count >= 1 && m->output_count <= MNN_MAX_IO, MNN_E_HEADER, "output_count", -1,
        m->output_count, MNN_MAX_IO);

    uint32_t nsec = rd_u16(b + MNN_HDR_SECTION_COUNT);
    CHECK(nsec <= MNN_MAX_SECTIONS, MNN_E_HEADER, "section_count", -1, nsec, MNN_MAX_SECTIONS);
    uint32_t table_end = hsize + nsec * MNN_SEC_RECORD_SIZE;
    CHECK(table_end <= total, MNN_E_TRUNCATED, "section table", -1, total, table_end);
    uint32_t seen = 0, meta_off = 0, meta_size = 0;
    for (uint32_t k = 0; k < nsec; k++) {
        const uint8_t *s = b + hsize + k * MNN_SEC_RECORD_SIZE;
        uint32_t id = rd_u32(s + MNN_SEC_ID);
        uint32_t off = rd_u32(s + MNN_SEC_OFFSET);
        uint32_t size = rd_u32(s + MNN_SEC_SIZE);
        uint32_t flags = rd_u32(s + MNN_SEC_FLAGS);
        CHECK(off % MNN_ALIGN == 0 && off >= table_end, MNN_E_SECTION, "offset", k, off, table_end);
        CHECK(fits(off, size, total), MNN_E_TRUNCATED, "section", k, total, off + size);
        if (id < 1 || id > MNN_SECTION_META) {
            CHECK(flags & MNN_SECTION_FLAG_OPTIONAL, MNN_E_SECTION, "unknown required section", k, id, 0);
            continue;
        }
        CHECK(!(seen & (1u << id)), MNN_E_SECTION, "duplicate section", k, id, 0);
        seen |= 1u << id;
        switch (id) {
            case MNN_SECTION_TENSORS:
                CHECK(size == (uint32_t)m->tensor_count * MNN_TEN_RECORD_SIZE, MNN_E_SECTION, "tensors size",
                    k, size, (uint32_t)m->tensor_count * MNN_TEN_RECORD_SIZE);
                m->tensors_off = off;
                break;
            case MNN_SECTION_OPS:
                m->ops_off = off;
                m->ops_size = size;
                break;
            case MNN_SECTION_IO:
                CHECK(size >= 2u * (m->input_count + m->output_count), MNN_E_SECTION, "io size", k, size,
                    2u * (m->input_count + m->output_count));
                m->io_off = off;
                break;
            case MNN_SECTION_CONST:
                CHECK(size == m->const_size, MNN_E_SECTION, "const size", k, size, m->const_size);
                m->const_off = off;
                break;
            case MNN_SECTION_META:
                meta_off = off;
                meta_size = size;
                break;
        }
    }
    static const uint8_t required[] = {
        MNN_SECTION_TENSORS, MNN_SECTION_OPS, MNN_SECTION_IO, MNN_SECTION_CONST,
    };
    for (uint32_t k = 0; k < sizeof(required); k++) {
        CHECK(seen & (1u << required[k]), MNN_E_SECTION, "missing section", -1, required[k], 0);
    }
    for (uint32_t i = 0; i < m->tensor_count; i++) {
        mnn_status_t st = check_tensor(m, i, err);
        if (st != MNN_OK) {
            return st;
        }
    }
    mnn_status_t st = check_ops(m, err);
    if (st == MNN_OK) {
        st = check_io(m, err);
    }
    if (st == MNN_OK && meta_size) {
        st = check_meta(m, meta_off, meta_size, err);
    }
    return st;
}

static void *tensor_ptr(const mnn_model_t *m, uint8_t *arena, uint8_t *state, uint32_t i) {
    if (i == MNN_NO_TENSOR) {
        return NULL;
    }
    tensor_t t;
    read_tensor(m, i, &t);
    if (t.storage == MNN_STORAGE_CONST) {
        return (void *)(m->blob + m->const_off + t.offset);
    }
    return (t.storage == MNN_STORAGE_STATE ? state : arena) + t.offset;
}

void mnn_model_reset(const mnn_model_t *m, uint8_t *state) {
    for (uint32_t i = 0; i < m->tensor_count; i++) {
        tensor_t t;
        read_tensor(m, i, &t);
        if (t.storage != MNN_STORAGE_STATE) {
            continue;
        }
        if (t.dtype == MNN_DTYPE_INT8) {
            memset(state + t.offset, (int8_t)t.zero_point, t.nbytes);
        } else {
            int16_t *s = (int16_t *)(void *)(state + t.offset);
            for (uint32_t k = 0; k < t.nbytes / 2; k++) {
                s[k] = (int16_t)t.zero_point;
            }
        }
    }
}

void mnn_model_bind(const mnn_model_t *m, mnn_op_t *ops, uint8_t *arena, uint8_t *state) {
    const uint8_t *p = m->blob + m->ops_off;
    for (uint32_t k = 0; k < m->op_count; k++) {
        uint32_t n_in = rd_u8(p + MNN_OP_N_INPUTS), n_out = rd_u8(p + MNN_OP_N_OUTPUTS);
        const uint8_t *idx = p + MNN_OP_RECORD_SIZE;
        const uint8_t *prm = idx + ((2 * (n_in + n_out) + 3) & ~3u);
        mnn_op_t *op = &ops[k];
        op->opcode = (uint8_t)rd_u8(p + MNN_OP_OPCODE);
        #define PTR(j) tensor_ptr(m, arena, state, rd_u16(idx + 2 * (j)))
        switch (op->opcode) {
            #if MNN_WITH_OP(FULLY_CONNECTED)
            case MNN_OPCODE_FULLY_CONNECTED: {
                mnn_fc_args_t *a = &op->u.fc;
                a->input = PTR(0);
                a->weights = PTR(1);
                a->bias = PTR(2);
                a->mult = PTR(3);
                a->shift = PTR(4);
                a->output = PTR(5);
                a->input_offset = rd_i32(prm + MNN_P_FULLY_CONNECTED_INPUT_OFFSET);
                a->filter_offset = rd_i32(prm + MNN_P_FULLY_CONNECTED_FILTER_OFFSET);
                a->output_offset = rd_i32(prm + MNN_P_FULLY_CONNECTED_OUTPUT_OFFSET);
                a->act_min = rd_i32(prm + MNN_P_FULLY_CONNECTED_ACT_MIN);
                a->act_max = rd_i32(prm + MNN_P_FULLY_CONNECTED_ACT_MAX);
                a->batches = rd_u32(prm + MNN_P_FULLY_CONNECTED_BATCHES);
                a->accum_depth = rd_u32(prm + MNN_P_FULLY_CONNECTED_ACCUM_DEPTH);
                a->out_depth = rd_u32(prm + MNN_P_FULLY_CONNECTED_OUT_DEPTH);
                tensor_t t;
                read_tensor(m, rd_u16(idx + 6), &t);
                a->per_channel = t.nbytes > 4;
                break;
            }
            #endif
            #if MNN_WITH_OP(CONV_2D) || MNN_WITH_OP(CONV_2D_MAXPOOL) || MNN_WITH_OP(DEPTHWISE_CONV_2D)
            case MNN_OPCODE_CONV_2D:
            case MNN_OPCODE_CONV_2D_MAXPOOL:
            case MNN_OPCODE_DEPTHWISE_CONV_2D: {
                // The three records share their layout up to the groups field.
                mnn_conv_args_t *a = &op->u.conv;
                read_geom(prm, &a->g);
                a->groups = op->opcode != MNN_OPCODE_DEPTHWISE_CONV_2D ? rd_u32(prm + MNN_P_CONV_2D_GROUPS) : 1;
                a->depth_mult = op->opcode != MNN_OPCODE_DEPTHWISE_CONV_2D ? 1
                    : rd_u32(prm + MNN_P_DEPTHWISE_CONV_2D_DEPTH_MULT);
                a->input = PTR(0);
                a->weights = PTR(1);
                a->bias = PTR(2);
                a->mult = PTR(3);
                a->shift = PTR(4);
                a->output = PTR(5);
                a->input_offset = rd_i32(prm + MNN_P_CONV_2D_INPUT_OFFSET);
                a->output_offset = rd_i32(prm + MNN_P_CONV_2D_OUTPUT_OFFSET);
                a->act_min = rd_i32(prm + MNN_P_CONV_2D_ACT_MIN);
                a->act_max = rd_i32(prm + MNN_P_CONV_2D_ACT_MAX);
                // The im2col columns, when the blob reserved room for them.
                a->scratch = NULL;
                a->pool_h = a->pool_w = 1;
                if (op->opcode == MNN_OPCODE_CONV_2D) {
                    if (conv_scratch_ok(m, &a->g, a->groups)) {
                        a->scratch = (int16_t *)(void *)(arena + m->arena_size);
                    }
                } else if (op->opcode == MNN_OPCODE_CONV_2D_MAXPOOL) {
                    a->pool_h = rd_u32(prm + MNN_P_CONV_2D_MAXPOOL_POOL_H);
                    a->pool_w = rd_u32(prm + MNN_P_CONV_2D_MAXPOOL_POOL_W);
                    if (conv_pool_scratch_ok(m, &a->g, a->pool_h, a->pool_w)) {
                        a->scratch = (int16_t *)(void *)(arena + m->arena_size);
                    }
                }
                break;
            }
            #endif
            #if MNN_WITH_OP(MAX_POOL_2D) || MNN_WITH_OP(AVERAGE_POOL_2D)
            case MNN_OPCODE_MAX_POOL_2D:
            case MNN_OPCODE_AVERAGE_POOL_2D: {
                mnn_pool_args_t *a = &op->u.pool;
                read_geom(prm, &a->g);
                a->input = PTR(0);
                a->output = PTR(1);
                a->act_min = rd_i32(prm + MNN_P_MAX_POOL_2D_ACT_MIN);
                a->act_max = rd_i32(prm + MNN_P_MAX_POOL_2D_ACT_MAX);
                break;
            }
            #endif
            #if MNN_WITH_OP(ADD) || MNN_WITH_OP(MUL)
            case MNN_OPCODE_ADD:
            case MNN_OPCODE_MUL: {
                mnn_binary_args_t *a = &op->u.bin;
                for (int d = 0; d < 4; d++) {
                    a->dims[d] = rd_u32(prm + MNN_P_ADD_DIMS + 4 * d);
                    a->stride1[d] = rd_u32(prm + MNN_P_ADD_STRIDE1 + 4 * d);
                    a->stride2[d] = rd_u32(prm + MNN_P_ADD_STRIDE2 + 4 * d);
                }
                a->input1 = PTR(0);
                a->input2 = PTR(1);
                a->output = PTR(2);
                a->input1_offset = rd_i32(prm + MNN_P_ADD_INPUT1_OFFSET);
                a->input2_offset = rd_i32(prm + MNN_P_ADD_INPUT2_OFFSET);
                a->output_offset = rd_i32(prm + MNN_P_ADD_OUTPUT_OFFSET);
                a->act_min = rd_i32(prm + MNN_P_ADD_ACT_MIN);
                a->act_max = rd_i32(prm + MNN_P_ADD_ACT_MAX);
                a->left_shift = rd_i32(prm + MNN_P_ADD_LEFT_SHIFT);
                a->input1_mult = rd_i32(prm + MNN_P_ADD_INPUT1_MULT);
                a->input1_shift = rd_i32(prm + MNN_P_ADD_INPUT1_SHIFT);
                a->input2_mult = rd_i32(prm + MNN_P_ADD_INPUT2_MULT);
                a->input2_shift = rd_i32(prm + MNN_P_ADD_INPUT2_SHIFT);
                a->output_mult = rd_i32(prm + MNN_P_ADD_OUTPUT_MULT);
                a->output_shift = rd_i32(prm + MNN_P_ADD_OUTPUT_SHIFT);
                a->scratch = op->opcode == MNN_OPCODE_ADD && m->scratch_size >= MNN_ADD_SCRATCH
                    ? (int32_t *)(void *)(arena + m->arena_size) : NULL;
                break;
            }
            #endif
            #if MNN_WITH_OP(LUT)
            case MNN_OPCODE_LUT: {
                mnn_lut_args_t *a = &op->u.lut;
                a->input = PTR(0);
                a->table = PTR(1);
                a->output = PTR(2);
                a->count = rd_u32(prm + MNN_P_LUT_COUNT);
                break;
            }
            #endif
            #if MNN_WITH_OP(CONCATENATION)
            case MNN_OPCODE_CONCATENATION: {
                mnn_concat_args_t *a = &op->u.concat;
                a->n_inputs = n_in;
                a->outer = rd_u32(prm + MNN_P_CONCATENATION_OUTER);
                for (uint32_t j = 0; j < n_in; j++) {
                    tensor_t t;
                    read_tensor(m, rd_u16(idx + 2 * j), &t);
                    a->inputs[j] = PTR(j);
                    a->chunk[j] = t.nbytes / a->outer;
                }
                a->output = PTR(n_in);
                break;
            }
            #endif
            #if MNN_WITH_OP(PAD)
            case MNN_OPCODE_PAD: {
                mnn_pad_args_t *a = &op->u.pad;
                for (int d = 0; d < 4; d++) {
                    a->in_dims[d] = rd_u32(prm + MNN_P_PAD_IN_DIMS + 4 * d);
                    a->before[d] = rd_u32(prm + MNN_P_PAD_BEFORE + 4 * d);
                    a->after[d] = rd_u32(prm + MNN_P_PAD_AFTER + 4 * d);
                }
                a->input = PTR(0);
                a->output = PTR(1);
                a->value = rd_i32(prm + MNN_P_PAD_VALUE);
                break;
            }
            #endif
            #if MNN_WITH_OP(MEAN)
            case MNN_OPCODE_MEAN: {
                mnn_mean_args_t *a = &op->u.mean;
                a->outer = rd_u32(prm + MNN_P_MEAN_OUTER);
                a->reduce = rd_u32(prm + MNN_P_MEAN_REDUCE);
                a->inner = rd_u32(prm + MNN_P_MEAN_INNER);
                a->mode = rd_u32(prm + MNN_P_MEAN_MODE);
                a->input_offset = rd_i32(prm + MNN_P_MEAN_INPUT_OFFSET);
                a->mult = rd_i32(prm + MNN_P_MEAN_MULT);
                a->shift = rd_i32(prm + MNN_P_MEAN_SHIFT);
                a->output_offset = rd_i32(prm + MNN_P_MEAN_OUTPUT_OFFSET);
                a->input = PTR(0);
                a->output = PTR(1);
                a->scratch = (int32_t *)(void *)(arena + m->arena_size);
                break;
            }
            #endif
            #if MNN_WITH_OP(SOFTMAX)
            case MNN_OPCODE_SOFTMAX: {
                mnn_softmax_args_t *a = &op->u.softmax;
                a->input = PTR(0);
                a->output = PTR(1);
                a->input_mult = rd_i32(prm + MNN_P_SOFTMAX_INPUT_MULT);
                a->input_left_shift = rd_i32(prm + MNN_P_SOFTMAX_INPUT_LEFT_SHIFT);
                a->diff_min = rd_i32(prm + MNN_P_SOFTMAX_DIFF_MIN);
                a->rows = rd_u32(prm + MNN_P_SOFTMAX_ROWS);
                a->row_size = rd_u32(prm + MNN_P_SOFTMAX_ROW_SIZE);
                break;
            }
            #endif
            // === bind ELEMENTWISE ===
            #if MNN_WITH_OP(SUB) || MNN_WITH_OP(SQUARED_DIFFERENCE) || MNN_WITH_OP(MAXIMUM) \
                || MNN_WITH_OP(MINIMUM) || MNN_WITH_OP(PRELU)
            case MNN_OPCODE_SUB:
            case MNN_OPCODE_SQUARED_DIFFERENCE:
            case MNN_OPCODE_MAXIMUM:
            case MNN_OPCODE_MINIMUM:
            case MNN_OPCODE_PRELU: {
                // One record layout (ADD's: asserted with the checks).
                mnn_binary_args_t *a = &op->u.bin;
                for (int d = 0; d < 4; d++) {
                    a->dims[d] = rd_u32(prm + MNN_P_SUB_DIMS + 4 * d);
                    a->stride1[d] = rd_u32(prm + MNN_P_SUB_STRIDE1 + 4 * d);
                    a->stride2[d] = rd_u32(prm + MNN_P_SUB_STRIDE2 + 4 * d);
                }
                a->input1 = PTR(0);
                a->input2 = PTR(1);
                a->output = PTR(2);
                a->input1_offset = rd_i32(prm + MNN_P_SUB_INPUT1_OFFSET);
                a->input2_offset = rd_i32(prm + MNN_P_SUB_INPUT2_OFFSET);
                a->output_offset = rd_i32(prm + MNN_P_SUB_OUTPUT_OFFSET);
                a->act_min = rd_i32(prm + MNN_P_SUB_ACT_MIN);
                a->act_max = rd_i32(prm + MNN_P_SUB_ACT_MAX);
                a->left_shift = rd_i32(prm + MNN_P_SUB_LEFT_SHIFT);
                a->input1_mult = rd_i32(prm + MNN_P_SUB_INPUT1_MULT);
                a->input1_shift = rd_i32(prm + MNN_P_SUB_INPUT1_SHIFT);
                a->input2_mult = rd_i32(prm + MNN_P_SUB_INPUT2_MULT);
                a->input2_shift = rd_i32(prm + MNN_P_SUB_INPUT2_SHIFT);
                a->output_mult = rd_i32(prm + MNN_P_SUB_OUTPUT_MULT);
                a->output_shift = rd_i32(prm + MNN_P_SUB_OUTPUT_SHIFT);
                a->scratch = NULL;
                break;
            }
            #endif
            // === bind MOVEMENT ===
            #if MNN_WITH_OP(STRIDED_COPY)
            case MNN_OPCODE_STRIDED_COPY: {
                mnn_copy_args_t *a = &op->u.copy;
                for (int d = 0; d < MNN_COPY_DIMS; d++) {
                    a->dims[d] = rd_u32(prm + MNN_P_STRIDED_COPY_DIMS + 4 * d);
                    a->strides[d] = rd_i32(prm + MNN_P_STRIDED_COPY_STRIDES + 4 * d);
                }
                a->start = rd_u32(prm + MNN_P_STRIDED_COPY_START);
                a->input = PTR(0);
                a->output = PTR(1);
                break;
            }
            #endif
            #if MNN_WITH_OP(GATHER)
            case MNN_OPCODE_GATHER: {
                mnn_gather_args_t *a = &op->u.gather;
                a->outer = rd_u32(prm + MNN_P_GATHER_OUTER);
                a->axis_size = rd_u32(prm + MNN_P_GATHER_AXIS_SIZE);
                a->inner = rd_u32(prm + MNN_P_GATHER_INNER);
                a->count = rd_u32(prm + MNN_P_GATHER_COUNT);
                a->input = PTR(0);
                a->indices = PTR(1);
                a->output = PTR(2);
                break;
            }
            #endif
            #if MNN_WITH_OP(MIRROR_PAD)
            case MNN_OPCODE_MIRROR_PAD: {
                mnn_mirror_pad_args_t *a = &op->u.mirror_pad;
                for (int d = 0; d < 4; d++) {
                    a->in_dims[d] = rd_u32(prm + MNN_P_MIRROR_PAD_IN_DIMS + 4 * d);
                    a->before[d] = rd_u32(prm + MNN_P_MIRROR_PAD_BEFORE + 4 * d);
                    a->after[d] = rd_u32(prm + MNN_P_MIRROR_PAD_AFTER + 4 * d);
                }
                a->offset = rd_u32(prm + MNN_P_MIRROR_PAD_OFFSET);
                a->input = PTR(0);
                a->output = PTR(1);
                break;
            }
            #endif
            // === bind RESIZE ===
            #if MNN_WITH_OP(RESIZE_NEAREST) || MNN_WITH_OP(RESIZE_BILINEAR)
            case MNN_OPCODE_RESIZE_NEAREST:
            case MNN_OPCODE_RESIZE_BILINEAR: {
                // The two records share their layout.
                mnn_resize_args_t *a = &op->u.resize;
                a->batches = rd_u32(prm + MNN_P_RESIZE_NEAREST_BATCHES);
                a->in_h = rd_u32(prm + MNN_P_RESIZE_NEAREST_IN_H);
                a->in_w = rd_u32(prm + MNN_P_RESIZE_NEAREST_IN_W);
                a->channels = rd_u32(prm + MNN_P_RESIZE_NEAREST_CHANNELS);
                a->out_h = rd_u32(prm + MNN_P_RESIZE_NEAREST_OUT_H);
                a->out_w = rd_u32(prm + MNN_P_RESIZE_NEAREST_OUT_W);
                a->input = PTR(0);
                a->y_table = PTR(1);
                a->x_table = PTR(2);
                a->output = PTR(3);
                break;
            }
            #endif
            #if MNN_WITH_OP(TRANSPOSE_CONV)
            case MNN_OPCODE_TRANSPOSE_CONV: {
                mnn_tconv_args_t *a = &op->u.tconv;
                a->batches = rd_u32(prm + MNN_P_TRANSPOSE_CONV_BATCHES);
                a->in_h = rd_u32(prm + MNN_P_TRANSPOSE_CONV_IN_H);
                a->in_w = rd_u32(prm + MNN_P_TRANSPOSE_CONV_IN_W);
                a->in_c = rd_u32(prm + MNN_P_TRANSPOSE_CONV_IN_C);
                a->out_h = rd_u32(prm + MNN_P_TRANSPOSE_CONV_OUT_H);
                a->out_w = rd_u32(prm + MNN_P_TRANSPOSE_CONV_OUT_W);
                a->out_c = rd_u32(prm + MNN_P_TRANSPOSE_CONV_OUT_C);
                a->k_h = rd_u32(prm + MNN_P_TRANSPOSE_CONV_K_H);
                a->k_w = rd_u32(prm + MNN_P_TRANSPOSE_CONV_K_W);
                a->stride_h = rd_u32(prm + MNN_P_TRANSPOSE_CONV_STRIDE_H);
                a->stride_w = rd_u32(prm + MNN_P_TRANSPOSE_CONV_STRIDE_W);
                a->pad_top = rd_u32(prm + MNN_P_TRANSPOSE_CONV_PAD_TOP);
                a->pad_left = rd_u32(prm + MNN_P_TRANSPOSE_CONV_PAD_LEFT);
                a->input_offset = rd_i32(prm + MNN_P_TRANSPOSE_CONV_INPUT_OFFSET);
                a->output_offset = rd_i32(prm + MNN_P_TRANSPOSE_CONV_OUTPUT_OFFSET);
                a->act_min = rd_i32(prm + MNN_P_TRANSPOSE_CONV_ACT_MIN);
                a->act_max = rd_i32(prm + MNN_P_TRANSPOSE_CONV_ACT_MAX);
                a->input = PTR(0);
                a->weights = PTR(1);
                a->bias = PTR(2);
                a->mult = PTR(3);
                a->shift = PTR(4);
                a->output = PTR(5);
                break;
            }
            #endif
            // === bind REDUCE ===
            #if MNN_WITH_OP(ARG_MAX) || MNN_WITH_OP(ARG_MIN) || MNN_WITH_OP(REDUCE_MAX) || MNN_WITH_OP(REDUCE_MIN)
            case MNN_OPCODE_ARG_MAX:
            case MNN_OPCODE_ARG_MIN:
            case MNN_OPCODE_REDUCE_MAX:
            case MNN_OPCODE_REDUCE_MIN: {
                // The four records share their layout (check_reduce_shape).
                mnn_reduce_args_t *a = &op->u.reduce;
                a->outer = rd_u32(prm + MNN_P_ARG_MAX_OUTER);
                a->reduce = rd_u32(prm + MNN_P_ARG_MAX_REDUCE);
                a->inner = rd_u32(prm + MNN_P_ARG_MAX_INNER);
                a->input = PTR(0);
                a->output = PTR(1);
                a->is_min = op->opcode == MNN_OPCODE_ARG_MIN || op->opcode == MNN_OPCODE_REDUCE_MIN;
                tensor_t t;
                read_tensor(m, rd_u16(idx + 2), &t);
                a->wide = t.dtype == MNN_DTYPE_INT64;
                break;
            }
            #endif
            #if MNN_WITH_OP(L2_NORMALIZATION)
            case MNN_OPCODE_L2_NORMALIZATION: {
                mnn_l2norm_args_t *a = &op->u.l2norm;
                a->input = PTR(0);
                a->output = PTR(1);
                a->rows = rd_u32(prm + MNN_P_L2_NORMALIZATION_ROWS);
                a->depth = rd_u32(prm + MNN_P_L2_NORMALIZATION_DEPTH);
                a->input_offset = rd_i32(prm + MNN_P_L2_NORMALIZATION_INPUT_OFFSET);
                break;
            }
            #endif
            #if MNN_WITH_OP(LOG_SOFTMAX)
            case MNN_OPCODE_LOG_SOFTMAX: {
                mnn_log_softmax_args_t *a = &op->u.log_softmax;
                a->input = PTR(0);
                a->output = PTR(1);
                a->input_mult = rd_i32(prm + MNN_P_LOG_SOFTMAX_INPUT_MULT);
                a->input_left_shift = rd_i32(prm + MNN_P_LOG_SOFTMAX_INPUT_LEFT_SHIFT);
                a->reverse_mult = rd_i32(prm + MNN_P_LOG_SOFTMAX_REVERSE_MULT);
                a->reverse_shift = rd_i32(prm + MNN_P_LOG_SOFTMAX_REVERSE_SHIFT);
                a->diff_min = rd_i32(prm + MNN_P_LOG_SOFTMAX_DIFF_MIN);
                a->rows = rd_u32(prm + MNN_P_LOG_SOFTMAX_ROWS);
                a->row_size = rd_u32(prm + MNN_P_LOG_SOFTMAX_ROW_SIZE);
                break;
            }
            #endif
            // === bind MATMUL ===
            #if MNN_WITH_OP(BATCH_MATMUL)
            case MNN_OPCODE_BATCH_MATMUL: {
                mnn_batch_matmul_args_t *a = &op->u.matmul;
                a->lhs = PTR(0);
                a->rhs = PTR(1);
                a->output = PTR(2);
                a->scratch = (int16_t *)(void *)(arena + m->arena_size);
                for (int d = 0; d < 2; d++) {
                    a->lhs_batch[d] = rd_u32(prm + MNN_P_BATCH_MATMUL_LHS_BATCH + 4 * d);
                    a->rhs_batch[d] = rd_u32(prm + MNN_P_BATCH_MATMUL_RHS_BATCH + 4 * d);
                }
                a->rows = rd_u32(prm + MNN_P_BATCH_MATMUL_ROWS);
                a->depth = rd_u32(prm + MNN_P_BATCH_MATMUL_DEPTH);
                a->cols = rd_u32(prm + MNN_P_BATCH_MATMUL_COLS);
                a->adj_x = rd_u32(prm + MNN_P_BATCH_MATMUL_ADJ_X);
                a->adj_y = rd_u32(prm + MNN_P_BATCH_MATMUL_ADJ_Y);
                a->lhs_offset = rd_i32(prm + MNN_P_BATCH_MATMUL_LHS_OFFSET);
                a->rhs_offset = rd_i32(prm + MNN_P_BATCH_MATMUL_RHS_OFFSET);
                a->output_mult = rd_i32(prm + MNN_P_BATCH_MATMUL_OUTPUT_MULT);
                a->output_shift = rd_i32(prm + MNN_P_BATCH_MATMUL_OUTPUT_SHIFT);
                a->output_offset = rd_i32(prm + MNN_P_BATCH_MATMUL_OUTPUT_OFFSET);
                a->act_min = rd_i32(prm + MNN_P_BATCH_MATMUL_ACT_MIN);
                a->act_max = rd_i32(prm + MNN_P_BATCH_MATMUL_ACT_MAX);
                break;
            }
            #endif
            // === bind STATE ===
            #if MNN_WITH_OP(ASSIGN)
            case MNN_OPCODE_ASSIGN: {
                mnn_assign_args_t *a = &op->u.assign;
                a->source = PTR(0);
                a->target = PTR(1);
                tensor_t t;
                read_tensor(m, rd_u16(idx + 2), &t);
                a->nbytes = t.nbytes;
                break;
            }
            #endif
            // === bind SVDF ===
            #if MNN_WITH_OP(SVDF)
            case MNN_OPCODE_SVDF: {
                mnn_svdf_args_t *a = &op->u.svdf;
                a->input = PTR(0);
                a->weights_feature = PTR(1);
                a->weights_time = PTR(2);
                a->bias = PTR(3);
                a->state = PTR(4);
                a->output = PTR(5);
                a->batches = rd_u32(prm + MNN_P_SVDF_BATCHES);
                a->input_size = rd_u32(prm + MNN_P_SVDF_INPUT_SIZE);
                a->num_filters = rd_u32(prm + MNN_P_SVDF_NUM_FILTERS);
                a->memory = rd_u32(prm + MNN_P_SVDF_MEMORY);
                a->rank = rd_u32(prm + MNN_P_SVDF_RANK);
                a->input_offset = rd_i32(prm + MNN_P_SVDF_INPUT_OFFSET);
                a->feature_mult = rd_i32(prm + MNN_P_SVDF_FEATURE_MULT);
                a->feature_shift = rd_i32(prm + MNN_P_SVDF_FEATURE_SHIFT);
                a->time_mult = rd_i32(prm + MNN_P_SVDF_TIME_MULT);
                a->time_shift = rd_i32(prm + MNN_P_SVDF_TIME_SHIFT);
                a->output_offset = rd_i32(prm + MNN_P_SVDF_OUTPUT_OFFSET);
                break;
            }
            #endif
            // === bind SEQUENCE ===
            #if MNN_WITH_OP(LSTM)
            case MNN_OPCODE_LSTM: {
                mnn_lstm_args_t *a = &op->u.lstm;
                a->input = PTR(0);
                a->weights_input = PTR(1);
                a->weights_recurrent = PTR(2);
                a->bias = PTR(3);
                a->table = PTR(4);
                a->hidden = PTR(5);
                a->cell = PTR(6);
                a->output = PTR(7);
                a->batches = rd_u32(prm + MNN_P_LSTM_BATCHES);
                a->steps = rd_u32(prm + MNN_P_LSTM_STEPS);
                a->input_size = rd_u32(prm + MNN_P_LSTM_INPUT_SIZE);
                a->units = rd_u32(prm + MNN_P_LSTM_UNITS);
                a->time_major = (uint8_t)rd_u32(prm + MNN_P_LSTM_TIME_MAJOR);
                a->input_offset = (int16_t)rd_i32(prm + MNN_P_LSTM_INPUT_OFFSET);
                a->hidden_zero_point = (int16_t)rd_i32(prm + MNN_P_LSTM_HIDDEN_ZERO_POINT);
                for (uint32_t g = 0; g < 4; g++) {
                    a->input_mult[g] = rd_i32(prm + MNN_P_LSTM_INPUT_MULT + 4 * g);
                    a->input_shift[g] = (int8_t)rd_i32(prm + MNN_P_LSTM_INPUT_SHIFT + 4 * g);
                    a->recurrent_mult[g] = rd_i32(prm + MNN_P_LSTM_RECURRENT_MULT + 4 * g);
                    a->recurrent_shift[g] = (int8_t)rd_i32(prm + MNN_P_LSTM_RECURRENT_SHIFT + 4 * g);
                }
                a->forget_mult = rd_i32(prm + MNN_P_LSTM_FORGET_MULT);
                a->forget_shift = (int8_t)rd_i32(prm + MNN_P_LSTM_FORGET_SHIFT);
                a->update_mult = rd_i32(prm + MNN_P_LSTM_UPDATE_MULT);
                a->update_shift = (int8_t)rd_i32(prm + MNN_P_LSTM_UPDATE_SHIFT);
                a->hidden_mult = rd_i32(prm + MNN_P_LSTM_HIDDEN_MULT);
                a->hidden_shift = (int8_t)rd_i32(prm + MNN_P_LSTM_HIDDEN_SHIFT);
                a->cell_clip = (int16_t)rd_i32(prm + MNN_P_LSTM_CELL_CLIP);
                a->cell_tanh_mult = rd_i32(prm + MNN_P_LSTM_CELL_TANH_MULT);
                a->cell_tanh_shift = (int8_t)rd_i32(prm + MNN_P_LSTM_CELL_TANH_SHIFT);
                break;
            }
            #endif
            // === bind S16 ===
            #if MNN_WITH_OP(FULLY_CONNECTED_S16)
            case MNN_OPCODE_FULLY_CONNECTED_S16: {
                mnn_fc_s16_args_t *a = &op->u.fc_s16;
                a->input = PTR(0);
                a->weights = PTR(1);
                a->bias = PTR(2);
                a->mult = PTR(3);
                a->shift = PTR(4);
                a->output = PTR(5);
                a->act_min = rd_i32(prm + MNN_P_FULLY_CONNECTED_S16_ACT_MIN);
                a->act_max = rd_i32(prm + MNN_P_FULLY_CONNECTED_S16_ACT_MAX);
                a->batches = rd_u32(prm + MNN_P_FULLY_CONNECTED_S16_BATCHES);
                a->accum_depth = rd_u32(prm + MNN_P_FULLY_CONNECTED_S16_ACCUM_DEPTH);
                a->out_depth = rd_u32(prm + MNN_P_FULLY_CONNECTED_S16_OUT_DEPTH);
                a->acc64 = (uint8_t)rd_u32(prm + MNN_P_FULLY_CONNECTED_S16_ACC64);
                tensor_t t;
                read_tensor(m, rd_u16(idx + 6), &t);
                a->per_channel = t.nbytes > 4;
                break;
            }
            #endif
            #if MNN_WITH_OP(CONV_2D_S16) || MNN_WITH_OP(DEPTHWISE_CONV_2D_S16)
            case MNN_OPCODE_CONV_2D_S16:
            case MNN_OPCODE_DEPTHWISE_CONV_2D_S16: {
                mnn_conv_s16_args_t *a = &op->u.conv_s16;
                const int dw = op->opcode == MNN_OPCODE_DEPTHWISE_CONV_2D_S16;
                read_geom(prm, &a->g);
                a->groups = dw ? 1 : rd_u32(prm + MNN_P_CONV_2D_S16_GROUPS);
                a->depth_mult = dw ? rd_u32(prm + MNN_P_DEPTHWISE_CONV_2D_S16_DEPTH_MULT) : 1;
                a->input = PTR(0);
                a->weights = PTR(1);
                a->bias = PTR(2);
                a->mult = PTR(3);
                a->shift = PTR(4);
                a->output = PTR(5);
                a->act_min = rd_i32(prm + MNN_P_CONV_2D_S16_ACT_MIN);
                a->act_max = rd_i32(prm + MNN_P_CONV_2D_S16_ACT_MAX);
                a->acc64 = (uint8_t)rd_u32(prm + (dw ? MNN_P_DEPTHWISE_CONV_2D_S16_ACC64 : MNN_P_CONV_2D_S16_ACC64));
                break;
            }
            #endif
            #if MNN_WITH_OP(SOFTMAX_S8_S16)
            case MNN_OPCODE_SOFTMAX_S8_S16: {
                // SOFTMAX's arguments; output points at int16 values
                mnn_softmax_args_t *a = &op->u.softmax;
                a->input = PTR(0);
                a->output = PTR(1);
                a->input_mult = rd_i32(prm + MNN_P_SOFTMAX_INPUT_MULT);
                a->input_left_shift = rd_i32(prm + MNN_P_SOFTMAX_INPUT_LEFT_SHIFT);
                a->diff_min = rd_i32(prm + MNN_P_SOFTMAX_DIFF_MIN);
                a->rows = rd_u32(prm + MNN_P_SOFTMAX_ROWS);
                a->row_size = rd_u32(prm + MNN_P_SOFTMAX_ROW_SIZE);
                break;
            }
            #endif
            // === bind S16X ===
            #if MNN_WITH_OP(ADD_S16) || MNN_WITH_OP(MUL_S16)
            case MNN_OPCODE_ADD_S16:
            case MNN_OPCODE_MUL_S16: {
                mnn_binary16_args_t *a = &op->u.bin16;
                for (int d = 0; d < 4; d++) {
                    a->dims[d] = rd_u32(prm + MNN_P_ADD_DIMS + 4 * d);
                    a->stride1[d] = rd_u32(prm + MNN_P_ADD_STRIDE1 + 4 * d);
                    a->stride2[d] = rd_u32(prm + MNN_P_ADD_STRIDE2 + 4 * d);
                }
                a->input1 = PTR(0);
                a->input2 = PTR(1);
                a->output = PTR(2);
                a->act_min = rd_i32(prm + MNN_P_ADD_ACT_MIN);
                a->act_max = rd_i32(prm + MNN_P_ADD_ACT_MAX);
                a->left_shift = rd_i32(prm + MNN_P_ADD_LEFT_SHIFT);
                a->input1_mult = rd_i32(prm + MNN_P_ADD_INPUT1_MULT);
                a->input1_shift = rd_i32(prm + MNN_P_ADD_INPUT1_SHIFT);
                a->input2_mult = rd_i32(prm + MNN_P_ADD_INPUT2_MULT);
                a->input2_shift = rd_i32(prm + MNN_P_ADD_INPUT2_SHIFT);
                a->output_mult = rd_i32(prm + MNN_P_ADD_OUTPUT_MULT);
                a->output_shift = rd_i32(prm + MNN_P_ADD_OUTPUT_SHIFT);
                break;
            }
            #endif
            #if MNN_WITH_OP(MAX_POOL_S16) || MNN_WITH_OP(AVG_POOL_S16)
            case MNN_OPCODE_MAX_POOL_S16:
            case MNN_OPCODE_AVG_POOL_S16: {
                mnn_pool16_args_t *a = &op->u.pool16;
                read_geom(prm, &a->g);
                a->input = PTR(0);
                a->output = PTR(1);
                a->act_min = rd_i32(prm + MNN_P_MAX_POOL_S16_ACT_MIN);
                a->act_max = rd_i32(prm + MNN_P_MAX_POOL_S16_ACT_MAX);
                break;
            }
            #endif
            #if MNN_WITH_OP(SOFTMAX_S16)
            case MNN_OPCODE_SOFTMAX_S16: {
                mnn_softmax16_args_t *a = &op->u.softmax16;
                a->input = PTR(0);
                a->exp_table = PTR(1);
                a->recip_table = PTR(2);
                a->output = PTR(3);
                a->input_mult = rd_i32(prm + MNN_P_SOFTMAX_S16_INPUT_MULT);
                a->input_shift = rd_i32(prm + MNN_P_SOFTMAX_S16_INPUT_SHIFT);
                a->rows = rd_u32(prm + MNN_P_SOFTMAX_S16_ROWS);
                a->row_size = rd_u32(prm + MNN_P_SOFTMAX_S16_ROW_SIZE);
                break;
            }
            #endif
            #if MNN_WITH_OP(TANH_S16) || MNN_WITH_OP(LOGISTIC_S16)
            case MNN_OPCODE_TANH_S16:
            case MNN_OPCODE_LOGISTIC_S16: {
                mnn_sigmoid16_args_t *a = &op->u.sigmoid16;
                a->input = PTR(0);
                a->table = PTR(1);
                a->output = PTR(2);
                a->count = rd_u32(prm + MNN_P_TANH_S16_COUNT);
                a->input_mult = rd_i32(prm + MNN_P_TANH_S16_INPUT_MULT);
                a->input_shift = rd_i32(prm + MNN_P_TANH_S16_INPUT_SHIFT);
                break;
            }
            #endif
            #if MNN_WITH_OP(REQUANT)
            case MNN_OPCODE_REQUANT: {
                mnn_requant_args_t *a = &op->u.requant;
                tensor_t tin, tout;
                read_tensor(m, rd_u16(idx), &tin);
                read_tensor(m, rd_u16(idx + 2), &tout);
                a->input = PTR(0);
                a->output = PTR(1);
                a->in16 = tin.dtype == MNN_DTYPE_INT16;
                a->out16 = tout.dtype == MNN_DTYPE_INT16;
                a->count = rd_u32(prm + MNN_P_REQUANT_COUNT);
                a->input_zero_point = rd_i32(prm + MNN_P_REQUANT_INPUT_ZERO_POINT);
                a->mult = rd_i32(prm + MNN_P_REQUANT_MULT);
                a->shift = rd_i32(prm + MNN_P_REQUANT_SHIFT);
                a->output_offset = rd_i32(prm + MNN_P_REQUANT_OUTPUT_OFFSET);
                break;
            }
            #endif
            #if MNN_WITH_OP(PAD_S16)
            case MNN_OPCODE_PAD_S16: {
                mnn_pad_args_t *a = &op->u.pad;
                for (int d = 0; d < 4; d++) {
                    a->in_dims[d] = rd_u32(prm + MNN_P_PAD_IN_DIMS + 4 * d);
                    a->before[d] = rd_u32(prm + MNN_P_PAD_BEFORE + 4 * d);
                    a->after[d] = rd_u32(prm + MNN_P_PAD_AFTER + 4 * d);
                }
                a->input = PTR(0);
                a->output = PTR(1);
                a->value = rd_i32(prm + MNN_P_PAD_VALUE);
                break;
            }
            #endif
            #if MNN_WITH_OP(CONCATENATION_S16)
            case MNN_OPCODE_CONCATENATION_S16: {
                mnn_concat_args_t *a = &op->u.concat;
                a->n_inputs = n_in;
                a->outer = rd_u32(prm + MNN_P_CONCATENATION_OUTER);
                for (uint32_t j = 0; j < n_in; j++) {
                    tensor_t t;
                    read_tensor(m, rd_u16(idx + 2 * j), &t);
                    a->inputs[j] = PTR(j);
                    a->chunk[j] = t.nbytes / a->outer;
                }
                a->output = PTR(n_in);
                break;
            }
            #endif
            // === bind S4 ===
            // The int8 ops' argument records (layouts asserted with the checks); weights: packed int4.
            #if MNN_WITH_OP(FULLY_CONNECTED_S4)
            case MNN_OPCODE_FULLY_CONNECTED_S4: {
                mnn_fc_args_t *a = &op->u.fc;
                a->input = PTR(0);
                a->weights = PTR(1);
                a->bias = PTR(2);
                a->mult = PTR(3);
                a->shift = PTR(4);
                a->output = PTR(5);
                a->input_offset = rd_i32(prm + MNN_P_FULLY_CONNECTED_INPUT_OFFSET);
                a->filter_offset = rd_i32(prm + MNN_P_FULLY_CONNECTED_FILTER_OFFSET);
                a->output_offset = rd_i32(prm + MNN_P_FULLY_CONNECTED_OUTPUT_OFFSET);
                a->act_min = rd_i32(prm + MNN_P_FULLY_CONNECTED_ACT_MIN);
                a->act_max = rd_i32(prm + MNN_P_FULLY_CONNECTED_ACT_MAX);
                a->batches = rd_u32(prm + MNN_P_FULLY_CONNECTED_BATCHES);
                a->accum_depth = rd_u32(prm + MNN_P_FULLY_CONNECTED_ACCUM_DEPTH);
                a->out_depth = rd_u32(prm + MNN_P_FULLY_CONNECTED_OUT_DEPTH);
                tensor_t t;
                read_tensor(m, rd_u16(idx + 6), &t);
                a->per_channel = t.nbytes > 4;
                break;
            }
            #endif
            #if MNN_WITH_OP(CONV_2D_S4) || MNN_WITH_OP(DEPTHWISE_CONV_2D_S4)
            case MNN_OPCODE_CONV_2D_S4:
            case MNN_OPCODE_DEPTHWISE_CONV_2D_S4: {
                mnn_conv_args_t *a = &op->u.conv;
                const int dw = op->opcode == MNN_OPCODE_DEPTHWISE_CONV_2D_S4;
                read_geom(prm, &a->g);
                a->groups = dw ? 1 : rd_u32(prm + MNN_P_CONV_2D_GROUPS);
                a->depth_mult = dw ? rd_u32(prm + MNN_P_DEPTHWISE_CONV_2D_DEPTH_MULT) : 1;
                a->input = PTR(0);
                a->weights = PTR(1);
                a->bias = PTR(2);
                a->mult = PTR(3);
                a->shift = PTR(4);
                a->output = PTR(5);
                a->input_offset = rd_i32(prm + MNN_P_CONV_2D_INPUT_OFFSET);
                a->output_offset = rd_i32(prm + MNN_P_CONV_2D_OUTPUT_OFFSET);
                a->act_min = rd_i32(prm + MNN_P_CONV_2D_ACT_MIN);
                a->act_max = rd_i32(prm + MNN_P_CONV_2D_ACT_MAX);
                // CONV_2D_S4's int16 column (format.conv_s4_scratch), when the blob reserved it
                const uint64_t k8 = ((uint64_t)a->g.k_h * a->g.k_w * (a->g.in_c / a->groups) + 7) / 8 * 8;
                a->scratch = !dw && 2 * k8 <= m->scratch_size ? (int16_t *)(void *)(arena + m->arena_size) : NULL;
                a->pool_h = a->pool_w = 1;
                break;
            }
            #endif
        }
        #undef PTR
        tensor_t tin, tout;
        read_tensor(m, rd_u16(idx), &tin);
        read_tensor(m, rd_u16(idx + 2 * n_in), &tout);
        op->elems = tin.nbytes > tout.nbytes ? tin.nbytes : tout.nbytes;
        p += rd_u16(p + MNN_OP_SIZE);
    }
}

static void io_info(const mnn_model_t *m, uint32_t k, mnn_tensor_info_t *info) {
    tensor_t t;
    read_tensor(m, rd_u16(m->blob + m->io_off + 2 * k), &t);
    info->dtype = t.dtype;
    info->ndim = t.ndim;
    memcpy(info->dims, t.dims, sizeof(info->dims));
    info->nbytes = t.nbytes;
    info->offset = t.offset;
    info->scale = t.scale;
    info->zero_point = t.zero_point;
}

void mnn_model_input(const mnn_model_t *m, uint16_t i, mnn_tensor_info_t *info) {
    io_info(m, i, info);
}

void mnn_model_output(const mnn_model_t *m, uint16_t i, mnn_tensor_info_t *info) {
    io_info(m, (uint32_t)m->input_count + i, info);
}
