// 2-D convolution, 16x8 (CONV_2D_S16): NHWC int16 input, int8 weights
// [out_c, k_h, k_w, in_c / groups], any stride, dilation, padding and group
// count; int64 (or wrapping int32) sums requantized per channel to int16
// (mnn_s16.h). Taps outside the input are skipped (the zero point is 0).
//
// Output channels in blocks of CONV_BLOCK (their requantization prepared
// once per block); for each output pixel the channels go in pairs, each tap
// inside the input adding one run of in_c / groups values to both sums, the
// inputs read once for the two weight rows (mnn_dot2_s16). No scratch.
//
// With the DSP extension (conv_dsp): two output channels times two output
// pixels (neighbours in a row) at a time, over the window's taps inside the
// input: the taps both pixels have inside at once (dot22), the others pixel
// by pixel (dot12); with one group and no horizontal dilation a kernel row's
// taps are one run of consecutive values. The inner loop takes four values
// of each run a step: the int16 pairs (x0, x1), (x2, x3) reordered by PKHBT
// and PKHTB to (x0, x2), (x1, x3), the order SXTB16 gives a word of int8
// weights in, then SMLAD: 16 MACs in 22 instructions (assembly, two steps a
// loop pass). The sums are int32; with int64 sums (acc64) they go into the
// int64 totals before 512 products (511 * 2^22 < 2^31), so they never wrap;
// a sum that stayed int32 is requantized by mnn_s16_out32 (one SMLAL and a
// shift of its high word). No scratch.
#include "mnn_s16.h"

#define CONV_BLOCK 16

#if MNN_DSP

// One step of dot22: four values of each pixel reordered, then each weight
// row's word sign-extended and met by both pixels. 22 instructions.
#define DOT22_STEP \
    "ldr %[p], [%[xa], #4]\n\t" \
    "ldr %[q], [%[xa]], #8\n\t" \
    "pkhbt %[a02], %[q], %[p], lsl #16\n\t" \
    "pkhtb %[q], %[p], %[q], asr #16\n\t" \
    "ldr %[p], [%[xb], #4]\n\t" \
    "ldr %[r], [%[xb]], #8\n\t" \
    "pkhbt %[b02], %[r], %[p], lsl #16\n\t" \
    "pkhtb %[r], %[p], %[r], asr #16\n\t" \
    "ldr %[p], [%[w0]], #4\n\t" \
    "sxtb16 %[t], %[p]\n\t" \
    "sxtb16 %[p], %[p], ror #8\n\t" \
    "smlad %[s0], %[a02], %[t], %[s0]\n\t" \
    "smlad %[s0], %[q], %[p], %[s0]\n\t" \
    "smlad %[s2], %[b02], %[t], %[s2]\n\t" \
    "smlad %[s2], %[r], %[p], %[s2]\n\t" \
    "ldr %[p], [%[w0], %[k]]\n\t" \
    "sxtb16 %[t], %[p]\n\t" \
    "sxtb16 %[p], %[p], ror #8\n\t" \
    "smlad %[s1], %[a02], %[t], %[s1]\n\t" \
    "smlad %[s1], %[q], %[p], %[s1]\n\t" \
    "smlad %[s3], %[b02], %[t], %[s3]\n\t" \
    "smlad %[s3], %[r], %[p], %[s3]\n\t"

// s[0] += xa . w0, s[1] += xa . w1, s[2] += xb . w0, s[3] += xb . w1 over
// n values (wrapping int32); w1 - w0 is d. Eight values a loop pass (one
// group of four first when n % 8 >= 4), the last n % 4 in C.
__attribute__((noinline))
static void dot22(const int16_t *xa, const int16_t *xb, const int8_t *w0, uint32_t d, uint32_t n, int32_t *s) {
    int32_t s0 = s[0], s1 = s[1], s2 = s[2], s3 = s[3];
    const int8_t *const w_end = w0 + (n & ~7u);
    const uint32_t k = d - 4;       // w1's word after w0's post-increment
    uint32_t p, q, r, t, a02, b02;
    if (n & 4) {
        __asm__ volatile (
            DOT22_STEP
            : [s0] "+r" (s0), [s1] "+r" (s1), [s2] "+r" (s2), [s3] "+r" (s3), [xa] "+r" (xa), [xb] "+r" (xb),
            [w0] "+r" (w0), [p] "=&r" (p), [q] "=&r" (q), [r] "=&r" (r), [t] "=&r" (t), [a02] "=&r" (a02),
            [b02] "=&r" (b02)
            : [k] "r" (k)
            : "memory");
    }
    if (n >= 8) {
        const int8_t *const end = w_end + (n & 4);
        __asm__ volatile (
            "1:\n\t"
            DOT22_STEP
            DOT22_STEP
            "ldr %[p], %[end]\n\t"
            "cmp %[w0], %[p]\n\t"
            "bne 1b\n\t"
            : [s0] "+r" (s0), [s1] "+r" (s1), [s2] "+r" (s2), [s3] "+r" (s3), [xa] "+r" (xa), [xb] "+r" (xb),
            [w0] "+r" (w0), [p] "=&r" (p), [q] "=&r" (q), [r] "=&r" (r), [t] "=&r" (t), [a02] "=&r" (a02),
            [b02] "=&r" (b02)
            : [k] "r" (k), [end] "m" (end)
            : "memory", "cc");
    }
    const int8_t *w1 = w0 + d;
    for (uint32_t i = 0; i < (n & 3); i++) {
        s0 = (int32_t)((uint32_t)s0 + (uint32_t)(xa[i] * w0[i]));
        s1 = (int32_t)((uint32_t)s1 + (uint32_t)(xa[i] * w1[i]));
        s2 = (int32_t)((uint32_t)s2 + (uint32_t)(xb[i] * w0[i]));
        s3 = (int32_t)((uint32_t)s3 + (uint32_t)(xb[i] * w1[i]));
    }
    s[0] = s0;
    s[1] = s1;
    s[2] = s2;
    s[3] = s3;
}

