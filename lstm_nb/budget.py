"""How long a preset will take on this machine, measured before committing to it.

`projected` times a few training steps and one validation batch of every distinct configuration that
is not finished yet (seeds of one row share a measurement), under the thread count each worker will
have, and scales them to the run: epochs × training batches, plus a validation pass per epoch and one
test pass. The runs are then scheduled longest first over the workers (each free worker takes the
next), and the projection is the busiest worker's total. Per-epoch extras (fine-tuning, NT-ASGD's
averaged validation, dynamic evaluation after training) are not included; the notebook says so.
"""

import itertools
import json
import time

import torch

from . import cells, distributed, models, records, workers
from . import data as data_module
from .config import make_config


def _seconds(step, repeats, device):
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    step()  # the first call pays for allocation and one-off setup
    sync()
    start = time.perf_counter()
    for _ in range(repeats):
        step()
    sync()
    return (time.perf_counter() - start) / repeats


def run_seconds(config, steps=3):
    """The projected seconds of one training run of `config`, from `steps` timed steps."""
    from . import loop, train

    cfg = make_config(config)
    train.seed_everything(cfg["seed"])
    device = distributed.device(cfg["device"])  # timed where the run will train
    data = data_module.build(**cfg["data"]).to(device)
    model = models.from_config(cfg, data.model_inputs).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    windows = itertools.cycle(data.batches("train", 1))  # a tiny split has fewer windows than timed steps
    callbacks = train.callbacks_for(cfg, data)

    def training_step():
        loop.training_step(model, data, optimizer, *next(windows), None, cfg, device, callbacks)

    x, y = next(iter(data.batches("valid")))

    @torch.no_grad()
    def validation_step():
        model.eval()
        data.objective.statistics(model(x.to(device), None)[0], y.to(device))
        model.train()

    model.train()
    with train.flushed_denormals():  # as training runs: denormal gradients would cost ~10× on x86
        step = _seconds(training_step, steps, device)
        evaluate = _seconds(validation_step, 1, device)
    test = data.num_batches("test") * evaluate if "test" in data.splits else 0.0
    return cfg["epochs"] * (data.num_batches("train") * step + data.num_batches("valid") * evaluate) + test


def projected(configs, workers_count=1, run_root=None, steps=3):
    """(wall seconds, {key: seconds}) of training every unfinished config of {key: config} with
    `workers_count` workers on this machine; finished runs cost nothing."""
    threads = torch.get_num_threads()
    torch.set_num_threads(workers.threads_per_worker(workers_count))
    measured, per_run = {}, {}
    try:
        for key, config in configs.items():
            cfg = make_config(config)
            if records.finished_summary(records.run_folder(cfg, run_root), cfg) is not None:
                continue
            signature = json.dumps({k: v for k, v in cfg.items() if k not in ("seed", "model_name")}, sort_keys=True)
            if signature not in measured:
                measured[signature] = run_seconds(cfg, steps)
            per_run[key] = measured[signature]
    finally:
        torch.set_num_threads(threads)
    loads = [0.0] * max(1, workers_count)
    for seconds in sorted(per_run.values(), reverse=True):
        loads[loads.index(min(loads))] += seconds
    return max(loads), per_run


# ---- a paper preset's cost on one GPU, estimated without one ------------------------------------------
#
# A recurrence on a GPU runs one small kernel per op per time step, so its floor is the number of ops a
# layer-step issues (forward and backward, counted on CPU with a dispatch hook: `ops_per_layer_step`)
# times the cost of one launch; the matrix products add their arithmetic at a sustained rate. Both
# constants are assumptions, stated here and printed with every estimate: 7.5 µs a launch (the middle
# of the 5-10 µs usually measured with PyTorch's eager dispatch) and 20 TFLOP/s of float32 matrix
# arithmetic (a third of an H100's peak). The library kernel (cuDNN) launches about a product and a
# pointwise kernel per step each way: LIBRARY_OPS_PER_STEP.
LAUNCH_SECONDS = 7.5e-6
LIBRARY_OPS_PER_STEP = 4
SUSTAINED_FLOPS = 20e12
# (train, valid, test) size: tokens of the word corpora, sequences or images of the others
SPLIT_SIZES = {"ptb": (929_589, 73_760, 82_430), "wikitext-2": (2_088_628, 217_646, 245_569),
               "mnist": (55_000, 5_000, 10_000), "pmnist": (55_000, 5_000, 10_000),
               "cifar-10": (45_000, 5_000, 10_000), "brown": (5_300_000, 590_000, 0)}


