"""glassnet: a neural-network library on NumPy with PyTorch's API, that shows what happens inside.

Example:
    >>> import glassnet as gn
    >>> x = gn.tensor([1.0, -2.0], requires_grad=True)
    >>> y = (x.relu() * 3).sum()
    >>> y.backward()
    >>> x.grad
    tensor([3., 0.])
"""

from glassnet._backend import bool_ as bool  # noqa: A001  (torch.bool)
from glassnet._backend import (
    float32,
    float64,
    get_default_dtype,
    get_rng_state,
    int64,
    manual_seed,
    set_default_dtype,
    set_rng_state,
)
from glassnet._parallel import get_num_threads, set_num_threads
from glassnet.autograd import GlassnetError, enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from glassnet.factory import (
    abs,
    arange,
    argmax,
    as_tensor,
    cat,
    clamp,
    concat,
    empty,
    exp,
    eye,
    flatten,
    from_numpy,
    full,
    full_like,
    is_tensor,
    linspace,
    log,
    matmul,
    maximum,
    mean,
    minimum,
    numel,
    ones,
    ones_like,
    rand,
    rand_like,
    randint,
    randn,
    randn_like,
    randperm,
    reshape,
    sqrt,
    stack,
    sum,
    tensor,
    where,
    zeros,
    zeros_like,
)
from glassnet.tensor import Tensor

float = float32  # noqa: A001  (torch.float)
double = float64
long = int64

__version__ = "0.1.0"

# The subpackages, so that `gn.nn`, `gn.optim`, `gn.inspect`, ... work after `import glassnet as gn`.
from glassnet import compiled, data, datasets, inspect, io, nn, optim  # noqa: E402

save = io.save
load = io.load
