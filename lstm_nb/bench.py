"""Speed and memory of every cell against nn.LSTM, measured in one run:
`python -m lstm_nb.bench [--json] [--cells lstm mogrifier ...] [--shapes 20x35x200 ...] [--repeats 3]
[--gemm torch onednn]`; with `--lm`, a whole language-model training epoch instead (`lstm_nb.bench_lm`).

For each (batch, bptt, hidden) shape — PTB-like by default — one training step (forward + backward of
a sum over the outputs, input size = hidden size) of each implementation is timed, all implementations
interleaved round after round so that the machine's drift hits them alike; the best round counts.
Ratios are to nn.LSTM and to the from-scratch `lstm` of the same run. Memory is what autograd keeps
for the backward (bytes of distinct tensors saved), plus the CUDA peak on a GPU. The row
`mogrifier_products_only` is no cell: only the matrix products of a full-rank Mogrifier step, its floor.
Our cells run their matrix products through `lstm_nb.gemm`: `--gemm` times them under each listed
backend (default: the one `LSTM_NB_GEMM` selects), each ratio to `lstm` taken under the same backend.
"""

import argparse
import json
import sys
from functools import partial

import torch

from . import bench_lm, cells, gemm
from .timing import interleaved, saved_bytes

SHAPES = [(20, 35, 200), (20, 35, 650), (64, 70, 1150)]


# Rows that are a registered cell with other options: the paper's PTB Mogrifier is low rank (k = 84 at
# hidden 912), benchmarked at the same k / hidden ratio; `lstm` is the from-scratch engine every ratio
# "× lstm" refers to, `lstm_library` the cell as it trains by default (the library's fused kernel).
VARIANTS = {"mogrifier_low_rank": "mogrifier", "lstm_library": "lstm"}


def options(name, bptt, hidden):
    """Per-cell options for a fair run: the Mogrifier with 5 rounds (full rank, and low rank k = H·84/912),
    chrono's T_max = bptt."""
    return {"mogrifier": {"rounds": 5}, "mogrifier_shared_qr": {"rounds": 5},
            "mogrifier_low_rank": {"rounds": 5, "rank": max(1, round(hidden * 84 / 912))},
            "lstm": {"engine": "fused"}, "chrono_lstm": {"t_max": bptt}, "on_lstm": {"chunk_size": 10 if hidden % 10 == 0 else 1}}.get(name, {})


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
                gemm.mm(src_t, w_t)
            gemm.mm(xh_t, w_cat.t())
        for d_z_t, d_a_t in zip(d_z, d_a):
            gemm.mm(d_z_t, w_cat)
            for w in maps:
                gemm.mm(d_a_t, w)
        gemm.mm(d_z.reshape(-1, 4 * H).t(), xh.reshape(-1, 2 * H))
        for _ in maps:
            gemm.mm(d_a.reshape(-1, H).t(), src.reshape(-1, H))

    return step


FLOORS = {"mogrifier_products_only": mogrifier_products}


