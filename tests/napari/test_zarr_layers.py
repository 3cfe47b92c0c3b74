"""Issue 12 in napari: zarr / OME-Zarr stacks as one lazy layer, OME-Zarr output sets as
lazy multiscale maps with their pixel sizes, channel layers stacked into one stack."""

from __future__ import annotations

import numpy as np
import pytest

napari = pytest.importorskip("napari")
zarr = pytest.importorskip("zarr", reason="zarr is not installed (napari-unmix[distributed])")
pytest.importorskip("ome_zarr", reason="ome-zarr is not installed")

from napari_unmix._napari.channel_stack import (  # noqa: E402
    stack_channel_layers,
    stackable_layers,
)
from napari_unmix._napari.reader import get_reader, read_layers  # noqa: E402
from napari_unmix.cli import main  # noqa: E402
from napari_unmix.core.synthetic import make_crs_sample  # noqa: E402
from napari_unmix.io import write_spectra_csv  # noqa: E402
from napari_unmix.io.ome_zarr_out import write_stack_ome_zarr  # noqa: E402

SIZES = ((0.5, 0.25), ("um", "um"))


@pytest.fixture(scope="module")
def sample():
    return make_crs_sample(shape=(520, 512), n_channels=10, random_state=4)


@pytest.fixture(scope="module")
def cube(tmp_path_factory, sample):
    d = tmp_path_factory.mktemp("zarr-layers")
    write_stack_ome_zarr(d / "cube.ome.zarr", sample.stack, spectral_values=sample.spectral_axis,
                         spectral_unit="cm^-1", pixel_size=SIZES, chunks=(10, 128, 128))
    write_spectra_csv(d / "refs.csv", sample.H, sample.spectral_axis, sample.component_names,
                      "cm^-1")
    return d


def test_reader_hook_opens_an_ome_zarr_stack_as_one_lazy_layer(cube, sample):
    path = cube / "cube.ome.zarr"
    assert get_reader(str(path)) is read_layers
    (data, kwargs, kind), = read_layers(str(path))
    assert kind == "image" and hasattr(data, "dask")  # lazy
    assert data.shape == sample.stack.shape
    meta = kwargs["metadata"]
    assert meta["spectral_axis_index"] == 0 and meta["axes"] == "CYX"
    np.testing.assert_allclose(meta["spectral_values"], sample.spectral_axis)
    assert kwargs["scale"] == (1.0, 0.5, 0.25) and kwargs["units"] == ("pixel", "um", "um")


def test_reader_hook_opens_a_plain_zarr_array(tmp_path):
    data = np.random.default_rng(0).random((6, 20, 24), dtype=np.float32)
    arr = zarr.create_array(str(tmp_path / "plain.zarr"), shape=data.shape, dtype="f4",
                            chunks=(6, 10, 12), dimension_names=("c", "y", "x"))
    arr[:] = data
    assert get_reader(str(tmp_path / "plain.zarr")) is read_layers
    (layer_data, kwargs, _), = read_layers(str(tmp_path / "plain.zarr"))
    assert kwargs["metadata"]["spectral_axis_index"] == 0
    np.testing.assert_array_equal(np.asarray(layer_data), data)


@pytest.mark.gui
def test_napari_opens_the_ome_zarr_output_lazily_with_the_pixel_sizes(
        cube, sample, tmp_path, make_napari_viewer, capsys):
    out = tmp_path / "maps.ome.zarr"
    code = main(["run", str(cube / "cube.ome.zarr"), "--mode", "nnls", "--spectra",
                 str(cube / "refs.csv"), "--out-format", "ome-zarr", "--out", str(out),
                 "--no-progress"])
    assert code == 0, capsys.readouterr().err
    viewer = make_napari_viewer()
    layers = viewer.open(str(out), plugin="napari-unmix")
    assert [layer.metadata["component_name"] for layer in layers] == \
        list(sample.component_names)
    first = layers[0]
    assert first.multiscale and len(first.data) == 2  # 520 x 512: one level at half size
    assert all(hasattr(level, "dask") for level in first.data)  # read on demand
    assert tuple(first.scale) == (0.5, 0.25)
    assert tuple(str(u) for u in first.units) == ("micrometer", "micrometer")
    assert first.data[0].shape == (520, 512)


@pytest.mark.gui
def test_channel_layers_stack_into_one_spectral_stack(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    rng = np.random.default_rng(1)
    planes = rng.random((5, 32, 40), dtype=np.float32)
    for i, plane in enumerate(planes):  # as napari-ome-zarr opens an OME-Zarr stack
        viewer.add_image(plane, name=f"{500 + 10 * i} nm", scale=(0.5, 0.5), units="um")
    viewer.add_image(rng.random((8, 8)), name="other")  # another shape: left out
    chosen = stackable_layers(viewer.layers)
    assert [layer.name for layer in chosen] == [f"{500 + 10 * i} nm" for i in range(5)]
    data, kwargs, _ = stack_channel_layers(chosen)
    assert hasattr(data, "dask") and data.shape == (5, 32, 40)
    np.testing.assert_array_equal(np.asarray(data), planes)
    meta = kwargs["metadata"]
    assert meta["spectral_values"].tolist() == [500.0, 510.0, 520.0, 530.0, 540.0]
    assert meta["spectral_unit"] == "nm" and kwargs["scale"] == (1.0, 0.5, 0.5)
    with pytest.raises(ValueError, match="at least two"):
        stack_channel_layers(chosen[:1])

    from napari_unmix._napari.widget import UnmixWidget

    dock = UnmixWidget(viewer)
    qtbot.addWidget(dock)
    dock.stack_channels_button.click()
    stacked = viewer.layers[-1]
    assert stacked.data.shape == (5, 32, 40) and "Stacked 5 channel layers" in dock.status.text()
    assert not any(layer.visible for layer in chosen)
    assert stacked.name in dock.session.image_names()
