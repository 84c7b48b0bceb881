"""diagnose: record a short training run and judge it; ``run_inspection`` adds the HTML report (for the CLI)."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable

import numpy as np

from glassnet import nn
from glassnet.autograd import GlassnetError
from glassnet.inspect.recorder import Recorder
from glassnet.inspect.rules import Finding, Thresholds, judge
from glassnet.tensor import Tensor


def _as_tensor(value) -> Tensor:
    return value if isinstance(value, Tensor) else Tensor(np.asarray(value))


def _cycle(data: Iterable, steps: int):
    """``steps`` batches from ``data``, going round again (from a cache) when it is shorter."""
    seen = []
    for batch in itertools.islice(data, steps):
        seen.append(batch)
        yield batch
    if not seen:
        raise GlassnetError("diagnose: data yielded no batch; pass an iterable of (x, y) batches")
    for i in range(steps - len(seen)):
        yield seen[i % len(seen)]


def accuracy(output: Tensor, target: Tensor) -> float | None:
    """The fraction of rows whose largest logit is the target class, when the target is class labels."""
    if output.ndim != 2 or target.ndim != 1 or target.dtype.kind not in "iu" or output.shape[0] != target.shape[0]:
        return None
    return float(np.mean(output.data.argmax(axis=1) == target.data))


def train_step(rec: Recorder, model, loss_fn, optimizer, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    """One plain training step inside ``rec``: zero_grad, forward, loss, backward, then the optimizer's
    step (or, without one, ``rec.step()`` to close the recorded step). Returns (output, loss)."""
    (optimizer or model).zero_grad()
    output = model(x)
    loss = loss_fn(output, y)
    loss.backward()
    if optimizer is not None:
        optimizer.step()
    else:
        rec.step()
    return output, loss


def record_run(model, loss_fn, data, optimizer=None, steps: int = 20, every: int = 1, **recorder_options) -> Recorder:
    """Train ``model`` for ``steps`` batches inside a Recorder (in place) and return the Recorder.

    With no optimizer the steps compute gradients only (no update, so no update or loss-trend rules).
    The run stops early at a non-finite loss.
    """
    if steps < 1:
        raise GlassnetError(f"diagnose: steps must be at least 1, got {steps}")
    model.train()
    with Recorder(model, every=every, optimizer=optimizer, **recorder_options) as rec:
        for batch in _cycle(data, steps):
            if not isinstance(batch, (tuple, list)) or len(batch) != 2:
                raise GlassnetError(f"diagnose: each batch must be an (x, y) pair, got {type(batch).__name__}")
            x, y = _as_tensor(batch[0]), _as_tensor(batch[1])
            output, loss = train_step(rec, model, loss_fn, optimizer, x, y)
            rec.log(loss=loss)
            acc = accuracy(output, y)
            if acc is not None:
                rec.log(accuracy=acc)
            if not np.isfinite(loss.item()):
                break
    return rec


def diagnose(
    model: nn.Module,
    loss_fn,
    data: Iterable,
    optimizer=None,
    steps: int = 20,
    thresholds: Thresholds | None = None,
    restore: bool = True,
) -> list[Finding]:
    """Record a short training run and return what is wrong with it, layer by layer.

    Args:
        model: the model (trained in place during the run, then restored when ``restore``).
        loss_fn: ``loss_fn(output, y) -> scalar Tensor``, e.g. ``nn.CrossEntropyLoss()``.
        data: an iterable of ``(x, y)`` batches (Tensors or arrays); cycled if shorter than ``steps``.
        optimizer: the optimizer to judge; None computes gradients only (no update rules).
        steps: the number of training steps to record.
        thresholds: the rules' limits (``Thresholds()`` by default).
        restore: put the parameters (and optimizer state) back as they were before the run.

    Returns:
        A list of ``Finding``, most severe first.

    Example:
        >>> import glassnet as gn
        >>> from glassnet import nn, optim
        >>> model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2))
        >>> x, y = gn.randn(32, 8), gn.randint(0, 2, (32,))
        >>> findings = diagnose(model, nn.CrossEntropyLoss(), [(x, y)], optim.Adam(model.parameters()), steps=5)
        >>> [f.rule for f in findings if f.severity != "info"]
        []
    """
    return judge(_recorded(model, loss_fn, data, optimizer, steps, restore), thresholds)


def _recorded(model, loss_fn, data, optimizer, steps: int, restore: bool) -> Recorder:
    """``record_run``, then the parameters and optimizer state put back as they were when ``restore``."""
    saved_model = {k: np.array(v.data, copy=True) for k, v in model.state_dict().items()} if restore else None
    saved_optimizer = optimizer.state_dict() if restore and optimizer is not None else None
    try:
        return record_run(model, loss_fn, data, optimizer, steps)
    finally:
        if restore:
            model.load_state_dict(saved_model)
            model.zero_grad()
            if optimizer is not None:
                optimizer.load_state_dict(saved_optimizer)


def run_inspection(
    model: nn.Module,
    loss_fn,
    loader: Iterable,
    optimizer=None,
    steps: int = 20,
    report_path: str | os.PathLike | None = None,
    thresholds: Thresholds | None = None,
    restore: bool = True,
) -> list[Finding]:
    """Record ``steps`` training steps, judge them, and write the HTML report: the CLI's entry point.

    Args:
        model, loss_fn, optimizer, steps, thresholds, restore: as for ``diagnose``.
        loader: an iterable of ``(x, y)`` batches (a DataLoader), cycled if shorter than ``steps``.
        report_path: where to write the report; None writes none.

    Returns:
        The findings, most severe first.

    Example:
        ``findings = run_inspection(model, nn.CrossEntropyLoss(), loader, opt, 50, "report.html")``
    """
    from glassnet.inspect.report import report

    rec = _recorded(model, loss_fn, loader, optimizer, steps, restore)
    findings = judge(rec, thresholds)
    if report_path is not None:
        report(rec, report_path, findings=findings)
    return findings
