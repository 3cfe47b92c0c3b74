"""The result folder of a per-plane z / t series holds every plane's spectra.

Its ``spectra.csv`` is the mean of the planes' matched spectra (``SeriesResult.as_result``),
which no plane was fitted with, and the spectra each plane was fitted with were in
``result.npz`` only: a user taking ``spectra.csv`` as a plane's spectra (or as
references for another stack) had the wrong ones.  ``spectra_zNNN.csv`` holds each
plane's now; the folder still replaces, and is replaced by, other output sets.
"""

from __future__ import annotations

import warnings

import numpy as np

from napari_unmix.core import AnalysisConfig
from napari_unmix.core.synthetic import make_crs_sample
from napari_unmix.io import read_spectra_csv, write_analysis_outputs


def test_a_per_plane_series_folder_holds_every_plane_spectra(tmp_path, small_series):
    sr = small_series("per-slice")
    files = write_analysis_outputs(tmp_path / "res", sr.as_result(), (3, 8, 10))
    assert [p.name for p in files["plane_spectra"]] == [f"spectra_z00{z}.csv" for z in range(3)]
    for z in range(3):
        table = read_spectra_csv(tmp_path / "res" / f"spectra_z00{z}.csv")
        np.testing.assert_allclose(table.values, sr.plane_spectra(z), rtol=1e-6)
    # a shared basis has one set of spectra, and a plain result none per plane
    shared = write_analysis_outputs(tmp_path / "shared", small_series("shared-basis").as_result(),
                                    (3, 8, 10))
    assert "plane_spectra" not in shared
    sample = make_crs_sample(shape=(8, 10), n_channels=12)
    from napari_unmix.core.analysis import run_analysis

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = run_analysis(sample.stack, AnalysisConfig(mode="nmf", n_components=2,
                                                        max_iter=5, random_state=0))
    write_analysis_outputs(tmp_path / "res", res, (8, 10))   # replaces the series' set
    assert not list((tmp_path / "res").glob("spectra_z*.csv"))


def test_a_folder_of_fewer_planes_replaces_every_per_plane_file_of_more(tmp_path):
    """The folder is replaced whole: no spectra_zNNN.csv or composite_zNNN.png of an
    earlier series with more planes stays (this held before; it guards the rule)."""
    from napari_unmix.core import unmix_series
    from napari_unmix.core.synthetic import make_crs_sample_4d

    config = AnalysisConfig(mode="nmf", n_components=2, max_iter=5, random_state=0)
    for n in (5, 3):
        s = make_crs_sample_4d(n_planes=n, shape=(8, 9), n_channels=10, random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sr = unmix_series(s.stack, config, strategy="per-slice")
        for fmt in ("tiff", "ome-zarr"):
            write_analysis_outputs(tmp_path / fmt, sr.as_result(), (n, 8, 9), maps_format=fmt)
    for fmt in ("tiff", "ome-zarr"):
        names = sorted(p.name for p in (tmp_path / fmt).iterdir())
        assert [n for n in names if "_z" in n] == [
            *(f"composite_z00{z}.png" for z in range(3)),
            *(f"spectra_z00{z}.csv" for z in range(3))]
