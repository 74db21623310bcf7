// mnn_cycles: a QEMU TCG plugin that estimates the cycles a Cortex-M4 or a
// Cortex-M7 would spend on the code QEMU executes (zero wait states).
//
// At translation time every Thumb/Thumb-2 instruction of a translation block
// (TB) is decoded into a cost class and the registers it reads and writes;
// the block's static cost follows from the core's timing table (the
// Cortex-M4 Technical Reference Manual, table 3-1 and section 3.3.2 "Load/store
// timings"; see docs/benchmarks.md for the model and what it leaves out). At run
// time one callback per executed block adds that cost, plus the pipeline
// refill of a taken branch: a block ending in a branch was taken when the next
// block does not start right after it. A block left before its last
// instruction (under -icount, an I/O access QEMU runs again on its own) has
// the part that did not run taken back.
//
// Arguments (-plugin mnn_cycles.so,core=m4,out=FILE,mark=0xADDR,...):
//   core=m4|m7     the timing model (default m4)
//   out=FILE       where events and the final totals are written
//   mark=0xADDR    (up to 8) an address whose execution writes an event line
//                  "E ADDR INSNS CYCLES": the counts before that instruction
// At exit: "X INSNS CYCLES", the totals of the whole run.
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// The QEMU plugin API (QEMU 7.2's qemu-plugin.h, API version 1): only the
// declarations this plugin uses, written from the documented signatures.
typedef uint64_t qemu_plugin_id_t;
struct qemu_plugin_tb;
struct qemu_plugin_insn;
typedef struct {
    const char *target_name;
    struct {
        int min;
        int cur;
    } version;
    bool system_emulation;
    union {
        struct {
            int smp_vcpus;
            int max_vcpus;
        } system;
    } u;
} qemu_info_t;
enum qemu_plugin_cb_flags {
    QEMU_PLUGIN_CB_NO_REGS,
    QEMU_PLUGIN_CB_R_REGS,
    QEMU_PLUGIN_CB_RW_REGS,
};
typedef void (*qemu_plugin_udata_cb_t)(qemu_plugin_id_t id, void *userdata);
typedef void (*qemu_plugin_vcpu_udata_cb_t)(unsigned int vcpu_index, void *userdata);
typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);
void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_tb_trans_cb_t cb);
void qemu_plugin_register_vcpu_tb_exec_cb(struct qemu_plugin_tb *tb, qemu_plugin_vcpu_udata_cb_t cb,
    enum qemu_plugin_cb_flags flags, void *userdata);
void qemu_plugin_register_vcpu_insn_exec_cb(struct qemu_plugin_insn *insn, qemu_plugin_vcpu_udata_cb_t cb,
    enum qemu_plugin_cb_flags flags, void *userdata);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, qemu_plugin_udata_cb_t cb, void *userdata);
enum qemu_plugin_op {
    QEMU_PLUGIN_INLINE_ADD_U64,
};
void qemu_plugin_register_vcpu_insn_exec_inline(struct qemu_plugin_insn *insn, enum qemu_plugin_op op,
    void *ptr, uint64_t imm);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *tb, size_t idx);
const void *qemu_plugin_insn_data(const struct qemu_plugin_insn *insn);
size_t qemu_plugin_insn_size(const struct qemu_plugin_insn *insn);
uint64_t qemu_plugin_insn_vaddr(const struct qemu_plugin_insn *insn);

#define EXPORT __attribute__((visibility("default")))

EXPORT int qemu_plugin_version = 1;

