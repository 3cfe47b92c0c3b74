"""The table of unmixing modes, in order of prior knowledge.

The CLI and the napari dock list modes from :data:`MODES`; adding a mode here makes
it appear in both.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["MODES", "ModeSpec"]


@dataclass(frozen=True)
class ModeSpec:
    """One unmixing mode.

    Attributes
    ----------
    name : str
        Identifier used in params, the CLI and files.
    label : str
        Human-readable name.
    question : str
        The question the mode answers, for help texts.
    needs_spectra : bool
        Requires fixed spectra ``H`` (fixed-H NNLS).
    non_negative : bool
        Produces non-negative maps and spectra.
    """

    name: str
    label: str
    question: str
    needs_spectra: bool = False
    non_negative: bool = True

    @property
    def func(self) -> Callable:
        from .nmf import nmf
        from .nnls import nnls
        from .pca import pca

        return {"pca": pca, "nmf": nmf, "seeded-nmf": nmf, "nnls": nnls}[self.name]


MODES: dict[str, ModeSpec] = {
    "pca": ModeSpec("pca", "PCA", "Which spectral directions vary most?", non_negative=False),
    "nmf": ModeSpec("nmf", "Random NNMF", "Which non-negative additive parts are there?"),
    "seeded-nmf": ModeSpec("seeded-nmf", "Seeded NNMF",
                           "Refine the spectra and maps I already roughly know."),
    "nnls": ModeSpec("nnls", "Fixed-H NNLS",
                     "How much of each trusted spectrum is in each pixel?", needs_spectra=True),
}
