"""Issue 14, items 3, 7 and the input cases of 10: every bad input gets one clear line.

Each test here failed on the code before the fix (checked against a worktree of that
commit).  On the command line a bad input is exactly one ``napari-unmix: error:`` line
that names the input and says what to do, exit status 2, no traceback; in the library
it is one ``ValueError`` naming the file.  A sidecar never re-orients a stack
silently.
"""

from __future__ import annotations

import json
import logging
import struct
import tracemalloc
import zipfile

import numpy as np
import pytest
import tifffile

from napari_unmix._napari.reader import get_reader
from napari_unmix.cli import main
from napari_unmix.core import AnalysisConfig, SeriesResult, UnmixResult, unmix_series
from napari_unmix.core.init import resolve_random_state
from napari_unmix.core.nmf import nmf
from napari_unmix.core.nnls import nnls
from napari_unmix.io import open_stack, write_stack_tiff

READER_LOG = "napari_unmix._napari.reader"


@pytest.fixture
def cube():
    return np.random.default_rng(0).random((6, 10, 12)).astype(np.float32)  # (C, Y, X)


def cli_error(capsys, argv) -> str:
    """Run the CLI, check it failed with one clean error line, return that line."""
    rc = main([str(a) for a in argv] + ["--no-progress"])
    out, err = capsys.readouterr()
    errors = [line for line in err.splitlines() if line.startswith("napari-unmix: error:")]
    assert rc == 2, (rc, out, err)
    assert len(errors) == 1, err
    assert "Traceback" not in err + out
    return errors[0]


