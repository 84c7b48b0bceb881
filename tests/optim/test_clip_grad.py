"""Gradient clipping and parameter/vector conversion against torch.nn.utils."""

from __future__ import annotations

import math

import numpy as np
import pytest

import glassnet as gn
from glassnet.nn.utils.clip_grad import clip_grad_norm_, clip_grad_value_
from glassnet.nn.utils.convert_parameters import parameters_to_vector, vector_to_parameters

SHAPES = [(6, 5), (5,), (2, 3, 4), ()]


def _pair(torch, scale=1.0, dtype=np.float32, skip=None):
    """The same parameters and gradients in both libraries; parameter ``skip`` has no gradient."""
    rng = np.random.default_rng(7)
    ours, theirs = [], []
    for i, shape in enumerate(SHAPES):
        p = gn.tensor(rng.standard_normal(shape).astype(dtype), requires_grad=True)
        q = torch.tensor(p.data.copy(), requires_grad=True)
        if i != skip:
            g = (rng.standard_normal(shape) * scale).astype(dtype)
            p.grad, q.grad = gn.tensor(g.copy()), torch.tensor(g.copy())
        ours.append(p)
        theirs.append(q)
    return ours, theirs


def _assert_grads_equal(ours, theirs, rtol=1e-6):
    for p, q in zip(ours, theirs):
        if q.grad is None:
            assert p.grad is None
        else:
            np.testing.assert_allclose(p.grad.data, q.grad.numpy(), rtol=rtol, atol=1e-7)


@pytest.mark.parametrize("norm_type", [2.0, 1.0, math.inf, 3.0, "inf"])
@pytest.mark.parametrize("max_norm", [0.5, 1e6], ids=["clipped", "not-clipped"])
def test_clip_grad_norm_matches_torch(torch, norm_type, max_norm):
    ours, theirs = _pair(torch, skip=1)
    before = [None if p.grad is None else p.grad.data.copy() for p in ours]
    total = clip_grad_norm_(ours, max_norm, norm_type=norm_type)
    torch_total = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type=norm_type)
    assert isinstance(total, gn.Tensor) and total.shape == () and total.dtype == np.float32
    np.testing.assert_allclose(total.item(), torch_total.item(), rtol=1e-6)
    _assert_grads_equal(ours, theirs)
    if max_norm < 1:
        assert not np.allclose(ours[0].grad.data, before[0]), "the gradients must have been scaled"


def test_clip_grad_norm_float64_and_single_tensor(torch):
    ours, theirs = _pair(torch, dtype=np.float64)
    total = clip_grad_norm_(ours[0], 0.1)
    torch_total = torch.nn.utils.clip_grad_norm_(theirs[0], 0.1)
    assert total.dtype == np.float64
    np.testing.assert_allclose(total.item(), torch_total.item(), rtol=1e-12)
    np.testing.assert_allclose(ours[0].grad.data, theirs[0].grad.numpy(), rtol=1e-12)


@pytest.mark.parametrize("scale", [1e20, 1e-25], ids=["huge", "tiny"])
def test_clip_grad_norm_does_not_overflow_or_underflow(torch, scale):
    """Squares of 1e20 overflow float32 and squares of 1e-25 underflow: the norm must still be right.

    (PyTorch 2.13 returns inf and 0.0 here, and for inf zeroes every gradient; glassnet deliberately
    returns the true norm, which float32 can represent, and scales by it.)
    """
    ours, _ = _pair(torch, scale=scale)
    grads = [p.grad.data.astype(np.float64) for p in ours]
    expected = math.sqrt(sum(float((g * g).sum()) for g in grads))
    total = clip_grad_norm_(ours, 1.0)
    np.testing.assert_allclose(total.item(), expected, rtol=1e-6)
    coef = min(1.0, 1.0 / (expected + 1e-6))
    for p, g in zip(ours, grads):
        np.testing.assert_allclose(p.grad.data, g * coef, rtol=1e-5, atol=0)


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_error_if_nonfinite(torch, bad):
    ours, theirs = _pair(torch)
    ours[2].grad.data[0, 1, 2] = bad
    theirs[2].grad[0, 1, 2] = bad
    with pytest.raises(RuntimeError, match="clip_grad_norm_: the total norm of order 2.0 .* is (nan|inf)"):
        clip_grad_norm_(ours, 1.0, error_if_nonfinite=True)
    with pytest.raises(RuntimeError):
        torch.nn.utils.clip_grad_norm_(theirs, 1.0, error_if_nonfinite=True)
    # without the flag both scale by the non-finite norm, the same way
    total = clip_grad_norm_(ours, 1.0)
    torch_total = torch.nn.utils.clip_grad_norm_(theirs, 1.0)
    assert str(total.item()) == str(torch_total.item())
    for p, q in zip(ours, theirs):
        np.testing.assert_array_equal(np.isnan(p.grad.data), np.isnan(q.grad.numpy()))


