"""Gradient clipping under (L0,L1)-smoothness: problems, optimizers, engine and theory in JAX.

Importing ``research`` changes no global JAX or XLA setting. Entry points call
``research.runtime.configure()`` to switch on float64 and one CPU device per core; code that
needs float64 says so in one sentence when it is off (``research.runtime.require_x64``).

References: J. Zhang, T. He, S. Sra, A. Jadbabaie, "Why gradient clipping accelerates
training: a theoretical justification for adaptivity", ICLR 2020 (arXiv:1905.11881).
"""

import importlib

__all__ = ["clipping", "engine", "optimizers", "problems", "runtime", "theory"]


def __getattr__(name: str):
    """``research.engine`` and the other submodules are imported on first use."""
    if name in __all__:
        return importlib.import_module(f"research.{name}")
    raise AttributeError(f"module 'research' has no attribute {name!r}")
