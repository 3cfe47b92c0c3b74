"""``run --config`` from a z / t series result reruns the series.

A series result folder (written by the plugin from ``SeriesResult.as_result``) holds a
config.json like any other; ``run --config`` ran it on the whole stack as one analysis
(one NNMF of every plane together instead of one per plane) and said nothing, so the
output looked like a rerun of the series.  It then warned that it was no rerun; now
(``run --strategy``) it reruns the series as recorded in the folder's result.json /
result.npz, with a note, from the folder, its config.json, result.json and
result.npz: the same maps and spectra.  A plain result's rerun says nothing of series.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from napari_unmix.cli import main
from napari_unmix.core import AnalysisConfig, unmix_series
from napari_unmix.core.series import SeriesResult
from napari_unmix.core.synthetic import make_crs_sample_4d
from napari_unmix.io import read_result_bundle, write_analysis_outputs


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
    return tmp, res


@pytest.mark.parametrize("name", ["series", "series/config.json", "series/result.json",
                                  "series/result.npz"])
def test_config_of_a_series_result_reruns_the_series(series_folder, tmp_path, capsys, name):
    folder, first = series_folder
    rc = main(["run", str(folder / "zc.npy"), "--spectral-axis", "1", "--config",
               str(folder / name), "--out", str(tmp_path / "out"), "--quiet",
               "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 0, err
    assert "warning:" not in err
    again = SeriesResult.from_result(read_result_bundle(tmp_path / "out").result, (3, 8, 8))
    assert again is not None and again.strategy == "per-slice"
    np.testing.assert_array_equal(again.maps, first.maps)
    np.testing.assert_array_equal(again.H, first.H)


def test_config_of_a_plain_result_does_not_warn(series_folder, tmp_path, capsys):
    series_folder, _ = series_folder
    args = ["--spectral-axis", "1", "--quiet", "--no-progress"]
    rc = main(["run", str(series_folder / "zc.npy"), "--mode", "nmf", "-k", "3",
               "--random-state", "0", "--out", str(tmp_path / "a"), *args])
    assert rc == 0
    capsys.readouterr()
    rc = main(["run", str(series_folder / "zc.npy"), "--config", str(tmp_path / "a"),
               "--out", str(tmp_path / "b"), *args])
    err = capsys.readouterr().err
    assert rc == 0 and "series" not in err, err
