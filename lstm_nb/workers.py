"""Independent trainings in parallel processes, the CPU's threads split between them.

A notebook trains several rows and seeds that share nothing; on a 2-core CPU one small run leaves a
core idle (two 1-thread processes did one DDP epoch in 167 s against 243 s for one 2-thread process on
an Intel Xeon). `train_all` hands each configuration to a pool of `workers` processes, each with
`threads` = cores // workers torch threads, and returns the results in the configurations' order.

- Each worker runs the one training loop (`train.train`) on its configuration, so a run is the same
  run: the same seed, the same data order, the same run folder and its lock. Its metrics equal a
  sequential run's under the same thread count (tested).
- A failing configuration is reported by name once the others have finished (`WorkerError`), and a
  diverged one is a row saying where, as in a sequential `train_each(keep_going=True)`.
- The workers' lines (the loop's per-epoch lines) are relayed to this process's output, so they show
  in the notebook cell that trains; per-batch bars stay off in workers, and one bar counts the runs.

Processes are spawned, not forked: a fork of a process whose OpenMP threads have started can hang.
"""

import concurrent.futures
import multiprocessing
import os
import queue as queue_module
import sys
import traceback

from .errors import ExplainedError
from .progress import bar as progress_bar


class WorkerError(ExplainedError, RuntimeError):
    """A configuration failed in a worker; the others finished, and this message names it."""


def cores():
    """The CPU cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def default_workers(device="auto"):
    """The worker count a notebook uses by default: every core on a CPU run, one process on a GPU
    (parallel runs would share its memory)."""
    import torch

    on_gpu = device != "cpu" and torch.cuda.is_available()
    return 1 if on_gpu else cores()


def threads_per_worker(workers):
    return max(1, cores() // workers)


class _Lines:
    """A worker's stdout / stderr: each complete line goes to the parent through the queue."""

    def __init__(self, queue, stream):
        self.queue, self.stream, self.pending = queue, stream, ""

    def write(self, text):
        self.pending += text
        *lines, self.pending = self.pending.split("\n")
        for line in lines:
            self.queue.put((self.stream, line))
        return len(text)

    def flush(self):
        pass


def _start_worker(threads, queue):
    import torch

    torch.set_num_threads(threads)
    os.environ["TQDM_DISABLE"] = "1"
    sys.stdout, sys.stderr = _Lines(queue, "stdout"), _Lines(queue, "stderr")


def _train_one(cfg, run_root):
    """("summary", summary), ("diverged", reason) or ("error", traceback text): every outcome travels
    back as plain data, so nothing depends on an exception surviving pickling."""
    from . import train

    try:
        return "summary", train.train(cfg, run_root)
    except train.NonFiniteLossError as e:
        return "diverged", e.reason
    except BaseException:  # noqa: BLE001 - reported with its configuration's name once the others finish
        return "error", traceback.format_exc()


def train_all(configs, run_root=None, workers=2, threads=None):
    """{key: ("summary" | "diverged" | "error", value)} for every config of {key: config}, trained by
    `workers` spawned processes with `threads` torch threads each (default: cores // workers)."""
    threads = threads or threads_per_worker(workers)
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager:
        lines = manager.Queue()
        with concurrent.futures.ProcessPoolExecutor(min(workers, len(configs)), mp_context=context,
                                                    initializer=_start_worker, initargs=(threads, lines)) as pool:
            futures = {pool.submit(_train_one, cfg, run_root): key for key, cfg in configs.items()}
            outcomes = {}
            with progress_bar(total=len(futures), desc=f"runs ({workers} workers × {threads} threads)") as bar:
                pending = set(futures)
                while pending:
                    done, pending = concurrent.futures.wait(pending, timeout=0.5)
                    _relay(lines)
                    for future in done:
                        outcomes[futures[future]] = future.result()
                        bar.update()
            _relay(lines)
    return {key: outcomes[key] for key in configs}


def _relay(lines):
    while True:
        try:
            stream, line = lines.get_nowait()
        except queue_module.Empty:
            return
        print(line, file=sys.stderr if stream == "stderr" else sys.stdout, flush=True)


def raise_failures(outcomes):
    """Raise one WorkerError naming every configuration that failed, with its traceback."""
    failed = {key: value for key, (kind, value) in outcomes.items() if kind == "error"}
    if failed:
        details = "\n".join(f"--- {key}:\n{text}" for key, text in failed.items())
        raise WorkerError(f"{len(failed)} of {len(outcomes)} configurations failed, the others finished: "
                          f"{', '.join(failed)}\n{details}")
