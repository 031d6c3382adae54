"""Claims (seeds 001, 002): GD with lr 0.1 from x = 10 on x^4 jumps to -390 and overflows,
while clipped and normalized GD with the same step converge; in the sigmoid chain the
gradients shrink by orders of magnitude towards the input layer, and clipping scales all of
them by one factor, so it does nothing for vanishing gradients.

Reads results/clipping_seeds (python -m experiments.clipping_seeds).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from research import plotting


def draw(record: dict, traces: dict) -> plt.Figure:
    plotting.apply_style()
    m = record["metrics"]
    c = plotting.OKABE_ITO
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(plotting.FULL_WIDTH, 2.5))
    for i, name in enumerate(("gd", "clipped_gd", "normalized_gd")):
        x = traces[f"x4/{name}"]
        t = np.arange(x.size)
        info = m["x4"][name]
        label = (f"{name}: overflow after t = {info['diverged_at']}" if info["diverged"]
                 else f"{name}: |f'| <= 1e-3 at t = {info['iterations_to_eps']}")
        ax.plot(t, x, color=c[i], marker="o" if info["diverged"] else None, ms=2.5, label=label)
    ax.set_yscale("symlog", linthresh=1.0)
    ax.set_xscale("symlog", linthresh=10.0)
    ax.set_xlabel("iteration t")
    ax.set_ylabel(r"$x_t$ (symlog)")
    ax.set_title(r"seed 001: $f = x^4$ from $x_0 = 10$, step 0.1", fontsize=7)
    ax.legend(fontsize=5.5, frameon=False)
    ch = m["chain"]
    layers = np.arange(1, len(ch["gradients"]) + 1)
    ax2.bar(layers - 0.2, np.abs(ch["gradients"]), width=0.4, color=c[0], label="gradient")
    ax2.bar(layers + 0.2, np.abs(ch["clipped_gradients"]), width=0.4, color=c[1],
            label=f"after clip_grad_norm (x{ch['clip_coef']:.4g})")
    ax2.set_yscale("log")
    ax2.set_xticks(layers)
    ax2.set_xlabel("layer (1 = nearest the input)")
    ax2.set_ylabel(r"$|\partial L / \partial w|$")
    ax2.set_title(f"seed 002: sigmoid chain, total norm {ch['total_norm']:.4g}; layer 4 / layer "
                  f"1 = {ch['ratio_last_to_first_layer']:.3g}", fontsize=7)
    ax2.legend(fontsize=6, frameon=False)
    return fig


main = plotting.figure_cli("clipping_seeds", draw, __doc__)

if __name__ == "__main__":
    main()
