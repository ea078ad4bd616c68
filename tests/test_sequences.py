"""The sequence tasks (copy in both layouts, adding, pixel MNIST), their options, the sequence model,
memory runs' updates to solve, and exact resumes after SIGKILL."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lstm_nb import data, finished, loop, models, sequences, train
from lstm_nb.config import ConfigError, make_config


def test_copy_sequences_have_arjovskys_layout():
    delay = 7
    inputs, targets = sequences.copy_memory(50, delay, np.random.default_rng(0))
    assert inputs.shape == targets.shape == (50, delay + 20)
    head = inputs[:, :10]
    assert head.min() >= 1 and head.max() <= 8
    assert (inputs[:, 10:10 + delay - 1] == 0).all()  # T − 1 blanks
    assert (inputs[:, 10 + delay - 1] == 9).all()  # the delimiter
    assert (inputs[:, -10:] == 0).all()
    assert (targets[:, :delay + 10] == 0).all() and (targets[:, -10:] == head).all()
    assert len(np.unique(head)) == 8  # every data symbol is drawn


def test_cued_copy_sequences_put_the_cue_on_every_recall_step_and_score_only_those_steps():
    """hippo-code's and r0mainK/ur-lstm's layout (CopyDataset: ids[-10:] = 9, the loss on output[-10:])."""
    delay = 7
    inputs, targets = sequences.copy_memory(50, delay, np.random.default_rng(0), layout="cued")
    arjovsky, same_targets = sequences.copy_memory(50, delay, np.random.default_rng(0))
    assert inputs.shape == (50, delay + 20)
    assert (inputs[:, :10] == arjovsky[:, :10]).all() and (targets == same_targets).all()  # the same symbols
    assert (inputs[:, 10:10 + delay] == 0).all()  # T blanks, no delimiter
    assert (inputs[:, -10:] == 9).all()  # the cue on each recall step
    objective = data.build("copy", 8, eval_batch_size=8, length=delay, examples=[8, 8, 8], copy_layout="cued").objective
    torch.manual_seed(0)
    logits, wanted = torch.randn(delay + 20, 3, 10), torch.as_tensor(targets[:3].T).long()
    recall = F.cross_entropy(logits[-10:].reshape(-1, 10), wanted[-10:].reshape(-1))
    assert objective.loss(logits, wanted).item() == pytest.approx(recall.item(), rel=1e-6)
    changed = logits.clone()
    changed[:-10] = torch.randn(delay + 10, 3, 10)  # the steps before the recall do not count
    assert objective.loss(changed, wanted).item() == pytest.approx(recall.item(), rel=1e-6)
    with pytest.raises(ValueError, match="unknown copy layout"):
        sequences.copy_memory(2, delay, np.random.default_rng(0), layout="hippo")


def test_a_redrawn_training_set_is_new_each_epoch_the_same_on_every_call_and_leaves_evaluation_fixed():
    def build(seed=3):
        return data.build("adding", 4, eval_batch_size=4, length=10, examples=[8, 8, 8], seed=seed, redraw_train=True)

    def epoch(batches, e):
        return torch.cat([x for x, _ in batches.batches("train", e)], 1)

    a, b = build(), build()
    assert torch.equal(epoch(a, 1), epoch(b, 1)) and torch.equal(epoch(a, 2), epoch(b, 2))
    assert not torch.equal(epoch(a, 1).sort(1).values, epoch(a, 2).sort(1).values)  # other sequences, not a shuffle
    assert not torch.equal(epoch(a, 1), epoch(build(4), 1))
    assert torch.equal(a.examples["valid"][0], build().examples["valid"][0])
    assert a.num_batches("train") == 2
    with pytest.raises(ConfigError, match="data.redraw_train"):
        make_config({"data": {"corpus": "ptb", "redraw_train": True}})
    with pytest.raises(ConfigError, match="data.copy_layout"):
        make_config({"data": {"corpus": "adding", "length": 5, "copy_layout": "cued"}})


def test_adding_has_one_marker_in_each_half_and_the_target_is_their_sum():
    length = 11
    inputs, targets = sequences.adding_problem(200, length, np.random.default_rng(1))
    values, markers = inputs[..., 0], inputs[..., 1]
    assert ((values >= 0) & (values < 1)).all()
    assert set(np.unique(markers)) == {0.0, 1.0}
    half = length // 2
    assert (markers[:, :half].sum(1) == 1).all() and (markers[:, half:].sum(1) == 1).all()
    assert np.allclose(targets, (values * markers).sum(1))
    # always answering 1 scores 1/6 on average (the stated baseline), here within sampling error
    _, big_targets = sequences.adding_problem(100_000, length, np.random.default_rng(2))
    assert np.mean((big_targets - 1) ** 2) == pytest.approx(sequences.ADDING_BASELINE, rel=0.02)


def test_synthetic_splits_are_fixed_by_the_seed_and_differ_between_splits():
    a = data.build("adding", batch_size=4, eval_batch_size=4, length=10, examples=[8, 8, 8], seed=3)
    b = data.build("adding", batch_size=4, eval_batch_size=4, length=10, examples=[8, 8, 8], seed=3)
    for split in ("train", "valid", "test"):
        assert torch.equal(a.examples[split][0], b.examples[split][0])
    assert not torch.equal(a.examples["train"][0], a.examples["test"][0])
    other = data.build("adding", batch_size=4, eval_batch_size=4, length=10, examples=[8, 8, 8], seed=4)
    assert not torch.equal(a.examples["train"][0], other.examples["train"][0])


def test_sequential_mnist_reads_each_image_pixel_by_pixel(data_root):
    batches = data.build("mnist", batch_size=5, eval_batch_size=5, fraction=0.01)
    raw = sequences.pixel_mnist()
    x, labels = next(batches.batches("test"))
    assert x.shape == (784, 5, 1)
    images = torch.from_numpy(raw["test"][0][:5]).float() / 255
    assert torch.equal(x[0, :, 0], images[:, 0]) and torch.equal(x[-1, :, 0], images[:, -1])
    assert torch.equal(x[:, :, 0].t(), images)
    assert torch.equal(labels, torch.from_numpy(raw["test"][1][:5]).long())
    assert len(raw["train"][0]) == 55_000 and len(raw["valid"][0]) == 5_000 and len(raw["test"][0]) == 10_000


def test_permuted_mnist_uses_one_permutation_for_every_image_split_and_run(data_root):
    perm = sequences.mnist_permutation()
    assert sorted(perm) == list(range(784)) and not (perm == np.arange(784)).all()
    in_another_process = subprocess.run(
        [sys.executable, "-c", "from lstm_nb import sequences; print(sequences.mnist_permutation().tolist())"],
        capture_output=True, text=True, check=True).stdout
    assert json.loads(in_another_process) == perm.tolist()
    batches = data.build("pmnist", batch_size=6, eval_batch_size=6, fraction=0.01)
    raw = sequences.pixel_mnist()
    for split in ("train", "valid", "test"):
        permuted = torch.from_numpy(raw[split][0][:len(batches.examples[split][0])][:, perm]).float() / 255
        for epoch in (0, 1):
            x, labels = next(batches.batches(split, epoch))
            seen = x[:, :, 0].t()  # (images, steps)
            for row, label in zip(seen, labels):  # find each image by its pixels, whatever the shuffle
                matches = (permuted == row).all(1).nonzero()
                assert len(matches) >= 1 and raw[split][1][matches[0].item()] == label


def test_the_sequence_model_reads_the_last_step_or_every_step():
    torch.manual_seed(0)
    model = models.build_sequence_model(input_size=3, output_size=4, hidden_size=5, cell="ur_lstm")
    x = torch.randn(9, 2, 3)
    out, _ = model(x)
    hidden, _ = model.rnn(x)
    assert torch.allclose(out, model.head(hidden[-1]))
    per_step = models.build_sequence_model(input_size=10, output_size=10, hidden_size=5, per_step=True, one_hot=True)
    symbols = torch.randint(0, 10, (9, 2))
    out, _ = per_step(symbols)
    hidden, _ = per_step.rnn(F.one_hot(symbols, 10).float())
    assert out.shape == (9, 2, 10) and torch.allclose(out, per_step.head(hidden))


def test_sequence_task_options_are_checked_before_anything_is_written():
    for bad, message in [
        ({"data": {"corpus": "copy"}}, "data.length"),
        ({"data": {"corpus": "adding", "length": 1}}, "data.length"),
        ({"data": {"corpus": "copy", "length": 5, "examples": [10, 0, 5]}}, "data.examples"),
        ({"data": {"corpus": "ptb", "length": 5}}, "copy or adding for data.length"),
        ({"data": {"corpus": "mnist", "variable_bptt": True}}, "token stream"),
        ({"data": {"corpus": "mnist"}, "model": {"parameter_budget": 1000}}, "sized by hidden_size"),
        ({"data": {"corpus": "copy", "length": 5}, "ar": 1.0}, "language-model corpus"),
    ]:
        with pytest.raises(ConfigError, match=message):
            make_config(bad)


def tiny_mnist(epochs=3):
    return {"experiment": "tiny_mnist", "model_name": "ur", "epochs": epochs, "clip": 1.0,
            "data": {"corpus": "pmnist", "batch_size": 8, "eval_batch_size": 20, "fraction": 0.004},
            "model": {"cell": "ur_lstm", "hidden_size": 6}, "optimizer": {"name": "Adam", "lr": 3e-3}}


def test_a_classification_run_killed_mid_epoch_resumes_to_identical_metrics(tmp_path):
    from conftest import Training

    training = Training(tmp_path, tiny_mnist())
    training.run("straight")
    training.kill_after("killed", "checkpoint_epoch_1.pt", delay=0.3)  # killed in epoch 2
    folder = training.folder("killed")
    assert not (folder / "metrics_epoch_3.json").exists()
    resumed = training.run("killed")
    assert "resuming" in resumed.stdout
    expected = tmp_path / "straight" / "run" / "tiny_mnist" / "ur"
    for epoch in (1, 2, 3):
        a = json.loads((expected / f"metrics_epoch_{epoch}.json").read_text())
        b = json.loads((folder / f"metrics_epoch_{epoch}.json").read_text())
        keys = ("training_loss", "validation_loss", "validation_accuracy")
        assert {k: a[k] for k in keys} == {k: b[k] for k in keys}, f"epoch {epoch}"
    a, b = (json.loads((f / "metrics.json").read_text()) for f in (expected, folder))
    assert (a["test_loss"], a["test_accuracy"]) == (b["test_loss"], b["test_accuracy"])
    assert 0 <= a["test_accuracy"] <= 1 and a["best_validation_accuracy"] is not None


def tiny_adding(epochs=3, sequences_per_epoch=40):
    return {"experiment": "tiny_adding", "model_name": "ur-seed1", "epochs": epochs, "clip": 1.0,
            "data": {"corpus": "adding", "length": 12, "batch_size": 8, "eval_batch_size": 32,
                     "examples": [sequences_per_epoch, 32, 32], "redraw_train": True},
            "model": {"cell": "ur_lstm", "hidden_size": 6}, "optimizer": {"name": "AdamW", "lr": 3e-3, "weight_decay": 0.0}}


def test_a_redrawn_adding_run_killed_mid_epoch_resumes_to_identical_metrics(tmp_path):
    from conftest import Training

    training = Training(tmp_path, tiny_adding(sequences_per_epoch=1600))
    training.run("straight")
    training.kill_after("killed", "checkpoint_epoch_1.pt", delay=0.1)  # killed in epoch 2
    folder = training.folder("killed")
    assert not (folder / "metrics_epoch_3.json").exists()
    training.run("killed")
    expected = training.folder("straight")
    for epoch in (1, 2, 3):
        a, b = (json.loads((f / f"metrics_epoch_{epoch}.json").read_text()) for f in (expected, folder))
        keys = ("training_loss", "validation_mse", "validation_baseline_fraction", "updates")
        assert {k: a[k] for k in keys} == {k: b[k] for k in keys}, f"epoch {epoch}"
        assert a["updates"] == 200 * epoch  # 1,600 sequences in batches of 8, every epoch


def test_a_memory_run_reports_its_updates_to_solve(home, monkeypatch):
    from lstm_nb import results

    train.train(tiny_adding(epochs=2))
    row = results.seeded_runs("tiny_adding")[0]
    assert (row["row"], row["seed"]) == ("ur", 1)
    assert row["updates_to_solve"] == 10 and row["solved_in_training"] is False  # a tiny model never solves it
    assert row["solved"] is False
    monkeypatch.setattr(results, "SOLVED_FRACTION", 100.0)  # now every epoch counts as solved
    row = results.seeded_runs("tiny_adding")[0]
    assert row["updates_to_solve"] == 5 and row["solved_in_training"] and row["solved"]


def test_a_sequence_run_reports_its_task_metrics(home):
    summary = train.train({"experiment": "tiny_copy", "model_name": "lstm", "epochs": 1,
                           "data": {"corpus": "copy", "length": 5, "examples": [32, 16, 16], "batch_size": 8},
                           "model": {"cell": "lstm", "hidden_size": 8}})
    for key in ("test_loss", "test_recall_loss", "test_accuracy", "best_validation_accuracy"):
        assert key in summary
    described = json.loads((home / "run" / "tiny_copy" / "lstm" / "config.json").read_text())
    assert described["model_inputs"] == {"input_size": 10, "output_size": 10, "per_step": True, "one_hot": True}
    model = finished.load_model(home / "run" / "tiny_copy" / "lstm")
    batches = data.build(**make_config(described["config"])["data"])
    assert loop.evaluation(model, batches, "test", "cpu")["accuracy"] == pytest.approx(summary["test_accuracy"])


