// 2-D convolution (int8, per-channel requantization), any kernel size,
// stride, dilation, padding and group count.
//
// mnn_conv_s8 picks the variant:
// - im2col + matrix multiply, when the blob reserved the scratch for it (the
//   packer always does): two output pixels at a time, each pixel's receptive
//   field copied once into an int16 column with the input offset added (taps
//   in the padding become 0) for up to 64 output channels (two blocks of
//   requantization constants), then two output channels times two columns
//   per inner loop. With the DSP extension the inner loop is SMLAD on packed
//   int16 pairs (mnn_simd.h), 16 MACs in 16 instructions, its loop over the
//   channel pairs in the same assembly (dot_pairs), and the usual saturating
//   requantization in assembly too (requant2); without it, the same blocking
//   in plain C.
// - direct loops over the taps otherwise (no scratch).
//
// mnn_conv_pool_s8 is a convolution whose output only feeds a max pooling
// over non-overlapping windows (CONV_2D_MAXPOOL): see its section below.
#include <stddef.h>
#include "mnn_kernels.h"
#include "mnn_fixedpoint.h"
#include "mnn_simd.h"
#include "../mnn_ops.h"

// Sums wrap (as two's complement) rather than overflow: identical to TFLite
// wherever TFLite's int32 sums do not overflow, and defined where they would.
// The sum of output channel oc at the pixel whose receptive field starts at
// (iy0, ix0) of image xb, over the taps inside the input (no bias).
static uint32_t direct_sum(const mnn_conv_args_t *a, const int8_t *xb, int32_t iy0, int32_t ix0, uint32_t oc) {
    const mnn_geom_t *g = &a->g;
    const uint32_t fc = g->in_c / a->groups;
    const uint32_t ic0 = (oc / (g->out_c / a->groups)) * fc;
    const int8_t *w = a->weights + oc * g->k_h * g->k_w * fc;
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
            const int8_t *x = xb + ((uint32_t)iy * g->in_w + (uint32_t)ix) * g->in_c + ic0;
            const int8_t *wk = w + (ky * g->k_w + kx) * fc;
            for (uint32_t c = 0; c < fc; c++) {
                acc += (uint32_t)((x[c] + a->input_offset) * wk[c]);
            }
        }
    }
    return acc;
}

static void conv_direct(const mnn_conv_args_t *a) {
    const mnn_geom_t *g = &a->g;
    mnn_pace_t pace;
    mnn_pace_init(&pace, mnn_sat_mul(g->out_c, g->k_h * g->k_w * (g->in_c / a->groups)));
    int8_t *y = a->output;
    for (uint32_t b = 0; b < g->batches; b++) {
        const int8_t *xb = a->input + b * g->in_h * g->in_w * g->in_c;
        for (uint32_t oy = 0; oy < g->out_h; oy++) {
            const int32_t iy0 = (int32_t)(oy * g->stride_h) - g->pad_top;
            for (uint32_t ox = 0; ox < g->out_w; ox++) {
                const int32_t ix0 = (int32_t)(ox * g->stride_w) - g->pad_left;
                mnn_pace(&pace);
                for (uint32_t oc = 0; oc < g->out_c; oc++) {
                    *y++ = mnn_requant_out(direct_sum(a, xb, iy0, ix0, oc), a->bias, oc, a->mult, a->shift, oc,
                        a->output_offset, a->act_min, a->act_max);
                }
            }
        }
    }
}

// --- im2col ---------------------------------------------------------------
//
// Two columns of K = k_h * k_w * fc values share one buffer, interleaved in
// groups of four: group g holds column 0's elements 4g..4g+3 as int16 in the
// order 0, 2, 1, 3 (two words: (e0, e2), (e1, e3)), then column 1's. The last
// K % 4 elements follow in plain order, column 0's then column 1's.

#define MNN_CONV_TMP 256

// Element by element: the fallback for long columns of an odd channel count.
static void fill_slow(const mnn_conv_args_t *a, const int8_t *xb, int32_t iy0, int32_t ix0, uint32_t ic0,
    int16_t *col, uint32_t j) {
    static const uint8_t slot[4] = { 0, 2, 1, 3 };
    const mnn_geom_t *g = &a->g;
    const uint32_t fc = g->in_c / a->groups;
    const uint32_t K = g->k_h * g->k_w * fc;
    const uint32_t k4 = K & ~3u, tail = K - k4;
    uint32_t k = 0;
    for (uint32_t ky = 0; ky < g->k_h; ky++) {
        const int32_t iy = iy0 + (int32_t)(ky * g->dil_h);
        for (uint32_t kx = 0; kx < g->k_w; kx++) {
            const int32_t ix = ix0 + (int32_t)(kx * g->dil_w);
            const int in = iy >= 0 && iy < (int32_t)g->in_h && ix >= 0 && ix < (int32_t)g->in_w;
            for (uint32_t c = 0; c < fc; c++, k++) {
                int16_t v = in ? (int16_t)(xb[((uint32_t)iy * g->in_w + (uint32_t)ix) * g->in_c + ic0 + c]
                    + a->input_offset) : 0;
                col[k < k4 ? 8 * (k >> 2) + 4 * j + slot[k & 3] : 2 * k4 + j * tail + (k - k4)] = v;
            }
        }
    }
}

