"""Trainer: learning results on the digits, history and validation, callbacks, progress output, reproducibility."""

from __future__ import annotations

import numpy as np
import pytest

import glassnet as gn
import glassnet.datasets
from glassnet import nn, optim
from glassnet.train import Callback, EarlyStopping, ModelCheckpoint, Trainer, fit, read_checkpoint
from glassnet.train.data_spec import fit_normalization, load_split, normalize
from glassnet.train.models import build_model


@pytest.fixture(scope="module")
def digits():
    """The fixed stratified 80/20 split of the digits (split seed 0), standardised by the training set."""
    split = load_split("digits")
    norm = fit_normalization(split.x_train)
    return normalize(split.x_train, norm), split.y_train, normalize(split.x_test, norm), split.y_test


def _loaders(digits, batch_size=32, train_size=None):
    x_train, y_train, x_test, y_test = digits
    if train_size is not None:
        x_train, y_train = x_train[:train_size], y_train[:train_size]
    train = gn.data.DataLoader(gn.data.TensorDataset(x_train, y_train), batch_size=batch_size, shuffle=True)
    test = gn.data.DataLoader(gn.data.TensorDataset(x_test, y_test), batch_size=512)
    return train, test


def _small_trainer(seed=0, **options) -> Trainer:
    gn.manual_seed(seed)
    model = build_model("mlp:32", (1, 8, 8), 10)
    return Trainer(model, optim.Adam(model.parameters(), lr=3e-3), progress="none", seed=seed, **options)


def _classifier_run(digits, spec, epochs, batch_size, make_optimizer, seed=0):
    """The `glassnet train` recipe: cosine annealing over the epochs, label smoothing 0.1; test loss and accuracy."""
    train, test = _loaders(digits, batch_size)
    gn.manual_seed(seed)
    model = build_model(spec, (1, 8, 8), 10)
    optimizer = make_optimizer(model.parameters())
    scheduler = optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=0.1)
    trainer = Trainer(model, optimizer, loss_fn, scheduler=scheduler, progress="none", seed=seed)
    trainer.fit(train, epochs=epochs)
    return trainer.evaluate(test, nn.CrossEntropyLoss())


def test_mlp_on_digits_reaches_97_percent(digits):
    # Seeds 0-3 give 98.1-98.9% (mean 98.5%).
    result = _classifier_run(digits, "mlp:256,128", 30, 32, lambda params: optim.Adam(params, lr=1e-3))
    print(f"MLP 256-128 on the digits test split: accuracy {result['accuracy']:.4f}, loss {result['loss']:.4f}")
    assert result["accuracy"] >= 0.97


def test_lenet_on_8x8_digits_reaches_98_percent(digits):
    # The 8x8 LeNet (3x3 kernels, 32 and 64 channels): seeds 0-3 give 98.6-99.4% (mean 99.0%).
    result = _classifier_run(digits, "lenet", 30, 32, lambda params: optim.Adam(params, lr=2e-3))
    print(f"LeNet (8x8) on the digits test split: accuracy {result['accuracy']:.4f}, loss {result['loss']:.4f}")
    assert result["accuracy"] >= 0.98


def test_history_holds_training_and_validation_metrics(digits):
    train, test = _loaders(digits, train_size=320)
    trainer = _small_trainer()
    history = trainer.fit(train, test, epochs=3)
    assert len(history) == 3 and trainer.epoch == 3 and trainer.global_step == 3 * len(train)
    assert history["epoch"] == [1, 2, 3]
    for key in ("loss", "accuracy", "val_loss", "val_accuracy", "lr", "samples_per_s"):
        assert len(history[key]) == 3, key
    assert history["loss"][-1] < history["loss"][0]
    assert history["val_accuracy"][-1] > 0.7
    assert history.last()["val_loss"] == pytest.approx(trainer.evaluate(test)["loss"])


def test_fit_counts_are_totals_so_a_second_call_continues(digits):
    train, _ = _loaders(digits, train_size=320)
    trainer = _small_trainer()
    trainer.fit(train, epochs=2)
    trainer.fit(train, epochs=3)
    assert trainer.epoch == 3 and len(trainer.history) == 3
    trainer.fit(train, epochs=3)  # nothing left to do
    assert trainer.epoch == 3


def test_same_seed_same_run_different_seed_different_run(digits):
    def run(seed):
        train, _ = _loaders(digits, train_size=320)
        trainer = _small_trainer(seed)
        trainer.fit(train, epochs=2)
        return [p.data.copy() for p in trainer.model.parameters()]

    a, b, c = run(3), run(3), run(4)
    assert all(x.tobytes() == y.tobytes() for x, y in zip(a, b))
    assert any(x.tobytes() != z.tobytes() for x, z in zip(a, c))


