"""The napari-unmix command: end to end, in-process and once as a console script."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from napari_unmix.cli import main
from napari_unmix.core import UnmixResult
from napari_unmix.core.metrics import abundance_rmse
from napari_unmix.core.synthetic import make_crs_sample
from napari_unmix.io import read_maps_tiff, read_spectra_csv, write_spectra_csv, write_stack_tiff

# every run also writes config.json (its AnalysisConfig, what --config takes)
OUTPUTS = ["composite.png", "config.json", "maps.tif", "result.json", "result.npz",
           "spectra.csv"]


@pytest.fixture(scope="module")
def sample():
    return make_crs_sample(shape=(24, 20), n_channels=12, random_state=1)


@pytest.fixture(scope="module")
def files(tmp_path_factory, sample):
    d = tmp_path_factory.mktemp("cli-inputs")
    write_stack_tiff(d / "s.tif", sample.stack, axes="CYX", spectral_values=sample.spectral_axis,
                     spectral_unit="cm^-1")
    np.save(d / "s.npy", sample.stack)
    write_spectra_csv(d / "h.csv", sample.H, sample.spectral_axis, sample.component_names,
                      "cm^-1")
    write_spectra_csv(d / "h10.csv", sample.H[:, :10], sample.spectral_axis[:10],
                      sample.component_names, "cm^-1")
    write_spectra_csv(d / "hfar.csv", sample.H, sample.spectral_axis + 5000.0,
                      sample.component_names, "cm^-1")
    nan = sample.stack.copy()
    nan[3, 4, 5] = np.nan
    np.save(d / "nan.npy", nan)
    np.save(d / "neg.npy", sample.stack - 0.2)
    np.save(d / "line.npy", np.arange(12.0))
    (d / "bad.tif").write_bytes(b"not a tiff at all")
    return d


def run_ok(capsys, *args):
    code = main(list(map(str, args)))
    out, err = capsys.readouterr()
    assert code == 0, err
    return out, err


# -- run ------------------------------------------------------------------------------


def test_run_pca(capsys, files, tmp_path, sample):
    out, _ = run_ok(capsys, "run", files / "s.tif", "--mode", "pca", "-k", 3,
                    "--out", tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == OUTPUTS
    assert "pca" in out and str(tmp_path) in out
    maps, names = read_maps_tiff(tmp_path / "maps.tif")
    assert maps.shape == (3, 24, 20) and maps.dtype == np.float32
    assert names == ["PC1", "PC2", "PC3"]
    t = read_spectra_csv(tmp_path / "spectra.csv")
    assert t.axis_name == "wavenumber (cm^-1)"
    np.testing.assert_array_equal(t.axis, sample.spectral_axis)
    doc = json.loads((tmp_path / "result.json").read_text())
    assert doc["mode"] == "pca" and doc["params"]["n_components"] == 3
    assert doc["input"]["spectral_axis_index"] == 0
    assert not doc["input"]["spectral_axis_guessed"]
    res = UnmixResult.load(tmp_path / "result.npz")
    np.testing.assert_array_equal(res.maps((24, 20)), maps)


def test_run_nnls_recovers_the_true_abundances(capsys, files, tmp_path, sample):
    run_ok(capsys, "run", files / "s.tif", "--mode", "nnls", "--spectra", files / "h.csv",
           "--out", tmp_path)
    res = UnmixResult.load(tmp_path / "result.npz")
    assert res.component_names == list(sample.component_names)
    np.testing.assert_allclose(res.H, sample.H.astype(np.float32))
    # the truth with noise 1 % of the maximum: abundances within a few hundredths
    err = abundance_rmse(sample.W, res.W, H_true=sample.H, H_est=res.H, scale="none")
    assert err < 0.05
    doc = json.loads((tmp_path / "result.json").read_text())
    assert doc["spectra_file"].endswith("h.csv")


def test_run_nnls_on_npy_takes_the_axis_from_the_spectra(capsys, files, tmp_path, sample):
    _, err = run_ok(capsys, "run", files / "s.npy", "--mode", "nnls", "--spectra",
                    files / "h.csv", "--out", tmp_path)
    assert "guessed as axis 0" in err and "--spectral-axis" in err
    # taking the file's axis for the stack's is said, with the range and the way out
    lo, hi = sample.spectral_axis[0], sample.spectral_axis[-1]
    assert (f"s.npy has no spectral axis of its own: its {sample.spectral_axis.size} "
            f"channels are taken to lie at") in err
    assert f"of h.csv ({lo:g} to {hi:g})" in err and "<stack>.spectral.csv" in err
    t = read_spectra_csv(tmp_path / "spectra.csv")
    np.testing.assert_array_equal(t.axis, sample.spectral_axis)


def test_run_nmf_records_its_settings(capsys, files, tmp_path):
    _, err = run_ok(capsys, "run", files / "s.npy", "--mode", "nmf", "-k", 4, "--solver", "cd",
                    "--backend", "sklearn", "--max-iter", 30, "--tol", "1e-6",
                    "--random-state", 7, "--out", tmp_path)
    doc = json.loads((tmp_path / "result.json").read_text())
    p = doc["params"]
    assert (p["solver"], p["backend"], p["max_iter"], p["random_state"]) == \
        ("cd", "sklearn", 30, 7)
    assert p["tol"] == 1e-6
    t = read_spectra_csv(tmp_path / "spectra.csv")
    assert t.axis_name == "channel"  # a .npy has no spectral positions
    np.testing.assert_array_equal(t.axis, np.arange(12))
    if doc["summary"]["hit_max_iter"]:  # warned on stderr, recorded in the JSON
        assert "napari-unmix: warning:" in err and doc["warnings"]


def test_run_z_series_writes_one_composite_per_plane(capsys, tmp_path, files):
    from napari_unmix.core.synthetic import make_crs_sample_4d

    s4 = make_crs_sample_4d(n_planes=3, shape=(16, 18), n_channels=12, random_state=2)
    write_stack_tiff(tmp_path / "z.tif", s4.stack, axes="ZCYX", spectral_values=s4.spectral_axis,
                     spectral_unit="cm^-1")
    run_ok(capsys, "run", tmp_path / "z.tif", "--mode", "nnls", "--spectra", files / "h.csv",
           "--out", tmp_path / "o")
    names = sorted(p.name for p in (tmp_path / "o").iterdir())
    assert [n for n in names if n.startswith("composite")] == [
        "composite_z000.png", "composite_z001.png", "composite_z002.png"]
    maps, _ = read_maps_tiff(tmp_path / "o" / "maps.tif")
    assert maps.shape == (4, 3, 16, 18)
    doc = json.loads((tmp_path / "o" / "result.json").read_text())
    assert doc["input"]["spectral_axis_index"] == 1 and doc["spatial_shape"] == [3, 16, 18]


@pytest.mark.parametrize("axes", ["CYX", "ZCYX"])
def test_run_reads_a_zeiss_lsm_lambda_stack(capsys, tmp_path, write_lsm, axes):
    # two emission spectra over eight 10 nm bins from 500 nm, mixed pixel by pixel
    rng = np.random.default_rng(3)
    centres = 505.0 + 10.0 * np.arange(8)
    H = np.exp(-0.5 * ((centres[None] - np.array([[520.0], [560.0]])) / 15.0) ** 2)
    W = rng.random((2 * 16 * 18, 2))
    stack = np.rint(200 * (W @ H)).T.reshape(8, 2, 16, 18).astype(np.uint16)
    stack = stack.transpose(1, 0, 2, 3) if axes == "ZCYX" else stack[:, 0]
    starts = 500e-9 + 10e-9 * np.arange(8)
    path = write_lsm(tmp_path / "lambda.lsm", stack, axes=axes,
                     wavelengths=np.stack([starts, starts + 10e-9], axis=1),
                     voxel_size=(0.2e-6, 0.2e-6, 1e-6))
    out = tmp_path / "out"
    run_ok(capsys, "run", path, "--mode", "nmf", "-k", 2, "--max-iter", 50,
           "--random-state", 0, "--out", out, "--no-progress")
    t = read_spectra_csv(out / "spectra.csv")
    assert t.axis_name == "wavelength (nm)"
    np.testing.assert_allclose(t.axis, centres, rtol=0, atol=1e-6)
    doc = json.loads((out / "result.json").read_text())
    assert doc["input"]["spectral_axis_index"] == axes.index("C")
    assert not doc["input"]["spectral_axis_guessed"]
    maps, _ = read_maps_tiff(out / "maps.tif")
    assert maps.shape == ((2, 2, 16, 18) if axes == "ZCYX" else (2, 16, 18))
    np.testing.assert_allclose(doc["pixel_size"]["scale"][-2:], (0.2, 0.2), rtol=1e-12)


def test_series_of_an_lsm_file_is_refused_as_an_lsm_file(capsys, tmp_path, write_lsm):
    # an LSM file is a TIFF file: "is not one [a TIFF file]" was wrong about it
    path = write_lsm(tmp_path / "lambda.lsm", np.ones((3, 4, 5), np.uint16), axes="CYX")
    code = main(["run", str(path), "--mode", "nmf", "-k", "1", "--series", "1",
                 "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code != 0 and "is a Zeiss LSM file, which holds one image" in err, err
    assert "leave --series out" in err and not (tmp_path / "out").exists()


def test_run_seeded_nmf_from_spectra(capsys, files, tmp_path, sample):
    # scikit-learn's cd cannot anchor the spectra to their seeds: a free fit (--anchor 0)
    run_ok(capsys, "run", files / "s.tif", "--mode", "seeded-nmf", "--spectra", files / "h.csv",
           "--solver", "cd", "--backend", "sklearn", "--max-iter", 20, "--anchor", 0,
           "--out", tmp_path)
    res = UnmixResult.load(tmp_path / "result.npz")
    assert res.mode == "seeded-nmf"
    assert res.component_names == list(sample.component_names)
    np.testing.assert_allclose(res.arrays["H0"], sample.H.astype(np.float32))


def test_anchor_is_the_trust_in_the_seeds_and_errors_name_the_flag(capsys, files, tmp_path):
    out = tmp_path / "o"
    run_ok(capsys, "run", files / "s.tif", "--mode", "seeded-nmf", "--spectra", files / "h.csv",
           "--anchor", "inf", "--out", out)
    res = UnmixResult.load(out / "result.npz")
    assert res.config.anchor == float("inf") and res.summary.anchor == [None] * 4
    np.testing.assert_array_equal(res.H, res.arrays["H0"])  # every spectrum locked
    code = main(["run", str(files / "s.tif"), "--mode", "seeded-nmf", "--spectra",
                 str(files / "h.csv"), "--solver", "cd", "--backend", "sklearn",
                 "--out", str(tmp_path / "x")])
    err = capsys.readouterr().err
    assert code == 2 and "cannot anchor the spectra" in err and "(or --anchor 0 " in err
    for bad in ("-1", "nan", "lots"):
        assert main(["run", str(files / "s.tif"), "--mode", "seeded-nmf", "--spectra",
                     str(files / "h.csv"), "--anchor", bad, "--out", str(tmp_path)]) == 2
        assert "--anchor" in capsys.readouterr().err
    assert main(["run", str(files / "s.tif"), "--mode", "nnls", "--spectra",
                 str(files / "h.csv"), "--anchor", "1", "--out", str(tmp_path / "y")]) == 2
    assert "--anchor is not used by --mode nnls (only by seeded-nmf)" in capsys.readouterr().err


def test_run_seeded_nmf_from_labels_recovers_the_true_spectra(capsys, files, tmp_path, sample):
    # a label image painted over the purest pixels of each component, as a user would
    share = sample.W / sample.W.sum(axis=1, keepdims=True)
    labels = np.zeros(sample.W.shape[0], dtype=np.uint16)
    for j in range(sample.n_components):
        labels[np.argsort(share[:, j])[::-1][:12]] = j + 1
    np.save(tmp_path / "labels.npy", labels.reshape(sample.maps.shape[1:]))
    out = tmp_path / "o"
    printed, _ = run_ok(capsys, "run", files / "s.tif", "--mode", "seeded-nmf", "--labels",
                        tmp_path / "labels.npy", "--random-state", 0, "--out", out)
    res = UnmixResult.load(out / "result.npz")
    assert res.component_names == [f"label {j + 1}" for j in range(sample.n_components)]
    # component j was seeded from label j+1, so it must be the spectrum of component j:
    # closer to it than to any other true spectrum, and closer than its ROI-mean seed
    def cosines(A):
        A = A / np.linalg.norm(A, axis=1, keepdims=True)
        T = sample.H / np.linalg.norm(sample.H, axis=1, keepdims=True)
        return A @ T.T

    from scipy.optimize import linear_sum_assignment

    fitted, seeds = cosines(res.H), cosines(res.arrays["H0"])
    rows, cols = linear_sum_assignment(-fitted)  # best one-to-one match of fitted to true
    assert np.array_equal(cols[np.argsort(rows)], np.arange(sample.n_components)), fitted
    assert np.diag(fitted).mean() > np.diag(seeds).mean(), (np.diag(fitted), np.diag(seeds))
    # with the default trust in the seeds (1) no spectrum ends farther from its material
    # than its seed was (measured cosines 0.951 0.848 0.960 0.929, seeds 0.945 0.836
    # 0.959 0.929; the free fit, --anchor 0, unmixes these mixed ROIs further, to 0.883)
    assert (np.diag(fitted) >= np.diag(seeds) - 1e-3).all(), (np.diag(fitted), np.diag(seeds))
    assert np.diag(fitted).min() > 0.84
    # how far each spectrum moved from its seed: on the console and in result.json
    moved = np.degrees(res.summary.seed_drift.angles)
    assert "seeds: the fit moved the spectra " + ", ".join(
        f"label {j + 1} {a:.0f} deg" for j, a in enumerate(moved)) in printed
    doc = json.loads((out / "result.json").read_text())
    angles = doc["summary"]["seed_drift"]["angles"]
    np.testing.assert_allclose(angles, res.summary.seed_drift.angles)
    assert len(angles) == sample.n_components and max(angles) < np.radians(30)


def test_run_seeded_nmf_with_a_flat_background(capsys, files, tmp_path, sample):
    # labels over lipid, protein and water only; the flat background is in every pixel
    share = sample.W / sample.W.sum(axis=1, keepdims=True)
    labels = np.zeros(sample.W.shape[0], dtype=np.uint16)
    for j in range(3):
        labels[np.argsort(share[:, j])[::-1][:12]] = j + 1
    np.save(tmp_path / "labels.npy", labels.reshape(sample.maps.shape[1:]))
    common = ("run", files / "s.tif", "--mode", "seeded-nmf", "--labels",
              tmp_path / "labels.npy", "--random-state", 0)
    run_ok(capsys, *common, "-k", 4, "--out", tmp_path / "fallback")
    run_ok(capsys, *common, "--flat-background", "--out", tmp_path / "flat")
    fallback = UnmixResult.load(tmp_path / "fallback" / "result.npz")
    flat = UnmixResult.load(tmp_path / "flat" / "result.npz")
    assert flat.component_names == ["label 1", "label 2", "label 3", "background"]
    assert np.all(flat.H[3] == 1.0)  # seeded flat and locked
    assert set(flat.summary["offsets_moved"]["amounts"]) == {"label 1", "label 2", "label 3"}
    cfg = json.loads((tmp_path / "flat" / "result.json").read_text())["params"]["config"]
    assert cfg["components"][3]["h_source"] == {"kind": "flat", "level": 1.0,
                                               "absorb_offsets": True}

    def cos(A, B):
        return np.sum(A * B, axis=1) / np.linalg.norm(A, axis=1) / np.linalg.norm(B, axis=1)

    # the chemical spectra come out closer to the truth than with a fallback 4th component
    # (measured: mean cosine 0.994 against 0.942)
    assert cos(flat.H[:3], sample.H[:3]).mean() > cos(fallback.H[:3], sample.H[:3]).mean() + 0.02


def test_flat_background_is_refused_where_it_means_nothing(files, tmp_path, cli_error):
    err = cli_error("run", files / "s.tif", "--mode", "nmf", "-k", 3,
                  "--flat-background", "--out", tmp_path / "x")
    assert "--flat-background is not used by --mode nmf" in err


def test_run_config_with_label_seeds_reruns_with_the_same_labels(capsys, files, tmp_path,
                                                                 sample, cli_error):
    labels = np.zeros(sample.maps.shape[1:], dtype=np.uint8)
    labels[:4, :4], labels[-4:, -4:] = 1, 2
    np.save(tmp_path / "labels.npy", labels)
    first = tmp_path / "first"
    run_ok(capsys, "run", files / "s.tif", "--mode", "seeded-nmf", "--labels",
           tmp_path / "labels.npy", "--max-iter", 30, "--out", first)
    from napari_unmix.core.analysis import AnalysisConfig

    res = UnmixResult.load(first / "result.npz")
    AnalysisConfig.from_result(res).save(tmp_path / "config.json")
    # without the label image the label-id seeds cannot be rebuilt: a clear error
    line = cli_error("run", files / "s.tif", "--config", tmp_path / "config.json",
                   "--out", tmp_path / "x")
    assert "label" in line
    again = tmp_path / "again"
    run_ok(capsys, "run", files / "s.tif", "--config", tmp_path / "config.json", "--labels",
           tmp_path / "labels.npy", "--out", again)
    rerun = UnmixResult.load(again / "result.npz")
    assert np.array_equal(rerun.W, res.W) and np.array_equal(rerun.H, res.H)


def test_run_config_of_a_result_reruns_identically(capsys, files, tmp_path):
    first = tmp_path / "first"
    run_ok(capsys, "run", files / "s.tif", "--mode", "seeded-nmf", "--spectra", files / "h.csv",
           "--max-iter", 50, "--out", first)
    from napari_unmix.core.analysis import AnalysisConfig

    res = UnmixResult.load(first / "result.npz")
    AnalysisConfig.from_result(res).save(tmp_path / "config.json")
    again = tmp_path / "again"
    run_ok(capsys, "run", files / "s.tif", "--config", tmp_path / "config.json", "--out", again)
    rerun = UnmixResult.load(again / "result.npz")
    assert rerun.mode == "seeded-nmf"
    assert np.array_equal(rerun.W, res.W) and np.array_equal(rerun.H, res.H)


def test_run_nnls_resamples_descending_spectra(capsys, files, tmp_path, sample):
    # the same spectra written on a descending axis give the same abundances
    write_spectra_csv(tmp_path / "down.csv", sample.H[:, ::-1], sample.spectral_axis[::-1],
                      sample.component_names, "cm^-1")
    a, b = tmp_path / "a", tmp_path / "b"
    run_ok(capsys, "run", files / "s.tif", "--mode", "nnls", "--spectra", files / "h.csv",
           "--out", a)
    run_ok(capsys, "run", files / "s.tif", "--mode", "nnls", "--spectra", tmp_path / "down.csv",
           "--out", b)
    ra, rb = UnmixResult.load(a / "result.npz"), UnmixResult.load(b / "result.npz")
    np.testing.assert_array_equal(rb.H, ra.H)
    np.testing.assert_array_equal(rb.W, ra.W)


def test_run_seeded_nmf_with_more_components_than_seeds(capsys, files, tmp_path, sample):
    _, err = run_ok(capsys, "run", files / "s.tif", "--mode", "seeded-nmf", "--spectra",
                    files / "h.csv", "-k", sample.n_components + 1, "--max-iter", 30,
                    "--out", tmp_path)
    res = UnmixResult.load(tmp_path / "result.npz")
    assert res.n_components == sample.n_components + 1
    reports = res.summary["seeds"]["components"]
    assert reports[-1]["name"] == res.component_names[-1]


def test_run_negative_data_with_an_explicit_policy(capsys, files, tmp_path):
    run_ok(capsys, "run", files / "neg.npy", "--mode", "nnls", "--spectra", files / "h.csv",
           "--negative", "clip", "--out", tmp_path)
    doc = json.loads((tmp_path / "result.json").read_text())
    assert doc["params"]["negative"] == "clip"
    assert doc["summary"]["negative"]["n_negative"] > 0


def test_run_shows_progress_when_asked(capsys, files, tmp_path):
    _, err = run_ok(capsys, "run", files / "s.tif", "--mode", "pca", "-k", 2, "--progress",
                    "--out", tmp_path)
    assert "pca" in err and "step" in err  # the tqdm bar, driven by the core callback


@pytest.mark.parametrize("args, message", [
    (["missing.tif", "--mode", "pca", "-k", "2"], "missing.tif not found"),
    (["bad.tif", "--mode", "pca", "-k", "2"], "could not be read as a TIFF"),
    (["nan.npy", "--mode", "pca", "-k", "2"], "1 NaN"),
    (["neg.npy", "--mode", "nmf", "-k", "2"], "--negative clip"),
    (["s.tif", "--mode", "nmf", "-k", "13"], "at most 12"),
    (["s.npy", "--mode", "nnls", "--spectra", "h10.csv"], "10 spectral points"),
    (["s.tif", "--mode", "nnls", "--spectra", "hfar.csv"], "do not overlap"),
    (["line.npy", "--mode", "pca", "-k", "1"], "at least one spatial axis"),
    (["s.tif", "--mode", "nnls"], "needs the trusted spectra"),
    (["s.tif", "--mode", "nnls", "--spectra", "nope.csv"], "nope.csv not found"),
    (["s.tif", "--mode", "nnls", "--spectra", "h.csv", "-k", "3"], "does not match the 4"),
    (["s.tif", "--mode", "seeded-nmf", "-k", "4"], "needs seed spectra"),
    (["s.tif", "--mode", "nmf"], "pass -k N"),
    (["s.tif", "--mode", "pca", "-k", "2", "--tol", "1e-3"], "--tol is not used"),
    (["s.tif", "--mode", "pca", "-k", "2", "--spectral-axis", "3"], "out of range"),
    (["s.tif", "--mode", "nmf", "-k", "2", "--solver", "lawson-hanson"], "lawson-hanson"),
])
def test_bad_input_exits_2_with_one_line(files, tmp_path, args, message, cli_error):
    args = [str(files / a) if a.endswith((".tif", ".npy", ".csv")) else a for a in args]
    args = [*args, "--out", str(tmp_path / "o")]
    line = cli_error("run", *args)
    assert message in line
    assert not (tmp_path / "o").exists()


def test_out_must_be_a_folder(files, tmp_path, cli_error):
    (tmp_path / "f").write_text("x")
    line = cli_error("run", files / "s.tif", "--mode", "pca", "-k", 2,
                   "--out", tmp_path / "f")
    assert "is a file" in line


def test_usage_errors_exit_2(capsys, files):
    assert main(["run", str(files / "s.tif"), "-k", "2", "--out", "x"]) == 2  # no --mode
    assert "--mode" in capsys.readouterr().err
    assert main(["run", str(files / "s.tif"), "--mode", "svd", "--out", "x"]) == 2
    assert main(["run", str(files / "s.tif"), "--mode", "pca", "-k", "0", "--out", "x"]) == 2
    assert main([]) == 2


def test_help_lists_modes_and_solvers_from_the_tables(capsys):
    from napari_unmix.core import MODES, NMF_SOLVERS, NNLS_SOLVERS

    assert main(["run", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    for mode in MODES:
        assert mode in text
    for solver, backend in [*NMF_SOLVERS, *NNLS_SOLVERS]:
        assert solver in text and backend in text


def test_debug_shows_the_traceback(files, tmp_path):
    with pytest.raises(ValueError, match="at most 12"):
        main(["run", str(files / "s.tif"), "--mode", "nmf", "-k", "13", "--debug",
              "--out", str(tmp_path)])


def test_fallback_components_are_noted(capsys, files, tmp_path, sample):
    # two labels, -k 3: the third component has no seed and gets a fallback spectrum
    share = sample.W / sample.W.sum(axis=1, keepdims=True)
    labels = np.zeros(sample.W.shape[0], dtype=np.uint16)
    for j in range(2):
        labels[np.argsort(share[:, j])[::-1][:12]] = j + 1
    np.save(tmp_path / "labels.npy", labels.reshape(sample.maps.shape[1:]))
    common = ("run", files / "s.tif", "--mode", "seeded-nmf", "--labels",
              tmp_path / "labels.npy", "-k", 3, "--max-iter", 20, "--random-state", 0)
    _, err = run_ok(capsys, *common, "--out", tmp_path / "o")
    res = UnmixResult.load(tmp_path / "o" / "result.npz")
    assert res.component_names == ["label 1", "label 2", "C1"]
    assert res.summary.seeds.report("C1").h_fallback == "residual"
    notes = [ln for ln in err.splitlines() if "fallback" in ln]
    assert notes == ["napari-unmix: note: component 'C1': spectrum estimated by the residual "
                     "fallback (no usable spectrum seed was given); check it before relying "
                     "on it."], err
    _, err = run_ok(capsys, *common, "--quiet", "--out", tmp_path / "q")
    assert "note:" not in err


@pytest.fixture
def toy_mode():
    """A mode registered only for the test: random NNMF under another name."""
    import dataclasses

    from napari_unmix.core import nmf
    from napari_unmix.core.modes import ModeSpec, register_mode, unregister_mode

    def run_toy(data, config, seeds, callback):
        res = nmf(data.fit, config.n_components, solver="hals", backend="numpy", max_iter=20,
                  random_state=config.random_state, callback=callback)
        return dataclasses.replace(res, mode="toy")

    spec = register_mode(ModeSpec("toy", "Toy NNMF", "Does a registered mode run?", run_toy,
                                  options=frozenset({"n_components", "random_state"})))
    try:
        yield spec
    finally:
        unregister_mode("toy")


def _parses_mode(mode) -> bool:
    """Whether the parser of the CLI accepts ``--mode mode`` (argparse exits otherwise)."""
    from napari_unmix.cli import build_parser

    try:
        args = build_parser().parse_args(["run", "in.tif", "--mode", mode, "--out", "o"])
    except SystemExit:
        return False
    return args.mode == mode


def test_a_registered_mode_runs_from_the_cli(capsys, files, tmp_path, toy_mode, cli_error):
    assert _parses_mode("toy")
    out, _ = run_ok(capsys, "run", files / "s.tif", "--mode", "toy", "-k", 2,
                    "--random-state", 3, "--out", tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == OUTPUTS
    assert "toy with k=2" in out and "done: toy on cpu" in out
    res = UnmixResult.load(tmp_path / "result.npz")
    assert res.mode == "toy" and res.n_components == 2 and res.params["random_state"] == 3
    # the options it does not use are refused, with the modes that use them
    line = cli_error("run", files / "s.tif", "--mode", "toy", "-k", 2, "--tol", "1e-3",
                   "--out", tmp_path / "x")
    assert line.endswith("--tol is not used by --mode toy (only by nmf, seeded-nmf, nnls); "
                         "leave it out.")
    line = cli_error("run", files / "s.tif", "--mode", "pca", "-k", 2,
                   "--random-state", 1, "--out", tmp_path / "x")
    assert "(only by nmf, seeded-nmf, toy)" in line


def test_a_removed_mode_is_no_choice_any_more(capsys, toy_mode):
    from napari_unmix.core.modes import unregister_mode

    unregister_mode("toy")
    assert not _parses_mode("toy")
    assert "invalid choice: 'toy'" in capsys.readouterr().err


# -- demo -----------------------------------------------------------------------------


def test_demo_on_a_small_sample(capsys, tmp_path):
    out, _ = run_ok(capsys, "demo", "--out", tmp_path, "--size", 20, "--channels", 10,
                    "--max-iter", 40, "--no-progress")
    assert (tmp_path / "sample.tif").exists()
    assert (tmp_path / "ground_truth" / "maps.tif").exists()
    truth = read_spectra_csv(tmp_path / "ground_truth" / "spectra.csv")
    assert truth.names == ["lipid", "protein", "water", "background"]
    run_dirs = sorted(p.name for p in tmp_path.iterdir() if (p / "result.json").exists())
    assert "pca" in run_dirs and "nmf-cd-sklearn" in run_dirs
    assert "nnls-lawson-hanson-scipy" in run_dirs
    for d in run_dirs:
        # the demo's direct fits hold no AnalysisConfig, so no config.json
        names = sorted(p.name for p in (tmp_path / d).iterdir())
        assert names in (OUTPUTS, [n for n in OUTPUTS if n != "config.json"]), names
    # the table: one line per run, the noise floor, where the outputs are
    for d in run_dirs:
        assert d.split("-")[0] in out
    assert "noise floor" in out and "(auto)" in out and str(tmp_path) in out
    # NNLS with the true spectra: angle 0 by construction, abundances close
    doc = json.loads((tmp_path / "nnls-lawson-hanson-scipy" / "result.json").read_text())
    scores = doc["demo"]["ground_truth_scores"]
    assert scores["mean_spectral_angle"] == pytest.approx(0.0, abs=1e-6)
    assert scores["abundance_rmse"] < 0.05
    assert doc["component_names"] == ["lipid", "protein", "water", "background"]
    pca = json.loads((tmp_path / "pca" / "result.json").read_text())
    assert pca["demo"]["ground_truth_scores"] is None


# -- the console script ---------------------------------------------------------------


def _console_script():
    exe = Path(sys.executable).parent / "napari-unmix"
    return str(exe) if exe.exists() else shutil.which("napari-unmix")


def test_console_script(files, tmp_path):
    exe = _console_script()
    if exe is None:
        pytest.skip("the napari-unmix console script is not installed (pip install -e .)")
    ok = subprocess.run([exe, "run", str(files / "s.tif"), "--mode", "pca", "-k", "2",
                         "--out", str(tmp_path / "o")], capture_output=True, text=True,
                        timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert (tmp_path / "o" / "maps.tif").exists()
    bad = subprocess.run([exe, "run", str(files / "nan.npy"), "--mode", "pca", "-k", "2",
                          "--out", str(tmp_path / "b")], capture_output=True, text=True,
                         timeout=120)
    assert bad.returncode == 2
    assert bad.stderr.strip().startswith("napari-unmix: error:")
    assert len(bad.stderr.strip().splitlines()) == 1 and "Traceback" not in bad.stderr


def test_a_gpu_device_with_a_cpu_backend_is_refused_in_flags(files, tmp_path, cli_error):
    err = cli_error("run", files / "s.npy", "--mode", "nmf", "-k", 2, "--device", "cuda",
                  "--backend", "numpy", "--out", tmp_path / "o")
    assert ("--device 'cuda' is used by the torch backend only, and --backend numpy runs on "
            "the CPU; choose --backend torch (or auto), or --device auto.") in err
    assert not (tmp_path / "o").exists()


def test_a_tol_the_exact_nnls_does_not_use_is_said(capsys, files, tmp_path):
    _, err = run_ok(capsys, "run", files / "s.npy", "--mode", "nnls", "--spectra",
                    files / "h.csv", "--tol", "1e-9", "--out", tmp_path / "a")
    assert "--tol 1e-09 was not used: active-set is exact" in err
    _, err = run_ok(capsys, "run", files / "s.npy", "--mode", "nnls", "--spectra",
                    files / "h.csv", "--out", tmp_path / "b")
    assert "--tol" not in err


def test_the_core_s_option_words_are_turned_into_flags():
    from napari_unmix.cli.console import cli_words

    assert cli_words("or run random NNMF (mode='nmf').") == "or run random NNMF (--mode nmf)."
    assert cli_words("backend='numpy' runs on the CPU") == "--backend numpy runs on the CPU"
    assert cli_words("Use device='cpu' or 'auto'.") == "Use --device cpu or auto."
    assert cli_words("pass negative='clip' to") == "pass --negative clip to"


def test_a_config_without_any_seed_names_the_flag_of_the_random_mode(files, tmp_path, cli_error):
    cfg = tmp_path / "c.json"
    cfg.write_text('{"mode": "seeded-nmf", "components": [{"name": "a"}]}')
    err = cli_error("run", files / "s.npy", "--config", cfg, "--out", tmp_path / "o")
    assert "run random NNMF (--mode nmf)" in err and "mode='" not in err