// s[0] += x . w0, s[1] += x . w1 over n values.
__attribute__((noinline))
static void dot12(const int16_t *x, const int8_t *w0, const int8_t *w1, uint32_t n, int32_t *s) {
    int32_t s0 = s[0], s1 = s[1];
    for (const int16_t *end = x + (n & ~3u); x != end; x += 4, w0 += 4, w1 += 4) {
        const uint32_t p = mnn_rd32(x), q = mnn_rd32(x + 2);
        const uint32_t x02 = mnn_pk_lo(p, q), x13 = mnn_pk_hi(p, q);
        const uint32_t u = mnn_rd32(w0), v = mnn_rd32(w1);
        s0 = mnn_smlad(x02, mnn_sxtb16(u), s0);
        s0 = mnn_smlad(x13, mnn_sxtb16_ror8(u), s0);
        s1 = mnn_smlad(x02, mnn_sxtb16(v), s1);
        s1 = mnn_smlad(x13, mnn_sxtb16_ror8(v), s1);
    }
    for (uint32_t i = 0; i < (n & 3); i++) {
        s0 = (int32_t)((uint32_t)s0 + (uint32_t)(x[i] * w0[i]));
        s1 = (int32_t)((uint32_t)s1 + (uint32_t)(x[i] * w1[i]));
    }
    s[0] = s0;
    s[1] = s1;
}

// One block of output channels at one pixel pair: the channel pairs (a
// channel without a partner in its group pairs with itself), their int32
// sums s (per pair: A.w0, A.w1, B.w0, B.w1) and, with int64 sums, totals t
// taking the int32 sums before they could hold 512 products.
typedef struct {
    const int8_t *w;
    uint32_t K, dx, np, count;
    int acc64, flushed;
    uint32_t oc[CONV_BLOCK], xc[CONV_BLOCK];
    uint8_t two[CONV_BLOCK];
    int32_t s[4 * CONV_BLOCK];
    int64_t t[4 * CONV_BLOCK];
} block_t;

// n consecutive values of every pair's input channels from x (pixel A's
// input, or pixel B's when who is 2; pixel B's is pixel A's plus dx) and of
// the pairs' weight rows from woff; who: 0 both pixels, 1 pixel A, 2 pixel B.
static void block_run(block_t *k, const int16_t *x, uint32_t woff, uint32_t n, int who) {
    while (n) {
        const uint32_t m = n > 508 ? 508 : n;
        if (k->acc64 && k->count + m > 511) {
            for (uint32_t j = 0; j < 4 * k->np; j++) {
                k->t[j] = (k->flushed ? k->t[j] : 0) + k->s[j];
                k->s[j] = 0;
            }
            k->flushed = 1;
            k->count = 0;
        }
        k->count += m;
        for (uint32_t p = 0; p < k->np; p++) {
            const int8_t *w0 = k->w + k->oc[p] * k->K + woff, *w1 = k->two[p] ? w0 + k->K : w0;
            const int16_t *xp = x + k->xc[p];
            if (who == 0) {
                dot22(xp, xp + k->dx, w0, (uint32_t)(w1 - w0), m, k->s + 4 * p);
            } else {
                dot12(xp, w0, w1, m, k->s + 4 * p + (who == 2 ? 2 : 0));
            }
        }
        x += m;
        woff += m;
        n -= m;
    }
}

