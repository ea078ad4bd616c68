"""A training configuration: the defaults, how a config overrides them, and its validation.

`make_config` deep-merges a config into `DEFAULTS` and checks every value, so that a bad value is
refused with one clear line per problem before anything is written into run/.
"""

import copy
import math
import re

import torch

from .data import SEQUENCE_TASKS, STREAM_CORPORA
from .errors import ExplainedError
from .sequences import COPY_LAYOUTS

DEFAULTS = {
    "experiment": "default",
    "model_name": "lstm",
    "data": {"corpus": "ptb", "batch_size": 20, "bptt": 35, "eval_batch_size": 10, "instance_length": 500,
             "fraction": 1.0, "train_fraction": 1.0, "seed": 0,
             # test streams (None: eval_batch_size; AWD-LSTM tests with 1); AWD-LSTM's random window lengths
             "test_batch_size": None, "variable_bptt": False,
             # with variable_bptt, the lr of an epoch's last, clipped window: scaled by the length drawn for
             # it ("drawn", main.py) or by the steps it has ("actual"); lstm_nb.data.StreamBatches.lr_scale
             "last_window_lr": "actual",
             # the copy task's delay T or the adding problem's length T; their (train, valid, test) sequence
             # counts (None: lstm_nb.data.DEFAULT_EXAMPLES); the copy task's input layout
             # (lstm_nb.sequences.COPY_LAYOUTS); a fresh training set every epoch (copy and adding)
             "length": None, "examples": None, "copy_layout": "arjovsky", "redraw_train": False},
    # passed to lstm_nb.models.build: "architecture" ("rnn" or "transformer") and that model's options
    "model": {"architecture": "rnn", "embedding_size": 200, "hidden_size": 200},
    "epochs": 10,
    "patience": None,  # epochs without validation improvement before stopping; None = never
    "seed": 1,
    "clip": 0.25,  # max total gradient norm; None = no clipping
    "optimizer": {"name": "Adam", "lr": 1e-3},
    "scheduler": None,  # e.g. {"name": "ReduceLROnPlateau", "factor": 0.25, "patience": 0}
    # AWD-LSTM (lstm_nb/phases.py): activation regularisation α and temporal activation regularisation β;
    # NT-ASGD {"nonmono": n}: SGD, then averaged SGD once validation stops improving; fine-tuning
    # {"epochs": E, "nonmono": n}: a fresh averaged SGD from the best model after the main training
    "ar": 0.0,
    "tar": 0.0,
    "nt_asgd": None,
    "finetune": None,
    "keep_last": 3,  # newest epoch checkpoints kept (the best epoch's is kept too)
    "device": "auto",
    # "bfloat16": autocast for the embedding and decoder (the recurrent layers stay float32)
    "precision": "float32",
}
OPEN_SECTIONS = {"model", "optimizer", "scheduler"}  # free-form: their keys are checked by the model / torch
LANGUAGE_CORPORA = STREAM_CORPORA + ("brown",)
CORPORA = LANGUAGE_CORPORA + SEQUENCE_TASKS
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+=-]*$")  # one folder name, no path separators


class ConfigError(ExplainedError, ValueError):
    """A configuration key or value is not acceptable; nothing was written."""


def make_config(overrides=None, defaults=DEFAULTS, where="config"):
    """Deep-merge `overrides` into the defaults and validate the result (at the top level)."""
    cfg = _merge(overrides, defaults, where)
    if defaults is DEFAULTS:
        validate(cfg)
    return cfg


def _merge(overrides, defaults, where):
    if overrides is not None and not isinstance(overrides, dict):
        raise ConfigError(f"{where} must be a dict, got {type(overrides).__name__}")
    cfg = copy.deepcopy(defaults)
    for key, value in (overrides or {}).items():
        if key not in cfg:
            raise ConfigError(f"unknown {where} key {key!r}; known: {', '.join(sorted(cfg))}")
        if isinstance(cfg[key], dict) and isinstance(value, dict) and key not in OPEN_SECTIONS:
            cfg[key] = _merge(value, cfg[key], f"{where}.{key}")
        else:
            cfg[key] = copy.deepcopy(value)
    return cfg