// Cost classes.
enum {
    K_ALU,          // data processing, moves, extends, saturation, SIMD, hints
    K_MUL,          // MUL, MLA, MLS, SMLA*, SMLAD, SMULL, UMLAL, ... (single-cycle MAC)
    K_DIV,          // SDIV, UDIV: 2-12 cycles, taken as DIV_CYCLES
    K_LOAD,         // one register loaded: LDR, LDRB, LDRH, LDRSB, LDRSH, LDREX
    K_STORE_IMM,    // STR/STRB/STRH with an immediate offset
    K_STORE_REG,    // STR/STRB/STRH with a register offset
    K_DUAL,         // LDRD, STRD
    K_MULTI,        // LDM, STM, PUSH, POP, VLDM, VSTM, VPUSH, VPOP: n registers (words)
    K_BRANCH,       // B, BL, BX, BLX, CBZ, CBNZ
    K_TABLE,        // TBB, TBH
    K_BARRIER,      // DSB, DMB (ISB: K_BARRIER with isb set)
    K_IT,           // IT
    K_FP,           // VADD, VSUB, VMUL, VCVT, VABS, VNEG, VCMP, VMOV, VMRS
    K_FMAC,         // VMLA, VMLS, VNMLA, VNMLS, VFMA, VFMS, VFNMA, VFNMS
    K_FDIV,         // VDIV, VSQRT
    K_FMEM,         // VLDR, VSTR
};

#define DIV_CYCLES 7        // SDIV/UDIV take 2-12 cycles on both cores: the middle
#define FDIV_CYCLES 14      // VDIV.F32, VSQRT.F32
#define M4_REFILL 2         // P, a pipeline refill: 1-3 cycles on the M4, taken as 2
#define M7_TAKEN 1          // the M7 predicts branches; a predicted taken branch costs one more cycle

typedef struct {
    uint8_t cls;
    uint8_t n;          // registers (words) of K_MULTI
    bool flow;          // writes the PC
    bool known;         // uses/defs are complete (the M7 pairs only such instructions)
    bool isb;
    uint16_t addr;      // registers forming the address of a load or store
    uint16_t uses;      // core registers read
    uint16_t defs;      // core registers written
} insn_t;

#define R(r) ((uint16_t)(1u << (r)))

static int popcount16(uint32_t v) {
    int n = 0;
    for (v &= 0xffff; v; v &= v - 1) {
        n++;
    }
    return n;
}

static void set_mem(insn_t *o, bool load, uint16_t addr, unsigned rt) {
    o->cls = load ? K_LOAD : K_STORE_IMM;
    o->addr = addr;
    o->uses = addr | (load ? 0 : R(rt));
    o->defs = load ? R(rt) : 0;
}