def cli_ok(capsys, argv) -> tuple[str, str]:
    rc = main([str(a) for a in argv] + ["--no-progress"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert "napari-unmix: error" not in err
    return out, err


# -- item 3: a sidecar never re-orients a stack silently -----------------------------------


def test_sidecar_that_fits_another_axis_of_a_bare_npy_is_a_flagged_guess(tmp_path, capsys):
    """(16, 12, 10) .npy + a 10-value sidecar: was axis 2, "not guessed", no note."""
    np.save(tmp_path / "s.npy", np.random.default_rng(1).random((16, 12, 10)))
    (tmp_path / "s.spectral.csv").write_text("\n".join(str(800 + i) for i in range(10)))
    s = open_stack(tmp_path / "s.npy")
    assert s.spectral_axis == 2 and s.guessed
    [note] = [n for n in s.notes if "guessed" in n]
    assert "axis 2" in note and "s.spectral.csv" in note and "spectral_axis" in note
    # the command line says so, with its own flag
    out, err = cli_ok(capsys, ["run", tmp_path / "s.npy", "--mode", "pca", "-k", "2",
                               "--out", tmp_path / "out"])
    assert "s.spectral.csv" in err and "--spectral-axis" in err


def test_sidecar_that_fits_only_a_spatial_axis_of_a_tiff_is_an_error(tmp_path, capsys, cube):
    """A TIFF whose metadata says Y and X are spatial: a sidecar fitting X was taken as
    the spectral axis."""
    tifffile.imwrite(tmp_path / "s.tif", cube, metadata=None)  # axes IYX: I is a guess
    (tmp_path / "s.spectral.csv").write_text("\n".join(str(i) for i in range(12)))
    with pytest.raises(ValueError) as info:
        open_stack(tmp_path / "s.tif")
    msg = str(info.value)
    assert "s.spectral.csv" in msg and "12 values" in msg and "s.tif" in msg
    assert "axis 2 (X)" in msg and "spatial" in msg
    line = cli_error(capsys, ["run", tmp_path / "s.tif", "--mode", "pca", "-k", "2",
                              "--out", tmp_path / "out"])
    assert "s.spectral.csv" in line and "12 values" in line


def test_sidecar_that_fits_several_axes_none_of_them_the_default_is_an_error(tmp_path):
    np.save(tmp_path / "s.npy", np.zeros((12, 6, 6)) + 1.0)
    (tmp_path / "s.spectral.csv").write_text("\n".join(str(i) for i in range(6)))
    with pytest.raises(ValueError, match=r"s\.spectral\.csv has 6 values.*axes 1 and 2"
                                         r".*spectral_axis"):
        open_stack(tmp_path / "s.npy")


def test_sidecar_that_does_not_fit_the_metadata_axis_names_the_axis_that_fits(tmp_path, cube):
    path = write_stack_tiff(tmp_path / "s.tif", cube, axes="CYX")
    (tmp_path / "s.spectral.csv").write_text("\n".join(str(i) for i in range(12)))
    with pytest.raises(ValueError) as info:
        open_stack(path)
    msg = str(info.value)
    assert "axis 0 (C), 6 channels" in msg and "axis 2 (X)" in msg


def test_napari_reader_does_not_open_a_stack_whose_sidecar_disagrees(tmp_path, caplog, cube):
    tifffile.imwrite(tmp_path / "s.tif", cube, metadata=None)
    (tmp_path / "s.spectral.csv").write_text("\n".join(str(i) for i in range(12)))
    reader = get_reader(str(tmp_path / "s.tif"))
    assert reader is not None
    with caplog.at_level(logging.WARNING, logger=READER_LOG):
        assert reader(str(tmp_path / "s.tif")) is None
    msgs = [r.getMessage() for r in caplog.records if r.name == READER_LOG]
    assert any("s.spectral.csv" in m and "12 values" in m for m in msgs)


# -- item 7: one-line errors instead of tracebacks -----------------------------------------


@pytest.fixture
def npy(tmp_path):
    stack = np.random.default_rng(2).random((10, 12, 16)).astype(np.float32)
    path = tmp_path / "t.npy"
    np.save(path, stack)
    return path


def test_bogus_device_is_refused_before_the_fit(tmp_path, capsys, npy):
    line = cli_error(capsys, ["run", npy, "--mode", "nmf", "-k", "2", "--device", "bogus",
                              "--out", tmp_path / "o"])
    assert "--device" in line and "'bogus'" in line and "cpu" in line
    assert not (tmp_path / "o").exists()
    with pytest.raises(ValueError, match="device='bogus'"):
        AnalysisConfig(mode="nmf", n_components=2, device="bogus")


@pytest.mark.requires_torch
def test_bogus_device_with_a_torch_backend(tmp_path, capsys, npy):
    from napari_unmix.core.device import resolve_device

    cli_error(capsys, ["run", npy, "--mode", "nmf", "-k", "2", "--backend", "torch",
                       "--device", "cuda:x", "--out", tmp_path / "o"])
    with pytest.raises(ValueError, match="device='cuda:x'"):
        resolve_device("cuda:x")


@pytest.mark.parametrize("content", [b"", b"\x93NUMPY", b"not a numpy file"])
def test_damaged_labels_npy(tmp_path, capsys, npy, content):
    (tmp_path / "lab.npy").write_bytes(content)
    line = cli_error(capsys, ["run", npy, "--mode", "seeded-nmf", "--labels",
                              tmp_path / "lab.npy", "--out", tmp_path / "o"])
    assert "lab.npy" in line


def test_flat_background_with_every_default_name_taken(tmp_path, capsys, npy):
    """Columns background, flat background and flat + --flat-background: StopIteration."""
    names = ["background", "flat background", "flat"]
    rows = [f"{i}," + ",".join(str(1.0 + j * i) for j in range(3)) for i in range(10)]
    (tmp_path / "h.csv").write_text("x," + ",".join(names) + "\n" + "\n".join(rows))
    cli_ok(capsys, ["run", npy, "--mode", "nnls", "--spectra", tmp_path / "h.csv",
                    "--flat-background", "--out", tmp_path / "o"])
    spectra = (tmp_path / "o" / "spectra.csv").read_text().splitlines()[0]
    assert "flat background 2" in spectra


def test_result_folder_with_a_damaged_result_json_as_input(tmp_path, capsys, npy):
    cli_ok(capsys, ["run", npy, "--mode", "nmf", "-k", "2", "--random-state", "0",
                    "--out", tmp_path / "res"])
    (tmp_path / "res" / "result.json").write_text('{"format": "napari-unm')
    line = cli_error(capsys, ["run", tmp_path / "res", "--mode", "nmf", "-k", "2",
                              "--out", tmp_path / "o2"])
    assert "result.json" in line and "stack" in line
    with pytest.raises(ValueError, match="result.json"):
        open_stack(tmp_path / "res")


@pytest.fixture
def saved(tmp_path):
    rng = np.random.default_rng(3)
    res = UnmixResult(W=rng.random((20, 2)), H=rng.random((2, 5)), mode="nmf",
                      backend="sklearn", device="cpu", n_iter=3, reconstruction_err=0.5)
    return res.save(tmp_path / "r.npz")


def _edit_meta(path, edit):
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(str(arrays["meta"][()]))
    arrays["meta"] = np.array(edit(meta))
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)


@pytest.mark.parametrize("damage", ["truncate", "garbage-meta", "no-mode", "meta-list",
                                    "no-W", "bad-summary"])
def test_unmix_result_load_of_a_damaged_file_names_it(saved, damage):
    if damage == "truncate":
        saved.write_bytes(saved.read_bytes()[:200])
    elif damage == "garbage-meta":
        _edit_meta(saved, lambda m: '{"format": "napari-unmix-result", ')
    elif damage == "no-mode":
        _edit_meta(saved, lambda m: json.dumps({k: v for k, v in m.items() if k != "mode"}))
    elif damage == "meta-list":
        _edit_meta(saved, lambda m: json.dumps([1, 2]))
    elif damage == "bad-summary":
        _edit_meta(saved, lambda m: json.dumps({**m, "summary": [1, 2]}))
    else:
        with np.load(saved, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files if k != "W"}
        with open(saved, "wb") as fh:
            np.savez(fh, **arrays)
    with pytest.raises(ValueError, match=r"r\.npz"):
        UnmixResult.load(saved)


@pytest.mark.parametrize("damage", ["truncate", "no-strategy", "garbage"])
def test_series_result_load_of_a_damaged_file_names_it(tmp_path, damage):
    stack = np.random.default_rng(4).random((2, 5, 4, 4)).astype(np.float32)
    res = unmix_series(stack, AnalysisConfig(mode="nmf", n_components=2, random_state=0))
    path = res.save(tmp_path / "s.npz")
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[:300])
    elif damage == "garbage":
        path.write_bytes(b"PK\x03\x04" + b"\x00" * 50)
    else:
        _edit_meta(path, lambda m: json.dumps({k: v for k, v in m.items()
                                               if k != "strategy"}))
    with pytest.raises(ValueError, match=r"s\.npz"):
        SeriesResult.load(path)


