"""save/load of checkpoints and state dicts as safetensors files: atomic writes, validated reads, no pickle.

A checkpoint file is an ordinary safetensors file: every array of the saved object is a tensor
under a readable flattened key, and the rest of the object (nesting, Python scalars, RNG states)
is a JSON skeleton in the header's metadata (see ``glassnet.io._structure``), with a CRC-32 of the
tensors' bytes so that damaged data is caught, not silently loaded.
"""

from __future__ import annotations

import json
import os
import struct
import zlib
from collections.abc import Mapping

import numpy as np

from glassnet.autograd import GlassnetError
from glassnet.io._atomic import atomic_write
from glassnet.io._structure import StructureError, decode, encode
from glassnet.tensor import Tensor

FORMAT = "glassnet.checkpoint/1"
_FORMAT_KEY, _STRUCTURE_KEY, _CRC_KEY = "glassnet.format", "glassnet.structure", "glassnet.crc32"
_MAX_HEADER = 100 * 1024 * 1024  # safetensors' own limit on the JSON header


class CheckpointError(GlassnetError):
    """A checkpoint or state-dict file is not a valid (glassnet) safetensors file: the message names it."""


def _safetensors_numpy():
    try:
        import safetensors.numpy
    except ImportError as error:
        raise ImportError(
            "glassnet.io needs the safetensors package to save and load checkpoints: pip install glassnet[io]"
        ) from error
    return safetensors.numpy


def _crc32(tensors: Mapping[str, np.ndarray]) -> str:
    """CRC-32 over the tensors' little-endian bytes, in key order (the same before and after a round trip)."""
    crc = 0
    for key in sorted(tensors):
        array = tensors[key]
        little = array.astype(array.dtype.newbyteorder("<"), copy=False)
        crc = zlib.crc32(key.encode(), crc)
        crc = zlib.crc32(np.ascontiguousarray(little).reshape(-1).view(np.uint8), crc)
    return f"{crc:08x}"


def _read(path, caller: str) -> tuple[dict, dict[str, np.ndarray]]:
    """The header metadata and the tensors (writable copies) of the safetensors file ``path``."""
    st = _safetensors_numpy()
    path = os.fspath(path)
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 8:
        raise CheckpointError(f"{caller}: {path} is not a safetensors file: {len(data)} bytes, shorter than its header")
    (header_size,) = struct.unpack("<Q", data[:8])
    if header_size > min(len(data) - 8, _MAX_HEADER):
        raise CheckpointError(
            f"{caller}: {path} is not a safetensors file or is truncated: its header claims {header_size} bytes, "
            f"the file has {len(data)}"
        )
    try:
        header = json.loads(data[8 : 8 + header_size])
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{caller}: {path} has a corrupt safetensors header (not JSON): {error}") from error
    if not isinstance(header, dict):
        raise CheckpointError(f"{caller}: {path} has a corrupt safetensors header (not a JSON object)")
    try:
        tensors = st.load(data)
    except Exception as error:  # safetensors raises its own SafetensorError for every fault
        raise CheckpointError(f"{caller}: {path} is damaged: {error}") from error
    tensors = {k: v if v.flags.writeable else v.copy() for k, v in tensors.items()}
    metadata = header.get("__metadata__") or {}
    return metadata, tensors


def save(obj, path: str | os.PathLike) -> None:
    """Save a checkpoint (nested dicts, lists, tuples, arrays, Tensors, Python and NumPy scalars).

    Arrays are stored as safetensors tensors; everything else goes, as JSON, into the header's
    metadata, types kept: ints stay ints (of any size, e.g. a NumPy RNG state), floats stay floats
    (bit for bit, nan and inf included), tuples stay tuples, int dict keys stay ints, NumPy scalars
    keep their dtype, Tensors load back as Tensors (``requires_grad`` is not kept) and arrays as
    arrays. Other mappings load as dicts. Nothing is pickled.

    The write is atomic: a temporary file in the same folder is written, flushed and fsynced,
    then renamed over ``path``; a crash or kill at any moment leaves the previous file intact.

    Args:
        obj: the object to save, e.g. ``{"model": model.state_dict(), "optimizer": opt.state_dict(),
            "epoch": 3, "rng": gn.get_rng_state()}``.
        path: the file to write (conventionally ``*.safetensors``).

    Raises:
        TypeError: ``obj`` holds a value that cannot be stored (the message gives where).
        ImportError: safetensors is not installed (``pip install glassnet[io]``).

    Example:
        >>> import os, tempfile
        >>> import numpy as np
        >>> import glassnet as gn
        >>> path = os.path.join(tempfile.mkdtemp(), "ckpt.safetensors")
        >>> gn.io.save({"model": {"w": np.ones(2, np.float32)}, "epoch": 3, "betas": (0.9, 0.999)}, path)
        >>> state = gn.io.load(path)
        >>> (state["epoch"], state["betas"], state["model"]["w"].tolist())
        (3, (0.9, 0.999), [1.0, 1.0])
    """
    st = _safetensors_numpy()
    skeleton, tensors = encode(obj)
    metadata = {
        _FORMAT_KEY: FORMAT,
        _STRUCTURE_KEY: json.dumps(skeleton, allow_nan=False, separators=(",", ":")),
        _CRC_KEY: _crc32(tensors),
    }
    atomic_write(path, st.save(tensors, metadata=metadata))


