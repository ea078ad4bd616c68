"""Progress bars: tqdm.auto's (a widget in Jupyter, text in a terminal), off when TQDM_DISABLE=1, on
every torchrun rank but the first, and where tqdm is not installed (the core install: the training loop
then prints its epoch lines alone).

The runner sets TQDM_DISABLE=1 for its kernels: an executed notebook would otherwise keep each bar as
text frozen at 0 %, and the epoch lines printed by the training loop are the readable record. Text
bars read that variable themselves; the widget bars of `tqdm.notebook` ignore it, hence this wrapper.
"""

import os

from . import distributed

try:
    from tqdm.auto import tqdm
except ImportError:  # the core install, without the notebooks extra
    tqdm = None


class _Silent:
    """What a bar offers the loop, doing nothing: iteration and postfix."""

    def __init__(self, iterable):
        self.iterable = iterable

    def __iter__(self):
        return iter(self.iterable)

    def set_postfix(self, *args, **kwargs):
        pass


def bar(iterable=None, **options):
    off = os.environ.get("TQDM_DISABLE") == "1" or not distributed.is_main()
    return _Silent(iterable) if tqdm is None else tqdm(iterable, disable=off, **options)
