"""The seed files of ``napari-unmix run`` (``--labels``, ``--spectra``) against the stack.

Each case was found by attacking main: a label image of a stack with a length-1
spatial axis was refused with a shape the stack does not have; a spectra file in
another unit than the stack's was resampled on the wrong axis; an empty column name
gave an error without the file or the column.
"""

from __future__ import annotations

import numpy as np
import pytest

from napari_unmix.cli import main
from napari_unmix.core import UnmixResult
from napari_unmix.core.synthetic import make_crs_sample
from napari_unmix.io import write_spectra_csv, write_stack_tiff


def _line_stack(path, n_channels=5, n_x=30):
    rng = np.random.default_rng(0)
    np.save(path, (rng.random((n_channels, 1, n_x)) + 0.1).astype(np.float32))
    return path


def test_labels_of_a_stack_with_a_length_1_spatial_axis_seed_the_run(tmp_path, capsys):
    stack = _line_stack(tmp_path / "line.npy")
    labels = np.zeros((1, 30), np.uint16)
    labels[0, :10], labels[0, 15:25] = 1, 2
    np.save(tmp_path / "labels.npy", labels)
    out = tmp_path / "out"
    code = main(["run", str(stack), "--spectral-axis", "0", "--mode", "seeded-nmf",
                 "--labels", str(tmp_path / "labels.npy"), "--max-iter", "5", "--out",
                 str(out), "--no-progress", "-q"])
    assert code == 0, capsys.readouterr().err
    assert UnmixResult.load(out / "result.npz").n_components == 2


def test_a_label_image_of_another_shape_is_refused_with_both_true_shapes(tmp_path, cli_error):
    stack = _line_stack(tmp_path / "line.npy")
    np.save(tmp_path / "labels.npy", np.ones((1, 29), np.uint16))
    line = cli_error("run", stack, "--spectral-axis", "0", "--mode", "seeded-nmf", "--labels",
                     tmp_path / "labels.npy", "--out", tmp_path / "out")
    assert "has shape (1, 29) but the stack's spatial shape is (1, 30)" in line
    assert "labels.npy" in line


def _cm1_stack(path):
    sample = make_crs_sample(shape=(8, 8), n_channels=10, random_state=2)
    write_stack_tiff(path, sample.stack, axes="CYX", spectral_values=sample.spectral_axis,
                     spectral_unit="cm^-1")
    return sample


def _spectra_text(header, axis, H):
    rows = [",".join(repr(float(v)) for v in (a, *col)) for a, col in zip(axis, H.T,
                                                                        strict=True)]
    return "\n".join([header, *rows]) + "\n"


def test_an_empty_column_name_in_the_spectra_header_names_the_flag_file_and_column(
        tmp_path, cli_error):
    sample = _cm1_stack(tmp_path / "s.tif")
    spectra = tmp_path / "refs.csv"
    spectra.write_text(_spectra_text("wavenumber (cm^-1),lipid,,water", sample.spectral_axis,
                                     sample.H[:3]))
    line = cli_error("run", tmp_path / "s.tif", "--mode", "nnls", "--spectra", spectra,
                     "--out", tmp_path / "out")
    assert f"--spectra {spectra}" in line and "column 3" in line and "write a name" in line


def test_spectra_in_nm_for_a_stack_in_cm1_are_refused_naming_both_units(tmp_path, cli_error):
    sample = _cm1_stack(tmp_path / "s.tif")  # 2800 to 3100 cm^-1
    spectra = tmp_path / "refs_nm.csv"  # the same numbers, called nm: the ranges overlap
    write_spectra_csv(spectra, sample.H[:3], sample.spectral_axis, ["a", "b", "c"], "nm")
    line = cli_error("run", tmp_path / "s.tif", "--mode", "nnls", "--spectra", spectra,
                     "--out", tmp_path / "out")
    assert f"--spectra {spectra}" in line
    assert "in nm" in line and "in cm^-1" in line and "excitation wavelength" in line
    assert not (tmp_path / "out").exists()


