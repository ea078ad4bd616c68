import os
import shutil
import socket
import threading

import pytest
import torch
from conftest import REPO

from lstm_nb import corpora, data, paths, text


def test_ptb_word_level_counts():
    vocab, splits = text.load_token_corpus("ptb")
    assert len(vocab) == 10_000
    assert splits["train"].numel() == 929_589  # incl. one <eos> per line
    assert (splits["valid"].numel(), splits["test"].numel()) == (73_760, 82_430)
    assert vocab.decode(splits["train"][:3].tolist()) == ["aer", "banknote", "berlitz"]
    assert vocab.itos[splits["train"][splits["train"].numel() - 1]] == "<eos>"


def test_wikitext2_counts():
    vocab, splits = text.load_token_corpus("wikitext-2")
    assert len(vocab) == 33_278
    assert splits["train"].numel() == 2_088_628
    assert (splits["valid"].numel(), splits["test"].numel()) == (217_646, 245_569)


def test_ptb_char_level():
    vocab, _ = text.load_token_corpus("ptb-char")
    assert len(vocab) == 50  # 48 symbols + "_" (space) + <eos>
    assert "_" in vocab.stoi and "<eos>" in vocab.stoi


def test_brown_through_nltk_500_files_and_instances():
    import nltk
    from nltk.corpus.reader import CategorizedTaggedCorpusReader

    text.brown_text()  # puts the corpus on nltk's path
    reader = CategorizedTaggedCorpusReader(nltk.data.find("corpora/brown"), r"c[a-z]\d\d", cat_file="cats.txt")
    assert len(reader.fileids()) == 500

    vocab, splits = text.load_brown_instances(instance_length=500)
    n_train, n_valid = splits["train"].shape[0], splits["valid"].shape[0]
    assert splits["train"].shape[1] == 501
    assert abs(n_valid / (n_train + n_valid) - 0.1) < 0.001
    first = "".join(vocab.decode(splits["train"][0].tolist()))
    assert first == first.lower()
    # fixed seed: the same split every time; another seed gives another split
    again = text.load_brown_instances(instance_length=500)[1]
    assert torch.equal(again["valid"], splits["valid"])
    other = text.load_brown_instances(instance_length=500, seed=1)[1]
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
    monkeypatch.setenv(corpora.DATA_ENV, str(tmp_path / "corpora"))
    with pytest.raises(corpora.CorpusError, match="does not match its sha256"):
        text.load_token_corpus("ptb")


def test_brown_checksum_covers_every_file(data_root, tmp_path, monkeypatch, home):
    target = tmp_path / "corpora" / "nltk_data" / "corpora" / "brown"
    shutil.copytree(data_root / "nltk_data" / "corpora" / "brown", target)
    (target / "cj01").write_text((target / "cj01").read_text().replace("the", "teh", 1))
    monkeypatch.setenv(corpora.DATA_ENV, str(tmp_path / "corpora"))
    with pytest.raises(corpora.CorpusError, match="does not match its sha256"):
        corpora.corpus_path("brown")


def _unreachable_wikitext(monkeypatch, url):
    spec = corpora.CORPORA["wikitext-2"]
    monkeypatch.setitem(corpora.CORPORA, "wikitext-2", corpora.CorpusFiles(spec.title, spec.folder, spec.sha256, url))


def test_missing_corpus_offline_says_where_it_looked_first_and_short(tmp_path, monkeypatch, home):
    monkeypatch.setenv(corpora.DATA_ENV, str(tmp_path / "nothing-here"))
    _unreachable_wikitext(monkeypatch, "http://127.0.0.1:9/wikitext-2/")  # refused at once, as offline
    with pytest.raises(corpora.CorpusError) as e:
        corpora.corpus_path("wikitext-2")
    message = str(e.value)
    searched = message.split("Searched for train.txt, valid.txt, test.txt in:\n")[1].split("\n(")[0]
    assert searched.split() == [str(home / "data" / "wikitext-2"), str(tmp_path / "nothing-here" / "wikitext-2")]
    assert f"{corpora.DATA_ENV} is set to {tmp_path / 'nothing-here'}" in message and "Connection refused" in message
    assert "second form" not in message
    assert e.value.__cause__ is None and e.value.__suppress_context__  # no network traceback chained before it
    assert e.value._render_traceback_() == [f"CorpusError: {message}"]  # Jupyter shows the message alone
    assert not (home / "data" / "wikitext-2").exists()  # nothing half-downloaded left behind


