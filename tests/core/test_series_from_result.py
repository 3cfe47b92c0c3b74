"""A z / t series saved whole (``SeriesResult.as_result``, e.g. the plugin's result folder)
reads back as the series it is (``SeriesResult.from_result``)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from napari_unmix.core import AnalysisConfig, unmix_series
from napari_unmix.core.series import SeriesResult
from napari_unmix.core.synthetic import make_crs_sample, make_crs_sample_4d
from napari_unmix.io import read_result_bundle, write_analysis_outputs


@pytest.mark.parametrize("strategy", ["per-slice", "shared-basis"])
def test_a_series_saved_whole_reads_back_as_the_series(strategy, tmp_path):
    s = make_crs_sample_4d(n_planes=3, shape=(10, 12), n_channels=16, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sr = unmix_series(s.stack, AnalysisConfig(mode="nmf", n_components=3, max_iter=40,
                                                  random_state=0), strategy=strategy)
    write_analysis_outputs(tmp_path / "res", sr.as_result(), (3, 10, 12))
    back = SeriesResult.from_result(read_result_bundle(tmp_path / "res").result, (3, 10, 12))
    assert back is not None and back.strategy == sr.strategy and back.mode == sr.mode
    np.testing.assert_allclose(back.maps, sr.maps, rtol=1e-6)
    np.testing.assert_allclose(back.H, sr.H, rtol=1e-6)
    for z in range(3):
        np.testing.assert_allclose(back.plane_spectra(z), sr.plane_spectra(z), rtol=1e-6)
        assert back.planes[z].relative_error == pytest.approx(sr.planes[z].relative_error)
    assert back.config().to_dict() == sr.config().to_dict()
    assert back.component_names == sr.component_names


def test_a_plain_result_is_no_series():
    from napari_unmix.core.analysis import run_analysis

    sample = make_crs_sample(shape=(8, 8), n_channels=12)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = run_analysis(sample.stack, AnalysisConfig(mode="nmf", n_components=2,
                                                        max_iter=10, random_state=0))
    assert SeriesResult.from_result(res, (8, 8)) is None
