"""The whole figure pipeline at small sizes: every experiment, every figure, CLAIMS.md.

``python -m experiments.quick [--out DIR]`` (``make figures-quick``) runs each experiment
in-process with the small overrides below, draws every figure from those records, and writes
CLAIMS.md, all under DIR (default build/quick). The numbers are smoke-test sized, not the
published ones; the tests use this pipeline to run every claim.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from pathlib import Path

from omegaconf import OmegaConf

from experiments import claims, figure_index, verify
from experiments._common import CONF_DIR
from paper_figures import FIGURES
from research.toolkit import Toolkit

QUICK = {
    # x4_clipped_vs_fixed's second half needs Theorem 6's step censored well above clipped
    # GD's count from x0 = 50 (about 2,200 steps): at 2,500 the censored ratio is only 1.12
    "quartic_trajectories": {"steps": 6000},
    "descent_audit": {"problems": ["quartic", "hard"], "steps": 100,
                      "start_scales": [0.5, 1.0]},
    "max_step": {"points": 25, "network": {"points": 3, "steps": 20}},
    "iteration_complexity": {"quartic_x0": [1.0, 4.0, 16.0], "cosh_x0": [1.0, 4.0, 8.0],
                             "cap": 2_000_000, "sweep_cap": 200_000, "sweep_steps": 16},
    "hard_instance": {"M": [30.0, 300.0, 3000.0], "sweep_steps": 24, "cap": 400_000},
    "stochastic": {"T": 2000, "seeds": 8, "record_every": 20,
                   "bias": {"steps": 2000, "thresholds": [0.05, 2.0]}},
    "clipping_mlp": {"seeds": 3, "epochs": 3, "threshold_multiples": [0.5, 5.0]},
    "clipping_rnn": {"seeds": 2, "epochs": 1, "train_size": 256, "test_size": 64,
                     "length": 20, "threshold_multiples": [1.0]},
    "clipping_seeds": {"x4": {"steps": 600}},
    "smoothness": {"steps": 60, "log_every": 10, "hvp_iters": 5, "run_models": ["digits", "rnn"],
                   "momentum_models": [], "seeds": [0, 1], "n_boot": 200,
                   "models": {"digits": {"args": {"hidden": 8}},
                              "rnn": {"args": {"hidden": 8, "length": 10, "n": 32}}}},
    "clipping_networks": {
        "seeds": [0, 1],
        "models": {"char_lm": {"args": {"embed": 4, "hidden": 8, "length": 8, "n": 32},
                               "steps": 40, "record_every": 10, "target": 4.0,
                               "lrs": [1.0, 10.0], "thresholds": [1.0]},
                   "resnet_digits": {"args": {"channels": 2, "blocks": 1}, "steps": 20,
                                     "record_every": 10, "target": 2.0, "lrs": [0.1, 1.0],
                                     "thresholds": [1.0]},
                   "rnn": {"args": {"hidden": 8, "length": 10, "n": 32}, "steps": 40,
                           "record_every": 10, "target": 0.15, "lrs": [0.1, 1.0],
                           "thresholds": [1.0]}}},
}
"""Small overrides per experiment (on top of conf/<name>.yaml)."""



def run_experiment(name: str, results_dir: Path, tk: Toolkit | None = None, **extra) -> None:
    """Run experiment ``name`` in-process at quick size, writing results_dir/<name>.

    ``tk``: the implementations to run it with (default: the real ones; a mutant's toolkit in
    the mutation suite). ``extra``: further config overrides on top of the quick size.
    """
    cfg = OmegaConf.load(CONF_DIR / f"{name}.yaml")
    cfg = OmegaConf.merge(cfg, QUICK.get(name, {}), extra, {"out": str(results_dir / name)})
    run = importlib.import_module(f"experiments.{name}").run
    run(cfg) if tk is None else run(cfg, tk)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("build/quick"))
    args = ap.parse_args(argv)
    res, figs = args.out / "results", args.out / "figures"
    t0 = time.perf_counter()
    for i, name in enumerate(QUICK, 1):
        t = time.perf_counter()
        run_experiment(name, res)
        print(f"[quick] experiment {i}/{len(QUICK)} {name}: {time.perf_counter() - t:.1f}s",
              flush=True)
    for name in FIGURES:
        importlib.import_module(f"paper_figures.{name}").main(
            ["--results", str(res), "--out", str(figs)])
    done, missing = claims.evaluate(res)
    (figs / "CLAIMS.md").write_text(claims.to_markdown(done, missing))
    verify.write_tables(res, figs)
    figure_index.main(["--results", str(res), "--out", str(figs / "README.md")])
    print(f"[quick] {len(QUICK)} experiments, {len(FIGURES)} figures and CLAIMS.md in "
          f"{time.perf_counter() - t0:.0f}s under {args.out}", flush=True)
    return 3 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
