// Depthwise convolution (int8, per-channel requantization), any depth
// multiplier, kernel size, stride, dilation and padding.
//
// mnn_depthwise_conv_s8 picks the variant:
// - depth multiplier 1 (the common case): each output pixel's taps are found
//   once (the window clipped to the input), then channels go four at a time;
//   with the DSP extension a word of inputs and a word of weights feed four
//   16-bit multiply-accumulates (SMLABB/SMLATT) after two SXTB16 each.
//   3x3 kernels without dilation (channels a multiple of 4 per block) have
//   their own DSP kernels that also requantize, four channels to a word:
//   runs of whole windows along a row with the weights extracted once per
//   run (taps3x3_run), shorter runs one pixel at a time (taps3x3), windows
//   clipped by the edges (taps3x3_edge).
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
// One tap of four channels from words already loaded: s0..s3 += (x[c] + offset) * w[c].
#define TAPV(x_word, w_word) do { \
        uint32_t xv = (x_word), wv = (w_word); \
        uint32_t xa = mnn_sxtab16(off2, xv), wa = mnn_sxtb16(wv); \
        s0 = mnn_smlabb(xa, wa, s0); \
        s2 = mnn_smlatt(xa, wa, s2); \
        xa = mnn_sxtab16_ror8(off2, xv); \
        wa = mnn_sxtb16_ror8(wv); \
        s1 = mnn_smlabb(xa, wa, s1); \
        s3 = mnn_smlatt(xa, wa, s3); \
} while (0)
// ... loading them from x and w.
#define TAP(x, w) TAPV(mnn_rd32(x), mnn_rd32(w))
__attribute__((noinline))
static void taps4(const int8_t *xp, const int8_t *wp, uint32_t ny, uint32_t nx, uint32_t xrow, uint32_t xstep,
    uint32_t wrow, uint32_t C, uint32_t off2, uint32_t *out) {
    int32_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
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
            TAP(x, w);
        }
    }
    out[0] = (uint32_t)s0;
    out[1] = (uint32_t)s1;
    out[2] = (uint32_t)s2;
    out[3] = (uint32_t)s3;
}

// One requantized output, saturated to int8, from a sum that holds its
// channel's bias (the activation range is applied to four at once).
static inline uint32_t rq_one(const mnn_rq_block_t *blk, uint32_t i, int32_t s, int right_only) {
    const int32_t v = right_only ? mnn_rq_apply_right(&blk->rq[i], s) : mnn_rq_apply(&blk->rq[i], s);
    return (uint32_t)mnn_sat8(mnn_wadd(v, blk->off)) & 0xff;
}

// Four requantized channels stored as one word, clamped to the activation
// range lane by lane (lo4, hi4: the range's bounds in each byte; the loader
// keeps them within int8, so saturating first changes nothing).
static inline void rq_store4(const mnn_rq_block_t *blk, uint32_t i, int32_t s0, int32_t s1, int32_t s2, int32_t s3,
    int right_only, int clamp, uint32_t lo4, uint32_t hi4, int8_t *y) {
    uint32_t v = rq_one(blk, i, s0, right_only) | rq_one(blk, i + 1, s1, right_only) << 8
        | rq_one(blk, i + 2, s2, right_only) << 16 | rq_one(blk, i + 3, s3, right_only) << 24;
    if (clamp) {
        v = mnn_smin8(mnn_smax8(v, lo4), hi4);
    }
    mnn_wr32(y, v);
}

