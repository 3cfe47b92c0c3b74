"""zarr / OME-Zarr stacks in and out, and lazy stacks whose dask graphs pickle small."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import tifffile

from napari_unmix.io import open_stack

zarr = pytest.importorskip("zarr", reason="zarr is not installed (napari-unmix[distributed])")


def _cube(shape=(8, 40, 48), seed=0):
    return np.random.default_rng(seed).random(shape, dtype=np.float32)


# -- readers ------------------------------------------------------------------------

def test_plain_zarr_array_reads_lazily_with_its_dimension_names(tmp_path):
    data = _cube()
    arr = zarr.create_array(str(tmp_path / "cube.zarr"), shape=data.shape, dtype=data.dtype,
                            chunks=(8, 16, 16), dimension_names=("lambda", "y", "x"))
    arr[:] = data
    arr.attrs["napari_unmix"] = {"spectral_values": list(np.arange(8) * 10.0 + 500),
                                 "spectral_unit": "nm"}
    stack = open_stack(tmp_path / "cube.zarr", lazy=True)
    assert stack.lazy and stack.axes == "EYX" and stack.spectral_axis == 0
    assert not stack.guessed
    assert stack.spectral_unit == "nm" and stack.spectral_values[-1] == 570.0
    assert stack.data.chunksize == (8, 16, 16)
    np.testing.assert_array_equal(np.asarray(stack.data), data)
    assert isinstance(open_stack(tmp_path / "cube.zarr", lazy=False).data, np.ndarray)


def test_zarr_group_with_one_stack_and_xarray_dimension_names(tmp_path):
    data = _cube((20, 30, 6))
    root = zarr.open_group(str(tmp_path / "g.zarr"), mode="w", zarr_format=2)
    arr = root.create_array("cube", shape=data.shape, dtype=data.dtype, chunks=(10, 10, 6))
    arr[:] = data
    arr.attrs["_ARRAY_DIMENSIONS"] = ["y", "x", "c"]
    root.create_array("wavenumbers", shape=(6,), dtype="f8")
    stack = open_stack(tmp_path / "g.zarr")
    assert stack.axes == "YXC" and stack.spectral_axis == 2 and not stack.guessed
    assert any("array 'cube'" in n for n in stack.notes)
    np.testing.assert_array_equal(np.asarray(stack.data), data)


def test_zarr_group_with_several_stacks_is_refused_naming_them(tmp_path):
    root = zarr.open_group(str(tmp_path / "two.zarr"), mode="w")
    root.create_array("a", shape=(4, 5, 5), dtype="f4")
    root.create_array("b", shape=(4, 5, 5), dtype="f4")
    with pytest.raises(ValueError, match=r"no single stack \(arrays: a \(4, 5, 5\), b"):
        open_stack(tmp_path / "two.zarr")


@pytest.mark.parametrize("inside", [None, "sub/a.zarr"])
def test_a_zarr_named_folder_without_zarr_metadata_says_so(tmp_path, inside):
    # an empty "x.zarr", or a folder above the store: zarr's own words were
    # "GroupNotFoundError: No group found in store StorePath(LocalStore, ...)"
    folder = tmp_path / "x.zarr"
    folder.mkdir()
    if inside:
        zarr.save_array(str(folder / inside), _cube((4, 6, 6)))
    with pytest.raises(ValueError, match=r"x\.zarr is not a zarr store: it holds none of "
                       r"zarr\.json, \.zgroup, \.zarray") as err:
        open_stack(folder)
    assert "StorePath" not in str(err.value) and "Give the .zarr folder itself" in str(err.value)


def test_ome_zarr_round_trip_keeps_axis_values_and_pixel_sizes(tmp_path):
    pytest.importorskip("ome_zarr", reason="ome-zarr is not installed")
    from napari_unmix.io.ome_zarr_out import write_stack_ome_zarr

    data = _cube((6, 3, 40, 48))  # C, Z, Y, X
    values = np.linspace(2800.0, 3050.0, 6)
    out = write_stack_ome_zarr(tmp_path / "cube.ome.zarr", data, spectral_values=values,
                               spectral_unit="cm^-1",
                               pixel_size=((2.0, 0.5, 0.25), ("um", "um", "um")))
    stack = open_stack(out, lazy=True)
    assert stack.axes == "CZYX" and stack.spectral_axis == 0 and not stack.guessed
    np.testing.assert_allclose(stack.spectral_values, values)
    assert stack.spectral_unit == "cm^-1"
    assert stack.scale == (1.0, 2.0, 0.5, 0.25) and stack.units == ("", "um", "um", "um")
    np.testing.assert_array_equal(np.asarray(stack.data), data)


def test_foreign_ome_zarr_takes_values_from_the_omero_channel_labels(tmp_path):
    pytest.importorskip("ome_zarr", reason="ome-zarr is not installed")
    from napari_unmix.io.zarr_stacks import import_ome_zarr

    _, _, writer, _ = import_ome_zarr()
    data = _cube((5, 32, 32))
    root = zarr.open_group(str(tmp_path / "foreign.zarr"), mode="w")
    window = {"min": 0.0, "max": 1.0, "start": 0.0, "end": 1.0}
    writer.write_image(data, root, axes=["c", "y", "x"], scale_factors=(),
                       axes_units={"y": "nanometer", "x": "nanometer"},
                       scale={"c": 1.0, "y": 80.0, "x": 80.0},
                       omero={"channels": [{"label": f"{500 + 20 * i} nm", "color": "FFFFFF",
                                            "window": window} for i in range(5)]})
    stack = open_stack(tmp_path / "foreign.zarr")
    assert stack.spectral_values.tolist() == [500.0, 520.0, 540.0, 560.0, 580.0]
    assert stack.spectral_unit == "nm"
    assert stack.scale == (1.0, 80.0, 80.0) and stack.units == ("", "nm", "nm")


def test_a_zarr_folder_is_not_read_as_slices(tmp_path):
    (tmp_path / "empty.zarr").mkdir()
    with pytest.raises(ValueError) as info:
        open_stack(tmp_path / "empty.zarr")
    assert "zarr" in str(info.value) and "no .tif" not in str(info.value)


# -- the maps writer ------------------------------------------------------------------

@pytest.mark.parametrize("name", ["cube.spectral.csv", "cube.zarr.spectral.csv"])
def test_a_sidecar_beside_a_zarr_store_gives_its_spectral_axis(tmp_path, name):
    arr = zarr.create_array(str(tmp_path / "cube.zarr"), shape=(6, 8, 8), dtype="f4")
    arr[:] = 1.0
    (tmp_path / name).write_text("wavenumber (cm^-1)\n" + "\n".join(
        str(v) for v in range(2800, 3100, 50)) + "\n")
    for lazy in (True, False):
        stack = open_stack(tmp_path / "cube.zarr", lazy=lazy)
        np.testing.assert_array_equal(stack.spectral_values, np.arange(2800, 3100, 50))
        assert stack.spectral_unit == "cm^-1" and stack.spectral_axis == 0


def test_a_zarr_store_s_sidecar_is_no_output_file(tmp_path, capsys):
    from napari_unmix.cli import main

    arr = zarr.create_array(str(tmp_path / "cube.zarr"), shape=(6, 8, 8), dtype="f4")
    arr[:] = 1.0
    side = tmp_path / "cube.spectral.csv"
    side.write_text("\n".join(str(v) for v in range(2800, 3100, 50)) + "\n")
    before = side.read_bytes()
    assert main(["suggest-k", str(tmp_path / "cube.zarr"), "--json", str(side)]) == 2
    assert "the spectral axis of" in capsys.readouterr().err
    assert side.read_bytes() == before


def test_maps_ome_zarr_names_colours_pixel_sizes_and_pyramid(tmp_path):
    pytest.importorskip("ome_zarr", reason="ome-zarr is not installed")
    import dask.array as da

    from napari_unmix.io.ome_zarr_out import write_maps_ome_zarr

    maps = da.from_array(_cube((3, 600, 520)), chunks=(1, 200, 260))
    out = write_maps_ome_zarr(tmp_path / "maps.ome.zarr", maps, ["lipid", "protein", "water"],
                              colors=["red", "lime", "blue"],
                              pixel_size=((0.5, 0.25), ("um", "um")))
    attrs = json.loads((out / "zarr.json").read_text())["attributes"]
    ome = attrs["ome"]
    channels = ome["omero"]["channels"]
    assert [c["label"] for c in channels] == ["lipid", "protein", "water"]
    assert [c["color"] for c in channels] == ["FF0000", "00FF00", "0000FF"]
    axes = ome["multiscales"][0]["axes"]
    assert [a.get("unit") for a in axes] == [None, "micrometer", "micrometer"]
    datasets = ome["multiscales"][0]["datasets"]
    assert len(datasets) == 2  # 600 x 520 -> one level at half size (>= 256 px)
    assert datasets[0]["coordinateTransformations"][0]["scale"] == [1.0, 0.5, 0.25]
    assert attrs["napari_unmix"]["component_names"] == ["lipid", "protein", "water"]
    level0 = zarr.open_array(str(out / datasets[0]["path"]), mode="r")
    assert level0.chunks == (1, 512, 512)
    np.testing.assert_array_equal(level0[:], np.asarray(maps))
    assert not (out / "_level0").exists()


# -- lazy stacks pickle small ---------------------------------------------------------

def _graph_bytes(arr) -> int:
    return len(pickle.dumps(arr.__dask_graph__()))


@pytest.mark.parametrize("compression", [None, "zlib"])
def test_lazy_tiff_graph_pickles_small_and_reads_the_same(tmp_path, compression):
    data = (np.random.default_rng(1).random((16, 1024, 1024)) * 1000).astype(np.uint16)
    path = tmp_path / "big.tif"
    tifffile.imwrite(path, data, imagej=compression is None, compression=compression,
                     metadata={"axes": "CYX"})
    stack = open_stack(path, lazy=True)
    assert ("memory-mapped" if compression is None else "one page per chunk") in stack.notes[-1]
    assert _graph_bytes(stack.data) < 100_000 < data.nbytes  # the file itself is 32 MB
    again = pickle.loads(pickle.dumps(stack.data))
    np.testing.assert_array_equal(np.asarray(again[3:5, 100:200]), data[3:5, 100:200])


def test_lazy_npy_slice_folder_and_zarr_graphs_pickle_small(tmp_path):
    data = (np.random.default_rng(2).random((6, 128, 128)) * 100).astype(np.float32)
    np.save(tmp_path / "a.npy", data)
    folder = tmp_path / "slices"
    folder.mkdir()
    for i, plane in enumerate(data):
        tifffile.imwrite(folder / f"ch{i}.tif", plane)
    zarr.save_array(str(tmp_path / "a.zarr"), data)
    for name in ("a.npy", "slices", "a.zarr"):
        stack = open_stack(tmp_path / name, lazy=True)
        assert _graph_bytes(stack.data) < 50_000, name
        np.testing.assert_array_equal(np.asarray(pickle.loads(pickle.dumps(stack.data))), data)


def test_a_lazy_result_is_streamed_to_the_ome_zarr_output_set(tmp_path):
    pytest.importorskip("ome_zarr", reason="ome-zarr is not installed")
    import dask.array as da

    import napari_unmix.core as uc
    from napari_unmix.io import read_result_bundle, write_analysis_outputs

    rng = np.random.default_rng(5)
    H = rng.random((3, 8)).astype(np.float32) + 0.1
    A = rng.random((3, 64, 48)).astype(np.float32)
    stack = np.einsum("kyx,kc->cyx", A, H)
    X = da.from_array(np.moveaxis(stack, 0, -1).reshape(-1, 8), chunks=(1024, 8))
    res = uc.nnls(X, H)
    assert hasattr(res.W, "dask")  # a chunked run: W is lazy
    out = write_analysis_outputs(tmp_path / "maps.ome.zarr", res, (64, 48),
                                 maps_format="ome-zarr",
                                 pixel_size=((0.5, 0.5), ("um", "um")))
    assert out["maps"] == tmp_path / "maps.ome.zarr"
    bundle = read_result_bundle(tmp_path / "maps.ome.zarr")
    np.testing.assert_array_equal(bundle.result.W, np.asarray(res.W))
    stored = zarr.open_array(str(tmp_path / "maps.ome.zarr" / "s0"), mode="r")
    np.testing.assert_array_equal(stored[:], bundle.maps())
    with pytest.raises(ValueError, match="maps_format"):
        write_analysis_outputs(tmp_path / "x", res, (64, 48), maps_format="png")
