"""Short texts the dock shows about a finished run: the fit summary and seed reports."""

from __future__ import annotations

from ..core.modes import MODES

__all__ = ["fit_summary", "seed_report", "seed_reports"]


def _fmt(v, spec=".4g"):
    return "n/a" if v is None else format(float(v), spec)


def fit_summary(result) -> str:
    """A few lines: mode and implementation, iterations, error, seed, time."""
    s = result.summary
    mode = MODES[result.mode].label if result.mode in MODES else result.mode
    algo = s.get("solver") or s.get("algorithm") or ""
    impl = f"{algo}/{result.backend}" if algo else result.backend
    lines = [f"{mode} · {result.n_components} components · {impl} on {result.device}"]
    if result.mode == "pca":
        cum = s.get("cumulative_explained_variance")
        lines.append(f"explained variance: {_fmt(cum, '.1%')} in {result.n_components} PCs")
    elif result.mode == "nnls":
        cap = "cap hit" if s.get("hit_max_iter") else "within cap"
        lines.append(f"iterations: max {s.get('max_chunk_iter', result.n_iter)} of "
                     f"{s.get('max_iter', '?')} per chunk ({cap}); "
                     f"{s.get('n_capped_pixels', 0)} capped pixel(s)")
    else:
        cap = ("cap hit: raise max_iter" if s.get("hit_max_iter")
               else "converged" if s.get("converged") else "stopped")
        lines.append(f"iterations: {result.n_iter} of {s.get('max_iter', '?')} ({cap})")
    lines.append(f"reconstruction error: {_fmt(result.reconstruction_err)} "
                 f"(relative {_fmt(s.get('relative_error'), '.3g')})")
    moved = s.get("offsets_moved")
    if moved:
        amounts = ", ".join(f"{name} {_fmt(v, '.3g')}" for name, v in moved["amounts"].items())
        lines.append(f"offsets moved into {moved['into']}: {amounts}")
    config = result.params.get("config") or {}
    seed = config.get("random_state", result.params.get("random_state"))
    tail = [f"random_state {seed}"] if seed is not None and result.mode != "pca" else []
    t = s.get("analysis_time_s", s.get("time_s"))
    if t is not None:
        tail.append(f"time {float(t):.2f} s")
    if tail:
        lines.append(" · ".join(tail))
    return "\n".join(lines)


def seed_report(entry: dict) -> tuple[str, str]:
    """One component's seed report: a one-line text and a tooltip with its warnings."""
    h = entry.get("h_source") or "?"
    text = f"H0: {h}"
    if entry.get("h_fallback"):
        text += f" (fallback: {entry['h_fallback']})"
    if entry.get("w_source"):
        text += f" · W0: {entry['w_source']}"
        if entry.get("overwritten"):
            text += " (overwrote spectral info)"
    text += f" · {entry.get('working_data', 'raw')} data"
    warnings = list(entry.get("warnings") or [])
    if warnings:
        text = "⚠ " + text
    return text, "\n".join(warnings)


def seed_reports(result) -> dict[str, tuple[str, str]]:
    """Seed report of every component of a seeded result, by component name."""
    seeds = result.summary.get("seeds") or {}
    return {e["name"]: seed_report(e) for e in seeds.get("components", [])}
