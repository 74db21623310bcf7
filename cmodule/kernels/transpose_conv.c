// Transposed convolution, int8 NHWC, per-channel requantization, bit-exact
// with TensorFlow Lite Micro. TFLite Micro scatters each input pixel into an
// int32 scratch of the whole output and requantizes it afterwards; this
// kernel gathers instead: output (oy, ox) sums the taps (ky, kx) with
// oy + pad_top - ky = iy * stride_h (and the same across), so it needs no
// scratch. The sums are the same integers (wrapping alike), so the outputs
// are identical.
#include "mnn_kernels.h"
#include "mnn_fixedpoint.h"
#include "mnn_simd.h"

// sum (x[i] + off) * w[i] over n values, wrapping.
static inline __attribute__((always_inline)) uint32_t dot_off(const int8_t *x, const int8_t *w, uint32_t n, int32_t off) {
    uint32_t acc = 0;
    uint32_t i = 0;
    #if MNN_DSP
    // Four values a step: SXTAB16 adds the offset while it sign-extends the
    // input pairs, and SMLAD multiplies and adds two pairs.
    const uint32_t off2 = ((uint32_t)off & 0xffffu) | ((uint32_t)off << 16);
    int32_t s = 0;
    for (; i + 4 <= n; i += 4) {
        uint32_t xv = mnn_rd32(x + i), wv = mnn_rd32(w + i);
        s = mnn_smlad(mnn_sxtab16(off2, xv), mnn_sxtb16(wv), s);
        s = mnn_smlad(mnn_sxtab16_ror8(off2, xv), mnn_sxtb16_ror8(wv), s);
    }
    acc = (uint32_t)s;
    #endif
    for (; i < n; i++) {
        acc += (uint32_t)((x[i] + off) * w[i]);
    }
    return acc;
}

// Output channels summed together (the tap arithmetic of an output pixel is
// done once per block, not once per channel), their requantization constants
// prepared once per call.
#define TCONV_BLOCK MNN_RQ_BLOCK

void mnn_transpose_conv_s8(const mnn_tconv_args_t *a) {
    MNN_COUNT_VARIANT(TRANSPOSE_CONV);
    // locals: the stores through int8_t pointers may alias *a for the compiler
    const uint32_t in_h = a->in_h, in_w = a->in_w, in_c = a->in_c, out_c = a->out_c;
    const uint32_t k_h = a->k_h, k_w = a->k_w, s_h = a->stride_h, s_w = a->stride_w;
    const int32_t in_off = a->input_offset;
    const size_t w_step = (size_t)k_h * k_w * in_c;      // one output channel's weights
    // taps of one output value, at most: ceil(k / stride) per axis
    const uint32_t taps = mnn_sat_mul((k_h + s_h - 1) / s_h, (k_w + s_w - 1) / s_w);
    uint32_t acc[TCONV_BLOCK];
    mnn_rq_block_t blk;
    for (uint32_t oc0 = 0; oc0 < out_c; oc0 += TCONV_BLOCK) {
        const uint32_t n = out_c - oc0 < TCONV_BLOCK ? out_c - oc0 : TCONV_BLOCK;
        const int8_t *const wb = a->weights + oc0 * w_step;
        mnn_rq_block_prepare(&blk, a->bias, a->mult, a->shift, oc0, n, a->output_offset, a->act_min, a->act_max);
        mnn_pace_t pace;
        mnn_pace_init(&pace, mnn_sat_mul(n, mnn_sat_mul(taps, in_c)));
        int8_t *y = a->output + oc0;
        for (uint32_t b = 0; b < a->batches; b++) {
            const int8_t *img = a->input + (size_t)b * in_h * in_w * in_c;
            for (uint32_t oy = 0; oy < a->out_h; oy++) {
                const uint32_t ty = oy + a->pad_top;
                const uint32_t ky0 = ty % s_h;
                for (uint32_t ox = 0; ox < a->out_w; ox++) {
                    const uint32_t tx = ox + a->pad_left;
                    const uint32_t kx0 = tx % s_w;
                    for (uint32_t j = 0; j < n; j++) {
                        acc[j] = 0;
                    }
                    for (uint32_t ky = ky0; ky < k_h && ky <= ty; ky += s_h) {
                        const uint32_t iy = (ty - ky) / s_h;
                        if (iy >= in_h) {
                            continue;
                        }
                        for (uint32_t kx = kx0; kx < k_w && kx <= tx; kx += s_w) {
                            const uint32_t ix = (tx - kx) / s_w;
                            if (ix >= in_w) {
                                continue;
                            }
                            const int8_t *xp = img + ((size_t)iy * in_w + ix) * in_c;
                            const int8_t *wp = wb + ((size_t)ky * k_w + kx) * in_c;
                            for (uint32_t j = 0; j < n; j++) {
                                acc[j] += dot_off(xp, wp + j * w_step, in_c, in_off);
                            }
                        }
                    }
                    mnn_rq_block_apply(&blk, acc, 1, n, y, 1, 1);
                    y += out_c;
                    mnn_pace(&pace);
                }
            }
        }
    }
}
