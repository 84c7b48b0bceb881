"""Trainer: the PyTorch-style training loop with metrics, validation, callbacks, progress and exact resumption.

Each step is the loop a PyTorch user writes by hand, unchanged::

    output = model(inputs); loss = loss_fn(output, targets)
    optimizer.zero_grad(); loss.backward(); optimizer.step()

around which the Trainer counts epochs and steps, averages loss and accuracy, validates, steps the
learning-rate schedule, reports progress, calls callbacks, and saves checkpoints from which a run
resumes bit for bit: model, optimizer, scheduler, counters, the epoch's partial sums, history,
callbacks, the global RNG states and the DataLoader's position in its shuffled epoch.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from glassnet import _backend
from glassnet.autograd import GlassnetError, no_grad
from glassnet.nn import CrossEntropyLoss, Module
from glassnet.optim import Optimizer
from glassnet.optim.lr_scheduler import LRScheduler, ReduceLROnPlateau
from glassnet.tensor import Tensor
from glassnet.train.callbacks import Callback, ModelCheckpoint
from glassnet.train.history import EpochTotals, History
from glassnet.train.progress import Progress, make_progress

CHECKPOINT_FORMAT = "glassnet.train/1"
_CHECKPOINT_KEYS = ("format", "model", "optimizer", "scheduler", "trainer", "callbacks", "rng", "loader", "metadata")


def seed_everything(seed: int) -> None:
    """Seed glassnet's generator (init, dropout, shuffling) and, for user code, NumPy's and Python's global ones.

    Example:
        >>> import glassnet as gn
        >>> from glassnet.train import seed_everything
        >>> seed_everything(0); a = gn.randn(2)
        >>> seed_everything(0); bool((gn.randn(2) == a).all())
        True
    """
    _backend.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)


def _rng_states() -> dict[str, Any]:
    return {"glassnet": _backend.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}


def _set_rng_states(states: dict[str, Any]) -> None:
    _backend.set_rng_state(states["glassnet"])
    np.random.set_state(states["numpy"])
    random.setstate(states["python"])


def _unpack(batch) -> tuple[Tensor, Tensor]:
    if isinstance(batch, (tuple, list)) and len(batch) == 2:
        inputs, targets = batch
        return inputs, targets
    got = f"a {type(batch).__name__} of {len(batch)}" if isinstance(batch, (tuple, list)) else type(batch).__name__
    raise GlassnetError(f"Trainer: each batch must be a pair (inputs, targets), got {got}")


def _count_correct(output: Tensor, target: Tensor) -> int | None:
    """Correct predictions of class scores (N, C) for integer labels (N,); None when not a classification."""
    out, labels = output.data, target.data
    if out.ndim != 2 or labels.ndim != 1 or labels.dtype.kind not in "iu" or len(labels) != len(out):
        return None
    return int(np.count_nonzero(out.argmax(axis=1) == labels))


def read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read and check a checkpoint written by ``Trainer.save_checkpoint`` (without a Trainer).

    Args:
        path: the checkpoint file.

    Returns:
        The checkpoint: ``model`` (a state dict), ``optimizer``, ``scheduler``, ``trainer``,
        ``callbacks``, ``rng``, ``loader`` and ``metadata`` (what the trainer was given).

    Raises:
        FileNotFoundError: no such file.
        glassnet.io.CheckpointError: the file is damaged or not a trainer checkpoint.

    Example:
        >>> from glassnet.train import read_checkpoint
        >>> meta = read_checkpoint("run.safetensors")["metadata"]  # doctest: +SKIP
    """
    from glassnet import io

    state = io.load(path)
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT or set(state) != set(_CHECKPOINT_KEYS):
        raise io.CheckpointError(
            f"read_checkpoint: {os.fspath(path)} is a glassnet file but not a Trainer checkpoint "
            f"(expected format {CHECKPOINT_FORMAT!r} with keys {list(_CHECKPOINT_KEYS)})"
        )
    return state


