"""Recorder bookkeeping: statistics against NumPy on a tiny model, steps, bounded memory, hooks removed."""

from __future__ import annotations

import numpy as np
import pytest

import glassnet as gn
from glassnet import nn, optim
from glassnet.inspect import Recorder, summarize


def tiny():
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2), nn.Sigmoid())
    model[0].weight.data[:] = np.arange(12, dtype=np.float32).reshape(4, 3) / 10 - 0.5
    model[0].bias.data[:] = np.array([0.1, -0.2, 0.3, -2.0], dtype=np.float32)
    model[2].weight.data[:] = np.arange(8, dtype=np.float32).reshape(2, 4) / 10 - 0.3
    model[2].bias.data[:] = 0.0
    return model


X = np.array([[1.0, 2.0, -1.0], [0.5, -1.0, 2.0], [-1.0, 0.0, 1.0], [2.0, 1.0, 0.0], [0.0, 0.5, 0.5]], np.float32)


def step(model, opt, rec=None):
    opt.zero_grad()
    loss = model(gn.tensor(X)).sum()
    loss.backward()
    opt.step()
    if rec is not None:
        rec.log(loss=loss)
    return loss


def test_statistics_match_numpy_on_a_tiny_model():
    model = tiny()
    w0, b0 = model[0].weight.data.copy(), model[0].bias.data.copy()
    w1 = model[2].weight.data.copy()
    opt = optim.SGD(model.parameters(), lr=0.1)
    with Recorder(model, optimizer=opt) as rec:
        step(model, opt, rec)
    z = X @ w0.T + b0
    a = np.maximum(z, 0)
    s = 1 / (1 + np.exp(-(a @ w1.T)))
    grad_z2 = s * (1 - s)  # loss = sum(sigmoid(z2))
    grad_z = (grad_z2 @ w1) * (z > 0)
    grad_w0 = grad_z.T @ X
    r = rec.records[0]["0"]
    np.testing.assert_allclose([r.z.mean, r.z.std, r.z.min, r.z.max], [z.mean(), z.std(), z.min(), z.max()], rtol=1e-5)
    assert r.a.frac_zero == pytest.approx((a == 0).mean())
    assert r.a.frac_dead_units == pytest.approx(np.mean((a == 0).all(axis=0)))  # unit 3: bias -2
    assert r.a.hist_counts.sum() == a.size
    assert r.grad_z.norm == pytest.approx(np.linalg.norm(grad_z), rel=1e-5)
    weight = r.params["weight"]
    assert weight.value.norm == pytest.approx(np.linalg.norm(w0), rel=1e-6)
    assert weight.grad.norm == pytest.approx(np.linalg.norm(grad_w0), rel=1e-5)
    assert weight.grad.mean_abs == pytest.approx(np.abs(grad_w0).mean(), rel=1e-5)
    np.testing.assert_allclose(
        weight.grad.percentiles, np.percentile(np.abs(grad_w0), (50, 90, 99), method="nearest"), rtol=1e-5
    )
    assert weight.update_norm == pytest.approx(0.1 * np.linalg.norm(grad_w0), rel=1e-5)  # SGD: delta = -lr g
    assert weight.update_ratio == pytest.approx(0.1 * np.linalg.norm(grad_w0) / np.linalg.norm(w0), rel=1e-5)
    out = rec.records[0]["2"].a
    assert out.frac_saturated == pytest.approx(np.mean((s < 0.01) | (s > 0.99)))
    assert rec.layers["0"].activation == "1" and rec.layers["2"].activation_kind == "sigmoid"
    assert rec.scalars["loss"] == [(0, pytest.approx(float(s.sum()), rel=1e-5))]


def test_summarize_counts_non_finite_values_and_skips_them():
    stats = summarize(np.array([1.0, np.nan, 3.0, np.inf]), bins=4)
    assert (stats.nonfinite, stats.mean, stats.max, int(stats.hist_counts.sum())) == (2, 2.0, 3.0, 2)


