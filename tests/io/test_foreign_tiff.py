"""TIFF files as other tools write them: Bio-Formats / Micro-Manager multi-file OME-TIFF.

A multi-file OME-TIFF dataset (Micro-Manager splits at 4 GB; Bio-Formats writes one
file per channel or time point) holds one OME-XML naming every file and the planes
each holds.  RELIABILITY section D: a dataset is read whole or refused, never with
planes silently read as zeros.
"""

from __future__ import annotations

import uuid

import numpy as np
import pytest
import tifffile

from napari_unmix.io import open_stack

C, Y, X = 8, 16, 20


@pytest.fixture
def cube():
    return np.random.default_rng(0).integers(1, 4000, (C, Y, X)).astype(np.uint16)


def _ome_xml(own_uuid, parts, *, planes=C):
    """OME-XML as Bio-Formats writes it: XYCZT, one TiffData per file, channels with
    their emission wavelengths; ``parts`` are (file name, uuid, first channel, count)."""
    channels = "".join(f'<Channel ID="Channel:0:{i}" SamplesPerPixel="1" '
                       f'EmissionWavelength="{500 + 10 * i}"/>' for i in range(planes))
    data = "".join(f'<TiffData FirstC="{first}" IFD="0" PlaneCount="{count}"><UUID '
                   f'FileName="{name}">urn:uuid:{u}</UUID></TiffData>'
                   for name, u, first, count in parts)
    return ('<?xml version="1.0" encoding="UTF-8"?><OME xmlns="http://www.openmicroscopy.org/'
            f'Schemas/OME/2016-06" UUID="urn:uuid:{own_uuid}"><Image ID="Image:0"><Pixels '
            f'DimensionOrder="XYCZT" ID="Pixels:0" SizeC="{planes}" SizeT="1" SizeX="{X}" '
            f'SizeY="{Y}" SizeZ="1" Type="uint16" PhysicalSizeX="0.3" PhysicalSizeY="0.3">'
            f'{channels}{data}</Pixels></Image></OME>')


def _write_planes(path, planes, xml, **kwargs):
    with tifffile.TiffWriter(path) as tw:
        for i, plane in enumerate(planes):
            tw.write(plane, description=xml.encode() if i == 0 else None, metadata=None,
                     **kwargs)


def _two_file_dataset(folder, cube):
    """Channels 0-3 in a.ome.tif, 4-7 in b.ome.tif, each file with the whole OME-XML."""
    ua, ub = uuid.uuid4(), uuid.uuid4()
    parts = [("a.ome.tif", ua, 0, 4), ("b.ome.tif", ub, 4, 4)]
    _write_planes(folder / "a.ome.tif", cube[:4], _ome_xml(ua, parts))
    _write_planes(folder / "b.ome.tif", cube[4:], _ome_xml(ub, parts))
    return folder / "a.ome.tif"


@pytest.mark.parametrize("lazy", [False, True])
def test_a_multi_file_ome_tiff_is_read_from_all_its_files(tmp_path, cube, lazy):
    # the first file holds half the data: it is no truncated file
    s = open_stack(_two_file_dataset(tmp_path, cube), lazy=lazy)
    assert s.lazy is lazy and s.axes == "CYX" and s.spectral_axis == 0
    np.testing.assert_array_equal(np.asarray(s.data), cube)
    np.testing.assert_array_equal(s.spectral_values, 500 + 10 * np.arange(C))
    assert s.scale == (1.0, 0.3, 0.3) and s.units == ("", "um", "um")


@pytest.mark.parametrize("lazy", [False, True])
def test_a_multi_file_ome_tiff_without_one_of_its_files_is_refused(tmp_path, cube, lazy):
    first = _two_file_dataset(tmp_path, cube)
    (tmp_path / "b.ome.tif").unlink()
    with pytest.raises(ValueError, match=r"4 of the 8 planes.*b\.ome\.tif.*read as zeros"):
        open_stack(first, lazy=lazy)