def evaluate(model: Module, loader: Iterable, loss_fn) -> dict[str, float]:
    """The mean loss (and accuracy, for class scores and integer labels) of ``model`` over ``loader``.

    The model is in eval mode and no graph is recorded; its previous mode is restored.

    Args:
        model: the module to evaluate.
        loader: yields ``(inputs, targets)`` batches.
        loss_fn: ``loss_fn(output, targets)``, a mean over the batch.

    Returns:
        ``{"loss": ..., "accuracy": ...}`` (no ``accuracy`` for other tasks).

    Example:
        >>> import glassnet as gn
        >>> from glassnet import nn
        >>> from glassnet.train import evaluate
        >>> batches = [(gn.randn(8, 4), gn.randint(0, 3, (8,)))]
        >>> sorted(evaluate(nn.Linear(4, 3), batches, nn.CrossEntropyLoss()))
        ['accuracy', 'loss']
    """
    totals = EpochTotals()
    was_training = model.training
    model.eval()
    try:
        with no_grad():
            for batch in loader:
                inputs, targets = _unpack(batch)
                output = model(inputs)
                totals.add(loss_fn(output, targets).item(), len(targets), _count_correct(output, targets))
    finally:
        model.train(was_training)
    if totals.samples == 0:
        raise GlassnetError("evaluate: the loader yielded no samples")
    return totals.metrics()


