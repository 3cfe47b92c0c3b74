"""Summaries of a z / t series run: per plane, the shared basis, the matching, totals."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from .base import Summary
from .fit import FitSummary, SeedsSummary

__all__ = ["BasisSummary", "MatchSummary", "PlaneSummary", "SeriesSummary"]


class _WithFit(Summary):
    """A summary that wraps a plane's or a basis' fit summary (``fit``).

    ``summary["name"]`` falls back to the wrapped fit's entries.
    """

    def __getitem__(self, key):
        fit = getattr(self, "fit", None)
        try:
            value = super().__getitem__(key)
        except KeyError:
            if fit is not None and key in fit:
                return fit[key]
            raise
        if value is None and fit is not None and key in fit:
            return fit[key]
        return value

    def keys(self) -> list[str]:
        own = [k for k in super().keys() if k not in ("fit", "fit_kind")]
        fit = getattr(self, "fit", None)
        return own + [k for k in (fit.keys() if fit is not None else []) if k not in own]

    def to_dict(self) -> dict:
        out = super().to_dict()
        fit = out.pop("fit", None)
        if fit is not None:
            out["fit_kind"] = type(self.fit).kind
            out["fit"] = fit
        return out

    @classmethod
    def from_dict(cls, d):
        if isinstance(d, cls):
            return d
        d = dict(d.to_dict() if isinstance(d, Summary) else d or {})
        kind = d.pop("fit_kind", None)
        fit = d.pop("fit", None)
        out = super().from_dict(d)
        if fit is not None:
            from . import summary_from_dict

            out.fit = summary_from_dict(fit, kind=kind)
        return out


@dataclass(eq=False)
class PlaneSummary(_WithFit):
    """One plane of a series run.

    Attributes
    ----------
    plane : int
    backend, device : str
    n_iter : int
    reconstruction_err, relative_error, data_norm : float
    hit_max_iter : bool
    n_capped_pixels : int
    warnings : list of str
        The warnings this plane's fit raised.
    plane_time_s : float
    matched_to : int or None
        Per-slice runs: the plane this one's components were paired with.
    order, signs, angles : list
        Per-slice runs: the pairing, sign flips (PCA) and spectral angles (rad).
    fit : FitSummary
        The plane's own fit summary (without its longest lists).
    """

    plane: int | None = None
    backend: str | None = None
    device: str | None = None
    n_iter: int | None = None
    reconstruction_err: float | None = None
    relative_error: float | None = None
    hit_max_iter: bool | None = None
    n_capped_pixels: int | None = None
    data_norm: float | None = None
    warnings: list | None = None
    plane_time_s: float | None = None
    matched_to: int | None = None
    order: list | None = None
    signs: list | None = None
    angles: list | None = None
    fit: FitSummary | None = None
    extra: dict = field(default_factory=dict)


@dataclass(eq=False)
class BasisSummary(_WithFit):
    """Where a series' shared basis came from.

    Attributes
    ----------
    source : {"given", "plane", "pooled"}
    plane : int
        ``source="plane"``: the reference plane.
    pool_size : int
        ``source="pooled"``: pixels in the pooled sample, ``pool_pixels_per_plane``
        from each plane.
    mode, backend : str
    n_iter : int
    reconstruction_err : float
    hit_max_iter, converged : bool
    warnings : list of str
    basis_time_s : float
    fit : FitSummary
        The basis fit's own summary.
    """

    source: str | None = None
    plane: int | None = None
    pool_size: int | None = None
    pool_pixels_per_plane: list | None = None
    mode: str | None = None
    backend: str | None = None
    n_iter: int | None = None
    reconstruction_err: float | None = None
    hit_max_iter: bool | None = None
    converged: bool | None = None
    warnings: list | None = None
    basis_time_s: float | None = None
    fit: FitSummary | None = None
    extra: dict = field(default_factory=dict)


@dataclass(eq=False)
class MatchSummary(Summary):
    """How per-slice components were put in one order.

    Attributes
    ----------
    policy : {"previous", "reference", "none"}
    reference : int
    max_angle, mean_angle : float
        Spectral angles (rad) between paired components.
    reordered_planes : list of int
    """

    policy: str | None = None
    reference: int | None = None
    max_angle: float | None = None
    mean_angle: float | None = None
    reordered_planes: list | None = None


@dataclass(eq=False)
class SeriesSummary(Summary):
    """Summary of a z / t series run (:func:`~napari_unmix.core.unmix_series`).

    Attributes
    ----------
    strategy : {"shared-basis", "per-slice"}
    mode : str
        Mode of the planes' fits.
    n_planes, n_components, n_channels : int
    plane_shape, stack_shape : list of int
    reconstruction_err, relative_error : float
        Over the whole series.
    plane_relative_errors : list of float
    plane_iters : list of int
    max_plane_iter : int
    planes_hit_max_iter : list of int
    hit_max_iter : bool
    n_capped_pixels : int
    basis : BasisSummary
        Shared basis runs.
    match : MatchSummary
        Per-slice runs.
    seeds : SeedsSummary
        The seeds of the basis fit, or of the reference plane (per-slice).
    planes : list of PlaneSummary
        Only in the summary of :meth:`SeriesResult.as_result`; a
        :class:`SeriesResult` keeps them in ``planes``.
    labels_sha256 : str
        The checksum of the label image the series was given (the series' or one
        plane's, as ``unmix_series`` got it: plane N's for a shared basis from plane
        N; :func:`~napari_unmix.core.analysis.labels_sha256`), when it was given one; a
        rerun compares it to refuse other labels, as a single fit's.
    time_s : float
    """

    kind: ClassVar[str] = "series"
    strategy: str | None = None
    mode: str | None = None
    n_planes: int | None = None
    n_components: int | None = None
    plane_shape: list | None = None
    n_channels: int | None = None
    stack_shape: list | None = None
    reconstruction_err: float | None = None
    relative_error: float | None = None
    plane_relative_errors: list | None = None
    plane_iters: list | None = None
    max_plane_iter: int | None = None
    planes_hit_max_iter: list | None = None
    hit_max_iter: bool | None = None
    n_capped_pixels: int | None = None
    basis: BasisSummary | None = None
    match: MatchSummary | None = None
    seeds: SeedsSummary | None = None
    planes: list | None = None
    labels_sha256: str | None = None
    time_s: float | None = None
    extra: dict = field(default_factory=dict)
    _nested: ClassVar[dict[str, type]] = {"basis": BasisSummary, "match": MatchSummary,
                                          "seeds": SeedsSummary, "planes": PlaneSummary}


