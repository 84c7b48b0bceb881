"""rules: the checks that turn a recorded run into findings (cause, layer, evidence, fix), and their Thresholds.

Each rule reads relative, per-layer figures from a Recorder (a layer's error signal compared with the
output layer's, a weight's spread compared with the spread its activation needs, an update compared
with the weight it changes), so that a finding names the layer where a problem starts. Figures that
persist are judged by their median over the recorded steps; a finding's ``step`` is the first recorded
step where the condition held.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from glassnet import nn
from glassnet.inspect import fmt
from glassnet.inspect.recorder import LayerInfo, Recorder

RULES = (
    "nan_or_inf",
    "exploding_gradient",
    "vanishing_gradient",
    "dead_relu",
    "saturated_activation",
    "poor_initialization",
    "update_too_large",
    "update_too_small",
    "loss_not_decreasing",
)
SEVERITIES = ("info", "warning", "error")


@dataclass
class Thresholds:
    """The limits the rules use; every figure is relative, so one set fits models of any size.

    Attributes:
        vanishing_ratio: a layer's error signal rms(dL/dz), divided by the output layer's, below which
            the gradient has vanished there. Sigmoid shrinks it by 4 or more per layer even when well
            initialised, hence a wide margin (1e-4).
        exploding_ratio: the same ratio above which the gradient has exploded (1e3).
        exploding_grad_norm: a layer's gradient norm above which the gradient is exploding even if the
            ratio is not (a shallow model), 1e3.
        dead_fraction: the fraction of a ReLU layer's units that output 0 for every sample of the batch
            (warning from 0.5; error from ``dead_fraction_error``, 0.9).
        saturated_fraction: the fraction of a sigmoid or tanh output within 0.01 of its bounds (0.25).
        init_std_low, init_std_high: a weight's standard deviation divided by the one its activation
            needs (He for ReLU-like, Glorot for sigmoid and tanh) outside [0.2, 5] is poor initialisation.
        update_ratio_high, update_ratio_low: the median ||delta W|| / ||W|| of a weight outside
            [1e-6, 0.1] is an update too large or too small (about 1e-3 is healthy).
        update_ratio_target: the ratio a suggested learning rate aims at (1e-2).
        loss_min_decrease: the relative decrease of the loss (mean of the last quarter of the logged
            values against the first quarter) below which the loss is not decreasing (0.01).
        loss_min_points: the fewest logged losses needed to judge the trend (6).
    """

    vanishing_ratio: float = 1e-4
    exploding_ratio: float = 1e3
    exploding_grad_norm: float = 1e3
    dead_fraction: float = 0.5
    dead_fraction_error: float = 0.9
    saturated_fraction: float = 0.25
    init_std_low: float = 0.2
    init_std_high: float = 5.0
    update_ratio_high: float = 0.1
    update_ratio_low: float = 1e-6
    update_ratio_target: float = 1e-2
    loss_min_decrease: float = 0.01
    loss_min_points: int = 6


@dataclass
class Finding:
    """One diagnosed problem.

    Attributes:
        rule: one of ``RULES``.
        layer: the qualified module name where the problem starts, or None for the model as a whole.
        step: the first recorded step where it showed.
        severity: "info", "warning" or "error".
        evidence: the numbers the rule judged.
        explanation: what happens, in the concepts' names.
        suggestion: a concrete change to make.
        label: the layer as shown to a reader, "model[2] (Linear 64->32)" (``layer`` stays the qualified name).
    """

    rule: str
    layer: str | None
    step: int | None
    severity: str
    evidence: dict = field(default_factory=dict)
    explanation: str = ""
    suggestion: str = ""
    label: str | None = None

    def __str__(self) -> str:
        where = self.label or (fmt.short(self.layer) if self.layer is not None else "the whole model")
        return f"[{self.severity}] {self.rule} at {where}, step {self.step}: {self.explanation} Fix: {self.suggestion}"


def _median(values) -> float | None:
    values = [v for v in values if v is not None and np.isfinite(v)]
    return float(np.median(values)) if values else None


def _span(names: list[str]) -> str:
    """Layers in forward order as a reader names them: 'model[0]', 'model[0] and model[2]', 'fc1, fc2 and fc3'."""
    shown = [fmt.short(n) for n in names]
    return shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " and " + shown[-1]


def _for_each(names: list[str], statement: str) -> str:
    """Code that runs ``statement`` (about ``layer``) on each named layer: one line of Python."""
    if len(names) == 1:
        return statement.replace("layer", fmt.code(names[0]))
    return f"for layer in ({', '.join(fmt.code(n) for n in names)}): {statement}"


_g = fmt.number


class _Judge:
    """Reads one Recorder and applies every rule; findings accumulate in ``self.findings``."""

    def __init__(self, rec: Recorder, thresholds: Thresholds) -> None:
        self.rec = rec
        self.t = thresholds
        self.layers: list[LayerInfo] = sorted(rec.layers.values(), key=lambda info: info.order)
        # Once a value is non-finite everything after it is noise: judge the steps before it.
        bad = rec.nonfinite
        self.steps = [s for s in rec.recorded_steps if bad is None or s < bad.step] or rec.recorded_steps[:1]
        self.findings: list[Finding] = []
        self.lr = self._learning_rate()

    def _learning_rate(self) -> float | None:
        groups = getattr(self.rec.optimizer, "param_groups", None)
        return float(groups[0]["lr"]) if groups else None

    def add(self, rule, layer, step, severity, evidence, explanation, suggestion) -> None:
        label = self.label(layer) if layer is not None else None
        self.findings.append(Finding(rule, layer, step, severity, evidence, explanation, suggestion, label))

    def label(self, name: str) -> str:
        """'model[2] (Linear 64->32)' for a layer; a module that is not a layer by its name alone."""
        info = self.rec.layers.get(name)
        return info.label if info is not None else fmt.short(name)

    def norm_layer(self, name: str) -> str:
        """The BatchNorm that fits after a layer: 'nn.BatchNorm1d(64)', 'nn.BatchNorm2d(6)'."""
        info = self.rec.layers[name]
        kind = "BatchNorm2d" if info.type == "Conv2d" else "BatchNorm1d"
        record = self.rec.records[self.steps[0]].get(name) if self.steps else None
        shape = record.z.shape if record is not None and record.z is not None else None
        channels = shape[1] if shape is not None and len(shape) > 1 else None  # (N, features) or (N, C, H, W)
        return f"nn.{kind}({channels})" if channels else f"nn.{kind}"

    def per_step(self, layer: str, getter) -> list[tuple[int, float]]:
        pairs = []
        for step in self.steps:
            record = self.rec.records[step].get(layer)
            value = None if record is None else getter(record)
            if value is not None:
                pairs.append((step, float(value)))
        return pairs

    def first_step(self, pairs, condition) -> int | None:
        return next((step for step, value in pairs if condition(value)), None)

    def lr_advice(self, ratio: float | None, factor_hint: float = 10.0) -> str:
        factor = factor_hint
        if ratio is not None and np.isfinite(ratio) and ratio > self.t.update_ratio_target:
            factor = 10.0 ** min(math.ceil(math.log10(ratio / self.t.update_ratio_target)), 3)
        if self.lr is not None:
            return f"divide the learning rate by {_g(factor)} (from {_g(self.lr)} to {_g(self.lr / factor)})"
        return f"divide the learning rate by {_g(factor)}"

    def lr_raise(self) -> str:
        if self.lr is not None:
            return f"multiply the learning rate by 10 (from {_g(self.lr)} to {_g(self.lr * 10)})"
        return "multiply the learning rate by 10"

    def weight_ratio(self, layer: str) -> float | None:
        """weight std / the std its activation needs, at the first recorded step."""
        info = self.rec.layers[layer]
        if info.fan_in is None or not self.steps:
            return None
        record = self.rec.records[self.steps[0]].get(layer)
        weight = record.params.get("weight") if record else None
        if weight is None:
            return None
        return weight.value.std / recommended_std(info)

    # ---- rules
    def nan_or_inf(self) -> None:
        bad = self.rec.nonfinite
        if bad is None:
            return
        exploding = [f for f in self.findings if f.rule == "exploding_gradient"]
        if exploding:
            advice = exploding[0].suggestion + " (the exploding gradient comes first)"
        else:
            advice = self.lr_advice(self.max_update_ratio()) + " and clip the gradient norm at 1.0"
        if bad.where == "loss":
            self.add(
                "nan_or_inf",
                None,
                bad.step,
                "error",
                {"step": bad.step, "where": "loss"},
                f"The loss became non-finite at step {bad.step} although no recorded layer output was: the "
                "parameters were pushed by updates too large, or the loss was fed invalid values (log of 0).",
                advice + "; check that the loss gets logits (CrossEntropyLoss) or probabilities in (0, 1) (BCELoss)",
            )
            return
        if bad.what == "output":
            explanation = (
                f"{self.where(bad)} is the first module, in forward order, whose output holds NaN or "
                f"infinity (step {bad.step}); every later activation and gradient inherits it."
            )
        else:
            explanation = (
                f"The {bad.what} of {self.where(bad)} holds NaN or infinity at step {bad.step}, while "
                "the forward pass was finite: the backward pass overflowed there."
            )
        if bad.step == 0:
            advice = (
                "check the inputs for NaN/inf (x.isnan().any()) and re-initialise the parameters, e.g. "
                "nn.init.kaiming_normal_(layer.weight, nonlinearity='relu') on each Linear or Conv2d layer"
            )
        self.add("nan_or_inf", bad.where, bad.step, "error", {"step": bad.step, "what": bad.what}, explanation, advice)

    def where(self, bad) -> str:
        """The module where a NaN appeared, as a reader names it."""
        if bad.where in self.rec.layers:
            return self.label(bad.where)
        return f"{fmt.short(bad.where)} ({bad.module_type})"

    def gradient_ratios(self) -> dict[str, list[tuple[int, float]]]:
        """Per layer, ``(step, rms(dL/dz) / the last layer's rms(dL/dz))`` over the judged steps."""
        layers = [info.name for info in self.layers]
        if len(layers) < 2:
            return {}
        ratios: dict[str, list[tuple[int, float]]] = {name: [] for name in layers}
        for step in self.steps:
            records = self.rec.records[step]
            present = [n for n in layers if n in records and records[n].grad_z is not None]
            if len(present) < 2:
                continue
            ref = records[present[-1]].grad_z.rms
            if not (ref > 0 and np.isfinite(ref)):
                continue
            for name in present:
                ratios[name].append((step, records[name].grad_z.rms / ref))
        return ratios

    def vanishing_and_exploding(self) -> None:
        per_step = self.gradient_ratios()
        ratios = {n: m for n, pairs in per_step.items() if (m := _median(v for _, v in pairs)) is not None}
        if len(ratios) < 2:
            return
        names = list(ratios)
        evidence = {"rms(dL/dz) / output layer's": {n: _g(r) for n, r in ratios.items()}}
        vanished = [n for n in names[:-1] if ratios[n] < self.t.vanishing_ratio]
        exploded = [n for n in names[:-1] if ratios[n] > self.t.exploding_ratio]
        if vanished:
            step = self.first_step(per_step[vanished[0]], lambda v: v < self.t.vanishing_ratio)
            self.gradient_finding("vanishing_gradient", vanished, ratios, evidence, step)
        if exploded:
            step = self.first_step(per_step[exploded[0]], lambda v: v > self.t.exploding_ratio)
            self.gradient_finding("exploding_gradient", exploded, ratios, evidence, step)
        if not exploded:
            self.large_gradient_norm()

    def gradient_finding(self, rule: str, flagged: list[str], ratios: dict[str, float], evidence: dict, step) -> None:
        names = list(ratios)
        first = flagged[0]
        # Where the change is steepest: the layer whose own factor (its ratio over the next layer's) is
        # the most extreme is where the problem starts.
        factors = {
            names[i]: ratios[names[i]] / ratios[names[i + 1]] for i in range(len(names) - 1) if ratios[names[i + 1]] > 0
        }
        pick = min if rule == "vanishing_gradient" else max
        steepest = pick(factors, key=factors.get) if factors else first
        evidence = {**evidence, "per-layer factor": {n: _g(f) for n, f in factors.items()}, "steepest": steepest}
        affected = [n for n in names[:-1]]
        init = {n: r for n in affected if (r := self.weight_ratio(n)) is not None}
        poor = [n for n, r in init.items() if not self.t.init_std_low <= r <= self.t.init_std_high]
        if rule == "vanishing_gradient":
            if ratios[first] == 0:
                size, effect = "0 (no gradient reaches it at all)", "do not learn"
            else:
                size, effect = f"{_g(ratios[first])} times the output layer's", "barely learn"
            explanation = (
                f"The error signal dL/dz shrinks on its way back from the loss: its rms at {self.label(first)} is "
                f"{size} (limit {_g(self.t.vanishing_ratio)}), so the first layers' weights {effect}. It shrinks "
                f"most on the way back into {fmt.short(steepest)}."
            )
        else:
            explanation = (
                f"The error signal dL/dz grows on its way back from the loss: its rms at {self.label(first)} is "
                f"{_g(ratios[first])} times the output layer's (limit {_g(self.t.exploding_ratio)}), so updates there "
                f"are huge and training is unstable. It grows most on the way back into {fmt.short(steepest)}."
            )
        if poor:
            explanation += f" The weights of {_span(poor)} start {self.init_words(poor)}."
            suggestion = self.init_advice(poor)
        elif rule == "vanishing_gradient":
            squashing = [n for n in affected if self.rec.layers[n].activation_kind in ("sigmoid", "tanh")]
            if squashing:
                kinds = {self.rec.layers[n].activation_kind for n in squashing}
                old = " and ".join(k.capitalize() for k in sorted(kinds))
                activations = [fmt.short(self.rec.layers[n].activation) for n in squashing]
                suggestion = (
                    f"replace the {old} activations {_span(activations)} with nn.ReLU(), and initialise the layers "
                    "before them for ReLU: "
                    + _for_each(squashing, "nn.init.kaiming_normal_(layer.weight, nonlinearity='relu')")
                    + f"; or add {self.norm_layer(steepest)} after {fmt.short(steepest)}"
                )
            else:
                suggestion = f"add {self.norm_layer(steepest)} after {fmt.short(steepest)}"
        else:
            suggestion = (
                "clip the gradient norm at 1.0 (nn.utils.clip_grad_norm_(model.parameters(), 1.0), between "
                f"backward() and step()) and add {self.norm_layer(steepest)} after {fmt.short(steepest)}"
            )
        self.add(
            rule, first, step, "error" if rule == "exploding_gradient" else "warning", evidence, explanation, suggestion
        )

    def large_gradient_norm(self) -> None:
        worst, worst_norm = None, 0.0
        for info in self.layers:
            grad = _median(v for _, v in self.per_step(info.name, lambda r: _weight_grad_norm(r)))
            if grad is not None and grad > worst_norm:
                worst, worst_norm = info.name, grad
        if worst is not None and worst_norm > self.t.exploding_grad_norm:
            self.add(
                "exploding_gradient",
                worst,
                self.steps[0] if self.steps else None,
                "error",
                {"gradient norm": _g(worst_norm), "limit": _g(self.t.exploding_grad_norm)},
                f"The gradient of the weight of {self.label(worst)} has norm {_g(worst_norm)}: an update of this size "
                "throws the "
                "weights far from where the gradient was measured.",
                "clip the gradient norm at 1.0 (nn.utils.clip_grad_norm_(model.parameters(), 1.0))",
            )

    def dead_relu(self) -> None:
        for info in self.layers:
            if info.activation_kind != "relu":
                continue
            pairs = self.per_step(info.name, lambda r: r.a and r.a.frac_dead_units)
            dead = _median(v for _, v in pairs)
            if dead is None or dead < self.t.dead_fraction:
                continue
            record = self.rec.records[self.steps[0]][info.name]
            z = record.z
            bias = record.params.get("bias")
            evidence = {"dead units": fmt.percent(dead), "z mean": _g(z.mean), "z std": _g(z.std)}
            explanation = (
                f"{fmt.percent(dead)} of the units of {self.label(info.name)} output 0 after their ReLU for every "
                "sample (their input z stays below 0), so their gradient is 0 and they never recover."
            )
            if bias is not None and z.mean < -z.std and bias.value.mean < 0.5 * z.mean:
                evidence["bias mean"] = _g(bias.value.mean)
                explanation += f" The bias of {fmt.short(info.name)} (mean {_g(bias.value.mean)}) pushes z below 0."
                code = fmt.code(info.name)
                suggestion = f"reset the bias of {fmt.short(info.name)} to 0: nn.init.zeros_({code}.bias)"
            elif (ratio := self.update_ratio(info.name)) is not None and ratio > self.t.update_ratio_high:
                suggestion = self.lr_advice(ratio) + " (large updates knock ReLUs dead)"
            else:
                code = fmt.code(info.name)
                suggestion = (
                    f"initialise {fmt.short(info.name)} with nn.init.kaiming_normal_({code}.weight, "
                    f"nonlinearity='relu') and add {self.norm_layer(info.name)} after it, or replace its ReLU "
                    f"({fmt.short(info.activation)}) with nn.LeakyReLU(0.01)"
                )
            if dead >= self.t.dead_fraction_error:
                severity = "error"
            elif z.mean < -0.5 * z.std:
                severity = "warning"
            else:
                # Units silent on this batch while z sits around 0: the layer's input barely varies across
                # samples (a weak signal at initialisation), and small updates revive them.
                severity = "info"
                explanation += " Its z is centred (mean near 0), so they are silent rather than dead: watch it."
            step = self.first_step(pairs, lambda v: v >= self.t.dead_fraction)
            self.add("dead_relu", info.name, step, severity, evidence, explanation, suggestion)

    def saturated(self) -> None:
        for info in self.layers:
            if info.activation_kind not in ("sigmoid", "tanh"):
                continue
            pairs = self.per_step(info.name, lambda r: r.a and r.a.frac_saturated)
            saturated = _median(v for _, v in pairs)
            if saturated is None or saturated < self.t.saturated_fraction:
                continue
            z = self.rec.records[self.steps[0]][info.name].z
            name = "Sigmoid" if info.activation_kind == "sigmoid" else "Tanh"
            ratio = self.weight_ratio(info.name)
            evidence = {"saturated outputs": fmt.percent(saturated), "z std": _g(z.std)}
            if ratio is not None:
                evidence["weight std / recommended"] = _g(ratio)
            explanation = (
                f"{fmt.percent(saturated)} of the {name} outputs after {self.label(info.name)} sit in its flat tails "
                f"(z has std {_g(z.std)}), where its derivative is near 0: the gradient stops there."
            )
            if ratio is not None and ratio > self.t.init_std_high:
                suggestion = self.init_advice([info.name])
            else:
                suggestion = (
                    f"add {self.norm_layer(info.name)} after {fmt.short(info.name)}, before its {name} "
                    "(or scale the inputs to unit variance)"
                )
            step = self.first_step(pairs, lambda v: v >= self.t.saturated_fraction)
            self.add("saturated_activation", info.name, step, "warning", evidence, explanation, suggestion)

    def poor_initialization(self) -> None:
        if not self.steps or self.steps[0] != 0:
            return  # judged on the weights before any update only
        ratios = {}
        for info in self.layers:
            ratio = self.weight_ratio(info.name) if info.activation_kind is not None else None
            if ratio is not None and not self.t.init_std_low <= ratio <= self.t.init_std_high:
                ratios[info.name] = ratio
        if not ratios:
            return
        names = list(ratios)
        first = self.rec.layers[names[0]]
        std = self.rec.records[0][first.name].params["weight"].value.std
        self.add(
            "poor_initialization",
            first.name,
            0,
            "warning",
            {"weight std / recommended std": {n: _g(r) for n, r in ratios.items()}},
            f"The weights of {_span(names)} start {self.init_words(names)}: {self.label(first.name)} has std "
            f"{_g(std)}, against "
            f"{_g(recommended_std(first))} for a {first.activation_kind} layer with fan_in {first.fan_in}, so the "
            "signal " + ("shrinks" if ratios[first.name] < 1 else "grows") + " at every layer, forward and backward.",
            self.init_advice(names),
        )

    def update_ratio(self, layer: str, pick=_median) -> float | None:
        """The median (or, with ``pick=max``, the largest) ||delta W|| / ||W|| of a layer's weight."""
        values = [v for _, v in self.per_step(layer, _weight_update_ratio) if np.isfinite(v)]
        return pick(values) if values else None

    def small_init(self, names) -> set[str]:
        """Layers whose weight starts far too small: they move by a large fraction of themselves."""
        return {n for n in names if (r := self.weight_ratio(n)) is not None and r < self.t.init_std_low}

    def max_update_ratio(self) -> float | None:
        names = [info.name for info in self.layers]
        small = self.small_init(names)
        ratios = [r for n in names if n not in small and (r := self.update_ratio(n, max)) is not None]
        return max(ratios) if ratios else None

    def updates(self) -> None:
        ratios = {info.name: r for info in self.layers if (r := self.update_ratio(info.name)) is not None}
        if not ratios:
            return
        evidence = {"median ||delta W|| / ||W||": {n: _g(r) for n, r in ratios.items()}}
        # One overshooting step is enough to wreck a run: judge the largest update, not the typical one.
        small = self.small_init(ratios)
        judged = {n: self.update_ratio(n, max) for n in ratios if n not in small} or {None: 0.0}
        worst = max(judged, key=judged.get)
        if judged[worst] > self.t.update_ratio_high:
            evidence["largest ||delta W|| / ||W||"] = _g(judged[worst])
            step = self.first_step(self.per_step(worst, _weight_update_ratio), lambda v: v > self.t.update_ratio_high)
            self.add(
                "update_too_large",
                worst,
                step,
                "warning",
                evidence,
                f"An update changed the weights of {self.label(worst)} by {fmt.percent(judged[worst])} of their norm "
                "(||delta W|| / ||W||; healthy: about 0.1%): the steps overshoot and training is unstable.",
                self.lr_advice(judged[worst]),
            )
        smallest = min(ratios, key=ratios.get)
        if ratios[smallest] < self.t.update_ratio_low:
            step = self.first_step(self.per_step(smallest, _weight_update_ratio), lambda v: v < self.t.update_ratio_low)
            has_vanishing = any(f.rule == "vanishing_gradient" for f in self.findings)
            self.add(
                "update_too_small",
                smallest,
                step,
                "info" if has_vanishing else "warning",
                evidence,
                (
                    f"The updates do not change the weights of {self.label(smallest)} at all (||delta W|| / ||W|| = 0)"
                    if ratios[smallest] == 0
                    else f"Each update changes the weights of {self.label(smallest)} by {_g(ratios[smallest])} of "
                    "their norm (||delta W|| / ||W||; healthy: about 1e-3)"
                )
                + (": they do not learn." if ratios[smallest] == 0 else ": they barely learn.")
                + (" The vanishing gradient above is the cause." if has_vanishing else ""),
                self.lr_raise(),
            )

    def loss_not_decreasing(self) -> None:
        losses = [v for _, v in self.rec.scalars.get("loss", [])]
        if len(losses) < self.t.loss_min_points or not all(np.isfinite(losses)):
            return
        if all(self.update_ratio(info.name) is None for info in self.layers):
            return  # no update was recorded (gradients only): the loss had no chance to go down
        # Against the very first loss: a run that blew up and fell back to chance did not learn.
        quarter = max(len(losses) // 4, 1)
        first, last = losses[0], float(np.mean(losses[-quarter:]))
        if last <= first - self.t.loss_min_decrease * abs(first):
            return
        ratio = self.max_update_ratio()
        causes = [f for f in self.findings if f.rule in ("vanishing_gradient", "dead_relu", "saturated_activation")]
        causes.sort(key=lambda f: -SEVERITIES.index(f.severity))
        if ratio is not None and ratio > self.t.update_ratio_high:
            suggestion = self.lr_advice(ratio)
            cause = "the updates are too large (see update_too_large)"
        elif causes:
            suggestion = causes[0].suggestion
            cause = f"the gradient does not reach the weights (see {causes[0].rule} at {fmt.short(causes[0].layer)})"
        elif ratio is not None and ratio < 1e-4:
            suggestion = self.lr_raise()
            cause = "the updates are too small"
        else:
            suggestion = "divide the learning rate by 10, and check that the targets match the inputs"
            cause = "the updates do not follow the gradient downhill"
        shown = fmt.pair(first, last)
        self.add(
            "loss_not_decreasing",
            None,
            self.rec.scalars["loss"][0][0],
            "warning",
            {"first loss": shown[0], "mean of the last quarter": shown[1], "logged losses": len(losses)},
            f"The loss went from {shown[0]} (first step) to {shown[1]} (mean of the last {quarter} steps) over "
            f"{len(losses)} steps: {cause}.",
            suggestion,
        )

    # ---- advice wording
    def init_words(self, names: list[str]) -> str:
        ratios = [self.weight_ratio(n) or 1.0 for n in names]
        return "too small" if np.median(ratios) < 1 else "too large"

    def init_advice(self, names: list[str]) -> str:
        kinds = {self.rec.layers[n].activation_kind for n in names}
        if kinds <= {"sigmoid", "tanh"}:
            return f"initialise {_span(names)} with Xavier (Glorot): " + _for_each(
                names, "nn.init.xavier_normal_(layer.weight)"
            )
        return f"initialise {_span(names)} with He (Kaiming): " + _for_each(
            names, "nn.init.kaiming_normal_(layer.weight, nonlinearity='relu')"
        )

    def link_causes(self) -> None:
        """Mark symptoms as such: a finding explained by another one drops to 'info' and says so."""
        by_rule: dict[str, list[Finding]] = {}
        for f in self.findings:
            by_rule.setdefault(f.rule, []).append(f)
        unstable = by_rule.get("exploding_gradient", []) + by_rule.get("update_too_large", [])
        later = by_rule.get("dead_relu", []) + by_rule.get("saturated_activation", [])
        for f in later + by_rule.get("vanishing_gradient", []):
            if unstable and f.step not in (None, self.steps[0]):
                cause = unstable[0]
                f.severity = "info"
                f.explanation += (
                    f" It appeared after step {self.steps[0]}, pushed by the {cause.rule} at {fmt.short(cause.layer)}."
                )
                f.suggestion = cause.suggestion
        dead = [f for f in by_rule.get("dead_relu", []) if f.severity != "info"]
        for f in dead[1:]:
            if dead[0].severity == "error":  # a layer fed by a dead layer sees constant inputs
                f.severity = "info"
                f.explanation += f" Its inputs come through {fmt.short(dead[0].layer)}, which is dead; fix that first."
                f.suggestion = dead[0].suggestion
        for f in by_rule.get("vanishing_gradient", []):
            blocked = set(f.evidence["rms(dL/dz) / output layer's"]) if f.step is not None else set()
            causes = [c for c in later if c.layer in blocked and c.severity != "info"]
            if causes:
                cause = max(causes, key=lambda c: SEVERITIES.index(c.severity))
                f.severity = "info"
                f.explanation += f" The cause is the {cause.rule} at {fmt.short(cause.layer)}."
                f.suggestion = cause.suggestion
        for f in by_rule.get("update_too_small", []):
            vanishing = by_rule.get("vanishing_gradient")
            if vanishing:
                f.suggestion = vanishing[0].suggestion

    def run(self) -> list[Finding]:
        self.vanishing_and_exploding()
        self.nan_or_inf()
        self.dead_relu()
        self.saturated()
        self.poor_initialization()
        self.updates()
        self.link_causes()
        self.loss_not_decreasing()
        order = {info.name: info.order for info in self.layers}
        self.findings.sort(key=lambda f: (-SEVERITIES.index(f.severity), RULES.index(f.rule), order.get(f.layer, -1)))
        return self.findings


def _weight_update_ratio(record) -> float | None:
    weight = record.params.get("weight")
    if weight is None or weight.value.shape is None or len(weight.value.shape) < 2:
        return None
    return weight.update_ratio


def _weight_grad_norm(record) -> float | None:
    weight = record.params.get("weight")
    return None if weight is None or weight.grad is None else weight.grad.norm


def recommended_std(info: LayerInfo) -> float:
    """The weight std that keeps the signal's scale through a layer: He for ReLU-like, Glorot otherwise.

    Example:
        >>> recommended_std(LayerInfo("fc", "Linear", 0, ("weight",), activation_kind="relu", fan_in=50, fan_out=10))
        0.2
    """
    if info.activation_kind in ("relu", "leaky_relu", "gelu", "silu"):
        return math.sqrt(2.0 / info.fan_in)
    gain = nn.init.calculate_gain("tanh") if info.activation_kind == "tanh" else 1.0
    return gain * math.sqrt(2.0 / (info.fan_in + info.fan_out))


def judge(rec: Recorder, thresholds: Thresholds | None = None) -> list[Finding]:
    """Apply every rule to a recorded run; findings sorted by severity, rule, then forward order."""
    return _Judge(rec, thresholds or Thresholds()).run()