// The receptive field of the output pixel whose window starts at (iy0, ix0),
// channels ic0 .. ic0 + fc of image xb, in plain order: K values (input plus
// offset; 0 for taps in the padding), taps clipped to the input once per row.
static inline __attribute__((always_inline)) void fill_plain(const mnn_conv_args_t *a, const int8_t *xb, int32_t iy0, int32_t ix0, uint32_t ic0,
    int16_t *t) {
    const mnn_geom_t *g = &a->g;
    const uint32_t fc = g->in_c / a->groups;
    const int32_t off = a->input_offset;
    const uint32_t k_h = g->k_h, k_w = g->k_w, dil_w = g->dil_w, in_w = g->in_w, in_c = g->in_c;
    if (dil_w == 1 && fc == in_c && iy0 >= 0 && ix0 >= 0
        && (int64_t)iy0 + (int64_t)(k_h - 1) * g->dil_h < (int64_t)g->in_h
        && (int64_t)ix0 + (int64_t)k_w <= (int64_t)in_w) {
        // The whole window inside the input: each row of taps is one run.
        const uint32_t run = k_w * fc, rowstep = g->dil_h * in_w * in_c;
        const int8_t *src = xb + ((uint32_t)iy0 * in_w + (uint32_t)ix0) * in_c;
        for (uint32_t ky = k_h; ky; ky--, src += rowstep) {
            for (uint32_t i = 0; i < run; i++) {
                *t++ = (int16_t)(src[i] + off);
            }
        }
    } else {
        for (uint32_t ky = 0; ky < k_h; ky++) {
            const int32_t iy = iy0 + (int32_t)(ky * g->dil_h);
            uint32_t kx0 = k_w, kx1 = k_w;      // the taps of this row inside the input
            if (iy >= 0 && iy < (int32_t)g->in_h) {
                kx0 = ix0 >= 0 ? 0 : ((uint32_t)(-ix0) + dil_w - 1) / dil_w;
                int32_t over = ix0 + (int32_t)((k_w - 1) * dil_w) - (int32_t)(in_w - 1);
                const uint32_t cut = over <= 0 ? 0 : ((uint32_t)over + dil_w - 1) / dil_w;
                kx1 = cut >= k_w ? 0 : k_w - cut;       // a window right of the input has none
                kx0 = kx0 > k_w ? k_w : kx0;
                kx1 = kx1 < kx0 ? kx0 : kx1;
            }
            for (uint32_t i = kx0 * fc; i; i--) {
                *t++ = 0;
            }
            if (kx1 > kx0) {
                const int8_t *xp = xb
                    + (((uint32_t)iy * in_w + (uint32_t)(ix0 + (int32_t)(kx0 * dil_w))) * in_c + ic0);
                if (dil_w == 1 && fc == in_c) {
                    // the row's taps are one run of the input
                    for (uint32_t i = (kx1 - kx0) * fc; i; i--) {
                        *t++ = (int16_t)(*xp++ + off);
                    }
                } else {
                    for (uint32_t kx = kx0; kx < kx1; kx++, xp += dil_w * in_c) {
                        for (uint32_t c = 0; c < fc; c++) {
                            *t++ = (int16_t)(xp[c] + off);
                        }
                    }
                }
            }
            for (uint32_t i = (k_w - kx1) * fc; i; i--) {
                *t++ = 0;
            }
        }
    }
}

// Four input values x[0..3] plus the offset into one group of a column:
// dst[0..3] = x0, x2, x1, x3.
static inline __attribute__((always_inline)) void mnn_fill_group(const int8_t *x, int16_t *dst, int32_t off) {
    #if MNN_DSP
    // one STRD: dst is a group of the (8-byte aligned) scratch
    const uint32_t off2 = ((uint32_t)off & 0xffff) | ((uint32_t)off << 16);
    const uint32_t w = mnn_rd32(x);
    __asm__ volatile ("strd %1, %2, [%0]" : : "r" (dst), "r" (mnn_sxtab16(off2, w)), "r" (mnn_sxtab16_ror8(off2, w))
        : "memory");
    #else
    dst[0] = (int16_t)(x[0] + off);
    dst[1] = (int16_t)(x[2] + off);
    dst[2] = (int16_t)(x[1] + off);
    dst[3] = (int16_t)(x[3] + off);
    #endif
}

