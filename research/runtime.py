"""Process-wide JAX settings, made explicit: entry points, tests and the figure pipeline call
``configure`` once; importing ``research`` changes nothing.

Like optax and equinox, the library never touches global configuration on import: a notebook's
unrelated JAX code keeps float32 and its own devices. What needs float64 (the theory checks
compare quantities to about 1e-12, beyond float32's resolution) calls ``require_x64``, which
says in one sentence how to switch it on.

References: J. Zhang, T. He, S. Sra, A. Jadbabaie, "Why gradient clipping accelerates
training: a theoretical justification for adaptivity", ICLR 2020 (docs/theory.md).
"""

from __future__ import annotations

import logging
import os
import sys

__all__ = ["configure", "require_x64", "x64_enabled"]


def _usable_cores() -> int:
    """The cores this process may run on: its CPU affinity where the platform has one (a
    cluster task is pinned to its own), else every core."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def configure(*, x64: bool = True, cpu_devices: int | None = None) -> None:
    """Set float64 mode and the number of CPU devices for this process and its children.

    Args:
      x64: switch JAX's float64 mode on (the theory checks need it) or off.
      cpu_devices: CPU devices XLA exposes, so ``research.engine`` can shard a batch across
        cores; None: one per core this process may run on (a SLURM task's CPUs, not the
        node's). It takes effect only before JAX's CPU backend starts (the
        first computation); later, a different count is refused in one sentence.

    The settings also go into the environment, which JAX reads when it is first imported, so
    a launcher's worker processes (joblib, submitit) inherit them; a process that only reads
    records never imports JAX.

    References: docs/architecture.md, "Process settings".
    """
    n = _usable_cores() if cpu_devices is None else int(cpu_devices)
    if n < 1:
        raise ValueError(f"cpu_devices must be a positive integer; got {cpu_devices!r}.")
    os.environ["JAX_ENABLE_X64"] = "1" if x64 else "0"
    os.environ["JAX_NUM_CPU_DEVICES"] = str(n)
    # JAX logs at INFO that it found no TPU; on a CPU-only project that is noise.
    logging.getLogger("jax._src.xla_bridge").setLevel(logging.WARNING)
    jax = sys.modules.get("jax")
    if jax is None:
        return
    jax.config.update("jax_enable_x64", bool(x64))
    if jax.config.jax_num_cpu_devices == n:
        return
    try:
        jax.config.update("jax_num_cpu_devices", n)
    except RuntimeError:  # the CPU backend already started with its own count
        if jax.local_device_count() == n:
            return
        raise RuntimeError(
            f"cpu_devices={n} cannot take effect: JAX already runs on "
            f"{jax.local_device_count()} devices; call research.runtime.configure before "
            "the first JAX computation.") from None


def x64_enabled() -> bool:
    """Whether JAX computes in float64 now."""
    import jax

    return bool(jax.config.read("jax_enable_x64"))


def require_x64(what: str) -> None:
    """Raise ``RuntimeError`` in one sentence unless float64 mode is on.

    Args:
      what: the function or quantity that needs it, as the user would name it.
    """
    if not x64_enabled():
        raise RuntimeError(
            f"{what} needs float64: call research.runtime.configure(x64=True) before using "
            "JAX (importing research does not switch it on).")
