"""fmt: how the glass box writes numbers and layers, one way everywhere (findings, explain_step, the report).

A number has 3 significant digits, in scientific notation (1.5e-6) below 1e-3 or from 1e4 on; "0" means an exact
zero, never a value too small to show. A layer is its name as user code reaches it plus its type and
shape: ``model[2] (Linear 64->32)``, ``fc1 (Linear 784->256)``.
"""

from __future__ import annotations

import math

from glassnet import nn


def number(value: float | None, digits: int = 3) -> str:
    """``value`` with ``digits`` significant digits; scientific below 1e-3 or from 1e4 on; "0" only for 0.

    Example:
        >>> [number(v) for v in (0.0, 1.5e-6, 0.00123, 2.3049, 12345.0, -0.0, float("nan"))]
        ['0', '1.5e-6', '0.00123', '2.3', '1.23e4', '0', 'nan']
    """
    if value is None:
        return "n/a"
    value = float(value)
    if value == 0:
        return "0"  # also -0.0
    if not math.isfinite(value):
        return str(value)
    if abs(value) < 1e-3 or abs(value) >= 1e4:
        mantissa, exponent = f"{value:.{digits - 1}e}".split("e")
        if "." in mantissa:
            mantissa = mantissa.rstrip("0").rstrip(".")
        return f"{mantissa}e{int(exponent)}"
    text = f"{value:.{digits}g}"
    if "e" in text:  # .3g of 1000..9999 at 3 digits: write the integer out
        text = f"{value:.0f}"
    return text


def percent(fraction: float | None) -> str:
    """A fraction as a percentage with ``number``'s digits: 1.0 -> '100%', 0.0042 -> '0.42%'.

    Example:
        >>> percent(1.0), percent(0.0042), percent(0.0)
        ('100%', '0.42%', '0%')
    """
    return "n/a" if fraction is None else number(100.0 * fraction) + "%"


def pair(first: float, second: float) -> tuple[str, str]:
    """Two numbers with just enough digits (3 to 6) to show that they differ.

    Example:
        >>> pair(2.3031, 2.3012)
        ('2.303', '2.301')
    """
    for digits in range(3, 7):
        a, b = number(first, digits), number(second, digits)
        if a != b:
            return a, b
    return a, b


def code(name: str) -> str:
    """How user code reaches a submodule: 'fc1' -> 'model.fc1', 'features.0' -> 'model.features[0]'.

    Example:
        >>> code("2"), code("features.0"), code("")
        ('model[2]', 'model.features[0]', 'model')
    """
    return "model" + "".join(f"[{part}]" if part.isdigit() else f".{part}" for part in name.split(".") if part)


def short(name: str) -> str:
    """A layer's name as the reader sees it: the code path when a part is an index ('model[2]'), else the name.

    Example:
        >>> short("2"), short("fc1"), short("features.0")
        ('model[2]', 'fc1', 'model.features[0]')
    """
    if not name:
        return "model"
    return code(name) if any(part.isdigit() for part in name.split(".")) else name


def describe(module: nn.Module) -> str:
    """A module's type and shape: 'Linear 64->32', 'Conv2d 1->6 3x3', 'BatchNorm1d 64', 'ReLU'.

    Example:
        >>> describe(nn.Linear(64, 32)), describe(nn.Conv2d(1, 6, 3))
        ('Linear 64->32', 'Conv2d 1->6 3x3')
    """
    kind = type(module).__name__
    if hasattr(module, "in_features") and hasattr(module, "out_features"):
        return f"{kind} {module.in_features}->{module.out_features}"
    if hasattr(module, "in_channels") and hasattr(module, "out_channels"):
        kernel = getattr(module, "kernel_size", None)
        size = "x".join(str(k) for k in kernel) if isinstance(kernel, tuple) else (str(kernel) if kernel else "")
        return f"{kind} {module.in_channels}->{module.out_channels}" + (f" {size}" if size else "")
    if hasattr(module, "num_features"):
        return f"{kind} {module.num_features}"
    weight = getattr(module, "weight", None)
    shape = getattr(weight, "shape", None)
    if shape:
        return f"{kind} {'x'.join(str(s) for s in shape)}"
    return kind
