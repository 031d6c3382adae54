"""Claim (seed 002): total_norm falls as norm_type grows (1 > 2 > 3 > 4 > inf), so for a fixed
max_norm the clip coefficient grows with norm_type; the same ordering holds on real network
gradients (the MLP of seed 000 at initialisation).

Reads results/clipping_mlp (python -m experiments.clipping_mlp).
"""

from __future__ import annotations

import matplotlib.pyplot as plt

from research import plotting


def draw(record: dict, traces: dict) -> plt.Figure:
    plotting.apply_style()
    nt = record["metrics"]["norm_type"]
    fig, axes = plt.subplots(1, 2, figsize=(plotting.FULL_WIDTH, 2.3))
    for ax, (key, title) in zip(axes, (("seed_vector", "g = [125, 75, 45, 15, 5]"),
                                       ("mlp_gradient", "MLP gradient at initialisation")),
                                strict=True):
        rows = nt[key]
        labels = [f"{float(r['norm_type']):g}"
                  for r in rows]
        x = range(len(rows))
        ax.bar(x, [r["total_norm"] for r in rows], color=plotting.OKABE_ITO[0])
        for i, r in enumerate(rows):
            ax.text(i, r["total_norm"], f"{r['total_norm']:.4g}\ncoef {r['clip_coef']:.3g}",
                    ha="center", va="bottom", fontsize=5.5)
        ax.set_xticks(list(x), labels)
        ax.set_xlabel("norm_type")
        ax.set_ylabel("total_norm (max_norm = 1)")
        ax.set_title(title, fontsize=7)
        ax.margins(y=0.25)
    fig.suptitle("clip_grad_norm: total_norm and clip coefficient against norm_type", fontsize=8)
    return fig


main = plotting.figure_cli("norm_type", draw, __doc__, records=("clipping_mlp",))

if __name__ == "__main__":
    main()
