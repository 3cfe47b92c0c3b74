"""Property-based tests (Hypothesis) of the readers and the command line (issue 14).

Whatever the bytes, headers, shapes, dtypes and sidecars of an input:

* :func:`napari_unmix.io.open_stack` returns a :class:`~napari_unmix.io.StackData`
  that keeps its promises (a numeric stack of 2+ dimensions in the machine's byte
  order, a spectral axis in range, spectral positions that fit it), or raises one
  ``ValueError`` / ``FileNotFoundError`` whose message names the path; a lazy stack
  that opened computes, or fails the same way;
* the napari reader hook (:func:`napari_unmix._napari.reader.get_reader` and the
  reader it returns) never raises;
* :func:`napari_unmix.cli.main`, given argument lists drawn from the real flags of
  ``run`` and odd values, returns 0 or 2, never raises, prints at most one
  ``napari-unmix: error:`` line, no traceback and no stray Python warning.

The runs are deterministic (``derandomize=True``, no example database) and sized
for a loaded 2-core machine (``deadline=None``).
"""

from __future__ import annotations

import contextlib
import io
import json
import signal
import struct
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest
import tifffile
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from napari_unmix._napari.reader import get_reader
from napari_unmix.cli import main
from napari_unmix.cli.main import build_parser
from napari_unmix.core import MODES
from napari_unmix.io import StackData, open_stack, write_spectra_csv, write_stack_tiff

SUFFIXES = (".npy", ".npz", ".tif", ".tiff")


def fuzz(n: int):
    """Settings of every property here: ``n`` examples, deterministic, no deadline."""
    return settings(max_examples=n, deadline=None, derandomize=True, database=None,
                    suppress_health_check=list(HealthCheck), print_blob=True)


@contextlib.contextmanager
def workdir():
    with tempfile.TemporaryDirectory(prefix="unmix-fuzz-") as d:
        yield Path(d)


class Hung(BaseException):
    """Raised by the alarm when one example runs too long (no example may hang)."""


@contextlib.contextmanager
def time_limit(seconds: int):
    def alarm(signum, frame):
        raise Hung(f"still running after {seconds} s")

    old = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


# -- checks ---------------------------------------------------------------------------------


def names_path(msg: str, path: Path) -> bool:
    """The message names the path, or its spectral-axis sidecar (the file at fault)."""
    sidecars = [f"{path.name.split('.')[0]}.spectral.", "spectral_axis."]
    return str(path) in msg or path.name in msg or any(s in msg for s in sidecars)


def check_stack(s, path: Path) -> None:
    assert isinstance(s, StackData)
    data = s.data
    assert data.ndim >= 2 and data.size > 0
    assert data.dtype.kind in "biuf", data.dtype
    assert data.dtype.isnative or data.dtype.byteorder == "|", data.dtype
    assert 0 <= s.spectral_axis < data.ndim
    if s.spectral_values is not None:
        assert s.spectral_values.shape == (s.n_channels,)
        assert np.isfinite(s.spectral_values).all()
    else:
        assert s.spectral_unit is None
    assert all(isinstance(n, str) for n in s.notes)
    if s.lazy:  # a lazy stack that opened: computing it works or fails naming the file
        try:
            arr = np.asarray(data)
        except (ValueError, FileNotFoundError) as exc:
            assert type(exc) in (ValueError, FileNotFoundError), repr(exc)
            assert names_path(str(exc), path), str(exc)
        else:
            assert arr.shape == data.shape and arr.dtype == data.dtype


def check_open(path: Path, **kwargs):
    """open_stack(path): a sound StackData, or one ValueError / FileNotFoundError naming it."""
    with warnings.catch_warnings(record=True) as caught, time_limit(30):
        warnings.simplefilter("always")
        try:
            s = open_stack(path, **kwargs)
        except (ValueError, FileNotFoundError) as exc:
            assert type(exc) in (ValueError, FileNotFoundError), repr(exc)
            assert names_path(str(exc), path), str(exc)
            s = None
            event("open_stack: refused")
        else:
            check_stack(s, path)
            event("open_stack: read" + (" (guessed axis)" if s.guessed else ""))
    leaked = [f"{w.category.__name__}: {w.message}" for w in caught]
    assert not leaked, leaked
    return s


