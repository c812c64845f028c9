"""Draw bench/results/growth.json: one panel per axis, each metric's growth factor against the
axis's smallest size, log-log, with the linear line for reference.

Run by bench/growthplot.py with the python of the plot's own virtualenv (matplotlib); it imports
nothing of openflr or of the bench.

python plot_growth.py growth.json growth.png
"""

from __future__ import annotations

import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.ticker import FuncFormatter


def size_label(axis: str, x: float) -> str:
    if axis != "disk":
        return f"{x:,.0f}"
    for unit, name in ((2**40, "TiB"), (2**30, "GiB")):
        if x >= unit:
            return f"{x / unit:g} {name}"
    return f"{x:g}"


def main(source: str, target: str) -> None:
    with open(source) as fh:
        doc = json.load(fh)
    axes = doc["axes"]
    fig, panels = plt.subplots(1, len(axes), figsize=(5.2 * len(axes), 4.4), squeeze=False)
    for panel, (axis, got) in zip(panels[0], axes.items(), strict=True):
        xs = got["x"]
        for m in got["metrics"].values():
            first, last = (f"{v:,.0f}" if v >= 10 else f"{v:.1f}" for v in (m["values"][0], m["values"][-1]))
            label = f"{m['label']} ({first} → {last} {m['unit']})"
            panel.plot(xs, m["factors"], marker="o", label=label)
        panel.plot(xs, [x / xs[0] for x in xs], linestyle=":", color="grey", label="linear in size")
        panel.set_xscale("log", base=2 if axis != "folder" else 10)
        panel.set_yscale("log")
        panel.xaxis.set_major_formatter(FuncFormatter(lambda x, _p, a=axis: size_label(a, x)))
        panel.set_xticks(xs)
        panel.tick_params(axis="x", labelrotation=30)
        factors = [f for m in got["metrics"].values() for f in m["factors"]]
        panel.set_ylim(min(0.1, *factors) * 0.8, max(10, *factors) * 1.5)
        panel.set_title(got["title"])
        panel.set_xlabel(got["x_label"])
        panel.set_ylabel("× the value at the smallest size")
        panel.grid(True, which="major", alpha=0.3)
        panel.legend(fontsize=7, loc="upper left")
    fig.suptitle(f"openflr cost growth ({doc['when']})", fontsize=11)
    fig.tight_layout()
    fig.savefig(target, dpi=110)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
