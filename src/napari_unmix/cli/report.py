"""What ``run`` tells about a finished fit beyond its one-line summary."""

from __future__ import annotations

import math

from ..core.summaries import NMFSummary
from .console import note, say

__all__ = ["describe", "note_fallbacks", "say_seed_drift"]


def describe(res, spec) -> str:
    """What ran, e.g. ``"nmf hals/numpy on cpu"`` (the solver for modes with a table).

    Parameters
    ----------
    res : UnmixResult
    spec : ModeSpec
        The mode of ``res``.

    Returns
    -------
    str
    """
    solver = res.summary.solver if spec.solvers is not None else None
    what = f"{res.mode} {solver}/{res.backend}" if solver else f"{res.mode}"
    return f"{what} on {res.device}"


def note_fallbacks(res, quiet) -> None:
    """A note for every component whose spectrum came from a fallback.

    Parameters
    ----------
    res : UnmixResult
    quiet : bool
    """
    seeds = res.summary.seeds
    for rep in (seeds.components or []) if seeds is not None else []:
        if rep.h_fallback:
            note(f"component {rep.name!r}: spectrum estimated by the {rep.h_fallback} "
                 "fallback (no usable spectrum seed was given); check it before relying "
                 "on it.", quiet)


def say_seed_drift(res, quiet) -> None:
    """One line on how far a seeded fit moved each spectrum from its seed, and the
    closest pair of fitted spectra (the warnings past the limits are printed apart).

    Parameters
    ----------
    res : UnmixResult
    quiet : bool
    """
    s = res.summary
    drift = s.seed_drift if isinstance(s, NMFSummary) else None
    if drift is None or not drift.angles:
        return
    names = list(res.component_names)
    moves = ", ".join(f"{n} {math.degrees(a):.0f} deg"
                      for n, a, locked in zip(names, drift.angles, s.anchor or [0] * len(names),
                                              strict=False) if locked is not None)
    text = f"seeds: the fit moved the spectra {moves or '(all locked)'}"
    if drift.min_pair is not None:
        i, j, angle = drift.min_pair
        text += (f"; closest pair {names[i]} / {names[j]}, {math.degrees(angle):.0f} deg "
                 "apart")
    say(text, quiet=quiet)
