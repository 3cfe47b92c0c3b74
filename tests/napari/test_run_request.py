"""What the dock says about a run (no Qt): progress, cancel and outcomes."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

pytest.importorskip("napari")

from napari_unmix._napari.run_request import (  # noqa: E402
    cancel_text,
    outcome_report,
    preprocessing_of,
    progress_view,
)
from napari_unmix._napari.seed_inputs import RowSettings, SourceChoice  # noqa: E402
from napari_unmix.core.analysis import AnalysisConfig  # noqa: E402
from napari_unmix.core.progress import ProgressInfo  # noqa: E402
from napari_unmix.core.series.progress import SeriesProgressInfo  # noqa: E402
from napari_unmix.core.solvers import NMF_SOLVERS  # noqa: E402


@dataclass
class _Outcome:
    value: object = None
    cancelled: bool = False
    error: BaseException | None = None
    warnings: list = field(default_factory=list)


def test_progress_of_a_fit_and_of_a_series():
    assert progress_view(ProgressInfo("nmf", 40, 200, error=0.1234567)) == \
        (200, 40, "nmf: 40 / 200 · error 0.1235")
    assert progress_view(ProgressInfo("pca", 0, 0)) == (1, 0, "pca: 0 / 0")
    plane = SeriesProgressInfo("nmf", 7, 100, fraction=0.375, plane=1, n_planes=4)
    assert progress_view(plane) == (1000, 375, "plane 2/4 · nmf: 7 / 100")
    basis = SeriesProgressInfo("nmf", 3, 100, error=2.0, fraction=0.1, plane=None, n_planes=4)
    assert progress_view(basis) == (1000, 100, "shared basis · nmf: 3 / 100 · error 2")
    done = SeriesProgressInfo("series", 3, 4, fraction=0.75, plane=2, n_planes=4)
    assert progress_view(done) == (1000, 750, "plane 3/4 done")


def test_cancel_says_when_a_solver_cannot_be_interrupted():
    assert cancel_text(None) == "Cancelling …"
    assert cancel_text(AnalysisConfig(mode="pca")) == "Cancelling …"
    for (algo, backend), spec in NMF_SOLVERS.items():
        if not spec.available():
            continue
        text = cancel_text(AnalysisConfig(mode="nmf", solver=algo, backend=backend))
        if spec.cancellable:
            assert text == "Cancelling …"
        else:
            assert text.startswith(f"{algo}/{backend} cannot be interrupted")
    # a solver that does not exist: the run itself says so
    assert cancel_text(AnalysisConfig(mode="nnls", solver="no-such")) == "Cancelling …"


def test_outcomes():
    shown = _Outcome(value="result", warnings=[(UserWarning, "capped"),
                                               (DeprecationWarning, "old")])
    report = outcome_report(shown)
    assert report.publish and report.status == ""
    assert report.notices == [("warning", "capped")]
    assert report.logged == ["DeprecationWarning: old"]
    # a result that came after Cancel was pressed is discarded, its warnings logged
    report = outcome_report(shown, cancelled=True)
    assert not report.publish and report.status == "Cancelled: no layers were changed."
    assert report.notices == [("info", "Spectral unmixing cancelled; nothing was changed.")]
    assert report.logged == ["UserWarning: capped", "DeprecationWarning: old"]
    report = outcome_report(_Outcome(error=ValueError("negative data")))
    assert not report.publish and report.status == "Failed: negative data"
    assert report.notices == [("error", "Spectral unmixing failed: negative data")]


def test_background_subtraction_needs_a_background_row_with_a_source():
    rows = [RowSettings("a", "#E69F00", SourceChoice("flat")),
            RowSettings("bg", "#777777", background=True)]
    with pytest.raises(ValueError, match="needs a component marked 'background' with a"):
        preprocessing_of(rows, subtract_background=True)
    rows[1] = RowSettings("bg", "#777777", SourceChoice("flat", level=0.2), background=True)
    pre = preprocessing_of(rows, subtract_background=True, smoothing="savgol")
    assert pre.background.name == "bg" and pre.smoothing == "savgol"
    assert preprocessing_of(rows).background is None
