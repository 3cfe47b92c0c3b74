"""Summaries of one fit: NNMF, fixed-H NNLS, PCA, and their pieces (seeds, policy)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from .base import Summary, jsonable

__all__ = ["SUMMARY_KINDS", "FitSummary", "NMFSummary", "NNLSSummary", "NegativeInfo",
           "OffsetsMoved", "PCASummary", "SeedDrift", "SeedReport", "SeedsSummary"]


@dataclass(eq=False)
class NegativeInfo(Summary):
    """What the negative-value policy did (``core.preprocess.apply_negative_policy``).

    Attributes
    ----------
    policy : {"raise", "clip", "offset"}
    n_negative : int
        Negative values found in the data.
    min_value : float
        The data's minimum before the policy.
    offset : float
        What was added to every value (``"offset"``), else 0.
    """

    policy: str | None = None
    n_negative: int | None = None
    min_value: float | None = None
    offset: float | None = None


@dataclass(eq=False)
class OffsetsMoved(Summary):
    """Offsets a locked flat row took from the other spectra after seeded NNMF.

    Attributes
    ----------
    into : str
        The flat component.
    amounts : dict of str -> float
        Per other component, the constant taken off its spectrum.
    """

    into: str | None = None
    amounts: dict | None = None


@dataclass(eq=False)
class SeedReport(Summary):
    """How the seeds of one component were made.

    Attributes
    ----------
    name : str
        Component name.
    h_source : str
        What produced the ``H0`` row (``"roi-label 2"``, ``"spectrum ..."``,
        ``"residual"``, ``"random"`` ...).
    w_source : str or None
        What produced the ``W0`` column (a W-seed mode name, ``"fixed-w"``,
        ``"spectral-info"`` ...); ``None`` when no maps were built (fixed-H NNLS).
    h_fallback : {None, "residual", "random", "map-mean"}
        Which fallback produced the spectrum, if any (``"map-mean"``: the mean
        spectrum of the pixels a map source weights, for a component given a map
        but no spectrum).
    working_data : {"raw", "processed"}
        Data the component's seeds were estimated from.
    overwritten : bool
        A spectral-information map existed and was replaced by the H-based map.
    locked, background, use_subtracted : bool
        The component's flags.
    warnings : list of str
        Everything the user should know about this component's seeds.
    """

    name: str = ""
    h_source: str = ""
    w_source: str | None = None
    h_fallback: str | None = None
    working_data: str = "processed"
    overwritten: bool = False
    locked: bool = False
    background: bool = False
    use_subtracted: bool = True
    warnings: list = field(default_factory=list)

    def to_dict(self) -> dict:
        # every entry, None included: a report is read row by row in tables
        return {name: jsonable(getattr(self, name)) for name in self.field_names()}


@dataclass(eq=False)
class SeedsSummary(Summary):
    """The seeds of a seeded run (``summary.seeds``).

    Attributes
    ----------
    w_seed_mode : str
    overwrite : bool
    components : list of SeedReport
    fallbacks : list of str
        Components whose spectrum came from a fallback.
    notes : list of str
        Remarks about all components.
    """

    w_seed_mode: str | None = None
    overwrite: bool | None = None
    components: list | None = None
    fallbacks: list | None = None
    notes: list | None = None
    extra: dict = field(default_factory=dict)
    _nested: ClassVar[dict[str, type]] = {"components": SeedReport}

    def report(self, name: str) -> SeedReport:
        """The report of component ``name``."""
        for r in self.components or []:
            if r.name == name:
                return r
        raise KeyError(f"No seed report for component {name!r}.")


@dataclass(eq=False)
class SeedDrift(Summary):
    """Seed drift and collapse of a seeded fit.

    Attributes
    ----------
    angles : list of float
        Per component, the spectral angle (radians) between the fitted spectrum and
        its seed (0 for locked rows).
    drifted : list of int
        Components whose angle exceeds ``drift_limit``.
    min_pair : list
        ``[i, j, angle]``: the two most similar fitted spectra and their angle.
    collapsed : list of [int, int]
        Pairs of components closer than ``collapse_limit``.
    seeds_alike : list of [int, int]
        Pairs of components whose *seeds* are closer than ``collapse_limit`` (two
        regions over one material, one spectrum imported twice), whether or not the
        fit then told them apart.
    drift_limit, collapse_limit : float
        The thresholds used (radians).
    """

    angles: list | None = None
    drifted: list | None = None
    min_pair: list | None = None
    collapsed: list | None = None
    seeds_alike: list | None = None
    drift_limit: float | None = None
    collapse_limit: float | None = None


# -- fit summaries ---------------------------------------------------------------------------
@dataclass(eq=False)
class FitSummary(Summary):
    """Entries every fit summary has, and those :func:`run_analysis` adds.

    Attributes
    ----------
    reconstruction_err : float
        ``||X - W H||_F`` on the data the mode fitted.
    relative_error : float
        ``reconstruction_err / ||X||_F``.
    dtype : str
        dtype of the fitted data.
    time_s : float
        Wall time of the mode function.
    negative : NegativeInfo
        The negative-value policy (non-negative modes).
    preprocessing : list of dict
        :func:`run_analysis`: the steps that made the processed data.
    fit_data : {"raw", "processed"}
        :func:`run_analysis`: which data the factorisation fitted.
    seeds : SeedsSummary
        :func:`run_analysis`, seeded modes: how each component was seeded.
    labels_sha256 : str
        :func:`run_analysis`: checksum of the label image the seeds used.
    offsets_moved : OffsetsMoved
        Seeded NNMF with a locked flat row (see ``core.offsets``).
    analysis_time_s : float
        :func:`run_analysis`: wall time of the whole analysis.
    hit_max_iter : bool
        The iterative solver stopped at its cap before meeting its tolerance (NNLS:
        a pixel or a chunk did); ``None`` for modes without iterations (PCA).
    n_jobs : int
        The worker threads that shared the pixel blocks (``core.parallel``; 1 on a
        CUDA device, where the device does the work).
    device : str
        Where the fit ran: ``"cpu"`` or the torch device (``"cuda"`` ...).
    """

    kind: ClassVar[str] = ""
    reconstruction_err: float | None = None
    relative_error: float | None = None
    dtype: str | None = None
    time_s: float | None = None
    negative: NegativeInfo | None = None
    preprocessing: list | None = None
    fit_data: str | None = None
    seeds: SeedsSummary | None = None
    labels_sha256: str | None = None
    offsets_moved: OffsetsMoved | None = None
    analysis_time_s: float | None = None
    hit_max_iter: bool | None = None
    n_jobs: int | None = None
    device: str | None = None
    _nested: ClassVar[dict[str, type]] = {"negative": NegativeInfo, "seeds": SeedsSummary,
                                          "offsets_moved": OffsetsMoved}
    #: entries too long to keep for every plane of a series
    heavy: ClassVar[tuple[str, ...]] = ("error_history", "capped_pixels", "chunk_iters")

    @property
    def n_capped(self) -> int:
        """Pixels left unsolved (NaN) by an exact solver; 0 for modes without any."""
        return 0

    def light(self) -> FitSummary:
        """A copy without the :attr:`heavy` entries (for per-plane summaries)."""
        return type(self).from_dict({k: v for k, v in self.to_dict().items()
                                     if k not in self.heavy})


@dataclass(eq=False)
class NMFSummary(FitSummary):
    """Summary of random and seeded NNMF (:func:`~napari_unmix.core.nmf`).

    Attributes
    ----------
    solver, backend, device : str
        What ran.
    n_iter, max_iter : int
        Iterations run and the cap.
    converged : bool
        The stopping rule was met.
    tol : float
    stopping_rule : str
        The rule in words.
    stopped_by : str
        What ended the run, machine-readable: ``"noise"`` (the error came within
        1 % of the rank-k SVD residual, the noise), ``"noise-stall"`` (the squared
        error stalled against the noise energy), ``"tol"`` (relative improvement
        <= tol), ``"max_iter"``, ``"solver"`` (scikit-learn's own rule) or
        ``"exact"`` (every spectrum locked: one exact NNLS); see
        ``core.solvers.stopping``.
    error_history : list of [iteration, error]
        The objective at every sampled iteration, the start included:
        ``||X - WH||_F``, or the divergence ``D(X || WH)`` for ``loss="poisson"``
        (with an anchor, its penalty included).
    init : dict
        How ``W0`` and ``H0`` were made (``{"W0": ..., "H0": ...}``).
    mu_eps_lift : dict
        Whether the MU eps lift ran, its eps and the number of lifted entries.
    locked : list of int
        Rows of ``H`` kept fixed.
    anchor : list of float or None
        Seeded runs: per component, the trust in its seed spectrum (the relative
        anchor strength, see ``core.nmf``); ``None`` for locked rows.
    data_scale : float
        The power of two the data was divided by inside the solver (1.0: none), so
        that tiny or huge values fit like values near 1.
    seed_drift : SeedDrift
        Seeded runs: how far each spectrum moved from its seed, and collapsed pairs.
    solve_time_s : float
        Wall time of the solver alone.
    abundance : {"free", "sum-to-one", "sum-le-one"}
        The abundance model of ``W`` (``core.solvers.simplex``).
    n_constraint_active : int
        ``"sum-le-one"``: pixels where the sum constraint is active (their
        abundances sum to one) in the final ``W``; ``None`` otherwise.
    loss : {"frobenius", "poisson"}
        The loss that was fitted (``core.solvers.LOSSES``).
    deviance : float
        ``loss="poisson"``: the Poisson deviance ``2 D(X || WH)`` of the fit, in the
        data's units (``result.arrays["deviance"]`` per pixel); ``None`` otherwise.
    mean_deviance : float
        ``deviance`` per pixel (about ``n_channels - k`` for counts the fit explains
        at many counts per channel; less at a few).
    extrapolation : dict
        HALS: what its extrapolation between iterations did
        (``core.solvers.extrapolation``): ``n_restarts``, the extrapolated steps that
        were undone, and ``ended_after``, the iteration after which it ended at the
        objective's resolution (None: on to the end); ``None`` for other solvers.
    """

    kind: ClassVar[str] = "nmf"
    solver: str | None = None
    backend: str | None = None
    device: str | None = None
    n_iter: int | None = None
    max_iter: int | None = None
    converged: bool | None = None
    tol: float | None = None
    stopping_rule: str | None = None
    stopped_by: str | None = None
    error_history: list | None = None
    init: dict | None = None
    mu_eps_lift: dict | None = None
    locked: list | None = None
    anchor: list | None = None
    data_scale: float | None = None
    seed_drift: SeedDrift | None = None
    solve_time_s: float | None = None
    abundance: str | None = None
    n_constraint_active: int | None = None
    loss: str | None = None
    deviance: float | None = None
    mean_deviance: float | None = None
    extrapolation: dict | None = None
    extra: dict = field(default_factory=dict)
    _nested: ClassVar[dict[str, type]] = {**FitSummary._nested, "seed_drift": SeedDrift}


@dataclass(eq=False)
class NNLSSummary(FitSummary):
    """Summary of fixed-H NNLS (:func:`~napari_unmix.core.nnls`).

    Attributes
    ----------
    solver, backend : str
        What ran (earlier versions wrote the solver as ``"algorithm"``).
    exact : bool
        The solver reaches the KKT optimum (not stopped by a tolerance).
    n_chunks, chunk_size : int
        How the pixels were split.
    chunk_iters : list of int
        Iterations per chunk; ``max_chunk_iter`` their maximum.
    max_iter : int
    n_capped_pixels : int
        Pixels an exact solver could not solve within ``max_iter`` (NaN in ``W``);
        for an iterative one, the pixels (of the chunks) still short of ``tol`` at
        ``max_iter`` (their last iterates are kept).
    capped_pixels : list of int
        Their indices (the first 1000), where the solver knows them per pixel.
    abundance : {"free", "sum-to-one", "sum-le-one"}
        The abundance model (``core.solvers.simplex``); under a sum constraint the
        chunk iterations are the batched NNLS solves of the multiplier search.
    n_constraint_active : int
        ``"sum-le-one"``: pixels where the sum constraint is active (the plain NNLS
        solution summed to more than one); ``None`` otherwise.
    loss : {"frobenius", "poisson"}
        The loss that was fitted (``core.solvers.LOSSES``).
    deviance : float
        ``loss="poisson"``: the Poisson deviance ``2 D(X || WH)`` of the fit, in the
        data's units (``result.arrays["deviance"]`` per pixel); ``None`` otherwise.
    mean_deviance : float
        ``deviance`` per pixel (about ``n_channels - k`` for counts the fit explains
        at many counts per channel; less at a few).
    n_error_pixels : int
        The pixels ``reconstruction_err`` and ``relative_error`` are computed over:
        every pixel but the capped ones an exact solver left NaN.
    condition_number : float
        Of the spectra, each scaled to unit norm (``inf`` when they are linearly
        dependent): above about 1e6 the abundances of the collinear spectra are
        ill-determined and the exact solver treats them as dependent.
    identifiability : list of str
        What makes the abundances not unique or ill-determined (more spectra than
        channels, identical or near-collinear spectra), also issued as warnings.
    """

    kind: ClassVar[str] = "nnls"
    solver: str | None = None
    backend: str | None = None
    exact: bool | None = None
    n_chunks: int | None = None
    chunk_size: int | None = None
    chunk_iters: list | None = None
    max_chunk_iter: int | None = None
    max_iter: int | None = None
    n_capped_pixels: int | None = None
    capped_pixels: list | None = None
    abundance: str | None = None
    n_constraint_active: int | None = None
    loss: str | None = None
    deviance: float | None = None
    mean_deviance: float | None = None
    n_error_pixels: int | None = None
    condition_number: float | None = None
    identifiability: list | None = None
    extra: dict = field(default_factory=dict)
    _renamed: ClassVar[dict[str, str]] = {"algorithm": "solver"}

    @property
    def n_capped(self) -> int:
        return int(self.n_capped_pixels or 0)


@dataclass(eq=False)
class PCASummary(FitSummary):
    """Summary of PCA (:func:`~napari_unmix.core.pca`).

    Attributes
    ----------
    n_components : int
    explained_variance_ratio : list of float
        Of the kept components.
    cumulative_explained_variance : float
    constant_channels : list of int
        Channels with zero variance (centred only).
    standardize : bool
    """

    kind: ClassVar[str] = "pca"
    n_components: int | None = None
    explained_variance_ratio: list | None = None
    cumulative_explained_variance: float | None = None
    constant_channels: list | None = None
    standardize: bool | None = None
    extra: dict = field(default_factory=dict)




#: Summary class of every built-in mode's results.
SUMMARY_KINDS: dict[str, type] = {"nmf": NMFSummary, "seeded-nmf": NMFSummary,
                                  "nnls": NNLSSummary, "pca": PCASummary}
