"""Local smoothness against gradient norm along training, per model x regime and several
seeds: the data of the paper's Figures 1-3 and of the correlation table.

Each seed s changes the parameter initialisation (the problem's own init drawn with
``seed=s``; the data stay those of the configured problem) and the minibatch order (the
training key PRNGKey(s)). All seeds of all regimes that share an optimizer family train in
one compiled, vmapped call, split across the CPU devices.

Three estimators of the local smoothness at each logged iterate (``ESTIMATORS``):

- ``traj``: the authors' trajectory ratio with full-batch gradients;
- ``sub``: the same ratio with gradients averaged over a random subsample of the training
  rows (the authors' own ``eval_smooth``, which averages over about a tenth of the data):
  ``round(subsample * train_rows)`` rows drawn with replacement (the model's problem built
  with that ``batch_size``; ``train_rows`` from ``train_rows``), afresh at each logged point,
  the same rows at both points of the ratio (``research.smoothness.subsample_key``);
  ``subsample: null`` skips it;
- ``hess``: the Hessian norm by ``hvp_iters`` warm-started power iterations at every
  ``hess_every``-th logged point, on the ``hessian_models``; ``hvp_iters: 0`` skips it.

Per model x regime the record holds, for each estimator, the correlations of log L against
log |g| (full-batch gradient norm) pooled over the seeds, with hierarchical block bootstrap
intervals (``research.stats.log_log_evidence``), the per-seed values, the seed-level
intervals (the seed as the unit, corrected for the rows tested) and the verdict from them
(``VERDICT_RULE``; or only ``{"computed": false, "verdict": "not computed"}`` for a skipped
estimator); and whether each seed trained (its loss fell below the model's ``baseline``, the
constant predictor's loss).
"""

from __future__ import annotations

import inspect
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from omegaconf import DictConfig, OmegaConf

from experiments import groups, records, shards
from experiments.common import Progress, check_seeds, hydra_entry, write
from experiments.registry import Experiment
from research import engine, optimizers, problems, results, smoothness, stats, validate

REGIMES = smoothness.REGIMES[:3]
"""The regimes every model runs (``momentum`` and ``momentum_clip`` run for
``momentum_models`` only)."""

MOMENTUM_REGIMES = smoothness.REGIMES[3:]
"""SGD with momentum without clipping (the control) and with it, at the same lr."""

SERIES = smoothness.SERIES
"""The per-point series of ``smoothness.along_training``, in its order."""

ESTIMATORS = ("traj", "sub", "hess")
"""The estimators, by the suffix of their series ``smoothness_<name>``: full-batch trajectory
ratio, subsample trajectory ratio, Hessian norm."""

NOT_COMPUTED = {"computed": False, "verdict": "not computed"}
"""The record entry of an estimator that the configuration skipped."""

VERDICT_RULE = (
    "per estimator: 'not training' unless every seed trains (its loss falls, "
    "research.stats.is_training, and ends below the model's baseline, the constant "
    "predictor's loss); else, with the seed as the unit (research.stats."
    "seed_level_evidence: within-seed statistics, a t-interval over seeds on Fisher's z, at "
    "a level Bonferroni-corrected over the table's rows x the two trend-robust statistics), "
    "'positive' or 'negative' when the intervals of both the partial Spearman given the "
    "step and the Spearman of log-differences exclude 0 on that side, 'statistics disagree' "
    "when any two of those and the log-log slope exclude 0 on opposite sides, else 'no "
    "evidence'. The pooled bootstrap intervals are reported beside it")
"""How ``runs.<key>.<estimator>.verdict`` is decided."""


