"""Test problems: closed-form (L0,L1)-smooth functions, an L-smooth control, logistic
regression, Pascanu's recurrent cliff and small networks on packaged data.

Use ``Problem`` to define your own, or ``get(name, **kwargs)`` for a registered one.

Modules (families): ``base`` (the type and the registry), ``closed_form`` (x^4, x^6/6,
||x||^(2n), cosh, quadratic), ``regression`` (logistic regression), ``recurrent`` (the cliff),
``networks`` (small networks on packaged data), ``text`` (a character-level LSTM language
model on the standard library's source), ``resnet`` (a small equinox ResNet with batch
normalisation on scikit-learn's digits), ``stochastic`` (noisy gradients).

A family is imported when one of its names is first used, so a program (and the Makefile's
dependency graph, ``experiments/deps.py``) depends only on the families it names.
"""

import importlib

from research.problems.base import FAMILY_OF, Problem, factory, get, gradient_check, names, register

LAZY = {
    "cosh": "closed_form", "hard_instance": "closed_form", "power": "closed_form",
    "quadratic": "closed_form", "quartic": "closed_form", "sextic": "closed_form",
    "adding": "networks", "adding_data": "networks", "classifier_apply": "networks",
    "digits": "networks", "digits_data": "networks", "lstm_apply": "networks",
    "lstm_init": "networks", "mlp_apply": "networks", "mlp_init": "networks",
    "mlp_regression": "networks", "regression_data": "networks", "resnet_digits": "resnet",
    "rnn_apply": "networks", "rnn_init": "networks", "sigmoid_chain_loss": "networks",
    "cliff": "recurrent", "cliff_loss": "recurrent",
    "logistic": "regression",
    "noisy": "stochastic",
    "char_data": "text", "char_lm": "text", "corpus": "text",
}
"""Public name -> the family module that defines it (a literal: the Makefile reads it)."""

__all__ = ["FAMILY_OF", "LAZY", "Problem", "factory", "get", "gradient_check", "names",
           "register", *LAZY]


def __getattr__(name: str):
    """A family's names are imported on first use."""
    if name in LAZY:
        return getattr(importlib.import_module(f"research.problems.{LAZY[name]}"), name)
    raise AttributeError(f"module 'research.problems' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(LAZY))
