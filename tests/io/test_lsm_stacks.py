"""Zeiss LSM files (lambda stacks): axes, emission wavelengths in nm, voxel sizes, fallbacks.

The files are built by the ``write_lsm`` fixture (tests/conftest.py): tifffile
reads LSM but cannot write it.  Each test first checks that tifffile parses the
file as LSM with the values written, so a failure here is ours, not the helper's.
"""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from napari_unmix.io import STACK_SUFFIXES, open_stack, read_stack
from napari_unmix.io.readers import STACK_FORMATS

#: Five 10 nm emission bins from 500 nm, [start, end] in metres (the LSM's unit).
STARTS = 500e-9 + 10e-9 * np.arange(5)
RANGES = np.stack([STARTS, STARTS + 10e-9], axis=1)
CENTRES_NM = np.array([505.0, 515.0, 525.0, 535.0, 545.0])
VOXEL = (0.2e-6, 0.25e-6, 1.5e-6)  # X, Y, Z in metres


@pytest.fixture
def cube():
    return np.random.default_rng(0).integers(0, 255, (5, 6, 7), dtype=np.uint8)


def _check_lsm(path, n_channels, ranges=RANGES):
    with tifffile.TiffFile(path) as tf:
        assert tf.is_lsm
        meta = tf.lsm_metadata
        assert meta["DimensionChannels"] == n_channels
        assert meta["VoxelSizeX"] == VOXEL[0] and meta["VoxelSizeY"] == VOXEL[1]
        if ranges is None:
            assert "ChannelWavelength" not in meta
        else:
            np.testing.assert_array_equal(meta["ChannelWavelength"], ranges)


def test_a_lambda_stack_reads_the_centres_of_its_emission_ranges_in_nm(tmp_path, cube,
                                                                       write_lsm):
    path = write_lsm(tmp_path / "lambda.lsm", cube, wavelengths=RANGES, voxel_size=VOXEL)
    _check_lsm(path, 5)
    s = read_stack(path)
    np.testing.assert_array_equal(s.data, cube)
    assert s.axes == "CYX" and s.spectral_axis == 0 and not s.guessed
    np.testing.assert_allclose(s.spectral_values, CENTRES_NM, rtol=0, atol=1e-6)
    # converted without float noise: written to spectra.csv as 505.0, not 505.00000000000006
    assert s.spectral_values.tolist() == CENTRES_NM.tolist()
    assert s.spectral_unit == "nm"
    # pixel sizes from VoxelSizeX / Y (metres), in µm (0.2, not 0.19999999999999998);
    # the spectral axis has none
    assert s.units == ("", "um", "um") and s.scale == (1.0, 0.25, 0.2)
    assert not any("image series" in n for n in s.notes), s.notes  # thumbnails: no note
    # where the values come from, as the other readers record it
    r = STACK_FORMATS[".lsm"](path, series=None, squeeze=True, lazy=False, threshold=None)
    assert r["values_source"] == "LSM metadata" and r["unit"] == "nm"
    assert ".lsm" in STACK_SUFFIXES


def test_a_sidecar_overrides_the_lsm_wavelengths_and_says_so(tmp_path, cube, write_lsm):
    path = write_lsm(tmp_path / "side.lsm", cube, wavelengths=RANGES, voxel_size=VOXEL)
    (tmp_path / "side.spectral.csv").write_text("nm\n" + "\n".join(map(str, range(600, 605))))
    s = open_stack(path)
    np.testing.assert_array_equal(s.spectral_values, np.arange(600.0, 605.0))
    assert any("not from the LSM metadata" in n for n in s.notes), s.notes


@pytest.mark.parametrize("axes, shape, spectral, scale, units", [
    ("ZCYX", (3, 5, 6, 7), 1, (1.5, 1.0, 0.25, 0.2), ("um", "", "um", "um")),
    ("TCYX", (2, 5, 6, 7), 1, (1.0, 1.0, 0.25, 0.2), ("", "", "um", "um")),
    ("TZCYX", (2, 3, 5, 6, 7), 2, (1.0, 1.5, 1.0, 0.25, 0.2), ("", "um", "", "um", "um")),
])
def test_z_and_t_lambda_stacks_keep_their_axes_like_other_hyperstacks(
        tmp_path, write_lsm, axes, shape, spectral, scale, units):
    data = np.arange(np.prod(shape), dtype=np.uint16).reshape(shape)
    path = write_lsm(tmp_path / "h.lsm", data, axes=axes, wavelengths=RANGES,
                     voxel_size=VOXEL)
    _check_lsm(path, 5)
    for lazy in (False, True):  # lazily: one page (all channels of a plane) per chunk
        s = open_stack(path, lazy=lazy)
        assert s.lazy is lazy
        assert s.axes == axes and s.spectral_axis == spectral and not s.guessed
        np.testing.assert_array_equal(np.asarray(s.data), data)
        np.testing.assert_allclose(s.spectral_values, CENTRES_NM, rtol=0, atol=1e-6)
        np.testing.assert_allclose(s.scale, scale, rtol=1e-12)
        assert s.units == units


def test_an_lsm_without_wavelengths_keeps_channel_numbers_and_says_so(tmp_path, cube,
                                                                      write_lsm):
    path = write_lsm(tmp_path / "plain.lsm", cube, voxel_size=VOXEL)
    _check_lsm(path, 5, ranges=None)
    s = read_stack(path)
    assert s.spectral_values is None and s.spectral_unit is None
    assert s.axes == "CYX" and s.spectral_axis == 0  # the channel axis is still spectral
    said = [n for n in s.notes if "ChannelWavelength" in n]
    assert len(said) == 1 and "numbered 0 to 4" in said[0] and "plain.spectral.csv" in said[0]
    np.testing.assert_allclose(s.scale, (1.0, 0.25, 0.2), rtol=1e-12)  # sizes still read
    # a sidecar gives the positions instead: no note that they are missing
    (tmp_path / "plain.spectral.csv").write_text("nm\n" + "\n".join(map(str, range(5))))
    assert not any("ChannelWavelength" in n for n in read_stack(path).notes)


@pytest.mark.parametrize("ranges, why", [
    (RANGES[:4], "give 4 emission wavelength ranges (ChannelWavelength) for 5 channels"),
    (np.zeros((5, 2)), "do not read as wavelengths in metres"),
    (RANGES * 1e9, "do not read as wavelengths in metres"),  # nm where metres belong
])
def test_wavelengths_that_do_not_fit_are_not_used(tmp_path, cube, write_lsm, ranges, why):
    path = write_lsm(tmp_path / "odd.lsm", cube, wavelengths=ranges, voxel_size=VOXEL)
    _check_lsm(path, 5, ranges=ranges)
    s = read_stack(path)
    assert s.spectral_values is None and s.spectral_unit is None
    said = [n for n in s.notes if why in n]
    assert len(said) == 1 and "numbered 0 to 4" in said[0], s.notes


def test_a_plain_tiff_named_lsm_is_read_as_a_tiff_with_a_note(tmp_path, cube):
    path = tmp_path / "renamed.lsm"
    tifffile.imwrite(path, cube, imagej=True, metadata={"axes": "CYX"})
    s = read_stack(path)
    np.testing.assert_array_equal(s.data, cube)
    assert s.axes == "CYX" and s.spectral_values is None
    assert any("no Zeiss LSM metadata" in n for n in s.notes), s.notes
