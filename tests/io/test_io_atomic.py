"""Atomic saves: a save killed at any moment (SIGKILL) or failing midway leaves the previous checkpoint."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import glassnet as gn
import glassnet.io
from glassnet.io import _atomic

pytest.importorskip("safetensors")

# Saves checkpoints 0, 1, 2, ... forever; checkpoint i holds step=i and 2M float32 values equal to i.
CHILD = textwrap.dedent(
    """
    import sys
    import time
    import numpy as np
    import glassnet.io
    path, writer = sys.argv[1], sys.argv[2]
    if writer == "direct":  # the control: a plain, non-atomic write, slowed so that kills land in it
        def direct(target, data):
            with open(target, "wb") as f:
                for start in range(0, len(data), 1 << 16):
                    f.write(data[start : start + (1 << 16)])
                    f.flush()
                    time.sleep(0.001)
        glassnet.io.checkpoint.atomic_write = direct
    weights = np.empty(2_000_000, dtype=np.float32)
    step = 0
    while True:
        weights.fill(step)
        glassnet.io.save({"step": step, "weights": weights, "rng": {"state": 2**100 + step}}, path)
        if step == 0:
            print("saved", flush=True)
        step += 1
    """
)


def kill_while_saving(path, writer: str, rng: random.Random) -> None:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path), writer], stdout=subprocess.PIPE, env=env, text=True
    )
    try:
        assert child.stdout.readline().strip() == "saved"
        time.sleep(rng.uniform(0.0, 0.25))
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert child.returncode == -signal.SIGKILL


def check_is_one_of_the_saved_states(path) -> int:
    state = gn.io.load(path)
    step = state["step"]
    assert state["rng"] == {"state": 2**100 + step}
    assert state["weights"].shape == (2_000_000,)
    assert (state["weights"] == step).all()
    return step


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX signals")
def test_sigkill_during_saves_leaves_a_loadable_checkpoint(tmp_path):
    path = tmp_path / "ckpt.safetensors"
    gn.io.save({"step": -1, "weights": np.full(2_000_000, -1, dtype=np.float32), "rng": {"state": 2**100 - 1}}, path)
    rng = random.Random(0)
    for _ in range(4):
        kill_while_saving(path, "atomic", rng)
        assert check_is_one_of_the_saved_states(path) >= 0
    strays = [p for p in tmp_path.iterdir() if p.name != path.name]
    assert all(p.name.startswith(".ckpt.safetensors.") and p.name.endswith(".tmp") for p in strays)


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX signals")
def test_the_kill_test_catches_a_non_atomic_writer(tmp_path):
    """The control: with a plain write, a kill soon leaves a torn file (so the test above can fail)."""
    path = tmp_path / "ckpt.safetensors"
    rng = random.Random(1)
    for _ in range(10):
        kill_while_saving(path, "direct", rng)
        try:
            check_is_one_of_the_saved_states(path)
        except (gn.GlassnetError, AssertionError):
            return
    pytest.fail("10 kills during non-atomic writes never left a torn file")


def test_failure_before_the_rename_keeps_the_old_file_and_cleans_up(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.safetensors"
    gn.io.save({"step": 1}, path)

    def broken_replace(src, dst):
        raise OSError("disk on fire")

    monkeypatch.setattr(_atomic.os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk on fire"):
        gn.io.save({"step": 2}, path)
    assert gn.io.load(path) == {"step": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.safetensors"]


def test_save_into_a_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        gn.io.save({"step": 1}, tmp_path / "nope" / "ckpt.safetensors")


def test_file_mode_follows_umask(tmp_path):
    path = tmp_path / "ckpt.safetensors"
    old = os.umask(0o022)
    try:
        gn.io.save({"step": 1}, path)
    finally:
        os.umask(old)
    if os.name == "posix":
        assert path.stat().st_mode & 0o777 == 0o644
