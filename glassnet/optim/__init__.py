"""Optimizers (SGD, RMSprop, Adam, AdamW) over the Optimizer base, and learning-rate schedules (lr_scheduler).

Example:
    >>> import glassnet as gn
    >>> from glassnet import optim
    >>> w = gn.tensor([1.0, -1.0], requires_grad=True)
    >>> opt = optim.Adam([w], lr=1e-3)
    >>> sched = optim.lr_scheduler.StepLR(opt, step_size=10)
"""

from glassnet.optim import lr_scheduler
from glassnet.optim.adam import Adam
from glassnet.optim.adamw import AdamW
from glassnet.optim.optimizer import Optimizer
from glassnet.optim.rmsprop import RMSprop
from glassnet.optim.sgd import SGD

__all__ = ["Optimizer", "SGD", "RMSprop", "Adam", "AdamW", "lr_scheduler"]
