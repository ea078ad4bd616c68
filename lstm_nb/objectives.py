"""What a task asks of the training loop: its loss, its metrics, and what sizes its model.

The one loop (`lstm_nb.train`) trains every task through the batches object that `data.build`
returns; all of them answer the same few names:

    batches(split, epoch)   (input, target) pairs; inputs time-major, (T, B, ...)
    num_batches(split), splits, sharded[split], carry_state, variable_bptt
    model_inputs            what sizes the model: {"vocab_size": V} for a language model; the input
                            and output sizes for a sequence task (`models.SequenceModel`)
    objective               one of the classes below

An objective turns the model's output and the target into the loss that training minimises
(`loss`, a mean with gradient), into sums for the evaluation metrics (`statistics`: {name: (sum,
count)}, added over batches and ranks before dividing), and names the means in the metrics files
(`metrics`: `<split>_loss` always, then the task's own: perplexity, bits per character, accuracy,
MSE).
"""

import math

import torch
import torch.nn.functional as F


def loss_metrics(prefix, loss, unit):
    """`<prefix>_loss` (nats per token) plus perplexity (words) or bits per character (chars)."""
    out = {f"{prefix}_loss": loss}
    if unit == "word":
        out[f"{prefix}_perplexity"] = math.exp(loss) if loss < 700 else math.inf
    elif unit == "char":
        out[f"{prefix}_bpc"] = loss / math.log(2)
    return out


def per_step_cross_entropy(logits, target, reduction="mean"):
    """Cross-entropy of a class per step: logits (T, B, C), target (T, B)."""
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), target.reshape(-1), reduction=reduction)


def _summed(total):
    """A batch's summed statistic as a float64 scalar on the model's device: evaluation adds them there
    and reads the total once per split, not once per batch (a host sync per batch stalls a GPU)."""
    return total.detach().to(torch.float64)


def named(prefix, means):
    """{"<prefix>_<name>": mean}: the metrics files' names of a task's means."""
    return {f"{prefix}_{name}": value for name, value in means.items()}


class NextToken:
    """Language modelling: cross-entropy of every next token, in nats per token (`unit` "word" adds
    perplexity, "char" bits per character)."""

    def __init__(self, unit):
        self.unit = unit

    loss = staticmethod(per_step_cross_entropy)

    def statistics(self, logits, target):
        return {"loss": (_summed(per_step_cross_entropy(logits, target, "sum")), target.numel())}

    def metrics(self, prefix, means):
        return loss_metrics(prefix, means["loss"], self.unit)


class Classification:
    """One class per sequence (pixel-by-pixel MNIST, CIFAR-10), read from the last step: cross-entropy
    in nats per sequence, and accuracy."""

    def loss(self, logits, target):
        return F.cross_entropy(logits.float(), target)

    def statistics(self, logits, target):
        total = _summed(F.cross_entropy(logits.float(), target, reduction="sum"))
        correct = _summed((logits.argmax(-1) == target).sum())
        return {"loss": (total, target.numel()), "accuracy": (correct, target.numel())}

    metrics = staticmethod(named)


# A memory task counts as solved when its loss is below this fraction of the memoryless baseline.
SOLVED_FRACTION = 0.1


class CopyRecall:
    """The copy task: a class per step. The loss is the mean cross-entropy over all T + 20 steps (nats
    per step; Arjovsky et al. 2016), or with `recall_only` over the `recalled` last steps alone (the cued
    layout's, r0mainK/ur-lstm's). `recall_loss` and `accuracy` read only those last steps, where the
    sequence's first symbols are to be written back: a model that remembers nothing scores log 8 nats
    there (`memoryless`), and `baseline_fraction` is `recall_loss` over it (0 solved, 1 nothing learnt)."""

    def __init__(self, recalled=10, memoryless=None, recall_only=False):
        self.recalled, self.memoryless, self.recall_only = recalled, memoryless, recall_only

    def loss(self, logits, target):
        if self.recall_only:
            return per_step_cross_entropy(logits[-self.recalled:], target[-self.recalled:])
        return per_step_cross_entropy(logits, target)

    def statistics(self, logits, target):
        tail, wanted = logits[-self.recalled:], target[-self.recalled:]
        correct = _summed((tail.argmax(-1) == wanted).sum())
        recall = (_summed(per_step_cross_entropy(tail, wanted, "sum")), wanted.numel())
        everything = recall if self.recall_only else (_summed(per_step_cross_entropy(logits, target, "sum")),
                                                      target.numel())
        return {"loss": everything, "recall_loss": recall, "accuracy": (correct, wanted.numel())}

    def memoryless_answer(self, target):
        """Logits of the best answer without memory: blank with certainty, then uniform over the data
        symbols 1..8 on the recall steps (cross-entropy 0, then log 8)."""
        logits = torch.full((*target.shape, 10), -1e4, dtype=torch.float32, device=target.device)
        logits[:-self.recalled, :, 0] = 0.0
        logits[-self.recalled:, :, 1:9] = 0.0
        return logits

    def metrics(self, prefix, means):
        out = named(prefix, means)
        if self.memoryless and "recall_loss" in means:
            out[f"{prefix}_baseline_fraction"] = means["recall_loss"] / self.memoryless
        return out


class Regression:
    """One value per sequence (the adding problem): the loss is the mean squared error, also written
    as `<split>_mse`; `baseline_fraction` is it over the `memoryless` answer's MSE when given."""

    def __init__(self, memoryless=None):
        self.memoryless = memoryless

    def loss(self, output, target):
        return F.mse_loss(output.squeeze(-1).float(), target)

    def memoryless_answer(self, target):
        """The best answer without memory for the adding problem: always 1, the mean of two U[0, 1] values."""
        return torch.ones(len(target), 1, device=target.device)

    def statistics(self, output, target):
        return {"loss": (_summed(F.mse_loss(output.squeeze(-1).float(), target, reduction="sum")), target.numel())}

    def metrics(self, prefix, means):
        out = {f"{prefix}_loss": means["loss"], f"{prefix}_mse": means["loss"]}
        if self.memoryless:
            out[f"{prefix}_baseline_fraction"] = means["loss"] / self.memoryless
        return out