@pytest.mark.parametrize("text", ["{bad", "[1, 2]", '{"mode": "nmf", "n_components": 2.7}',
                                  '{"mode": "nmf", "bogus": 1}', "\xff\xfe"])
def test_broken_config_json_names_the_file(tmp_path, capsys, npy, text):
    (tmp_path / "cfg.json").write_bytes(text.encode("latin-1"))
    line = cli_error(capsys, ["run", npy, "--config", tmp_path / "cfg.json",
                              "--out", tmp_path / "o"])
    assert "cfg.json" in line


# -- item 10: the smaller input cases --------------------------------------------------------


def test_big_endian_float32_is_converted_to_native(tmp_path, cube):
    big = cube.astype(">f4")
    np.save(tmp_path / "be.npy", big)
    tifffile.imwrite(tmp_path / "be.tif", big, byteorder=">", metadata={"axes": "CYX"})
    for path in (tmp_path / "be.npy", tmp_path / "be.tif"):
        for lazy in (False, True):
            s = open_stack(path, lazy=lazy)
            assert s.data.dtype == np.float32 and s.data.dtype.isnative, (path, lazy)
            np.testing.assert_array_equal(np.asarray(s.data), cube)
    X = cube.reshape(6, -1).T.astype(">f4")
    H = np.random.default_rng(0).random((2, 6)).astype(">f4")
    r = nmf(X, 2, W0=X[:, :2] + 0.1, H0=H, solver="cd", max_iter=500, tol=0.1, random_state=0)
    assert r.W.dtype == np.float32
    r = nnls(X, H)
    assert r.W.dtype.isnative


