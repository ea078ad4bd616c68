"""The files of a run folder, and the one place their names are spelled: written atomically, read with
a clear error, locked, cleaned, pruned.

    run/<experiment>/<model_name>/
      config.json                 the full configuration, seed, library versions, git commit (CONFIG)
      metrics_epoch_<N>.json      after every epoch (`metrics_file`; keys in docs/run-folder.md)
      checkpoint_epoch_<N>.pt     model, optimiser, scheduler and RNG states, the configuration and every
                                  epoch's metrics; the last `keep_last` kept, and the best epoch's
      best.pt                     the model with the lowest validation loss so far (BEST)
      metrics.json                the final summary, with test metrics when there is a test split (SUMMARY)
      <evaluation>.json           every result of an evaluation with its options, and
      <evaluation>_chosen.json    the one chosen on validation (`evaluation_file`: dynamic_eval,
                                  mc_dropout, pointer)
      .lock, .lock-holder         the lock, and who holds it

Every file is written to a temporary file in the same folder, flushed to disk, then renamed over its
final name, so a run killed at any moment leaves either the previous file or the complete new one,
never a truncated file under a file's name. A temporary file left by a killed process is removed by
the next process that locks the folder (`remove_stale_temporaries`). Files get the usual permissions
of the user's umask (0644 under the common umask 022), not the 0600 of `tempfile`.

One process at a time writes a run folder: `locked(folder)` holds an exclusive lock on
`<folder>/.lock` for as long as it trains (the `filelock` package: `flock` on Linux and macOS, a byte
lock on Windows), and names itself in `<folder>/.lock-holder`. The operating system releases the lock
when the process ends, however it ends (SIGKILL included), so a killed run never leaves the folder stuck.
"""

import contextlib
import errno
import json
import math
import os
import re
import secrets
from pathlib import Path

import filelock
import torch

from .errors import ExplainedError

EPOCH_FILE = re.compile(r"checkpoint_epoch_(\d+)\.pt$")
TEMPORARY = ".*.tmp"
LOCK_FILE, HOLDER_FILE = ".lock", ".lock-holder"
CONFIG, SUMMARY, BEST = "config.json", "metrics.json", "best.pt"
METRICS_FILES = "metrics_epoch_*.json"  # a glob over a run's, or an experiment's, per-epoch metrics
EVALUATIONS = ("dynamic_eval", "mc_dropout", "pointer")


def metrics_file(folder, epoch):
    return Path(folder) / f"metrics_epoch_{epoch}.json"


def checkpoint_file(folder, epoch):
    return Path(folder) / f"checkpoint_epoch_{epoch}.pt"


def evaluation_file(folder, name, chosen=False):
    """`<name>.json` (every result of evaluation `name` with its options) or `<name>_chosen.json` (the
    result chosen on validation)."""
    if name not in EVALUATIONS:
        raise ValueError(f"unknown evaluation {name!r}; known: {', '.join(EVALUATIONS)}")
    return Path(folder) / f"{name}{'_chosen' if chosen else ''}.json"


class RunFileError(ExplainedError, RuntimeError):
    """A file of a run folder is missing or cannot be read; the message says what to do."""


class CheckpointError(RunFileError):
    """A checkpoint exists but cannot be read."""


class NoSpaceError(RunFileError):
    """The device ran out of space while a run folder's file was written; nothing was lost."""


class RunLockedError(ExplainedError, RuntimeError):
    """Another process is writing the same run folder."""


def _atomic_write(path, write):
    path = Path(path)
    tmp = path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    # os.open applies the umask to 0o666, as open() does for any ordinary file.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        tmp.unlink(missing_ok=True)
        if _out_of_space(e):  # torch.save reports it as "unexpected pos", with the real cause further up
            raise NoSpaceError(
                f"{path} could not be written: no space left on the device that holds {path.parent}. Nothing "
                f"was lost: the previous {path.name}, if there was one, is unchanged, and the partial file was "
                f"removed. Free some space and run the same command again: it resumes from the last finished "
                f"epoch.") from None
        raise