def check_hook(path: Path) -> None:
    """The napari reader hook never raises, whatever the path holds."""
    with warnings.catch_warnings(), time_limit(30):
        warnings.simplefilter("ignore")  # napari's own notifications may warn
        reader = get_reader(str(path))
        if reader is not None:
            layers = reader(str(path))
            assert layers is None or isinstance(layers, list)


def check_both(path: Path, **kwargs):
    s = check_open(path, **kwargs)
    check_hook(path)
    return s


# -- valid files to start from -----------------------------------------------------------------


def _cube(shape=(4, 5, 6), dtype=np.float32):
    return (np.arange(int(np.prod(shape))) % 7 + 1).reshape(shape).astype(dtype)


def _tiff_bytes(**kwargs) -> bytes:
    buf = io.BytesIO()
    data = kwargs.pop("data", _cube())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tifffile.imwrite(buf, data, **kwargs)
    return buf.getvalue()


def _multi_series() -> bytes:
    buf = io.BytesIO()
    with tifffile.TiffWriter(buf) as tw:
        tw.write(_cube(), photometric="minisblack", metadata={"axes": "CYX"})
        tw.write(_cube((2, 3, 4)), photometric="minisblack", metadata={"axes": "CYX"})
    return buf.getvalue()


def _npy_bytes(arr) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr)
    return buf.getvalue()


