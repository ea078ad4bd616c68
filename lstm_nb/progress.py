"""Progress bars: tqdm.auto's (a widget in Jupyter, text in a terminal), off when TQDM_DISABLE=1 and
on every torchrun rank but the first.

The runner sets TQDM_DISABLE=1 for its kernels: an executed notebook would otherwise keep each bar as
text frozen at 0 %, and the epoch lines printed by the training loop are the readable record. Text
bars read that variable themselves; the widget bars of `tqdm.notebook` ignore it, hence this wrapper.
"""

import os

from tqdm.auto import tqdm

from . import distributed


def bar(iterable=None, **options):
    off = os.environ.get("TQDM_DISABLE") == "1" or not distributed.is_main()
    return tqdm(iterable, disable=off, **options)
