"""Figures: every line visible where models overlap, whole epochs, and the unit on the y axis."""

import pandas as pd

from lstm_nb import plots


def test_overlapping_models_stay_visible_on_whole_epochs_with_units(home):
    same = [2.0, 1.5, 1.2, 1.1, 1.05]  # lstm and nn.LSTM compute the same function: identical curves
    frame = pd.DataFrame([{"model": m, "epoch": e + 1, "training_bpc": v, "validation_bpc": v}
                          for m in ("lstm", "nn.LSTM") for e, v in enumerate(same)])
    fig = plots.plot_curves(frame, metrics=("training_bpc", "validation_bpc"), title=plots.figure_title("brown", "cpu"),
                            name="overlap")
    for ax in fig.axes:
        a, b = ax.get_lines()
        assert (a.get_linestyle(), a.get_marker()) != (b.get_linestyle(), b.get_marker())
        assert all(float(t).is_integer() for t in ax.get_xticks())
        assert ax.get_ylabel() == "bits per character" and ax.get_xlabel() == "epoch"
    assert fig._suptitle.get_text() == "Brown, characters, cpu preset"
    assert (home / "figures" / "overlap.png").stat().st_size > 1000
    assert plots.axis_label("validation_perplexity") == "perplexity"
    assert plots.axis_label("training_loss") == "loss (nats per token)"