@pytest.mark.parametrize("compression", [None, "zlib"])
def test_an_ome_tiff_with_fewer_planes_than_declared_is_refused_not_zero_filled(
        tmp_path, cube, compression):
    # OME-XML declares 8 channels, the file holds 6 (an interrupted export)
    u = uuid.uuid4()
    xml = _ome_xml(u, []).replace("</Channel>", "").replace("</Pixels>", "<TiffData/></Pixels>")
    path = tmp_path / "short.ome.tif"
    _write_planes(path, cube[:6], xml, compression=compression)
    with pytest.raises(ValueError, match=r"short\.ome\.tif.*2 of the 8 planes.*zeros"):
        open_stack(path)


def test_an_imagej_slice_stack_has_no_length_along_its_spectral_axis(tmp_path, cube):
    """An ImageJ stack saved as slices (axes ZYX, a slice spacing in um) whose slices are
    the channels: the spectral axis was given the spacing's unit (um) in the layer's
    scale; it has channels along it, not a length."""
    path = tmp_path / "slices.tif"
    tifffile.imwrite(path, cube, imagej=True, resolution=(1 / 0.25, 1 / 0.25),
                     metadata={"axes": "ZYX", "spacing": 2.0, "unit": "um"})
    stack = open_stack(path)
    assert stack.spectral_axis == 0
    assert stack.scale == (1.0, 0.25, 0.25)
    assert stack.units == ("", "um", "um")


@pytest.mark.parametrize("given", ["X", "Y"])
def test_a_pixel_size_given_for_one_axis_only_is_taken_as_square(tmp_path, cube, given):
    """An OME-TIFF with PhysicalSizeX alone gave the layer a scale of (1, 1, 0.1): the
    image drawn ten times narrower than tall.  Pixels are square unless the file says
    otherwise, and a note says which size was taken for both."""
    path = tmp_path / "one_size.ome.tif"
    tifffile.imwrite(path, cube, metadata={"axes": "CYX", f"PhysicalSize{given}": 0.1,
                                           f"PhysicalSize{given}Unit": "µm"})
    stack = open_stack(path)
    assert stack.spectral_axis == 0
    assert stack.scale == (1.0, 0.1, 0.1)
    assert stack.units == ("", "um", "um")
    other = "Y" if given == "X" else "X"
    assert any(f"pixel size of {given} only" in n and f"{other} is taken as the same" in n
               for n in stack.notes), stack.notes


@pytest.mark.parametrize(("unit", "size", "expected"), [
    ("Å", 5.0, (0.5, "nm")), ("pm", 250.0, (0.25, "nm")), ("nm", 80.0, (80.0, "nm")),
    ("µm", 0.3, (0.3, "um")), ("mm", 0.002, (0.002, "mm")), ("cm", 0.5, (0.5, "cm")),
    ("m", 3e-7, (3e-7, "m")), ("dm", 0.5, (5.0, "cm")), ("km", 2.0, (2000.0, "m"))])
def test_ome_pixel_sizes_in_every_metric_unit_are_converted_exactly(tmp_path, cube, unit,
                                                                    size, expected):
    """OME-TIFF pixel sizes in Å or pm (cryo-EM, EELS) were dropped without a word; they
    are converted exactly, value and unit, to what napari reads (nm ...)."""
    path = tmp_path / "sized.ome.tif"
    tifffile.imwrite(path, cube, metadata={"axes": "CYX", "PhysicalSizeX": size,
                                           "PhysicalSizeXUnit": unit, "PhysicalSizeY": size,
                                           "PhysicalSizeYUnit": unit})
    stack = open_stack(path)
    assert stack.scale == (1.0, expected[0], expected[0])
    assert stack.units == ("", expected[1], expected[1])
    assert not [n for n in stack.notes if "pixel size" in n], stack.notes


