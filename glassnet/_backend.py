"""The array backend: which array module (``xp``) glassnet computes with, its dtypes and its RNG.

This is the only file that may import CuPy. Everything else asks for ``xp`` here, so that a later
GPU backend changes one seam, not every op (the idiom of DeZero's ``cuda.py``).
"""

from __future__ import annotations

import ctypes
import os
import sys

import numpy as np

xp = np

float32 = np.dtype(np.float32)
float64 = np.dtype(np.float64)
int64 = np.dtype(np.int64)
bool_ = np.dtype(np.bool_)

_default_dtype = float32


def get_array_module(array) -> object:
    """Return the array module (NumPy, or CuPy for a CuPy array) that owns ``array``."""
    return np


def get_default_dtype() -> np.dtype:
    """The dtype of floating tensors made from Python numbers (float32 unless changed)."""
    return _default_dtype


def set_default_dtype(dtype) -> None:
    """Set the dtype for floating tensors made from Python numbers (float32 or float64)."""
    global _default_dtype
    dtype = np.dtype(dtype)
    if dtype not in (float32, float64):
        raise TypeError(f"set_default_dtype: only float32 and float64 are supported, got {dtype}")
    _default_dtype = dtype


_rng = np.random.default_rng()


def manual_seed(seed: int) -> np.random.Generator:
    """Seed the one generator behind every random function of glassnet (init, dropout, shuffling).

    Example:
        >>> import glassnet as gn
        >>> _ = gn.manual_seed(0); a = gn.randn(3)
        >>> _ = gn.manual_seed(0); bool((gn.randn(3) == a).all())
        True
    """
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise TypeError(f"manual_seed: expected an integer seed, got {type(seed).__name__}")
    # Reseed the one generator in place (the stream of np.random.default_rng(seed)), so that code
    # holding on to default_generator() follows the new seed too.
    _rng.bit_generator.state = np.random.PCG64(int(seed)).state
    return _rng


def default_generator() -> np.random.Generator:
    """The global generator that ``manual_seed`` seeds (always the same object)."""
    return _rng


def get_rng_state() -> dict:
    """A copy of the global generator's state (a plain dict, safe to save)."""
    return _rng.bit_generator.state


def set_rng_state(state: dict) -> None:
    """Restore the global generator's state from ``get_rng_state()``."""
    _rng.bit_generator.state = state


def _keep_freed_memory_for_reuse() -> None:
    """Make glibc's malloc serve arrays up to 32 MiB from its heap and keep up to 256 MiB of it when freed.

    By default malloc hands arrays above a threshold (128 KiB, raised only by the size of the
    largest array freed so far, at most 32 MiB) straight from the OS, and gives the heap's top back
    to the OS when more than twice that is free. A training step allocates and frees the same
    multi-MiB activations every step, so they would page-fault afresh each time (measured: up to
    8,900 faults, ~35 MiB, per BatchNorm-CNN step; LeNet inference 2.4x slower). Peak memory is
    unchanged: freed memory is reused, not added; a process may keep up to 256 MiB of freed memory.
    It applies to the whole process: set GLASSNET_MALLOPT=0 before importing glassnet to turn it off.
    """
    if not sys.platform.startswith("linux") or os.environ.get("GLASSNET_MALLOPT", "1") == "0":
        return
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc
        return
    m_trim_threshold, m_mmap_threshold = -1, -3
    mallopt(m_mmap_threshold, 32 << 20)
    mallopt(m_trim_threshold, 256 << 20)


_keep_freed_memory_for_reuse()
