"""``run --config`` from a z / t series result says that it is no rerun of the series.

A series result folder (written by the plugin from ``SeriesResult.as_result``) holds a
config.json like any other; ``run --config`` ran it on the whole stack as one analysis
(one NNMF of every plane together instead of one per plane) and said nothing, so the
output looked like a rerun of the series.  It warns now, from the folder, its
config.json, result.json and result.npz; a plain result's rerun does not.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from napari_unmix.cli import main
from napari_unmix.core import AnalysisConfig, unmix_series
from napari_unmix.core.synthetic import make_crs_sample_4d
from napari_unmix.io import write_analysis_outputs


@pytest.fixture(scope="module")
def series_folder(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("series")
    s = make_crs_sample_4d(n_planes=3, shape=(8, 8), n_channels=16, random_state=0)
    np.save(tmp / "zc.npy", s.stack)            # (Z, C, Y, X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = unmix_series(s.stack, AnalysisConfig(mode="nmf", n_components=3, random_state=0),
                           strategy="per-slice")
    write_analysis_outputs(tmp / "series", res.as_result(), (3, 8, 8))
    return tmp


@pytest.mark.parametrize("name", ["series", "series/config.json", "series/result.json",
                                  "series/result.npz"])
def test_config_of_a_series_result_warns(series_folder, tmp_path, capsys, name):
    rc = main(["run", str(series_folder / "zc.npy"), "--spectral-axis", "1", "--config",
               str(series_folder / name), "--out", str(tmp_path / "out"), "--quiet",
               "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 0, err
    line = next(ln for ln in err.splitlines() if "warning:" in ln)
    assert "per-slice" in line and "3 planes" in line and "not a rerun" in line


def test_config_of_a_plain_result_does_not_warn(series_folder, tmp_path, capsys):
    args = ["--spectral-axis", "1", "--quiet", "--no-progress"]
    rc = main(["run", str(series_folder / "zc.npy"), "--mode", "nmf", "-k", "3",
               "--random-state", "0", "--out", str(tmp_path / "a"), *args])
    assert rc == 0
    capsys.readouterr()
    rc = main(["run", str(series_folder / "zc.npy"), "--config", str(tmp_path / "a"),
               "--out", str(tmp_path / "b"), *args])
    err = capsys.readouterr().err
    assert rc == 0 and "series" not in err, err