def optimizer_for(regime: str, m: dict, momentum: float):
    """The optimizer of one regime (clipping = global-norm clipping of the gradient).

    ``small_lr`` is clipped GD with an infinite threshold: min(lr, inf * lr / |g|) = lr, the
    same arithmetic as ``optimizers.gd(lr)``, and the same optimizer family as the clipped
    regimes, so all three train in one compiled call.
    """
    if regime == "large_lr_clip":
        return optimizers.clipped_gd(m["lr_large"], m["clip"])
    if regime == "small_lr":
        return optimizers.clipped_gd(m["lr_small"], float("inf"))
    if regime == "small_lr_clip":
        return optimizers.clipped_gd(m["lr_small"], m["clip"])
    if regime == "momentum":  # an infinite threshold: the same family, so one compiled call
        return optimizers.sgd_momentum(m["lr_small"], momentum, global_clipnorm=float("inf"))
    if regime == "momentum_clip":
        return optimizers.sgd_momentum(m["lr_small"], momentum, global_clipnorm=m["clip"])
    raise ValueError(f"regimes must be among {', '.join(REGIMES)}; got {regime!r}.")


def init_for_seed(name: str, m: dict, seed: int):
    """The initial parameters of model ``name`` for ``seed``: the problem's init drawn with
    ``seed`` (only the parameters are taken; the data are those of the configured problem)."""
    try:
        return problems.get(m["problem"], **{**m.get("args", {}), "seed": seed}).x0
    except TypeError:
        raise ValueError(f"models.{name}: problem {m['problem']!r} takes no seed argument, so "
                         "seeds cannot change its initialisation.") from None


def train_rows(name: str, m: dict) -> int:
    """The number of training rows of model ``name``'s problem, which its minibatches (and
    the subsample) draw from: ``n`` of ``adding`` and ``char_lm`` (its argument, else the
    factory's default), the 1,500 training images of ``digits`` and ``resnet_digits``
    (``problems.digits_data``; ``resnet_digits``'s ``train_size`` when given), the 500
    training rows of ``mlp_regression``
    (``problems.regression_data``)."""
    prob, args = m["problem"], m.get("args", {})
    if prob in ("adding", "char_lm"):
        default = inspect.signature(getattr(problems, prob)).parameters["n"].default
        return int(args.get("n", default))
    if prob == "resnet_digits" and args.get("train_size") is not None:
        return int(args["train_size"])
    if prob in ("digits", "resnet_digits"):
        return int(problems.digits_data()[0].shape[0])
    if prob == "mlp_regression":
        return int(problems.regression_data()[0].shape[0])
    raise ValueError(f"models.{name}.subsample: the training-set size of problem {prob!r} is "
                     "not known here (experiments.smoothness.train_rows); set subsample: null "
                     "to skip the subsample estimator.")


def subsample_problem(name: str, m: dict):
    """(the model's problem whose ``stochastic_fn`` averages over the subsample, its
    ``{"fraction", "rows", "train_rows"}``), or (None, None) when ``subsample`` is null.

    Raises:
      ValueError: naming ``models.<name>.subsample`` unless it is null or in (0, 1].
    """
    field = f"models.{name}.subsample"
    if "subsample" not in m:
        raise ValueError(f"{field} is missing: give a fraction of the training rows in (0, 1], "
                         "or null to skip the subsample estimator.")
    frac = m["subsample"]
    if frac is None:
        return None, None
    if isinstance(frac, bool) or not isinstance(frac, int | float) or not 0 < frac <= 1:
        raise ValueError(f"{field} must be null or a fraction of the training rows in (0, 1]; "
                         f"got {frac!r}.")
    n = train_rows(name, m)
    rows = max(1, round(frac * n))
    try:
        p = problems.get(m["problem"], **{**m.get("args", {}), "batch_size": rows})
    except (ValueError, TypeError) as err:
        raise ValueError(f"{field}: {err}") from None
    return p, {"fraction": float(frac), "rows": rows, "train_rows": n}


def train_batch(problem, optimizer_list, x0_list, keys, steps: int, log_every: int,
                hvp_iters: int, subsample_fn=None, hess_every: int = 1):
    """``smoothness.along_training`` for a batch of (optimizer, x0, key) triples whose
    optimizers share one ``update`` (one family), in one vmapped call split across devices.

    Returns:
      (series: dict name -> array (batch, points), diverged_at: array (batch,)).
    """
    update = optimizer_list[0].update
    assert all(o.update is update for o in optimizer_list)
    batch = len(optimizer_list)

    def stack(trees):
        return jax.tree_util.tree_map(lambda *a: jnp.stack(a), *trees)

    x0 = stack(x0_list)
    state0 = stack([o.init(x) for o, x in zip(optimizer_list, x0_list, strict=True)])
    keys = jnp.stack(keys)
    args = engine.pad_and_shard((x0, state0, keys), batch)
    run = jax.jit(jax.vmap(lambda x, s, k: smoothness.along_trajectory(
        problem, update, steps, log_every, hvp_iters, x, s, k, subsample_fn=subsample_fn,
        hess_every=hess_every)))
    recs, div_at, _ = jax.device_get(run(*args))
    series = {n: np.asarray(r)[:batch] for n, r in zip(SERIES, recs, strict=True)}
    return series, np.asarray(div_at)[:batch]


