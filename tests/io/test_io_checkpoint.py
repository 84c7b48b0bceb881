"""glassnet.io.save/load: exact round trips of nested checkpoints, damaged files, state-dict files."""

from __future__ import annotations

import json
import math
import struct
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import glassnet as gn
import glassnet.io
from glassnet.data import DataLoader, TensorDataset
from glassnet.io import CheckpointError

pytest.importorskip("safetensors")


def assert_same(a, b, where="state"):
    """Equal values of exactly the same types, all the way down."""
    assert type(a) is type(b), f"{where}: {type(a).__name__} != {type(b).__name__}"
    if isinstance(a, gn.Tensor):
        assert_same(a.data, b.data, where)
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape, f"{where}: {a.dtype}{a.shape} != {b.dtype}{b.shape}"
        np.testing.assert_array_equal(a, b, err_msg=where)
    elif isinstance(a, (float, np.floating)):
        assert (math.isnan(a) and math.isnan(b)) or a == b, f"{where}: {a!r} != {b!r}"
        if not math.isnan(a):  # -0.0 stays -0.0; a NaN's payload bits are not kept (JSON has one NaN)
            assert np.asarray(a).tobytes() == np.asarray(b).tobytes(), f"{where}: {a!r} != {b!r} bitwise"
    elif isinstance(a, dict):
        assert list(a) == list(b), f"{where}: keys {list(a)} != {list(b)}"
        for key in a:
            assert type(key) is type(next(k for k in b if k == key)), f"{where}: key {key!r} changed type"
            assert_same(a[key], b[key], f"{where}[{key!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{where}[{i}]")
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def training_checkpoint() -> dict:
    rng = np.random.default_rng(0)
    loader = DataLoader(TensorDataset(gn.arange(10)), batch_size=3, shuffle=True, seed=1)
    it = iter(loader)
    next(it)
    return {
        "model": {
            "0.weight": rng.standard_normal((4, 3)).astype(np.float32),
            "0.bias": np.zeros(4, np.float32),
            "1.running_mean": rng.standard_normal(4).astype(np.float32),
            "1.num_batches_tracked": np.array(12, dtype=np.int64),
        },
        "optimizer": {
            "state": {
                0: {"step": 3, "exp_avg": rng.standard_normal((4, 3)), "exp_avg_sq": rng.random((4, 3))},
                1: {"step": 3, "exp_avg": np.zeros(4), "exp_avg_sq": np.zeros(4)},
            },
            "param_groups": [
                {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0, "amsgrad": False, "params": [0, 1]}
            ],
        },
        "scheduler": {"last_epoch": 4, "base_lrs": [0.1], "_last_lr": [0.05], "gamma": 0.5, "verbose": None},
        "epoch": 7,
        "rng": gn.get_rng_state(),
        "numpy_rng": np.random.default_rng(2**70).bit_generator.state,
        "loader": loader.state_dict(),
        "misc": {
            "nan": math.nan,
            "inf": math.inf,
            "-inf": -math.inf,
            "tiny": 5e-324,
            "float32": np.float32(0.1),
            "float16": np.float16(-2.5),
            "int64": np.int64(-3),
            "uint8": np.uint8(200),
            "bool_": np.bool_(False),
            "tensor": gn.randn(2, 3),
            "scalar_array": np.array(2.5, dtype=np.float32),
            "empty_array": np.zeros((0, 5), dtype=np.int32),
            "fortran": np.asfortranarray(rng.standard_normal((3, 2))),
            "big_endian": np.arange(4, dtype=">i4"),
            "tuple_key": {(1, "a"): "x", 2.5: None, True: [1, (2, 3)]},
            "tag_lookalike": {"__tuple__": [1, 2]},
            "empty": {},
            "empty_list": [],
            "empty_tuple": (),
            "big": -(2**80),
            "unicode": "héllo ✓",
            "bools": [True, False],
            "dtypes": {name: np.arange(3).astype(name) for name in ("bool", "int8", "uint16", "int32", "uint64")},
        },
    }