// Taps kx in [k0, k1) of kernel row ky (all inside the input for the
// pixels who names): row is the input row's first pixel, ix0 pixel A's
// first tap column (pixel B's is a stride further).
static void block_taps(block_t *k, const mnn_geom_t *g, const int16_t *row, int32_t ix0, uint32_t ky, uint32_t k0,
    uint32_t k1, int who, int merge) {
    if (k0 >= k1) {
        return;
    }
    const uint32_t cin = k->K / (g->k_h * g->k_w);
    const int32_t at = who == 2 ? (int32_t)g->stride_w : 0;
    const int16_t *x = row + (uint32_t)(ix0 + at + (int32_t)(k0 * g->dil_w)) * g->in_c;
    const uint32_t woff = (ky * g->k_w + k0) * cin;
    if (merge) {
        block_run(k, x, woff, (k1 - k0) * cin, who);
        return;
    }
    for (uint32_t kx = k0; kx < k1; kx++, x += g->dil_w * g->in_c) {
        block_run(k, x, woff + (kx - k0) * cin, cin, who);
    }
}

// The output of a sum: int32 part s, plus the total t if the block flushed.
static inline int16_t out_value(const block_t *k, const mnn_s16_rq_t *r, int32_t s, int64_t t, int32_t lo,
    int32_t hi) {
    if (!k->acc64) {
        return mnn_s16_out(r, 0, s, lo, hi);
    }
    if (!k->flushed) {
        return mnn_s16_out32(r, s, lo, hi);
    }
    return mnn_s16_round(r->b + (t + s) * r->m16, r->t, lo, hi);
}

// The block's outputs at pixel A (y) and, when dy is not 0, pixel B (y + dy).
__attribute__((noinline))
static void outputs(const block_t *k, const mnn_s16_rq_t *rq, int16_t *y, uint32_t dy, int32_t lo, int32_t hi) {
    const int fast = k->acc64 && !k->flushed;
    for (uint32_t p = 0; p < k->np; p++) {
        const int32_t *s = k->s + 4 * p;
        const int64_t *t = k->t + 4 * p;
        const uint32_t n = k->two[p] ? 2 : 1;
        int16_t *yp = y + k->oc[p];
        for (uint32_t j = 0; j < n; j++, rq++) {
            if (fast) {
                yp[j] = mnn_s16_out32(rq, s[j], lo, hi);
                if (dy) {
                    yp[dy + j] = mnn_s16_out32(rq, s[2 + j], lo, hi);
                }
            } else {
                yp[j] = out_value(k, rq, s[j], t[j], lo, hi);
                if (dy) {
                    yp[dy + j] = out_value(k, rq, s[2 + j], t[2 + j], lo, hi);
                }
            }
        }
    }
}

static void conv_dsp(const mnn_conv_s16_args_t *a) {
    const mnn_geom_t *g = &a->g;
    const uint32_t cin = g->in_c / a->groups, per_group = g->out_c / a->groups;
    const uint32_t kw = g->k_w, K = g->k_h * kw * cin;
    const int merge = a->groups == 1 && g->dil_w == 1;
    mnn_s16_rq_t rq[CONV_BLOCK];
    block_t k;
    k.w = a->weights;
    k.K = K;
    k.dx = g->stride_w * g->in_c;
    k.acc64 = a->acc64;
    for (uint32_t c0 = 0; c0 < g->out_c; c0 += CONV_BLOCK) {
        const uint32_t nb = g->out_c - c0 > CONV_BLOCK ? CONV_BLOCK : g->out_c - c0;
        k.np = 0;
        for (uint32_t i = 0; i < nb; ) {
            const uint32_t oc = c0 + i;
            const int two = i + 1 < nb && (oc + 1) / per_group == oc / per_group;
            k.oc[k.np] = oc;
            k.xc[k.np] = oc / per_group * cin;
            k.two[k.np++] = (uint8_t)two;
            i += two ? 2 : 1;
        }
        for (uint32_t i = 0; i < nb; i++) {
            rq[i] = mnn_s16_rq_prepare(a->bias, a->acc64, a->mult, a->shift, c0 + i, c0 + i);
        }
        mnn_pace_t pace;
        mnn_pace_init(&pace, mnn_sat_mul(2 * nb, K));
        int16_t *y = a->output;
        for (uint32_t b = 0; b < g->batches; b++) {
            const int16_t *xb = a->input + b * g->in_h * g->in_w * g->in_c;
            for (uint32_t oy = 0; oy < g->out_h; oy++) {
                const int32_t iy0 = (int32_t)(oy * g->stride_h) - g->pad_top;
                uint32_t ky0, ky1;
                mnn_s16_taps(iy0, g->dil_h, g->k_h, g->in_h, &ky0, &ky1);
                for (uint32_t ox = 0; ox < g->out_w; ox += 2) {
                    mnn_pace(&pace);
                    const int pair = ox + 1 < g->out_w;
                    const int32_t ix0 = (int32_t)(ox * g->stride_w) - g->pad_left;
                    uint32_t ka0, ka1, kb0 = 0, kb1 = 0;
                    mnn_s16_taps(ix0, g->dil_w, kw, g->in_w, &ka0, &ka1);
                    if (pair) {
                        mnn_s16_taps(ix0 + (int32_t)g->stride_w, g->dil_w, kw, g->in_w, &kb0, &kb1);
                    }
                    // the taps both pixels have inside, [j0, j1), and the rest of each pixel's
                    uint32_t j0 = ka0 > kb0 ? ka0 : kb0, j1 = ka1 < kb1 ? ka1 : kb1;
                    if (j0 >= j1) {
                        j0 = j1 = ka1;
                    }
                    const uint32_t a1 = ka1 < j0 ? ka1 : j0, a2 = ka0 > j1 ? ka0 : j1;
                    const uint32_t b1 = kb1 < j0 ? kb1 : j0, b2 = kb0 > j1 ? kb0 : j1;
                    memset(k.s, 0, 4 * k.np * sizeof(k.s[0]));
                    k.count = 0;
                    k.flushed = 0;
                    for (uint32_t ky = ky0; ky < ky1; ky++) {
                        const int16_t *row = xb + (uint32_t)(iy0 + (int32_t)(ky * g->dil_h)) * g->in_w * g->in_c;
                        block_taps(&k, g, row, ix0, ky, j0, j1, 0, merge);
                        block_taps(&k, g, row, ix0, ky, ka0, a1, 1, merge);
                        block_taps(&k, g, row, ix0, ky, a2, ka1, 1, merge);
                        block_taps(&k, g, row, ix0, ky, kb0, b1, 2, merge);
                        block_taps(&k, g, row, ix0, ky, b2, kb1, 2, merge);
                    }
                    outputs(&k, rq, y, pair ? g->out_c : 0, a->act_min, a->act_max);
                    y += (pair ? 2 : 1) * g->out_c;
                }
            }
        }
    }
}
#endif

