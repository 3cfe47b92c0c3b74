"""Work spread over passes of Qt's event loop, so that no pass holds the GUI thread long.

Between two passes Qt delivers the user's input, paints and timers.  Work is put in a
later pass with a timer of :data:`NEXT_PASS_MS`: a zero delay is not enough, since
Qt 6 posts a zero-delay single shot as an event, and events posted while posted
events are delivered are delivered in the same pass, with no input or timer between.
"""

from __future__ import annotations

from collections.abc import Callable, Generator

from qtpy.QtCore import QTimer

__all__ = ["NEXT_PASS_MS", "later", "run_in_passes"]

#: Delay (ms) that puts work in a later pass of Qt's event loop.
NEXT_PASS_MS = 1


def later(func: Callable[[], object]) -> None:
    """Call ``func()`` in a later pass of the event loop."""
    QTimer.singleShot(NEXT_PASS_MS, func)


def run_in_passes(steps: Generator, *, stop: Callable[[], bool] = lambda: False,
                  on_end: Callable[[], None] = lambda: None) -> None:
    """Run one step of the generator ``steps`` now and each next one in a later pass
    of Qt's event loop (pending input and paints come first).

    ``stop()`` is asked before every later step: when it is true the rest is dropped
    (the generator is closed).  ``on_end()`` is called once the generator is over,
    however it ended: finished, stopped, or raising (the exception then propagates
    to Qt's handler, which napari shows as a notification).
    """

    def step() -> None:
        if stop():
            steps.close()
            on_end()
            return
        try:
            next(steps)
        except StopIteration:
            on_end()
            return
        except BaseException:
            on_end()
            raise
        later(step)

    step()