def test_round_trip_of_a_training_checkpoint(tmp_path):
    state = training_checkpoint()
    path = tmp_path / "ckpt.safetensors"
    gn.io.save(state, path)
    loaded = gn.io.load(path)
    expected = dict(state)
    expected["misc"] = dict(state["misc"], big_endian=np.arange(4, dtype=np.int32))  # read back native-endian
    assert_same(expected, loaded)
    assert loaded["model"]["0.weight"].flags.writeable
    np.random.default_rng().bit_generator.state = loaded["numpy_rng"]  # a usable bit-generator state


def test_tensor_keys_are_readable_flattened_names(tmp_path):
    from safetensors.numpy import load_file

    path = tmp_path / "ckpt.safetensors"
    gn.io.save({"model": {"fc.weight": np.ones((2, 2))}, "optimizer": {"state": {0: {"exp_avg": np.ones(2)}}}}, path)
    assert sorted(load_file(path)) == ["model.fc.weight", "optimizer.state.0.exp_avg"]


def test_colliding_flattened_keys_stay_apart(tmp_path):
    state = {"a.b": np.zeros(1), "a": {"b": np.ones(1)}, 0: np.full(1, 2.0), "0": np.full(1, 3.0)}
    gn.io.save(state, tmp_path / "c.safetensors")
    assert_same(state, gn.io.load(tmp_path / "c.safetensors"))


json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=5)
arrays = st.builds(
    lambda shape, dtype, seed: (np.random.default_rng(seed).standard_normal(shape) * 10).astype(dtype),
    st.lists(st.integers(0, 3), max_size=3).map(tuple),
    st.sampled_from(["float32", "float64", "int64", "uint8", "bool"]),
    st.integers(0, 1000),
)
trees = st.recursive(
    json_scalars | arrays,
    lambda children: (
        st.lists(children, max_size=3)
        | st.lists(children, max_size=3).map(tuple)
        | st.dictionaries(st.text(max_size=4) | st.integers(-5, 5), children, max_size=3)
    ),
    max_leaves=12,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tree=trees)
def test_round_trip_property(tmp_path, tree):
    path = tmp_path / "p.safetensors"
    gn.io.save(tree, path)
    assert_same(tree, gn.io.load(path))


def test_unsupported_values_are_named(tmp_path):
    with pytest.raises(TypeError, match=r"set at state\['a'\]\[0\]"):
        gn.io.save({"a": [set()]}, tmp_path / "x.safetensors")
    with pytest.raises(TypeError, match="dtype object"):
        gn.io.save({"a": np.array([None])}, tmp_path / "x.safetensors")
    with pytest.raises(TypeError, match="dict key of type frozenset"):
        gn.io.save({frozenset(): 1}, tmp_path / "x.safetensors")
    assert not list(tmp_path.iterdir())  # nothing was written


def damaged(tmp_path, data: bytes):
    path = tmp_path / "damaged.safetensors"
    path.write_bytes(data)
    return path


def good_bytes(tmp_path) -> bytes:
    path = tmp_path / "good.safetensors"
    gn.io.save({"w": np.arange(1000, dtype=np.float32), "epoch": 3}, path)
    return path.read_bytes()


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda b: b"", "not a safetensors file"),
        (lambda b: b"hello, I am a text file and certainly not a checkpoint", "not a safetensors file"),
        (lambda b: b[:4], "not a safetensors file"),
        (lambda b: b[:40], "truncated"),
        (lambda b: b[: len(b) - 100], "damaged"),
        (lambda b: b[:9] + b"!" + b[10:], "corrupt safetensors header"),
        (lambda b: b[:-10] + bytes(x ^ 0xFF for x in b[-10:]), "CRC-32"),
        (lambda b: b + b"\x00" * 8, "damaged"),
    ],
)
def test_damaged_file_is_a_clear_error(tmp_path, mutate, message):
    path = damaged(tmp_path, mutate(good_bytes(tmp_path)))
    with pytest.raises(CheckpointError, match=message) as info:
        gn.io.load(path)
    assert str(path) in str(info.value)
    assert isinstance(info.value, gn.GlassnetError)


