"""Progress reporting and cancellation.

Every long-running core function takes ``callback(info) -> bool | None``.  It is
called with a :class:`ProgressInfo` at the sampled iterations (NNMF) or after each
pixel chunk (NNLS).  Returning ``False`` cancels the run: the function raises
:class:`Cancelled` and returns nothing half-done.  The napari worker and the CLI
progress bar are both driven by this one mechanism.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Cancelled", "ProgressInfo", "Reporter"]


class Cancelled(Exception):  # noqa: N818 - reads better at the call site
    """Raised when a progress callback asks to stop a run."""


@dataclass(frozen=True)
class ProgressInfo:
    """One progress report.

    Attributes
    ----------
    stage : str
        What is running, e.g. ``"nmf"``, ``"nnls"``, ``"pca"``, ``"init"``.
    iteration : int
        Current iteration (NNMF) or number of finished pixel chunks (NNLS).
    max_iter : int
        Iteration cap (NNMF) or number of chunks (NNLS).
    error : float or None
        Reconstruction error ``||X - WH||_F`` at this point, where it is known.
    fraction : float
        Rough fraction of the work done, in ``[0, 1]`` (an iterative solver may
        stop before reaching 1).
    """

    stage: str
    iteration: int
    max_iter: int
    error: float | None = None
    fraction: float = 0.0


class Reporter:
    """Wraps a user callback: builds :class:`ProgressInfo` and raises on cancel.

    ``error_scale`` multiplies every error on its way to the callback: a solver
    that fits the data divided by a power of two (``summary.data_scale``) reports
    its errors in those units, and the user reads them in the data's.
    """

    def __init__(self, callback: Callable[[ProgressInfo], bool | None] | None, stage: str,
                 *, error_scale: float = 1.0):
        self.callback = callback
        self.stage = stage
        self.error_scale = float(error_scale)

    def __call__(self, iteration: int, max_iter: int, error: float | None = None,
                 fraction: float | None = None) -> None:
        if self.callback is None:
            return
        if fraction is None:
            fraction = iteration / max_iter if max_iter else 1.0
        info = ProgressInfo(self.stage, int(iteration), int(max_iter),
                            None if error is None else float(error) * self.error_scale,
                            float(min(max(fraction, 0.0), 1.0)))
        if self.callback(info) is False:
            raise Cancelled(f"{self.stage} cancelled at iteration {iteration}.")
