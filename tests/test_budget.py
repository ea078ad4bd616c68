"""Projected time before a run, and the GPU estimate of the paper presets."""

import pytest
from test_train import tiny_ptb

from lstm_nb import budget, presets, train


def test_projection_scales_timed_steps_and_skips_finished_runs(home, monkeypatch):
    calls = []
    monkeypatch.setattr(budget, "run_seconds", lambda cfg, steps=3: calls.append(cfg["seed"]) or 10.0 * cfg["epochs"])
    configs = {f"r{i}": {**tiny_ptb(epochs=1 + i % 2, seed=1), "model_name": f"r{i}"} for i in range(4)}
    wall, per_run = budget.projected(configs, workers_count=2)
    assert per_run == {"r0": 10.0, "r1": 20.0, "r2": 10.0, "r3": 20.0}
    assert len(calls) == 2  # runs that differ only in name share one measurement
    assert wall == 30.0  # longest first over 2 workers: 20 + 10 each
    train.train(configs["r1"])
    assert "r1" not in budget.projected(configs, workers_count=1)[1]


def test_a_timed_run_is_in_the_range_of_its_real_time(home):
    cfg = {**tiny_ptb(epochs=1), "model_name": "timed"}
    projected = budget.run_seconds(cfg)
    real = train.train(cfg)["training_duration"]
    assert 0.2 * real < projected < 5 * real


def test_ops_per_layer_step_count_what_a_gpu_launches():
    plain, mogrifier = budget.ops_per_layer_step("lstm", {"engine": "fused"}), budget.ops_per_layer_step(
        "mogrifier", {"rounds": 5, "rank": 4})
    assert 5 <= plain < mogrifier
    assert budget.ops_per_layer_step("mogrifier", {"rounds": 5, "rank": 84}) == mogrifier  # rank fitted, same ops


def test_paper_lite_fits_a_day_and_paper_does_not():
    lite, paper = budget.preset_gpu_hours("ur_lstm", "paper-lite")[1], budget.preset_gpu_hours("ur_lstm", "paper")[1]
    assert lite <= 24 < paper
    setup = presets.get("ur_lstm", "paper-lite")
    assert all(len(task["seeds"]) >= 3 for task in setup.values())
    assert setup["copy"]["data"]["length"] > presets.get("ur_lstm", "cpu")["copy"]["data"]["length"]


@pytest.mark.parametrize("notebook", ["mogrifier", "dropout_layernorm"])
def test_the_command_prints_a_table(notebook, capsys):
    budget.main([f"{notebook}:paper"])
    assert f"| {notebook} | paper |" in capsys.readouterr().out


def test_disk_counts_best_pt_and_each_kept_checkpoint_with_its_optimizer_copies():
    cfg = {"data": {"corpus": "adding", "length": 10}, "model": {"cell": "lstm", "hidden_size": 8},
           "optimizer": {"name": "AdamW", "lr": 1e-3}, "keep_last": 2}
    weights = 4 * (4 * 8 * (2 + 8) + 2 * 4 * 8 + 8 + 1)  # the LSTM layer and the linear head, float32
    assert budget.run_disk_bytes(cfg) == weights * (1 + 3 * (1 + 2))  # best.pt, then 2 + the best epoch's
    assert budget.run_disk_bytes({**cfg, "optimizer": {"name": "SGD", "lr": 1.0}}) == weights * (1 + 3)
    paper = presets.training_configs("awd_lstm", "paper")
    assert all(c["keep_last"] == presets.PAPER_KEEP_LAST for runs in paper.values() for c in runs.values())