static void decode16(uint32_t h, insn_t *o) {
    o->cls = K_ALU;
    if ((h >> 11) == 3) {                           // ADD/SUB register or 3-bit immediate
        o->defs = R(h & 7);
        o->uses = R((h >> 3) & 7) | ((h & 0x400) ? 0 : R((h >> 6) & 7));
    } else if ((h >> 13) == 0) {                    // shift by immediate
        o->defs = R(h & 7);
        o->uses = R((h >> 3) & 7);
    } else if ((h >> 13) == 1) {                    // MOV/CMP/ADD/SUB 8-bit immediate
        unsigned r = (h >> 8) & 7, op = (h >> 11) & 3;
        o->defs = op == 1 ? 0 : R(r);
        o->uses = op == 0 ? 0 : R(r);
    } else if ((h >> 10) == 0x10) {                 // data processing on low registers
        unsigned op = (h >> 6) & 15;
        o->uses = R(h & 7) | R((h >> 3) & 7);
        o->defs = (op == 8 || op == 10 || op == 11) ? 0 : R(h & 7);
        o->cls = op == 13 ? K_MUL : K_ALU;
    } else if ((h >> 10) == 0x11) {                 // high-register ADD/CMP/MOV, BX, BLX
        unsigned op = (h >> 8) & 3, rm = (h >> 3) & 15, rd = (h & 7) | ((h >> 4) & 8);
        if (op == 3) {
            o->cls = K_BRANCH;
            o->flow = true;
            o->uses = R(rm);
            o->defs = (h & 0x80) ? R(14) : 0;
        } else {
            o->uses = R(rm) | (op != 2 ? R(rd) : 0);
            o->defs = op == 1 ? 0 : R(rd);
            o->flow = rd == 15 && op != 1;
        }
    } else if ((h >> 11) == 9) {                    // LDR literal
        set_mem(o, true, 0, (h >> 8) & 7);
    } else if ((h >> 12) == 5) {                    // load/store with a register offset
        unsigned opb = (h >> 9) & 7;
        set_mem(o, opb >= 3, R((h >> 3) & 7) | R((h >> 6) & 7), h & 7);
        if (opb < 3) {
            o->cls = K_STORE_REG;
        }
    } else if ((h >> 13) == 3 || (h >> 12) == 8) {  // load/store with an immediate offset
        set_mem(o, h & 0x800, R((h >> 3) & 7), h & 7);
    } else if ((h >> 12) == 9) {                    // load/store SP-relative
        set_mem(o, h & 0x800, R(13), (h >> 8) & 7);
    } else if ((h >> 12) == 10) {                   // ADR, ADD Rd, SP, #imm
        o->defs = R((h >> 8) & 7);
        o->uses = (h & 0x800) ? R(13) : 0;
    } else if ((h >> 12) == 11) {                   // miscellaneous
        if ((h & 0x0f00) == 0x0000) {               // ADD/SUB SP, SP, #imm
            o->defs = o->uses = R(13);
        } else if ((h & 0x0500) == 0x0100) {        // CBZ, CBNZ
            o->cls = K_BRANCH;
            o->flow = true;
            o->uses = R(h & 7);
        } else if ((h & 0x0f00) == 0x0200 || (h & 0x0f00) == 0x0a00) {     // extend, REV
            o->defs = R(h & 7);
            o->uses = R((h >> 3) & 7);
        } else if ((h & 0x0e00) == 0x0400) {        // PUSH
            o->cls = K_MULTI;
            o->n = popcount16(h & 0xff) + ((h >> 8) & 1);
            o->uses = (h & 0xff) | ((h & 0x100) ? R(14) : 0) | R(13);
            o->defs = R(13);
        } else if ((h & 0x0e00) == 0x0c00) {        // POP
            o->cls = K_MULTI;
            o->n = popcount16(h & 0xff) + ((h >> 8) & 1);
            o->flow = (h & 0x100) != 0;
            o->uses = R(13);
            o->defs = (h & 0xff) | R(13);
        } else if ((h & 0x0f00) == 0x0f00 && (h & 15)) {
            o->cls = K_IT;
            o->known = false;
        } else {                                    // CPS, BKPT, hints
            o->known = false;
        }
    } else if ((h >> 12) == 12) {                   // LDMIA, STMIA
        o->cls = K_MULTI;
        o->n = popcount16(h & 0xff);
        o->addr = R((h >> 8) & 7);
        o->uses = o->addr | ((h & 0x800) ? 0 : (h & 0xff));
        o->defs = o->addr | ((h & 0x800) ? (h & 0xff) : 0);
    } else if ((h >> 12) == 13) {                   // B<cond>, UDF, SVC
        if (((h >> 8) & 15) < 14) {
            o->cls = K_BRANCH;
            o->flow = true;
        } else {
            o->known = false;
        }
    } else if ((h >> 11) == 0x1c) {                 // B
        o->cls = K_BRANCH;
        o->flow = true;
    } else {
        o->known = false;
    }
}

// Floating point (coprocessors 10 and 11): hw1 is 111x11xx.
static void decode_fp(uint32_t h1, uint32_t h2, insn_t *o) {
    o->known = false;
    o->cls = K_FP;
    if ((h2 & 0x0e00) != 0x0a00) {
        o->cls = K_ALU;                             // another coprocessor
    } else if ((h1 & 0x0e00) == 0x0c00) {           // extension register load/store, 64-bit moves
        if ((h1 & 0x01e0) == 0x0040) {
            return;                                 // VMOV of two core registers
        }
        bool p = h1 & 0x100, w = h1 & 0x20;
        o->addr = R(h1 & 15);
        o->known = true;
        o->uses = o->addr;
        if (p && !w) {
            o->cls = K_FMEM;
        } else {
            o->cls = K_MULTI;
            o->n = h2 & 0xff;
            o->defs = w ? o->addr : 0;
        }
    } else if ((h1 & 0x0f00) == 0x0e00 && !(h2 & 0x10)) {     // data processing
        unsigned opc1 = (h1 >> 4) & 0xb, opc2 = h1 & 15, opc3 = (h2 >> 6) & 3;
        o->known = true;
        if (opc1 == 0x0 || opc1 == 0x1 || opc1 == 0x9 || opc1 == 0xa) {
            o->cls = K_FMAC;
        } else if (opc1 == 0x8 || (opc1 == 0xb && opc2 == 1 && opc3 == 3)) {
            o->cls = K_FDIV;
        }
    }
}

