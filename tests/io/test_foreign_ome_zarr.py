"""OME-Zarr images as other writers make them, metadata written by hand to the spec.

OME-Zarr 0.4 (zarr v2, ``.zattrs``) and 0.5 (zarr v3, everything under ``"ome"``):
the pixel size of level 0 is its own ``scale`` times the ``scale`` of the
multiscale image as a whole, where the image has one (both versions allow it).
"""

from __future__ import annotations

import numpy as np
import pytest

from napari_unmix.io import open_stack

zarr = pytest.importorskip("zarr")
pytest.importorskip("ome_zarr")

CUBE = np.random.default_rng(0).random((6, 32, 40)).astype(np.float32)  # (c, y, x)


def _ome_zarr(path, *, zarr_format, level_scale, image_transforms=None, unit="micrometer"):
    root = zarr.open_group(str(path), mode="w", zarr_format=zarr_format)
    root.create_array("0", data=CUBE, chunks=CUBE.shape)
    axes = [{"name": "c", "type": "channel"},
            {"name": "y", "type": "space", "unit": unit},
            {"name": "x", "type": "space", "unit": unit}]
    image = {"name": "img", "axes": axes, "datasets": [{"path": "0", "coordinateTransformations": [
        {"type": "scale", "scale": level_scale}]}]}
    if image_transforms is not None:
        image["coordinateTransformations"] = image_transforms
    if zarr_format == 2:
        root.attrs["multiscales"] = [{"version": "0.4", **image}]
    else:
        root.attrs["ome"] = {"version": "0.5", "multiscales": [image]}
    return path


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_the_scale_of_the_whole_multiscale_image_is_part_of_the_pixel_size(tmp_path,
                                                                            zarr_format):
    path = _ome_zarr(tmp_path / "img.ome.zarr", zarr_format=zarr_format,
                     level_scale=[1, 2, 2],
                     image_transforms=[{"type": "scale", "scale": [1, 0.25, 0.5]}])
    s = open_stack(path)
    assert s.axes == "CYX" and s.spectral_axis == 0
    assert s.scale == (1.0, 0.5, 1.0) and s.units == ("", "um", "um")
    np.testing.assert_array_equal(np.asarray(s.data), CUBE)


def test_a_level_scale_alone_is_the_pixel_size(tmp_path):
    path = _ome_zarr(tmp_path / "img.ome.zarr", zarr_format=2, level_scale=[1, 0.2, 0.2])
    assert open_stack(path).scale == (1.0, 0.2, 0.2)


@pytest.mark.parametrize("unit", ["m", "cm", "mm", "um", "nm"])
def test_every_length_unit_our_writer_names_reads_back(tmp_path, unit):
    # write_stack_ome_zarr names units as UDUNITS-2 does (OME_UNITS): "centimeter" ...
    import warnings

    from napari_unmix.io.ome_zarr_out import OME_UNITS, write_stack_ome_zarr

    assert unit in OME_UNITS
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # ome-zarr's own, on import
        path = write_stack_ome_zarr(tmp_path / "s.ome.zarr", CUBE,
                                    pixel_size=((0.5, 0.25), (unit, unit)))
    s = open_stack(path)
    assert s.scale == (1.0, 0.5, 0.25) and s.units == ("", unit, unit)


def test_a_bioformats2raw_folder_names_the_images_to_open(tmp_path):
    # bioformats2raw: the root holds no image, only its series as the groups 0, 1 ...
    path = tmp_path / "b2r.zarr"
    root = zarr.open_group(str(path), mode="w", zarr_format=2)
    root.attrs["bioformats2raw.layout"] = 3
    for series in ("0", "1"):
        _ome_zarr(path / series, zarr_format=2, level_scale=[1, 0.2, 0.2])
    root.create_group("OME").attrs["series"] = ["0", "1"]
    with pytest.raises(ValueError, match=r"bioformats2raw.*groups 0, 1.*b2r\.zarr/0"):
        open_stack(path)
    s = open_stack(path / "1")
    assert s.axes == "CYX" and s.scale == (1.0, 0.2, 0.2)


@pytest.mark.parametrize(("unit", "expected"), [
    ("angstrom", (0.25, 0.05)), ("picometer", (0.0025, 0.0005)), ("nanometer", (2.5, 0.5)),
    ("micrometer", (2.5, 0.5)), ("kilometer", (2500.0, 500.0))])
def test_pixel_sizes_in_angstrom_or_picometer_are_converted_exactly(tmp_path, unit, expected):
    # OME-Zarr's UDUNITS-2 names; Å and pm were dropped without a word
    path = _ome_zarr(tmp_path / "img.ome.zarr", zarr_format=3, level_scale=[1, 2.5, 0.5],
                     unit=unit)
    s = open_stack(path)
    to = {"angstrom": "nm", "picometer": "nm", "nanometer": "nm", "micrometer": "um",
          "kilometer": "m"}[unit]
    assert s.scale == (1.0, *expected) and s.units == ("", to, to)


@pytest.mark.parametrize("unit", ["foot", "parsec", "megameter", "furlong"])
def test_a_pixel_size_in_a_unit_not_used_is_left_out_with_a_note_naming_it(tmp_path, unit):
    path = _ome_zarr(tmp_path / "img.ome.zarr", zarr_format=2, level_scale=[1, 0.2, 0.2],
                     unit=unit)
    s = open_stack(path)
    assert s.scale is None
    notes = [n for n in s.notes if f"given in {unit!r}" in n]
    assert len(notes) == 1 and "not used" in notes[0], s.notes