// Column j of the buffer for the output pixel whose receptive field starts at
// (iy0, ix0), channels ic0 .. ic0 + fc of the image xb.
__attribute__((noinline))
static void fill_column(const mnn_conv_args_t *a, const int8_t *xb, int32_t iy0, int32_t ix0, uint32_t ic0,
    int16_t *col, uint32_t j) {
    const mnn_geom_t *g = &a->g;
    const uint32_t fc = g->in_c / a->groups;
    const uint32_t K = g->k_h * g->k_w * fc;
    const uint32_t k4 = K & ~3u;
    const int32_t off = a->input_offset;
    if ((fc & 3) == 0) {
        // Every tap is whole groups: a word of input becomes two words of column.
        int16_t *dst = col + 4 * j;
        #if MNN_DSP
        const uint32_t off2 = ((uint32_t)off & 0xffff) | ((uint32_t)off << 16);
        #endif
        // whether every tap of a row inside the input is one run of it
        const int runs = fc == g->in_c && g->dil_w == 1 && ix0 >= 0
            && (int64_t)ix0 + (int64_t)g->k_w <= (int64_t)g->in_w;
        for (uint32_t ky = 0; ky < g->k_h; ky++) {
            const int32_t iy = iy0 + (int32_t)(ky * g->dil_h);
            const int row_in = iy >= 0 && iy < (int32_t)g->in_h;
            if (runs && row_in) {
                // The row's k_w * fc values: two groups per pass (fc is a
                // multiple of 4, so the count of groups is k_w * fc / 4).
                const int8_t *x = xb + ((uint32_t)iy * g->in_w + (uint32_t)ix0) * g->in_c;
                const uint32_t n = g->k_w * fc / 4;
                if (n & 1) {
                    mnn_fill_group(x, dst, off);
                    x += 4;
                    dst += 8;
                }
                for (uint32_t i = n / 2; i; i--, x += 8, dst += 16) {
                    #if MNN_DSP
                    const uint32_t u = mnn_rd32(x), v = mnn_rd32(x + 4);
                    __asm__ volatile ("strd %1, %2, [%0]\n\tstrd %3, %4, [%0, #16]" : : "r" (dst),
                        "r" (mnn_sxtab16(off2, u)), "r" (mnn_sxtab16_ror8(off2, u)),
                        "r" (mnn_sxtab16(off2, v)), "r" (mnn_sxtab16_ror8(off2, v)) : "memory");
                    #else
                    mnn_fill_group(x, dst, off);
                    mnn_fill_group(x + 4, dst + 8, off);
                    #endif
                }
                continue;
            }
            for (uint32_t kx = 0; kx < g->k_w; kx++) {
                const int32_t ix = ix0 + (int32_t)(kx * g->dil_w);
                if (!row_in || ix < 0 || ix >= (int32_t)g->in_w) {
                    for (uint32_t c = 0; c < fc; c += 4, dst += 8) {
                        mnn_wr32(dst, 0);
                        mnn_wr32(dst + 2, 0);
                    }
                    continue;
                }
                const int8_t *x = xb + ((uint32_t)iy * g->in_w + (uint32_t)ix) * g->in_c + ic0;
                for (uint32_t c = 0; c < fc; c += 4, dst += 8) {
                    mnn_fill_group(x + c, dst, off);
                }
            }
        }
        return;
    }
    // Any channel count: the values in plain order on the stack first (taps
    // clipped to the input once per row), then copied into the column.
    if (K > MNN_CONV_TMP) {
        fill_slow(a, xb, iy0, ix0, ic0, col, j);
        return;
    }
    int16_t tmp[MNN_CONV_TMP];
    fill_plain(a, xb, iy0, ix0, ic0, tmp);
    int16_t *dst = col + 4 * j;
    uint32_t k = 0;
    for (; k < k4; k += 4, dst += 8) {
        dst[0] = tmp[k];
        dst[1] = tmp[k + 2];
        dst[2] = tmp[k + 1];
        dst[3] = tmp[k + 3];
    }
    dst = col + 2 * k4 + j * (K - k4);
    for (; k < K; k++) {
        *dst++ = tmp[k];
    }
}

