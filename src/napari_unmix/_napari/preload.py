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
"""

from __future__ import annotations

import importlib
import logging
import threading

__all__ = ["WARMED_MODULES", "warm_imports"]

#: What the dock's later actions import (the spectra dock and figure export).
WARMED_MODULES = ("matplotlib.figure", "matplotlib.backends.backend_qtagg",
                  "matplotlib.backends.backend_agg", "matplotlib.ticker")

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
