"""The run folder under faults and bad input: every damaged or missing file is refused with its path
and advice that works, a second writer is refused, stale temporary files are removed, a bad
configuration is refused before anything is written, and every JSON file is valid JSON."""

import json
import math
import os
import re
import shutil
import subprocess
import sys
import time

import pytest
import torch

from lstm_nb import checkpoints, finished, loop, objectives, plots, train
from lstm_nb.config import ConfigError


def tiny(epochs=2, **changes):
    cfg = {
        "experiment": "faults", "model_name": "lstm", "epochs": epochs, "seed": 3, "keep_last": 1,
        "data": {"corpus": "ptb", "batch_size": 8, "bptt": 20, "fraction": 0.01},
        "model": {"embedding_size": 16, "hidden_size": 16},
    }
    cfg.update(changes)
    return cfg


def folder_of(home):
    return home / "run" / "faults" / "lstm"


def unfinish(folder):
    """What a run killed after its last epoch's checkpoint looks like: no summary yet."""
    (folder / "metrics.json").unlink()


def test_files_are_written_with_the_users_umask(tmp_path):
    old = os.umask(0o022)
    try:
        checkpoints.save_json({"a": 1}, tmp_path / "a.json")
        checkpoints.save({"a": 1}, tmp_path / "a.pt")
        os.umask(0o027)
        checkpoints.save_json({"a": 1}, tmp_path / "b.json")
    finally:
        os.umask(old)
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "a.pt").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "b.json").stat().st_mode & 0o777 == 0o640


def test_non_finite_numbers_are_written_as_valid_json(tmp_path):
    path = tmp_path / "m.json"
    checkpoints.save_json({"loss": math.inf, "ppl": [1.0, math.nan], "ok": 2.5}, path)

    def refuse(constant):
        raise ValueError(f"not JSON: {constant}")

    assert json.loads(path.read_text(), parse_constant=refuse) == {"loss": None, "ppl": [1.0, None], "ok": 2.5}
    assert objectives.loss_metrics("validation", 800.0, "word")["validation_perplexity"] == math.inf  # in memory


def _hold_lock(folder, ready):
    code = ("import sys, time; from lstm_nb import checkpoints\n"
            "with checkpoints.locked(sys.argv[1]):\n"
            "    open(sys.argv[2], 'w').close(); time.sleep(120)")
    proc = subprocess.Popen([sys.executable, "-c", code, str(folder), str(ready)])
    deadline = time.time() + 60
    while not ready.exists():
        assert proc.poll() is None and time.time() < deadline
        time.sleep(0.02)
    return proc


def test_a_second_writer_is_refused_and_a_killed_one_leaves_no_stale_lock(home, tmp_path):
    folder = folder_of(home)
    folder.mkdir(parents=True)
    holder = _hold_lock(folder, tmp_path / "ready")
    try:
        with pytest.raises(checkpoints.RunLockedError, match=rf"{folder} is being written by process {holder.pid}"):
            train.train(tiny(optimizer={"name": "SGD", "lr": 1.0}))  # another configuration, same folder
        assert sorted(p.name for p in folder.iterdir()) == [".lock", ".lock-holder"]  # nothing of the refused run
    finally:
        holder.kill()
        holder.wait()
    assert train.train(tiny())["epochs_trained"] == 2  # SIGKILL released the lock


@pytest.mark.parametrize("how", ["oserror", "torch"])
def test_a_full_disk_names_the_file_says_nothing_was_lost_and_leaves_the_old_file(tmp_path, how):
    import errno

    path = tmp_path / "metrics.json"
    checkpoints.save_json({"epoch": 1}, path)

    def full(f):
        f.write(b"half")
        if how == "oserror":
            raise OSError(errno.ENOSPC, "No space left on device")
        try:  # torch.save's zip writer turns the OSError into its own RuntimeError
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError:
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 64 vs 0") from None

    with pytest.raises(checkpoints.NoSpaceError, match=rf"{path} could not be written: no space left on the device"):
        checkpoints._atomic_write(path, full)
    assert json.loads(path.read_text()) == {"epoch": 1}  # the previous file is unchanged
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]  # the partial file is gone


