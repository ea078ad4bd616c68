"""The corpus loaders on fixtures written in the real formats (CIFAR-10, WikiText-103), their checksums,
and what an offline machine is told."""

import io
import pickle
import tarfile
import zipfile

import numpy as np
import pytest
import torch

from lstm_nb import corpora, data, sequences, text


def _cifar_fixture(folder, images_per_batch=3):
    """A CIFAR-10 python archive in the official layout (pickled dicts of b"data" rows: 1024 red, 1024
    green, 1024 blue values, row by row; b"labels"), with known pixel values."""
    rng = np.random.default_rng(5)
    folder.mkdir(parents=True, exist_ok=True)
    archive, batches = folder / "cifar-10-python.tar.gz", {}
    with tarfile.open(archive, "w:gz") as tar:
        for name in [f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]:
            entry = {b"data": rng.integers(0, 256, (images_per_batch, 3072), dtype=np.uint8),
                     b"labels": rng.integers(0, 10, images_per_batch).tolist(), b"batch_label": name.encode()}
            batches[name] = entry
            payload = pickle.dumps(entry)
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    return archive, batches


def _pin(monkeypatch, name, archive):
    spec = corpora.CORPORA[name]
    monkeypatch.setitem(corpora.CORPORA, name, corpora.CorpusFiles(
        spec.title, spec.folder, {archive.name: corpora.sha256_file(archive)}, spec.url))


def test_cifar10_reader_reads_the_official_format(tmp_path, monkeypatch, home):
    archive, written = _cifar_fixture(tmp_path / "corpora" / "cifar-10")
    monkeypatch.setenv(corpora.DATA_ENV, str(tmp_path / "corpora"))
    _pin(monkeypatch, "cifar-10", archive)
    splits = sequences.pixel_cifar10(valid_images=2)
    assert [len(splits[s][0]) for s in ("train", "valid", "test")] == [13, 2, 3]
    first = written["data_batch_1"][b"data"][0]
    assert (splits["train"][0][0] == np.stack([first[:1024], first[1024:2048], first[2048:]], 1)).all()
    batches = data.build("cifar-10", batch_size=3, eval_batch_size=3)
    x, labels = next(batches.batches("test"))
    assert x.shape == (1024, 3, 3)
    assert torch.equal(x[0, 0], torch.tensor(written["test_batch"][b"data"][0][[0, 1024, 2048]]).float() / 255)
    assert labels.tolist() == written["test_batch"][b"labels"]


def test_cifar10_with_a_wrong_checksum_is_refused(tmp_path, monkeypatch, home):
    _cifar_fixture(tmp_path / "corpora" / "cifar-10")  # not the real archive: the real pin must refuse it
    monkeypatch.setenv(corpora.DATA_ENV, str(tmp_path / "corpora"))
    with pytest.raises(corpora.CorpusError, match="cifar-10-python.tar.gz does not match its sha256"):
        sequences.pixel_cifar10()


def _wikitext103_fixture(folder):
    folder.mkdir(parents=True, exist_ok=True)
    archive = folder / "wikitext-103-v1.zip"
    text = {"train": " = Valkyria = \n the game began <unk> \n", "valid": " the game \n", "test": " = began = \n"}
    with zipfile.ZipFile(archive, "w") as z:
        for split, body in text.items():
            z.writestr(f"wikitext-103/wiki.{split}.tokens", body)
    return archive


def test_wikitext103_reader_reads_its_zip_and_refuses_a_wrong_checksum(tmp_path, monkeypatch, home):
    archive = _wikitext103_fixture(tmp_path / "corpora" / "wikitext-103")
    monkeypatch.setenv(corpora.DATA_ENV, str(tmp_path / "corpora"))
    with pytest.raises(corpora.CorpusError, match="wikitext-103-v1.zip does not match its sha256"):
        text.load_token_corpus("wikitext-103")
    _pin(monkeypatch, "wikitext-103", archive)
    vocab, splits = text.load_token_corpus("wikitext-103")
    assert vocab.decode(splits["train"].tolist()) == ["=", "Valkyria", "=", "<eos>", "the", "game", "began", "<unk>", "<eos>"]
    assert vocab.decode(splits["test"].tolist()) == ["=", "began", "=", "<eos>"]
    assert len(vocab) == 7


@pytest.mark.parametrize("name, files", [("cifar-10", "cifar-10-python.tar.gz"),
                                         ("wikitext-103", "wikitext-103-v1.zip"),
                                         ("mnist", "train-images-idx3-ubyte")])
def test_offline_the_loaders_name_the_files_and_the_folder(name, files, tmp_path, monkeypatch, home):
    spec = corpora.CORPORA[name]
    monkeypatch.setitem(corpora.CORPORA, name, corpora.CorpusFiles(
        spec.title, spec.folder, spec.sha256, "http://127.0.0.1:9/", gzipped=spec.gzipped))  # refused, as offline
    monkeypatch.setenv(corpora.DATA_ENV, str(tmp_path / "nothing-here"))
    with pytest.raises(corpora.CorpusError) as e:
        corpora.corpus_path(name)
    message = str(e.value)
    assert files in message and f"Put the files into {home / 'data' / spec.folder}" in message
    assert str(tmp_path / "nothing-here" / spec.folder) in message and "Connection refused" in message
    assert not (home / "data").exists()  # no empty folder left behind
