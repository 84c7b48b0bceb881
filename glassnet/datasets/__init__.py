"""glassnet.datasets: the bundled digits, MNIST-style IDX files, Fashion-MNIST and CSV tables.

Nothing is downloaded: digits ship inside glassnet, the others are read from local files.
Every loader returns ``LabeledData(inputs, labels)`` (NumPy arrays, or Tensors with
``as_tensors=True``); ``.to_dataset()`` makes a TensorDataset for a DataLoader.

Example:
    >>> import glassnet as gn
    >>> x, y = gn.datasets.load_digits()
    >>> x_train, x_test, y_train, y_test = gn.datasets.train_test_split(x, y, test_size=0.2, seed=0)
    >>> (len(x_train), len(x_test))
    (1437, 360)
"""

from glassnet.data.split import train_test_split
from glassnet.datasets._common import DatasetError, LabeledData
from glassnet.datasets.digits import load_digits
from glassnet.datasets.idx import read_idx
from glassnet.datasets.mnist_idx import FASHION_MNIST_CLASSES, FASHION_MNIST_ROOT, fashion_mnist, mnist
from glassnet.datasets.tabular import load_csv

__all__ = [
    "FASHION_MNIST_CLASSES",
    "FASHION_MNIST_ROOT",
    "DatasetError",
    "LabeledData",
    "fashion_mnist",
    "load_csv",
    "load_digits",
    "mnist",
    "read_idx",
    "train_test_split",
]
