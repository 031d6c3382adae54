"""Figure scripts: each reads run records and draws one figure (PDF + PNG)."""

FIGURES = ("quartic_trajectories", "descent_audit", "max_step", "iteration_complexity",
           "hard_instance", "stochastic", "clipping_mlp", "clipping_rnn", "clipping_seeds",
           "smoothness", "clipping_networks", "norm_type", "clipping_thresholds")
"""Every figure script of this package, in the order of the index."""
