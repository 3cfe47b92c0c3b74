"""Progress of a series run, and the warnings of its planes."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

from ..progress import Cancelled, ProgressInfo
from ..sources.regions import plane_ranges

__all__ = ["SeriesProgress", "SeriesProgressInfo", "WarningLog"]


@dataclass(frozen=True)
class SeriesProgressInfo(ProgressInfo):
    """A :class:`ProgressInfo` of a series run.

    ``stage``, ``iteration``, ``max_iter`` and ``error`` are those of the step that
    runs (``"sample"`` while the pool is drawn, the stages of the basis fit, the
    stages of a plane's run, and ``"series"`` after each finished plane, with
    ``iteration`` planes of ``max_iter`` done).  ``fraction`` is the rough fraction of
    the whole series done; it never decreases.

    Attributes
    ----------
    plane : int or None
        Index of the plane being processed; None while the shared basis is fitted
        on a pool of planes.
    n_planes : int
        Number of planes of the series.
    """

    plane: int | None = None
    n_planes: int = 0


class SeriesProgress:
    """Maps the progress of every step onto one fraction of the whole series."""

    def __init__(self, callback, total_units: float, n_planes: int):
        self.callback = callback
        self.total = max(float(total_units), 1e-12)
        self.n_planes = n_planes
        self.done = 0.0
        self.last = 0.0

    def _emit(self, stage, iteration, max_iter, error, fraction, plane):
        self.last = max(self.last, min(max(fraction, 0.0), 1.0))
        info = SeriesProgressInfo(stage, int(iteration), int(max_iter),
                                  None if error is None else float(error), self.last,
                                  plane=plane, n_planes=self.n_planes)
        return self.callback(info)

    def inner(self, weight: float, plane: int | None):
        """A core callback for one step worth ``weight`` units (None if no callback)."""
        if self.callback is None:
            return None
        base = self.done

        def callback(info: ProgressInfo):
            frac = (base + weight * info.fraction) / self.total
            return self._emit(info.stage, info.iteration, info.max_iter, info.error, frac,
                              plane)

        return callback

    def advance(self, weight: float, *, stage: str, iteration: int, max_iter: int,
                plane: int | None, error: float | None = None) -> None:
        """Mark a step of ``weight`` units done; raise Cancelled if asked to stop."""
        self.done += weight
        if self.callback is None:
            return
        if self._emit(stage, iteration, max_iter, error, self.done / self.total,
                      plane) is False:
            where = "" if plane is None else f" after plane {plane}"
            raise Cancelled(f"Series run cancelled{where} ({stage} {iteration}/{max_iter}).")


class WarningLog:
    """Collects the warnings of every plane and re-issues each distinct one once."""

    def __init__(self):
        self.seen: dict[tuple, list] = {}

    def run(self, plane, fn, *args, **kwargs):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            out = fn(*args, **kwargs)
        messages = []
        for w in caught:
            key = (w.category, str(w.message))
            self.seen.setdefault(key, []).append(plane)
            messages.append(f"{w.category.__name__}: {w.message}")
        return out, messages

    def reissue(self, n_planes):
        for (category, message), where in self.seen.items():
            planes = sorted({p for p in where if p is not None})
            parts = ["basis fit"] if None in where else []
            if len(planes) == 1:
                parts.append(f"plane {planes[0]}")
            elif planes:
                parts.append(f"{len(planes)} of {n_planes} planes ({plane_ranges(planes)})")
            warnings.warn(f"{' and '.join(parts)}: {message}", category, stacklevel=3)
