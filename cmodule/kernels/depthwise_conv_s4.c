// Depthwise convolution with int4 weights (DEPTHWISE_CONV_2D_S4): the int8
// depthwise arithmetic (any depth multiplier, kernel size, stride, dilation
// and padding; per-channel requantization), the weights [1, k_h, k_w, out_c]
// read as packed nibbles in place: packed along the channel axis, so one
// tap's channels are consecutive nibbles.
//
// Output channels in blocks of MNN_RQ_BLOCK; for each output pixel the
// window is clipped to the input once. Depth multiplier 1: with the DSP
// extension and an even channel count, eight channels at a time over all
// the taps in registers: a word of eight weights becomes four pairs of 16
// times the values (two masks, four SXTB16; see fully_connected_s4.c) in
// the lanes (0, 4), (2, 6), (1, 5), (3, 7), and two words of inputs with the
// offset added (SXTAB16) the lanes (0, 2), (1, 3), (4, 6), (5, 7), which
// SMLABB, SMLATB, SMLABT and SMLATT pair channel by channel: 22 instructions
// for eight multiply-accumulates; kernels of at most PRE_TAPS taps instead
// take four channels at a time from weights unpacked once per block, every
// window in one assembly loop over a table of its taps' inputs (taps
// outside the input reading the zero point), eleven instructions for four
// multiply-accumulates (groups_flat). Otherwise (and for the channels left) each
// tap adds to the block's sums, two channels per weight byte; any depth
// multiplier: one value at a time.
#include <stddef.h>
#include <string.h>
#include "mnn_kernels.h"
#include "mnn_fixedpoint.h"
#include "mnn_simd.h"

// sums[i] += (x[i] + off) * w4[start + i] for i < n (depth multiplier 1).
static void tap_mult1(uint32_t *sums, const int8_t *x, const uint8_t *w, uint32_t start, uint32_t n, int32_t off) {
    uint32_t i = 0;
    if (start & 1) {
        sums[0] += (uint32_t)((x[0] + off) * mnn_s4_at(w, start));
        i = 1;
    }
    const uint8_t *p = w + ((start + i) >> 1);
    for (; i + 2 <= n; i += 2, p++) {
        const uint32_t b = *p;
        sums[i] += (uint32_t)((x[i] + off) * ((int32_t)(b << 28) >> 28));
        sums[i + 1] += (uint32_t)((x[i + 1] + off) * ((int32_t)(b << 24) >> 28));
    }
    if (i < n) {
        sums[i] += (uint32_t)((x[i] + off) * ((int32_t)((uint32_t)*p << 28) >> 28));
    }
}

// First and one-past-last tap k with 0 <= i0 + k * dil < n.
static inline void taps_inside(int32_t i0, uint32_t dil, uint32_t k, uint32_t n, uint32_t *lo, uint32_t *hi) {
    uint32_t first = 0, last = k;
    if (i0 < 0) {
        first = ((uint32_t)(-i0) + dil - 1) / dil;
    }
    const int32_t over = i0 + (int32_t)((k - 1) * dil) - (int32_t)(n - 1);
    if (over > 0) {
        const uint32_t cut = ((uint32_t)over + dil - 1) / dil;
        last = cut < k ? k - cut : 0;
    }
    *lo = first;
    *hi = last > first ? last : first;
}

#if MNN_DSP
// Eight channels of one output pixel over ny x nx taps: x at the first tap's
// first channel (input rows xrow bytes apart, taps xstep apart), w at its
// byte of weights (rows wrow bytes apart, taps wstep apart); out[i] = the
// sum of (x + offset) * w of channel i. The sums of 16 times the products
// stay exact in int32 for up to 2^14 taps (the caller's bound).
__attribute__((noinline))
static void taps8_dsp(const int8_t *x, const uint8_t *w, uint32_t ny, uint32_t nx, uint32_t xrow, uint32_t xstep,
    uint32_t wrow, uint32_t wstep, uint32_t off2, uint32_t *out) {
    int32_t s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0;
    for (; ny; ny--, x += xrow, w += wrow) {
        const int8_t *xp = x;
        const uint8_t *wp = w;
        for (uint32_t k = nx; k; k--, xp += xstep, wp += wstep) {
            const uint32_t wv = mnn_rd32(wp), ev = (wv << 4) & 0xf0f0f0f0u, ov = wv & 0xf0f0f0f0u;
            const uint32_t w04 = mnn_sxtb16(ev), w26 = mnn_sxtb16_ror8(ev);
            const uint32_t w15 = mnn_sxtb16(ov), w37 = mnn_sxtb16_ror8(ov);
            const uint32_t xa = mnn_rd32(xp), xb = mnn_rd32(xp + 4);
            const uint32_t x02 = mnn_sxtab16(off2, xa), x13 = mnn_sxtab16_ror8(off2, xa);
            const uint32_t x46 = mnn_sxtab16(off2, xb), x57 = mnn_sxtab16_ror8(off2, xb);
            s0 = mnn_smlabb(x02, w04, s0);
            s2 = mnn_smlatb(x02, w26, s2);
            s4 = mnn_smlabt(x46, w04, s4);
            s6 = mnn_smlatt(x46, w26, s6);
            s1 = mnn_smlabb(x13, w15, s1);
            s3 = mnn_smlatb(x13, w37, s3);
            s5 = mnn_smlabt(x57, w15, s5);
            s7 = mnn_smlatt(x57, w37, s7);
        }
    }
    out[0] = (uint32_t)(s0 >> 4);
    out[1] = (uint32_t)(s1 >> 4);
    out[2] = (uint32_t)(s2 >> 4);
    out[3] = (uint32_t)(s3 >> 4);
    out[4] = (uint32_t)(s4 >> 4);
    out[5] = (uint32_t)(s5 >> 4);
    out[6] = (uint32_t)(s6 >> 4);
    out[7] = (uint32_t)(s7 >> 4);
}

