"""Test helpers: float64 central differences, and OpSpec, the table that enrolls an op in the generic tests.

An op is enrolled by one ``OpSpec`` line in its test file (the idea of tinygrad's ``helper_test_op`` and
Chainer's op specs). Each spec then runs through three generic checks defined here:

* ``check_finite_differences``: glassnet's backward against float64 central differences;
* ``check_against_torch``: values and gradients against PyTorch, in float64 and float32 (dtype kept);
* ``check_backward_linear``: the hypothesis property: every gradient has its input's shape, and
  backward is linear in the incoming gradient.

Because glassnet mirrors PyTorch's API, one function usually serves both libraries:
``OpSpec("maximum", lambda lib, a, b: lib.maximum(a, b), [(3, 4), (4,)])`` is called with
``lib=glassnet`` and ``lib=torch``. ``torch_op`` overrides the PyTorch side where the names differ.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pytest

import glassnet as gn


def require_in_ci(package: str) -> None:
    """Fail (instead of skipping) when CI=true and ``package``, a test dependency, is missing."""
    if os.environ.get("CI", "").lower() == "true":
        raise RuntimeError(f"CI=true but {package} is not installed: the tests that need it must run in CI")


def skip_without_compiled() -> None:
    """Skip the test when glassnet's C kernels were not built; fail in CI, which builds them."""
    if not gn.compiled.is_available():
        require_in_ci("glassnet._ckernels (the C kernels)")
        pytest.skip("glassnet's C kernels were not built (no C compiler at install time)")


def numerical_grad(fn, arrays, index, eps=1e-6):
    """Central-difference gradient of sum(fn(*arrays) * weights) wrt arrays[index] (float64)."""
    arrays = [np.array(a, dtype=np.float64) for a in arrays]
    rng = np.random.default_rng(123)
    out = np.asarray(fn(*arrays))
    weights = rng.standard_normal(out.shape)
    x = arrays[index]
    grad = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        old = x[i]
        x[i] = old + eps
        plus = np.sum(np.asarray(fn(*arrays)) * weights)
        x[i] = old - eps
        minus = np.sum(np.asarray(fn(*arrays)) * weights)
        x[i] = old
        grad[i] = (plus - minus) / (2 * eps)
    return grad, weights


def check_grad(fn, *arrays, atol=1e-6, rtol=1e-5):
    """Compare glassnet's backward of ``fn`` (on float64 Tensors) with central differences.

    ``fn`` takes Tensors and returns a Tensor; it is also called on Tensors for the numeric side.
    """

    def numeric_fn(*arrs):
        with gn.no_grad():
            return fn(*[gn.tensor(a) for a in arrs]).data

    for i in range(len(arrays)):
        expected, weights = numerical_grad(numeric_fn, arrays, i)
        tensors = [gn.tensor(np.array(a, dtype=np.float64), requires_grad=True) for a in arrays]
        out = fn(*tensors)
        out.backward(gn.tensor(weights))
        np.testing.assert_allclose(tensors[i].grad.data, expected, atol=atol, rtol=rtol, err_msg=f"input {i}")


# Where each input's values are drawn from: kinks (abs, relu, clamp) and poles (log, div) are kept
# further than the finite-difference step away.
DOMAINS = {
    "real": lambda rng, shape: rng.standard_normal(shape),
    "positive": lambda rng, shape: rng.uniform(0.5, 2.0, shape),
    "away_from_zero": lambda rng, shape: rng.choice([-1.0, 1.0], shape) * rng.uniform(0.3, 2.0, shape),
    "unit": lambda rng, shape: rng.uniform(-0.9, 0.9, shape),
}


@dataclass(frozen=True)
class OpSpec:
    """One op under test.

    Attributes:
        name: the test id.
        op: ``op(lib, *tensors) -> tensor``, called with ``lib=glassnet`` and, unless ``torch_op`` is
            given, with ``lib=torch``. Non-differentiable arguments (dims, indices, masks) are
            written into the function; every tensor argument is a differentiable float input.
        shapes: the shape of each tensor input (broadcasting shapes enroll broadcasting).
        domain: one DOMAINS key for all inputs, or one per input.
        torch_op: ``torch_op(torch, *tensors)`` where PyTorch spells the op differently.
        atol, rtol: tolerances of the float64 comparisons.
    """

    name: str
    op: Callable
    shapes: Sequence[tuple[int, ...]]
    domain: str | tuple[str, ...] = "real"
    torch_op: Callable | None = None
    atol: float = 1e-6
    rtol: float = 1e-5

    def __str__(self) -> str:
        return self.name

    def inputs(self, seed: int = 0, dtype=np.float64) -> list[np.ndarray]:
        """Random inputs of the spec's shapes and domains."""
        rng = np.random.default_rng(seed)
        domains = (self.domain,) * len(self.shapes) if isinstance(self.domain, str) else self.domain
        return [DOMAINS[d](rng, shape).astype(dtype) for d, shape in zip(domains, self.shapes)]

    def run_glassnet(self, *tensors):
        return self.op(gn, *tensors)

    def run_torch(self, torch, *tensors):
        return self.torch_op(torch, *tensors) if self.torch_op is not None else self.op(torch, *tensors)


