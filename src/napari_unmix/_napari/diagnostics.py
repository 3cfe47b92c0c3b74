"""Is my fit good? The dock's diagnostics, without Qt: the jobs, the k curves, the tables.

The dock's "Is my fit good?" section (:mod:`.diagnostics_panel`) runs these in the
worker (:func:`.workers.start_job`, progress and Cancel as a run) and shows what
they return:

* :func:`suggestion_job`: *how many components, and where to paint?*  The number of
  components (:func:`~napari_unmix.core.ksuggest.suggest_n_components`, unless
  given) and the candidate seed regions
  (:func:`~napari_unmix.core.seed_suggestions.suggest_seeds`), the first half of
  the unsupervised pipeline (:mod:`napari_unmix.core.pipeline`).  The dock turns
  the regions into an editable Labels layer and one component row per region, then
  runs seeded NNMF from those rows as an ordinary run (with the residual map): the
  same config as :func:`~napari_unmix.core.pipeline.run_unsupervised`'s, with the
  regions as a label image;
* :func:`k_job` and :func:`draw_k_curves`: the suggestion's three curves (scree
  against the Marchenko-Pastur edge, NNMF residual against the noise floor,
  bi-cross-validation error), the suggested ``k`` marked;
* :func:`stability_job` and :func:`stability_rows`: random NNMF from several starts,
  each component's spread (rad) and a verdict;
* :func:`residual_job` and :func:`residual_row`: the residual of the shown run
  (:func:`~napari_unmix.core.residuals.residuals`) and a component row seeded with
  the spectrum of its largest region of unexplained pixels ("add a component from
  the residual");
* :func:`with_errors` and :func:`show_errors`: standard errors of fixed-H NNLS
  abundances (:func:`~napari_unmix.core.uncertainty.with_standard_errors`),
  computed in the run's worker and shown as layers ``run N · SE · component``.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.data import stack_to_matrix
from ..core.progress import Cancelled, ProgressInfo

__all__ = ["SE_ROLE", "STABILITY_COLUMNS", "Suggestion", "draw_k_curves", "k_job",
           "residual_job", "residual_row", "se_layer_name", "show_errors", "stability_job",
           "stability_rows", "suggestion_job", "with_errors"]

#: ``metadata[META_KEY]["role"]`` of a standard-error layer.
SE_ROLE = "standard-error"
#: Headers of the stability table.
STABILITY_COLUMNS = ("component", "spread (rad)", "largest (rad)", "verdict")
#: Stability and the k suggestion run on a regular sample of at most this many pixels.
MAX_PIXELS = 20_000


def _matrix(stack, spectral_axis: int) -> np.ndarray:
    X, _ = stack_to_matrix(np.asarray(stack), int(spectral_axis))
    return X


def _step(callback, stage: str, i: int, n: int) -> None:
    """Report step ``i`` of ``n``; raise Cancelled when the callback says stop."""
    if callback is not None and callback(ProgressInfo(stage, int(i), int(n),
                                                      fraction=i / max(n, 1))) is False:
        raise Cancelled(f"{stage} cancelled.")


# -- how many components, where to paint ------------------------------------------------
@dataclass(eq=False)
class Suggestion:
    """What :func:`suggestion_job` found: ``seeds`` (a SeedSuggestion, its ``labels`` on
    the image's spatial grid) and ``k`` (the KSuggestion, None when k was given)."""

    seeds: object
    k: object = None

    @property
    def n_components(self) -> int:
        return self.seeds.n_components


def suggestion_job(stack, *, spectral_axis: int, n_components: int | None = None,
                   k_max: int = 12, method: str = "purest", callback=None) -> Suggestion:
    """Suggest the number of components (unless given) and their seed regions.

    ``stack`` is one image (two spatial axes); ``callback`` a core progress callback
    (stages ``"suggest k"`` and ``"suggest seeds"``)."""
    from ..core.ksuggest import suggest_n_components
    from ..core.seed_suggestions import suggest_seeds

    stack = np.asarray(stack)
    if stack.ndim != 3:
        raise ValueError(f"Suggest components works on one image (a spectral axis and Y, X); "
                         f"this one has {stack.ndim} axes. Run it on one plane (e.g. "
                         "duplicate the plane as its own layer).")
    ks = None
    if n_components is None:
        ks = suggest_n_components(_matrix(stack, spectral_axis), k_max=k_max,
                                  max_pixels=MAX_PIXELS, callback=callback)
        n_components = ks.k
    _step(callback, "suggest seeds", 0, 1)
    seeds = suggest_seeds(stack, int(n_components), spectral_axis=int(spectral_axis),
                          method=method)
    _step(callback, "suggest seeds", 1, 1)
    return Suggestion(seeds=seeds, k=ks)


def k_job(stack, *, spectral_axis: int, k_max: int = 12, callback=None):
    """:func:`~napari_unmix.core.ksuggest.suggest_n_components` of the stack (its
    pixels, a sample of large ones)."""
    from ..core.ksuggest import suggest_n_components

    return suggest_n_components(_matrix(stack, spectral_axis), k_max=k_max,
                                max_pixels=MAX_PIXELS, callback=callback)


def _mark(ax, k, color) -> None:
    ax.axvline(k, color=color, ls="--", lw=1.2, zorder=0)


def draw_k_curves(fig, ks, *, fg: str = "#d0d0d0", bg: str = "#262930",
                  mark: str = "#e8a33d") -> list:
    """Draw the three curves of a :class:`~napari_unmix.core.ksuggest.KSuggestion` on
    ``fig`` (a matplotlib Figure, cleared first), the suggested ``k`` marked in
    ``mark`` in every panel; returns the axes (scree, residual, cross-validation)."""
    fig.clear()
    fig.set_facecolor(bg)
    axes = fig.subplots(1, 3)
    k = int(ks.k)
    ev = np.asarray(ks.eigenvalues, dtype=float)
    idx = np.arange(1, ev.size + 1)
    a, b, c = axes
    a.semilogy(idx, ev, "o-", ms=3, color=fg, label="eigenvalue")
    a.axhline(ks.mp_edge, color="#6fa8dc", lw=1, label="noise edge")
    a.set_title(f"scree: {ks.k_scree}", color=fg, fontsize=9)
    a.set_ylabel("whitened eigenvalue", color=fg, fontsize=8)
    x = np.asarray(ks.ks)
    rel = np.asarray(ks.relative_error, dtype=float)
    if np.isfinite(rel).any():
        b.plot(x, rel, "o-", ms=3, color=fg, label="NNMF residual")
        b.plot(x, ks.residual_floor, color="#6fa8dc", lw=1, label="noise floor")
    b.set_title(f"residual vs k: {ks.k_residual}", color=fg, fontsize=9)
    b.set_ylabel("relative error", color=fg, fontsize=8)
    c.plot(x, ks.cv_error, "o-", ms=3, color=fg, label="held-out error")
    c.set_title(f"cross-validation: {ks.k_cv}", color=fg, fontsize=9)
    c.set_ylabel("held-out error (relative)", color=fg, fontsize=8)
    for ax in axes:
        _mark(ax, k, mark)
        ax.set_xlabel("k", color=fg, fontsize=8)
        ax.set_facecolor(bg)
        ax.tick_params(colors=fg, labelsize=7)
        for spine in ax.spines.values():
            spine.set_color(fg)
        ax.xaxis.get_major_locator().set_params(integer=True)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=6, facecolor=bg, edgecolor=fg, labelcolor=fg)
    limit = f" (still rising at k_max: {', '.join(ks.at_limit)})" if ks.at_limit else ""
    fig.suptitle(f"k = {k} suggested{limit}", color=mark, fontsize=10)
    fig.tight_layout()
    return list(axes)


