// Depthwise convolution, 16x8 (DEPTHWISE_CONV_2D_S16): NHWC int16 input,
// int8 weights [1, k_h, k_w, out_c], out_c = in_c * depth_mult, any stride,
// dilation and padding; int64 (or wrapping int32) sums requantized per
// channel to int16 (mnn_s16.h). Taps outside the input are skipped.
//
// Output channels in blocks of DW_BLOCK: for each output pixel the taps
// inside the input are visited once and each adds one product to every
// channel of the block (the channels of a tap are consecutive in both the
// input, with depth multiplier 1, and the weights). No scratch.
//
// With the DSP extension, depth multiplier 1 and at most 511 taps (int32
// sums exact: 511 * 2^22 < 2^31) or int32 sums (acc64 0): four channels at
// a time, each tap two words of int16 inputs (x0, x1), (x2, x3) and one of
// four int8 weights sign-extended by SXTB16 to (w0, w2), (w1, w3), which
// SMLABB, SMLATB, SMLABT and SMLATT pair channel by channel. Kernels of at
// most PRE_TAPS taps: the block's weights extended once, and every window
// in one assembly loop over a table of its taps' inputs (groups_flat, ten
// instructions a tap), the taps outside the input reading zeros; larger
// kernels over the taps inside the input (taps4). The channels left over
// (C % 4) as above; requantization by mnn_s16_out32.
#include <stddef.h>
#include "mnn_s16.h"

#define DW_BLOCK 16

#if MNN_DSP
// s[i] += sum of x[i] * w[i] over ny x nx taps for i < 4: x at the first
// tap's first channel, taps xstep values apart and rows xrow apart; w
// likewise (wstep, wrow). Wrapping int32 sums.
__attribute__((noinline))
static void taps4(const int16_t *x, const int8_t *w, uint32_t ny, uint32_t nx, uint32_t xrow, uint32_t xstep,
    uint32_t wrow, uint32_t wstep, int32_t *s) {
    int32_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (; ny; ny--, x += xrow, w += wrow) {
        const int16_t *xp = x;
        const int8_t *wp = w;
        for (uint32_t k = nx; k; k--, xp += xstep, wp += wstep) {
            const uint32_t x01 = mnn_rd32(xp), x23 = mnn_rd32(xp + 2), wv = mnn_rd32(wp);
            const uint32_t w02 = mnn_sxtb16(wv), w13 = mnn_sxtb16_ror8(wv);
            s0 = mnn_smlabb(x01, w02, s0);
            s1 = mnn_smlatb(x01, w13, s1);
            s2 = mnn_smlabt(x23, w02, s2);
            s3 = mnn_smlatt(x23, w13, s3);
        }
    }
    s[0] = s0;
    s[1] = s1;
    s[2] = s2;
    s[3] = s3;
}

// Kernels of at most PRE_TAPS taps: a block's weights sign-extended once,
// per group of four channels and tap the words (w0, w2), (w1, w3), and each
// window's taps in one flat loop over the taps' input pointers, a tap
// outside the input pointing at zeros.
#define PRE_TAPS 9

static const int16_t zeros[DW_BLOCK];

// s[4q + i] = the sum of channel 4q + i's products over a window's taps
// for q < ng: xp the taps' inputs (channel 0 of the block), ended by NULL,
// w the extended weights (PRE_TAPS taps per group). Ten instructions a tap.
__attribute__((noinline))
static void groups_flat(const int16_t *const *xp, const uint32_t *w, uint32_t ng, int32_t *s) {
    for (uint32_t off = 0; off < 8 * ng; off += 8, w += 2 * PRE_TAPS, s += 4) {
        int32_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        const int16_t *const *p = xp;
        const uint32_t *wp = w;
        const uint32_t off4 = off + 4;
        uint32_t t, xa, xb, we, wo;
        __asm__ volatile (
            "1:\n\t"
            "ldr %[t], [%[p]], #4\n\t"
            "cbz %[t], 2f\n\t"
            "ldr %[xa], [%[t], %[off]]\n\t"
            "ldr %[xb], [%[t], %[off4]]\n\t"
            "ldrd %[we], %[wo], [%[wp]], #8\n\t"
            "smlabb %[s0], %[xa], %[we], %[s0]\n\t"
            "smlatb %[s1], %[xa], %[wo], %[s1]\n\t"
            "smlabt %[s2], %[xb], %[we], %[s2]\n\t"
            "smlatt %[s3], %[xb], %[wo], %[s3]\n\t"
            "b 1b\n\t"
            "2:\n\t"
            : [s0] "+r" (s0), [s1] "+r" (s1), [s2] "+r" (s2), [s3] "+r" (s3), [p] "+r" (p), [wp] "+r" (wp),
            [t] "=&l" (t), [xa] "=&r" (xa), [xb] "=&r" (xb), [we] "=&r" (we), [wo] "=&r" (wo)
            : [off] "r" (off), [off4] "r" (off4)
            : "memory");
        s[0] = s0;
        s[1] = s1;
        s[2] = s2;
        s[3] = s3;
    }
}

