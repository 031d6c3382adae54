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

import logging  # noqa: E402

import jax  # noqa: E402

# JAX logs at INFO that it found no TPU; on this CPU-only project that is noise.
logging.getLogger("jax._src.xla_bridge").setLevel(logging.WARNING)

jax.config.update("jax_enable_x64", True)

from research import clipping, engine, optimizers, problems, theory  # noqa: E402

__all__ = ["clipping", "engine", "optimizers", "problems", "theory"]