// A 3x3 window with no dilation wholly inside the input: all n channels
// (n a multiple of 4) of one output pixel, the nine taps unrolled, then the
// four sums requantized into y; x is the window's top-left tap of channel 0,
// input rows `row` bytes apart. Sums start from the channels' biases.
__attribute__((noinline))
static void taps3x3(const int8_t *x, const int8_t *w, uint32_t n, uint32_t C, uint32_t row, uint32_t off2,
    const mnn_rq_block_t *blk, int8_t *y) {
    const int right_only = blk->right_only, clamp = blk->lo != -128 || blk->hi != 127;
    const uint32_t lo4 = ((uint32_t)blk->lo & 0xff) * 0x01010101u, hi4 = ((uint32_t)blk->hi & 0xff) * 0x01010101u;
    for (uint32_t i = 0; i < n; i += 4, x += 4, w += 4, y += 4) {
        int32_t s0 = (int32_t)blk->bias[i], s1 = (int32_t)blk->bias[i + 1];
        int32_t s2 = (int32_t)blk->bias[i + 2], s3 = (int32_t)blk->bias[i + 3];
        const int8_t *xp = x, *wp = w;
        #define TAP_ROW() do { \
        TAPV(mnn_rd32_v(xp), mnn_rd32_v(wp)); \
        TAPV(mnn_rd32_at(xp, C), mnn_rd32_at(wp, C)); \
        TAPV(mnn_rd32_at2(xp, C), mnn_rd32_at2(wp, C)); \
} while (0)
        TAP_ROW();
        xp += row;
        wp += 3 * C;
        TAP_ROW();
        xp += row;
        wp += 3 * C;
        TAP_ROW();
        #undef TAP_ROW
        rq_store4(blk, i, s0, s1, s2, s3, right_only, clamp, lo4, hi4, y);
    }
}

// A 3x3 window (no dilation) clipped by the input's edges: all n channels
// (n a multiple of 4) of one output pixel, ny rows of nx taps (1 to 3 each)
// from x and w, the window's first tap inside the input, input rows `row`
// bytes apart; sums start from the channels' biases and are requantized
// into y four at a time.
__attribute__((noinline))
static void taps3x3_edge(const int8_t *x, const int8_t *w, uint32_t n, uint32_t ny, uint32_t nx, uint32_t C,
    uint32_t row, uint32_t off2, const mnn_rq_block_t *blk, int8_t *y) {
    const int right_only = blk->right_only, clamp = blk->lo != -128 || blk->hi != 127;
    const uint32_t lo4 = ((uint32_t)blk->lo & 0xff) * 0x01010101u, hi4 = ((uint32_t)blk->hi & 0xff) * 0x01010101u;
    for (uint32_t i = 0; i < n; i += 4, x += 4, w += 4, y += 4) {
        int32_t s0 = (int32_t)blk->bias[i], s1 = (int32_t)blk->bias[i + 1];
        int32_t s2 = (int32_t)blk->bias[i + 2], s3 = (int32_t)blk->bias[i + 3];
        const int8_t *xp = x, *wp = w;
        for (uint32_t r = ny; r; r--, xp += row, wp += 3 * C) {
            TAPV(mnn_rd32_v(xp), mnn_rd32_v(wp));
            if (nx > 1) {
                TAPV(mnn_rd32_at(xp, C), mnn_rd32_at(wp, C));
                if (nx > 2) {
                    TAPV(mnn_rd32_at2(xp, C), mnn_rd32_at2(wp, C));
                }
            }
        }
        rq_store4(blk, i, s0, s1, s2, s3, right_only, clamp, lo4, hi4, y);
    }
}

// One tap of four channels against weights already extracted: wk[2t] holds
// channels (0, 2), wk[2t + 1] channels (1, 3).
#define TAPK(x_word, t) do { \
        uint32_t xv = (x_word); \
        uint32_t xa = mnn_sxtab16(off2, xv); \
        s0 = mnn_smlabb(xa, wk[2 * (t)], s0); \
        s2 = mnn_smlatt(xa, wk[2 * (t)], s2); \
        xa = mnn_sxtab16_ror8(off2, xv); \
        s1 = mnn_smlabb(xa, wk[2 * (t) + 1], s1); \
        s3 = mnn_smlatt(xa, wk[2 * (t) + 1], s3); \
} while (0)

