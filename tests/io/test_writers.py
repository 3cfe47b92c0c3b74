"""Writers: round trips, formats, and atomicity under injected failures."""

from __future__ import annotations

import json
import os
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest
import tifffile

from napari_unmix.core import UnmixResult, nnls
from napari_unmix.io import (
    open_stack,
    read_maps_tiff,
    read_spectra_csv,
    unit_from_header,
    write_analysis_outputs,
    write_composite_png,
    write_maps_tiff,
    write_result_json,
    write_spectra_csv,
    write_stack_tiff,
)
from napari_unmix.io import results as results_mod
from napari_unmix.io import tables as tables_mod

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


@pytest.fixture
def maps():
    return np.random.default_rng(0).random((3, 9, 11)).astype(np.float64)


@pytest.fixture
def spectra():
    nu = np.linspace(2800, 3100, 7)
    H = np.random.default_rng(1).random((3, 7))
    return H, nu


@pytest.fixture
def result():
    rng = np.random.default_rng(2)
    H = rng.random((2, 5)) + 0.1
    W = rng.random((12, 2))
    return nnls(W @ H, H)


# -- maps -----------------------------------------------------------------------------


def test_maps_tiff_round_trip(tmp_path, maps):
    path = write_maps_tiff(tmp_path / "m.tif", maps, ["lipid", "protein", "water"])
    back, names = read_maps_tiff(path)
    assert back.dtype == np.float32 and back.shape == maps.shape
    np.testing.assert_array_equal(back, maps.astype(np.float32))
    assert names == ["lipid", "protein", "water"]
    with tifffile.TiffFile(path) as tf:  # what Fiji sees: one labelled page each
        assert len(tf.pages) == 3
        assert tf.imagej_metadata["Labels"] == ["lipid", "protein", "water"]


def test_maps_tiff_single_component_and_default_names(tmp_path, maps):
    back, names = read_maps_tiff(write_maps_tiff(tmp_path / "m.tif", maps[:1]))
    assert back.shape == (1, 9, 11) and names == ["C1"]


def test_maps_tiff_3d_spatial(tmp_path):
    m = np.random.default_rng(3).random((2, 4, 5, 6))
    back, names = read_maps_tiff(write_maps_tiff(tmp_path / "m.tif", m, ["a", "b"]))
    np.testing.assert_array_equal(back, m.astype(np.float32))
    assert names == ["a", "b"]


def test_maps_tiff_4d_spatial_is_a_tzcyx_hyperstack(tmp_path):
    # a (T, Z, C, Y, X) stack's maps: before, T and Z were folded into 6 slices of one
    # axis, so Fiji and read_maps_tiff lost which plane was which frame
    m = np.random.default_rng(4).random((2, 2, 3, 5, 6))
    path = write_maps_tiff(tmp_path / "m.tif", m, ["a", "b"],
                           pixel_size=((1.0, 2.0, 0.5, 0.5), ("s", "um", "um", "um")))
    with tifffile.TiffFile(path) as tf:
        assert tf.series[0].axes == "TZCYX" and tf.series[0].shape == (2, 3, 2, 5, 6)
        assert tf.imagej_metadata["spacing"] == 2.0 and tf.imagej_metadata["unit"] == "um"
    back, names = read_maps_tiff(path)
    np.testing.assert_array_equal(back, m.astype(np.float32))
    assert names == ["a", "b"]
    one_frame, _ = read_maps_tiff(write_maps_tiff(tmp_path / "f.tif", m[:, :1]))
    np.testing.assert_array_equal(one_frame, m[:, 0].astype(np.float32))


def test_maps_tiff_checks_its_input(tmp_path, maps):
    with pytest.raises(ValueError, match="name"):
        write_maps_tiff(tmp_path / "m.tif", maps, ["a"])
    with pytest.raises(ValueError, match="shape"):
        write_maps_tiff(tmp_path / "m.tif", maps[0])


