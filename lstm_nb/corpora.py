"""The data files: where each corpus or dataset is found, how it is downloaded, and its checksums.

Where a corpus is looked for, in order:
  1. `data/<folder>/` in this repository (the loaders' cache);
  2. `$LSTM_NB_DATA/<folder>/` (tests and CI point it at a folder holding the corpora; a relative
     path is taken from the repository root, see `lstm_nb.paths`);
  3. a download from the corpus' canonical public address into `data/<folder>/` (a host that stops
     answering for DOWNLOAD_TIMEOUT seconds fails the download, with the message that offline gives).
Every file is checked against the sha256 below before use; a mismatch is an error, never a warning.
CIFAR-10 and WikiText-103 stay in their official archives, which are read in place (`lstm_nb.sequences`,
`lstm_nb.data`): their pins are the archives' own.
"""

import contextlib
import gzip
import hashlib
import http.client
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

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
    gzipped: bool = False  # each file is served as <name>.gz and kept decompressed (MNIST)


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
    # LeCun's idx files, decompressed; served gzipped by the mirror torchvision downloads from.
    "mnist": CorpusFiles(
        "MNIST (LeCun, Cortes, Burges; idx files)", "mnist",
        {
            "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
            "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
            "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
            "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        },
        "https://ossci-datasets.s3.amazonaws.com/mnist/", gzipped=True,
    ),
    # Krizhevsky's "python version" archive (170,498,071 bytes), kept as it is and read in place.
    "cifar-10": CorpusFiles(
        "CIFAR-10 (Krizhevsky 2009, python version)", "cifar-10",
        {"cifar-10-python.tar.gz": "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce"},
        "https://www.cs.toronto.edu/~kriz/",
    ),
    # Merity et al. 2016's tokenized release (wiki.{train,valid,test}.tokens inside), read in place; the
    # original research.metamind.io bucket is gone, its files are served from the author's mirror.
    "wikitext-103": CorpusFiles(
        "WikiText-103 (v1, tokenized)", "wikitext-103",
        {"wikitext-103-v1.zip": "242ba0f20b329cfdf1ccc61e9e9e5b59becf189db7f7a81cd2a0e2fc31539590"},
        "https://wikitext.smerity.com/",
    ),
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
    """Fetch the corpus into `target` (a folder under data/); raise CorpusError when offline, leaving no
    empty data/ folder behind."""
    created = [p for p in (target.parent, *target.parent.parents) if not p.exists()]  # innermost first
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        _download_into(spec, target)
    except CorpusError:
        for folder in created:
            with contextlib.suppress(OSError):  # only when empty: another corpus may have arrived meanwhile
                folder.rmdir()
        raise


def _download_into(spec, target):
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        tmp = Path(tmp)
        per_file = spec.url.endswith("/")
        try:
            if per_file:
                for name in spec.sha256:
                    _fetch(spec.url + name + (".gz" if spec.gzipped else ""), tmp / name)
                    if spec.gzipped:
                        with gzip.open(tmp / name) as packed, open(tmp / f"{name}.raw", "wb") as raw:
                            shutil.copyfileobj(packed, raw)
                        (tmp / f"{name}.raw").replace(tmp / name)
            else:
                archive = tmp / Path(spec.url).name
                _fetch(spec.url, archive)
        except (OSError, EOFError, http.client.HTTPException) as e:  # offline, refused, timed out, cut off (EOF: in a .gz)
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


