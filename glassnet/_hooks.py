"""RemovableHandle: what every ``register_*_hook`` returns; ``remove()`` unregisters the hook."""

from __future__ import annotations

import itertools


class RemovableHandle:
    """Removes one hook from the dict (id -> hook) it was registered in, as PyTorch's handle does.

    Example:
        >>> hooks = {}
        >>> handle = RemovableHandle(hooks)
        >>> hooks[handle.id] = print
        >>> handle.remove(); hooks
        {}
    """

    _ids = itertools.count()

    def __init__(self, hooks: dict) -> None:
        self.hooks = hooks
        self.id = next(RemovableHandle._ids)

    def remove(self) -> None:
        self.hooks.pop(self.id, None)

    def __enter__(self) -> RemovableHandle:
        return self

    def __exit__(self, *exc) -> None:
        self.remove()
