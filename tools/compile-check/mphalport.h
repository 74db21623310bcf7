// micronn compile check: the HAL functions the binding calls are declared by
// py/mphal.h; nothing is linked.
