"""The result bundle and the result folder (``napari_unmix.io.results``).

Round trips of :func:`write_result_bundle` / :func:`read_result_bundle` with and
without masks and on 1-D, 2-D and 3-D layouts, what :func:`is_result_bundle`
recognises, the files :func:`write_analysis_outputs` writes, and the one
:class:`ValueError` that a damaged or truncated bundle gives.  Results come from
``nnls`` / ``nmf`` on a small noise-free synthetic sample, whose true abundances
the fits must recover, so that a bundle that loses or reorders values fails.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import tifffile

from napari_unmix.core import UnmixResult, nmf, nnls, stack_to_matrix
from napari_unmix.core.synthetic import make_crs_sample
from napari_unmix.io import (
    OUTPUT_NAMES,
    ResultBundle,
    is_result_bundle,
    open_stack,
    read_maps_tiff,
    read_result_bundle,
    read_spectra_csv,
    write_analysis_outputs,
    write_result_bundle,
)
from napari_unmix.io.results import RESULT_JSON_FORMAT

SHAPE = (16, 16)
N_PIXELS = SHAPE[0] * SHAPE[1]


@pytest.fixture(scope="module")
def sample():
    return make_crs_sample(shape=SHAPE, n_channels=16, noise=0)


@pytest.fixture(scope="module")
def X(sample):
    X, shape = stack_to_matrix(sample.stack, spectral_axis=0)
    assert shape == SHAPE and X.shape == (N_PIXELS, 16)
    return X


def _named(result, sample):
    result.component_names = list(sample.component_names)
    result.spectral_values = np.asarray(sample.spectral_axis, dtype=np.float64)
    result.spectral_unit = sample.spectral_unit
    return result


@pytest.fixture
def fitted(sample, X):
    """NNLS of the true spectra: W must be the true abundances."""
    res = _named(nnls(X, sample.H), sample)
    np.testing.assert_allclose(res.W, sample.W, atol=1e-5)
    return res


def _assert_same(a: UnmixResult, b: UnmixResult):
    np.testing.assert_array_equal(a.W, b.W)
    np.testing.assert_array_equal(a.H, b.H)
    assert a.W.dtype == b.W.dtype and a.H.dtype == b.H.dtype
    assert a.component_names == b.component_names
    np.testing.assert_array_equal(a.spectral_values, b.spectral_values)
    assert (a.mode, a.backend, a.spectral_unit, a.n_iter) == \
        (b.mode, b.backend, b.spectral_unit, b.n_iter)
    assert a.reconstruction_err == b.reconstruction_err
    assert a.summary == b.summary and a.params == b.params


# -- round trips --------------------------------------------------------------------


def test_bundle_round_trip_of_an_nnls_result(tmp_path, sample, fitted):
    path = write_result_bundle(tmp_path / "fit", fitted, SHAPE)
    assert path == tmp_path / "fit.npz" and path.is_file()
    b = read_result_bundle(path)
    assert isinstance(b, ResultBundle)
    _assert_same(b.result, fitted)
    assert b.result.component_names == ["lipid", "protein", "water", "background"]
    np.testing.assert_array_equal(b.result.spectral_values, np.linspace(2800, 3100, 16))
    assert b.result.spectral_unit == "cm^-1"
    assert b.spatial_shape == SHAPE and b.mask is None
    assert not b.guessed_shape and b.notes == [] and b.path == path
    maps = b.maps()
    assert maps.shape == (4, *SHAPE)
    np.testing.assert_allclose(maps, sample.maps, atol=1e-5)  # the true maps, in place
    # the bundle is still a plain UnmixResult file
    _assert_same(UnmixResult.load(path), fitted)


def test_bundle_round_trip_of_an_nmf_result(tmp_path, sample, X):
    res = nmf(X, 3, random_state=0)
    assert res.mode == "nmf" and res.n_iter > 1
    assert res.reconstruction_err < 0.5 * np.linalg.norm(X)  # a real fit, not zeros
    b = read_result_bundle(write_result_bundle(tmp_path / "nmf.npz", res, SHAPE))
    _assert_same(b.result, res)
    assert b.result.component_names == ["C1", "C2", "C3"]
    np.testing.assert_array_equal(b.maps(), res.W.T.reshape(3, *SHAPE))


def _disk(shape):
    yy, xx = np.indices(shape)
    return (yy - shape[0] / 2) ** 2 + (xx - shape[1] / 2) ** 2 < (min(shape) / 2.5) ** 2


MASKS = {
    "disk": (SHAPE, _disk(SHAPE)),
    "checkerboard": (SHAPE, np.indices(SHAPE).sum(axis=0) % 2 == 0),
    "one pixel": (SHAPE, np.eye(1, N_PIXELS, 37, dtype=bool).reshape(SHAPE)),
    "3-D": ((2, 8, 16), np.arange(N_PIXELS).reshape(2, 8, 16) % 3 != 1),
}


@pytest.mark.parametrize("layout", sorted(MASKS))
def test_bundle_round_trip_with_a_mask(tmp_path, sample, X, layout):
    shape, mask = MASKS[layout]
    assert 0 < mask.sum() < mask.size
    res = _named(nnls(X[mask.ravel()], sample.H), sample)
    np.testing.assert_allclose(res.W, sample.W[mask.ravel()], atol=1e-5)
    path = write_result_bundle(tmp_path / "masked.npz", res, shape, mask=mask)
    with zipfile.ZipFile(path) as zf:
        assert {"layout/spatial_shape.npy", "layout/mask.npy"} <= set(zf.namelist())
    b = read_result_bundle(path)
    _assert_same(b.result, res)
    assert b.spatial_shape == shape and not b.guessed_shape
    assert b.mask.dtype == bool and b.mask.shape == shape
    np.testing.assert_array_equal(b.mask, mask)
    maps = b.maps()
    assert maps.shape == (4, *shape)
    assert np.isnan(maps[:, ~mask]).all()
    np.testing.assert_array_equal(maps[:, mask], res.W.T)  # C order: pixel i -> i-th True


@pytest.mark.parametrize("shape", [(N_PIXELS,), (4, 4, 16), (2, 2, 4, 16)])
def test_bundle_keeps_1d_and_nd_layouts(tmp_path, fitted, shape):
    b = read_result_bundle(write_result_bundle(tmp_path / "r.npz", fitted, shape))
    assert b.spatial_shape == shape and b.mask is None
    np.testing.assert_array_equal(b.maps(), fitted.W.T.reshape(4, *shape))


def test_layouts_that_do_not_fit_are_refused_and_nothing_is_written(tmp_path, fitted):
    target = tmp_path / "bad.npz"
    with pytest.raises(ValueError, match="has 255 pixels but the result's W has 256 rows"):
        write_result_bundle(target, fitted, (15, 17))
    with pytest.raises(ValueError, match="must be a tuple of positive sizes"):
        write_result_bundle(target, fitted, (0, 256))
    with pytest.raises(ValueError, match="mask must be a bool array of shape"):
        write_result_bundle(target, fitted, (32, 32), mask=np.ones((32, 32), dtype=np.uint8))
    with pytest.raises(ValueError, match="mask selects 1024 pixels but the result's W has 256"):
        write_result_bundle(target, fitted, (32, 32), mask=np.ones((32, 32), dtype=bool))
    with pytest.raises(TypeError, match="must be an UnmixResult"):
        write_result_bundle(target, {"W": fitted.W}, SHAPE)
    assert list(tmp_path.iterdir()) == []


def test_a_plain_result_file_without_a_layout_gets_a_guessed_shape(tmp_path, sample, X):
    square = read_result_bundle(nnls(X, sample.H).save(tmp_path / "square.npz"))
    assert square.guessed_shape and square.spatial_shape == SHAPE
    assert len(square.notes) == 1 and "a square image of 16 x 16 pixels" in square.notes[0]
    row = read_result_bundle(nnls(X[:240], sample.H).save(tmp_path / "row.npz"))
    assert row.guessed_shape and row.spatial_shape == (1, 240)
    assert "one row of 240 pixels" in row.notes[0]


# -- what is a result ---------------------------------------------------------------


def test_is_result_bundle(tmp_path, sample, fitted):
    bundle = write_result_bundle(tmp_path / "bundle.npz", fitted, SHAPE)
    folder = tmp_path / "folder"
    write_analysis_outputs(folder, fitted, SHAPE)
    plain = fitted.save(tmp_path / "plain.npz")
    rng = np.random.default_rng(3)
    np.savez(tmp_path / "random.npz", a=rng.random((4, 5)), b=rng.random(7))
    np.savez(tmp_path / "looks_like_one.npz", W=fitted.W, H=fitted.H)  # no metadata
    np.savez(tmp_path / "stack.npz", stack=sample.stack)
    plain_dir = tmp_path / "slices"
    plain_dir.mkdir()
    for c in range(3):
        tifffile.imwrite(plain_dir / f"ch{c}.tif", sample.stack[c])
    other_json = tmp_path / "other_json"
    other_json.mkdir()
    (other_json / "result.json").write_text(json.dumps({"format": "something else"}))
    fitted.save(other_json / "result.npz")

    assert is_result_bundle(bundle) and is_result_bundle(str(bundle))
    assert is_result_bundle(folder) and is_result_bundle(folder / "result.npz")
    assert is_result_bundle(plain)
    for not_one in ("random.npz", "looks_like_one.npz", "stack.npz", "slices", "other_json",
                    "missing.npz", "missing_dir"):
        assert not is_result_bundle(tmp_path / not_one), not_one
    assert not is_result_bundle(folder / "maps.tif")
    # and the stack reader agrees
    np.testing.assert_array_equal(open_stack(tmp_path / "stack.npz").data, sample.stack)
    assert open_stack(plain_dir).data.shape == (3, *SHAPE)
    for result in (bundle, folder):
        with pytest.raises(ValueError, match="napari-unmix result"):
            open_stack(result)


# -- the result folder --------------------------------------------------------------


def test_write_analysis_outputs_writes_the_documented_files(tmp_path, sample, fitted):
    out = tmp_path / "run"
    files = write_analysis_outputs(out, fitted, SHAPE, extra={"input": "cells.tif"})
    assert OUTPUT_NAMES == {"maps": "maps.tif", "spectra": "spectra.csv",
                            "composite": "composite.png", "json": "result.json",
                            "bundle": "result.npz"}
    assert sorted(p.name for p in out.iterdir()) == sorted(OUTPUT_NAMES.values())
    assert set(files) == set(OUTPUT_NAMES)
    for kind, name in OUTPUT_NAMES.items():
        written = files[kind]
        assert (written == [out / name]) if kind == "composite" else (written == out / name)

    doc = json.loads((out / "result.json").read_text(encoding="utf-8"))
    assert doc["format"] == RESULT_JSON_FORMAT == "napari-unmix-result-summary"
    assert doc["spatial_shape"] == [16, 16] and doc["input"] == "cells.tif"
    assert doc["files"] == {"maps": "maps.tif", "spectra": "spectra.csv",
                            "composite": ["composite.png"], "bundle": "result.npz",
                            "json": "result.json"}
    assert doc["n_pixels"] == N_PIXELS and doc["n_components"] == 4 and doc["n_channels"] == 16
    assert doc["component_names"] == ["lipid", "protein", "water", "background"]
    assert doc["spectral_unit"] == "cm^-1" and doc["spectral_range"] == [2800.0, 3100.0]

    maps, names = read_maps_tiff(out / "maps.tif")
    assert names == ["lipid", "protein", "water", "background"] and maps.dtype == np.float32
    np.testing.assert_array_equal(maps, fitted.maps(SHAPE).astype(np.float32))
    np.testing.assert_allclose(maps, sample.maps, atol=1e-5)
    table = read_spectra_csv(out / "spectra.csv")
    np.testing.assert_array_equal(table.axis, np.linspace(2800, 3100, 16))
    np.testing.assert_array_equal(table.values, fitted.H.astype(np.float64))
    assert table.axis_name == "wavenumber (cm^-1)"
    assert list(table.names) == names
    png = (out / "composite.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert int.from_bytes(png[16:20], "big") == 1200  # the figure, 6 in at 200 dpi

    b = read_result_bundle(out)
    assert b.path == out and b.spatial_shape == SHAPE and not b.guessed_shape
    _assert_same(b.result, fitted)


def test_write_analysis_outputs_of_3d_and_1d_layouts(tmp_path, fitted):
    z = write_analysis_outputs(tmp_path / "z", fitted, (2, 8, 16))
    assert [p.name for p in z["composite"]] == ["composite_z000.png", "composite_z001.png"]
    assert not (tmp_path / "z" / "composite.png").exists()
    maps, _ = read_maps_tiff(z["maps"])
    assert maps.shape == (4, 2, 8, 16)
    np.testing.assert_array_equal(maps, fitted.maps((2, 8, 16)).astype(np.float32))
    assert read_result_bundle(tmp_path / "z").spatial_shape == (2, 8, 16)

    line = write_analysis_outputs(tmp_path / "line", fitted, (N_PIXELS,))
    assert line["composite"] == []
    assert sorted(p.name for p in (tmp_path / "line").iterdir()) == \
        ["maps.tif", "result.json", "result.npz", "spectra.csv"]
    maps, _ = read_maps_tiff(line["maps"])
    assert maps.shape == (4, 1, N_PIXELS)
    np.testing.assert_array_equal(maps[:, 0, :], fitted.W.T.astype(np.float32))
    doc = json.loads((tmp_path / "line" / "result.json").read_text(encoding="utf-8"))
    assert doc["files"]["composite"] == [] and doc["spatial_shape"] == [N_PIXELS]
    assert read_result_bundle(tmp_path / "line").spatial_shape == (N_PIXELS,)


# -- damaged bundles ----------------------------------------------------------------


def _npy(array) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.asarray(array))
    return buf.getvalue()


def _replace_member(src: Path, dst: Path, member: str, data: bytes) -> Path:
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        assert member in zin.namelist()
        for info in zin.infolist():
            zout.writestr(info, data if info.filename == member else zin.read(info))
    return dst


def _meta(path: Path) -> dict:
    with np.load(path) as z:
        return json.loads(str(z["meta"][()]))


def _damage(kind: str, good: Path, tmp_path: Path) -> Path:
    raw = good.read_bytes()
    bad = tmp_path / f"{kind}.npz"
    if kind == "truncated":
        bad.write_bytes(raw[: len(raw) // 2])
    elif kind == "end cut off":
        bad.write_bytes(raw[:-10])
    elif kind == "empty":
        bad.write_bytes(b"")
    elif kind == "bad CRC":
        damaged = bytearray(raw)
        at = raw.index(b"W.npy") + 200  # inside W's data
        damaged[at:at + 8] = b"\xff" * 8
        bad.write_bytes(bytes(damaged))
    elif kind == "metadata key missing":
        meta = _meta(good)
        del meta["mode"]
        _replace_member(good, bad, "meta.npy", _npy(json.dumps(meta)))
    elif kind == "shape does not fit":
        _replace_member(good, bad, "layout/spatial_shape.npy", _npy(np.array([5, 5], np.int64)))
    elif kind == "metadata not JSON":
        _replace_member(good, bad, "meta.npy", _npy("{not json"))
    elif kind == "W not an npy":
        _replace_member(good, bad, "W.npy", b"garbage, not an npy array")
    else:
        raise AssertionError(kind)
    return bad


# kind -> (is_result_bundle, the message of the ValueError, with {path} for the file)
DAMAGED = {
    "truncated": (False, "{path} is not a napari-unmix result file (no W, H and metadata)."),
    "end cut off": (False, "{path} is not a napari-unmix result file (no W, H and metadata)."),
    "empty": (False, "{path} is not a napari-unmix result file (no W, H and metadata)."),
    "bad CRC": (True, "{path} could not be read as a napari-unmix result: BadZipFile: "
                      "Bad CRC-32 for file 'W.npy'"),
    "metadata key missing": (True, "{path} could not be read as a napari-unmix result: "
                                   "KeyError: 'mode'"),
    "shape does not fit": (True, "{path}: spatial_shape (5, 5) has 25 pixels but the result's "
                                 "W has 256 rows; give the shape of the analysed stack (and "
                                 "its mask, if only some pixels were analysed)."),
}


@pytest.mark.parametrize("kind", list(DAMAGED))
def test_a_damaged_bundle_gives_one_clear_value_error(tmp_path, fitted, kind):
    good = write_result_bundle(tmp_path / "good.npz", fitted, SHAPE)
    bad = _damage(kind, good, tmp_path)
    detected, message = DAMAGED[kind]
    assert is_result_bundle(bad) is detected  # cheap: a CRC error is only seen on reading
    with pytest.raises(ValueError) as info:
        read_result_bundle(bad)
    assert type(info.value) is ValueError  # not BadZipFile, KeyError, JSONDecodeError ...
    assert str(info.value) == message.format(path=bad)
    assert read_result_bundle(good).spatial_shape == SHAPE  # the good one still reads
    if not detected:  # not recognised as a result: the stack reader reports it instead
        with pytest.raises(ValueError, match=r"could not be read as a \.npz file"):
            open_stack(bad)


# These two raised a ValueError whose message did not name the file (the error came
# from UnmixResult.load in core, re-raised as it was); UnmixResult.load now names the
# file of every failure (issue 14, item 7).
def test_a_bundle_with_metadata_that_is_not_json(tmp_path, fitted):
    bad = _damage("metadata not JSON", write_result_bundle(tmp_path / "g.npz", fitted, SHAPE),
                  tmp_path)
    assert is_result_bundle(bad)
    with pytest.raises(ValueError, match="Expecting property name") as info:
        read_result_bundle(bad)
    assert type(info.value) is ValueError
    assert str(info.value).startswith(f"{bad} could not be read as a napari-unmix result: ")


def test_a_bundle_whose_W_is_not_an_npy_array(tmp_path, fitted):
    bad = _damage("W not an npy", write_result_bundle(tmp_path / "g.npz", fitted, SHAPE),
                  tmp_path)
    assert is_result_bundle(bad)
    with pytest.raises(ValueError) as info:
        read_result_bundle(bad)
    assert type(info.value) is ValueError
    assert str(info.value) == (f"{bad} could not be read as a napari-unmix result: W () and "
                               "H (4, 16) are not (n_pixels, k) and (k, n_channels).")


def test_a_damaged_result_folder_gives_one_clear_value_error(tmp_path, fitted):
    out = tmp_path / "run"
    write_analysis_outputs(out, fitted, SHAPE)
    npz = out / "result.npz"
    raw = npz.read_bytes()

    npz.write_bytes(raw[: len(raw) // 3])  # truncated arrays
    assert is_result_bundle(out)  # the cheap check looks at result.json and the file name
    with pytest.raises(ValueError) as info:
        read_result_bundle(out)
    assert type(info.value) is ValueError
    assert str(info.value) == f"{npz} is not a napari-unmix result file (no W, H and metadata)."

    npz.unlink()  # arrays gone
    assert not is_result_bundle(out)
    with pytest.raises(ValueError) as info:
        read_result_bundle(out)
    assert str(info.value) == (f"result folder {out} has no result.npz (the result arrays); "
                               "it cannot be opened without it.")

    npz.write_bytes(raw)
    assert read_result_bundle(out).spatial_shape == SHAPE
    (out / "result.json").write_text('{"format": "napari-unmix-result-sum')  # cut short
    assert not is_result_bundle(out)
    with pytest.raises(ValueError) as info:
        read_result_bundle(out)
    assert type(info.value) is ValueError
    assert str(info.value) == (f"{out} is not a napari-unmix result folder: it has no "
                               "result.json with format 'napari-unmix-result-summary'.")
