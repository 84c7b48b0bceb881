"""One way to write numbers and layers: tiny values stay visible, zeros are exact, layers read as in code."""

from __future__ import annotations

import re

from glassnet import nn
from glassnet.inspect import fmt, svg


def test_number_keeps_tiny_values_and_writes_zero_only_for_zero():
    assert fmt.number(0.0) == "0" and fmt.number(-0.0) == "0"
    assert fmt.number(3e-9) == "3e-9" and fmt.number(5.17e-6) == "5.17e-6"
    assert fmt.number(0.0042) == "0.0042" and fmt.number(2.30259) == "2.3" and fmt.number(1000.0) == "1000"
    assert fmt.number(123456.0) == "1.23e5"
    assert fmt.pair(2.3031, 2.3012) == ("2.303", "2.301")


def test_layers_read_as_code_with_type_and_shape():
    assert fmt.short("2") == "model[2]" and fmt.short("fc1") == "fc1"
    assert fmt.code("features.0") == "model.features[0]"
    assert fmt.describe(nn.Linear(784, 256)) == "Linear 784->256"
    assert fmt.describe(nn.BatchNorm1d(64)) == "BatchNorm1d 64"


def test_depth_chart_has_a_tick_per_layer_and_shows_zeros():
    chart = svg.line_chart(
        [("step 0", [0, 1, 2, 3], [0.0, 0.0, 2e-3, 5e-3])],
        "rms of dL/dz across depth",
        log_y=True,
        categories=["model[0]", "model[2]", "model[4]", "model[6]"],
        zero_label="0 (no gradient)",
    )
    ticks = re.findall(r'text-anchor="middle">(model\[\d\])</text>', chart)
    assert ticks == ["model[0]", "model[2]", "model[4]", "model[6]"]
    assert chart.count("<path") == 3  # a cross on each of the two zeros, one in the legend
    assert "= 0 (no gradient)" in chart
    empty = svg.line_chart([("a", [0], [None])], "t", empty="no ReLU in this model")
    assert "no ReLU in this model" in empty
