"""The npe2 writer hooks: maps TIFF, spectra CSV, result bundle and folder; all atomic."""

from __future__ import annotations

import os

import numpy as np
import pytest

import napari_unmix.io.tables as tables_mod
from napari_unmix._napari.reader import RESULT_KEY, read_layers, result_layer_data
from napari_unmix._napari.writer import (
    write_bundle,
    write_maps,
    write_result_folder,
    write_spectra,
)
from napari_unmix.core.result import UnmixResult
from napari_unmix.io import (
    ResultBundle,
    read_maps_tiff,
    read_result_bundle,
    read_spectra_csv,
    unit_from_header,
)

SHAPE = (4, 5)


@pytest.fixture
def result():
    rng = np.random.default_rng(11)
    return UnmixResult(
        W=rng.random((20, 3)), H=rng.random((3, 6)), mode="nmf", backend="sklearn",
        device="cpu", n_iter=7, reconstruction_err=0.25, summary={"converged": True},
        params={"random_state": 3}, component_names=["lipid", "protein", "water"],
        spectral_values=np.linspace(2800.0, 3050.0, 6), spectral_unit="cm^-1")


@pytest.fixture
def layers(result):
    """The map layers of ``result`` as napari layer tuples (data, attributes, type)."""
    return result_layer_data(ResultBundle(result=result, spatial_shape=SHAPE), name="res")


def _plain(data, name):
    return (data, {"name": name, "metadata": {}}, "image")


# -- maps -------------------------------------------------------------------------------


def test_maps_are_written_as_float32_pages_named_after_components(tmp_path, result, layers):
    [out] = write_maps(str(tmp_path / "maps.tif"), [layers[2], layers[0]])
    maps, names = read_maps_tiff(out)
    assert names == ["water", "lipid"] and maps.dtype == np.float32
    expected = result.maps(SHAPE)[[2, 0]].astype(np.float32)
    np.testing.assert_array_equal(maps, expected)


def test_dock_layers_with_an_extra_axis_give_maps_on_the_analysed_grid(tmp_path, result):
    # the dock keeps a length-1 spectral axis when the stack's spectral axis is not first
    meta = {RESULT_KEY: result, "component_index": 1, "spatial_shape": SHAPE}
    layer = (np.ones((1, *SHAPE)), {"name": "protein map", "metadata": meta}, "image")
    maps, names = read_maps_tiff(write_maps(str(tmp_path / "m.tif"), [layer])[0])
    assert names == ["protein"] and maps.shape == (1, *SHAPE)
    np.testing.assert_array_equal(maps[0], result.maps(SHAPE)[1].astype(np.float32))
    plain = (np.ones((1, 2, 4, 5)), {"name": "z-map", "metadata": {}}, "image")
    maps, names = read_maps_tiff(write_maps(str(tmp_path / "p.tif"), [plain])[0])
    assert names == ["z-map"] and maps.shape == (1, 2, 4, 5)


def test_plain_image_layers_are_named_after_the_layers(tmp_path):
    a, b = np.ones((3, 4, 5)), np.zeros((3, 4, 5))  # (Z, Y, X) maps
    [out] = write_maps(str(tmp_path / "m.tif"), [_plain(a, "first"), _plain(b, "second")])
    maps, names = read_maps_tiff(out)
    assert names == ["first", "second"] and maps.shape == (2, 3, 4, 5)
    np.testing.assert_array_equal(maps[0], a)


def test_maps_writer_refuses_mixed_shapes_and_non_images(tmp_path):
    with pytest.raises(ValueError, match="differ in shape"):
        write_maps(str(tmp_path / "m.tif"), [_plain(np.ones((4, 5)), "a"),
                                             _plain(np.ones((4, 6)), "b")])
    with pytest.raises(ValueError, match="Select one or more image layers"):
        write_maps(str(tmp_path / "m.tif"), [(np.ones((3, 2)), {"name": "p"}, "points")])
    with pytest.raises(ValueError, match="2-D"):
        write_maps(str(tmp_path / "m.tif"), [_plain(np.ones((2, 3, 4, 5)), "a")])
    assert os.listdir(tmp_path) == []


