"""The unsupervised pipeline: suggest k, suggest seeds, seeded NNMF, report.

:func:`suggest_analysis` prepares an ordinary seeded-NNMF
:class:`~napari_unmix.core.config.AnalysisConfig`: the number of components from
:func:`~napari_unmix.core.ksuggest.suggest_n_components` (unless given), one
component per suggested seed region (:func:`~napari_unmix.core.seed_suggestions.
suggest_seeds`, ROI-mask sources), every other setting from ``base`` (the anchor
included: the config's default trust, 1).  :func:`run_unsupervised` runs it with
:func:`~napari_unmix.core.analysis.run_analysis` and adds the report: the k
curves, the seeds, the fit and its residual.

The result is a seeded-NNMF result like any other: its config reruns it exactly
(``napari-unmix run --config``), and a user can edit the seed regions and run
again.  That is why the pipeline is a preparation step and not a mode of the mode
table: a mode runs a config it is given, while here the config (how many
components, which seeds) is what the pipeline decides.

Measured (``benchmarks/diagnostics.py``): mean spectral angle to the published
endmembers 0.029 on Samson and 0.052 on Jasper Ridge with the number of materials
given.  With k suggested the pipeline takes 12 components on both (the limit tried:
real scenes support more components than materials, and the suggestion says so);
the materials are then among them at 0.021 / 0.039.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .config import AnalysisConfig
from .data import stack_to_matrix
from .ksuggest import KSuggestion, suggest_n_components
from .seed_suggestions import SeedSuggestion, suggest_seeds

__all__ = ["AutoAnalysis", "run_unsupervised", "suggest_analysis"]


@dataclass(eq=False)
class AutoAnalysis:
    """What the pipeline decided and, after :func:`run_unsupervised`, what it got.

    Attributes
    ----------
    config : AnalysisConfig
        The seeded-NNMF config (components seeded from ``seeds``' regions).
    seeds : SeedSuggestion
    k : KSuggestion or None
        ``None`` when the number of components was given.
    result : UnmixResult or None
    residual : dict or None
        :meth:`~napari_unmix.core.residuals.ResidualReport.to_dict` of the result.
    notes : list of str
    """

    config: AnalysisConfig
    seeds: SeedSuggestion
    k: KSuggestion | None = None
    result: object = None
    residual: dict | None = None
    notes: list = field(default_factory=list)

    @property
    def n_components(self) -> int:
        return self.seeds.n_components

    def to_dict(self) -> dict:
        """Plain JSON: the decisions and the fit's figures (not the arrays)."""
        out = {"n_components": self.n_components,
               "k": None if self.k is None else self.k.to_dict(),
               "seeds": self.seeds.to_dict(), "notes": list(self.notes)}
        if self.result is not None:
            s = self.result.summary
            out["fit"] = {"relative_error": s.relative_error, "n_iter": s.n_iter,
                          "converged": s.converged, "hit_max_iter": s.hit_max_iter}
        if self.residual is not None:
            out["residual"] = {key: self.residual[key] for key in
                               ("unexplained_fraction", "median_relative", "region_sizes")
                               if key in self.residual}
        return out


def suggest_analysis(stack, *, spectral_axis: int = 0, n_components: int | None = None,
                     k_max: int = 12, base: AnalysisConfig | None = None,
                     seed_options: dict | None = None, k_options: dict | None = None,
                     random_state: int = 0) -> AutoAnalysis:
    """Suggest the number of components and their seeds, and the config that runs them.

    Parameters
    ----------
    stack : array_like
        The stack; ``spectral_axis`` its spectral axis.
    n_components : int, optional
        The number of components; suggested when left out.
    k_max : int
        Largest number tried when suggesting.
    base : AnalysisConfig, optional
        Settings besides the components (solver, anchor, preprocessing ...); its
        mode is replaced by ``"seeded-nmf"``.
    seed_options, k_options : dict, optional
        Keyword arguments of :func:`suggest_seeds` / :func:`suggest_n_components`.
    random_state : int
        Folds of the cross-validation, and the config's ``random_state`` unless
        ``base`` sets one.
    """
    stack = np.asarray(stack)
    notes: list[str] = []
    ks = None
    if n_components is None:
        X, _ = stack_to_matrix(stack, spectral_axis)
        ks = suggest_n_components(X, k_max=k_max, random_state=random_state,
                                  **(k_options or {}))
        k = ks.k
        notes.append(f"{k} components suggested (scree {ks.k_scree}, residual "
                     f"{ks.k_residual}, cross-validation {ks.k_cv})")
        notes.extend(ks.notes)
    else:
        k = int(n_components)
    seeds = suggest_seeds(stack, k, spectral_axis=spectral_axis, **(seed_options or {}))
    notes.extend(seeds.notes)
    base = base if base is not None else AnalysisConfig()
    cfg = base.replace(mode="seeded-nmf", components=seeds.components(kind="mask"),
                       n_components=None,
                       random_state=base.random_state if base.random_state is not None
                       else int(random_state))
    cfg = AnalysisConfig.from_dict(cfg.to_dict())  # validated as a whole
    return AutoAnalysis(config=cfg, seeds=seeds, k=ks, notes=notes)


def run_unsupervised(stack, *, spectral_axis: int = 0, spectral_values=None,
                     n_components: int | None = None, k_max: int = 12,
                     base: AnalysisConfig | None = None, seed_options: dict | None = None,
                     k_options: dict | None = None, random_state: int = 0,
                     residual: bool = True, callback=None) -> AutoAnalysis:
    """:func:`suggest_analysis`, then :func:`~napari_unmix.core.analysis.run_analysis`
    of its config, then the residual of the result (``residual=True``).

    Returns
    -------
    AutoAnalysis
        With ``result`` (a seeded-NNMF :class:`~napari_unmix.core.result.UnmixResult`)
        and ``residual``.
    """
    from .analysis import run_analysis

    auto = suggest_analysis(stack, spectral_axis=spectral_axis, n_components=n_components,
                            k_max=k_max, base=base, seed_options=seed_options,
                            k_options=k_options, random_state=random_state)
    res = run_analysis(stack, auto.config, spectral_axis=spectral_axis,
                       spectral_values=spectral_values, callback=callback)
    auto.result = res
    if residual:
        from .residuals import residuals

        auto.residual = residuals(res, stack, spectral_axis=spectral_axis).to_dict()
    return auto
