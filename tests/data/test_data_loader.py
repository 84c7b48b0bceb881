"""DataLoader: batching, shuffling, drop_last, reproducibility and exact resumption."""

from __future__ import annotations

import numpy as np
import pytest

import glassnet as gn
import glassnet.io
from glassnet.data import DataLoader, Dataset, Subset, TensorDataset


class CountingDataset(Dataset):
    """A dataset without arrays, read sample by sample; counts the reads."""

    def __init__(self, n: int) -> None:
        self.n, self.reads = n, 0

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i):
        self.reads += 1
        return np.full(2, i, dtype=np.float32), i


def labels(loader) -> list[list[int]]:
    return [batch[-1].tolist() for batch in loader]


def make(n=10):
    return TensorDataset(gn.from_numpy(np.arange(n * 2, dtype=np.float32).reshape(n, 2)), gn.arange(n))


def test_batches_in_order_with_last_partial():
    loader = DataLoader(make(10), batch_size=4)
    batches = list(loader)
    assert len(loader) == 3 and len(batches) == 3
    assert [tuple(x.shape) for x, _ in batches] == [(4, 2), (4, 2), (2, 2)]
    assert labels(loader) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    x, y = batches[0]
    assert isinstance(x, gn.Tensor) and x.dtype == np.float32 and y.dtype == np.int64
    np.testing.assert_array_equal(x.numpy(), [[0, 1], [2, 3], [4, 5], [6, 7]])


def test_drop_last():
    loader = DataLoader(make(10), batch_size=4, drop_last=True)
    assert len(loader) == 2
    assert labels(loader) == [[0, 1, 2, 3], [4, 5, 6, 7]]


def test_batches_are_copies():
    ds = make(4)
    x, _ = next(iter(DataLoader(ds, batch_size=2)))
    x.data[...] = -1
    assert ds.tensors[0].data.min() >= 0


def test_shuffle_is_a_permutation_and_changes_per_epoch():
    loader = DataLoader(make(50), batch_size=8, shuffle=True)
    first = sum(labels(loader), [])
    second = sum(labels(loader), [])
    assert sorted(first) == list(range(50)) and sorted(second) == list(range(50))
    assert first != list(range(50)) and first != second


def test_shuffle_inputs_and_labels_stay_paired():
    for x, y in DataLoader(make(30), batch_size=7, shuffle=True):
        np.testing.assert_array_equal(x.numpy()[:, 0], 2 * y.numpy())


def test_manual_seed_reproduces_global_order():
    loader = DataLoader(make(40), batch_size=5, shuffle=True)
    gn.manual_seed(123)
    a = labels(loader) + labels(loader)
    gn.manual_seed(123)
    b = labels(loader) + labels(loader)
    gn.manual_seed(124)
    c = labels(loader)
    assert a == b and a[: len(c)] != c


def test_seed_and_generator():
    a = labels(DataLoader(make(40), batch_size=5, shuffle=True, seed=7))
    gn.manual_seed(999)  # the loader's own generator ignores the global one
    b = labels(DataLoader(make(40), batch_size=5, shuffle=True, seed=7))
    c = labels(DataLoader(make(40), batch_size=5, shuffle=True, generator=np.random.default_rng(7)))
    assert a == b == c
    with pytest.raises(gn.GlassnetError, match="either generator or seed"):
        DataLoader(make(4), generator=np.random.default_rng(0), seed=0)
    with pytest.raises(TypeError, match="numpy.random.Generator"):
        DataLoader(make(4), generator=7)


@pytest.mark.parametrize("batch_size", [0, -1, 2.0, True])
def test_bad_batch_size(batch_size):
    with pytest.raises(gn.GlassnetError, match="batch_size"):
        DataLoader(make(4), batch_size=batch_size)


def test_array_backed_fast_path_does_not_read_samples(monkeypatch):
    ds = make(10)
    monkeypatch.setattr(TensorDataset, "__getitem__", lambda self, i: pytest.fail("read one sample"))
    assert labels(DataLoader(ds, batch_size=3, shuffle=True)) != []


def test_subset_of_array_backed_uses_rows():
    sub = Subset(Subset(make(10), [9, 8, 7, 6, 5]), [4, 0, 2])
    assert labels(DataLoader(sub, batch_size=2)) == [[5, 9], [7]]


def test_generic_dataset_and_collate_fn():
    ds = CountingDataset(5)
    assert labels(DataLoader(ds, batch_size=2)) == [[0, 1], [2, 3], [4]]
    assert ds.reads == 5
    sums = [b for b in DataLoader(make(4), batch_size=2, collate_fn=lambda samples: len(samples))]
    assert sums == [2, 2]


