"""Dynamic evaluation adapts to the text it reads, scores each segment before learning from it, and
leaves the trained model untouched."""

import pytest
import torch

from lstm_nb import dyneval, models
from lstm_nb.data import StreamBatches
from lstm_nb.loop import evaluate, train_epoch
from lstm_nb.text import Vocabulary

V = 20


def repeated_pattern_data():
    """Training text: uniform random tokens. Evaluation text: one random 9-token pattern, repeated.
    The pattern is unseen in training, so only a model that adapts can learn to predict it."""
    g = torch.Generator().manual_seed(0)
    train = torch.randint(0, V, (4000,), generator=g)
    pattern = torch.randint(0, V, (9,), generator=g)
    splits = {"train": train, "test": pattern.repeat(60)}
    return StreamBatches(splits, Vocabulary([str(i) for i in range(V)]), batch_size=8, bptt=10, eval_batch_size=1)


@pytest.mark.parametrize("rule,lr", [("sgd", 2.0), ("rms", 3e-3)])
def test_dynamic_evaluation_learns_a_repeated_pattern_unseen_in_training(rule, lr):
    torch.manual_seed(0)
    data = repeated_pattern_data()
    model = models.build(V, embedding_size=16, hidden_size=32, cell="mogrifier", cell_options={"rounds": 2})
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for epoch in (1, 2):
        train_epoch(model, data, optimizer, {"clip": None, "precision": "float32", "ar": 0.0, "tar": 0.0}, epoch, "cpu")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    static = evaluate(model, data, "test", "cpu")
    dynamic = dyneval.dynamic_evaluate(model, data, "test", "cpu", lr=lr, decay=0.0, rule=rule, train_batches=20)
    assert static > 2.5  # ≈ ln 20: the static model cannot predict the pattern
    assert dynamic < static - 1.0, (static, dynamic)
    for k, v in model.state_dict().items():  # the caller's model is not modified
        torch.testing.assert_close(v, before[k], rtol=0, atol=0)


def test_each_segment_is_scored_before_the_model_learns_from_it():
    """With one segment covering the whole text there is nothing to adapt to yet: the score is static."""
    torch.manual_seed(0)
    data = repeated_pattern_data()
    model = models.build(V, embedding_size=16, hidden_size=32)
    static = evaluate(model, data, "test", "cpu")
    whole = dyneval.dynamic_evaluate(model, data, "test", "cpu", lr=0.5, decay=0.0, rule="sgd", segment_length=10_000)
    assert whole == pytest.approx(static, abs=1e-6)


def test_unknown_rule_and_instance_corpora_are_refused():
    model = models.build(V, embedding_size=4, hidden_size=4)
    with pytest.raises(ValueError, match="rule"):
        dyneval.dynamic_evaluate(model, repeated_pattern_data(), "test", "cpu", lr=1, decay=0, rule="adam")