def test_stale_temporary_files_are_removed_on_the_next_start(home):
    train.train(tiny(epochs=1))
    folder = folder_of(home)
    unfinish(folder)
    stale = [folder / ".checkpoint_epoch_2.pt.4242.0a1b2c3d.tmp", folder / ".metrics_epoch_2.json.4242.ffff0000.tmp"]
    for p in stale:
        p.write_bytes(b"half a file")
    train.train(tiny(epochs=1))
    assert not any(p.exists() for p in stale)
    assert not list(folder.glob(".*.tmp"))


@pytest.mark.parametrize("damage", ["delete", "truncate"])
def test_a_lost_best_model_is_rebuilt_from_the_best_epochs_checkpoint(home, damage):
    summary = train.train(tiny(epochs=3))
    folder = folder_of(home)
    unfinish(folder)
    best = folder / "best.pt"
    if damage == "delete":
        best.unlink()
    else:
        best.write_bytes(best.read_bytes()[:500])
    again = train.train(tiny(epochs=3))
    assert again["test_loss"] == summary["test_loss"] and again["best_epoch"] == summary["best_epoch"]
    assert checkpoints.load(best)["epoch"] == summary["best_epoch"]


def test_a_damaged_best_model_of_a_finished_run_says_what_to_do_and_that_works(home):
    train.train(tiny(epochs=2))
    folder = folder_of(home)
    reference = finished.load_model(folder).state_dict()
    (folder / "best.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(checkpoints.CheckpointError, match=r"best.pt .*damaged. Delete it, then run the same training"):
        finished.load_model(folder)
    (folder / "best.pt").unlink()
    train.train(tiny(epochs=2))
    rebuilt = finished.load_model(folder).state_dict()
    assert all(torch.equal(reference[k], rebuilt[k]) for k in reference)


def test_a_best_model_that_cannot_be_rebuilt_says_what_to_do_and_that_works(home, monkeypatch):
    real_evaluation, validation_losses = loop.evaluation, iter([5.0, 6.0] * 2)
    monkeypatch.setattr(loop, "evaluation", lambda model, data, split, *args: (
        {"loss": next(validation_losses)} if split == "valid" else real_evaluation(model, data, split, *args)))
    summary = train.train(tiny(epochs=2))  # best epoch 1, kept beside the last one
    folder = folder_of(home)
    unfinish(folder)
    (folder / "best.pt").unlink()
    (folder / "checkpoint_epoch_1.pt").write_bytes(b"garbage")
    with pytest.raises(checkpoints.CheckpointError, match=rf"best.pt is missing.*lost. Delete {folder}") as e:
        train.train(tiny(epochs=2))
    assert "damaged" in str(e.value)  # the checkpoint is damaged, best.pt is missing: each said as it is
    shutil.rmtree(folder)  # the advice
    again = train.train(tiny(epochs=2))
    assert (again["best_epoch"], again["test_loss"]) == (summary["best_epoch"], summary["test_loss"])


def test_damaged_config_and_summary_name_the_file_and_their_advice_works(home):
    summary = train.train(tiny(epochs=1))
    folder = folder_of(home)
    (folder / "config.json").write_text('{"config": {"epochs"')
    with pytest.raises(checkpoints.RunFileError, match=rf"cannot read {folder / 'config.json'} .*delete it"):
        train.train(tiny(epochs=1))
    (folder / "config.json").unlink()
    (folder / "metrics.json").write_text("{")
    with pytest.raises(checkpoints.RunFileError, match=rf"cannot read {folder / 'metrics.json'} .*delete it"):
        train.train(tiny(epochs=1))
    (folder / "metrics.json").unlink()
    assert train.train(tiny(epochs=1))["test_loss"] == summary["test_loss"]  # recomputed, not retrained
    assert json.loads((folder / "config.json").read_text())["config"]["epochs"] == 1
    assert [p.name for p in folder.glob("metrics_epoch_*.json")] == ["metrics_epoch_1.json"]


def test_checkpoints_carry_their_configuration_when_config_json_is_gone(home):
    train.train(tiny(epochs=2))
    folder = folder_of(home)
    unfinish(folder)
    (folder / "config.json").unlink()
    with pytest.raises(ConfigError, match=r"checkpoint_epoch_2.pt holds a run with a different configuration.*epochs"):
        train.train(tiny(epochs=3))
    assert not (folder / "config.json").exists()  # nothing rewritten to misdescribe the checkpoints
    assert not (folder / "metrics_epoch_3.json").exists()


def test_a_truncated_metrics_file_is_named_and_rewritten_from_the_checkpoint(home):
    train.train(tiny(epochs=2))
    folder = folder_of(home)
    path = folder / "metrics_epoch_1.json"
    good = json.loads(path.read_text())
    path.write_text(path.read_text()[:40])
    with pytest.raises(checkpoints.RunFileError, match=rf"cannot read {path} .*Run the same training again"):
        plots.metrics_frame(folder)
    train.train(tiny(epochs=2))  # the advice: the finished run notices the damage and repairs it
    assert json.loads(path.read_text()) == good
    assert list(plots.metrics_frame(folder)["epoch"]) == [1, 2]


BAD_VALUES = [
    ({"data": {"corpus": "ptb", "batch_size": 0}}, "data.batch_size must be a positive integer, got 0"),
    ({"data": {"corpus": "ptb", "batch_size": -4}}, "data.batch_size must be a positive integer, got -4"),
    ({"data": {"corpus": "ptb", "bptt": 0}}, "data.bptt must be a positive integer, got 0"),
    ({"data": {"corpus": "ptb", "fraction": 0}}, r"data.fraction must be a number in \(0, 1\], got 0"),
    ({"data": {"corpus": "ptbb"}}, "data.corpus must be one of"),
    ({"model": {"embedding_size": 16, "hidden_size": 0}}, "model.hidden_size must be a positive integer, got 0"),
    ({"model": {"embedding_size": 0, "hidden_size": 16}}, "model.embedding_size must be a positive integer, got 0"),
    ({"model": {"embedding_size": 16, "hidden_size": 16, "dropout": 1.5}}, r"model.dropout must be a rate in \[0, 1\)"),
    ({"epochs": 0}, "epochs must be a positive integer, got 0"),
    ({"epochs": "abc"}, "epochs must be a positive integer, got 'abc'"),
    ({"patience": 0}, "patience must be None or a positive integer, got 0"),
    ({"clip": -1}, "clip must be None or a positive number, got -1"),
    ({"keep_last": 0}, "keep_last must be a positive integer, got 0"),
    ({"optimizer": {"name": "Adamm"}}, "optimizer must be a dict whose 'name' is a class of torch.optim"),
    ({"optimizer": {"name": "Adam", "lr": -1}}, "optimizer.lr must be a number ≥ 0"),
    ({"experiment": "../elsewhere"}, "experiment must be a folder name"),
    ({"device": "gpu"}, "device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got 'gpu'"),
]


@pytest.mark.parametrize(("changes", "message"), BAD_VALUES, ids=[m.split(" must")[0] for _, m in BAD_VALUES])
def test_a_bad_value_is_refused_before_anything_is_written(home, changes, message):
    with pytest.raises(ConfigError, match=message):
        train.train(tiny(**changes))
    assert not (home / "run").exists()


def test_every_bad_value_is_listed_at_once(home):
    with pytest.raises(ConfigError) as e:
        train.train(tiny(epochs=0, data={"corpus": "ptb", "batch_size": 0, "bptt": 0}))
    assert str(e.value).count("must be") == 3


@pytest.mark.parametrize(("changes", "error", "message"), [
    ({"data": {"corpus": "ptb", "batch_size": 8, "fraction": 1e-6}}, ValueError, r"data.fraction 1e-06 leaves 2 tokens"),
    ({"optimizer": {"name": "Adam", "lrr": 1e-3}}, ConfigError, "bad options for torch.optim.Adam.*lrr"),
    ({"model": {"embedding_size": 16, "hidden": 16}}, ValueError, "bad option for the rnn language model"),
])
def test_input_that_fails_only_when_built_is_refused_before_anything_is_written(home, changes, error, message):
    with pytest.raises(error, match=message):
        train.train(tiny(**changes))
    assert not (home / "run").exists()


def test_a_refused_configuration_does_not_block_the_corrected_one(home):
    with pytest.raises(ConfigError):
        train.train(tiny(epochs=0))
    assert train.train(tiny(epochs=1))["epochs_trained"] == 1


def test_divergence_says_what_to_do(home, monkeypatch):
    monkeypatch.setattr(loop, "evaluation", lambda *args: {"loss": math.nan})
    with pytest.raises(loop.NonFiniteLossError, match=r"faults/lstm: the validation loss became nan at epoch 1; "
                                                       r"no epoch had finished.*lower optimizer.lr.*clip.*model_name"):
        train.train(tiny(epochs=1))


def test_a_long_load_error_is_cut_at_a_word_boundary(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint_epoch_1.pt"
    path.write_bytes(b"not a checkpoint")

    def failing(*args, **kwargs):
        raise RuntimeError("This is an internal error " * 10)

    monkeypatch.setattr(checkpoints.torch, "load", failing)
    with pytest.raises(checkpoints.CheckpointError) as e:
        checkpoints.load(path)
    quoted = str(e.value).split("RuntimeError: ", 1)[1].split("): it is damaged")[0]
    assert quoted.endswith(" …") and quoted[:-2].split(" ")[-1] in ("This", "is", "an", "internal", "error")


def test_a_damaged_best_model_of_a_finished_run_is_rebuilt_by_running_it_again(home):
    train.train(tiny(epochs=2))
    folder = folder_of(home)
    reference = finished.load_model(folder).state_dict()
    (folder / "best.pt").write_bytes(b"not a checkpoint")
    train.train(tiny(epochs=2))  # the finished-run check finds it unreadable and rebuilds it
    rebuilt = finished.load_model(folder).state_dict()
    assert all(torch.equal(reference[k], rebuilt[k]) for k in reference)


def test_tensorboard_gets_every_number_of_the_metrics_file(home):
    from lstm_nb import records

    train.train(tiny(epochs=1))
    metrics = json.loads((folder_of(home) / "metrics_epoch_1.json").read_text())
    scalars = records.tensorboard_scalars(metrics)
    numbers = {k for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    assert set(scalars) == numbers - {"epoch"}
    assert {"training_loss", "validation_perplexity", "learning_rate", "epoch_duration"} <= set(scalars)


def test_the_run_folder_file_names_are_spelled_in_one_module():
    """`lstm_nb.checkpoints` alone names a run folder's files; every other module and notebook asks it."""
    from conftest import REPO

    spelled = re.compile(r"config\.json|metrics\.json|best\.pt|metrics_epoch_|checkpoint_epoch_|_chosen\.json|"
                         r"(dynamic_eval|mc_dropout|pointer)\.json|\.lock-holder")
    sources = [p for p in (REPO / "lstm_nb").rglob("*.py") if p.name != "checkpoints.py"]
    sources += sorted((REPO / "notebooks").glob("*.ipynb"))
    found = [f"{p.relative_to(REPO)}: {m.group(0)}" for p in sources for m in spelled.finditer(p.read_text())]
    assert not found, found
