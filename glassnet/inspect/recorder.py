"""Recorder: statistics of z, a, dL/dz, parameters, gradients and updates per layer and step, via public hooks.

What counts as a layer: every module that owns parameters directly (Linear, Conv2d, BatchNorm, or a
user's module), named by its qualified name. Its output is the pre-activation ``z``; the output of the
activation module (ReLU, Sigmoid, Tanh, ...) called right after it in the forward pass is its
activation ``a``. ``dL/dz`` comes from ``Tensor.register_hook`` on ``z``; parameter gradients are read
when the optimizer steps (or from hooks on the parameters when no optimizer is given); updates come
from copies of the parameters taken at the start of a recorded step, compared with them when it ends.

A step ends when the user calls ``rec.step()``, when the optimizer given to the Recorder has stepped,
or otherwise when the model's forward runs again after a backward. Forward passes under ``no_grad``
(evaluation) are ignored. On a step that is not recorded every hook returns at once.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from glassnet import nn
from glassnet.autograd import GlassnetError, is_grad_enabled
from glassnet.inspect import fmt
from glassnet.inspect.batch import StatsBatch
from glassnet.inspect.stats import TensorStats, piece_norms, summarize
from glassnet.tensor import Tensor

ACTIVATION_KINDS = (
    (nn.ReLU, "relu"),
    (nn.LeakyReLU, "leaky_relu"),
    (nn.Sigmoid, "sigmoid"),
    (nn.Tanh, "tanh"),
    (nn.GELU, "gelu"),
    (nn.SiLU, "silu"),
)


def activation_kind(module: nn.Module) -> str | None:
    """The kind of an activation module ("relu", "sigmoid", ...), or None for any other module."""
    for cls, kind in ACTIVATION_KINDS:
        if isinstance(module, cls):
            return kind
    return None


@dataclass
class LayerInfo:
    """A layer as the Recorder saw it: its name, type, parameters, and the activation that follows it."""

    name: str
    type: str
    order: int
    params: tuple[str, ...]
    activation: str | None = None  # the activation module's qualified name
    activation_kind: str | None = None
    fan_in: int | None = None
    fan_out: int | None = None
    description: str = ""  # type and shape, e.g. "Linear 64->32"

    @property
    def short(self) -> str:
        """The name as user code reaches the layer when it is an index ("model[2]"), else the name ("fc1")."""
        return fmt.short(self.name)

    @property
    def label(self) -> str:
        """The layer as shown to a reader: "model[2] (Linear 64->32)", "fc1 (Linear 784->256)"."""
        return f"{self.short} ({self.description or self.type})"


@dataclass
class ParamRecord:
    """One parameter at one step: its value, its gradient, and the update the optimizer applied."""

    value: TensorStats | None  # None only while its recorded step is in progress
    grad: TensorStats | None = None
    update_norm: float | None = None
    update_ratio: float | None = None  # ||delta W|| / ||W|| before the update


@dataclass
class LayerRecord:
    """One layer at one recorded step."""

    z: TensorStats | None = None
    a: TensorStats | None = None
    grad_z: TensorStats | None = None  # dL/dz, the error signal
    params: dict[str, ParamRecord] = field(default_factory=dict)


@dataclass
class NonFinite:
    """Where a NaN or infinity first appeared in a recorded step."""

    step: int
    where: str  # a module's qualified name, or "loss"
    what: str  # "output", "dL/dz", "gradient of weight", ...
    module_type: str


class Recorder:
    """Record statistics of a model's training through public hooks (a context manager).

    Args:
        model: the model to observe.
        every: record one step in ``every`` (step 0, every, 2*every, ...).
        optimizer: if given, a step ends when ``optimizer.step()`` returns (exact updates); otherwise
            call ``rec.step()`` after each optimizer step, or let the Recorder end a step when the
            model's next forward follows a backward.
        keep_steps: steps whose full tensors (z, a, dL/dz, parameters, gradients, updates) are kept in
            ``rec.tensors``; statistics are kept for every recorded step.
        keep_layers: restrict ``keep_steps`` to these layers (qualified names); None keeps all.
        max_steps: the most recorded steps kept; beyond it every other one is dropped and ``every``
            doubles, so memory stays bounded however long the run.
        bins: histogram bins for z and a.

    Attributes:
        layers: ``{name: LayerInfo}`` in forward order.
        records: ``{step: {layer name: LayerRecord}}`` for the recorded steps.
        scalars: ``{name: [(step, value), ...]}`` logged with ``rec.log``.
        tensors: ``{(step, layer name): {"z"|"a"|"grad_z"|"weight"|"grad.weight"|"update.weight"...: array}}``.
        nonfinite: the first NaN or infinity met, or None.

    Example:
        >>> import glassnet as gn
        >>> from glassnet import nn, optim
        >>> model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
        >>> opt = optim.SGD(model.parameters(), lr=0.1)
        >>> x, y = gn.randn(16, 4), gn.randint(0, 2, (16,))
        >>> with Recorder(model, every=2, optimizer=opt) as rec:
        ...     for _ in range(4):
        ...         opt.zero_grad()
        ...         loss = nn.functional.cross_entropy(model(x), y)
        ...         loss.backward()
        ...         opt.step()
        ...         rec.log(loss=loss)
        >>> sorted(rec.records), list(rec.layers)
        ([0, 2], ['0', '2'])
    """

    def __init__(
        self,
        model: nn.Module,
        every: int = 1,
        optimizer=None,
        keep_steps: Iterable[int] = (),
        keep_layers: Iterable[str] | None = None,
        max_steps: int = 1000,
        bins: int = 20,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"Recorder: expected an nn.Module, got {type(model).__name__}")
        if int(every) < 1:
            raise GlassnetError(f"Recorder: every must be a positive number of steps, got {every}")
        if int(max_steps) < 2:
            raise GlassnetError(f"Recorder: max_steps must be at least 2, got {max_steps}")
        self.model = model
        self.every = int(every)
        self.optimizer = optimizer
        self.keep_steps = set(keep_steps)
        self.keep_layers = None if keep_layers is None else set(keep_layers)
        self.max_steps = int(max_steps)
        self.bins = int(bins)
        self.layers: dict[str, LayerInfo] = {}
        self.records: dict[int, dict[str, LayerRecord]] = {}
        self.scalars: dict[str, list[tuple[int, float]]] = {}
        self.tensors: dict[tuple[int, str], dict[str, np.ndarray]] = {}
        self.nonfinite: NonFinite | None = None
        self.current_step = 0
        self._forward_step = 0
        self._recording = False
        self._handles: list = []
        self._module_handles: list = []
        self._buffers: dict[str, np.ndarray] = {}
        self._batch = StatsBatch()  # this step's arrays, summarised together when the step ends
        self._nonfinite_seen: list[tuple[float, NonFinite]] = []
        self._active = False

    # ---- attaching and detaching
    def __enter__(self) -> Recorder:
        if self._active:
            raise GlassnetError("Recorder: this recorder is already active")
        self._names = {}
        self._layer_of_module: dict[int, str] = {}
        self._kind_of_module: dict[int, str] = {}
        self._param_owner: dict[int, tuple[str, str, Tensor]] = {}
        # The forward hooks on layers and activations act only on recorded steps: they are attached when
        # a recorded step begins and removed when an unrecorded one does, so that an unrecorded step takes
        # the modules' plain call path. (module, hook) pairs are worked out once, here.
        self._module_hooks: list[tuple[nn.Module, object]] = []
        self._module_handles: list = []
        for name, module in self.model.named_modules():
            self._names[id(module)] = name
            own = list(module.named_parameters(recurse=False))
            kind = activation_kind(module)
            if own:
                self._layer_of_module[id(module)] = name
                for pname, p in own:
                    self._param_owner[id(p)] = (name, pname, p)
                    if p.requires_grad and self.optimizer is None:
                        # With an optimizer the gradients are read when it steps: no hook on the hot path.
                        self._handles.append(p.register_hook(self._make_param_hook(name, pname)))
                self._module_hooks.append((module, self._on_layer_forward))
            elif kind is not None:
                self._kind_of_module[id(module)] = kind
                self._module_hooks.append((module, self._on_activation_forward))
            elif not any(True for _ in module.children()):
                self._module_hooks.append((module, self._on_other_forward))
        self._params = list(self._param_owner.values())  # (layer, parameter name, Parameter), in order
        self._handles.append(self.model.register_forward_pre_hook(self._on_model_forward))
        if self.optimizer is not None:
            self._hook_optimizer()
        self._auto_steps = self.optimizer is None
        self._backward_seen = False
        self._snapshot = None
        self._step_begun = False
        self._last_layer = None
        self._active = True
        self._set_recording(self.current_step % self.every == 0)
        return self

    def __exit__(self, *exc) -> None:
        if self._active:
            self._flush()
            self._finish_update()
            self.close()

    def close(self) -> None:
        """Remove every hook (``__exit__`` does it); the recorded statistics stay."""
        self._set_recording(False)
        for handle in self._handles:
            handle.remove()
        self._handles = []
        self._active = False

    def _set_recording(self, recording: bool) -> None:
        """Start or stop recording: attach the per-module forward hooks, or remove them."""
        self._recording = recording
        if recording and not self._module_handles:
            self._module_handles = [module.register_forward_hook(hook) for module, hook in self._module_hooks]
        elif not recording and self._module_handles:
            for handle in self._module_handles:
                handle.remove()
            self._module_handles = []

    def _hook_optimizer(self) -> None:
        def before_step(optimizer, args, kwargs):
            if self._recording and self._step_begun:
                if self._snapshot is None:
                    self._take_snapshot()  # now rather than at the forward: the parameters are in cache
                self._record_grads()  # the gradients this step uses (after any clipping)
                self._flush()  # the whole step's statistics, in one go

        def after_step(optimizer, args, kwargs):
            self._end_step()

        self._handles.append(self.optimizer.register_step_pre_hook(before_step))
        self._handles.append(self.optimizer.register_step_post_hook(after_step))

    # ---- steps
    def step(self) -> None:
        """End the current step (call it after ``optimizer.step()`` when no optimizer was given)."""
        self._auto_steps = False
        self._end_step()

    def log(self, **scalars) -> None:
        """Log numbers for the current step, e.g. ``rec.log(loss=loss, accuracy=acc)`` (Tensors accepted)."""
        step = self._forward_step  # the step whose forward produced the numbers, even after optimizer.step()
        for name, value in scalars.items():
            value = float(value.item() if isinstance(value, Tensor) else value)
            series = self.scalars.setdefault(name, [])
            if series and series[-1][0] == step:
                series[-1] = (step, value)
            else:
                series.append((step, value))
            if not math.isfinite(value) and name == "loss" and self.nonfinite is None:
                if len(self._batch):  # this step's statistics are pending: the loss comes after them
                    self._note_nonfinite(self._batch.next_order - 0.5, "loss", "value", "loss")
                else:
                    self.nonfinite = NonFinite(step, "loss", "value", "loss")
            if len(series) > 20 * self.max_steps:
                series[:] = series[::2]

    def _end_step(self) -> None:
        if self._step_begun or self._snapshot is not None or len(self._batch):
            self._flush()
            self._finish_update()
        self.current_step += 1
        self._step_begun = False
        self._backward_seen = False
        self._last_layer = None
        if self._active and (self.current_step % self.every == 0) != self._recording:
            self._set_recording(not self._recording)

    def _finish_update(self) -> None:
        """Compare the parameters with their copy from before the optimizer's step: the update."""
        snapshot, self._snapshot = self._snapshot, None
        if snapshot is None:
            if self._step_begun and self.current_step in self.records:
                self._record_values()  # the step ended without an optimizer step: values, and no update
                self._flush()
            return
        step_records = self.records.get(self.current_step)
        if step_records is None:
            return
        before, shapes = snapshot
        after = self._gather("after", [p.data for _, _, p in self._params])
        if after.shape != before.shape or [p.shape for _, _, p in self._params] != shapes:
            return  # a parameter was replaced by one of another shape: there is no update to compare
        delta = np.subtract(after, before, out=after)
        update_norms = piece_norms(delta, shapes)
        if not any(update_norms):
            return  # no optimizer step happened (gradients only): there is no update to record
        begin = 0
        for (layer, pname, _), shape, update_norm in zip(self._params, shapes, update_norms):
            end = begin + math.prod(shape)
            record = step_records.setdefault(layer, LayerRecord())
            param = record.params.get(pname)
            if param is None:
                param = record.params[pname] = ParamRecord(summarize(before[begin:end].reshape(shape)))
            param.update_norm = update_norm
            before_norm = param.value.norm
            param.update_ratio = update_norm / before_norm if before_norm > 0 else float("inf")
            self._keep(layer, "update." + pname, delta[begin:end].reshape(shape))
            begin = end

    def _begin_recorded_step(self) -> None:
        self._step_begun = True
        self.records.setdefault(self.current_step, {})
        if self.optimizer is None:
            self._take_snapshot()  # no hook says when the update comes: copy the parameters now
        if len(self.records) > self.max_steps:
            self._thin()

    def _take_snapshot(self) -> None:
        self._snapshot = self._record_values()

    def _record_values(self) -> tuple[np.ndarray, list[tuple[int, ...]]]:
        """Batch the parameters' values; returns their copy (end to end: the values before the update)."""
        step_records = self.records.setdefault(self.current_step, {})
        dones = []
        for layer, pname, p in self._params:
            record = step_records.setdefault(layer, LayerRecord())
            param = record.params.get(pname)
            if param is None:
                param = record.params[pname] = ParamRecord(None)
            dones.append(functools.partial(setattr, param, "value"))
            self._keep(layer, pname, p.data)
        before = self._batch.add_many([p.data for _, _, p in self._params], dones)
        return before, [p.shape for _, _, p in self._params]

    def _thin(self) -> None:
        """Keep one recorded step in two and record half as often: memory stays bounded."""
        self.every *= 2
        for step in [s for s in self.records if s % self.every != 0 and s != self.current_step]:
            del self.records[step]

    # ---- hooks (each returns at once on a step that is not recorded)
    def _on_model_forward(self, module, inputs) -> None:
        if not is_grad_enabled():
            return
        if self._backward_seen and self._auto_steps:
            self._end_step()
        if self._recording and not self._step_begun:
            self._begin_recorded_step()
        self._forward_step = self.current_step
        self._last_layer = None

    def _on_layer_forward(self, module, inputs, output) -> None:
        if not self._recording or not is_grad_enabled() or not isinstance(output, Tensor):
            return
        name = self._layer_of_module[id(module)]
        if name not in self.layers:
            self._add_layer(name, module, inputs, output)
        record = self.records.setdefault(self.current_step, {}).setdefault(name, LayerRecord())
        self._batch.add(output.data, self._store(record, "z", name, module, "output"), bins=self.bins)
        self._keep(name, "z", output.data)
        if output.requires_grad:
            output.register_hook(self._make_grad_z_hook(name, module, self.current_step))
        self._last_layer = name

    def _on_activation_forward(self, module, inputs, output) -> None:
        if not self._recording or self._last_layer is None or not is_grad_enabled():
            return
        layer = self._last_layer
        self._last_layer = None
        info = self.layers[layer]
        if info.activation is None:
            info.activation = self._names[id(module)]
            info.activation_kind = self._kind_of_module[id(module)]
        record = self.records[self.current_step][layer]
        done = self._store(record, "a", self._names[id(module)], module, "output")
        self._batch.add(output.data, done, activation=self._kind_of_module[id(module)], bins=self.bins)
        self._keep(layer, "a", output.data)

    def _on_other_forward(self, module, inputs, output) -> None:
        if not self._recording or self.nonfinite is not None or not isinstance(output, Tensor):
            return
        if output.data.dtype.kind == "f" and not np.isfinite(output.data).all():
            # After the arrays batched so far, before the next one: ordered with them at the flush.
            self._note_nonfinite(self._batch.next_order - 0.5, self._names[id(module)], "output", type(module).__name__)

    def _make_grad_z_hook(self, name: str, module, step: int):
        def on_grad_z(grad):
            if step == self.current_step and step in self.records:
                self._batch.add(grad.data, self._store(self.records[step][name], "grad_z", name, module, "dL/dz"))
                self._keep(name, "grad_z", grad.data)

        return on_grad_z

    def _record_grads(self) -> None:
        step_records = self.records.get(self.current_step)
        if step_records is None:
            return
        present = []  # (layer, parameter name, ParamRecord, gradient array)
        for layer, pname, p in self._params:
            record = step_records.get(layer)
            param = record.params.get(pname) if record is not None else None
            if param is not None and p.grad is not None:
                present.append((layer, pname, param, p.grad.data))
        grads = [grad for _, _, _, grad in present]
        self._batch.add_many(
            grads, [functools.partial(setattr, param, "grad") for _, _, param, _ in present], percentiles=True
        )
        for layer, pname, _, grad in present:
            self._keep(layer, "grad." + pname, grad)

    def _make_param_hook(self, layer: str, pname: str):
        def on_param_grad(grad):
            self._backward_seen = True
            if not self._recording:
                return
            record = self.records.setdefault(self.current_step, {}).setdefault(layer, LayerRecord())
            param = record.params.get(pname)
            if param is not None:
                self._batch.add(grad.data, functools.partial(setattr, param, "grad"), percentiles=True)
                self._keep(layer, "grad." + pname, grad.data)

        return on_param_grad

    # ---- helpers
    def _add_layer(self, name: str, module, inputs, output) -> None:
        params = tuple(pname for pname, _ in module.named_parameters(recurse=False))
        info = LayerInfo(name, type(module).__name__, len(self.layers), params, description=fmt.describe(module))
        weight = dict(module.named_parameters(recurse=False)).get("weight")
        if weight is not None and weight.ndim >= 2:
            receptive = int(np.prod(weight.shape[2:])) if weight.ndim > 2 else 1
            info.fan_in, info.fan_out = weight.shape[1] * receptive, weight.shape[0] * receptive
        self.layers[name] = info

    def _store(self, record: LayerRecord, attribute: str, name: str, module, what: str):
        """What the batch calls with the statistics of ``record.<attribute>`` once it has them."""
        order = self._batch.next_order  # the order of the array about to be added

        def done(stats: TensorStats) -> None:
            setattr(record, attribute, stats)
            if stats.nonfinite:
                self._note_nonfinite(order, name, what, type(module).__name__)

        return done

    def _note_nonfinite(self, order: float, where: str, what: str, module_type: str) -> None:
        """A NaN or infinity met; the first in the order of the step's events wins (see ``_flush``)."""
        if self.nonfinite is None:
            self._nonfinite_seen.append((order, NonFinite(self.current_step, where, what, module_type)))

    def _flush(self) -> None:
        """Summarise the step's batched arrays; name the first NaN or infinity in the order they came."""
        self._batch.flush()
        if self._nonfinite_seen:
            if self.nonfinite is None:
                self.nonfinite = min(self._nonfinite_seen, key=lambda seen: seen[0])[1]
            self._nonfinite_seen = []

    def _keep(self, layer: str, key: str, array: np.ndarray) -> None:
        if self.current_step in self.keep_steps and (self.keep_layers is None or layer in self.keep_layers):
            self.tensors.setdefault((self.current_step, layer), {})[key] = np.array(array, copy=True)

    def _gather(self, purpose: str, arrays: list[np.ndarray]) -> np.ndarray:
        """The arrays flattened end to end into this recorder's array for ``purpose``, kept between steps.

        Three such arrays (the parameters before and after the update, the gradients) each the size of
        the model: allocated once rather than at every recorded step, which would fault in fresh pages.
        """
        size = sum(a.size for a in arrays)
        dtype = np.result_type(*arrays) if arrays else np.dtype(np.float32)
        buffer = self._buffers.get(purpose)
        if buffer is None or buffer.size != size or buffer.dtype != dtype:
            buffer = self._buffers[purpose] = np.empty(size, dtype)
        if arrays:
            np.concatenate([a.reshape(-1) for a in arrays], out=buffer)
        return buffer

    # ---- reading the record
    @property
    def recorded_steps(self) -> list[int]:
        """The steps with statistics, in order."""
        return sorted(self.records)

    def series(self, layer: str, getter) -> tuple[list[int], list[float]]:
        """``(steps, values)`` of ``getter(LayerRecord)`` over the recorded steps (None values skipped).

        Example:
            ``rec.series("fc1", lambda r: r.grad_z and r.grad_z.rms)``
        """
        steps, values = [], []
        for step in self.recorded_steps:
            record = self.records[step].get(layer)
            value = None if record is None else getter(record)
            if value is not None:
                steps.append(step)
                values.append(float(value))
        return steps, values

    def diagnose(self, thresholds=None) -> list:
        """Findings for the run recorded so far (see ``glassnet.inspect.diagnose``)."""
        from glassnet.inspect.rules import judge

        return judge(self, thresholds)
