"""Hydra's joblib and submitit_local launchers with faults confined (``guarded_launchers``),
found by Hydra's plugin discovery."""

from ._errors import WorkerLost  # the one class: Hydra's scanner re-runs non-underscore modules

__all__ = ["WorkerLost"]