// A run of npix output pixels along a row whose 3x3 windows (no dilation)
// all lie inside the input: x is the first window's top-left tap of channel
// 0, windows xstride bytes apart. Channels go four at a time, the nine
// weight words extracted once for the whole run.
#define RUN_MIN (6)    // shorter runs go one pixel at a time
__attribute__((noinline))
static void taps3x3_run(const int8_t *x, const int8_t *w, uint32_t n, uint32_t npix, uint32_t C, uint32_t row,
    uint32_t xstride, uint32_t off2, const mnn_rq_block_t *blk, int8_t *y) {
    const int right_only = blk->right_only, clamp = blk->lo != -128 || blk->hi != 127;
    const uint32_t lo4 = ((uint32_t)blk->lo & 0xff) * 0x01010101u, hi4 = ((uint32_t)blk->hi & 0xff) * 0x01010101u;
    uint32_t wk[18];
    for (uint32_t i = 0; i < n; i += 4, x += 4, w += 4, y += 4) {
        for (uint32_t t = 0; t < 9; t++) {
            const uint32_t wv = mnn_rd32(w + t * C);
            wk[2 * t] = mnn_sxtb16(wv);
            wk[2 * t + 1] = mnn_sxtb16_ror8(wv);
        }
        const int32_t b0 = (int32_t)blk->bias[i], b1 = (int32_t)blk->bias[i + 1];
        const int32_t b2 = (int32_t)blk->bias[i + 2], b3 = (int32_t)blk->bias[i + 3];
        const int8_t *xp = x;
        int8_t *yp = y;
        for (uint32_t p = npix; p; p--, xp += xstride, yp += C) {
            int32_t s0 = b0, s1 = b1, s2 = b2, s3 = b3;
            const int8_t *xr = xp;
            TAPK(mnn_rd32_v(xr), 0);
            TAPK(mnn_rd32_at(xr, C), 1);
            TAPK(mnn_rd32_at2(xr, C), 2);
            xr += row;
            TAPK(mnn_rd32_v(xr), 3);
            TAPK(mnn_rd32_at(xr, C), 4);
            TAPK(mnn_rd32_at2(xr, C), 5);
            xr += row;
            TAPK(mnn_rd32_v(xr), 6);
            TAPK(mnn_rd32_at(xr, C), 7);
            TAPK(mnn_rd32_at2(xr, C), 8);
            rq_store4(blk, i, s0, s1, s2, s3, right_only, clamp, lo4, hi4, yp);
        }
    }
}
#undef TAPK
#undef TAPV
#undef TAP
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
        #if MNN_DSP
        const int fast3x3 = g->k_h == 3 && g->k_w == 3 && g->dil_h == 1 && g->dil_w == 1 && n % 4 == 0;
        #endif
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
                    #if MNN_DSP
                    if (fast3x3 && ky1 > ky0 && kx1 > kx0) {
                        const uint32_t first = ((uint32_t)(iy0 + (int32_t)ky0) * g->in_w
                            + (uint32_t)(ix0 + (int32_t)kx0)) * C + c0;
                        const int8_t *w0 = a->weights + (ky0 * 3 + kx0) * C + c0;
                        if (ky1 - ky0 == 3 && kx1 - kx0 == 3) {
                            // the run of pixels whose windows are whole
                            uint32_t npix = 1;
                            while (ox + npix < g->out_w && ix0 + (int32_t)(npix * g->stride_w) + 2 < (int32_t)g->in_w) {
                                npix++;
                            }
                            if (npix >= RUN_MIN) {
                                taps3x3_run(xb + first, w0, n, npix, C, g->in_w * C, g->stride_w * C, offv, &blk, y);
                                mnn_work(mnn_sat_mul(npix - 1, n * 9));
                                ox += npix - 1;
                                y += (npix - 1) * C;
                            } else {
                                taps3x3(xb + first, w0, n, C, g->in_w * C, offv, &blk, y);
                            }
                        } else {
                            taps3x3_edge(xb + first, w0, n, ky1 - ky0, kx1 - kx0, C, g->in_w * C, offv, &blk, y);
                        }
                        continue;
                    }
                    #endif
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
