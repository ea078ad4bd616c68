"""Speed and memory of every cell against nn.LSTM, measured in one run:
`python -m lstm_nb.bench [--json] [--cells lstm mogrifier ...] [--shapes 20x35x200 ...] [--repeats 3]`

For each (batch, bptt, hidden) shape — PTB-like by default — one training step (forward + backward of
a sum over the outputs, input size = hidden size) of each implementation is timed, all implementations
interleaved round after round so that the machine's drift hits them alike; the best round counts.
Ratios are to nn.LSTM and to the from-scratch `lstm` of the same run. Memory is what autograd keeps
for the backward (bytes of distinct tensors saved), plus the CUDA peak on a GPU. The row
`mogrifier_products_only` is no cell: only the matrix products of a full-rank Mogrifier step, its floor.
"""

import argparse
import json
import sys
import time
from functools import partial

import torch

from . import cells

SHAPES = [(20, 35, 200), (20, 35, 650), (64, 70, 1150)]


# Rows that are a registered cell with other options: the paper's PTB Mogrifier is low rank (k = 84 at
# hidden 912), benchmarked at the same k / hidden ratio.
VARIANTS = {"mogrifier_low_rank": "mogrifier"}


def options(name, bptt, hidden):
    """Per-cell options for a fair run: the Mogrifier with 5 rounds (full rank, and low rank k = H·84/912),
    chrono's T_max = bptt."""
    return {"mogrifier": {"rounds": 5}, "mogrifier_shared_qr": {"rounds": 5},
            "mogrifier_low_rank": {"rounds": 5, "rank": max(1, round(hidden * 84 / 912))},
            "chrono_lstm": {"t_max": bptt}, "on_lstm": {"chunk_size": 10 if hidden % 10 == 0 else 1}}.get(name, {})


def mogrifier_products(batch, bptt, hidden, device, rounds=5):
    """Only the matrix products of one training step of a full-rank Mogrifier layer, in the order its
    fused engine runs them (per step: the round maps and [W_ih | W_hh]; backward: their transposes; then
    every weight gradient over all T·B rows), with no pointwise work: a floor for `mogrifier`."""
    H, randn = hidden, partial(torch.randn, device=device)
    w_cat, maps = randn(4 * H, 2 * H), [randn(H, H) for _ in range(rounds)]
    maps_t = [w.t().contiguous() for w in maps]
    src, xh = randn(bptt, batch, H), randn(bptt, batch, 2 * H)
    d_z, d_a = randn(bptt, batch, 4 * H), randn(bptt, batch, H)

    def step():
        for src_t, xh_t in zip(src, xh):
            for w_t in maps_t:
                src_t @ w_t
            xh_t @ w_cat.t()
        for d_z_t, d_a_t in zip(d_z, d_a):
            d_z_t @ w_cat
            for w in maps:
                d_a_t @ w
        d_z.reshape(-1, 4 * H).t() @ xh.reshape(-1, 2 * H)
        for _ in maps:
            d_a.reshape(-1, H).t() @ src.reshape(-1, H)

    return step


FLOORS = {"mogrifier_products_only": mogrifier_products}


def saved_bytes(step):
    """Bytes of the distinct tensors autograd saves for backward while `step` builds its graph."""
    seen = {}

    def pack(t):
        seen[(t.untyped_storage().data_ptr(), t.dtype)] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = step()
    return out, sum(seen.values())


def bench_shape(names, batch, bptt, hidden, repeats, device):
    torch.manual_seed(0)
    x = torch.randn(bptt, batch, hidden, device=device, requires_grad=True)
    layers = {n: cells.build(VARIANTS.get(n, n), hidden, hidden, **options(n, bptt, hidden)).to(device)
              for n in names if n not in FLOORS}
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def training_step(layer):
        out = layer(x)[0]
        out.sum().backward()

    steps = {n: FLOORS[n](batch, bptt, hidden, device) if n in FLOORS else partial(training_step, layers[n]) for n in names}
    times = {n: [] for n in names}
    memory, cuda_peak = {n: 0 for n in FLOORS}, {}
    for n, layer in layers.items():  # the memory of one step
        _, memory[n] = saved_bytes(lambda layer=layer: layer(x)[0].sum())
    for step in steps.values():  # warm-up
        step()
    for _ in range(repeats):
        for n, step in steps.items():
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats()
            sync()
            start = time.perf_counter()
            step()
            sync()
            times[n].append(time.perf_counter() - start)
            if device.type == "cuda":
                cuda_peak[n] = torch.cuda.max_memory_allocated() / 2**20
    rows = []
    for n in names:
        row = {"cell": n, "batch": batch, "bptt": bptt, "hidden": hidden, "ms": 1e3 * min(times[n]),
               "saved_MB": memory[n] / 2**20}
        if n in cuda_peak:
            row["cuda_peak_MB"] = cuda_peak[n]
        rows.append(row)
    base = {r["cell"]: r["ms"] for r in rows}
    for r in rows:
        r["vs_nn.LSTM"] = r["ms"] / base["nn.LSTM"]
        r["vs_lstm"] = r["ms"] / base["lstm"]
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m lstm_nb.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--cells", nargs="+",
                        default=[n for n in cells.available() if n != "nn.GRU"] + list(VARIANTS) + list(FLOORS))
    parser.add_argument("--shapes", nargs="+", default=[f"{b}x{t}x{h}" for b, t, h in SHAPES],
                        help="BATCHxBPTTxHIDDEN")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON instead of a table")
    args = parser.parse_args(argv)

    names = list(dict.fromkeys(["nn.LSTM", "lstm", *args.cells]))  # the references always run
    unknown = set(names) - set(cells.available()) - set(VARIANTS) - set(FLOORS)
    if unknown:
        parser.error(f"unknown cells {sorted(unknown)}; available: {', '.join(cells.available())}")
    rows = []
    for shape in args.shapes:
        batch, bptt, hidden = (int(v) for v in shape.split("x"))
        rows += bench_shape(names, batch, bptt, hidden, args.repeats, torch.device(args.device))
        if not args.json:
            print(f"(batch, bptt, hidden) = ({batch}, {bptt}, {hidden}) on {args.device}, "
                  f"{torch.get_num_threads()} threads, best of {args.repeats}", flush=True)
            print(f"  {'cell':26s} {'ms/step':>9s} {'× nn.LSTM':>10s} {'× lstm':>8s} {'saved MB':>9s}")
            for r in rows[-len(names):]:
                print(f"  {r['cell']:26s} {r['ms']:9.1f} {r['vs_nn.LSTM']:10.2f} {r['vs_lstm']:8.2f} "
                      f"{r['saved_MB']:9.1f}", flush=True)
    if args.json:
        json.dump(rows, sys.stdout, indent=1)
        print()


if __name__ == "__main__":
    main()
