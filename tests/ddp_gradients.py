"""Run by tests/test_distributed.py under `torchrun --nproc_per_node 2`: for every registered cell, the
gradients DistributedDataParallel gives each rank from half of a batch must equal the gradients of the
whole batch in one process (float64). Rank 0 prints {cell: largest difference} as JSON."""

import json

import torch
import torch.distributed as dist

from lstm_nb import cells


def gradients(module, x, parameters):
    """d mean(output²) / d parameters; `module` may be the DDP wrapper of the layer that owns them."""
    for p in parameters.values():
        p.grad = None
    module(x)[0].pow(2).mean().backward()
    return {name: p.grad.clone() for name, p in parameters.items()}


OPTIONS = {"chrono_lstm": {"t_max": 10}, "on_lstm": {"chunk_size": 2}}


def main():
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
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
    if rank == 0:
        print(json.dumps(largest), flush=True)
    dist.barrier()  # neither rank tears the group down while the other still uses it
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
