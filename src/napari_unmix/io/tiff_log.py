"""What tifffile logs while a file is read, so that readers can refuse damaged files.

tifffile reports many problems of a file (truncated data, invalid page offsets)
only in its log and falls back to a partial view.  The TIFF readers
(:mod:`~napari_unmix.io.tiff_stacks`, :mod:`~napari_unmix.io.slice_folder`)
collect that log with :func:`tifffile_log`, turn its errors into a
:class:`ValueError` and keep its warnings as notes (:func:`log_messages`).
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading

__all__ = ["log_messages", "tifffile_log"]


class _Capture(logging.Handler):
    def __init__(self):
        super().__init__(level=logging.WARNING)
        self.thread = threading.get_ident()
        self.records: list[logging.LogRecord] = []

    def emit(self, record):
        if record.thread == self.thread:
            self.records.append(record)


@contextlib.contextmanager
def tifffile_log():
    """Collect what tifffile logs (WARNING and up) in this thread.

    Yields
    ------
    list of logging.LogRecord
        Filled while the ``with`` block runs; records of other threads are left out.
    """
    log = logging.getLogger("tifffile")
    handler = _Capture()
    log.addHandler(handler)
    try:
        yield handler.records
    finally:
        log.removeHandler(handler)


def log_messages(records, level) -> list[str]:
    """The messages of the records at ``level`` or above, without tifffile's object prefix.

    Parameters
    ----------
    records : list of logging.LogRecord
        From :func:`tifffile_log`.
    level : int
        E.g. ``logging.ERROR``.

    Returns
    -------
    list of str
    """
    # tifffile prefixes messages with the object's repr, e.g. "<tifffile.TiffPages @8> "
    return [re.sub(r"<tifffile\.\w+[^>]*>\s*", "", r.getMessage()).strip()
            for r in records if r.levelno >= level]
