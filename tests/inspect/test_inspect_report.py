"""The HTML report: self-contained, every section present, names escaped; it loads in headless Chromium."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest

from glassnet import nn, optim
from glassnet.inspect import Recorder, report, run_inspection
from glassnet.inspect.report import SECTIONS
from tests.inspect import zoo


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    """A report of a small run whose model has a hostile module name."""
    model = nn.Sequential()
    model.add_module("fc<script>alert(1)</script>", nn.Linear(64, 32))
    model.add_module("act", nn.ReLU())
    model.add_module("out", nn.Linear(32, 10))
    nn.init.constant_(model.get_submodule("fc<script>alert(1)</script>").bias, -20.0)
    path = tmp_path_factory.mktemp("report") / "report.html"
    findings = run_inspection(
        model, nn.CrossEntropyLoss(), zoo.digits_batches(count=4), optim.Adam(model.parameters()), 12, path
    )
    return path, path.read_text(encoding="utf-8"), findings


def test_report_is_self_contained_with_every_section(page):
    _, text, findings = page
    for key, title in SECTIONS:
        assert f'<section id="{key}"><h2>{title}</h2>' in text
    assert not re.search(r"<script|<link|<img|@import|https?://(?!www\.w3\.org/2000/svg)", text)
    assert text.count("<svg") >= 8
    assert findings[0].rule == "dead_relu" and "dead_relu" in text
    assert "out (Linear 32-&gt;10)" in text  # a layer reads as its name, type and shape
    assert "no layer followed by a Sigmoid or Tanh" in text  # an empty chart says why


def test_report_escapes_model_names(page):
    _, text, _ = page
    assert "<script>alert(1)</script>" not in text
    assert "fc&lt;script&gt;alert(1)&lt;/script&gt;" in text


def test_report_takes_a_history_and_findings(tmp_path):
    model = nn.Sequential(nn.Linear(64, 10))
    opt = optim.SGD(model.parameters(), lr=0.1)
    with Recorder(model, optimizer=opt) as rec:
        zoo.train_accuracy(model, opt, zoo.digits_batches(count=2), 3)
    path = report(rec, tmp_path / "r.html", findings=[], history={"val_accuracy": [0.2, 0.5, 0.7]})
    text = open(path, encoding="utf-8").read()
    assert "No finding" in text and 'aria-label="accuracy"' in text and "val_accuracy" in text


def _chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail("CI=true but chromium is not installed (apt-get install -y chromium): the report must be opened")
    pytest.skip("chromium is not installed")


def _run_chromium(tmp_path, *args):
    command = [
        _chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--enable-logging=stderr",
        "--v=0",
        *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=90)


def test_report_loads_in_headless_chromium_without_console_errors(page, tmp_path):
    path, _, _ = page
    done = _run_chromium(tmp_path, "--dump-dom", path.as_uri())
    assert done.returncode == 0, done.stderr[-2000:]
    console = [line for line in done.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert console == []
    for key, _ in SECTIONS:
        assert f'id="{key}"' in done.stdout
    assert done.stdout.count("<svg") >= 8 and "dead_relu" in done.stdout
