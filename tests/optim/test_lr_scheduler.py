"""Learning-rate schedules: the lr sequences equal PyTorch's (bit for bit), state_dict resume, bad input."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import glassnet as gn
from glassnet import optim
from glassnet.autograd import GlassnetError
from glassnet.optim import lr_scheduler

SCHEDULES = [
    ("StepLR", {"step_size": 3, "gamma": 0.5}),
    ("MultiStepLR", {"milestones": [3, 7, 7, 12], "gamma": 0.3}),
    ("ExponentialLR", {"gamma": 0.9}),
    ("CosineAnnealingLR", {"T_max": 10}),
    ("CosineAnnealingLR", {"T_max": 7, "eta_min": 0.01}),  # 35 epochs: past T_max, through the 0/0 branch
    ("LinearLR", {"start_factor": 0.25, "total_iters": 6}),
    ("LinearLR", {"start_factor": 1.0, "end_factor": 0.1, "total_iters": 8}),
    ("LinearLR", {}),
]
EPOCHS = 35


def _optimizers(torch, two_groups=True):
    """The same SGD in both libraries: one group (lr 0.1) or two (lr 0.1 and 0.02)."""
    w, b = gn.zeros(3, requires_grad=True), gn.zeros(1, requires_grad=True)
    tw, tb = torch.zeros(3, requires_grad=True), torch.zeros(1, requires_grad=True)
    if two_groups:
        return (
            optim.SGD([{"params": [w]}, {"params": [b], "lr": 0.02}], lr=0.1, momentum=0.9),
            torch.optim.SGD([{"params": [tw]}, {"params": [tb], "lr": 0.02}], lr=0.1, momentum=0.9),
        )
    return optim.SGD([w, b], lr=0.1), torch.optim.SGD([tw, tb], lr=0.1)


def _sequence(opt, sched, epochs, metrics=None):
    """get_last_lr() after construction and after each epoch; the groups' lr must agree with it."""
    out = [sched.get_last_lr()]
    for epoch in range(epochs):
        opt.step()
        if metrics is None:
            sched.step()
        else:
            sched.step(metrics[epoch])
        out.append(sched.get_last_lr())
        assert out[-1] == [g["lr"] for g in opt.param_groups]
    return out


@pytest.mark.parametrize("two_groups", [False, True], ids=["one-group", "two-groups"])
@pytest.mark.parametrize("name,kwargs", SCHEDULES, ids=[f"{n}-{k}" for n, k in SCHEDULES])
def test_sequence_equals_torch(torch, name, kwargs, two_groups):
    opt, torch_opt = _optimizers(torch, two_groups)
    ours = _sequence(opt, getattr(lr_scheduler, name)(opt, **kwargs), EPOCHS)
    theirs = _sequence(torch_opt, getattr(torch.optim.lr_scheduler, name)(torch_opt, **kwargs), EPOCHS)
    assert ours == theirs  # exact: the same float formulas in the same order
    assert [g["initial_lr"] for g in opt.param_groups] == [g["initial_lr"] for g in torch_opt.param_groups]
    assert len({tuple(lrs) for lrs in ours}) > 1, "the schedule must change the lr"


METRICS = [1.0, 0.9, 0.91, 0.92, 0.93, 0.85, 0.86, 0.86, 0.86, 0.86, 0.7, 0.70001, 0.71, 0.72, 0.73, 0.74, 0.75]
METRICS = METRICS + [0.75 + 0.001 * i for i in range(20)]
PLATEAU = [
    {"patience": 2},
    {"patience": 1, "factor": 0.5, "cooldown": 2},
    {"mode": "max", "patience": 1, "threshold": 0.05, "threshold_mode": "abs"},
    {"patience": 0, "factor": 0.5, "min_lr": [0.01, 0.015]},
    {"patience": 1, "factor": 0.5, "min_lr": 0.02, "threshold": 0.0, "eps": 1e-3},
]


@pytest.mark.parametrize("kwargs", PLATEAU, ids=[str(k) for k in PLATEAU])
def test_reduce_lr_on_plateau_equals_torch(torch, kwargs):
    opt, torch_opt = _optimizers(torch, two_groups=True)
    sched = lr_scheduler.ReduceLROnPlateau(opt, **kwargs)
    torch_sched = torch.optim.lr_scheduler.ReduceLROnPlateau(torch_opt, **kwargs)
    ours = _sequence(opt, sched, len(METRICS), METRICS)
    theirs = _sequence(torch_opt, torch_sched, len(METRICS), METRICS)
    assert ours == theirs
    assert len({tuple(lrs) for lrs in ours}) > 1
    assert (sched.best, sched.num_bad_epochs, sched.cooldown_counter) == (
        torch_sched.best,
        torch_sched.num_bad_epochs,
        torch_sched.cooldown_counter,
    )


def test_reduce_lr_on_plateau_accepts_a_tensor_metric():
    opt = optim.SGD([gn.zeros(1, requires_grad=True)], lr=1.0)
    sched = lr_scheduler.ReduceLROnPlateau(opt, patience=0)
    sched.step(gn.tensor(1.0))
    sched.step(gn.tensor(2.0))
    assert sched.get_last_lr() == [0.1]


