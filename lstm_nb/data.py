"""Real corpora, found or downloaded, checksum-verified, and batched for language modelling.

Where a corpus is looked for, in order:
  1. `data/<folder>/` in this repository (the loaders' cache);
  2. `$LSTM_NB_DATA/<folder>/` (tests and CI point it at a folder holding the corpora; a relative
     path is taken from the repository root, see `lstm_nb.paths`);
  3. a download from the corpus' canonical public address into `data/<folder>/` (a host that stops
     answering for DOWNLOAD_TIMEOUT seconds fails the download, with the message that offline gives).
Every file is checked against the sha256 below before use; a mismatch is an error, never a warning.

Batching is the standard one for language models: a token stream is cut into B parallel streams
(`batchify`) read in BPTT windows, the hidden state carried across windows (`StreamBatches`);
the Brown character corpus instead comes as independent 500-character instances (`InstanceBatches`).
"""

import hashlib
import http.client
import itertools
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from . import distributed
from .errors import ExplainedError
from .paths import DATA_ENV, checkout_root, data_env, repo_root
from .progress import bar as progress_bar

DOWNLOAD_TIMEOUT = 30  # seconds a host may leave a download request unanswered


@dataclass(frozen=True)
class CorpusFiles:
    title: str
    folder: str  # relative to a data root
    sha256: dict  # file name -> sha256 ("*" = digest of the whole folder, see `folder_digest`)
    url: str
    archive_member: str = ""  # where the files sit inside a downloaded archive


# Hashes copied from ../shared/data/SHA256SUMS (see its SOURCES.md for provenance).
CORPORA = {
    "ptb": CorpusFiles(
        "Penn Treebank (Mikolov)", "ptb",
        {
            "ptb.train.txt": "fcea919f6cf83f35d4d00c6cbf08040d13d4155226340912e2fef9c9c4102cbf",
            "ptb.valid.txt": "c9fe6985fe0d4ccb578183407d7668fc6066c20700cb4cf87d8ff1cc34df1bf2",
            "ptb.test.txt": "dd65dff31e70846b2a6030a87482edcd5d199130cdcfa1f3dccbb033728deee0",
        },
        "http://www.fit.vutbr.cz/~imikolov/rnnlm/simple-examples.tgz", "simple-examples/data/",
    ),
    "ptb-char": CorpusFiles(
        "Penn Treebank, character level (Mikolov)", "ptb",
        {
            "ptb.char.train.txt": "e313d91425e06c4f0a8fb6e881dcce0c291f2a0e9f4dda54833069b122f91da9",
            "ptb.char.valid.txt": "21661f63ec355085879458b6524644d4add5573541b4be14fb52ab2e2e995eb8",
            "ptb.char.test.txt": "1ef5607ac3c463b16e38bfe7900dd3bfc91de5a96e0f21e7eab5188b465b8ebe",
        },
        "http://www.fit.vutbr.cz/~imikolov/rnnlm/simple-examples.tgz", "simple-examples/data/",
    ),
    "wikitext-2": CorpusFiles(
        "WikiText-2 (v1, tokenized)", "wikitext-2",
        {
            "train.txt": "9e9fa1ad55b1c2c95b08e37dd8e653f638fac2c6de904b79e813611eefbc985f",
            "valid.txt": "f0737ed31fc1329026e95cb8b98e19c2a182c39c240ab909dc31abf2f8af58e8",
            "test.txt": "d790b833ef8cf03a90db7bf1271b7520b83c45ce07ba3c1a9699df81e239eca0",
        },
        "https://raw.githubusercontent.com/pytorch/examples/main/word_language_model/data/wikitext-2/",
    ),
    "brown": CorpusFiles(
        "Brown corpus (NLTK data package)", "nltk_data/corpora/brown",
        # sha256 of the folder's 503 files listed as `sha256sum` lines sorted by name; the zip's own
        # hash guards the download.
        {"*": "fc973a35c0bba0bf0e45267144267be06ab6e5f310027cbac9b1afa2636ac7d9",
         "brown.zip": "9b275f9b3b95d7bd66ccfb7cd259f445a13bbe5d1f4107aba09fd3e8364bafa6"},
        "https://raw.githubusercontent.com/nltk/nltk_data/gh-pages/packages/corpora/brown.zip", "brown/",
    ),
}
SPLIT_FILES = {
    "ptb": ("ptb.train.txt", "ptb.valid.txt", "ptb.test.txt"),
    "ptb-char": ("ptb.char.train.txt", "ptb.char.valid.txt", "ptb.char.test.txt"),
    "wikitext-2": ("train.txt", "valid.txt", "test.txt"),
}


