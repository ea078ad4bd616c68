"""The one training loop: data and model from a config, per-epoch metrics and checkpoints in run/.

    summary = lstm_nb.train.train({"experiment": "brown", "model_name": "lstm", "data": {...}, ...})

Writes into `run/<experiment>/<model_name>/`:
  config.json                 the full configuration, seed, library versions, git commit
  metrics_epoch_<N>.json      after every epoch (keys listed in README.md)
  checkpoint_epoch_<N>.pt     model + optimiser + scheduler + RNG states; the last `keep_last` kept
  best.pt                     the model with the lowest validation loss so far
  metrics.json                the final summary, with test metrics when the corpus has a test split

Running the same experiment again resumes from the last complete epoch (or returns the finished
summary); a changed configuration in an existing folder is an error, never a silent mix.
"""

import copy
import json
import math
import platform
import random
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from . import checkpoints, models, paths
from . import data as data_module

DEFAULTS = {
    "experiment": "default",
    "model_name": "lstm",
    "data": {"corpus": "ptb", "batch_size": 20, "bptt": 35, "eval_batch_size": 10, "instance_length": 500,
             "fraction": 1.0, "seed": 0},
    # passed to lstm_nb.models.build: "architecture" ("rnn" or "transformer") and that model's options
    "model": {"architecture": "rnn", "embedding_size": 200, "hidden_size": 200},
    "epochs": 10,
    "patience": None,  # epochs without validation improvement before stopping; None = never
    "seed": 1,
    "clip": 0.25,  # max total gradient norm; None = no clipping
    "optimizer": {"name": "Adam", "lr": 1e-3},
    "scheduler": None,  # e.g. {"name": "ReduceLROnPlateau", "factor": 0.25, "patience": 0}
    "keep_last": 3,  # epoch checkpoints kept
    "device": "auto",
}
OPEN_SECTIONS = {"model", "optimizer", "scheduler"}  # free-form: checked by the model / torch


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN or infinite; training stopped, the last good checkpoint is kept."""


def make_config(overrides=None, defaults=DEFAULTS, where="config"):
    """Deep-merge `overrides` into the defaults; an unknown key is an error naming the known ones."""
    cfg = copy.deepcopy(defaults)
    for key, value in (overrides or {}).items():
        if key not in cfg:
            raise KeyError(f"unknown {where} key {key!r}; known: {', '.join(sorted(cfg))}")
        if isinstance(cfg[key], dict) and isinstance(value, dict) and key not in OPEN_SECTIONS:
            cfg[key] = make_config(value, cfg[key], f"{where}.{key}")
        else:
            cfg[key] = copy.deepcopy(value)
    return cfg


def seed_everything(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def pick_device(name):
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _rng_state():
    state = {"torch": torch.get_rng_state(), "python": random.getstate(),
             "numpy": [x.tolist() if isinstance(x, np.ndarray) else x for x in np.random.get_state()]}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state):
    torch.set_rng_state(state["torch"])
    version, keys, *rest = state["python"]
    random.setstate((version, tuple(keys), *rest))
    np.random.set_state((state["numpy"][0], np.array(state["numpy"][1], dtype=np.uint32), *state["numpy"][2:]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _git_commit():
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True,
                             text=True, timeout=10, check=False)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def _from_torch(namespace, spec, *args):
    spec = dict(spec)
    name = spec.pop("name")
    if not hasattr(namespace, name):
        raise ValueError(f"{namespace.__name__} has no {name!r}")
    return getattr(namespace, name)(*args, **spec)


def make_optimizer(model, spec):
    return _from_torch(torch.optim, spec, model.parameters())


def make_scheduler(optimizer, spec):
    return None if spec is None else _from_torch(torch.optim.lr_scheduler, spec, optimizer)


def loss_metrics(prefix, loss, unit):
    """`<prefix>_loss` (nats per token) plus perplexity (words) or bits per character (chars)."""
    out = {f"{prefix}_loss": loss}
    if unit == "word":
        out[f"{prefix}_perplexity"] = math.exp(loss) if loss < 700 else math.inf
    else:
        out[f"{prefix}_bpc"] = loss / math.log(2)
    return out


def _tensorboard(folder):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is optional
        return None
    return SummaryWriter(str(folder / "tensorboard"))


@torch.no_grad()
def evaluate(model, data, split, device):
    """Mean NLL per token over the whole split (token-weighted), dropout off, state carried."""
    model.eval()
    state, total, count = None, 0.0, 0
    for x, y in data.batches(split):
        x, y = x.to(device), y.to(device)
        logits, state = model(x, state if data.carry_state else None)
        total += F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), reduction="sum").item()
        count += y.numel()
    return total / count


def window_loss(model, data, x, y, state, device):
    """Mean next-token loss of one (input, target) window and the state it leaves, from `state`
    (detached: truncated BPTT) when the data's windows continue each other, else from zeros."""
    x, y = x.to(device), y.to(device)
    logits, state = model(x, models.detach_state(state) if data.carry_state else None)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1)), state


