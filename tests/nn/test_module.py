"""Module bookkeeping: registration, names, state dicts, modes, hooks, repr, conversion."""

from __future__ import annotations

import numpy as np
import pytest

import glassnet as gn
from glassnet import nn


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)
        self.bn = nn.BatchNorm1d(3)
        self.register_buffer("steps", np.zeros(1), persistent=False)

    def forward(self, x):
        return self.bn(self.fc(x)).relu()


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.block = Block()
        self.layers = nn.ModuleList([nn.Linear(3, 3), nn.Linear(3, 2)])
        self.scale = nn.Parameter(gn.ones(1))

    def forward(self, x):
        x = self.block(x)
        for layer in self.layers:
            x = layer(x)
        return x * self.scale


def test_nested_names_and_counts():
    net = Net()
    names = [n for n, _ in net.named_parameters()]
    assert names == [
        "scale", "block.fc.weight", "block.fc.bias", "block.bn.weight", "block.bn.bias",
        "layers.0.weight", "layers.0.bias", "layers.1.weight", "layers.1.bias",
    ]  # fmt: skip
    assert [n for n, _ in net.named_modules()] == [
        "",
        "block",
        "block.fc",
        "block.bn",
        "layers",
        "layers.0",
        "layers.1",
    ]
    assert [type(m).__name__ for m in net.children()] == ["Block", "ModuleList"]
    assert [n for n, _ in net.named_buffers()] == [
        "block.steps", "block.bn.running_mean", "block.bn.running_var", "block.bn.num_batches_tracked",
    ]  # fmt: skip
    assert len(list(net.parameters())) == 9


def test_shared_parameter_is_listed_once():
    fc = nn.Linear(2, 2)
    seq = nn.Sequential(fc, nn.ReLU(), fc)
    assert len(list(seq.parameters())) == 2


def test_state_dict_round_trip_and_non_persistent_buffer():
    a, b = Net(), Net()
    state = a.state_dict()
    assert "block.steps" not in state and "block.bn.num_batches_tracked" in state
    b.load_state_dict({k: v.numpy().copy() for k, v in state.items()})
    x = gn.randn(5, 4)
    np.testing.assert_array_equal(a(x).data, b(x).data)


def test_load_state_dict_strict_names_every_problem():
    net = Net()
    state = {k: v.numpy() for k, v in net.state_dict().items()}
    del state["scale"]
    state["extra.weight"] = np.zeros(2)
    state["layers.1.weight"] = np.zeros((5, 5))
    with pytest.raises(ValueError) as info:
        net.load_state_dict(state)
    msg = str(info.value)
    assert "missing keys: scale" in msg and "unexpected keys: extra.weight" in msg
    assert "layers.1.weight: checkpoint shape (5, 5), model shape (2, 3)" in msg


def test_load_state_dict_non_strict_reports_keys():
    net = Net()
    state = {k: v.numpy() for k, v in net.state_dict().items() if k != "scale"}
    result = net.load_state_dict(state, strict=False)
    assert result.missing_keys == ["scale"] and result.unexpected_keys == []


def test_train_eval_propagates():
    net = Net().eval()
    assert not any(m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())


def test_zero_grad():
    net = Net()
    net(gn.randn(5, 4)).sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad(set_to_none=False)
    assert all(not p.grad.data.any() for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())


def test_forward_hook_fires_and_detaches():
    fc = nn.Linear(3, 2)
    seen = []
    handle = fc.register_forward_hook(lambda m, inputs, out: seen.append((m, inputs[0].shape, out.shape)))
    fc(gn.randn(4, 3))
    assert seen == [(fc, (4, 3), (4, 2))]
    handle.remove()
    fc(gn.randn(4, 3))
    assert len(seen) == 1


def test_forward_hook_can_replace_output():
    fc = nn.Linear(3, 2)
    fc.register_forward_hook(lambda m, i, out: out * 0)
    assert not fc(gn.randn(4, 3)).data.any()


def test_full_backward_hook_matches_torch(torch):
    tfc = torch.nn.Linear(3, 2).double()
    fc = nn.Linear(3, 2).double()
    fc.load_state_dict({k: v.detach().numpy() for k, v in tfc.state_dict().items()})
    seen, tseen = [], []
    handle = fc.register_full_backward_hook(lambda m, gi, go: seen.append((gi[0].numpy().copy(), go[0].numpy().copy())))
    tfc.register_full_backward_hook(lambda m, gi, go: tseen.append((gi[0].numpy().copy(), go[0].numpy().copy())))
    x = np.random.default_rng(0).standard_normal((4, 3))
    (fc(gn.tensor(x, requires_grad=True)) ** 2).sum().backward()
    (tfc(torch.tensor(x, requires_grad=True)) ** 2).sum().backward()
    assert len(seen) == 1
    np.testing.assert_allclose(seen[0][0], tseen[0][0], rtol=1e-12)
    np.testing.assert_allclose(seen[0][1], tseen[0][1], rtol=1e-12)
    handle.remove()
    (fc(gn.tensor(x, requires_grad=True)) ** 2).sum().backward()
    assert len(seen) == 1


