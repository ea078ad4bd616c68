"""Training with torchrun (DistributedDataParallel, gloo on CPU): the same numbers as one process with
the same global batch, an exact resume after SIGKILL of the whole job, and clear errors."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import REPO

from lstm_nb import cells, checkpoints, models, train

NOTEBOOK = REPO / "notebooks" / "mogrifier.ipynb"
LOSS_KEYS = ["training_loss", "validation_loss", "best_validation_loss", "best_epoch"]


def tiny(tmp_path, cell="lstm", epochs=1, dropout=0.0, fraction=0.02, name="ddp", optimizer=None):
    cfg = {"experiment": name, "model_name": cell, "epochs": epochs, "seed": 5, "keep_last": 1,
           "data": {"corpus": "ptb", "batch_size": 8, "bptt": 20, "eval_batch_size": 4, "fraction": fraction},
           "model": {"embedding_size": 24, "hidden_size": 24, "num_layers": 2, "cell": cell,
                     "inter_layer_dropout": dropout},
           "optimizer": optimizer or {"name": "Adam", "lr": 3e-3}}
    path = tmp_path / f"{name}-{cell}.json"
    path.write_text(json.dumps(cfg))
    return path


def command(config, processes):
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}"]
    return [*(launcher if processes > 1 else [sys.executable]), "-m", "lstm_nb.train", str(config)]


def run(config, processes, home, **kwargs):
    env = {**os.environ, "LSTM_NB_HOME": str(home), "PYTHONHASHSEED": "0"}
    return subprocess.run(command(config, processes), env=env, capture_output=True, text=True, check=False, **kwargs)


@pytest.mark.parametrize("cell", ["lstm", "mogrifier", "ur_lstm"])
def test_two_processes_equal_one_with_the_same_global_batch(tmp_path, cell):
    """Dropout off: after one epoch (117 steps), the parameters and the validation loss of a 2-process
    run equal a single-process run's, in float32. SGD: the two runs' gradients differ only by the
    rounding of a sum split in two (1e-8), which plain SGD keeps at that size; Adam divides each
    gradient by its running RMS, and on embedding rows whose gradient is almost always 0 that turns
    the same rounding into 4e-5. Every cell's backward is checked exactly (float64) below."""
    config = tiny(tmp_path, cell, optimizer={"name": "SGD", "lr": 1.0})
    for processes in (1, 2):
        result = run(config, processes, tmp_path / str(processes))
        assert result.returncode == 0, result.stderr[-3000:]
    folders = [tmp_path / str(n) / "run" / "ddp" / cell for n in (1, 2)]
    one, two = (checkpoints.load(f / "best.pt")["model"] for f in folders)
    for key in one:
        torch.testing.assert_close(two[key], one[key], rtol=0, atol=1e-5, msg=key)
    summaries = [json.loads((f / "metrics.json").read_text()) for f in folders]
    assert [s["world_size"] for s in summaries] == [1, 2]
    assert summaries[1]["best_validation_loss"] == pytest.approx(summaries[0]["best_validation_loss"], rel=1e-6)
    assert summaries[1]["test_loss"] == pytest.approx(summaries[0]["test_loss"], rel=1e-6)
    assert json.loads((folders[1] / "config.json").read_text())["world_size"] == 2


def test_every_cells_backward_gives_ddp_the_gradients_of_the_whole_batch(tmp_path):
    """Each rank's half batch through DistributedDataParallel, against the whole batch in one process,
    float64, every registered cell (the hand-written LSTM, Mogrifier, LayerNorm, cumax and separable
    backwards among them). After `distributed.stop()` no gloo thread is left: one left running is what
    made the interpreter's exit abort a run in four under load (lstm_nb/distributed.py, `start`)."""
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                             str(REPO / "tests" / "ddp_gradients.py")], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(report["largest"]) == set(cells.available())
    assert max(report["largest"].values()) < 1e-12, report["largest"]
    assert not [name for name in report["threads"] if "gloo" in name], report["threads"]


