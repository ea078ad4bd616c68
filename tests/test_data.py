import shutil

import pytest
import torch

from lstm_nb import data


def test_ptb_word_level_counts():
    vocab, splits = data.load_token_corpus("ptb")
    assert len(vocab) == 10_000
    assert splits["train"].numel() == 929_589  # incl. one <eos> per line
    assert (splits["valid"].numel(), splits["test"].numel()) == (73_760, 82_430)
    assert vocab.decode(splits["train"][:3].tolist()) == ["aer", "banknote", "berlitz"]
    assert vocab.itos[splits["train"][splits["train"].numel() - 1]] == "<eos>"


def test_wikitext2_counts():
    vocab, splits = data.load_token_corpus("wikitext-2")
    assert len(vocab) == 33_278
    assert splits["train"].numel() == 2_088_628
    assert (splits["valid"].numel(), splits["test"].numel()) == (217_646, 245_569)


def test_ptb_char_level():
    vocab, _ = data.load_token_corpus("ptb-char")
    assert len(vocab) == 50  # 48 symbols + "_" (space) + <eos>
    assert "_" in vocab.stoi and "<eos>" in vocab.stoi


def test_brown_through_nltk_500_files_and_instances():
    import nltk
    from nltk.corpus.reader import CategorizedTaggedCorpusReader

    data.brown_text()  # puts the corpus on nltk's path
    reader = CategorizedTaggedCorpusReader(nltk.data.find("corpora/brown"), r"c[a-z]\d\d", cat_file="cats.txt")
    assert len(reader.fileids()) == 500

    vocab, splits = data.load_brown_instances(instance_length=500)
    n_train, n_valid = splits["train"].shape[0], splits["valid"].shape[0]
    assert splits["train"].shape[1] == 501
    assert abs(n_valid / (n_train + n_valid) - 0.1) < 0.001
    text = "".join(vocab.decode(splits["train"][0].tolist()))
    assert text == text.lower()
    # fixed seed: the same split every time; another seed gives another split
    again = data.load_brown_instances(instance_length=500)[1]
    assert torch.equal(again["valid"], splits["valid"])
    other = data.load_brown_instances(instance_length=500, seed=1)[1]
    assert not torch.equal(other["valid"], splits["valid"])
    # the vocabulary comes from the training instances only
    assert set(splits["train"].unique().tolist()) <= set(range(len(vocab) - 1))


def _copy_ptb(data_root, tmp_path):
    target = tmp_path / "corpora" / "ptb"
    shutil.copytree(data_root / "ptb", target)
    return target


def test_wrong_checksum_is_refused(data_root, tmp_path, monkeypatch, home):
    ptb = _copy_ptb(data_root, tmp_path)
    with open(ptb / "ptb.valid.txt", "a") as f:
        f.write("one extra line\n")
    monkeypatch.setenv(data.DATA_ENV, str(tmp_path / "corpora"))
    with pytest.raises(data.CorpusError, match="does not match its sha256"):
        data.load_token_corpus("ptb")


def test_brown_checksum_covers_every_file(data_root, tmp_path, monkeypatch, home):
    target = tmp_path / "corpora" / "nltk_data" / "corpora" / "brown"
    shutil.copytree(data_root / "nltk_data" / "corpora" / "brown", target)
    (target / "cj01").write_text((target / "cj01").read_text().replace("the", "teh", 1))
    monkeypatch.setenv(data.DATA_ENV, str(tmp_path / "corpora"))
    with pytest.raises(data.CorpusError, match="does not match its sha256"):
        data.corpus_path("brown")


def test_missing_corpus_offline_names_files_and_places(tmp_path, monkeypatch, home):
    monkeypatch.setenv(data.DATA_ENV, str(tmp_path / "nothing-here"))
    spec = data.CORPORA["wikitext-2"]
    # a port nothing listens on: the download fails at once, as it does offline
    monkeypatch.setitem(data.CORPORA, "wikitext-2", data.CorpusFiles(
        spec.title, spec.folder, spec.sha256, "http://127.0.0.1:9/wikitext-2/"))
    with pytest.raises(data.CorpusError) as e:
        data.corpus_path("wikitext-2")
    message = str(e.value)
    for needed in ("train.txt", "valid.txt", "test.txt", str(home / "data" / "wikitext-2"), data.DATA_ENV):
        assert needed in message
    assert not (home / "data" / "wikitext-2").exists()  # nothing half-downloaded left behind


def test_batchify_makes_parallel_streams():
    stream = torch.arange(23)
    batched = data.batchify(stream, 4)
    assert batched.shape == (5, 4)
    assert batched[:, 1].tolist() == [5, 6, 7, 8, 9]  # stream b is the b-th contiguous chunk


def test_stream_batches_cover_every_token_once():
    vocab = data.Vocabulary(map(str, range(100)))
    splits = {"train": torch.arange(100), "valid": torch.arange(50)}
    batches = data.StreamBatches(splits, vocab, batch_size=4, bptt=7, eval_batch_size=2)
    inputs, targets = zip(*batches.batches("train"))
    x, y = torch.cat(inputs), torch.cat(targets)
    assert x.shape == (24, 4) and torch.equal(x[1:], y[:-1])  # targets are the inputs shifted by one
    assert sum(t.numel() for t in targets) == batches.num_tokens("train") == 96
    assert len(inputs) == batches.num_batches("train") == 4


def test_instance_batches_shuffle_by_epoch_deterministically():
    vocab = data.Vocabulary(map(str, range(10)))
    instances = {"train": torch.arange(60).view(10, 6), "valid": torch.arange(12).view(2, 6)}
    batches = data.InstanceBatches(instances, vocab, batch_size=4, seed=3)
    first = [x for x, _ in batches.batches("train", epoch=1)]
    assert [x.shape for x in first] == [(5, 4), (5, 4), (5, 2)]
    assert all(torch.equal(a, b) for a, b in zip(first, (x for x, _ in batches.batches("train", epoch=1))))
    second = torch.cat([x for x, _ in batches.batches("train", epoch=2)], 1)
    assert not torch.equal(torch.cat(first, 1), second)
