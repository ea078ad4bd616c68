"""Metrics of a run folder as a pandas DataFrame, and curves saved as PNG into figures/."""

import itertools
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.ticker import MaxNLocator

from . import checkpoints, paths

# The unit of a metric, by the end of its name: what the y axis says.
UNITS = {"loss": "loss (nats per token)", "perplexity": "perplexity", "bpc": "bits per character"}
# Models that compute the same function (`lstm` and `nn.LSTM`) draw the same curve: a line style and
# a marker per model keep every line visible where they overlap.
STYLES = [{"linestyle": ls, "marker": m} for ls, m in zip(["-", "--", ":", "-."] * 2, "osD^vP*X")]


def metrics_frame(folder):
    """Every metrics_epoch_<N>.json under `folder` (a model's run folder or an experiment's), one row
    per epoch, with a `model` column naming the sub-folder; sorted by model and epoch."""
    rows = []
    for path in Path(folder).rglob("metrics_epoch_*.json"):
        metrics = checkpoints.load_json(path, advice=(
            "Run the same training again (the notebook, or lstm_nb.train.train with the same config): "
            "it rewrites the file from the run's last checkpoint."))
        rows.append({"model": path.parent.name, **metrics})
    if not rows:
        raise FileNotFoundError(f"no metrics_epoch_*.json under {folder}")
    return pd.DataFrame(rows).sort_values(["model", "epoch"]).reset_index(drop=True)


def axis_label(metric):
    """'validation_bpc' -> 'bits per character': the unit the metric is measured in."""
    return UNITS.get(metric.rsplit("_", 1)[-1], metric.replace("_", " "))


def plot_curves(frame, metrics=("training_loss", "validation_loss"), title=None, name=None):
    """One panel per metric (titled by the split, the y axis by its unit), one line per model, whole
    epochs on the x axis; saved as figures/<name>.png when `name` is given."""
    fig, axes = plt.subplots(1, len(metrics), figsize=(5.5 * len(metrics), 4), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        groups = frame.groupby("model", sort=False)
        for (model, rows), style in zip(groups, itertools.cycle(STYLES)):
            ax.plot(rows["epoch"], rows[metric], markersize=5, label=model, **style)
        ax.set_title(metric.rsplit("_", 1)[0].replace("_", " "))
        ax.set_xlabel("epoch")
        ax.set_ylabel(axis_label(metric))
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    if name:
        fig.savefig(paths.figures_dir() / f"{name}.png", dpi=120)
    return fig


def figure_title(corpus, preset):
    """The one title format of every figure: '<corpus>, <preset> preset'."""
    corpora = {"brown": "Brown, characters", "ptb": "Penn Treebank, words", "ptb-char": "Penn Treebank, characters",
               "wikitext-2": "WikiText-2, words"}
    return f"{corpora.get(corpus, corpus)}, {preset} preset"
