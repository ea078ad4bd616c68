"""What a lent GPU must show, in one command under 8 minutes: `python -m lstm_nb.gpu_check`.

1. every cell's forward and backward on the GPU (float32) against the same weights in float64 on the CPU;
2. one epoch of every configuration of every notebook's `smoke` preset on the GPU, through the one
   training loop (into a temporary run/; a corpus that is not on the machine is reported, not fatal);
3. bfloat16: a language model's loss and gradients under the loop's bfloat16 autocast, against float32;
4. the cell benchmark (`lstm_nb.bench`) of the plain-LSTM cells against cuDNN's nn.LSTM, and of the
   Mogrifier and UR cells, at the PTB shapes;

then one table. Without a GPU it says so and exits 0; `--device cpu` runs the same checks on the CPU
(the tests do, on a small subset, so the script is known to work before a GPU is lent).
"""

import argparse
import os
import sys
import tempfile
import time

import torch

from . import bench, cells, models, presets

PLAIN = ["lstm_library", "forget_bias_lstm", "chrono_lstm", "u_lstm", "weight_drop_lstm"]
BENCH_CELLS = ["nn.LSTM", "lstm", *PLAIN, "mogrifier", "mogrifier_low_rank", "ur_lstm"]
# float32 on the device against float64 on the CPU: relative to the largest value
TOLERANCE = {torch.float32: 1e-4, torch.bfloat16: 5e-2}


def _max_relative_error(got, want):
    return ((got.double().cpu() - want).abs().max() / want.abs().max().clamp_min(1e-12)).item()


def check_cell(name, device, hidden=16, steps=12, batch=3):
    """(max relative error of outputs and every gradient, passed) of `name` on `device` in float32
    against float64 on the CPU, from the same weights, inputs and (for random masks) the same seed."""
    options = bench.options(name, steps, hidden)
    if options.get("rank"):
        options["rank"] = min(options["rank"], hidden // 2)
    torch.manual_seed(0)
    reference = cells.build(bench.VARIANTS.get(name, name), hidden, hidden, num_layers=2, **options).double()
    layer = cells.build(bench.VARIANTS.get(name, name), hidden, hidden, num_layers=2, **options).to(device)
    layer.load_state_dict(reference.state_dict())
    reference.eval()  # masks are drawn from each device's own generator: compare without them
    layer.eval()
    x = torch.randn(steps, batch, hidden, dtype=torch.float64, requires_grad=True)
    weights = torch.randn(steps, batch, hidden, dtype=torch.float64)
    results = []
    for module, inputs in ((reference, x), (layer, x.detach().float().to(device).requires_grad_())):
        out, (h, c) = module(inputs)
        loss = (out * weights.to(out)).sum() + h.sum() + c.sum()
        grads = torch.autograd.grad(loss, [inputs, *module.parameters()])
        results.append([out, *grads])
    error = max(_max_relative_error(got, want) for got, want in zip(results[1], results[0]))
    return error, error <= TOLERANCE[torch.float32]


def check_smoke_epochs(device):
    """One epoch of every `smoke` configuration of every notebook on `device`: {run: seconds or why not}."""
    from . import train
    from .corpora import CorpusError

    outcome = {}
    home = tempfile.mkdtemp(prefix="lstm_nb_gpu_check_")
    os.environ["LSTM_NB_HOME"] = home
    for notebook in sorted(presets.PRESETS):
        for experiment, configs in presets.training_configs(notebook, "smoke", epochs=1, device=str(device)).items():
            for name, cfg in configs.items():
                start = time.perf_counter()
                try:
                    train.train(cfg)
                    outcome[f"{experiment}/{name}"] = f"{time.perf_counter() - start:.1f} s"
                except CorpusError:
                    outcome[f"{experiment}/{name}"] = f"skipped: {cfg['data']['corpus']} is not on this machine"
    return outcome


def check_bfloat16(device):
    """(relative difference of the loss, of the gradient norm) of a small LM under bfloat16 autocast."""
    from . import loop

    torch.manual_seed(0)
    model = models.build(200, embedding_size=32, hidden_size=32, num_layers=2, tie_weights=True).to(device)
    tokens = torch.randint(0, 200, (21, 4), device=device)
    results = []
    for precision in ("float32", "bfloat16"):
        model.zero_grad()
        with loop.autocast(precision, device):
            logits, _ = model(tokens[:-1])
            loss = torch.nn.functional.cross_entropy(logits.float().reshape(-1, 200), tokens[1:].reshape(-1))
        loss.backward()
        norm = torch.cat([p.grad.reshape(-1) for p in model.parameters()]).norm()
        results.append((loss.item(), norm.item()))
    (loss32, norm32), (loss16, norm16) = results
    return abs(loss16 - loss32) / loss32, abs(norm16 - norm32) / norm32


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m lstm_nb.gpu_check", description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="cuda (default), or cpu to try the checks without a GPU")
    parser.add_argument("--cells", nargs="+", default=[n for n in cells.available() if n != "nn.GRU"]
                        + ["lstm_library", "mogrifier_low_rank"])
    parser.add_argument("--shapes", nargs="+", default=["20x35x200", "20x35x650", "64x70x1150"])
    parser.add_argument("--skip", nargs="*", default=[], choices=["cells", "smoke", "bfloat16", "bench"])
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("no GPU: torch.cuda.is_available() is False, so there is nothing to check here "
              "(`--device cpu` runs the same checks on the CPU)")
        return 0
    device = torch.device(args.device)
    table = []  # (check, item, value, verdict)
    if "cells" not in args.skip:
        for name in args.cells:
            error, ok = check_cell(name, device)
            table.append(("cell vs float64 CPU", name, f"max rel. error {error:.1e}", "ok" if ok else "FAILED"))
    if "smoke" not in args.skip:
        for run, outcome in check_smoke_epochs(device).items():
            table.append(("smoke epoch", run, outcome, "skipped" if outcome.startswith("skipped") else "ok"))
    if "bfloat16" not in args.skip:
        loss, norm = check_bfloat16(device)
        ok = loss <= TOLERANCE[torch.bfloat16] and norm <= 2 * TOLERANCE[torch.bfloat16]
        table.append(("bfloat16 vs float32", "LM loss / gradient norm", f"{loss:.1e} / {norm:.1e}", "ok" if ok else "FAILED"))
    if "bench" not in args.skip:
        for shape in args.shapes:
            batch, bptt, hidden = (int(v) for v in shape.split("x"))
            for row in bench.bench_shape(BENCH_CELLS, batch, bptt, hidden, 3, device):
                measured = f"{row['ms']:.2f} ms, {row['vs_nn.LSTM']:.2f}× nn.LSTM, {row['vs_lstm']:.2f}× lstm"
                table.append((f"bench {shape}", row["cell"], measured, "-"))
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"\n## gpu_check on {name}, torch {torch.__version__}\n\n| check | item | measured | verdict |\n|---|---|---|---|")
    for row in table:
        print("| " + " | ".join(row) + " |")
    failed = [row for row in table if row[3] == "FAILED"]
    print(f"\n{len(table) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
