"""Run core functions in a napari worker thread, with progress and cancel.

The core reports progress through ``callback(ProgressInfo) -> bool | None`` and
stops when the callback returns ``False``.  :func:`start_job` turns that into Qt:
progress reaches the GUI thread through a queued signal, ``job.cancel()`` makes the
next callback return ``False``, and the outcome (result, cancellation or error) is
delivered to the GUI thread once.  Exceptions are caught in the worker and handed
over as values, so the dock decides how to show them and always becomes usable
again.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from qtpy.QtCore import QObject, Signal

from ..core.progress import Cancelled, ProgressInfo

__all__ = ["Job", "Outcome", "start_job"]


@dataclass
class Outcome:
    """What a job ended with: exactly one of ``value``, ``cancelled`` or ``error``."""

    value: Any = None
    cancelled: bool = False
    error: BaseException | None = None


class _Relay(QObject):
    """Lives in the GUI thread; signals emitted from the worker are queued to it."""

    progress = Signal(object)


class Job:
    """A running unmixing job.

    Attributes
    ----------
    worker : napari.qt.threading.FunctionWorker
    """

    def __init__(self, worker, relay: _Relay, cancel_event: threading.Event):
        self.worker = worker
        self._relay = relay  # keep the relay alive as long as the job
        self._cancel = cancel_event
        self.done = False

    def cancel(self) -> None:
        """Ask the job to stop at its next progress report (typically < 1 s)."""
        # not worker.quit(): superqt drops the ``returned`` signal of a quit worker,
        # and the outcome (Cancelled) must still reach the dock
        self._cancel.set()

    @property
    def cancel_requested(self) -> bool:
        return self._cancel.is_set()


def start_job(func: Callable[..., Any], *, on_progress: Callable[[ProgressInfo], None],
              on_done: Callable[[Outcome], None]) -> Job:
    """Start ``func(callback=...)`` in a napari worker thread.

    Parameters
    ----------
    func : callable
        Called in the worker as ``func(callback=cb)``; ``cb`` is a core progress
        callback.  Its return value becomes ``Outcome.value``.
    on_progress : callable
        Called in the GUI thread with every :class:`ProgressInfo`.
    on_done : callable
        Called in the GUI thread once, with the :class:`Outcome`.

    Returns
    -------
    Job
    """
    from napari.qt.threading import create_worker

    cancel_event = threading.Event()
    relay = _Relay()
    relay.progress.connect(on_progress)

    def callback(info: ProgressInfo) -> bool:
        relay.progress.emit(info)
        return not cancel_event.is_set()

    def work() -> Outcome:
        try:
            return Outcome(value=func(callback=callback))
        except Cancelled:
            return Outcome(cancelled=True)
        except Exception as exc:  # handed to the GUI thread, shown as a notification
            return Outcome(error=exc)

    worker = create_worker(work, _start_thread=False)
    job = Job(worker, relay, cancel_event)

    def finish(outcome: Outcome) -> None:
        job.done = True
        on_done(outcome)

    worker.returned.connect(finish)
    worker.start()
    return job