void mnn_conv_s16(const mnn_conv_s16_args_t *a) {
    #if MNN_DSP
    MNN_COUNT_VARIANT(CONV_S16_DSP);
    conv_dsp(a);
    #else
    const mnn_geom_t *g = &a->g;
    const uint32_t cin = g->in_c / a->groups, per_group = g->out_c / a->groups;
    const uint32_t K = g->k_h * g->k_w * cin;
    const int acc64 = a->acc64;
    MNN_COUNT_VARIANT(CONV_S16);
    mnn_s16_rq_t rq[CONV_BLOCK];
    for (uint32_t c0 = 0; c0 < g->out_c; c0 += CONV_BLOCK) {
        const uint32_t nb = g->out_c - c0 > CONV_BLOCK ? CONV_BLOCK : g->out_c - c0;
        for (uint32_t i = 0; i < nb; i++) {
            rq[i] = mnn_s16_rq_prepare(a->bias, acc64, a->mult, a->shift, c0 + i, c0 + i);
        }
        mnn_pace_t pace;
        mnn_pace_init(&pace, mnn_sat_mul(nb, K));
        int16_t *y = a->output;
        for (uint32_t b = 0; b < g->batches; b++) {
            const int16_t *xb = a->input + b * g->in_h * g->in_w * g->in_c;
            for (uint32_t oy = 0; oy < g->out_h; oy++) {
                const int32_t iy0 = (int32_t)(oy * g->stride_h) - g->pad_top;
                for (uint32_t ox = 0; ox < g->out_w; ox++, y += g->out_c) {
                    const int32_t ix0 = (int32_t)(ox * g->stride_w) - g->pad_left;
                    mnn_pace(&pace);
                    for (uint32_t i = 0; i < nb; ) {
                        const uint32_t oc = c0 + i;
                        // a pair shares its input channels: both in one group
                        const int two = i + 1 < nb && (oc + 1) / per_group == oc / per_group;
                        const uint32_t xc = oc / per_group * cin;
                        const int8_t *w0 = a->weights + oc * K, *w1 = two ? w0 + K : w0;
                        int64_t t0 = 0, t1 = 0;
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
                                const int16_t *x = xb + ((uint32_t)iy * g->in_w + (uint32_t)ix) * g->in_c + xc;
                                const uint32_t wo = (ky * g->k_w + kx) * cin;
                                mnn_dot2_s16(x, w0 + wo, w1 + wo, cin, &t0, &t1);
                            }
                        }
                        y[oc] = mnn_s16_out(&rq[i], acc64, t0, a->act_min, a->act_max);
                        if (two) {
                            y[oc + 1] = mnn_s16_out(&rq[i + 1], acc64, t1, a->act_min, a->act_max);
                        }
                        i += two ? 2 : 1;
                    }
                }
            }
        }
    }
    #endif
}
