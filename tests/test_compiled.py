"""The compiled kernels (the C extension glassnet._ckernels) against the NumPy path they replace, and the switch."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import glassnet as gn
from glassnet.ops import conv
from glassnet.ops.activation import ReLU
from glassnet.ops.norm import BatchNorm
from glassnet.ops.pool import MaxPool2d
from tests.helpers import skip_without_compiled


@pytest.fixture
def kernels():
    """The compiled kernels module; skipped where it was not built (and failing in CI, which builds it)."""
    skip_without_compiled()
    with gn.compiled.flags(enabled=True):  # also under GLASSNET_COMPILED=0
        return gn.compiled.kernels()


geometries = st.fixed_dictionaries(
    {
        "N": st.integers(1, 3),
        "C": st.integers(1, 3),
        "H": st.integers(1, 9),
        "W": st.integers(1, 9),
        "kh": st.integers(1, 4),
        "kw": st.integers(1, 4),
        "sh": st.integers(1, 3),
        "sw": st.integers(1, 3),
        "dh": st.integers(1, 2),
        "dw": st.integers(1, 2),
        "top": st.integers(0, 3),
        "bottom": st.integers(0, 3),
        "left": st.integers(0, 3),
        "right": st.integers(0, 3),
    }
)


def _output_size(g):
    Ho = conv.conv_output_size(g["H"], g["kh"], g["sh"], g["top"] + g["bottom"], g["dh"])
    Wo = conv.conv_output_size(g["W"], g["kw"], g["sw"], g["left"] + g["right"], g["dw"])
    return Ho, Wo


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(g=geometries, dtype=st.sampled_from([np.float32, np.float64]))
def test_im2col_and_col2im_equal_the_numpy_path_bit_for_bit(kernels, g, dtype):
    Ho, Wo = _output_size(g)
    if Ho < 1 or Wo < 1:
        return
    rng = np.random.default_rng(0)
    N, C, kh, kw = g["N"], g["C"], g["kh"], g["kw"]
    x = rng.standard_normal((N, C, g["H"], g["W"])).astype(dtype)
    pads = (g["top"], g["bottom"], g["left"], g["right"])
    args = (kh, kw, g["sh"], g["sw"], g["dh"], g["dw"])

    expected = conv._im2col(x, *args, pads, Ho, Wo)
    cols = np.full_like(expected, np.nan)  # every element must be written
    kernels.im2col(x, cols, *args, g["top"], g["left"], Ho, Wo)
    np.testing.assert_array_equal(cols, expected)

    # col2im through the NumPy path's narrow input gradient: weight = identity over the columns.
    K = C * kh * kw
    weight = np.eye(K, dtype=dtype).reshape(K, C, kh, kw)
    grad_cols = rng.standard_normal((K, N * Ho * Wo)).astype(dtype)
    expected = conv._input_grad(grad_cols, weight, x.shape, *args, pads, Ho, Wo, 1, wide=False)
    grad_x = np.full_like(x, np.nan)  # every element must be written
    kernels.col2im(grad_cols, grad_x, *args, g["top"], g["left"], Ho, Wo)
    np.testing.assert_array_equal(grad_x, expected)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("O,N,P", [(6, 16, 784), (3, 1, 1), (5, 3, 7)])
def test_conv_layout_passes_equal_the_numpy_path(kernels, O, N, P, dtype):
    rng = np.random.default_rng(9)
    res = rng.standard_normal((O, N, P)).astype(dtype)
    res[0, 0, :1] = -0.0  # a copy keeps the sign of zero; adding a bias of 0.0 would not
    bias = rng.standard_normal(O).astype(dtype)
    for b, expected in ((bias, res.transpose(1, 0, 2) + bias[:, None]), (np.empty(0, dtype), res.transpose(1, 0, 2))):
        out = np.full((N, O, P), np.nan, dtype=dtype)
        kernels.gemm_to_nchw(res, b, out)
        np.testing.assert_array_equal(out.view(f"u{out.itemsize}"), expected.view(f"u{out.itemsize}"))
    grad_out = rng.standard_normal((N, O, P)).astype(dtype)
    g, sums = np.full((O, N * P), np.nan, dtype=dtype), np.zeros(O)
    kernels.nchw_to_gemm(grad_out, g, sums)
    np.testing.assert_array_equal(g, grad_out.transpose(1, 0, 2).reshape(O, N * P))
    np.testing.assert_allclose(sums, grad_out.astype(np.float64).sum(axis=(0, 2)), rtol=1e-12, atol=1e-12)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(g=geometries, O=st.integers(1, 11), bias=st.booleans(), dtype=st.sampled_from([np.float32, np.float64]))
def test_direct_convolution_equals_the_numpy_path_to_rounding(kernels, g, O, bias, dtype):
    """The direct kernels (stride 1) against the columns and GEMMs of the NumPy path; the bias sums bit for bit."""
    g = dict(g, sh=1, sw=1)
    Ho, Wo = _output_size(g)
    if Ho < 1 or Wo < 1:
        return
    rng = np.random.default_rng(1)
    N, C, kh, kw = g["N"], g["C"], g["kh"], g["kw"]
    pads = (g["top"], g["bottom"], g["left"], g["right"])
    x = rng.standard_normal((N, C, g["H"], g["W"])).astype(dtype)
    w = rng.standard_normal((O, C, kh, kw)).astype(dtype)
    b = rng.standard_normal(O).astype(dtype) if bias else np.empty(0, dtype)
    args = (kh, kw, g["dh"], g["dw"])
    cols = conv._im2col(x, kh, kw, 1, 1, g["dh"], g["dw"], pads, Ho, Wo)  # (K, N * Ho * Wo)
    expected = (w.reshape(O, -1) @ cols).reshape(O, N, Ho, Wo).transpose(1, 0, 2, 3) + (b[:, None, None] if bias else 0)
    out = np.full((N, O, Ho, Wo), np.nan, dtype=dtype)  # every element must be written
    kernels.conv_direct(x, w, b, out, *args, g["top"], g["left"])
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(out, expected, **tol)

    grad_out = rng.standard_normal((N, O, Ho, Wo)).astype(dtype)
    grad_w, sums = np.full(w.shape, np.nan, dtype=dtype), np.zeros(O)
    kernels.conv_direct_grad(x, grad_out, grad_w, sums, *args, g["top"], g["left"])
    g2, expected_sums = np.empty((O, N * Ho * Wo), dtype=dtype), np.zeros(O)
    kernels.nchw_to_gemm(grad_out.reshape(N, O, -1), g2, expected_sums)
    np.testing.assert_array_equal(sums, expected_sums)
    np.testing.assert_allclose(grad_w, (g2 @ cols.T).reshape(w.shape), **tol)
    only_sums = np.zeros(O)  # no weight gradient wanted: the sums alone
    kernels.conv_direct_grad(x, grad_out, np.empty(0, dtype), only_sums, *args, g["top"], g["left"])
    np.testing.assert_array_equal(only_sums, expected_sums)


def test_direct_convolution_gradient_stays_exact_with_infinities(kernels):
    """An infinity in a column no output reads for some taps: those taps' gradients stay finite, as in PyTorch."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 1, 6, 6))
    x[:, :, :, -1] = np.inf  # no padding: only the kernel's last column reads the image's last one
    w = rng.standard_normal((3, 1, 3, 3))
    grads = []
    for enabled in (True, False):
        gx, gw = gn.tensor(x), gn.tensor(w, requires_grad=True)
        with gn.compiled.flags(enabled=enabled), np.errstate(invalid="ignore"):
            out = conv.Conv2d.apply(gx, gw)
            assert out._ctx.direct == enabled
            out.backward(gn.ones(*out.shape))
        grads.append(gw.grad.numpy())
    assert np.isfinite(grads[0][:, :, :, :2]).all() and np.isinf(grads[0][:, :, :, 2]).all()
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(3, 2, 8, 8), (2, 3, 7, 9), (1, 1, 2, 2), (2, 2, 5, 1 + 2)])
def test_max_pool2x2_equals_the_numpy_path_bit_for_bit(kernels, shape, dtype):
    rng = np.random.default_rng(4)
    x = rng.standard_normal(shape).astype(dtype)
    x[:, :, ::3, ::2] = 0.25  # ties inside windows: the first maximum takes the gradient
    x[0, 0, 0, 1] = np.nan  # a NaN wins its window, wherever it stands in it
    x[-1, -1, -1, 0] = -np.inf
    x[-1, 0, :2, :2] = -np.inf  # a window of -inf only
    grad_out = rng.standard_normal((shape[0], shape[1], shape[2] // 2, shape[3] // 2)).astype(dtype)
    results = []
    for enabled in (False, True):
        with gn.compiled.flags(enabled=enabled):
            op = MaxPool2d()
            out = op.forward(x, (2, 2), (2, 2))
            results.append((out, op.backward(grad_out)))
    (out_np, grad_np), (out_c, grad_c) = results
    np.testing.assert_array_equal(out_c, out_np)
    np.testing.assert_array_equal(grad_c, grad_np)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,order", [((64, 16, 300), "C"), ((128, 256), "F"), ((5, 7), "C"), ((300,), "C")])
def test_relu_equals_the_numpy_path_bit_for_bit(kernels, dtype, threads, shape, order):
    # A CNN's large activations (cut over the pool), an MLP's column-major ones, small ones.
    rng = np.random.default_rng(8)
    x = rng.standard_normal(shape).astype(dtype)
    special = [np.nan, np.inf, -np.inf, 0.0, -0.0, np.finfo(dtype).tiny / 4, -np.finfo(dtype).tiny / 4]
    x.reshape(-1)[: len(special) * 5 : 5] = special  # -0.0 gives +0.0, NaN stays NaN (as np.maximum)
    grad_out = rng.standard_normal(x.shape).astype(dtype)
    grad_out.reshape(-1)[:9] = [np.inf, -np.inf, np.nan] * 3  # inf * False is NaN, as NumPy's product
    x, grad_out = np.asarray(x, order=order), np.asarray(grad_out, order=order)
    with gn.compiled.flags(enabled=True):
        assert gn.compiled.elementwise_kernels(x) is not None  # the test runs the compiled kernels
    gn.set_num_threads(threads)
    results = []
    for enabled in (False, True):
        with gn.compiled.flags(enabled=enabled), np.errstate(invalid="ignore"):
            op = ReLU()
            out = op.forward(x)
            results.append((out, op.backward(grad_out)))
    for a, b in zip(*results):
        assert a.dtype == b.dtype and a.flags.f_contiguous == b.flags.f_contiguous == (order == "F" or x.ndim == 1)
        np.testing.assert_array_equal(b.view(f"u{b.itemsize}"), a.view(f"u{a.itemsize}"))  # the same bits


def test_relu_mixed_layouts_take_the_numpy_path(kernels):
    x = np.arange(-6.0, 6.0, dtype=np.float32).reshape(3, 4)
    with gn.compiled.flags(enabled=True):
        assert gn.compiled.elementwise_kernels(x, np.asfortranarray(x)) is None
        assert gn.compiled.elementwise_kernels(x[:, ::2]) is None
        assert gn.compiled.elementwise_kernels(x, x.astype(np.float64)) is None
        op = ReLU()
        out = op.forward(x)
        grad = op.backward(np.asfortranarray(np.ones_like(x)))  # a gradient in the other layout
    np.testing.assert_array_equal(grad, (x > 0).astype(np.float32))
    np.testing.assert_array_equal(out, np.maximum(x, 0))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "name,options",
    [
        ("SGD", {}),
        ("SGD", {"weight_decay": 1e-2, "maximize": True}),
        ("SGD", {"momentum": 0.9}),
        ("SGD", {"momentum": 0.9, "nesterov": True}),
        ("SGD", {"momentum": 0.5, "dampening": 0.3}),
        ("SGD", {"momentum": 0.9, "weight_decay": 1e-2, "maximize": True}),
        ("Adam", {}),
        ("Adam", {"betas": (0.3, 0.9), "amsgrad": True, "weight_decay": 1e-2}),  # lerp's other formula
        ("Adam", {"maximize": True, "eps": 1e-3}),
        ("AdamW", {}),
        ("AdamW", {"amsgrad": True, "weight_decay": 0.1}),
        ("RMSprop", {}),
        ("RMSprop", {"centered": True, "momentum": 0.9}),
        ("RMSprop", {"alpha": 0.3, "centered": True, "weight_decay": 1e-2, "maximize": True}),
        ("RMSprop", {"momentum": 0.5}),
        # options given as NumPy scalars, as a config file read with NumPy may give them
        ("SGD", {"momentum": np.float64(0.9), "nesterov": np.True_}),
        ("Adam", {"betas": (np.float32(0.8), 0.99), "amsgrad": np.True_}),
        ("RMSprop", {"centered": np.True_, "momentum": np.float64(0.5)}),
    ],
)
def test_optimizer_steps_equal_the_numpy_path_bit_for_bit(kernels, dtype, name, options):
    # The fused C steps (SGD, Adam / AdamW, RMSprop) against the update functions' NumPy operations.
    rng = np.random.default_rng(12)
    start = [rng.standard_normal(shape).astype(dtype) for shape in ((16, 33), (33,), (1,))]
    grads = [[rng.standard_normal(p.shape).astype(dtype) for p in start] for _ in range(4)]
    grads[2][0][0, :4] = [np.nan, np.inf, -0.0, np.finfo(dtype).tiny / 4]  # propagate as in NumPy
    results = []
    for enabled in (False, True):
        params = [gn.tensor(p.copy(), requires_grad=True) for p in start]
        opt = getattr(gn.optim, name)(params, lr=0.05, **options)
        with gn.compiled.flags(enabled=enabled), np.errstate(invalid="ignore", over="ignore"):
            for step_grads in grads:  # SGD's first step makes the buffer, the next ones run the kernel
                for p, g in zip(params, step_grads):
                    p.grad = gn.tensor(g)
                opt.step()
        state = [v for p in params for v in opt.state[p].values() if isinstance(v, np.ndarray)]
        results.append([p.numpy() for p in params] + state)
    assert len(results[0]) == len(results[1])
    for a, b in zip(*results):
        np.testing.assert_array_equal(b.view(f"u{b.itemsize}"), a.view(f"u{a.itemsize}"))


def test_optimizer_steps_on_fortran_ordered_parameters_take_the_numpy_path(kernels):
    w = gn.tensor(np.zeros((3, 4), dtype=np.float32), requires_grad=True)
    w.data = np.asfortranarray(np.arange(12.0, dtype=np.float32).reshape(3, 4))  # as a user may set it
    w.grad = gn.tensor(np.ones((3, 4), dtype=np.float32))
    with gn.compiled.flags(enabled=True):
        assert gn.optim._util.step_kernels(w.data, w.grad.data) is None
        gn.optim.Adam([w], lr=0.5).step()
    np.testing.assert_allclose(w.numpy(), np.arange(12.0).reshape(3, 4) - 0.5, rtol=1e-6)


def _batch_norm(x_data, grad_data, training, enabled):
    """BatchNorm forward and backward on one path: output, the three gradients and the running statistics."""
    C = x_data.shape[1]
    rng = np.random.default_rng(5)
    weight, bias = (gn.tensor(rng.standard_normal(C).astype(x_data.dtype), requires_grad=True) for _ in range(2))
    running_mean = rng.standard_normal(C).astype(x_data.dtype)
    running_var = rng.uniform(0.5, 2, C).astype(x_data.dtype)
    with gn.compiled.flags(enabled=enabled):
        x = gn.tensor(x_data, requires_grad=True)
        out = BatchNorm.apply(x, weight, bias, running_mean=running_mean, running_var=running_var, training=training)
        out.backward(gn.tensor(grad_data))
    return [out.numpy(), x.grad.numpy(), weight.grad.numpy(), bias.grad.numpy(), running_mean, running_var]


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize(
    "shape,dtype,offset,rtol",
    [
        ((64, 8, 24, 24), np.float32, 40, 2e-5),
        ((64, 4, 32, 32), np.float64, 1e4, 1e-12),
        ((1024, 256), np.float32, 40, 2e-5),
        ((4, 3, 100, 1000), np.float64, 1e6, 1e-12),
    ],
)
def test_batch_norm_agrees_with_the_numpy_path(kernels, shape, dtype, offset, rtol, training):
    # Far from zero, with an outlier where a naive shift would sit (the first value of each channel):
    # sums of x and x^2 in float64 would cancel (about 1e-8 off for an offset of 1e4 and std 1),
    # the NumPy path centres first. 1 MiB or more, so that the compiled kernels run.
    rng = np.random.default_rng(6)
    x = (rng.standard_normal(shape) + offset).astype(dtype)
    x.reshape(shape[0], shape[1], -1)[0, :, 0] += 3e3
    g = rng.standard_normal(shape).astype(dtype)
    with gn.compiled.flags(enabled=True):
        assert gn.compiled.pass_kernels(x) is not None
    reference = _batch_norm(x, g, training, enabled=False)
    compiled = _batch_norm(x, g, training, enabled=True)
    names = ["out", "grad x", "grad weight", "grad bias", "running mean", "running var"]
    for name, a, b in zip(names, reference, compiled):
        scale = np.abs(a).max()
        np.testing.assert_allclose(b, a, rtol=rtol, atol=rtol * scale, err_msg=name)


def test_batch_norm_inputs_the_compiled_kernels_leave_to_numpy(kernels):
    # Small (an MLP's BatchNorm1d), big-endian and float16 inputs take the NumPy path: same bits.
    rng = np.random.default_rng(11)
    for x in (
        rng.standard_normal((64, 32)).astype(np.float32),
        rng.standard_normal((64, 8, 32, 32)).astype(">f4"),
        rng.standard_normal((64, 8, 32, 32)).astype(np.float16),
    ):
        outputs = []
        for enabled in (False, True):
            with gn.compiled.flags(enabled=enabled):
                assert gn.compiled.pass_kernels(x) is None
                outputs.append(BatchNorm.apply(gn.tensor(x), training=True).numpy())
        np.testing.assert_array_equal(outputs[1], outputs[0])


def test_batch_norm_non_contiguous_input_and_nan(kernels):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((6, 5, 4, 3), dtype=np.float32).transpose(0, 3, 1, 2)  # (6, 3, 5, 4), strided
    g = rng.standard_normal((6, 3, 5, 4), dtype=np.float32)[..., ::-1]
    for a, b in zip(_batch_norm(x, g, True, False), _batch_norm(x, g, True, True)):
        np.testing.assert_allclose(b, a, rtol=2e-5, atol=2e-5)
    x = np.ascontiguousarray(x)
    x[2, 1, 3, 0] = np.nan  # a NaN reaches its channel's statistics, outputs and gradients, and only those
    out, grad_x, grad_w = _batch_norm(x, g, True, True)[:3]
    assert np.isnan(out[:, 1]).all() and np.isnan(grad_x[:, 1]).all() and np.isnan(grad_w[1])
    assert np.isfinite(np.delete(out, 1, axis=1)).all() and np.isfinite(np.delete(grad_w, 1)).all()


def _lenet_steps(seed):
    """Three SGD steps of a small CNN with stride, padding and pooling; returns the final parameters."""
    gn.manual_seed(seed)
    model = gn.nn.Sequential(
        gn.nn.Conv2d(2, 4, 5, padding=2),
        gn.nn.ReLU(),
        gn.nn.MaxPool2d(2),
        gn.nn.Conv2d(4, 6, 3, stride=2, padding=1),
        gn.nn.ReLU(),
        gn.nn.Flatten(),
        gn.nn.Linear(6 * 4 * 4, 3),
    )
    optimizer = gn.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    rng = np.random.default_rng(seed)
    for _ in range(3):
        x = gn.tensor(rng.standard_normal((20, 2, 16, 16), dtype=np.float32))
        y = gn.tensor(rng.integers(0, 3, 20))
        loss = gn.nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return {name: p.numpy().copy() for name, p in model.named_parameters()}


@pytest.mark.parametrize("threads", [1, 2])
def test_training_steps_agree_with_the_numpy_path(kernels, threads):
    gn.set_num_threads(threads)
    with gn.compiled.flags(enabled=False):
        reference = _lenet_steps(0)
    with gn.compiled.flags(enabled=True):
        compiled = _lenet_steps(0)
    for name, value in reference.items():
        # The same column values and the same col2im sums; only the GEMMs' shapes differ (no wide grid).
        np.testing.assert_allclose(compiled[name], value, rtol=1e-5, atol=1e-6, err_msg=name)


def test_non_contiguous_input_and_gradient(kernels):
    rng = np.random.default_rng(1)
    x_data = rng.standard_normal((3, 5, 6, 2), dtype=np.float32).transpose(0, 3, 1, 2)  # not contiguous
    w_data = rng.standard_normal((4, 2, 3, 3), dtype=np.float32)
    results = []
    for enabled in (False, True):
        with gn.compiled.flags(enabled=enabled):
            x = gn.tensor(x_data, requires_grad=True)
            w = gn.tensor(w_data, requires_grad=True)
            out = gn.nn.functional.conv2d(x, w, padding=1)
            out.sum().backward()  # an expanded (zero-stride) output gradient
            results.append((out.numpy(), x.grad.numpy(), w.grad.numpy()))
    for a, b in zip(*results):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-5)


