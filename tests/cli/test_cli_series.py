"""``napari-unmix run --strategy``: a z / t series unmixed plane by plane, as in the dock.

``run`` fitted a (Z, C, Y, X) stack as one volume only (``spatial shape (3, 8, 10)``),
while the library (``unmix_series``) and the dock have the shared-basis and per-slice
strategies.  The CLI has them now: the same maps and spectra as ``unmix_series`` on the
same data and config, the dock's result folder (``spectra_zNNN.csv`` per plane for
per-slice), the per-plane matching angles on the console, a rerun from the folder that
repeats the series, and refusals that name the flag to change.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import warnings

import numpy as np
import pytest
import tifffile

from napari_unmix.cli import main
from napari_unmix.cli import series as cli_series
from napari_unmix.core import AnalysisConfig, ComponentSpec, RoiLabel, unmix_series
from napari_unmix.core.series import SeriesResult
from napari_unmix.core.synthetic import make_crs_sample_4d
from napari_unmix.io import read_result_bundle, read_spectra_csv, write_analysis_outputs

SHAPE = (3, 8, 10)          # (Z, Y, X) of the series
QUIET = ["--no-progress"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """A (Z, C, Y, X) ImageJ TIFF (as in the issue), its array and a 2-D label image."""
    d = tmp_path_factory.mktemp("cli-series")
    s = make_crs_sample_4d(n_planes=3, shape=SHAPE[1:], n_channels=12, random_state=0)
    tifffile.imwrite(d / "zstack.tif", s.stack, imagej=True, metadata={"axes": "ZCYX"})
    labels = np.zeros(SHAPE[1:], dtype=np.uint8)
    labels[1:3, 1:4], labels[5:7, 6:9] = 1, 2
    tifffile.imwrite(d / "seeds.tif", labels)
    return d, s.stack, labels


def _run(*args):
    code = main([str(a) for a in args])
    assert code == 0
    return code


def _direct(stack, config, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return unmix_series(stack, config, series_axis=0, spectral_axis=1, **kw)


def _series_of(folder) -> SeriesResult:
    return SeriesResult.from_result(read_result_bundle(folder).result, SHAPE)


NMF = AnalysisConfig(mode="nmf", n_components=3, max_iter=40, random_state=0)
CASES = {
    "shared-pooled": (["--strategy", "shared-basis"], {"strategy": "shared-basis"}),
    "shared-plane": (["--strategy", "shared-basis", "--reference", "1"],
                     {"strategy": "shared-basis", "reference": 1}),
    "per-slice": (["--strategy", "per-slice"], {"strategy": "per-slice"}),
    "per-slice-to-ref": (["--strategy", "per-slice", "--reference", "2", "--match",
                          "reference"],
                         {"strategy": "per-slice", "reference": 2, "match": "reference"}),
}


@pytest.fixture(scope="module")
def runs(data, tmp_path_factory):
    """Each case run once by the CLI (nmf, k = 3): ``{case: (out folder, stdout)}``."""
    d, _, _ = data
    out = {}
    for case, (flags, _) in CASES.items():
        folder = tmp_path_factory.mktemp(case) / "out"
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            _run("run", d / "zstack.tif", "--mode", "nmf", "-k", 3, "--max-iter", 40,
                 "--random-state", 0, "--out", folder, *flags, *QUIET)
        out[case] = folder, buf.getvalue()
    return out


@pytest.mark.parametrize("case", list(CASES))
def test_each_strategy_gives_what_unmix_series_gives(data, runs, case):
    _, stack, _ = data
    folder, _ = runs[case]
    want = _direct(stack, NMF, **CASES[case][1])
    got = _series_of(folder)
    assert got is not None and got.strategy == want.strategy
    np.testing.assert_array_equal(got.maps, want.maps)
    np.testing.assert_array_equal(got.H, want.H)
    assert got.params["reference"] == want.params["reference"]
    assert got.params["match"] == want.params["match"]


@pytest.mark.parametrize("case", ["shared-plane", "per-slice"])
def test_the_folder_is_the_dock_s_series_folder(data, runs, case, tmp_path):
    """The files and the spectra of the folder the dock writes from the same series
    (``write_analysis_outputs`` of ``SeriesResult.as_result``), and the strategy
    recorded in result.json."""
    _, stack, _ = data
    folder, _ = runs[case]
    want = _direct(stack, NMF, **CASES[case][1])
    ref = tmp_path / "dock"
    write_analysis_outputs(ref, want.as_result(reference=want.params["reference"]), SHAPE)
    names = sorted(p.name for p in folder.iterdir())
    assert names == sorted(p.name for p in ref.iterdir())
    per_plane = [n for n in names if n.startswith("spectra_z")]
    if want.strategy == "per-slice":
        assert per_plane == ["spectra_z000.csv", "spectra_z001.csv", "spectra_z002.csv"]
        for z, name in enumerate(per_plane):
            np.testing.assert_allclose(read_spectra_csv(folder / name).values, want.H[z],
                                       rtol=1e-6, atol=1e-12)
    else:
        assert per_plane == []
        np.testing.assert_allclose(read_spectra_csv(folder / "spectra.csv").values, want.H,
                                   rtol=1e-6, atol=1e-12)
    maps = tifffile.imread(folder / "maps.tif")     # ImageJ ZCYX
    np.testing.assert_allclose(np.moveaxis(maps, 1, 0), want.maps, rtol=1e-6)
    info = json.loads((folder / "result.json").read_text())
    assert info["spatial_shape"] == list(SHAPE)
    assert info["params"]["series"]["strategy"] == want.strategy
    assert info["params"]["series"]["series_axis"] == 0
    assert AnalysisConfig.load(folder / "config.json").mode == "nmf"


def test_the_console_says_the_strategy_and_every_plane_s_angles(runs):
    folder, out = runs["per-slice"]
    sr = _series_of(folder)
    assert "per-slice series of 3 planes along axis 0" in out
    assert "--match auto" in out
    for p in sr.planes:
        if p.matched_to is None:
            continue
        angles = ", ".join(f"{n} {math.degrees(a):.1f}"
                           for n, a in zip(sr.component_names, p.angles, strict=True))
        assert f"plane {p.plane} (to {p.matched_to}): {angles}" in out
    _, shared = runs["shared-plane"]
    assert "shared-basis series" in shared and "on plane 1" in shared
    assert "spectral angles" not in shared


@pytest.mark.parametrize("case", ["shared-pooled", "per-slice-to-ref"])
@pytest.mark.parametrize("given", ["out", "out/config.json", "out/result.npz"])
def test_a_rerun_from_the_result_repeats_the_series(data, runs, case, given, tmp_path,
                                                    capsys):
    d, _, _ = data
    folder, _ = runs[case]
    _run("run", d / "zstack.tif", "--config", folder.parent / given, "--out", tmp_path / "again",
         *QUIET)
    err = capsys.readouterr().err
    first, again = _series_of(folder), _series_of(tmp_path / "again")
    assert f"is a {first.strategy} z / t series: it is rerun plane by plane" in err
    assert again.strategy == first.strategy
    np.testing.assert_array_equal(again.maps, first.maps)
    np.testing.assert_array_equal(again.H, first.H)
    assert {k: again.params[k] for k in ("reference", "match", "series_axis", "pool_size")} == \
        {k: first.params[k] for k in ("reference", "match", "series_axis", "pool_size")}


def test_a_rerun_with_strategy_joint_fits_the_whole_stack(data, runs, tmp_path, capsys):
    d, _, _ = data
    folder, _ = runs["per-slice"]
    _run("run", d / "zstack.tif", "--config", folder, "--strategy", "joint", "--out",
         tmp_path / "joint", *QUIET)
    out, err = capsys.readouterr()
    assert "spatial shape (3, 8, 10)" in out and "series" not in err
    assert "series" not in read_result_bundle(tmp_path / "joint").result.params


def test_seeded_series_from_a_label_image_of_one_plane(data, tmp_path):
    """--labels of one plane (Y, X) seeds the basis plane, as unmix_series' labels."""
    d, stack, labels = data
    _run("run", d / "zstack.tif", "--mode", "seeded-nmf", "--labels", d / "seeds.tif",
         "--strategy", "shared-basis", "--reference", 2, "--max-iter", 30, "--random-state",
         0, "--out", tmp_path / "seeded", *QUIET)
    cfg = AnalysisConfig(mode="seeded-nmf", max_iter=30, random_state=0, components=[
        ComponentSpec(f"label {i}", h_source=RoiLabel(i)) for i in (1, 2)])
    want = _direct(stack, cfg, strategy="shared-basis", reference=2, labels=labels)
    got = _series_of(tmp_path / "seeded")
    np.testing.assert_array_equal(got.maps, want.maps)
    np.testing.assert_array_equal(got.H, want.H)
    assert got.component_names == ["label 1", "label 2"]


