"""Metrics of a run folder as a pandas DataFrame, and curves saved as PNG into figures/."""

import itertools
from pathlib import Path

import numpy as np

from . import checkpoints, claims, paths
from .extras import require
from .presets.seeds import split_run_name

plt, pd = require("matplotlib.pyplot"), require("pandas")
MaxNLocator = require("matplotlib.ticker").MaxNLocator
Patch = require("matplotlib.patches").Patch

# The unit of a metric, by the end of its name: what the y axis says.
UNITS = {"loss": "loss (nats per token)", "perplexity": "perplexity", "bpc": "bits per character",
         "accuracy": "accuracy (fraction correct)", "mse": "mean squared error"}
# Models that compute the same function (`lstm` and `nn.LSTM`) draw the same curve: a line style and
# a marker per model keep every line visible where they overlap.
STYLES = [{"linestyle": ls, "marker": m} for ls, m in zip(["-", "--", ":", "-."] * 2, "osD^vP*X")]


def metrics_frame(folder):
    """Every per-epoch metrics file under `folder` (a model's run folder or an experiment's), one row
    per epoch, with a `model` column naming the sub-folder; sorted by model and epoch."""
    rows = []
    for path in Path(folder).rglob(checkpoints.METRICS_FILES):
        metrics = checkpoints.load_json(path, advice=(
            "Run the same training again (the notebook, or lstm_nb.train.train with the same config): "
            "it rewrites the file from the run's last checkpoint."))
        rows.append({"model": path.parent.name, **metrics})
    if not rows:
        raise FileNotFoundError(f"no {checkpoints.METRICS_FILES} under {folder}")
    return pd.DataFrame(rows).sort_values(["model", "epoch"]).reset_index(drop=True)


def axis_label(metric):
    """'validation_bpc' -> 'bits per character': the unit the metric is measured in."""
    return UNITS.get(metric.rsplit("_", 1)[-1], metric.replace("_", " "))


