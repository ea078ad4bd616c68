"""MC-dropout evaluation: a direct loop over its equation, the arithmetic (not geometric) mean of
probabilities, multiplier 0 = deterministic evaluation, rates and random state restored, cached."""

import json
import math

import pytest
import torch

from lstm_nb import mc_dropout, models, results, train
from lstm_nb.data import StreamBatches, Vocabulary

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
    assert estimate == pytest.approx(train.evaluate(model, data, "test", "cpu"), rel=1e-6)
    assert torch.equal(torch.get_rng_state(), rng) and not model.training
    assert rates == {(name, attr): getattr(m, attr) for name, m in model.named_modules() for attr in mc_dropout.RATES
                     if isinstance(getattr(m, attr, None), float)}


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
    assert chosen["test"]["options"] == {"split": "test", "samples": 2, "multiplier": chosen["multiplier"], "seed": 0}
    table = results.summaries("mc", run_root=home / "run").set_index("model")
    assert table.loc["gal", "mc_test"] == pytest.approx(chosen["test"]["mc_perplexity"])
    assert table.loc["gal", "mc_multiplier"] == chosen["multiplier"]
