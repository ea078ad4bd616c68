"""Several processes training one model with torch.distributed (DistributedDataParallel, torchrun).

Under `torchrun --nproc_per_node N -m lstm_nb.train ...` each process is one rank: NCCL on CUDA (the
rank's GPU is `LOCAL_RANK`), gloo on CPU. Without torchrun the world is one process and every helper
here is the identity, so the training loop reads the same either way.

The rules the training loop follows (lstm_nb/train.py):
- every rank holds the whole model (DDP averages the gradients) and a share of each batch: of a
  language model's B parallel streams rank r reads streams [r·B/N, (r+1)·B/N), so the global batch
  stays B and one step equals one single-process step on the same data;
- rank 0 alone reads and writes the run folder; what the other ranks need from it (a finished
  summary, the checkpoint to resume from) is broadcast to them;
- evaluation splits the streams the same way and sums the losses over ranks, so every rank gets the
  number a single process computes.
"""

import importlib
import os

import torch
import torch.distributed as dist


def launched():
    """True inside a torchrun launch of more than one process."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def start(device_name="auto"):
    """Join the process group torchrun set up (NCCL on CUDA, gloo on CPU); nothing without torchrun."""
    if not launched() or dist.is_initialized():
        return
    use_cuda = torch.cuda.is_available() and device_name != "cpu"
    if use_cuda:
        torch.cuda.set_device(local_rank())
    # torch.distributed.nn.functional takes `group.WORLD` as a default argument, evaluated on import.
    # DistributedDataParallel imports it (through torch._dynamo) on first use; after init that binds the
    # default group ten times over, destroy_process_group then leaves its gloo threads running, and the
    # interpreter's exit aborts on them ("terminate called without an active exception"), a run in four
    # on a loaded 2-core machine. Imported first, those defaults are None.
    importlib.import_module("torch.distributed.nn")
    dist.init_process_group("nccl" if use_cuda else "gloo")


def stop():
    if dist.is_initialized():
        dist.barrier()  # neither rank tears the group down while the other still uses it
        dist.destroy_process_group()


def active():
    return dist.is_initialized() and dist.get_world_size() > 1


def rank():
    return dist.get_rank() if active() else 0


def world_size():
    return dist.get_world_size() if active() else 1


def local_rank():
    return int(os.environ.get("LOCAL_RANK", "0"))


def is_main():
    return rank() == 0


def broadcast(obj):
    """Rank 0's `obj` on every rank (any picklable object)."""
    if not active():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather(obj):
    """[obj of rank 0, obj of rank 1, ...] on every rank."""
    if not active():
        return [obj]
    out = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


def sum_over_ranks(*values):
    """The sums over ranks of a few numbers (in float64, so that the order of addition hardly matters)."""
    if not active():
        return values
    t = torch.tensor(values, dtype=torch.float64)
    if dist.get_backend() == "nccl":
        t = t.cuda()
    dist.all_reduce(t)
    return tuple(t.tolist())


def shard(total):
    """This rank's slice of `total` parallel streams (columns of a batchified corpus), or None when
    `total` does not divide over the ranks."""
    n = world_size()
    if total % n:
        return None
    width = total // n
    return slice(rank() * width, (rank() + 1) * width)


def on_main(fn, *args):
    """fn(*args) run by rank 0 alone, its result (or the exception it raised) on every rank, so that an
    error in rank 0's file work stops every rank instead of leaving them waiting for it."""
    result, error = None, None
    if is_main():
        try:
            result = fn(*args)
        except Exception as e:  # noqa: BLE001 (re-raised on every rank below)
            error = e
    result, error = broadcast((result, error))
    if error is not None:
        raise error
    return result


def device(name):
    """The torch device for config value `name` in this rank: "auto" and "cuda" mean this rank's GPU."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    if device.type == "cuda" and device.index is None and active():
        device = torch.device("cuda", local_rank())
    return device
