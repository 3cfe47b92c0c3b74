"""The npe2 reader hook: what it accepts, the layers it makes, and that it never raises."""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

import numpy as np
import pytest
import tifffile

from napari_unmix._napari.reader import RESULT_KEY, get_reader, read_layers
from napari_unmix.core.colors import DEFAULT_COLORS, hex_to_rgb
from napari_unmix.core.result import UnmixResult
from napari_unmix.io import write_result_bundle, write_stack_tiff
from napari_unmix.io.readers import LAZY_ENV

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
LEICA = DATA / "neher_leica_3dye"
LOGGER = "napari_unmix._napari.reader"


@pytest.fixture
def cube():
    return np.random.default_rng(0).random((6, 10, 12)).astype(np.float32)


@pytest.fixture
def result():
    rng = np.random.default_rng(5)
    spectra = rng.random((3, 6))
    return UnmixResult(
        W=rng.random((20, 3)), H=spectra, mode="seeded-nmf", backend="sklearn", device="cpu",
        n_iter=3, reconstruction_err=0.1, component_names=["lipid", "protein", "water"],
        spectral_values=np.linspace(2800, 3050, 6), spectral_unit="cm^-1",
        params={"config": {"components": [{"name": "lipid", "color": "#ff0000"},
                                          {"name": "protein", "color": None},
                                          {"name": "water", "color": "cyan"}]}})


def _bounded(func, *args):
    """Run ``func`` in a thread; fail (instead of hanging the suite) if it never returns."""
    out = {}
    thread = threading.Thread(target=lambda: out.setdefault("value", func(*args)), daemon=True)
    thread.start()
    thread.join(60)
    assert not thread.is_alive(), f"{func.__name__}{args} did not return"
    return out["value"]


# -- what get_reader accepts ---------------------------------------------------------


def test_get_reader_accepts_stacks_folders_and_results(tmp_path, cube, result):
    write_stack_tiff(tmp_path / "s.tif", cube)
    np.save(tmp_path / "s.npy", cube)
    # a .npy is claimed with a sidecar only (napari_unmix._napari.reader_rule)
    (tmp_path / "s.spectral.csv").write_text("\n".join(str(v) for v in range(6)))
    np.savez(tmp_path / "s.npz", stack=cube)
    write_result_bundle(tmp_path / "r.npz", result, (4, 5))
    folder = tmp_path / "slices"
    folder.mkdir()
    tifffile.imwrite(folder / "ch1.tif", cube[0])
    for p in ("s.tif", "s.npy", "s.npz", "r.npz", "slices"):
        assert get_reader(str(tmp_path / p)) is read_layers, p
    assert get_reader([str(tmp_path / "s.tif"), str(tmp_path / "s.npy")]) is read_layers