def test_regression_logs_loss_without_accuracy():
    x = gn.randn(64, 3)
    y = x @ gn.tensor([[1.0], [-2.0], [0.5]])
    loader = gn.data.DataLoader(gn.data.TensorDataset(x, y), batch_size=16, shuffle=True)
    model = nn.Linear(3, 1)
    history = fit(model, loader, epochs=30, lr=0.05, loss_fn=nn.MSELoss(), progress="none")
    assert "accuracy" not in history
    assert history["loss"][-1] < 0.01 * history["loss"][0]


class _Snapshots(Callback):
    """Keeps a copy of the weights and the logs at each epoch's end."""

    def __init__(self):
        self.weights, self.logs = {}, {}

    def on_epoch_end(self, trainer, epoch, logs):
        self.weights[epoch] = {k: v.data.copy() for k, v in trainer.model.state_dict().items()}
        self.logs[epoch] = dict(logs)


def test_early_stopping_stops_after_patience_and_restores_the_best_weights(digits):
    train, _ = _loaders(digits, train_size=320)
    snapshots = _Snapshots()
    # The training loss goes down every epoch, so in "max" mode only epoch 1 is an improvement.
    stop = EarlyStopping(monitor="loss", mode="max", patience=2, restore_best_weights=True)
    trainer = _small_trainer(callbacks=[stop, snapshots])
    trainer.fit(train, epochs=20)
    assert len(trainer.history) == 4 and stop.stopped_epoch == 4 and stop.best_epoch == 1
    for key, value in trainer.model.state_dict().items():
        assert np.array_equal(value.data, snapshots.weights[1][key])


def test_early_stopping_names_a_missing_monitored_value(digits):
    train, _ = _loaders(digits, train_size=64)
    trainer = _small_trainer(callbacks=[EarlyStopping(monitor="val_loss")])
    with pytest.raises(ValueError, match="val_loss.*val_loader"):
        trainer.fit(train, epochs=1)


def test_model_checkpoint_keeps_the_best_model(digits, tmp_path):
    train, test = _loaders(digits, train_size=320)
    snapshots = _Snapshots()
    best = ModelCheckpoint(tmp_path / "best.safetensors", monitor="val_loss", save_best_only=True)
    every = ModelCheckpoint(str(tmp_path / "epoch{epoch}.safetensors"))
    trainer = _small_trainer(callbacks=[best, every, snapshots], metadata={"note": "digits"})
    trainer.fit(train, test, epochs=4)
    val_losses = {epoch: logs["val_loss"] for epoch, logs in snapshots.logs.items()}
    best_epoch = min(val_losses, key=val_losses.get)
    assert best.best_epoch == best_epoch
    saved = read_checkpoint(tmp_path / "best.safetensors")
    assert saved["metadata"] == {"note": "digits"} and saved["trainer"]["epoch"] == best_epoch
    for key, value in saved["model"].items():
        assert np.array_equal(np.asarray(value), snapshots.weights[best_epoch][key])
    assert sorted(p.name for p in tmp_path.glob("epoch*")) == [f"epoch{i}.safetensors" for i in range(1, 5)]


def test_plain_progress_prints_one_line_per_epoch(digits, capsys):
    train, test = _loaders(digits, train_size=96)
    gn.manual_seed(0)
    model = build_model("mlp:16", (1, 8, 8), 10)
    Trainer(model, optim.SGD(model.parameters(), lr=0.1), progress="epoch").fit(train, test, epochs=2)
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("  ")[0] for line in lines] == ["epoch 1/2", "epoch 2/2"]
    for line in lines:
        for part in ("loss ", "accuracy ", "val_loss ", "val_accuracy ", "samples/s"):
            assert part in line, (part, line)


def test_bar_progress_uses_tqdm(digits, capsys):
    pytest.importorskip("tqdm")
    train, _ = _loaders(digits, train_size=96)
    gn.manual_seed(0)
    model = build_model("mlp:16", (1, 8, 8), 10)
    Trainer(model, optim.SGD(model.parameters(), lr=0.1), progress="bar").fit(train, epochs=1)
    err = capsys.readouterr().err
    assert "epoch 1/1" in err and f"{len(train)}/{len(train)}" in err and "samples/s" in err


def test_bad_arguments_get_clear_errors(digits):
    model = nn.Linear(64, 10)
    with pytest.raises(TypeError, match="optimizer"):
        Trainer(model, "adam")
    with pytest.raises(ValueError, match="progress"):
        Trainer(model, optim.SGD(model.parameters(), lr=0.1), progress="fancy")
    trainer = Trainer(model, optim.SGD(model.parameters(), lr=0.1), progress="none")
    with pytest.raises(ValueError, match="epochs must be a positive integer"):
        trainer.fit([], epochs=0)
    with pytest.raises(ValueError, match="pair"):
        trainer.fit([(gn.randn(2, 64),)], epochs=1)
