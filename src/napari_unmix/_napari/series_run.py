"""Glue between the dock and :func:`napari_unmix.core.unmix_series` for z / t series.

Which axis of an image is its series axis, how the dock's component rows become
seeds for a series run (ROIs drawn on one plane or on all), how a
:class:`~napari_unmix.core.series.SeriesResult` becomes one result for the layers,
and the summary text the dock shows for it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from ..core.components import FixedW, RoiLabel, RoiMask
from ..core.modes import MODES
from ..core.result import UnmixResult
from .rois import ImageGrid, RoiError
from .settings_form import SERIES_CHOICES


@dataclass(frozen=True)
class SeriesPlan:
    """How a series run goes: the dock's choice, the series axis and the reference."""

    choice: str  # "per-plane", "plane" or "pooled" (see SERIES_CHOICES)
    axis: int  # series axis of the image data
    n_planes: int
    plane: int  # reference plane (basis plane, or the plane others are ordered like)

    @property
    def strategy(self) -> str:
        return "per-slice" if self.choice == "per-plane" else "shared-basis"

    @property
    def reference(self):
        return "pooled" if self.choice == "pooled" else self.plane

    @property
    def label(self) -> str:
        return {v: k for k, v in SERIES_CHOICES.items()}[self.choice].replace(
            "plane N", f"plane {self.plane}")


# -- z / t series --------------------------------------------------------------------------
def series_axis(grid: ImageGrid) -> int | None:
    """The series (z / t) axis of an image: its first spatial axis in front of the Y-X
    plane, or None for a single spectral image ``(C, Y, X)``."""
    return grid.plane_dims[0] if grid.plane_dims else None


def _ranges(values) -> str:
    """``[0, 1, 2, 5]`` -> ``"0-2, 5"``."""
    parts: list[str] = []
    for v in sorted(int(x) for x in values):
        if parts and v == parts[-1][1] + 1:
            parts[-1][1] = v
        else:
            parts.append([v, v])
    return ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in parts)


def _on_planes(mask: np.ndarray) -> list[int]:
    """Planes (first axis) on which a spatial mask selects pixels."""
    return np.flatnonzero(mask.reshape(mask.shape[0], -1).any(axis=1)).tolist()