# -- would another start give the same spectra? --------------------------------------------
def stability_job(stack, *, spectral_axis: int, n_components: int, n_starts: int = 10,
                  callback=None):
    """:func:`~napari_unmix.core.stability.stability` of random NNMF on the stack's
    pixels (a regular sample of large ones), with progress per start and Cancel."""
    from ..core.noise import pixel_sample
    from ..core.stability import stability

    X = _matrix(stack, spectral_axis)
    X = X[np.isfinite(X).all(axis=1)]
    X = np.maximum(X[pixel_sample(X.shape[0], MAX_PIXELS)], 0.0)

    def each(i, n):
        _step(callback, "stability: start", i, n)

    return stability(X, int(n_components), n_starts=int(n_starts), callback=each)


def stability_rows(report) -> list[tuple[str, str, str, str]]:
    """One row of text per component of a
    :class:`~napari_unmix.core.stability.StabilityReport` (:data:`STABILITY_COLUMNS`)."""
    rows = []
    for r in report.table():
        verdict = "reproducible" if r["reproducible"] else "not reproducible"
        rows.append((f"C{r['component']}", f"{r['spread']:.3f}", f"{r['max_angle']:.3f}",
                     verdict))
    return rows


# -- add a component from the residual ------------------------------------------------------
def residual_job(result, stack, *, spectral_axis: int, callback=None):
    """:func:`~napari_unmix.core.residuals.residuals` of ``result`` on ``stack``."""
    from ..core.residuals import residuals

    _step(callback, "residual", 0, 1)
    report = residuals(result, np.asarray(stack), spectral_axis=int(spectral_axis))
    _step(callback, "residual", 1, 1)
    return report