# -- spectra ---------------------------------------------------------------------------


def test_spectra_of_the_selected_components_with_the_spectral_axis(tmp_path, result, layers):
    [out] = write_spectra(str(tmp_path / "h.csv"), [layers[0], layers[2]])
    table = read_spectra_csv(out)
    assert table.names == ["lipid", "water"]
    np.testing.assert_array_equal(table.axis, result.spectral_values)
    np.testing.assert_array_equal(table.values, result.H[[0, 2]])
    assert unit_from_header(table.axis_name) == "cm^-1"


def test_a_result_layer_without_component_index_gives_all_spectra(tmp_path, result):
    layer = (np.zeros(SHAPE), {"name": "composite", "metadata": {"anything": result}}, "image")
    table = read_spectra_csv(write_spectra(str(tmp_path / "h.csv"), [layer])[0])
    assert table.names == result.component_names
    np.testing.assert_array_equal(table.values, result.H)


def test_spectra_without_a_result_or_from_different_axes_are_refused(tmp_path, result, layers):
    with pytest.raises(ValueError, match="None of the selected layers holds a napari-unmix"):
        write_spectra(str(tmp_path / "h.csv"), [_plain(np.ones(SHAPE), "x")])
    other = UnmixResult(W=result.W, H=result.H, mode="nmf", backend="x", device="cpu",
                        n_iter=1, reconstruction_err=0.0,
                        spectral_values=np.arange(6.0), spectral_unit="nm")
    other_layers = result_layer_data(ResultBundle(result=other, spatial_shape=SHAPE))
    with pytest.raises(ValueError, match="different spectral axes"):
        write_spectra(str(tmp_path / "h.csv"), [layers[0], other_layers[1]])
    assert os.listdir(tmp_path) == []


# -- bundle and folder ---------------------------------------------------------------------


def test_bundle_writer_output_is_opened_again_by_the_reader(tmp_path, result, layers):
    [out] = write_bundle(str(tmp_path / "r.npz"), layers[:1])  # one layer is enough
    again = read_layers(out)
    assert [kw["metadata"]["component_name"] for _, kw, _ in again] == result.component_names
    for (data, _, _), expected in zip(again, result.maps(SHAPE), strict=True):
        np.testing.assert_array_equal(data, expected)
    back = again[0][1]["metadata"][RESULT_KEY]
    assert back.params == result.params and back.summary == result.summary
    np.testing.assert_array_equal(back.H, result.H)


def test_a_bundle_keeps_the_pixel_sizes_of_its_layers(tmp_path, result, layers):
    """Maps saved as .npz from layers 0.5 x 0.25 µm apart open again on that grid (they
    opened at 1 pixel, so they no longer lay over their image)."""
    sizes = ((0.5, 0.25), ("micrometer", "micrometer"))
    scaled = result_layer_data(ResultBundle(result=result, spatial_shape=SHAPE,
                                            pixel_size=sizes))
    [out] = write_bundle(str(tmp_path / "r.npz"), scaled)
    assert read_result_bundle(out).pixel_size == (sizes[0], ("um", "um"))
    _, kwargs, _ = read_layers(out)[0]
    assert kwargs["scale"] == sizes[0] and kwargs["units"] == ("um", "um")
    [plain] = write_bundle(str(tmp_path / "p.npz"), layers)  # in pixels: none recorded
    assert read_result_bundle(plain).pixel_size is None


