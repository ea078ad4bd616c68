"""The training loop: per-epoch metrics and checkpoints, exact resume, and failure modes."""

import dataclasses
import json
import math

import pandas as pd
import pytest
import torch

from lstm_nb import callbacks, checkpoints, cli, gemm, loop, models, phases, plots, train
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
    real_epoch = loop.train_epoch

    def poisoned(model, data, optimizer, cfg, epoch, device, *args, **options):
        if epoch == 2:
            with torch.no_grad():
                model.decoder.bias.fill_(float("nan"))
        return real_epoch(model, data, optimizer, cfg, epoch, device, *args, **options)

    monkeypatch.setattr(loop, "train_epoch", poisoned)
    with pytest.raises(loop.NonFiniteLossError, match="epoch 2"):
        train.train(tiny_ptb(epochs=3))
    folder = home / "run" / "tiny" / "lstm"
    assert not (folder / "metrics_epoch_2.json").exists()
    good = checkpoints.load(folder / "checkpoint_epoch_1.pt")
    assert all(torch.isfinite(t).all() for t in good["model"].values())


def test_train_each_keeps_going_past_a_diverged_run_when_asked(home, monkeypatch):
    real_epoch = loop.train_epoch

    def poisoned(model, data, optimizer, cfg, epoch, device, *args, **options):
        if cfg["model_name"] == "diverges" and epoch == 2:
            with torch.no_grad():
                model.decoder.bias.fill_(float("nan"))
        return real_epoch(model, data, optimizer, cfg, epoch, device, *args, **options)

    monkeypatch.setattr(loop, "train_epoch", poisoned)
    configs = {name: {**tiny_ptb(epochs=2), "model_name": name} for name in ("diverges", "fine")}
    with pytest.raises(loop.NonFiniteLossError):
        train.train_each(configs)
    table = train.train_each(configs, keep_going=True)
    assert table.loc["diverges", "diverged"] == "the training loss became nan at epoch 2, batch 0"
    assert math.isnan(table.loc["diverges", "best_validation_loss"])
    assert table.loc["fine", "epochs_trained"] == 2 and pd.isna(table.loc["fine", "diverged"])


def test_the_command_line_trains_the_others_past_a_diverged_run_and_exits_non_zero(home, monkeypatch, capsys):
    from conftest import REPO

    real_epoch = loop.train_epoch

    def poisoned(model, data, optimizer, cfg, epoch, device, *args, **options):
        if cfg["model_name"] == "moon-seed1":
            with torch.no_grad():
                model.decoder.bias.fill_(float("nan"))
        return real_epoch(model, data, optimizer, cfg, epoch, device, *args, **options)

    monkeypatch.setattr(loop, "train_epoch", poisoned)
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
    real_epoch, seen = loop.train_epoch, []

    def watched(model, data, optimizer, cfg, epoch, device, *args, **options):
        seen.append(gemm.backend())
        if epoch == 2 and len(seen) == 2:
            raise KeyboardInterrupt  # stopped during epoch 2: epoch 1's checkpoint is kept
        return real_epoch(model, data, optimizer, cfg, epoch, device, *args, **options)

    monkeypatch.setattr(loop, "train_epoch", watched)
    with gemm.using("onednn"), pytest.raises(KeyboardInterrupt):
        train.train(tiny_ptb(epochs=2))
    with gemm.using("torch"):  # what this machine would pick now
        train.train(tiny_ptb(epochs=2))
        assert gemm.backend() == "torch"  # restored after the run
    assert seen == ["onednn", "onednn", "onednn"]


# ------------------------------------------------------------------------------------------------
# Callbacks: typed state in the checkpoint, and a phase added without touching the loop


def test_every_callback_state_has_its_own_keys_in_the_checkpoint():
    # every key that adds a callback (a schedule is refused beside NT-ASGD, but has state keys of its own)
    cfg = {"patience": 3, "ar": 2.0, "tar": 1.0, "scheduler": {"name": "StepLR", "step_size": 1},
           "nt_asgd": {"nonmono": 5}, "finetune": {"epochs": 2, "nonmono": 5}, "optimizer": {"name": "SGD", "lr": 30.0}}
    data = type("Data", (), {"variable_bptt": True})()
    callbacks = train.callbacks_for(cfg, data)
    assert [type(c).__name__ for c in callbacks] == [
        "LearningRateSchedule", "EarlyStopping", "VariableBPTT", "ActivationRegularization", "NTASGD", "FineTune"]
    keys = [set(loop.LoopState.__dataclass_fields__)] + [set(c.state_entries()) for c in callbacks]
    assert sum(map(len, keys)) == len(set().union(*keys)), "two states share a key"


