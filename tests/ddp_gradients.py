"""Run by tests/test_distributed.py under `torchrun --nproc_per_node 2`: for every registered cell, the
gradients DistributedDataParallel gives each rank from half of a batch must equal the gradients of the
whole batch in one process (float64). Rank 0 prints {"largest": {cell: largest difference}, "threads":
[the names of its threads once the process group is destroyed]} as JSON."""

import json
from pathlib import Path

import torch

from lstm_nb import cells, distributed


def gradients(module, x, parameters):
    """d mean(output²) / d parameters; `module` may be the DDP wrapper of the layer that owns them."""
    for p in parameters.values():
        p.grad = None
    module(x)[0].pow(2).mean().backward()
    return {name: p.grad.clone() for name, p in parameters.items()}


OPTIONS = {"chrono_lstm": {"t_max": 10}, "on_lstm": {"chunk_size": 2}}


def thread_names():
    return sorted((task / "comm").read_text().strip() for task in Path("/proc/self/task").iterdir())


def main():
    distributed.start("cpu")
    rank, world = distributed.rank(), distributed.world_size()
    largest = {}
    for name in cells.available():
        torch.manual_seed(0)
        layer = cells.build(name, 6, 8, num_layers=2, **OPTIONS.get(name, {})).double().eval()  # no random masks
        parameters = dict(layer.named_parameters())
        x = torch.randn(7, 4, 6, dtype=torch.float64)
        whole = gradients(layer, x, parameters)
        mine = x[:, rank * 4 // world:(rank + 1) * 4 // world]
        wrapped = torch.nn.parallel.DistributedDataParallel(layer)
        share = gradients(wrapped, mine, parameters)
        del wrapped  # its reducer goes now, while both ranks are here, not at interpreter exit
        largest[name] = max((share[k] - whole[k]).abs().max().item() for k in whole)
    distributed.stop()
    if rank == 0:
        print(json.dumps({"largest": largest, "threads": thread_names()}), flush=True)


if __name__ == "__main__":
    main()
