"""Conv2d primitive: finite differences, PyTorch oracle (values and all gradients), both col2im paths, errors."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import glassnet as gn
from glassnet.ops import conv as conv_module
from glassnet.ops.conv import Conv2d
from tests.helpers import (
    OpSpec,
    check_against_torch,
    check_backward_linear,
    check_finite_differences,
    skip_without_compiled,
)


@pytest.fixture(params=["numpy", "compiled-direct", "compiled-columns"])
def conv_path(request, monkeypatch):
    """Runs the test on the pure NumPy kernels and on the compiled ones (the C extension), these both
    with the direct kernels where they apply (stride 1, no groups: most cases here) and with columns."""
    if request.param == "numpy":
        with gn.compiled.flags(enabled=False):
            yield request.param
        return
    skip_without_compiled()
    if request.param == "compiled-columns":
        monkeypatch.setattr(conv_module, "_DIRECT_MAX_TAPS", 0)
        monkeypatch.setattr(conv_module, "_DIRECT_MAX_OUT", 0)
    with gn.compiled.flags(enabled=True):
        yield request.param


# torch warns that padding='same' with an even kernel copies the input; that is its business.
pytestmark = [
    pytest.mark.filterwarnings("ignore:Using padding='same':UserWarning"),
    pytest.mark.usefixtures("conv_path"),
]


def conv_spec(name, x_shape, w_shape, bias=True, stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1):
    """An OpSpec running Conv2d.apply in glassnet and F.conv2d in torch with the same options."""
    options = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    shapes = [x_shape, w_shape] + ([(w_shape[0],)] if bias else [])
    return OpSpec(
        name,
        lambda lib, *t: Conv2d.apply(*t, **options),
        shapes,
        torch_op=lambda torch, *t: torch.nn.functional.conv2d(*t, **options),
    )


SPECS = [
    conv_spec("3x3", (2, 3, 5, 5), (4, 3, 3, 3)),
    conv_spec("3x3_pad1_wide_path", (2, 2, 8, 8), (3, 2, 3, 3), padding=(1, 1)),
    conv_spec("non_square_kernel_no_bias", (2, 3, 6, 7), (2, 3, 3, 2), bias=False),
    conv_spec("stride2_odd_size", (2, 2, 7, 9), (3, 2, 3, 3), stride=(2, 2)),
    conv_spec("stride2_pad_non_square", (1, 3, 7, 6), (2, 3, 2, 3), stride=(2, 1), padding=(1, 2)),
    conv_spec("pad_larger_than_half_kernel", (1, 2, 4, 4), (2, 2, 3, 3), padding=(2, 2)),
    conv_spec("1x1", (3, 4, 3, 3), (5, 4, 1, 1)),
    conv_spec("dilation", (1, 2, 8, 7), (2, 2, 3, 2), dilation=(2, 3), padding=(1, 1)),
    conv_spec("groups", (2, 4, 5, 5), (6, 2, 3, 3), groups=2, padding=(1, 1)),
    conv_spec("groups_stride_no_bias", (2, 6, 6, 6), (3, 2, 2, 2), bias=False, groups=3, stride=(2, 2)),
    conv_spec("same_even_kernel", (1, 2, 5, 6), (2, 2, 2, 4), padding="same"),
    conv_spec("valid", (1, 2, 5, 5), (2, 2, 3, 3), padding="valid"),
    conv_spec("unbatched", (2, 5, 5), (3, 2, 3, 3), padding=(1, 1)),
]


@pytest.mark.parametrize("spec", SPECS, ids=str)
def test_finite_differences(spec):
    check_finite_differences(spec)


@pytest.mark.parametrize("spec", SPECS, ids=str)
def test_matches_torch_float64_tightly(spec, torch):
    check_against_torch(dataclasses.replace(spec, atol=1e-10, rtol=1e-10), torch, np.float64)


@pytest.mark.parametrize("spec", SPECS, ids=str)
def test_matches_torch_float32(spec, torch):
    check_against_torch(spec, torch, np.float32)


@pytest.mark.parametrize("spec", SPECS[:4], ids=str)
@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**31), alpha=st.floats(-2, 2), beta=st.floats(-2, 2))
def test_backward_is_linear(spec, seed, alpha, beta):
    check_backward_linear(spec, seed, alpha, beta)


@pytest.mark.parametrize("wide", [True, False])
@pytest.mark.parametrize("dilation", [(1, 1), (2, 1)])
def test_both_input_gradient_paths_match_torch(wide, dilation, torch):
    """The wide-grid col2im (stride 1) and the strided one give PyTorch's input gradient."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 4, 6, 7))
    w = rng.standard_normal((6, 2, 3, 2))  # groups=2
    pads = (1, 1, 0, 0)
    tx = torch.tensor(x, requires_grad=True)
    out = torch.nn.functional.conv2d(tx, torch.tensor(w), padding=(1, 0), dilation=dilation, groups=2)
    grad_out = rng.standard_normal(out.shape)
    out.backward(torch.tensor(grad_out))
    Ho, Wo = out.shape[2:]
    g = np.ascontiguousarray(grad_out.transpose(1, 0, 2, 3)).reshape(6, -1)
    grad_x = conv_module._input_grad(g, w, x.shape, 3, 2, 1, 1, *dilation, pads, Ho, Wo, 2, wide=wide)
    np.testing.assert_allclose(grad_x, tx.grad.numpy(), atol=1e-12)


