"""Independent runs in parallel worker processes: the same runs as in sequence, failures named."""

import json

import pytest
import torch
from test_train import tiny_ptb

from lstm_nb import cli, train, workers


def _configs():
    return {name: {**tiny_ptb(epochs=2, seed=seed), "model_name": name} for name, seed in (("a", 1), ("b", 2))}


def _epoch_metrics(root, name):
    folder = root / "run" / "tiny" / name
    keep = ("training_loss", "validation_loss", "best_validation_loss")
    return [{k: json.loads((folder / f"metrics_epoch_{e}.json").read_text())[k] for k in keep} for e in (1, 2)]


def test_two_workers_train_the_same_runs_as_a_sequence(tmp_path, monkeypatch):
    """Same seeds, same data order, same thread count: every epoch's metrics are equal to the bit."""
    monkeypatch.setenv("LSTM_NB_HOME", str(tmp_path / "parallel"))
    outcomes = workers.train_all(_configs(), workers=2, threads=1)
    assert [kind for kind, _ in outcomes.values()] == ["summary", "summary"]
    monkeypatch.setenv("LSTM_NB_HOME", str(tmp_path / "sequence"))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        table = train.train_each(_configs())
    finally:
        torch.set_num_threads(threads)
    for name in ("a", "b"):
        assert _epoch_metrics(tmp_path / "parallel", name) == _epoch_metrics(tmp_path / "sequence", name)
        assert outcomes[name][1]["best_validation_loss"] == table.loc[name, "best_validation_loss"]
    assert _epoch_metrics(tmp_path / "parallel", "a") != _epoch_metrics(tmp_path / "parallel", "b")


def test_a_failing_worker_is_named_and_the_others_finish(home):
    configs = _configs()
    configs["a"]["model"] = {**configs["a"]["model"], "cell": "no_such_cell"}
    with pytest.raises(workers.WorkerError, match=r"1 of 2 configurations failed, the others finished: a\n"):
        train.train_each(configs, workers=2)
    assert (home / "run" / "tiny" / "b" / "metrics.json").exists()
    assert not (home / "run" / "tiny" / "a").exists()  # refused before anything was written


def test_worker_lines_reach_the_parent(home, capsys):
    train.train_each(_configs(), workers=2)
    out = capsys.readouterr().out
    assert "tiny/a epoch 2/2" in out and "tiny/b epoch 2/2" in out


def test_the_command_line_takes_workers(home, capsys):
    from conftest import REPO

    with pytest.raises(SystemExit, match="--workers must be at least 1"):
        cli.main([str(REPO / "notebooks" / "mogrifier.ipynb"), "--preset", "smoke", "--workers", "0"])
    cli.main([str(REPO / "notebooks" / "dropout_layernorm.ipynb"), "--preset", "smoke", "--only", "moon",
                "semeniuta", "--workers", "2"])
    out = capsys.readouterr().out
    assert "dropout_layernorm-ptb-smoke/moon-seed1: {" in out and "dropout_layernorm-ptb-smoke/semeniuta-seed1: {" in out
