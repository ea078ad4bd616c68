"""The training loop: per-epoch metrics and checkpoints, exact resume, and failure modes."""

import json
import math

import pandas as pd
import pytest
import torch

from lstm_nb import checkpoints, cli, gemm, models, plots, train
from lstm_nb.config import ConfigError, make_config

METRIC_KEYS = {"epoch", "training_epochs", "best_epoch", "training_loss", "validation_loss",
               "best_validation_loss", "training_duration", "peak_cpu_memory_MB",
               "training_perplexity", "validation_perplexity"}
LOSS_KEYS = ["training_loss", "validation_loss", "best_validation_loss", "best_epoch"]


def tiny_ptb(epochs=3, **changes):
    cfg = {
        "experiment": "tiny", "model_name": "lstm", "epochs": epochs, "seed": 7, "keep_last": 2,
        "data": {"corpus": "ptb", "batch_size": 8, "bptt": 20, "fraction": 0.02},
        "model": {"embedding_size": 32, "hidden_size": 32, "num_layers": 2, "inter_layer_dropout": 0.2},
        "optimizer": {"name": "Adam", "lr": 3e-3},
    }
    cfg.update(changes)
    return cfg


def test_short_run_writes_metrics_checkpoints_and_summary(home):
    summary = train.train(tiny_ptb(epochs=3))
    folder = home / "run" / "tiny" / "lstm"
    for epoch in (1, 2, 3):
        metrics = json.loads((folder / f"metrics_epoch_{epoch}.json").read_text())
        assert METRIC_KEYS <= set(metrics)
        assert metrics["epoch"] == epoch
        assert math.isclose(metrics["validation_perplexity"], math.exp(metrics["validation_loss"]))
    best = json.loads((folder / "metrics_epoch_3.json").read_text())["best_epoch"]
    kept = {p.name for p in checkpoints.epoch_checkpoints(folder)}  # the last keep_last = 2, and the best epoch's
    assert kept == {"checkpoint_epoch_2.pt", "checkpoint_epoch_3.pt", f"checkpoint_epoch_{best}.pt"}
    assert (folder / "best.pt").exists()
    described = json.loads((folder / "config.json").read_text())
    assert described["config"]["model"]["hidden_size"] == 32
    assert {"seed", "versions", "git_commit", "parameters"} <= set(described)
    assert described["versions"]["torch"] == torch.__version__
    assert summary["test_perplexity"] < 10_000 / 2  # learned something: far below uniform over PTB's vocabulary
    assert summary["epochs_trained"] == 3
    frame = plots.metrics_frame(home / "run" / "tiny")
    assert list(frame["epoch"]) == [1, 2, 3]
    plots.plot_curves(frame, name="tiny_smoke")
    assert (home / "figures" / "tiny_smoke.png").stat().st_size > 1000
    # running it again returns the finished summary instead of training again
    again = train.train(tiny_ptb(epochs=3))
    assert again == summary


def test_best_checkpoint_holds_the_best_epoch(home):
    train.train(tiny_ptb(epochs=2))
    folder = home / "run" / "tiny" / "lstm"
    best = checkpoints.load(folder / "best.pt")
    metrics = json.loads((folder / "metrics_epoch_2.json").read_text())
    assert best["epoch"] == metrics["best_epoch"]


@pytest.mark.parametrize("backend", ["torch", pytest.param("onednn", marks=pytest.mark.skipif(
    not gemm.onednn_available(), reason="this torch build has no oneDNN linear"))])
def test_resume_after_sigkill_matches_an_uninterrupted_run(tmp_path, backend):
    from conftest import Training

    training = Training(tmp_path, tiny_ptb(epochs=4, data={"corpus": "ptb", "batch_size": 8, "bptt": 20,
                                                           "fraction": 0.05}),
                        env={gemm.ENV: backend})  # each matrix-product backend
    training.run("straight")
    training.kill_after("killed", "checkpoint_epoch_1.pt")  # killed while training epoch 2, then run again
    expected, folder = training.folder("straight"), training.folder("killed")
    assert not (folder / "metrics_epoch_4.json").exists()
    assert "resuming" in training.run("killed").stdout
    for epoch in range(1, 5):
        a = json.loads((expected / f"metrics_epoch_{epoch}.json").read_text())
        b = json.loads((folder / f"metrics_epoch_{epoch}.json").read_text())
        assert {k: a[k] for k in LOSS_KEYS} == {k: b[k] for k in LOSS_KEYS}, f"epoch {epoch}"
    a = json.loads((expected / "metrics.json").read_text())
    b = json.loads((folder / "metrics.json").read_text())
    assert a["test_loss"] == b["test_loss"]
    assert json.loads((folder / "config.json").read_text())["gemm"]["backend"] == backend


def test_nan_loss_stops_with_a_clear_error_and_keeps_the_last_good_checkpoint(home, monkeypatch):
    real_epoch = train.train_epoch

    def poisoned(model, data, optimizer, cfg, epoch, device, desc=None, max_length=None):
        if epoch == 2:
            with torch.no_grad():
                model.decoder.bias.fill_(float("nan"))
        return real_epoch(model, data, optimizer, cfg, epoch, device, desc, max_length)

    monkeypatch.setattr(train, "train_epoch", poisoned)
    with pytest.raises(train.NonFiniteLossError, match="epoch 2"):
        train.train(tiny_ptb(epochs=3))
    folder = home / "run" / "tiny" / "lstm"
    assert not (folder / "metrics_epoch_2.json").exists()
    good = checkpoints.load(folder / "checkpoint_epoch_1.pt")
    assert all(torch.isfinite(t).all() for t in good["model"].values())


