"""Shape ops: reshape/view, transpose/permute/.T, flatten, squeeze/unsqueeze, expand, getitem, cat, stack, pad."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import glassnet as gn
from glassnet.ops import Pad
from tests.helpers import OpSpec, enroll

MASK = np.random.default_rng(3).random((3, 4)) > 0.4
REPEATED = np.array([0, 2, 0, 0, 1])


def _torch_pad(pad, value=0.0):
    return lambda torch, x: torch.nn.functional.pad(x, pad, value=value)


SPECS = [
    OpSpec("reshape", lambda lib, x: x.reshape(4, 3), [(3, 4)]),
    OpSpec("reshape_tuple_minus_one", lambda lib, x: x.reshape((2, -1)), [(2, 3, 2)]),
    OpSpec("view", lambda lib, x: x.view(-1), [(3, 4)]),
    OpSpec("reshape_of_transpose", lambda lib, x: x.T.reshape(12), [(3, 4)]),  # a copy, not a view
    OpSpec("transpose", lambda lib, x: x.transpose(0, 2), [(2, 3, 4)]),
    OpSpec("transpose_negative", lambda lib, x: x.transpose(-1, -2), [(2, 3, 4)]),
    OpSpec("T", lambda lib, x: x.T, [(3, 4)]),
    OpSpec("mT", lambda lib, x: x.mT, [(2, 3, 4)]),
    OpSpec("permute", lambda lib, x: x.permute(2, 0, 1), [(2, 3, 4)]),
    OpSpec("permute_tuple", lambda lib, x: x.permute((1, 2, 0)), [(2, 3, 4)]),
    OpSpec("flatten", lambda lib, x: x.flatten(), [(2, 3, 4)]),
    OpSpec("flatten_start_dim", lambda lib, x: x.flatten(1), [(2, 3, 4)]),
    OpSpec("flatten_middle", lambda lib, x: lib.flatten(x, 0, 1), [(2, 3, 4)]),
    OpSpec("squeeze_all", lambda lib, x: x.squeeze(), [(1, 3, 1, 4)]),
    OpSpec("squeeze_dim", lambda lib, x: x.squeeze(2), [(1, 3, 1, 4)]),
    OpSpec("squeeze_non_unit_dim", lambda lib, x: x.squeeze(1), [(1, 3, 1, 4)]),
    OpSpec("unsqueeze", lambda lib, x: x.unsqueeze(1), [(3, 4)]),
    OpSpec("unsqueeze_negative", lambda lib, x: x.unsqueeze(-1), [(3, 4)]),
    OpSpec("expand", lambda lib, x: x.expand(2, 3, 4), [(3, 1)]),
    OpSpec("expand_minus_one", lambda lib, x: x.expand(5, -1), [(1, 4)]),
    OpSpec("getitem_int", lambda lib, x: x[1], [(3, 4)]),
    OpSpec("getitem_negative_int", lambda lib, x: x[-1, 2], [(3, 4)]),
    OpSpec("getitem_slices", lambda lib, x: x[1:, ::2], [(3, 4)]),
    OpSpec("getitem_ellipsis_none", lambda lib, x: x[..., None, 1], [(2, 3, 4)]),
    OpSpec("getitem_repeated_indices", lambda lib, x: x[lib.tensor(REPEATED)], [(3, 4)]),
    OpSpec("getitem_two_index_arrays", lambda lib, x: x[lib.tensor([0, 2, 0]), lib.tensor([1, 1, 1])], [(3, 4)]),
    OpSpec("getitem_slice_and_list", lambda lib, x: x[:, [2, 0, 2]], [(3, 4)]),
    OpSpec("getitem_boolean_mask", lambda lib, x: x[lib.tensor(MASK)], [(3, 4)]),
    OpSpec("getitem_boolean_rows", lambda lib, x: x[lib.tensor([True, False, True])], [(3, 4)]),
    OpSpec("cat", lambda lib, a, b: lib.cat([a, b]), [(2, 3), (4, 3)]),
    OpSpec("cat_dim1_three", lambda lib, a, b, c: lib.cat([a, b, c], dim=1), [(2, 1), (2, 3), (2, 2)]),
    OpSpec("cat_negative_dim", lambda lib, a, b: lib.cat((a, b), dim=-1), [(2, 3, 1), (2, 3, 2)]),
    OpSpec("cat_same_tensor_twice", lambda lib, a: lib.cat([a, a * 2], dim=0), [(2, 3)]),
    OpSpec("stack", lambda lib, a, b: lib.stack([a, b]), [(2, 3), (2, 3)]),
    OpSpec("stack_last_dim", lambda lib, a, b, c: lib.stack([a, b, c], dim=-1), [(2, 3), (2, 3), (2, 3)]),
    OpSpec("pad_last", lambda lib, x: Pad.apply(x, pad=(1, 2)), [(2, 3)], torch_op=_torch_pad((1, 2))),
    OpSpec(
        "pad_two_dims_value",
        lambda lib, x: Pad.apply(x, pad=(1, 0, 2, 1), value=-1.0),
        [(2, 3, 4)],
        torch_op=_torch_pad((1, 0, 2, 1), value=-1.0),
    ),
    OpSpec(
        "pad_image",
        lambda lib, x: Pad.apply(x, pad=(1, 1, 1, 1)),
        [(1, 2, 3, 3)],
        torch_op=_torch_pad((1, 1, 1, 1)),
    ),
]


test_finite_differences, test_matches_torch, test_backward_is_linear = enroll(SPECS)


@settings(max_examples=30, deadline=None)
@given(indices=st.lists(st.integers(0, 4), min_size=1, max_size=12))
def test_getitem_backward_counts_repeated_indices(indices):
    """x[idx].sum() sends to each row as many ones as idx names it (a scatter-add, not an assignment)."""
    x = gn.ones(5, 2, dtype=gn.float64, requires_grad=True)
    x[gn.tensor(indices)].sum().backward()
    counts = np.bincount(indices, minlength=5).astype(np.float64)
    np.testing.assert_array_equal(x.grad.data, np.repeat(counts[:, None], 2, axis=1))


def test_views_share_memory_and_the_version_counter():
    x = gn.arange(12).reshape(3, 4)
    view = x.view(4, 3)
    assert np.shares_memory(view.data, x.data)
    view.fill_(7)
    assert x._version == view._version == 1
    assert (x.data == 7).all()


def test_reshape_to_a_bad_size_names_shapes():
    with pytest.raises(gn.GlassnetError, match=r"cannot reshape \(3, 4\) \(12 elements\) into \(5, 2\)"):
        gn.ones(3, 4).reshape(5, 2)


def test_permute_with_bad_dims_names_op():
    with pytest.raises(
        gn.GlassnetError, match=r"permute: dims \(0, 0, 1\) is not a permutation of the 3 axes of \(2, 3, 4\)"
    ):
        gn.ones(2, 3, 4).permute(0, 0, 1)


def test_cat_and_stack_shape_mismatches_name_the_shapes():
    with pytest.raises(ValueError, match=r"cat: shapes \[\(2, 3\), \(2, 4\)\] differ outside dim 0"):
        gn.cat([gn.ones(2, 3), gn.ones(2, 4)])
    with pytest.raises(ValueError, match=r"stack: expects tensors of one shape, got \[\(2, 3\), \(3, 2\)\]"):
        gn.stack([gn.ones(2, 3), gn.ones(3, 2)])
    with pytest.raises(TypeError, match=r"cat: tensors have different dtypes"):
        gn.cat([gn.ones(2), gn.ones(2, dtype=gn.float64)])


def test_index_out_of_range_is_an_index_error_naming_the_shape():
    with pytest.raises(IndexError, match=r"GetItem: index 3 is out of bounds.*\(3, 4\)"):
        gn.ones(3, 4)[3]


def test_negative_pad_is_rejected():
    with pytest.raises(gn.GlassnetError, match=r"pad: negative padding"):
        Pad.apply(gn.ones(2, 3), pad=(-1, 0))


def test_squeeze_and_unsqueeze_out_of_range():
    with pytest.raises(IndexError, match=r"unsqueeze: dim 4 is out of range"):
        gn.ones(2, 3).unsqueeze(4)
    with pytest.raises(IndexError, match=r"squeeze: dim 2 is out of range"):
        gn.ones(2, 3).squeeze(2)