class CorpusError(ExplainedError, RuntimeError):
    """A corpus is missing, could not be downloaded, or does not match its checksum."""


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def folder_digest(folder):
    """sha256 of `sha256sum`-style lines for every file in `folder`, sorted by name."""
    lines = "".join(f"{sha256_file(p)}  {p.name}\n" for p in sorted(Path(folder).iterdir()) if p.is_file())
    return hashlib.sha256(lines.encode()).hexdigest()


def _verify(spec, folder):
    for name, expected in spec.sha256.items():
        if name == "brown.zip":
            continue
        path = folder if name == "*" else folder / name
        actual = folder_digest(path) if name == "*" else sha256_file(path)
        if actual != expected:
            raise CorpusError(
                f"{path} does not match its sha256 (expected {expected}, got {actual}). "
                f"The file is corrupt or a different version of {spec.title}; delete it and let the "
                f"loader download it again, or replace it with the original."
            )


def _candidates(spec):
    roots = [repo_root() / "data"]
    if data_env() is not None:
        roots.append(data_env())
    return [root / spec.folder for root in roots]


def _present(spec, folder):
    names = [n for n in spec.sha256 if n not in ("*", "brown.zip")]
    return folder.is_dir() and all((folder / n).is_file() for n in names) and any(folder.iterdir())


def _fetch(url, destination):
    """Copy `url` into the file `destination`, with a progress bar."""
    with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT) as response, open(destination, "wb") as f:
        size = int(response.headers.get("Content-Length") or 0) or None
        with progress_bar(total=size, unit="B", unit_scale=True, desc=f"downloading {url.rsplit('/', 1)[-1]}",
                  leave=False) as bar:
            for block in iter(lambda: response.read(1 << 20), b""):
                f.write(block)
                bar.update(len(block))


