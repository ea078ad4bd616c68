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
        assert b.get_label() == "nn.LSTM, identical to lstm"  # drawn under it, and said so
    assert fig.axes[-1].get_legend() is not None and fig.axes[0].get_legend() is None  # one legend, beside
    assert fig._suptitle.get_text() == "Brown, characters, cpu preset"
    assert (home / "figures" / "overlap.png").stat().st_size > 1000
    assert plots.axis_label("validation_perplexity") == "perplexity"
    assert plots.axis_label("training_loss") == "loss (nats per token)"


def test_speedup_figure_has_a_distinct_line_per_cell_on_the_sizes_with_units(home):
    frame = pd.DataFrame({128: [1.0, 0.5, 0.5], 256: [1.1, 0.6, 0.6]}, index=["lstm", "gal_lstm", "moon_lstm"])
    fig = plots.plot_speedup(frame, title="speed", name="speed")
    ax = fig.axes[0]
    lines = [line for line in ax.get_lines() if line.get_label() in frame.index]
    assert len(lines) == 3 and len({(ln.get_linestyle(), ln.get_marker()) for ln in lines}) == 3
    assert list(ax.get_xticks()) == [128, 256]
    assert ax.get_xlabel() == "hidden size (units)" and ax.get_ylabel() == "speed-up over nn.LSTM (×)"
    assert (home / "figures" / "speed.png").stat().st_size > 1000


def test_mask_figure_has_a_panel_per_method_with_labelled_axes(home):
    from lstm_nb.cells.dropout import unit_masks

    masks = unit_masks(steps=5, batch=4, units=3, p=0.5)
    fig = plots.plot_masks(masks, name="masks")
    assert [ax.get_title() for ax in fig.axes] == list(masks)
    assert fig.axes[0].get_ylabel() == "example in the batch"
    assert all(ax.get_xlabel() == "time steps 1–5 of each unit" for ax in fig.axes)
    assert (home / "figures" / "masks.png").stat().st_size > 1000


def test_ablation_bars_share_one_scale_and_carry_a_colour_key(home):
    changes = pd.DataFrame({"validation": [5.0, -2.0], "test": [30.0, 1.0]}, index=["weight drop", "AR/TAR"])
    fig = plots.plot_ablation(changes, title="ablation", name="ablation")
    assert fig.axes[0].get_xlim() == fig.axes[1].get_xlim()
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["worse without it (it helps)", "better without it"]
