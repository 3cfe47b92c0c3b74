"""The residual map of a run fitted on the processed data (background subtracted).

The map compared ``W H`` with the raw image, so a run that fitted the
background-subtracted data showed the subtracted background as unexplained: a map
far above the run's relative error.  It compares with the data the fit saw now
(``core.residuals.fitted_data``), as it does for the offset of ``negative="offset"``.
"""

from __future__ import annotations

import sys
import warnings
from functools import partial
from pathlib import Path

import numpy as np

from napari_unmix._napari.residual import ResidualMaps, with_residual
from napari_unmix.core.analysis import run_analysis

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "core"))
from test_analysis import AXIS, SHAPE, _crs_scene, _seeded_config  # noqa: E402


def test_a_run_on_processed_data_is_compared_with_that_data():
    stack, _, _, rois = _crs_scene()
    cfg = _seeded_config(rois, fit_data="processed", negative="clip", max_iter=200)
    func = with_residual(lambda callback=None: run_analysis(stack, cfg, spectral_values=AXIS),
                         stack, spectral_axis=0, spatial_shape=SHAPE)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # the cap and the clipped values are beside the point
        out = func()
    assert isinstance(out, ResidualMaps)
    res = out.value
    assert res.summary.fit_data == "processed"
    rel_err = res.summary.relative_error
    median = float(np.nanmedian(out.relative))
    assert rel_err / 3 < median < 3 * rel_err, (median, rel_err)
    # and a raw-data run still compares with the raw data
    raw_cfg = _seeded_config(rois, max_iter=200)
    raw = with_residual(partial(run_analysis, stack, raw_cfg, spectral_values=AXIS), stack,
                        spectral_axis=0, spatial_shape=SHAPE)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = raw()
    assert out.value.summary.fit_data == "raw"
    r = out.value.summary.relative_error
    assert r / 3 < float(np.nanmedian(out.relative)) < 3 * r