def with_defaults(stored):
    """A stored config with the keys added to DEFAULTS since it was written, at their default values."""
    return _merge(stored, DEFAULTS, "stored config")


def override(base, changes):
    """`base` with `changes` applied: a dict value updates that section's keys, anything else replaces."""
    out = copy.deepcopy(base)
    for key, value in changes.items():
        out[key] = {**out.get(key, {}), **value} if isinstance(value, dict) and out.get(key) else copy.deepcopy(value)
    return out


def _is_int(x):
    return isinstance(x, int) and not isinstance(x, bool)


def _is_number(x):
    return (_is_int(x) or isinstance(x, float)) and math.isfinite(x)


def _problems(cfg):
    """One line per unacceptable value."""
    def need(ok, key, rule):
        if not ok:
            value = cfg
            for part in key.split("."):
                value = value.get(part) if isinstance(value, dict) else None
            problems.append(f"{key} must be {rule}, got {value!r}")

    problems = []
    for key in ("experiment", "model_name"):
        need(isinstance(cfg[key], str) and SAFE_NAME.match(cfg[key]) is not None and ".." not in cfg[key], key,
             "a folder name (letters, digits, '.', '_', '-', '+', '='; no '/' or '..')")
    data, model = cfg["data"], cfg["model"]
    need(data["corpus"] in CORPORA, "data.corpus", f"one of {', '.join(CORPORA)}")
    for key in ("batch_size", "bptt", "eval_batch_size", "instance_length"):
        need(_is_int(data[key]) and data[key] >= 1, f"data.{key}", "a positive integer")
    for key in ("fraction", "train_fraction"):
        need(_is_number(data[key]) and 0 < data[key] <= 1, f"data.{key}", "a number in (0, 1]")
    need(_is_int(data["seed"]), "data.seed", "an integer")
    need(data["test_batch_size"] is None or (_is_int(data["test_batch_size"]) and data["test_batch_size"] >= 1),
         "data.test_batch_size", "None or a positive integer")
    need(isinstance(data["variable_bptt"], bool), "data.variable_bptt", "true or false")
    need(data["last_window_lr"] in ("drawn", "actual"), "data.last_window_lr", "'drawn' (main.py's) or 'actual'")
    if data["corpus"] in ("brown",) + SEQUENCE_TASKS:
        need(data["test_batch_size"] is None and not data["variable_bptt"], "data.corpus",
             "a token stream (not independent instances or sequences) for test_batch_size or variable_bptt")
    if data["corpus"] in ("copy", "adding"):
        need(_is_int(data["length"]) and data["length"] >= (1 if data["corpus"] == "copy" else 2), "data.length",
             "the copy task's delay (≥ 1) or the adding problem's length (≥ 2)")
        need(data["examples"] is None or (isinstance(data["examples"], (list, tuple)) and len(data["examples"]) == 3
                                          and all(_is_int(n) and n >= 1 for n in data["examples"])),
             "data.examples", "None or [train, valid, test] sequence counts (positive integers)")
        need(isinstance(data["redraw_train"], bool), "data.redraw_train", "true or false")
    else:
        need(data["length"] is None and data["examples"] is None and not data["redraw_train"], "data.corpus",
             "copy or adding for data.length, data.examples and data.redraw_train")
    need(data["copy_layout"] in COPY_LAYOUTS and (data["copy_layout"] == "arjovsky" or data["corpus"] == "copy"),
         "data.copy_layout", f"one of {', '.join(COPY_LAYOUTS)} ('cued' for the copy task only)")
    if data["corpus"] in SEQUENCE_TASKS and isinstance(model, dict):
        need(model.get("architecture", "rnn") == "rnn" and "parameter_budget" not in model, "model",
             "a recurrent model (architecture 'rnn') sized by hidden_size, not parameter_budget, for a sequence task")
    need(isinstance(model, dict), "model", "a dict of model options")
    if isinstance(model, dict):
        for key in ("embedding_size", "hidden_size", "num_layers", "parameter_budget", "num_heads"):
            if model.get(key) is not None:
                need(_is_int(model[key]) and model[key] >= 1, f"model.{key}", "a positive integer")
        for key in ("dropout", "input_dropout", "inter_layer_dropout", "embedding_dropout"):
            if key in model:
                need(_is_number(model[key]) and 0 <= model[key] < 1, f"model.{key}", "a rate in [0, 1)")
    need(_is_int(cfg["epochs"]) and cfg["epochs"] >= 1, "epochs", "a positive integer")
    need(cfg["patience"] is None or (_is_int(cfg["patience"]) and cfg["patience"] >= 1), "patience",
         "None or a positive integer")
    need(_is_int(cfg["seed"]), "seed", "an integer")
    need(cfg["clip"] is None or (_is_number(cfg["clip"]) and cfg["clip"] > 0), "clip", "None or a positive number")
    need(_is_int(cfg["keep_last"]) and cfg["keep_last"] >= 1, "keep_last", "a positive integer")
    for section, namespace in (("optimizer", torch.optim), ("scheduler", torch.optim.lr_scheduler)):
        spec = cfg[section]
        if spec is None and section == "scheduler":
            continue
        need(isinstance(spec, dict) and hasattr(namespace, str(spec.get("name"))), section,
             f"a dict whose 'name' is a class of {namespace.__name__}")
    if isinstance(cfg["optimizer"], dict) and "lr" in cfg["optimizer"]:
        need(_is_number(cfg["optimizer"]["lr"]) and cfg["optimizer"]["lr"] >= 0, "optimizer.lr", "a number ≥ 0")
    _check_phases(cfg, need)
    problems += _device_problems(cfg["device"])
    need(cfg["precision"] in ("float32", "bfloat16"), "precision", "'float32' or 'bfloat16'")
    if cfg["precision"] == "bfloat16" and _uses_cuda(cfg["device"]) and not torch.cuda.is_bf16_supported():
        problems.append("precision is 'bfloat16', but this GPU does not support it (use 'float32')")
    return problems


