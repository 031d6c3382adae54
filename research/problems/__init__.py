"""Test problems: closed-form (L0,L1)-smooth functions, an L-smooth control, logistic
regression and Pascanu's recurrent cliff.

Use ``Problem`` to define your own, or ``get(name, **kwargs)`` for a registered one.

Modules: ``base`` (the type and the registry), ``closed_form`` (x^4, x^6/6, ||x||^(2n),
cosh, quadratic), ``regression`` (logistic regression), ``recurrent`` (the cliff),
``networks`` (small networks on packaged data), ``text`` (a character-level LSTM language
model on the standard library's source), ``resnet`` (a small equinox ResNet with batch
normalisation on scikit-learn's digits).
"""

from research.problems.base import Problem, get, gradient_check, names, register
from research.problems.closed_form import cosh, hard_instance, power, quadratic, quartic, sextic
from research.problems.networks import (
    adding,
    adding_data,
    classifier_apply,
    digits,
    digits_data,
    lstm_apply,
    lstm_init,
    mlp_apply,
    mlp_init,
    mlp_regression,
    regression_data,
    resnet_digits,
    rnn_apply,
    rnn_init,
    sigmoid_chain_loss,
)
from research.problems.recurrent import cliff, cliff_loss
from research.problems.regression import logistic
from research.problems.stochastic import noisy
from research.problems.text import char_data, char_lm, corpus

__all__ = [
    "Problem", "get", "gradient_check", "names", "register",
    "cliff", "cliff_loss", "cosh", "hard_instance", "logistic", "power", "quadratic", "quartic",
    "adding", "adding_data", "classifier_apply", "digits", "digits_data", "lstm_apply",
    "lstm_init", "mlp_apply", "mlp_init", "mlp_regression", "noisy", "regression_data",
    "rnn_apply", "rnn_init", "sextic", "sigmoid_chain_loss",
    "char_data", "char_lm", "corpus", "resnet_digits",
]