static void decode32(uint32_t h1, uint32_t h2, insn_t *o) {
    unsigned rn = h1 & 15, rd = (h2 >> 8) & 15, rm = h2 & 15, rt = h2 >> 12;
    o->cls = K_ALU;
    if ((h1 >> 11) == 0x1d) {
        if ((h1 & 0x0640) == 0x0000) {              // LDM, STM (PUSH.W, POP.W)
            bool load = h1 & 0x10, wb = h1 & 0x20;
            o->cls = K_MULTI;
            o->n = popcount16(h2);
            o->addr = R(rn);
            o->uses = o->addr | (load ? 0 : (h2 & 0x7fff));
            o->defs = (wb ? o->addr : 0) | (load ? (h2 & 0x7fff) : 0);
            o->flow = load && (h2 & 0x8000);
        } else if ((h1 & 0x0640) == 0x0040) {       // dual, exclusive, table branch
            unsigned op1 = (h1 >> 7) & 3, op2 = (h1 >> 4) & 3;
            if (op1 == 1 && op2 == 1 && (h2 & 0xffe0) == 0xf000) {
                o->cls = K_TABLE;
                o->flow = true;
                o->uses = R(rn) | R(rm);
            } else if (op1 == 0 && op2 < 2) {       // STREX, LDREX: timed as LDR
                set_mem(o, true, R(rn), op2 ? rt : rd);
                o->known = false;
            } else if (op1 == 1 && op2 < 2) {      // LDREXB/H, STREXB/H
                set_mem(o, true, R(rn), rt);
                o->known = false;
            } else {                                // LDRD, STRD
                bool load = h1 & 0x10;
                o->cls = K_DUAL;
                o->addr = R(rn);
                o->uses = o->addr | (load ? 0 : R(rt) | R(rd));
                o->defs = load ? R(rt) | R(rd) : 0;
                o->defs |= (h1 & 0x20) ? R(rn) : 0;
            }
        } else if ((h1 & 0x0600) == 0x0200) {       // data processing, shifted register
            bool s = h1 & 0x10;
            o->uses = R(rm) | (rn != 15 ? R(rn) : 0);
            o->defs = (rd == 15 && s) ? 0 : R(rd);  // TST, TEQ, CMN, CMP write no register
        } else {
            decode_fp(h1, h2, o);
        }
    } else if ((h1 >> 11) == 0x1e) {
        if (!(h2 & 0x8000)) {                       // data processing, immediate
            bool movw = (h1 & 0x0bf0) == 0x0240, movt = (h1 & 0x0bf0) == 0x02c0;
            o->uses = (rn != 15 && !movw && !movt) ? R(rn) : 0;     // MOVW, MOVT: imm4 there
            o->defs = rd == 15 ? 0 : R(rd);
            if (movt || (h1 & 0x0bf0) == 0x0360) {
                o->uses |= R(rd);                   // MOVT, BFI/BFC keep part of Rd
            }
        } else {
            unsigned op1 = (h2 >> 12) & 7;
            if ((op1 & 5) == 5) {                   // BL
                o->cls = K_BRANCH;
                o->flow = true;
                o->defs = R(14);
            } else if ((op1 & 5) == 1) {            // B.W
                o->cls = K_BRANCH;
                o->flow = true;
            } else if ((op1 & 5) == 0 && (h1 & 0x0380) != 0x0380) {      // B<cond>.W
                o->cls = K_BRANCH;
                o->flow = true;
            } else if ((op1 & 5) == 0 && (h1 & 0x07f0) == 0x03b0) {      // DSB, DMB, ISB
                o->cls = K_BARRIER;
                o->isb = ((h2 >> 4) & 15) == 6;
                o->known = false;
            } else {                                // MSR, MRS, hints
                o->known = false;
                o->defs = R(rd);
            }
        }
    } else {
        if ((h1 & 0x0600) == 0x0000) {              // load/store single (1111100x)
            bool load = h1 & 0x10;
            bool regoff = !(h1 & 0x80) && (h2 & 0x0fc0) == 0 && rn != 15;
            uint16_t addr = rn == 15 ? 0 : (R(rn) | (regoff ? R(rm) : 0));
            if (load && rt == 15) {
                if (((h1 >> 5) & 3) == 2) {         // LDR PC
                    set_mem(o, true, addr, 15);
                    o->flow = true;
                } else {
                    o->uses = addr;                 // PLD, PLI: a hint, one cycle
                }
            } else {
                set_mem(o, load, addr, rt);
                if (!load && regoff) {
                    o->cls = K_STORE_REG;
                }
                if (!regoff && !(h1 & 0x80) && (h2 & 0x0100)) {
                    o->defs |= R(rn);               // pre/post-indexed with writeback
                }
            }
        } else if ((h1 & 0x0f00) == 0x0a00) {       // data processing, register; parallel; misc
            o->uses = R(rm) | (rn != 15 ? R(rn) : 0);
            o->defs = R(rd);
        } else if ((h1 & 0x0f80) == 0x0b00) {       // multiply, multiply-accumulate
            o->cls = K_MUL;
            o->uses = R(rn) | R(rm) | (rt != 15 ? R(rt) : 0);
            o->defs = R(rd);
        } else if ((h1 & 0x0f80) == 0x0b80) {       // long multiply, divide
            unsigned op1 = (h1 >> 4) & 7, op2 = (h2 >> 4) & 15;
            o->uses = R(rn) | R(rm);
            if ((op1 == 1 || op1 == 3) && op2 == 15) {
                o->cls = K_DIV;
                o->defs = R(rd);
            } else {
                o->cls = K_MUL;
                o->defs = R(rt) | R(rd);
                o->uses |= op1 >= 4 ? R(rt) | R(rd) : 0;
            }
        } else if ((h1 & 0x0c00) == 0x0c00) {
            decode_fp(h1, h2, o);
        } else {
            o->known = false;
        }
    }
}

