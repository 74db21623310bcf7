"""micronn: int8 neural networks for MicroPython microcontrollers.

    blob = micronn.pack("model.tflite")      # bytes of a .mnb blob
    micronn.inspect(blob)                    # ops, tensors, memory
"""

from .errors import MicronnError

__version__ = "0.1.0"

__all__ = ["MicronnError", "pack", "inspect", "__version__"]


def pack(*args, **kwargs) -> bytes:
    """Pack a model into a blob; see ``micronn.packer.pack``."""
    from .packer import pack as _pack

    return _pack(*args, **kwargs)


def inspect(blob, **kwargs) -> dict:
    """Describe a blob; see ``micronn.inspector.inspect``."""
    from .inspector import inspect as _inspect

    return _inspect(blob, **kwargs)