#if MNN_DSP
// The sums of channel pairs with columns 0 and 1 of the buffer, over the
// first k4 = K & ~3 taps (the caller adds the rest): pair i's rows are
// w + 2iK and w + 2iK + d (d = K; 0 for a lone last channel, which then
// counts twice), its sums p[4i .. 4i + 3] = (row 0 . column 0, row 0 .
// column 1, row 1 . column 0, row 1 . column 1). pairs >= 1, K >= 4. All in one
// statement, the loop over pairs included: the inner loop takes 14
// registers, so the few loop variables live on the stack.
__attribute__((noinline))
static void dot_pairs(const int8_t *w, uint32_t d, const int16_t *col, uint32_t K, uint32_t pairs, uint32_t *p) {
    const int16_t *const end = col + 2 * (K & ~3u);
    const int16_t *const col0 = col;
    const uint32_t tail = K & 3;
    const int8_t *w0 = w, *w1 = w + d;
    const int8_t *const w_end = w + (K + d) * pairs;      // w0 after the last pair
    uint32_t entry;
    int32_t s00, s01, s10, s11;
    uint32_t wa0, wb0, wa1, wb1, t, u;
    // 16 MACs in 16 instructions: per group of four taps, two weight words
    // (one per row) become four int16 pairs, met by the four words of the
    // two columns (two LDRDs: the buffer is word-aligned scratch).
    #define MNN_GROUP \
    "ldr %[wa0], [%[w0]], #4\n\t" \
    "ldr %[wa1], [%[w1]], #4\n\t" \
    "ldrd %[t], %[u], [%[col]], #8\n\t" \
    "sxtb16 %[wb0], %[wa0], ror #8\n\t" \
    "sxtb16 %[wa0], %[wa0]\n\t" \
    "sxtb16 %[wb1], %[wa1], ror #8\n\t" \
    "sxtb16 %[wa1], %[wa1]\n\t" \
    "smlad %[s00], %[wa0], %[t], %[s00]\n\t" \
    "smlad %[s10], %[wa1], %[t], %[s10]\n\t" \
    "smlad %[s00], %[wb0], %[u], %[s00]\n\t" \
    "smlad %[s10], %[wb1], %[u], %[s10]\n\t" \
    "ldrd %[t], %[u], [%[col]], #8\n\t" \
    "smlad %[s01], %[wa0], %[t], %[s01]\n\t" \
    "smlad %[s11], %[wa1], %[t], %[s11]\n\t" \
    "smlad %[s01], %[wb0], %[u], %[s01]\n\t" \
    "smlad %[s11], %[wb1], %[u], %[s11]\n\t"
    // Per pair: eight groups per loop pass, the first pass entered part way
    // (groups % 8 of them, or all eight; K >= 4) by a jump into the loop body:
    // every instruction of a group has only a 32-bit encoding, so each group
    // is 64 bytes, and the jump is (-groups % 8) * 64 bytes in. After a
    // pair, w1 has passed its row's groups: the next w0 is its tail further
    // (d == K; a lone channel is the only pair), the next w1 K after that.
    __asm__ volatile (
        // the entry into the first pass, the same for every pair
        "ldr %[col], %[colm]\n\t"
        "sub %[t], %[col], %[end]\n\t"
        "ubfx %[t], %[t], #4, #3\n\t"
        "adr %[u], 1f\n\t"
        "add %[u], %[u], %[t], lsl #6\n\t"
        "str %[u], %[entrym]\n\t"
        "5:\n\t"
        "ldr %[col], %[colm]\n\t"
        "movs %[s00], #0\n\t"
        "movs %[s01], #0\n\t"
        "movs %[s10], #0\n\t"
        "movs %[s11], #0\n\t"
        "ldr %[u], %[entrym]\n\t"
        "mov pc, %[u]\n\t"
        ".p2align 2\n\t"
        "1:\n\t"
        MNN_GROUP
        MNN_GROUP
        MNN_GROUP
        MNN_GROUP
        MNN_GROUP
        MNN_GROUP
        MNN_GROUP
        MNN_GROUP
        "cmp %[col], %[end]\n\t"
        "bne 1b\n\t"
        "ldr %[t], %[pm]\n\t"
        "strd %[s00], %[s01], [%[t]], #16\n\t"
        "strd %[s10], %[s11], [%[t], #-8]\n\t"
        "str %[t], %[pm]\n\t"
        "ldr %[t], %[tailm]\n\t"
        "add %[w0], %[w1], %[t]\n\t"
        "ldr %[t], %[km]\n\t"
        "add %[w1], %[w0], %[t]\n\t"
        "ldr %[t], %[wendm]\n\t"
        "cmp %[w0], %[t]\n\t"
        "bne 5b"
        : [s00] "=&r" (s00), [s01] "=&r" (s01), [s10] "=&r" (s10), [s11] "=&r" (s11),
        [col] "=&r" (col), [w0] "+&r" (w0), [w1] "+&r" (w1),
        [wa0] "=&r" (wa0), [wb0] "=&r" (wb0), [wa1] "=&r" (wa1), [wb1] "=&r" (wb1), [t] "=&r" (t), [u] "=&r" (u),
        [pm] "+m" (p), [entrym] "=m" (entry)
        : [end] "r" (end), [tailm] "m" (tail), [km] "m" (K), [wendm] "m" (w_end), [colm] "m" (col0)
        : "cc", "memory");
    #undef MNN_GROUP
}
#else
// Sums of rows w0, w1 (K int8 weights each) with columns 0 and 1 of the
// buffer: s[0] = w0.c0, s[1] = w0.c1, s[2] = w1.c0, s[3] = w1.c1.
static inline void dot_2x2(const int8_t *w0, const int8_t *w1, const int16_t *col, uint32_t K, uint32_t s[4]) {
    const uint32_t k4 = K & ~3u, tail = K - k4;
    const int16_t *end = col + 2 * k4;
    uint32_t r00 = 0, r01 = 0, r10 = 0, r11 = 0;
    for (; col < end; col += 8, w0 += 4, w1 += 4) {
        int32_t a0 = w0[0], a1 = w0[1], a2 = w0[2], a3 = w0[3];
        int32_t b0 = w1[0], b1 = w1[1], b2 = w1[2], b3 = w1[3];
        int32_t x0 = col[0], x2 = col[1], x1 = col[2], x3 = col[3];
        int32_t z0 = col[4], z2 = col[5], z1 = col[6], z3 = col[7];
        r00 += (uint32_t)(a0 * x0 + a1 * x1 + a2 * x2 + a3 * x3);
        r01 += (uint32_t)(a0 * z0 + a1 * z1 + a2 * z2 + a3 * z3);
        r10 += (uint32_t)(b0 * x0 + b1 * x1 + b2 * x2 + b3 * x3);
        r11 += (uint32_t)(b0 * z0 + b1 * z1 + b2 * z2 + b3 * z3);
    }
    const int16_t *t0 = end, *t1 = end + tail;
    for (uint32_t i = 0; i < tail; i++) {
        r00 += (uint32_t)(w0[i] * t0[i]);
        r01 += (uint32_t)(w0[i] * t1[i]);
        r10 += (uint32_t)(w1[i] * t0[i]);
        r11 += (uint32_t)(w1[i] * t1[i]);
    }
    s[0] = r00;
    s[1] = r01;
    s[2] = r10;
    s[3] = r11;
}
#endif

