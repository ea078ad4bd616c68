"""How the benchmarks measure: what autograd keeps for a backward, and interleaved timing rounds (every
implementation once per round, so that the machine's drift hits them alike; the best round counts)."""

import time

import torch

from . import gemm


def saved_bytes(step):
    """Bytes of the distinct tensors autograd saves for backward while `step` builds its graph."""
    seen = {}

    def pack(t):
        seen[(t.untyped_storage().data_ptr(), t.dtype)] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = step()
    return out, sum(seen.values())


def interleaved(runs, repeats, device):
    """Time every run of `runs` ({key: (gemm backend, step)}) `repeats` times, round after round so that
    the machine's drift hits them alike: {key: [seconds]} and, on CUDA, {key: peak MB}."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    times, cuda_peak = {key: [] for key in runs}, {}
    for _ in range(repeats):
        for key, (backend, step) in runs.items():
            with gemm.using(backend):
                if device.type == "cuda":
                    torch.cuda.reset_peak_memory_stats()
                sync()
                start = time.perf_counter()
                step()
                sync()
                times[key].append(time.perf_counter() - start)
                if device.type == "cuda":
                    cuda_peak[key] = torch.cuda.max_memory_allocated() / 2**20
    return times, cuda_peak
