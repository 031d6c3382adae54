"""Hydra entry points: ``python -m experiments.<name>``. Each composes a config, calls
``research`` and writes a run record; none of them draws."""
