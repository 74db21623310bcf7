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
//   rectangles of output pixels (taps3x3_rect: the weights extracted once
//   per rectangle and four channels, the input offset folded into the
//   biases, then an assembly loop of 128 instructions a pixel, requantization
//   included), first the whole windows, and where every edge window is cut
//   by a single tap (SAME or VALID padding) the edges too, as up to eight
//   more rectangles whose windows are shifted back inside the input and
//   meet zero weights; what is left one pixel at a time (taps3x3 for whole
//   windows, taps3x3_edge for clipped ones).
// - any depth multiplier: one output value at a time.
#include "mnn_kernels.h"
#include "mnn_fixedpoint.h"
#include "mnn_simd.h"
#include <stddef.h>

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

// The mnn_rq_t fields rq4_sat's assembly reads.
_Static_assert(offsetof(mnn_rq_t, mult) == 0 && offsetof(mnn_rq_t, rs) == 8 && offsetof(mnn_rq_t, k_lo) == 12
    && offsetof(mnn_rq_t, k_hi) == 16 && sizeof(mnn_rq_t) == 20, "mnn_rq_t layout");

// Four sums requantized with the constants q[0..3] (all right shifts),
// plus the output offset, saturated to int8 and packed into a word (channel
// 0 in the low byte): mnn_rq_apply_right, in 10 or 11 instructions a channel.
static inline uint32_t rq4_sat(const mnn_rq_t *q, int32_t off, int32_t s0, int32_t s1, int32_t s2, int32_t s3) {
    uint32_t out, lo, hi, m;
    // k + s * mult - (s < 0 ? 2^31 : 0), its high word shifted right by rs
    #define MNN_RQ1(s, o_m, o_rs, o_k, dst, pack) \
    "ldr %[m], [%[q], #" #o_m "]\n\t" \
    "ldrd %[lo], %[hi], [%[q], #" #o_k "]\n\t" \
    "smlal %[lo], %[hi], %[" #s "], %[m]\n\t" \
    "and %[" #s "], %[" #s "], #0x80000000\n\t" \
    "ldr %[m], [%[q], #" #o_rs "]\n\t" \
    "subs %[lo], %[lo], %[" #s "]\n\t" \
    "sbc %[hi], %[hi], #0\n\t" \
    "asr %[hi], %[hi], %[m]\n\t" \
    "add %[hi], %[hi], %[off]\n\t" \
    "ssat %[" dst "], #8, %[hi]\n\t" \
    pack
    __asm__ (
        // channel 0's sign bits above its byte: the other three overwrite them
        MNN_RQ1(s0, 0, 8, 12, "out", "")
        MNN_RQ1(s1, 20, 28, 32, "hi", "bfi %[out], %[hi], #8, #8\n\t")
        MNN_RQ1(s2, 40, 48, 52, "hi", "bfi %[out], %[hi], #16, #8\n\t")
        MNN_RQ1(s3, 60, 68, 72, "hi", "bfi %[out], %[hi], #24, #8\n\t")
        : [out] "=&r" (out), [lo] "=&r" (lo), [hi] "=&r" (hi), [m] "=&r" (m),
        [s0] "+r" (s0), [s1] "+r" (s1), [s2] "+r" (s2), [s3] "+r" (s3)
        : [q] "r" (q), [off] "r" (off), "m" (*(const mnn_rq_t (*)[4])q)
        : "cc");
    #undef MNN_RQ1
    return out;
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
__attribute__((always_inline))
static inline void rq_store4(const mnn_rq_block_t *blk, uint32_t i, int32_t s0, int32_t s1, int32_t s2, int32_t s3,
    int right_only, int clamp, uint32_t lo4, uint32_t hi4, int8_t *y) {
    uint32_t v;
    if (right_only) {
        v = rq4_sat(&blk->rq[i], blk->off, s0, s1, s2, s3);
    } else {
        v = rq_one(blk, i, s0, right_only) | rq_one(blk, i + 1, s1, right_only) << 8
            | rq_one(blk, i + 2, s2, right_only) << 16 | rq_one(blk, i + 3, s3, right_only) << 24;
    }
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

// The per-row loop of taps3x3_rect in assembly for the usual requantization
// (right shifts only), k[] holding: 0..71 the weight pairs wk, 72 the four
// starting sums, 88 the constants' address and the output offset, 96 C and
// the input row, 104 the step to the next window less two rows and the
// output step, 112 the activation bounds in each byte. Per pixel 72
// instructions of taps, 44 of requantization, 12 others (5 more clamping).
// Fourteen registers: t0..t5 are C, row, the input word, its extended
// channels (0, 2) and the weight pair during the taps; the constants'
// address, the offset, the 64-bit product, the multiplier (then the shift)
// and the packed outputs during the requantization.
// Zero weights for the taps that a window shifted at an edge leaves out.
static const int8_t dw_zero[MNN_RQ_BLOCK] = {0};

// a + b, lane by lane (int16 pairs).
static inline uint32_t sadd16(uint32_t a, uint32_t b) {
    uint32_t r;
    __asm__ ("sadd16 %0, %1, %2" : "=r" (r) : "r" (a), "r" (b));
    return r;
}

#define MNN_TAP(ld, k) \
    ld "\n\t" \
    "ldrd %[t4], %[t5], [%[k], #" #k "]\n\t" \
    "sxtb16 %[t3], %[t2]\n\t" \
    "sxtb16 %[t2], %[t2], ror #8\n\t" \
    "smlabb %[s0], %[t3], %[t4], %[s0]\n\t" \
    "smlatt %[s2], %[t3], %[t4], %[s2]\n\t" \
    "smlabb %[s1], %[t2], %[t5], %[s1]\n\t" \
    "smlatt %[s3], %[t2], %[t5], %[s3]\n\t"
#define MNN_ROW(k0, k1, k2) \
    MNN_TAP("ldr %[t2], [%[x]]", k0) \
    MNN_TAP("ldr %[t2], [%[x], %[t0]]", k1) \
    MNN_TAP("ldr %[t2], [%[x], %[t0], lsl #1]", k2)
#define MNN_RQ(s, o_m, o_rs, o_k, dst, pack) \
    "ldr %[t4], [%[t0], #" #o_m "]\n\t" \
    "ldrd %[t2], %[t3], [%[t0], #" #o_k "]\n\t" \
    "smlal %[t2], %[t3], %[" #s "], %[t4]\n\t" \
    "and %[" #s "], %[" #s "], #0x80000000\n\t" \
    "ldr %[t4], [%[t0], #" #o_rs "]\n\t" \
    "subs %[t2], %[t2], %[" #s "]\n\t" \
    "sbc %[t3], %[t3], #0\n\t" \
    "asr %[t3], %[t3], %[t4]\n\t" \
    "add %[t3], %[t3], %[t1]\n\t" \
    "ssat %[" dst "], #8, %[t3]\n\t" \
    pack
#define MNN_PIX_BODY \
    "1:\n\t" \
    "ldrd %[s0], %[s1], [%[k], #72]\n\t" \
    "ldrd %[s2], %[s3], [%[k], #80]\n\t" \
    "ldrd %[t0], %[t1], [%[k], #96]\n\t" \
    MNN_ROW(0, 8, 16) \
    "add %[x], %[x], %[t1]\n\t" \
    MNN_ROW(24, 32, 40) \
    "add %[x], %[x], %[t1]\n\t" \
    MNN_ROW(48, 56, 64) \
    "ldrd %[t0], %[t1], [%[k], #88]\n\t" \
    MNN_RQ(s0, 0, 8, 12, "t5", "") \
    MNN_RQ(s1, 20, 28, 32, "t3", "bfi %[t5], %[t3], #8, #8\n\t") \
    MNN_RQ(s2, 40, 48, 52, "t3", "bfi %[t5], %[t3], #16, #8\n\t") \
    MNN_RQ(s3, 60, 68, 72, "t3", "bfi %[t5], %[t3], #24, #8\n\t")
#define MNN_PIX_CLAMP \
    "ldrd %[t2], %[t3], [%[k], #112]\n\t" \
    "ssub8 %[t4], %[t5], %[t2]\n\t" \
    "sel %[t5], %[t5], %[t2]\n\t" \
    "ssub8 %[t4], %[t5], %[t3]\n\t" \
    "sel %[t5], %[t3], %[t5]\n\t"
#define MNN_PIX_TAIL \
    "ldrd %[t0], %[t1], [%[k], #104]\n\t" \
    "add %[x], %[x], %[t0]\n\t" \
    "str %[t5], [%[y]]\n\t" \
    "add %[y], %[y], %[t1]\n\t" \
    "subs %[n], %[n], #1\n\t" \
    "bne 1b"
#define MNN_PIX_OPS \
    : [s0] "=&r" (s0), [s1] "=&r" (s1), [s2] "=&r" (s2), [s3] "=&r" (s3), [x] "+&r" (xp), [y] "+&r" (yp), \
    [n] "+&r" (np), [t0] "=&r" (t0), [t1] "=&r" (t1), [t2] "=&r" (t2), [t3] "=&r" (t3), [t4] "=&r" (t4), \
    [t5] "=&r" (t5) \
    : [k] "r" (k) \
    : "cc", "memory"

// A rectangle of output pixels as nrows lines of npix (along a row or a
// column of the output) whose 3x3 windows (no dilation) lie inside the
// input once shifted by dy rows and dx columns (taps shifted out meet zero
// weights): x is the first window's shifted top-left tap of channel 0,
// windows xstride bytes apart along a line, lines xrows apart, input rows
// `row` bytes apart; outputs ystep bytes apart along a line, lines yrow
// apart. Channels go four at a time: the nine weight words extracted once
// for the whole rectangle (wk[2t], wk[2t + 1]: tap t's channels (0, 2) and
// (1, 3)), the input offset folded into the sums' starting values (bias +
// offset * the sum of the channel's weights: the same sums modulo 2^32),
// then each line in one assembly loop (requantization included, unless some
// shift is a left shift).
__attribute__((noinline))
static void taps3x3_rect(const int8_t *x, const int8_t *w, uint32_t n, uint32_t nrows, uint32_t npix, uint32_t C,
    uint32_t row, uint32_t xstride, uint32_t xrows, uint32_t yrow, uint32_t ystep, uint32_t off2,
    const mnn_rq_block_t *blk, int8_t *y, int32_t dy, int32_t dx) {
    const int right_only = blk->right_only, clamp = blk->lo != -128 || blk->hi != 127;
    const uint32_t lo4 = ((uint32_t)blk->lo & 0xff) * 0x01010101u, hi4 = ((uint32_t)blk->hi & 0xff) * 0x01010101u;
    uint32_t k[30], *const wk = k;
    k[24] = C;
    k[25] = row;
    k[26] = xstride - 2 * row;
    k[27] = ystep;
    k[28] = lo4;
    k[29] = hi4;
    // tap t's weights of the group's channel i at src[t] + i: the weights, or
    // zeros for the taps shifted out of the window
    const int8_t *src[9];
    for (uint32_t t = 0; t < 9; t++) {
        const int32_t ti = (int32_t)(t / 3) + dy, tj = (int32_t)(t % 3) + dx;
        src[t] = ti < 0 || ti > 2 || tj < 0 || tj > 2 ? dw_zero : w + (uint32_t)(ti * 3 + tj) * C;
    }
    for (uint32_t i = 0; i < n; i += 4, x += 4, y += 4) {
        uint32_t se = 0, so = 0;    // the weights' sums, channels (0, 2) and (1, 3)
        #define MNN_EXTRACT(t) do { \
        const uint32_t wv = mnn_rd32(src[t] + i); \
        wk[2 * (t)] = mnn_sxtb16(wv); \
        wk[2 * (t) + 1] = mnn_sxtb16_ror8(wv); \
        se = sadd16(se, wk[2 * (t)]); \
        so = sadd16(so, wk[2 * (t) + 1]); \
} while (0)
        MNN_EXTRACT(0);
        MNN_EXTRACT(1);
        MNN_EXTRACT(2);
        MNN_EXTRACT(3);
        MNN_EXTRACT(4);
        MNN_EXTRACT(5);
        MNN_EXTRACT(6);
        MNN_EXTRACT(7);
        MNN_EXTRACT(8);
        #undef MNN_EXTRACT
        // 9 * 128 fits an int16 lane
        const int32_t b0 = mnn_smlabb(off2, se, (int32_t)blk->bias[i]);
        const int32_t b1 = mnn_smlabb(off2, so, (int32_t)blk->bias[i + 1]);
        const int32_t b2 = mnn_smlatt(off2, se, (int32_t)blk->bias[i + 2]);
        const int32_t b3 = mnn_smlatt(off2, so, (int32_t)blk->bias[i + 3]);
        const int8_t *xrow = x;
        int8_t *yr = y;
        if (right_only) {
            k[18] = (uint32_t)b0;
            k[19] = (uint32_t)b1;
            k[20] = (uint32_t)b2;
            k[21] = (uint32_t)b3;
            k[22] = (uint32_t)(uintptr_t)&blk->rq[i];
            k[23] = (uint32_t)blk->off;
            for (uint32_t r = nrows; r; r--, xrow += xrows, yr += yrow) {
                const int8_t *xp = xrow;
                int8_t *yp = yr;
                uint32_t np = npix, s0, s1, s2, s3, t0, t1, t2, t3, t4, t5;
                if (clamp) {
                    __asm__ volatile (MNN_PIX_BODY MNN_PIX_CLAMP MNN_PIX_TAIL MNN_PIX_OPS);
                } else {
                    __asm__ volatile (MNN_PIX_BODY MNN_PIX_TAIL MNN_PIX_OPS);
                }
            }
            continue;
        }
        for (uint32_t r = nrows; r; r--, xrow += xrows, yr += yrow) {
            const int8_t *xp = xrow;
            int8_t *yp = yr;
            for (uint32_t p = npix; p; p--, xp += xstride, yp += ystep) {
                int32_t s0 = b0, s1 = b1, s2 = b2, s3 = b3;
                const int8_t *xr = xp;
                uint32_t t2, t3, t4, t5;
                // the taps as in the assembly loop; then requantization in C
                __asm__ (
                    MNN_ROW(0, 8, 16)
                    "add %[x], %[x], %[t1]\n\t"
                    MNN_ROW(24, 32, 40)
                    "add %[x], %[x], %[t1]\n\t"
                    MNN_ROW(48, 56, 64)
                    : [s0] "+&r" (s0), [s1] "+&r" (s1), [s2] "+&r" (s2), [s3] "+&r" (s3), [x] "+&r" (xr),
                    [t2] "=&r" (t2), [t3] "=&r" (t3), [t4] "=&r" (t4), [t5] "=&r" (t5)
                    : [t0] "r" (C), [t1] "r" (row), [k] "r" (k), "m" (k));
                rq_store4(blk, i, s0, s1, s2, s3, right_only, clamp, lo4, hi4, yp);
            }
        }
    }
}
#undef MNN_TAP
#undef MNN_ROW
#undef MNN_RQ
#undef MNN_PIX_BODY
#undef MNN_PIX_CLAMP
#undef MNN_PIX_TAIL
#undef MNN_PIX_OPS
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

#if MNN_DSP
// Output positions [lo, hi) along one axis whose 3-tap windows (no dilation)
// lie wholly inside the input's n positions.
static inline void whole_range(int32_t pad, uint32_t stride, uint32_t n, uint32_t out, uint32_t *lo, uint32_t *hi) {
    uint32_t l = pad > 0 ? ((uint32_t)pad + stride - 1) / stride : 0;
    const int32_t last = (int32_t)n - 3 + pad;     // the largest position * stride allowed
    uint32_t h = last < 0 ? 0 : (uint32_t)last / stride + 1;
    h = h < out ? h : out;
    *lo = l < h ? l : h;
    *hi = h;
}
#define RECT_MIN (2)    // smaller rectangles go one pixel at a time (taps3x3)
#define TILED_MIN (16)  // smaller planes have their edge windows one at a time
#define RECT_PIX (4)    // rectangles of the tiling smaller than this go one pixel at a time

// The output positions along one axis as three ranges r[0..1), r[1..2),
// r[2..3): windows cut by the input's start (by exactly one tap), whole,
// cut by its end (by exactly one tap); 0 where some window is cut otherwise
// (then the edges go one pixel at a time).
static int axis_split(int32_t pad, uint32_t stride, uint32_t n, uint32_t out, uint32_t r[4]) {
    uint32_t lo, hi;
    whole_range(pad, stride, n, out, &lo, &hi);
    if (n < 3 || lo > 1 || (lo == 1 && pad != 1) || out - hi > 1
        || (out - hi == 1 && (int32_t)((out - 1) * stride) - pad != (int32_t)n - 2)) {
        return 0;
    }
    r[0] = 0;
    r[1] = lo;
    r[2] = hi;
    r[3] = out;
    return 1;
}

// Output rows [oy0, oy1) x columns [ox0, ox1) of channels c0 + [0, n) by
// taps3x3_rect, in segments of rows between reports of work: each window's
// taps shifted by dy rows and dx columns (+1: the window's first row or
// column is outside the input, -1: its last), so that every load stays
// inside the input and the taps outside meet zero weights.
static void rect_part(const mnn_conv_args_t *a, const mnn_rq_block_t *blk, uint32_t c0, uint32_t n,
    const int8_t *xb, int8_t *y, uint32_t oy0, uint32_t oy1, uint32_t ox0, uint32_t ox1, int32_t dy, int32_t dx,
    uint32_t offv) {
    const mnn_geom_t *g = &a->g;
    const uint32_t C = g->in_c;
    if (oy1 <= oy0 || ox1 <= ox0) {
        return;
    }
    if ((oy1 - oy0) * (ox1 - ox0) < RECT_PIX) {
        // too few pixels to pay for extracting the weights: one at a time
        for (uint32_t oy = oy0; oy < oy1; oy++) {
            const int32_t iy0 = (int32_t)(oy * g->stride_h) - g->pad_top;
            uint32_t ky0, ky1;
            tap_range(iy0, 1, 3, g->in_h, &ky0, &ky1);
            for (uint32_t ox = ox0; ox < ox1; ox++) {
                const int32_t ix0 = (int32_t)(ox * g->stride_w) - g->pad_left;
                uint32_t kx0, kx1;
                tap_range(ix0, 1, 3, g->in_w, &kx0, &kx1);
                const int8_t *x = xb + ((uint32_t)(iy0 + (int32_t)ky0) * g->in_w + (uint32_t)(ix0 + (int32_t)kx0)) * C
                    + c0;
                const int8_t *w0 = a->weights + (ky0 * 3 + kx0) * C + c0;
                taps3x3_edge(x, w0, n, ky1 - ky0, kx1 - kx0, C, g->in_w * C, offv, blk, y + (oy * g->out_w + ox) * C);
                mnn_work(n * 9);
            }
        }
        return;
    }
    // lines of pixels along the longer side: nl lines of len pixels, steps
    // between lines xl, yl (input, output) and between pixels xp, yp
    uint32_t nl = oy1 - oy0, len = ox1 - ox0, xl = g->stride_h * g->in_w * C, yl = g->out_w * C;
    uint32_t xp = g->stride_w * C, yp = C;
    if (len < nl) {
        uint32_t t = nl;
        nl = len;
        len = t;
        t = xl;
        xl = xp;
        xp = t;
        t = yl;
        yl = yp;
        yp = t;
    }
    const uint32_t step = mnn_sat_mul(len, n * 9), seg = mnn_segment(step);
    const int8_t *x = xb + ((oy0 * g->stride_h - (uint32_t)g->pad_top + (uint32_t)dy) * g->in_w
        + ox0 * g->stride_w - (uint32_t)g->pad_left + (uint32_t)dx) * C + c0;
    int8_t *yr = y + (oy0 * g->out_w + ox0) * C;
    for (uint32_t r = 0; r < nl; r += seg, x += seg * xl, yr += seg * yl) {
        const uint32_t nr = nl - r < seg ? nl - r : seg;
        taps3x3_rect(x, a->weights + c0, n, nr, len, C, g->in_w * C, xp, xl, yl, yp, offv, blk, yr, dy, dx);
        mnn_work(mnn_sat_mul(nr, step));
    }
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
        // the rectangle of output pixels whose windows are whole: rows [ry0, ry1), columns [rx0, rx1)
        uint32_t rx0 = 0, rx1 = 0, ry0 = 0, ry1 = 0, rx[4], ry[4];
        // every window whole or cut by one tap at an edge: the plane as up to nine rectangles
        const int tiled = fast3x3 && g->out_h * g->out_w >= TILED_MIN
            && axis_split(g->pad_top, g->stride_h, g->in_h, g->out_h, ry)
            && axis_split(g->pad_left, g->stride_w, g->in_w, g->out_w, rx);
        if (fast3x3) {
            whole_range(g->pad_left, g->stride_w, g->in_w, g->out_w, &rx0, &rx1);
            whole_range(g->pad_top, g->stride_h, g->in_h, g->out_h, &ry0, &ry1);
            if ((rx1 - rx0) * (ry1 - ry0) < RECT_MIN) {
                ry1 = ry0;
            }
        }
        #endif
        int8_t *y = a->output + c0;
        mnn_pace_t pace;
        mnn_pace_init(&pace, mnn_sat_mul(n, g->k_h * g->k_w));
        for (uint32_t b = 0; b < g->batches; b++) {
            const int8_t *xb = a->input + b * g->in_h * g->in_w * C;
            #if MNN_DSP
            if (tiled) {
                for (uint32_t i = 0; i < 3; i++) {
                    for (uint32_t j = 0; j < 3; j++) {
                        rect_part(a, &blk, c0, n, xb, y, ry[i], ry[i + 1], rx[j], rx[j + 1], 1 - (int32_t)i,
                            1 - (int32_t)j, offv);
                    }
                }
                y += g->out_h * g->out_w * C;
                continue;
            }
            // the whole windows first
            rect_part(a, &blk, c0, n, xb, y, ry0, ry1, rx0, rx1, 0, 0, offv);
            #endif
            for (uint32_t oy = 0; oy < g->out_h; oy++) {
                const int32_t iy0 = (int32_t)(oy * g->stride_h) - g->pad_top;
                uint32_t ky0, ky1;
                tap_range(iy0, g->dil_h, g->k_h, g->in_h, &ky0, &ky1);
                for (uint32_t ox = 0; ox < g->out_w; ox++, y += C) {
                    #if MNN_DSP
                    if (ox == rx0 && oy >= ry0 && oy < ry1) {
                        // done with the rectangle
                        ox = rx1 - 1;
                        y += (rx1 - rx0 - 1) * C;
                        continue;
                    }
                    #endif
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
                            taps3x3(xb + first, w0, n, C, g->in_w * C, offv, &blk, y);
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
