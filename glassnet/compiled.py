"""The switch for glassnet's compiled kernels (the C extension ``glassnet._ckernels``).

``pip install glassnet`` builds the extension where a C compiler is found (``setup.py``; it adds no
dependency), and then the memory-bound passes run compiled kernels that release the GIL for a whole
block (``glassnet/_kernels.c``): convolution's im2col, col2im and layout passes, ``MaxPool2d(2)``,
ReLU and the optimizers' steps (SGD, Adam / AdamW, RMSprop) always, BatchNorm on arrays of at least
``MIN_PASS_BYTES``, and Linear's float32 products in inference once ``set_num_threads`` was called
(``glassnet/_gemm.c``, on CPUs with AVX2 and FMA). Only float32 and float64 arrays in the machine's
byte order have kernels; other dtypes (float16, big-endian data) take the NumPy path. Without the
extension (no compiler at install time), with ``GLASSNET_COMPILED=0`` in the environment, or after
``set_enabled(False)``, every op runs the pure NumPy path, which is the reference: the tests compare
the two. Like PyTorch's ``torch.backends.mkldnn``, the fast path is used when it is there, and can
be turned off.

Example:
    >>> import glassnet as gn
    >>> with gn.compiled.flags(enabled=False):
    ...     gn.compiled.is_enabled()
    False
"""

from __future__ import annotations

import contextlib
import importlib
import os
import warnings

import numpy as np

__all__ = [
    "MIN_PASS_BYTES",
    "elementwise_kernels",
    "flags",
    "is_available",
    "is_enabled",
    "kernels",
    "pass_kernels",
    "set_enabled",
]

_wanted = os.environ.get("GLASSNET_COMPILED", "1").strip().lower() not in ("0", "false", "no", "off")
_module = None  # glassnet._ckernels once loaded
_loaded = False  # the one attempt to load it was made (the ops ask on every call)


def _load():
    """glassnet._ckernels, imported on the first call; None when it was not built or would not load."""
    global _module, _loaded
    if not _loaded:
        _loaded = True
        try:
            _module = importlib.import_module("glassnet._ckernels")
        except ImportError as error:
            if getattr(error, "name", None) != "glassnet._ckernels":  # built, but would not load
                warnings.warn(
                    f"glassnet.compiled: the C kernels would not load ({error}); glassnet runs its NumPy kernels",
                    RuntimeWarning,
                    stacklevel=3,
                )
    return _module


def is_available() -> bool:
    """True when the C extension was built at install time and loads."""
    return _load() is not None


def is_enabled() -> bool:
    """True when the ops use the compiled kernels (the extension is available and they are switched on)."""
    return _wanted and is_available()


def set_enabled(enabled: bool) -> None:
    """Switch the compiled kernels on or off for the whole process; on needs the C extension."""
    global _wanted
    if enabled and not is_available():
        raise RuntimeError(
            "glassnet.compiled: the C kernels were not built (no C compiler when glassnet was installed); "
            "install a C compiler and reinstall glassnet"
        )
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


# The kernels are built for float32 and float64 in the machine's byte order.
_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
MIN_PASS_BYTES = 1 << 20  # BatchNorm uses the compiled kernels from this size up


def kernels(dtype=None):
    """The compiled kernels module (``glassnet._ckernels``) when enabled and able to take ``dtype``, else None.

    The ops then run the NumPy path, which handles every floating dtype (float16 and big-endian
    arrays included).
    """
    if not _wanted or (dtype is not None and np.dtype(dtype) not in _DTYPES):
        return None
    return _load()


def elementwise_kernels(*arrays):
    """The compiled kernels for an elementwise pass over ``arrays`` (ReLU), or None.

    The arrays must share one dtype and one contiguous layout, C or Fortran order, so that their
    memory orders (``ravel(order="K")``, a view) pair the same elements; otherwise None, as for a
    dtype the kernels do not handle.
    """
    first = arrays[0]
    layout = "C_CONTIGUOUS" if first.flags.c_contiguous else "F_CONTIGUOUS"
    for a in arrays:
        if a.dtype != first.dtype or a.shape != first.shape or not a.flags[layout]:
            return None
    return kernels(first.dtype)


def pass_kernels(array):
    """The compiled kernels for a per-channel pass over ``array`` (BatchNorm), or None.

    None below ``MIN_PASS_BYTES``, for a strided array, or a dtype the kernels do not handle.
    """
    if array.nbytes < MIN_PASS_BYTES or not array.flags.c_contiguous:
        return None
    return kernels(array.dtype)
