"""The batches the training loop reads: language-model token streams and instances, and the sequence
tasks' (input, target) pairs. Every batches object is a task for the loop (`lstm_nb.objectives`
lists what the loop asks of one); `build` makes the one a config's data section describes.

Batching is the standard one for language models: a token stream is cut into B parallel streams
(`batchify`) read in BPTT windows, the hidden state carried across windows (`StreamBatches`);
the Brown character corpus instead comes as independent 500-character instances (`InstanceBatches`),
and the sequence tasks (`lstm_nb.sequences`) as independent sequences (`SequenceBatches`).
"""

import itertools
import math

import numpy as np
import torch

from . import distributed, objectives, sequences
from .text import STREAM_CORPORA, load_brown_instances, load_token_corpus

SEQUENCE_TASKS = ("copy", "adding", "mnist", "pmnist", "cifar-10")
DEFAULT_EXAMPLES = (10_000, 1_000, 1_000)  # (train, valid, test) sequences of copy and adding


# ----------------------------------------------------------------------------------------------
# Batching


def batchify(stream, batch_size):
    """Cut a 1-D token stream into `batch_size` parallel streams: (T, B), the tail dropped."""
    n = stream.numel() // batch_size
    return stream[: n * batch_size].view(batch_size, n).t().contiguous()


