"""The glassnet command end to end, through subprocesses: train, evaluate, predict, resume, inspect, errors."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

import glassnet as gn
from glassnet.train.data_spec import load_split

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def glassnet(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "glassnet", *args],
        cwd=cwd or ROOT,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _accuracy(stdout: str) -> float:
    line = [line for line in stdout.splitlines() if "test accuracy:" in line][-1]
    return float(line.split("test accuracy:")[1].split("%")[0]) / 100


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A short run saved to a checkpoint: (path, stdout of train)."""
    path = tmp_path_factory.mktemp("cli") / "run.safetensors"
    result = glassnet("train", "--epochs", "4", "--model", "mlp:64", "--save", str(path), "--progress", "none")
    assert result.returncode == 0, result.stderr
    return path, result.stdout


def _assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def test_train_with_no_arguments_reaches_97_percent_on_the_digits():
    result = glassnet("train", "--progress", "none")
    assert result.returncode == 0, result.stderr
    print(result.stdout.splitlines()[-1])
    assert _accuracy(result.stdout) >= 0.97


def test_train_prints_one_line_per_epoch_without_a_terminal(trained):
    _, stdout = trained
    assert not any(line.startswith("epoch ") for line in stdout.splitlines())  # --progress none
    result = glassnet("train", "--epochs", "2", "--model", "mlp:16")
    epochs = [line for line in result.stdout.splitlines() if line.startswith("epoch ")]
    assert [line.split("  ")[0] for line in epochs] == ["epoch 1/2", "epoch 2/2"]
    assert all("samples/s" in line and "loss" in line for line in epochs)


def test_evaluate_reports_the_accuracy_that_train_printed(trained):
    path, stdout = trained
    result = glassnet("evaluate", "--checkpoint", str(path))
    assert result.returncode == 0, result.stderr
    assert _accuracy(result.stdout) == _accuracy(stdout) > 0.8


def test_predict_on_npy_png_and_pgm(trained, tmp_path):
    path, _ = trained
    split = load_split("digits")
    samples, labels = split.x_test[:10], split.y_test[:10]
    np.save(tmp_path / "batch.npy", samples)
    result = glassnet("predict", "--checkpoint", str(path), str(tmp_path / "batch.npy"))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 10 and lines[0].startswith(f"{tmp_path / 'batch.npy'}[0]: class ")
    predicted = [int(line.split("class ")[1].split(",")[0]) for line in lines]
    assert sum(p == y for p, y in zip(predicted, labels)) >= 8

    # One sample as an image: an 8x8 PGM, and a 32x32 PNG (block-averaged back to 8x8).
    image = np.round(samples[0, 0] * 255).astype(np.uint8)
    (tmp_path / "digit.pgm").write_bytes(b"P5\n8 8\n255\n" + image.tobytes())
    (tmp_path / "digit.png").write_bytes(_png(np.kron(image, np.ones((4, 4), np.uint8))))
    np.save(tmp_path / "one.npy", samples[0])
    outputs = []
    for name in ("one.npy", "digit.pgm", "digit.png"):
        result = glassnet("predict", "--checkpoint", str(path), str(tmp_path / name))
        assert result.returncode == 0, result.stderr
        outputs.append(result.stdout.split(": ", 1)[1].split(",")[0])
    assert outputs == [f"class {predicted[0]}"] * 3


def _png(grey: np.ndarray) -> bytes:
    """A grey 8-bit PNG whose scanlines use each of the five filter types in turn (None, Sub, Up, Average, Paeth)."""
    height, width = grey.shape
    rows, previous = [], np.zeros(width, dtype=np.int64)
    for y in range(height):
        row = grey[y].astype(np.int64)
        left = np.concatenate([[0], row[:-1]])
        up_left = np.concatenate([[0], previous[:-1]])
        kind = y % 5
        if kind == 0:
            filtered = row
        elif kind == 1:
            filtered = row - left
        elif kind == 2:
            filtered = row - previous
        elif kind == 3:
            filtered = row - (left + previous) // 2
        else:
            p = left + previous - up_left
            pa, pb, pc = np.abs(p - left), np.abs(p - previous), np.abs(p - up_left)
            predictor = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, previous, up_left))
            filtered = row - predictor
        rows.append(bytes([kind]) + (filtered % 256).astype(np.uint8).tobytes())
        previous = row

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"".join(rows)))
        + chunk(b"IEND", b"")
    )


