"""glassnet.train: the Trainer (epochs, metrics, validation, callbacks, progress, exact resumption) and fit().

Example:
    >>> import glassnet as gn
    >>> import glassnet.datasets
    >>> from glassnet import nn, optim
    >>> from glassnet.train import EarlyStopping, Trainer
    >>> x, y = gn.datasets.load_digits()
    >>> x_train, x_val, y_train, y_val = gn.datasets.train_test_split(x, y, test_size=0.2, seed=0)
    >>> train = gn.data.DataLoader(gn.data.TensorDataset(x_train, y_train), batch_size=32, shuffle=True)
    >>> val = gn.data.DataLoader(gn.data.TensorDataset(x_val, y_val), batch_size=256)
    >>> _ = gn.manual_seed(0)
    >>> model = nn.Sequential(nn.Flatten(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
    >>> trainer = Trainer(model, optim.Adam(model.parameters(), lr=3e-3), progress="none", seed=0,
    ...                   callbacks=[EarlyStopping("val_loss", patience=2)])
    >>> history = trainer.fit(train, val, epochs=5)
    >>> history["val_accuracy"][-1] > 0.9
    True
"""

from glassnet.train.callbacks import Callback, EarlyStopping, ModelCheckpoint
from glassnet.train.history import History
from glassnet.train.trainer import Trainer, evaluate, fit, read_checkpoint, seed_everything

__all__ = [
    "Callback",
    "EarlyStopping",
    "History",
    "ModelCheckpoint",
    "Trainer",
    "evaluate",
    "fit",
    "read_checkpoint",
    "seed_everything",
]