def test_float16_runs_the_numpy_path(kernels):
    # The kernels are built for float32 and float64 only: float16 inputs take the NumPy path, with the same results.
    rng = np.random.default_rng(10)
    x_data = rng.standard_normal((2, 3, 8, 8)).astype(np.float16)
    w_data = rng.standard_normal((4, 3, 3, 3)).astype(np.float16)
    results = []
    for enabled in (False, True):
        with gn.compiled.flags(enabled=enabled):
            assert (gn.compiled.kernels(np.float16) is None) and (gn.compiled.kernels(np.float32) is None) != enabled
            x, w = gn.tensor(x_data, requires_grad=True), gn.tensor(w_data, requires_grad=True)
            out = gn.nn.functional.max_pool2d(gn.nn.functional.relu(gn.nn.functional.conv2d(x, w, padding=1)), 2)
            out = gn.nn.BatchNorm2d(4).to(np.float16)(out)
            (out * out).sum().backward()
            results.append([out.numpy(), x.grad.numpy(), w.grad.numpy()])
    for a, b in zip(*results):
        assert b.dtype == np.float16
        np.testing.assert_array_equal(b, a)


def test_switch():
    available = gn.compiled.is_available()
    with gn.compiled.flags(enabled=False):
        assert not gn.compiled.is_enabled()
        assert gn.compiled.kernels() is None
    if available:
        with gn.compiled.flags(enabled=True):
            assert gn.compiled.is_enabled()
            assert gn.compiled.kernels() is not None
    else:
        with pytest.raises(RuntimeError, match=r"C kernels were not built"):
            gn.compiled.set_enabled(True)