class Trainer:
    """Train a model with an optimizer and a loss, over epochs of a DataLoader.

    Args:
        model: the module to train.
        optimizer: a glassnet optimizer over the model's parameters.
        loss_fn: ``loss_fn(output, targets)``; ``nn.CrossEntropyLoss()`` when None.
        scheduler: an ``optim.lr_scheduler`` scheduler, stepped every epoch (``ReduceLROnPlateau``
            with ``val_loss``, or ``loss`` without validation) or every step (``scheduler_interval``).
        scheduler_interval: 'epoch' or 'step'.
        callbacks: Callback objects (EarlyStopping, ModelCheckpoint...); ModelCheckpoint ones run last.
        progress: 'auto' (a tqdm bar on a terminal, else one line per epoch), 'bar', 'epoch', 'none',
            or a ``glassnet.train.progress.Progress``.
        seed: if given, ``seed_everything(seed)`` when a fresh run starts (the shuffle order, dropout);
            seed the model's initialisation yourself (``gn.manual_seed`` before building it).
        metadata: a dict saved in every checkpoint (e.g. what is needed to rebuild the model).

    Attributes:
        epoch: completed epochs. global_step: optimizer steps taken. history: the per-epoch logs.
        stop_training: set it to True (from a callback) to stop at the end of the current batch.

    Example:
        >>> import glassnet as gn
        >>> import glassnet.datasets
        >>> from glassnet import nn, optim
        >>> from glassnet.train import Trainer
        >>> x, y = gn.datasets.load_digits()
        >>> loader = gn.data.DataLoader(gn.data.TensorDataset(x, y), batch_size=64, shuffle=True)
        >>> _ = gn.manual_seed(0)
        >>> model = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
        >>> trainer = Trainer(model, optim.Adam(model.parameters(), lr=1e-2), progress="none", seed=0)
        >>> history = trainer.fit(loader, epochs=3)
        >>> history["accuracy"][-1] > 0.9
        True
    """

    def __init__(
        self,
        model: Module,
        optimizer: Optimizer,
        loss_fn=None,
        *,
        scheduler: LRScheduler | None = None,
        scheduler_interval: str = "epoch",
        callbacks: Sequence[Callback] = (),
        progress: str | Progress = "auto",
        seed: int | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        if not isinstance(model, Module):
            raise TypeError(f"Trainer: model must be a glassnet nn.Module, got {type(model).__name__}")
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"Trainer: optimizer must be a glassnet optim.Optimizer, got {type(optimizer).__name__}")
        if scheduler is not None and not isinstance(scheduler, LRScheduler):
            raise TypeError(
                f"Trainer: scheduler must be an optim.lr_scheduler scheduler, got {type(scheduler).__name__}"
            )
        if scheduler_interval not in ("epoch", "step"):
            raise GlassnetError(f"Trainer: scheduler_interval must be 'epoch' or 'step', got {scheduler_interval!r}")
        for callback in callbacks:
            if not isinstance(callback, Callback):
                raise TypeError(f"Trainer: callbacks must be Callback objects, got {type(callback).__name__}")
        make_progress(progress)  # check the mode now rather than at fit()
        self.model = model
        self.optimizer = optimizer
        self.loss_fn = CrossEntropyLoss() if loss_fn is None else loss_fn
        self.scheduler = scheduler
        self.scheduler_interval = scheduler_interval
        # Checkpoint callbacks last, so that what they save includes the other callbacks' updates.
        self.callbacks = sorted(callbacks, key=lambda c: isinstance(c, ModelCheckpoint))
        self.progress = progress
        self.seed = seed
        self.metadata = dict(metadata) if metadata is not None else {}
        self.epoch = 0
        self.global_step = 0
        self.history = History()
        self.stop_training = False
        self._batch_in_epoch = 0
        self._totals = EpochTotals()
        self._train_loader = None
        self._pending: dict[str, Any] | None = None  # RNG and loader states of a loaded checkpoint, applied by fit

    # ---- training
    def fit(
        self, train_loader: Iterable, val_loader: Iterable | None = None, epochs: int = 1, max_steps: int | None = None
    ) -> History:
        """Train until ``epochs`` epochs (or ``max_steps`` optimizer steps) are done in all, then return the history.

        Counts are totals, not increments: after a checkpoint is loaded, ``fit`` with the same
        arguments finishes the interrupted run exactly as it would have gone on.

        Args:
            train_loader: yields ``(inputs, targets)`` batches; a glassnet DataLoader for exact resumption.
            val_loader: evaluated after each epoch; its loss and accuracy are logged as ``val_loss``
                and ``val_accuracy``.
            epochs: the total number of epochs.
            max_steps: stop after this many optimizer steps in all (possibly mid-epoch).

        Returns:
            The ``History`` of all epochs so far.
        """
        for name, value in (("epochs", epochs), ("max_steps", 1 if max_steps is None else max_steps)):
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
                raise GlassnetError(f"Trainer.fit: {name} must be a positive integer, got {value!r}")
        self._prepare_loader(train_loader)
        self.stop_training = False
        reporter = make_progress(self.progress)
        for callback in self.callbacks:
            callback.on_fit_begin(self)
        try:
            while self.epoch < epochs and not self.stop_training:
                if max_steps is not None and self.global_step >= max_steps:
                    break
                if not self._train_epoch(train_loader, epochs, max_steps, reporter):
                    break
                logs = self._end_epoch(val_loader)
                reporter.epoch_end(logs)
                for callback in self.callbacks:
                    callback.on_epoch_end(self, self.epoch, logs)
        finally:
            reporter.close()
        for callback in self.callbacks:
            callback.on_fit_end(self)
        return self.history

    def _prepare_loader(self, train_loader) -> None:
        """Seed a fresh run, or put the loader (and the RNGs, after a load) where the interrupted run was."""
        resumable = hasattr(train_loader, "load_state_dict") and hasattr(train_loader, "state_dict")
        if self._pending is not None:
            pending, self._pending = self._pending, None
            _set_rng_states(pending["rng"])
            if pending["loader"] is not None and resumable:
                train_loader.load_state_dict(pending["loader"])
            elif self._batch_in_epoch > 0:
                raise GlassnetError(
                    "Trainer.fit: the checkpoint stopped mid-epoch; resuming it needs a glassnet DataLoader "
                    "(with state_dict/load_state_dict) as train_loader"
                )
        elif self._batch_in_epoch > 0:
            if train_loader is not self._train_loader or not resumable:
                raise GlassnetError(
                    "Trainer.fit: the previous fit stopped mid-epoch (max_steps); continue it with the same "
                    "DataLoader, or save and load a checkpoint"
                )
            train_loader.load_state_dict(train_loader.state_dict())  # resume the epoch where it stopped
        elif self.global_step == 0 and self.epoch == 0 and self.seed is not None:
            seed_everything(self.seed)
        self._train_loader = train_loader

    def _train_epoch(self, loader, epochs: int, max_steps: int | None, reporter: Progress) -> bool:
        """Run (the rest of) one epoch; False if it stopped early (max_steps, stop_training) mid-epoch."""
        epoch = self.epoch + 1
        batches = len(loader) if hasattr(loader, "__len__") else None
        if self._batch_in_epoch == 0:
            self._totals = EpochTotals()
            for callback in self.callbacks:
                callback.on_epoch_begin(self, epoch)
        reporter.epoch_begin(epoch, epochs, batches, self._batch_in_epoch)
        model, loss_fn, optimizer, totals = self.model, self.loss_fn, self.optimizer, self._totals
        step_scheduler = self.scheduler if self.scheduler_interval == "step" else None
        model.train()
        start, seen = time.perf_counter(), 0
        try:
            for batch in loader:
                inputs, targets = _unpack(batch)
                output = model(inputs)
                loss = loss_fn(output, targets)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                if step_scheduler is not None:
                    step_scheduler.step()
                self.global_step += 1
                self._batch_in_epoch += 1
                loss_value = loss.item()
                totals.add(loss_value, len(targets), _count_correct(output, targets))
                seen += len(targets)
                reporter.batch_end(loss_value, seen / max(time.perf_counter() - start, 1e-9))
                for callback in self.callbacks:
                    callback.on_batch_end(self, self.global_step, {"loss": loss_value})
                stop = self.stop_training or (max_steps is not None and self.global_step >= max_steps)
                if stop and (batches is None or self._batch_in_epoch < batches):
                    return False
        finally:
            totals.seconds += time.perf_counter() - start
        return True

    def _end_epoch(self, val_loader) -> dict[str, float]:
        """Close an epoch: its logs (with validation), the schedule's step, the history and the counters."""
        logs = {"epoch": self.epoch + 1, **self._totals.metrics()}
        if val_loader is not None:
            logs.update({f"val_{key}": value for key, value in self.evaluate(val_loader).items()})
        logs["lr"] = float(self.optimizer.param_groups[0]["lr"])
        logs["seconds"] = self._totals.seconds
        logs["samples_per_s"] = self._totals.samples / max(self._totals.seconds, 1e-9)
        if isinstance(self.scheduler, ReduceLROnPlateau):
            self.scheduler.step(logs.get("val_loss", logs["loss"]))
        elif self.scheduler is not None and self.scheduler_interval == "epoch":
            self.scheduler.step()
        self.epoch += 1
        self._batch_in_epoch = 0
        self.history.append(logs)
        return logs

    # ---- evaluation and prediction
    def evaluate(self, loader: Iterable, loss_fn=None) -> dict[str, float]:
        """``evaluate(self.model, loader, loss_fn or self.loss_fn)``: mean loss and accuracy over ``loader``."""
        return evaluate(self.model, loader, self.loss_fn if loss_fn is None else loss_fn)

    # ---- checkpoints
    def state_dict(self) -> dict[str, Any]:
        """Everything a resumed run needs: model, optimizer, scheduler, counters, partial epoch sums,
        history, callbacks, RNG states, the train loader's position, and ``metadata``."""
        pending = self._pending or {}
        loader = self._train_loader
        if "loader" in pending:
            loader_state = pending["loader"]
        else:
            loader_state = loader.state_dict() if hasattr(loader, "state_dict") else None
        return {
            "format": CHECKPOINT_FORMAT,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "trainer": {
                "epoch": self.epoch,
                "global_step": self.global_step,
                "batch_in_epoch": self._batch_in_epoch,
                "totals": self._totals.state_dict(),
                "history": self.history.state_dict(),
                "seed": self.seed,
            },
            "callbacks": [{"name": type(c).__name__, "state": c.state_dict()} for c in self.callbacks],
            "rng": pending.get("rng") or _rng_states(),
            "loader": loader_state,
            "metadata": self.metadata,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore ``state_dict()``. The RNG and loader states are applied when ``fit`` starts.

        Callbacks are matched by class, in order; a callback the checkpoint has no state for starts afresh.
        """
        if (state_dict["scheduler"] is None) != (self.scheduler is None):
            has = "a" if state_dict["scheduler"] is not None else "no"
            raise GlassnetError(
                f"Trainer.load_state_dict: the checkpoint has {has} scheduler state, this trainer "
                f"{'has no scheduler' if self.scheduler is None else 'has a scheduler'}"
            )
        self.model.load_state_dict(state_dict["model"])
        self.optimizer.load_state_dict(state_dict["optimizer"])
        if self.scheduler is not None:
            self.scheduler.load_state_dict(state_dict["scheduler"])
        # The k-th callback of a class takes the state of the checkpoint's k-th callback of that class;
        # one the checkpoint lacks starts afresh, a saved one this trainer lacks is not needed.
        saved: dict[str, list] = {}
        for entry in state_dict["callbacks"]:
            saved.setdefault(entry["name"], []).append(entry["state"])
        for callback in self.callbacks:
            states = saved.get(type(callback).__name__)
            if states:
                callback.load_state_dict(states.pop(0))
        trainer = state_dict["trainer"]
        self.epoch = trainer["epoch"]
        self.global_step = trainer["global_step"]
        self._batch_in_epoch = trainer["batch_in_epoch"]
        self._totals = EpochTotals.from_state_dict(trainer["totals"])
        self.history = History.from_state_dict(trainer["history"])
        self.seed = trainer["seed"]
        self.metadata = dict(state_dict["metadata"])
        self._pending = {"rng": state_dict["rng"], "loader": state_dict["loader"]}

    def save_checkpoint(self, path: str | os.PathLike) -> None:
        """Write ``state_dict()`` to ``path`` with ``glassnet.io.save`` (safetensors, atomic)."""
        from glassnet import io

        io.save(self.state_dict(), path)

    def load_checkpoint(self, path: str | os.PathLike) -> dict[str, Any]:
        """Load a checkpoint from ``save_checkpoint``; the next ``fit`` continues the saved run exactly.

        Returns:
            The checkpoint's metadata.

        Example:
            >>> trainer.load_checkpoint("run.safetensors")  # doctest: +SKIP
            >>> trainer.fit(loader, epochs=10)  # doctest: +SKIP
        """
        state = read_checkpoint(path)
        try:
            self.load_state_dict(state)
        except (KeyError, TypeError) as error:
            raise GlassnetError(
                f"Trainer.load_checkpoint: {os.fspath(path)} holds an incomplete state: {error!r}"
            ) from error
        return self.metadata


def fit(
    model: Module,
    train_loader: Iterable,
    val_loader: Iterable | None = None,
    *,
    epochs: int = 1,
    optimizer: Optimizer | None = None,
    lr: float = 1e-3,
    loss_fn=None,
    **trainer_options,
) -> History:
    """Train ``model`` in one call: a ``Trainer`` (Adam with ``lr`` unless an optimizer is given), then ``fit``.

    Args:
        model: the module to train.
        train_loader: yields ``(inputs, targets)`` batches.
        val_loader: optional validation batches.
        epochs: number of epochs.
        optimizer: the optimizer; ``optim.Adam(model.parameters(), lr=lr)`` when None.
        lr: learning rate of the default optimizer.
        loss_fn: the loss; ``nn.CrossEntropyLoss()`` when None.
        **trainer_options: passed to ``Trainer`` (callbacks, progress, seed, scheduler...).

    Returns:
        The ``History``.

    Example:
        >>> import glassnet as gn
        >>> import glassnet.datasets
        >>> from glassnet import nn
        >>> from glassnet.train import fit
        >>> x, y = gn.datasets.load_digits()
        >>> loader = gn.data.DataLoader(gn.data.TensorDataset(x, y), batch_size=64, shuffle=True)
        >>> model = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
        >>> history = fit(model, loader, epochs=2, lr=1e-2, progress="none")
        >>> len(history)
        2
    """
    from glassnet.optim import Adam

    if optimizer is None:
        optimizer = Adam(model.parameters(), lr=lr)
    trainer = Trainer(model, optimizer, loss_fn, **trainer_options)
    return trainer.fit(train_loader, val_loader, epochs=epochs)