def ops_per_layer_step(cell, options=None, hidden=32, batch=4):
    """Ops one layer-step of `cell` issues, forward and backward: counted over 20 and 10 steps with a
    dispatch hook, the difference divided by 10 (so the per-call ops do not count)."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class Count(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.ops = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.ops += 1
            return func(*args, **(kwargs or {}))

    options = dict(options or {})
    if options.get("rank"):  # the op count does not depend on the rank; it must fit the small layer
        options["rank"] = min(options["rank"], hidden // 2)
    counts = []
    for steps in (10, 20):
        torch.manual_seed(0)
        layer = cells.build(cell, hidden, hidden, **options)
        x = torch.randn(steps, batch, hidden, requires_grad=True)
        with Count() as counter:
            layer(x)[0].sum().backward()
        counts.append(counter.ops)
    return (counts[1] - counts[0]) / 10


def _task_shape(cfg):
    """(training sequences × steps each, validation ..., test ..., batch sizes (train, valid, test))
    of a config, from its data section, without loading the data."""
    data = cfg["data"]
    corpus, fraction = data["corpus"], data.get("fraction", 1.0)
    batches = (data["batch_size"], data.get("eval_batch_size", 10), data.get("test_batch_size") or
               data.get("eval_batch_size", 10))
    if corpus in ("copy", "adding"):
        length = data["length"] + (20 if corpus == "copy" else 0)
        sizes = data.get("examples") or data_module.DEFAULT_EXAMPLES
        return [(n * fraction, length) for n in sizes], batches
    if corpus in ("mnist", "pmnist", "cifar-10"):
        length = 1024 if corpus == "cifar-10" else 784
        return [(n * fraction, length) for n in SPLIT_SIZES[corpus]], batches
    # token streams: B streams read one step per token
    return [(1, n * fraction) for n in SPLIT_SIZES[corpus]], batches


def gpu_seconds(cfg, ops=None):
    """The estimated seconds of one run of `cfg` on one GPU (see LAUNCH_SECONDS), and the ops per
    layer-step used (measured once per cell and passed back in `ops`)."""
    cfg = make_config(cfg)
    model = cfg["model"]
    cell, options = model.get("cell", "lstm"), model.get("cell_options") or {}
    layers = model.get("num_layers", 1)
    hidden = model.get("hidden_size") or _budget_hidden(cfg)
    if ops is None:
        ops = LIBRARY_OPS_PER_STEP if cells.runs_on_library_kernel(cell, options) else ops_per_layer_step(cell, options)
    splits, batches = _task_shape(cfg)
    seconds = 0.0
    for (sequences, length), batch, passes, backward in zip(splits, batches, (cfg["epochs"], cfg["epochs"], 1),
                                                           (True, False, False)):
        steps = sequences * length / batch if sequences > 1 else length / batch  # sequential layer-steps
        flops = 2 * batch * 8 * hidden * hidden * (3 if backward else 1)  # [x, h] (2H) × 4H gates per step
        per_step = ops * LAUNCH_SECONDS * (1 if backward else 0.4) + flops / SUSTAINED_FLOPS
        seconds += passes * steps * layers * per_step
    return seconds, ops


def _budget_hidden(cfg):
    vocab = {"ptb": 10_000, "wikitext-2": 33_278}.get(cfg["data"]["corpus"], 100)
    return models.build(vocab, **{**cfg["model"], "parameter_budget": cfg["model"]["parameter_budget"]}).layers[0].hidden_size


def preset_gpu_hours(notebook, preset):
    """{experiment: GPU-hours} of every run `notebook` trains on `preset`, and the total."""
    from . import presets

    ops_by_cell, hours = {}, {}
    for experiment, configs in presets.training_configs(notebook, preset).items():
        for cfg in configs.values():
            key = json.dumps(cfg["model"], sort_keys=True)
            seconds, ops_by_cell[key] = gpu_seconds(cfg, ops_by_cell.get(key))
            hours[experiment] = hours.get(experiment, 0.0) + seconds / 3600
    return hours, sum(hours.values())


# ---- what a preset's run folders hold on disk (Google Drive in Colab) ----------------------------------

# Model inputs by corpus, without loading it: a language model's vocabulary (100: the character corpora,
# an upper bound), a sequence task's input and output sizes.
VOCABULARY = {"ptb": 10_000, "wikitext-2": 33_278}
SEQUENCE_INPUTS = {"copy": (10, 10, True, True), "adding": (2, 1, False, False), "mnist": (1, 10, False, False),
                   "pmnist": (1, 10, False, False), "cifar-10": (3, 10, False, False)}
# Copies of the weights an epoch checkpoint holds beside the model, by optimizer: Adam's two moments;
# ASGD (NT-ASGD, fine-tuning) its average, and the averaged weights it was validated with.
OPTIMIZER_COPIES = {"Adam": 2, "AdamW": 2, "ASGD": 2, "SGD": 0}


def run_disk_bytes(cfg):
    """The most bytes one finished run of `cfg` holds: the best model, and `keep_last` epoch checkpoints plus
    the best epoch's, each the float32 weights and the optimizer's copies of them."""
    cfg = make_config(cfg)
    corpus = cfg["data"]["corpus"]
    with torch.device("meta"):  # parameter shapes only: no memory, no time
        if corpus in SEQUENCE_INPUTS:
            size_in, size_out, per_step, one_hot = SEQUENCE_INPUTS[corpus]
            model = models.build_sequence_model(size_in, size_out, per_step, one_hot, **cfg["model"])
        else:
            model = models.build(VOCABULARY.get(corpus, 100), **cfg["model"])
    weights = 4 * models.count_parameters(model)
    name = "ASGD" if cfg["nt_asgd"] or cfg["finetune"] else cfg["optimizer"]["name"]
    return weights * (1 + (cfg["keep_last"] + 1) * (1 + OPTIMIZER_COPIES.get(name, 2)))


def preset_disk_gb(notebook, preset):
    """The most disk (GB) every run of `notebook`'s `preset` holds once finished, all together."""
    from . import presets

    return sum(run_disk_bytes(cfg) for configs in presets.training_configs(notebook, preset).values()
               for cfg in configs.values()) / 1e9