# -- spectra CSV ----------------------------------------------------------------------


def test_spectra_csv_round_trip_is_exact(tmp_path, spectra):
    H, nu = spectra
    path = write_spectra_csv(tmp_path / "h.csv", H, nu, ["a", "b, with comma", "c"], "cm^-1")
    first = path.read_text().splitlines()[0]
    assert first.startswith("wavenumber (cm^-1),a,")
    t = read_spectra_csv(path)
    np.testing.assert_array_equal(t.values, H)
    np.testing.assert_array_equal(t.axis, nu)
    assert t.names == ["a", "b, with comma", "c"]
    assert unit_from_header(t.axis_name) == "cm^-1"


@pytest.mark.parametrize("names", [
    ["#c", "b", "d"], ["a", "b", "#"], ["a\tb", "#c", "d;e"], ['a,b "q"', "x # y", 'z"#'],
    ["d;e", "b", "c"],
])
def test_spectra_csv_names_that_look_like_syntax_read_back(tmp_path, names):
    # a '#' in a name was read back as a comment (the header lost its columns)
    H = np.random.default_rng(0).random((3, 5))
    write_spectra_csv(tmp_path / "s.csv", H, np.arange(5.0), names)
    t = read_spectra_csv(tmp_path / "s.csv")
    assert t.names == names and t.axis_name == "spectral axis"
    np.testing.assert_array_equal(t.values, H)


def test_spectra_csv_names_with_line_breaks_stay_on_the_header_line(tmp_path):
    H = np.random.default_rng(0).random((2, 4))
    write_spectra_csv(tmp_path / "s.csv", H, np.arange(4.0), ["two\nlines", "b\r\nc"])
    assert read_spectra_csv(tmp_path / "s.csv").names == ["two lines", "b c"]


def test_spectra_csv_without_axis_uses_channel_index(tmp_path, spectra):
    H, _ = spectra
    path = write_spectra_csv(tmp_path / "h.csv", H)
    lines = path.read_text().splitlines()
    assert lines[0] == "channel,C1,C2,C3"
    assert [ln.split(",")[0] for ln in lines[1:]] == [str(i) for i in range(7)]
    t = read_spectra_csv(path)
    np.testing.assert_array_equal(t.axis, np.arange(7))
    assert unit_from_header(t.axis_name) is None


@pytest.mark.parametrize("text, names", [
    ("2800,1,2\n2900,3,4\n", ["spectrum 1", "spectrum 2"]),  # no header
    ("nu;x;y\n2800;1;2\n2900;3;4\n", ["x", "y"]),  # semicolons
    ("nu\tx\ty\n2800\t1\t2\n2900\t3\t4\n", ["x", "y"]),  # tabs
    ("\ufeffnu,x,y\n# a comment\n\n2800,1,2\n2900,3,4\n", ["x", "y"]),  # BOM, comment
])
def test_read_spectra_csv_variants(tmp_path, text, names):
    p = tmp_path / "s.csv"
    p.write_text(text, encoding="utf-8")
    t = read_spectra_csv(p)
    assert t.names == names
    np.testing.assert_array_equal(t.axis, [2800, 2900])
    np.testing.assert_array_equal(t.values, [[1, 3], [2, 4]])


@pytest.mark.parametrize("text, match", [
    ("", "no data"),
    ("a,b\n", "no numbers"),
    ("1\n2\n", "1 column"),
    ("1,2,3\n4,5\n", "line 2 has 2 values"),
    ("x,y\n1,2\n3,oops\n", "line 3, column 2 holds 'oops'"),
    ("x,y,z\n1,2\n3,4\n", "has 3 names but the data has 2 columns"),
])
def test_read_spectra_csv_errors_name_the_problem(tmp_path, text, match):
    p = tmp_path / "s.csv"
    p.write_text(text)
    with pytest.raises(ValueError, match=match):
        read_spectra_csv(p)