// Kernels of at most PRE_TAPS taps (the fast case): a block's weights
// unpacked once, per group of four channels and tap the int16 pairs
// (w0, w2), (w1, w3), and each window's taps in one flat loop over the
// taps' input pointers, a tap outside the input pointing at values equal
// to the zero point (-offset), whose products are 0 as the skipped taps'.
#define PRE_TAPS 9

// out[4q + i] = the sum of (x + offset) * w of channel 4q + i over a
// window's taps for q < ng: xp the taps' inputs (the block's channel 0),
// ended by NULL; w the unpacked weights (PRE_TAPS taps per group). A tap:
// one word of inputs widened with the offset by two SXTAB16, the weights
// by one LDRD, four SMLAxy; eleven instructions for four MACs.
__attribute__((noinline))
static void groups_flat(const int8_t *const *xp, const uint32_t *w, uint32_t ng, uint32_t off2, uint32_t *out) {
    for (uint32_t c = 0; c < 4 * ng; c += 4, w += 2 * PRE_TAPS, out += 4) {
        int32_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        const int8_t *const *p = xp;
        const uint32_t *wp = w;
        uint32_t t, x02, x13, we, wo;
        __asm__ volatile (
            "1:\n\t"
            "ldr %[t], [%[p]], #4\n\t"
            "cbz %[t], 2f\n\t"
            "ldr %[t], [%[t], %[c]]\n\t"
            "ldrd %[we], %[wo], [%[wp]], #8\n\t"
            "sxtab16 %[x02], %[off2], %[t]\n\t"
            "sxtab16 %[x13], %[off2], %[t], ror #8\n\t"
            "smlabb %[s0], %[x02], %[we], %[s0]\n\t"
            "smlatt %[s2], %[x02], %[we], %[s2]\n\t"
            "smlabb %[s1], %[x13], %[wo], %[s1]\n\t"
            "smlatt %[s3], %[x13], %[wo], %[s3]\n\t"
            "b 1b\n\t"
            "2:\n\t"
            : [s0] "+r" (s0), [s1] "+r" (s1), [s2] "+r" (s2), [s3] "+r" (s3), [p] "+r" (p), [wp] "+r" (wp),
            [t] "=&l" (t), [x02] "=&r" (x02), [x13] "=&r" (x13), [we] "=&r" (we), [wo] "=&r" (wo)
            : [c] "r" (c), [off2] "r" (off2)
            : "memory");
        out[0] = (uint32_t)s0;
        out[1] = (uint32_t)s1;
        out[2] = (uint32_t)s2;
        out[3] = (uint32_t)s3;
    }
}
#endif