def main(argv=None):
    """python -m lstm_nb.budget [NOTEBOOK:PRESET ...]: the estimated GPU-hours of each (default: every
    notebook's paper presets) and the disk its finished runs hold (`preset_disk_gb`)."""
    import argparse

    from . import presets

    parser = argparse.ArgumentParser(prog="python -m lstm_nb.budget", description=main.__doc__)
    parser.add_argument("pairs", nargs="*", metavar="NOTEBOOK:PRESET")
    args = parser.parse_args(argv)
    pairs = [p.split(":", 1) for p in args.pairs] or [(n, p) for n in sorted(presets.PRESETS)
                                                      for p in presets.names(n) if p.startswith("paper")]
    print(f"launch {LAUNCH_SECONDS * 1e6:.1f} µs per op, {SUSTAINED_FLOPS / 1e12:.0f} TFLOP/s sustained float32")
    print("| notebook | preset | runs | GPU-hours (one GPU) | disk, finished (GB) |\n|---|---|---|---|---|")
    for notebook, preset in pairs:
        _, total = preset_gpu_hours(notebook, preset)
        runs = sum(len(c) for c in presets.training_configs(notebook, preset).values())
        print(f"| {notebook} | {preset} | {runs} | {total:,.0f} | {preset_disk_gb(notebook, preset):,.1f} |", flush=True)


if __name__ == "__main__":
    main()