def train_epoch(model, data, optimizer, cfg, epoch, device):
    """One pass over the training split; returns the token-weighted mean training loss."""
    model.train()
    state, total, count = None, 0.0, 0
    bar = tqdm(data.batches("train", epoch), total=data.num_batches("train"), desc=f"epoch {epoch}",
               leave=False, mininterval=1.0)
    for step, (x, y) in enumerate(bar):
        loss, state = window_loss(model, data, x, y, state, device)
        if not torch.isfinite(loss):
            raise NonFiniteLossError(f"the training loss became {loss.item()} at epoch {epoch}, batch {step}")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg["clip"]:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg["clip"])
        optimizer.step()
        total += loss.item() * y.numel()
        count += y.numel()
        bar.set_postfix(loss=f"{total / count:.3f}", refresh=False)
    return total / count


def _describe_environment(cfg, vocab_size, n_params, device):
    return {
        "config": cfg,
        "seed": cfg["seed"],
        "vocab_size": vocab_size,
        "parameters": n_params,
        "device": str(device),
        "git_commit": _git_commit(),
        "versions": {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__},
        "command": sys.argv,
    }


def _check_config(folder, cfg):
    """An existing run folder must hold the same configuration; otherwise stop, touching nothing."""
    path = folder / "config.json"
    if not path.exists():
        return
    stored = json.loads(path.read_text())["config"]
    if stored != json.loads(json.dumps(cfg)):
        changed = sorted(k for k in set(stored) | set(cfg) if stored.get(k) != json.loads(json.dumps(cfg)).get(k))
        raise ValueError(
            f"{folder} already holds a run with a different configuration (differs in: {', '.join(changed)}). "
            f"Use another experiment or model_name, or delete that folder to start over."
        )


def run_folder(cfg, run_root=None):
    return Path(run_root or paths.run_dir()) / cfg["experiment"] / cfg["model_name"]


def build_model(cfg, vocab_size):
    return models.build(vocab_size, **cfg["model"])