def plot_curves(frame, metrics=("training_loss", "validation_loss"), title=None, name=None, ylabels=None,
                baselines=None, x="epoch", log_y=False):
    """One panel per metric (titled by the split, the y axis by its unit, or `ylabels[metric]`, on a log
    scale with `log_y`), one line per row, whole epochs (or the frame's column `x`, e.g. "updates") on
    the x axis. A row trained over several seeds (runs `<row>-seed<N>`) draws every seed faintly and
    their mean boldly. `baselines` ({metric: (value, label), or a list of them}) draws dashed reference
    lines in that panel. A row whose curve equals an earlier row's says so in its label (it is drawn
    under it). The legend sits beside the panels, off the data. Saved as figures/<name>.png when `name`
    is given."""
    frame = frame.assign(row=[split_run_name(m)[0] for m in frame["model"]])
    fig, axes = plt.subplots(1, len(metrics), figsize=(5.5 * len(metrics) + 2.5, 4), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        drawn = {}
        for ((row, rows), style), color in zip(zip(frame.groupby("row", sort=False), itertools.cycle(STYLES)),
                                               itertools.cycle(plt.rcParams["axes.prop_cycle"].by_key()["color"])):
            seeds = rows["model"].nunique()
            for _, seed_rows in rows.groupby("model") if seeds > 1 else ():
                ax.plot(seed_rows[x], seed_rows[metric], color=color, alpha=0.3, linewidth=1, marker=".")
            mean = rows.groupby(x)[metric].mean()
            label = f"{row} (mean of {seeds} seeds)" if seeds > 1 else row
            same = next((other for other, values in drawn.items() if values.equals(mean)), None)
            ax.plot(mean.index, mean.values, color=color, markersize=5,
                    label=f"{label}, identical to {same}" if same else label, **style)
            drawn[row] = mean
        lines = (baselines or {}).get(metric, [])
        for (value, label), dashes in zip([lines] if isinstance(lines, tuple) else lines, ("--", ":", "-.")):
            ax.axhline(value, color="black", linestyle=dashes, linewidth=1.2, label=label)
        if log_y:
            ax.set_yscale("log")
        ax.set_title(metric.rsplit("_", 1)[0].replace("_", " "))
        ax.set_xlabel({"updates": "updates (optimizer steps)"}.get(x, x))
        ax.set_ylabel((ylabels or {}).get(metric) or axis_label(metric))
        epochs = sorted(frame[x].unique())
        if len(epochs) <= 12:  # whole epochs (or the updates after each) only, also for a one-epoch run
            ax.set_xticks(epochs)
        else:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
    return _finish(fig, title, name)


def plot_mc_samples(curves, deterministic, title=None, name=None):
    """MC dropout's estimate against the number of samples K: test perplexity against 1/K, one line per
    run ({run: {K: perplexity}}), each beside its deterministic evaluation ({run: perplexity}, dashed, the
    same colour). Read towards 1/K = 0 (K → ∞), where the estimate's sampling bias vanishes. Saved as
    figures/<name>.png when `name` is given."""
    fig, ax = plt.subplots(figsize=(6.5, 4))
    colours = itertools.cycle(plt.rcParams["axes.prop_cycle"].by_key()["color"])
    for (run, by_k), colour in zip(curves.items(), colours):
        ks = sorted(by_k)
        ax.plot([1 / k for k in ks], [by_k[k] for k in ks], "o-", color=colour, markersize=4, label=f"{run}, MC")
        if run in deterministic:
            ax.axhline(deterministic[run], color=colour, linestyle="--", linewidth=1.2, label=f"{run}, deterministic")
    ax.set_xlim(left=0)  # 1/K = 0 is K → ∞
    ax.set_xlabel("1 / K (K = MC-dropout samples per token)")
    ax.set_ylabel("test perplexity")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return _finish(fig, title, name)


OUTCOME_COLOURS = {claims.REPRODUCED: "tab:green", claims.INCONCLUSIVE: "tab:orange",
                   claims.CONTRADICTED: "tab:red", claims.NOT_TESTABLE: "tab:gray", "not run": "lightgray"}


def plot_claims(table, title=None, name=None):
    """Every claim of `table` (`results.claims_table` or `every_claim`) on one axis: our effect in the
    claimed direction as a percentage of the reference row's mean, with its 95 % interval and each
    seed's paired difference (faint dots), coloured by outcome; the paper's effect as a hollow diamond.
    A claim not run yet is listed with no marks. Saved as figures/<name>.png when `name` is given."""
    table = table.reset_index(drop=True)
    fig, ax = plt.subplots(figsize=(9, 0.55 * len(table) + 1.8))
    for y, row in table.iterrows():
        colour = OUTCOME_COLOURS.get(row["outcome"], "black")
        scale = 100 / abs(row["reference_mean"]) if row.get("reference_mean") else None
        if scale and row.get("effect") is not None and not pd.isna(row.get("effect")):
            low, high = (row["low"], row["high"]) if np.isfinite(row["low"]) else (row["effect"], row["effect"])
            ax.plot([low * scale, high * scale], [y, y], color=colour, linewidth=2.5)
            ax.plot(row["effect"] * scale, y, "o", color=colour, markersize=7)
            ax.plot([d * scale for d in row["differences"]], [y] * len(row["differences"]), "|", color=colour,
                    alpha=0.5, markersize=12)
        if row.get("paper_effect") is not None and not pd.isna(row.get("paper_effect")):
            ax.plot(row["paper_effect"] * 100, y, "D", markerfacecolor="none", markeredgecolor="black", markersize=7)
    labels = [f"{r['notebook']} ({r['preset']}): {r['claim']} [{r['outcome']}, {r['seeds']} seeds]"
              for _, r in table.iterrows()]
    ax.set_yticks(range(len(table)), labels, fontsize=8)
    ax.invert_yaxis()
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_xlabel("effect in the claimed direction (% of the reference row's mean; > 0 = as claimed)")
    handles = [plt.Line2D([], [], color=c, marker="o", linewidth=2.5, label=o) for o, c in OUTCOME_COLOURS.items()]
    handles += [plt.Line2D([], [], color="black", marker="D", markerfacecolor="none", linestyle="", label="paper"),
                plt.Line2D([], [], color="gray", marker="|", linestyle="", markersize=12, label="one seed")]
    ax.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(alpha=0.3, axis="x")
    return _finish(fig, title, name)


def plot_masks(masks, title=None, name=None):
    """One panel per method: which (example, time step) entries of each hidden unit a mask keeps
    (light) or drops (dark), the units side by side; masks are (units, batch, steps). Saved as
    figures/<name>.png when `name` is given."""
    fig, axes = plt.subplots(1, len(masks), figsize=(2.9 * len(masks), 3.4), sharey=True, squeeze=False)
    for ax, (method, mask) in zip(axes[0], masks.items()):
        mask = np.asarray(mask)
        units, _, steps = mask.shape
        ax.imshow(np.concatenate(list(mask), axis=1), cmap="gray", vmin=0, vmax=1, aspect="auto", interpolation="nearest")
        for k in range(1, units):  # unit boundaries
            ax.axvline(k * steps - 0.5, color="tab:red", linewidth=1.5)
        ax.set_xticks([k * steps + (steps - 1) / 2 for k in range(units)], [f"unit {k + 1}" for k in range(units)],
                      fontsize=8)
        ax.set_title(method, fontsize=10)
        ax.set_xlabel(f"time steps 1–{steps} of each unit")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes[0][0].set_ylabel("example in the batch")
    return _finish(fig, title, name)


def plot_speedup(frame, title=None, name=None):
    """Speed-up over nn.LSTM (× , above 1 = faster) against hidden size, one line per cell: `frame` has
    a row per cell and a column per size. Saved as figures/<name>.png when `name` is given."""
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for (cell, row), style in zip(frame.iterrows(), itertools.cycle(STYLES)):
        ax.plot(row.index, row.values, markersize=5, label=cell, **style)
    ax.axhline(1.0, color="gray", linewidth=1)
    ax.set_xscale("log", base=2)
    ax.set_xticks(list(frame.columns), [str(size) for size in frame.columns])
    ax.set_xlabel("hidden size (units)")
    ax.set_ylabel("speed-up over nn.LSTM (×)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _finish(fig, title, name)


def plot_ablation(changes, spread=None, title=None, name=None):
    """Horizontal bars, one panel per column of `changes` (rows: what was removed; values: the change
    of validation perplexity it caused, positive = worse without it); `spread` ({column: s}) shades
    ±s in that column's panel (the change chance alone gives); saved as figures/<name>.png."""
    fig, axes = plt.subplots(1, len(changes.columns), figsize=(5.5 * len(changes.columns), 0.45 * len(changes) + 1.9),
                             sharey=True, sharex=True, squeeze=False)  # one scale: panels side by side compare
    for ax, column in zip(axes[0], changes.columns):
        values = changes[column]
        ax.barh(range(len(values)), values, color=["tab:red" if v > 0 else "tab:green" for v in values])
        ax.set_yticks(range(len(values)), values.index)
        ax.axvline(0, color="black", linewidth=0.8)
        if (spread or {}).get(column):
            ax.axvspan(-spread[column], spread[column], color="tab:gray", alpha=0.2,
                       label=f"±{spread[column]:.1f}: two seeds' difference")
            ax.legend(loc="lower right", fontsize=8)
        ax.set_title(column)
        ax.set_xlabel("Δ validation perplexity (+ = worse without it)")
        ax.grid(alpha=0.3, axis="x")
    axes[0][0].invert_yaxis()  # shared: once
    key = [Patch(color="tab:red", label="worse without it (it helps)"),
           Patch(color="tab:green", label="better without it")]
    fig.legend(handles=key, loc="lower center", ncol=2, fontsize=8, frameon=False)
    return _finish(fig, title, name, bottom=0.07)


def plot_gates(gates, title=None, name=None):
    """Two panels over the units of each model in `gates` ({label: effective forget gate values}):
    the distribution of the gate f, and of the timescale 1/(1 − f) on a log axis, as step lines so that
    every model stays visible. Saved as figures/<name>.png when `name` is given."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    ticks = np.logspace(0, 4, 41)
    for (label, values), style in zip(gates.items(), itertools.cycle(STYLES)):
        f = np.asarray(values, dtype=np.float64).ravel()
        kw = {"histtype": "step", "linewidth": 1.6, "linestyle": style["linestyle"], "label": label,
              "weights": np.full(len(f), 1 / len(f))}
        left.hist(f, bins=np.linspace(0, 1, 41), **kw)
        right.hist(np.clip(1 / np.maximum(1 - f, 1e-12), 1, ticks[-1]), bins=ticks, **kw)
    left.set_xlabel("effective forget gate f")
    right.set_xlabel("timescale 1/(1 − f) (steps; ≥ 10⁴ counted in the last bin)")
    right.set_xscale("log")
    for ax, what in ((left, "gate"), (right, "timescale")):
        ax.set_ylabel("fraction of values")
        ax.set_title(f"{what} distribution")
        ax.grid(alpha=0.3)
    right.legend(fontsize=8)
    return _finish(fig, title, name)


def _finish(fig, title, name, bottom=0.0):
    """Title, layout (leaving `bottom` of the height free for a figure legend), and the PNG."""
    if title:
        fig.suptitle(title)
    fig.tight_layout(rect=(0, bottom, 1, 1))
    if name:
        fig.savefig(paths.figures_dir() / f"{name}.png", dpi=120)
    return fig


def figure_title(corpus, preset):
    """The one title format of every figure: '<corpus>, <preset> preset'."""
    corpora = {"brown": "Brown, characters", "ptb": "Penn Treebank, words", "ptb-char": "Penn Treebank, characters",
               "wikitext-2": "WikiText-2, words", "copy": "Copy memory", "adding": "Adding problem",
               "mnist": "Sequential MNIST", "pmnist": "Permuted MNIST", "cifar-10": "Sequential CIFAR-10"}
    return f"{corpora.get(corpus, corpus)}, {preset} preset"
