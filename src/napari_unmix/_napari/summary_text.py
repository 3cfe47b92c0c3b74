"""Short texts the dock shows about a finished run: the fit summary and seed reports.

The texts read the typed summaries of :mod:`napari_unmix.core.summaries` by
attribute (what kind of fit it was is the summary's type) and the run's settings
from :attr:`UnmixResult.config <napari_unmix.core.result.UnmixResult.config>`.
Nothing here imports Qt.
"""

from __future__ import annotations

from ..core.modes import MODES
from ..core.summaries import NMFSummary, NNLSSummary, PCASummary

__all__ = ["fit_summary", "mode_label", "seed_report", "seed_reports", "shows_random_state"]


def _fmt(v, spec=".4g"):
    return "n/a" if v is None else format(float(v), spec)


def _or(value, default="?"):
    return default if value is None else value


def mode_label(mode) -> str:
    """The menu name of a mode (the name itself for a mode not registered here)."""
    return MODES[mode].label if mode in MODES else str(mode)


def shows_random_state(mode) -> bool:
    """Whether a run of ``mode`` makes random choices worth quoting its seed: it
    uses ``random_state``, or seeds with fallbacks (which may be random)."""
    spec = MODES.get(mode)
    return spec is not None and (spec.uses("random_state") or spec.uses("h_fallback"))


def _iterations(result, s) -> str:
    if isinstance(s, PCASummary):
        return (f"explained variance: {_fmt(s.cumulative_explained_variance, '.1%')} in "
                f"{result.n_components} PCs")
    if isinstance(s, NNLSSummary):
        cap = "cap hit" if s.hit_max_iter else "within cap"
        return (f"iterations: max {_or(s.max_chunk_iter, result.n_iter)} of "
                f"{_or(s.max_iter)} per chunk ({cap}); {s.n_capped} capped pixel(s)")
    max_iter = s.max_iter if isinstance(s, NMFSummary) else None
    converged = s.converged if isinstance(s, NMFSummary) else None
    cap = ("cap hit: raise 'max iterations'" if s.hit_max_iter
           else "converged" if converged else "stopped")
    return f"iterations: {result.n_iter} of {_or(max_iter)} ({cap})"


def fit_summary(result) -> str:
    """A few lines: mode and implementation, iterations, error, seed, time."""
    s = result.summary
    solver = s.solver if isinstance(s, (NMFSummary, NNLSSummary)) else None
    impl = f"{solver}/{result.backend}" if solver else result.backend
    lines = [f"{mode_label(result.mode)} · {result.n_components} components · {impl} on "
             f"{result.device}",
             _iterations(result, s),
             f"reconstruction error: {_fmt(result.reconstruction_err)} "
             f"(relative {_fmt(s.relative_error, '.3g')})"]
    left_out = next((step.get("omitted_pixels") for step in (s.preprocessing or [])
                     if step.get("step") == "non-finite pixels"), None)
    if left_out:
        lines.append(f"NaN pixels: {left_out} left out of the fit (their maps are empty)")
    drift = s.seed_drift if isinstance(s, NMFSummary) else None
    names = list(result.component_names)
    if drift is not None and drift.angles:
        worst = max(range(len(drift.angles)), key=lambda j: drift.angles[j])
        text = (f"seeds: the spectra moved up to {_deg(drift.angles[worst])} "
                f"({names[worst]})")
        if drift.min_pair is not None:
            i, j, angle = drift.min_pair
            text += f"; closest pair {names[i]} / {names[j]} {_deg(angle)} apart"
        if drift.drifted or drift.collapsed or drift.seeds_alike:
            text = "⚠ " + text
        lines.append(text)
    moved = s.offsets_moved
    if moved is not None and moved.amounts is not None:
        amounts = ", ".join(f"{name} {_fmt(v, '.3g')}" for name, v in moved.amounts.items())
        lines.append(f"offsets moved into {moved.into}: {amounts}")
    config = result.config
    seed = config.random_state if config is not None else result.params.get("random_state")
    tail = [f"random_state {seed}"] if seed is not None and shows_random_state(result.mode) \
        else []
    t = s.analysis_time_s if s.analysis_time_s is not None else s.time_s
    if t is not None:
        tail.append(f"time {float(t):.2f} s")
    if tail:
        lines.append(" · ".join(tail))
    return "\n".join(lines)


def _deg(angle) -> str:
    import math

    return f"{math.degrees(float(angle)):.0f}°"


def seed_report(entry, drift=None, layer: str | None = None) -> tuple[str, str]:
    """One component's seed report (a :class:`~napari_unmix.core.summaries.SeedReport`):
    a one-line text and a tooltip with its warnings.  ``drift``: the angle (rad)
    between its fitted spectrum and its seed, when the fit refined it; ``layer``: the
    layer its region was read from."""
    text = f"H0: {entry.h_source or '?'}"
    if layer:
        text += f" of layer {layer!r}"
    if entry.h_fallback:
        text += f" (fallback: {entry.h_fallback})"
    if entry.w_source:
        text += f" · W0: {entry.w_source}"
        if entry.overwritten:
            text += " (overwrote spectral info)"
    text += f" · {entry.working_data or 'raw'} data"
    if drift is not None:
        text += f" · moved {_deg(drift)} from its seed"
    warnings = list(entry.warnings or [])
    if warnings:
        text = "⚠ " + text
    return text, "\n".join(warnings)


def seed_reports(result, layers=None) -> dict[str, tuple[str, str]]:
    """Seed report of every component of a seeded result, by component name (empty
    for a result without seeds); ``layers``: ``{component: layer name}`` of the
    components seeded from a Shapes or Labels layer."""
    layers = layers or {}
    seeds = result.summary.seeds
    if seeds is None:
        return {}
    drift = result.summary.seed_drift if isinstance(result.summary, NMFSummary) else None
    angles = dict(zip(result.component_names, drift.angles, strict=False)) \
        if drift is not None and drift.angles else {}
    return {e.name: seed_report(e, angles.get(e.name), layers.get(e.name))
            for e in seeds.components or []}