def test_a_z_stack_calibrated_in_x_and_y_only_keeps_that_calibration(tmp_path):
    """Maps of a (Z, Y, X) stack with µm pixels but no Z spacing were saved without any
    pixel size (maps.tif, result folder and bundle at 1 pixel): Z's lack of a unit
    dropped Y's and X's."""
    import tifffile

    rng = np.random.default_rng(2)
    res = UnmixResult(W=rng.random((60, 2)), H=rng.random((2, 6)), mode="nmf",
                      backend="numpy", device="cpu", n_iter=1, reconstruction_err=0.0,
                      component_names=["a", "b"])
    sizes = ((1.0, 0.5, 0.25), ("", "um", "um"))
    layers = result_layer_data(ResultBundle(result=res, spatial_shape=(3, 4, 5),
                                            pixel_size=sizes))
    assert layers[0][1]["units"] == ("pixel", "um", "um")
    write_result_folder(str(tmp_path / "out"), layers)
    assert read_result_bundle(tmp_path / "out").pixel_size == sizes
    [bundle] = write_bundle(str(tmp_path / "r.npz"), layers)
    assert read_result_bundle(bundle).pixel_size == sizes
    [maps] = write_maps(str(tmp_path / "m.tif"), layers)
    with tifffile.TiffFile(maps) as tf:
        assert tf.imagej_metadata["unit"] == "um" and "spacing" not in tf.imagej_metadata
        assert tf.pages[0].tags["XResolution"].value == (4, 1)  # 4 pixels per µm


def test_bundle_needs_one_result(tmp_path, result, layers):
    twin = UnmixResult(W=result.W, H=result.H, mode="nmf", backend="x", device="cpu",
                       n_iter=1, reconstruction_err=0.0)
    twin_layers = result_layer_data(ResultBundle(result=twin, spatial_shape=SHAPE))
    with pytest.raises(ValueError, match="come from 2 different results"):
        write_bundle(str(tmp_path / "r.npz"), [layers[0], twin_layers[0]])
    with pytest.raises(ValueError, match="None of the selected layers"):
        write_bundle(str(tmp_path / "r.npz"), [_plain(np.ones(SHAPE), "x")])
    assert os.listdir(tmp_path) == []


def test_result_folder_writer(tmp_path, result, layers):
    written = write_result_folder(str(tmp_path / "out"), layers)
    names = sorted(os.path.basename(p) for p in written)
    assert names == ["composite.png", "maps.tif", "result.json", "result.npz", "spectra.csv"]
    b = read_result_bundle(tmp_path / "out")
    assert b.spatial_shape == SHAPE
    np.testing.assert_array_equal(b.result.W, result.W)


# -- atomic writes -------------------------------------------------------------------------


class DiskFull(OSError):
    pass


def _inject(monkeypatch, kind):
    """Make the writer of ``kind`` fail after it has written part of its output."""
    if kind == "maps":
        def broken(file, *args, **kwargs):
            with open(file, "wb") as fh:
                fh.write(b"II*\x00 partial")
            raise DiskFull("disk full (injected)")
        monkeypatch.setattr(tables_mod.tifffile, "imwrite", broken)
    elif kind == "spectra":
        real, calls = tables_mod._format_number, []

        def broken_number(v):
            calls.append(v)
            if len(calls) > 4:  # after the first lines are out
                raise DiskFull("disk full (injected)")
            return real(v)
        monkeypatch.setattr(tables_mod, "_format_number", broken_number)
    else:
        real_write = np.lib.format.write_array

        def broken_array(fh, array, *args, **kwargs):
            if getattr(getattr(fh, "_zinfo", None), "filename", "").startswith("layout/"):
                raise DiskFull("disk full (injected)")
            return real_write(fh, array, *args, **kwargs)
        monkeypatch.setattr(np.lib.format, "write_array", broken_array)


WRITERS = {"maps": (write_maps, "out.tif"), "spectra": (write_spectra, "out.csv"),
           "bundle": (write_bundle, "out.npz")}


@pytest.mark.parametrize("kind", sorted(WRITERS))
def test_a_failed_write_keeps_the_old_file_and_leaves_no_partial_file(tmp_path, monkeypatch,
                                                                      layers, kind):
    hook, name = WRITERS[kind]
    target = tmp_path / name
    target.write_bytes(b"old content")
    _inject(monkeypatch, kind)
    with pytest.raises(DiskFull):
        hook(str(target), layers)
    assert target.read_bytes() == b"old content"
    with pytest.raises(DiskFull):
        hook(str(tmp_path / f"new_{name}"), layers)
    assert os.listdir(tmp_path) == [name]