def test_train_each_keeps_going_past_a_diverged_run_when_asked(home, monkeypatch):
    real_epoch = train.train_epoch

    def poisoned(model, data, optimizer, cfg, epoch, device, desc=None, max_length=None):
        if cfg["model_name"] == "diverges" and epoch == 2:
            with torch.no_grad():
                model.decoder.bias.fill_(float("nan"))
        return real_epoch(model, data, optimizer, cfg, epoch, device, desc, max_length)

    monkeypatch.setattr(train, "train_epoch", poisoned)
    configs = {name: {**tiny_ptb(epochs=2), "model_name": name} for name in ("diverges", "fine")}
    with pytest.raises(train.NonFiniteLossError):
        train.train_each(configs)
    table = train.train_each(configs, keep_going=True)
    assert table.loc["diverges", "diverged"] == "the training loss became nan at epoch 2, batch 0"
    assert math.isnan(table.loc["diverges", "best_validation_loss"])
    assert table.loc["fine", "epochs_trained"] == 2 and pd.isna(table.loc["fine", "diverged"])


def test_the_command_line_trains_the_others_past_a_diverged_run_and_exits_non_zero(home, monkeypatch, capsys):
    from conftest import REPO

    real_epoch = train.train_epoch

    def poisoned(model, data, optimizer, cfg, epoch, device, desc=None, max_length=None):
        if cfg["model_name"] == "moon-seed1":
            with torch.no_grad():
                model.decoder.bias.fill_(float("nan"))
        return real_epoch(model, data, optimizer, cfg, epoch, device, desc, max_length)

    monkeypatch.setattr(train, "train_epoch", poisoned)
    notebook = REPO / "notebooks" / "dropout_layernorm.ipynb"
    with pytest.raises(SystemExit, match="diverged, the others trained: dropout_layernorm-ptb-smoke/moon-seed1"):
        cli.main([str(notebook), "--preset", "smoke", "--only", "moon", "semeniuta"])
    assert "moon-seed1: the training loss became nan" in capsys.readouterr().err
    assert (home / "run" / "dropout_layernorm-ptb-smoke" / "semeniuta-seed1" / "metrics.json").exists()


def test_truncated_checkpoint_gives_a_clear_error(home):
    train.train(tiny_ptb(epochs=2))
    folder = home / "run" / "tiny" / "lstm"
    (folder / "metrics.json").unlink()  # pretend the run stopped after epoch 2
    last = folder / "checkpoint_epoch_2.pt"
    last.write_bytes(last.read_bytes()[:1000])
    with pytest.raises(checkpoints.CheckpointError, match="checkpoint_epoch_2.pt.*checkpoint_epoch_1.pt"):
        train.train(tiny_ptb(epochs=2))
    last.unlink()  # as the message says: delete it and resume from the older one
    assert train.train(tiny_ptb(epochs=2))["epochs_trained"] == 2


def test_changed_configuration_in_an_existing_run_is_refused(home):
    train.train(tiny_ptb(epochs=1))
    with pytest.raises(ValueError, match="different configuration.*optimizer"):
        train.train(tiny_ptb(epochs=1, optimizer={"name": "Adam", "lr": 1e-2}))


def test_unknown_configuration_keys_are_refused():
    with pytest.raises(ConfigError, match="unknown config key 'epoch'"):
        make_config({"epoch": 3})
    with pytest.raises(ConfigError, match="config.data"):
        make_config({"data": {"corpus_name": "ptb"}})
    with pytest.raises(ValueError, match="bad option for the rnn language model.*hidden"):
        models.build(100, embedding_size=8, hidden=8)


def test_early_stopping_with_patience(home):
    # lr 0 cannot improve after epoch 1: patience 1 stops after epoch 2
    summary = train.train(tiny_ptb(epochs=5, patience=1, optimizer={"name": "SGD", "lr": 0.0}))
    assert summary["stopped_early"] and summary["epochs_trained"] == 2 and summary["best_epoch"] == 1


@pytest.mark.skipif(not gemm.onednn_available(), reason="this torch build has no oneDNN linear")
def test_a_resumed_run_keeps_the_matrix_product_backend_it_started_with(home, monkeypatch):
    real_epoch, seen = train.train_epoch, []

    def watched(model, data, optimizer, cfg, epoch, device, desc=None, max_length=None):
        seen.append(gemm.backend())
        if epoch == 2 and len(seen) == 2:
            raise KeyboardInterrupt  # stopped during epoch 2: epoch 1's checkpoint is kept
        return real_epoch(model, data, optimizer, cfg, epoch, device, desc, max_length)

    monkeypatch.setattr(train, "train_epoch", watched)
    with gemm.using("onednn"), pytest.raises(KeyboardInterrupt):
        train.train(tiny_ptb(epochs=2))
    with gemm.using("torch"):  # what this machine would pick now
        train.train(tiny_ptb(epochs=2))
        assert gemm.backend() == "torch"  # restored after the run
    assert seen == ["onednn", "onednn", "onednn"]