def load(path: str | os.PathLike):
    """Load a checkpoint written by ``save``, checking it first.

    Args:
        path: the file.

    Returns:
        The saved object, rebuilt with the types it had (see ``save``). Arrays are writable.

    Raises:
        FileNotFoundError: there is no such file.
        CheckpointError: the file is not a safetensors file, is truncated or damaged (header or
            data), or is a safetensors file that ``save`` did not write (use ``load_state_dict``).
        ImportError: safetensors is not installed (``pip install glassnet[io]``).

    Example:
        >>> import os, tempfile
        >>> import glassnet as gn
        >>> path = os.path.join(tempfile.mkdtemp(), "ckpt.safetensors")
        >>> gn.io.save({"step": 10, "state": {0: {"lr": 0.1}}}, path)
        >>> gn.io.load(path)
        {'step': 10, 'state': {0: {'lr': 0.1}}}
    """
    path = os.fspath(path)
    metadata, tensors = _read(path, "io.load")
    if metadata.get(_FORMAT_KEY) != FORMAT or _STRUCTURE_KEY not in metadata:
        raise CheckpointError(
            f"io.load: {path} is a safetensors file but not a glassnet checkpoint (its metadata has no "
            f"{_FORMAT_KEY}={FORMAT!r} and {_STRUCTURE_KEY}); for a plain state dict use io.load_state_dict"
        )
    if metadata.get(_CRC_KEY) != _crc32(tensors):
        raise CheckpointError(
            f"io.load: {path} is damaged: the CRC-32 of its tensors is {_crc32(tensors)}, "
            f"the file recorded {metadata.get(_CRC_KEY)}"
        )
    try:
        return decode(json.loads(metadata[_STRUCTURE_KEY]), tensors)
    except (json.JSONDecodeError, StructureError, RecursionError) as error:
        raise CheckpointError(f"io.load: {path} has a corrupt glassnet structure in its metadata: {error}") from error


def save_state_dict(
    state_dict: Mapping[str, np.ndarray], path: str | os.PathLike, metadata: Mapping[str, str] | None = None
) -> None:
    """Save a flat ``{name: array}`` mapping (a model's ``state_dict()``) as a plain safetensors file.

    The file is the same as ``safetensors.numpy.save_file`` writes, so other tools (PyTorch's
    ``safetensors.torch.load_file``, for one) read it; the write is atomic, as in ``save``.

    Args:
        state_dict: names to NumPy arrays or glassnet Tensors.
        path: the file to write.
        metadata: optional text-only ``{str: str}`` to put in the header.

    Example:
        >>> import os, tempfile
        >>> import glassnet as gn
        >>> path = os.path.join(tempfile.mkdtemp(), "model.safetensors")
        >>> gn.io.save_state_dict({"fc.weight": gn.ones(2, 3), "fc.bias": gn.zeros(2)}, path)
        >>> {k: v.shape for k, v in gn.io.load_state_dict(path).items()}
        {'fc.bias': (2,), 'fc.weight': (2, 3)}
    """
    st = _safetensors_numpy()
    if not isinstance(state_dict, Mapping):
        raise TypeError(f"io.save_state_dict: expected a mapping of names to arrays, got {type(state_dict).__name__}")
    tensors = {}
    for name, value in state_dict.items():
        if not isinstance(name, str) or name == "__metadata__":
            raise TypeError(f"io.save_state_dict: names must be strings other than '__metadata__', got {name!r}")
        array = value.data if isinstance(value, Tensor) else value
        if not isinstance(array, np.ndarray):
            raise TypeError(f"io.save_state_dict: {name!r} is a {type(value).__name__}, not an array or Tensor")
        tensors[name] = array if array.flags.c_contiguous else array.copy(order="C")
    if metadata is not None and not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
        raise TypeError("io.save_state_dict: metadata must map strings to strings")
    try:
        data = st.save(tensors, metadata=dict(metadata) if metadata is not None else None)
    except Exception as error:
        raise TypeError(f"io.save_state_dict: safetensors cannot store these arrays: {error}") from error
    atomic_write(path, data)


def load_state_dict(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read every tensor of a safetensors file as ``{name: array}`` (writable NumPy arrays).

    Reads files from ``save_state_dict`` and from other libraries alike; pass the result to
    ``module.load_state_dict``.

    Raises:
        FileNotFoundError: there is no such file.
        CheckpointError: the file is not a safetensors file, or is truncated or damaged.

    Example:
        >>> import os, tempfile
        >>> import numpy as np
        >>> import glassnet as gn
        >>> path = os.path.join(tempfile.mkdtemp(), "model.safetensors")
        >>> gn.io.save_state_dict({"w": np.arange(3.0)}, path)
        >>> gn.io.load_state_dict(path)["w"].tolist()
        [0.0, 1.0, 2.0]
    """
    _, tensors = _read(path, "io.load_state_dict")
    return dict(sorted(tensors.items()))
