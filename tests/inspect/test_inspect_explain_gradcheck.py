"""explain_step tells one step in order with the concepts' names; gradcheck finds a wrong backward."""

from __future__ import annotations

import numpy as np

import glassnet as gn
from glassnet import nn, optim
from glassnet.autograd.function import Function
from glassnet.inspect import explain_step, fmt, gradcheck


def test_explain_step_rows_follow_forward_loss_backward_update():
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    opt = optim.SGD(model.parameters(), lr=0.5)
    w_before = model[0].weight.data.copy()
    x, y = gn.randn(8, 4), gn.randint(0, 2, (8,))
    told = explain_step(model, x, y, nn.CrossEntropyLoss(), opt)
    phases = [r["phase"] for r in told.rows]
    assert phases == sorted(phases, key=["forward", "loss", "backward", "update"].index)
    quantities = [r["quantity"] for r in told.rows]
    assert quantities[:4] == [
        "input x",
        "pre-activation z (Linear)",
        "activation a (ReLU)",
        "pre-activation z (Linear)",
    ]
    backward_layers = [r["layer"] for r in told.rows if r["quantity"] == "error signal dL/dz"]
    # backward goes from the output to the input; a layer reads as it is reached in code, with type and shape
    assert backward_layers == ["model[2] (Linear 3->2)", "model[0] (Linear 4->3)"]
    assert "gradient dL/dW" in quantities and "update of weight W" in quantities
    update = next(r for r in told.rows if r["layer"] == "model[0].weight" and r["phase"] == "update")
    grad_norm = np.linalg.norm(model[0].weight.data - w_before) / 0.5
    assert f"||delta||={fmt.number(0.5 * grad_norm)}" in update["figures"]
    assert "W <- W - lr*g  (SGD, lr=0.5)" in str(told)
    assert str(told).splitlines()[0].split() == ["phase", "layer", "quantity", "shape", "formula", "figures"]
    assert told.loss > 0


def test_explain_step_html_escapes_names_and_leaves_parameters_without_optimizer():
    model = nn.Sequential()
    model.add_module("<b>fc</b>", nn.Linear(4, 2))
    before = model.get_submodule("<b>fc</b>").weight.data.copy()
    told = explain_step(model, gn.randn(3, 4), gn.randint(0, 2, (3,)), nn.CrossEntropyLoss())
    page = told.to_html()
    assert "<b>fc</b>" not in page and "&lt;b&gt;fc&lt;/b&gt;" in page
    assert "update" not in {r["phase"] for r in told.rows}
    assert (model.get_submodule("<b>fc</b>").weight.data == before).all()


def test_gradcheck_passes_on_a_model_and_leaves_it_float32():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Tanh(), nn.Flatten(), nn.Linear(2 * 16, 3))
    result = gradcheck(model, gn.randn(4, 1, 6, 6))
    assert result.ok and result.max_rel_error < 1e-5
    assert [r.name for r in result.rows] == [name for name, _ in model.named_parameters()]
    assert model[0].weight.dtype == np.float32


class _WrongSquare(Function):
    """x^2 with a wrong derivative (x instead of 2x)."""

    def forward(self, x):
        self.x = x
        return x * x

    def backward(self, grad_out):
        return grad_out * self.x


class _Broken(nn.Module):
    def __init__(self):
        super().__init__()
        self.good = nn.Linear(3, 3)
        self.bad = nn.Linear(3, 2)

    def forward(self, x):
        return _WrongSquare.apply(self.bad(self.good(x).tanh()))


def test_gradcheck_names_the_worst_parameter():
    result = gradcheck(_Broken(), gn.randn(5, 3))
    assert not result.ok
    assert result.worst_parameter.startswith("bad.")
    assert result.max_rel_error > 0.4
    assert "gradcheck FAILED" in str(result)


def test_gradcheck_on_a_function_of_inputs():
    assert gradcheck(lambda a, b: (a * b).sigmoid(), [gn.randn(3), gn.randn(3)]).ok
    result = gradcheck(lambda a: _WrongSquare.apply(a), [gn.randn(4)])
    assert not result.ok and result.worst_parameter == "input0"
