"""Optimizers step for step against torch.optim; state_dict layout, round trip and resume; bad input."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import glassnet as gn
from glassnet import optim
from glassnet.autograd import GlassnetError

SHAPES = [(5, 4), (4,), (2, 3, 3), ()]
STEPS = 50

CASES = [
    ("SGD", {"lr": 0.1}),
    ("SGD", {"lr": 0.05, "momentum": 0.9}),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "dampening": 0.5}),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True}),
    ("SGD", {"lr": 0.05, "momentum": 0.8, "nesterov": True, "weight_decay": 0.01}),
    ("SGD", {"lr": 0.1, "weight_decay": 0.1}),
    ("SGD", {"lr": 0.05, "momentum": 0.5, "weight_decay": 0.1, "maximize": True}),
    ("RMSprop", {}),
    ("RMSprop", {"lr": 0.005, "momentum": 0.9}),
    ("RMSprop", {"centered": True}),
    ("RMSprop", {"centered": True, "momentum": 0.5, "weight_decay": 0.1, "alpha": 0.9}),
    ("RMSprop", {"alpha": 0.3, "centered": True, "eps": 1e-4}),  # lerp weight 0.7: torch's other formula
    ("RMSprop", {"maximize": True}),
    ("Adam", {}),
    ("Adam", {"lr": 0.01, "betas": (0.8, 0.99)}),
    ("Adam", {"lr": 0.01, "amsgrad": True}),
    ("Adam", {"lr": 0.01, "weight_decay": 0.1}),
    ("Adam", {"lr": 0.01, "weight_decay": 0.1, "amsgrad": True, "maximize": True}),
    ("Adam", {"lr": 0.01, "betas": (0.3, 0.9), "eps": 1e-3}),  # lerp weight 0.7
    ("AdamW", {}),
    ("AdamW", {"lr": 0.01, "weight_decay": 0.1, "amsgrad": True}),
    ("AdamW", {"lr": 0.01, "maximize": True}),
]


def _arrays(rng, dtype=np.float32):
    return [rng.standard_normal(shape).astype(dtype) for shape in SHAPES]


def _grads(seed, steps=STEPS, dtype=np.float32):
    """Random gradients per step; parameter 1 has no gradient every 7th step (it must be skipped)."""
    rng = np.random.default_rng(seed)
    out = []
    for step in range(steps):
        grads = [rng.standard_normal(shape).astype(dtype) for shape in SHAPES]
        if step % 7 == 3:
            grads[1] = None
        out.append(grads)
    return out


def _groups(params, two_groups, options):
    if not two_groups:
        return list(params)
    # the second group has its own lr and weight decay
    second = {"params": list(params[2:]), "lr": options.get("lr", 0.01) * 0.3, "weight_decay": 0.05}
    return [{"params": list(params[:2])}, second]


def _run_pair(torch, name, options, *, two_groups=False, dtype=np.float32, steps=STEPS):
    rng = np.random.default_rng(1)
    init = _arrays(rng, dtype)
    gn_params = [gn.tensor(a.copy(), requires_grad=True) for a in init]
    torch_params = [torch.tensor(a.copy(), requires_grad=True) for a in init]
    gn_opt = getattr(optim, name)(_groups(gn_params, two_groups, options), **options)
    torch_opt = getattr(torch.optim, name)(_groups(torch_params, two_groups, options), **options)
    for step, grads in enumerate(_grads(2, steps, dtype)):
        versions = [p._version for p in gn_params]
        for p, q, g in zip(gn_params, torch_params, grads):
            p.grad = None if g is None else gn.tensor(g.copy())
            q.grad = None if g is None else torch.tensor(g.copy())
        gn_opt.step()
        torch_opt.step()
        for i, (p, q, g) in enumerate(zip(gn_params, torch_params, grads)):
            np.testing.assert_allclose(
                p.data, q.detach().numpy(), rtol=2e-5, atol=2e-6, err_msg=f"{name} {options} step {step} param {i}"
            )
            assert p.data.dtype == dtype
            if g is None:
                assert p._version == versions[i], "a parameter without grad must be left alone"
            else:
                assert p._version == versions[i] + 1
                np.testing.assert_array_equal(p.grad.data, g)  # the gradient itself is never modified
    return gn_opt, torch_opt


@pytest.mark.parametrize("name,options", CASES, ids=[f"{n}-{o}" for n, o in CASES])
def test_matches_torch_step_for_step(torch, name, options):
    _run_pair(torch, name, options)


@pytest.mark.parametrize("name,options", [CASES[1], CASES[10], CASES[16], CASES[20]], ids=lambda x: str(x))
def test_two_param_groups_match_torch(torch, name, options):
    gn_opt, torch_opt = _run_pair(torch, name, options, two_groups=True)
    assert [g["lr"] for g in gn_opt.param_groups] == [g["lr"] for g in torch_opt.param_groups]


@pytest.mark.parametrize("name,options", [CASES[4], CASES[10], CASES[17]], ids=lambda x: str(x))
def test_float64_parameters_match_torch(torch, name, options):
    _run_pair(torch, name, options, dtype=np.float64, steps=20)


@pytest.mark.parametrize("name,options", [CASES[4], CASES[10], CASES[17], CASES[20]], ids=lambda x: str(x))
def test_state_dict_has_torch_layout(torch, name, options):
    gn_opt, torch_opt = _run_pair(torch, name, options, two_groups=True, steps=5)
    ours, theirs = gn_opt.state_dict(), torch_opt.state_dict()
    assert sorted(ours["state"]) == sorted(theirs["state"])
    for index, values in theirs["state"].items():
        assert sorted(ours["state"][index]) == sorted(values)
        for key, value in values.items():
            mine = ours["state"][index][key]
            if key == "step":
                assert isinstance(mine, float) and mine == float(value)
            else:
                assert isinstance(mine, np.ndarray)
                np.testing.assert_allclose(mine, value.numpy(), rtol=2e-5, atol=2e-6)
    for group, torch_group in zip(ours["param_groups"], theirs["param_groups"]):
        assert group["params"] == torch_group["params"]
        for key, value in group.items():
            assert torch_group[key] == value, key
    for values in ours["state"].values():  # only NumPy arrays and Python numbers: writable to safetensors
        assert all(isinstance(v, (np.ndarray, float, int)) for v in values.values())


def _fresh(name, options, arrays):
    params = [gn.tensor(a.copy(), requires_grad=True) for a in arrays]
    groups = [{"params": params[:2]}, {"params": params[2:], "lr": 0.003}]
    return params, getattr(optim, name)(groups, **options)


def _train(params, opt, grads):
    for step_grads in grads:
        for p, g in zip(params, step_grads):
            p.grad = None if g is None else gn.tensor(g)
        opt.step()


@pytest.mark.parametrize("name,options", [CASES[4], CASES[10], CASES[17], CASES[20]], ids=lambda x: str(x))
def test_state_dict_round_trip_resumes_exactly(name, options, tmp_path):
    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    init = _arrays(np.random.default_rng(3))
    grads = _grads(4, steps=30)
    params, opt = _fresh(name, options, init)
    _train(params, opt, grads[:12])
    saved = opt.state_dict()
    snapshot = [p.data.copy() for p in params]
    _train(params, opt, grads[12:])  # the uninterrupted run

    # write the state through safetensors (arrays in the file, numbers in its metadata) and read it back
    arrays = {f"{i}.{k}": v for i, s in saved["state"].items() for k, v in s.items() if isinstance(v, np.ndarray)}
    numbers = {
        f"{i}.{k}": repr(v) for i, s in saved["state"].items() for k, v in s.items() if not isinstance(v, np.ndarray)
    }
    safetensors_numpy.save_file(arrays, tmp_path / "opt.safetensors", metadata=numbers)
    loaded = safetensors_numpy.load_file(tmp_path / "opt.safetensors")
    state = {}
    for key, value in [*loaded.items(), *((k, float(v)) for k, v in numbers.items())]:
        index, name_ = key.split(".", 1)
        state.setdefault(int(index), {})[name_] = value

    resumed, opt2 = _fresh(name, options, snapshot)
    opt2.load_state_dict({"state": state, "param_groups": saved["param_groups"]})
    _train(resumed, opt2, grads[12:])
    for p, q in zip(params, resumed):
        np.testing.assert_array_equal(p.data, q.data)


def test_state_dict_is_a_snapshot():
    params, opt = _fresh("Adam", {}, _arrays(np.random.default_rng(0)))
    _train(params, opt, _grads(1, steps=2))
    saved = opt.state_dict()
    before = saved["state"][0]["exp_avg"].copy()
    _train(params, opt, _grads(2, steps=2))
    np.testing.assert_array_equal(saved["state"][0]["exp_avg"], before)
    assert saved["state"][0]["step"] == 2.0


def test_loads_a_torch_state_dict_and_continues_like_torch(torch):
    init = _arrays(np.random.default_rng(5))
    grads = _grads(6, steps=20)
    torch_params = [torch.tensor(a.copy(), requires_grad=True) for a in init]
    torch_opt = torch.optim.Adam(torch_params, lr=0.01, amsgrad=True)
    for step_grads in grads[:10]:
        for q, g in zip(torch_params, step_grads):
            q.grad = None if g is None else torch.tensor(g)
        torch_opt.step()
    sd = torch_opt.state_dict()
    converted = {
        "state": {i: {k: v.numpy().copy() for k, v in s.items()} for i, s in sd["state"].items()},
        "param_groups": [dict(g) for g in sd["param_groups"]],
    }
    gn_params = [gn.tensor(q.detach().numpy().copy(), requires_grad=True) for q in torch_params]
    gn_opt = optim.Adam(gn_params, lr=0.5)
    gn_opt.load_state_dict(converted)
    assert gn_opt.param_groups[0]["lr"] == 0.01 and gn_opt.param_groups[0]["amsgrad"] is True
    for step_grads in grads[10:]:
        for p, q, g in zip(gn_params, torch_params, step_grads):
            p.grad = None if g is None else gn.tensor(g)
            q.grad = None if g is None else torch.tensor(g)
        gn_opt.step()
        torch_opt.step()
    for p, q in zip(gn_params, torch_params):
        np.testing.assert_allclose(p.data, q.detach().numpy(), rtol=2e-5, atol=2e-6)


def test_load_state_dict_validates():
    params, opt = _fresh("SGD", {"momentum": 0.9}, _arrays(np.random.default_rng(0)))
    _train(params, opt, _grads(1, steps=2))
    saved = opt.state_dict()
    _, other = _fresh("SGD", {"momentum": 0.9}, _arrays(np.random.default_rng(0)))

    one_group = {"state": {}, "param_groups": saved["param_groups"][:1]}
    with pytest.raises(GlassnetError, match=r"SGD.*1 parameter groups.*has 2"):
        other.load_state_dict(one_group)
    short = {"state": {}, "param_groups": [saved["param_groups"][0], {**saved["param_groups"][1], "params": [2]}]}
    with pytest.raises(GlassnetError, match=r"SGD.*group 1 has 1 parameters.*but 2"):
        other.load_state_dict(short)
    bad_shape = {"state": {0: {"momentum_buffer": np.zeros((4, 5), np.float32)}}, "param_groups": saved["param_groups"]}
    with pytest.raises(GlassnetError, match=r"SGD.*momentum_buffer.*\(4, 5\).*\(5, 4\)"):
        other.load_state_dict(bad_shape)
    unknown = {"state": {9: {"momentum_buffer": np.zeros(4, np.float32)}}, "param_groups": saved["param_groups"]}
    with pytest.raises(GlassnetError, match=r"SGD.*index 9"):
        other.load_state_dict(unknown)
    with pytest.raises(GlassnetError, match=r"SGD.*'state' and 'param_groups'"):
        other.load_state_dict({"param_groups": []})
    other.load_state_dict(saved)  # the failed loads changed nothing, and a good one works
    assert other.state_dict()["state"].keys() == saved["state"].keys()


def test_zero_grad_and_add_param_group():
    w = gn.tensor([1.0, 2.0], requires_grad=True)
    opt = optim.SGD([w], lr=0.5)
    (w * w).sum().backward()
    opt.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(w.grad.data, [0.0, 0.0])
    opt.zero_grad()
    assert w.grad is None

    b = gn.tensor([1.0], requires_grad=True)
    opt.add_param_group({"params": [b], "lr": 0.25})
    assert opt.param_groups[1]["momentum"] == 0 and opt.param_groups[1]["lr"] == 0.25
    ((w * w).sum() + (b * b).sum()).backward()
    opt.step()
    np.testing.assert_allclose(w.data, [0.0, 0.0])
    np.testing.assert_allclose(b.data, [0.5])


def test_step_with_closure_returns_loss():
    w = gn.tensor([3.0], requires_grad=True)
    opt = optim.SGD([w], lr=0.1)

    def closure():
        opt.zero_grad()
        loss = (w * w).sum()
        loss.backward()
        return loss

    with gn.no_grad():  # the closure still records its graph, as in PyTorch
        loss = opt.step(closure)
    assert float(loss) == 9.0
    np.testing.assert_allclose(w.data, [2.4])


def test_update_allocates_no_new_state_arrays():
    params, opt = _fresh("Adam", {"weight_decay": 0.1, "amsgrad": True}, _arrays(np.random.default_rng(0)))
    _train(params, opt, _grads(1, steps=1))
    ids = {id(v) for s in opt.state.values() for v in s.values() if isinstance(v, np.ndarray)}
    scratch = {id(v) for s in opt._scratch.values() for v in s.values()}
    data = [id(p.data) for p in params]
    _train(params, opt, _grads(2, steps=3))
    assert ids == {id(v) for s in opt.state.values() for v in s.values() if isinstance(v, np.ndarray)}
    assert scratch == {id(v) for s in opt._scratch.values() for v in s.values()}
    assert data == [id(p.data) for p in params]  # updated in place


def test_repr_lists_groups():
    opt = optim.SGD([gn.zeros(2, requires_grad=True)], lr=0.1, momentum=0.9)
    text = repr(opt)
    assert text.startswith("SGD (") and "Parameter Group 0" in text and "momentum: 0.9" in text


BAD_OPTIONS = [
    ("SGD", {"lr": -0.1}, r"SGD: Invalid learning rate: -0.1"),
    ("SGD", {"lr": 0.1, "momentum": -0.5}, r"SGD: Invalid momentum value: -0.5"),
    ("SGD", {"lr": 0.1, "weight_decay": -1e-4}, r"SGD: Invalid weight_decay value: -0.0001"),
    ("SGD", {"lr": 0.1, "nesterov": True}, r"SGD: Nesterov momentum requires.*momentum=0"),
    ("SGD", {"lr": 0.1, "nesterov": True, "momentum": 0.9, "dampening": 0.1}, r"SGD: Nesterov.*dampening=0.1"),
    ("RMSprop", {"lr": -1.0}, r"RMSprop: Invalid learning rate: -1.0"),
    ("RMSprop", {"eps": -1e-8}, r"RMSprop: Invalid epsilon value: -1e-08"),
    ("RMSprop", {"momentum": -0.9}, r"RMSprop: Invalid momentum value: -0.9"),
    ("RMSprop", {"alpha": -0.99}, r"RMSprop: Invalid alpha value: -0.99"),
    ("RMSprop", {"weight_decay": -0.1}, r"RMSprop: Invalid weight_decay value: -0.1"),
    ("Adam", {"lr": -0.001}, r"Adam: Invalid learning rate: -0.001"),
    ("Adam", {"betas": (1.0, 0.999)}, r"Adam: Invalid beta parameter at index 0: 1.0"),
    ("Adam", {"betas": (0.9, -0.1)}, r"Adam: Invalid beta parameter at index 1: -0.1"),
    ("Adam", {"betas": (0.9,)}, r"Adam: betas must be a pair"),
    ("Adam", {"eps": -1.0}, r"Adam: Invalid epsilon value: -1.0"),
    ("Adam", {"weight_decay": -0.01}, r"Adam: Invalid weight_decay value: -0.01"),
    ("AdamW", {"weight_decay": -0.01}, r"AdamW: Invalid weight_decay value: -0.01"),
    ("AdamW", {"betas": (0.9, 1.5)}, r"AdamW: Invalid beta parameter at index 1: 1.5"),
]


@pytest.mark.parametrize("name,options,message", BAD_OPTIONS, ids=[f"{n}-{o}" for n, o, _ in BAD_OPTIONS])
def test_bad_options_raise(name, options, message):
    w = gn.zeros(2, requires_grad=True)
    with pytest.raises(GlassnetError, match=message):
        getattr(optim, name)([w], **options)
    # the same check applies to a group's own options
    with pytest.raises(GlassnetError, match=message.split(":")[0]):
        getattr(optim, name)([{"params": [w], **options}], **({"lr": 0.1} if name == "SGD" else {}))


@pytest.mark.parametrize("name", ["SGD", "RMSprop", "Adam", "AdamW"])
def test_bad_params_raise(name):
    cls = getattr(optim, name)
    w = gn.zeros(2, 3, requires_grad=True)
    b = gn.zeros(3, requires_grad=True)
    with pytest.raises(GlassnetError, match=f"{name}: optimizer got an empty parameter list"):
        cls([])
    with pytest.raises(TypeError, match=rf"{name}: params should be an iterable.*single Tensor of shape \(2, 3\)"):
        cls(w)
    with pytest.raises(TypeError, match=f"{name}: can only optimize Tensors, but params\\[1\\].*is a int"):
        cls([w, 3])
    with pytest.raises(TypeError, match=f"{name}: can only optimize Tensors.*ndarray"):
        cls([np.zeros(3)])
    with pytest.raises(GlassnetError, match=rf"{name}: params\[0\].*\(4,\)\) does not require grad"):
        cls([gn.zeros(4)])
    with pytest.raises(GlassnetError, match=rf"{name}: can't optimize a non-leaf Tensor.*\(2, 3\)"):
        cls([w * 2])
    with pytest.raises(GlassnetError, match=rf"{name}: param group 0 contains the same parameter twice.*\(2, 3\)"):
        cls([w, b, w])
    with pytest.raises(GlassnetError, match=rf"{name}: some parameters appear in more than one.*groups 0 and 1"):
        cls([{"params": [w, b]}, {"params": [b]}])
    with pytest.raises(TypeError, match=f"{name}: params must be an ordered iterable"):
        cls({w, b})
    with pytest.warns(UserWarning, match=rf"{name}: param group 0 has options \['learning_rate'\] that {name}"):
        cls([{"params": [w], "learning_rate": 0.1}])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cls([{"params": [w], "name": "encoder"}])  # a tag, as PyTorch users give groups
    opt = cls([w])
    with pytest.raises(GlassnetError, match=f"{name}: some parameters appear in more than one"):
        opt.add_param_group({"params": [w]})
    with pytest.raises(GlassnetError, match=f"{name}: param group 1 has an empty parameter list"):
        opt.add_param_group({"params": []})


def test_gradient_of_wrong_shape_is_reported():
    w = gn.zeros(2, 3, requires_grad=True)
    opt = optim.Adam([w])
    w.grad = gn.zeros(3, 2)
    with pytest.raises(GlassnetError, match=r"Adam: parameter of shape \(2, 3\) has a gradient of shape \(3, 2\)"):
        opt.step()


def test_step_hooks_fire_in_order_and_detach():
    p = gn.tensor([1.0, 2.0], requires_grad=True)
    opt = optim.SGD([p], lr=0.1)
    calls = []
    pre = opt.register_step_pre_hook(lambda o, args, kwargs: calls.append(("pre", p.data.copy())))
    post = opt.register_step_post_hook(lambda o, args, kwargs: calls.append(("post", p.data.copy())))
    p.grad = gn.tensor([1.0, 1.0])
    opt.step()
    assert [c[0] for c in calls] == ["pre", "post"]
    np.testing.assert_allclose(calls[0][1], [1.0, 2.0])
    np.testing.assert_allclose(calls[1][1], [0.9, 1.9])
    pre.remove()
    post.remove()
    opt.step()
    assert len(calls) == 2
