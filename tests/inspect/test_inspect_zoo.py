"""The zoo: each broken network gets the right finding on the right layer; its suggested fix cures it."""

from __future__ import annotations

import pytest

import glassnet as gn
from glassnet import nn, optim
from glassnet.inspect import diagnose
from tests.inspect import zoo

LOSS = nn.CrossEntropyLoss()


def serious(findings):
    return [f for f in findings if f.severity != "info"]


def rules_at(findings):
    return {(f.rule, f.layer) for f in serious(findings)}


@pytest.fixture(scope="module")
def batches():
    return zoo.digits_batches()


def test_vanishing_sigmoid_points_at_first_layer_then_xavier_cures_it(batches):
    model, opt = zoo.vanishing_sigmoid()
    findings = diagnose(model, LOSS, batches, opt, steps=12)
    assert ("vanishing_gradient", "0") in rules_at(findings)
    vanishing = next(f for f in findings if f.rule == "vanishing_gradient")
    assert vanishing.suggestion == (
        "initialise model[0], model[2], model[4], model[6] and model[8] with Xavier (Glorot): "
        "for layer in (model[0], model[2], model[4], model[6], model[8]): nn.init.xavier_normal_(layer.weight)"
    )
    assert str(vanishing).startswith("[warning] vanishing_gradient at model[0] (Linear 64->64), step 0:")
    assert ("poor_initialization", "0") in rules_at(findings)

    for m in zoo.linears(model):  # the suggestion, applied
        nn.init.xavier_normal_(m.weight)
    opt = optim.SGD(model.parameters(), lr=0.1)
    assert not {f.rule for f in serious(diagnose(model, LOSS, batches, opt, steps=12))} & {
        "vanishing_gradient",
        "poor_initialization",
    }
    assert zoo.train_accuracy(model, optim.Adam(model.parameters(), lr=1e-2), batches, 300) > 0.6
    broken, _ = zoo.vanishing_sigmoid()
    assert zoo.train_accuracy(broken, optim.Adam(broken.parameters(), lr=1e-2), batches, 300) < 0.3


def test_exploding_relu_points_at_first_layer_then_kaiming_cures_it(batches):
    model, opt = zoo.exploding_relu()
    findings = diagnose(model, LOSS, batches, opt, steps=8)
    assert ("exploding_gradient", "0") in rules_at(findings)
    exploding = next(f for f in findings if f.rule == "exploding_gradient")
    assert exploding.severity == "error"
    assert "kaiming_normal_" in exploding.suggestion

    zoo.he_init(model)
    opt = optim.SGD(model.parameters(), lr=0.01)
    assert serious(diagnose(model, LOSS, batches, opt, steps=8)) == []
    assert zoo.train_accuracy(model, optim.SGD(model.parameters(), lr=0.05), batches, 150) > 0.7


def test_dead_relu_on_the_layer_with_negative_bias_then_zero_bias_cures_it(batches):
    model, opt = zoo.dead_relu()
    findings = diagnose(model, LOSS, batches, opt, steps=8)
    first = findings[0]
    assert (first.rule, first.layer, first.severity) == ("dead_relu", "2", "error")
    assert first.suggestion == "reset the bias of model[2] to 0: nn.init.zeros_(model[2].bias)"
    assert first.label == "model[2] (Linear 64->64)" and "units of model[2] (Linear 64->64)" in first.explanation
    # The layers below lose their gradient through it: told as a symptom, not as a second problem.
    assert [f.rule for f in serious(findings)] in (["dead_relu"], ["dead_relu", "loss_not_decreasing"])

    nn.init.zeros_(model[2].bias)
    opt = optim.Adam(model.parameters(), lr=1e-3)
    assert serious(diagnose(model, LOSS, batches, opt, steps=8)) == []
    assert zoo.train_accuracy(model, opt, batches, 100) > 0.8