def glassnet_grads(spec: OpSpec, arrays, grad_out) -> tuple:
    """Forward ``spec`` on fresh leaves made from ``arrays``, backward ``grad_out``: (output, grads)."""
    leaves = [gn.tensor(a, requires_grad=True) for a in arrays]
    out = spec.run_glassnet(*leaves)
    out.backward(gn.tensor(grad_out))
    return out, [leaf.grad.data for leaf in leaves]


def check_finite_differences(spec: OpSpec) -> None:
    """Backward of ``spec`` in float64 equals central differences of its forward."""
    check_grad(spec.run_glassnet, *spec.inputs(), atol=spec.atol, rtol=spec.rtol)


def check_against_torch(spec: OpSpec, torch, dtype) -> None:
    """Values and gradients equal PyTorch's; float32 inputs give float32 outputs and gradients."""
    arrays = spec.inputs(seed=1, dtype=dtype)
    float32 = dtype == np.float32
    atol, rtol = (1e-5, 1e-4) if float32 else (spec.atol, spec.rtol)

    leaves = [gn.tensor(a, requires_grad=True) for a in arrays]
    seen_dtypes = []
    for leaf in leaves:  # the raw gradient reaching each leaf, before accumulation could cast it
        leaf.register_hook(lambda grad: seen_dtypes.append(grad.dtype))
    out = spec.run_glassnet(*leaves)
    grad_out = np.random.default_rng(2).standard_normal(out.shape).astype(dtype)
    out.backward(gn.tensor(grad_out))

    torch_leaves = [torch.tensor(a, requires_grad=True) for a in arrays]
    torch_out = spec.run_torch(torch, *torch_leaves)
    torch_out.backward(torch.tensor(grad_out))

    assert out.dtype == dtype, f"{spec}: output dtype {out.dtype}, inputs {np.dtype(dtype)}"
    assert set(seen_dtypes) == {np.dtype(dtype)}, f"{spec}: gradient dtypes {seen_dtypes}"
    np.testing.assert_allclose(out.data, torch_out.detach().numpy(), atol=atol, rtol=rtol, err_msg=f"{spec} value")
    for i, (leaf, torch_leaf) in enumerate(zip(leaves, torch_leaves)):
        np.testing.assert_allclose(
            leaf.grad.data, torch_leaf.grad.numpy(), atol=atol, rtol=rtol, err_msg=f"{spec} grad of input {i}"
        )


def check_backward_linear(spec: OpSpec, seed: int, alpha: float, beta: float) -> None:
    """Each gradient has its input's shape, and grads(alpha g1 + beta g2) = alpha grads(g1) + beta grads(g2)."""
    arrays = spec.inputs(seed)
    with gn.no_grad():
        out_shape = spec.run_glassnet(*[gn.tensor(a) for a in arrays]).shape
    rng = np.random.default_rng(seed + 1)
    g1, g2 = rng.standard_normal(out_shape), rng.standard_normal(out_shape)
    _, grads1 = glassnet_grads(spec, arrays, g1)
    _, grads2 = glassnet_grads(spec, arrays, g2)
    _, grads_mix = glassnet_grads(spec, arrays, alpha * g1 + beta * g2)
    for i, (a, d1, d2, mix) in enumerate(zip(arrays, grads1, grads2, grads_mix)):
        assert mix.shape == a.shape, f"{spec}: gradient of input {i} has shape {mix.shape}, input {a.shape}"
        np.testing.assert_allclose(mix, alpha * d1 + beta * d2, atol=1e-9, rtol=1e-7, err_msg=f"{spec} input {i}")


def enroll(specs: list[OpSpec]) -> tuple:
    """The three generic tests for a table of op specs, for a test module to bind to its globals.

    Usage: ``test_finite_differences, test_matches_torch, test_backward_is_linear = enroll(SPECS)``.
    """
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    @pytest.mark.parametrize("spec", specs, ids=str)
    def test_finite_differences(spec):
        check_finite_differences(spec)

    @pytest.mark.parametrize("dtype", [np.float64, np.float32])
    @pytest.mark.parametrize("spec", specs, ids=str)
    def test_matches_torch(spec, dtype, torch):
        check_against_torch(spec, torch, dtype)

    @pytest.mark.parametrize("spec", specs, ids=str)
    @settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(seed=st.integers(0, 2**31), alpha=st.floats(-2, 2), beta=st.floats(-2, 2))
    def test_backward_is_linear(spec, seed, alpha, beta):
        check_backward_linear(spec, seed, alpha, beta)

    return test_finite_differences, test_matches_torch, test_backward_is_linear
