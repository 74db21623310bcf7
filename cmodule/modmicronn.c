// The micronn MicroPython module: the only file that includes py/*.h.
//
//   m = micronn.Model(blob, arena=None)   blob: any bytes-like object or a file
//   y = m.run(x, out=None)                x: int8 buffer or array('f')
//   y1, y2 = m.run((x1, x2), out=None)    several inputs/outputs (m.inputs, m.outputs)
//   m.predict(x) -> (label, score)
//   m.profile(x) -> (total, (op ticks, ...))   time.ticks_cpu() units
//
// The same file builds two ways: as a user C module linked into the firmware,
// and as a native module, micronn.mpy (MICROPY_ENABLE_DYNRUNTIME: built by
// cmodule/natmod.mk, `micronn natmod build`), which stock firmware imports from
// its filesystem. A native module reaches the firmware only through
// py/dynruntime.h's function table; the differences are in the MICRONN_NATIVE
// blocks below and listed in docs/boards.md ("No firmware build").
#include <stdarg.h>
#include <string.h>

#if MICROPY_ENABLE_DYNRUNTIME
#define MICRONN_NATIVE (1)
#include "py/dynruntime.h"
#include "py/objarray.h"
#include "py/smallint.h"
#else
#define MICRONN_NATIVE (0)
#include "py/binary.h"
#include "py/gc.h"
#include "py/mphal.h"
#include "py/objarray.h"
#include "py/objstr.h"
#include "py/runtime.h"
#include "py/stream.h"
#endif

#include "mnn.h"
#include "mnn_ops.h"

#if MICRONN_NATIVE && MICRONN_OWN_STRING
// What the core, the kernels and the compiler call from the C library, where
// the build links none (cmodule/natmod.mk): the firmware's memset and memmove,
// the rest written here.
void *memset(void *s, int c, size_t n) {
    return mp_fun_table.memset_(s, c, n);
}

void *memmove(void *dst, const void *src, size_t n) {
    return mp_fun_table.memmove_(dst, src, n);
}

void *memcpy(void *dst, const void *src, size_t n) {
    return mp_fun_table.memmove_(dst, src, n);
}

void *memchr(const void *s, int c, size_t n) {
    const unsigned char *p = s;
    for (; n; n--, p++) {
        if (*p == (unsigned char)c) {
            return (void *)p;
        }
    }
    return NULL;
}

size_t strlen(const char *s) {
    const char *p = s;
    while (*p) {
        p++;
    }
    return (size_t)(p - s);
}

#endif

#if MICRONN_NATIVE && MICRONN_OWN_ROUNDF
// Half away from zero, as the C library's: exact for every float (from 2^23
// on a float is already whole; x - trunc(x) is exact below it).
float roundf(float x) {
    if (!(x > -8388608.0f && x < 8388608.0f)) {
        return x;       // whole, infinite or NaN
    }
    float t = (float)(int32_t)x;
    if (x - t >= 0.5f) {
        t += 1.0f;
    } else if (t - x >= 0.5f) {
        t -= 1.0f;
    }
    return t;
}
#endif

#if MICRONN_NATIVE && MICRONN_OWN_FDIV
#include "mnn_fdiv.h"
#endif

#if MICRONN_NATIVE
// py/dynruntime.h has no formatted exceptions: format into a buffer with the
// firmware's printf, then raise type(message).
typedef struct {
    size_t len;
    char text[128];
} micronn_msg_t;

static void msg_strn(void *data, const char *str, size_t len) {
    micronn_msg_t *m = data;
    for (; len && m->len < sizeof(m->text); len--) {
        m->text[m->len++] = *str++;
    }
}

static NORETURN void micronn_raise_varg(const mp_obj_type_t *type, const char *fmt, ...) {
    micronn_msg_t m;
    m.len = 0;
    mp_print_t print = { &m, msg_strn };
    va_list ap;
    va_start(ap, fmt);
    mp_vprintf(&print, fmt, ap);
    va_end(ap);
    mp_obj_t arg = mp_obj_new_str(m.text, m.len);
    nlr_raise(mp_call_function_n_kw(MP_OBJ_FROM_PTR(type), 1, 0, &arg));
}

#define mp_raise_msg_varg micronn_raise_varg
#define mp_type_MemoryError (*(mp_obj_type_t *)(mp_load_global(MP_QSTR_MemoryError)))
#define mp_type_memoryview (*(mp_obj_type_t *)(mp_load_global(MP_QSTR_memoryview)))
#define mp_print_str(print, s) mp_printf((print), "%s", (s))
#define m_malloc_maybe(n) m_realloc_maybe(NULL, (n), false)
#define mp_call_method_n_kw(n_args, n_kw, args) (mp_fun_table.call_method_n_kw((n_args), (n_kw), (args)))
// Argument tables name qstrs that are only known once the module is loaded.
#define ARGS_CONST const
// mpy_ld links zeroed variables only when they are global.
#define BSS_STATIC
#else
#define ARGS_CONST static const
#define BSS_STATIC static
#endif

// The name of an object's type, for "%q".
#define TYPE_QSTR(o) ((qstr)mp_obj_get_type(o)->name)

#define MICRONN_VERSION "0.1.0"

typedef struct _micronn_model_obj_t {
    mp_obj_base_t base;
    #if MICRONN_NATIVE
    mp_obj_t poll_obj;          // keeps the poll function alive (micronn_poll)
    #endif
    mp_obj_t blob_obj;          // keeps the blob alive
    const uint8_t *blob;
    size_t blob_len;
    mp_obj_t arena_obj;         // caller's arena object, or MP_OBJ_NULL
    uint8_t *arena;
    size_t arena_len;
    uint8_t *state;             // the model's state (state_size bytes), never shared; NULL if none
    bool started;               // the ONCE ops (initial state) have run: they run before the first run
    mnn_op_t *ops;
    mnn_model_t model;
    mnn_tensor_info_t in;
    mnn_tensor_info_t out;
    uint64_t cost;
    uintptr_t next;             // the next live model, tagged (see live_models)
} micronn_model_obj_t;

#if MICRONN_NATIVE
mp_obj_full_type_t micronn_model_type;
#else
static const mp_obj_type_t micronn_model_type;
#endif

// Every message stays under 73 characters: MicroPython 1.25 decompresses an
// error text into a buffer as long as the longest text of the build, with no
// room for its terminator (py/objexcept.c), so the longest must be the core's.

// Live models, so that no model's buffers can overlap another's blob. The
// links are tagged (bit 0 set) so the GC never follows them: the list keeps
// nothing alive. A model leaves it in its finaliser, which MicroPython also
// runs for every object at a soft reset (gc_sweep_all). A native module can
// neither give its objects finalisers nor run the GC: it has no registry.
#if MICROPY_ENABLE_FINALISER && !MICRONN_NATIVE
#define MICRONN_REGISTRY (1)
#else
#define MICRONN_REGISTRY (0)
#endif
BSS_STATIC uintptr_t live_models;

static micronn_model_obj_t *untag(uintptr_t p) {
    return (micronn_model_obj_t *)(p & ~(uintptr_t)1);
}

static bool overlaps(const void *a, size_t alen, const void *b, size_t blen) {
    uintptr_t pa = (uintptr_t)a, pb = (uintptr_t)b;
    return alen && blen && pa < pb + blen && pb < pa + alen;
}