def _estimator_stats(g: np.ndarray, L: np.ndarray, it: np.ndarray, seeds: list[int],
                     training: bool, boot: dict) -> dict:
    """The record entry of one estimator: seed-0 legacy values, pooled evidence, the
    seed-level evidence and its verdict (``VERDICT_RULE``; ``boot["corrected"]``: the
    corrected level)."""
    first = smoothness.log_correlations(g[0], L[0], steps=it)
    ok = np.isfinite(g[0]) & np.isfinite(L[0])
    L0, L1 = smoothness.fit_envelope(g[0][ok], L[0][ok]) if ok.any() else (None, None)
    ev = stats.log_log_evidence(list(g), list(L), [it] * len(seeds), n_boot=boot["n_boot"],
                                level=boot["level"], rng=boot["rng"])
    allok = np.isfinite(g) & np.isfinite(L)
    pL0, pL1 = smoothness.fit_envelope(g[allok], L[allok]) if allok.any() else (None, None)
    pooled = {k: ev[k] for k in ("n_points", "n_differences", "n_seeds", "spearman", "slope",
                                 "partial_spearman", "detrended")}
    seed_level = stats.seed_level_evidence(ev["per_seed"], boot["corrected"])
    return {
        **first, "L0": L0, "L1": L1,
        "pooled": {**pooled, "L0": pL0, "L1": pL1},
        "per_seed": {"seed": seeds, **ev["per_seed"]},
        "verdict_partial": ev["verdict_partial"],
        "verdict_detrended": ev["verdict_detrended"],
        "verdict_pooled": ev["verdict"],
        "seed_level": seed_level,
        "verdict": seed_level["verdict"] if training else "not training",
        "bootstrap": ev["bootstrap"],
    }


def _trains(loss, diverged_at: int, margin: float, baseline: float) -> stats.TrainingCheck:
    """Whether one seed trains: its loss falls (``stats.is_training``), it does not diverge,
    and its late loss ends below ``baseline``, the constant predictor's loss."""
    c = stats.is_training(loss, margin)
    if diverged_at >= 0 and c.training:
        return stats.TrainingCheck(False, f"diverged at step {int(diverged_at)}", c.first,
                                   c.last)
    if c.training and not c.last < baseline:
        return stats.TrainingCheck(False, f"late loss {c.last:.4g} not below the constant "
                                          f"predictor's {baseline:.4g}", c.first, c.last)
    return c


def _ci(c: dict) -> str:
    return f"{c['estimate']:+.2f} [{c['lo']:+.2f}, {c['hi']:+.2f}]"


