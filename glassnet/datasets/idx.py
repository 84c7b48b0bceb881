"""read_idx: the IDX file format of MNIST and Fashion-MNIST (raw or gzip), validated, no pickle.

An IDX file is a 4-byte magic number (two zero bytes, a dtype code, the number of dimensions),
one big-endian uint32 per dimension, then the values in C order, big-endian.
"""

from __future__ import annotations

import gzip
import math
import os
import zlib

import numpy as np

from glassnet.datasets._common import DatasetError

IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 1 << 24  # read in 16 MiB pieces, so a lying header cannot make us allocate its claimed size


def _read_up_to(stream, size: int) -> bytearray:
    """Up to ``size`` bytes from ``stream`` (fewer only at the end of the data)."""
    data = bytearray()
    while len(data) < size:
        chunk = stream.read(min(_CHUNK, size - len(data)))
        if not chunk:
            break
        data += chunk
    return data


def _parse(stream, path: str) -> np.ndarray:
    magic = _read_up_to(stream, 4)
    if len(magic) < 4:
        raise DatasetError(f"read_idx: {path} is too short for an IDX file ({len(magic)} bytes, no 4-byte magic)")
    if magic[0] != 0 or magic[1] != 0:
        raise DatasetError(
            f"read_idx: {path} is not an IDX file: magic number {bytes(magic).hex()} does not start with 0000"
        )
    code, ndim = magic[2], magic[3]
    if code not in IDX_DTYPES:
        known = ", ".join(f"0x{c:02X}" for c in IDX_DTYPES)
        raise DatasetError(f"read_idx: {path} has unknown IDX dtype code 0x{code:02X} (known: {known})")
    if ndim == 0:
        raise DatasetError(f"read_idx: {path} declares 0 dimensions; an IDX file needs at least one")
    header = _read_up_to(stream, 4 * ndim)
    if len(header) < 4 * ndim:
        raise DatasetError(
            f"read_idx: {path} is truncated: its header declares {ndim} dimensions but holds "
            f"{len(header)} of their {4 * ndim} bytes"
        )
    shape = tuple(int(d) for d in np.frombuffer(bytes(header), dtype=">u4"))
    dtype = IDX_DTYPES[code]
    expected = math.prod(shape) * dtype.itemsize
    data = _read_up_to(stream, expected)
    if len(data) < expected:
        raise DatasetError(
            f"read_idx: {path} is truncated: shape {shape} of {dtype.newbyteorder('=').name} needs "
            f"{expected} bytes of data, the file holds {len(data)}"
        )
    extra = stream.read(1)
    if extra:
        raise DatasetError(
            f"read_idx: {path} has data after the {expected} bytes that its header's shape {shape} announces; "
            "the header or the file is wrong"
        )
    array = np.frombuffer(data, dtype=dtype).reshape(shape)
    return array.astype(dtype.newbyteorder("="))


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (MNIST's format), gzip-compressed or raw, into a native-endian NumPy array.

    Compression is recognised by the gzip magic bytes, whatever the file's suffix. The magic
    number, dtype code, dimensions and the data length are all checked.

    Args:
        path: the file, e.g. ``train-images-idx3-ubyte.gz``.

    Returns:
        The array, with the dtype of the file's code (0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32,
        0x0D float32, 0x0E float64) and the shape of its header.

    Raises:
        FileNotFoundError: the file does not exist.
        DatasetError: the file is not a well-formed IDX file (message names the file and the fault).

    Example:
        >>> import gzip, os, tempfile
        >>> import glassnet as gn
        >>> path = os.path.join(tempfile.mkdtemp(), "labels-idx1-ubyte.gz")
        >>> with gzip.open(path, "wb") as f:
        ...     _ = f.write(bytes([0, 0, 0x08, 1, 0, 0, 0, 3, 7, 2, 1]))
        >>> gn.datasets.read_idx(path).tolist()
        [7, 2, 1]
    """
    path = os.fspath(path)
    with open(path, "rb") as raw:
        compressed = raw.read(2) == GZIP_MAGIC
        raw.seek(0)
        try:
            if compressed:
                with gzip.GzipFile(fileobj=raw, mode="rb") as stream:
                    return _parse(stream, path)
            return _parse(raw, path)
        except (EOFError, zlib.error, gzip.BadGzipFile) as error:
            raise DatasetError(f"read_idx: {path} is a damaged gzip file: {error}") from error