#if MNN_DSP
// the mnn_rq_t fields requant2's assembly reads
_Static_assert(offsetof(mnn_rq_t, mult) == 0 && offsetof(mnn_rq_t, rs) == 8 && offsetof(mnn_rq_t, k_lo) == 12
    && offsetof(mnn_rq_t, k_hi) == 16 && sizeof(mnn_rq_t) == 20, "mnn_rq_t layout");
#endif

// y0[i], y1[i] from sums[2i], sums[2i + 1], each plus its channel's bias:
// mnn_rq_block_apply2, but with the DSP extension the usual saturating case
// in 28 instructions per channel (its constants read once for both pixels).
__attribute__((noinline))
static void requant2(const mnn_rq_block_t *blk, const uint32_t *sums, uint32_t n, int8_t *y0, int8_t *y1) {
    #if MNN_DSP
    if (mnn_rq_block_saturates(blk) && n) {
        const int32_t off = blk->off;
        const mnn_rq_t *q = blk->rq;
        const uint32_t *bias = blk->bias;
        const uint32_t *const end = sums + 2 * n;
        uint32_t s0, s1, b, t, m, rs, klo, khi;
        // mnn_rq_apply_right: k + x * mult - (x < 0 ? 2^31 : 0), its high
        // word shifted right by rs; plus the offset, saturated.
        __asm__ volatile (
            "1:\n\t"
            "ldrd %[s0], %[s1], [%[sums]], #8\n\t"
            "ldr %[b], [%[bias]], #4\n\t"
            "ldr %[m], [%[q]], #20\n\t"
            "ldr %[rs], [%[q], #-12]\n\t"
            "ldrd %[klo], %[khi], [%[q], #-8]\n\t"
            "add %[s0], %[s0], %[b]\n\t"
            "add %[s1], %[s1], %[b]\n\t"
            "mov %[b], %[klo]\n\t"
            "mov %[t], %[khi]\n\t"
            "smlal %[b], %[t], %[s0], %[m]\n\t"
            "and %[s0], %[s0], #0x80000000\n\t"
            "subs %[b], %[b], %[s0]\n\t"
            "sbc %[t], %[t], #0\n\t"
            "asr %[t], %[t], %[rs]\n\t"
            "add %[t], %[t], %[off]\n\t"
            "ssat %[t], #8, %[t]\n\t"
            "strb %[t], [%[y0]], #1\n\t"
            "smlal %[klo], %[khi], %[s1], %[m]\n\t"
            "and %[s1], %[s1], #0x80000000\n\t"
            "subs %[klo], %[klo], %[s1]\n\t"
            "sbc %[khi], %[khi], #0\n\t"
            "asr %[khi], %[khi], %[rs]\n\t"
            "add %[khi], %[khi], %[off]\n\t"
            "ssat %[khi], #8, %[khi]\n\t"
            "strb %[khi], [%[y1]], #1\n\t"
            "ldr %[t], %[endm]\n\t"
            "cmp %[sums], %[t]\n\t"
            "bne 1b"
            : [s0] "=&r" (s0), [s1] "=&r" (s1), [b] "=&r" (b), [t] "=&r" (t), [m] "=&r" (m), [rs] "=&r" (rs),
            [klo] "=&r" (klo), [khi] "=&r" (khi),
            [sums] "+r" (sums), [bias] "+r" (bias), [q] "+r" (q), [y0] "+r" (y0), [y1] "+r" (y1)
            : [off] "r" (off), [endm] "m" (end)
            : "cc", "memory");
        return;
    }
    #endif
    mnn_rq_block_apply2(blk, sums, n, y0, y1);
}

// Channels [c0, c1) for the two pixels whose columns are in col: all sums
// first, then their requantization (two tight loops rather than one that
// runs out of registers).
static void gemm_block(const mnn_conv_args_t *a, const mnn_rq_block_t *blk, const int16_t *col, uint32_t K,
    uint32_t c0, uint32_t c1, int8_t *y0, int8_t *y1) {
    uint32_t sums[2 * MNN_RQ_BLOCK + 2];     // pixel 0 of channel i at 2i, pixel 1 at 2i + 1
    const uint32_t n = c1 - c0;
    const int8_t *w = a->weights + c0 * K;
    #if MNN_DSP
    const uint32_t k4 = K & ~3u, tail = K - k4;
    if (k4 == 0) {
        memset(sums, 0, sizeof(sums));
    } else {
        if (n >= 2) {
            dot_pairs(w, K, col, K, n / 2, sums);
        }
        if (n & 1) {
            // the lone last channel as a pair with itself (two more sums written)
            dot_pairs(w + (n - 1) * K, 0, col, K, 1, sums + 2 * (n - 1));
        }
    }
    if (tail) {
        // The last K % 4 taps, plain in the buffer after the groups.
        const int16_t *t0 = col + 2 * k4, *t1 = t0 + tail;
        for (uint32_t i = 0; i < n; i++) {
            const int8_t *wt = w + i * K + k4;
            uint32_t r0 = 0, r1 = 0;
            for (uint32_t e = 0; e < tail; e++) {
                r0 += (uint32_t)(wt[e] * t0[e]);
                r1 += (uint32_t)(wt[e] * t1[e]);
            }
            sums[2 * i] += r0;
            sums[2 * i + 1] += r1;
        }
    }
    #else
    for (uint32_t i = 0; i < n; i += 2, w += 2 * K) {
        // Channels i and j = i + 1 of the block (i again for an odd last one).
        const uint32_t j = i + 1 < n ? i + 1 : i;
        uint32_t s[4];
        dot_2x2(w, w + (j - i) * K, col, K, s);
        uint32_t *p = sums + 2 * i;
        p[0] = s[0];
        p[1] = s[1];
        p[2 * (j - i)] = s[2];
        p[2 * (j - i) + 1] = s[3];
    }
    #endif
    requant2(blk, sums, n, y0 + c0, y1 + c0);
}

