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


class CopyRecall:
    """The copy task (Arjovsky et al. 2016): a class per step, the loss their mean cross-entropy over
    all T + 20 steps (nats per step). `recall_loss` and `accuracy` read only the `recalled` last steps,
    where the sequence's first symbols are to be written back: a model that remembers nothing scores
    log 8 nats there, and 10·log 8 / (T + 20) over all steps (`lstm_nb.sequences.copy_baseline`)."""

    def __init__(self, recalled=10):
        self.recalled = recalled

    loss = staticmethod(per_step_cross_entropy)

    def statistics(self, logits, target):
        tail, wanted = logits[-self.recalled:], target[-self.recalled:]
        correct = _summed((tail.argmax(-1) == wanted).sum())
        return {"loss": (_summed(per_step_cross_entropy(logits, target, "sum")), target.numel()),
                "recall_loss": (_summed(per_step_cross_entropy(tail, wanted, "sum")), wanted.numel()),
                "accuracy": (correct, wanted.numel())}

    metrics = staticmethod(named)


class Regression:
    """One value per sequence (the adding problem): the loss is the mean squared error, also written
    as `<split>_mse`."""

    def loss(self, output, target):
        return F.mse_loss(output.squeeze(-1).float(), target)

    def statistics(self, output, target):
        return {"loss": (_summed(F.mse_loss(output.squeeze(-1).float(), target, reduction="sum")), target.numel())}

    def metrics(self, prefix, means):
        return {f"{prefix}_loss": means["loss"], f"{prefix}_mse": means["loss"]}