@pytest.mark.parametrize("mode", ["optimizer", "manual", "automatic"])
def test_every_n_steps_recorded_whichever_way_steps_are_told(mode):
    model = tiny()
    opt = optim.SGD(model.parameters(), lr=0.01)
    with Recorder(model, every=3, optimizer=opt if mode == "optimizer" else None) as rec:
        for _ in range(7):
            step(model, opt, rec)
            if mode == "manual":
                rec.step()
    assert rec.recorded_steps == [0, 3, 6]
    assert [s for s, _ in rec.scalars["loss"]] == list(range(7))
    for s in (0, 3, 6):  # the update is caught however the step ended (the last one on exit)
        assert rec.records[s]["0"].params["weight"].update_norm > 0


def test_evaluation_forward_under_no_grad_is_not_a_step():
    model = tiny()
    opt = optim.SGD(model.parameters(), lr=0.01)
    with Recorder(model) as rec:
        for _ in range(3):
            step(model, opt)
            with gn.no_grad():
                model(gn.tensor(X))
    assert rec.current_step == 2 and rec.recorded_steps == [0, 1, 2]


def test_memory_stays_bounded_and_tensors_only_where_asked():
    model = tiny()
    opt = optim.SGD(model.parameters(), lr=0.01)
    with Recorder(model, optimizer=opt, max_steps=8, keep_steps=[5], keep_layers=["2"]) as rec:
        for _ in range(100):
            step(model, opt)
    assert len(rec.records) <= 8 and rec.every == 16
    assert rec.recorded_steps == [0, 16, 32, 48, 64, 80, 96]
    assert list(rec.tensors) == [(5, "2")]  # kept even after step 5 was thinned out of the statistics
    with Recorder(model, optimizer=opt, keep_steps=[1], keep_layers=["2"]) as rec:
        for _ in range(3):
            step(model, opt)
    assert list(rec.tensors) == [(1, "2")]
    kept = rec.tensors[(1, "2")]
    assert set(kept) == {
        "weight",
        "bias",
        "z",
        "a",
        "grad_z",
        "grad.weight",
        "grad.bias",
        "update.weight",
        "update.bias",
    }
    assert kept["z"].shape == (5, 2)
    np.testing.assert_allclose(np.linalg.norm(kept["update.weight"]), rec.records[1]["2"].params["weight"].update_norm)


def test_hooks_are_removed_on_exit():
    model = tiny()
    opt = optim.SGD(model.parameters(), lr=0.01)
    plain_step = type(opt).step
    with Recorder(model, optimizer=opt) as rec:
        step(model, opt)
    records, scalars = dict(rec.records), rec.current_step
    assert "step" not in vars(opt) and type(opt).step is plain_step
    for _ in range(3):
        step(model, opt)
    assert rec.records == records and rec.current_step == scalars
    for module in model.modules():  # no hook left: the plain call path again
        assert not (module._forward_hooks or module._forward_pre_hooks)
    assert all(not p._hooks for p in model.parameters())


def test_the_first_non_finite_module_is_named():
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    model[2].weight.data[0, 0] = np.inf
    with Recorder(model) as rec:
        model(gn.tensor(X)).sum().backward()
    assert (rec.nonfinite.where, rec.nonfinite.what, rec.nonfinite.module_type) == ("2", "output", "Linear")


def test_bad_arguments_are_explained():
    with pytest.raises(TypeError, match="nn.Module"):
        Recorder(lambda x: x)
    with pytest.raises(ValueError, match="every must be a positive"):
        Recorder(tiny(), every=0)


def test_unrecorded_steps_take_the_plain_call_path_and_a_step_without_update_keeps_its_values():
    model = tiny()
    opt = optim.SGD(model.parameters(), lr=0.1)
    hooked = []
    with Recorder(model, every=2, optimizer=opt) as rec:
        for _ in range(4):
            hooked.append(bool(model[0]._forward_hooks))
            step(model, opt, rec)
        model(gn.tensor(X)).sum().backward()  # step 4 is recorded, and ends (on exit) without optimizer.step()
    assert hooked == [True, False, True, False]
    assert rec.recorded_steps == [0, 2, 4]
    last = rec.records[4]["0"]
    assert last.z is not None and last.grad_z is not None
    assert last.params["weight"].value.norm == pytest.approx(np.linalg.norm(model[0].weight.data), rel=1e-6)
    assert last.params["weight"].update_norm is None