def test_safetensors_file_without_glassnet_metadata(tmp_path):
    from safetensors.numpy import save_file

    path = tmp_path / "plain.safetensors"
    save_file({"w": np.zeros(2)}, str(path))
    with pytest.raises(CheckpointError, match="not a glassnet checkpoint.*load_state_dict"):
        gn.io.load(path)


def test_corrupt_structure_metadata(tmp_path):
    from safetensors.numpy import save_file

    from glassnet.io.checkpoint import FORMAT, _crc32

    path = tmp_path / "bad.safetensors"
    tensors = {"w": np.zeros(2)}
    for structure, message in [("{not json", "corrupt glassnet structure"), ('{"__ndarray__": "v"}', "'v'")]:
        metadata = {"glassnet.format": FORMAT, "glassnet.structure": structure, "glassnet.crc32": _crc32(tensors)}
        save_file(tensors, str(path), metadata=metadata)
        with pytest.raises(CheckpointError, match=message):
            gn.io.load(path)


def test_header_size_field_lies(tmp_path):
    data = good_bytes(tmp_path)
    path = damaged(tmp_path, struct.pack("<Q", 2**60) + data[8:])
    with pytest.raises(CheckpointError, match="header claims"):
        gn.io.load(path)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        gn.io.load(tmp_path / "absent.safetensors")


def test_missing_safetensors_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "safetensors", None)
    monkeypatch.setitem(sys.modules, "safetensors.numpy", None)
    for call in (lambda: gn.io.save({"a": 1}, tmp_path / "x"), lambda: gn.io.load(tmp_path / "x")):
        with pytest.raises(ImportError, match=r"pip install glassnet\[io\]"):
            call()


def test_state_dict_files(tmp_path):
    path = tmp_path / "model.safetensors"
    state = {"fc.weight": gn.randn(3, 2), "fc.bias": np.zeros(3, np.float32), "bn.num_batches_tracked": np.array(4)}
    gn.io.save_state_dict(state, path, metadata={"arch": "mlp"})
    loaded = gn.io.load_state_dict(path)
    assert sorted(loaded) == sorted(state)
    np.testing.assert_array_equal(loaded["fc.weight"], state["fc.weight"].numpy())
    assert loaded["bn.num_batches_tracked"].shape == () and loaded["fc.bias"].flags.writeable
    with open(path, "rb") as f:
        header = json.loads(f.read(struct.unpack("<Q", f.read(8))[0]))
    assert header["__metadata__"] == {"arch": "mlp"}  # a plain safetensors file, no glassnet structure
    with pytest.raises(TypeError, match="not an array or Tensor"):
        gn.io.save_state_dict({"w": [1, 2]}, path)
    with pytest.raises(TypeError, match="names must be strings"):
        gn.io.save_state_dict({0: np.zeros(1)}, path)
    damaged_path = damaged(tmp_path, path.read_bytes()[:-3])
    with pytest.raises(CheckpointError, match="damaged"):
        gn.io.load_state_dict(damaged_path)


def test_state_dict_files_interoperate_with_torch(tmp_path, torch):
    from safetensors.torch import load_file, save_file

    path = tmp_path / "model.safetensors"
    gn.io.save_state_dict({"w": np.arange(6, dtype=np.float32).reshape(2, 3)}, path)
    assert torch.equal(load_file(str(path))["w"], torch.arange(6, dtype=torch.float32).reshape(2, 3))
    save_file({"layer.weight": torch.ones(2, 2, dtype=torch.float64)}, str(path))
    loaded = gn.io.load_state_dict(path)
    assert loaded["layer.weight"].dtype == np.float64 and loaded["layer.weight"].sum() == 4