def test_environment_variable_turns_the_kernels_off():
    code = "import glassnet as gn; print(gn.compiled.is_enabled(), gn.compiled.kernels())"
    out = subprocess.run(
        [sys.executable, "-c", code], env={"GLASSNET_COMPILED": "0", "PATH": ""}, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "None"]


def test_kernels_refuse_bad_arrays_with_a_clear_error(kernels):
    # A caller's mistake must not read or write out of bounds: the C side checks every array.
    x = np.zeros((2, 3, 4, 4), dtype=np.float32)
    with pytest.raises(TypeError, match=r"_ckernels\.max_pool2x2: argument 2 has format 'd', expected 'f'"):
        kernels.max_pool2x2(x, np.zeros((2, 3, 2, 2)))
    with pytest.raises(ValueError, match=r"_ckernels\.max_pool2x2: argument 2 has shape \(2, 3, 3, 2\), expected"):
        kernels.max_pool2x2(x, np.zeros((2, 3, 3, 2), dtype=np.float32))
    with pytest.raises(TypeError, match=r"_ckernels\.relu: argument 1 must be a C-contiguous array"):
        kernels.relu(x[..., ::2], np.zeros(16, dtype=np.float32))
    read_only = np.zeros(96, dtype=np.float32)
    read_only.flags.writeable = False
    with pytest.raises(TypeError, match=r"_ckernels\.relu: argument 2 must be a C-contiguous, writable array"):
        kernels.relu(x.ravel(), read_only)
    with pytest.raises(ValueError, match=r"_ckernels\.im2col: argument 2 has 10 elements, expected 96"):
        kernels.im2col(x, np.zeros(10, dtype=np.float32), 1, 1, 1, 1, 1, 1, 0, 0, 4, 4)
    with pytest.raises(TypeError, match=r"_ckernels\.im2col: expected 12 arguments, got 2"):
        kernels.im2col(x, x)
    with pytest.raises(TypeError, match=r"format '>f'"):
        kernels.relu(x.ravel().astype(">f4"), np.zeros(96, dtype=np.float32))
    p = np.zeros(8, dtype=np.float32)
    with pytest.raises(TypeError, match=r"_ckernels\.sgd_momentum: expected 7 arguments, got 6"):
        kernels.sgd_momentum(p, p, p, 0, 0.9, 1.0)
    with pytest.raises(TypeError, match=r"_ckernels\.sgd_momentum: argument 7 must be a number"):
        kernels.sgd_momentum(p, p, p, 0, 0.9, 1.0, "0.1")
    with pytest.raises(ValueError, match=r"_ckernels\.sgd_momentum: argument 3 has 7 elements, expected 8"):
        kernels.sgd_momentum(p, p, p[:7], 0, 0.9, 1.0, -0.1)
    with pytest.raises(ValueError, match=r"_ckernels\.adam: argument 5 has 7 elements, expected 8"):
        kernels.adam(p, p, p, p, p[:7], 1, 0, 0, *[0.5] * 7)
    with pytest.raises(TypeError, match=r"_ckernels\.rmsprop: argument 2 has format 'd', expected 'f'"):
        kernels.rmsprop(p, p.astype(np.float64), p, p, p, 1, 0, 0, *[0.5] * 6)
    w, out = np.zeros((5, 3, 3, 3), dtype=np.float32), np.zeros((2, 5, 4, 4), dtype=np.float32)
    with pytest.raises(ValueError, match=r"_ckernels\.conv_direct: argument 2 has 135 elements, expected 90"):
        kernels.conv_direct(x, w, np.empty(0, np.float32), out, 3, 2, 1, 1, 1, 1)
    with pytest.raises(ValueError, match=r"_ckernels\.conv_direct: argument 4 has shape \(3, 5, 4, 4\), expected"):
        kernels.conv_direct(x, w, np.empty(0, np.float32), np.zeros((3, 5, 4, 4), np.float32), 3, 3, 1, 1, 1, 1)
    with pytest.raises(ValueError, match=r"_ckernels\.conv_direct: kernel size and dilation must be positive"):
        kernels.conv_direct(x, w, np.empty(0, np.float32), out, 3, 3, 0, 1, 1, 1)
    with pytest.raises(ValueError, match=r"_ckernels\.conv_direct: argument 3 has 4 elements, expected 5"):
        kernels.conv_direct(x, w, np.zeros(4, np.float32), out, 3, 3, 1, 1, 1, 1)
    with pytest.raises(ValueError, match=r"_ckernels\.conv_direct_grad: argument 4 has 4 elements, expected 5"):
        kernels.conv_direct_grad(x, out, w, np.zeros(4), 3, 3, 1, 1, 1, 1)
    with pytest.raises(TypeError, match=r"_ckernels\.conv_direct_grad: argument 4 has format 'f', expected 'd'"):
        kernels.conv_direct_grad(x, out, w, np.zeros(5, np.float32), 3, 3, 1, 1, 1, 1)


