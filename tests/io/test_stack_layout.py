"""Where a result's maps lie in the analysed stack (StackLayout), kept by result folders
and bundles, and given by the series params of a z / t series saved whole."""

from __future__ import annotations

import json

import numpy as np
import pytest

from napari_unmix.core.result import UnmixResult
from napari_unmix.io import (
    StackLayout,
    read_result_bundle,
    write_analysis_outputs,
    write_result_bundle,
)

LAYOUT = StackLayout(spectral_axis=1, scale=(2.0, 0.5, 0.5), origin=(10.0, 3.0, 4.0),
                     axis_names=("Z", "Y", "X"))


@pytest.fixture
def result():
    rng = np.random.default_rng(3)
    return UnmixResult(W=rng.random((3 * 4 * 5, 2)), H=rng.random((2, 6)), mode="nmf",
                       backend="numpy", device="cpu", n_iter=3, reconstruction_err=0.1)


def test_a_folder_and_a_bundle_keep_the_stack_layout(tmp_path, result):
    write_analysis_outputs(tmp_path / "res", result, (3, 4, 5), stack_layout=LAYOUT)
    doc = json.loads((tmp_path / "res" / "result.json").read_text())
    assert doc["stack_layout"]["spectral_axis"] == 1
    assert read_result_bundle(tmp_path / "res").layout == LAYOUT
    path = write_result_bundle(tmp_path / "b.npz", result, (3, 4, 5), stack_layout=LAYOUT)
    assert read_result_bundle(path).layout == LAYOUT
    # none given, no series: unknown
    plain = write_result_bundle(tmp_path / "p.npz", result, (3, 4, 5))
    assert read_result_bundle(plain).layout is None


def test_a_layout_that_does_not_fit_is_refused_on_writing_and_ignored_on_reading(
        tmp_path, result):
    with pytest.raises(ValueError, match="spectral_axis=4"):
        write_result_bundle(tmp_path / "b.npz", result, (3, 4, 5),
                            stack_layout=StackLayout(spectral_axis=4))
    with pytest.raises(ValueError, match="origin"):
        write_analysis_outputs(tmp_path / "r", result, (3, 4, 5),
                               stack_layout=StackLayout(spectral_axis=1, origin=(1.0, 2.0)))
    write_analysis_outputs(tmp_path / "res", result, (3, 4, 5), stack_layout=LAYOUT)
    doc_path = tmp_path / "res" / "result.json"
    doc = json.loads(doc_path.read_text())
    doc["stack_layout"]["scale"] = [2.0, -1.0, 0.5]     # edited by hand: not used
    doc_path.write_text(json.dumps(doc))
    assert read_result_bundle(tmp_path / "res").layout is None


def test_a_series_gives_its_spectral_axis_when_its_series_axis_comes_first(
        tmp_path, small_series):
    series = small_series("per-slice").as_result()   # a (Z, C, Y, X) stack
    write_analysis_outputs(tmp_path / "res", series, (3, 8, 10))
    assert read_result_bundle(tmp_path / "res").layout == StackLayout(spectral_axis=1)
    # a series along the stack's Y axis: its maps put the planes first, not the stack's
    # order, so they have no place on it
    moved = UnmixResult(W=series.W, H=series.H, mode=series.mode, backend="numpy",
                        device="cpu", n_iter=1, reconstruction_err=0.1,
                        params={"series": {"strategy": "per-slice", "series_axis": 2,
                                           "spectral_axis": 1}})
    path = write_result_bundle(tmp_path / "m.npz", moved, (3, 8, 10))
    assert read_result_bundle(path).layout is None