def test_generic_and_array_paths_agree_under_shuffle():
    gn.manual_seed(5)
    fast = labels(DataLoader(make(20), batch_size=6, shuffle=True))
    gn.manual_seed(5)
    slow = labels(DataLoader(CountingDataset(20), batch_size=6, shuffle=True))
    assert fast == slow


def test_empty_dataset():
    loader = DataLoader(make(0), batch_size=4, shuffle=True)
    assert len(loader) == 0 and list(loader) == []


@pytest.mark.parametrize("mode", ["global", "seed", "generator"])
@pytest.mark.parametrize("stop_after", [0, 1, 3, 5])
def test_resume_mid_epoch_reproduces_the_rest(mode, stop_after):
    """A loader restored from state_dict() after k batches yields exactly the batches the original would."""

    def build(generator_seed=11):
        kwargs = {"seed": 3} if mode == "seed" else {}
        if mode == "generator":
            kwargs["generator"] = np.random.default_rng(generator_seed)
        return DataLoader(make(23), batch_size=4, shuffle=True, **kwargs)

    gn.manual_seed(0)
    original = build()
    epoch1 = labels(original)
    it = iter(original)
    head = [next(it)[1].tolist() for _ in range(stop_after)]
    state = original.state_dict()
    global_state = gn.get_rng_state()
    generator_state = original.generator.bit_generator.state if mode == "generator" else None
    rest = [y.tolist() for _, y in it]
    epoch3 = labels(original)
    assert head + rest != epoch1  # a new order per epoch

    gn.manual_seed(42)  # the resumed run starts from another global state ...
    resumed = build(generator_seed=99)
    resumed.load_state_dict(state)
    gn.set_rng_state(global_state)  # ... and restores the checkpointed one, as a trainer does
    if mode == "generator":
        resumed.generator.bit_generator.state = generator_state
    if stop_after == 0:
        assert labels(resumed) == head + rest
    else:
        assert labels(resumed) == rest
    assert labels(resumed) == epoch3  # and the following epoch matches too


def test_resume_does_not_touch_global_generator():
    loader = DataLoader(make(20), batch_size=4, shuffle=True)
    it = iter(loader)
    next(it)
    state = loader.state_dict()
    before = gn.get_rng_state()
    resumed = DataLoader(make(20), batch_size=4, shuffle=True)
    resumed.load_state_dict(state)
    list(resumed)
    assert gn.get_rng_state() == before


def test_state_dict_reports_position():
    loader = DataLoader(make(10), batch_size=3)
    it = iter(loader)
    next(it), next(it)
    state = loader.state_dict()
    assert state["batches_yielded"] == 2 and state["epoch_rng_state"] is None
    resumed = DataLoader(make(10), batch_size=3)
    resumed.load_state_dict(state)
    assert labels(resumed) == [[6, 7, 8], [9]]
    assert labels(resumed) == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]


def test_load_state_dict_rejects_mismatch():
    state = DataLoader(make(10), batch_size=3, shuffle=True).state_dict()
    with pytest.raises(gn.GlassnetError, match="batch_size=3"):
        DataLoader(make(10), batch_size=4, shuffle=True).load_state_dict(state)
    with pytest.raises(gn.GlassnetError, match="dataset_length=10"):
        DataLoader(make(11), batch_size=3, shuffle=True).load_state_dict(state)
    with pytest.raises(gn.GlassnetError, match="expected keys"):
        DataLoader(make(10), batch_size=3, shuffle=True).load_state_dict({"batches_yielded": 1})
    seeded = DataLoader(make(10), batch_size=3, shuffle=True, seed=1).state_dict()
    with pytest.raises(gn.GlassnetError, match="seed="):
        DataLoader(make(10), batch_size=3, shuffle=True).load_state_dict(seeded)


def test_state_survives_a_checkpoint_file(tmp_path):
    pytest.importorskip("safetensors")
    loader = DataLoader(make(20), batch_size=3, shuffle=True, seed=5)
    it = iter(loader)
    next(it)
    gn.io.save({"loader": loader.state_dict()}, tmp_path / "ckpt.safetensors")
    rest = [y.tolist() for _, y in it]
    resumed = DataLoader(make(20), batch_size=3, shuffle=True, seed=5)
    resumed.load_state_dict(gn.io.load(tmp_path / "ckpt.safetensors")["loader"])
    assert labels(resumed) == rest
