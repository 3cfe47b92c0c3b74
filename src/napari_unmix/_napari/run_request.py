"""One run of the dock, without Qt: what it needs, and what the dock says about it.

:func:`prepare_run` gathers a run's inputs in the GUI thread (the ROIs are read
there): the :class:`~napari_unmix.core.analysis.AnalysisConfig` from the settings
and the component rows, and the function the worker calls
(:func:`~napari_unmix.core.analysis.run_analysis`, or
:func:`~napari_unmix.core.series.unmix_series` for a z / t series plan).  What a
mode needs is said by its :class:`~napari_unmix.core.modes.ModeSpec`: seeded modes
take their components from the rows, the others only a number of components.

The texts and decisions about a running or finished run are here too, so that the
dock only shows them: the progress bar's state (:func:`progress_view`), what Cancel
says (:func:`cancel_text`), and what an outcome means (:func:`outcome_report`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial

from ..core.analysis import AnalysisConfig, run_analysis
from ..core.colors import default_colors
from ..core.components import FromComponent
from ..core.modes import MODES
from ..core.preprocess import Preprocessing
from ..core.series import unmix_series
from .rois import ImageGrid
from .seed_inputs import SeedContext, build_components, unused_map_notes
from .series_run import SeriesPlan, series_seeds

__all__ = ["SHOWN_WARNINGS", "OutcomeReport", "RunRequest", "cancel_text", "outcome_report",
           "prepare_run", "preprocessing_of", "progress_view"]

#: Warning categories shown to the user as notifications (others are logged).
SHOWN_WARNINGS = (UserWarning, RuntimeWarning)


@dataclass(eq=False)
class RunRequest:
    """Everything one run needs, gathered in the GUI thread before it starts.

    ``func(callback=...)`` runs the analysis (in the worker); ``colors`` are the
    components' colours (``None``: the default palette, once the number is known);
    ``notes`` are lines to tell the user when the run starts; ``labels`` the label
    image of the run's ROI seeds (None without).
    """

    image: str
    grid: ImageGrid
    config: AnalysisConfig
    func: Callable
    colors: list | None = None
    series: SeriesPlan | None = None
    notes: tuple = ()
    labels: object = None

    @property
    def spec(self):
        """The :class:`~napari_unmix.core.modes.ModeSpec` of the run's mode."""
        return MODES[self.config.mode]

    def running_text(self) -> str:
        how = f" ({self.series.label})" if self.series is not None else ""
        return f"Running {self.spec.label}{how} on {self.image!r} …"

    def colors_for(self, n_components: int) -> list:
        """One colour per component of the result."""
        if self.colors is not None and len(self.colors) == n_components:
            return list(self.colors)
        return default_colors(n_components)


def analysis_on_every_pixel(*args, **kwargs):
    """:func:`~napari_unmix.core.analysis.run_analysis`, its result with a row of ``W``
    for every pixel of the image (NaN where ``nan_policy="omit"`` left pixels out),
    which the dock's layers, inspector and residual map index by pixel."""
    return run_analysis(*args, **kwargs).on_every_pixel()


def preprocessing_of(rows, *, subtract_background: bool = False,
                     smoothing: str | None = None) -> Preprocessing:
    """The preprocessing of a seeded run: the spectrum of the first row marked
    background (with a source) subtracted, and the smoothing."""
    background = None
    if subtract_background:
        bg = [r.name for r in rows if r.background and r.source.kind != "none"]
        if not bg:
            raise ValueError("'subtract background' needs a component marked 'background' "
                             "with a spectrum source (an ROI of background, a file ...).")
        background = FromComponent(bg[0])
    return Preprocessing(background=background, smoothing=smoothing)


