"""Resuming reproduces the uninterrupted run bit for bit: in one process, and after SIGKILL of the training process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.train.resume_job import EPOCHS, HALF, STEPS, build, parameters

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}


def _job(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tests.train.resume_job", *args],
        cwd=ROOT,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_resume_after_sigkill_gives_identical_parameters(tmp_path):
    straight = _job("straight", str(tmp_path / "straight.npz"))
    assert straight.returncode == 0, straight.stderr

    checkpoint = tmp_path / "half.safetensors"
    first = subprocess.Popen(
        [sys.executable, "-m", "tests.train.resume_job", "first", str(checkpoint)],
        cwd=ROOT,
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = first.stdout.readline()
        assert line.split() == ["SAVED", str(HALF)], first.stderr.read() if not line else line
        first.send_signal(signal.SIGKILL)
        assert first.wait(timeout=60) == -signal.SIGKILL
    finally:
        if first.poll() is None:
            first.kill()
        first.stdout.close()
        first.stderr.close()

    resumed = _job("resume", str(checkpoint), str(tmp_path / "resumed.npz"))
    assert resumed.returncode == 0, resumed.stderr
    with np.load(tmp_path / "straight.npz") as a, np.load(tmp_path / "resumed.npz") as b:
        assert sorted(a.files) == sorted(b.files)
        for name in a.files:
            assert a[name].tobytes() == b[name].tobytes(), f"{name} differs after resuming"


def test_resume_in_process_from_a_mid_epoch_checkpoint(tmp_path):
    straight, train, val = build()
    straight.fit(train, val, epochs=EPOCHS, max_steps=STEPS)

    first, train, val = build()
    first.fit(train, val, epochs=EPOCHS, max_steps=HALF)
    assert first._batch_in_epoch == HALF % len(train) != 0  # the checkpoint really is mid-epoch
    first.save_checkpoint(tmp_path / "half.safetensors")
    first.fit(train, val, epochs=EPOCHS, max_steps=STEPS)  # going on in the same process, too

    resumed, train, val = build()
    resumed.load_checkpoint(tmp_path / "half.safetensors")
    resumed.fit(train, val, epochs=EPOCHS, max_steps=STEPS)

    for other in (first, resumed):
        assert other.global_step == straight.global_step == STEPS
        assert _metrics(other) == _metrics(straight)
        for name, value in parameters(straight).items():
            assert parameters(other)[name].tobytes() == value.tobytes(), name


def _metrics(trainer) -> list[list[float]]:
    """Every epoch's logged values except the timings."""
    keys = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "lr")
    return [[logs[k] for k in keys] for logs in trainer.history.epochs]


def test_resuming_mid_epoch_needs_a_resumable_loader(tmp_path):
    trainer, train, val = build()
    trainer.fit(train, val, epochs=EPOCHS, max_steps=HALF)
    trainer.save_checkpoint(tmp_path / "half.safetensors")
    other, train, val = build()
    other.load_checkpoint(tmp_path / "half.safetensors")
    with pytest.raises(ValueError, match="mid-epoch"):
        other.fit(list(train), val, epochs=EPOCHS)