// The outputs of n sums.
__attribute__((noinline))
static void outputs(const mnn_s16_rq_t *rq, const int32_t *s, int16_t *y, uint32_t n, int acc64, int32_t lo,
    int32_t hi) {
    if (acc64) {
        for (uint32_t j = 0; j < n; j++) {
            y[j] = mnn_s16_out32(&rq[j], s[j], lo, hi);
        }
    } else {
        for (uint32_t j = 0; j < n; j++) {
            y[j] = mnn_s16_out(&rq[j], 0, s[j], lo, hi);
        }
    }
}

static void depthwise_dsp(const mnn_conv_s16_args_t *a) {
    const mnn_geom_t *g = &a->g;
    const uint32_t C = g->out_c;
    const int acc64 = a->acc64;
    const uint32_t taps = g->k_h * g->k_w;
    mnn_s16_rq_t rq[DW_BLOCK];
    int32_t s[DW_BLOCK];
    uint32_t wx[DW_BLOCK / 4][PRE_TAPS][2];
    const int16_t *xp[PRE_TAPS + 1];
    uint32_t xoff[PRE_TAPS];
    for (uint32_t t = 0; t < taps && t < PRE_TAPS; t++) {
        xoff[t] = ((t / g->k_w) * g->dil_h * g->in_w + (t % g->k_w) * g->dil_w) * C;
    }
    for (uint32_t c0 = 0; c0 < C; c0 += DW_BLOCK) {
        const uint32_t n = C - c0 > DW_BLOCK ? DW_BLOCK : C - c0;
        for (uint32_t i = 0; i < n; i++) {
            rq[i] = mnn_s16_rq_prepare(a->bias, acc64, a->mult, a->shift, c0 + i, c0 + i);
        }
        if (taps <= PRE_TAPS) {
            for (uint32_t q = 0; q < n / 4; q++) {
                for (uint32_t t = 0; t < taps; t++) {
                    const uint32_t v = mnn_rd32(a->weights + t * C + c0 + 4 * q);
                    wx[q][t][0] = mnn_sxtb16(v);
                    wx[q][t][1] = mnn_sxtb16_ror8(v);
                }
            }
        }
        mnn_pace_t pace;
        mnn_pace_init(&pace, mnn_sat_mul(n, taps));
        int16_t *y = a->output + c0;
        for (uint32_t b = 0; b < g->batches; b++) {
            const int16_t *xb = a->input + b * g->in_h * g->in_w * g->in_c + c0;
            for (uint32_t oy = 0; oy < g->out_h; oy++) {
                const int32_t iy0 = (int32_t)(oy * g->stride_h) - g->pad_top;
                uint32_t ky0, ky1;
                mnn_s16_taps(iy0, g->dil_h, g->k_h, g->in_h, &ky0, &ky1);
                for (uint32_t ox = 0; ox < g->out_w; ox++, y += C) {
                    const int32_t ix0 = (int32_t)(ox * g->stride_w) - g->pad_left;
                    mnn_pace(&pace);
                    uint32_t kx0, kx1;
                    mnn_s16_taps(ix0, g->dil_w, g->k_w, g->in_w, &kx0, &kx1);
                    const uint32_t ny = ky1 - ky0, nx = kx1 - kx0;
                    // the first tap inside the input (if any) and its weights
                    const int16_t *x = ny && nx ? xb + ((uint32_t)(iy0 + (int32_t)(ky0 * g->dil_h)) * g->in_w
                        + (uint32_t)(ix0 + (int32_t)(kx0 * g->dil_w))) * C : xb;
                    const int8_t *w = a->weights + (ky0 * g->k_w + kx0) * C + c0;
                    uint32_t i = 0;
                    if (taps <= PRE_TAPS && n >= 4 && ny == g->k_h && nx == g->k_w) {
                        for (uint32_t t = 0; t < taps; t++) {
                            xp[t] = x + xoff[t];
                        }
                        xp[taps] = NULL;
                        i = n & ~3u;
                        groups_flat(xp, wx[0][0], n / 4, s);
                    } else if (taps <= PRE_TAPS && n >= 4) {
                        for (uint32_t ky = 0, t = 0; ky < g->k_h; ky++) {
                            const int32_t iy = iy0 + (int32_t)(ky * g->dil_h);
                            for (uint32_t kx = 0; kx < g->k_w; kx++, t++) {
                                const int32_t ix = ix0 + (int32_t)(kx * g->dil_w);
                                xp[t] = ky >= ky0 && ky < ky1 && kx >= kx0 && kx < kx1
                                    ? xb + ((uint32_t)iy * g->in_w + (uint32_t)ix) * C : zeros;
                            }
                        }
                        xp[taps] = NULL;
                        i = n & ~3u;
                        groups_flat(xp, wx[0][0], n / 4, s);
                    }
                    if (ny && nx) {
                        for (; i + 4 <= n; i += 4) {
                            taps4(x + i, w + i, ny, nx, g->dil_h * g->in_w * C, g->dil_w * C, g->k_w * C, C, s + i);
                        }
                        for (uint32_t j = i; j < n; j++) {
                            int32_t v = 0;
                            for (uint32_t ky = 0; ky < ny; ky++) {
                                for (uint32_t kx = 0; kx < nx; kx++) {
                                    v = (int32_t)((uint32_t)v + (uint32_t)(x[(ky * g->dil_h * g->in_w + kx * g->dil_w)
                                        * C + j] * w[(ky * g->k_w + kx) * C + j]));
                                }
                            }
                            s[j] = v;
                        }
                    } else {
                        memset(s + i, 0, (n - i) * sizeof(s[0]));
                    }
                    outputs(rq, s, y, n, acc64, a->act_min, a->act_max);
                }
            }
        }
    }
}
#endif

