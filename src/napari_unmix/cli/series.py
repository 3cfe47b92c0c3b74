"""``run --strategy``: a z / t series unmixed plane by plane, as the dock's series panel does.

A stack with a spectral axis and more than two spatial axes, e.g. ``(Z, C, Y, X)``,
is a series.  ``run`` fits it as one volume (``--strategy joint``, the default: the
dock's *joint fit*), or plane by plane through
:func:`~napari_unmix.core.series.unmix_series` with one of the core's
:data:`~napari_unmix.core.series.SERIES_STRATEGIES`:

``--strategy shared-basis``
    The spectra are fitted once, on plane ``--reference N`` or on a pixel sample
    pooled from all planes (``--reference pooled``, the default), then every plane's
    maps by fixed-H NNLS: map values compare across planes.
``--strategy per-slice``
    The analysis runs on every plane; the components are put in the order of plane
    ``--reference N`` (default 0) by ``--match`` (the core's
    :data:`~napari_unmix.core.series.MATCH_POLICIES`), and the console lists the
    spectral angle of every matched component, plane by plane.

The series axis is ``--series-axis I``, by default the axis the dock takes
(:func:`~napari_unmix.core.series.default_series_axis`: the first non-spectral axis
in front of the Y-X plane).  The result folder is the dock's:
:meth:`SeriesResult.as_result <napari_unmix.core.series.SeriesResult.as_result>`
written by :func:`~napari_unmix.io.write_analysis_outputs` (``spectra_zNNN.csv``
per plane for per-slice), and ``result.json`` / ``result.npz`` keep the series'
params (``params.series``: strategy, axis, reference, matching), so
``run --config RESULT`` reruns the series as it ran (:func:`series_plan`); a setup
saved with a series choice (the config's ``series``: the same keys) is run that way
too.  Options given on the command line override the record (``--strategy joint``
fits the whole stack).  The seeds of the config (ROI masks of
the whole series, maps), the region of its background subtraction and ``--labels`` are
put on the plane(s) fitted as the dock puts them (:func:`place_seeds`, the core's
:func:`~napari_unmix.core.series.seeds_for_strategy`).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from ..core import MODES
from ..core.series import (
    MATCH_POLICIES,
    SERIES_STRATEGIES,
    SeedPlacementError,
    SeriesResult,
    default_series_axis,
    seeds_for_strategy,
    spatial_seeds,
    unmix_series,
)
from ..core.sources.regions import plane_ranges
from .console import CLIError, cli_words, note, say

__all__ = ["JOINT", "STRATEGIES", "SeriesPlan", "add_series_options", "check_series_config",
           "place_seeds", "reference", "say_series", "series_plan"]

#: ``--strategy`` for one fit of the whole stack (the default; the dock's joint fit).
JOINT = "joint"
#: The ``--strategy`` choices: the joint fit and the core's series strategies.
STRATEGIES = (JOINT, *SERIES_STRATEGIES)
#: The options that only a series run plane by plane takes (argparse dest -> flag).
_SERIES_FLAGS = {"series_axis": "--series-axis", "reference": "--reference",
                 "match": "--match"}


def reference(text):
    """An argparse type for ``--reference``: a plane index (>= 0) or ``pooled``."""
    import argparse

    if text == "pooled":
        return text
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is neither a plane index nor "
                                         "'pooled'") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be a plane index >= 0, or pooled")
    return value


def add_series_options(run) -> None:
    """The series options of ``run`` (``--strategy``, ``--series-axis``, ``--reference``,
    ``--match``)."""
    run.add_argument("--strategy", choices=STRATEGIES, default=None,
                     help="a z / t series, e.g. (Z, C, Y, X): joint (one fit of every "
                     "plane's pixels together), shared-basis (spectra fitted "
                     "once, then every plane's maps by fixed-H NNLS: comparable across "
                     "planes) or per-slice (every plane fitted on its own, components "
                     "matched across planes); default: that of a series --config, else "
                     "joint")
    run.add_argument("--series-axis", type=int, default=None, metavar="I",
                     help="with --strategy shared-basis / per-slice: the series (z / t) axis "
                     "of the stack (default: its first axis other than the spectral axis "
                     "and Y, X, as in the plugin)")
    run.add_argument("--reference", type=reference, default=None, metavar="N|pooled",
                     help="shared-basis: the plane the spectra are fitted on, or pooled (a "
                     "pixel sample of all planes; the default); per-slice: the plane whose "
                     "component order the others follow (default 0)")
    run.add_argument("--match", choices=MATCH_POLICIES, default=None,
                     help="per-slice: how the components are put in one order, by matching "
                     "each plane's spectra to the neighbouring plane's (previous), to the "
                     "reference plane's (reference), or not (none); default auto: previous "
                     "for unseeded modes, none for seeded ones (the seeds set the order)")


@dataclass(frozen=True)
class SeriesPlan:
    """How a series run goes: what :func:`~napari_unmix.core.series.unmix_series` gets."""

    strategy: str
    axis: int
    n_planes: int
    plane_shape: tuple
    reference: int | str
    match: str = "auto"
    pool_size: int | None = None
    nnls_solver: str | None = None
    nnls_backend: str | None = None

    @property
    def reference_plane(self) -> int | None:
        """The reference plane, or None for a pooled sample."""
        return None if self.reference == "pooled" else int(self.reference)

    @property
    def spatial_shape(self) -> tuple:
        """The maps' spatial shape: the series axis first, then a plane's."""
        return (self.n_planes, *self.plane_shape)

    def run(self, stack, cfg, *, spectral_axis, spectral_values, labels, callback):
        """Run the series (:func:`~napari_unmix.core.series.unmix_series`)."""
        return unmix_series(
            stack, cfg, strategy=self.strategy, series_axis=self.axis,
            spectral_axis=spectral_axis, reference=self.reference, pool_size=self.pool_size,
            match=self.match, nnls_solver=self.nnls_solver, nnls_backend=self.nnls_backend,
            spectral_values=spectral_values, labels=labels, callback=callback)

    def as_result(self, sr: SeriesResult):
        """The series as one result, as the dock saves it (``SeriesResult.as_result``)."""
        return sr.as_result(reference=self.reference_plane)

    def pixel_size(self, sizes, spectral_axis):
        """The stack's pixel sizes over its spatial axes (``spatial_pixel_size``) in the
        order of the maps, the series axis first (None stays None)."""
        if sizes is None:
            return None
        spatial = [i for i in range(len(self.plane_shape) + 2) if i != spectral_axis]
        first = spatial.index(self.axis)
        order = [first, *(i for i in range(len(spatial)) if i != first)]
        return tuple(tuple(seq[i] for i in order) for seq in sizes)


def _recorded(source, strategy):
    """The series params of ``--config``'s result when it ran ``strategy`` (else {})."""
    rec = getattr(source, "series", None) or {}
    return rec if rec.get("strategy") == strategy else {}


