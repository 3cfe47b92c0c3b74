"""The dock's words: a tooltip for every setting, and messages that name the dock's controls.

:data:`TOOLTIPS`
    What each setting does, when to change it, and its default, by the setting's
    name (the :class:`~napari_unmix.core.analysis.AnalysisConfig` field it sets,
    see :mod:`.settings_form`).
:data:`LABELS`
    The label a setting has in the dock, by the config field (or reader keyword) it
    sets.
:func:`dock_words`
    Rewrites a message of the core or the readers, which speak to Python users
    ("pass negative='clip'", "pass spectral_axis", "Raise max_iter"), in the dock's
    terms ("set 'negative values' to clip", "set 'spectral axis' in the unmixing
    dock", "Raise 'max iterations'").

Nothing here imports Qt.
"""

from __future__ import annotations

import re

from ..core._validation import NONFINITE_REMEDY
from ..core.data import COMPUTE_FIRST, NONFINITE_STACK_REMEDY
from ..core.sources.regions import EVERY_PLANE_REMEDY

__all__ = ["LABELS", "TOOLTIPS", "dock_words"]

#: The dock's label of a config field / reader keyword.
LABELS = {
    "n_components": "components", "standardize": "standardise channels",
    "solver": "solver", "backend": "backend", "device": "device", "tol": "tolerance",
    "max_iter": "max iterations", "init": "init", "random_state": "random_state",
    "anchor": "trust in seeds", "w_seed_mode": "W-seed mode", "overwrite":
    "maps from the seed spectra", "h_fallback": "spectrum fallback", "negative":
    "negative values", "loss": "loss", "abundance": "abundances", "spectral_axis":
    "spectral axis", "mode": "mode", "nan_policy": "NaN pixels",
}

TOOLTIPS = {
    "image": "The spectral stack to unmix: an image with a spectral axis and two spatial "
             "axes (Y, X), and optionally Z / T. Images with spectral metadata come first. "
             "Default: the first such image.",
    "spectral_axis": "Which axis of the image's data holds the spectrum (0 = first). Change "
                     "it when the axis info below names the wrong axis, e.g. for a "
                     "channel-last (Y, X, C) array. Default: from the file's metadata, else 0.",
    "mode": "What to compute. Random NNMF (default until the table has rows): find k "
            "spectra and maps from the data alone. Seeded NNMF (once the table has rows): "
            "refine the spectra you seed. Fixed-H NNLS: how much of each trusted spectrum is "
            "in each pixel. PCA: the main directions of variation (signed).",
    "n_components": "How many components (spectra and maps) to find. Start with the "
                    "number of species you expect plus one for the background. Default 4.",
    "standardize": "PCA: scale every channel to unit variance first, so that weak bands "
                   "count as much as strong ones. Default on.",
    "solver": "The algorithm. auto (default) picks the fastest suitable one: HALS for "
              "NNMF, the exact active set for NNLS; mu for the Poisson loss. Change it to "
              "compare algorithms or when one is too slow.",
    "backend": "The implementation of the solver: numpy (CPU), torch (CPU or a CUDA GPU), "
               "scikit-learn, SciPy. auto (default) picks the fastest one installed.",
    "device": "Where torch backends run: auto (default: a CUDA GPU when one is visible), "
              "cpu, cuda. Other backends always run on the CPU.",
    "tol": "Stop when the fit improves by less than this fraction between two checks "
           "(every 10 iterations). Any positive number, e.g. 1e-4 (default) or 1e-8 for a "
           "tighter fit; smaller runs longer; 0 runs to 'max iterations'.",
    "max_iter": "Iteration cap. Raise it when the summary says 'cap hit'. Default 1000.",
    "init": "How random NNMF starts: nndsvda (default, an SVD of the data with zeros "
            "filled by the mean), nndsvd, nndsvdar, random.",
    "random_state": "An integer (default 0) makes runs repeatable; leave it empty for a new "
                    "random seed each run (the seed used is recorded in the result).",
    "anchor": "Seeded NNMF: how strongly each fitted spectrum is pulled towards its seed. "
              "0: the data alone decide (a free fit, which may drift far from the seeds); "
              "1 (default): a seed weighs as much as the data's evidence about its "
              "spectrum; more keeps the spectra closer to their seeds. Gaussian models "
              "count a tenth of it; a row's own trust overrides it.",
    "w_seed_mode": "Seeded NNMF: how the starting maps are made from the seed spectra. "
                   "nnls (default): a joint non-negative fit of every pixel; "
                   "selective_score: a projection that favours the best-matching spectrum; "
                   "h_weighted: an image of the bands where the spectrum is strong; "
                   "average: the mean image; empty: almost uniform.",
    "overwrite": "Seeded NNMF, for Gaussian and seed-pixel rows: start their map from their "
                 "spectrum (with the W-seed mode) instead of the image of the pixels that "
                 "match the model. Default on.",
    "h_fallback": "The spectrum of a row without a seed. residual (default): estimated from "
                  "what the seeded spectra leave unexplained; random: a smooth random "
                  "spectrum; none: refuse to run.",
    "negative": "What to do with negative values (background-subtracted data often dips "
                "below 0). raise (default): refuse and say so; clip: set them to 0; offset: "
                "shift all data up by the minimum.",
    "nan_policy": "Pixels whose spectrum holds NaN or infinite values (the padding of a "
                  "stitched or registered image). raise (default): refuse the image and say "
                  "how many; omit: leave those pixels out of the fit and of the seeds, their "
                  "maps are empty (NaN), and the count is in the result.",
    "loss": "What the fit minimises. frobenius (default): least squares, for data with "
            "roughly constant noise; poisson: the Poisson likelihood of photon counts "
            "(low-light fluorescence, photon counting), fitted by multiplicative updates.",
    "abundance": "The abundance model of the maps. free (default): any non-negative "
                 "amounts; sum-to-one: every pixel's abundances sum to 1 (fractions of "
                 "the pixel, fully constrained least squares); sum-le-one: they sum to at "
                 "most 1. Constrained models need spectra on the data's scale.",
    "subtract_background": "Subtract the spectrum of the first row marked 'background' "
                           "from every pixel before estimating the seeds. Default off.",
    "smoothing": "Smooth every pixel spectrum before estimating the seeds "
                 "(Savitzky-Golay or Gaussian). Default none.",
    "device_info": "Which implementation the current choice runs, and where.",
    "axis_info": "The spectral axis the dock uses: its channels and spectral values.",
}