def series_seeds(comps, labels, grid: ImageGrid, plan: SeriesPlan):
    """The components (and label image) of a series run, with their spatial seeds put
    on the plane(s) the strategy fits; see the module documentation.

    Returns ``(components, labels, notes)``; ``notes`` are lines to tell the user.
    Raises RoiError when a seed does not fit the strategy.
    """
    spatial = grid.spatial_shape  # the series axis comes first
    z = plan.plane
    if plan.choice == "pooled":
        geo = [c.name for c in comps if isinstance(c.h_source, (RoiMask, RoiLabel))]
        if geo:
            raise RoiError(
                "A shared basis from all planes is fitted on a pixel sample pooled from "
                "every plane, which has no image geometry, so ROI and label seeds cannot be "
                f"used (component(s) {', '.join(map(repr, geo))}). Choose 'shared basis "
                "from plane N' with N the plane the ROIs are on, or 'per plane', or seed "
                "these components from spectrum files or Gaussian models.")
    lab = None if labels is None else np.asarray(labels)
    out, no_map = [], []
    for c in comps:
        h, w = c.h_source, c.w_source
        if isinstance(h, RoiMask):
            mask = np.asarray(h.mask).reshape(spatial)
            on = _on_planes(mask)
            if plan.choice == "plane":
                if z not in on:
                    raise RoiError(
                        f"Component {c.name!r}: its ROI has no pixel on plane {z}, the "
                        f"reference plane of the shared basis (it lies on plane(s) "
                        f"{_ranges(on)}). Set the reference plane to a plane the ROI is on, "
                        f"or draw the ROI on plane {z}.")
                h = RoiMask(mask[z])
            else:  # per plane: one mask for every plane
                if len(on) != plan.n_planes or not (mask == mask[:1]).all():
                    raise RoiError(
                        f"Component {c.name!r}: its ROI is not the same on every plane (it "
                        f"covers plane(s) {_ranges(on)}), but a per-plane run seeds every "
                        "plane from the same ROI. Draw it in a 2-D Shapes layer (the same "
                        "region on every plane), seed it from a Labels layer painted on "
                        "every plane, or choose 'shared basis from plane N'.")
                h = RoiMask(mask[0])
        if isinstance(h, RoiLabel) and lab is not None:
            per_plane = lab.reshape((plan.n_planes, -1)) == h.label_id
            missing = [i for i in range(plan.n_planes) if not per_plane[i].any()]
            if plan.choice == "plane" and z in missing:
                on = [i for i in range(plan.n_planes) if i not in missing]
                raise RoiError(
                    f"Component {c.name!r}: label {h.label_id} is not on plane {z}, the "
                    f"reference plane of the shared basis (it is on plane(s) {_ranges(on)}). "
                    "Set the reference plane to a plane the label is on, or paint it there.")
            if plan.choice == "per-plane" and missing:
                raise RoiError(
                    f"Component {c.name!r}: label {h.label_id} is missing on plane(s) "
                    f"{_ranges(missing)}; a per-plane run seeds every plane from its own "
                    "pixels of the label. Paint it on every plane, or choose 'shared basis "
                    "from plane N'.")
        if isinstance(w, FixedW):
            if plan.choice == "plane":
                w = FixedW(np.asarray(w.map).reshape(spatial)[z])
            else:
                w = None
                no_map.append(c.name)
        out.append(c if (h is c.h_source and w is c.w_source)
                   else dataclasses.replace(c, h_source=h, w_source=w))
    if lab is not None and plan.choice == "plane":
        lab = lab.reshape(spatial)[z]
    notes = []
    if no_map:
        notes.append(f"{', '.join(map(repr, no_map))}: seeded from the previous result's "
                     f"spectrum only; a {plan.label!r} run cannot take its maps (they differ "
                     "between planes) as seed maps.")
    return out, lab, notes


def series_as_result(sr, plan: SeriesPlan) -> UnmixResult:
    """One UnmixResult over the whole stack from a SeriesResult (see the module
    documentation): what the layers, writers and "Use result as seeds" work with."""
    k = sr.n_components
    planes = sr.planes
    summary = dict(sr.summary)
    summary["planes"] = planes
    ref = plan.plane if plan.choice != "pooled" else None
    seeds = ((summary.get("basis") or {}).get("seeds") if sr.shared_basis
             else planes[ref].get("seeds") if ref is not None and ref < len(planes) else None)
    if seeds:
        summary["seeds"] = seeds
    arrays = dict(sr.arrays)
    if not sr.shared_basis:
        arrays["plane_H"] = sr.H
    series = {key: v for key, v in sr.params.items() if key != "config"}
    series["choice"] = plan.choice
    first = planes[0] if planes else {}
    return UnmixResult(
        W=sr.maps.reshape(k, -1).T, H=sr.H if sr.shared_basis else sr.H.mean(axis=0),
        mode=sr.mode, backend=str(first.get("backend", "")),
        device=str(first.get("device", "cpu")), n_iter=int(sr.summary.get("max_plane_iter", 0)),
        reconstruction_err=float(sr.summary.get("reconstruction_err", np.nan)),
        summary=summary, params={"config": sr.params.get("config"), "series": series},
        arrays=arrays, component_names=sr.component_names, spectral_axis=sr.spectral_values,
        spectral_unit=sr.spectral_unit)


def _per_plane(values, spec=".3g", *, worst=max) -> str:
    """Every plane's value (up to 8 planes), else the range and the worst plane."""
    vals = [int(v) if spec == "d" else float(v) for v in values]
    if not vals:
        return "n/a"
    if len(vals) <= 8:
        return ", ".join(format(v, spec) for v in vals)
    lo, hi = min(vals), max(vals)
    if lo == hi:
        return f"{format(lo, spec)} on every plane"
    bad = vals.index(worst(vals))
    return (f"{format(lo, spec)} to {format(hi, spec)} "
            f"({'highest' if worst is max else 'lowest'} on plane {bad})")


