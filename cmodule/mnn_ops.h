// Which ops this build of the module runs. `micronn firmware build --ops-from
// MODEL.mnb ...` (host/micronn/opset.py) writes mnn_ops_config.h into the
// firmware's build directory, one `#define MNN_WITH_OP_<NAME> 0|1` per op code
// of the format, and builds with -DMNN_OPS_CONFIG and that directory on the
// include path; every other build has all ops. The loader refuses an op that
// is left out by name, and runtime.c and the loader compile out its dispatch,
// binding and checks, so that the linker drops its kernel (--gc-sections).
// The kernels' entry points leave out the fallback variants the same way.
#ifndef MICRONN_MNN_OPS_H
#define MICRONN_MNN_OPS_H

#include "mnn_format.h"

#ifdef MNN_OPS_CONFIG
#include "mnn_ops_config.h"
// 1 when op code MNN_OPCODE_<name> is built in (usable in #if).
#define MNN_WITH_OP(name) MNN_WITH_OP_##name
// 1 when the fallback variant MNN_V_<name> (mnn_kernels.h) is built in: the
// loops a kernel runs when the blob reserved no scratch for the op (CONV_DIRECT,
// CONV_POOL_DIRECT, ADD_DIRECT). Packed blobs always reserve it, so a build for
// them leaves these out and the loader refuses an op that would need one.
#define MNN_WITH_VARIANT(name) MNN_WITH_VARIANT_##name
#define MNN_OPS_LIMITED 1
#if MNN_OPS_CONFIG_OPCODE_MAX != MNN_OPCODE_MAX
#error "mnn_ops_config.h was written for another op list: build again with --ops-from"
#endif
#else
#define MNN_WITH_OP(name) 1
#define MNN_WITH_VARIANT(name) 1
#define MNN_OPS_LIMITED 0
#endif

#endif // MICRONN_MNN_OPS_H