def test_spectra_csv_length_check(tmp_path, spectra):
    H, nu = spectra
    with pytest.raises(ValueError, match="7 channels"):
        write_spectra_csv(tmp_path / "h.csv", H, nu[:5])


def test_spectra_csv_refuses_values_it_could_not_read_back(tmp_path, spectra):
    # NaN or inf spectra were written, and read_spectra_csv then refused the file
    H, nu = spectra
    bad = H.copy()
    bad[1, 2], bad[2, 0] = np.nan, np.inf
    with pytest.raises(ValueError, match=r"spectra 'b', 'c' hold NaN or infinite"):
        write_spectra_csv(tmp_path / "h.csv", bad, nu, ["a", "b", "c"])
    axis = nu.copy()
    axis[3] = np.nan
    with pytest.raises(ValueError, match=r"spectral axis holds NaN .* channel\(s\) 3"):
        write_spectra_csv(tmp_path / "h.csv", H, axis)
    assert not list(tmp_path.iterdir())                      # nothing written


@pytest.mark.realdata
def test_real_dye_spectra_csv():
    path = DATA / "ssasu_dye_reference_spectra" / "fluorometer-endmembers.csv"
    if not path.exists():
        pytest.skip(f"real data not found at {path} (see ../shared/data/README.md)")
    t = read_spectra_csv(path)
    assert t.axis_name == "Wavelength"  # byte-order mark removed
    assert t.names[2] == "ATTO 520"  # names with spaces stay whole
    assert t.values.shape == (7, t.axis.size) and t.axis[0] == 415


# -- PNG ------------------------------------------------------------------------------


def test_png_round_trip(tmp_path):
    rgb = np.random.default_rng(4).random((13, 17, 3)).astype(np.float32)
    rgb[0, 0] = [np.nan, -1.0, 2.0]  # NaN -> 0, clipped
    path = write_composite_png(tmp_path / "c.png", rgb)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    back = matplotlib.image.imread(path)  # independent decoder
    expected = np.round(np.clip(np.nan_to_num(rgb), 0, 1) * 255).astype(np.uint8)
    np.testing.assert_array_equal(np.round(back * 255).astype(np.uint8), expected)
    np.testing.assert_array_equal(expected[0, 0], [0, 0, 255])


def test_png_uint8_and_bad_input(tmp_path):
    img = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    back = matplotlib.image.imread(write_composite_png(tmp_path / "c.png", img))
    np.testing.assert_array_equal(np.round(back * 255).astype(np.uint8), img)
    with pytest.raises(ValueError, match=r"\(Y, X, 3\)"):
        write_composite_png(tmp_path / "c.png", np.zeros((4, 4)))


# -- result JSON and the full output set ---------------------------------------------


def test_result_json(tmp_path, result):
    res = UnmixResult(**{**result.__dict__, "summary": {**result.summary, "odd": float("nan")}})
    path = write_result_json(tmp_path / "r.json", res, extra={"input": {"path": "x.tif"}})
    doc = json.loads(path.read_text())  # strict JSON: NaN became null
    assert doc["mode"] == "nnls" and doc["n_components"] == 2 and doc["n_pixels"] == 12
    assert doc["summary"]["odd"] is None
    assert doc["params"] == res.params
    assert doc["input"] == {"path": "x.tif"}
    assert doc["reconstruction_err"] == pytest.approx(res.reconstruction_err)


