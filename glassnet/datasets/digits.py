"""load_digits: the UCI 8x8 handwritten digits (1,797 images, 10 classes) shipped inside glassnet."""

from __future__ import annotations

import zipfile
from importlib import resources

import numpy as np

from glassnet.datasets._common import DatasetError, LabeledData, labeled

DIGITS_FILE = "_files/digits.npz"


def load_digits(as_tensors: bool = False) -> LabeledData:
    """The UCI "Optical Recognition of Handwritten Digits" test set, as scikit-learn ships it.

    1,797 grey images of 8x8 pixels, each pixel the count (0..16) of set pixels in a 4x4 block of
    a 32x32 bitmap, scaled here by 1/16 to [0, 1]; labels are the digits 0..9 (about 180 each).
    The data ships inside glassnet (``glassnet/datasets/_files/digits.npz``); its licence is CC BY
    4.0 (Alpaydin & Kaynak, 1998, UCI ML repository; see ``_files/digits-LICENSE.txt``).

    Args:
        as_tensors: return glassnet Tensors instead of NumPy arrays.

    Returns:
        ``LabeledData(inputs, labels)``: inputs float32 of shape (1797, 1, 8, 8) in [0, 1] (NCHW,
        one channel), labels int64 of shape (1797,). ``.to_dataset()`` gives a TensorDataset.

    Example:
        >>> import glassnet as gn
        >>> images, labels = gn.datasets.load_digits()
        >>> (images.shape, images.dtype.name, labels.dtype.name, int(labels.max()) + 1)
        ((1797, 1, 8, 8), 'float32', 'int64', 10)
    """
    source = resources.files("glassnet.datasets").joinpath(DIGITS_FILE)
    try:
        with source.open("rb") as f, np.load(f, allow_pickle=False) as archive:
            images, labels = archive["images"], archive["labels"]
    except (OSError, KeyError, ValueError, zipfile.BadZipFile, EOFError) as error:
        raise DatasetError(
            f"load_digits: cannot read the bundled data file {source}: {error}; reinstall glassnet"
        ) from error
    if images.shape != (1797, 8, 8) or labels.shape != (1797,) or images.dtype != np.uint8 or images.max() > 16:
        raise DatasetError(
            f"load_digits: the bundled data file {source} is damaged: images {images.dtype} {images.shape}, "
            f"labels {labels.dtype} {labels.shape}; reinstall glassnet"
        )
    inputs = (images.astype(np.float32) / np.float32(16.0)).reshape(-1, 1, 8, 8)
    return labeled(inputs, labels.astype(np.int64), as_tensors)
