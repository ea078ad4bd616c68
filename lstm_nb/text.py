"""The text corpora, read into token ids: PTB (words and characters) and WikiText-2/103 as token
streams, Brown as character instances. Where their files are, and how they are downloaded and
checked, is `lstm_nb.corpora`; how the ids are cut into batches is `lstm_nb.data`.
"""

import zipfile
from functools import lru_cache

import numpy as np
import torch

from .corpora import corpus_path
from .extras import require

SPLIT_FILES = {
    "ptb": ("ptb.train.txt", "ptb.valid.txt", "ptb.test.txt"),
    "ptb-char": ("ptb.char.train.txt", "ptb.char.valid.txt", "ptb.char.test.txt"),
    "wikitext-2": ("train.txt", "valid.txt", "test.txt"),
}
STREAM_CORPORA = (*SPLIT_FILES, "wikitext-103")  # token streams; WikiText-103 is read from its zip


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
    """(vocab, {"train", "valid", "test"} -> LongTensor) for ptb, ptb-char, wikitext-2 or wikitext-103."""
    if name == "wikitext-103":
        return load_wikitext103()
    folder = corpus_path(name)
    train, valid, test = (read_tokens(folder / f) for f in SPLIT_FILES[name])
    vocab = Vocabulary(train)
    return vocab, {"train": vocab.encode(train), "valid": vocab.encode(valid), "test": vocab.encode(test)}


def load_wikitext103():
    """WikiText-103 read line by line from its official zip (103M training tokens: a list of them as
    Python strings would take gigabytes, so each line is encoded as it is read). Same vocabulary rule
    and `<eos>` convention as `load_token_corpus`."""
    stoi, splits = {}, {}
    with zipfile.ZipFile(corpus_path("wikitext-103") / "wikitext-103-v1.zip") as archive:
        for split in ("train", "valid", "test"):
            ids = []
            with archive.open(f"wikitext-103/wiki.{split}.tokens") as f:
                for line in f:
                    for token in line.decode("utf-8").split() + ["<eos>"]:
                        if split == "train":
                            ids.append(stoi.setdefault(token, len(stoi)))
                        elif token in stoi:
                            ids.append(stoi[token])
                        else:
                            raise ValueError(f"WikiText-103's {split} split has {token!r}, which its training split lacks")
            splits[split] = torch.tensor(ids, dtype=torch.long)
    return Vocabulary(list(stoi)), splits


@lru_cache(maxsize=1)  # nltk takes seconds to read Brown; notebooks train several models on it
def brown_text():
    """Brown through nltk's corpus reader: every file's words joined by spaces, lower-cased,
    files separated by newlines (the original Mogrifier notebook read the same text as plain)."""
    nltk = require("nltk")
    CategorizedTaggedCorpusReader = require("nltk.corpus.reader").CategorizedTaggedCorpusReader

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
