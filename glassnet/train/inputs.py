"""Samples to predict on, read from files: NumPy ``.npy`` arrays, and PGM / PNG images with no extra dependency.

Images are read as grey levels in [0, 1] (the scale of glassnet's image datasets) and fitted to
the model's input size: used as they are when the size matches, averaged over blocks when they
are an integer multiple of it (a 32x32 bitmap becomes the 8x8 digits' 4x4 block counts / 16).

Supported: PGM (P2 ASCII and P5 binary, 8 or 16 bits) and PNG (8 or 16 bits per channel; grey,
grey + alpha, RGB, RGBA, non-interlaced; alpha is composited over white, colour becomes luminance).
"""

from __future__ import annotations

import math
import os
import struct
import zlib

import numpy as np

from glassnet.autograd import GlassnetError

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}  # colour type -> channels (3, palette, is not supported)
IMAGE_SUFFIXES = (".png", ".pgm", ".pnm")


class InputError(GlassnetError):
    """An input file cannot be read, or does not fit the model: the message names the file."""


def _pgm(data: bytes, path: str) -> np.ndarray:
    """Grey levels of a PGM file in [0, 1]."""
    magic = data[:2]
    if magic not in (b"P2", b"P5"):
        raise InputError(f"{path}: not a PGM file (magic {magic!r}, expected P2 or P5)")
    fields, pos = [], 2
    while len(fields) < 3:  # width, height, maxval, separated by whitespace and # comments
        while pos < len(data) and data[pos : pos + 1].isspace():
            pos += 1
        if data[pos : pos + 1] == b"#":
            pos = data.find(b"\n", pos) + 1 or len(data)
            continue
        start = pos
        while pos < len(data) and data[pos : pos + 1].isdigit():
            pos += 1
        if start == pos:
            raise InputError(f"{path}: malformed PGM header")
        fields.append(int(data[start:pos]))
    width, height, maxval = fields
    if width == 0 or height == 0 or not 0 < maxval < 65536:
        raise InputError(f"{path}: PGM header gives {width}x{height} pixels with maxval {maxval}")
    if magic == b"P2":
        try:
            values = np.array(data[pos:].split(), dtype=np.int64)
        except ValueError:
            raise InputError(f"{path}: P2 PGM data holds something other than numbers") from None
    else:
        dtype = np.dtype(">u2") if maxval > 255 else np.dtype(np.uint8)
        body = data[pos + 1 : pos + 1 + width * height * dtype.itemsize]  # one whitespace after maxval
        values = np.frombuffer(body, dtype=dtype)
    if values.size != width * height:
        raise InputError(f"{path}: PGM of {width}x{height} pixels holds {values.size} values")
    return values.reshape(height, width).astype(np.float32) / np.float32(maxval)


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def _unfilter(raw: bytes, height: int, stride: int, bpp: int, path: str) -> np.ndarray:
    """Undo PNG's per-scanline filters (PNG spec, section 9), returning (height, stride) bytes."""
    if len(raw) != height * (stride + 1):
        raise InputError(f"{path}: PNG image data has {len(raw)} bytes, expected {height * (stride + 1)}")
    rows = np.frombuffer(raw, dtype=np.uint8).reshape(height, stride + 1)
    out = np.zeros((height, stride), dtype=np.uint8)
    previous = np.zeros(stride, dtype=np.uint8)
    for y in range(height):
        kind, line = rows[y, 0], rows[y, 1:]
        if kind == 0:
            row = line.copy()
        elif kind == 1:  # Sub: running sum along each byte of the pixel, modulo 256
            padded = np.zeros(math.ceil(stride / bpp) * bpp, dtype=np.uint8)
            padded[:stride] = line
            row = np.cumsum(padded.reshape(-1, bpp), axis=0, dtype=np.uint8).reshape(-1)[:stride]
        elif kind == 2:  # Up
            row = line + previous
        elif kind in (3, 4):  # Average, Paeth: each byte depends on the one just decoded
            row = bytearray(line.tobytes())
            up = previous.tolist()
            for i in range(stride):
                left = row[i - bpp] if i >= bpp else 0
                if kind == 3:
                    row[i] = (row[i] + (left + up[i]) // 2) & 0xFF
                else:
                    row[i] = (row[i] + _paeth(left, up[i], up[i - bpp] if i >= bpp else 0)) & 0xFF
            row = np.frombuffer(bytes(row), dtype=np.uint8)
        else:
            raise InputError(f"{path}: PNG scanline {y} has unknown filter type {kind}")
        out[y] = row
        previous = out[y]
    return out


def _png(data: bytes, path: str) -> np.ndarray:
    """Grey levels of a PNG file in [0, 1]."""
    pos, header, idat = 8, None, []
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        crc = data[pos + 8 + length : pos + 12 + length]
        if len(body) != length or len(crc) != 4 or zlib.crc32(kind + body) != struct.unpack(">I", crc)[0]:
            raise InputError(f"{path}: PNG chunk {kind.decode('latin-1')!r} is truncated or damaged (CRC mismatch)")
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
        pos += 12 + length
    if header is None or not idat:
        raise InputError(f"{path}: PNG file without IHDR or IDAT chunks")
    width, height, depth, colour, _, _, interlace = header
    if colour not in _PNG_CHANNELS or depth not in (8, 16) or interlace != 0:
        raise InputError(
            f"{path}: unsupported PNG (colour type {colour}, {depth} bits, interlace {interlace}); "
            "supported: 8/16-bit grey, grey+alpha, RGB, RGBA, not interlaced. Save it as such, or as PGM or .npy"
        )
    channels = _PNG_CHANNELS[colour]
    bpp = channels * depth // 8
    try:
        raw = zlib.decompress(b"".join(idat))
    except zlib.error as error:
        raise InputError(f"{path}: PNG image data is damaged: {error}") from error
    pixels = _unfilter(raw, height, width * bpp, bpp, path)
    if depth == 16:
        values = pixels.view(">u2").astype(np.float32) / np.float32(65535)
    else:
        values = pixels.astype(np.float32) / np.float32(255)
    values = values.reshape(height, width, channels)
    colour_part, alpha = (values[..., :-1], values[..., -1]) if channels in (2, 4) else (values, None)
    grey = colour_part[..., 0] if colour_part.shape[-1] == 1 else colour_part @ np.float32([0.299, 0.587, 0.114])
    if alpha is not None:
        grey = grey * alpha + (1 - alpha)  # over a white background
    return grey.astype(np.float32)


def read_image(path: str | os.PathLike) -> np.ndarray:
    """A PGM or PNG image as a float32 (H, W) array of grey levels in [0, 1].

    Example:
        >>> import os, tempfile
        >>> path = os.path.join(tempfile.mkdtemp(), "two.pgm")
        >>> with open(path, "wb") as f:
        ...     _ = f.write(b"P2 2 1 255 0 255")
        >>> read_image(path).tolist()
        [[0.0, 1.0]]
    """
    path = os.fspath(path)
    with open(path, "rb") as f:
        data = f.read()
    if data.startswith(PNG_SIGNATURE):
        return _png(data, path)
    if data[:2] in (b"P2", b"P5"):
        return _pgm(data, path)
    raise InputError(f"{path}: not a PNG or PGM image (supported images: 8/16-bit PNG, PGM P2/P5)")


def fit_image(image: np.ndarray, input_shape: tuple[int, ...], path: str) -> np.ndarray:
    """An (H', W') image as one sample of ``input_shape`` (1, H, W): as is, or block-averaged from a multiple."""
    if len(input_shape) != 3 or input_shape[0] != 1:
        raise InputError(f"{path}: the model takes samples of shape {input_shape}, not grey images; pass an .npy array")
    height, width = input_shape[1:]
    rows, cols = image.shape
    if rows % height or cols % width or rows // height != cols // width:
        raise InputError(
            f"{path}: the image is {cols}x{rows} pixels; the model takes {width}x{height} images "
            f"(or an integer multiple of that size, which is averaged down)"
        )
    k = rows // height
    return image.reshape(height, k, width, k).mean(axis=(1, 3)).reshape(1, 1, height, width)


def read_samples(path: str | os.PathLike, input_shape: tuple[int, ...], invert: bool = False) -> np.ndarray:
    """The samples in ``path`` as a float32 batch (N, *input_shape), before normalisation.

    An ``.npy`` file holds one sample (``input_shape``, or flattened) or many (N first); its values
    are taken as they are (images in [0, 1], table features as in the CSV). A PGM or PNG file is one
    image (see ``fit_image``); ``invert`` turns dark ink on white paper into the datasets' light ink
    on black.

    Example:
        >>> import os, tempfile
        >>> import numpy as np
        >>> path = os.path.join(tempfile.mkdtemp(), "x.npy")
        >>> np.save(path, np.zeros((3, 64)))
        >>> read_samples(path, (1, 8, 8)).shape
        (3, 1, 8, 8)
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise InputError(f"{path}: no such file")
    if path.lower().endswith(".npy"):
        try:
            array = np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError) as error:
            raise InputError(f"{path}: not a readable .npy array: {error}") from error
        if array.dtype.kind not in "fiub":
            raise InputError(f"{path}: holds {array.dtype} values, expected numbers")
        size = math.prod(input_shape)
        if array.size == size:
            batch = array.reshape(1, *input_shape)
        elif array.ndim >= 1 and array.shape[0] > 0 and math.prod(array.shape[1:]) == size:
            batch = array.reshape(array.shape[0], *input_shape)
        else:
            raise InputError(
                f"{path}: array of shape {array.shape} does not hold samples of shape {input_shape} "
                f"(one sample, or N samples as (N, {', '.join(map(str, input_shape))}) or (N, {size}))"
            )
        batch = batch.astype(np.float32)
    else:
        batch = fit_image(read_image(path), input_shape, path)
    if invert:
        batch = 1.0 - batch
    if not np.isfinite(batch).all():
        raise InputError(f"{path}: holds nan or infinite values")
    return batch.astype(np.float32, copy=False)
