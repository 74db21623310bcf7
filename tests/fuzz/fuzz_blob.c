// libFuzzer harness: the loader, binder and runtime on untrusted blobs, built
// with AddressSanitizer and UndefinedBehaviorSanitizer. A blob that loads must
// run without touching memory outside the blob, the arena or the scratch area.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mnn.h"

#define ARENA_LIMIT (8u << 20)

// The binding's hook raises a pending KeyboardInterrupt; here it only runs.
static void poll_hook(void) {
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    // An exact-size heap copy, so that ASan sees any read past the end.
    uint8_t *blob = malloc(size ? size : 1);
    if (!blob) {
        return 0;
    }
    memcpy(blob, data, size);
    mnn_model_t m;
    mnn_error_t err;
    if (mnn_model_load(&m, blob, size, &err) == MNN_OK) {
        size_t need = (size_t)m.arena_size + m.scratch_size;
        if (need <= ARENA_LIMIT && m.state_size <= ARENA_LIMIT) {
            uint8_t *arena = malloc(need ? need : 1);
            uint8_t *state = m.state_size ? malloc(m.state_size) : NULL;
            mnn_op_t *ops = malloc(sizeof(mnn_op_t) * (m.op_count ? m.op_count : 1));
            if (arena && ops && (state || !m.state_size)) {
                memset(arena, 0x5a, need);
                mnn_model_bind(&m, ops, arena, state);
                // what loading does: zero points, then the ONCE ops
                mnn_model_reset(&m, state);
                mnn_run(ops, 0, m.once_count);
                // The binding totals the ops' costs (saturating), names them
                // (profile()) and sets the poll hook.
                uint64_t cost = 0;
                for (uint16_t k = 0; k < m.op_count; k++) {
                    uint64_t c = mnn_op_cost(&ops[k]);
                    cost = cost + c < c ? UINT64_MAX : cost + c;
                    (void)mnn_opcode_name(ops[k].opcode);
                }
                (void)cost;
                mnn_poll_hook = poll_hook;
                // What the binding does around run(): every float input quantized
                // into the arena, every int8 and int16 output dequantized (model.run
                // with arrays of floats), each with the blob's scale and zero point;
                // int32/int64 outputs are copied as they are.
                static const float probe[4] = { -1e9f, -0.5f, 3.25f, 1e9f };
                for (uint16_t j = 0; j < m.input_count; j++) {
                    mnn_tensor_info_t in;
                    mnn_model_input(&m, j, &in);
                    if (in.dtype == MNN_DTYPE_INT16) {
                        for (uint32_t i = 0; i < in.nbytes / 2; i += 4) {
                            uint32_t k = in.nbytes / 2 - i < 4 ? in.nbytes / 2 - i : 4;
                            mnn_quantize_s16(probe, (int16_t *)(arena + in.offset) + i, k, in.scale,
                                in.zero_point);
                        }
                        continue;
                    }
                    for (uint32_t i = 0; i < in.nbytes; i += 4) {
                        uint32_t k = in.nbytes - i < 4 ? in.nbytes - i : 4;
                        mnn_quantize_s8(probe, (int8_t *)arena + in.offset + i, k, in.scale, in.zero_point);
                    }
                }
                mnn_run(ops, m.once_count, m.op_count);
                mnn_run(ops, m.once_count, m.op_count);    // a second run from the state the first left
                for (uint16_t j = 0; j < m.output_count; j++) {
                    mnn_tensor_info_t out;
                    mnn_model_output(&m, j, &out);
                    float y[16];
                    if (out.dtype == MNN_DTYPE_INT16) {
                        for (uint32_t i = 0; i < out.nbytes / 2; i += 16) {
                            uint32_t k = out.nbytes / 2 - i < 16 ? out.nbytes / 2 - i : 16;
                            mnn_dequantize_s16((const int16_t *)(arena + out.offset) + i, y, k, out.scale,
                                out.zero_point);
                        }
                        continue;
                    }
                    if (out.dtype != MNN_DTYPE_INT8) {
                        continue;
                    }
                    for (uint32_t i = 0; i < out.nbytes; i += 16) {
                        uint32_t k = out.nbytes - i < 16 ? out.nbytes - i : 16;
                        mnn_dequantize_s8((const int8_t *)arena + out.offset + i, y, k, out.scale, out.zero_point);
                    }
                }
            }
            free(ops);
            free(state);
            free(arena);
        }
    }
    free(blob);
    return 0;
}