class StreamBatches:
    """BPTT windows over B parallel streams; the model's state is carried from window to window.

    The test split is cut into `test_batch_size` streams (default: `eval_batch_size`; AWD-LSTM tests
    with 1). With `variable_bptt` the training windows have AWD-LSTM's random lengths
    (`window_lengths`), drawn from a generator seeded by (seed, epoch), so a resumed epoch reads the
    same windows; `lr_scale` is the learning-rate factor of the window just read, by `last_window_lr`.

    Under torchrun each rank keeps its share of the streams (`distributed.shard`): the training
    streams must divide over the ranks; evaluation streams that do not are read whole by every rank.
    `sharded[split]` says which splits are shared out, so that their losses are summed over ranks.
    """

    carry_state = True

    def __init__(self, splits, vocab, batch_size, bptt, eval_batch_size=10, unit="word", test_batch_size=None,
                 variable_bptt=False, seed=0, last_window_lr="actual"):
        self.vocab, self.bptt, self.unit, self.variable_bptt, self.seed = vocab, bptt, unit, variable_bptt, seed
        self.last_window_lr, self._drawn = last_window_lr, bptt
        self.objective, self.model_inputs = objectives.NextToken(unit), {"vocab_size": len(vocab)}
        self.tokens = splits  # each split as one stream, for the evaluations that read it at batch size 1
        self.streams, self.sharded = {}, {}
        sizes = {"train": batch_size, "test": test_batch_size or eval_batch_size}
        for split, tokens in splits.items():
            streams = batchify(tokens, sizes.get(split, eval_batch_size))
            part = distributed.shard(streams.shape[1])
            if part is None and split == "train":
                raise ValueError(f"data.batch_size {batch_size} does not divide over {distributed.world_size()} "
                                 f"processes: each takes an equal share of the streams")
            self.sharded[split] = part is not None and distributed.active()
            self.streams[split] = streams[:, part] if part is not None else streams

    @property
    def splits(self):
        return list(self.streams)

    def to(self, device):
        """Keep every split on `device` (a GPU): no copy per batch. Returns self."""
        self.streams = {split: t.to(device) for split, t in self.streams.items()}
        self.tokens = {split: t.to(device) for split, t in self.tokens.items()}
        return self

    def num_tokens(self, split):
        return self.streams[split][1:].numel()

    def num_batches(self, split):
        """Windows in an epoch (with variable BPTT: as many as at the mean length `bptt`, about)."""
        return -(-(self.streams[split].shape[0] - 1) // self.bptt)

    def window_lengths(self, epoch, max_length=None):
        """AWD-LSTM's variable BPTT (Merity et al. 2018, §4.1; main.py): each window's length is
        max(5, int(N(base, 5))), base = bptt with probability 0.95, else bptt / 2; the stream advances
        by that length, so window boundaries move between epochs. `max_length` caps it (finetune.py
        caps at bptt + 10)."""
        rng = np.random.default_rng([self.seed, epoch])
        while True:
            base = self.bptt if rng.random() < 0.95 else self.bptt / 2
            length = max(5, int(rng.normal(base, 5)))
            yield min(length, max_length) if max_length else length

    def batches(self, split, epoch=0, bptt=None, max_length=None):
        """(input, target) windows of `bptt` steps (default: the configured one), in order; training
        windows of random lengths with `variable_bptt`."""
        data = self.streams[split]
        if split == "train" and self.variable_bptt and bptt is None:
            lengths = self.window_lengths(epoch, max_length)
        else:
            lengths = itertools.repeat(bptt or self.bptt)
        i = 0
        while i < data.shape[0] - 1:
            self._drawn = next(lengths)
            n = min(self._drawn, data.shape[0] - 1 - i)
            yield data[i:i + n], data[i + 1:i + 1 + n]
            i += n

    def lr_scale(self, length):
        """The learning-rate factor of the training window just read, of `length` steps (main.py's
        variable-BPTT step: lr × seq_len / bptt). Only an epoch's last window, clipped by the end of the
        stream, can be shorter than the length drawn for it: `last_window_lr` "drawn" scales it by the
        drawn length, as main.py does (it clips the batch, not seq_len), "actual" by the steps it has."""
        return (self._drawn if self.last_window_lr == "drawn" else length) / self.bptt


def shuffled_batches(n, batch_size, split, seed, epoch):
    """This rank's indices of each batch over `n` independent examples: the training split shuffled per
    epoch by a generator seeded by (seed, epoch), the others in order.

    Under torchrun rank r reads examples r, r + N, r + 2N, ... of every batch, so the ranks together
    read the single-process batches. A last training batch with fewer examples than ranks is skipped
    there (every rank must take each step)."""
    order = torch.arange(n)
    if split == "train":
        order = torch.from_numpy(np.random.default_rng([seed, epoch]).permutation(n))
    ranks = distributed.world_size()
    for i in range(0, n, batch_size):
        batch = order[i:i + batch_size]
        if split == "train" and len(batch) < ranks:
            continue
        mine = batch[distributed.rank()::ranks]
        if len(mine):
            yield mine


class InstanceBatches:
    """Independent fixed-length instances, shuffled per epoch (`shuffled_batches`); state starts at 0."""

    carry_state = False
    variable_bptt = False

    def __init__(self, splits, vocab, batch_size, seed=0, unit="char"):
        self.instances, self.vocab, self.batch_size, self.seed, self.unit = splits, vocab, batch_size, seed, unit
        self.sharded = {split: distributed.active() for split in splits}
        self.objective, self.model_inputs = objectives.NextToken(unit), {"vocab_size": len(vocab)}

    @property
    def splits(self):
        return list(self.instances)

    def to(self, device):
        """Keep every split on `device` (a GPU): no copy per batch. Returns self."""
        self.instances = {split: t.to(device) for split, t in self.instances.items()}
        return self

    def num_tokens(self, split):
        return self.instances[split][:, 1:].numel()

    def num_batches(self, split):
        return -(-self.instances[split].shape[0] // self.batch_size)

    def batches(self, split, epoch=0):
        data = self.instances[split]
        for batch in shuffled_batches(len(data), self.batch_size, split, self.seed, epoch):
            chunk = data[batch].t()
            yield chunk[:-1], chunk[1:]


class SequenceBatches:
    """The sequence tasks' (input, target) pairs (`lstm_nb.sequences`), shuffled per epoch
    (`shuffled_batches`); the state starts at 0 for every sequence. `encode` turns a batch of stored
    rows into the model's time-major input, `encode_target` its targets."""

    carry_state = False
    variable_bptt = False

    def __init__(self, splits, objective, model_inputs, batch_size, eval_batch_size, encode, encode_target,
                 seed=0, draw_train=None):
        self.examples = {split: _tensors(pair) for split, pair in splits.items()}
        self.objective, self.model_inputs = objective, model_inputs
        self.sizes = {split: batch_size if split == "train" else eval_batch_size for split in splits}
        self.encode, self.encode_target, self.seed = encode, encode_target, seed
        self.sharded = {split: distributed.active() for split in splits}
        # draw_train(epoch) -> (inputs, targets): that epoch's own training set (the same size as `splits`')
        self.draw_train, self.device = draw_train, None

    @property
    def splits(self):
        return list(self.examples)

    def to(self, device):
        """Keep every split on `device` (a GPU): no copy per batch. Returns self."""
        self.examples = {split: (x.to(device), y.to(device)) for split, (x, y) in self.examples.items()}
        self.device = device
        return self

    def num_batches(self, split):
        return -(-len(self.examples[split][0]) // self.sizes[split])

    def batches(self, split, epoch=0):
        inputs, targets = self.examples[split]
        if split == "train" and self.draw_train is not None:
            inputs, targets = (t.to(self.device or "cpu") for t in _tensors(self.draw_train(epoch)))
        for batch in shuffled_batches(len(inputs), self.sizes[split], split, self.seed, epoch):
            yield self.encode(inputs[batch]), self.encode_target(targets[batch])


def memoryless_baseline(batches, split="test"):
    """The metrics of a memory task's memoryless answer (`objective.memoryless_answer`) on `split`,
    computed by the task's own objective: what the baseline's formula must equal."""
    objective, sums = batches.objective, {}
    for _, target in batches.batches(split):
        for name, (total, count) in objective.statistics(objective.memoryless_answer(target), target).items():
            before = sums.get(name, (0.0, 0))
            sums[name] = (before[0] + float(total), before[1] + count)
    return objective.metrics(split, {name: total / count for name, (total, count) in sums.items()})


def _tensors(pair):
    return tuple(torch.from_numpy(np.ascontiguousarray(a)) for a in pair)


def sequence_task(corpus, batch_size, eval_batch_size, length=None, examples=None, fraction=1.0, train_fraction=1.0,
                  seed=0, copy_layout="arjovsky", redraw_train=False):
    """The SequenceBatches of a sequence task: "copy" (delay `length`, in `copy_layout`) and "adding"
    (`length` steps), with `examples` = (train, valid, test) sequences drawn for `seed` (with
    `redraw_train`, a fresh training set every epoch), or pixel-by-pixel "mnist", "pmnist" (one fixed
    permutation) and "cifar-10"; `fraction` and `train_fraction` as in `build`."""
    draw_train = None
    if corpus in ("copy", "adding"):
        sizes = dict(zip(("train", "valid", "test"), examples or DEFAULT_EXAMPLES))

        def make(n, rng):
            if corpus == "copy":
                return sequences.copy_memory(n, length, rng, copy_layout)
            return sequences.adding_problem(n, length, rng)

        splits = {split: make(n, sequences.split_generator(seed, split)) for split, n in sizes.items()}
        if redraw_train:
            def draw_train(epoch):
                pair = make(sizes["train"], sequences.split_generator(seed, "train", epoch))
                return tuple(_head(_head(a, fraction), train_fraction) for a in pair)
    elif corpus in ("mnist", "pmnist"):
        splits = sequences.pixel_mnist()
    else:
        splits = sequences.pixel_cifar10()
    splits = {split: tuple(_head(a, fraction) for a in pair) for split, pair in splits.items()}
    splits["train"] = tuple(_head(a, train_fraction) for a in splits["train"])

    def time_major(batch):
        return batch.transpose(0, 1)

    if corpus == "copy":
        symbols = sequences.COPY_SYMBOLS
        objective = objectives.CopyRecall(sequences.COPY_RECALLED, memoryless=math.log(sequences.COPY_DATA),
                                          recall_only=copy_layout == "cued")
        return SequenceBatches(
            splits, objective, {"input_size": symbols, "output_size": symbols, "per_step": True, "one_hot": True},
            batch_size, eval_batch_size, lambda x: time_major(x.long()), lambda y: time_major(y.long()), seed,
            draw_train)
    if corpus == "adding":
        return SequenceBatches(splits, objectives.Regression(memoryless=sequences.ADDING_BASELINE),
                               {"input_size": 2, "output_size": 1}, batch_size, eval_batch_size, time_major,
                               lambda y: y, seed, draw_train)
    permutation = torch.from_numpy(sequences.mnist_permutation()) if corpus == "pmnist" else None

    def pixels(x):  # (B, steps[, channels]) bytes -> (steps, B, channels) in [0, 1]
        if permutation is not None:
            x = x[:, permutation]
        x = x.float().div_(255)
        return time_major(x if x.dim() == 3 else x.unsqueeze(-1))

    channels = 3 if corpus == "cifar-10" else 1
    return SequenceBatches(splits, objectives.Classification(), {"input_size": channels, "output_size": 10},
                           batch_size, eval_batch_size, pixels, lambda y: y.long(), seed)


def _head(tensor, fraction):
    return tensor[: max(2, int(len(tensor) * fraction))]


def build(corpus, batch_size, bptt=70, eval_batch_size=10, instance_length=500, fraction=1.0, train_fraction=1.0,
          seed=0, test_batch_size=None, variable_bptt=False, length=None, examples=None, last_window_lr="actual",
          copy_layout="arjovsky", redraw_train=False):
    """The batches object for `corpus` (a config's data section). `fraction` < 1 keeps the head of every
    split (for smoke runs); `train_fraction` < 1 then keeps the head of the training split alone, so
    that a short run sees a model overfit (the regime where regularisation shows) while validation and
    test stay whole. `length`, `examples`, `copy_layout` and `redraw_train` are the copy and adding
    tasks' (`sequence_task`)."""
    for name, value in (("fraction", fraction), ("train_fraction", train_fraction)):
        if not 0.0 < value <= 1.0:
            raise ValueError(f"{name} must be in (0, 1], got {value}")
    if corpus in SEQUENCE_TASKS:
        return sequence_task(corpus, batch_size, eval_batch_size, length, examples, fraction, train_fraction, seed,
                             copy_layout, redraw_train)

    def heads(splits):
        splits = {s: _head(t, fraction) for s, t in splits.items()}
        return {**splits, "train": _head(splits["train"], train_fraction)}

    if corpus == "brown":
        vocab, splits = load_brown_instances(instance_length, seed=seed)
        splits = heads(splits)
        return InstanceBatches(splits, vocab, batch_size, seed=seed, unit="char")
    if corpus not in STREAM_CORPORA:
        raise ValueError(f"unknown corpus {corpus!r}; known: brown, {', '.join(STREAM_CORPORA + SEQUENCE_TASKS)}")
    vocab, splits = load_token_corpus(corpus)
    splits = heads(splits)
    unit = "char" if corpus.endswith("-char") else "word"
    batches = StreamBatches(splits, vocab, batch_size, bptt, eval_batch_size, unit=unit,
                            test_batch_size=test_batch_size, variable_bptt=variable_bptt, seed=seed,
                            last_window_lr=last_window_lr)
    sizes = {"train": "data.batch_size", "test": "data.test_batch_size" if test_batch_size else "data.eval_batch_size"}
    for split, stream in batches.streams.items():
        if stream.shape[0] < 2:  # not one (input, target) pair per stream
            key = sizes.get(split, "data.eval_batch_size")
            if fraction == 1 and (split != "train" or train_fraction == 1):  # the whole split: the key is wrong
                raise ValueError(f"{key} {stream.shape[1]} is more streams than {corpus}'s {split} split allows: "
                                 f"its {len(splits[split])} tokens give each stream fewer than 2; lower {key} to "
                                 f"at most {len(splits[split]) // 2}")
            setting = f"data.fraction {fraction}" + (f" with train_fraction {train_fraction}" if split == "train"
                                                     and train_fraction < 1 else "")
            raise ValueError(
                f"{setting} leaves {len(splits[split])} tokens of {corpus}'s {split} split, fewer than 2 per "
                f"stream for its {stream.shape[1]} streams ({key}); lower {key} or raise the fraction"
            )
    return batches