def _mode_label(mode) -> str:
    return MODES[mode].label if mode in MODES else str(mode)


def series_summary(sr) -> str:
    """A few lines on a series run: the basis fit, every plane's iterations, cap hits
    and errors, the component matching of per-plane runs, seed and time."""
    s = sr.summary
    n = sr.n_planes
    cfg = sr.params.get("config") or {}
    planes = sr.planes
    k = sr.n_components
    lines = []
    if sr.shared_basis:
        b = s.get("basis") or {}
        where = (f"plane {b.get('plane')}" if b.get("source") == "plane" else
                 f"a pooled sample of {b.get('pool_size', '?')} pixels from all planes")
        lines.append(f"Shared basis · {k} components · {n} planes")
        text = f"basis: {_mode_label(b.get('mode', cfg.get('mode')))} on {where}"
        if b.get("mode") != "pca" and b.get("n_iter") is not None:
            cap = ("cap hit: raise max_iter" if b.get("hit_max_iter") else
                   "converged" if b.get("converged") else "done")
            text += f", {b.get('n_iter')} iterations ({cap})"
        lines.append(text)
        lines.append(f"planes: fixed-H NNLS ({sr.params.get('nnls_solver')}/"
                     f"{sr.params.get('nnls_backend')}), maps comparable across planes")
    else:
        lines.append(f"Per plane · {_mode_label(sr.mode)} · {k} components · {n} planes")
        m = s.get("match") or {}
        if m:
            policy = {"previous": "matched to the neighbouring plane",
                      "reference": f"matched to plane {m.get('reference')}",
                      "none": "in the seeds' order"}.get(m.get("policy"), m.get("policy"))
            angle = float(np.degrees(m.get("max_angle", 0.0)))
            lines.append(f"components {policy}; largest spectral angle between planes "
                         f"{angle:.1f}°")
    if sr.mode == "pca":
        evr = [p.get("cumulative_explained_variance") for p in planes]
        if all(v is not None for v in evr):
            lines.append(f"explained variance per plane: "
                         f"{_per_plane(evr, '.1%', worst=min)}")
    elif sr.mode == "nnls" and planes and all(p.get("exact") for p in planes):
        hit = s.get("planes_hit_max_iter") or []
        if s.get("n_capped_pixels"):
            lines.append(f"exact NNLS: {s['n_capped_pixels']} pixel(s) hit max_iter="
                         f"{cfg.get('max_iter', '?')} and are NaN (plane(s) {_ranges(hit)}): "
                         "raise max_iter")
        else:
            lines.append("exact NNLS: every pixel of every plane solved")
    else:
        max_iter = cfg.get("max_iter", "?")
        hit = s.get("planes_hit_max_iter") or []
        cap = (f"cap hit on plane(s) {_ranges(hit)}: raise max_iter" if hit else "within cap")
        what = "per chunk, " if sr.mode == "nnls" else ""
        its = [p.get("max_chunk_iter", p.get("n_iter", 0)) for p in planes]
        lines.append(f"iterations per plane ({what}of {max_iter}): "
                     f"{_per_plane(its, 'd')}; {cap}")
        if s.get("n_capped_pixels"):
            lines.append(f"{s['n_capped_pixels']} capped pixel(s) in all planes")
    lines.append(f"relative error per plane: {_per_plane(s.get('plane_relative_errors', []))}")
    lines.append(f"reconstruction error: {float(s.get('reconstruction_err', np.nan)):.4g} "
                 f"(relative {float(s.get('relative_error', np.nan)):.3g})")
    tail = []
    if cfg.get("random_state") is not None and cfg.get("mode") != "pca":
        tail.append(f"random_state {cfg['random_state']}")
    if s.get("time_s") is not None:
        tail.append(f"time {float(s['time_s']):.2f} s")
    if tail:
        lines.append(" · ".join(tail))
    return "\n".join(lines)