# -- through napari ----------------------------------------------------------------------


@pytest.mark.gui
def test_round_trips_through_napari(make_napari_viewer, tmp_path, result, layers):
    import napari

    source = write_bundle(str(tmp_path / "source.npz"), layers)[0]
    viewer = make_napari_viewer()
    opened = viewer.open(source, plugin="napari-unmix")
    assert len(opened) == 3
    # the whole result: .npz bundle, opened again as the same maps
    [bundle] = napari.save_layers(str(tmp_path / "copy.npz"), opened, plugin="napari-unmix")
    again = viewer.open(bundle, plugin="napari-unmix")
    for a, b in zip(opened, again, strict=True):
        np.testing.assert_array_equal(a.data, b.data)
        assert a.colormap.name == b.colormap.name and b.blending == "additive"
    # maps as TIFF, spectra as CSV, chosen by extension
    [tif] = napari.save_layers(str(tmp_path / "maps.tif"), opened[:2], plugin="napari-unmix")
    maps, names = read_maps_tiff(tif)
    assert names == ["lipid", "protein"]
    np.testing.assert_array_equal(maps, result.maps(SHAPE)[:2].astype(np.float32))
    [csv] = napari.save_layers(str(tmp_path / "h.csv"), [opened[1]], plugin="napari-unmix")
    table = read_spectra_csv(csv)
    assert table.names == ["protein"]
    np.testing.assert_array_equal(table.values, result.H[[1]])
    np.testing.assert_array_equal(table.axis, result.spectral_values)
    # no extension: a result folder, which the reader opens too
    napari.save_layers(str(tmp_path / "folder"), opened, plugin="napari-unmix")
    from_folder = viewer.open(str(tmp_path / "folder"), plugin="napari-unmix")
    np.testing.assert_array_equal(from_folder[2].data, opened[2].data)


def test_spectra_of_a_per_plane_series_write_every_plane_spectra_beside_the_mean(
        tmp_path, small_series):
    """'Save spectra' on the maps of a per-plane series wrote the mean of the planes'
    spectra (which no plane was fitted with) under plain names, and nothing else; now
    each plane's own go beside it, named like the result folder's spectra_zNNN.csv."""
    sr = small_series("per-slice")
    series = sr.as_result()
    maps = result_layer_data(ResultBundle(result=series, spatial_shape=(3, 8, 10)),
                             name="zs")
    out = write_spectra(str(tmp_path / "lipids.csv"), [maps[2], maps[0]])
    assert [os.path.basename(p) for p in out] == [
        "lipids.csv", "lipids_z000.csv", "lipids_z001.csv", "lipids_z002.csv"]
    np.testing.assert_allclose(read_spectra_csv(out[0]).values, series.H[[2, 0]], rtol=1e-6)
    for z in range(3):
        table = read_spectra_csv(out[1 + z])
        assert table.names == [series.component_names[2], series.component_names[0]]
        np.testing.assert_allclose(table.values, sr.plane_spectra(z)[[2, 0]], rtol=1e-6)
    # a shared basis has one set of spectra: one file, as before
    shared = small_series("shared-basis").as_result()
    one = result_layer_data(ResultBundle(result=shared, spatial_shape=(3, 8, 10)), name="sh")
    assert len(write_spectra(str(tmp_path / "shared.csv"), one)) == 1
    # a per-plane series with a single image's result: no file per plane fits both
    image = UnmixResult(W=np.ones((20, 3)), H=series.H, mode="nmf", backend="sklearn",
                        device="cpu", n_iter=1, reconstruction_err=0.1,
                        spectral_values=series.spectral_values,
                        spectral_unit=series.spectral_unit)
    plain = result_layer_data(ResultBundle(result=image, spatial_shape=SHAPE), name="p")
    with pytest.raises(ValueError, match="per-plane z / t series"):
        write_spectra(str(tmp_path / "mixed.csv"), [maps[0], plain[0]])
