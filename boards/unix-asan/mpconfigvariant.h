// micronn unix firmware under AddressSanitizer and UndefinedBehaviorSanitizer:
// the same configuration as boards/unix (flags: mpconfigvariant.mk), plus the
// module `mnasan` (mnasan.c) for buffers outside the GC heap.
#include "../unix/mpconfigvariant.h"
