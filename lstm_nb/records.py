"""A run folder's bookkeeping: what an epoch writes there, how a new process checks it, resumes from it
and repairs it. The files themselves (their names, atomic writes, the lock) are `checkpoints`; the
loop is `loop`.

Under torchrun, what reads or writes files here runs in rank 0 alone (`distributed.on_main`).
"""

import json
import os
import platform
import random
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from . import checkpoints, distributed, gemm, paths
from .config import ConfigError, with_defaults


def _git_commit():
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True,
                             text=True, timeout=10, check=False)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def _command():
    """What started this training: the runner's command line (it sets LSTM_NB_COMMAND for its
    kernel), the notebook open in JupyterLab (JPY_SESSION_NAME), or this process' own command line."""
    if os.environ.get("LSTM_NB_COMMAND"):
        return os.environ["LSTM_NB_COMMAND"]
    if "ipykernel" in sys.modules:
        return f"notebook {os.environ.get('JPY_SESSION_NAME', '(an interactive Jupyter kernel)')}"
    return shlex.join([Path(sys.executable).name, *sys.argv])


def describe_environment(cfg, model_inputs, n_params, device):
    """The configuration file's content: `model_inputs` are the data's model sizes (`models.from_config`); a language model's
    vocabulary size is also written as `vocab_size`."""
    return {
        "config": cfg,
        "seed": cfg["seed"],
        **({"vocab_size": model_inputs["vocab_size"]} if "vocab_size" in model_inputs else {}),
        "model_inputs": model_inputs,
        "parameters": n_params,
        "device": str(device),
        "gemm": gemm.describe(),  # the matrix-product backend: a resume under another may differ in the last bits
        "world_size": distributed.world_size(),  # processes under torchrun (a resume needs the same)
        "git_commit": _git_commit(),
        "versions": {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__},
        "command": _command(),
    }


def as_json(cfg):
    return json.loads(json.dumps(cfg))


def refuse_other_config(where, stored, cfg, folder):
    # a key added to the defaults after that run was written takes its default value there
    stored, wanted = as_json(with_defaults(stored)), as_json(cfg)
    if stored != wanted:
        changed = sorted(k for k in set(stored) | set(wanted) if stored.get(k) != wanted.get(k))
        raise ConfigError(
            f"{where} holds a run with a different configuration (differs in: {', '.join(changed)}); nothing "
            f"was written. Use another experiment or model_name, or delete {folder} to start over."
        )


def read_config(folder):
    """The configuration file of a run folder, or a RunFileError saying what to do."""
    return checkpoints.load_json(Path(folder) / checkpoints.CONFIG, advice=(
        "It describes the run; delete it and run the same training again: it is rewritten, after the "
        "configuration is checked against the one stored in the run's checkpoints."))