def test_a_host_that_stops_answering_fails_the_download_after_the_timeout(tmp_path, monkeypatch, home):
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)  # the kernel accepts the connection; nobody ever answers
    monkeypatch.setenv(corpora.DATA_ENV, str(tmp_path / "nothing-here"))
    monkeypatch.setattr(corpora, "DOWNLOAD_TIMEOUT", 1)
    _unreachable_wikitext(monkeypatch, f"http://127.0.0.1:{silent.getsockname()[1]}/wikitext-2/")
    outcome = []

    def download():
        try:
            corpora.corpus_path("wikitext-2")
        except corpora.CorpusError as e:
            outcome.append(str(e))

    worker = threading.Thread(target=download, daemon=True)
    worker.start()
    worker.join(timeout=30)
    silent.close()
    assert not worker.is_alive(), "the download hung on a silent host"
    assert outcome and "timed out" in outcome[0]


def test_a_relative_data_folder_means_the_same_folder_from_anywhere(data_root, tmp_path, monkeypatch):
    """LSTM_NB_DATA=../shared/data from the repository root must also work from notebooks/ (JupyterLab's
    kernel) and from a temporary folder with another LSTM_NB_HOME (the tests' runner)."""
    relative = os.path.relpath(data_root.resolve(), REPO)
    monkeypatch.setenv(corpora.DATA_ENV, relative)
    for cwd, home in ((REPO, None), (REPO / "notebooks", None), (tmp_path, tmp_path)):
        monkeypatch.chdir(cwd)
        if home:
            monkeypatch.setenv("LSTM_NB_HOME", str(home))
        assert paths.data_env() == data_root.resolve()
        assert corpora.corpus_path("ptb") in (data_root.resolve() / "ptb", REPO / "data" / "ptb")


def test_batchify_makes_parallel_streams():
    stream = torch.arange(23)
    batched = data.batchify(stream, 4)
    assert batched.shape == (5, 4)
    assert batched[:, 1].tolist() == [5, 6, 7, 8, 9]  # stream b is the b-th contiguous chunk


def test_stream_batches_cover_every_token_once():
    vocab = text.Vocabulary(map(str, range(100)))
    splits = {"train": torch.arange(100), "valid": torch.arange(50)}
    batches = data.StreamBatches(splits, vocab, batch_size=4, bptt=7, eval_batch_size=2)
    inputs, targets = zip(*batches.batches("train"))
    x, y = torch.cat(inputs), torch.cat(targets)
    assert x.shape == (24, 4) and torch.equal(x[1:], y[:-1])  # targets are the inputs shifted by one
    assert sum(t.numel() for t in targets) == batches.num_tokens("train") == 96
    assert len(inputs) == batches.num_batches("train") == 4


def test_instance_batches_shuffle_by_epoch_deterministically():
    vocab = text.Vocabulary(map(str, range(10)))
    instances = {"train": torch.arange(60).view(10, 6), "valid": torch.arange(12).view(2, 6)}
    batches = data.InstanceBatches(instances, vocab, batch_size=4, seed=3)
    first = [x for x, _ in batches.batches("train", epoch=1)]
    assert [x.shape for x in first] == [(5, 4), (5, 4), (5, 2)]
    assert all(torch.equal(a, b) for a, b in zip(first, (x for x, _ in batches.batches("train", epoch=1))))
    second = torch.cat([x for x, _ in batches.batches("train", epoch=2)], 1)
    assert not torch.equal(torch.cat(first, 1), second)


def test_train_fraction_shortens_the_training_split_alone():
    whole = data.build("ptb", batch_size=4, bptt=10, eval_batch_size=2)
    part = data.build("ptb", batch_size=4, bptt=10, eval_batch_size=2, train_fraction=0.1)
    assert part.streams["train"].numel() == pytest.approx(whole.streams["train"].numel() * 0.1, abs=8)
    for split in ("valid", "test"):
        assert torch.equal(part.streams[split], whole.streams[split])
    assert torch.equal(part.streams["train"][:5, 0], whole.streams["train"][:5, 0])  # the head of the text
    with pytest.raises(ValueError, match="data.fraction 1.0 with train_fraction 1e-06 leaves 2 tokens"):
        data.build("ptb", batch_size=4, bptt=10, train_fraction=1e-6)


def test_a_test_batch_larger_than_the_test_split_names_its_key():
    with pytest.raises(ValueError, match=r"test split, fewer than 2 per stream for its 9000 streams "
                                         r"\(data.test_batch_size\); lower data.test_batch_size"):
        data.build("ptb", batch_size=4, bptt=10, fraction=0.1, test_batch_size=9000)
    # on the whole split only the key can be wrong, and the message blames it alone
    with pytest.raises(ValueError, match=r"^data.test_batch_size 90000 is more streams than ptb's test split allows: "
                                         r"its 82430 tokens give each stream fewer than 2; lower data.test_batch_size "
                                         r"to at most 41215$"):
        data.build("ptb", batch_size=4, bptt=10, test_batch_size=90_000)