def series_plan(args, shape, spectral_axis, source=None, *, name="INPUT") -> SeriesPlan | None:
    """The series run of ``run``'s options and ``--config``'s record; None for a joint fit.

    Parameters
    ----------
    args : argparse.Namespace
    shape : tuple of int
        The stack's shape.
    spectral_axis : int
    source : ConfigSource, optional
        ``--config``: a series result's record, or a setup's series choice
        (``source.series``), gives the strategy, axis, reference and matching that the
        options do not.
    name : str
        The input, for messages.

    Returns
    -------
    SeriesPlan or None

    Raises
    ------
    CLIError
        A series option without a series strategy, a stack without a series axis, a
        bad ``--series-axis`` / ``--reference``, ``--match`` with a shared basis.
    """
    rec = getattr(source, "series", None) or {}
    strategy = args.strategy or rec.get("strategy")
    if strategy not in SERIES_STRATEGIES:
        given = [(flag, getattr(args, dest)) for dest, flag in _SERIES_FLAGS.items()
                 if getattr(args, dest) is not None]
        if given:
            flag, value = given[0]
            raise CLIError(f"{flag} {value} applies to a z / t series unmixed plane by plane; "
                           "add --strategy shared-basis or --strategy per-slice, or leave "
                           f"{flag} out for one fit of the whole stack.")
        return None
    why = f"--strategy {strategy}" if args.strategy else f"--config {args.config} (a " \
        f"{strategy} series)"
    ndim = len(shape)
    default = default_series_axis(ndim, spectral_axis)
    if default is None:
        raise CLIError(f"{why} unmixes a z / t series plane by plane, but {name} is one "
                       f"spectral image of shape {tuple(shape)} (a spectral axis and Y, X). "
                       "Give a stack with a z or t axis, e.g. (Z, C, Y, X), or "
                       + ("leave --strategy out." if args.strategy else
                          "pass --strategy joint to fit it as one image."))
    allowed = [i for i in range(ndim) if i != spectral_axis][:-2]
    rec = _recorded(source, strategy)
    axis = args.series_axis
    if axis is None:
        axis = rec.get("series_axis") if rec.get("series_axis") in allowed else default
    elif not -ndim <= axis < ndim or axis % ndim not in allowed:
        what = ("the spectral axis" if -ndim <= axis < ndim and axis % ndim == spectral_axis
                else "one of the Y-X plane's axes" if -ndim <= axis < ndim
                else "not an axis of the stack")
        raise CLIError(f"--series-axis {axis} is {what}: the series axis of {name} "
                       f"{tuple(shape)} (spectral axis {spectral_axis}) is one of axes "
                       f"{', '.join(map(str, allowed))} (default {default}).")
    axis %= ndim
    n = int(shape[axis])
    plane = tuple(int(s) for i, s in enumerate(shape) if i not in (axis, spectral_axis))
    ref = args.reference
    if ref is None:
        ref = rec.get("reference")
        ref = ref if ref == "pooled" or isinstance(ref, int) and 0 <= ref < n else None
    if ref is None:
        ref = "pooled" if strategy == "shared-basis" else 0
    if ref == "pooled" and strategy == "per-slice":
        raise CLIError("--reference pooled is a pixel sample of all planes for a shared basis; "
                       "--strategy per-slice puts every plane's components in the order of "
                       "one plane: give --reference N (default 0), or --strategy "
                       "shared-basis.")
    if ref != "pooled" and not 0 <= ref < n:
        raise CLIError(f"--reference {ref} is out of range: the series along axis {axis} of "
                       f"{name} has {n} plane(s), 0 to {n - 1}.")
    if args.match is not None and strategy == "shared-basis":
        raise CLIError("--match orders the components of per-slice fits, but with --strategy "
                       "shared-basis every plane is unmixed with the same spectra: leave "
                       "--match out, or pass --strategy per-slice.")
    match = args.match or rec.get("match") or "auto"
    # the record's NNLS of the planes, unless the options choose another solver
    own = args.solver is None and args.backend is None
    plan = SeriesPlan(
        strategy, axis, n, plane, ref, match if match in MATCH_POLICIES else "auto",
        pool_size=rec.get("pool_size") if ref == "pooled" and rec.get("reference") == ref
        else None,
        nnls_solver=rec.get("nnls_solver") if own else None,
        nnls_backend=rec.get("nnls_backend") if own else None)
    if not args.strategy:
        note(f"--config {args.config} is a {strategy} z / t series: it is rerun plane by "
             f"plane as it ran (axis {axis}, reference {ref}); --strategy joint fits the "
             "whole stack as one instead.", args.quiet)
    return plan


