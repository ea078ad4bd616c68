"""Metrics of a run folder as a pandas DataFrame, and curves saved as PNG into figures/."""

import json
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from . import paths


def metrics_frame(folder):
    """Every metrics_epoch_<N>.json under `folder` (a model's run folder or an experiment's), one row
    per epoch, with a `model` column naming the sub-folder; sorted by model and epoch."""
    rows = []
    for path in Path(folder).rglob("metrics_epoch_*.json"):
        rows.append({"model": path.parent.name, **json.loads(path.read_text())})
    if not rows:
        raise FileNotFoundError(f"no metrics_epoch_*.json under {folder}")
    return pd.DataFrame(rows).sort_values(["model", "epoch"]).reset_index(drop=True)


def plot_curves(frame, metrics=("training_loss", "validation_loss"), title=None, name=None):
    """One panel per metric, one line per model; saved as figures/<name>.png when `name` is given."""
    fig, axes = plt.subplots(1, len(metrics), figsize=(5.5 * len(metrics), 4), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        for model, rows in frame.groupby("model", sort=False):
            ax.plot(rows["epoch"], rows[metric], marker="o", markersize=3, label=model)
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric.replace("_", " "))
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    if name:
        fig.savefig(paths.figures_dir() / f"{name}.png", dpi=120)
    return fig
