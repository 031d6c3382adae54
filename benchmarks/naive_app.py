"""The baseline of the sweep benchmark: the straightforward Hydra app.

It composes the same config as ``experiments.run`` and writes the same kind of record, but
builds its solver the way most scripts do: a ``jax.jit`` of a closure over this job's
hyperparameters. Every job therefore traces and compiles a new program. Only the clipped
GD optimizer is supported (the benchmark's workload).
"""

from __future__ import annotations

import hydra
import jax
import jax.numpy as jnp
import numpy as np
import optax
from omegaconf import DictConfig, OmegaConf

from experiments import schema
from experiments.common import CONF_DIR
from research import problems, results

schema.register()


@hydra.main(version_base=None, config_path=str(CONF_DIR), config_name="config")
def main(cfg: DictConfig) -> None:
    p = problems.get(cfg.problem.name, **schema.factory_kwargs(
        schema.problem_factories()[cfg.problem.name], dict(cfg.problem)))
    tx = optax.chain(optax.clip_by_global_norm(cfg.optimizer.gamma),
                     optax.sgd(cfg.optimizer.eta))
    steps, every = cfg.engine.steps, cfg.engine.record_every

    @jax.jit
    def solve(x0):
        def body(carry, _):
            x, s = carry
            f, g = jax.value_and_grad(p.fn)(x)
            u, s = tx.update(g, s, x)
            return (optax.apply_updates(x, u), s), (f, jnp.linalg.norm(g))

        (x, _), (fs, gns) = jax.lax.scan(body, (x0, tx.init(x0)), None, length=steps)
        return x, fs[::every], gns[::every]

    x, fs, gns = jax.device_get(solve(jnp.asarray(p.x0)))
    results.write_record(cfg.out, config=OmegaConf.to_container(cfg, resolve=True,
                                                                  enum_to_str=True),
                         metrics={"final_f": float(fs[-1]), "diverged": not np.isfinite(x).all()},
                         traces={"f": fs, "grad_norm": gns})


if __name__ == "__main__":
    from research import runtime

    runtime.configure()
    main()