def _npz_bytes(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


#: Valid files of every kind the readers take, to truncate, mutate and re-header.
VALID = {
    ".npy": [_npy_bytes(_cube()), _npy_bytes(_cube(dtype=">f4")),
             _npy_bytes(np.asfortranarray(_cube(dtype=np.uint16)))],
    ".npz": [_npz_bytes(stack=_cube(), wavenumbers=np.linspace(800, 900, 4)),
             _npz_bytes(data=_cube(), spectral_axis_index=np.array(0),
                        spectral_unit=np.array("nm"))],
    ".tif": [
        _tiff_bytes(photometric="minisblack", metadata={"axes": "CYX"}),
        _tiff_bytes(photometric="minisblack", metadata=None, compression="zlib"),
        _tiff_bytes(imagej=True, metadata={"axes": "CYX", "Labels": ["500 nm"] * 4}),
        _tiff_bytes(ome=True, photometric="minisblack", metadata={"axes": "CYX"}),
        _tiff_bytes(photometric="minisblack", metadata={"axes": "CYX"}, tile=(16, 16)),
        _tiff_bytes(data=_cube((2, 4, 5, 6)), photometric="minisblack",
                    metadata={"axes": "ZCYX"}),
        _multi_series(),
    ],
}
VALID[".tiff"] = VALID[".tif"]


def _tiff_tag_offsets(content: bytes):
    """(value offset, struct format) of the patchable tags of a TIFF's pages."""
    offsets = []
    with tifffile.TiffFile(io.BytesIO(content)) as tf:
        for page in tf.pages:
            for tag in page.tags.values():
                fmt = {3: "<H", 4: "<I", 16: "<Q"}.get(int(tag.dtype))
                if fmt is not None and (tag.count == 1 or tag.name in (
                        "StripOffsets", "StripByteCounts", "TileOffsets", "TileByteCounts",
                        "BitsPerSample")):
                    offsets.append((tag.valueoffset, fmt))
    return offsets


TIFF_TAGS = [_tiff_tag_offsets(content) for content in VALID[".tif"]]


# -- strategies ---------------------------------------------------------------------------------


@st.composite
def damaged_bytes(draw):
    """(suffix, bytes): random bytes, a truncation or a mutation of a valid file."""
    suffix = draw(st.sampled_from(SUFFIXES))
    valid = draw(st.sampled_from(VALID[suffix]))
    kind = draw(st.sampled_from(["random", "magic+random", "truncated", "mutated", "empty"]))
    if kind == "random":
        return suffix, draw(st.binary(max_size=600))
    if kind == "magic+random":
        return suffix, valid[:8] + draw(st.binary(max_size=600))
    if kind == "truncated":
        return suffix, valid[:draw(st.integers(0, len(valid) - 1))]
    if kind == "empty":
        return suffix, b""
    data = bytearray(valid)
    for pos, byte in draw(st.lists(st.tuples(st.integers(0, len(data) - 1),
                                             st.integers(0, 255)), min_size=1, max_size=8)):
        data[pos] = byte
    return suffix, bytes(data)


@st.composite
def npy_headers(draw):
    """An .npy file whose header is drawn: any descr, fortran_order, shape, data length."""
    descr = draw(st.sampled_from(["'<f4'", "'>f4'", "'<f8'", "'|u1'", "'<i8'", "'|b1'", "'<c8'",
                                  "'<U3'", "'|O'", "'bogus'", "3", "[('a', '<f4')]", "'<m8[s]'",
                                  "'<f2'", "'>u2'"]))
    order = draw(st.sampled_from(["False", "True", "1", "'x'"]))
    dims = draw(st.lists(st.integers(-2, 70000), max_size=4))
    shape = "(" + "".join(f"{d}, " for d in dims) + ")"
    if draw(st.booleans()):
        shape = draw(st.sampled_from(["None", "'x'", "(1.5, 2)", "[3, 4]", "(2**62, 2**62)"]))
    header = f"{{'descr': {descr}, 'fortran_order': {order}, 'shape': {shape}, }}"
    if draw(st.integers(0, 9)) == 0:
        header = draw(st.text(max_size=60))
    text = header.encode("latin-1", "replace")
    pad = 64 - (10 + len(text) + 1) % 64
    text = text + b" " * pad + b"\n"
    version = draw(st.sampled_from([b"\x01\x00", b"\x02\x00", b"\x03\x00", b"\x09\x00"]))
    length = struct.pack("<H", len(text)) if version == b"\x01\x00" else \
        struct.pack("<I", len(text))
    if draw(st.integers(0, 9)) == 0:
        length = struct.pack("<H", draw(st.integers(0, 65535)))
    return b"\x93NUMPY" + version + length + text + draw(st.binary(max_size=400))


@st.composite
def tiff_headers(draw):
    """A valid TIFF with some of its tag values overwritten (sizes, offsets, formats)."""
    which = draw(st.integers(0, len(VALID[".tif"]) - 1))
    data, tags = bytearray(VALID[".tif"][which]), TIFF_TAGS[which]
    for i, value in draw(st.lists(st.tuples(st.integers(0, len(tags) - 1),
                                            st.sampled_from([0, 1, 2, 3, 5, 7, 8, 16, 32, 64,
                                                             255, 4096, 65535, 2**31, 2**32 - 1])),
                                  min_size=1, max_size=5)):
        offset, fmt = tags[i]
        size = struct.calcsize(fmt)
        struct.pack_into(fmt, data, offset, value % (1 << (8 * size)))
    return bytes(data)


DTYPES = ["bool", "uint8", "int8", "uint16", "<i2", ">u2", "int32", "uint32", "int64", "uint64",
          "float16", "float32", ">f4", "float64", ">f8", "complex64", "U3", "datetime64[s]",
          "V4", "O"]


NUMERIC = ["uint8", "uint16", ">u2", "int16", "int32", "float32", ">f4", "float64"]


@st.composite
def arrays(draw, max_dims=4, numeric=False):
    """Small arrays: mostly 2-4 numeric dimensions, sometimes empty, 0-D or odd dtypes."""
    ndim = draw(st.sampled_from([n for n in (0, 1, 2, 3, 3, 3, 4) if n <= max_dims]))
    shape = tuple(draw(st.sampled_from([1, 2, 3, 4, 5, 2, 3, 0])) for _ in range(ndim))
    dtype = np.dtype(draw(st.sampled_from(NUMERIC if numeric else DTYPES + NUMERIC)))
    n = int(np.prod(shape))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    if dtype.kind == "O":
        return np.array([None] * n, dtype=object).reshape(shape)
    if dtype.kind in "fc":
        values = rng.normal(size=n) * 10.0 ** draw(st.integers(-30, 30))
        if n and draw(st.booleans()):
            values[rng.integers(0, n)] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
        with np.errstate(all="ignore"):
            return values.astype(dtype).reshape(shape)
    if dtype.kind in "biu":
        return rng.integers(0, 100, size=n).astype(dtype).reshape(shape)
    return np.zeros(shape, dtype=dtype)


@st.composite
def sidecars(draw):
    """None, or (suffix, text) of a spectral-axis sidecar of any length and content."""
    kind = draw(st.sampled_from(["none", "none", "numbers", "json", "garbage"]))
    if kind == "none":
        return None
    n = draw(st.integers(0, 7))
    values = [draw(st.sampled_from(["800", "1e3", "-5", "nan", "inf", "x", "", "2.5e300"]))
              if draw(st.integers(0, 5)) == 0 else str(500 + 10 * i) for i in range(n)]
    if kind == "numbers":
        header = draw(st.sampled_from(["", "nm\n", "wavenumber (cm^-1)\n", "# c\n", "a,b\n"]))
        sep = draw(st.sampled_from(["\n", ",", ";", "\t"]))
        return ".csv", header + sep.join(values)
    if kind == "json":
        doc = draw(st.sampled_from([
            "list", "dict", "dict-str", "nested", "null"]))
        nums = [float(v) if v not in ("x", "") else v for v in values]
        text = {"list": json.dumps(nums), "dict": json.dumps({"values": nums, "unit": "nm"}),
                "dict-str": json.dumps({"values": "abc"}), "nested": json.dumps([[1, 2]]),
                "null": "null"}[doc]
        return ".json", text
    return draw(st.sampled_from([".csv", ".json"])), draw(st.text(max_size=80))


def write_array(path: Path, arr, *, npz_keys=(), tiff_meta=None) -> bool:
    """Write ``arr`` in the format of ``path``'s suffix; False when that format refuses it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the writers' warnings are no reader case
        return _write_array(path, arr, npz_keys, tiff_meta)


def _write_array(path, arr, npz_keys, tiff_meta) -> bool:
    try:
        if path.suffix == ".npy":
            np.save(path, arr, allow_pickle=True)
        elif path.suffix == ".npz":
            np.savez(path, **dict(npz_keys))
        else:
            tifffile.imwrite(path, arr, photometric="minisblack", metadata=tiff_meta)
    except Exception:  # noqa: BLE001 - the format cannot hold this array: not a reader case
        return False
    return True


NPZ_KEYS = ["stack", "data", "cube", "other", "spectral_values", "wavenumbers", "wavelength_nm",
            "spectral_unit", "spectral_axis_index", "extra"]


@st.composite
def npz_members(draw, arr):
    keys = draw(st.lists(st.sampled_from(NPZ_KEYS), max_size=4, unique=True))
    members = []
    data_key = draw(st.sampled_from(["stack", "data", "cube", "X", "other"]))
    members.append((data_key, arr))
    for k in keys:
        if k == data_key:
            continue
        if k == "spectral_unit":
            members.append((k, np.array(draw(st.sampled_from(["nm", "cm-1", "", "x" * 50])))))
        elif k == "spectral_axis_index":
            members.append((k, np.array(draw(st.sampled_from([0, 1, 2, -1, 7, 1.5])))))
        else:
            members.append((k, draw(arrays(max_dims=2))))
    return members


# -- the readers ----------------------------------------------------------------------------------


@fuzz(300)
@given(damaged_bytes(), st.sampled_from([None, False, True]))
def test_damaged_files_never_escape_one_named_error(case, lazy):
    suffix, content = case
    with workdir() as d:
        path = d / f"stack{suffix}"
        path.write_bytes(content)
        check_both(path, lazy=lazy)


@fuzz(200)
@given(npy_headers(), st.sampled_from([None, False, True]))
def test_random_npy_headers(content, lazy):
    with workdir() as d:
        path = d / "h.npy"
        path.write_bytes(content)
        check_both(path, lazy=lazy)


@fuzz(300)
@given(tiff_headers(), st.sampled_from([None, False, True]))
def test_random_tiff_tag_values(content, lazy):
    with workdir() as d:
        path = d / "h.tif"
        path.write_bytes(content)
        check_both(path, lazy=lazy)


AXES_LETTERS = st.text(alphabet="CZTYXEIQS", min_size=0, max_size=5)


@fuzz(300)
@given(arrays(), st.sampled_from(SUFFIXES), sidecars(), st.data())
def test_random_shapes_dtypes_and_sidecars(arr, suffix, side, data):
    with workdir() as d:
        path = d / f"s{suffix}"
        if suffix == ".npz":
            ok = write_array(path, arr, npz_keys=data.draw(npz_members(arr)))
        else:
            meta = data.draw(st.one_of(st.none(), AXES_LETTERS.map(lambda a: {"axes": a})))
            ok = write_array(path, arr, tiff_meta=meta)
        assume(ok)
        if side is not None:
            (d / f"s.spectral{side[0]}").write_text(side[1], encoding="utf-8")
        axis = data.draw(st.one_of(st.none(), st.integers(-4, 4)))
        squeeze = data.draw(st.booleans())
        series = data.draw(st.sampled_from([None, 0, 1]))
        lazy = data.draw(st.sampled_from([None, False, True]))
        s = check_both(path, spectral_axis=axis, squeeze=squeeze, series=series, lazy=lazy)
        if s is not None and axis is not None:
            assert s.spectral_axis == axis % s.data.ndim and not s.guessed


@fuzz(40)
@given(arrays(numeric=True), st.sampled_from(["nm", "cm^-1", None]), st.data())
def test_own_tiff_metadata_of_any_length(arr, unit, data):
    """write_stack_tiff with spectral values (its own metadata) of a drawn length."""
    with workdir() as d:
        n = data.draw(st.integers(0, 6))
        values = np.arange(n, dtype=float) if n else None
        axes = data.draw(st.permutations("CZYX")).__getitem__(slice(0, arr.ndim))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                path = write_stack_tiff(d / "own.tif", arr, axes="".join(axes),
                                        spectral_values=values, spectral_unit=unit)
        except Exception:  # noqa: BLE001 - the writer refuses this array: not a reader case
            assume(False)
        check_both(path)


@st.composite
def slice_folders(draw):
    """A list of (file name, content) for a folder of TIFF slices."""
    n = draw(st.integers(1, 4))
    tags = draw(st.sampled_from(["ch{i}", "z{i}_c{j}", "img{i}", "{i}", "t{i}_ch{j}"]))
    shape = draw(st.sampled_from([(3, 4), (3, 4), (2, 3, 4), (1, 4)]))
    files = []
    for i in range(n):
        name = tags.format(i=i, j=draw(st.integers(0, 2))) + draw(st.sampled_from(
            [".tif", ".tif", ".tiff", ".TIF"]))
        kind = draw(st.sampled_from(["good", "good", "good", "other-shape", "bytes", "trunc"]))
        buf = io.BytesIO()
        a = _cube(shape if kind != "other-shape" else (5, 5), draw(st.sampled_from(
            [np.uint16, np.float32, np.uint8])))
        tifffile.imwrite(buf, a, photometric="minisblack")
        content = buf.getvalue()
        if kind == "bytes":
            content = draw(st.binary(max_size=200))
        elif kind == "trunc":
            content = content[:draw(st.integers(0, len(content) - 1))]
        files.append((name, content))
    extra = draw(st.sampled_from([None, "result.json", "result.npz", "spectral_axis.csv",
                                  "spectral_axis.json"]))
    if extra is not None:
        files.append((extra, draw(st.sampled_from([b"", b"{bad", b"1\n2\n3\n", b"[1, 2]",
                                                   b'{"format": "napari-unmix-result-summary"}'
                                                   ]))))
    return files


@fuzz(150)
@given(slice_folders(), st.sampled_from([None, False, True]))
def test_random_folders_of_slices(files, lazy):
    with workdir() as d:
        folder = d / "slices"
        folder.mkdir()
        for name, content in files:
            (folder / name).write_bytes(content)
        check_both(folder, lazy=lazy)


# -- the command line ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """Files the CLI examples point at: good, odd and damaged ones."""
    d = tmp_path_factory.mktemp("fuzz-cli")
    stack = _cube((6, 8, 8)) + np.random.default_rng(0).random((6, 8, 8)).astype(np.float32)
    axis = np.linspace(2800, 3050, 6)
    np.save(d / "good.npy", stack)
    write_stack_tiff(d / "good.tif", stack, axes="CYX", spectral_values=axis,
                     spectral_unit="cm^-1")
    np.save(d / "neg.npy", stack - 5)
    nan = stack.copy()
    nan[0, 0, 0] = np.nan
    np.save(d / "nan.npy", nan)
    (d / "garbage.tif").write_bytes(b"II*\x00" + b"\x01" * 40)
    (d / "empty.npy").write_bytes(b"")
    write_spectra_csv(d / "h.csv", np.abs(stack.reshape(6, -1)[:, :2].T), axis, ["a", "b"],
                      "cm^-1")
    (d / "bad.csv").write_text("x,y\n1,a\n")
    (d / "bg.csv").write_text("x,background,flat background,flat\n" + "\n".join(
        f"{v},1,{i},{i * i}" for i, v in enumerate(axis)))
    labels = np.zeros((8, 8), np.int32)
    labels[:4] = 1
    labels[4:, :4] = 2
    np.save(d / "labels.npy", labels)
    np.save(d / "labels_shape.npy", labels[:5])
    (d / "config.json").write_text(json.dumps({"mode": "nmf", "n_components": 2,
                                               "max_iter": 50}))
    (d / "broken.json").write_text("{bad")
    (d / "frac.json").write_text(json.dumps({"mode": "nmf", "n_components": 2.7}))
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        assert main(["run", str(d / "good.npy"), "--mode", "nmf", "-k", "2", "--max-iter", "20",
                     "--random-state", "0", "--out", str(d / "result"), "--no-progress"]) == 0
    (d / "folder").mkdir()
    return d


def _run_actions():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    return [a for a in sub.choices["run"]._actions if a.option_strings]


PATH_NAMES = ["good.npy", "good.tif", "neg.npy", "nan.npy", "garbage.tif", "empty.npy", "h.csv",
              "bad.csv", "bg.csv", "labels.npy", "labels_shape.npy", "config.json",
              "broken.json", "frac.json", "result", "result/result.json", "result/result.npz",
              "result/config.json", "folder", "missing.npy"]
ODD = ["", "0", "1", "2", "3", "-1", "2.7", "nan", "inf", "-inf", "1e309", "bogus", " ", "1e-3",
       "5", "-0", "0x10"]
# values whose runs could last long on purpose (a huge --max-iter with --tol 0) are left out
SAFE_INT = ["0", "1", "2", "5", "-1", "x", "2.7", "40"]
# sensible values of each option (by argparse dest), so that many runs get past parsing
GOOD = {"k": ["1", "2", "3"], "tol": ["1e-3", "0.01", "0"], "max_iter": ["5", "30"],
        "random_state": ["0", "1", "7"], "spectral_axis": ["0", "-3", "2"], "series": ["0"],
        "anchor": ["0", "1", "inf", "0.5"], "device": ["auto", "cpu"],
        "spectra": ["h.csv", "h.csv", "bg.csv", "bad.csv", "empty.npy"],
        "labels": ["labels.npy", "labels.npy", "labels_shape.npy", "empty.npy", "garbage.tif"],
        "config": ["config.json", "result", "result/config.json", "result/result.npz"]}


#: True 6 times in 7 (st.booleans and small integers lean towards their simplest value)
OFTEN = st.sampled_from([True] * 6 + [False])


@st.composite
def run_arguments(draw, inputs):
    """``run`` argument lists: mostly sensible, with odd values, files and flags mixed in."""
    actions = _run_actions()
    path_values = [str(inputs / n) for n in PATH_NAMES]
    argv = ["run"]
    if draw(OFTEN):
        argv.append(draw(st.sampled_from([str(inputs / "good.npy"), str(inputs / "good.tif")] * 3
                                         + path_values[:6] + path_values[14:] + ["", "-"])))
    if draw(OFTEN):
        mode = draw(st.sampled_from(list(MODES)))
        argv += ["--mode", mode]
        if draw(OFTEN):  # what the mode needs, most of the time
            spec = MODES[mode]
            seeds = ["spectra"] if spec.fixed_spectra else draw(st.sampled_from(
                [["spectra"], ["labels"], ["spectra", "labels"]]))
            for dest in seeds if spec.seeded else []:
                argv += [f"--{dest}", str(inputs / draw(st.sampled_from(GOOD[dest])))]
            if not spec.seeded:
                argv += ["-k", "2"]
            elif draw(st.booleans()):
                argv.append("--flat-background")
    for action in draw(st.lists(st.sampled_from(actions), max_size=5)):
        flag = draw(st.sampled_from(action.option_strings))
        if flag in ("--debug", "-h", "--help") or "--out" in action.option_strings:
            continue
        if action.nargs == 0:
            argv.append(flag)
            continue
        odd = not draw(OFTEN)
        if action.choices:
            pool = [*action.choices] if not odd else ["bogus", "", "AUTO"]
        elif action.dest in GOOD and not odd:
            pool = [v if v.startswith(("-", "0", "1", "2", "3", "5", "7", "i", "a", "c"))
                    and not v.endswith((".csv", ".npy", ".json", ".npz")) and v != "result"
                    else str(inputs / v) for v in GOOD[action.dest]]
        elif "max_iter" in action.dest:
            pool = SAFE_INT
        elif action.type is not None:
            pool = ODD
        else:
            pool = path_values + ["auto", "cpu", "cuda", "cuda:7", "bogus", ""]
        argv += [flag, draw(st.sampled_from(pool))]
    if draw(OFTEN):
        out = draw(st.sampled_from(["fresh"] * 8 + ["", "input", "file", "result", "folder"]))
        argv += ["--out", {"input": argv[1] if len(argv) > 1 else "", "file": path_values[0],
                           "result": str(inputs / "result"),
                           "folder": str(inputs / "folder")}.get(out, "FRESH")]
    return argv


@fuzz(400)
@given(st.data())
def test_cli_with_random_arguments(inputs, data):
    argv = data.draw(run_arguments(inputs))
    with workdir() as d:
        argv = [str(d / "out") if a == "FRESH" else a for a in argv]
        out, err = io.StringIO(), io.StringIO()
        with warnings.catch_warnings(record=True) as caught, time_limit(60), \
                contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            warnings.simplefilter("always")
            try:
                rc = main(argv)
            except BaseException as exc:  # noqa: BLE001 - that is the failure looked for
                pytest.fail(f"main({argv}) raised {type(exc).__name__}: {exc}")
        out, err = out.getvalue(), err.getvalue()
        leaked = [f"{w.category.__name__}: {w.message}" for w in caught]
        assert not leaked, (argv, leaked)
        assert rc in (0, 2), (argv, rc, err)
        errors = [line for line in err.splitlines() if line.startswith("napari-unmix: error:")]
        assert len(errors) <= 1, (argv, err)
        assert "Traceback" not in out + err, (argv, err)
        if rc == 2:
            assert ": error:" in err, (argv, err)
            line = next(x for x in err.splitlines() if ": error:" in x)
            event("exit 2: " + ("usage" if "run: error" in line else "error"))
        else:
            assert not errors, (argv, err)
            event("exit 0")


# -- results and configs read back ------------------------------------------------------------


def _result_bytes() -> bytes:
    from napari_unmix.core import UnmixResult

    rng = np.random.default_rng(0)
    res = UnmixResult(W=rng.random((12, 2)), H=rng.random((2, 4)), mode="nmf", backend="numpy",
                      device="cpu", n_iter=3, reconstruction_err=0.5,
                      summary={"converged": True, "relative_error": 0.1},
                      spectral_values=np.arange(4.0), spectral_unit="nm")
    with tempfile.TemporaryDirectory() as d:
        return res.save(Path(d) / "r.npz").read_bytes()


RESULT = _result_bytes()


@st.composite
def damaged_results(draw):
    kind = draw(st.sampled_from(["truncated", "mutated", "meta"]))
    if kind == "truncated":
        return RESULT[:draw(st.integers(0, len(RESULT) - 1))]
    if kind == "mutated":
        data = bytearray(RESULT)
        for pos, byte in draw(st.lists(st.tuples(st.integers(0, len(data) - 1),
                                                 st.integers(0, 255)), min_size=1, max_size=6)):
            data[pos] = byte
        return bytes(data)
    # valid zip, edited metadata: drop, retype or replace fields
    with np.load(io.BytesIO(RESULT), allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(str(arrays["meta"][()]))
    for key in draw(st.lists(st.sampled_from(sorted(meta)), max_size=3, unique=True)):
        action = draw(st.sampled_from(["drop", "null", "list", "string", "number", "dict"]))
        if action == "drop":
            meta.pop(key)
        else:
            meta[key] = {"null": None, "list": [1, "a"], "string": "x", "number": -1,
                         "dict": {"a": 1}}[action]
    arrays["meta"] = np.array(json.dumps(meta))
    if draw(st.booleans()):
        arrays.pop(draw(st.sampled_from(sorted(arrays))))
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


@fuzz(200)
@given(damaged_results())
def test_damaged_result_files(content):
    from napari_unmix.core import UnmixResult
    from napari_unmix.io import read_result_bundle

    with workdir() as d:
        path = d / "r.npz"
        path.write_bytes(content)
        for load in (UnmixResult.load, read_result_bundle):
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                try:
                    load(path)
                except ValueError as exc:
                    assert type(exc) is ValueError, repr(exc)
                    assert names_path(str(exc), path), str(exc)
                    event(f"{load.__name__}: refused")
                else:
                    event(f"{load.__name__}: read")
            assert not [w for w in caught if not issubclass(w.category, DeprecationWarning)]
        check_hook(path)


JSON = st.recursive(st.none() | st.booleans() | st.integers(-3, 2**70) | st.floats()
                    | st.text(max_size=8),
                    lambda children: st.lists(children, max_size=3)
                    | st.dictionaries(st.text(max_size=8), children, max_size=3),
                    max_leaves=8)
CONFIG_FIELDS = ["mode", "components", "n_components", "w_seed_mode", "overwrite", "h_fallback",
                 "residual_score", "preprocessing", "fit_data", "solver", "backend", "init",
                 "tol", "max_iter", "random_state", "negative", "device", "anchor",
                 "standardize", "spectral_unit", "format", "format_version"]


@st.composite
def config_documents(draw):
    """A config JSON object: real field names with any JSON values, sometimes others."""
    doc = {"mode": draw(st.sampled_from([*MODES, "bogus"]))}
    for key in draw(st.lists(st.sampled_from(CONFIG_FIELDS), max_size=5, unique=True)):
        doc[key] = draw(JSON)
    if draw(st.booleans()):  # components with real keys and odd values
        comp_keys = ["name", "h_source", "w_source", "color", "locked", "background", "anchor",
                     "kind"]
        doc["components"] = [
            {k: draw(JSON) for k in draw(st.lists(st.sampled_from(comp_keys), max_size=4,
                                                  unique=True))}
            | ({"name": draw(st.text(max_size=5))} if draw(st.booleans()) else {})
            for _ in range(draw(st.integers(0, 2)))]
    return doc


@fuzz(300)
@given(st.one_of(config_documents(), JSON))
def test_config_files_of_any_content(doc):
    from napari_unmix.core import AnalysisConfig

    with workdir() as d:
        path = d / "config.json"
        path.write_text(json.dumps(doc), encoding="utf-8")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                AnalysisConfig.load(path)
            except ValueError as exc:
                assert type(exc) is ValueError, repr(exc)
                assert names_path(str(exc), path), str(exc)
                event("AnalysisConfig.load: refused")
            else:
                event("AnalysisConfig.load: read")
        assert not caught, [str(w.message) for w in caught]