def test_saturated_tanh_then_batchnorm_cures_it(batches):
    large = zoo.scaled(batches, 20.0)
    model, opt = zoo.saturated_tanh()
    findings = diagnose(model, LOSS, large, opt, steps=8)
    assert ("saturated_activation", "0") in rules_at(findings)
    saturated = next(f for f in findings if f.rule == "saturated_activation")
    assert saturated.suggestion.startswith("add nn.BatchNorm1d(64) after model[0], before its Tanh")

    fixed = nn.Sequential(model[0], nn.BatchNorm1d(64), *list(model)[1:])
    opt = optim.Adam(fixed.parameters(), lr=1e-3)
    assert "saturated_activation" not in {f.rule for f in serious(diagnose(fixed, LOSS, large, opt, steps=8))}
    assert zoo.train_accuracy(fixed, opt, large, 100) > 0.8


def test_learning_rate_far_too_high_then_the_suggested_rate_learns(batches):
    model, opt = zoo.lr_too_high()
    findings = diagnose(model, LOSS, batches, opt, steps=20)
    rules = {f.rule for f in serious(findings)}
    assert rules & {"loss_not_decreasing", "nan_or_inf"}
    assert "update_too_large" in rules
    loss_finding = next(f for f in findings if f.rule in ("loss_not_decreasing", "nan_or_inf"))
    assert loss_finding.suggestion.startswith("divide the learning rate by 1000 (from 20 to 0.02)")

    zoo.he_init(model)
    opt = optim.SGD(model.parameters(), lr=0.02)
    assert serious(diagnose(model, LOSS, batches, opt, steps=20)) == []
    assert zoo.train_accuracy(model, opt, batches, 150) > 0.8


def test_healthy_mlp_with_adam_has_nothing_above_info(batches):
    model = zoo.mlp(nn.ReLU, depth=4)
    zoo.he_init(model)
    assert serious(diagnose(model, LOSS, batches, optim.Adam(model.parameters(), lr=1e-3), steps=20)) == []


def test_healthy_lenet_has_nothing_above_info():
    model = zoo.lenet()
    data = zoo.digits_batches(flat=False, count=10)
    assert serious(diagnose(model, LOSS, data, optim.Adam(model.parameters(), lr=3e-3), steps=30)) == []


def test_nan_names_the_first_module_that_produced_it(batches):
    model = zoo.mlp(nn.ReLU, depth=3)
    zoo.he_init(model)
    with_log = nn.Sequential(model[0], model[1], nn.LogSoftmax(dim=1), model[2], model[3], model[4])
    nn.init.constant_(model[0].bias, -1e4)  # every unit dead: LogSoftmax of all zeros is finite...
    nn.init.constant_(model[0].weight, float("inf"))  # ...but an infinite weight makes z non-finite at 0
    findings = diagnose(with_log, LOSS, batches, None, steps=2)
    nan = next(f for f in findings if f.rule == "nan_or_inf")
    assert (nan.layer, nan.severity, nan.step) == ("0", "error", 0)


def test_diagnose_restores_the_model_and_cycles_short_data(batches):
    model = zoo.mlp(nn.ReLU, depth=2)
    before = {k: v.data.copy() for k, v in model.state_dict().items()}
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    diagnose(model, LOSS, batches[:2], opt, steps=5)
    for k, v in model.state_dict().items():
        assert (v.data == before[k]).all(), k
    assert opt.state_dict()["state"] == {}
    diagnose(model, LOSS, batches[:2], opt, steps=5, restore=False)
    assert any((v.data != before[k]).any() for k, v in model.state_dict().items())


def test_gradients_only_run_does_not_judge_the_loss_trend():
    """Without an optimizer nothing updates the weights: no loss_not_decreasing finding."""
    gn.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    x, y = gn.randn(64, 64), gn.randint(0, 10, (64,))
    findings = gn.inspect.diagnose(model, nn.CrossEntropyLoss(), [(x, y)], steps=20)
    assert "loss_not_decreasing" not in [f.rule for f in findings]
