"""The switch for glassnet's optional compiled kernels (``pip install "glassnet[fast]"``, numba).

With numba installed, the memory-bound passes of CNN training run compiled kernels that release the
GIL for a whole block (``glassnet/_numba_kernels.py``): convolution's im2col, col2im and layout
passes and ``MaxPool2d(2)`` always, ReLU and BatchNorm on arrays of at least ``MIN_PASS_BYTES``
(below that the gain is a few microseconds, not worth loading numba's ~120 MiB runtime into, say, an
MLP's process). Only float32 and float64 arrays in the machine's byte order are compiled for; other
dtypes (float16, big-endian data) take the NumPy path. Without numba, with ``GLASSNET_NUMBA=0`` in
the environment, or after ``set_enabled(False)``, every op runs the pure NumPy path, which is the
reference: the tests compare the two. Like PyTorch's ``torch.backends.mkldnn``, the fast path is
used when it is there, and can be turned off.

Example:
    >>> import glassnet as gn
    >>> with gn.compiled.flags(enabled=False):
    ...     gn.compiled.is_enabled()
    False
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import warnings

import numpy as np

__all__ = ["MIN_PASS_BYTES", "flags", "is_available", "is_enabled", "kernels", "pass_kernels", "set_enabled"]

_wanted = os.environ.get("GLASSNET_NUMBA", "1").strip().lower() not in ("0", "false", "no", "off")
_module = None  # glassnet._numba_kernels once imported
_failed = False  # numba is installed but would not import


def is_available() -> bool:
    """True when numba is installed and imports (the extra ``glassnet[fast]``)."""
    if _failed:
        return False
    return _module is not None or importlib.util.find_spec("numba") is not None


def is_enabled() -> bool:
    """True when the ops use the compiled kernels (numba is available and they are switched on)."""
    return _wanted and is_available()


def set_enabled(enabled: bool) -> None:
    """Switch the compiled kernels on or off for the whole process; on needs numba."""
    global _wanted
    if enabled and not is_available():
        raise RuntimeError('glassnet.compiled: numba is not installed; pip install "glassnet[fast]"')
    _wanted = bool(enabled)


@contextlib.contextmanager
def flags(enabled: bool):
    """Within the block, the compiled kernels are on or off (restored afterwards)."""
    global _wanted
    before = _wanted
    set_enabled(enabled)
    try:
        yield
    finally:
        _wanted = before


# numba compiles no float16 arithmetic, and its array types are native-endian only.
_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
MIN_PASS_BYTES = 1 << 20  # ReLU and BatchNorm use the compiled kernels from this size up


def kernels(dtype=None):
    """The compiled kernels module when enabled (and, given a ``dtype``, when they handle it), else None.

    The ops then run the NumPy path, which handles every floating dtype (float16 and big-endian
    arrays included).
    """
    global _module, _failed
    if not _wanted or _failed or (dtype is not None and np.dtype(dtype) not in _DTYPES):
        return None
    if _module is None:
        if importlib.util.find_spec("numba") is None:
            return None
        try:
            from glassnet import _numba_kernels
        except Exception as error:  # a numba that does not match this NumPy, say
            _failed = True
            warnings.warn(
                f"glassnet.compiled: numba would not import ({type(error).__name__}: {error}); "
                "glassnet runs its NumPy kernels",
                RuntimeWarning,
                stacklevel=2,
            )
            return None
        _module = _numba_kernels
    return _module


def pass_kernels(array):
    """The compiled kernels for an elementwise or per-channel pass over ``array`` (ReLU, BatchNorm), or None.

    None below ``MIN_PASS_BYTES``, for a strided array, or a dtype the kernels do not handle.
    """
    if array.nbytes < MIN_PASS_BYTES or not array.flags.c_contiguous:
        return None
    return kernels(array.dtype)