def _pooled_refusal(what: str, *, seeds: bool = True, background: bool = False) -> CLIError:
    instead = [*(["seed with --spectra CSV"] if seeds else []),
               *(["subtract a background spectrum or model (a spectrum, gaussian or flat "
                  "background in the --config)"] if background else [])]
    return CLIError(
        "--reference pooled (the default of --strategy shared-basis) fits the basis on a "
        "pixel sample of all planes, which has no image geometry, but these seeds need "
        f"it: {what}. Give --reference N (the plane the labels / ROIs seed), or --strategy "
        f"per-slice, or {' and '.join(instead)} instead.")


def place_seeds(plan: SeriesPlan, cfg, labels, *, spectral_axis, quiet=False):
    """The config's components and the label image put on the plane(s) the series
    fits, as the dock puts them (:func:`~napari_unmix.core.series.seeds_for_strategy`):
    ROI masks, label images and maps of the whole series, and the region of the
    background subtraction, become plane N's for a shared basis from plane N, and one
    plane's for per-slice fits when they are the same on every plane; a pooled basis
    leaves map seeds out (with a note).  Seeds of one
    plane's shape stay as they are, and so does everything when the series axis is not
    the first spatial axis (a 5-D stack along its second axis: its seeds must be of
    one plane's shape).

    Parameters
    ----------
    plan : SeriesPlan
    cfg : AnalysisConfig
    labels : ndarray or None
        ``--labels``: the series' label image or one plane's.
    spectral_axis : int
        The stack's spectral axis.
    quiet : bool

    Returns
    -------
    cfg : AnalysisConfig
    labels : ndarray or None

    Raises
    ------
    CLIError
        A seed or background region that does not fit the series (nothing on plane
        ``--reference N``, not the same on every plane for ``--strategy per-slice``, or
        ROI / label seeds with a pooled basis), naming it and the flags to change.
    """
    spatial = [i for i in range(len(plan.plane_shape) + 2) if i != spectral_axis]
    if spatial[0] != plan.axis:
        return cfg, labels
    pre = cfg.preprocessing
    try:
        seeds = seeds_for_strategy(cfg.components, labels, spatial_shape=plan.spatial_shape,
                                   strategy=plan.strategy, reference=plan.reference,
                                   background=pre.background)
    except SeedPlacementError as exc:
        if exc.needs_geometry:
            what = []
            if exc.components:
                names = ", ".join(map(repr, exc.components))
                what.append(f"the ROI / label seeds of component(s) {names}")
            if exc.background:
                what.append(f"the background subtraction of the --config, from a region "
                            f"({pre.background.describe()})")
            raise _pooled_refusal("; ".join(what), seeds=bool(exc.components),
                                  background=exc.background) from None
        raise CLIError(cli_words(str(exc))) from None
    for text in seeds.notes:
        note(text, quiet)
    return cfg.replace(components=seeds.components, preprocessing=dataclasses.replace(
        pre, background=seeds.background)), seeds.labels