def residual_row(report, *, name: str, color: str, run: int, folder=None):
    """A component row (:class:`~.seed_inputs.RowSettings`) seeded with the residual of
    the report's largest region, and the spectra file it reads.

    The spectrum is written as a spectra file (first column the spectral axis) in
    ``folder`` (default: ``napari-unmix`` in the system's temporary folder), since a
    row's spectrum source is a file; a run embeds the values in its config, so the
    file is not needed afterwards.  The row's trust is 0 (the residual is a rough
    seed: :meth:`~napari_unmix.core.residuals.ResidualReport.seed_component`).

    Raises
    ------
    ValueError
        When the residual has no region of unexplained pixels (it is at the noise
        level), or its region's residual has no positive part.
    """
    from ..io.tables import write_spectra_csv
    from .seed_inputs import RowSettings, SourceChoice

    if report.n_regions == 0:       # the report's note says whether that is noise
        why = report.notes[0] if report.notes else "no region of unexplained pixels"
        tail = (", so no component is missing." if "residual is at the noise level" in why
                else ".")
        raise ValueError(f"No component can be added from the shown run's residual: {why}"
                         f"{tail}")
    spec = report.seed_component(name)  # refuses a residual without a positive part
    folder = Path(folder) if folder is not None else Path(tempfile.gettempdir()) / \
        "napari-unmix"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"residual-run{int(run)}-region1-{os.getpid()}.csv"
    write_spectra_csv(path, spec.h_source.values, spectral_axis=report.spectral_values,
                      names=[name])
    row = RowSettings(name=name, color=color, source=SourceChoice("spectrum", path=str(path),
                                                                  column="0"), anchor=0.0)
    return row, path


# -- how sure is this abundance? -----------------------------------------------------------
def with_errors(func, stack, *, spectral_axis: int):
    """``func(callback=...)`` whose fixed-H NNLS result (alone or in a
    :class:`~.residual.ResidualMaps`) also gets ``arrays["W_se"]``, computed in the
    same (worker) thread.  When they cannot be computed, a warning says why (shown by
    the dock) and the run is published without them."""
    from ..core.uncertainty import with_standard_errors

    def run(callback=None):
        value = func(callback=callback)
        inner = getattr(value, "value", value)
        try:
            res = with_standard_errors(inner, stack, spectral_axis=int(spectral_axis))
        except (ValueError, TypeError) as exc:
            warnings.warn(f"Standard errors were not computed: {exc}", UserWarning,
                          stacklevel=2)
            return value
        if inner is value:
            return res
        value.value = res
        return value

    return run


def se_layer_name(number: int, component: str) -> str:
    """The name of the standard-error layer of ``component`` in run ``number``."""
    return f"run {int(number)} · SE · {component}"


def remove_errors(viewer, *, source_image: str, source_uid: str | None = None,
                  spare_owners=frozenset()) -> int:
    """Remove the standard-error layers of ``source_image``'s earlier runs (the image of
    identity ``source_uid``, when given; not those the user renamed, nor those of the
    sessions ``spare_owners``: other open docks); returns how many."""
    from .layers import remove_unrenamed

    return remove_unrenamed(viewer, role=SE_ROLE, source_image=source_image,
                            source_uid=source_uid, spare_owners=spare_owners)


def show_errors(viewer, result, *, grid, number: int, source_image: str,
                owner: str | None = None) -> list:
    """Add one layer per component of ``result``'s ``arrays["W_se"]`` over the image of
    ``grid``, placed like the maps, hidden (show one to read it); ``owner``: the session
    that made them.  Returns them."""
    from .layers import META_KEY, placement

    se = np.asarray(result.arrays["W_se"], dtype=np.float32)
    kwargs, keep_axis = placement(grid.layer, grid.spectral_axis_index)
    out = []
    for j, comp in enumerate(result.component_names):
        data = se[:, j].reshape(tuple(grid.spatial_shape))
        if keep_axis:
            data = np.expand_dims(data, int(grid.spectral_axis_index))
        finite = data[np.isfinite(data)]
        hi = float(np.percentile(finite, 99.5)) if finite.size else 1.0
        name = se_layer_name(number, comp)
        out.append(viewer.add_image(
            data, name=name, colormap="viridis", blending="translucent", visible=False,
            contrast_limits=(0.0, hi if hi > 0 else 1.0),
            metadata={META_KEY: {"role": SE_ROLE, "run": int(number), "name": name,
                                 "component": comp, "source_image": source_image,
                                 "source_uid": str(grid.layer.unique_id), "owner": owner,
                                 "uncertainty": result.params.get("uncertainty")}},
            **kwargs))
    return out
