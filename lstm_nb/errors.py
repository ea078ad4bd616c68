"""Errors whose message is the whole story: what is wrong, where, and what to do.

Jupyter shows one of these as its message alone, without the traceback through the package in front
of it (IPython calls `_render_traceback_` when an exception has one); a terminal shows the traceback
as usual.
"""


class ExplainedError(Exception):
    def _render_traceback_(self):
        return [f"{type(self).__name__}: {self}"]
