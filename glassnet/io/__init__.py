"""glassnet.io: checkpoints and state dicts as safetensors files (atomic writes, validated reads, no pickle).

Needs the optional ``safetensors`` package: ``pip install glassnet[io]``.

Example:
    >>> import os, tempfile
    >>> import glassnet as gn
    >>> path = os.path.join(tempfile.mkdtemp(), "ckpt.safetensors")
    >>> gn.io.save({"epoch": 2, "rng": gn.get_rng_state()}, path)
    >>> gn.io.load(path)["rng"] == gn.get_rng_state()
    True
"""

from glassnet.io.checkpoint import CheckpointError, load, load_state_dict, save, save_state_dict

__all__ = ["CheckpointError", "load", "load_state_dict", "save", "save_state_dict"]
