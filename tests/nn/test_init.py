"""nn.init: statistics on large tensors, PyTorch's fans and gains, orthogonality."""

from __future__ import annotations

import math

import numpy as np
import pytest

import glassnet as gn
from glassnet.nn import init


def test_calculate_gain_matches_torch(torch):
    for name, param in [("linear", None), ("sigmoid", None), ("tanh", None), ("relu", None), ("leaky_relu", 0.2),
                        ("leaky_relu", None), ("selu", None), ("conv2d", None)]:  # fmt: skip
        assert init.calculate_gain(name, param) == pytest.approx(torch.nn.init.calculate_gain(name, param))


def test_fans_match_torch(torch):
    for shape in [(5, 3), (16, 6, 5, 5), (4, 2, 3)]:
        t = torch.empty(*shape)
        assert init._calculate_fan_in_and_fan_out(gn.empty(*shape)) == torch.nn.init._calculate_fan_in_and_fan_out(t)


def _stats(fill, shape=(512, 256, 3, 3)):
    t = gn.empty(*shape)
    fill(t)
    return t.data.astype(np.float64)


@pytest.mark.parametrize(
    "fill,std,bound",
    [
        (lambda t: init.xavier_uniform_(t), math.sqrt(2 / (256 * 9 + 512 * 9)), math.sqrt(6 / (256 * 9 + 512 * 9))),
        (lambda t: init.xavier_normal_(t, gain=2.0), 2 * math.sqrt(2 / (256 * 9 + 512 * 9)), None),
        (lambda t: init.kaiming_uniform_(t, nonlinearity="relu"), math.sqrt(2 / (256 * 9)), math.sqrt(6 / (256 * 9))),
        (lambda t: init.kaiming_normal_(t, nonlinearity="relu"), math.sqrt(2 / (256 * 9)), None),
        (lambda t: init.he_normal_(t, mode="fan_out", nonlinearity="relu"), math.sqrt(2 / (512 * 9)), None),
        (lambda t: init.uniform_(t, -0.1, 0.1), 0.2 / math.sqrt(12), 0.1),
        (lambda t: init.normal_(t, 0.0, 0.05), 0.05, None),
    ],
)
def test_distribution_statistics(fill, std, bound):
    values = _stats(fill)
    assert abs(values.mean()) < 0.01 * std * 10
    assert values.std() == pytest.approx(std, rel=0.01)
    if bound is not None:
        assert values.max() <= bound and values.min() >= -bound and values.max() > 0.99 * bound


def test_constants():
    t = gn.empty(3, 4)
    assert (init.zeros_(t).data == 0).all() and (init.ones_(t).data == 1).all()
    assert (init.constant_(t, 0.3).data == np.float32(0.3)).all()


@pytest.mark.parametrize("shape", [(64, 32), (32, 64), (16, 4, 3, 3)])
def test_orthogonal(shape):
    t = init.orthogonal_(gn.empty(*shape), gain=1.5)
    flat = t.data.reshape(shape[0], -1).astype(np.float64)
    small = flat @ flat.T if flat.shape[0] <= flat.shape[1] else flat.T @ flat
    np.testing.assert_allclose(small, 1.5**2 * np.eye(small.shape[0]), atol=1e-5)


def test_seeded_init_is_reproducible():
    gn.manual_seed(7)
    a = gn.nn.Linear(10, 10).weight.data.copy()
    gn.manual_seed(7)
    np.testing.assert_array_equal(gn.nn.Linear(10, 10).weight.data, a)


def test_fan_needs_two_dims():
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        init.xavier_uniform_(gn.empty(5))