def test_the_progress_bar_covers_the_series(data, tmp_path, capsys):
    d, _, _ = data
    _run("run", d / "zstack.tif", "--mode", "nmf", "-k", 2, "--max-iter", 10, "--strategy",
         "per-slice", "--out", tmp_path / "bar", "--progress")
    err = capsys.readouterr().err
    assert "plane 3/3" in err and "100/100" in err


def test_ctrl_c_stops_the_series_and_writes_nothing(data, tmp_path, monkeypatch, capsys):
    d, _, _ = data
    real = cli_series.unmix_series

    def interrupted(*args, callback=None, **kwargs):
        def stop(info):
            if info.plane == 1:
                raise KeyboardInterrupt
        return real(*args, callback=stop, **kwargs)

    monkeypatch.setattr(cli_series, "unmix_series", interrupted)
    code = main(["run", str(d / "zstack.tif"), "--mode", "nmf", "-k", "2", "--strategy",
                 "per-slice", "--out", str(tmp_path / "stopped"), *QUIET])
    assert code == 130 and "interrupted" in capsys.readouterr().err
    assert not (tmp_path / "stopped").exists()


# -- refusals ---------------------------------------------------------------------------
def test_a_strategy_on_a_single_spectral_image_is_refused(data, tmp_path, cli_error):
    _, stack, _ = data
    np.save(tmp_path / "cyx.npy", stack[0])
    line = cli_error("run", tmp_path / "cyx.npy", "--mode", "nmf", "-k", 2, "--strategy",
                     "per-slice", "--out", tmp_path / "o")
    assert "--strategy per-slice" in line and "(12, 8, 10)" in line and "(Z, C, Y, X)" in line


