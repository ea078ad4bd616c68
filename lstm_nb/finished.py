"""A finished run, read back without the trainer: its best model, rebuilt from its recorded configuration, and
its data as configured. `dyneval`, `mc_dropout`, `pointer` and the notebooks evaluate runs through it."""

from pathlib import Path

from . import checkpoints, distributed, models, records
from . import data as data_module
from .config import make_config


def load_model(folder, which=checkpoints.BEST, device="cpu"):
    """The trained model of a run folder (`which` of its checkpoints), rebuilt from its recorded configuration."""
    folder = Path(folder)
    described = records.read_config(folder)
    model = models.from_config(described["config"], described.get("model_inputs") or {"vocab_size": described["vocab_size"]})
    try:
        state = checkpoints.load(folder / which, map_location=device)["model"]
    except checkpoints.CheckpointError as e:
        raise checkpoints.CheckpointError(
            f"{e}. Delete it, then run the same training again (the notebook, or lstm_nb.train.train with this "
            f"run's configuration): it is rebuilt from the checkpoint of the epoch it holds."
        ) from None
    model.load_state_dict(state)
    return model.to(device)


def load_run(folder, device="auto", loaded=None):
    """(data, model, device) of a finished run: its best model and its corpus as it was configured.
    `loaded`: a dict shared by the calls on one run (evaluations of several options), so that they are
    loaded once; a caller may keep more of its own there."""
    loaded = {} if loaded is None else loaded
    if "model" not in loaded:
        loaded["device"] = distributed.device(device)
        loaded["data"] = data_module.build(**make_config(records.read_config(folder)["config"])["data"])
        loaded["model"] = load_model(folder, device=loaded["device"])
    return loaded["data"], loaded["model"], loaded["device"]
