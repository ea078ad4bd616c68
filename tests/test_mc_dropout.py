"""MC-dropout evaluation: a direct loop over its equation, the arithmetic (not geometric) mean of
probabilities, multiplier 0 = deterministic evaluation, rates and random state restored, cached."""

import json
import math

import pytest
import torch

from lstm_nb import loop, mc_dropout, models, results, train
from lstm_nb.data import StreamBatches
from lstm_nb.text import Vocabulary

V = 30


def setup(seed=0):
    torch.manual_seed(seed)
    tokens = torch.randint(0, V, (600,))
    data = StreamBatches({"train": tokens, "test": tokens[:200]}, Vocabulary([str(i) for i in range(V)]),
                         batch_size=4, bptt=10, eval_batch_size=2)
    model = models.build(V, embedding_size=12, hidden_size=12, num_layers=2, cell="gal_lstm", dropout=0.5,
                         inter_layer_dropout=0.3, cell_options={"input_dropout": 0.3, "recurrent_dropout": 0.4})
    return model, data


def passes_by_hand(model, data, samples, seed):
    """p_k(token) of every pass, computed directly: training mode, state carried, seeded as mc_evaluate."""
    torch.manual_seed(seed)
    model.train()
    out = []
    with torch.no_grad():
        for _ in range(samples):
            state, probs = None, []
            for x, y in data.batches("test"):
                logits, state = model(x, state)
                probs.append(torch.softmax(logits.double(), -1).gather(-1, y.unsqueeze(-1)).reshape(-1))
            out.append(torch.cat(probs))
    model.eval()
    return torch.stack(out)


def test_mc_estimate_is_the_log_of_the_mean_probability_and_not_the_mean_log():
    model, data = setup()
    with torch.no_grad():  # sharp predictions, so that the passes' probabilities differ and so do the two means
        model.decoder.weight.mul_(30)
    p = passes_by_hand(model, data, samples=6, seed=3)
    arithmetic = -p.mean(0).log().mean().item()  # Gal's estimate: average the probabilities, then the log
    geometric = -p.log().mean().item()  # the average of log-probabilities
    estimate = mc_dropout.mc_evaluate(model, data, "test", "cpu", samples=6, multiplier=1.0, seed=3)
    assert estimate == pytest.approx(arithmetic, rel=1e-9)
    assert geometric - estimate > 0.1  # the two differ here (Jensen), and the estimate is the arithmetic one


def test_multiplier_zero_is_deterministic_evaluation_and_everything_is_restored():
    model, data = setup()
    model.eval()
    rates = {(name, attr): getattr(m, attr) for name, m in model.named_modules() for attr in mc_dropout.RATES
             if isinstance(getattr(m, attr, None), float)}
    assert len(rates) >= 5  # the model's four rates and the cells' own are all found
    rng = torch.get_rng_state()
    estimate = mc_dropout.mc_evaluate(model, data, "test", "cpu", samples=3, multiplier=0.0)
    assert estimate == pytest.approx(loop.evaluate(model, data, "test", "cpu"), rel=1e-6)
    assert torch.equal(torch.get_rng_state(), rng) and not model.training
    assert rates == {(name, attr): getattr(m, attr) for name, m in model.named_modules() for attr in mc_dropout.RATES
                     if isinstance(getattr(m, attr, None), float)}


def test_word_dropout_is_off_during_mc_unless_asked_and_restored_after():
    model, _ = setup()
    model.embedding_dropout = 0.4
    with mc_dropout.stochastic(model, 1.0):
        assert model.embedding_dropout == 0.0 and model.dropout == 0.5  # Gal: word types kept, the rest sampled
    with mc_dropout.stochastic(model, 0.5, word_dropout=True):
        assert model.embedding_dropout == pytest.approx(0.2)
    assert model.embedding_dropout == 0.4


def test_columns_are_independent_samples_and_the_curve_ends_at_the_estimate():
    """C columns of one pass are C samples: each column carries its own state and masks, so the estimate
    from 2 passes of 3 columns equals the direct formula over those 6 samples, computed by hand."""
    model, data = setup()
    torch.manual_seed(5)
    model.train()
    with torch.no_grad():
        state, columns = None, []
        for x, y in data.batches("test"):
            logits, state = model(x.repeat_interleave(3, 1), state)
            columns.append(torch.softmax(logits.double(), -1).gather(-1, y.repeat_interleave(3, 1).unsqueeze(-1))
                           .reshape(x.shape[0] * x.shape[1], 3))
        first = torch.cat(columns)
    model.eval()
    assert not torch.allclose(first[:, 0], first[:, 1])  # different masks in different columns
    loss, curve = mc_dropout.mc_evaluate(model, data, "test", "cpu", samples=6, seed=5, columns=3, curve=True)
    assert sorted(curve) == [1, 2, 3, 6] and curve[6] == loss
    assert curve[1] == pytest.approx(-first[:, 0].log().mean().item(), rel=1e-6)  # float32 logits
    assert curve[3] == pytest.approx(-first.mean(1).log().mean().item(), rel=1e-6)
    with pytest.raises(ValueError, match="multiple of columns"):
        mc_dropout.mc_evaluate(model, data, "test", "cpu", samples=4, columns=3)


def test_rates_scaled_to_one_or_more_are_refused():
    model, data = setup()
    with pytest.raises(ValueError, match="dropout rates must stay below 1: dropout 0.5 × 2.0"):
        mc_dropout.mc_evaluate(model, data, "test", "cpu", samples=1, multiplier=2.0)


def test_results_are_cached_in_the_run_folder_and_tuned_on_validation(home):
    cfg = {"experiment": "mc", "model_name": "gal", "epochs": 1,
           "data": {"corpus": "ptb", "batch_size": 8, "bptt": 20, "eval_batch_size": 4, "fraction": 0.01},
           "model": {"embedding_size": 16, "hidden_size": 16, "cell": "gal_lstm", "dropout": 0.3}}
    train.train(cfg)
    folder = home / "run" / "mc" / "gal"
    first = mc_dropout.evaluate_run(folder, "valid", samples=2, multiplier=0.5)
    assert mc_dropout.evaluate_run(folder, "valid", samples=2, multiplier=0.5) == first
    assert len(json.loads((folder / "mc_dropout.json").read_text())) == 1
    assert first["mc_perplexity"] == pytest.approx(math.exp(first["mc_loss"]))
    chosen = mc_dropout.tune_and_test(folder, multipliers=[0.0, 0.5], samples=2)
    losses = {r["options"]["multiplier"]: r["mc_loss"] for r in json.loads((folder / "mc_dropout.json").read_text())
              if r["options"]["split"] == "valid"}
    assert chosen["multiplier"] == min(losses, key=losses.get)
    assert chosen["test"]["options"] == {"split": "test", "samples": 2, "multiplier": chosen["multiplier"], "seed": 0,
                                         "columns": 1, "word_dropout": False}
    assert set(chosen["test"]["curve"]) == {"1", "2"}  # the estimate after each sample
    table = results.summaries("mc", run_root=home / "run").set_index("model")
    assert table.loc["gal", "mc_test"] == pytest.approx(chosen["test"]["mc_perplexity"])
    assert table.loc["gal", "mc_multiplier"] == chosen["multiplier"]
    last_epoch = json.loads((folder / "metrics_epoch_1.json").read_text())
    assert table.loc["gal", "training"] == pytest.approx(last_epoch["training_perplexity"])
    rows = results.over_seeds("mc", run_root=home / "run")  # one run, so one row, its own numbers
    assert rows.loc["gal", "seeds"] == 1 and rows.loc["gal", "validation"] == table.loc["gal", "validation"]
