"""'Save spectra' leaves no per-plane spectra of an earlier save beside the chosen file.

Saving the spectra of a 3-plane series as ``lipids.csv`` where an earlier save of a
5-plane series (or a plain result over a series' files) had written
``lipids_z000.csv`` ... ``lipids_z004.csv`` left ``lipids_z003.csv`` and
``lipids_z004.csv`` there: the files beside ``lipids.csv`` mixed two results and
nothing said so.  The writer now removes the spectra tables named
``lipids_zNNN.csv`` that it did not write, and says which; a file of that name that
is no spectra table is left, and named.
"""

from __future__ import annotations

import logging
import os
import warnings

import numpy as np
import pytest

from napari_unmix._napari.reader import result_layer_data
from napari_unmix._napari.writer import write_spectra
from napari_unmix.core import AnalysisConfig, unmix_series
from napari_unmix.core.synthetic import make_crs_sample_4d
from napari_unmix.io import ResultBundle, read_spectra_csv


def _series_layers(n_planes):
    s = make_crs_sample_4d(n_planes=n_planes, shape=(8, 9), n_channels=10, random_state=0)
    config = AnalysisConfig(mode="nmf", n_components=2, max_iter=5, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sr = unmix_series(s.stack, config, strategy="per-slice")
    return sr, result_layer_data(ResultBundle(result=sr.as_result(),
                                              spatial_shape=(n_planes, 8, 9)), name="zs")


def _csvs(folder):
    return sorted(p for p in os.listdir(folder) if p.endswith(".csv"))


def test_a_save_of_fewer_planes_removes_the_earlier_extra_plane_files(tmp_path, caplog):
    _, five = _series_layers(5)
    write_spectra(str(tmp_path / "lipids.csv"), five)
    sr, three = _series_layers(3)
    with caplog.at_level(logging.INFO, logger="napari_unmix._napari.writer"):
        out = write_spectra(str(tmp_path / "lipids.csv"), three)
    assert [os.path.basename(p) for p in out] == [
        "lipids.csv", "lipids_z000.csv", "lipids_z001.csv", "lipids_z002.csv"]
    assert _csvs(tmp_path) == ["lipids.csv", "lipids_z000.csv", "lipids_z001.csv",
                               "lipids_z002.csv"]
    assert "lipids_z003.csv, lipids_z004.csv" in caplog.text   # said what went
    for z in range(3):
        np.testing.assert_allclose(read_spectra_csv(out[1 + z]).values, sr.plane_spectra(z),
                                   rtol=1e-6)


def test_a_plain_save_over_a_series_save_removes_its_plane_files(tmp_path, small_series):
    _, three = _series_layers(3)
    write_spectra(str(tmp_path / "lipids.csv"), three)
    shared = small_series("shared-basis").as_result()   # one set of spectra: one file
    one = result_layer_data(ResultBundle(result=shared, spatial_shape=(3, 8, 10)), name="sh")
    assert len(write_spectra(str(tmp_path / "lipids.csv"), one)) == 1
    assert _csvs(tmp_path) == ["lipids.csv"]


def test_only_spectra_tables_of_exactly_that_name_pattern_go(tmp_path, caplog):
    _, three = _series_layers(3)
    keep = ["lipids_z9.txt", "lipids_z003_notes.csv", "lipids_zA.csv", "other_z003.csv",
            "xlipids_z003.csv"]
    for name in keep:
        (tmp_path / name).write_text("wavenumber,a\n1,2\n", encoding="utf-8")
    (tmp_path / "lipids_z007.csv").write_text("not a table\n", encoding="utf-8")
    (tmp_path / "lipids_z0005.csv").write_text("wavenumber,a\n1,2\n2,3\n", encoding="utf-8")
    with caplog.at_level(logging.INFO, logger="napari_unmix._napari.writer"):
        write_spectra(str(tmp_path / "lipids.csv"), three)
    left = set(os.listdir(tmp_path))
    assert set(keep) | {"lipids_z007.csv"} <= left       # not a table of that pattern: kept
    assert "lipids_z0005.csv" not in left                # a table of the pattern: gone
    assert "lipids_z0005.csv" in caplog.text and "lipids_z007.csv" in caplog.text


def test_a_failed_save_removes_nothing(tmp_path, monkeypatch):
    import napari_unmix.io as io_mod

    _, five = _series_layers(5)
    write_spectra(str(tmp_path / "lipids.csv"), five)
    before = {p: (tmp_path / p).read_bytes() for p in _csvs(tmp_path)}
    _, three = _series_layers(3)
    real = io_mod.write_spectra_csv
    calls = []

    def failing(path, *args, **kwargs):
        calls.append(path)
        if len(calls) > 2:   # the mean and plane 0 are written, plane 1 fails
            raise OSError("disk full")
        return real(path, *args, **kwargs)

    monkeypatch.setattr(io_mod, "write_spectra_csv", failing)
    with pytest.raises(OSError, match="disk full"):
        write_spectra(str(tmp_path / "lipids.csv"), three)
    assert _csvs(tmp_path) == sorted(before)    # z003, z004 still there: nothing removed
