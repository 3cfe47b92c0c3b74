"""The Python examples of the README and the docs run as printed.

Every ```` ```python ```` block of ``README.md`` and ``docs/*.md`` is listed in
``EXAMPLES`` with the files and names it takes for granted (a stack, ``run.npz``,
a series of TIFFs, ``H``...), made here on the bundled synthetic sample; the block
is executed verbatim in a temporary folder and what it promises is checked. A block
that is added, changed beyond its first line, or removed fails
``test_every_python_block_of_the_docs_is_run``: a reader copies these examples, so
none of them may be left untested.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

import numpy as np
import pytest

from napari_unmix.core.synthetic import make_crs_sample

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def python_blocks() -> dict[tuple[str, str], str]:
    """``{(file, first line): code}`` for every Python block of the docs."""
    out = {}
    for path in DOCS:
        for code in BLOCK.findall(path.read_text(encoding="utf-8")):
            out[(str(path.relative_to(ROOT)), code.splitlines()[0])] = code
    return out


@functools.cache
def sample():
    return make_crs_sample(shape=(32, 40), n_channels=24, noise=0.01, random_state=0)


# --- what each block takes for granted, and what it promises ------------------------

def readme_from_python(tmp_path, monkeypatch):
    ns = {"stack": sample().stack}
    yield ns
    assert ns["maps"].shape == (4, 32, 40)
    assert np.array_equal(ns["same"].W, ns["res"].W)
    assert (tmp_path / "run.npz").is_file()


def architecture_register_mode(tmp_path, monkeypatch):
    from napari_unmix.core import AnalysisConfig, run_analysis
    from napari_unmix.core.modes import MODES, unregister_mode
    from napari_unmix.core.nmf import nmf

    calls = []

    def my_function(X, n_components, *, callback=None):
        calls.append(X.shape)
        return nmf(X, n_components, max_iter=20, random_state=0)

    yield {"my_function": my_function}
    try:
        assert "my-mode" in MODES
        res = run_analysis(sample().stack, AnalysisConfig(mode="my-mode", n_components=2),
                           spectral_axis=0)
        assert res.W.shape == (32 * 40, 2) and calls == [(32 * 40, 24)]
    finally:
        unregister_mode("my-mode")


def _tiff_series(tmp_path, *, pixel_size):
    import tifffile

    from napari_unmix.io import open_stack, write_stack_tiff

    s = sample()
    (tmp_path / "series").mkdir()
    for z in range(3):
        path = tmp_path / "series" / f"z{z:02d}.tif"
        if pixel_size:      # OME-TIFF planes 0.25 x 0.2 um; channels from a sidecar
            tifffile.imwrite(path, s.stack * (1 + z), ome=True, metadata={
                "axes": "CYX", "PhysicalSizeX": 0.2, "PhysicalSizeY": 0.25,
                "PhysicalSizeXUnit": "µm", "PhysicalSizeYUnit": "µm"})
            path.with_suffix(".spectral.csv").write_text(
                "wavenumber (cm^-1)\n" + "\n".join(f"{v:.6f}" for v in s.spectral_axis))
        else:
            write_stack_tiff(path, s.stack * (1 + z), axes="CYX",
                             spectral_values=s.spectral_axis, spectral_unit="cm-1")
    assert (open_stack(tmp_path / "series" / "z00.tif").scale is None) != pixel_size
    yield {}
    cube = open_stack(tmp_path / "series.ome.zarr")
    assert cube.data.shape == (24, 3, 32, 40) and cube.spectral_axis == 0
    np.testing.assert_allclose(cube.spectral_values, s.spectral_axis, rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(cube.data[:, 2]), s.stack * 3)
    if pixel_size:
        np.testing.assert_allclose(cube.scale[1:], (1.5, 0.25, 0.2), rtol=1e-6)
    else:
        assert cube.scale is None or tuple(cube.scale[2:]) == (1.0, 1.0)


def big_data_tiff_series(tmp_path, monkeypatch):
    yield from _tiff_series(tmp_path, pixel_size=False)


def big_data_tiff_series_with_pixel_sizes(tmp_path, monkeypatch):
    yield from _tiff_series(tmp_path, pixel_size=True)


def big_data_cluster(tmp_path, monkeypatch):
    distributed = pytest.importorskip("distributed")
    pytest.importorskip("zarr")
    from napari_unmix.io.ome_zarr_out import write_stack_ome_zarr

    s = sample()
    write_stack_ome_zarr(tmp_path / "cube.ome.zarr", s.stack, spectral_axis=0,
                         spectral_values=s.spectral_axis, spectral_unit="cm-1",
                         chunks=(24, 16, 20))
    # worker threads, not processes: the example's API, not process start-up, is tested
    monkeypatch.setattr(distributed, "LocalCluster",
                        functools.partial(distributed.LocalCluster, processes=False,
                                          dashboard_address=None))  # no port 8787 to share
    ns = {"H": s.H}
    yield ns
    import zarr

    from napari_unmix.core import nnls, stack_to_matrix

    X, _ = stack_to_matrix(s.stack, spectral_axis=0)
    expect = nnls(X, s.H).W.T.reshape(len(s.H), 32, 40)
    np.testing.assert_allclose(zarr.open_array(tmp_path / "W.zarr")[:], expect,
                               rtol=1e-5, atol=1e-6)


def big_data_series_to_disk(tmp_path, monkeypatch):
    pytest.importorskip("zarr")
    s = sample()
    series = np.stack([s.stack, 2 * s.stack])            # (Z, C, Y, X)
    ns = {"series": series, "H": s.H}
    yield ns
    assert ns["res"].maps.shape == (len(s.H), 2, 32, 40)
    assert (tmp_path / "series_maps.zarr").exists()
    np.testing.assert_allclose(np.asarray(ns["res"].maps[:, 1]),
                               2 * np.asarray(ns["res"].maps[:, 0]), rtol=1e-4, atol=1e-6)


def user_guide_series(tmp_path, monkeypatch):
    from napari_unmix.io import write_stack_tiff

    s = sample()
    write_stack_tiff(tmp_path / "series.tif", np.stack([s.stack, s.stack[:, ::-1]]),
                     axes="ZCYX", spectral_values=s.spectral_axis, spectral_unit="cm-1")
    ns = {}
    yield ns
    assert ns["series"].maps.shape == (4, 2, 32, 40)
    assert (tmp_path / "series.npz").is_file()


def user_guide_saved_bundle(tmp_path, monkeypatch):
    from napari_unmix.core import AnalysisConfig, run_analysis

    cfg = AnalysisConfig(mode="nmf", n_components=3, max_iter=30, random_state=0)
    res = run_analysis(sample().stack, cfg, spectral_axis=0)
    res.save(tmp_path / "run.npz")
    yield {}
    again = AnalysisConfig.load(tmp_path / "run-config.json")
    assert again.mode == "nmf" and again.n_components == 3 and again.random_state == 0


EXAMPLES = {
    ("README.md", "import napari_unmix.core as uc"): readme_from_python,
    ("docs/architecture.md", "from napari_unmix.core.modes import ModeSpec, register_mode"):
        architecture_register_mode,
    ("docs/big-data.md", "from pathlib import Path"): big_data_tiff_series,
    ("docs/big-data.md", "from distributed import Client, LocalCluster"): big_data_cluster,
    ("docs/big-data.md", "from napari_unmix.core.series import unmix_series"):
        big_data_series_to_disk,
    ("docs/user-guide.md", "import napari_unmix.core as uc"): user_guide_series,
    ("docs/user-guide.md", "from napari_unmix.core import AnalysisConfig, UnmixResult"):
        user_guide_saved_bundle,
}


def test_every_python_block_of_the_docs_is_run():
    found = set(python_blocks())
    assert found - set(EXAMPLES) == set(), "a Python block of the docs has no test here"
    assert set(EXAMPLES) - found == set(), "a block tested here is no longer in the docs"


@pytest.mark.parametrize("key", list(EXAMPLES), ids=lambda k: f"{k[0]}:{k[1][:30]}")
def test_the_example_runs_as_printed(key, tmp_path, monkeypatch, capsys):
    _run(key, EXAMPLES[key], tmp_path, monkeypatch)


def test_the_tiff_series_example_keeps_the_planes_pixel_sizes(tmp_path, monkeypatch):
    key = ("docs/big-data.md", "from pathlib import Path")
    _run(key, big_data_tiff_series_with_pixel_sizes, tmp_path, monkeypatch)


def _run(key, setup, tmp_path, monkeypatch):
    code = python_blocks()[key]
    monkeypatch.chdir(tmp_path)
    steps = setup(tmp_path, monkeypatch)
    ns = next(steps)
    exec(compile(code, f"{key[0]} example", "exec"), ns)
    with pytest.raises(StopIteration):
        next(steps)           # the checks after the block


# --- the command lines of the docs ---------------------------------------------------

SHELL_BLOCK = re.compile(r"^```(?:bash|sh|console)\n(.*?)^```", re.S | re.M)


def documented_commands() -> list[tuple[str, str]]:
    """``(file, command line)`` of every ``napari-unmix`` call in a shell block."""
    out = []
    for path in DOCS:
        for block in SHELL_BLOCK.findall(path.read_text(encoding="utf-8")):
            for line in block.replace("\\\n", " ").splitlines():
                line = line.split(" #")[0].strip()
                if line.startswith("napari-unmix "):
                    out.append((str(path.relative_to(ROOT)), line))
    return out


def test_the_docs_show_command_lines():
    assert len(documented_commands()) >= 15


@pytest.mark.parametrize("where, line", documented_commands(),
                         ids=[f"{f}:{c[13:50]}" for f, c in documented_commands()])
def test_every_documented_command_line_is_accepted_by_the_cli(where, line, capsys):
    import shlex

    from napari_unmix.cli.main import build_parser

    try:
        build_parser().parse_args(shlex.split(line)[1:])
    except SystemExit as exc:      # argparse's way of refusing a flag or a value
        pytest.fail(f"{where}: {line!r} is refused by the CLI ({exc.code}): "
                    f"{capsys.readouterr().err.strip()}")


# --- the Examples sections of the API reference --------------------------------------
#
# The API pages (docs/api/) show the docstrings of the code; their ``>>>`` examples
# are run here as doctests, in a temporary folder, with what a docstring takes for
# granted (the ``files`` of a series...) made first.  An example skipped or left
# without a setup it needs fails here, as a Python block of the docs does above.

def _doctest_modules():
    import importlib
    import pkgutil

    import napari_unmix

    for info in pkgutil.walk_packages(napari_unmix.__path__, "napari_unmix."):
        # the Qt layer has no examples; a __main__ module runs the command line
        if not info.name.startswith("napari_unmix._napari") and \
                not info.name.endswith("__main__"):
            yield importlib.import_module(info.name)


def doctests() -> dict:
    """``{qualified name: doctest}`` of every docstring of the package with examples."""
    import doctest

    finder = doctest.DocTestFinder(exclude_empty=True)
    out = {}
    for module in _doctest_modules():
        for test in finder.find(module):   # the objects the module defines
            if test.examples:
                out.setdefault(test.name, test)
    return out


def _tiff_planes(tmp_path):
    """Three ``(C, Y, X)`` plane TIFFs of the sample, ``z0.tif`` ... ``z2.tif``."""
    import tifffile

    s = sample()
    files = [tmp_path / f"z{z}.tif" for z in range(3)]
    for z, f in enumerate(files):
        tifffile.imwrite(f, s.stack * (1 + z))
    return {"files": files}


def _check_ome_zarr_cube(tmp_path):
    from napari_unmix.io import open_stack

    cube = open_stack(tmp_path / "cube.ome.zarr")
    assert cube.data.shape == (24, 3, 32, 40) and cube.spectral_axis == 0
    np.testing.assert_array_equal(np.asarray(cube.data[:, 2]), sample().stack * 3)


#: what a docstring example takes for granted, and what is checked after it
DOCTEST_SETUP = {
    "napari_unmix.io.ome_zarr_out.write_stack_ome_zarr": (_tiff_planes, _check_ome_zarr_cube),
}


@pytest.mark.parametrize("name", sorted(doctests()))
def test_every_docstring_example_runs_as_printed(name, tmp_path, monkeypatch):
    import doctest

    test = doctests()[name]
    setup, check = DOCTEST_SETUP.get(name, (lambda p: {}, lambda p: None))
    monkeypatch.chdir(tmp_path)
    test.globs = {**test.globs, **setup(tmp_path)}
    skipped = [ex.source for ex in test.examples if ex.options.get(doctest.SKIP)]
    assert not skipped, f"{name}: an example of the API reference is skipped: {skipped}"
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    runner.run(test, out=lambda s: pytest.fail(f"{name}: its example fails:\n{s}"))
    assert runner.failures == 0
    check(tmp_path)


def test_the_api_reference_has_examples():
    assert len(doctests()) >= 5


# --- numbers the docs quote from a command that is cheap to run ----------------------

def _quoted(pattern, path="docs/user-guide.md"):
    text = " ".join((ROOT / path).read_text(encoding="utf-8").split())
    found = re.search(pattern, text)
    assert found, f"{path} no longer says {pattern!r}: update this test with the text"
    return found.groups()


def _agrees(quoted: str, value: float) -> bool:
    """``value`` printed to the digits of ``quoted`` is ``quoted``."""
    places = len(quoted.split(".")[1]) if "." in quoted else 0
    return abs(value - float(quoted)) <= 0.5 * 10 ** -places + 1e-12


def test_the_user_guide_s_demo_scores_are_the_demo_s():
    """Section 6 quotes the demo's seeded NNMF (25-pixel ROIs and a locked flat row)
    and random NNMF scores: they are what ``napari-unmix demo`` prints now."""
    from napari_unmix.cli.demo import demo_roi_config
    from napari_unmix.core import MODES, nmf, run_analysis, stack_to_matrix
    from napari_unmix.core.metrics import score_against_truth

    s = make_crs_sample(shape=(128, 128), n_channels=64, noise=0.01, random_state=0)
    cfg = demo_roi_config(s, MODES["seeded-nmf"], max_iter=1000, random_state=0,
                          negative="clip")
    seeded = run_analysis(s.stack, cfg, spectral_axis=0, spectral_values=s.spectral_axis)
    X, _ = stack_to_matrix(s.stack, 0)
    free = nmf(X, s.n_components, max_iter=1000, random_state=0, negative="clip")
    sc_seeded, sc_free = (score_against_truth(s.W, s.H, r.W, r.H, names=s.component_names)
                          for r in (seeded, free))
    angle, rmse, free_angle, free_rmse = _quoted(
        r"mean angle of ([\d.]+) rad and the maps with an RMSE of ([\d.]+), where random "
        r"NNMF gets ([\d.]+) and ([\d.]+)\.")
    got = {angle: sc_seeded["mean_spectral_angle"], rmse: sc_seeded["abundance_rmse"],
           free_angle: sc_free["mean_spectral_angle"], free_rmse: sc_free["abundance_rmse"]}
    (lipid,) = _quoted(r"its lipid spectrum keeps an angle of ([\d.]+) rad")
    pair = next(p for p in sc_seeded["pairs"] if p["true"] == "lipid")
    got[lipid] = pair["spectral_angle"]
    wrong = {q: round(v, 4) for q, v in got.items() if not _agrees(q, v)}
    assert not wrong, f"the user guide quotes {sorted(wrong)}; the demo gives {wrong}"