def prepare_run(grid: ImageGrid, rows, kw: dict, *, layers, previous=None, runs=None,
                shown_run=None, plan: SeriesPlan | None = None, subtract_background: bool = False,
                smoothing: str | None = None) -> RunRequest:
    """A :class:`RunRequest` for the image of ``grid``.

    Parameters
    ----------
    grid : ImageGrid
        The image and its spectral axis.
    rows : list of RowSettings
        The component rows (used by seeded modes).
    kw : dict
        :class:`AnalysisConfig` keywords of the settings (``SettingsForm.config_kwargs``).
    layers : mapping
        The viewer's layers (ROIs are read from them).
    previous : UnmixResult, optional
        The result shown (``previous-result`` rows without a run of their own).
    runs, shown_run : dict, RunRecord, optional
        The runs rows may hold (``{number: RunRecord}``) and the one shown:
        ``previous-result`` rows take their seeds from their own run (see
        :class:`~.seed_context.SeedContext`).
    plan : SeriesPlan, optional
        A z / t series run.
    subtract_background, smoothing
        Preprocessing of seeded modes (see :func:`preprocessing_of`).

    Raises
    ------
    ValueError, TypeError, RoiError, OSError
        With what to do; nothing has started.
    """
    spec = MODES[kw["mode"]]
    comps, labels, pre, colors, notes = [], None, Preprocessing(), None, []
    if spec.seeded:
        if not rows:
            raise ValueError(f"{spec.label} needs components: add rows (e.g. 'Components "
                             "from layer' with a Labels layer) and give them seeds.")
        ctx = SeedContext(layers, grid, previous, runs=runs, shown_run=shown_run)
        comps, labels = build_components(rows, ctx)
        notes = unused_map_notes(rows, ctx)
        pre = preprocessing_of(rows, subtract_background=subtract_background,
                               smoothing=smoothing)
        colors = [r.color for r in rows]
    elif "n_components" in kw:
        colors = default_colors(int(kw["n_components"]))
    if plan is not None:
        if not spec.non_negative and plan.strategy == "shared-basis":
            raise ValueError(f"{spec.label} loadings are signed, so they cannot be a shared "
                             "(non-negative) basis: choose 'per plane' for this mode, or a "
                             "non-negative mode (NNMF, NNLS) for a shared basis.")
        seeds = series_seeds(comps, labels, grid, plan, background=pre.background)
        comps, labels = seeds.components, seeds.labels
        pre = replace(pre, background=seeds.background)
        notes = [*notes, *seeds.notes]
    values, unit = grid.spectral_values()
    config = AnalysisConfig(components=comps, preprocessing=pre, spectral_unit=unit, **kw)
    layer = grid.layer
    stack = layer.data[0] if layer.multiscale else layer.data
    if plan is None:
        func = partial(analysis_on_every_pixel, stack, config,
                       spectral_axis=grid.spectral_axis_index, spectral_values=values,
                       labels=labels)
    else:
        func = partial(unmix_series, stack, config, strategy=plan.strategy,
                       series_axis=plan.axis, spectral_axis=grid.spectral_axis_index,
                       reference=plan.reference, spectral_values=values, labels=labels)
    return RunRequest(image=layer.name, grid=grid, config=config, func=func, colors=colors,
                      series=plan, notes=tuple(notes), labels=labels)


# -- while it runs -------------------------------------------------------------------------
def progress_view(info) -> tuple[int, int, str]:
    """The progress bar for a :class:`~napari_unmix.core.progress.ProgressInfo`:
    ``(maximum, value, text)``.  A series run's bar covers the whole series."""
    n_planes = int(getattr(info, "n_planes", 0) or 0)
    if n_planes:
        value = int(round(1000 * float(info.fraction)))
        if info.stage == "series":
            text = f"plane {info.iteration}/{n_planes} done"
        elif info.stage == "sample":
            text = f"sampling plane {info.iteration}/{n_planes}"
        else:
            where = ("shared basis" if info.plane is None else
                     f"plane {info.plane + 1}/{n_planes}")
            text = f"{where} · {info.stage}: {info.iteration} / {info.max_iter}"
        maximum = 1000
    else:
        maximum = max(int(info.max_iter), 1)
        value = min(int(info.iteration), maximum)
        text = f"{info.stage}: {info.iteration} / {info.max_iter}"
    if info.error is not None:
        text += f" · error {info.error:.4g}"
    return maximum, value, text


def cancel_text(config: AnalysisConfig | None) -> str:
    """What the dock says once Cancel was pressed: solvers that cannot be interrupted
    (``SolverSpec.cancellable``, found through the mode's ``pick_solver``) finish
    their fit first."""
    spec = MODES.get(config.mode) if config is not None else None
    solver = None
    if spec is not None and spec.pick_solver is not None:
        try:
            solver = spec.pick_solver(config.solver, config.backend, config=config)
        except (ValueError, ImportError):  # the run itself reports it
            solver = None
    if solver is not None and not solver.cancellable:
        return (f"{solver.algorithm}/{solver.backend} cannot be interrupted: it stops when "
                "its fit ends, and the result will be discarded.")
    return "Cancelling …"


# -- when it ends --------------------------------------------------------------------------
@dataclass
class OutcomeReport:
    """What the dock does with a finished job's outcome.

    ``notices`` are ``(kind, message)`` notifications (kind ``"info"``,
    ``"warning"`` or ``"error"``), ``logged`` lines for the log only; ``publish``:
    the outcome's value is a result to publish (then ``status`` is empty: the
    publishing says what was done).
    """

    status: str
    notices: list = field(default_factory=list)
    logged: list = field(default_factory=list)
    publish: bool = False


def outcome_report(outcome, *, cancelled: bool = False) -> OutcomeReport:
    """Sort out a job's :class:`~.workers.Outcome`.  ``cancelled``: the user asked to
    cancel (a result that came anyway is discarded, and its warnings only logged)."""
    cancelled = cancelled or outcome.cancelled
    report = OutcomeReport(status="")
    for category, message in outcome.warnings:
        if issubclass(category, SHOWN_WARNINGS) and not cancelled:
            report.notices.append(("warning", message))
        else:
            report.logged.append(f"{category.__name__}: {message}")
    if cancelled:
        report.status = "Cancelled: no layers were changed."
        report.notices.append(("info", "Spectral unmixing cancelled; nothing was changed."))
    elif outcome.error is not None:
        report.status = f"Failed: {outcome.error}"
        report.notices.append(("error", f"Spectral unmixing failed: {outcome.error}"))
    else:
        report.publish = True
    return report
