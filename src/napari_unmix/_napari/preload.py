"""Heavy imports warmed in the background, so that no click waits for them.

Opening the dock must not hold napari's GUI thread for the seconds that matplotlib
(the spectra dock, the k curves, figure export) takes to import on a slow machine.
The modules that draw import it where they need it; :func:`warm_imports`, called
when the dock opens, imports it once per process on a daemon thread in the
meantime.  Python's import lock makes this safe: a GUI-thread import of the same
module waits for the thread and finds it loaded.  The thread then draws one small
figure of its own on matplotlib's Agg canvas, which fills the font cache and builds
the tick-label parser (the first plot in the spectra dock paid 0.4 s for that);
no widget and no figure of the dock is touched off the GUI thread.

The dock starts it :data:`WARM_AFTER_MS` after it is built, not at once: the thread
shares the GIL with the GUI thread, and running while napari laid out and painted
the new dock made that first paint three times as long (136 ms alone, 470 ms beside
the imports, on the 2-core test machine).  A user reads the dock for longer than
that before clicking anything that draws.
"""

from __future__ import annotations

import importlib
import logging
import threading

__all__ = ["WARMED_MODULES", "WARM_AFTER_MS", "warm_imports", "warm_imports_later"]

#: What the dock's later actions import (the spectra dock and figure export).
WARMED_MODULES = ("matplotlib.figure", "matplotlib.backends.backend_qtagg",
                  "matplotlib.backends.backend_agg", "matplotlib.ticker")

#: How long after the dock is built the warm-up starts (see the module doc).
WARM_AFTER_MS = 300

_started: threading.Thread | None = None
_lock = threading.Lock()


def _draw_once() -> None:
    """One throwaway Agg figure: fonts found, text laid out, a mathtext label parsed."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(2, 1.5), layout="constrained")
    ax = fig.add_subplot()
    ax.plot([0.0, 1e-3], [0.0, 1e4], label="x")
    ax.set_xlabel("wavenumber (cm$^{-1}$)")
    ax.legend()
    FigureCanvasAgg(fig).draw()


def _import_all(names) -> None:
    log = logging.getLogger(__name__)
    for name in names:
        try:
            importlib.import_module(name)
        except Exception:  # a failing import is reported where it is needed
            log.debug("warming %s failed", name, exc_info=True)
    try:
        _draw_once()
    except Exception:
        log.debug("warming matplotlib's drawing failed", exc_info=True)


def warm_imports(names=WARMED_MODULES) -> threading.Thread:
    """Start importing ``names`` on a daemon thread (once per process); return it."""
    global _started
    with _lock:
        if _started is None:
            _started = threading.Thread(target=_import_all, args=(tuple(names),),
                                        name="napari-unmix-preload", daemon=True)
            _started.start()
        return _started


def warm_imports_later(delay_ms: int = WARM_AFTER_MS) -> None:
    """Start :func:`warm_imports` from Qt's event loop ``delay_ms`` from now, once the
    widget being built has been laid out and painted."""
    from qtpy.QtCore import QTimer

    QTimer.singleShot(int(delay_ms), warm_imports)
