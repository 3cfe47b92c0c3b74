"""Run core functions in a napari worker thread, with progress and cancel.

The core reports progress through ``callback(ProgressInfo) -> bool | None`` and
stops when the callback returns ``False``.  :func:`start_job` turns that into Qt:
progress reaches the GUI thread through a queued signal, ``job.cancel()`` makes the
next callback return ``False``, and the outcome (result, cancellation or error) is
delivered to the GUI thread once.  Exceptions are caught in the worker and handed
over as values, so the dock decides how to show them and always becomes usable
again.

Warnings raised while the job runs are recorded and handed over with the outcome
(``Outcome.warnings``) instead of being printed from the worker thread, so the dock
shows them as notifications.  Python's warning filters are process-wide (before
Python 3.14), so warnings that other threads raise during the job are collected
too; they are shown, not lost.

A job whose owner goes away (the dock is destroyed, the viewer closed) is
*detached*: it is cancelled and nothing more is delivered to the GUI.

Showing an outcome can take longer than a click should wait (napari builds each new
layer's visual and controls in about 0.1 s on a slow machine).  ``on_done`` may
therefore return a generator: its steps run one per pass of Qt's event loop, and
the job is *done* after the last one, so that input and redraws are served between
the layers.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any

from qtpy.QtCore import QObject, Signal

from ..core.progress import Cancelled, ProgressInfo
from .passes import run_in_passes

__all__ = ["Job", "Outcome", "start_job"]


@dataclass
class Outcome:
    """What a job ended with: exactly one of ``value``, ``cancelled`` or ``error``.

    ``warnings`` lists ``(category, message)`` of the warnings raised while the job
    ran, each message once, in order.
    """

    value: Any = None
    cancelled: bool = False
    error: BaseException | None = None
    warnings: list = field(default_factory=list)


class _Relay(QObject):
    """Lives in the GUI thread; signals emitted from the worker are queued to it."""

    progress = Signal(object)


class Job:
    """A running unmixing job.

    Attributes
    ----------
    worker : napari.qt.threading.FunctionWorker
    done : bool
        True once the outcome was delivered, every step of showing it included (or
        dropped, for a detached job).
    """

    def __init__(self, worker, relay: _Relay, cancel_event: threading.Event):
        self.worker = worker
        self._relay = relay  # keep the relay alive as long as the job
        self._cancel = cancel_event
        self._detached = False
        self._delivered = False
        self.done = False

    def cancel(self) -> None:
        """Ask the job to stop at its next progress report (typically < 1 s)."""
        # not worker.quit(): superqt drops the ``returned`` signal of a quit worker,
        # and the outcome (Cancelled) must still reach the dock
        self._cancel.set()

    def detach(self) -> None:
        """Cancel, and deliver nothing more (no progress, no outcome) to the GUI.

        For owners that are going away, e.g. a dock widget being destroyed.
        """
        self._detached = True
        self._cancel.set()

    @property
    def cancel_requested(self) -> bool:
        return self._cancel.is_set()

    @property
    def detached(self) -> bool:
        return self._detached


def _unique(caught) -> list:
    seen, out = set(), []
    for w in caught:
        key = (w.category, str(w.message))
        if key not in seen:
            seen.add(key)
            out.append(key)
    return out


def start_job(func: Callable[..., Any], *, on_progress: Callable[[ProgressInfo], None],
              on_done: Callable[[Outcome], None]) -> Job:
    """Start ``func(callback=...)`` in a napari worker thread.

    Parameters
    ----------
    func : callable
        Called in the worker as ``func(callback=cb)``; ``cb`` is a core progress
        callback.  Its return value becomes ``Outcome.value``.  It must not touch
        layers or widgets (they belong to the GUI thread).
    on_progress : callable
        Called in the GUI thread with every :class:`ProgressInfo`.
    on_done : callable
        Called in the GUI thread once, with the :class:`Outcome` (not at all for a
        detached job).  When it returns a generator, its steps run one per pass of
        the event loop (:func:`.passes.run_in_passes`) and the job is done after the last.

    Returns
    -------
    Job
    """
    from napari.qt.threading import create_worker

    cancel_event = threading.Event()
    relay = _Relay()

    def callback(info: ProgressInfo) -> bool:
        relay.progress.emit(info)
        return not cancel_event.is_set()

    def work() -> Outcome:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                out = Outcome(value=func(callback=callback))
            except Cancelled:
                out = Outcome(cancelled=True)
            except Exception as exc:  # handed to the GUI thread, shown as a notification
                out = Outcome(error=exc)
        out.warnings = _unique(caught)
        return out

    worker = create_worker(work, _start_thread=False)
    job = Job(worker, relay, cancel_event)

    def progress(info: ProgressInfo) -> None:
        if not job.done and not job.detached:
            on_progress(info)

    def finish(outcome: Outcome) -> None:
        if job._delivered:
            return
        job._delivered = True
        job.done = True  # a plain ``on_done`` sees its job over (it may start the next)
        if job.detached:
            return
        steps = on_done(outcome)
        if isinstance(steps, Generator):  # over after its last step
            job.done = False
            run_in_passes(steps, stop=lambda: job.detached,
                          on_end=lambda: setattr(job, "done", True))

    relay.progress.connect(progress)
    worker.returned.connect(finish)
    # napari quits the workers it knows about when its window closes, and a quit
    # worker never emits ``returned``; ``finished`` always comes (after ``returned``)
    worker.finished.connect(lambda: finish(Outcome(cancelled=True)))
    worker.start()
    return job
