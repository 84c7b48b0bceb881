"""load_csv: headers, label columns, dtypes and malformed files."""

from __future__ import annotations

import numpy as np
import pytest

import glassnet as gn
import glassnet.datasets
from glassnet.datasets import DatasetError, load_csv


def write(tmp_path, text: str, name: str = "table.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_header_with_label_column_anywhere(tmp_path):
    path = write(tmp_path, "a,label,b\n1.5,2,3\n4,0,-6e1\n\n")
    x, y = load_csv(path)
    assert x.dtype == np.float32 and x.tolist() == [[1.5, 3.0], [4.0, -60.0]]
    assert y.dtype == np.int64 and y.tolist() == [2, 0]


def test_no_header_last_column_and_index(tmp_path):
    path = write(tmp_path, "1,2,0\n3,4,1\n")
    x, y = load_csv(path)
    assert x.tolist() == [[1, 2], [3, 4]] and y.tolist() == [0, 1]
    x, y = load_csv(path, label_column=0, as_tensors=True)
    assert isinstance(x, gn.Tensor) and x.numpy().tolist() == [[2, 0], [4, 1]] and y.numpy().tolist() == [1, 3]


def test_named_column_and_float_targets(tmp_path):
    path = write(tmp_path, "target;x\n0.5;1\n1.25;2\n", name="reg.csv")
    x, y = load_csv(path, label_column="target", delimiter=";")
    assert y.dtype == np.float32 and y.tolist() == [0.5, 1.25] and x.tolist() == [[1], [2]]


@pytest.mark.parametrize(
    "text, kwargs, message",
    [
        ("", {}, "is empty"),
        ("a,label\n", {}, "no data rows"),
        ("1\n2\n", {}, "needs a label column"),
        ("a,b,label\n1,2,0\n3,4\n", {}, "line 3 has 2 fields, expected 3"),
        ("a,b,label\n1,2,0\n3,x,1\n", {}, r"line 3 column 2 \('b'\): 'x' is not a finite number"),
        ("a,b,label\n1,,0\n", {}, r"line 2 column 2 \('b'\): '' is not"),
        ("1,2,0\n1,nan,0\n", {}, "line 2 column 2: 'nan' is not a finite number"),
        ("a,b\n1,2\n", {"label_column": "c"}, r"no column 'c'; its columns are \['a', 'b'\]"),
        ("1,2\n", {"label_column": "c"}, "no header row"),
        ("1,2\n", {"label_column": 5}, "out of range"),
    ],
)
def test_malformed_files_name_file_and_place(tmp_path, text, kwargs, message):
    path = write(tmp_path, text)
    with pytest.raises(DatasetError, match=message) as info:
        load_csv(path, **kwargs)
    assert str(path) in str(info.value)


def test_binary_file(tmp_path):
    path = tmp_path / "blob.csv"
    path.write_bytes(b"\xff\xfe\x00\x81garbage")
    with pytest.raises(DatasetError, match="not a UTF-8 text file"):
        load_csv(path)