def test_spectra_in_nm_for_a_stack_in_um_are_converted_exactly(tmp_path, capsys):
    sample = make_crs_sample(shape=(8, 8), n_channels=10, random_state=2)
    nm = np.linspace(500.0, 700.0, 10)
    write_stack_tiff(tmp_path / "s.tif", sample.stack, axes="CYX", spectral_values=nm / 1000,
                     spectral_unit="um")
    write_spectra_csv(tmp_path / "nm.csv", sample.H[:3], nm, ["a", "b", "c"], "nm")
    write_spectra_csv(tmp_path / "um.csv", sample.H[:3], nm / 1000, ["a", "b", "c"], "um")
    results = {}
    for unit in ("nm", "um"):
        out = tmp_path / f"out-{unit}"
        code = main(["run", str(tmp_path / "s.tif"), "--mode", "nnls", "--spectra",
                     str(tmp_path / f"{unit}.csv"), "--out", str(out), "--no-progress"])
        _, err = capsys.readouterr()
        assert code == 0, err
        assert ("converted to um" in err) == (unit == "nm"), err
        assert "warning" not in err, err  # no channel falls outside the converted axis
        results[unit] = UnmixResult.load(out / "result.npz")
    np.testing.assert_array_equal(results["nm"].W, results["um"].W)


def test_a_config_unit_is_not_claimed_for_a_stack_without_spectral_values(tmp_path, capsys):
    import json

    from napari_unmix.core import AnalysisConfig

    np.save(tmp_path / "plain.npy", np.random.default_rng(0).random((6, 8, 8)) + 0.1)
    AnalysisConfig(mode="pca", n_components=2, spectral_unit="cm^-1").save(
        tmp_path / "cfg.json")
    out = tmp_path / "out"
    code = main(["run", str(tmp_path / "plain.npy"), "--spectral-axis", "0", "--config",
                 str(tmp_path / "cfg.json"), "--out", str(out), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "names the spectral unit cm^-1" in err and "carries no spectral values" in err
    assert str(tmp_path / "plain.spectral.csv") in err
    doc = json.loads((out / "result.json").read_text())
    assert doc["spectral_unit"] is None and doc["spectral_range"] is None
    assert json.loads((out / "config.json").read_text())["spectral_unit"] is None
    assert (out / "spectra.csv").read_text().split(",")[0] == "channel"
    assert UnmixResult.load(out / "result.npz").spectral_unit is None


def test_an_ome_zarr_label_image_seeds_the_run_and_the_labels_group_is_refused(
        tmp_path, capsys, cli_error):
    # --labels img.ome.zarr/labels/cells, what the refusal to open it as a stack advises
    pytest.importorskip("ome_zarr")
    zarr = pytest.importorskip("zarr")
    stack = _line_stack(tmp_path / "line.npy")
    labels = np.zeros((1, 30), np.uint16)
    labels[0, :10], labels[0, 15:25] = 1, 2
    group = zarr.open_group(str(tmp_path / "img.ome.zarr" / "labels"), mode="w",
                            zarr_format=2)
    group.attrs["labels"] = ["cells"]
    cells = group.create_group("cells")
    cells.create_array("0", data=labels)
    cells.attrs["image-label"] = {"version": "0.4"}
    cells.attrs["multiscales"] = [{"version": "0.4", "axes": [
        {"name": "y", "type": "space"}, {"name": "x", "type": "space"}], "datasets": [
        {"path": "0", "coordinateTransformations": [{"type": "scale", "scale": [1, 1]}]}]}]
    out = tmp_path / "out"
    code = main(["run", str(stack), "--spectral-axis", "0", "--mode", "seeded-nmf",
                 "--labels", str(tmp_path / "img.ome.zarr" / "labels" / "cells"),
                 "--max-iter", "5", "--out", str(out), "--no-progress", "-q"])
    assert code == 0, capsys.readouterr().err
    assert UnmixResult.load(out / "result.npz").n_components == 2
    line = cli_error("run", stack, "--spectral-axis", "0", "--mode", "seeded-nmf", "--labels",
                     tmp_path / "img.ome.zarr" / "labels", "--out", tmp_path / "out2")
    assert "not an OME-Zarr label image" in line and "labels/cells" in line