def study(cfg: DictConfig, say, only: list[str] | None = None) -> tuple[dict, dict]:
    """The study's (metrics, traces), every model of ``run_models`` checked and the models in
    ``only`` (default: all) trained and measured. A model's runs depend on its own settings
    and the whole study's (its seeds, the corrected level), never on which other models run
    in the same process: a shard's runs equal the single process's."""
    steps = validate.positive_int("steps", cfg.steps)
    log_every = validate.positive_int("log_every", cfg.log_every)
    if steps % log_every:
        raise ValueError(f"log_every must divide steps; got steps={steps}, "
                         f"log_every={log_every}.")
    hvp_iters = validate.positive_int("hvp_iters", cfg.hvp_iters, minimum=0)  # 0: skip
    hess_every = validate.positive_int("hess_every", cfg.hess_every)
    hessian_models = list(cfg.hessian_models)
    for name in hessian_models:
        validate.choice("hessian_models", name, tuple(cfg.models))
    momentum = float(validate.in_interval("momentum", cfg.momentum, 0.0, 1.0))
    seeds = check_seeds(cfg.seeds)
    boot = {"n_boot": validate.positive_int("n_boot", cfg.n_boot),
            "level": float(validate.in_interval("level", cfg.level, 0.0, 1.0)),
            "rng": validate.positive_int("bootstrap_seed", cfg.bootstrap_seed, minimum=0)}
    margin = float(validate.nonnegative("training_margin", cfg.training_margin))
    regimes = list(cfg.regimes)
    for r in regimes:
        validate.choice("regimes", r, REGIMES)
    models = OmegaConf.to_container(cfg.models, resolve=True)
    for name in cfg.run_models:
        validate.choice("run_models", name, tuple(models))
    models = {name: models[name] for name in cfg.run_models}
    for name in cfg.momentum_models:
        validate.choice("momentum_models", name, tuple(cfg.models))
    built, inits, subs = {}, {}, {}
    for name, m in models.items():
        m["problem"], m["args"] = groups.problem_entry(f"models.{name}.problem", m.get("problem"))
        for key in ("lr_large", "lr_small", "clip", "baseline"):
            validate.positive(f"models.{name}.{key}", m.get(key))
        m["regimes"] = m.get("regimes", regimes)
        if not isinstance(m["regimes"], list) or not m["regimes"]:
            raise ValueError(f"models.{name}.regimes must be a list of at least one of "
                             f"{', '.join(REGIMES)}; got {m['regimes']!r}.")
        for r in m["regimes"]:
            validate.choice(f"models.{name}.regimes", r, REGIMES)
        try:
            built[name] = problems.get(m["problem"], **m.get("args", {}))
        except (ValueError, TypeError) as err:
            raise ValueError(f"models.{name}: {err}") from None
        inits[name] = [init_for_seed(name, m, s) for s in seeds]
        subs[name] = subsample_problem(name, m)
        m["steps"] = validate.positive_int(f"models.{name}.steps", m.get("steps", steps))
        m["log_every"] = validate.positive_int(f"models.{name}.log_every",
                                                m.get("log_every", log_every))
        if m["steps"] % m["log_every"]:
            raise ValueError(f"models.{name}.log_every must divide models.{name}.steps; got "
                             f"steps={m['steps']}, log_every={m['log_every']}.")
        m["hvp_iters"] = hvp_iters if name in hessian_models else 0
        m["hess_every"] = hess_every
    rows = sum(len(m["regimes"]) + len(MOMENTUM_REGIMES) * (name in cfg.momentum_models)
               for name, m in models.items())
    boot["corrected"] = 1 - (1 - boot["level"]) / (2 * rows)
    metrics = {"steps": steps, "log_every": log_every, "hvp_iters": hvp_iters,
               "hess_every": hess_every,
               "hessian_models": [n for n in models if models[n]["hvp_iters"] > 0],
               "models": list(models), "seeds": seeds, "estimators": list(ESTIMATORS),
               "subsample": {name: subs[name][1] for name in models},
               "bootstrap": {**boot, "method": "hierarchical circular block bootstrap "
                             "(seeds with replacement, then blocks within each seed); block "
                             "length from the lag-1 autocorrelation (research.stats."
                             "block_length)", "interval": "percentile"},
               "training_margin": margin, "verdict_rule": VERDICT_RULE,
               "seed_level": {"level": boot["corrected"], "rows": rows, "tests": 2 * rows,
                              "correction": "Bonferroni"},
               "runs": {}}
    traces = {}
    keys = [jax.random.PRNGKey(s) for s in seeds]
    for name, problem in built.items():
        if only is not None and name not in only:
            continue
        m = models[name]
        it = np.arange(0, m["steps"], m["log_every"])
        sub_problem, sub_info = subs[name]
        sub_fn = None if sub_problem is None else sub_problem.stochastic_fn
        todo = m["regimes"] + (list(MOMENTUM_REGIMES) if name in cfg.momentum_models else [])
        opts = {r: optimizer_for(r, m, momentum) for r in todo}
        families: dict = {}
        for r in todo:
            families.setdefault(opts[r].update, []).append(r)
        results = {}
        for members in families.values():
            series, div_at = train_batch(
                problem, [opts[r] for r in members for _ in seeds],
                [x for _ in members for x in inits[name]], keys * len(members), m["steps"],
                m["log_every"], m["hvp_iters"], sub_fn, m["hess_every"])
            S = len(seeds)
            for i, r in enumerate(members):
                results[r] = ({k: v[i * S:(i + 1) * S] for k, v in series.items()},
                              div_at[i * S:(i + 1) * S])
        for regime in todo:
            out, div_at = results[regime]
            key = f"{name}/{regime}"
            traces[f"{key}/iteration"] = it
            for s in SERIES:
                traces[f"{key}/{s}"] = out[s]
            checks = []
            for loss, d in zip(out["loss"], div_at, strict=True):
                checks.append(_trains(loss, d, margin, m["baseline"]))
            training = all(c.training for c in checks)
            loss = out["loss"]
            last = [float(v[np.isfinite(v)][-1]) if np.isfinite(v).any() else None
                    for v in loss]
            rec = {
                "model": name, "regime": regime, "problem": problem.description,
                "optimizer": {"regime": regime, "lr": m["lr_large" if regime ==
                                                         "large_lr_clip" else "lr_small"],
                              "clip": None if regime in ("small_lr", "momentum") else m["clip"],
                              "momentum": momentum if regime in MOMENTUM_REGIMES else 0.0},
                "seeds": seeds, "steps": m["steps"], "log_every": m["log_every"],
                "subsample": sub_info,
                "hessian": {"hvp_iters": m["hvp_iters"], "every": m["hess_every"]},
                "diverged_at": int(div_at[0]),
                "loss_first": float(loss[0][0]),
                "loss_last": last[0],
                "training": training, "baseline": m["baseline"],
                "per_seed": {"seed": seeds, "diverged_at": [int(d) for d in div_at],
                             "loss_first": [float(v[0]) for v in loss], "loss_last": last,
                             "training": [c.training for c in checks],
                             "training_reason": [c.reason for c in checks],
                             "loss_last_quarter": [c.last for c in checks]},
            }
            computed = {"traj": True, "sub": sub_fn is not None, "hess": m["hvp_iters"] > 0}
            for est in ESTIMATORS:
                # the Hessian's own points only: its log-differences pair measured neighbours
                at = slice(None, None, m["hess_every"] if est == "hess" else 1)
                rec[est] = (_estimator_stats(out["grad_norm"][:, at],
                                             out[f"smoothness_{est}"][:, at], it[at], seeds,
                                             training, boot)
                            if computed[est] else dict(NOT_COMPUTED))
            metrics["runs"][key] = rec
            t, h, u = rec["traj"], rec["hess"], rec["sub"]
            n_train = sum(c.training for c in checks)
            say(f"{key:22s} loss {rec['loss_first']:.3g} -> {rec['loss_last'] or float('nan'):.3g}"
                f" (seed {seeds[0]}); training {n_train}/{len(seeds)} seeds; traj: spearman "
                f"{_ci(t['pooled']['spearman'])}, partial {_ci(t['pooled']['partial_spearman'])}"
                f", detrended {_ci(t['pooled']['detrended'])} -> {t['verdict']}; sub -> "
                f"{u['verdict']}; hess -> {h['verdict']}")
    return metrics, traces