// Whether [p, p + n) overlaps the blob (arena false) or the caller-owned
// arena (arena true) of a live model other than self.
static bool overlaps_live(const micronn_model_obj_t *self, const void *p, size_t n, bool arena) {
    for (uintptr_t t = live_models; t; t = untag(t)->next) {
        micronn_model_obj_t *m = untag(t);
        if (m != self && (arena ? m->arena_obj != MP_OBJ_NULL && overlaps(p, n, m->arena, m->arena_len)
                          : overlaps(p, n, m->blob, m->blob_len))) {
            return true;
        }
    }
    return false;
}

// Refuses a buffer that overlaps a live model's blob (or caller arena, if
// arena). Blobs may share memory with blobs and arenas with arenas: one only
// reads, the other is rewritten whole by every run. Models nobody holds any
// more may still be in the list: collect them first.
static void check_no_overlap(const micronn_model_obj_t *self, const void *p, size_t n, bool arena,
    mp_rom_error_text_t msg) {
    if (overlaps_live(self, p, n, arena)) {
        #if !MICRONN_NATIVE
        gc_collect();
        #endif
        if (overlaps_live(self, p, n, arena)) {
            mp_raise_ValueError(msg);
        }
    }
}

static void registry_add(micronn_model_obj_t *self) {
    if (MICRONN_REGISTRY) {
        self->next = live_models;
        live_models = (uintptr_t)self | 1;
    }
}