def _download(spec, target):
    """Fetch the corpus into `target` (a folder under data/); raise CorpusError when offline."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        tmp = Path(tmp)
        per_file = spec.url.endswith("/")
        try:
            if per_file:
                for name in spec.sha256:
                    _fetch(spec.url + name, tmp / name)
            else:
                archive = tmp / Path(spec.url).name
                _fetch(spec.url, archive)
        except (OSError, http.client.HTTPException) as e:  # offline, refused, timed out, cut off
            reason = e.reason if isinstance(e, urllib.error.URLError) else e
            raise CorpusError(_missing_message(spec, f"downloading it from {spec.url} failed ({reason})")) from None
        staged = tmp
        if not per_file:
            if "brown.zip" in spec.sha256 and sha256_file(archive) != spec.sha256["brown.zip"]:
                raise CorpusError(f"the download of {spec.url} does not match its sha256; not used")
            if archive.suffix == ".zip":
                with zipfile.ZipFile(archive) as z:
                    z.extractall(tmp / "extracted")
            else:
                with tarfile.open(archive) as t:
                    t.extractall(tmp / "extracted", filter="data")
            staged = tmp / "extracted" / spec.archive_member
        target.mkdir(parents=True, exist_ok=True)
        for p in staged.iterdir():
            if p.is_file():
                shutil.move(str(p), str(target / p.name))


def _missing_message(spec, reason):
    files = ", ".join(n for n in spec.sha256 if n not in ("*", "brown.zip")) or "NLTK's 'brown' package, unzipped"
    searched = "\n  ".join(str(c) for c in _candidates(spec))
    base = checkout_root() or repo_root()
    setting = (f"{DATA_ENV} is set to {data_env()}" if data_env() is not None
               else f"{DATA_ENV} is not set")
    return (
        f"{spec.title} was not found, and {reason}.\n"
        f"Searched for {files} in:\n  {searched}\n"
        f"({setting}.) Put the files into {_candidates(spec)[0]}, or set {DATA_ENV} to a folder that holds "
        f"'{spec.folder}/' (a relative path is taken from {base}), or connect to the internet and run again."
    )


def corpus_path(name, download=True):
    """The verified folder holding corpus `name` (a key of CORPORA)."""
    if name not in CORPORA:
        raise ValueError(f"unknown corpus {name!r}; known: {', '.join(CORPORA)}")
    spec = CORPORA[name]
    for folder in _candidates(spec):
        if _present(spec, folder):
            _verify(spec, folder)
            return folder
    if not download:
        raise CorpusError(_missing_message(spec, "downloading was not allowed"))
    target = _candidates(spec)[0]
    _download(spec, target)
    _verify(spec, target)
    return target


# ----------------------------------------------------------------------------------------------
# Vocabulary and token streams


class Vocabulary:
    """Token ↔ index, built from the training split only, in order of first appearance."""

    def __init__(self, tokens, unk=None):
        self.itos = list(dict.fromkeys(tokens))
        self.stoi = {t: i for i, t in enumerate(self.itos)}
        self.unk = unk

    def __len__(self):
        return len(self.itos)

    def encode(self, tokens):
        if self.unk is None:
            try:
                return torch.tensor([self.stoi[t] for t in tokens], dtype=torch.long)
            except KeyError as e:
                raise ValueError(f"token {e.args[0]!r} is not in the training vocabulary") from e
        if self.unk not in self.stoi:
            self.stoi[self.unk] = len(self.itos)
            self.itos.append(self.unk)
        u = self.stoi[self.unk]
        return torch.tensor([self.stoi.get(t, u) for t in tokens], dtype=torch.long)

    def decode(self, ids):
        return [self.itos[i] for i in ids]


def read_tokens(path):
    """Whitespace tokens of every line, each line ended by `<eos>` (the PTB/WikiText convention)."""
    with open(path, encoding="utf-8") as f:
        return [tok for line in f for tok in line.split() + ["<eos>"]]


def load_token_corpus(name):
    """(vocab, {"train", "valid", "test"} -> LongTensor) for ptb, ptb-char or wikitext-2."""
    folder = corpus_path(name)
    train, valid, test = (read_tokens(folder / f) for f in SPLIT_FILES[name])
    vocab = Vocabulary(train)
    return vocab, {"train": vocab.encode(train), "valid": vocab.encode(valid), "test": vocab.encode(test)}


@lru_cache(maxsize=1)  # nltk takes seconds to read Brown; notebooks train several models on it
def brown_text():
    """Brown through nltk's corpus reader: every file's words joined by spaces, lower-cased,
    files separated by newlines (the original Mogrifier notebook read the same text as plain)."""
    import nltk
    from nltk.corpus.reader import CategorizedTaggedCorpusReader

    folder = corpus_path("brown")
    nltk_root = str(folder.parent.parent)
    if nltk_root not in nltk.data.path:  # nltk only reads from its own search path
        nltk.data.path.insert(0, nltk_root)
    reader = CategorizedTaggedCorpusReader(
        nltk.data.find("corpora/brown"), r"c[a-z]\d\d", cat_file="cats.txt", tagset="brown", encoding="ascii"
    )
    return "\n".join(" ".join(reader.words(f)) for f in reader.fileids()).lower()


def load_brown_instances(instance_length=500, valid_fraction=0.1, seed=0):
    """Brown, character level, cut into instances predicting `instance_length` characters each.

    Instance k holds characters [k·L, (k+1)·L] (L+1 characters: input = first L, target = last L).
    A fixed-seed shuffle splits them 90/10 into train / validation; the vocabulary comes from the
    training instances, with `<unk>` for characters seen only in validation. There is no test split,
    as in the original notebook.
    """
    codes = np.frombuffer(brown_text().encode("ascii"), dtype=np.uint8)
    L = instance_length
    n = (len(codes) - 1) // L
    pieces = np.lib.stride_tricks.sliding_window_view(codes, L + 1)[::L][:n]
    order = np.random.default_rng(seed).permutation(n)
    n_valid = round(n * valid_fraction)
    valid, train = pieces[order[:n_valid]], pieces[order[n_valid:]]
    vocab = Vocabulary([chr(c) for c in np.unique(train)] + ["<unk>"], unk="<unk>")
    lookup = np.full(256, vocab.stoi["<unk>"], dtype=np.int64)  # byte -> id, unseen -> <unk>
    lookup[np.unique(train)] = np.arange(len(vocab) - 1)
    return vocab, {"train": torch.from_numpy(lookup[train]), "valid": torch.from_numpy(lookup[valid])}


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
    same windows.

    Under torchrun each rank keeps its share of the streams (`distributed.shard`): the training
    streams must divide over the ranks; evaluation streams that do not are read whole by every rank.
    `sharded[split]` says which splits are shared out, so that their losses are summed over ranks.
    """

    carry_state = True

    def __init__(self, splits, vocab, batch_size, bptt, eval_batch_size=10, unit="word", test_batch_size=None,
                 variable_bptt=False, seed=0):
        self.vocab, self.bptt, self.unit, self.variable_bptt, self.seed = vocab, bptt, unit, variable_bptt, seed
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
            n = min(next(lengths), data.shape[0] - 1 - i)
            yield data[i:i + n], data[i + 1:i + 1 + n]
            i += n


