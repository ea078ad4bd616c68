"""Presets of every notebook: `smoke` (seconds, for tests), `cpu` (a laptop CPU), `paper` (a GPU).

A notebook's parameters cell names a preset; `get(notebook, preset)` returns its raw sections, and
`training_configs(notebook, preset, ...)` every full training config the notebook trains, named by
experiment and model. The notebook and `python -m lstm_nb.train` both call the latter, so the command
line trains exactly the runs the notebook then finds in run/. Presets live here, one module per
notebook, not in the notebooks, so tests can check them and the runner can reject a wrong name.
Each module has `PRESETS` ({preset: sections}) and `sections(setup, preset, **the notebook's other
parameters)` → {experiment: {model: config}}.
"""

import copy

from . import awd_lstm, dropout_layernorm, mogrifier, ur_lstm

_NOTEBOOKS = {"mogrifier": mogrifier, "dropout_layernorm": dropout_layernorm, "awd_lstm": awd_lstm,
              "ur_lstm": ur_lstm}
PRESETS = {notebook: module.PRESETS for notebook, module in _NOTEBOOKS.items()}
# Epoch checkpoints a run of a `paper` preset keeps (with the best epoch's): one, to spare Google Drive
# in Colab (a resume needs only the newest); every other preset keeps the default, `config.DEFAULTS`.
PAPER_KEEP_LAST = 1


def training_configs(notebook, preset, epochs=None, device="auto", workers=None, **parameters):
    """Every model a notebook trains on `preset`, as {experiment: {model_name: full training config}},
    exactly as the notebook trains them: the notebook and `python -m lstm_nb.train` both call this, so
    the command line trains the runs that the notebook then finds in run/. `epochs` (when not None)
    and `device` override every config; `workers` (how many runs train at once) changes no run;
    `parameters` are the notebook's other parameters."""
    sections = _NOTEBOOKS[notebook].sections(get(notebook, preset), preset, **parameters)
    for experiment, models in sections.items():
        for name, cfg in models.items():
            cfg.update(experiment=experiment, model_name=name, device=device)
            if preset.startswith("paper"):
                cfg.setdefault("keep_last", PAPER_KEEP_LAST)
            if epochs is not None:
                cfg["epochs"] = epochs
    return sections


def names(notebook):
    if notebook not in PRESETS:
        raise ValueError(f"no presets for notebook {notebook!r}; known: {', '.join(sorted(PRESETS))}")
    return sorted(PRESETS[notebook])


def get(notebook, preset):
    """A deep copy of the preset's sections; an unknown preset is an error listing the known ones."""
    if preset not in names(notebook):
        raise ValueError(f"unknown preset {preset!r} for {notebook}; choose one of {', '.join(names(notebook))}")
    return copy.deepcopy(PRESETS[notebook][preset])


def claims(notebook, preset, **parameters):
    """(claims, anchors) the notebook's `preset` declares, before any run (`lstm_nb.claims`)."""
    names(notebook)
    module = _NOTEBOOKS[notebook]
    return module.claims(preset, **parameters) if hasattr(module, "claims") else ([], [])


def scale_note(notebook, preset):
    """Why `preset` cannot test the notebook's claims, or None when it can."""
    return getattr(_NOTEBOOKS[notebook], "SCALE", {}).get(preset)


def with_claims():
    """(notebook, preset) pairs whose preset declares claims."""
    return [(notebook, preset) for notebook in sorted(_NOTEBOOKS) for preset in names(notebook)
            if claims(notebook, preset)[0]]


def preset_of(experiment):
    """The preset in an experiment's name `<notebook>-<dataset>-<preset>` (a preset may hold a hyphen)."""
    known = sorted({p for presets in PRESETS.values() for p in presets}, key=len, reverse=True)
    return next((p for p in known if experiment.endswith(f"-{p}")), experiment.rsplit("-", 1)[-1])