def test_a_checkpoint_written_before_the_callbacks_resumes_into_their_states():
    # the progress of a run stopped during fine-tuning, as the loop saved it before callbacks had states
    old = {"epoch": 20, "updates": 800, "best_epoch": 20, "best_validation_loss": 5.7, "stale": 0, "duration": 9.0,
           "stopped_early": False, "history": [{"epoch": 20}], "config": {"seed": 1}, "world_size": 1,
           "phase": "finetune", "switched_after_epoch": None, "logs": [5.8, 5.75],
           "finetune": {"start_epoch": 18, "stopped": False, "before": {"epoch": 18, "validation_loss": 5.74}}}
    state = loop.LoopState.from_progress(old)
    assert (state.epoch, state.phase, state.updates, state.history) == (20, "finetune", 800, [{"epoch": 20}])
    finetune = phases.FineTune(3, 5, {"name": "SGD", "lr": 30.0})
    finetune.load_state(old)
    assert finetune.state == phases.FineTuneState(18, False, {"epoch": 18, "validation_loss": 5.74}, [5.8, 5.75])
    assert loop.LoopState.from_progress({k: v for k, v in old.items() if k != "updates"}).updates is None
    stopping = callbacks.EarlyStopping(3)
    stopping.load_state({"epoch": 2})  # older still: no "stale"; the default
    assert stopping.state.stale == 0
    # saved again, the progress holds every old key (readers of older runs look for them)
    run = loop.Run({}, None, None, None, None, None, None, [finetune, phases.NTASGD(5, {"lr": 30.0}), stopping], state)
    assert set(old) <= set(run.progress())


class Cooldown(callbacks.Callback):
    """A phase after training: `epochs` more epochs at a tenth of the learning rate."""

    @dataclasses.dataclass
    class State:
        start_epoch: int | None = None

    def __init__(self, epochs):
        super().__init__()
        self.epochs = epochs

    def at_phase_end(self, run):
        if run.state.phase == "train":
            for group in run.optimizer.param_groups:
                group["lr"] /= 10
            self.state.start_epoch, run.state.phase = run.state.epoch, "cooldown"

    def before_epoch(self, run):
        if run.state.phase == "cooldown":
            run.epoch_label = "cooldown"

    def phase_over(self, run):
        return run.state.phase == "cooldown" and run.state.epoch - self.state.start_epoch >= self.epochs


def test_a_new_phase_is_one_callback_and_resumes(home, monkeypatch):
    real = train.callbacks_for
    monkeypatch.setattr(train, "callbacks_for", lambda cfg, data: [*real(cfg, data), Cooldown(2)])
    cfg = tiny_ptb(epochs=2, optimizer={"name": "SGD", "lr": 1.0})
    summary = train.train(cfg)
    folder = home / "run" / "tiny" / "lstm"
    metrics = [json.loads((folder / f"metrics_epoch_{e}.json").read_text()) for e in range(1, 5)]
    assert summary["epochs_trained"] == 4
    assert [m["phase"] for m in metrics] == ["sgd", "sgd", "cooldown", "cooldown"]
    assert [m["learning_rate"] for m in metrics] == pytest.approx([1.0, 1.0, 0.1, 0.1])
    # stopped after the first cooldown epoch, it resumes inside the phase and ends at the same numbers
    (folder / "metrics.json").unlink()
    (folder / "checkpoint_epoch_4.pt").unlink()
    assert checkpoints.load(folder / "checkpoint_epoch_3.pt")["progress"]["start_epoch"] == 2
    assert train.train(cfg)["best_validation_loss"] == summary["best_validation_loss"]
    again = json.loads((folder / "metrics_epoch_4.json").read_text())
    assert {k: again[k] for k in LOSS_KEYS + ["learning_rate", "phase"]} == {
        k: metrics[3][k] for k in LOSS_KEYS + ["learning_rate", "phase"]}