class InstanceBatches:
    """Independent fixed-length instances, shuffled per epoch (seeded by epoch); state starts at 0.

    Under torchrun rank r reads instances r, r + N, r + 2N, ... of every batch, so the ranks together
    read the single-process batches. A last training batch with fewer instances than ranks is skipped
    there (every rank must take each step).
    """

    carry_state = False
    variable_bptt = False

    def __init__(self, splits, vocab, batch_size, seed=0, unit="char"):
        self.instances, self.vocab, self.batch_size, self.seed, self.unit = splits, vocab, batch_size, seed, unit
        self.sharded = {split: distributed.active() for split in splits}

    @property
    def splits(self):
        return list(self.instances)

    def num_tokens(self, split):
        return self.instances[split][:, 1:].numel()

    def num_batches(self, split):
        return -(-self.instances[split].shape[0] // self.batch_size)

    def batches(self, split, epoch=0):
        data = self.instances[split]
        order = torch.arange(len(data))
        if split == "train":
            order = torch.from_numpy(np.random.default_rng([self.seed, epoch]).permutation(len(data)))
        ranks = distributed.world_size()
        for i in range(0, len(data), self.batch_size):
            batch = order[i:i + self.batch_size]
            if split == "train" and len(batch) < ranks:
                continue
            chunk = data[batch[distributed.rank()::ranks]].t()
            if chunk.shape[1]:
                yield chunk[:-1], chunk[1:]


def _head(tensor, fraction):
    return tensor[: max(2, int(len(tensor) * fraction))]


def build(corpus, batch_size, bptt=70, eval_batch_size=10, instance_length=500, fraction=1.0, train_fraction=1.0,
          seed=0, test_batch_size=None, variable_bptt=False):
    """The batches object for `corpus`. `fraction` < 1 keeps the head of every split (for smoke runs);
    `train_fraction` < 1 then keeps the head of the training split alone, so that a short run sees a
    model overfit (the regime where regularisation shows) while validation and test stay whole."""
    for name, value in (("fraction", fraction), ("train_fraction", train_fraction)):
        if not 0.0 < value <= 1.0:
            raise ValueError(f"{name} must be in (0, 1], got {value}")

    def heads(splits):
        splits = {s: _head(t, fraction) for s, t in splits.items()}
        return {**splits, "train": _head(splits["train"], train_fraction)}

    if corpus == "brown":
        vocab, splits = load_brown_instances(instance_length, seed=seed)
        splits = heads(splits)
        return InstanceBatches(splits, vocab, batch_size, seed=seed, unit="char")
    if corpus not in SPLIT_FILES:
        raise ValueError(f"unknown corpus {corpus!r}; known: brown, {', '.join(SPLIT_FILES)}")
    vocab, splits = load_token_corpus(corpus)
    splits = heads(splits)
    unit = "char" if corpus.endswith("-char") else "word"
    batches = StreamBatches(splits, vocab, batch_size, bptt, eval_batch_size, unit=unit,
                            test_batch_size=test_batch_size, variable_bptt=variable_bptt, seed=seed)
    for split, stream in batches.streams.items():
        if stream.shape[0] < 2:  # not one (input, target) pair per stream
            setting = f"data.fraction {fraction}" + (f" with train_fraction {train_fraction}" if split == "train"
                                                     and train_fraction < 1 else "")
            raise ValueError(
                f"{setting} leaves {len(splits[split])} tokens of {corpus}'s {split} split, fewer "
                f"than 2 per stream for its {stream.shape[1]} streams; raise the fraction or lower the batch sizes"
            )
    return batches
