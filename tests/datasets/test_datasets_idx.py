"""read_idx on IDX files the tests build: raw and gzip, and every kind of damage."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

import glassnet.datasets
from glassnet.datasets import DatasetError, read_idx


def idx_bytes(array: np.ndarray, code: int) -> bytes:
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write(path, data: bytes, compress: bool = False):
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize(
    "dtype, code",
    [(np.uint8, 0x08), (np.int8, 0x09), (np.int16, 0x0B), (np.int32, 0x0C), (np.float32, 0x0D), (np.float64, 0x0E)],
)
def test_round_trip(tmp_path, compress, dtype, code):
    array = (np.arange(2 * 3 * 4) - 5).astype(dtype).reshape(2, 3, 4)
    path = write(tmp_path / "data-idx3", idx_bytes(array, code), compress)  # no .gz suffix: sniffed by magic
    out = read_idx(path)
    assert out.dtype == np.dtype(dtype) and out.dtype.isnative
    np.testing.assert_array_equal(out, array)
    out[0, 0, 0] = 1  # writable


def test_gzip_suffix_and_labels(tmp_path):
    labels = np.array([5, 0, 4, 1], dtype=np.uint8)
    path = write(tmp_path / "train-labels-idx1-ubyte.gz", idx_bytes(labels, 0x08), compress=True)
    np.testing.assert_array_equal(read_idx(str(path)), labels)


def test_empty_dimension(tmp_path):
    path = write(tmp_path / "empty", idx_bytes(np.zeros((0, 28, 28), np.uint8), 0x08))
    assert read_idx(path).shape == (0, 28, 28)


GOOD = idx_bytes(np.arange(24, dtype=np.uint8).reshape(2, 3, 4), 0x08)


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize(
    "data, message",
    [
        (b"\x00\x00", "too short"),
        (b"\x12\x34" + GOOD[2:], "magic number 1234"),
        (GOOD[:2] + b"\x0a" + GOOD[3:], "unknown IDX dtype code 0x0A"),
        (GOOD[:3] + b"\x00" + GOOD[4:], "0 dimensions"),
        (GOOD[:3] + b"\x05" + GOOD[4:], "truncated|data after"),  # wrong number of dimensions
        (GOOD[:4] + struct.pack(">I", 3) + GOOD[8:], "truncated"),  # first dimension too large
        (GOOD[:4] + struct.pack(">I", 1) + GOOD[8:], "data after"),  # first dimension too small
        (GOOD[:10], "truncated.*header"),
        (GOOD[:-1], "truncated.*needs 24 bytes.*holds 23"),
        (GOOD + b"\x00", "data after"),
    ],
)
def test_damage_is_a_clear_error_naming_the_file(tmp_path, compress, data, message):
    path = write(tmp_path / "bad-idx3-ubyte", data, compress)
    with pytest.raises(DatasetError, match=message) as info:
        read_idx(path)
    assert str(path) in str(info.value)
    assert isinstance(info.value, glassnet.GlassnetError)


def test_truncated_and_corrupt_gzip(tmp_path):
    packed = gzip.compress(GOOD)
    path = write(tmp_path / "cut.gz", packed[: len(packed) // 2])
    with pytest.raises(DatasetError, match="cut.gz.*(damaged gzip|truncated)"):
        read_idx(path)
    flipped = bytearray(packed)
    flipped[-6] ^= 0xFF  # the CRC/size trailer
    path = write(tmp_path / "crc.gz", bytes(flipped))
    with pytest.raises(DatasetError, match="crc.gz.*damaged gzip"):
        read_idx(path)


def test_huge_claimed_shape_does_not_allocate(tmp_path):
    header = bytes([0, 0, 0x0E, 3]) + struct.pack(">3I", 2**31, 2**31, 2**31)
    path = write(tmp_path / "liar", header + b"\x00" * 16)
    with pytest.raises(DatasetError, match="truncated"):
        read_idx(path)


def test_missing_file():
    with pytest.raises(FileNotFoundError):
        read_idx("/nonexistent/train-images-idx3-ubyte")
