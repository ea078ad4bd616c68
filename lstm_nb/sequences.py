"""The long-memory tasks of Gu et al. (2020), "Improving the Gating Mechanism of Recurrent Neural
Networks": copy memory and adding (Arjovsky, Shah, Bengio 2016, "Unitary Evolution Recurrent Neural
Networks", §4.1–4.2), and images read one pixel per step (sequential and permuted MNIST, sequential
CIFAR-10).

Every function returns (inputs, targets) arrays, one row per sequence; `data.SequenceBatches` batches
them for the loop. The synthetic sets are fixed: split k of seed s is always drawn from the generator
seeded by (s, k), so a run, a resumed run and every variant see the same sequences. With the data
setting `redraw_train`, epoch e's training sequences come from the generator seeded by (s, k, e): a
fresh set every epoch, as the tasks' online generators give (Arjovsky et al.; r0mainK/ur-lstm), and
still the same for every variant and after a resume.
"""

import math
import pickle
import tarfile

import numpy as np

from .corpora import corpus_path

# Copy memory: symbol 0 is the blank, 1..8 the data symbols, 9 the delimiter (Arjovsky et al.'s
# a8, a0..a7 and a9).
COPY_SYMBOLS, COPY_DATA, COPY_RECALLED = 10, 8, 10
# The copy task's two input layouts (`copy_memory`): Arjovsky et al.'s one delimiter, and the cued
# recall of hippo-code and r0mainK/ur-lstm, whose loss reads the recall steps alone.
COPY_LAYOUTS = ("arjovsky", "cued")
ADDING_BASELINE = 1 / 6  # MSE of always answering 1, the mean of a sum of two U[0, 1] values
# The one permutation of pixel positions for permuted MNIST, shared by every image of every split
# and every run (HazyResearch/hippo-code notes this seed; the UR-LSTM paper does not give its own).
PERMUTATION_SEED = 92916
SPLIT_IDS = {"train": 0, "valid": 1, "test": 2}


def split_generator(seed, split, epoch=None):
    """The generator of `split`'s sequences for `seed` (and, for redrawn training sets, `epoch`)."""
    return np.random.default_rng([seed, SPLIT_IDS[split]] + ([] if epoch is None else [epoch]))


def copy_memory(n, delay, rng, layout="arjovsky"):
    """n copy sequences of length T + 20 (T = `delay`): 10 symbols drawn uniformly from 1..8, then
    - "arjovsky" (Arjovsky et al. §4.1): T − 1 blanks, the delimiter 9, 10 blanks;
    - "cued" (hippo-code, r0mainK/ur-lstm's CopyDataset): T blanks, then the cue 9 on each of the 10
      recall steps.
    The target is T + 10 blanks, then the 10 symbols: the model writes the sequence's start back."""
    if delay < 1:
        raise ValueError(f"the copy task's delay must be at least 1, got {delay}")
    if layout not in COPY_LAYOUTS:
        raise ValueError(f"unknown copy layout {layout!r}; use one of {', '.join(COPY_LAYOUTS)}")
    symbols = rng.integers(1, COPY_DATA + 1, size=(n, COPY_RECALLED), dtype=np.uint8)
    inputs = np.zeros((n, delay + 2 * COPY_RECALLED), dtype=np.uint8)
    inputs[:, :COPY_RECALLED] = symbols
    if layout == "arjovsky":
        inputs[:, COPY_RECALLED + delay - 1] = COPY_SYMBOLS - 1
    else:
        inputs[:, -COPY_RECALLED:] = COPY_SYMBOLS - 1
    targets = np.zeros_like(inputs)
    targets[:, -COPY_RECALLED:] = symbols
    return inputs, targets


def copy_baseline(delay, layout="arjovsky"):
    """The loss of the best memoryless answer: blank until the last 10 steps, then uniform over the 8
    data symbols. Per step over all T + 20 steps in Arjovsky's layout, 10·log 8 / (T + 20); over the
    recall steps alone in the cued one, log 8."""
    recall = math.log(COPY_DATA)
    return recall if layout == "cued" else COPY_RECALLED * recall / (delay + 2 * COPY_RECALLED)


def adding_problem(n, length, rng):
    """n adding sequences of `length` steps with two channels: values ~ U[0, 1], and a marker that is
    1 at exactly two steps, one drawn uniformly from each half. The target is the sum of the two
    marked values."""
    if length < 2:
        raise ValueError(f"the adding problem needs at least 2 steps, got {length}")
    values = rng.random((n, length), dtype=np.float32)
    half = length // 2
    first, second = rng.integers(0, half, size=n), rng.integers(half, length, size=n)
    markers = np.zeros((n, length), dtype=np.float32)
    rows = np.arange(n)
    markers[rows, first] = markers[rows, second] = 1.0
    return np.stack([values, markers], axis=-1), values[rows, first] + values[rows, second]


def _idx(path):
    """An idx file (LeCun's MNIST format): a big-endian header of dimensions, then unsigned bytes."""
    raw = np.fromfile(path, dtype=np.uint8)
    magic = int.from_bytes(raw[:4].tobytes(), "big")
    if magic >> 8 != 0x08:  # 0x0801: labels, 0x0803: images (unsigned bytes)
        raise ValueError(f"{path} is not an idx file of unsigned bytes (magic {magic:#x})")
    dims = [int.from_bytes(raw[4 + 4 * k:8 + 4 * k].tobytes(), "big") for k in range(magic & 0xFF)]
    return raw[4 + 4 * len(dims):].reshape(dims)


def pixel_mnist(valid_images=5000):
    """{split: (images (n, 784) uint8, labels (n,))}: the 60,000 training images less the last
    `valid_images`, those as validation, and the 10,000 test images, each flattened row by row."""
    folder = corpus_path("mnist")
    train = _idx(folder / "train-images-idx3-ubyte").reshape(-1, 784), _idx(folder / "train-labels-idx1-ubyte")
    test = _idx(folder / "t10k-images-idx3-ubyte").reshape(-1, 784), _idx(folder / "t10k-labels-idx1-ubyte")
    cut = len(train[0]) - valid_images
    return {"train": (train[0][:cut], train[1][:cut]), "valid": (train[0][cut:], train[1][cut:]), "test": test}


def mnist_permutation():
    return np.random.RandomState(PERMUTATION_SEED).permutation(784)


def pixel_cifar10(valid_images=5000):
    """{split: (images (n, 1024, 3) uint8, labels (n,))}: CIFAR-10 read from its official archive in
    place (data_batch_1..5 less the last `valid_images` for training, those as validation, test_batch),
    each image one RGB pixel per step, row by row. The archive's sha256 is checked before it is read."""
    archive = corpus_path("cifar-10") / "cifar-10-python.tar.gz"

    def batch(tar, name):
        # the archive's own format: a pickled dict per batch; unpickled only after its sha256 matched
        entry = pickle.load(tar.extractfile(f"cifar-10-batches-py/{name}"), encoding="bytes")
        images = np.asarray(entry[b"data"], dtype=np.uint8).reshape(-1, 3, 1024).transpose(0, 2, 1)
        return images, np.asarray(entry[b"labels"], dtype=np.int64)

    with tarfile.open(archive) as tar:
        parts = [batch(tar, f"data_batch_{k}") for k in range(1, 6)]
        test = batch(tar, "test_batch")
    images, labels = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    cut = len(images) - valid_images
    return {"train": (images[:cut], labels[:cut]), "valid": (images[cut:], labels[cut:]), "test": test}