def test_large_batch_chunked_weight_gradient_matches_torch(torch):
    """A long inner axis (N * Ho * Wo > 2 chunks) takes the chunked weight-gradient GEMM."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((40, 1, 28, 28)).astype(np.float32)
    w = rng.standard_normal((3, 1, 5, 5)).astype(np.float32)
    assert 40 * 24 * 24 > 2 * conv_module._weight_chunk(25, 3)
    gx, gw = gn.tensor(x), gn.tensor(w, requires_grad=True)
    out = Conv2d.apply(gx, gw)
    grad_out = rng.standard_normal(out.shape).astype(np.float32)
    out.backward(gn.tensor(grad_out))
    tw = torch.tensor(w, requires_grad=True)
    torch.nn.functional.conv2d(torch.tensor(x), tw).backward(torch.tensor(grad_out))
    assert gw.grad.dtype == np.float32
    np.testing.assert_allclose(gw.grad.data, tw.grad.numpy(), rtol=1e-4, atol=1e-3)


CHUNKED = [
    # (name, x shape, weight shape, options): wide columns (stride 1, K = 8 * 3 * 3 >= 64, Wp / Wo = 14 / 12),
    # narrow ones (stride 2), groups, dilation, no bias.
    ("wide_cols", (7, 8, 11, 12), (5, 8, 3, 3), dict(padding=(1, 1))),
    ("narrow_stride2", (7, 3, 9, 8), (4, 3, 3, 3), dict(stride=(2, 2), padding=(1, 0))),
    ("groups_wide", (5, 16, 10, 12), (6, 8, 3, 3), dict(padding=(1, 1), groups=2)),
    ("dilation_no_bias", (6, 8, 12, 13), (3, 8, 3, 3), dict(padding=(2, 1), dilation=(2, 1), bias=False)),
]


@pytest.mark.parametrize("keep", [True, False], ids=["cols_kept", "cols_rebuilt"])
@pytest.mark.parametrize("name, x_shape, w_shape, options", CHUNKED, ids=[c[0] for c in CHUNKED])
def test_batch_chunks_match_torch(name, x_shape, w_shape, options, keep, monkeypatch, torch):
    """Chunks of 3 images (some batches end with a ragged one), columns kept or rebuilt: PyTorch's results."""
    monkeypatch.setattr(conv_module, "_batch_chunk", lambda rows, pixels, itemsize, N: 3)
    monkeypatch.setattr(conv_module, "_KEEP_COLS_MAX_BYTES", 1 << 30 if keep else 0)
    options = dict(options)
    has_bias = options.pop("bias", True)
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(x_shape), rng.standard_normal(w_shape)] + (
        [rng.standard_normal(w_shape[0])] * has_bias
    )
    leaves = [gn.tensor(a, requires_grad=True) for a in arrays]
    out = Conv2d.apply(*leaves, **options)
    assert out._ctx.chunk == 3
    assert (out._ctx.cols is not None) == (keep and not out._ctx.direct)
    grad_out = rng.standard_normal(out.shape)
    out.backward(gn.tensor(grad_out))
    t_leaves = [torch.tensor(a, requires_grad=True) for a in arrays]
    t_out = torch.nn.functional.conv2d(*t_leaves, **options)
    t_out.backward(torch.tensor(grad_out))
    np.testing.assert_allclose(out.data, t_out.detach().numpy(), atol=1e-10, rtol=1e-10)
    for leaf, t_leaf in zip(leaves, t_leaves):
        np.testing.assert_allclose(leaf.grad.data, t_leaf.grad.numpy(), atol=1e-10, rtol=1e-10)


def test_batch_chunk_size():
    assert conv_module._batch_chunk(288, 224, 4, 128) == (2 << 20) // (288 * 224 * 4)  # about 2 MiB per chunk
    assert conv_module._batch_chunk(9, 4, 4, 16) == 2  # at least 8 chunks, for the threads to share
    assert conv_module._batch_chunk(9, 4, 4, 5) == 1
    assert conv_module._batch_chunk(4096, 4096, 8, 16) == 1  # at least one image