def check_series_config(plan: SeriesPlan, cfg) -> None:
    """Refuse, before the run, what the core would refuse for this series and config,
    in the command line's words.

    Raises
    ------
    CLIError
        PCA with a shared basis, ``--nan-policy omit``, or seeds that need the image
        geometry (``--labels``, ROI masks of a ``--config``, a region background) with a
        pooled basis.
    """
    spec = MODES[cfg.mode]
    if plan.strategy == "shared-basis" and not spec.non_negative:
        others = " / ".join(n for n, s in MODES.items() if s.non_negative)
        raise CLIError(f"--mode {cfg.mode} gives signed loadings, which cannot be a shared "
                       "(non-negative) basis: pass --strategy per-slice, or a mode of "
                       f"non-negative spectra ({others}) for a shared basis.")
    if cfg.nan_policy != "raise":
        raise CLIError(f"--nan-policy {cfg.nan_policy} leaves pixels out of one fit, but a "
                       f"{plan.strategy} series gives every plane the same map layout: "
                       "replace the NaN values, or pass --strategy joint.")
    spatial = spatial_seeds(cfg) if plan.reference == "pooled" else []
    if spatial:
        raise _pooled_refusal("; ".join(spatial))


# -- the report -------------------------------------------------------------------------
def _fit_words(mode, fit, backend, device) -> str:
    solver = getattr(fit, "solver", None) if MODES.get(mode) and MODES[mode].solvers else None
    return (f"{mode} {solver}/{backend}" if solver else mode) + (f" on {device}" if device
                                                                  else "")


def say_series(sr: SeriesResult, elapsed: float, quiet: bool) -> None:
    """What ran: the strategy, the basis or the matching (every plane's spectral angles
    per component), iterations and errors per plane, seed and time.

    Parameters
    ----------
    sr : SeriesResult
    elapsed : float
        Seconds of the run.
    quiet : bool
    """
    s, planes, names = sr.summary, sr.planes, sr.component_names
    cfg = sr.config()
    first = planes[0] if planes else None
    if sr.shared_basis:
        b = s.basis
        where = (f"plane {b.plane}" if b.source == "plane" else
                 f"a pooled sample of {b.pool_size} pixels from all planes")
        iters = "" if b.n_iter is None or not MODES[cfg.mode].uses("max_iter") else \
            f", {b.n_iter} iteration(s)"
        how = (f"basis {_fit_words(b.mode or cfg.mode, b.fit, b.backend, None)} on {where}"
               f"{iters}; every plane's maps by fixed-H NNLS "
               f"{sr.params['nnls_solver']}/{sr.params['nnls_backend']}")
    else:
        how = (f"every plane by {_fit_words(sr.mode, first.fit, first.backend, first.device)}"
               if first is not None else f"every plane by {sr.mode}")
    seed = f", random_state {cfg.random_state}" if MODES[cfg.mode].uses("random_state") else ""
    say(f"done: {sr.strategy} series of {sr.n_planes} planes along axis "
        f"{sr.params['series_axis']}: {how}, {elapsed:.2f} s, relative error "
        f"{s.relative_error:.4g}{seed}", quiet=quiet)
    say("relative error per plane: " + ", ".join(f"{v:.4g}" for v in
                                                 s.plane_relative_errors or []), quiet=quiet)
    if s.planes_hit_max_iter:
        say(f"iteration cap hit on plane(s) {plane_ranges(s.planes_hit_max_iter)}: raise "
            "--max-iter", quiet=quiet)
    m = s.match
    if m is None:
        return
    policy = {"previous": "matched to the neighbouring plane towards the reference",
              "reference": f"matched to plane {m.reference}",
              "none": "kept in the seeds' order"}.get(m.policy, m.policy)
    say(f"components {policy} (--match {sr.params['match']}, reference plane "
        f"{m.reference}); largest angle {math.degrees(m.max_angle or 0.0):.1f} deg, mean "
        f"{math.degrees(m.mean_angle or 0.0):.1f} deg"
        + (f"; reordered plane(s) {plane_ranges(m.reordered_planes)}"
           if m.reordered_planes else ""), quiet=quiet)
    say("spectral angles to the plane matched to (deg):", quiet=quiet)
    for p in planes:
        if p.matched_to is None:
            continue
        angles = ", ".join(f"{n} {math.degrees(a):.1f}"
                           for n, a in zip(names, p.angles or [], strict=False))
        say(f"  plane {p.plane} (to {p.matched_to}): {angles}", quiet=quiet)