static void conv_im2col(const mnn_conv_args_t *a) {
    const mnn_geom_t *g = &a->g;
    const uint32_t fc = g->in_c / a->groups;
    const uint32_t oc_per_group = g->out_c / a->groups;
    const uint32_t K = g->k_h * g->k_w * fc;
    const uint32_t plane = g->out_h * g->out_w;
    const uint32_t pixels = g->batches * plane;
    int16_t *col = a->scratch;
    // Up to two blocks of channels per pass over the pixels, so that layers
    // of up to 2 * MNN_RQ_BLOCK channels fill each pixel's column once.
    mnn_rq_block_t blk[2];
    for (uint32_t grp = 0; grp < a->groups; grp++) {
        const uint32_t grp_end = (grp + 1) * oc_per_group;
        for (uint32_t c0 = grp * oc_per_group; c0 < grp_end; c0 += 2 * MNN_RQ_BLOCK) {
            const uint32_t c1 = grp_end - c0 > MNN_RQ_BLOCK ? c0 + MNN_RQ_BLOCK : grp_end;
            const uint32_t c2 = grp_end - c1 > MNN_RQ_BLOCK ? c1 + MNN_RQ_BLOCK : grp_end;
            for (uint32_t i = 0; i < 2; i++) {
                const uint32_t lo = i ? c1 : c0, hi = i ? c2 : c1;
                mnn_rq_block_prepare(&blk[i], a->bias, a->mult, a->shift, lo, hi - lo, a->output_offset, a->act_min,
                    a->act_max);
            }
            mnn_pace_t pace;
            mnn_pace_init(&pace, mnn_sat_mul(2 * (c2 - c0), K));
            for (uint32_t p = 0; p < pixels; p += 2) {
                mnn_pace(&pace);
                // Output pixels p and q (q == p for an odd last one: computed twice).
                const uint32_t q = p + 1 < pixels ? p + 1 : p;
                const uint32_t pp[2] = { p, q };
                for (uint32_t j = 0; j < 2; j++) {
                    uint32_t b = pp[j] / plane, r = pp[j] % plane;
                    fill_column(a, a->input + b * g->in_h * g->in_w * g->in_c,
                        (int32_t)((r / g->out_w) * g->stride_h) - g->pad_top,
                        (int32_t)((r % g->out_w) * g->stride_w) - g->pad_left, grp * fc, col, j);
                }
                int8_t *y0 = a->output + p * g->out_c, *y1 = a->output + q * g->out_c;
                gemm_block(a, &blk[0], col, K, c0, c1, y0, y1);
                if (c2 > c1) {
                    gemm_block(a, &blk[1], col, K, c1, c2, y0, y1);
                }
            }
        }
    }
}

void mnn_conv_s8(const mnn_conv_args_t *a) {
    if (a->scratch) {
        // the column fill fill_column() takes for every pixel of this op
        const uint32_t fc = a->g.in_c / a->groups;
        if ((fc & 3) == 0) {
            MNN_COUNT_VARIANT(CONV_IM2COL_W4);
        } else if (a->g.k_h * a->g.k_w * fc > MNN_CONV_TMP) {
            MNN_COUNT_VARIANT(CONV_IM2COL_SLOW);
        } else {
            MNN_COUNT_VARIANT(CONV_IM2COL_PLAIN);
        }
        conv_im2col(a);
    } else if (MNN_WITH_VARIANT(CONV_DIRECT)) {     // only without scratch (mnn_ops.h)
        MNN_COUNT_VARIANT(CONV_DIRECT);
        conv_direct(a);
    }
}

// --- convolution followed by max pooling -----------------------------------
//
// Each output is the largest of the pool_h x pool_w convolution outputs of
// its window. Requantization is monotonic here (the loader admits only
// multipliers >= 0 and shifts <= 0), so the maximum of the sums (bias
// included, wrapping like every sum) is requantized once instead of each sum,
// and the pooled-away convolution outputs are never stored.