def _process_tree(pid):
    """pid and every process below it (Linux /proc)."""
    try:
        children = (Path(f"/proc/{pid}/task/{pid}/children")).read_text().split()
    except OSError:
        return [pid]
    return [pid, *(p for child in children for p in _process_tree(int(child)))]


def test_sigkill_of_the_whole_job_then_rerun_matches_an_uninterrupted_two_process_run(tmp_path):
    config = tiny(tmp_path, epochs=3, dropout=0.3, fraction=0.05)  # dropout on: every rank's RNG must resume
    assert run(config, 2, tmp_path / "straight").returncode == 0
    home = tmp_path / "killed"
    folder = home / "run" / "ddp" / "lstm"
    env = {**os.environ, "LSTM_NB_HOME": str(home), "PYTHONHASHSEED": "0"}
    job = subprocess.Popen(command(config, 2), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not (folder / "checkpoint_epoch_1.pt").exists():
        assert job.poll() is None and time.time() < deadline, "the job ended before its first checkpoint"
        time.sleep(0.02)
    for pid in _process_tree(job.pid):  # torchrun and both ranks (torchrun starts them in their own sessions)
        os.kill(pid, signal.SIGKILL)
    job.wait()
    assert not (folder / "metrics.json").exists()
    resumed = run(config, 2, home)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming" in resumed.stdout
    for epoch in (1, 2, 3):
        a = json.loads((tmp_path / "straight/run/ddp/lstm" / f"metrics_epoch_{epoch}.json").read_text())
        b = json.loads((folder / f"metrics_epoch_{epoch}.json").read_text())
        assert {k: a[k] for k in LOSS_KEYS} == {k: b[k] for k in LOSS_KEYS}, f"epoch {epoch}"
    a, b = (json.loads((h / "run/ddp/lstm/metrics.json").read_text()) for h in (tmp_path / "straight", home))
    assert a["test_loss"] == b["test_loss"]


def test_a_run_resumes_only_with_the_world_size_it_started_with(tmp_path):
    config = tiny(tmp_path, epochs=1)
    assert run(config, 2, tmp_path).returncode == 0
    (tmp_path / "run" / "ddp" / "lstm" / "metrics.json").unlink()  # as if killed after its last checkpoint
    result = run(config, 1, tmp_path)
    assert result.returncode != 0
    assert "was trained by 2 process(es), this is 1" in result.stderr


def test_a_batch_that_does_not_divide_over_the_processes_is_refused(tmp_path):
    config = tiny(tmp_path)
    cfg = json.loads(config.read_text())
    cfg["data"]["batch_size"] = 7
    config.write_text(json.dumps(cfg))
    result = run(config, 2, tmp_path)
    assert result.returncode != 0 and "data.batch_size 7 does not divide over 2 processes" in result.stderr
    assert not (tmp_path / "run").exists()


def test_bfloat16_autocast_keeps_the_recurrence_in_float32_and_trains(home):
    model = models.build(50, embedding_size=8, hidden_size=8, num_layers=2, cell="mogrifier")
    seen = []
    model.layers[0].register_forward_hook(lambda module, args, output: seen.append(output[0].dtype))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits, _ = model(torch.randint(0, 50, (5, 3)))
    assert logits.dtype == torch.bfloat16 and seen == [torch.float32]
    summary = train.train({"experiment": "bf16", "epochs": 2, "precision": "bfloat16", "device": "cpu",
                           "data": {"corpus": "ptb", "batch_size": 8, "bptt": 20, "fraction": 0.01},
                           "model": {"embedding_size": 16, "hidden_size": 16}})
    frame = [json.loads((home / "run/bf16/lstm" / f"metrics_epoch_{e}.json").read_text()) for e in (1, 2)]
    assert frame[1]["validation_loss"] < frame[0]["validation_loss"] and summary["test_loss"] < 9.2  # ln 10k = 9.21
