"""Presets of every notebook: `smoke` (seconds, for tests), `cpu` (a laptop CPU), `paper` (a GPU).

A notebook's parameters cell names a preset; `get(notebook, preset)` returns its sections, each a
training config for `lstm_nb.train` (minus the model's name and cell, which the notebook varies).
Presets live here, not in the notebooks, so tests can check them and the runner can reject a wrong name.
"""

import copy

# The original Mogrifier notebook (RMichaelSwan/MogrifierLSTM): Brown characters, 500-character
# instances, embedding 50, hidden 125, batch 32, Adam at its default rate, no gradient clipping,
# AllenNLP Trainer with patience 7 and at most 210 epochs.
_BROWN_PAPER = {
    "data": {"corpus": "brown", "batch_size": 32, "instance_length": 500, "fraction": 1.0},
    "model": {"embedding_size": 50, "hidden_size": 125, "num_layers": 1},
    "optimizer": {"name": "Adam", "lr": 1e-3},
    "clip": None,
    "epochs": 210,
    "patience": 7,
    "seed": 1,
}


def _with(base, **changes):
    out = copy.deepcopy(base)
    for key, value in changes.items():
        out[key] = {**out[key], **value} if isinstance(value, dict) else value
    return out


PRESETS = {
    "mogrifier": {
        "smoke": {"brown": _with(_BROWN_PAPER, data={"fraction": 0.005}, epochs=2, patience=None)},
        "cpu": {"brown": _with(_BROWN_PAPER, data={"fraction": 0.25}, epochs=6, patience=None)},
        "paper": {"brown": _BROWN_PAPER},
    },
}


def names(notebook):
    if notebook not in PRESETS:
        raise ValueError(f"no presets for notebook {notebook!r}; known: {', '.join(sorted(PRESETS))}")
    return sorted(PRESETS[notebook])


def get(notebook, preset):
    """A deep copy of the preset's sections; an unknown preset is an error listing the known ones."""
    if preset not in names(notebook):
        raise ValueError(f"unknown preset {preset!r} for {notebook}; choose one of {', '.join(names(notebook))}")
    return copy.deepcopy(PRESETS[notebook][preset])
