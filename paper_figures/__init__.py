"""Figure scripts: each reads run records and draws one figure (PDF + PNG).

Which figures exist, and in which order the index shows them, follows from the experiments'
declarations (``experiments.registry``): each experiment names the figures it owns.
"""

from experiments import registry

FIGURES = tuple(registry.figures())
"""Every figure script of this package, in the order of the index."""
