"""The Colab install cell: the text of every notebook's first cell (a test checks that they hold it).

Colab starts without lstm_nb, so that cell cannot import it; its text lives here, once. Inside Colab
(it does nothing anywhere else) it mounts Google Drive and installs the package from the first source
a user can provide, in this order:

1. the newest wheel in Drive's `MyDrive/lstm_nb/` folder (`make wheel` builds it; upload it once, and
   every notebook and every new runtime finds it);
2. a wheel uploaded to `/content` (the Files panel; gone with the runtime);
3. `LSTM_NB_INSTALL`, a pip address set in the cell (a fork on GitHub, say).

Then `LSTM_NB_HOME` points at the Drive folder, so `run/`, `figures/` and `data/` survive a disconnect
and running the notebook again resumes every training.
"""

CELL = '''\
# Google Colab only (does nothing anywhere else): mount Google Drive and install lstm_nb from the first of
# 1. a wheel in Drive's MyDrive/lstm_nb/ folder (build it with `make wheel`, upload dist/lstm_nb-*.whl),
# 2. a wheel uploaded to /content (Files panel), 3. LSTM_NB_INSTALL, a pip address of your copy.
# run/ (checkpoints, metrics), figures/ and data/ then live in MyDrive/lstm_nb: a reconnect resumes.
import glob
import os
import subprocess
import sys

LSTM_NB_INSTALL = ""  # e.g. "lstm_nb[notebooks] @ git+https://github.com/<you>/<your copy>"
DRIVE_FOLDER = "/content/drive/MyDrive/lstm_nb"


def lstm_nb_source(drive_folder=DRIVE_FOLDER, uploads="/content", address=LSTM_NB_INSTALL):
    """What pip installs: the newest wheel in Drive's folder, else one in /content, else `address`."""
    for folder in (drive_folder, uploads):
        wheels = glob.glob(os.path.join(folder, "lstm_nb-*.whl"))
        if wheels:
            return max(wheels, key=os.path.getmtime) + "[notebooks]"
    if address:
        return address
    raise RuntimeError(
        f"No lstm_nb wheel in {drive_folder} or {uploads}, and LSTM_NB_INSTALL is empty. On a machine with "
        "the repository run `make wheel`, then upload dist/lstm_nb-*.whl to Google Drive's MyDrive/lstm_nb/ "
        "folder (kept for every runtime) or to /content (Files panel), and run this cell again; or set "
        "LSTM_NB_INSTALL above to a pip address of your copy."
    )


if "google.colab" in sys.modules:
    if not os.path.isdir("/content/drive/MyDrive"):
        from google.colab import drive

        drive.mount("/content/drive")
    source = lstm_nb_source()
    if subprocess.run([sys.executable, "-m", "pip", "install", "-q", source], check=False).returncode != 0:
        raise RuntimeError(f"pip could not install lstm_nb from {source!r}; its message is above.")
    os.makedirs(DRIVE_FOLDER, exist_ok=True)
    os.environ.setdefault("LSTM_NB_HOME", DRIVE_FOLDER)
    print(f"lstm_nb installed from {source}; run/, figures/ and data/ go to {os.environ['LSTM_NB_HOME']}")'''
