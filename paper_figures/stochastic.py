"""Claim: with bounded noise, clipped SGD with Theorem 7's step and SGD with Theorem 8's step
drive E||grad f|| below eps; clipping biases SGD when the noise is skewed, leaving a plateau
that grows as the threshold shrinks (symmetric noise: no such plateau).

Reads results/stochastic (python -m experiments.stochastic).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from research import plotting

LABELS = {"clipped_sgd_thm7_printed": "clipped SGD, Thm 7 (as printed)",
          "clipped_sgd_thm7_without_eta": r"clipped SGD, Thm 7 without $\eta$ in denominator",
          "sgd_thm8": "SGD, Thm 8 step"}


def draw(record: dict, traces: dict) -> plt.Figure:
    plotting.apply_style()
    m = record["metrics"]
    probs = m["problems"]
    fig, axes = plt.subplots(1, len(probs) + 1, figsize=(plotting.FULL_WIDTH, 2.6))
    for ax, (name, info) in zip(axes, probs.items(), strict=False):
        it = traces[f"{name}/iterations"]
        counts = []
        for i, (mname, label) in enumerate(LABELS.items()):
            y = traces[f"{name}/{mname}/mean_grad_norm"]
            k = info["methods"][mname]["iterations_to_eps"]
            counts.append(str(k) if k >= 0 else ">T")
            ax.loglog(np.maximum(it, 1), y, color=plotting.OKABE_ITO[i], label=label)
        ax.axhline(m["eps"], color="0.3", lw=0.7, ls=":")
        ax.text(0.03, 0.04, r"$t_\epsilon$: " + ", ".join(counts), transform=ax.transAxes,
                fontsize=6)
        ax.set_xlabel("iteration t")
        ax.set_title(f"{name} ({m['seeds']} seeds)", fontsize=7)
    axes[0].set_ylabel(r"$E\|\nabla f(x_t)\|$")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=3, frameon=False)
    ax = axes[-1]
    b = m["bias"]
    for i, noise in enumerate(("uniform", "skewed")):
        ax.loglog(b["thresholds"], b["plateau"][noise], "o-", ms=3,
                  color=plotting.OKABE_ITO[i + 3], label=f"{noise} noise")
    ax.axvline(m["tau"], color="0.3", lw=0.7, ls=":")
    ax.set_xlabel("clipping threshold c")
    ax.set_ylabel(r"plateau $E\|\nabla f\|$")
    ax.set_title(f"bias of clipped SGD on {b['base']} ($\\eta$ = {b['eta']:g}, p = {b['p']:g})",
                 fontsize=7)
    ax.legend(fontsize=6, frameon=False)
    fig.suptitle(rf"Stochastic gradients with $\|\xi\| \leq \tau$ = {m['tau']:g}; dotted: "
                 rf"$\epsilon$ (left), $\tau$ (right)", fontsize=8)
    return fig


main = plotting.figure_cli("stochastic", draw, __doc__)

if __name__ == "__main__":
    main()
