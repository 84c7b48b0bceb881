"""History (the per-epoch logs of a run) and EpochTotals (an epoch's running sums of loss and accuracy)."""

from __future__ import annotations

from typing import Any


class EpochTotals:
    """Running sums over an epoch's batches: sample-weighted loss and, for classification, correct counts."""

    def __init__(self) -> None:
        self.loss_sum = 0.0
        self.samples = 0
        self.correct = 0
        self.scored = 0  # samples whose accuracy could be counted (class scores, integer labels)
        self.seconds = 0.0

    def add(self, loss: float, samples: int, correct: int | None) -> None:
        """Add a batch of ``samples`` with mean loss ``loss`` and ``correct`` right predictions (None: no accuracy)."""
        self.loss_sum += loss * samples
        self.samples += samples
        if correct is not None:
            self.correct += correct
            self.scored += samples

    def metrics(self) -> dict[str, float]:
        """``{"loss": mean loss, "accuracy": fraction correct}`` (accuracy only when counted)."""
        out = {"loss": self.loss_sum / self.samples if self.samples else float("nan")}
        if self.scored:
            out["accuracy"] = self.correct / self.scored
        return out

    def state_dict(self) -> dict[str, Any]:
        return dict(vars(self))

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> EpochTotals:
        totals = cls()
        for key in vars(totals):
            setattr(totals, key, state[key])
        return totals


class History:
    """The logs of every epoch, as Keras' ``History``: ``history["val_accuracy"]`` is the list over epochs.

    Example:
        >>> h = History()
        >>> h.append({"epoch": 1, "loss": 0.5}); h.append({"epoch": 2, "loss": 0.25})
        >>> (len(h), h["loss"], h.last()["epoch"])
        (2, [0.5, 0.25], 2)
    """

    def __init__(self) -> None:
        self.epochs: list[dict[str, float]] = []

    def append(self, logs: dict[str, float]) -> None:
        """Record one epoch's logs."""
        self.epochs.append(dict(logs))

    @property
    def history(self) -> dict[str, list[float]]:
        """``{name: [value per epoch]}`` (Keras' layout); an epoch without the name is skipped."""
        out: dict[str, list[float]] = {}
        for logs in self.epochs:
            for key, value in logs.items():
                out.setdefault(key, []).append(value)
        return out

    def __getitem__(self, key: str) -> list[float]:
        if not any(key in logs for logs in self.epochs):
            raise KeyError(f"History: no epoch logged {key!r}; logged: {sorted(self.history)}")
        return [logs[key] for logs in self.epochs if key in logs]

    def __contains__(self, key: str) -> bool:
        return any(key in logs for logs in self.epochs)

    def __len__(self) -> int:
        return len(self.epochs)

    def last(self) -> dict[str, float]:
        """The logs of the latest epoch."""
        if not self.epochs:
            raise IndexError("History: no epoch has been recorded yet")
        return self.epochs[-1]

    def __repr__(self) -> str:
        return f"History(epochs={len(self)}, keys={sorted(self.history)})"

    def state_dict(self) -> list[dict[str, float]]:
        return [dict(logs) for logs in self.epochs]

    @classmethod
    def from_state_dict(cls, state: list[dict[str, float]]) -> History:
        history = cls()
        history.epochs = [dict(logs) for logs in state]
        return history
