"""Split a nested checkpoint into tensors and a JSON skeleton, and join them back, types kept exactly.

The skeleton is plain JSON. Arrays become references to tensors stored under readable flattened
keys (``model.fc.weight``, ``optimizer.state.0.exp_avg``). Values JSON cannot tell apart are
tagged with one-key objects:

    {"__ndarray__": key}          a NumPy array, stored as the tensor ``key``
    {"__tensor__": key}           a glassnet Tensor (loaded back as a Tensor, requires_grad False)
    {"__scalar__": [dtype, v]}    a NumPy scalar (np.float32(0.5), np.int64(3), ...)
    {"__float__": "nan"}          a non-finite float: "nan", "inf" or "-inf"
    {"__tuple__": [...]}          a tuple
    {"__dict__": [[k, v], ...]}   a dict with a non-str key (ints, as optimizer states have)

Python ints are exact at any size (a NumPy bit-generator state holds 128-bit ints); floats are
written with ``repr`` and read back bit for bit; other mappings load as dicts.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from glassnet.tensor import Tensor

TAGS = ("__ndarray__", "__tensor__", "__scalar__", "__float__", "__tuple__", "__dict__")
# The dtypes a safetensors file holds (safetensors.numpy's table, less complex numbers).
STORABLE_KINDS = {"b": (1,), "i": (1, 2, 4, 8), "u": (1, 2, 4, 8), "f": (2, 4, 8)}
_NONFINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


class StructureError(ValueError):
    """The skeleton or the tensors do not fit together (raised by ``decode``, wrapped by the caller)."""


def _where(path: tuple) -> str:
    return "state" + "".join(f"[{part!r}]" for part in path)


def _float(value: float):
    if math.isfinite(value):
        return value
    return {"__float__": "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")}


class _Encoder:
    def __init__(self) -> None:
        self.tensors: dict[str, np.ndarray] = {}

    def _key(self, path: tuple) -> str:
        key = ".".join(str(part) for part in path) or "_"
        unique, n = key, 1
        while unique in self.tensors or unique == "__metadata__":  # the name safetensors reserves
            n += 1
            unique = f"{key}#{n}"
        return unique

    def _array(self, array: np.ndarray, path: tuple) -> str:
        if array.dtype.kind not in STORABLE_KINDS or array.dtype.itemsize not in STORABLE_KINDS[array.dtype.kind]:
            raise TypeError(
                f"io.save: cannot store an array of dtype {array.dtype} at {_where(path)}; "
                "storable dtypes are bool, (u)int8-64 and float16/32/64"
            )
        key = self._key(path)
        self.tensors[key] = array if array.flags.c_contiguous else array.copy(order="C")  # keeps 0-d
        return key

    def key(self, key, path: tuple):
        if key is None or isinstance(key, (bool, str)):
            return key
        if isinstance(key, (int, np.integer)):
            return int(key)
        if isinstance(key, float):
            return _float(key)
        if isinstance(key, tuple):
            return {"__tuple__": [self.key(k, path) for k in key]}
        raise TypeError(f"io.save: cannot store a dict key of type {type(key).__name__} at {_where(path)}")

    def encode(self, value, path: tuple):
        if value is None or isinstance(value, (bool, str)):
            return str(value) if isinstance(value, str) else value
        if isinstance(value, np.generic):
            kind = value.dtype.kind
            if kind not in STORABLE_KINDS or value.dtype.itemsize not in STORABLE_KINDS[kind]:
                raise TypeError(f"io.save: cannot store a NumPy scalar of dtype {value.dtype} at {_where(path)}")
            item = value.item()
            return {"__scalar__": [value.dtype.name, _float(item) if kind == "f" else item]}
        if isinstance(value, int):
            return int(value)
        if isinstance(value, float):
            return _float(float(value))
        if isinstance(value, Tensor):
            return {"__tensor__": self._array(value.data, path)}
        if isinstance(value, np.ndarray):
            return {"__ndarray__": self._array(value, path)}
        if isinstance(value, tuple):
            return {"__tuple__": [self.encode(v, path + (i,)) for i, v in enumerate(value)]}
        if isinstance(value, list):
            return [self.encode(v, path + (i,)) for i, v in enumerate(value)]
        if isinstance(value, Mapping):
            plain = all(isinstance(k, str) for k in value) and not (len(value) == 1 and next(iter(value)) in TAGS)
            if plain:
                return {str(k): self.encode(v, path + (k,)) for k, v in value.items()}
            return {"__dict__": [[self.key(k, path), self.encode(v, path + (k,))] for k, v in value.items()]}
        raise TypeError(
            f"io.save: cannot store a value of type {type(value).__name__} at {_where(path)}; storable are "
            "arrays, Tensors, NumPy scalars, None, bool, int, float, str, and lists, tuples and dicts of them"
        )


def encode(obj) -> tuple[object, dict[str, np.ndarray]]:
    """The JSON skeleton of ``obj`` and the arrays it references, by key."""
    encoder = _Encoder()
    skeleton = encoder.encode(obj, ())
    return skeleton, encoder.tensors


def decode(skeleton, tensors: Mapping[str, np.ndarray]):
    """Rebuild the object that ``encode`` split into ``skeleton`` and ``tensors``."""
    if skeleton is None or isinstance(skeleton, (bool, int, float, str)):
        return skeleton
    if isinstance(skeleton, list):
        return [decode(v, tensors) for v in skeleton]
    if not isinstance(skeleton, dict):
        raise StructureError(f"unexpected JSON value of type {type(skeleton).__name__}")
    if len(skeleton) == 1 and next(iter(skeleton)) in TAGS:
        ((tag, body),) = skeleton.items()
        if tag in ("__ndarray__", "__tensor__"):
            if not isinstance(body, str) or body not in tensors:
                raise StructureError(f"reference to a tensor {body!r} that the file does not hold")
            array = tensors[body]
            return Tensor(array) if tag == "__tensor__" else array
        if tag == "__float__":
            if body not in _NONFINITE:
                raise StructureError(f"bad __float__ value {body!r}")
            return _NONFINITE[body]
        if tag == "__scalar__":
            if not (isinstance(body, list) and len(body) == 2 and isinstance(body[0], str)):
                raise StructureError(f"bad __scalar__ value {body!r}")
            try:
                dtype = np.dtype(body[0])
            except TypeError as error:
                raise StructureError(f"bad __scalar__ dtype {body[0]!r}") from error
            return dtype.type(decode(body[1], tensors))
        if tag == "__tuple__":
            if not isinstance(body, list):
                raise StructureError(f"bad __tuple__ value {body!r:.100}")
            return tuple(decode(v, tensors) for v in body)
        if not (isinstance(body, list) and all(isinstance(p, list) and len(p) == 2 for p in body)):
            raise StructureError(f"bad __dict__ value {body!r:.100}")
        return {_hashable(decode(k, tensors)): decode(v, tensors) for k, v in body}
    return {k: decode(v, tensors) for k, v in skeleton.items()}


def _hashable(key):
    try:
        hash(key)
    except TypeError as error:
        raise StructureError(f"a dict key of type {type(key).__name__} is not hashable") from error
    return key