def test_clip_grad_norm_without_grads_returns_zero():
    params = [gn.zeros(3, requires_grad=True)]
    total = clip_grad_norm_(params, 1.0)
    assert total.item() == 0.0 and params[0].grad is None


@pytest.mark.parametrize("clip_value", [0.3, 5.0])
def test_clip_grad_value_matches_torch(torch, clip_value):
    ours, theirs = _pair(torch, skip=0)
    assert clip_grad_value_(ours, clip_value) is None
    torch.nn.utils.clip_grad_value_(theirs, clip_value)
    _assert_grads_equal(ours, theirs, rtol=0)
    assert max(np.abs(p.grad.data).max() for p in ours if p.grad is not None) <= clip_value


def test_clipping_bumps_grad_versions():
    w = gn.tensor([3.0, 4.0], requires_grad=True)
    (w * w).sum().backward()
    version = w.grad._version
    clip_grad_norm_([w], 1.0)
    clip_grad_value_(w, 0.1)
    assert w.grad._version == version + 2


def test_bad_parameters_raise():
    with pytest.raises(TypeError, match="clip_grad_norm_: parameters must be Tensors, but item 1 is a ndarray"):
        clip_grad_norm_([gn.zeros(2), np.zeros(2)], 1.0)
    with pytest.raises(TypeError, match="clip_grad_value_: parameters must be Tensors, but item 0 is a float"):
        clip_grad_value_([1.0], 1.0)


def test_parameters_to_vector_and_back(torch):
    ours, theirs = _pair(torch)
    for p in ours:
        p.grad = None
    vec = parameters_to_vector(ours)
    np.testing.assert_array_equal(vec.data, torch.nn.utils.parameters_to_vector(theirs).detach().numpy())
    (vec * gn.arange(float(vec.shape[0]))).sum().backward()  # differentiable, as in PyTorch
    np.testing.assert_array_equal(ours[0].grad.data.reshape(-1), np.arange(30.0, dtype=np.float32))

    new = gn.tensor(np.random.default_rng(0).standard_normal(vec.shape[0]).astype(np.float32))
    arrays = [p.data for p in ours]
    vector_to_parameters(new, ours)
    torch.nn.utils.vector_to_parameters(torch.tensor(new.data.copy()), theirs)
    for p, q, array in zip(ours, theirs, arrays):
        np.testing.assert_array_equal(p.data, q.detach().numpy())
        assert p.data is array  # copied in place


def test_vector_to_parameters_bad_input():
    params = [gn.zeros(2, 2), gn.zeros(3)]
    with pytest.raises(TypeError, match="vector_to_parameters: expected a glassnet Tensor, but got ndarray"):
        vector_to_parameters(np.zeros(7), params)
    with pytest.raises(ValueError, match=r"vector_to_parameters: vec has shape \(6,\).*7 elements.*\(7,\)"):
        vector_to_parameters(gn.zeros(6), params)
    with pytest.raises(TypeError, match="parameters_to_vector: parameters must be Tensors, but item 0 is a list"):
        parameters_to_vector([[1.0]])