NAME = "smoothness"
PHASES = ("all", "models", "combine")
"""all: every model in this process; models: shard ``shard`` of ``shards`` (the run models
dealt to them in order), one record in ``shards_dir``; combine: the record from them."""
def _shard_models(cfg: DictConfig, n: int, shard: int) -> list[str]:
    names = list(cfg.run_models)
    return [names[i] for i in shards.deal(len(names), n, shard)]


def run_shard(cfg: DictConfig, say, n: int, shard: int, where_all: Path, resume: bool) -> None:
    """Shard ``shard`` of ``n``: train and measure its models and write their runs, unless
    its finished record is there already (``resume``)."""
    config = OmegaConf.to_container(cfg, resolve=True)
    code = shards.code_version(NAME)
    mine = _shard_models(cfg, n, shard)
    where = shards.directory(where_all, "models", shard)
    label = f"models shard {shard} of {n}"
    with shards.turn(where, label, config, code, "models", shard, resume, where_all,
                     say) as run:
        if not run:
            return
        metrics, traces = study(cfg, say, only=mine)
        shards.write(where, config, {"phase": "models", "shard": shard, "shards": n,
                                     "models_run": mine, "runs": metrics["runs"]},
                     traces, code)
    say(f"{label}: wrote {where} ({', '.join(mine) or 'no model'}).")