def _out_of_space(error):
    """Whether `error`, or an error it was raised from or while handling, is ENOSPC."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if (isinstance(error, OSError) and error.errno == errno.ENOSPC) or "No space left on device" in str(error):
            return True
        error = error.__cause__ or error.__context__
    return False


def save(obj, path):
    _atomic_write(path, lambda f: torch.save(obj, f))


def _finite_or_null(value):
    """JSON has no Infinity or NaN: a non-finite float is written as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite_or_null(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_null(v) for v in value]
    return value


def save_json(obj, path):
    text = json.dumps(_finite_or_null(obj), indent=2, sort_keys=True, allow_nan=False)
    _atomic_write(path, lambda f: f.write(text.encode() + b"\n"))


def load_json(path, advice):
    """The JSON in `path`; a missing or unreadable file is a RunFileError naming it, with `advice`."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise RunFileError(f"{path} is missing. {advice}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise RunFileError(f"cannot read {path} ({type(e).__name__}: {e}): it is damaged. {advice}") from None


def load(path, map_location="cpu"):
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path} is missing")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # noqa: BLE001 (a damaged file raises any of pickle's, zip's or torch's errors)
        first_line = str(e).strip().splitlines()[0] if str(e).strip() else ""
        if len(first_line) > 100:  # cut at a word boundary, and say so
            first_line = first_line[:100].rsplit(" ", 1)[0] + " …"
        raise CheckpointError(f"cannot read {path} ({type(e).__name__}: {first_line}): it is damaged") from None


def epoch_checkpoints(folder):
    """The epoch checkpoints in `folder`, oldest first."""
    found = [(int(m.group(1)), p) for p in Path(folder).glob("checkpoint_epoch_*.pt") if (m := EPOCH_FILE.search(p.name))]
    return [p for _, p in sorted(found)]


def epoch_of(path):
    return int(EPOCH_FILE.search(Path(path).name).group(1))


def prune(folder, keep, also_keep=None):
    """Delete all but the newest `keep` epoch checkpoints, and never the one of epoch `also_keep`
    (the best epoch: best.pt can be rebuilt from it)."""
    for p in epoch_checkpoints(folder)[:-keep]:
        if epoch_of(p) != also_keep:
            p.unlink()


def remove_stale_temporaries(folder):
    """Delete the temporary files a killed writer left behind; only call while holding the lock."""
    removed = sorted(Path(folder).glob(TEMPORARY))
    for p in removed:
        p.unlink(missing_ok=True)
    return removed


def writer_of(folder):
    """Who holds `folder`'s lock (its holder file's text), or None when no process does. Writes nothing."""
    path = Path(folder) / LOCK_FILE
    if not path.exists():
        return None
    lock = filelock.FileLock(path, timeout=0)
    try:
        lock.acquire()
    except filelock.Timeout:
        holder = Path(folder) / HOLDER_FILE
        return holder.read_text().strip() if holder.exists() else "another process"
    lock.release()
    return None


@contextlib.contextmanager
def locked(folder):
    """Hold the run folder's exclusive lock; raise RunLockedError at once if another process has it."""
    folder = Path(folder)
    lock = filelock.FileLock(folder / LOCK_FILE, timeout=0)
    try:
        lock.acquire()
    except filelock.Timeout:
        holder = folder / HOLDER_FILE
        name = holder.read_text().strip() if holder.exists() else "another process"
        raise RunLockedError(
            f"{folder} is being written by {name}. Wait until it finishes (a finished run is then "
            f"read back, not trained again), stop it, or give this run another experiment or model_name."
        ) from None
    try:
        _atomic_write(folder / HOLDER_FILE, lambda f: f.write(f"process {os.getpid()}".encode()))
        yield
    finally:
        lock.release()
