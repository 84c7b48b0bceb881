"""The optional C extension of glassnet's compiled kernels; everything else is in pyproject.toml.

``optional=True``: where no C compiler is found, the build of the extension fails quietly and
glassnet installs without it (its NumPy path runs everything).
"""

import sys

from setuptools import Extension, setup

if sys.platform == "win32":
    args = ["/O2", "/fp:precise"]
else:
    # No -ffast-math and no FMA contraction: the same arithmetic, bit for bit, as the NumPy path.
    args = ["-O3", "-pthread", "-fopenmp-simd", "-ffp-contract=off", "-fno-math-errno", "-fno-trapping-math"]

setup(
    ext_modules=[
        Extension(
            "glassnet._ckernels",
            ["glassnet/_kernels.c", "glassnet/_gemm.c"],  # _gemm.c: Linear's float32 GEMM and its threads
            depends=["glassnet/_gemm.h"],
            extra_compile_args=args,
            extra_link_args=[] if sys.platform == "win32" else ["-pthread"],
            optional=True,
        )
    ]
)