def test_without_the_extension_the_numpy_path_runs_quietly():
    # As after an install with no C compiler: no module, no warning, the ops on the NumPy path.
    code = (
        "import sys; sys.modules['glassnet._ckernels'] = None\n"
        "import glassnet as gn\n"
        "assert not gn.compiled.is_available() and gn.compiled.kernels() is None\n"
        "x = gn.randn(2, 1, 8, 8)\n"
        "print(gn.nn.functional.max_pool2d(gn.nn.functional.conv2d(x, gn.randn(3, 1, 3, 3)), 2).shape)\n"
    )
    out = subprocess.run([sys.executable, "-W", "error", "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["(2,", "3,", "3,", "3)"]


def test_convolution_keeps_the_columns_where_the_direct_kernels_were_not_built(kernels, monkeypatch):
    """A build by a compiler without GCC's vector extension has no conv_direct: the columns path runs."""

    class WithoutDirect:
        def __getattr__(self, name):
            if name.startswith("conv_direct"):
                raise AttributeError(name)
            return getattr(kernels, name)

    x, w = gn.randn(2, 1, 8, 8), gn.randn(3, 1, 3, 3, requires_grad=True)
    with gn.compiled.flags(enabled=True):
        expected = conv.Conv2d.apply(x, w, padding=(1, 1))
        assert expected._ctx.direct
        monkeypatch.setattr(gn.compiled, "kernels", lambda dtype=None: WithoutDirect())
        out = conv.Conv2d.apply(x, w, padding=(1, 1))
    assert not out._ctx.direct and out._ctx.cols is not None
    np.testing.assert_allclose(out.numpy(), expected.numpy(), rtol=1e-5, atol=1e-5)
    out.sum().backward()
    assert w.grad is not None