#if MICRONN_REGISTRY
static mp_obj_t micronn_model_del(mp_obj_t self_in) {
    micronn_model_obj_t *self = MP_OBJ_TO_PTR(self_in);
    for (uintptr_t *link = &live_models; *link; link = &untag(*link)->next) {
        if (untag(*link) == self) {
            *link = self->next;
            break;
        }
    }
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_1(micronn_model_del_obj, micronn_model_del);
#endif

// A writable memoryview of heap memory cannot be pinned: the bytearray or
// array it was made from can be resized, which frees the memory under it.
// Read-only views (of bytes) and views of flash or static memory are safe.
// A native module cannot ask the GC where memory is: it refuses every
// writable memoryview.
static void check_pinnable(mp_obj_t obj, mp_rom_error_text_t msg) {
    if (mp_obj_is_type(obj, &mp_type_memoryview)) {
        mp_obj_array_t *mv = MP_OBJ_TO_PTR(obj);
        #if MICRONN_NATIVE
        if (mv->typecode & MP_OBJ_ARRAY_TYPECODE_FLAG_RW) {
        #else
        if ((mv->typecode & MP_OBJ_ARRAY_TYPECODE_FLAG_RW) && gc_nbytes(mv->items) != 0) {
        #endif
            mp_raise_ValueError(msg);
        }
    }
}

// Long runs stay interruptible: the kernels call this every MNN_POLL_WORK
// units of work, and it raises a pending exception (Ctrl-C) from there.
// The function table of a native module has no mp_handle_pending: it calls a
// small Python function instead (cmodule/natmod_poll.py), whose conditional
// jump is where the VM raises a pending exception.
#if MICRONN_NATIVE
mp_obj_t micronn_poll_obj;

static void micronn_poll(void) {
    if (micronn_poll_obj != MP_OBJ_NULL) {
        mp_call_function_n_kw(micronn_poll_obj, 0, 0, NULL);
    }
}
#else
static void micronn_poll(void) {
    mp_event_handle_nowait();
}
#endif

// Whether the kernels poll. The native module's profile() does not: its poll
// is a Python call, which passes through the VM's hooks (a QEMU board's reads
// the UART every 64th time), so per-op counts would move from pass to pass.
static inline void set_polling(bool on) {
    #if MICRONN_NATIVE
    mnn_poll_hook = on ? micronn_poll : NULL;
    #else
    (void)on;
    #endif
}

// The one place where loader errors become Python exceptions.
static NORETURN void raise_load_error(const mnn_error_t *e) {
    switch (e->status) {
        case MNN_E_TRUNCATED:
            if (e->index >= 0) {
                mp_raise_msg_varg(&mp_type_ValueError, MP_ERROR_TEXT("micronn: blob truncated at %s %d"),
                    e->what, (int)e->index);
            }
            mp_raise_msg_varg(&mp_type_ValueError,
                MP_ERROR_TEXT("micronn: blob truncated at %s (%u bytes, needs %u)"), e->what,
                (unsigned)e->value, (unsigned)e->limit);
        case MNN_E_MAGIC:
            mp_raise_msg(&mp_type_ValueError, MP_ERROR_TEXT("micronn: not a micronn blob (bad magic)"));
        case MNN_E_VERSION:
            mp_raise_msg_varg(&mp_type_ValueError,
                MP_ERROR_TEXT("micronn: blob format %u is not supported; this module reads %u"),
                (unsigned)e->value, (unsigned)e->limit);
        case MNN_E_CRC:
            mp_raise_msg(&mp_type_ValueError, MP_ERROR_TEXT("micronn: blob checksum mismatch (crc32): corrupted blob"));
        case MNN_E_HEADER:
            mp_raise_msg_varg(&mp_type_ValueError, MP_ERROR_TEXT("micronn: bad header field %s (%u, limit %u)"),
                e->what, (unsigned)e->value, (unsigned)e->limit);
        case MNN_E_SECTION:
            mp_raise_msg_varg(&mp_type_ValueError, MP_ERROR_TEXT("micronn: bad section %d: %s (%u)"),
                (int)e->index, e->what, (unsigned)e->value);
        case MNN_E_TENSOR:
            mp_raise_msg_varg(&mp_type_ValueError, MP_ERROR_TEXT("micronn: bad tensor %d: %s (%u, limit %u)"),
                (int)e->index, e->what, (unsigned)e->value, (unsigned)e->limit);
        case MNN_E_OP:
            mp_raise_msg_varg(&mp_type_ValueError, MP_ERROR_TEXT("micronn: bad op %d: %s (%d, expected %d)"),
                (int)e->index, e->what, (int)e->value, (int)e->limit);
        case MNN_E_OP_UNSUPPORTED:
            mp_raise_msg_varg(&mp_type_ValueError,
                MP_ERROR_TEXT("micronn: op %d has op code %u, which this module does not support"),
                (int)e->index, (unsigned)e->value);
        case MNN_E_OP_ABSENT:
            mp_raise_msg_varg(&mp_type_ValueError,
                MP_ERROR_TEXT("micronn: op %d: %s is not in this firmware (built with --ops-from)"),
                (int)e->index, e->what);
        case MNN_E_IO:
            mp_raise_msg_varg(&mp_type_ValueError, MP_ERROR_TEXT("micronn: bad graph input/output %d: %s (%u)"),
                (int)e->index, e->what, (unsigned)e->value);
        case MNN_E_META:
            mp_raise_msg_varg(&mp_type_ValueError, MP_ERROR_TEXT("micronn: bad metadata entry %d: %s"),
                (int)e->index, e->what);
        default:
            mp_raise_msg_varg(&mp_type_ValueError, MP_ERROR_TEXT("micronn: invalid blob (%s)"), e->what);
    }
}

// Take a bytes-like object as is; read anything with a read() method.
static mp_obj_t blob_object(mp_obj_t src) {
    mp_buffer_info_t bi;
    if (mp_get_buffer(src, &bi, MP_BUFFER_READ)) {
        return src;
    }
    mp_obj_t dest[2];
    mp_load_method_maybe(src, MP_QSTR_read, dest);
    if (dest[0] == MP_OBJ_NULL) {
        mp_raise_TypeError(MP_ERROR_TEXT("micronn: Model() needs a bytes-like object or a file opened 'rb'"));
    }
    mp_obj_t data = mp_call_method_n_kw(0, 0, dest);
    if (!mp_get_buffer(data, &bi, MP_BUFFER_READ)) {
        mp_raise_TypeError(MP_ERROR_TEXT("micronn: file read() did not return bytes"));
    }
    return data;
}

static mp_obj_t micronn_model_make_new(const mp_obj_type_t *type, size_t n_args, size_t n_kw,
    const mp_obj_t *all_args) {
    enum { ARG_blob, ARG_arena };
    ARGS_CONST mp_arg_t allowed[] = {
        { MP_QSTR_blob, MP_ARG_REQUIRED | MP_ARG_OBJ, {.u_obj = MP_OBJ_NULL} },
        { MP_QSTR_arena, MP_ARG_KW_ONLY | MP_ARG_OBJ, {.u_obj = mp_const_none} },
    };
    mp_arg_val_t args[MP_ARRAY_SIZE(allowed)];
    mp_arg_parse_all_kw_array(n_args, n_kw, all_args, MP_ARRAY_SIZE(allowed), allowed, args);

    micronn_model_obj_t *self = mp_obj_malloc_with_finaliser(micronn_model_obj_t, type);
    self->next = 0;
    #if MICRONN_NATIVE
    self->poll_obj = micronn_poll_obj;
    #endif
    self->blob_obj = blob_object(args[ARG_blob].u_obj);
    self->arena_obj = MP_OBJ_NULL;
    check_pinnable(self->blob_obj, MP_ERROR_TEXT("micronn: blob is a writable memoryview; pass its object"));
    mp_buffer_info_t bi;
    mp_get_buffer_raise(self->blob_obj, &bi, MP_BUFFER_READ);
    self->blob = bi.buf;
    self->blob_len = bi.len;
    check_no_overlap(self, self->blob, self->blob_len, true,
        MP_ERROR_TEXT("micronn: blob overlaps a live model's arena"));

    mnn_error_t err;
    // The blob is used where it is, at any alignment: it is never copied.
    mnn_status_t st = mnn_model_load(&self->model, self->blob, self->blob_len, &err);
    if (st != MNN_OK) {
        raise_load_error(&err);
    }

    size_t need = (size_t)self->model.arena_size + self->model.scratch_size;
    if (args[ARG_arena].u_obj != mp_const_none) {
        mp_buffer_info_t ai;
        if (!mp_get_buffer(args[ARG_arena].u_obj, &ai, MP_BUFFER_WRITE)) {
            mp_raise_msg_varg(&mp_type_TypeError, MP_ERROR_TEXT("micronn: arena= needs bytearray(%u), not %q"),
                (unsigned)need, TYPE_QSTR(args[ARG_arena].u_obj));
        }
        check_pinnable(args[ARG_arena].u_obj, MP_ERROR_TEXT("micronn: arena= is a memoryview of heap memory"));
        if (ai.len < need) {
            mp_raise_msg_varg(&mp_type_ValueError, MP_ERROR_TEXT("micronn: arena has %u bytes; the model needs %u"),
                (unsigned)ai.len, (unsigned)need);
        }
        if ((uintptr_t)ai.buf & (MNN_ARENA_ALIGN - 1)) {
            mp_raise_ValueError(MP_ERROR_TEXT("micronn: arena buffer is not 8-byte aligned"));
        }
        if (overlaps(ai.buf, ai.len, self->blob, self->blob_len)) {
            mp_raise_ValueError(MP_ERROR_TEXT("micronn: arena= overlaps the blob"));
        }
        check_no_overlap(self, ai.buf, ai.len, false, MP_ERROR_TEXT("micronn: arena= overlaps a live model's blob"));
        self->arena_obj = args[ARG_arena].u_obj;
        self->arena = ai.buf;
        self->arena_len = ai.len;
    } else {
        self->arena = m_malloc_maybe(need ? need : 1);
        if (self->arena == NULL) {
            mp_raise_msg_varg(&mp_type_MemoryError,
                MP_ERROR_TEXT("micronn: no memory for a %u-byte arena: gc.collect() or arena="), (unsigned)need);
        }
        self->arena_len = need;
    }
    self->ops = m_new(mnn_op_t, self->model.op_count ? self->model.op_count : 1);
    self->state = NULL;
    if (self->model.state_size) {
        self->state = m_malloc_maybe(self->model.state_size);
        if (self->state == NULL) {
            mp_raise_msg_varg(&mp_type_MemoryError, MP_ERROR_TEXT("micronn: no memory for %u bytes of state"),
                (unsigned)self->model.state_size);
        }
    }
    mnn_model_bind(&self->model, self->ops, self->arena, self->state);
    // the state: zero points now, its initial values (the ONCE ops) just before the first
    // run, as TFLite Micro's CALL_ONCE does (a reset before that does not skip them)
    mnn_model_reset(&self->model, self->state);
    self->started = false;
    mnn_model_input(&self->model, 0, &self->in);
    mnn_model_output(&self->model, 0, &self->out);
    self->cost = 0;
    for (uint16_t k = 0; k < self->model.op_count; k++) {
        uint64_t c = mnn_op_cost(&self->ops[k]);
        self->cost = self->cost + c < c ? UINT64_MAX : self->cost + c;
    }
    mnn_poll_hook = micronn_poll;
    registry_add(self);
    return MP_OBJ_FROM_PTR(self);
}

// The blob must still be where it was when it was validated, and a caller's
// arena where it was when it was bound (a bytearray can be resized later).
static void check_buffers(micronn_model_obj_t *self) {
    mp_buffer_info_t bi;
    mp_get_buffer_raise(self->blob_obj, &bi, MP_BUFFER_READ);
    if (bi.buf != self->blob || bi.len != self->blob_len) {
        mp_raise_ValueError(MP_ERROR_TEXT("micronn: the blob was resized after Model() was made"));
    }
    if (self->arena_obj != MP_OBJ_NULL) {
        mp_get_buffer_raise(self->arena_obj, &bi, MP_BUFFER_WRITE);
        if (bi.buf != self->arena || bi.len < self->arena_len) {
            mp_raise_ValueError(MP_ERROR_TEXT("micronn: the arena was resized after Model() was made"));
        }
    }
}

static bool is_float_typecode(char tc) {
    return tc == 'f';
}

static bool is_int8_typecode(char tc) {
    return tc == 'b' || tc == 'B' || tc == BYTEARRAY_TYPECODE;
}

// Input k (its description in t) from x.
static void set_input_k(micronn_model_obj_t *self, const mnn_tensor_info_t *t, mp_obj_t x) {
    mp_buffer_info_t bi;
    if (mp_obj_is_str(x) || !mp_get_buffer(x, &bi, MP_BUFFER_READ)) {
        mp_raise_msg_varg(&mp_type_TypeError,
            MP_ERROR_TEXT("micronn: input needs bytes, bytearray, array('b'/'f'), not %q"),
            TYPE_QSTR(x));
    }
    uint8_t *dst = self->arena + t->offset;
    size_t n = t->nbytes;
    // an int16 input (16x8 models) takes its values' bytes: array('h'), bytes or bytearray;
    // or floats, quantized to int16
    bool s16 = t->dtype == MNN_DTYPE_INT16;
    size_t count = s16 ? n / 2 : n;
    if (s16 && !(is_int8_typecode(bi.typecode) || bi.typecode == 'h' || bi.typecode == 'H'
                 || is_float_typecode(bi.typecode))) {
        mp_raise_msg_varg(&mp_type_TypeError,
            MP_ERROR_TEXT("micronn: int16 input typecode '%c'; use 'h', 'f', bytes or bytearray"), bi.typecode);
    }
    if (is_float_typecode(bi.typecode)) {
        if (bi.len != count * sizeof(float)) {
            mp_raise_msg_varg(&mp_type_ValueError, MP_ERROR_TEXT("micronn: input has %u floats; expected %u"),
                (unsigned)(bi.len / sizeof(float)), (unsigned)count);
        }
        if (overlaps(bi.buf, bi.len, self->arena, self->arena_len)) {
            mp_raise_ValueError(MP_ERROR_TEXT("micronn: input overlaps the model's arena"));
        }
        if (s16) {
            mnn_quantize_s16(bi.buf, (int16_t *)dst, count, t->scale, t->zero_point);
        } else {
            mnn_quantize_s8(bi.buf, (int8_t *)dst, n, t->scale, t->zero_point);
        }
    } else if (is_int8_typecode(bi.typecode) || s16) {
        if (bi.len != n) {
            mp_raise_msg_varg(&mp_type_ValueError, MP_ERROR_TEXT("micronn: input has %u bytes; expected %u"),
                (unsigned)bi.len, (unsigned)n);
        }
        memmove(dst, bi.buf, n);
    } else {
        mp_raise_msg_varg(&mp_type_TypeError,
            MP_ERROR_TEXT("micronn: input typecode '%c'; use 'b', 'f', bytes or bytearray"), bi.typecode);
    }
}

static bool is_seq(mp_obj_t x) {
    return mp_obj_is_type(x, &mp_type_tuple) || mp_obj_is_type(x, &mp_type_list);
}

// The items of a tuple or list x of the length the model wants (want inputs,
// or outputs for out=).
static mp_obj_t *seq_items(mp_obj_t x, size_t want, bool is_out) {
    size_t n;
    mp_obj_t *items;
    mp_obj_get_array(x, &n, &items);
    if (n != want) {
        if (is_out) {
            mp_raise_msg_varg(&mp_type_ValueError, MP_ERROR_TEXT("micronn: out= has %u buffers; the model has %u outputs"),
                (unsigned)n, (unsigned)want);
        }
        mp_raise_msg_varg(&mp_type_ValueError, MP_ERROR_TEXT("micronn: %u inputs given; the model takes %u"),
            (unsigned)n, (unsigned)want);
    }
    return items;
}

// Every input from x: one buffer, or a tuple or list of one buffer per input.
static void set_input(micronn_model_obj_t *self, mp_obj_t x) {
    uint16_t n = self->model.input_count;
    if (!is_seq(x)) {
        if (n != 1) {
            mp_raise_msg_varg(&mp_type_TypeError,
                MP_ERROR_TEXT("micronn: the model takes %u inputs: pass a tuple or list"), (unsigned)n);
        }
        set_input_k(self, &self->in, x);
        return;
    }
    mp_obj_t *items = seq_items(x, n, false);
    for (uint16_t k = 0; k < n; k++) {
        mnn_tensor_info_t t;
        mnn_model_input(&self->model, k, &t);
        set_input_k(self, &t, items[k]);
    }
}

// A new array of the given typecode holding a copy of n items at data.
static mp_obj_t new_array(char typecode, size_t n, void *data) {
    size_t size = typecode == 'f' || typecode == 'i' ? 4 : typecode == 'q' ? 8 : typecode == 'h' ? 2 : 1;
    qstr tc = typecode == 'f' ? MP_QSTR_f : typecode == 'i' ? MP_QSTR_i : typecode == 'q' ? MP_QSTR_q
        : typecode == 'h' ? MP_QSTR_h : MP_QSTR_b;
    #if MICRONN_NATIVE
    // array.array(typecode, bytes) copies the bytes as they are.
    mp_obj_t mod = mp_import_name(MP_QSTR_array, mp_const_none, MP_OBJ_NEW_SMALL_INT(0));
    mp_obj_t args[2] = { MP_OBJ_NEW_QSTR(tc), mp_obj_new_bytes(data, n * size) };
    return mp_call_function_n_kw(mp_load_attr(mod, MP_QSTR_array), 2, 0, args);
    #else
    mp_obj_t args[2] = { MP_OBJ_NEW_QSTR(tc), MP_OBJ_NULL };
    if (size == 8) {
        args[1] = mp_obj_new_bytes(data, n * size);     // copied as it is (no int objects)
    } else {
        args[1] = mp_obj_new_memoryview(typecode == 'b' ? 'B' : typecode, n, data);
    }
    return MP_OBJ_TYPE_GET_SLOT(&mp_type_array, make_new)(&mp_type_array, 2, 0, args);
    #endif
}

// count int8 or int16 values at src (output t) as floats.
static void dequantize(const mnn_tensor_info_t *t, const uint8_t *src, float *x, size_t count) {
    if (t->dtype == MNN_DTYPE_INT16) {
        mnn_dequantize_s16((const int16_t *)src, x, count, t->scale, t->zero_point);
    } else {
        mnn_dequantize_s8((const int8_t *)src, x, count, t->scale, t->zero_point);
    }
}

// Output k (its description in t): a new array, or copied into out.
static mp_obj_t get_output_k(micronn_model_obj_t *self, const mnn_tensor_info_t *t, mp_obj_t out) {
    const uint8_t *src = self->arena + t->offset;
    size_t n = t->nbytes;
    bool is_s8 = t->dtype == MNN_DTYPE_INT8;
    // int8 and int16 (16x8 models) outputs dequantize to floats
    bool is_s16 = t->dtype == MNN_DTYPE_INT16;
    bool to_float = (is_s8 || is_s16) && (self->model.flags & MNN_HDR_FLAG_FLOAT_OUTPUT);
    // int32/int64 outputs (ARG_MAX, ARG_MIN) come back as their raw values
    // and int16 outputs (16x8 models) as theirs
    char wide = t->dtype == MNN_DTYPE_INT32 ? 'i' : t->dtype == MNN_DTYPE_INT16 ? 'h' : 'q';
    size_t esize = mnn_dtype_size(t->dtype);
    size_t count = n / esize;
    if (out == mp_const_none) {
        if (!to_float) {
            return is_s8 ? new_array('b', n, (void *)src) : new_array(wide, count, (void *)src);
        }
        float *tmp = m_new(float, count);
        dequantize(t, src, tmp, count);
        mp_obj_t arr = new_array('f', count, tmp);
        m_del(float, tmp, count);
        return arr;
    }
    mp_buffer_info_t bi;
    if (mp_obj_is_str(out) || !mp_get_buffer(out, &bi, MP_BUFFER_WRITE)) {
        mp_raise_msg_varg(&mp_type_TypeError, MP_ERROR_TEXT("micronn: out= needs bytearray or array('b'/'f'), not %q"),
            TYPE_QSTR(out));
    }
    if (overlaps(bi.buf, bi.len, self->arena, self->arena_len)) {
        mp_raise_ValueError(MP_ERROR_TEXT("micronn: out= overlaps the model's arena"));
    }
    check_no_overlap(NULL, bi.buf, bi.len, false, MP_ERROR_TEXT("micronn: out= overlaps a live model's blob"));
    if ((is_s8 || is_s16) && is_float_typecode(bi.typecode)) {
        if (bi.len != count * sizeof(float)) {
            mp_raise_msg_varg(&mp_type_ValueError, MP_ERROR_TEXT("micronn: out= has %u floats; expected %u"),
                (unsigned)(bi.len / sizeof(float)), (unsigned)count);
        }
        dequantize(t, src, bi.buf, count);
    } else if (is_int8_typecode(bi.typecode) || (!is_s8 && (bi.typecode == wide || bi.typecode == wide - 32))) {
        // int8 values, or the raw bytes (or same-size integers) of an int32/int64 output
        if (bi.len != n) {
            mp_raise_msg_varg(&mp_type_ValueError, MP_ERROR_TEXT("micronn: out= has %u bytes; expected %u"),
                (unsigned)bi.len, (unsigned)n);
        }
        memcpy(bi.buf, src, n);
    } else if (is_s8) {
        mp_raise_msg_varg(&mp_type_TypeError,
            MP_ERROR_TEXT("micronn: out= typecode '%c'; use 'b', 'f' or bytearray"), bi.typecode);
    } else if (is_s16) {
        mp_raise_msg_varg(&mp_type_TypeError,
            MP_ERROR_TEXT("micronn: out= typecode '%c'; use 'h', 'f' or bytearray"), bi.typecode);
    } else {
        mp_raise_msg_varg(&mp_type_TypeError,
            MP_ERROR_TEXT("micronn: out= typecode '%c'; use '%c' or bytearray"), bi.typecode, wide);
    }
    return out;
}

// Every output: one (a single-output model, as before) or a tuple of them.
// out: None, a buffer (one output), or a tuple or list with one buffer (or
// None) per output.
static mp_obj_t get_output(micronn_model_obj_t *self, mp_obj_t out) {
    uint16_t n = self->model.output_count;
    if (n == 1 && !is_seq(out)) {
        return get_output_k(self, &self->out, out);
    }
    mp_obj_t *items = NULL;
    if (out != mp_const_none) {
        if (!is_seq(out)) {
            mp_raise_msg_varg(&mp_type_TypeError,
                MP_ERROR_TEXT("micronn: the model has %u outputs: out= needs a tuple or list"), (unsigned)n);
        }
        items = seq_items(out, n, true);
    }
    mp_obj_t res = mp_obj_new_tuple(n, NULL);
    mp_obj_tuple_t *tt = MP_OBJ_TO_PTR(res);
    for (uint16_t k = 0; k < n; k++) {
        mnn_tensor_info_t t;
        mnn_model_output(&self->model, k, &t);
        tt->items[k] = get_output_k(self, &t, items ? items[k] : mp_const_none);
    }
    return res;
}

// The ONCE ops (initial values of the state), if no run has yet: before the
// first run, as TFLite Micro's CALL_ONCE. (Nothing else runs ops outside a run:
// bench's cycle estimate counts the calls of mnn_run.)
static void start(micronn_model_obj_t *self) {
    if (!self->started) {
        self->started = true;
        if (self->model.once_count) {
            mnn_run(self->ops, 0, self->model.once_count);
        }
    }
}

static mp_obj_t micronn_model_run(size_t n_args, const mp_obj_t *pos, mp_map_t *kw) {
    enum { ARG_x, ARG_out };
    ARGS_CONST mp_arg_t allowed[] = {
        { MP_QSTR_x, MP_ARG_REQUIRED | MP_ARG_OBJ, {.u_obj = MP_OBJ_NULL} },
        { MP_QSTR_out, MP_ARG_OBJ, {.u_obj = mp_const_none} },
    };
    mp_arg_val_t args[MP_ARRAY_SIZE(allowed)];
    mp_arg_parse_all(n_args - 1, pos + 1, kw, MP_ARRAY_SIZE(allowed), allowed, args);
    micronn_model_obj_t *self = MP_OBJ_TO_PTR(pos[0]);
    check_buffers(self);
    set_input(self, args[ARG_x].u_obj);
    set_polling(true);
    start(self);
    mnn_run(self->ops, self->model.once_count, self->model.op_count);
    return get_output(self, args[ARG_out].u_obj);
}
static MP_DEFINE_CONST_FUN_OBJ_KW(micronn_model_run_obj, 2, micronn_model_run);

// The tick counter: the firmware's MICRONN_TICKS() (mp_hal_ticks_cpu() unless
// the board names another), or for a native module time.ticks_cpu() (its
// period is the small-int range: differences are taken modulo it).
#if MICRONN_NATIVE
typedef mp_obj_t micronn_clock_t;

static mp_uint_t clock_read(micronn_clock_t clock) {
    return mp_obj_get_int_truncated(mp_call_function_n_kw(clock, 0, 0, NULL));
}

// A ticks_cpu() that stays 0 (the unix port's) gives way to ticks_us(), as
// boards/unix's MICRONN_TICKS does for the built-in module.
static micronn_clock_t clock_get(void) {
    mp_obj_t mod = mp_import_name(MP_QSTR_time, mp_const_none, MP_OBJ_NEW_SMALL_INT(0));
    mp_obj_t cpu = mp_load_attr(mod, MP_QSTR_ticks_cpu);
    if (clock_read(cpu) == 0 && clock_read(cpu) == 0) {
        return mp_load_attr(mod, MP_QSTR_ticks_us);
    }
    return cpu;
}

static mp_uint_t clock_diff(mp_uint_t t1, mp_uint_t t0) {
    return (t1 - t0) & (mp_uint_t)MP_SMALL_INT_POSITIVE_MASK;
}
#else
typedef int micronn_clock_t;

// A board whose ticks_cpu() does not move (the unix port's is 0) names
// another counter (boards/unix/mpconfigvariant.h: ticks_us).
#ifndef MICRONN_TICKS
#define MICRONN_TICKS() mp_hal_ticks_cpu()
#endif

static micronn_clock_t clock_get(void) {
    return 0;
}

static inline mp_uint_t clock_read(micronn_clock_t clock) {
    (void)clock;
    return MICRONN_TICKS();
}

static inline mp_uint_t clock_diff(mp_uint_t t1, mp_uint_t t0) {
    return t1 - t0;
}
#endif

// Waits for the tick counter to change and returns its new value, so that a
// measurement starts at a tick boundary and a deterministic stretch of code
// (under `qemu -icount`) always spans the same number of ticks.
// A counter that does not move (ticks_cpu() is 0 on some ports) is taken as
// it is after a bounded wait.
static mp_uint_t tick_edge(micronn_clock_t clock) {
    mp_uint_t t = clock_read(clock), u = t;
    for (uint32_t i = 0; i < 100000 && (u = clock_read(clock)) == t; i++) {
    }
    return u;
}

// One inference timed with the board's CPU tick counter (cycles on most
// boards; under `qemu -icount` a fixed number of instructions per tick):
// (ticks of all ops in one pass, (ticks of op 0, op 1, ...)). The per-op pass
// runs the ops one at a time, so each figure also holds one timer read.
static mp_obj_t micronn_model_profile(mp_obj_t self_in, mp_obj_t x) {
    micronn_model_obj_t *self = MP_OBJ_TO_PTR(self_in);
    check_buffers(self);
    micronn_clock_t clock = clock_get();
    set_polling(false);
    uint16_t n = self->model.op_count, first = self->model.once_count;
    mp_obj_tuple_t *per_op = MP_OBJ_TO_PTR(mp_obj_new_tuple(n - first, NULL));
    // both passes start from the same state (initial values set), so a profile changes it
    // as one run does
    start(self);
    uint8_t *saved = self->model.state_size ? m_new(uint8_t, self->model.state_size) : NULL;
    if (saved) {
        memcpy(saved, self->state, self->model.state_size);
    }
    set_input(self, x);
    for (uint16_t k = first; k < n; k++) {
        mp_uint_t t0 = tick_edge(clock);
        mnn_run(self->ops, k, k + 1);
        per_op->items[k - first] = mp_obj_new_int_from_uint(clock_diff(clock_read(clock), t0));
    }
    if (saved) {
        memcpy(self->state, saved, self->model.state_size);
        m_del(uint8_t, saved, self->model.state_size);
    }
    set_input(self, x);
    mp_uint_t t0 = tick_edge(clock);
    mnn_run(self->ops, first, n);
    mp_obj_t res[2] = { mp_obj_new_int_from_uint(clock_diff(clock_read(clock), t0)), MP_OBJ_FROM_PTR(per_op) };
    return mp_obj_new_tuple(2, res);
}
static MP_DEFINE_CONST_FUN_OBJ_2(micronn_model_profile_obj, micronn_model_profile);

// Value i of an int8, int32 or int64 output.
static int64_t out_value(const uint8_t *y, size_t esize, size_t i) {
    if (esize == 1) {
        return ((const int8_t *)y)[i];
    }
    if (esize == 2) {
        int16_t v;
        memcpy(&v, y + 2 * i, 2);
        return v;
    }
    if (esize == 4) {
        int32_t v;
        memcpy(&v, y + 4 * i, 4);
        return v;
    }
    int64_t v;
    memcpy(&v, y + 8 * i, 8);
    return v;
}

// reset(): the model's state back to zero points, as TFLite Micro's Reset()
// leaves it (the initial values given at load are not applied again).
static mp_obj_t micronn_model_reset(mp_obj_t self_in) {
    micronn_model_obj_t *self = MP_OBJ_TO_PTR(self_in);
    mnn_model_reset(&self->model, self->state);
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_1(micronn_model_reset_obj, micronn_model_reset);

// (label, score): the top class, named by the blob's labels when it has them.
static mp_obj_t micronn_model_predict(mp_obj_t self_in, mp_obj_t x) {
    micronn_model_obj_t *self = MP_OBJ_TO_PTR(self_in);
    check_buffers(self);
    set_input(self, x);
    set_polling(true);
    start(self);
    mnn_run(self->ops, self->model.once_count, self->model.op_count);
    // the first output's largest value (an int32/int64 one's as it is)
    const uint8_t *y = self->arena + self->out.offset;
    size_t esize = mnn_dtype_size(self->out.dtype);
    size_t best = 0;
    int64_t top = out_value(y, esize, 0);
    for (size_t i = 1; i < self->out.nbytes / esize; i++) {
        int64_t v = out_value(y, esize, i);
        if (v > top) {
            best = i;
            top = v;
        }
    }
    mp_obj_t label = MP_OBJ_NEW_SMALL_INT(best);
    const char *s = self->model.labels, *end = s + self->model.labels_len;
    for (size_t i = 0; s && s < end; i++) {
        const char *nl = memchr(s, '\n', end - s);
        const char *stop = nl ? nl : end;
        if (i == best) {
            label = mp_obj_new_str(s, stop - s);
            break;
        }
        s = nl ? nl + 1 : end;
    }
    // int8 and int16 outputs are quantized values; int32/int64 ones (ARG_MAX) raw
    float score = esize <= 2 ? self->out.scale * (float)(top - self->out.zero_point) : (float)top;
    mp_obj_t t[2] = { label, mp_obj_new_float(score) };
    return mp_obj_new_tuple(2, t);
}
static MP_DEFINE_CONST_FUN_OBJ_2(micronn_model_predict_obj, micronn_model_predict);

static mp_obj_t shape_tuple(const mnn_tensor_info_t *t) {
    mp_obj_t dims[MNN_MAX_DIMS];
    for (int d = 0; d < t->ndim; d++) {
        dims[d] = mp_obj_new_int_from_uint(t->dims[d]);
    }
    return mp_obj_new_tuple(t->ndim, dims);
}

static const char *dtype_name(uint8_t dtype) {
    switch (dtype) {
        case MNN_DTYPE_INT8:
            return "int8";
        case MNN_DTYPE_UINT8:
            return "uint8";
        case MNN_DTYPE_INT16:
            return "int16";
        case MNN_DTYPE_INT32:
            return "int32";
        case MNN_DTYPE_INT64:
            return "int64";
        default:
            return "float32";
    }
}

// The dtype an input or output presents: float32 when the board
// (de)quantizes it (int8 and int16 ones of a FLOAT_INPUT/FLOAT_OUTPUT blob).
static const char *io_dtype_of(const micronn_model_obj_t *self, bool is_in, const mnn_tensor_info_t *t) {
    uint32_t flag = is_in ? MNN_HDR_FLAG_FLOAT_INPUT : MNN_HDR_FLAG_FLOAT_OUTPUT;
    bool quantized = t->dtype == MNN_DTYPE_INT8 || t->dtype == MNN_DTYPE_INT16;
    return (self->model.flags & flag) && quantized ? "float32" : dtype_name(t->dtype);
}

// The same for the first input or output.
static const char *io_dtype(const micronn_model_obj_t *self, bool is_in) {
    return io_dtype_of(self, is_in, is_in ? &self->in : &self->out);
}

// Line k of a '\n'-separated metadata list, or None.
static mp_obj_t line_or_none(const char *s, size_t len, size_t k) {
    const char *end = s + len;
    for (size_t i = 0; s && s <= end; i++) {
        const char *nl = memchr(s, '\n', end - s);
        const char *stop = nl ? nl : end;
        if (i == k) {
            return mp_obj_new_str(s, stop - s);
        }
        if (!nl) {
            break;
        }
        s = nl + 1;
    }
    return mp_const_none;
}

// m.inputs / m.outputs: a tuple with one dict per graph input or output.
static mp_obj_t io_list(const micronn_model_obj_t *self, bool is_in) {
    uint16_t n = is_in ? self->model.input_count : self->model.output_count;
    mp_obj_t res = mp_obj_new_tuple(n, NULL);
    mp_obj_tuple_t *tt = MP_OBJ_TO_PTR(res);
    for (uint16_t k = 0; k < n; k++) {
        mnn_tensor_info_t t;
        if (is_in) {
            mnn_model_input(&self->model, k, &t);
        } else {
            mnn_model_output(&self->model, k, &t);
        }
        const char *dt = io_dtype_of(self, is_in, &t);
        mp_obj_t d = mp_obj_new_dict(0);
        mp_obj_dict_store(d, MP_OBJ_NEW_QSTR(MP_QSTR_name), is_in
            ? line_or_none(self->model.input_names, self->model.input_names_len, k)
            : line_or_none(self->model.output_names, self->model.output_names_len, k));
        mp_obj_dict_store(d, MP_OBJ_NEW_QSTR(MP_QSTR_shape), shape_tuple(&t));
        mp_obj_dict_store(d, MP_OBJ_NEW_QSTR(MP_QSTR_dtype), mp_obj_new_str(dt, strlen(dt)));
        mp_obj_dict_store(d, MP_OBJ_NEW_QSTR(MP_QSTR_scale), mp_obj_new_float(t.scale));
        mp_obj_dict_store(d, MP_OBJ_NEW_QSTR(MP_QSTR_zero_point), MP_OBJ_NEW_SMALL_INT(t.zero_point));
        tt->items[k] = d;
    }
    return res;
}

// mp_obj_new_int_from_ull, which a native module does not have.
static mp_obj_t new_int_u64(uint64_t v) {
    #if MICRONN_NATIVE
    if (sizeof(mp_uint_t) < sizeof(v) && (v >> 32) != 0) {
        mp_obj_t hi = mp_binary_op(MP_BINARY_OP_LSHIFT, mp_obj_new_int_from_uint((mp_uint_t)(v >> 32)),
            MP_OBJ_NEW_SMALL_INT(32));
        return mp_binary_op(MP_BINARY_OP_OR, hi, mp_obj_new_int_from_uint((mp_uint_t)(uint32_t)v));
    }
    return mp_obj_new_int_from_uint((mp_uint_t)v);
    #else
    return mp_obj_new_int_from_ull(v);
    #endif
}

static mp_obj_t str_or_none(const char *s, size_t n) {
    return s ? mp_obj_new_str(s, n) : mp_const_none;
}

static void micronn_model_attr(mp_obj_t self_in, qstr attr, mp_obj_t *dest) {
    if (dest[0] != MP_OBJ_NULL) {
        return;     // read-only
    }
    micronn_model_obj_t *self = MP_OBJ_TO_PTR(self_in);
    const mnn_tensor_info_t *in = &self->in, *out = &self->out;
    // Not a switch: a native module learns most qstr values when it is loaded.
    if (attr == MP_QSTR_input_shape) {
        dest[0] = shape_tuple(in);
    } else if (attr == MP_QSTR_output_shape) {
        dest[0] = shape_tuple(out);
    } else if (attr == MP_QSTR_input_dtype || attr == MP_QSTR_output_dtype) {
        const char *n = io_dtype(self, attr == MP_QSTR_input_dtype);
        dest[0] = mp_obj_new_str(n, strlen(n));
    } else if (attr == MP_QSTR_input_scale) {
        dest[0] = mp_obj_new_float(in->scale);
    } else if (attr == MP_QSTR_output_scale) {
        dest[0] = mp_obj_new_float(out->scale);
    } else if (attr == MP_QSTR_input_zero_point) {
        dest[0] = MP_OBJ_NEW_SMALL_INT(in->zero_point);
    } else if (attr == MP_QSTR_output_zero_point) {
        dest[0] = MP_OBJ_NEW_SMALL_INT(out->zero_point);
    } else if (attr == MP_QSTR_inputs || attr == MP_QSTR_outputs) {
        dest[0] = io_list(self, attr == MP_QSTR_inputs);
    } else if (attr == MP_QSTR_arena_size) {
        dest[0] = mp_obj_new_int_from_uint(self->model.arena_size + self->model.scratch_size);
    } else if (attr == MP_QSTR_ram_size) {
        // Heap this model holds: the object, its op records and the arena
        // (each rounded up to whole GC blocks); the blob is not counted.
        size_t blk = MICROPY_BYTES_PER_GC_BLOCK;
        size_t ops = self->model.op_count ? self->model.op_count : 1;
        size_t n = (sizeof(*self) + blk - 1) / blk * blk + (ops * sizeof(mnn_op_t) + blk - 1) / blk * blk;
        if (self->arena_obj == MP_OBJ_NULL) {
            n += (self->arena_len + blk - 1) / blk * blk;
        }
        n += (self->model.state_size + blk - 1) / blk * blk;
        dest[0] = mp_obj_new_int_from_uint(n);
    } else if (attr == MP_QSTR_state_size) {
        dest[0] = mp_obj_new_int_from_uint(self->model.state_size);
    } else if (attr == MP_QSTR_blob_size) {
        dest[0] = mp_obj_new_int_from_uint(self->model.size);
    } else if (attr == MP_QSTR_macs) {
        dest[0] = mp_obj_new_int_from_uint(self->model.macs);
    } else if (attr == MP_QSTR_cost) {
        dest[0] = new_int_u64(self->cost);
    } else if (attr == MP_QSTR_name) {
        dest[0] = str_or_none(self->model.name, self->model.name_len);
    } else if (attr == MP_QSTR_labels) {
        dest[0] = mp_const_none;
        if (self->model.labels) {
            mp_obj_t list = mp_obj_new_list(0, NULL);
            const char *s = self->model.labels, *end = s + self->model.labels_len;
            while (s < end) {
                const char *nl = memchr(s, '\n', end - s);
                const char *stop = nl ? nl : end;
                mp_obj_list_append(list, mp_obj_new_str(s, stop - s));
                s = stop + 1;
            }
            dest[0] = list;
        }
    } else if (attr == MP_QSTR_ops) {
        // the ops of a run (profile() times them in this order); not the ONCE ops of loading
        uint16_t first = self->model.once_count;
        mp_obj_t t = mp_obj_new_tuple(self->model.op_count - first, NULL);
        mp_obj_tuple_t *tt = MP_OBJ_TO_PTR(t);
        for (uint16_t k = first; k < self->model.op_count; k++) {
            const char *n = mnn_opcode_name(self->ops[k].opcode);
            tt->items[k - first] = mp_obj_new_str(n, strlen(n));
        }
        dest[0] = t;
    } else {
        dest[1] = MP_OBJ_SENTINEL;  // continue in locals_dict
    }
}

static void print_shape(const mp_print_t *print, const mnn_tensor_info_t *t) {
    mp_print_str(print, "(");
    for (int d = 0; d < t->ndim; d++) {
        mp_printf(print, d ? ",%u" : "%u", (unsigned)t->dims[d]);
    }
    mp_print_str(print, ")");
}

static void micronn_model_print(const mp_print_t *print, mp_obj_t self_in, mp_print_kind_t kind) {
    (void)kind;
    micronn_model_obj_t *self = MP_OBJ_TO_PTR(self_in);
    mp_print_str(print, "<Model ");
    if (self->model.name) {
        mp_printf(print, "'%.*s' ", (int)self->model.name_len, self->model.name);
    }
    mp_printf(print, "%u ops in ", (unsigned)self->model.op_count);
    print_shape(print, &self->in);
    mp_printf(print, " %s out ", io_dtype(self, true));
    print_shape(print, &self->out);
    uint32_t arena = self->model.arena_size + self->model.scratch_size;
    mp_printf(print, " %s arena %u.%u KiB>", io_dtype(self, false), (unsigned)(arena / 1024),
        (unsigned)(arena % 1024 * 10 / 1024));
}

// crc32(data, crc=0): the blob and serial-frame checksum (zlib's CRC-32).
static mp_obj_t micronn_crc32(size_t n_args, const mp_obj_t *args) {
    mp_buffer_info_t bi;
    mp_get_buffer_raise(args[0], &bi, MP_BUFFER_READ);
    uint32_t crc = n_args > 1 ? (uint32_t)mp_obj_get_int_truncated(args[1]) : 0;
    return mp_obj_new_int_from_uint(mnn_crc32(crc, bi.buf, bi.len));
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(micronn_crc32_obj, 1, 2, micronn_crc32);

// supported_ops(): the names of the op codes this module runs (the host's
// session handshake compares them with its own).
static mp_obj_t micronn_supported_ops(void) {
    mp_obj_t list = mp_obj_new_list(0, NULL);
    for (uint32_t k = 0; k <= MNN_OPCODE_MAX; k++) {
        const char *n = mnn_opcode_name((uint8_t)k);
        if (n[0] != '?') {
            mp_obj_list_append(list, mp_obj_new_str(n, strlen(n)));
        }
    }
    return list;
}
static MP_DEFINE_CONST_FUN_OBJ_0(micronn_supported_ops_obj, micronn_supported_ops);

// kernel_variants(reset=False): {variant: times picked} since boot (or the
// last reset), the variants never picked left out.
static mp_obj_t micronn_kernel_variants(size_t n_args, const mp_obj_t *args) {
    mp_obj_t d = mp_obj_new_dict(0);
    for (uint32_t k = 0; k < MNN_V_COUNT; k++) {
        if (mnn_variant_calls[k]) {
            const char *n = mnn_variant_names[k];
            mp_obj_dict_store(d, mp_obj_new_str(n, strlen(n)), mp_obj_new_int_from_uint(mnn_variant_calls[k]));
        }
    }
    if (n_args > 0 && mp_obj_is_true(args[0])) {
        memset(mnn_variant_calls, 0, sizeof(mnn_variant_calls));
    }
    return d;
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(micronn_kernel_variants_obj, 0, 1, micronn_kernel_variants);

#if !MICRONN_NATIVE
static const mp_rom_map_elem_t micronn_model_locals_table[] = {
    { MP_ROM_QSTR(MP_QSTR_run), MP_ROM_PTR(&micronn_model_run_obj) },
    { MP_ROM_QSTR(MP_QSTR_predict), MP_ROM_PTR(&micronn_model_predict_obj) },
    { MP_ROM_QSTR(MP_QSTR_profile), MP_ROM_PTR(&micronn_model_profile_obj) },
    { MP_ROM_QSTR(MP_QSTR_reset), MP_ROM_PTR(&micronn_model_reset_obj) },
    #if MICRONN_REGISTRY
    { MP_ROM_QSTR(MP_QSTR___del__), MP_ROM_PTR(&micronn_model_del_obj) },
    #endif
};
static MP_DEFINE_CONST_DICT(micronn_model_locals, micronn_model_locals_table);

static MP_DEFINE_CONST_OBJ_TYPE(
    micronn_model_type,
    MP_QSTR_Model,
    MP_TYPE_FLAG_NONE,
    make_new, micronn_model_make_new,
    print, micronn_model_print,
    attr, micronn_model_attr,
    locals_dict, &micronn_model_locals
    );

static const mp_rom_obj_tuple_t micronn_format_version = {
    {&mp_type_tuple}, 2, { MP_ROM_INT(MNN_VERSION_MAJOR), MP_ROM_INT(MNN_VERSION_MINOR) }
};

static MP_DEFINE_STR_OBJ(micronn_version_obj, MICRONN_VERSION);

static const mp_rom_map_elem_t micronn_module_globals_table[] = {
    { MP_ROM_QSTR(MP_QSTR___name__), MP_ROM_QSTR(MP_QSTR_micronn) },
    { MP_ROM_QSTR(MP_QSTR_Model), MP_ROM_PTR(&micronn_model_type) },
    { MP_ROM_QSTR(MP_QSTR_version), MP_ROM_PTR(&micronn_version_obj) },
    { MP_ROM_QSTR(MP_QSTR_format_version), MP_ROM_PTR(&micronn_format_version) },
    { MP_ROM_QSTR(MP_QSTR_crc32), MP_ROM_PTR(&micronn_crc32_obj) },
    { MP_ROM_QSTR(MP_QSTR_supported_ops), MP_ROM_PTR(&micronn_supported_ops_obj) },
    { MP_ROM_QSTR(MP_QSTR_kernel_variants), MP_ROM_PTR(&micronn_kernel_variants_obj) },
    // True in firmware built with `micronn firmware build --ops-from` (mnn_ops.h)
    { MP_ROM_QSTR(MP_QSTR_ops_limited), MNN_OPS_LIMITED ? MP_ROM_TRUE : MP_ROM_FALSE },
};
static MP_DEFINE_CONST_DICT(micronn_module_globals, micronn_module_globals_table);

const mp_obj_module_t micronn_user_cmodule = {
    .base = { &mp_type_module },
    .globals = (mp_obj_dict_t *)&micronn_module_globals,
};

MP_REGISTER_MODULE(MP_QSTR_micronn, micronn_user_cmodule);
#else

// The native module: the type, its methods and the module's globals are made
// when the .mpy is imported (cmodule/natmod_poll.py then hands over the poll
// function and removes _set_poll).
mp_map_elem_t micronn_model_locals_table[4];
static MP_DEFINE_CONST_DICT(micronn_model_locals, micronn_model_locals_table);

static mp_obj_t micronn_set_poll(mp_obj_t fn) {
    micronn_poll_obj = fn;
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_1(micronn_set_poll_obj, micronn_set_poll);

mp_obj_t mpy_init(mp_obj_fun_bc_t *self, size_t n_args, size_t n_kw, mp_obj_t *args) {
    MP_DYNRUNTIME_INIT_ENTRY
    (void)n_args;
    (void)n_kw;
    (void)args;

    micronn_model_type.base.type = (void *)&mp_type_type;
    micronn_model_type.flags = MP_TYPE_FLAG_NONE;
    micronn_model_type.name = MP_QSTR_Model;
    MP_OBJ_TYPE_SET_SLOT(&micronn_model_type, make_new, micronn_model_make_new, 0);
    MP_OBJ_TYPE_SET_SLOT(&micronn_model_type, print, micronn_model_print, 1);
    MP_OBJ_TYPE_SET_SLOT(&micronn_model_type, attr, micronn_model_attr, 2);
    micronn_model_locals_table[0] = (mp_map_elem_t){ MP_OBJ_NEW_QSTR(MP_QSTR_run), MP_OBJ_FROM_PTR(&micronn_model_run_obj) };
    micronn_model_locals_table[1] = (mp_map_elem_t){ MP_OBJ_NEW_QSTR(MP_QSTR_predict),
                                                     MP_OBJ_FROM_PTR(&micronn_model_predict_obj) };
    micronn_model_locals_table[2] = (mp_map_elem_t){ MP_OBJ_NEW_QSTR(MP_QSTR_profile),
                                                     MP_OBJ_FROM_PTR(&micronn_model_profile_obj) };
    micronn_model_locals_table[3] = (mp_map_elem_t){ MP_OBJ_NEW_QSTR(MP_QSTR_reset),
                                                     MP_OBJ_FROM_PTR(&micronn_model_reset_obj) };
    MP_OBJ_TYPE_SET_SLOT(&micronn_model_type, locals_dict, (void *)&micronn_model_locals, 3);

    mp_obj_t format[2] = { MP_OBJ_NEW_SMALL_INT(MNN_VERSION_MAJOR), MP_OBJ_NEW_SMALL_INT(MNN_VERSION_MINOR) };
    mp_store_global(MP_QSTR_Model, MP_OBJ_FROM_PTR(&micronn_model_type));
    mp_store_global(MP_QSTR_version, mp_obj_new_str(MICRONN_VERSION, sizeof(MICRONN_VERSION) - 1));
    mp_store_global(MP_QSTR_format_version, mp_obj_new_tuple(2, format));
    mp_store_global(MP_QSTR_crc32, MP_OBJ_FROM_PTR(&micronn_crc32_obj));
    mp_store_global(MP_QSTR_supported_ops, MP_OBJ_FROM_PTR(&micronn_supported_ops_obj));
    mp_store_global(MP_QSTR_kernel_variants, MP_OBJ_FROM_PTR(&micronn_kernel_variants_obj));
    mp_store_global(MP_QSTR__set_poll, MP_OBJ_FROM_PTR(&micronn_set_poll_obj));

    MP_DYNRUNTIME_INIT_EXIT
}
#endif
