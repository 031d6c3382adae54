"""Gradient clipping under (L0,L1)-smoothness: problems, optimizers, engine and theory in JAX.

Importing ``research`` asks XLA for one CPU device per core (see below) and switches on
JAX's float64 mode (``jax_enable_x64``): the theory checks compare quantities to about
1e-12, which float32 cannot resolve. Code that wants float32 (the small networks) asks for it
explicitly and says so in its records.

References: J. Zhang, T. He, S. Sra, A. Jadbabaie, "Why gradient clipping accelerates
training: a theoretical justification for adaptivity", ICLR 2020 (arXiv:1905.11881).
"""

import os

# Expose every CPU core as a JAX device so that ``research.engine`` can split a batch of
# trajectories across cores. XLA reads this flag when its CPU backend starts, so it has an
# effect only when nothing has used JAX yet; set XLA_FLAGS yourself to override it.
if "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (
        os.environ.get("XLA_FLAGS", "")
        + f" --xla_force_host_platform_device_count={os.cpu_count() or 1}"
    ).strip()

import importlib  # noqa: E402
import logging  # noqa: E402
import sys  # noqa: E402

# JAX logs at INFO that it found no TPU; on this CPU-only project that is noise.
logging.getLogger("jax._src.xla_bridge").setLevel(logging.WARNING)

# float64 without importing JAX here: JAX reads JAX_ENABLE_X64 when it is first imported, so
# a process that only reads records or checks a finished sweep (research.results) never pays
# for JAX. If JAX is already imported, its config is switched directly.
os.environ["JAX_ENABLE_X64"] = "1"
if "jax" in sys.modules:
    sys.modules["jax"].config.update("jax_enable_x64", True)

__all__ = ["clipping", "engine", "optimizers", "problems", "theory"]


def __getattr__(name: str):
    """``research.engine`` and the other submodules are imported on first use."""
    if name in __all__:
        return importlib.import_module(f"research.{name}")
    raise AttributeError(f"module 'research' has no attribute {name!r}")