def test_get_reader_refuses_what_it_cannot_read(tmp_path):
    (tmp_path / "x.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (tmp_path / "text.tif").write_bytes(b"plain text, not a TIFF")
    (tmp_path / "empty.npy").write_bytes(b"")
    (tmp_path / "nothing").mkdir()
    (tmp_path / "nothing" / "readme.txt").write_text("no slices here")
    for p in ("x.png", "text.tif", "empty.npy", "nothing", "missing.tif"):
        assert get_reader(str(tmp_path / p)) is None, p
    assert get_reader([]) is None
    assert get_reader(12345) is None  # not a path at all: still no exception


def test_get_reader_does_not_open_a_fifo(tmp_path):
    if not hasattr(os, "mkfifo"):
        pytest.skip("no named pipes on this platform")
    os.mkfifo(tmp_path / "pipe.tif")
    assert _bounded(get_reader, str(tmp_path / "pipe.tif")) is None
    assert _bounded(read_layers, str(tmp_path / "pipe.tif")) is None


# -- failures: None plus a logged reason, never an exception ----------------------------


@pytest.mark.parametrize("content", [b"II*\x00\x08\x00\x00\x00\xff\xff", b"II*\x00"])
def test_corrupt_tiff_gives_none_and_a_logged_reason(tmp_path, caplog, content):
    bad = tmp_path / "bad.tif"
    bad.write_bytes(content)
    reader = get_reader(str(bad))  # the magic bytes are right: the reader is offered
    assert reader is read_layers
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert _bounded(reader, str(bad)) is None
    reasons = [r.getMessage() for r in caplog.records if r.name == LOGGER]
    assert len(reasons) == 1 and "could not open" in reasons[0] and "bad.tif" in reasons[0]


def test_truncated_tiff_and_mismatched_folder_give_none(tmp_path, caplog, cube):
    good = write_stack_tiff(tmp_path / "s.tif", cube)
    cut = tmp_path / "cut.tif"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    folder = tmp_path / "f"
    folder.mkdir()
    tifffile.imwrite(folder / "c1.tif", cube[0])
    tifffile.imwrite(folder / "c2.tif", cube[0, :5])
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert read_layers(str(cut)) is None
        assert read_layers(str(folder)) is None
    text = " ".join(r.getMessage() for r in caplog.records if r.name == LOGGER)
    assert "cut.tif could not be read" in text and "differ in shape" in text


def test_a_list_with_one_bad_file_returns_the_good_ones(tmp_path, caplog, cube):
    np.save(tmp_path / "good.npy", cube)
    (tmp_path / "bad.npy").write_bytes(b"\x93NUMPY broken")
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        layers = read_layers([str(tmp_path / "good.npy"), str(tmp_path / "bad.npy")])
    assert len(layers) == 1 and layers[0][1]["name"] == "good.npy"
    assert any("bad.npy" in r.getMessage() for r in caplog.records)


# -- the layers ---------------------------------------------------------------------------


def test_stack_layer_metadata_from_file_and_sidecar(tmp_path, caplog, cube):
    path = write_stack_tiff(tmp_path / "s.tif", np.moveaxis(cube, 0, 1), axes="YCX")
    (tmp_path / "s.spectral.csv").write_text("wavenumber (cm^-1)\n" + "\n".join(
        str(v) for v in range(2800, 3100, 50)))
    with caplog.at_level(logging.INFO, logger=LOGGER):
        [(data, kwargs, kind)] = read_layers(str(path))
    assert kind == "image" and data.shape == (10, 6, 12)
    meta = kwargs["metadata"]
    assert meta["spectral_axis_index"] == 1 and not meta["spectral_axis_guessed"]
    np.testing.assert_array_equal(meta["spectral_values"], np.arange(2800, 3100, 50))
    assert meta["spectral_unit"] == "cm^-1" and meta["axes"] == "YCX"
    assert kwargs["axis_labels"] == ("Y", "ν̃", "X")  # from the data: the sidecar gives wavenumbers
    msg = " ".join(r.getMessage() for r in caplog.records if r.name == LOGGER)
    assert ("spectral axis = axis 1 (C) (named by the file) with 6 channels, 2800 .. 3050 "
            "cm^-1" in msg)


def test_guessed_axis_is_said_in_metadata_and_log(tmp_path, caplog, cube):
    np.save(tmp_path / "s.npy", cube)
    with caplog.at_level(logging.INFO, logger=LOGGER):
        [(_, kwargs, _)] = read_layers(str(tmp_path / "s.npy"))
    meta = kwargs["metadata"]
    assert meta["spectral_axis_index"] == 0 and meta["spectral_axis_guessed"]
    assert meta["spectral_values"] is None  # channel numbers are not spectral values
    assert meta["spectral_unit"] is None
    warnings = [r.getMessage() for r in caplog.records
                if r.name == LOGGER and r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "axis 0" in warnings[0] and "(guessed)" in warnings[0]


def test_multi_series_notice_reaches_the_layer(tmp_path, cube):
    path = tmp_path / "m.tif"
    with tifffile.TiffWriter(path) as tw:
        tw.write(cube, photometric="minisblack", metadata={"axes": "CYX"})
        tw.write(cube[:2], photometric="minisblack", metadata={"axes": "CYX"})
    [(_, kwargs, _)] = read_layers(str(path))
    assert kwargs["metadata"]["series_index"] == 0
    assert any("series 0" in n for n in kwargs["metadata"]["notes"])


def test_result_layers_are_coloured_and_additive(tmp_path, result):
    path = write_result_bundle(tmp_path / "r.npz", result, (4, 5))
    layers = read_layers(str(path))
    assert [kw["name"] for _, kw, _ in layers] == ["r.npz: lipid", "r.npz: protein",
                                                   "r.npz: water"]
    maps = result.maps((4, 5))
    for i, (data, kw, kind) in enumerate(layers):
        assert kind == "image" and kw["blending"] == "additive"
        np.testing.assert_array_equal(data, maps[i])
        meta = kw["metadata"]
        assert meta[RESULT_KEY] is layers[0][1]["metadata"][RESULT_KEY]
        assert meta["component_index"] == i and meta["spatial_shape"] == (4, 5)
    # colours from the stored config; the default palette where none was given
    expected = ["#ff0000", DEFAULT_COLORS[1].lower(), "#00ffff"]
    assert [kw["metadata"]["color"] for _, kw, _ in layers] == expected
    for (_, kw, _), color in zip(layers, expected, strict=True):
        np.testing.assert_allclose(kw["colormap"].colors[-1, :3], hex_to_rgb(color))


def test_masked_result_layers_are_nan_outside_the_mask(tmp_path, result):
    mask = np.zeros((5, 6), bool)
    mask.flat[:20] = True
    path = write_result_bundle(tmp_path / "m.npz", result, (5, 6), mask=mask)
    layers = read_layers(str(path))
    maps = result.maps((5, 6), mask=mask)
    for i, (data, kw, _) in enumerate(layers):
        np.testing.assert_array_equal(data, maps[i])
        assert np.isnan(data[~mask]).all()
        np.testing.assert_array_equal(kw["metadata"]["mask"], mask)


# -- through napari ---------------------------------------------------------------------


@pytest.mark.gui
def test_viewer_opens_hyperstacks_results_and_large_stacks(make_napari_viewer, tmp_path,
                                                           result, cube, monkeypatch):
    import dask.array as da

    data = np.arange(2 * 3 * 4 * 5 * 6, dtype=np.uint16).reshape(2, 3, 4, 5, 6)
    path = write_stack_tiff(tmp_path / "h.tif", data, axes="TZCYX",
                            spectral_values=[500, 510, 520, 530], spectral_unit="nm")
    viewer = make_napari_viewer()
    [layer] = viewer.open(str(path), plugin="napari-unmix")
    np.testing.assert_array_equal(layer.data, data)
    assert layer.metadata["spectral_axis_index"] == 2
    np.testing.assert_array_equal(layer.metadata["spectral_values"], [500, 510, 520, 530])
    maps = viewer.open(str(write_result_bundle(tmp_path / "r.npz", result, (4, 5))),
                       plugin="napari-unmix")
    assert len(maps) == 3 and all(m.blending == "additive" for m in maps)
    assert maps[0].metadata[RESULT_KEY].component_names == ["lipid", "protein", "water"]
    # above the lazy threshold the layer holds a dask array
    monkeypatch.setenv(LAZY_ENV, "1000")  # a 2.9 kB stack is "large" now
    [lazy] = viewer.open(str(write_stack_tiff(tmp_path / "s.tif", cube)),
                         plugin="napari-unmix")
    assert isinstance(lazy.data, da.Array) and lazy.metadata["lazy"]
    np.testing.assert_array_equal(np.asarray(lazy.data[3]), cube[3])


@pytest.mark.realdata
def test_the_real_leica_folder_becomes_one_twelve_channel_layer():
    if not LEICA.is_dir():
        pytest.skip(f"real data not found at {LEICA} (see ../shared/data/README.md)")
    assert get_reader(str(LEICA)) is read_layers
    [(data, kwargs, kind)] = read_layers(str(LEICA))
    assert kind == "image" and data.shape == (12, 512, 512) and data.dtype == np.uint8
    meta = kwargs["metadata"]
    assert meta["spectral_axis_index"] == 0 and not meta["spectral_axis_guessed"]
    assert kwargs["name"] == "neher_leica_3dye" and kwargs["axis_labels"] == ("C", "Y", "X")
