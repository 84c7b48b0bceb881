"""Shared test fixtures: seeding, the PyTorch oracle and the compiled kernels (both required when CI=true)."""

from __future__ import annotations

import numpy as np
import pytest

import glassnet as gn
from tests.helpers import require_in_ci, skip_without_compiled


def _import_torch():
    try:
        import torch
    except ImportError:
        require_in_ci("torch")
        return None
    torch.set_num_threads(1)
    return torch


TORCH = _import_torch()


@pytest.fixture
def torch():
    """The torch module; the test is skipped without it (and fails in CI, see _import_torch)."""
    if TORCH is None:
        pytest.skip("torch is not installed")
    return TORCH


@pytest.fixture(params=["numpy", "compiled"])
def kernel_path(request):
    """Runs the test on the pure NumPy kernels and on the compiled ones (the C extension)."""
    if request.param == "compiled":
        skip_without_compiled()
    with gn.compiled.flags(enabled=request.param == "compiled"):
        yield request.param


@pytest.fixture(autouse=True)
def _seed():
    gn.manual_seed(0)
    np.random.seed(0)
    yield


@pytest.fixture(autouse=True)
def _restore_threads():
    """A test that changes glassnet's thread count (the CLI sets it) leaves it as it found it, with whether
    ``set_num_threads`` had been called (which decides, e.g., whether Linear in inference takes the GEMM)."""
    from glassnet import _parallel

    threads, configured = _parallel.get_num_threads(), _parallel._configured
    yield
    if _parallel.get_num_threads() != threads:
        gn.set_num_threads(threads)
    _parallel._configured = configured
