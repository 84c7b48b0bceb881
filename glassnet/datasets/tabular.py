"""load_csv: a numeric table with a label column, read from a CSV file (for ``--data csv:PATH``)."""

from __future__ import annotations

import csv
import os

import numpy as np

from glassnet.datasets._common import DatasetError, LabeledData, labeled


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _label_index(label_column, header: list[str] | None, width: int, path: str) -> int:
    if label_column is None:
        if header is not None and "label" in header:
            return header.index("label")
        return width - 1
    if isinstance(label_column, str):
        if header is None:
            raise DatasetError(
                f"load_csv: {path} has no header row, so label_column={label_column!r} cannot be found; "
                "pass the column's index instead"
            )
        if label_column not in header:
            raise DatasetError(f"load_csv: {path} has no column {label_column!r}; its columns are {header}")
        return header.index(label_column)
    if isinstance(label_column, (int, np.integer)) and not isinstance(label_column, bool):
        if not -width <= label_column < width:
            raise DatasetError(f"load_csv: label_column={label_column} is out of range for {path}'s {width} columns")
        return int(label_column) % width
    raise TypeError(f"load_csv: label_column must be a column name, an int or None, got {type(label_column).__name__}")


def load_csv(
    path: str | os.PathLike,
    label_column: str | int | None = None,
    *,
    delimiter: str = ",",
    as_tensors: bool = False,
) -> LabeledData:
    """Read a CSV file of numbers: one row per sample, one column of labels, the rest features.

    The first row is a header when any of its fields is not a number. Blank lines are skipped.
    Every other field must be a finite number.

    Args:
        path: the CSV file.
        label_column: the label column's name (needs a header) or index (negative counts from the
            end); None means the column named ``label`` if the header has one, else the last column.
        delimiter: the field separator.
        as_tensors: return glassnet Tensors instead of NumPy arrays.

    Returns:
        ``LabeledData(inputs, labels)``: inputs float32 (N, number of features); labels int64 (N,)
        when every label is a whole number (classes), else float32 (regression targets).

    Raises:
        DatasetError: the file is empty, ragged, or holds a field that is not a finite number
            (the message names the file, the line and the column).

    Example:
        >>> import os, tempfile
        >>> import glassnet as gn
        >>> path = os.path.join(tempfile.mkdtemp(), "points.csv")
        >>> with open(path, "w") as f:
        ...     _ = f.write("x1,x2,label\\n0.5,1.0,0\\n2.0,-1.5,1\\n")
        >>> x, y = gn.datasets.load_csv(path)
        >>> (x.shape, x.dtype.name, y.tolist())
        ((2, 2), 'float32', [0, 1])
    """
    path = os.fspath(path)
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = [(line, row) for line, row in enumerate(csv.reader(f, delimiter=delimiter), 1) if row]
    except UnicodeDecodeError as error:
        raise DatasetError(f"load_csv: {path} is not a UTF-8 text file: {error}") from error
    except csv.Error as error:
        raise DatasetError(f"load_csv: {path} is not valid CSV: {error}") from error
    if not rows:
        raise DatasetError(f"load_csv: {path} is empty")
    header = None
    if not all(_is_number(field) for field in rows[0][1]):
        header = [field.strip() for field in rows[0][1]]
        rows = rows[1:]
        if not rows:
            raise DatasetError(f"load_csv: {path} has a header row but no data rows")
    width = len(header) if header is not None else len(rows[0][1])
    if width < 2:
        raise DatasetError(f"load_csv: {path} has {width} column; it needs a label column and at least one feature")
    for line, row in rows:
        if len(row) != width:
            raise DatasetError(f"load_csv: {path} line {line} has {len(row)} fields, expected {width}")
    label = _label_index(label_column, header, width, path)
    try:
        table = np.array([row for _, row in rows], dtype=np.float64)
    except ValueError:
        table = None
    if table is None or not np.isfinite(table).all():
        for line, row in rows:
            for column, field in enumerate(row):
                if not _is_number(field) or not np.isfinite(float(field)):
                    name = f" ({header[column]!r})" if header is not None else ""
                    raise DatasetError(
                        f"load_csv: {path} line {line} column {column + 1}{name}: {field!r} is not a finite number"
                    )
    labels = table[:, label]
    features = np.delete(table, label, axis=1).astype(np.float32)
    if np.all(labels == np.round(labels)):
        labels = labels.astype(np.int64)
    else:
        labels = labels.astype(np.float32)
    return labeled(features, labels, as_tensors)
