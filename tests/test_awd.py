"""AWD-LSTM's training components against their rules: AR/TAR, variable BPTT, NT-ASGD, fine-tuning,
the cache pointer, batch-1 test evaluation and the paper preset (Merity, Keskar & Socher 2018;
salesforce/awd-lstm-lm main.py, finetune.py, pointer.py and README)."""

import json
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lstm_nb import data as data_module
from lstm_nb import finished, loop, models, phases, pointer, presets, train
from lstm_nb.config import ConfigError, make_config

LOSS_KEYS = ["training_loss", "validation_loss", "best_validation_loss", "best_epoch", "phase", "averaged_weights"]


def tiny_model(vocab=30, seed=0, **options):
    torch.manual_seed(seed)
    options = {"embedding_size": 8, "hidden_size": 12, "num_layers": 3, "tie_weights": True,
               "cell": "weight_drop_lstm", "cell_options": {"weight_drop": 0.5}, "locked_dropout": True,
               "dropout": 0.4, "inter_layer_dropout": 0.25, "input_dropout": 0.4, "embedding_dropout": 0.1,
               **options}
    return models.build(vocab, **options)


def stream_data(n=400, vocab=30, token_seed=0, **options):
    tokens = torch.from_numpy(np.random.default_rng(token_seed).integers(0, vocab, n))
    splits = {"train": tokens, "valid": tokens[: n // 2], "test": tokens[n // 2:]}
    options = {"batch_size": 4, "bptt": 10, "eval_batch_size": 2, **options}
    return data_module.StreamBatches(splits, list(range(vocab)), **options)


# ------------------------------------------------------------------------------------------------
# AR / TAR


def test_ar_tar_add_the_hand_computed_penalty_with_gradient():
    model, data = tiny_model(), stream_data()
    model.train()
    x, y = next(data.batches("train"))
    params = [p for p in model.parameters()]

    torch.manual_seed(1)
    loss, _, outputs = loop.window_loss(model, data, x, y, None, "cpu", outputs=True)
    step = loop.Step(x, y, None, data, loss=loss, outputs=outputs)
    phases.ActivationRegularization(2.0, 1.0).after_loss(step)  # the callback the loop calls
    penalty = step.penalty
    with_reg = torch.autograd.grad(loss + penalty, params)
    torch.manual_seed(1)  # the same dropout masks
    plain_loss, _, no_outputs = loop.window_loss(model, data, x, y, None, "cpu")
    plain = torch.autograd.grad(plain_loss, params)
    assert no_outputs is None and torch.equal(loss, plain_loss)
    # without AR and TAR in the configuration, the loop gets no such callback
    assert not any(isinstance(c, phases.ActivationRegularization) for c in train.callbacks_for(make_config({}), data))
    assert any(isinstance(c, phases.ActivationRegularization)
               for c in train.callbacks_for(make_config({"ar": 2.0, "tar": 1.0}), data))

    # the penalty by hand: sums over every step, example and unit, divided by their number
    torch.manual_seed(1)
    _, _, raw, dropped = model(x, None, return_outputs=True)
    T, B, E = dropped.shape
    ar = 2.0 * sum(dropped[t, b, e].item() ** 2 for t in range(T) for b in range(B) for e in range(E)) / (T * B * E)
    tar = 1.0 * sum((raw[t, b, e] - raw[t - 1, b, e]).item() ** 2
                    for t in range(1, T) for b in range(B) for e in range(E)) / ((T - 1) * B * E)
    assert penalty.item() == pytest.approx(ar + tar, rel=1e-5)

    # AR and TAR move every recurrent weight's gradient, by the penalty's own gradient
    penalty_grad = torch.autograd.grad(2.0 * dropped.pow(2).mean() + (raw[1:] - raw[:-1]).pow(2).mean(), params,
                                       allow_unused=True)
    named = dict(zip([n for n, _ in model.named_parameters()], zip(with_reg, plain, penalty_grad)))
    for name, (g_reg, g_plain, g_pen) in named.items():
        if name.startswith("layers."):
            assert not torch.allclose(g_reg, g_plain), name
            torch.testing.assert_close(g_reg - g_plain, g_pen, rtol=1e-4, atol=1e-6)


def test_detached_ar_tar_as_the_reimplementation_computed_them_add_no_gradient():
    """a-martyn/awd-lstm took AR/TAR on `output.detach()`: a constant, no gradient (its 91 perplexity)."""
    model, data = tiny_model(), stream_data()
    x, _ = next(data.batches("train"))
    _, _, raw, dropped = model(x, None, return_outputs=True)
    detached = phases.activation_regularization(raw.detach(), dropped.detach(), 2.0, 1.0)
    assert not detached.requires_grad
    assert phases.activation_regularization(raw, dropped, 2.0, 1.0).requires_grad


# ------------------------------------------------------------------------------------------------
# Variable-length BPTT


def main_py_lengths(seed, epoch, bptt, n):
    """main.py's draw, transcribed: bptt w.p. 0.95 else bptt/2, then max(5, int(N(base, 5)))."""
    rng, lengths = np.random.default_rng([seed, epoch]), []
    while sum(lengths) < n:
        base = bptt if rng.random() < 0.95 else bptt / 2.0
        lengths.append(max(5, int(rng.normal(base, 5))))
    lengths[-1] -= sum(lengths) - n
    return lengths


def test_variable_bptt_windows_follow_the_rule_and_tile_the_stream():
    data = stream_data(n=40_000, batch_size=4, bptt=70, variable_bptt=True, seed=3)
    stream = data.streams["train"]
    windows = list(data.batches("train", epoch=2))
    lengths = [len(x) for x, _ in windows]
    assert lengths == main_py_lengths(3, 2, 70, stream.shape[0] - 1)
    assert torch.equal(torch.cat([x for x, _ in windows]), stream[:-1])  # contiguous, nothing skipped
    assert all(torch.equal(x[1:], y[:-1]) for x, y in windows)
    assert min(lengths[:-1]) >= 5
    half = sum(length < 52 for length in lengths[:-1]) / (len(lengths) - 1)  # the N(35, 5) draws
    assert 0.02 < half < 0.09
    assert lengths != [len(x) for x, _ in data.batches("train", epoch=3)]  # boundaries move between epochs
    assert lengths == [len(x) for x, _ in data.batches("train", epoch=2)]  # and are the same on a resume
    capped = [len(x) for x, _ in data.batches("train", epoch=2, max_length=80)]
    assert max(capped) <= 80 and max(lengths) > 80
    assert {len(x) for x, _ in data.batches("valid")} <= {70, (data.streams["valid"].shape[0] - 1) % 70}


class RecordingSGD(torch.optim.SGD):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.seen = []

    def step(self, closure=None):
        self.seen.append(self.param_groups[0]["lr"])
        return super().step(closure)


@pytest.mark.parametrize("rule", ["actual", "drawn"])
def test_learning_rate_is_rescaled_by_the_window_length_and_restored(rule):
    """Every window's lr is lr × length / bptt. The epoch's last window is clipped by the end of the
    stream: "drawn" (main.py's rule) scales it by the length drawn for it, "actual" by its own steps."""
    data = stream_data(n=3000, bptt=20, variable_bptt=True)
    data.last_window_lr = rule
    model = tiny_model()
    optimizer = RecordingSGD(model.parameters(), lr=30.0)
    cfg = make_config({"ar": 2.0, "tar": 1.0})
    loop.train_epoch(model, data, optimizer, cfg, 1, "cpu", callbacks=train.callbacks_for(cfg, data))
    lengths = [len(x) for x, _ in data.batches("train", 1)]
    drawn = main_py_lengths(data.seed, 1, 20, 10 ** 6)[:len(lengths)]  # the same draws, the stream unclipped
    assert lengths[:-1] == drawn[:-1] and lengths[-1] < drawn[-1]  # only the last window is clipped
    expected = lengths[:-1] + [drawn[-1] if rule == "drawn" else lengths[-1]]
    assert optimizer.seen == pytest.approx([30.0 * n / 20 for n in expected])
    assert len(set(optimizer.seen)) > 3
    assert optimizer.param_groups[0]["lr"] == 30.0


# ------------------------------------------------------------------------------------------------
# NT-ASGD and fine-tuning


def test_nonmono_trigger_fires_exactly_when_main_py_would():
    losses = [5.0, 4.0, 3.0, 3.5, 3.2, 3.1, 3.05, 2.9, 3.01, 2.0]
    # by hand, n = 5: epoch k (from 0) fires when k > 5 and losses[k] > min(losses[:k - 5]):
    # k=6: 3.05 > 5.0 no; k=7: 2.9 > min(5, 4) no; k=8: 3.01 > min(5, 4, 3) = 3.0 yes
    fired = [phases.nonmono_triggered(losses[:k], losses[k], 5) for k in range(len(losses))]
    assert fired == [False] * 8 + [True, False]
    # the callback's bookkeeping: the switch after epoch 9, once; the logs stop growing after it
    nt_asgd = phases.NTASGD(5, {"name": "SGD", "lr": 30.0})
    run = SimpleNamespace(state=loop.LoopState({}), model=torch.nn.Linear(2, 1), optimizer=None)
    switched = []
    for epoch, loss in enumerate(losses, 1):
        run.state.epoch, run.validation, run.notes = epoch, {"loss": loss}, []
        nt_asgd.after_validation(run)
        switched.append(run.notes == ["switching to ASGD"])
    assert switched == [False] * 8 + [True, False]
    assert nt_asgd.state.switched_after_epoch == 9 and nt_asgd.state.logs == losses[:9]
    assert isinstance(run.optimizer, torch.optim.ASGD)
    # fine-tuning stops on the same rule
    finetune = phases.FineTune(50, 5, {"name": "SGD", "lr": 30.0})
    finetune.state = phases.FineTuneState(start_epoch=0)
    run.state.phase = "finetune"
    for epoch, loss in enumerate(losses, 1):
        run.state.epoch, run.validation = epoch, {"loss": loss}
        finetune.after_validation(run)
        if finetune.phase_over(run):
            break
    assert epoch == 9


def test_averaged_weights_are_the_mean_of_the_iterates_since_the_switch():
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    optimizer = phases.averaging_sgd(model, {"lr": 0.1, "weight_decay": 1e-3})
    iterates = []
    for _ in range(5):
        optimizer.zero_grad()
        model(torch.randn(4, 3)).pow(2).mean().backward()
        optimizer.step()
        iterates.append([p.detach().clone() for p in model.parameters()])
    raw = [p.detach().clone() for p in model.parameters()]
    with phases.averaged_weights(model, optimizer) as averaged:
        assert averaged
        # torch.optim.ASGD with t0 = 0 (as the official code builds it): the mean of iterates 2..k;
        # its mu is 1 for the first two steps, so the first iterate after the switch is overwritten
        for k, p in enumerate(model.parameters()):
            torch.testing.assert_close(p, torch.stack([it[k] for it in iterates[1:]]).mean(0))
    assert all(torch.equal(p, r) for p, r in zip(model.parameters(), raw))  # raw weights back
    sgd = torch.optim.SGD(model.parameters(), lr=0.1)
    with phases.averaged_weights(model, sgd) as averaged:
        assert not averaged


def tiny_awd(epochs=6, **changes):
    cfg = presets.awd_lstm.awd_lstm("ptb", emsize=16, nhid=24, epochs=epochs, batch_size=8, bptt=12,
                                    eval_batch_size=4, test_batch_size=1, nonmono=1, finetune_epochs=4,
                                    data={"fraction": 0.004})
    cfg.update(experiment="tiny_awd", model_name="awd", seed=5, keep_last=2, **changes)
    return cfg


def test_phases_switch_to_averaging_then_finetune_and_report_both(home):
    summary = train.train(tiny_awd())
    folder = home / "run" / "tiny_awd" / "awd"
    history = [json.loads((folder / f"metrics_epoch_{e}.json").read_text()) for e in
               range(1, summary["epochs_trained"] + 1)]
    kinds = [m["phase"] for m in history]
    switch = summary["switched_to_asgd_after_epoch"]
    assert switch is not None, kinds
    assert kinds[:switch] == ["sgd"] * switch and kinds[switch:6] == ["asgd"] * (6 - switch)
    assert kinds[6:] == ["finetune"] * summary["finetune_epochs"] and 1 <= summary["finetune_epochs"] <= 4
    assert all(m["averaged_weights"] for m in history[switch:])
    assert summary["before_finetune_best_validation_loss"] == min(m["validation_loss"] for m in history[:6])
    assert summary["best_validation_loss"] == min(m["validation_loss"] for m in history)
    # best.pt holds the averaged weights that were validated: re-evaluating it gives that loss
    described = json.loads((folder / "config.json").read_text())
    data = data_module.build(**make_config(described["config"])["data"])
    model = finished.load_model(folder)
    assert loop.evaluate(model, data, "valid", "cpu") == pytest.approx(summary["best_validation_loss"], rel=1e-6)
    assert data.streams["test"].shape[1] == 1  # tested with one stream, as the official code does
    assert loop.evaluate(model, data, "test", "cpu") == pytest.approx(summary["test_loss"], rel=1e-6)
    # a deleted best.pt is rebuilt from the best epoch's checkpoint: its averaged weights, not the raw ones
    (folder / "best.pt").unlink()
    (folder / "metrics.json").unlink()
    assert train.train(tiny_awd()) == summary
    model = finished.load_model(folder)
    assert loop.evaluate(model, data, "valid", "cpu") == pytest.approx(summary["best_validation_loss"], rel=1e-6)


def test_sigkill_in_the_averaging_phase_and_in_finetuning_resumes_to_identical_metrics(tmp_path):
    from conftest import Training

    training = Training(tmp_path, tiny_awd(epochs=6))
    training.run("straight")
    expected, folder = training.folder("straight"), training.folder("killed")
    summary = json.loads((expected / "metrics.json").read_text())
    switch, total = summary["switched_to_asgd_after_epoch"], summary["epochs_trained"]
    assert switch is not None and switch + 1 < 6 and total >= 8, summary
    training.kill_after("killed", f"checkpoint_epoch_{switch + 1}.pt")  # killed while averaging
    training.kill_after("killed", "checkpoint_epoch_7.pt")  # killed in fine-tuning's second epoch
    assert "resuming" in training.run("killed").stdout
    for epoch in range(1, total + 1):
        a = json.loads((expected / f"metrics_epoch_{epoch}.json").read_text())
        b = json.loads((folder / f"metrics_epoch_{epoch}.json").read_text())
        assert {k: a[k] for k in LOSS_KEYS} == {k: b[k] for k in LOSS_KEYS}, f"epoch {epoch}"
    again = json.loads((folder / "metrics.json").read_text())
    for key in ("test_loss", "before_finetune_test_loss", "best_validation_loss", "epochs_trained"):
        assert again[key] == summary[key], key


def test_sigkill_during_the_anchors_one_epoch_resumes_to_identical_metrics(tmp_path):
    """The anchor is a single epoch, so a kill inside it loses the epoch: the rerun starts it again from
    the run's recorded seed and reaches the same numbers as a run never killed."""
    from conftest import Training

    anchor = presets.get("awd_lstm", "smoke")["anchor"]
    anchor["data"]["fraction"] = 0.15  # an epoch of a few seconds, long enough to be killed inside
    anchor.update(experiment="anchor", model_name="salesforce_ptb")
    training = Training(tmp_path, anchor)
    training.run("straight")
    training.kill_after("killed", "config.json", delay=1.0)  # config.json is written before the epoch starts
    assert not (training.folder("killed") / "checkpoint_epoch_1.pt").exists(), "the epoch ended before the kill"
    training.run("killed")
    expected, folder = training.folder("straight"), training.folder("killed")
    a, b = (json.loads((f / "metrics_epoch_1.json").read_text()) for f in (expected, folder))
    assert {k: a[k] for k in LOSS_KEYS} == {k: b[k] for k in LOSS_KEYS}
    assert json.loads((expected / "metrics.json").read_text())["test_loss"] == json.loads(
        (folder / "metrics.json").read_text())["test_loss"]


def test_phase_options_are_checked_before_anything_is_written():
    for bad, message in [
        ({"nt_asgd": {"nonmono": 5}}, "SGD for nt_asgd"),
        ({"optimizer": {"name": "SGD", "lr": 1.0}, "nt_asgd": {"nonmono": 0}}, "nt_asgd must be"),
        ({"optimizer": {"name": "SGD", "lr": 1.0}, "finetune": {"epochs": 3}}, "finetune must be"),
        ({"optimizer": {"name": "SGD", "lr": 1.0}, "nt_asgd": {"nonmono": 5},
          "scheduler": {"name": "StepLR", "step_size": 1}}, "scheduler must be None"),
        ({"ar": -1.0}, "ar must be"),
        ({"tar": 1.0, "model": {"architecture": "transformer"}}, "'rnn' for ar and tar"),
        ({"data": {"corpus": "brown", "variable_bptt": True}}, "a token stream"),
        ({"data": {"test_batch_size": 0}}, "data.test_batch_size"),
    ]:
        with pytest.raises(ConfigError, match=message):
            make_config(bad)


# ------------------------------------------------------------------------------------------------
# The cache pointer


def direct_cache_loss(model, tokens, theta, lambdah, window):
    """pointer.py's loop, one prediction at a time over the full vocabulary."""
    model.eval()
    with torch.no_grad():
        logits, _, raw, _ = model(tokens[:-1].view(-1, 1), None, return_outputs=True)
    h, p_vocab, targets = raw[:, 0], F.softmax(logits[:, 0], -1), tokens[1:]
    total = 0.0
    for t in range(len(targets)):
        p = p_vocab[t]
        if t > window:  # more than `window` (h_i, w_{i+1}) pairs read
            attention = F.softmax(theta * torch.stack([h[t] @ h[i] for i in range(t - window, t)]), 0)
            p_ptr = torch.zeros_like(p)
            for a, i in zip(attention, range(t - window, t)):
                p_ptr[targets[i]] += a
            p = lambdah * p_ptr + (1 - lambdah) * p
        total += -math.log(p[targets[t]].item())
    return total / len(targets)


@pytest.mark.parametrize("segment_length", [3, 7, 40])
def test_cache_pointer_equals_a_direct_loop_over_its_equation(segment_length):
    model = tiny_model(vocab=12)
    tokens = torch.from_numpy(np.random.default_rng(1).integers(0, 12, 90))
    fast = pointer.cache_loss(model, tokens, "cpu", theta=0.8, lambdah=0.3, window=15, segment_length=segment_length)
    assert fast == pytest.approx(direct_cache_loss(model, tokens, 0.8, 0.3, 15), rel=1e-5)
    plain = pointer.cache_loss(model, tokens, "cpu", theta=0.8, lambdah=0.0, window=15, segment_length=segment_length)
    assert abs(fast - plain) > 1e-3  # the cache took part


def test_cache_pointer_with_lambda_zero_is_plain_batch_one_evaluation():
    data = stream_data(n=301, vocab=30, test_batch_size=1)
    model = tiny_model()
    plain = loop.evaluate(model, data, "test", "cpu")
    assert pointer.cache_loss(model, data.tokens["test"], "cpu", 1.0, 0.0, 20, 10) == pytest.approx(plain, rel=1e-6)


# ------------------------------------------------------------------------------------------------
# The paper preset


def test_paper_preset_is_the_readme_commands_value_by_value():
    # salesforce/awd-lstm-lm README: main.py --batch_size 20 --data data/penn --dropouti 0.4 --dropouth 0.25
    # --seed 141 --epoch 500, and main.py's defaults for the rest
    ptb = presets.get("awd_lstm", "paper")["ptb"]
    readme_ptb = {"nlayers": 3, "emsize": 400, "nhid": 1150, "lr": 30, "clip": 0.25, "epochs": 500,
                  "batch_size": 20, "bptt": 70, "dropout": 0.4, "dropouth": 0.25, "dropouti": 0.4,
                  "dropoute": 0.1, "wdrop": 0.5, "seed": 141, "alpha": 2, "beta": 1, "wdecay": 1.2e-6,
                  "nonmono": 5, "tied": True, "eval_batch_size": 10, "test_batch_size": 1}
    # WT2: main.py --epochs 750 --data data/wikitext-2 --dropouth 0.2 --seed 1882 (batch 80, dropouti 0.65)
    readme_wt2 = {**readme_ptb, "epochs": 750, "batch_size": 80, "dropouti": 0.65, "dropouth": 0.2, "seed": 1882}
    for cfg, readme, corpus in ((ptb, readme_ptb, "ptb"),
                                (presets.get("awd_lstm", "paper")["wikitext-2"], readme_wt2, "wikitext-2")):
        model, data = cfg["model"], cfg["data"]
        ours = {"nlayers": model["num_layers"], "emsize": model["embedding_size"], "nhid": model["hidden_size"],
                "lr": cfg["optimizer"]["lr"], "clip": cfg["clip"], "epochs": cfg["epochs"],
                "batch_size": data["batch_size"], "bptt": data["bptt"], "dropout": model["dropout"],
                "dropouth": model["inter_layer_dropout"], "dropouti": model["input_dropout"],
                "dropoute": model["embedding_dropout"], "wdrop": model["cell_options"]["weight_drop"],
                "seed": cfg["seed"], "alpha": cfg["ar"], "beta": cfg["tar"],
                "wdecay": cfg["optimizer"]["weight_decay"], "nonmono": cfg["nt_asgd"]["nonmono"],
                "tied": model["tie_weights"], "eval_batch_size": data["eval_batch_size"],
                "test_batch_size": data["test_batch_size"]}
        assert ours == readme
        assert data["corpus"] == corpus and data["variable_bptt"] and cfg["optimizer"]["name"] == "SGD"
        assert data["last_window_lr"] == "drawn"  # main.py's rule: the paper's numbers come from it
        assert cfg["finetune"] == {"epochs": readme["epochs"], "nonmono": 5}  # finetune.py, same arguments
        make_config(cfg)
    # the model sizes the shapes give (24M on PTB's 10,000 words, 33M on WikiText-2's 33,278)
    with torch.device("meta"):
        assert models.count_parameters(models.build(10_000, **ptb["model"])) == 24_221_600
        wt2 = presets.get("awd_lstm", "paper")["wikitext-2"]["model"]
        assert models.count_parameters(models.build(33_278, **wt2)) == 33_556_078
    assert presets.get("awd_lstm", "paper")["pointer"] == {
        "ptb": {"theta": 1.0, "lambdah": 0.1, "window": 500},
        "wikitext-2": {"theta": 0.662, "lambdah": 0.1279, "window": 3785}}


def test_the_anchor_is_the_readme_ptb_command_for_one_epoch():
    anchor = presets.get("awd_lstm", "cpu")["anchor"]
    paper = presets.get("awd_lstm", "paper")["ptb"]
    assert anchor["epochs"] == 1 and anchor["finetune"] is None and anchor["data"]["last_window_lr"] == "drawn"
    assert anchor["data"]["test_batch_size"] is None  # its test number is not compared: batch 10, not 1
    same = {k: v for k, v in anchor.items() if k not in ("epochs", "finetune", "data")}
    assert same == {k: v for k, v in paper.items() if k not in ("epochs", "finetune", "data")}
    assert {k: v for k, v in anchor["data"].items() if k != "test_batch_size"} == {
        k: v for k, v in paper["data"].items() if k != "test_batch_size"}
    (anchor_check,) = presets.claims("awd_lstm", "cpu")[1]
    assert (anchor_check.published, anchor_check.metric, anchor_check.row) == (308.03, "validation", "salesforce_ptb")


def test_claims_that_rest_on_averaging_require_the_switch_and_untrained_rows_are_not_testable():
    declared = {c.name: c for c in presets.claims("awd_lstm", "cpu")[0]}
    trained = set(presets.get("awd_lstm", "cpu")["rows"])
    for name, claim in declared.items():
        if claim.family == "ablation":
            assert claim.requires == "asgd_switched"
            assert (claim.not_testable is None) == (claim.variant in trained), name
    assert declared["no_nt_asgd"].not_testable is None and declared["no_weight_drop"].not_testable is None


def test_each_ablation_row_removes_one_component():
    rows = presets.awd_lstm.ablations(presets.get("awd_lstm", "cpu")["ptb"])
    full = rows.pop("awd_lstm")
    assert full["finetune"] is not None
    for name, cfg in rows.items():
        assert cfg["finetune"] is None
        changed = {k for k in full if k != "finetune" and cfg[k] != full[k]}
        assert len(changed - {"tar"}) == 1, (name, changed)  # AR/TAR is one row
        make_config(cfg)


def test_every_preset_trains_either_corpus_over_its_seeds_beside_the_anchor_and_refuses_another():
    for preset in presets.names("awd_lstm"):
        setup = presets.get("awd_lstm", preset)
        for corpus in ("ptb", "wikitext-2"):
            sections = presets.training_configs("awd_lstm", preset, corpus=corpus)
            assert list(sections) == [f"awd_lstm-anchor-{preset}", f"awd_lstm-{corpus}-{preset}"]
            runs = sections[f"awd_lstm-{corpus}-{preset}"]
            assert len(runs) == len(setup["rows"]) * setup["seeds"]
            assert all(make_config(cfg)["data"]["corpus"] == corpus for cfg in runs.values())
            first = setup[corpus]["seed"]  # the README command's seed, then the next ones
            assert {cfg["seed"] for cfg in runs.values()} == set(range(first, first + setup["seeds"]))
    cpu = presets.get("awd_lstm", "cpu")
    assert cpu["seeds"] >= 3 and cpu["ptb"]["data"]["last_window_lr"] == "actual"
    with pytest.raises(ValueError, match="'ptb' or 'wikitext-2'"):
        presets.training_configs("awd_lstm", "smoke", corpus="ptb-char")