void mnn_depthwise_conv_s16(const mnn_conv_s16_args_t *a) {
    const mnn_geom_t *g = &a->g;
    const uint32_t dm = a->depth_mult, C = g->out_c;
    const int acc64 = a->acc64;
    #if MNN_DSP
    if (dm == 1 && (!acc64 || (uint64_t)g->k_h * g->k_w <= 511)) {
        MNN_COUNT_VARIANT(DEPTHWISE_S16_DSP);
        depthwise_dsp(a);
        return;
    }
    #endif
    MNN_COUNT_VARIANT(DEPTHWISE_S16);
    mnn_s16_rq_t rq[DW_BLOCK];
    int64_t sums[DW_BLOCK];
    for (uint32_t c0 = 0; c0 < C; c0 += DW_BLOCK) {
        const uint32_t n = C - c0 > DW_BLOCK ? DW_BLOCK : C - c0;
        for (uint32_t i = 0; i < n; i++) {
            rq[i] = mnn_s16_rq_prepare(a->bias, acc64, a->mult, a->shift, c0 + i, c0 + i);
        }
        mnn_pace_t pace;
        mnn_pace_init(&pace, mnn_sat_mul(n, g->k_h * g->k_w));
        int16_t *y = a->output + c0;
        for (uint32_t b = 0; b < g->batches; b++) {
            const int16_t *xb = a->input + b * g->in_h * g->in_w * g->in_c;
            for (uint32_t oy = 0; oy < g->out_h; oy++) {
                const int32_t iy0 = (int32_t)(oy * g->stride_h) - g->pad_top;
                for (uint32_t ox = 0; ox < g->out_w; ox++, y += C) {
                    const int32_t ix0 = (int32_t)(ox * g->stride_w) - g->pad_left;
                    mnn_pace(&pace);
                    for (uint32_t i = 0; i < n; i++) {
                        sums[i] = 0;
                    }
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
                            const int16_t *x = xb + ((uint32_t)iy * g->in_w + (uint32_t)ix) * g->in_c;
                            const int8_t *w = a->weights + (ky * g->k_w + kx) * C + c0;
                            if (dm == 1) {
                                x += c0;
                                for (uint32_t i = 0; i < n; i++) {
                                    sums[i] += x[i] * w[i];
                                }
                            } else {
                                for (uint32_t i = 0; i < n; i++) {
                                    sums[i] += x[(c0 + i) / dm] * w[i];
                                }
                            }
                        }
                    }
                    for (uint32_t i = 0; i < n; i++) {
                        y[i] = mnn_s16_out(&rq[i], acc64, sums[i], a->act_min, a->act_max);
                    }
                }
            }
        }
    }
}