def bench_shape(names, batch, bptt, hidden, repeats, device, backends=None):
    """One row per implementation at one shape: nn.LSTM once, each of ours under every backend in
    `backends` (default: the current one)."""
    backends = backends or [gemm.backend()]
    torch.manual_seed(0)
    x = torch.randn(bptt, batch, hidden, device=device, requires_grad=True)
    layers = {n: cells.build(VARIANTS.get(n, n), hidden, hidden, **options(n, bptt, hidden)).to(device)
              for n in names if n not in FLOORS}

    def summed_output(layer):
        return layer(x)[0].sum()

    def training_step(layer):
        summed_output(layer).backward()

    steps = {n: FLOORS[n](batch, bptt, hidden, device) if n in FLOORS else partial(training_step, layers[n])
             for n in names}
    runs = [("nn.LSTM", None)] + [(n, b) for n in names if n != "nn.LSTM" for b in backends]  # nn.LSTM: no gemm
    memory = {}
    for n, b in runs:
        with gemm.using(b):
            memory[n, b] = saved_bytes(partial(summed_output, layers[n]))[1] if n in layers else 0
            steps[n]()  # warm-up
    times, cuda_peak = interleaved({(n, b): (b, steps[n]) for n, b in runs}, repeats, device)
    best = {run: 1e3 * min(t) for run, t in times.items()}
    rows = []
    for n, b in runs:
        rows.append({"cell": n, "gemm": b or "-", "batch": batch, "bptt": bptt, "hidden": hidden, "ms": best[n, b],
                     "vs_nn.LSTM": best[n, b] / best["nn.LSTM", None], "vs_lstm": best[n, b] / best["lstm", b or backends[0]],
                     "saved_MB": memory[n, b] / 2**20,
                     **({"cuda_peak_MB": cuda_peak[n, b]} if cuda_peak else {})})
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m lstm_nb.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--cells", nargs="+",
                        default=[n for n in cells.available() if n != "nn.GRU"] + list(VARIANTS) + list(FLOORS))
    parser.add_argument("--shapes", nargs="+", default=[f"{b}x{t}x{h}" for b, t, h in SHAPES],
                        help="BATCHxBPTTxHIDDEN")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--gemm", nargs="+", choices=gemm.BACKENDS, default=[gemm.backend()],
                        help="matrix-product backends to time our models under (default: LSTM_NB_GEMM's)")
    parser.add_argument("--lm", action="store_true", help="time a language model's training epoch instead")
    parser.add_argument("--sizes", nargs="+", type=int, default=[200, 650], help="--lm: hidden = embedding sizes")
    parser.add_argument("--fraction", type=float, default=0.02, help="--lm, --workers: the head of PTB's training split")
    parser.add_argument("--workers", action="store_true",
                        help="time two independent small LM runs in sequence and with 2 worker processes instead")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON instead of a table")
    args = parser.parse_args(argv)

    backends = list(dict.fromkeys(gemm.resolve(b) for b in args.gemm))  # oneDNN missing: torch
    machine = gemm.describe()
    if not args.json:
        print(f"CPU: {machine['cpu'] or 'unknown'}; {gemm.ENV}={machine['requested']} selects {machine['backend']}; "
              f"timed under: {', '.join(backends)}", flush=True)
    device = torch.device(args.device)
    if args.workers:
        rows = [bench_lm.bench_workers(args.fraction)]
        if not args.json:
            r = rows[0]
            print(f"two 2 x 200 LM runs, one epoch on {args.fraction:g} of PTB each: {r['sequential_s']:.1f} s in sequence "
                  f"({torch.get_num_threads()} threads), {r['workers_s']:.1f} s with 2 workers: {r['speed_up']:.2f}x")
    elif args.lm:
        rows = bench_lm.run(args.sizes, args.fraction, args.repeats, backends, device, print_table=not args.json)
    else:
        rows = bench_cells(args, parser, backends, device)
    if args.json:
        json.dump({"machine": machine, "rows": rows}, sys.stdout, indent=1)
        print()


def bench_cells(args, parser, backends, device):
    names = list(dict.fromkeys(["nn.LSTM", "lstm", *args.cells]))  # the references always run
    unknown = set(names) - set(cells.available()) - set(VARIANTS) - set(FLOORS)
    if unknown:
        parser.error(f"unknown cells {sorted(unknown)}; available: {', '.join(cells.available())}")
    rows = []
    for shape in args.shapes:
        batch, bptt, hidden = (int(v) for v in shape.split("x"))
        shape_rows = bench_shape(names, batch, bptt, hidden, args.repeats, device, backends)
        rows += shape_rows
        if not args.json:
            print(f"(batch, bptt, hidden) = ({batch}, {bptt}, {hidden}) on {device}, "
                  f"{torch.get_num_threads()} threads, best of {args.repeats}", flush=True)
            print(f"  {'cell':26s} {'gemm':7s} {'ms/step':>9s} {'× nn.LSTM':>10s} {'× lstm':>8s} {'saved MB':>9s}")
            for r in shape_rows:
                print(f"  {r['cell']:26s} {r['gemm']:7s} {r['ms']:9.1f} {r['vs_nn.LSTM']:10.2f} {r['vs_lstm']:8.2f} "
                      f"{r['saved_MB']:9.1f}", flush=True)
    return rows


if __name__ == "__main__":
    main()
