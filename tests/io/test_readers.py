"""open_stack, folders of slices, sidecar files, lazy reading and result bundles.

RELIABILITY section D: axes from metadata, squeeze, multi-series notice, a TZCYX
round trip, corrupt / truncated files, natural sort, mismatched slices, atomic
bundle writing.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
import tifffile

from napari_unmix.core.result import UnmixResult
from napari_unmix.io import (
    is_result_bundle,
    lazy_threshold,
    open_stack,
    read_result_bundle,
    read_slice_folder,
    read_spectral_sidecar,
    read_stack,
    write_analysis_outputs,
    write_result_bundle,
    write_stack_tiff,
)
from napari_unmix.io.readers import LAZY_ENV, natural_key

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
LEICA = DATA / "neher_leica_3dye"


def _is_dask(a) -> bool:
    import dask.array as da

    return isinstance(a, da.Array)


@pytest.fixture
def cube():
    return np.random.default_rng(0).random((6, 10, 12)).astype(np.float32)  # (C, Y, X)


@pytest.fixture
def hyperstack():
    """(T, Z, C, Y, X) uint16 with distinct values everywhere."""
    return np.arange(2 * 3 * 4 * 5 * 6, dtype=np.uint16).reshape(2, 3, 4, 5, 6)


def _imagej_ordered(path, planes, *, channels, slices, order):
    """An ImageJ file whose pages follow ``order`` (written by hand, as Fiji may)."""
    desc = (f"ImageJ=1.54f\nimages={len(planes)}\nchannels={channels}\nslices={slices}\n"
            f"hyperstack=true\norder={order}\nmode=grayscale\n")
    tifffile.imwrite(path, planes, description=desc, metadata=None)
    return path


# -- axes from metadata -------------------------------------------------------------


def test_imagej_order_zct_file_reads_as_czyx(tmp_path):
    # order=zct: Z varies fastest in the page sequence, then C: pages hold (C, Z) planes
    czyx = np.arange(3 * 4 * 5 * 6, dtype=np.uint8).reshape(3, 4, 5, 6)
    path = _imagej_ordered(tmp_path / "zct.tif", czyx.reshape(-1, 5, 6), channels=3, slices=4,
                           order="zct")
    s = open_stack(path)
    assert s.axes == "CZYX" and s.data.shape == (3, 4, 5, 6)
    assert s.spectral_axis == 0 and not s.guessed and s.n_channels == 3
    np.testing.assert_array_equal(s.data, czyx)
    # the same pages in the default czt order are (Z, C): shape alone cannot tell
    path = _imagej_ordered(tmp_path / "czt.tif", czyx.reshape(-1, 5, 6), channels=3, slices=4,
                           order="czt")
    s = open_stack(path)
    assert s.axes == "ZCYX" and s.spectral_axis == 1 and s.data.shape == (4, 3, 5, 6)


def test_tzcyx_hyperstack_round_trip_keeps_axes_data_and_positions(tmp_path, hyperstack):
    nu = np.linspace(2850.0, 2950.0, 4)
    path = write_stack_tiff(tmp_path / "h.tif", hyperstack, axes="TZCYX", spectral_values=nu,
                            spectral_unit="cm^-1")
    for lazy in (False, True):
        s = open_stack(path, lazy=lazy)
        assert s.axes == "TZCYX" and s.spectral_axis == 2 and not s.guessed
        assert s.lazy is lazy and _is_dask(s.data) is lazy
        assert s.data.dtype == np.uint16
        np.testing.assert_array_equal(np.asarray(s.data), hyperstack)
        np.testing.assert_array_equal(s.spectral_values, nu)
        assert s.spectral_unit == "cm^-1"


def test_singleton_axes_are_squeezed_unless_asked(tmp_path, hyperstack):
    one_t = hyperstack[:1]  # T = 1
    path = write_stack_tiff(tmp_path / "t1.tif", one_t, axes="TZCYX")
    s = open_stack(path)
    assert s.axes == "ZCYX" and s.data.shape == one_t.shape[1:] and s.spectral_axis == 1
    full = open_stack(path, squeeze=False)
    assert full.axes == "TZCYXS" and full.data.shape == (*one_t.shape, 1)
    assert full.spectral_axis == 2
    np.testing.assert_array_equal(full.data[..., 0], one_t)
    lazy = open_stack(path, squeeze=False, lazy=True)
    assert lazy.data.shape == full.data.shape
    assert lazy.data.chunksize[-3:] == (5, 6, 1)  # one chunk per (Y, X) plane
    np.testing.assert_array_equal(np.asarray(lazy.data), full.data)


def test_multi_series_file_names_the_series_read_and_can_read_another(tmp_path, cube):
    path = tmp_path / "m.tif"
    with tifffile.TiffWriter(path) as tw:
        tw.write(cube, photometric="minisblack", metadata={"axes": "CYX"})
        tw.write(cube[:3, :4, :5], photometric="minisblack", metadata={"axes": "CYX"})
    s = open_stack(path)
    assert s.data.shape == cube.shape
    assert any("2 image series" in n and "series 0" in n for n in s.notes)
    assert s.series == 0
    s1 = open_stack(path, series=1)
    assert s1.series == 1
    np.testing.assert_array_equal(s1.data, cube[:3, :4, :5])
    assert any("series 1" in n for n in s1.notes)
    with pytest.raises(ValueError, match="series=2 is out of range.*2 image series"):
        open_stack(path, series=2)


def test_ome_emission_wavelengths_become_spectral_positions(tmp_path, cube):
    path = tmp_path / "c.ome.tif"
    waves = [500, 510, 520, 530, 540, 550]
    tifffile.imwrite(path, cube, ome=True, metadata={
        "axes": "CYX", "Channel": {"EmissionWavelength": waves,
                                   "EmissionWavelengthUnit": ["nm"] * 6}})
    s = open_stack(path)
    assert s.axes == "CYX" and s.spectral_axis == 0 and not s.guessed
    np.testing.assert_array_equal(s.spectral_values, waves)
    assert s.spectral_unit == "nm"


def test_ome_lambda_axis_is_spectral_even_beside_a_channel_axis(tmp_path):
    data = np.random.default_rng(2).random((5, 2, 8, 9)).astype(np.float32)
    path = tmp_path / "ec.ome.tif"
    tifffile.imwrite(path, data, ome=True, metadata={"axes": "ECYX"})
    s = open_stack(path)
    assert s.axes == "ECYX" and s.spectral_axis == 0 and not s.guessed
    assert any("lambda" in n and "channel axis C" in n for n in s.notes)
    np.testing.assert_array_equal(s.data, data)


def test_ome_lambda_modulo_with_unit_gives_positions(tmp_path, cube):
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06">'
        '<Image ID="Image:0"><Pixels ID="Pixels:0" DimensionOrder="XYCZT" Type="float" '
        'SizeX="12" SizeY="10" SizeC="1" SizeZ="1" SizeT="6">'
        '<Channel ID="Channel:0:0" SamplesPerPixel="1"/><TiffData IFD="0" PlaneCount="6"/>'
        '</Pixels><AnnotationRef ID="Annotation:0"/></Image><StructuredAnnotations>'
        '<XMLAnnotation ID="Annotation:0" Namespace="openmicroscopy.org/omero/dimension/modulo">'
        '<Value><Modulo namespace="http://www.openmicroscopy.org/Schemas/Additions/2011-09">'
        '<ModuloAlongT Type="lambda" Unit="nm" Start="600" Step="5" End="625"/>'
        '</Modulo></Value></XMLAnnotation></StructuredAnnotations></OME>')
    path = tmp_path / "lam.ome.tif"
    tifffile.imwrite(path, cube, description=xml, metadata=None, photometric="minisblack")
    s = open_stack(path)
    assert s.axes == "EYX" and s.spectral_axis == 0 and not s.guessed
    np.testing.assert_array_equal(s.spectral_values, 600 + 5 * np.arange(6))
    assert s.spectral_unit == "nm"


def test_imagej_channel_labels_with_units_give_positions(tmp_path, cube):
    labels = [f"{w} nm" for w in (500, 510, 520, 530, 540, 550)]
    tifffile.imwrite(tmp_path / "l.tif", cube, imagej=True,
                     metadata={"axes": "CYX", "Labels": labels})
    s = open_stack(tmp_path / "l.tif")
    np.testing.assert_array_equal(s.spectral_values, [500, 510, 520, 530, 540, 550])
    assert s.spectral_unit == "nm"
    # labels without a unit are names, not positions
    tifffile.imwrite(tmp_path / "n.tif", cube, imagej=True,
                     metadata={"axes": "CYX", "Labels": [str(i) for i in range(6)]})
    assert open_stack(tmp_path / "n.tif").spectral_values is None


def test_guessed_axis_is_flagged_and_named(tmp_path, cube):
    np.save(tmp_path / "s.npy", cube)
    s = open_stack(tmp_path / "s.npy")
    assert s.spectral_axis == 0 and s.guessed
    assert any("guessed as axis 0 (6 channels)" in n for n in s.notes)


# -- corrupt and truncated files -----------------------------------------------------


@pytest.mark.parametrize("name, content", [
    ("empty.tif", b""),
    ("text.tif", b"this is not a tiff"),
    ("header.tif", b"II*\x00\x08\x00\x00\x00\xff"),
    ("bigtiff.tif", b"II+\x00\x08\x00\x00\x00" + b"\xff" * 8),
    ("garbage.npy", b"\x93NUMPY garbage"),
    ("garbage.npz", b"PK\x03\x04 garbage"),
])
def test_corrupt_files_give_one_clear_error(tmp_path, name, content):
    bad = tmp_path / name
    bad.write_bytes(content)
    with pytest.raises(ValueError, match=f"{name} could not be read"):
        open_stack(bad)


@pytest.mark.parametrize("kind", ["imagej", "shaped", "compressed", "npy", "npz"])
def test_truncated_files_are_refused_not_read_partially(tmp_path, kind):
    data = np.random.default_rng(3).random((6, 32, 32)).astype(np.float32)
    good = tmp_path / f"good.{'npy' if kind == 'npy' else 'npz' if kind == 'npz' else 'tif'}"
    if kind == "imagej":
        tifffile.imwrite(good, data, imagej=True, metadata={"axes": "CYX"})
    elif kind == "shaped":
        tifffile.imwrite(good, data, photometric="minisblack", metadata={"axes": "CYX"})
    elif kind == "compressed":
        tifffile.imwrite(good, data, photometric="minisblack", compression="zlib",
                         metadata={"axes": "CYX"})
    elif kind == "npy":
        np.save(good, data)
    else:
        np.savez(good, stack=data)
    cut = tmp_path / f"cut{good.suffix}"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size * 2 // 3])
    with pytest.raises(ValueError, match="cut.* could not be read"):
        open_stack(cut)
    for lazy in (True, False):  # lazy opening checks the file's structure too
        if kind in ("npz",):
            continue
        with pytest.raises(ValueError, match="could not be read"):
            open_stack(cut, lazy=lazy)


def test_a_fifo_is_refused_without_opening_it(tmp_path):
    if not hasattr(os, "mkfifo"):
        pytest.skip("no named pipes on this platform")
    fifo = tmp_path / "pipe.tif"
    os.mkfifo(fifo)
    # opening a FIFO for reading blocks until a writer appears: it must not be opened
    with pytest.raises(ValueError, match="not a regular file"):
        open_stack(fifo)


def test_single_images_and_results_are_not_stacks(tmp_path, cube, result):
    tifffile.imwrite(tmp_path / "rgb.tif", (cube[:3].transpose(1, 2, 0) * 255).astype(np.uint8),
                     photometric="rgb")
    with pytest.raises(ValueError, match="single image.*open the folder"):
        open_stack(tmp_path / "rgb.tif")
    bundle = write_result_bundle(tmp_path / "r.npz", result, (4, 5))
    with pytest.raises(ValueError, match="is a napari-unmix result, not a stack"):
        open_stack(bundle)


# -- folders of slices ----------------------------------------------------------------


def _slices(folder, names, shape=(6, 7), dtype=np.uint16):
    folder.mkdir(exist_ok=True)
    for i, name in enumerate(names):
        tifffile.imwrite(folder / name, np.full(shape, i, dtype=dtype))
    return folder


def test_natural_sort_key():
    names = ["ch10.tif", "ch2.tif", "ch1.tif", "Ch3.tif"]
    assert sorted(names, key=natural_key) == ["ch1.tif", "ch2.tif", "Ch3.tif", "ch10.tif"]


def test_folder_slices_stack_in_natural_order(tmp_path):
    # written in this order: value i marks the i-th name of the list
    names = ["img_ch10.tif", "img_ch2.tif", "img_ch1.tif", "img_ch3.tif"]
    folder = _slices(tmp_path / "f", names)
    (folder / "notes.txt").write_text("metadata")
    (folder / ".hidden.tif").write_bytes(b"not an image")
    s = open_stack(folder)
    assert s.data.shape == (4, 6, 7) and s.axes == "CYX"
    # natural order ch1, ch2, ch3, ch10 -> values 2, 1, 3, 0
    np.testing.assert_array_equal(s.data[:, 0, 0], [2, 1, 3, 0])
    assert s.spectral_axis == 0 and not s.guessed  # the number follows a channel tag
    assert any("natural order" in n for n in s.notes)
    assert read_stack(folder).data.shape == (4, 6, 7)  # read_stack reads folders too


def test_folder_with_untagged_numbers_is_a_flagged_guess(tmp_path):
    s = open_stack(_slices(tmp_path / "f", ["a_1.tif", "a_2.tif", "a_3.tif"]))
    assert s.spectral_axis == 0 and s.guessed
    assert any("guessed as axis 0" in n for n in s.notes)


def test_folder_names_with_z_and_channel_numbers_form_a_grid(tmp_path):
    names = [f"s_z{z}_ch{c:02d}.tif" for c in range(3) for z in range(2)]  # C-major listing
    folder = tmp_path / "g"
    folder.mkdir()
    for z in range(2):
        for c in range(3):
            tifffile.imwrite(folder / f"s_z{z}_ch{c:02d}.tif",
                             np.full((4, 5), 10 * z + c, dtype=np.uint8))
    assert len(list(folder.iterdir())) == len(names)
    s = open_stack(folder)
    assert s.axes == "ZCYX" and s.data.shape == (2, 3, 4, 5)
    assert s.spectral_axis == 1 and not s.guessed
    np.testing.assert_array_equal(s.data[:, :, 0, 0], [[0, 1, 2], [10, 11, 12]])


def test_folder_with_an_incomplete_grid_is_stacked_on_one_axis_with_a_note(tmp_path):
    names = ["s_z0_ch0.tif", "s_z0_ch1.tif", "s_z1_ch0.tif"]  # z1_ch1 is missing
    s = open_stack(_slices(tmp_path / "f", names))
    assert s.data.shape == (3, 6, 7) and s.guessed
    np.testing.assert_array_equal(s.data[:, 0, 0], [0, 1, 2])
    assert any("do not form a complete grid" in n for n in s.notes)


def test_folder_with_mismatched_slice_shapes_is_a_clear_error(tmp_path):
    folder = _slices(tmp_path / "f", ["c1.tif", "c2.tif"])
    tifffile.imwrite(folder / "c3.tif", np.zeros((6, 8), np.uint16))
    with pytest.raises(ValueError, match=r"differ in shape: c1.tif is \(6, 7\) but c3.tif is "
                                         r"\(6, 8\)"):
        open_stack(folder)


def test_folder_without_slices_or_with_a_bad_slice(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="holds no .tif/.tiff files"):
        read_slice_folder(tmp_path / "empty")
    folder = _slices(tmp_path / "f", ["c1.tif"])
    (folder / "c2.tif").write_bytes(b"II*\x00broken")
    with pytest.raises(ValueError, match="slice c2.tif of .* could not be read"):
        open_stack(folder)


def test_folder_slices_of_different_dtypes_are_promoted_with_a_note(tmp_path):
    folder = _slices(tmp_path / "f", ["c1.tif"], dtype=np.uint8)
    tifffile.imwrite(folder / "c2.tif", np.full((6, 7), 300, np.uint16))
    s = open_stack(folder)
    assert s.data.dtype == np.uint16
    np.testing.assert_array_equal(s.data[:, 0, 0], [0, 300])
    assert any("different dtypes" in n for n in s.notes)


@pytest.mark.realdata
def test_real_leica_folder_of_twelve_channels():
    if not LEICA.is_dir():
        pytest.skip(f"real data not found at {LEICA} (see ../shared/data/README.md)")
    s = open_stack(LEICA)
    assert s.data.shape == (12, 512, 512) and s.data.dtype == np.uint8
    assert s.axes == "CYX" and s.spectral_axis == 0 and not s.guessed
    for c in (0, 2, 10, 11):  # natural order: ch02 is plane 2, ch10 plane 10
        np.testing.assert_array_equal(
            s.data[c], tifffile.imread(LEICA / f"03_Series004_z000_ch{c:02d}.tif"))
    lazy = open_stack(LEICA, lazy=True)
    assert _is_dask(lazy.data)
    np.testing.assert_array_equal(np.asarray(lazy.data[5]), s.data[5])


# -- sidecar files ----------------------------------------------------------------------


@pytest.mark.parametrize("name, text, unit", [
    ("s.spectral.csv", "wavenumber (cm^-1)\n2800\n2850\n2900\n2950\n3000\n3050\n", "cm^-1"),
    ("s.spectral.csv", "# measured\nnm\n500;1\n510;1\n520;1\n530;1\n540;1\n550;1\n", "nm"),
    ("s.spectral.csv", "2800, 2850, 2900, 2950, 3000, 3050\n", None),
    ("s.spectral.json", '{"values": [1, 2, 3, 4, 5, 6], "unit": "cm-1"}', "cm^-1"),
    ("s.spectral.json", "[1, 2, 3, 4, 5, 6]", None),
])
def test_sidecar_formats(tmp_path, cube, name, text, unit):
    np.save(tmp_path / "s.npy", cube)
    (tmp_path / name).write_text(text, encoding="utf-8")
    s = open_stack(tmp_path / "s.npy")
    assert s.spectral_values.shape == (6,) and s.spectral_unit == unit
    assert s.spectral_axis == 0 and not s.guessed  # the sidecar's length confirms axis 0


def test_sidecar_length_picks_the_spectral_axis(tmp_path, cube):
    yxc = np.moveaxis(cube, 0, -1)  # (10, 12, 6): a bare guess would take axis 0
    np.save(tmp_path / "s.npy", yxc)
    (tmp_path / "s.spectral.json").write_text(json.dumps(
        {"spectral_values": list(range(500, 560, 10)), "spectral_unit": "nm"}))
    s = open_stack(tmp_path / "s.npy")
    # nothing in a .npy names its axes: taken, but flagged as a guess (issue 14, item 3)
    assert s.spectral_axis == 2 and s.guessed
    assert any("s.spectral.json" in n and "guessed as axis 2" in n for n in s.notes)
    np.testing.assert_array_equal(s.spectral_values, np.arange(500, 560, 10))


def test_sidecar_overrides_file_metadata_with_a_note(tmp_path, cube):
    path = write_stack_tiff(tmp_path / "s.ome.tif", cube, axes="CYX",
                            spectral_values=np.arange(6.0), spectral_unit="nm")
    (tmp_path / "s.spectral.csv").write_text("cm^-1\n" + "\n".join(
        str(v) for v in range(2800, 3100, 50)))
    s = open_stack(path)
    np.testing.assert_array_equal(s.spectral_values, np.arange(2800, 3100, 50))
    assert s.spectral_unit == "cm^-1"
    assert any("s.spectral.csv" in n and "not from" in n for n in s.notes)


def test_sidecar_in_a_slice_folder(tmp_path):
    folder = _slices(tmp_path / "f", [f"ch{i}.tif" for i in range(3)])
    (folder / "spectral_axis.csv").write_text("wavelength (nm)\n500\n520\n540\n")
    s = open_stack(folder)
    np.testing.assert_array_equal(s.spectral_values, [500, 520, 540])
    assert s.spectral_unit == "nm"


def test_sidecar_that_does_not_fit_is_an_error(tmp_path, cube):
    path = write_stack_tiff(tmp_path / "s.tif", cube, axes="CYX")
    (tmp_path / "s.spectral.csv").write_text("1\n2\n3\n")
    with pytest.raises(ValueError, match="s.spectral.csv has 3 values but the spectral axis"):
        open_stack(path)
    np.save(tmp_path / "n.npy", cube)
    (tmp_path / "n.spectral.csv").write_text("1\n2\n3\n4\n5\n")
    with pytest.raises(ValueError, match="has 5 values but no axis"):
        open_stack(tmp_path / "n.npy")


@pytest.mark.parametrize("text, unit", [
    ("2850,5;2851,0;2852,5\n", None),  # one line, ';' between values
    ("cm-1\n2850,5;1\n2851;1\n2852,5;1\n", "cm^-1"),  # first column, ';' between
    ("2850,5\t2851,0\t2852,5\n", None),
    ("2850,5 2851,0 2852,5\n", None),  # white space between values
])
def test_sidecar_with_decimal_commas_reads_them_as_decimal_marks(tmp_path, text, unit):
    (tmp_path / "x.csv").write_text(text)
    values, got = read_spectral_sidecar(tmp_path / "x.csv")
    np.testing.assert_array_equal(values, [2850.5, 2851.0, 2852.5])
    assert got == unit


@pytest.mark.parametrize("text, unit", [
    ("2850.5 2851 2852.5\n", None),               # np.savetxt(path, values[None])
    ("wavenumber (cm^-1)\n2850.5 2851.0 2852.5\n", "cm^-1"),
    ("2850.5, 2851 , 2852.5\n", None),
    ("nm\n2850.5 0.1\n2851 0.2\n2852.5 0.3\n", "nm"),  # columns split by spaces
])
def test_sidecar_values_split_by_white_space_are_read(tmp_path, text, unit):
    (tmp_path / "x.csv").write_text(text)
    values, got = read_spectral_sidecar(tmp_path / "x.csv")
    np.testing.assert_array_equal(values, [2850.5, 2851.0, 2852.5])
    assert got == unit


@pytest.mark.parametrize("text, line", [
    ("2850,5\n2851,0\n2852,5\n", 1),
    ("wavenumber (cm^-1)\n2850,5\n2851,0\n", 2),
])
def test_sidecar_lines_of_a_number_and_a_decimal_comma_are_refused(tmp_path, text, line):
    (tmp_path / "x.csv").write_text(text)
    with pytest.raises(ValueError, match=rf"x.csv, line {line}: '2850,5' reads as two "
                                         r"columns or as one number with a decimal comma"):
        read_spectral_sidecar(tmp_path / "x.csv")


def test_sidecar_with_two_named_columns_of_whole_numbers_reads_the_first(tmp_path):
    (tmp_path / "x.csv").write_text("wavenumber (cm^-1),channel\n2850,5\n2851,6\n")
    values, unit = read_spectral_sidecar(tmp_path / "x.csv")
    np.testing.assert_array_equal(values, [2850.0, 2851.0])
    assert unit == "cm^-1"


@pytest.mark.parametrize("name, text, match", [
    ("x.csv", "nm\n500\nabc\n", "line 3: 'abc' is not a number"),
    ("x.csv", "nm\n", "holds no values"),
    ("x.csv", "1\nnan\n", "non-finite"),
    ("x.json", "{bad json", "not valid JSON"),
    ("x.json", '{"values": ["a"]}', "list of numbers"),
])
def test_sidecar_errors_name_the_problem(tmp_path, name, text, match):
    (tmp_path / name).write_text(text)
    with pytest.raises(ValueError, match=match):
        read_spectral_sidecar(tmp_path / name)


# -- lazy reading ------------------------------------------------------------------------


def _write_cube(tmp_path, cube, kind):
    """``cube`` as a contiguous or compressed TIFF, a .npy file or a folder of slices."""
    if kind in ("contiguous", "tiff"):
        return write_stack_tiff(tmp_path / "s.tif", cube, axes="CYX")
    if kind == "compressed":
        path = tmp_path / "s.tif"
        tifffile.imwrite(path, cube, photometric="minisblack", compression="zlib",
                         metadata={"axes": "CYX"})
        return path
    if kind == "npy":
        np.save(tmp_path / "s.npy", cube)
        return tmp_path / "s.npy"
    path = tmp_path / "f"
    path.mkdir()
    for c in range(cube.shape[0]):
        tifffile.imwrite(path / f"ch{c}.tif", cube[c])
    return path


@pytest.mark.parametrize("kind", ["contiguous", "compressed", "npy", "folder"])
def test_above_the_threshold_stacks_open_as_dask_arrays(tmp_path, cube, kind):
    path = _write_cube(tmp_path, cube, kind)
    eager = open_stack(path, lazy_threshold=cube.nbytes)  # exactly at the threshold: eager
    assert isinstance(eager.data, np.ndarray) and not eager.lazy
    s = open_stack(path, lazy_threshold=cube.nbytes - 1)
    assert _is_dask(s.data) and s.lazy and any("lazily" in n for n in s.notes)
    assert s.data.shape == cube.shape and s.data.dtype == cube.dtype
    assert s.data.chunksize == (1, 10, 12)  # one plane per chunk
    np.testing.assert_array_equal(s.data[2].compute(), cube[2])
    np.testing.assert_array_equal(s.data.compute(), cube)


@pytest.mark.parametrize("kind", ["tiff", "npy", "folder"])
def test_lazy_stacks_read_the_file_when_computed_not_when_opened(tmp_path, cube, kind):
    path = _write_cube(tmp_path, cube, kind)
    s = open_stack(path, lazy=True)
    # change plane 2 on disk after opening: a lazy stack shows the new values
    if kind == "tiff":
        tifffile.memmap(path, mode="r+")[2] = -1.0
    elif kind == "npy":
        np.load(path, mmap_mode="r+")[2] = -1.0
    else:
        tifffile.imwrite(path / "ch2.tif", np.full_like(cube[2], -1.0))
    np.testing.assert_array_equal(s.data[2].compute(), -1.0)
    np.testing.assert_array_equal(s.data[3].compute(), cube[3])


def test_lazy_threshold_from_the_environment(tmp_path, cube, monkeypatch):
    np.save(tmp_path / "s.npy", cube)
    monkeypatch.delenv(LAZY_ENV, raising=False)
    assert 0 < lazy_threshold() <= 1 << 30
    monkeypatch.setenv(LAZY_ENV, "100")
    assert lazy_threshold() == 100
    assert _is_dask(open_stack(tmp_path / "s.npy").data)
    assert isinstance(read_stack(tmp_path / "s.npy").data, np.ndarray)  # never lazy
    monkeypatch.setenv(LAZY_ENV, "lots")
    with pytest.raises(ValueError, match="not a number of bytes"):
        lazy_threshold()


# -- result bundles -----------------------------------------------------------------------


@pytest.fixture
def result():
    rng = np.random.default_rng(5)
    return UnmixResult(W=rng.random((20, 3)), H=rng.random((3, 6)), mode="nmf",
                       backend="sklearn", device="cpu", n_iter=12, reconstruction_err=0.5,
                       summary={"converged": True}, params={"random_state": 1},
                       component_names=["lipid", "protein", "water"],
                       spectral_values=np.linspace(2800, 3050, 6), spectral_unit="cm^-1",
                       arrays={"seed/H0": rng.random((3, 6))})


def _same_result(a, b):
    np.testing.assert_array_equal(a.W, b.W)
    np.testing.assert_array_equal(a.H, b.H)
    np.testing.assert_array_equal(a.spectral_values, b.spectral_values)
    assert (a.mode, a.component_names, a.summary, a.params, a.spectral_unit) == \
        (b.mode, b.component_names, b.summary, b.params, b.spectral_unit)
    assert a.arrays.keys() == b.arrays.keys()


def test_bundle_round_trip_keeps_the_result_and_its_layout(tmp_path, result):
    path = write_result_bundle(tmp_path / "r", result, (4, 5))
    assert path.name == "r.npz" and is_result_bundle(path)
    _same_result(UnmixResult.load(path), result)  # still a plain UnmixResult file
    b = read_result_bundle(path)
    _same_result(b.result, result)
    assert b.spatial_shape == (4, 5) and b.mask is None and not b.guessed_shape
    np.testing.assert_array_equal(b.maps(), result.maps((4, 5)))


def test_bundle_with_a_mask(tmp_path, result):
    mask = np.zeros((5, 6), bool)
    mask.flat[np.random.default_rng(1).choice(30, size=20, replace=False)] = True  # W: 20 rows
    b = read_result_bundle(write_result_bundle(tmp_path / "m.npz", result, (5, 6), mask=mask))
    np.testing.assert_array_equal(b.mask, mask)
    maps = b.maps()
    assert maps.shape == (3, 5, 6) and np.isnan(maps[:, ~mask]).all()
    np.testing.assert_array_equal(maps[:, mask], result.W.T)
    extra = mask.copy()
    extra.flat[np.flatnonzero(~mask)[0]] = True
    with pytest.raises(ValueError, match="selects 21 pixels"):
        write_result_bundle(tmp_path / "x.npz", result, (5, 6), mask=extra)
    with pytest.raises(ValueError, match="has 12 pixels but the result's W has 20 rows"):
        write_result_bundle(tmp_path / "x.npz", result, (3, 4))
    assert not (tmp_path / "x.npz").exists()


def test_result_folder_and_plain_result_files(tmp_path, result):
    out = tmp_path / "out"
    write_analysis_outputs(out, result, (4, 5))
    assert is_result_bundle(out)
    b = read_result_bundle(out)
    assert b.spatial_shape == (4, 5) and not b.guessed_shape
    _same_result(b.result, result)
    # the folder's result.npz alone finds its shape in the result.json beside it
    assert read_result_bundle(out / "result.npz").spatial_shape == (4, 5)
    # a bare UnmixResult.save file: the shape is guessed, and said so
    bare = result.save(tmp_path / "bare.npz")
    b = read_result_bundle(bare)
    assert b.guessed_shape and b.spatial_shape == (1, 20) and "one row" in b.notes[0]
    square = UnmixResult(W=np.ones((16, 1)), H=np.ones((1, 2)), mode="nmf", backend="x",
                         device="cpu", n_iter=1, reconstruction_err=0.0)
    assert read_result_bundle(square.save(tmp_path / "sq.npz")).spatial_shape == (4, 4)


def test_results_are_not_opened_as_stacks(tmp_path, result):
    out = tmp_path / "out"
    write_analysis_outputs(out, result, (4, 5))  # holds maps.tif, but it is a result
    with pytest.raises(ValueError, match="is a napari-unmix result folder, not a stack"):
        open_stack(out)


def test_npz_is_read_whole_with_a_note_above_the_threshold(tmp_path, cube):
    np.savez(tmp_path / "s.npz", stack=cube)
    s = open_stack(tmp_path / "s.npz", lazy_threshold=10)
    assert isinstance(s.data, np.ndarray) and not s.lazy
    assert any("cannot be read lazily" in n for n in s.notes)


def test_not_a_result(tmp_path, cube):
    np.savez(tmp_path / "s.npz", stack=cube)
    (tmp_path / "d").mkdir()
    assert not is_result_bundle(tmp_path / "s.npz") and not is_result_bundle(tmp_path / "d")
    with pytest.raises(ValueError, match="not a napari-unmix result file"):
        read_result_bundle(tmp_path / "s.npz")
    with pytest.raises(ValueError, match="not a napari-unmix result folder"):
        read_result_bundle(tmp_path / "d")
    with pytest.raises(FileNotFoundError):
        read_result_bundle(tmp_path / "none.npz")


@pytest.mark.parametrize("stage", ["result arrays", "layout"])
def test_bundle_write_failure_keeps_the_old_file_and_leaves_nothing(tmp_path, result,
                                                                     monkeypatch, stage):
    path = write_result_bundle(tmp_path / "r.npz", result, (4, 5))
    before = path.read_bytes()
    real = np.lib.format.write_array
    calls = []

    def failing(fh, array, *args, **kwargs):
        member = getattr(getattr(fh, "_zinfo", None), "filename", "")
        if stage == "result arrays" or member.startswith("layout/"):
            calls.append(member)
            raise OSError("disk full (injected)")
        return real(fh, array, *args, **kwargs)

    monkeypatch.setattr(np.lib.format, "write_array", failing)
    for target in (path, tmp_path / "new.npz"):
        with pytest.raises(OSError, match="injected"):
            write_result_bundle(target, result, (4, 5))
    assert len(calls) == 2  # the failure was injected where intended, for both targets
    if stage == "layout":
        assert all(c.startswith("layout/") for c in calls)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.npz"]
    with zipfile.ZipFile(path) as zf:
        assert "layout/spatial_shape.npy" in zf.namelist()


def test_a_registered_stack_format_is_read_by_the_one_dispatcher(tmp_path):
    """A reader added with register_stack_format: open_stack finds it by suffix and
    applies the usual rules after it (sidecar, spectral axis, checks)."""
    from napari_unmix.io.readers import STACK_FORMATS, open_stack, register_stack_format

    def read_toy(path, *, series, squeeze, lazy, threshold):
        data = np.loadtxt(path, ndmin=2).reshape(3, 2, -1)  # (C, Y, X)
        return {"data": data, "axes": "CYX", "notes": ["toy format"], "lazy": False,
                "index": 0, "guessed": False, "values": None, "unit": None,
                "values_source": None, "series_index": None}

    path = tmp_path / "cube.toy"
    np.savetxt(path, np.arange(12.0).reshape(6, 2))
    (tmp_path / "cube.spectral.csv").write_text("nm\n500\n510\n520\n")
    register_stack_format([".toy"], read_toy)
    try:
        s = open_stack(path)
        assert s.data.shape == (3, 2, 2) and s.spectral_axis == 0
        np.testing.assert_array_equal(s.spectral_values, [500.0, 510.0, 520.0])
        assert s.spectral_unit == "nm" and "toy format" in s.notes
    finally:
        STACK_FORMATS.pop(".toy")
    with pytest.raises(ValueError, match="unknown file type '.toy'"):
        open_stack(path)