static void decode(const uint8_t *d, size_t size, insn_t *o) {
    memset(o, 0, sizeof(*o));
    o->known = true;
    uint32_t h1 = d[0] | (d[1] << 8);
    if (size >= 4) {
        decode32(h1, d[2] | (d[3] << 8), o);
    } else {
        decode16(h1, o);
    }
}

// The cost of one instruction given the one before it in the block (NULL at
// the block's start). Cortex-M4, zero wait states: TRM table 3-1 and section
// 3.3.2. The refill of a taken branch is added at run time.
static unsigned cost_m4(const insn_t *o, const insn_t *prev) {
    bool after_load = prev && prev->cls == K_LOAD && !prev->flow;
    // A load or store whose address a data-processing instruction just wrote
    // stalls one cycle (no forwarding path to the address generation).
    unsigned agu = prev && (prev->cls == K_ALU || prev->cls == K_MUL) && (o->addr & prev->defs) ? 1 : 0;
    switch (o->cls) {
        case K_DIV:
            return DIV_CYCLES;
        case K_LOAD:
            // Two cycles; one when it follows a load whose result it does
            // not need for its address (the two pipeline).
            return agu + ((after_load && !(o->addr & prev->defs)) ? 1 : 2);
        case K_STORE_IMM:
            return agu + 1;
        case K_STORE_REG:
            return agu + ((after_load && !(o->addr & prev->defs)) ? 1 : 2);
        case K_DUAL:
            return agu + 3;
        case K_MULTI:
            return agu + 1 + o->n;
        case K_TABLE:
            return 2;
        case K_BARRIER:
            return 1 + (o->isb ? M4_REFILL : 0);
        case K_FMAC:
            return 3;
        case K_FDIV:
            return FDIV_CYCLES;
        case K_FMEM:
            return agu + 2;
        default:                // K_ALU, K_MUL, K_BRANCH, K_IT, K_FP
            return 1;
    }
}