def test_write_analysis_outputs(tmp_path, result):
    import dataclasses

    res = dataclasses.replace(result, component_names=["a", "b"],
                              spectral_values=np.linspace(500, 600, 5), spectral_unit="nm")
    files = write_analysis_outputs(tmp_path / "out", res, (3, 4), colors=["#FF0000", None])
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "composite.png", "maps.tif", "result.json", "result.npz", "spectra.csv"]
    maps, names = read_maps_tiff(files["maps"])
    np.testing.assert_array_equal(maps, res.maps((3, 4)).astype(np.float32))
    assert names == ["a", "b"]
    t = read_spectra_csv(files["spectra"])
    np.testing.assert_array_equal(t.axis, res.spectral_values)
    np.testing.assert_allclose(t.values, res.H)
    back = UnmixResult.load(files["bundle"])
    np.testing.assert_array_equal(back.W, res.W)
    doc = json.loads(files["json"].read_text())
    assert doc["spatial_shape"] == [3, 4]
    assert doc["files"]["maps"] == "maps.tif"
    png = matplotlib.image.imread(files["composite"][0])
    assert png.shape[1] == 1200  # the figure: 6 in at 200 dpi, legend and scale bar
    image = png[: png.shape[0] * 3 // 4, : png.shape[1] * 3 // 4, :3]  # the maps' part
    red = (image[..., 0] > 0.9) & (image[..., 1:].max(axis=-1) < 0.1)
    assert red.mean() > 0.1, "the red component is shown"
    assert not np.any(image[..., 1:].max(axis=-1) > image[..., 0] + 0.2), \
        "only the red component is shown (white scale bar, nothing green or blue)"


def test_write_analysis_outputs_planes(tmp_path):
    rng = np.random.default_rng(5)
    H = rng.random((2, 4)) + 0.1
    res = nnls(rng.random((2 * 3 * 5, 2)) @ H, H)
    files = write_analysis_outputs(tmp_path, res, (2, 3, 5))
    assert [p.name for p in files["composite"]] == ["composite_z000.png", "composite_z001.png"]
    maps, _ = read_maps_tiff(files["maps"])
    assert maps.shape == (2, 2, 3, 5)
    files = write_analysis_outputs(tmp_path / "t", nnls(rng.random((2 * 2 * 3 * 5, 2)) @ H, H),
                                   (2, 2, 3, 5))
    maps, _ = read_maps_tiff(files["maps"])
    assert maps.shape == (2, 2, 2, 3, 5) and len(files["composite"]) == 4


# -- atomicity ------------------------------------------------------------------------


def _write_each(kind, path, maps, spectra, result):
    H, nu = spectra
    if kind == "maps":
        return write_maps_tiff(path, maps, ["a", "b", "c"])
    if kind == "stack":
        return write_stack_tiff(path, maps.astype(np.float32), axes="CYX")
    if kind == "csv":
        return write_spectra_csv(path, H, nu)
    if kind == "png":
        return write_composite_png(path, np.zeros((4, 5, 3)))
    if kind == "json":
        return write_result_json(path, result)
    raise AssertionError(kind)


def _inject_partial_write(monkeypatch, kind):
    """Make the writer of ``kind`` fail half-way, after writing some bytes."""

    class DiskFull(OSError):
        pass

    if kind in ("maps", "stack"):
        def broken_imwrite(file, *a, **k):
            Path(file).write_bytes(b"II*\x00 partial")
            raise DiskFull("disk full")
        monkeypatch.setattr(tables_mod.tifffile, "imwrite", broken_imwrite)
    elif kind == "csv":
        calls = {"n": 0}
        real = tables_mod._format_number

        def broken_format(v):
            calls["n"] += 1
            if calls["n"] > 5:
                raise DiskFull("disk full")
            return real(v)
        monkeypatch.setattr(tables_mod, "_format_number", broken_format)
    elif kind == "png":
        def broken_compress(*a, **k):
            raise DiskFull("disk full")
        monkeypatch.setattr(tables_mod.zlib, "compress", broken_compress)
    elif kind == "json":
        def broken_dump(obj, fh, **k):
            fh.write('{"mode": "nn')
            raise DiskFull("disk full")
        monkeypatch.setattr(results_mod.json, "dump", broken_dump)
    return DiskFull


KINDS = ["maps", "stack", "csv", "png", "json"]


@pytest.mark.parametrize("kind", KINDS)
def test_failure_mid_write_leaves_old_file_and_no_partial(tmp_path, monkeypatch, kind, maps,
                                                          spectra, result):
    path = tmp_path / f"out.{kind}"
    path.write_bytes(b"old content")
    error = _inject_partial_write(monkeypatch, kind)
    with pytest.raises(error):
        _write_each(kind, path, maps, spectra, result)
    assert path.read_bytes() == b"old content"
    assert os.listdir(tmp_path) == [path.name]  # no temporary file left behind


@pytest.mark.parametrize("kind", KINDS)
def test_failure_mid_write_creates_nothing(tmp_path, monkeypatch, kind, maps, spectra, result):
    error = _inject_partial_write(monkeypatch, kind)
    with pytest.raises(error):
        _write_each(kind, tmp_path / "new", maps, spectra, result)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("kind", KINDS)
def test_failure_at_rename_keeps_old_file(tmp_path, monkeypatch, kind, maps, spectra, result):
    import napari_unmix.core._files as files_mod

    path = tmp_path / "target"
    path.write_bytes(b"old content")

    def no_rename(src, dst):
        raise PermissionError("rename refused")
    monkeypatch.setattr(files_mod.os, "replace", no_rename)
    with pytest.raises(PermissionError):
        _write_each(kind, path, maps, spectra, result)
    assert path.read_bytes() == b"old content"
    assert os.listdir(tmp_path) == ["target"]


@pytest.mark.parametrize("kind", KINDS)
def test_successful_write_replaces_old_file(tmp_path, kind, maps, spectra, result):
    path = tmp_path / "target"
    path.write_bytes(b"old content")
    _write_each(kind, path, maps, spectra, result)
    assert path.read_bytes() != b"old content" and path.stat().st_size > 11
    assert os.listdir(tmp_path) == ["target"]


# -- degenerate spatial shapes: (Y, 1), (1, 1) ... ------------------------------------

@pytest.mark.parametrize("shape", [(3, 5, 1), (3, 1, 1), (3, 1, 5), (2, 4, 1, 1)])
def test_maps_of_a_length_1_spatial_axis_are_a_valid_imagej_file(tmp_path, shape):
    maps = np.random.default_rng(0).random(shape).astype(np.float32)
    path = write_maps_tiff(tmp_path / "maps.tif", maps, ["a", "b", "c"][:shape[0]])
    with tifffile.TiffFile(path) as tf:
        assert tf.imagej_metadata["images"] == len(tf.pages) == int(np.prod(shape[:-2]))
        assert tf.series[0].shape == tuple(np.moveaxis(maps, 0, -3).shape)
    got, names = read_maps_tiff(path)
    np.testing.assert_array_equal(got, maps)
    assert names == ["a", "b", "c"][:shape[0]]


def test_a_stack_of_a_length_1_spatial_axis_reads_back_whole(tmp_path):
    stack = np.random.default_rng(0).random((4, 6, 1)).astype(np.float32)
    path = write_stack_tiff(tmp_path / "s.tif", stack, spectral_values=[1.0, 2, 3, 4])
    s = open_stack(path)
    assert s.axes == "CYX" and s.spectral_axis == 0
    np.testing.assert_array_equal(s.data, stack)
    np.testing.assert_array_equal(s.spectral_values, [1.0, 2, 3, 4])


def test_run_on_a_column_stack_writes_maps_that_read_back(tmp_path, capsys):
    from napari_unmix.cli import main

    np.save(tmp_path / "col.npy", np.random.default_rng(0).random((5, 8, 1)) + 0.1)
    out = tmp_path / "out"
    assert main(["run", str(tmp_path / "col.npy"), "--spectral-axis", "0", "--mode", "nmf",
                 "-k", "2", "--max-iter", "5", "--out", str(out), "--no-progress",
                 "-q"]) == 0, capsys.readouterr().err
    assert tifffile.imread(out / "maps.tif").shape == (2, 8, 1)
    assert open_stack(out / "maps.tif").data.shape == (2, 8, 1)
