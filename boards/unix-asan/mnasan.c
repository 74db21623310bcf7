// mnasan: buffers outside MicroPython's GC heap, for tests on the sanitizer
// build. To AddressSanitizer the whole GC heap is one malloc block, so a read
// past a blob or a write past an arena that stays inside the heap goes
// unseen. A blob or an arena placed in buffer(n) has malloc's exact bounds
// instead: one byte past either end is reported, and the process aborts.
//
//   b = mnasan.buffer(n, fill=0)   # bytearray over n bytes of malloc() memory
//   mnasan.release(b)              # free() it; b becomes empty
//
// The caller drops every Model using b (and runs gc.collect()) before
// release(): anything still reading the memory afterwards is a
// use-after-free, which ASan reports too.
#include <stdlib.h>
#include <string.h>

#include "py/gc.h"
#include "py/runtime.h"
#include "py/objarray.h"

static mp_obj_t mnasan_buffer(size_t n_args, const mp_obj_t *args) {
    mp_int_t n = mp_obj_get_int(args[0]);
    int fill = n_args > 1 ? (int)mp_obj_get_int(args[1]) : 0;
    if (n < 0) {
        mp_raise_ValueError(MP_ERROR_TEXT("negative size"));
    }
    uint8_t *p = malloc(n ? (size_t)n : 1);
    if (p == NULL) {
        mp_raise_type(&mp_type_MemoryError);
    }
    memset(p, fill, (size_t)n);
    return mp_obj_new_bytearray_by_ref((size_t)n, p);
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(mnasan_buffer_obj, 1, 2, mnasan_buffer);

static mp_obj_t mnasan_release(mp_obj_t buf) {
    if (!mp_obj_is_type(buf, &mp_type_bytearray)) {
        mp_raise_TypeError(MP_ERROR_TEXT("release() takes a bytearray from buffer()"));
    }
    mp_obj_array_t *a = MP_OBJ_TO_PTR(buf);
    if (gc_nbytes(a->items) != 0) {
        mp_raise_ValueError(MP_ERROR_TEXT("not a buffer() bytearray"));
    }
    free(a->items);
    a->items = NULL;
    a->len = 0;
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_1(mnasan_release_obj, mnasan_release);

static const mp_rom_map_elem_t mnasan_globals_table[] = {
    { MP_ROM_QSTR(MP_QSTR___name__), MP_ROM_QSTR(MP_QSTR_mnasan) },
    { MP_ROM_QSTR(MP_QSTR_buffer), MP_ROM_PTR(&mnasan_buffer_obj) },
    { MP_ROM_QSTR(MP_QSTR_release), MP_ROM_PTR(&mnasan_release_obj) },
};
static MP_DEFINE_CONST_DICT(mnasan_globals, mnasan_globals_table);

const mp_obj_module_t mnasan_module = {
    .base = { &mp_type_module },
    .globals = (mp_obj_dict_t *)&mnasan_globals,
};

MP_REGISTER_MODULE(MP_QSTR_mnasan, mnasan_module);
