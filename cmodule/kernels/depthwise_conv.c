// Depthwise convolution (int8, per-channel requantization), any depth
// multiplier, kernel size, stride, dilation and padding.
//
// mnn_depthwise_conv_s8 picks the variant:
// - depth multiplier 1 (the common case): each output pixel's taps are found
//   once (the window clipped to the input), then channels go four at a time;
//   with the DSP extension a word of inputs and a word of weights feed four
//   16-bit multiply-accumulates (SMLABB/SMLATT) after two SXTB16 each.
// - any depth multiplier: one output value at a time.
#include "mnn_kernels.h"
#include "mnn_fixedpoint.h"
#include "mnn_simd.h"

static void depthwise_generic(const mnn_conv_args_t *a) {
    const mnn_geom_t *g = &a->g;
    const uint32_t dm = a->depth_mult;
    mnn_pace_t pace;
    mnn_pace_init(&pace, mnn_sat_mul(g->out_c, g->k_h * g->k_w));
    int8_t *y = a->output;
    for (uint32_t b = 0; b < g->batches; b++) {
        const int8_t *xb = a->input + b * g->in_h * g->in_w * g->in_c;
        for (uint32_t oy = 0; oy < g->out_h; oy++) {
            const int32_t iy0 = (int32_t)(oy * g->stride_h) - g->pad_top;
            for (uint32_t ox = 0; ox < g->out_w; ox++) {
                const int32_t ix0 = (int32_t)(ox * g->stride_w) - g->pad_left;
                mnn_pace(&pace);
                for (uint32_t oc = 0; oc < g->out_c; oc++) {
                    const uint32_t ic = oc / dm;
                    uint32_t acc = 0;
                    for (uint32_t ky = 0; ky < g->k_h; ky++) {
                        const int32_t iy = iy0 + (int32_t)(ky * g->dil_h);
                        if (iy < 0 || iy >= (int32_t)g->in_h) {
                            continue;
                        }
                        for (uint32_t kx = 0; kx < g->k_w; kx++) {
                            const int32_t ix = ix0 + (int32_t)(kx * g->dil_w);
                            if (ix < 0 || ix >= (int32_t)g->in_w) {
                                continue;
                            }
                            int32_t x = xb[((uint32_t)iy * g->in_w + (uint32_t)ix) * g->in_c + ic];
                            acc += (uint32_t)((x + a->input_offset) * a->weights[(ky * g->k_w + kx) * g->out_c + oc]);
                        }
                    }
                    *y++ = mnn_requant_out(acc, a->bias, oc, a->mult, a->shift, oc, a->output_offset, a->act_min,
                        a->act_max);
                }
            }
        }
    }
}

// First and one-past-last tap index k with 0 <= i0 + k * dil < n.
static inline void tap_range(int32_t i0, uint32_t dil, uint32_t k, uint32_t n, uint32_t *lo, uint32_t *hi) {
    uint32_t first = 0, last = k;
    if (i0 < 0) {
        first = ((uint32_t)(-i0) + dil - 1) / dil;
    }
    int32_t over = i0 + (int32_t)((k - 1) * dil) - (int32_t)(n - 1);
    if (over > 0) {
        uint32_t cut = ((uint32_t)over + dil - 1) / dil;
        last = cut < k ? k - cut : 0;
    }
    *lo = first;
    *hi = last > first ? last : first;
}

// Sums of four channels over a window of ny x nx taps: input rows xrow
// bytes apart, taps in a row xstep apart; weight rows wrow apart, taps C apart.
#if MNN_DSP
__attribute__((noinline))
static void taps4(const int8_t *xp, const int8_t *wp, uint32_t ny, uint32_t nx, uint32_t xrow, uint32_t xstep,
    uint32_t wrow, uint32_t C, uint32_t off2, uint32_t *out) {
    int32_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    #define TAP(x, w) do { \
        uint32_t xv = mnn_rd32(x), wv = mnn_rd32(w); \
        uint32_t xa = mnn_sxtab16(off2, xv), wa = mnn_sxtb16(wv); \
        s0 = mnn_smlabb(xa, wa, s0); \
        s2 = mnn_smlatt(xa, wa, s2); \
        xa = mnn_sxtab16_ror8(off2, xv); \
        wa = mnn_sxtb16_ror8(wv); \
        s1 = mnn_smlabb(xa, wa, s1); \
        s3 = mnn_smlatt(xa, wa, s3); \
} while (0)
    if (nx == 3) {
        // rows of three taps (3x3 kernels away from the edges): unrolled
        for (; ny; ny--, xp += xrow, wp += wrow) {
            TAP(xp, wp);
            TAP(xp + xstep, wp + C);
            TAP(xp + 2 * xstep, wp + 2 * C);
        }
    }
    for (; ny; ny--, xp += xrow, wp += wrow) {
        const int8_t *x = xp, *w = wp;
        for (uint32_t n = nx; n; n--, x += xstep, w += C) {
            uint32_t xv = mnn_rd32(x), wv = mnn_rd32(w);
            uint32_t xa = mnn_sxtab16(off2, xv), wa = mnn_sxtb16(wv);
            s0 = mnn_smlabb(xa, wa, s0);
            s2 = mnn_smlatt(xa, wa, s2);
            xa = mnn_sxtab16_ror8(off2, xv);
            wa = mnn_sxtb16_ror8(wv);
            s1 = mnn_smlabb(xa, wa, s1);
            s3 = mnn_smlatt(xa, wa, s3);
        }
    }
    #undef TAP
    out[0] = (uint32_t)s0;
    out[1] = (uint32_t)s1;
    out[2] = (uint32_t)s2;
    out[3] = (uint32_t)s3;
}
#else
static void taps4(const int8_t *xp, const int8_t *wp, uint32_t ny, uint32_t nx, uint32_t xrow, uint32_t xstep,
    uint32_t wrow, uint32_t C, int32_t off, uint32_t *out) {
    uint32_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (; ny; ny--, xp += xrow, wp += wrow) {
        const int8_t *x = xp, *w = wp;
        for (uint32_t n = nx; n; n--, x += xstep, w += C) {
            s0 += (uint32_t)((x[0] + off) * w[0]);
            s1 += (uint32_t)((x[1] + off) * w[1]);
            s2 += (uint32_t)((x[2] + off) * w[2]);
            s3 += (uint32_t)((x[3] + off) * w[3]);
        }
    }
    out[0] = s0;
    out[1] = s1;
    out[2] = s2;
    out[3] = s3;
}
#endif