static void conv_pool_direct(const mnn_conv_args_t *a) {
    const mnn_geom_t *g = &a->g;
    const uint32_t ph = a->pool_h, pw = a->pool_w, oh = g->out_h / ph, ow = g->out_w / pw;
    mnn_pace_t pace;
    mnn_pace_init(&pace, mnn_sat_mul(mnn_sat_mul(g->out_c, mnn_sat_mul(ph, pw)), g->k_h * g->k_w * g->in_c));
    int8_t *y = a->output;
    for (uint32_t b = 0; b < g->batches; b++) {
        const int8_t *xb = a->input + b * g->in_h * g->in_w * g->in_c;
        for (uint32_t py = 0; py < oh; py++) {
            for (uint32_t px = 0; px < ow; px++) {
                mnn_pace(&pace);
                for (uint32_t oc = 0; oc < g->out_c; oc++) {
                    int32_t best = INT32_MIN;
                    for (uint32_t dy = 0; dy < ph; dy++) {
                        const int32_t iy0 = (int32_t)((py * ph + dy) * g->stride_h) - g->pad_top;
                        for (uint32_t dx = 0; dx < pw; dx++) {
                            const int32_t ix0 = (int32_t)((px * pw + dx) * g->stride_w) - g->pad_left;
                            uint32_t s = direct_sum(a, xb, iy0, ix0, oc);
                            s += a->bias ? (uint32_t)mnn_ld32(a->bias, oc) : 0;
                            best = (int32_t)s > best ? (int32_t)s : best;
                        }
                    }
                    *y++ = mnn_requant_out((uint32_t)best, NULL, oc, a->mult, a->shift, oc, a->output_offset,
                        a->act_min, a->act_max);
                }
            }
        }
    }
}

// The largest of the P window sums (bias included) of channels [0, n) of
// one pooled output: w holds each channel's weights as kw words of int16
// pairs, cols the P columns of the window (kw words each). Inlined with kw
// and P constant, so a channel's weights stay in registers across the window.
static inline __attribute__((always_inline)) void window_max(const int16_t *w, const int16_t *cols, uint32_t kw,
    uint32_t P, const uint32_t *bias, uint32_t n, uint32_t *best) {
    for (uint32_t i = 0; i < n; i++, w += 2 * kw) {
        uint32_t wr[8];
        #pragma GCC unroll 8
        for (uint32_t j = 0; j < kw; j++) {
            wr[j] = mnn_rd32(w + 2 * j);
        }
        const int16_t *x = cols;
        int32_t m = INT32_MIN;
        #pragma GCC unroll 4
        for (uint32_t p = 0; p < P; p++, x += 2 * kw) {
            int32_t s = (int32_t)bias[i];
            #pragma GCC unroll 8
            for (uint32_t j = 0; j < kw; j++) {
                s = mnn_dot2(wr[j], mnn_rd32(x + 2 * j), s);
            }
            m = s > m ? s : m;
        }
        best[i] = (uint32_t)m;
    }
}

// Any kw: the weights read from memory for every column.
static void window_max_any(const int16_t *w, const int16_t *cols, uint32_t kw, uint32_t P, const uint32_t *bias,
    uint32_t n, uint32_t *best) {
    for (uint32_t i = 0; i < n; i++, w += 2 * kw) {
        const int16_t *x = cols;
        int32_t m = INT32_MIN;
        for (uint32_t p = 0; p < P; p++, x += 2 * kw) {
            int32_t s = (int32_t)bias[i];
            for (uint32_t j = 0; j < kw; j++) {
                s = mnn_dot2(mnn_rd32(w + 2 * j), mnn_rd32(x + 2 * j), s);
            }
            m = s > m ? s : m;
        }
        best[i] = (uint32_t)m;
    }
}

// One pooled output, channels [0, n): window maxima, then one requantization each.
__attribute__((noinline))
static void pool_channels(const int16_t *w, const int16_t *cols, uint32_t kw, uint32_t P,
    const mnn_rq_block_t *blk, uint32_t n, int8_t *y) {
    uint32_t best[MNN_RQ_BLOCK];
    // 2x2 pooling (the usual one) with up to 16 taps: the weights in registers
    #define MNN_KW(k) \
    case k: \
        window_max(w, cols, k, 4, blk->bias, n, best); \
        break;
    switch (P == 4 ? kw : 0) {
        MNN_KW(1) MNN_KW(2) MNN_KW(3) MNN_KW(4) MNN_KW(5) MNN_KW(6) MNN_KW(7) MNN_KW(8)
        default:
            window_max_any(w, cols, kw, P, blk->bias, n, best);
    }
    #undef MNN_KW
    mnn_rq_block_apply(blk, best, 1, n, y, 1, 0);
}

// A pooling window whose receptive field lies inside the input (dil_w 1):
// each row of taps of each of its columns is one run of the int16 image.
typedef struct {
    uint32_t ph, pw, K2, k_h;
    uint32_t run;       // k_w * in_c: values per row of taps
    uint32_t row;       // image values from one row of taps to the next
    uint32_t step_y;    // ... from one window row's receptive field to the next
    uint32_t step_x;    // ... and from one window column's to the next
} window_t;

// Inlined with run constant for the short rows of small kernels.
static inline __attribute__((always_inline)) void fill_window_run(const int16_t *src0, const window_t *w,
    int16_t *col, uint32_t run) {
    const uint32_t row = w->row, k_h = w->k_h, K2 = w->K2, step_x = w->step_x, pw = w->pw;
    for (uint32_t dy = 0; dy < w->ph; dy++, src0 += w->step_y) {
        const int16_t *src1 = src0;
        for (uint32_t dx = 0; dx < pw; dx++, src1 += step_x, col += K2) {
            const int16_t *src = src1;
            int16_t *t = col;
            for (uint32_t ky = k_h; ky; ky--, src += row, t += run) {
                #pragma GCC unroll 4
                for (uint32_t i = 0; i < run / 2; i++) {
                    mnn_wr32(t + 2 * i, mnn_rd32(src + 2 * i));
                }
                if (run & 1) {
                    t[run - 1] = src[run - 1];
                }
            }
        }
    }
}