def test_no_grad_keeps_no_columns(conv_path):
    """Under no_grad no graph is recorded, so the forward must hold neither its im2col columns nor its input."""
    x, w = np.ones((2, 3, 6, 6), np.float32), np.ones((4, 3, 3, 3), np.float32)
    fn = Conv2d()
    with gn.no_grad():
        fn.forward(x, w, padding=(1, 1))
    assert fn.cols is None and fn.x is None
    fn = Conv2d()
    fn.forward(x, w, padding=(1, 1))
    assert fn.direct == (conv_path == "compiled-direct")
    if fn.direct:  # no columns at all: the backward reads the input
        assert fn.cols is None and fn.x is not None
    else:
        assert fn.cols is not None


def test_float32_end_to_end():
    x = gn.randn(2, 3, 6, 6, requires_grad=True)
    w, b = gn.randn(4, 3, 3, 3, requires_grad=True), gn.randn(4, requires_grad=True)
    out = Conv2d.apply(x, w, b, padding=(1, 1))
    out.sum().backward()
    assert out.dtype == np.float32
    assert x.grad.dtype == w.grad.dtype == b.grad.dtype == np.float32


def test_input_without_grad_gets_none_and_weight_grad_still_right():
    x, w = gn.randn(2, 1, 5, 5), gn.randn(2, 1, 3, 3, requires_grad=True)
    Conv2d.apply(x, w).sum().backward()
    assert x.grad is None
    expected = np.stack([x.data[:, 0, i : i + 3, j : j + 3].sum(axis=(0, 1, 2)) for i in range(3) for j in range(3)])
    np.testing.assert_allclose(w.grad.data[0, 0].reshape(-1), expected.reshape(-1), rtol=1e-5)


@pytest.mark.parametrize(
    "x_shape, w_shape, options, match",
    [
        ((2, 3, 5, 5), (4, 2, 3, 3), {}, r"expected input\(2, 3, 5, 5\) to have 2 channels, but got 3"),
        ((2, 3, 2, 2), (4, 3, 3, 3), {}, r"smaller than the \(dilated\) kernel \(3, 3\)"),
        ((2, 3, 5, 5), (4, 3, 3), {}, r"expected a 4-D weight.*got shape \(4, 3, 3\)"),
        ((3, 5, 5, 1, 1), (4, 3, 3, 3), {}, r"expected a 3-D \(C, H, W\) or 4-D"),
        ((2, 3, 5, 5), (4, 3, 3, 3), {"stride": (0, 1)}, r"stride and dilation must be positive"),
        ((2, 3, 5, 5), (4, 3, 3, 3), {"padding": (-1, 0)}, r"padding must be non-negative"),
        ((2, 3, 5, 5), (4, 3, 3, 3), {"padding": "full"}, r"padding must be 'valid', 'same'"),
        ((2, 3, 5, 5), (4, 3, 3, 3), {"padding": "same", "stride": 2}, r"'same' is not supported for strided"),
        (
            (2, 4, 5, 5),
            (3, 2, 3, 3),
            {"groups": 2},
            r"out_channels 3 \(weight of shape \(3, 2, 3, 3\)\) must be divisible by groups=2",
        ),
        ((2, 3, 5, 5), (4, 3, 3, 3), {"stride": (1, 1, 1)}, r"stride must be an int or a pair of ints"),
    ],
)
def test_bad_input_is_named(x_shape, w_shape, options, match):
    with pytest.raises(gn.GlassnetError, match=r"conv2d: .*" + match):
        Conv2d.apply(gn.zeros(*x_shape), gn.zeros(*w_shape), **options)


def test_bad_bias_and_dtype_mismatch_are_named():
    x, w = gn.zeros(1, 2, 4, 4), gn.zeros(3, 2, 3, 3)
    with pytest.raises(gn.GlassnetError, match=r"conv2d: expected bias of shape \(3,\).*got \(4,\)"):
        Conv2d.apply(x, w, gn.zeros(4))
    with pytest.raises(gn.GlassnetError, match=r"conv2d: input \(float64\), weight \(float32\).*same dtype"):
        Conv2d.apply(gn.zeros(1, 2, 4, 4, dtype=gn.float64), w)


def test_empty_batch_gives_zero_gradients():
    x = gn.tensor(np.zeros((0, 3, 8, 8), np.float32), requires_grad=True)
    w = gn.tensor(np.ones((4, 3, 3, 3), np.float32), requires_grad=True)
    b = gn.tensor(np.ones(4, np.float32), requires_grad=True)
    out = gn.nn.functional.conv2d(x, w, b, padding=1)
    out.sum().backward()
    assert out.shape == (0, 4, 8, 8) and x.grad.shape == (0, 3, 8, 8)
    np.testing.assert_array_equal(w.grad.numpy(), np.zeros((4, 3, 3, 3), np.float32))
    np.testing.assert_array_equal(b.grad.numpy(), np.zeros(4, np.float32))
