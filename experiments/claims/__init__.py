"""The claims registry: each claim reads run records, measures, compares with the theory, and
returns a ``ClaimRecord`` with a verdict.

Every claim returns named numbers (``Number``): what it measured, and for those its verdict
rests on, the rule each must meet (``measured <= theory`` within a tolerance). The verdict is
computed from them: a claim holds when every checked number passes. Everything
about a claim that is not measured (id, statement, source, status, tolerance, the records it
reads) is declared once, in its ``@claim(...)`` line.

*Gating* follows from the status tag alone (``is_gating``): a claim whose status carries
[paper] or [checked], and none of [recalled], [observation] or [heuristic], gates ``make
verify``. Every gating claim states its tolerance, and the mutation suite
(``experiments.mutants``) proves that some wrong variant of the code trips it.

A failure is a failure: a run that diverges or never reaches eps within its budget T counts as
"at least T" (``censor``) in every slope, ratio and median, and a method that should converge
but does not fails its claim. A claim meeting a non-finite or malformed value reports FAIL
with the reason; ``evaluate`` never raises.

The registry lives beside ``experiments/verify.py`` rather than in the library: a claim knows
which experiment wrote which record and how, which is the verification layer's knowledge, not
``research``'s. References: docs/theory.md.

The package, one concern per module: ``registry`` (``Claim``, ``@claim``, ``Number``,
``Outcome``, ``by_id``, gating, the word for a verdict), ``rerun`` (how far a rerun may move a
number), ``values`` (record values
as numbers, censored counts, their printed forms), ``run`` (reading records, evaluating the
claims), one module per subject (``quartic``, ``audit``, ``max_step``, ``complexity``,
``hard_instance``, ``stochastic``, ``practice``, ``networks``, ``smoothness``), ``render``
(CLAIMS.md and SMOOTHNESS.md) and ``ledger`` (every published number, paper_figures/claims.json,
and how two ledgers compare). A new claim goes in its subject's module; a new subject is a new
module, imported below at its place in CLAIMS.md.
"""

from __future__ import annotations

import importlib
import pkgutil

from experiments.claims.registry import (
    GATING_TAGS,
    REGISTRY,
    REPORT_ONLY_TAGS,
    Claim,
    ClaimRecord,
    Number,
    Outcome,
    by_id,
    claim,
    failed,
    is_gating,
    tags,
    verdict_word,
)
from experiments.claims.rerun import EXACT, ROUNDING, Rerun
from experiments.claims.run import evaluate, evaluate_records, load_records
from experiments.claims.values import censor, median_text, number, numbers, reached

# The subjects, in the order of CLAIMS.md: importing a subject's module registers its claims,
# so the order of these imports is the registry's (and out of reach of import sorting).
# isort: off
from experiments.claims import quartic, audit, max_step, complexity, hard_instance  # noqa: F401
from experiments.claims import stochastic, practice  # noqa: F401
from experiments.claims.networks import NETWORKS, network_row
from experiments.claims.smoothness import SMOOTHNESS_RERUN, interval_verdict
# isort: on
from experiments.claims.ledger import (
    Entry,
    Move,
    claim_entries,
    compare,
    read_json,
    smoothness_entries,
    to_json,
)
from experiments.claims.render import markdown_cell, run_lengths_text, smoothness_table, to_markdown

# A new subject needs no line here: every other module of the package registers its claims
# after these, in alphabetical order (docs/extending.md).
_INFRASTRUCTURE = {"registry", "rerun", "run", "values", "render", "ledger"}
for _module in sorted(m.name for m in pkgutil.iter_modules(__path__)):
    if _module not in _INFRASTRUCTURE:
        importlib.import_module(f"experiments.claims.{_module}")

__all__ = ["GATING_TAGS", "REGISTRY", "REPORT_ONLY_TAGS", "Claim", "ClaimRecord", "Number",
           "Outcome", "by_id", "claim", "failed", "is_gating", "tags", "verdict_word", "EXACT",
           "ROUNDING", "Rerun", "evaluate",
           "evaluate_records", "load_records", "censor", "median_text", "number", "numbers",
           "reached", "NETWORKS", "network_row", "SMOOTHNESS_RERUN", "interval_verdict",
           "markdown_cell", "run_lengths_text", "smoothness_table", "to_markdown", "Entry", "Move",
           "claim_entries", "compare", "read_json", "smoothness_entries", "to_json"]
