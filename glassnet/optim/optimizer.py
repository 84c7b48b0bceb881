"""Optimizer: the bookkeeping shared by every optimizer (param groups, per-parameter state, saving, stepping).

A concrete optimizer (SGD, RMSprop, Adam, AdamW) is this base plus three small pieces, in the manner of
PyTorch's ``torch.optim`` and Keras 3:

* ``_check_options(group)`` validates one group's hyper-parameters (negative lr, betas outside [0, 1)...);
* ``_init_state(param, group, state)`` creates the per-parameter state on the first step (Keras' ``build``);
* ``_update(param, grad, state, group)`` applies one step to the arrays in place (Keras' ``update_step``),
  by calling the optimizer's pure update function.

State lives in ``self.state[param]``, a dict of NumPy arrays and Python numbers, so that ``state_dict()``
has PyTorch's layout and can be written to safetensors. Scratch arrays that an update needs (so that a step
allocates nothing) live apart from the state, in ``self._scratch``, and are never saved.
"""

from __future__ import annotations

import warnings
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from glassnet._hooks import RemovableHandle
from glassnet.autograd import GlassnetError, enable_grad
from glassnet.tensor import Tensor

ParamsT = Iterable[Tensor] | Iterable[dict[str, Any]]
# group keys that are not options but are expected: set by lr schedulers, or names users give groups
_EXTRA_GROUP_KEYS = {"initial_lr", "name", "param_names"}