# ``pass negative='clip'`` / ``negative='clip'`` / ``max_iter=3`` / ``pass spectral_axis``
_ASSIGN = re.compile(r"(?P<verb>\bpass\s+)?\b(?P<name>[a-z_]+)=(?P<value>'[^']*'|[^\s,;)]+)")
_BARE = re.compile(r"\b(?P<verb>pass|raise|Raise|loosen|lower|Lower|reduce|Reduce)\s+"
                   r"(?P<name>[a-z_]+)\b")


_NONFINITE_IN_DOCK = (
    "Set 'NaN pixels' to omit to leave those pixels out of the fit (their maps stay "
    "empty), or replace them in the image (with 0, for instance: in napari's console, "
    "layer.data = np.nan_to_num(layer.data)) and run again.")
#: Whole sentences of the core that only an API user can follow -> the dock's.
_PHRASES = (
    (COMPUTE_FIRST, "load the image into memory (in napari's console: layer.data = "
     "np.asarray(layer.data))"),
    (NONFINITE_REMEDY, _NONFINITE_IN_DOCK),
    (NONFINITE_STACK_REMEDY, _NONFINITE_IN_DOCK),
    # an ROI of a z / t series that differs between planes, for a per-plane run
    (EVERY_PLANE_REMEDY, "Draw it in a 2-D Shapes layer (the same region on every plane), "
     "seed it from a Labels layer painted on every plane, or fit a shared basis on one "
     "plane."),
)
#: The core calls the image "stack" at the start of some messages.
_STACK = re.compile(r"\bstack (contains|holds) (\d+) (NaN|negative)")


def _label(name: str) -> str | None:
    return LABELS.get(name)


def dock_words(message: str) -> str:
    """``message`` with Python arguments replaced by the dock's controls (see the
    module documentation); other text is unchanged."""
    def assign(m):
        label = _label(m.group("name"))
        if label is None:
            return m.group(0)
        value = m.group("value").strip("'").rstrip(".")
        tail = "." if m.group("value").endswith(".") else ""
        if m.group("verb"):
            return f"set '{label}' to {value}{tail}"
        return f"'{label}' = {value}{tail}"

    def bare(m):
        label = _label(m.group("name"))
        if label is None:
            return m.group(0)
        verb = m.group("verb")
        if verb == "pass":
            where = " in the unmixing dock" if m.group("name") == "spectral_axis" else ""
            return f"set '{label}'{where}"
        return f"{verb} '{label}'"

    message = str(message)
    for core, dock in _PHRASES:
        message = message.replace(core, dock)
    message = _STACK.sub(r"the image holds \2 \3", message)
    return _BARE.sub(bare, _ASSIGN.sub(assign, message))