def recorded_gemm_backend(folder):
    """The matrix-product backend a run in `folder` started with (its configuration file), None for a new run
    (or one whose configuration file is gone or predates the record: `auto` then decides)."""
    try:
        return json.loads((Path(folder) / checkpoints.CONFIG).read_text())["gemm"]["backend"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def readable_json(path):
    try:
        json.loads(Path(path).read_text())
        return True
    except (OSError, ValueError):
        return False


def finished_summary(folder, cfg):
    """The summary of a finished run in `folder`, None when there is none (or when one of its files
    needs to be rebuilt from the checkpoints); a different configuration there is refused."""
    if (folder / checkpoints.CONFIG).exists():
        refuse_other_config(folder / checkpoints.CONFIG, read_config(folder)["config"], cfg, folder)
    if not (folder / checkpoints.SUMMARY).exists():
        return None
    summary = checkpoints.load_json(folder / checkpoints.SUMMARY, advice=(
        "It is the run's summary; delete it and run the same training again: it is recomputed from the "
        "run's checkpoints without training."))
    epochs = range(1, summary["epochs_trained"] + 1)
    if loadable(folder / checkpoints.BEST) and all(readable_json(checkpoints.metrics_file(folder, e)) for e in epochs):
        return summary
    return None


def loadable(path):
    """Whether a checkpoint file exists and loads (a damaged best model is then rebuilt like a missing one)."""
    try:
        checkpoints.load(path)
        return True
    except checkpoints.CheckpointError:
        return False


def load_latest_checkpoint(found, device):
    try:
        return checkpoints.load(found[-1], map_location=device)
    except checkpoints.CheckpointError as e:
        older = found[-2].name if len(found) > 1 else None
        raise checkpoints.CheckpointError(
            f"{e}. Delete it, then run the same training again: it resumes "
            + (f"from {older}." if older else "from the start (no older checkpoint is left).")
        ) from None


def best_model_state(folder, progress, device):
    """The best model (`checkpoints.BEST`); a missing, damaged or stale one is rebuilt from the best epoch's checkpoint
    (which pruning keeps)."""
    best_epoch = progress["best_epoch"]
    try:
        best = checkpoints.load(folder / checkpoints.BEST, map_location=device)
        if best["epoch"] == best_epoch:
            return best["model"]
        problem = f"{folder / checkpoints.BEST} holds epoch {best['epoch']}, not the best epoch {best_epoch}"
    except checkpoints.CheckpointError as e:
        problem = str(e)
    source = checkpoints.checkpoint_file(folder, best_epoch)
    try:
        ckpt = checkpoints.load(source, map_location=device)
        model_state = ckpt.get("evaluated_model") or ckpt["model"]  # the averaged weights, under ASGD
    except checkpoints.CheckpointError as e:
        raise checkpoints.CheckpointError(
            f"{problem}, and it cannot be rebuilt: {e}. The best model of this run is lost. Delete {folder} "
            f"and run the same training again to retrain it (on the same machine it reproduces the run)."
        ) from None
    checkpoints.save({"model": model_state, "epoch": best_epoch, "config": progress["config"]}, folder / checkpoints.BEST)
    print(f"{problem}: rebuilt it from {source.name}")
    return model_state


def run_folder(cfg, run_root=None):
    return Path(run_root or paths.run_dir()) / cfg["experiment"] / cfg["model_name"]


def resume_state(cfg, folder, data, n_params, device):
    """Rank 0's work before the first epoch: the newest checkpoint (checked against this config and
    world size), the configuration file, and the metric files rebuilt from the checkpoint where damaged."""
    name = f"{cfg['experiment']}/{cfg['model_name']}"
    found = checkpoints.epoch_checkpoints(folder)
    ckpt = None
    if found:
        ckpt = load_latest_checkpoint(found, "cpu")
        refuse_other_config(found[-1], ckpt["progress"].setdefault("config", as_json(cfg)), cfg, folder)
        for key, default in (("history", []), ("world_size", 1)):  # checkpoints of bb8e33d and before lack them
            ckpt["progress"].setdefault(key, default)
        trained_by = ckpt["progress"]["world_size"]
        if trained_by != distributed.world_size():
            raise ConfigError(
                f"{found[-1]} was trained by {trained_by} process(es), this is {distributed.world_size()}: a run "
                f"resumes with the world size it started with (torchrun --nproc_per_node {trained_by}, or no "
                f"torchrun for 1), since its data split and random streams depend on it. Or train it under "
                f"another model_name."
            )
        print(f"{name}: resuming {folder} after epoch {ckpt['progress']['epoch']}")
    if not readable_json(folder / checkpoints.CONFIG):
        checkpoints.save_json(describe_environment(cfg, data.model_inputs, n_params, device), folder / checkpoints.CONFIG)
    for metrics in ckpt["progress"]["history"] if ckpt else []:
        path = checkpoints.metrics_file(folder, metrics["epoch"])
        if not readable_json(path):
            checkpoints.save_json(metrics, path)
            print(f"{name}: rewrote {path.name} from {found[-1].name}")
    return ckpt


def rng_state():
    """Every random stream a run draws from, as an epoch checkpoint saves it."""
    state = {"torch": torch.get_rng_state(), "python": random.getstate(),
             "numpy": [x.tolist() if isinstance(x, np.ndarray) else x for x in np.random.get_state()]}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state):
    torch.set_rng_state(state["torch"])
    version, keys, *rest = state["python"]
    random.setstate((version, tuple(keys), *rest))
    np.random.set_state((state["numpy"][0], np.array(state["numpy"][1], dtype=np.uint32), *state["numpy"][2:]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def copy_state(model):
    return {key: value.detach().clone() for key, value in model.state_dict().items()}


def save_epoch(cfg, folder, model, optimizer, scheduler, progress, improved, rng, writer, evaluated_state=None):
    """Rank 0's files after an epoch: the best model when it improved, the metrics, the checkpoint, pruning.
    `evaluated_state`: the weights validated when they are not the model's own (ASGD's averages);
    the best model is them, and the checkpoint keeps them beside the raw weights and the optimiser."""
    metrics = progress["history"][-1]
    evaluated = evaluated_state or model.state_dict()
    if improved:
        checkpoints.save({"model": evaluated, "epoch": metrics["epoch"], "config": progress["config"]},
                         folder / checkpoints.BEST)
    checkpoints.save_json(metrics, checkpoints.metrics_file(folder, metrics["epoch"]))
    checkpoints.save(
        {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
         "scheduler": scheduler.state_dict() if scheduler is not None else None,
         "progress": progress, "rng": rng, **({"evaluated_model": evaluated_state} if evaluated_state else {})},
        checkpoints.checkpoint_file(folder, metrics["epoch"]),
    )
    checkpoints.prune(folder, cfg["keep_last"], also_keep=progress["best_epoch"])
    if writer is not None:
        for key, value in tensorboard_scalars(metrics).items():
            writer.add_scalar(key, value, metrics["epoch"])
        writer.flush()


def tensorboard_scalars(metrics):
    """Every number of an epoch's metrics file (the epoch itself is the step): what TensorBoard plots."""
    return {key: float(value) for key, value in metrics.items()
            if key != "epoch" and isinstance(value, (int, float)) and not isinstance(value, bool)}


def cached(folder, evaluation, options, compute):
    """The result of `evaluation` stored under `options` in the run's evaluation file (a JSON list of
    results, `checkpoints.evaluation_file`), or `{"options": options, **compute(saved)}` computed,
    appended there and returned; `saved` is the list already stored. The folder is locked while it is
    read and written."""
    path = checkpoints.evaluation_file(folder, evaluation)
    with checkpoints.locked(folder):
        saved = checkpoints.load_json(path, advice="Delete it to evaluate again.") if path.exists() else []
        for result in saved:
            if result["options"] == options:
                return result
        result = {"options": options, **compute(saved)}
        checkpoints.save_json(saved + [result], path)
    return result