def test_backward_hook_without_input_grad_gets_none():
    fc = nn.Linear(3, 2)
    seen = []
    fc.register_full_backward_hook(lambda m, gi, go: seen.append((gi, go[0].shape)))
    fc(gn.randn(4, 3)).sum().backward()
    assert seen == [((None,), (4, 2))]


def test_repr_prints_the_tree():
    model = nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.Flatten(), nn.Linear(10, 2))
    assert repr(model) == (
        "Sequential(\n"
        "  (0): Conv2d(1, 6, kernel_size=(5, 5), stride=(1, 1), padding=(2, 2))\n"
        "  (1): ReLU()\n"
        "  (2): Flatten(start_dim=1, end_dim=-1)\n"
        "  (3): Linear(in_features=10, out_features=2, bias=True)\n"
        ")"
    )


def test_sequential_indexing_and_len():
    model = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    assert len(model) == 3 and isinstance(model[-1], nn.Linear)
    assert len(model[1:]) == 2
    with pytest.raises(IndexError):
        model[5]


def test_to_double_converts_parameters_and_buffers():
    net = Net().double()
    assert all(p.dtype == np.float64 for p in net.parameters())
    assert net.block.bn.running_mean.dtype == np.float64
    assert net.block.bn.num_batches_tracked.dtype == np.int64
    assert net(gn.randn(3, 4, dtype=gn.float64)).dtype == np.float64


def test_linear_wrong_features_names_module_and_shapes():
    with pytest.raises(
        ValueError,
        match=r"Linear\(in_features=784, out_features=256\): expected input \(\.\.\., 784\), got \(32, 785\)",
    ):
        nn.Linear(784, 256)(gn.zeros(32, 785))


def test_conv_wrong_channels_and_rank():
    conv = nn.Conv2d(3, 4, 3)
    with pytest.raises(ValueError, match=r"expected input \(N, 3, H, W\), got \(2, 1, 8, 8\)"):
        conv(gn.zeros(2, 1, 8, 8))
    with pytest.raises(ValueError, match=r"got \(8, 8\)"):
        conv(gn.zeros(8, 8))


def test_batchnorm_wrong_features():
    with pytest.raises(ValueError, match=r"BatchNorm1d\(5\).*got \(4, 3\)"):
        nn.BatchNorm1d(5)(gn.zeros(4, 3))


def test_cross_entropy_bad_labels():
    loss = nn.CrossEntropyLoss()
    with pytest.raises(ValueError, match="integer"):
        loss(gn.zeros(2, 3), gn.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="7"):
        loss(gn.zeros(2, 3), gn.tensor([0, 7]))


def test_default_init_bounds_match_torch_rule():
    fc = nn.Linear(400, 120)
    bound = 1 / np.sqrt(400)
    assert np.abs(fc.weight.data).max() <= bound and np.abs(fc.weight.data).max() > 0.95 * bound
    assert np.abs(fc.bias.data).max() <= bound
    conv = nn.Conv2d(6, 16, 5)
    bound = 1 / np.sqrt(6 * 25)
    assert np.abs(conv.weight.data).max() <= bound and np.abs(conv.bias.data).max() <= bound


def test_batchnorm_momentum_none_is_a_cumulative_average(torch):
    tbn, bn = torch.nn.BatchNorm1d(3, momentum=None).double(), nn.BatchNorm1d(3, momentum=None).double()
    rng = np.random.default_rng(4)
    for _ in range(3):
        x = rng.standard_normal((6, 3)) * 2 + 1
        tbn(torch.tensor(x))
        bn(gn.tensor(x))
    np.testing.assert_allclose(bn.running_mean.data, tbn.running_mean.numpy(), rtol=1e-12)
    np.testing.assert_allclose(bn.running_var.data, tbn.running_var.numpy(), rtol=1e-12)


def test_batchnorm_without_running_stats_uses_batch_statistics_in_eval(torch):
    tbn = torch.nn.BatchNorm1d(3, momentum=None, track_running_stats=False).double().eval()
    bn = nn.BatchNorm1d(3, momentum=None, track_running_stats=False).double().eval()
    x = np.random.default_rng(5).standard_normal((6, 3))
    np.testing.assert_allclose(bn(gn.tensor(x)).data, tbn(torch.tensor(x)).detach().numpy(), rtol=1e-10)