__attribute__((noinline))
static void fill_window(const int16_t *src0, const window_t *w, int16_t *col) {
    #define MNN_RUN(r) \
    case r: \
        fill_window_run(src0, w, col, r); \
        break;
    switch (w->run) {
        MNN_RUN(1) MNN_RUN(2) MNN_RUN(3) MNN_RUN(4)
        default:
            fill_window_run(src0, w, col, w->run);
    }
    #undef MNN_RUN
}

// Weights widened to int16 once per call, then per pooled output: the
// window's P receptive fields as int16 columns, and per channel block the
// P dot products, their maximum and one requantization.
static void conv_pool_fast(const mnn_conv_args_t *a) {
    const mnn_geom_t *g = &a->g;
    const uint32_t K = g->k_h * g->k_w * g->in_c, K2 = K + (K & 1);
    const uint32_t ph = a->pool_h, pw = a->pool_w, P = ph * pw, oh = g->out_h / ph, ow = g->out_w / pw;
    int16_t *wq = a->scratch, *cols = a->scratch + g->out_c * K2;
    // rows and columns of the input one pooling window's receptive field spans
    const int64_t span_h = (int64_t)(ph - 1) * g->stride_h + (int64_t)(g->k_h - 1) * g->dil_h + 1;
    const int64_t span_w = (int64_t)(pw - 1) * g->stride_w + (int64_t)(g->k_w - 1) * g->dil_w + 1;
    for (uint32_t oc = 0; oc < g->out_c; oc++) {
        const int8_t *src = a->weights + oc * K;
        int16_t *dst = wq + oc * K2;
        for (uint32_t k = 0; k < K; k++) {
            dst[k] = src[k];
        }
        if (K2 > K) {
            dst[K] = 0;
        }
    }
    for (uint32_t p = 0; p < P; p++) {
        cols[p * K2 + K2 - 1] = 0;      // the odd slot; the fill overwrites it when K is even
    }
    const window_t win = {
        .ph = ph, .pw = pw, .K2 = K2, .k_h = g->k_h, .run = g->k_w * g->in_c,
        .row = g->dil_h * g->in_w * g->in_c, .step_y = g->stride_h * g->in_w * g->in_c,
        .step_x = g->stride_w * g->in_c,
    };
    const uint32_t image = g->in_h * g->in_w * g->in_c;
    int16_t *img = cols + P * K2;
    mnn_rq_block_t blk;
    for (uint32_t b = 0; b < g->batches; b++) {
        const int8_t *xb = a->input + b * image;
        for (uint32_t i = 0; i < image; i++) {
            img[i] = (int16_t)(xb[i] + a->input_offset);
        }
        for (uint32_t c0 = 0; c0 < g->out_c; c0 += MNN_RQ_BLOCK) {
            const uint32_t n = g->out_c - c0 > MNN_RQ_BLOCK ? MNN_RQ_BLOCK : g->out_c - c0;
            mnn_rq_block_prepare(&blk, a->bias, a->mult, a->shift, c0, n, a->output_offset, a->act_min,
                a->act_max);
            int8_t *y = a->output + b * oh * ow * g->out_c + c0;
            const uint32_t px_work = mnn_sat_mul(n * P, K), seg = mnn_segment(px_work);
            for (uint32_t py = 0; py < oh; py++) {
                const int32_t iy0 = (int32_t)(py * ph * g->stride_h) - g->pad_top;
                const int rows_in = iy0 >= 0 && (int64_t)iy0 + span_h <= (int64_t)g->in_h;
                for (uint32_t px0 = 0, px1; px0 < ow; px0 = px1) {
                    px1 = ow - px0 > seg ? px0 + seg : ow;
                    mnn_work(mnn_sat_mul(px_work, px1 - px0));
                    for (uint32_t px = px0; px < px1; px++, y += g->out_c) {
                        const int32_t ix0 = (int32_t)(px * pw * g->stride_w) - g->pad_left;
                        if (rows_in && g->dil_w == 1 && ix0 >= 0 && (int64_t)ix0 + span_w <= (int64_t)g->in_w) {
                            fill_window(img + ((uint32_t)iy0 * g->in_w + (uint32_t)ix0) * g->in_c, &win, cols);
                        } else {
                            int16_t *col = cols;
                            for (uint32_t dy = 0; dy < ph; dy++) {
                                for (uint32_t dx = 0; dx < pw; dx++, col += K2) {
                                    fill_plain(a, xb, iy0 + (int32_t)(dy * g->stride_h),
                                        ix0 + (int32_t)(dx * g->stride_w), 0, col);
                                }
                            }
                        }
                        pool_channels(wq + c0 * K2, cols, K2 / 2, P, &blk, n, y);
                    }
                }
            }
        }
    }
}

void mnn_conv_pool_s8(const mnn_conv_args_t *a) {
    if (a->scratch) {
        MNN_COUNT_VARIANT(CONV_POOL_FAST);
        conv_pool_fast(a);
    } else if (MNN_WITH_VARIANT(CONV_POOL_DIRECT)) {
        MNN_COUNT_VARIANT(CONV_POOL_DIRECT);
        conv_pool_direct(a);
    }
}
