"""Callbacks of the Trainer: the Callback hooks, EarlyStopping and ModelCheckpoint (best-model saving).

A callback is told when fitting, epochs and batches begin and end, and may stop training by setting
``trainer.stop_training = True``. Its ``state_dict()`` goes into the trainer's checkpoints, so a
resumed run continues with the same patience counters and best values.
"""

from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING, Any

import numpy as np

from glassnet.autograd import GlassnetError

if TYPE_CHECKING:
    from glassnet.train.trainer import Trainer


class Callback:
    """Base class: override the hooks you need. ``logs`` hold floats by name (``loss``, ``val_accuracy``...).

    Example:
        >>> from glassnet.train import Callback
        >>> class PrintLoss(Callback):
        ...     def on_epoch_end(self, trainer, epoch, logs):
        ...         print(epoch, round(logs["loss"], 3))
    """

    def on_fit_begin(self, trainer: Trainer) -> None:
        """``fit`` starts (or resumes)."""

    def on_epoch_begin(self, trainer: Trainer, epoch: int) -> None:
        """Epoch ``epoch`` (1-based) starts."""

    def on_batch_end(self, trainer: Trainer, step: int, logs: dict[str, float]) -> None:
        """Optimizer step ``step`` (``trainer.global_step``) is done; ``logs`` hold its ``loss``."""

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict[str, float]) -> None:
        """Epoch ``epoch`` (1-based) is done; ``logs`` are the values recorded in ``trainer.history``."""

    def on_fit_end(self, trainer: Trainer) -> None:
        """``fit`` returns (finished, stopped early, or reached ``max_steps``)."""

    def state_dict(self) -> dict[str, Any]:
        """What a resumed run needs to continue as this one would (empty for a stateless callback)."""
        return {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore ``state_dict()``."""


def _resolve_mode(name: str, monitor: str, mode: str) -> str:
    if mode not in ("auto", "min", "max"):
        raise GlassnetError(f"{name}: mode must be 'auto', 'min' or 'max', got {mode!r}")
    if mode == "auto":
        return "max" if "acc" in monitor else "min"
    return mode


def _monitored(name: str, monitor: str, logs: dict[str, float]) -> float:
    if monitor not in logs:
        raise GlassnetError(
            f"{name}: the monitored value {monitor!r} is not in this epoch's logs {sorted(logs)}; "
            "pass val_loader to fit() to monitor val_* values"
        )
    return float(logs[monitor])


class _Monitor:
    """Tracks the best value of a logged quantity: ``improved(value)`` says whether it beats the best."""

    def __init__(self, name: str, monitor: str, mode: str, min_delta: float) -> None:
        self.name = name
        self.monitor = monitor
        self.mode = _resolve_mode(name, monitor, mode)
        self.min_delta = abs(float(min_delta))
        self.best = math.inf if self.mode == "min" else -math.inf

    def improved(self, value: float) -> bool:
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta


class EarlyStopping(Callback):
    """Stop training when a monitored value has stopped improving (Keras' EarlyStopping).

    Args:
        monitor: the logged value to watch (``val_loss``, ``val_accuracy``, ``loss``...).
        min_delta: smallest change that counts as an improvement.
        patience: epochs without improvement before stopping.
        mode: 'min', 'max', or 'auto' (max for accuracies, min otherwise).
        restore_best_weights: at the end of ``fit``, put back the model weights of the best epoch.

    Example:
        >>> from glassnet.train import EarlyStopping
        >>> stop = EarlyStopping(monitor="val_loss", patience=3, restore_best_weights=True)
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        min_delta: float = 0.0,
        patience: int = 0,
        mode: str = "auto",
        restore_best_weights: bool = False,
    ) -> None:
        self._monitor = _Monitor("EarlyStopping", monitor, mode, min_delta)
        self.patience = int(patience)
        self.restore_best_weights = bool(restore_best_weights)
        self.wait = 0
        self.stopped_epoch = 0
        self.best_epoch = 0
        self.best_weights: dict[str, np.ndarray] | None = None

    @property
    def best(self) -> float:
        return self._monitor.best

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict[str, float]) -> None:
        value = _monitored("EarlyStopping", self._monitor.monitor, logs)
        if self._monitor.improved(value):
            self._monitor.best = value
            self.best_epoch = epoch
            self.wait = 0
            if self.restore_best_weights:
                self.best_weights = {k: v.data.copy() for k, v in trainer.model.state_dict().items()}
            return
        self.wait += 1
        if self.wait > self.patience:
            self.stopped_epoch = epoch
            trainer.stop_training = True

    def on_fit_end(self, trainer: Trainer) -> None:
        if self.restore_best_weights and self.best_weights is not None and self.best_epoch != trainer.epoch:
            trainer.model.load_state_dict(self.best_weights)

    def state_dict(self) -> dict[str, Any]:
        return {
            "best": self._monitor.best,
            "wait": self.wait,
            "stopped_epoch": self.stopped_epoch,
            "best_epoch": self.best_epoch,
            "best_weights": self.best_weights,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._monitor.best = state_dict["best"]
        self.wait = state_dict["wait"]
        self.stopped_epoch = state_dict["stopped_epoch"]
        self.best_epoch = state_dict["best_epoch"]
        self.best_weights = state_dict["best_weights"]


class ModelCheckpoint(Callback):
    """Save the trainer's checkpoint at the end of epochs: every epoch, or only when the model is the best so far.

    The file is a full checkpoint (``Trainer.save_checkpoint``: model, optimizer, scheduler, counters,
    RNG and loader states, metadata), so it both holds the best model and can resume training. The
    Trainer runs ModelCheckpoint callbacks after the others, so the saved state includes theirs.

    Args:
        filepath: where to save; may hold ``{epoch}`` and logged names, e.g. ``"ckpt-{epoch:03d}.safetensors"``.
        monitor: the logged value that decides which model is best (with ``save_best_only``).
        mode: 'min', 'max', or 'auto' (max for accuracies, min otherwise).
        save_best_only: save only when ``monitor`` improves; otherwise save every epoch.

    Example:
        >>> from glassnet.train import ModelCheckpoint
        >>> best = ModelCheckpoint("best.safetensors", monitor="val_accuracy", save_best_only=True)
    """

    def __init__(
        self,
        filepath: str | os.PathLike,
        monitor: str = "val_loss",
        mode: str = "auto",
        save_best_only: bool = False,
    ) -> None:
        self.filepath = os.fspath(filepath)
        self._monitor = _Monitor("ModelCheckpoint", monitor, mode, 0.0)
        self.save_best_only = bool(save_best_only)
        self.best_epoch = 0
        self.last_path: str | None = None

    @property
    def best(self) -> float:
        return self._monitor.best

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict[str, float]) -> None:
        if self.save_best_only:
            value = _monitored("ModelCheckpoint", self._monitor.monitor, logs)
            if not self._monitor.improved(value):
                return
            self._monitor.best = value
            self.best_epoch = epoch
        try:
            path = self.filepath.format(**{**logs, "epoch": epoch})
        except (KeyError, IndexError, ValueError) as error:
            raise GlassnetError(f"ModelCheckpoint: cannot fill in filepath {self.filepath!r}: {error}") from error
        self.last_path = path  # before saving, so that the saved state records this save too
        trainer.save_checkpoint(path)

    def state_dict(self) -> dict[str, Any]:
        return {"best": self._monitor.best, "best_epoch": self.best_epoch, "last_path": self.last_path}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._monitor.best = state_dict["best"]
        self.best_epoch = state_dict["best_epoch"]
        self.last_path = state_dict["last_path"]