@pytest.mark.requires_torch
def test_big_endian_float32_on_a_torch_solver(cube):
    X = cube.reshape(6, -1).T.astype(">f4")
    H = np.random.default_rng(0).random((2, 6)).astype(">f4")
    r = nnls(X, H, solver="fista", backend="torch", device="cpu")
    assert r.W.dtype == np.float32


def test_random_state_of_2_to_the_32_is_refused_where_it_is_resolved(tmp_path, capsys, npy):
    assert resolve_random_state(2**32 - 1) == 2**32 - 1
    for bad in (2**32, 2**64):
        with pytest.raises(ValueError, match=r"random_state must be .*4294967295"):
            resolve_random_state(bad)
        with pytest.raises(ValueError, match="random_state"):
            AnalysisConfig(mode="nmf", n_components=2, random_state=bad)
    line = cli_error(capsys, ["run", npy, "--mode", "nmf", "-k", "2", "--random-state",
                              str(2**32), "--out", tmp_path / "o"])
    assert "--random-state" in line and "4294967295" in line
    assert "randomized_svd" not in line and not (tmp_path / "o").exists()


@pytest.mark.parametrize("k", [2.7, "2", True, float("nan")])
def test_non_integer_n_components_in_a_config_is_refused(k):
    with pytest.raises((ValueError, TypeError), match="n_components"):
        AnalysisConfig(mode="nmf", n_components=k)
    assert AnalysisConfig(mode="nmf", n_components=3.0).n_components == 3


def _craft_tiff(path, height, width, *, n_pages=2, compression=None):
    """A small TIFF whose header then claims pages of ``height`` x ``width``."""
    a = np.arange(n_pages * 64, dtype=np.uint16).reshape(n_pages, 8, 8)
    tifffile.imwrite(path, a, metadata=None, compression=compression)
    buf = bytearray(path.read_bytes())
    with tifffile.TiffFile(path) as tf:
        for page in tf.pages:
            for name, value in (("ImageWidth", width), ("ImageLength", height),
                                ("RowsPerStrip", height)):
                tag = page.tags.get(name)
                if tag is not None:
                    struct.pack_into("<" + {3: "H", 4: "I"}[tag.dtype], buf, tag.valueoffset,
                                     value)
    path.write_bytes(bytes(buf))
    return path


def test_crafted_tiff_header_is_refused_before_any_allocation(tmp_path, capsys):
    path = _craft_tiff(tmp_path / "big.tif", 16384, 16384)  # claims 1 GiB in 1 kB
    tracemalloc.start()
    try:
        with pytest.raises(ValueError) as info:
            open_stack(path, lazy=False)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 32 * 2**20, f"{peak / 2**20:.0f} MiB allocated before refusing"
    msg = str(info.value)
    assert "big.tif" in msg and "(2, 16384, 16384)" in msg and "1.07 GB" in msg
    with pytest.raises(ValueError, match="big.tif"):
        open_stack(path, lazy=True)
    line = cli_error(capsys, ["run", path, "--mode", "pca", "-k", "2", "--out", tmp_path / "o"])
    assert "big.tif" in line


def test_compressed_tiff_larger_than_memory_is_refused(tmp_path, monkeypatch):
    from napari_unmix.io import lazy

    path = tmp_path / "z.tif"
    tifffile.imwrite(path, np.zeros((5, 64, 64), np.uint16), compression="zlib",
                     metadata={"axes": "CYX"})
    monkeypatch.setattr(lazy, "available_memory", lambda: 10_000)
    with pytest.raises(ValueError, match=r"z\.tif.*memory"):
        open_stack(path, lazy=False)
    assert open_stack(path, lazy=True).lazy  # read on demand: no need to fit in memory


def test_npz_member_whose_header_claims_more_than_the_archive_holds(tmp_path):
    path = tmp_path / "s.npz"
    np.savez(path, stack=np.zeros((2, 4, 4), np.float32))
    with zipfile.ZipFile(path) as zf:
        raw = zf.read("stack.npy")
    header_end = raw.index(b"\n") + 1
    header = raw[:header_end].replace(b"(2, 4, 4)", b"(2, 40000, 40000)")
    header = header[:-1].ljust(header_end - 1) + b"\n" if len(header) < header_end else header
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("stack.npy", header + raw[header_end:])
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=r"s\.npz"):
            open_stack(path, lazy=False)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 32 * 2**20