static bool is_mem(const insn_t *o) {
    return o->cls == K_LOAD || o->cls == K_STORE_IMM || o->cls == K_STORE_REG || o->cls == K_DUAL ||
           o->cls == K_FMEM || o->cls == K_MULTI;
}

static bool is_fp(const insn_t *o) {
    return o->cls == K_FP || o->cls == K_FMAC || o->cls == K_FDIV || o->cls == K_FMEM;
}

// Cortex-M7: each instruction issues in one cycle except divides, square
// roots and multiple transfers (two registers a cycle over the 64-bit path);
// two neighbours issue together when the second neither reads nor writes what
// the first writes, at most one of them touches memory, multiplies or is
// floating point, and the first is not a branch, IT or barrier. An
// approximation of the dual-issue rules, documented in docs/benchmarks.md.
static unsigned cost_m7(const insn_t *o, const insn_t *prev, bool *paired) {
    unsigned c;
    switch (o->cls) {
        case K_DIV:
            c = DIV_CYCLES;
            break;
        case K_FDIV:
            c = FDIV_CYCLES;
            break;
        case K_MULTI:
            c = 1 + (o->n + 1) / 2;
            break;
        case K_TABLE:
            c = 2;
            break;
        default:
            c = 1;
    }
    bool simple = c == 1 && o->known && o->cls != K_IT && o->cls != K_BARRIER;
    bool can = prev && !*paired && simple && prev->known && !prev->flow && prev->cls != K_IT &&
        prev->cls != K_BARRIER && prev->cls != K_DIV && prev->cls != K_FDIV && prev->cls != K_MULTI &&
        prev->cls != K_TABLE && !(is_mem(o) && is_mem(prev)) && !(o->cls == K_MUL && prev->cls == K_MUL) &&
        !(is_fp(o) && is_fp(prev)) && !((o->uses | o->defs) & prev->defs);
    *paired = can;
    return can ? 0 : c;
}

// One translated block.
typedef struct {
    uint64_t start;         // the block's first address
    uint64_t next;          // the address right after the block
    uint32_t cycles;        // static cost
    uint32_t insns;
    uint32_t taken;         // added when the block's last instruction branched
    bool ends_in_flow;
    bool marked;            // its first instruction is marked (an event at the block's start)
    struct {
        uint32_t offset;    // from start
        uint32_t before;    // the block's cycles before this instruction
    } insn[];
} tb_info_t;

// A marked instruction inside a block: the counts before it, from the block's start.
typedef struct {
    uint64_t addr;
    uint32_t cycles;
    uint32_t insns;
} mark_info_t;

#define MAX_MARKS 8

static bool m7;
static FILE *out;
static uint64_t marks[MAX_MARKS];
static int n_marks;

// Run-time state (one vCPU).
static uint64_t insns, cycles, tb_insns, tb_cycles;
static uint64_t pending_next;       // the fall-through address of a branch that ended the last block
static uint32_t pending_taken;
static bool pending;
static const tb_info_t *last_tb;    // the block that started last
static uint64_t completions, seen_completions;  // blocks whose last instruction ran (inline counter)

static void emit(uint64_t addr, uint64_t n, uint64_t c) {
    if (out) {
        fprintf(out, "E %#llx %llu %llu\n", (unsigned long long)addr, (unsigned long long)n,
            (unsigned long long)c);
    }
}

static void mark_exec(unsigned int vcpu, void *udata) {
    (void)vcpu;
    const mark_info_t *m = udata;
    emit(m->addr, tb_insns + m->insns, tb_cycles + m->cycles);
}