@pytest.mark.parametrize("name,kwargs", [*SCHEDULES[:6], ("ReduceLROnPlateau", {"patience": 1, "cooldown": 1})])
def test_state_dict_round_trip_resumes_exactly(name, kwargs):
    def build():
        w = gn.tensor(np.linspace(-1, 1, 6, dtype=np.float32), requires_grad=True)
        opt = optim.Adam([{"params": [w]}], lr=0.05)
        return w, opt, getattr(lr_scheduler, name)(opt, **kwargs)

    metrics = METRICS[:30]

    def run(w, opt, sched, epochs):
        lrs = []
        for epoch in epochs:
            opt.zero_grad()
            (w * w).sum().backward()
            opt.step()
            sched.step(metrics[epoch]) if name == "ReduceLROnPlateau" else sched.step()
            lrs.append(sched.get_last_lr())
        return lrs

    w, opt, sched = build()
    run(w, opt, sched, range(12))
    saved_opt, saved_sched, saved_w = opt.state_dict(), sched.state_dict(), w.data.copy()
    assert "optimizer" not in saved_sched
    expected = run(w, opt, sched, range(12, 30))

    w2, opt2, sched2 = build()  # a new run: scheduler first, then the optimizer's state, as in PyTorch
    w2.data[...] = saved_w
    opt2.load_state_dict(saved_opt)
    sched2.load_state_dict(saved_sched)
    assert run(w2, opt2, sched2, range(12, 30)) == expected
    np.testing.assert_array_equal(w2.data, w.data)


def test_state_dict_holds_plain_values():
    opt = optim.SGD([gn.zeros(1, requires_grad=True)], lr=0.1)
    sched = lr_scheduler.MultiStepLR(opt, milestones=[2, 4, 4])
    state = sched.state_dict()
    assert type(state["milestones"]) is dict and state["milestones"] == {2: 1, 4: 2}
    assert state["base_lrs"] == [0.1] and state["last_epoch"] == 0


def test_resume_with_last_epoch(torch):
    opt, torch_opt = _optimizers(torch, two_groups=True)
    for group, torch_group in zip(opt.param_groups, torch_opt.param_groups):
        group["initial_lr"] = torch_group["initial_lr"] = group["lr"] * 2
    ours = _sequence(opt, lr_scheduler.StepLR(opt, step_size=2, last_epoch=5), 6)
    theirs = _sequence(torch_opt, torch.optim.lr_scheduler.StepLR(torch_opt, step_size=2, last_epoch=5), 6)
    assert ours == theirs


def test_closed_form_epoch_argument_warns_and_matches_torch(torch):
    opt, torch_opt = _optimizers(torch)
    sched = lr_scheduler.CosineAnnealingLR(opt, T_max=10)
    torch_sched = torch.optim.lr_scheduler.CosineAnnealingLR(torch_opt, T_max=10)
    opt.step()
    torch_opt.step()
    with pytest.warns(UserWarning, match="deprecated"):
        sched.step(4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch_sched.step(4)
    assert sched.get_last_lr() == torch_sched.get_last_lr()


def test_scheduler_step_before_optimizer_step_warns():
    opt = optim.SGD([gn.zeros(1, requires_grad=True)], lr=0.1)
    sched = lr_scheduler.ExponentialLR(opt, gamma=0.5)
    with pytest.warns(UserWarning, match=r"ExponentialLR: `lr_scheduler.step\(\)` was called before"):
        sched.step()
    opt2 = optim.SGD([gn.zeros(1, requires_grad=True)], lr=0.1)
    sched2 = lr_scheduler.ExponentialLR(opt2, gamma=0.5)
    opt2.step()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sched2.step()


def test_bad_input():
    opt = optim.SGD([gn.zeros(1, requires_grad=True)], lr=0.1)
    with pytest.raises(TypeError, match="StepLR: dict is not a glassnet Optimizer"):
        lr_scheduler.StepLR({}, step_size=2)
    with pytest.raises(TypeError, match="ReduceLROnPlateau: list is not a glassnet Optimizer"):
        lr_scheduler.ReduceLROnPlateau([])
    with pytest.raises(GlassnetError, match="StepLR: step_size must be a positive integer, got 0"):
        lr_scheduler.StepLR(opt, step_size=0)
    with pytest.raises(GlassnetError, match=r"MultiStepLR: milestones must be increasing, got \[5, 2\]"):
        lr_scheduler.MultiStepLR(opt, milestones=[5, 2])
    with pytest.raises(GlassnetError, match="CosineAnnealingLR: T_max must be positive, got 0"):
        lr_scheduler.CosineAnnealingLR(opt, T_max=0)
    with pytest.raises(GlassnetError, match="LinearLR: start_factor.*got 0"):
        lr_scheduler.LinearLR(opt, start_factor=0)
    with pytest.raises(GlassnetError, match="LinearLR: end_factor.*got 1.5"):
        lr_scheduler.LinearLR(opt, end_factor=1.5)
    with pytest.raises(GlassnetError, match="ReduceLROnPlateau: factor should be < 1.0, got 1.0"):
        lr_scheduler.ReduceLROnPlateau(opt, factor=1.0)
    with pytest.raises(GlassnetError, match="ReduceLROnPlateau: mode 'mean' is unknown"):
        lr_scheduler.ReduceLROnPlateau(opt, mode="mean")
    with pytest.raises(GlassnetError, match="ReduceLROnPlateau: threshold mode 'pct' is unknown"):
        lr_scheduler.ReduceLROnPlateau(opt, threshold_mode="pct")
    with pytest.raises(GlassnetError, match="ReduceLROnPlateau: expected 1 min_lrs.*got 2"):
        lr_scheduler.ReduceLROnPlateau(opt, min_lr=[0.1, 0.2])
    with pytest.raises(KeyError, match=r"ExponentialLR: param 'initial_lr' is not specified in param_groups\[0\]"):
        lr_scheduler.ExponentialLR(opt, gamma=0.9, last_epoch=3)
