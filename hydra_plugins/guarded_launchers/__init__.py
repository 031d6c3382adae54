"""Hydra's joblib and submitit_local launchers with faults confined (``guarded_launchers``),
found by Hydra's plugin discovery."""