__attribute__((noinline))
static void requant(const mnn_rq_block_t *blk, const uint32_t *sums, uint32_t n, int8_t *y) {
    mnn_rq_block_apply(blk, sums, 1, n, y, 1, 1);
}

// Depth multiplier 1. Channels go in blocks (requantization constants
// prepared once per block); for each output pixel the window is clipped to
// the input once, the block's sums are taken four channels at a time, then
// requantized together.
static void depthwise_mult1(const mnn_conv_args_t *a) {
    const mnn_geom_t *g = &a->g;
    const uint32_t C = g->in_c;
    const int32_t off = a->input_offset;
    #if MNN_DSP
    const uint32_t offv = ((uint32_t)off & 0xffff) | ((uint32_t)off << 16);
    #else
    const int32_t offv = off;
    #endif
    const uint32_t xstep = g->dil_w * C, ystep = g->dil_h * g->in_w * C, wrow = g->k_w * C;
    mnn_rq_block_t blk;
    uint32_t sums[MNN_RQ_BLOCK];
    for (uint32_t c0 = 0; c0 < C; c0 += MNN_RQ_BLOCK) {
        const uint32_t n = C - c0 > MNN_RQ_BLOCK ? MNN_RQ_BLOCK : C - c0;
        mnn_rq_block_prepare(&blk, a->bias, a->mult, a->shift, c0, n, a->output_offset, a->act_min, a->act_max);
        int8_t *y = a->output + c0;
        mnn_pace_t pace;
        mnn_pace_init(&pace, mnn_sat_mul(n, g->k_h * g->k_w));
        for (uint32_t b = 0; b < g->batches; b++) {
            const int8_t *xb = a->input + b * g->in_h * g->in_w * C;
            for (uint32_t oy = 0; oy < g->out_h; oy++) {
                const int32_t iy0 = (int32_t)(oy * g->stride_h) - g->pad_top;
                uint32_t ky0, ky1;
                tap_range(iy0, g->dil_h, g->k_h, g->in_h, &ky0, &ky1);
                for (uint32_t ox = 0; ox < g->out_w; ox++, y += C) {
                    mnn_pace(&pace);
                    const int32_t ix0 = (int32_t)(ox * g->stride_w) - g->pad_left;
                    uint32_t kx0, kx1;
                    tap_range(ix0, g->dil_w, g->k_w, g->in_w, &kx0, &kx1);
                    uint32_t i = 0;
                    if (ky1 > ky0 && kx1 > kx0) {
                        const int8_t *w0 = a->weights + ky0 * wrow + kx0 * C;
                        // The window's first tap, inside the image; the others follow ystep and xstep.
                        const uint32_t first = ((uint32_t)(iy0 + (int32_t)(ky0 * g->dil_h)) * g->in_w
                            + (uint32_t)(ix0 + (int32_t)(kx0 * g->dil_w))) * C;
                        for (; i + 4 <= n; i += 4) {
                            taps4(xb + first + c0 + i, w0 + c0 + i, ky1 - ky0, kx1 - kx0, ystep, xstep,
                                wrow, C, offv, sums + i);
                        }
                        for (; i < n; i++) {
                            const int8_t *xr = xb + first + c0 + i, *wr = w0 + c0 + i;
                            uint32_t s = 0;
                            for (uint32_t ky = ky0; ky < ky1; ky++, xr += ystep, wr += wrow) {
                                const int8_t *x = xr, *w = wr;
                                for (uint32_t kx = kx0; kx < kx1; kx++, x += xstep, w += C) {
                                    s += (uint32_t)((*x + off) * *w);
                                }
                            }
                            sums[i] = s;
                        }
                    } else {
                        for (; i < n; i++) {
                            sums[i] = 0;    // no tap inside the input
                        }
                    }
                    requant(&blk, sums, n, y);
                }
            }
        }
    }
}

void mnn_depthwise_conv_s8(const mnn_conv_args_t *a) {
    if (a->depth_mult == 1) {
        MNN_COUNT_VARIANT(DEPTHWISE_MULT1);
        depthwise_mult1(a);
    } else {
        MNN_COUNT_VARIANT(DEPTHWISE_GENERIC);
        depthwise_generic(a);
    }
}
