"""Checkpoint files: written atomically, found, loaded with a clear error, pruned.

A checkpoint is written to a temporary file in the same folder, flushed to disk, then renamed over
its final name, so a run killed at any moment leaves either the previous file or the complete new
one — never a truncated file under a checkpoint's name.
"""

import json
import os
import re
import tempfile
from pathlib import Path

import torch

EPOCH_FILE = re.compile(r"checkpoint_epoch_(\d+)\.pt$")


class CheckpointError(RuntimeError):
    """A checkpoint exists but cannot be read."""


def _atomic_write(path, write):
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def save(obj, path):
    _atomic_write(path, lambda f: torch.save(obj, f))


def save_json(obj, path):
    _atomic_write(path, lambda f: f.write(json.dumps(obj, indent=2, sort_keys=True).encode() + b"\n"))


def load(path, map_location="cpu"):
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:
        others = [p.name for p in epoch_checkpoints(Path(path).parent) if p != Path(path)]
        raise CheckpointError(
            f"cannot read checkpoint {path} ({type(e).__name__}: {e}). It is damaged — perhaps copied "
            f"or written by something other than this training loop. Delete it to resume from an older "
            f"checkpoint ({', '.join(others) or 'none left: the run would start over'})."
        ) from e


def epoch_checkpoints(folder):
    """checkpoint_epoch_<N>.pt files in `folder`, oldest first."""
    found = [(int(m.group(1)), p) for p in Path(folder).glob("checkpoint_epoch_*.pt") if (m := EPOCH_FILE.search(p.name))]
    return [p for _, p in sorted(found)]


def prune(folder, keep):
    for p in epoch_checkpoints(folder)[:-keep] if keep > 0 else []:
        p.unlink()
