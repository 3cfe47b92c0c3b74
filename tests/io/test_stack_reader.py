"""read_stack: axes from metadata, documented guesses, clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile

from napari_unmix.io import read_stack, write_stack_tiff

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


@pytest.fixture
def cube():
    rng = np.random.default_rng(0)
    return rng.random((6, 10, 12)).astype(np.float32)  # (C, Y, X)


def test_own_tiff_round_trip(tmp_path, cube):
    nu = np.linspace(2800, 3100, 6)
    path = write_stack_tiff(tmp_path / "s.tif", cube, axes="CYX", spectral_values=nu,
                            spectral_unit="cm^-1")
    s = read_stack(path)
    np.testing.assert_array_equal(s.data, cube)
    assert s.data.dtype == np.float32
    assert (s.spectral_axis, s.axes, s.guessed) == (0, "CYX", False)
    np.testing.assert_array_equal(s.spectral_values, nu)
    assert s.spectral_unit == "cm^-1"
    assert s.n_channels == 6
    assert s.notes == []


def test_imagej_tzcyx_hyperstack_round_trip(tmp_path):
    data = np.arange(2 * 3 * 4 * 5 * 6, dtype=np.uint16).reshape(2, 3, 4, 5, 6)
    tifffile.imwrite(tmp_path / "h.tif", data, imagej=True, metadata={"axes": "TZCYX"})
    s = read_stack(tmp_path / "h.tif")
    assert s.axes == "TZCYX" and s.spectral_axis == 2 and not s.guessed
    np.testing.assert_array_equal(s.data, data)


def test_imagej_order_zct_file_is_czyx_in_metadata(tmp_path):
    # a hyperstack written as (Z, C, Y, X): the channel axis is found by its label,
    # not by its position or size
    data = np.zeros((7, 3, 8, 9), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "h.tif", data, imagej=True, metadata={"axes": "ZCYX"})
    s = read_stack(tmp_path / "h.tif")
    assert s.axes == "ZCYX" and s.spectral_axis == 1 and s.n_channels == 3


def test_non_imagej_axes_order_with_spectral_values(tmp_path, cube):
    yxc = np.moveaxis(cube, 0, -1)
    path = write_stack_tiff(tmp_path / "s.tif", yxc, axes="YXC",
                            spectral_values=[500, 510, 520, 530, 540, 550], spectral_unit="nm")
    s = read_stack(path)
    assert s.axes == "YXC" and s.spectral_axis == 2 and not s.guessed
    np.testing.assert_array_equal(s.data, yxc)
    np.testing.assert_array_equal(s.spectral_values, [500, 510, 520, 530, 540, 550])
    assert s.spectral_unit == "nm"


def test_three_channel_yxc_is_not_taken_for_rgb(tmp_path):
    data = np.random.default_rng(1).random((5, 7, 3))
    s = read_stack(write_stack_tiff(tmp_path / "s.tif", data, axes="YXC"))
    assert s.spectral_axis == 2 and s.axes == "YXC"
    np.testing.assert_array_equal(s.data, data)


def test_plain_imagej_stack_single_other_axis_is_a_flagged_guess(tmp_path, cube):
    tifffile.imwrite(tmp_path / "z.tif", cube, imagej=True, metadata={"axes": "ZYX"})
    s = read_stack(tmp_path / "z.tif")
    assert s.axes == "ZYX" and s.spectral_axis == 0 and s.guessed
    assert any("guessed" in n for n in s.notes)


def test_tiff_without_axes_metadata_uses_first_axis(tmp_path, cube):
    tifffile.imwrite(tmp_path / "p.tif", cube, photometric="minisblack")
    s = read_stack(tmp_path / "p.tif")
    assert s.spectral_axis == 0 and s.guessed
    assert s.spectral_values is None and s.spectral_unit is None


def test_spectral_axis_argument_overrides_metadata(tmp_path, cube):
    path = write_stack_tiff(tmp_path / "s.tif", cube, axes="CYX")
    s = read_stack(path, spectral_axis=-1)
    assert s.spectral_axis == 2 and not s.guessed
    with pytest.raises(ValueError, match="out of range"):
        read_stack(path, spectral_axis=3)


def test_multi_series_tiff_says_which_series(tmp_path, cube):
    path = tmp_path / "m.tif"
    with tifffile.TiffWriter(path) as tw:
        tw.write(cube, photometric="minisblack", metadata={"axes": "CYX"})
        tw.write(cube[:2, :4, :4], photometric="minisblack", metadata={"axes": "CYX"})
    s = read_stack(path)
    assert s.data.shape == cube.shape
    assert any("series 0" in n for n in s.notes)


def test_single_image_tiff_is_refused(tmp_path, cube):
    tifffile.imwrite(tmp_path / "one.tif", cube[0])
    with pytest.raises(ValueError, match="single image"):
        read_stack(tmp_path / "one.tif")


@pytest.mark.parametrize("content", [b"this is not a tiff", b"II*\x00\x08\x00\x00\x00\xff"])
def test_corrupt_tiff_gives_one_clear_error(tmp_path, content):
    bad = tmp_path / "bad.tif"
    bad.write_bytes(content)
    with pytest.raises(ValueError, match="could not be read as a TIFF"):
        read_stack(bad)


def test_truncated_tiff_gives_one_clear_error(tmp_path, cube):
    good = write_stack_tiff(tmp_path / "s.tif", cube, axes="CYX")
    cut = tmp_path / "cut.tif"
    cut.write_bytes(good.read_bytes()[:300])
    with pytest.raises(ValueError, match="cut.tif"):
        read_stack(cut)


def test_npy_round_trip_and_guess(tmp_path, cube):
    np.save(tmp_path / "s.npy", cube)
    s = read_stack(tmp_path / "s.npy")
    np.testing.assert_array_equal(s.data, cube)
    assert s.spectral_axis == 0 and s.guessed and s.axes is None
    s = read_stack(tmp_path / "s.npy", spectral_axis=2)
    assert s.spectral_axis == 2 and not s.guessed


def test_npz_finds_the_axis_from_spectral_positions(tmp_path, cube):
    yxc = np.moveaxis(cube, 0, -1).astype(np.float64)
    np.savez(tmp_path / "e.npz", cube=yxc, wavenumber_cm1=np.linspace(1000, 1700, 6))
    s = read_stack(tmp_path / "e.npz")
    assert s.spectral_axis == 2 and not s.guessed
    assert s.spectral_unit == "cm^-1"
    np.testing.assert_array_equal(s.spectral_values, np.linspace(1000, 1700, 6))
    np.testing.assert_array_equal(s.data, yxc)


def test_npz_with_explicit_keys(tmp_path, cube):
    np.savez(tmp_path / "s.npz", stack=cube, spectral_values=np.arange(6.0),
             spectral_unit=np.array("nm"), other=np.zeros((3, 3)))
    s = read_stack(tmp_path / "s.npz")
    assert s.spectral_axis == 0 and s.spectral_unit == "nm" and s.notes == []


def test_npz_without_a_recognisable_stack(tmp_path):
    np.savez(tmp_path / "s.npz", a=np.zeros((3, 3)), b=np.zeros((4, 4)))
    with pytest.raises(ValueError, match="under the key 'stack'"):
        read_stack(tmp_path / "s.npz")


def test_spectral_values_of_wrong_length_are_dropped_with_a_note(tmp_path, cube):
    np.savez(tmp_path / "s.npz", stack=cube, spectral_values=np.arange(5.0))
    s = read_stack(tmp_path / "s.npz", spectral_axis=0)
    assert s.spectral_values is None and s.spectral_unit is None
    assert any("do not fit" in n for n in s.notes)


@pytest.mark.parametrize("array, match", [
    (np.arange(10.0), "at least one spatial axis"),
    (np.array([], dtype=float).reshape(0, 3), "empty"),
    (np.array([["a", "b"], ["c", "d"]]), "not real numbers"),
    # a mask saved by mistake was read as a 0/1 "stack" and unmixed without a word
    (np.ones((4, 3, 3), dtype=bool), r"boolean\) data: a mask, not spectral intensities"),
])
def test_bad_arrays_are_refused(tmp_path, array, match):
    np.save(tmp_path / "x.npy", array)
    with pytest.raises(ValueError, match=match):
        read_stack(tmp_path / "x.npy")


def test_missing_unknown_and_folder_paths(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_stack(tmp_path / "nope.tif")
    (tmp_path / "x.h5").write_bytes(b"")
    with pytest.raises(ValueError, match="unknown file type"):
        read_stack(tmp_path / "x.h5")
    with pytest.raises(ValueError, match="folder"):
        read_stack(tmp_path)


@pytest.mark.realdata
def test_real_raman_emulsion_npz():
    path = DATA / "supure_raman_emulsion" / "emulsion_hsi.npz"
    if not path.exists():
        pytest.skip(f"real data not found at {path} (see ../shared/data/README.md)")
    s = read_stack(path)
    assert s.data.shape == (60, 60, 253)
    assert s.spectral_axis == 2 and s.spectral_unit == "cm^-1" and not s.guessed
    assert s.spectral_values[0] == pytest.approx(1010, abs=5)


@pytest.mark.realdata
def test_real_single_channel_leica_tiff_is_refused_as_a_stack():
    path = DATA / "neher_leica_3dye" / "03_Series004_z000_ch00.tif"
    if not path.exists():
        pytest.skip(f"real data not found at {path} (see ../shared/data/README.md)")
    with pytest.raises(ValueError, match="single image"):
        read_stack(path)
