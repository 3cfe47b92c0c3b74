"""``napari-unmix run --nan-policy omit``: pixels with NaN / inf values left out, said
and recorded; the default refuses them and names the flag."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile

from napari_unmix.cli import main
from napari_unmix.core.synthetic import make_crs_sample
from napari_unmix.io import read_maps_tiff, write_stack_tiff

KEPT = np.r_[1:9, 10:14]  # the image rows without NaN


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli-nan")
    sample = make_crs_sample(shape=(14, 10), n_channels=12, random_state=4)
    stack = sample.stack.astype(np.float32)
    holed = stack.copy()
    holed[3, 0, :] = np.nan  # a padded first row
    holed[:, 9, :] = np.nan  # and a blank row
    holed[0, 9, 2] = np.inf
    write_stack_tiff(d / "holed.tif", holed, axes="CYX", spectral_values=sample.spectral_axis,
                     spectral_unit="cm^-1")
    write_stack_tiff(d / "cropped.tif", holed[:, KEPT], axes="CYX",
                     spectral_values=sample.spectral_axis, spectral_unit="cm^-1")
    lab = np.zeros((14, 10), np.int32)
    lab[0, :4] = 1  # label 1 only on the padded row
    lab[4:7, 4:7] = 2
    np.save(d / "only_left_out.npy", lab)
    return d


def _run(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_the_default_refuses_nan_and_names_the_flag(capsys, files, tmp_path):
    code, _, err = _run(capsys, "run", files / "holed.tif", "--mode", "nmf", "-k", "2",
                        "--out", tmp_path / "o")
    assert code == 2 and "holds 129 NaN and 1 infinite value(s)" in err
    assert "Pass --nan-policy omit" in err and not (tmp_path / "o").exists()


def test_omit_leaves_the_pixels_out_says_so_and_equals_the_cropped_stack(capsys, files,
                                                                          tmp_path):
    common = ["--mode", "nmf", "-k", "3", "--random-state", "0", "--max-iter", "50"]
    code, _, err = _run(capsys, "run", files / "holed.tif", *common, "--nan-policy", "omit",
                        "--out", tmp_path / "o")
    assert code == 0, err
    assert "the 20 pixel(s) holding them are left out of the fit" in err
    code, _, err = _run(capsys, "run", files / "cropped.tif", *common, "--out", tmp_path / "c")
    assert code == 0, err
    maps, _ = read_maps_tiff(tmp_path / "o" / "maps.tif")
    ref, _ = read_maps_tiff(tmp_path / "c" / "maps.tif")
    assert np.isnan(maps[:, [0, 9]]).all()
    np.testing.assert_array_equal(maps[:, KEPT], ref)
    doc = json.loads((tmp_path / "o" / "result.json").read_text())
    assert doc["params"]["nan_policy"] == "omit"
    assert doc["summary"]["preprocessing"][0] == {
        "step": "non-finite pixels", "policy": "omit", "omitted_pixels": 20, "kept_pixels": 120}
    # the result's config reruns it as it was, without the flag
    code, _, err = _run(capsys, "run", files / "holed.tif", "--config", tmp_path / "o",
                        "--out", tmp_path / "again")
    assert code == 0, err
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "again" / "maps.tif"),
                                  tifffile.imread(tmp_path / "o" / "maps.tif"))


def test_a_label_only_on_left_out_pixels_is_named(capsys, files, tmp_path):
    code, _, err = _run(capsys, "run", files / "holed.tif", "--mode", "seeded-nmf",
                        "--labels", files / "only_left_out.npy", "--nan-policy", "omit",
                        "--out", tmp_path / "o")
    assert code == 2
    assert "label 1 lies only on pixels left out of the fit" in err and "--nan-policy" in err


def test_a_zarr_stack_cannot_omit_pixels_and_says_what_to_do(capsys, tmp_path):
    zarr = pytest.importorskip("zarr", reason="zarr is not installed (napari-unmix[distributed])")
    data = np.random.default_rng(0).random((6, 16, 16)).astype(np.float32)
    arr = zarr.create_array(str(tmp_path / "c.zarr"), shape=data.shape, dtype=data.dtype,
                            chunks=(6, 8, 8))
    arr[:] = data
    code, _, err = _run(capsys, "run", tmp_path / "c.zarr", "--mode", "nmf", "-k", "2",
                        "--nan-policy", "omit", "--out", tmp_path / "o")
    assert code == 2 and "--nan-policy omit leaves pixels out of a stack read into memory, " \
        "not of a zarr stack" in err
    assert "np.asarray" not in err


def test_the_result_folder_of_an_omitting_run_opens_in_napari_with_nan_maps(capsys, files,
                                                                             tmp_path):
    # before: "spatial_shape (14, 10) has 140 pixels but the result's W has 120 rows"
    pytest.importorskip("napari")
    from napari_unmix._napari.reader import get_reader
    from napari_unmix.io import read_result_bundle

    code, _, err = _run(capsys, "run", files / "holed.tif", "--mode", "nmf", "-k", "2",
                        "--nan-policy", "omit", "--out", tmp_path / "o")
    assert code == 0, err
    bundle = read_result_bundle(tmp_path / "o")
    assert bundle.mask is not None and not bundle.mask[[0, 9]].any()
    layers = get_reader(str(tmp_path / "o"))(str(tmp_path / "o"))
    assert len(layers) == 2
    for data, _, kind in layers:
        assert kind == "image" and data.shape == (14, 10)
        assert np.isnan(data[[0, 9]]).all() and np.isfinite(data[KEPT]).all()


@pytest.mark.parametrize("command", [["suggest-k"], ["suggest", "--no-run", "--seeds", "s.npy"]])
def test_the_suggest_commands_refuse_nan_by_default_and_take_the_flag(capsys, files, tmp_path,
                                                                     command):
    args = [a if a != "s.npy" else tmp_path / a for a in command]
    code, _, err = _run(capsys, args[0], files / "holed.tif", *args[1:])
    assert code == 2 and "Pass --nan-policy omit" in err
    code, _, err = _run(capsys, args[0], files / "holed.tif", *args[1:], "--nan-policy", "omit",
                        "--k-max", "4")
    assert code == 0, err


def test_suggest_with_omit_runs_and_records_it(capsys, files, tmp_path):
    code, _, err = _run(capsys, "suggest", files / "holed.tif", "-k", "3", "--nan-policy",
                        "omit", "--out", tmp_path / "o")
    assert code == 0, err
    doc = json.loads((tmp_path / "o" / "result.json").read_text())
    assert doc["params"]["nan_policy"] == "omit"
    assert doc["summary"]["preprocessing"][0]["omitted_pixels"] == 20
    maps, _ = read_maps_tiff(tmp_path / "o" / "maps.tif")
    assert np.isnan(maps[:, [0, 9]]).all() and np.isfinite(maps[:, KEPT]).all()
