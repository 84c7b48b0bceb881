"""Progress reporting for the Trainer: a tqdm bar on a terminal, else one printed line per epoch.

tqdm is optional (``pip install glassnet[progress]``). Without it, or when stderr is not a terminal
(a log file, CI, a pipe), each epoch prints one line with its losses, accuracies and samples/s.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

PROGRESS_MODES = ("auto", "bar", "epoch", "none")


def format_logs(logs: dict) -> str:
    """One line for an epoch's logs: ``loss 0.1234  accuracy 96.52%  ...  1234 samples/s``.

    Example:
        >>> format_logs({"epoch": 2, "loss": 0.5, "accuracy": 0.875, "samples_per_s": 1500.0})
        'loss 0.5000  accuracy 87.50%  1500 samples/s'
    """
    parts = []
    for key, value in logs.items():
        if key in ("epoch", "seconds", "samples_per_s", "lr"):
            continue
        parts.append(f"{key} {value:.2%}" if key.endswith("accuracy") else f"{key} {value:.4f}")
    if "lr" in logs:
        parts.append(f"lr {logs['lr']:.3g}")
    if "samples_per_s" in logs:
        parts.append(f"{logs['samples_per_s']:.0f} samples/s")
    return "  ".join(parts)


class Progress:
    """Silent reporter, and the interface of the others: told when epochs and batches begin and end."""

    def epoch_begin(self, epoch: int, epochs: int, batches: int, first_batch: int = 0) -> None:
        """Epoch ``epoch`` (1-based) of ``epochs`` starts, with ``batches`` batches (``first_batch`` already done)."""

    def batch_end(self, loss: float, samples_per_s: float) -> None:
        """One more batch is done; ``loss`` is its loss, ``samples_per_s`` the epoch's speed so far."""

    def epoch_end(self, logs: dict) -> None:
        """The epoch is done; ``logs`` holds its metrics (see ``format_logs``)."""

    def close(self) -> None:
        """Training stopped (finished, stopped early or interrupted mid-epoch)."""


class EpochLines(Progress):
    """One line per epoch: ``epoch 3/20  loss 0.1234  accuracy 96.52%  ...  1234 samples/s``."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream
        self.epoch, self.epochs = 0, 0

    def epoch_begin(self, epoch: int, epochs: int, batches: int, first_batch: int = 0) -> None:
        self.epoch, self.epochs = epoch, epochs

    def epoch_end(self, logs: dict) -> None:
        stream = self.stream or sys.stdout
        width = len(str(self.epochs))
        print(f"epoch {self.epoch:>{width}}/{self.epochs}  {format_logs(logs)}", file=stream, flush=True)


class Bar(Progress):
    """A tqdm bar per epoch, its postfix showing the running loss and samples/s (refreshed at most 5 times a second)."""

    def __init__(self, tqdm_class) -> None:
        self.tqdm = tqdm_class
        self.bar = None
        self._last_postfix = 0.0

    def epoch_begin(self, epoch: int, epochs: int, batches: int, first_batch: int = 0) -> None:
        self.close()
        width = len(str(epochs))
        self.bar = self.tqdm(
            total=batches, initial=first_batch, desc=f"epoch {epoch:>{width}}/{epochs}", unit="batch", leave=True
        )
        self._last_postfix = 0.0

    def batch_end(self, loss: float, samples_per_s: float) -> None:
        now = time.perf_counter()
        if now - self._last_postfix > 0.2:
            self.bar.set_postfix_str(f"loss {loss:.4f}, {samples_per_s:.0f} samples/s", refresh=False)
            self._last_postfix = now
        self.bar.update(1)

    def epoch_end(self, logs: dict) -> None:
        self.bar.set_postfix_str(format_logs({k: v for k, v in logs.items() if k != "lr"}), refresh=False)
        self.close()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def make_progress(mode: str | Progress) -> Progress:
    """The reporter for ``mode``: 'auto' (a bar when tqdm is installed and stderr is a terminal, else
    'epoch'), 'bar' (tqdm, or 'epoch' lines without it), 'epoch' (one line per epoch) or 'none'.

    Example:
        >>> type(make_progress("epoch")).__name__
        'EpochLines'
    """
    if isinstance(mode, Progress):
        return mode
    if mode not in PROGRESS_MODES:
        raise ValueError(f"Trainer: progress must be one of {PROGRESS_MODES} or a Progress, got {mode!r}")
    if mode == "none":
        return Progress()
    if mode == "epoch" or (mode == "auto" and not sys.stderr.isatty()):
        return EpochLines()
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return EpochLines()
    return Bar(tqdm)
