"""The numeric core of napari-unmix: no napari, no Qt.

Public API::

    X, spatial_shape = stack_to_matrix(stack, spectral_axis=0)
    maps = matrix_to_maps(W, spatial_shape)
    res = pca(X, n_components)
    res = nmf(X, n_components, W0=None, H0=None, solver="auto", backend="auto", ...)
    res = nnls(X, H, backend="auto", ...)
    res.save(path); UnmixResult.load(path)
"""

from . import mode_runs as _builtin_modes  # noqa: F401  (registers the four modes)
from .analysis import run_analysis
from .components import (
    BackgroundMap,
    ComponentSpec,
    FixedW,
    Flat,
    FromComponent,
    Gaussian,
    ImportedMap,
    PreviousResult,
    RoiLabel,
    RoiMask,
    SeedPixels,
    Spectrum,
    components_from_spectra,
)
from .config import AnalysisConfig
from .data import (
    CheckedMatrix,
    PreparedData,
    check_matrix,
    finite_mask,
    matrix_to_maps,
    stack_to_matrix,
)
from .ksuggest import KSuggestion, suggest_n_components
from .modes import MODES, ModeSpec, register_mode
from .nmf import nmf
from .nnls import nnls
from .pca import pca
from .pipeline import AutoAnalysis, run_unsupervised, suggest_analysis
from .preprocess import Preprocessing
from .progress import Cancelled, ProgressInfo
from .residuals import ResidualReport, residuals
from .result import UnmixResult
from .seed_suggestions import SeedSuggestion, suggest_seeds
from .seeds import H_FALLBACKS, W_SEED_MODES, SeedReport, SeedSet, build_seeds
from .series import SERIES_STRATEGIES, SeriesProgressInfo, SeriesResult, unmix_series
from .solvers import NMF_SOLVERS, NNLS_SOLVERS
from .sources import SOURCES, SeedContext, Source, register_source
from .spectra import gaussian_model, read_spectra, resample_spectrum
from .stability import StabilityReport, stability
from .summaries import (
    FitSummary,
    NMFSummary,
    NNLSSummary,
    PCASummary,
    PlaneSummary,
    SeriesSummary,
    Summary,
)
from .uncertainty import AbundanceErrors, abundance_standard_errors, with_standard_errors

__all__ = [
    "MODES",
    "NMF_SOLVERS",
    "NNLS_SOLVERS",
    "Cancelled",
    "CheckedMatrix",
    "ModeSpec",
    "PreparedData",
    "ProgressInfo",
    "UnmixResult",
    "check_matrix",
    "finite_mask",
    "matrix_to_maps",
    "nmf",
    "nnls",
    "pca",
    "register_mode",
    "stack_to_matrix",
    # typed summaries
    "FitSummary",
    "NMFSummary",
    "NNLSSummary",
    "PCASummary",
    "PlaneSummary",
    "SeriesSummary",
    "Summary",
    # seeded analyses
    "H_FALLBACKS",
    "SOURCES",
    "W_SEED_MODES",
    "AnalysisConfig",
    "BackgroundMap",
    "ComponentSpec",
    "FixedW",
    "FromComponent",
    "Flat",
    "Gaussian",
    "ImportedMap",
    "Preprocessing",
    "PreviousResult",
    "RoiLabel",
    "RoiMask",
    "SeedContext",
    "SeedPixels",
    "SeedReport",
    "SeedSet",
    "Source",
    "Spectrum",
    "build_seeds",
    "components_from_spectra",
    "gaussian_model",
    "read_spectra",
    "register_source",
    "resample_spectrum",
    "run_analysis",
    # z / t series
    "SERIES_STRATEGIES",
    "SeriesProgressInfo",
    "SeriesResult",
    "unmix_series",
    # is the fit good? (residuals, k, stability, uncertainty, suggested seeds)
    "AbundanceErrors",
    "AutoAnalysis",
    "KSuggestion",
    "ResidualReport",
    "SeedSuggestion",
    "StabilityReport",
    "abundance_standard_errors",
    "residuals",
    "run_unsupervised",
    "stability",
    "suggest_analysis",
    "suggest_n_components",
    "suggest_seeds",
    "with_standard_errors",
]
