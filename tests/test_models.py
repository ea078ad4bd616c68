"""The language models: any registered cell drops in; the Transformer baseline is causal."""

import pytest
import torch

from lstm_nb import cells, models

CELL_OPTIONS = {"chrono_lstm": {"t_max": 10}, "mogrifier": {"rounds": 5, "rank": 3}}


@pytest.mark.parametrize("cell", cells.available())
def test_every_cell_drops_into_the_language_model_and_carries_state(cell):
    torch.manual_seed(0)
    model = models.build(50, embedding_size=8, hidden_size=8, num_layers=2, cell=cell,
                         cell_options=CELL_OPTIONS.get(cell, {}), tie_weights=True, sum_layer_outputs=True)
    tokens = torch.randint(0, 50, (12, 3))
    logits, state = model(tokens[:6])
    logits2, _ = model(tokens[6:], models.detach_state(state))
    assert logits.shape == logits2.shape == (6, 3, 50)
    (logits.sum() + logits2.sum()).backward()
    assert model.decoder.weight is model.embedding.weight
    model.eval()
    whole, _ = model(tokens)
    first, state = model(tokens[:6])
    second, _ = model(tokens[6:], state)
    torch.testing.assert_close(torch.cat([first, second]), whole, rtol=1e-5, atol=1e-5)  # state carried exactly


def test_transformer_is_causal_and_ties_weights():
    torch.manual_seed(0)
    model = models.build(30, architecture="transformer", embedding_size=16, hidden_size=32, num_layers=2,
                         num_heads=2, dropout=0.0).eval()
    tokens = torch.randint(0, 30, (10, 2))
    changed = tokens.clone()
    changed[6:] = (changed[6:] + 1) % 30
    a, state = model(tokens)
    b, _ = model(changed)
    assert state is None
    torch.testing.assert_close(a[:6], b[:6])  # positions before the change do not see it
    assert not torch.allclose(a[6:], b[6:])
    assert model.decoder.weight is model.embedding.weight


def test_locked_dropout_in_the_model_is_fixed_over_time():
    torch.manual_seed(0)
    model = models.build(20, embedding_size=6, hidden_size=6, input_dropout=0.5, locked_dropout=True)
    seen = {}
    model.layers[0].register_forward_pre_hook(lambda m, args: seen.setdefault("x", args[0]))
    model(torch.full((5, 4), 3))  # the same token everywhere: the embedding is identical at every step
    x = seen["x"]
    assert bool((x == x[:1]).all()) and (x == 0).any()


def test_parameter_budget_picks_the_largest_hidden_size_that_fits():
    options = {"num_layers": 2, "cell": "mogrifier", "cell_options": {"rounds": 5, "rank": 3},
               "tie_weights": True, "sum_layer_outputs": True}
    budget = 40_000
    model = models.build(100, parameter_budget=budget, **options)
    h = model.embedding.embedding_dim
    assert models.count_parameters(model) <= budget
    bigger = models.build(100, embedding_size=h + 1, hidden_size=h + 1, **options)
    assert models.count_parameters(bigger) > budget
    with pytest.raises(ValueError, match="not both"):
        models.build(100, parameter_budget=budget, hidden_size=8, **options)
    with pytest.raises(ValueError, match="fits a budget"):
        models.build(100, parameter_budget=10, **options)


def test_init_range_draws_every_parameter_uniformly_as_zaremba():
    torch.manual_seed(0)
    model = models.build(50, embedding_size=40, hidden_size=40, num_layers=2, cell="nn.LSTM", init_range=0.1)
    for name, p in model.named_parameters():
        assert float(p.detach().abs().max()) <= 0.1, name
        assert float(p.detach().abs().max()) > 0.09, name  # spread over the whole range: biases and decoder bias too
        assert abs(float(p.detach().mean())) < 0.02, name