@pytest.mark.parametrize("unit", ["in", "ft", "Mm", "Pm", "ly", "pt", "reference frame"])
def test_an_ome_pixel_size_in_a_unit_not_used_is_left_out_with_a_note_naming_it(
        tmp_path, cube, unit):
    """Inches, feet, astronomical and typographic units: no size, and a note naming the
    unit (megametres and petametres were read as mm and pm: lower case misread them)."""
    path = tmp_path / "sized.ome.tif"
    tifffile.imwrite(path, cube, metadata={"axes": "CYX", "PhysicalSizeX": 0.5,
                                           "PhysicalSizeXUnit": unit, "PhysicalSizeY": 0.5,
                                           "PhysicalSizeYUnit": unit})
    stack = open_stack(path)
    assert stack.scale is None and stack.units is None
    notes = [n for n in stack.notes if f"given in {unit!r}" in n]
    assert len(notes) == 1 and "PhysicalSizeX, PhysicalSizeY" in notes[0], stack.notes
    assert "not used" in notes[0]


def _ome_channels_xml(channels):
    return ('<?xml version="1.0" encoding="UTF-8"?><OME xmlns="http://www.openmicroscopy.org/'
            'Schemas/OME/2016-06"><Image ID="Image:0"><Pixels DimensionOrder="XYCZT" '
            f'ID="Pixels:0" SizeC="{C}" SizeT="1" SizeX="{X}" SizeY="{Y}" SizeZ="1" '
            f'Type="uint16">{channels}<TiffData IFD="0" PlaneCount="{C}"/></Pixels></Image>'
            '</OME>')


def test_emission_wavelengths_of_some_channels_only_are_not_used_and_a_note_says_so(
        tmp_path, cube):
    """Only some OME channels with an EmissionWavelength: none were used, without a word
    (positions must cover every channel, so none is right; the silence was not)."""
    channels = "".join(f'<Channel ID="Channel:0:{i}" SamplesPerPixel="1"'
                       + (f' EmissionWavelength="{500 + 10 * i}"' if i < 3 else "") + "/>"
                       for i in range(C))
    path = tmp_path / "partial.ome.tif"
    _write_planes(path, cube, _ome_channels_xml(channels))
    stack = open_stack(path)
    assert stack.spectral_axis == 0 and stack.spectral_values is None
    notes = [n for n in stack.notes if "emission wavelength" in n]
    assert len(notes) == 1, stack.notes
    assert f"for 3 of the {C} channels only; none were used" in notes[0]
    assert "partial.ome.spectral.csv" in notes[0]


def test_emission_wavelengths_in_different_units_are_not_used_and_a_note_says_so(
        tmp_path, cube):
    # the first channel's unit was taken for all: 0.5 um read as 0.5 nm
    channels = "".join(f'<Channel ID="Channel:0:{i}" SamplesPerPixel="1" '
                       + ('EmissionWavelength="0.5" EmissionWavelengthUnit="µm"' if i == 0
                          else f'EmissionWavelength="{500 + 10 * i}" '
                               'EmissionWavelengthUnit="nm"') + "/>" for i in range(C))
    path = tmp_path / "mixed.ome.tif"
    _write_planes(path, cube, _ome_channels_xml(channels))
    stack = open_stack(path)
    assert stack.spectral_values is None
    assert any("in different units (nm, µm); none were used" in n for n in stack.notes), \
        stack.notes


def test_emission_wavelengths_of_every_channel_are_the_spectral_values(tmp_path, cube):
    channels = "".join(f'<Channel ID="Channel:0:{i}" SamplesPerPixel="1" '
                       f'EmissionWavelength="{500 + 10 * i}"/>' for i in range(C))
    path = tmp_path / "full.ome.tif"
    _write_planes(path, cube, _ome_channels_xml(channels))
    stack = open_stack(path)
    np.testing.assert_array_equal(stack.spectral_values, 500 + 10 * np.arange(C))
    assert stack.spectral_unit == "nm"
    assert not [n for n in stack.notes if "emission wavelength" in n]