void mnn_depthwise_conv_s4(const mnn_conv_args_t *a) {
    const mnn_geom_t *g = &a->g;
    const uint8_t *w = (const uint8_t *)a->weights;
    const uint32_t dm = a->depth_mult, C = g->out_c;
    const int32_t off = a->input_offset;
    #if MNN_DSP
    // eight channels on bytes of weights, sums of 16 times the products exact
    const int fast = dm == 1 && C % 2 == 0 && (uint64_t)g->k_h * g->k_w <= (1u << 14);
    const uint32_t offv = ((uint32_t)off & 0xffff) | ((uint32_t)off << 16);
    if (fast) {
        MNN_COUNT_VARIANT(DEPTHWISE_S4_DSP);
    } else
    #endif
    {
        MNN_COUNT_VARIANT(DEPTHWISE_S4);
    }
    mnn_rq_block_t blk;
    uint32_t sums[MNN_RQ_BLOCK];
    #if MNN_DSP
    const uint32_t taps = g->k_h * g->k_w;
    const int flat = fast && taps <= PRE_TAPS;
    uint32_t wx[MNN_RQ_BLOCK / 4][PRE_TAPS][2], xoff[PRE_TAPS];
    const int8_t *xp[PRE_TAPS + 1];
    int8_t pad[MNN_RQ_BLOCK];
    if (flat) {
        memset(pad, -off, sizeof(pad));
        for (uint32_t t = 0; t < taps; t++) {
            xoff[t] = ((t / g->k_w) * g->dil_h * g->in_w + (t % g->k_w) * g->dil_w) * g->in_c;
        }
    }
    #endif
    for (uint32_t c0 = 0; c0 < C; c0 += MNN_RQ_BLOCK) {
        const uint32_t n = C - c0 > MNN_RQ_BLOCK ? MNN_RQ_BLOCK : C - c0;
        mnn_rq_block_prepare(&blk, a->bias, a->mult, a->shift, c0, n, a->output_offset, a->act_min, a->act_max);
        #if MNN_DSP
        if (flat) {
            for (uint32_t q = 0; q < n / 4; q++) {
                for (uint32_t t = 0; t < taps; t++) {
                    const uint32_t k = t * C + c0 + 4 * q;
                    wx[q][t][0] = ((uint32_t)mnn_s4_at(w, k) & 0xffff) | ((uint32_t)mnn_s4_at(w, k + 2) << 16);
                    wx[q][t][1] = ((uint32_t)mnn_s4_at(w, k + 1) & 0xffff) | ((uint32_t)mnn_s4_at(w, k + 3) << 16);
                }
            }
        }
        #endif
        mnn_pace_t pace;
        mnn_pace_init(&pace, mnn_sat_mul(n, g->k_h * g->k_w));
        int8_t *y = a->output + c0;
        for (uint32_t b = 0; b < g->batches; b++) {
            const int8_t *xb = a->input + b * g->in_h * g->in_w * g->in_c;
            for (uint32_t oy = 0; oy < g->out_h; oy++) {
                const int32_t iy0 = (int32_t)(oy * g->stride_h) - g->pad_top;
                for (uint32_t ox = 0; ox < g->out_w; ox++, y += C) {
                    const int32_t ix0 = (int32_t)(ox * g->stride_w) - g->pad_left;
                    mnn_pace(&pace);
                    uint32_t ky0, ky1, kx0, kx1, i = 0;
                    taps_inside(iy0, g->dil_h, g->k_h, g->in_h, &ky0, &ky1);
                    taps_inside(ix0, g->dil_w, g->k_w, g->in_w, &kx0, &kx1);
                    // the window's first tap inside the input (if any), and its weights
                    const int8_t *x0 = ky1 == ky0 || kx1 == kx0 ? xb : xb + ((uint32_t)(iy0 + (int32_t)(ky0 * g->dil_h))
                        * g->in_w + (uint32_t)(ix0 + (int32_t)(kx0 * g->dil_w))) * g->in_c;
                    const uint32_t w0 = (ky0 * g->k_w + kx0) * C + c0;
                    #if MNN_DSP
                    if (flat && n >= 4) {
                        if (ky0 == 0 && ky1 == g->k_h && kx0 == 0 && kx1 == g->k_w) {
                            for (uint32_t t = 0; t < taps; t++) {
                                xp[t] = x0 + c0 + xoff[t];
                            }
                        } else {
                            for (uint32_t ky = 0, t = 0; ky < g->k_h; ky++) {
                                const int32_t iy = iy0 + (int32_t)(ky * g->dil_h);
                                for (uint32_t kx = 0; kx < g->k_w; kx++, t++) {
                                    const int32_t ix = ix0 + (int32_t)(kx * g->dil_w);
                                    xp[t] = ky >= ky0 && ky < ky1 && kx >= kx0 && kx < kx1
                                        ? xb + ((uint32_t)iy * g->in_w + (uint32_t)ix) * g->in_c + c0 : pad;
                                }
                            }
                        }
                        xp[taps] = NULL;
                        groups_flat(xp, wx[0][0], n / 4, offv, sums);
                        i = n & ~3u;
                    }
                    if (fast && ky1 > ky0 && kx1 > kx0) {
                        for (; i + 8 <= n; i += 8) {
                            taps8_dsp(x0 + c0 + i, w + (w0 + i) / 2, ky1 - ky0, kx1 - kx0, g->dil_h * g->in_w * g->in_c,
                                g->dil_w * g->in_c, g->k_w * C / 2, C / 2, offv, sums + i);
                        }
                    }
                    #endif
                    for (uint32_t j = i; j < n; j++) {
                        sums[j] = 0;
                    }
                    for (uint32_t ky = ky0; ky < ky1 && i < n; ky++) {
                        for (uint32_t kx = kx0; kx < kx1; kx++) {
                            const int8_t *x = x0 + ((ky - ky0) * g->dil_h * g->in_w + (kx - kx0) * g->dil_w) * g->in_c;
                            const uint32_t start = w0 + ((ky - ky0) * g->k_w + (kx - kx0)) * C;
                            if (dm == 1) {
                                tap_mult1(sums + i, x + c0 + i, w, start + i, n - i, off);
                            } else {
                                for (uint32_t j = 0; j < n; j++) {
                                    sums[j] += (uint32_t)((x[(c0 + j) / dm] + off) * mnn_s4_at(w, start + j));
                                }
                            }
                        }
                    }
                    mnn_rq_block_apply(&blk, sums, 1, n, y, 1, 1);
                }
            }
        }
    }
}