def train(config, run_root=None):
    """Train (or resume, or just report) the experiment described by `config`; return its summary."""
    cfg = make_config(config)
    folder = run_folder(cfg, run_root)
    _check_config(folder, cfg)
    if (folder / "metrics.json").exists():
        return json.loads((folder / "metrics.json").read_text())
    folder.mkdir(parents=True, exist_ok=True)

    seed_everything(cfg["seed"])
    device = pick_device(cfg["device"])
    data = data_module.build(**cfg["data"])
    model = build_model(cfg, len(data.vocab)).to(device)
    optimizer = make_optimizer(model, cfg["optimizer"])
    scheduler = make_scheduler(optimizer, cfg["scheduler"])
    n_params = models.count_parameters(model)
    if not (folder / "config.json").exists():
        checkpoints.save_json(_describe_environment(cfg, len(data.vocab), n_params, device), folder / "config.json")

    progress = {"epoch": 0, "best_epoch": None, "best_validation_loss": math.inf, "stale": 0, "duration": 0.0,
                "stopped_early": False}
    found = checkpoints.epoch_checkpoints(folder)
    if found:
        ckpt = checkpoints.load(found[-1], map_location=device)
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(ckpt["scheduler"])
        progress = ckpt["progress"]
        _set_rng_state(ckpt["rng"])
        print(f"resuming {folder} after epoch {progress['epoch']}")

    writer = _tensorboard(folder)
    unit = data.unit
    for epoch in range(progress["epoch"] + 1, cfg["epochs"] + 1):
        if progress["stopped_early"]:
            break
        start = time.time()
        train_loss = train_epoch(model, data, optimizer, cfg, epoch, device)
        valid_loss = evaluate(model, data, "valid", device)
        if not math.isfinite(valid_loss):
            raise NonFiniteLossError(f"the validation loss became {valid_loss} at epoch {epoch}")
        if scheduler is not None:
            is_plateau = isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)
            scheduler.step(valid_loss) if is_plateau else scheduler.step()
        improved = valid_loss < progress["best_validation_loss"]
        if improved:
            progress.update(best_epoch=epoch, best_validation_loss=valid_loss, stale=0)
            checkpoints.save({"model": model.state_dict(), "epoch": epoch}, folder / "best.pt")
        else:
            progress["stale"] += 1
        epoch_time = time.time() - start
        progress.update(epoch=epoch, duration=progress["duration"] + epoch_time,
                        stopped_early=cfg["patience"] is not None and progress["stale"] >= cfg["patience"])
        metrics = {
            "epoch": epoch,
            "training_epochs": epoch,
            "best_epoch": progress["best_epoch"],
            **loss_metrics("training", train_loss, unit),
            **loss_metrics("validation", valid_loss, unit),
            **loss_metrics("best_validation", progress["best_validation_loss"], unit),
            "training_duration": progress["duration"],
            "epoch_duration": epoch_time,
            "learning_rate": optimizer.param_groups[0]["lr"],
            "peak_cpu_memory_MB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }
        if device.type == "cuda":
            metrics["peak_gpu_0_memory_MB"] = torch.cuda.max_memory_allocated(device) / 2**20
        checkpoints.save_json(metrics, folder / f"metrics_epoch_{epoch}.json")
        checkpoints.save(
            {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
             "scheduler": scheduler.state_dict() if scheduler is not None else None,
             "progress": progress, "rng": _rng_state()},
            folder / f"checkpoint_epoch_{epoch}.pt",
        )
        checkpoints.prune(folder, cfg["keep_last"])
        if writer is not None:
            for key in ("training_loss", "validation_loss"):
                writer.add_scalar(key, metrics[key], epoch)
            writer.flush()
        print(f"epoch {epoch}: training loss {train_loss:.4f}, validation loss {valid_loss:.4f}"
              f"{' (best)' if improved else ''}, {epoch_time:.1f}s")
        if progress["stopped_early"]:
            break

    model.load_state_dict(checkpoints.load(folder / "best.pt", map_location=device)["model"])
    summary = {
        "experiment": cfg["experiment"], "model_name": cfg["model_name"], "corpus": cfg["data"]["corpus"],
        "parameters": n_params, "epochs_trained": progress["epoch"], "stopped_early": progress["stopped_early"],
        "best_epoch": progress["best_epoch"], "training_duration": progress["duration"],
        "mean_epoch_duration": progress["duration"] / max(progress["epoch"], 1),
        **loss_metrics("best_validation", progress["best_validation_loss"], unit),
    }
    if "test" in data.splits:
        summary.update(loss_metrics("test", evaluate(model, data, "test", device), unit))
    checkpoints.save_json(summary, folder / "metrics.json")
    if writer is not None:
        writer.close()
    return summary


def override(base, changes):
    """`base` with `changes` applied: a dict value updates that section's keys, anything else replaces."""
    out = copy.deepcopy(base)
    for key, value in changes.items():
        out[key] = {**out.get(key, {}), **value} if isinstance(value, dict) and out.get(key) else copy.deepcopy(value)
    return out


def compare(base, variants, experiment, run_root=None):
    """Train `base` once per variant ({model_name: config changes, e.g. {"model": {"cell": "lstm"}}}), same
    data and budget; return the summaries as a DataFrame indexed by model name."""
    import pandas as pd

    rows = [train({**override(base, changes), "experiment": experiment, "model_name": name}, run_root)
            for name, changes in variants.items()]
    return pd.DataFrame(rows).set_index("model_name")


def load_model(folder, which="best.pt", device="cpu"):
    """The trained model of a run folder, rebuilt from its config.json."""
    folder = Path(folder)
    described = json.loads((folder / "config.json").read_text())
    model = build_model(described["config"], described["vocab_size"])
    model.load_state_dict(checkpoints.load(folder / which, map_location=device)["model"])
    return model.to(device)


if __name__ == "__main__":  # python -m lstm_nb.train config.json
    if len(sys.argv) != 2:
        sys.exit("usage: python -m lstm_nb.train CONFIG.json")
    print(json.dumps(train(json.loads(Path(sys.argv[1]).read_text())), indent=2))
