"""glassnet.data: datasets, batching and splitting, with torch.utils.data's names.

Example:
    >>> import glassnet as gn
    >>> ds = gn.data.TensorDataset(gn.randn(6, 2), gn.arange(6))
    >>> [tuple(y.shape) for _, y in gn.data.DataLoader(ds, batch_size=4)]
    [(4,), (2,)]
"""

from glassnet.data.collate import default_collate
from glassnet.data.dataloader import DataLoader
from glassnet.data.dataset import ConcatDataset, Dataset, Subset, TensorDataset
from glassnet.data.split import random_split, train_test_split

__all__ = [
    "ConcatDataset",
    "DataLoader",
    "Dataset",
    "Subset",
    "TensorDataset",
    "default_collate",
    "random_split",
    "train_test_split",
]