class Optimizer:
    """Base class of all optimizers: parameter groups, per-parameter state, ``step``, saving and loading.

    Args:
        params: an iterable of Tensors (requires_grad=True), or of dicts each holding ``"params"`` (an
            iterable of Tensors) and per-group options that override ``defaults``.
        defaults: the default value of each option (``lr``, ``momentum``...) for groups that omit it.

    Example:
        >>> import glassnet as gn
        >>> from glassnet import optim
        >>> w = gn.tensor([1.0, 2.0], requires_grad=True)
        >>> b = gn.tensor([0.0], requires_grad=True)
        >>> opt = optim.SGD([{"params": [w]}, {"params": [b], "lr": 0.5}], lr=0.1)
        >>> (w * w).sum().backward()
        >>> opt.step()
        >>> w
        tensor([0.8, 1.6], requires_grad=True)
    """

    # Keys of the per-parameter state that hold Python numbers rather than arrays (e.g. Adam's "step").
    _scalar_state: tuple[str, ...] = ()

    def __init__(self, params: ParamsT, defaults: dict[str, Any]) -> None:
        name = type(self).__name__
        if isinstance(params, Tensor):
            raise TypeError(
                f"{name}: params should be an iterable of Tensors or of dicts, but got a single Tensor of shape "
                f"{params.shape}; wrap it in a list: {name}([w], ...)"
            )
        if isinstance(params, (set, frozenset)):
            raise TypeError(f"{name}: params must be an ordered iterable (a list), not a set: a set's order varies")
        if isinstance(params, dict):
            raise TypeError(f"{name}: params should be an iterable of dicts (param groups), got a single dict")
        self.defaults = dict(defaults)
        self.state: defaultdict[Tensor, dict[str, Any]] = defaultdict(dict)
        self.param_groups: list[dict[str, Any]] = []
        self._scratch: dict[Tensor, dict[str, np.ndarray]] = {}
        self._opt_called = False  # read by lr schedulers to warn when they step before the optimizer
        self._step_pre_hooks: dict[int, Callable] = {}
        self._step_post_hooks: dict[int, Callable] = {}

        param_groups = list(params)
        if len(param_groups) == 0:
            raise GlassnetError(f"{name}: optimizer got an empty parameter list")
        if not isinstance(param_groups[0], dict):
            param_groups = [{"params": param_groups}]
        for group in param_groups:
            self.add_param_group(group)

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines.extend(f"    {key}: {group[key]}" for key in sorted(group) if key != "params")
        lines.append(")")
        return "\n".join(lines)

    # ---- parameter groups
    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group of parameters, with its own options, to the optimizer (e.g. when unfreezing layers).

        Args:
            param_group: ``{"params": iterable of Tensors, option: value, ...}``; options not given take
                the optimizer's defaults.

        Example:
            >>> import glassnet as gn
            >>> from glassnet import optim
            >>> opt = optim.SGD([gn.zeros(2, requires_grad=True)], lr=0.1)
            >>> opt.add_param_group({"params": [gn.zeros(3, requires_grad=True)], "lr": 0.01})
            >>> [g["lr"] for g in opt.param_groups]
            [0.1, 0.01]
        """
        name = type(self).__name__
        if not isinstance(param_group, dict):
            raise TypeError(f"{name}: a param group must be a dict, got {type(param_group).__name__}")
        if "params" not in param_group:
            raise GlassnetError(f"{name}: a param group must have a 'params' entry, got keys {sorted(param_group)}")
        params = param_group["params"]
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, (set, frozenset)):
            raise TypeError(f"{name}: a group's params must be an ordered iterable (a list), not a set")
        params = list(params)
        group_index = len(self.param_groups)
        if len(params) == 0:
            raise GlassnetError(f"{name}: param group {group_index} has an empty parameter list")
        for i, p in enumerate(params):
            where = f"params[{i}] of param group {group_index}"
            if not isinstance(p, Tensor):
                raise TypeError(f"{name}: can only optimize Tensors, but {where} is a {type(p).__name__}")
            if not p.requires_grad:
                raise GlassnetError(
                    f"{name}: {where} (shape {p.shape}) does not require grad; create it with requires_grad=True "
                    "or leave it out of the optimizer"
                )
            if not p.is_leaf:
                raise GlassnetError(f"{name}: can't optimize a non-leaf Tensor ({where}, shape {p.shape})")
        seen: dict[int, int] = {}
        for i, p in enumerate(params):
            if id(p) in seen:
                raise GlassnetError(
                    f"{name}: param group {group_index} contains the same parameter twice "
                    f"(params[{seen[id(p)]}] and params[{i}], shape {p.shape})"
                )
            seen[id(p)] = i
        for other_index, other in enumerate(self.param_groups):
            for p in other["params"]:
                if id(p) in seen:
                    raise GlassnetError(
                        f"{name}: some parameters appear in more than one parameter group (shape {p.shape} "
                        f"is in groups {other_index} and {group_index})"
                    )

        group = {key: value for key, value in param_group.items() if key != "params"}
        unknown = sorted(set(group) - set(self.defaults) - _EXTRA_GROUP_KEYS)
        if unknown:  # kept, as PyTorch does (users tag groups), but most often a misspelt option
            warnings.warn(
                f"{name}: param group {group_index} has options {unknown} that {name} does not use "
                f"(it uses {sorted(self.defaults)}); check their spelling",
                UserWarning,
                stacklevel=2,
            )
        for key, default in self.defaults.items():
            group.setdefault(key, default)
        self._check_options(group)
        group["params"] = params
        self.param_groups.append(group)

    def _check_options(self, group: dict[str, Any]) -> None:
        """Raise a clear error for an invalid option in ``group`` (overridden by each optimizer)."""

    def _fail(self, message: str) -> None:
        raise GlassnetError(f"{type(self).__name__}: {message}")

    # ---- stepping
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset the gradients of all optimized parameters.

        Args:
            set_to_none: set ``p.grad = None`` (the default, as in PyTorch); otherwise fill it with zeros.
        """
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    p.grad.data.fill(0)

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Apply one update to every parameter that has a gradient (parameters whose grad is None are skipped).

        Args:
            closure: optional function that re-evaluates the model and returns the loss.

        Returns:
            The closure's loss, or None.
        """
        if self._step_pre_hooks:
            for hook in list(self._step_pre_hooks.values()):
                hook(self, (closure,), {})
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        self._opt_called = True
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad.data
                if grad.shape != p.data.shape:
                    self._fail(f"parameter of shape {p.shape} has a gradient of shape {grad.shape}")
                state = self.state[p]
                if not state:
                    self._init_state(p.data, group, state)
                self._update(p, grad, state, group)
                p._vc[0] += 1
        if self._step_post_hooks:
            for hook in list(self._step_post_hooks.values()):
                hook(self, (closure,), {})
        return loss

    def register_step_pre_hook(self, hook: Callable) -> RemovableHandle:
        """Call ``hook(optimizer, args, kwargs)`` before each ``step()``; returns a removable handle."""
        handle = RemovableHandle(self._step_pre_hooks)
        self._step_pre_hooks[handle.id] = hook
        return handle

    def register_step_post_hook(self, hook: Callable) -> RemovableHandle:
        """Call ``hook(optimizer, args, kwargs)`` after each ``step()``; returns a removable handle."""
        handle = RemovableHandle(self._step_post_hooks)
        self._step_post_hooks[handle.id] = hook
        return handle

    def _init_state(self, param: np.ndarray, group: dict[str, Any], state: dict[str, Any]) -> None:
        """Create the per-parameter state on the first step (overridden by each optimizer)."""

    def _update(self, p: Tensor, grad: np.ndarray, state: dict[str, Any], group: dict[str, Any]) -> None:
        raise NotImplementedError(f"{type(self).__name__} does not implement _update")

    def _buffer(self, p: Tensor, name: str) -> np.ndarray:
        """A scratch array shaped like ``p`` (allocated once, reused every step, never saved)."""
        buffers = self._scratch.get(p)
        if buffers is None:
            buffers = self._scratch[p] = {}
        array = buffers.get(name)
        if array is None or array.shape != p.data.shape or array.dtype != p.data.dtype:
            array = buffers[name] = np.empty_like(p.data)
        return array

    # ---- saving and loading
    def state_dict(self) -> dict[str, Any]:
        """The optimizer's state in PyTorch's layout, holding only NumPy arrays and Python numbers.

        Returns:
            ``{"state": {index: {name: array or number}}, "param_groups": [{option: value, "params":
            [index, ...]}]}`` where parameters are numbered in group order. Arrays are copies, so the
            result is a snapshot that later steps do not change.

        Example:
            >>> import glassnet as gn
            >>> from glassnet import optim
            >>> w = gn.tensor([1.0], requires_grad=True)
            >>> opt = optim.SGD([w], lr=0.1, momentum=0.9)
            >>> (w * w).sum().backward(); opt.step()
            >>> opt.state_dict()["state"]
            {0: {'momentum_buffer': array([2.], dtype=float32)}}
        """
        index_of: dict[int, int] = {}
        param_groups = []
        for group in self.param_groups:
            packed = {key: value for key, value in group.items() if key != "params"}
            for p in group["params"]:
                index_of.setdefault(id(p), len(index_of))
            packed["params"] = [index_of[id(p)] for p in group["params"]]
            param_groups.append(packed)
        state = {}
        for p, values in self.state.items():
            if values:
                state[index_of[id(p)]] = {
                    key: value.copy() if isinstance(value, np.ndarray) else value for key, value in values.items()
                }
        return {"state": state, "param_groups": param_groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the state saved by ``state_dict()`` (or a PyTorch one converted to NumPy arrays).

        Group options (lr, betas...) are taken from ``state_dict``; the parameters stay this optimizer's
        own. Arrays are copied and cast to their parameter's dtype; a step then continues exactly where
        the saved run left off.

        Raises:
            GlassnetError: the number of groups, the size of a group, a parameter index or the shape of a
                state array does not match this optimizer.
        """
        name = type(self).__name__
        if not isinstance(state_dict, dict) or "state" not in state_dict or "param_groups" not in state_dict:
            raise GlassnetError(f"{name}.load_state_dict: expected a dict with 'state' and 'param_groups'")
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise GlassnetError(
                f"{name}.load_state_dict: loaded state dict has {len(saved_groups)} parameter groups, "
                f"but the optimizer has {len(self.param_groups)}"
            )
        id_map: dict[int, Tensor] = {}
        for i, (group, saved) in enumerate(zip(self.param_groups, saved_groups)):
            if len(group["params"]) != len(saved["params"]):
                raise GlassnetError(
                    f"{name}.load_state_dict: parameter group {i} has {len(saved['params'])} parameters in the "
                    f"loaded state dict, but {len(group['params'])} in the optimizer"
                )
            for index, p in zip(saved["params"], group["params"]):
                id_map[int(index)] = p

        new_state: defaultdict[Tensor, dict[str, Any]] = defaultdict(dict)
        for index, values in state_dict["state"].items():
            if int(index) not in id_map:
                raise GlassnetError(
                    f"{name}.load_state_dict: state for parameter index {index}, which no parameter group lists "
                    f"(known indices: {sorted(id_map)})"
                )
            p = id_map[int(index)]
            new_state[p] = {key: self._load_value(index, p, key, value) for key, value in values.items()}

        new_groups = []
        for group, saved in zip(self.param_groups, saved_groups):
            restored = {}
            for key, value in saved.items():
                if key == "params":
                    continue
                if isinstance(group.get(key), tuple) and isinstance(value, (list, np.ndarray)):
                    value = tuple(float(v) for v in value)  # betas written through a format without tuples
                elif isinstance(value, np.ndarray) and value.ndim == 0:
                    value = value.item()
                restored[key] = value
            restored["params"] = group["params"]
            new_groups.append(restored)
        self.param_groups = new_groups
        self.state = new_state
        self._scratch = {}

    def _load_value(self, index, p: Tensor, key: str, value: Any) -> Any:
        """Copy one loaded state entry: scalars to Python numbers, arrays checked against the parameter."""
        name = type(self).__name__
        if hasattr(value, "numpy") and not isinstance(value, np.ndarray):
            value = value.numpy()  # a glassnet (or torch CPU) tensor
        if key in self._scalar_state:
            return float(np.asarray(value).item()) if np.size(value) == 1 else value
        if isinstance(value, (np.ndarray, list)):
            array = np.array(value, dtype=p.data.dtype if np.asarray(value).dtype.kind == "f" else None)
            if array.shape != p.data.shape:
                raise GlassnetError(
                    f"{name}.load_state_dict: state '{key}' of parameter {index} has shape {array.shape}, "
                    f"but the parameter has shape {p.data.shape}"
                )
            return array
        return value
