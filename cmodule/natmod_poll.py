# The Python part of micronn.mpy, the native module (cmodule/natmod.mk). A
# native module cannot call mp_handle_pending, so a long run polls by calling
# this function: the VM raises a pending KeyboardInterrupt at its jumps.


def _poll(n=0):
    while n:
        n -= 1


_set_poll(_poll)  # noqa: F821 (defined by the module's native part)
del _set_poll  # noqa: F821