def test_a_series_config_on_a_single_spectral_image_names_strategy_joint(data, runs,
                                                                        tmp_path, cli_error):
    _, stack, _ = data
    np.save(tmp_path / "cyx.npy", stack[0])
    folder, _ = runs["per-slice"]
    line = cli_error("run", tmp_path / "cyx.npy", "--spectral-axis", 0, "--config", folder,
                     "--out", tmp_path / "o")
    assert "(a per-slice series)" in line and "pass --strategy joint" in line


@pytest.mark.parametrize("flags, words", [
    (["--strategy", "shared-basis", "--reference", "3"],
     ["--reference 3 is out of range", "3 plane(s), 0 to 2"]),
    (["--strategy", "per-slice", "--reference", "pooled"], ["--reference N"]),
    (["--strategy", "shared-basis", "--match", "previous"],
     ["--match", "--strategy per-slice"]),
    (["--reference", "1"], ["--reference 1 applies", "--strategy shared-basis"]),
    (["--strategy", "joint", "--series-axis", "0"],
     ["--series-axis 0 applies to a z / t series", "--strategy per-slice"]),
    (["--strategy", "per-slice", "--series-axis", "1"],
     ["--series-axis 1 is the spectral axis", "axes 0"]),
    (["--strategy", "per-slice", "--series-axis", "3"],
     ["--series-axis 3 is one of the Y-X plane's axes"]),
    (["--strategy", "shared-basis", "--mode", "pca"], ["--mode pca", "--strategy per-slice"]),
    (["--reference", "x"], ["--reference", "'x' is neither a plane index nor 'pooled'"]),
])
def test_series_refusals_name_the_flag(data, tmp_path, cli_error, capsys, flags, words):
    d, _, _ = data
    mode = [] if "--mode" in flags else ["--mode", "nmf"]
    if "--reference" in flags and "x" in flags:   # argparse: its usage line, exit 2
        code = main(["run", str(d / "zstack.tif"), *mode, "-k", "2", *flags, "--out",
                     str(tmp_path / "o")])
        err = capsys.readouterr().err
        assert code == 2 and all(w in err for w in words), err
        return
    line = cli_error("run", d / "zstack.tif", *mode, "-k", 2, *flags, "--out", tmp_path / "o")
    for w in words:
        assert w in line, line
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("reference", [None, "pooled"])
def test_labels_with_a_pooled_basis_are_refused_naming_the_flags(data, tmp_path, cli_error,
                                                                 reference):
    d, _, _ = data
    ref = [] if reference is None else ["--reference", reference]
    line = cli_error("run", d / "zstack.tif", "--mode", "seeded-nmf", "--labels",
                     d / "seeds.tif", "--strategy", "shared-basis", *ref, "--out",
                     tmp_path / "o")
    assert "--reference pooled" in line and "--reference N" in line
    assert "--strategy per-slice" in line and "--spectra" in line
    assert "label 1" in line


def test_pixel_sizes_follow_the_maps_axes():
    """A series along T of (T, Z, C, Y, X) planes keeps (T, Z, Y, X) sizes; along Z the
    maps are (Z, T, Y, X), and so are their sizes."""
    sizes = ((60.0, 2.0, 0.5, 0.25), ("s", "um", "um", "um"))
    along_z = cli_series.SeriesPlan("per-slice", 1, 4, (2, 8, 8), 0)
    assert along_z.pixel_size(sizes, 2) == ((2.0, 60.0, 0.5, 0.25), ("um", "s", "um", "um"))
    along_t = cli_series.SeriesPlan("per-slice", 0, 2, (4, 8, 8), 0)
    assert along_t.pixel_size(sizes, 2) == sizes
    assert along_t.pixel_size(None, 2) is None
