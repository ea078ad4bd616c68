"""Each task's objective against a direct computation, and the memoryless baselines it scores."""

import math

import pytest
import torch
import torch.nn.functional as F

from lstm_nb import data, objectives, sequences


def test_the_memoryless_answer_scores_the_stated_baseline():
    """Blank with certainty until the recall, then uniform over the 8 data symbols: the best answer
    that ignores the input, scored by the task's own objective on a generated batch."""
    delay = 30
    batches = data.build("copy", batch_size=16, eval_batch_size=16, length=delay, examples=[16, 16, 16])
    _, y = next(batches.batches("test"))
    steps, batch = y.shape
    log_probs = torch.full((steps, batch, sequences.COPY_SYMBOLS), -math.inf)
    log_probs[:-10, :, 0] = 0.0
    log_probs[-10:, :, 1:9] = -math.log(8)
    stats = batches.objective.statistics(log_probs, y)
    means = {name: total / count for name, (total, count) in stats.items()}
    assert means["loss"] == pytest.approx(sequences.copy_baseline(delay), abs=1e-6)
    assert sequences.copy_baseline(delay) == pytest.approx(10 * math.log(8) / (delay + 20))
    assert means["recall_loss"] == pytest.approx(math.log(8), abs=1e-6)


@pytest.mark.parametrize("corpus, layout", [("copy", "arjovsky"), ("copy", "cued"), ("adding", "arjovsky")])
def test_the_memoryless_baseline_measured_by_the_objective_equals_its_formula(corpus, layout):
    batches = data.build(corpus, 16, eval_batch_size=500, length=40, examples=[16, 16, 20_000], copy_layout=layout)
    measured = data.memoryless_baseline(batches)
    if corpus == "copy":
        assert measured["test_loss"] == pytest.approx(sequences.copy_baseline(40, layout), rel=1e-5)
        assert measured["test_baseline_fraction"] == pytest.approx(1.0, rel=1e-5)
    else:  # 1/6 on average: here within sampling error
        assert measured["test_mse"] == pytest.approx(sequences.ADDING_BASELINE, rel=0.03)


def test_objectives_equal_a_direct_computation():
    torch.manual_seed(0)
    logits, labels = torch.randn(6, 10), torch.randint(0, 10, (6,))
    stats = objectives.Classification().statistics(logits, labels)
    assert stats["loss"][0] == pytest.approx(-torch.log_softmax(logits, -1)[range(6), labels].sum().item(), rel=1e-6)
    assert stats["accuracy"] == ((logits.argmax(1) == labels).sum().item(), 6)
    values, target = torch.randn(5, 1), torch.randn(5)
    assert objectives.Regression().loss(values, target).item() == pytest.approx(((values[:, 0] - target) ** 2).mean().item())
    steps = torch.randn(25, 3, 10)
    wanted = torch.randint(0, 10, (25, 3))
    copy = objectives.CopyRecall().statistics(steps, wanted)
    assert copy["accuracy"] == ((steps[-10:].argmax(-1) == wanted[-10:]).sum().item(), 30)
    assert copy["recall_loss"][0] == pytest.approx(
        F.cross_entropy(steps[-10:].reshape(-1, 10), wanted[-10:].reshape(-1), reduction="sum").item(), rel=1e-6)