def test_multi_series_note_names_the_cli_option_and_the_option_works(tmp_path, capsys, cube):
    path = tmp_path / "m.tif"
    with tifffile.TiffWriter(path) as tw:
        tw.write(cube, photometric="minisblack", metadata={"axes": "CYX"})
        tw.write(cube[:3], photometric="minisblack", metadata={"axes": "CYX"})
    s = open_stack(path)
    assert any("series=" in n for n in s.notes)
    out, err = cli_ok(capsys, ["run", path, "--mode", "pca", "-k", "2", "--out", tmp_path / "a"])
    assert "--series N" in err and "series=" not in err
    out, err = cli_ok(capsys, ["run", path, "--series", "1", "--mode", "pca", "-k", "2",
                               "--out", tmp_path / "b"])
    assert "3 channels" in out
    line = cli_error(capsys, ["run", path, "--series", "5", "--mode", "pca", "-k", "2",
                              "--out", tmp_path / "c"])
    assert "--series 5" in line and "m.tif" in line


# -- found by the property-based tests (test_inputs_fuzz.py) and their follow-ups ------------


def test_lazy_tiff_page_that_cannot_be_decoded_names_the_file(tmp_path):
    """A page whose compression tag is damaged: computing the lazy stack raised tifffile's
    ValueError '0 is not a known COMPRESSION', without the file."""
    path = tmp_path / "z.tif"
    tifffile.imwrite(path, np.ones((4, 6, 6), np.uint16), compression="zlib",
                     photometric="minisblack", metadata={"axes": "CYX"})
    buf = bytearray(path.read_bytes())
    with tifffile.TiffFile(path) as tf:
        tag = tf.pages[0].tags["Compression"]  # the key frame: every page is read like it
        struct.pack_into("<H", buf, tag.valueoffset, 0)
    path.write_bytes(bytes(buf))
    s = open_stack(path, lazy=True)
    with pytest.raises(ValueError, match=r"z\.tif: page \d could not be read.*COMPRESSION"):
        np.asarray(s.data)
    with pytest.raises(ValueError, match=r"z\.tif"):
        open_stack(path, lazy=False)


@pytest.mark.parametrize("field, value", [
    ("tol", "x"), ("tol", -1), ("max_iter", 2.5), ("max_iter", "10"), ("overwrite", "yes"),
    ("standardize", "no"), ("residual_score", 1), ("solver", 5), ("backend", None),
    ("spectral_unit", 5), ("format_version", "x"), ("components", "abc"),
    ("components", [1]), ("preprocessing", [1])])
def test_config_fields_of_the_wrong_type_are_refused_naming_the_file(tmp_path, field, value):
    """'no' for standardize was taken as True, tol 'x' failed deep inside numpy ..."""
    doc = {"mode": "pca" if field == "standardize" else "nmf", "n_components": 2, field: value}
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(ValueError) as info:
        AnalysisConfig.load(path)
    assert str(path) in str(info.value) and field in str(info.value)


@pytest.mark.parametrize("argv, flag", [(["--size", "4"], "--size"),
                                         (["--channels", "2"], "--channels")])
def test_demo_sizes_the_sample_cannot_have_name_the_flag(tmp_path, capsys, argv, flag):
    rc = main(["demo", *argv, "--out", str(tmp_path / "d"), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err
    [line] = [x for x in err.splitlines() if ": error:" in x]
    assert flag in line and "at least" in line


def test_result_folder_as_input_says_what_to_give_on_the_command_line(tmp_path, capsys, npy):
    cli_ok(capsys, ["run", npy, "--mode", "nmf", "-k", "2", "--out", tmp_path / "res"])
    line = cli_error(capsys, ["run", tmp_path / "res", "--mode", "nmf", "-k", "2",
                              "--out", tmp_path / "o"])
    assert "give the stack it was made from" in line and "--config" in line
    assert "napari_unmix.io" not in line