def run_combine(cfg: DictConfig, say, n: int, where_all: Path) -> None:
    """The record from every shard's runs; ``Incomplete`` (nothing written) naming every
    shard that is missing or does not match."""
    config = OmegaConf.to_container(cfg, resolve=True)
    code = shards.code_version(NAME)
    runs, traces, missing = {}, {}, []
    for i in range(n):
        where = shards.directory(where_all, "models", i)
        why = shards.problem(where, config, code, "models", i)
        if why is None:
            record, arrays = results.read_record(where)
            if record["metrics"].get("models_run") != _shard_models(cfg, n, i):
                why = "holds other models than this configuration deals it"
            else:
                runs.update(record["metrics"]["runs"])
                traces.update(arrays)
        if why is not None:
            missing.append(f"models shard {i} of {n} ({where}) {why}")
    if missing:
        raise shards.Incomplete(f"cannot combine {where_all}: " + "; ".join(missing)
                         + "; nothing written: the phase=models command runs only what is "
                         "missing")
    metrics, _ = study(cfg, say, only=[])
    metrics["runs"] = runs  # shards hold contiguous runs of models: the single run's order
    say(f"combining {n} shards from {where_all}")
    mixed = shards.mixed_devices({f"models {i}": shards.devices_of(
        shards.directory(where_all, "models", i)) for i in range(n)})
    if mixed:
        say(mixed)
    write(shards.record_config(config), say, metrics, traces)


def run(cfg: DictConfig) -> None:
    phase, n, shard, where_all, resume = shards.placement(cfg, PHASES)
    say = Progress(NAME)
    if phase == "all":
        write(shards.record_config(OmegaConf.to_container(cfg, resolve=True)), say,
              *study(cfg, say))
        return
    try:
        if phase == "models":
            run_shard(cfg, say, n, shard, where_all, resume)
        else:
            run_combine(cfg, say, n, where_all)
    except shards.Incomplete as err:
        print(f"error: {err}.", file=sys.stderr)
        sys.exit(shards.EXIT)


EXPERIMENT = Experiment(
    name="smoothness",
    run=run,
    order=10,
    figures=("smoothness",),
    result=records.Smoothness,
    quick={"steps": 60, "log_every": 10, "hvp_iters": 5, "hess_every": 1,
           "run_models": ["digits", "rnn"],
           "momentum_models": [], "seeds": [0, 1], "n_boot": 200,
           "models": {"digits": {"problem": {"hidden": 8}, "log_every": 10},
                      "rnn": {"problem": {"hidden": 8, "length": 10, "n": 32},
                              "log_every": 10}}},
    placement=shards.RECORD_PLACEMENT,
    seconds=(420.0, 14.0),
    bigger=("seeds=[0,1,2,3,4,5,6,7,8,9] hvp_iters=20 hess_every=1 "
            "hessian_models=[mlp,digits,rnn,lstm,char_lm,resnet_digits] log_every=5 "
                 "models.lstm.steps=1000 models.lstm.log_every=5 models.char_lm.steps=1000 "
                 "models.char_lm.log_every=5 models.resnet_digits.steps=1000 "
                 "models.resnet_digits.log_every=5 models.resnet_digits.problem.train_size=null "
                 "models.resnet_digits.regimes=[large_lr_clip,small_lr,small_lr_clip]",
            "ten seeds, 200 logged points per run over 1000 steps on every model, the "
                 "ResNet on all 1,500 training images and in the fourth regime too, the "
                 "Hessian norm at every logged point of every model"),
)

main = hydra_entry("smoothness", run)

if __name__ == "__main__":
    main()