def _check_phases(cfg, need):
    """AR/TAR, NT-ASGD and fine-tuning (AWD-LSTM): their values, and what they need of the rest."""
    for key in ("ar", "tar"):
        need(_is_number(cfg[key]) and cfg[key] >= 0, key, "a number ≥ 0")
    if (cfg["ar"] or cfg["tar"]) and isinstance(cfg["model"], dict):
        need(cfg["model"].get("architecture", "rnn") == "rnn", "model.architecture",
             "'rnn' for ar and tar (they act on the recurrent layers' outputs)")
        need(cfg["data"]["corpus"] in LANGUAGE_CORPORA, "data.corpus", "a language-model corpus for ar and tar")
    shapes = {"nt_asgd": {"nonmono"}, "finetune": {"epochs", "nonmono"}}
    for key, fields in shapes.items():
        spec = cfg[key]
        if spec is None:
            continue
        need(isinstance(spec, dict) and set(spec) == fields and all(_is_int(spec[f]) and spec[f] >= 1 for f in fields),
             key, f"None or {{{', '.join(repr(f) + ': a positive integer' for f in sorted(fields))}}}")
        optimizer = cfg["optimizer"].get("name") if isinstance(cfg["optimizer"], dict) else None
        need(optimizer == "SGD", "optimizer", f"SGD for {key} (it averages SGD's iterates with torch.optim.ASGD)")
        need(cfg["scheduler"] is None, "scheduler", f"None with {key} (its learning rate is constant)")


def _uses_cuda(name):
    return torch.cuda.is_available() if name == "auto" else str(name).startswith("cuda")


def _device_problems(name):
    if name == "auto":
        return []
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        return [f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {name!r}"]
    if device.type == "cuda" and not torch.cuda.is_available():
        return [f"device is {name!r}, but this machine has no CUDA GPU (use 'auto' or 'cpu')"]
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        return [f"device is {name!r}, but this machine has {torch.cuda.device_count()} CUDA GPU(s)"]
    return []


def validate(cfg):
    problems = _problems(cfg)
    if problems:
        raise ConfigError("bad configuration, nothing was written:\n  " + "\n  ".join(problems))