def test_resume_continues_the_saved_run_exactly(tmp_path):
    common = ["--model", "mlp:32", "--schedule", "constant", "--progress", "none"]
    straight, resumed = tmp_path / "straight.safetensors", tmp_path / "resumed.safetensors"
    assert glassnet("train", *common, "--epochs", "3", "--save", str(straight)).returncode == 0
    assert glassnet("train", *common, "--epochs", "2", "--save", str(resumed)).returncode == 0
    result = glassnet("train", "--resume", str(resumed), "--epochs", "3", "--save", str(resumed), "--progress", "none")
    assert result.returncode == 0, result.stderr
    assert "resuming" in result.stdout and "epoch 2 (step" in result.stdout
    a, b = gn.io.load(straight), gn.io.load(resumed)
    assert a["trainer"]["epoch"] == b["trainer"]["epoch"] == 3
    for key, value in a["model"].items():
        assert value.numpy().tobytes() == b["model"][key].numpy().tobytes(), key


def test_train_on_a_csv_table(tmp_path):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 300)
    features = rng.normal(size=(300, 4)) + 3 * np.eye(3, 4)[labels]
    rows = ["a,b,c,d,label"] + [",".join(f"{v:.4f}" for v in f) + f",{y}" for f, y in zip(features, labels)]
    (tmp_path / "table.csv").write_text("\n".join(rows) + "\n")
    path = tmp_path / "csv.safetensors"
    result = glassnet("train", "--data", f"csv:{tmp_path / 'table.csv'}", "--epochs", "10", "--save", str(path))
    assert result.returncode == 0, result.stderr
    assert _accuracy(result.stdout) > 0.9
    np.save(tmp_path / "rows.npy", features[:3].astype(np.float32))
    result = glassnet("predict", "--checkpoint", str(path), str(tmp_path / "rows.npy"))
    assert result.returncode == 0 and len(result.stdout.splitlines()) == 3, result.stderr


def test_lenet_on_csv_data_is_refused(tmp_path):
    (tmp_path / "t.csv").write_text("x,label\n1,0\n2,1\n3,0\n4,1\n5,0\n6,1\n7,0\n8,1\n9,0\n10,1\n")
    _assert_one_line_error(glassnet("train", "--model", "lenet", "--data", f"csv:{tmp_path / 't.csv'}"), "lenet")


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["train", "--model", "resnet"], "unknown model"),
        (["train", "--model", "mlp:12,x"], "hidden sizes"),
        (["train", "--data", "imagenet"], "unknown data spec"),
        (["train", "--data", "mnist"], "needs a path"),
        (["train", "--data", "csv:/no/such/table.csv"], "/no/such/table.csv"),
        (["train", "--data", "mnist:/no/such/folder"], "cannot find"),
        (["train", "--epochs", "0"], "positive integer"),
        (["train", "--optimizer", "lbfgs"], "invalid choice"),
        (["train", "--save", "/no/such/folder/run.safetensors"], "does not exist"),
        (["evaluate", "--checkpoint", "/no/such/run.safetensors"], "No such file"),
        (["frobnicate"], "invalid choice"),
        ([], "required"),
    ],
)
def test_bad_arguments_give_one_line_and_exit_code_2(args, fragment):
    _assert_one_line_error(glassnet(*args), fragment)


def test_damaged_checkpoints_give_one_line_and_exit_code_2(trained, tmp_path):
    path, _ = trained
    data = path.read_bytes()
    damaged = tmp_path / "damaged.safetensors"
    damaged.write_bytes(data[:-100] + bytes(b ^ 0xFF for b in data[-100:]))
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(data[: len(data) // 2])
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"not a checkpoint at all")
    for bad in (damaged, truncated, garbage):
        for command in (["evaluate", "--checkpoint", str(bad)], ["train", "--resume", str(bad)]):
            _assert_one_line_error(glassnet(*command), str(bad))
    np.save(tmp_path / "wrong.npy", np.zeros((2, 5)))
    _assert_one_line_error(glassnet("predict", "--checkpoint", str(path), str(tmp_path / "wrong.npy")), "shape")
    (tmp_path / "fake.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)
    _assert_one_line_error(glassnet("predict", "--checkpoint", str(path), str(tmp_path / "fake.png")), "fake.png")


def test_resume_refuses_changed_options(trained):
    path, _ = trained
    _assert_one_line_error(glassnet("train", "--resume", str(path), "--model", "lenet"), "--model")


def test_gradcheck_and_inspect_commands(tmp_path):
    result = glassnet("gradcheck", "--model", "mlp:8", "--samples", "2")
    assert result.returncode == 0, result.stderr
    assert "gradcheck ok" in result.stdout
    report = tmp_path / "report.html"
    result = glassnet("inspect", "--model", "mlp:16", "--steps", "5", "--report", str(report))
    assert result.returncode == 0, result.stderr
    assert "inspection" in result.stdout and report.read_text().lstrip().lower().startswith("<!doctype html")