// The start of a block: settle the branch that ended the previous one (a
// block that does not start at its fall-through address follows a taken
// branch), then count the whole block.
static void tb_start(unsigned int vcpu, void *udata) {
    (void)vcpu;
    const tb_info_t *t = udata;
    const tb_info_t *p = last_tb;
    bool completed = completions != seen_completions;
    seen_completions = completions;
    if (p && !completed) {
        // The last block stopped early: under -icount an I/O access that is
        // not a block's last instruction makes QEMU leave the block and run
        // the access again in a block of its own (an exception also leaves a
        // block early). Take back what was counted from the access on; its
        // closing branch never ran.
        for (uint32_t i = 0; i < p->insns; i++) {
            if (p->start + p->insn[i].offset == t->start) {
                insns -= p->insns - i;
                cycles -= p->cycles - p->insn[i].before;
                break;
            }
        }
        pending = false;
    } else if (p && t != p && !p->ends_in_flow && t->start == p->start + p->insn[p->insns - 1].offset) {
        // An I/O access that was a block's last instruction, run again.
        insns -= 1;
        cycles -= p->cycles - p->insn[p->insns - 1].before;
        pending = false;
    }
    last_tb = t;
    if (pending && t->start != pending_next) {
        cycles += pending_taken;
    }
    tb_insns = insns;
    tb_cycles = cycles;
    if (t->marked) {
        emit(t->start, insns, cycles);
    }
    insns += t->insns;
    cycles += t->cycles;
    pending = t->ends_in_flow;
    pending_next = t->next;
    pending_taken = t->taken;
}

static void vcpu_tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb) {
    (void)id;
    size_t n = qemu_plugin_tb_n_insns(tb);
    if (n == 0) {
        return;
    }
    tb_info_t *t = calloc(1, sizeof(*t) + n * sizeof(t->insn[0]));
    if (!t) {
        return;
    }
    insn_t cur, prev;
    bool paired = false;
    t->start = qemu_plugin_insn_vaddr(qemu_plugin_tb_get_insn(tb, 0));
    for (size_t i = 0; i < n; i++) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
        uint64_t va = qemu_plugin_insn_vaddr(insn);
        size_t size = qemu_plugin_insn_size(insn);
        for (int k = 0; k < n_marks; k++) {
            if (marks[k] == va && i == 0) {
                t->marked = true;
            } else if (marks[k] == va) {
                // After the block's callback: the counts at its start plus those before this one.
                mark_info_t *m = malloc(sizeof(*m));
                if (m) {
                    m->addr = va;
                    m->cycles = t->cycles;
                    m->insns = t->insns;
                    qemu_plugin_register_vcpu_insn_exec_cb(insn, mark_exec, QEMU_PLUGIN_CB_NO_REGS, m);
                }
            }
        }
        t->insn[i].offset = (uint32_t)(va - t->start);
        t->insn[i].before = t->cycles;
        if (i == n - 1) {
            qemu_plugin_register_vcpu_insn_exec_inline(insn, QEMU_PLUGIN_INLINE_ADD_U64, &completions, 1);
        }
        decode(qemu_plugin_insn_data(insn), size, &cur);
        t->cycles += m7 ? cost_m7(&cur, i ? &prev : NULL, &paired) : cost_m4(&cur, i ? &prev : NULL);
        t->insns++;
        t->next = va + size;
        t->ends_in_flow = cur.flow;
        prev = cur;
    }
    t->taken = m7 ? M7_TAKEN : M4_REFILL;
    qemu_plugin_register_vcpu_tb_exec_cb(tb, tb_start, QEMU_PLUGIN_CB_NO_REGS, t);
}

static void at_exit(qemu_plugin_id_t id, void *udata) {
    (void)id;
    (void)udata;
    if (out) {
        fprintf(out, "X %llu %llu\n", (unsigned long long)insns, (unsigned long long)cycles);
        fclose(out);
        out = NULL;
    }
}

EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc, char **argv) {
    (void)info;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "core=m4") == 0) {
            m7 = false;
        } else if (strcmp(a, "core=m7") == 0) {
            m7 = true;
        } else if (strncmp(a, "out=", 4) == 0) {
            out = fopen(a + 4, "w");
            if (!out) {
                fprintf(stderr, "mnn_cycles: cannot write %s\n", a + 4);
                return -1;
            }
            setvbuf(out, NULL, _IOLBF, 0);
        } else if (strncmp(a, "mark=", 5) == 0 && n_marks < MAX_MARKS) {
            marks[n_marks++] = strtoull(a + 5, NULL, 0);
        } else {
            fprintf(stderr, "mnn_cycles: unknown argument %s\n", a);
            return -1;
        }
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, vcpu_tb_trans);
    qemu_plugin_register_atexit_cb(id, at_exit, NULL);
    return 0;
}
