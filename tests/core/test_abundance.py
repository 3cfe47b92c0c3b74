"""Abundance models (``abundance=``) through the core, the config, the CLI and NNMF.

The solver itself is tested against independent references in
``tests/core/solvers/test_simplex.py``; here: the wiring (``core.nnls``,
``core.nmf``, ``AnalysisConfig``, the modes, the registry, ``--abundance``), the
NNMF alternation (monotone objective, constraint, fixed point at the truth) and
the real Samson / Jasper Ridge scenes.
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from napari_unmix.cli import main
from napari_unmix.core import (
    MODES,
    AnalysisConfig,
    ComponentSpec,
    Spectrum,
    nmf,
    nnls,
    run_analysis,
)
from napari_unmix.core.solvers import NMF_SOLVERS, pick_nmf_solver, pick_nnls_solver
from napari_unmix.core.solvers.simplex import fit_simplex
from napari_unmix.io import read_maps_tiff, write_spectra_csv

CONSTRAINED = ["sum-to-one", "sum-le-one"]


def quiet(fn, *a, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return fn(*a, **kw)


@pytest.fixture(scope="module")
def mixture():
    """Exact convex mixtures of three overlapping bands (some pixels hold less than
    everything), 30 x 20 pixels x 40 channels, and a noisy copy."""
    rng = np.random.default_rng(7)
    axis = np.linspace(0.0, 1.0, 40)
    H = np.exp(-0.5 * ((axis - np.array([0.3, 0.5, 0.7])[:, None]) / 0.1) ** 2)
    H *= np.array([[1.0], [2.0], [0.7]])
    W = rng.dirichlet(np.full(3, 0.6), 600)
    W[:60] = np.eye(3)[rng.integers(0, 3, 60)]
    X = W @ H
    noisy = np.maximum(X + 0.01 * rng.standard_normal(X.shape), 0.0)
    return {"H": H, "W": W, "X": X, "noisy": noisy, "axis": axis}


def objective(X, W, H):
    return float(np.sum((X - W @ H) ** 2))


# --------------------------------------------------------------------------- core.nnls


@pytest.mark.parametrize("abundance", CONSTRAINED)
def test_nnls_with_an_abundance_model(mixture, abundance):
    X, H = mixture["noisy"], mixture["H"]
    res = nnls(X, H, abundance=abundance)
    s = res.W.sum(axis=1)
    assert (res.W >= 0).all()
    if abundance == "sum-to-one":
        assert np.abs(s - 1).max() <= 1e-12
        assert res.summary.n_constraint_active is None
    else:
        assert (s <= 1 + 1e-12).all()
        plain = nnls(X, H)
        assert res.summary.n_constraint_active == int((plain.W.sum(axis=1) > 1).sum()) > 0
        keep = plain.W.sum(axis=1) <= 1                  # inactive: the NNLS solution
        np.testing.assert_array_equal(res.W[keep], plain.W[keep])
    assert res.summary.abundance == abundance and res.params["abundance"] == abundance
    assert res.summary.to_dict()["abundance"] == abundance
    np.testing.assert_allclose(res.W, fit_simplex(X, H, abundance=abundance).W, atol=1e-13)
    # the constrained optimum never beats the free one, and the free run is unchanged
    free = nnls(X, H)
    assert objective(X, free.W, H) <= objective(X, res.W, H)
    assert free.summary.abundance == "free" and free.params["abundance"] == "free"


def test_nnls_recovers_exact_convex_mixtures_exactly(mixture):
    res = nnls(mixture["X"], mixture["H"], abundance="sum-to-one")
    assert np.abs(res.W - mixture["W"]).max() <= 1e-10


@pytest.mark.parametrize("key", [("lawson-hanson", "scipy"),
                                 pytest.param(("active-set", "torch"),
                                              marks=pytest.mark.requires_torch)])
def test_nnls_sum_to_one_on_every_exact_backend(mixture, key):
    X, H = mixture["noisy"][:200], mixture["H"]
    ref = nnls(X, H, abundance="sum-to-one")
    res = nnls(X, H, solver=key[0], backend=key[1], device="cpu", abundance="sum-to-one")
    assert (res.summary.solver, res.summary.backend) == key
    np.testing.assert_allclose(res.W, ref.W, atol=1e-9)


def test_solvers_that_cannot_keep_a_sum_constraint_are_refused(mixture):
    X, H = mixture["noisy"], mixture["H"]
    with pytest.raises(ValueError, match="NNLS solver/backend fista/torch cannot fit "
                                         "abundance='sum-to-one'; use active-set/numpy"):
        nnls(X, H, solver="fista", backend="torch", abundance="sum-to-one")
    with pytest.raises(ValueError, match="abundance must be one of"):
        nnls(X, H, abundance="fractions")
    for solver in ("hals", "mu", "cd"):
        with pytest.raises(ValueError, match=f"NNMF solver/backend {solver} cannot fit "
                                             "abundance='sum-le-one'; use fcls/numpy"):
            nmf(X, 3, solver=solver, abundance="sum-le-one")
    assert (pick_nmf_solver(abundance="sum-to-one").algorithm, pick_nmf_solver(
        seeded=True, anchored=True, partial_lock=True, abundance="sum-to-one").algorithm) == \
        ("fcls", "fcls")
    assert pick_nnls_solver(abundance="sum-le-one").exact
    assert {k for k, s in NMF_SOLVERS.items() if "sum-to-one" in s.abundance} == \
        {("fcls", "numpy")}


# --------------------------------------------------------------------------- core.nmf


@pytest.mark.parametrize("abundance", CONSTRAINED)
def test_nmf_objective_never_increases(mixture, abundance):
    # restart from the same seeds with max_iter = 1, 2, ...: every iteration is an
    # exact W step and exact H block steps, so the error never increases
    X, H = mixture["noisy"], mixture["H"]
    H0 = H * (1.0 + 0.3 * np.random.default_rng(0).random(H.shape))
    errors = np.array([quiet(nmf, X, 3, H0=H0, max_iter=i, tol=0.0,
                             abundance=abundance).reconstruction_err for i in range(1, 16)])
    assert (np.diff(errors) <= 32 * np.finfo(np.float64).eps * errors[:-1]).all(), \
        np.diff(errors).max()
    assert errors[-1] < 0.99 * errors[0]                # and it does make progress


def test_nmf_anchored_objective_with_locked_rows_never_increases(mixture):
    X, H = mixture["noisy"], mixture["H"]
    H0 = H * (1.0 + 0.3 * np.random.default_rng(1).random(H.shape))
    res = quiet(nmf, X, 3, H0=H0, anchor=[1.0, 0.5, np.inf], max_iter=40, tol=0.0,
                track_error_every=1, abundance="sum-to-one")
    e = np.array([err for _, err in res.summary.error_history])  # with the anchor term
    assert (np.diff(e) <= 32 * np.finfo(np.float64).eps * e[:-1]).all()
    np.testing.assert_array_equal(res.H[2], H0[2])                  # locked: bit-identical
    assert res.summary.solver == "fcls" and res.summary.locked == [2]


@pytest.mark.parametrize("abundance", CONSTRAINED)
def test_nmf_rows_keep_the_constraint(mixture, abundance):
    res = quiet(nmf, mixture["noisy"], 3, abundance=abundance, random_state=0, max_iter=100)
    s = res.W.sum(axis=1)
    assert (res.W >= 0).all() and (res.H >= 0).all()
    if abundance == "sum-to-one":
        assert np.abs(s - 1).max() <= 1e-12
    else:
        assert (s <= 1 + 1e-12).all()
        assert res.summary.n_constraint_active == int((s >= 1 - 1e-12).sum())
    assert res.summary.abundance == abundance and res.params["abundance"] == abundance
    assert res.summary.init == {"W0": f"{abundance} fit to H0",
                                "H0": "nndsvda, times the mean row sum of its W"}


@pytest.mark.parametrize("anchor", [0.0, 1.0])
def test_nmf_seeded_from_the_truth_stays_there(mixture, anchor):
    X, H, W = mixture["X"], mixture["H"], mixture["W"]
    res = quiet(nmf, X, 3, W0=W, H0=H, anchor=anchor, max_iter=50, tol=0.0,
                abundance="sum-to-one")
    assert np.abs(res.H - H).max() <= 1e-9 * H.max()
    assert np.abs(res.W - W).max() <= 1e-9
    assert res.summary.init["W start"] == "sum-to-one fit to H0"
    assert "balanced" not in res.summary.init and res.params["balance"] is False


def test_nmf_with_every_spectrum_locked_is_fcls(mixture):
    X, H = mixture["noisy"], mixture["H"]
    res = nmf(X, 3, H0=H, locked=[0, 1, 2], abundance="sum-to-one")
    np.testing.assert_allclose(res.W, nnls(X, H, abundance="sum-to-one").W, atol=1e-12)


def test_free_nmf_is_unchanged_by_the_new_option(mixture):
    a = quiet(nmf, mixture["noisy"], 3, random_state=0, max_iter=50)
    b = quiet(nmf, mixture["noisy"], 3, random_state=0, max_iter=50, abundance="free")
    np.testing.assert_array_equal(a.W, b.W)
    assert a.summary.solver == "hals" and a.summary.abundance == "free"


# --------------------------------------------------------------------- config and modes


def test_config_validates_and_keeps_the_abundance():
    assert AnalysisConfig().abundance == "free"
    cfg = AnalysisConfig(mode="nnls", abundance="sum-le-one")
    assert AnalysisConfig.from_json(cfg.to_json()).abundance == "sum-le-one"
    with pytest.raises(ValueError, match="abundance='whole' is not one of free, sum-to-one"):
        AnalysisConfig(abundance="whole")
    assert {n for n, s in MODES.items() if s.uses("abundance")} == {"nmf", "seeded-nmf", "nnls"}
    spec = MODES["seeded-nmf"].pick_solver("auto", "auto", config=AnalysisConfig(
        abundance="sum-to-one"))
    assert spec.algorithm == "fcls"


@pytest.mark.parametrize("mode", ["nnls", "seeded-nmf", "nmf"])
def test_run_analysis_passes_the_abundance(mixture, mode):
    stack = mixture["noisy"].reshape(30, 20, 40)
    comps = [ComponentSpec(f"c{j}", h_source=Spectrum(h, mixture["axis"]))
             for j, h in enumerate(mixture["H"])]
    cfg = AnalysisConfig(mode=mode, components=comps if mode != "nmf" else [],
                         n_components=3 if mode == "nmf" else None, abundance="sum-to-one",
                         random_state=0, max_iter=100)
    res = quiet(run_analysis, stack, cfg, spectral_axis=-1, spectral_values=mixture["axis"])
    assert np.abs(res.W.sum(axis=1) - 1).max() <= 1e-6
    assert res.summary.abundance == "sum-to-one" and res.config.abundance == "sum-to-one"


def test_series_shared_basis_fits_every_plane_with_the_abundance(mixture):
    from napari_unmix.core.series import unmix_series

    stack = mixture["noisy"].reshape(2, 15, 20, 40).transpose(0, 3, 1, 2)   # (Z, C, Y, X)
    comps = [ComponentSpec(f"c{j}", h_source=Spectrum(h, mixture["axis"]))
             for j, h in enumerate(mixture["H"])]
    cfg = AnalysisConfig(mode="nnls", components=comps, abundance="sum-to-one")
    res = quiet(unmix_series, stack, cfg, spectral_values=mixture["axis"])
    maps = np.asarray(res.maps, dtype=np.float64)                          # (k, Z, Y, X)
    assert np.abs(maps.sum(axis=0) - 1).max() <= 1e-6


# --------------------------------------------------------------------------- CLI


@pytest.fixture
def cli_files(tmp_path, mixture):
    np.save(tmp_path / "stack.npy", mixture["noisy"].reshape(30, 20, 40).astype(np.float32))
    write_spectra_csv(tmp_path / "h.csv", mixture["H"], mixture["axis"], ["a", "b", "c"])
    return tmp_path


def test_cli_abundance_sum_to_one(capsys, cli_files):
    out = cli_files / "out"
    code = main(["run", str(cli_files / "stack.npy"), "--spectral-axis", "2", "--mode", "nnls",
                 "--spectra", str(cli_files / "h.csv"), "--abundance", "sum-to-one",
                 "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    maps, names = read_maps_tiff(out / "maps.tif")
    assert names == ["a", "b", "c"]
    assert np.abs(maps.astype(np.float64).sum(axis=0) - 1).max() <= 1e-6
    doc = json.loads((out / "result.json").read_text())
    assert doc["params"]["abundance"] == "sum-to-one"
    assert doc["summary"]["abundance"] == "sum-to-one"


def test_cli_abundance_is_refused_where_it_means_nothing(capsys, cli_files):
    code = main(["run", str(cli_files / "stack.npy"), "--spectral-axis", "2", "--mode", "pca",
                 "-k", "2", "--abundance", "sum-to-one", "--out", str(cli_files / "o")])
    err = capsys.readouterr().err
    assert code == 2
    assert "--abundance is not used by --mode pca (only by nmf, seeded-nmf, nnls)" in err
    code = main(["run", str(cli_files / "stack.npy"), "--spectral-axis", "2", "--mode", "nmf",
                 "-k", "3", "--solver", "mu", "--abundance", "sum-to-one",
                 "--out", str(cli_files / "o2")])
    err = capsys.readouterr().err
    assert code == 2 and "cannot fit --abundance sum-to-one; use fcls/numpy" in err


# --------------------------------------------------------------------------- real data


@pytest.mark.realdata
@pytest.mark.parametrize("scene", ["samson", "jasper"])
def test_real_scene_fcls_beats_plain_nnls(scene):
    """The published endmembers as fixed spectra: abundances against the ground truth.

    A sum constraint reads a spectrum's scale as that of a whole pixel, so the
    spectra must be in the data's units.  Jasper Ridge's endmembers are (reflectance,
    like the data); Samson's are scaled to maximum 1, so they are first put on the
    data's scale by one common factor measured on the data alone (the mean row sum
    of their plain NNLS abundances, 0.369).  Both fits use the same spectra.
    Measured RMSE (benchmarks/abundance.py), plain NNLS -> sum-to-one / sum-le-one:
    Samson 0.316 -> 0.216 / 0.240; Jasper Ridge 0.090 -> 0.085 / 0.079.
    """
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    from _scenes import load_scene

    try:
        cube, M, A, _ = load_scene(scene)
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    X = cube.reshape(-1, cube.shape[-1]).astype(np.float64)
    H = M * nnls(X, M).W.sum(axis=1).mean() if scene == "samson" else M
    rmse = {model: float(np.sqrt(np.mean((nnls(X, H, abundance=model).W - A) ** 2)))
            for model in ("free", "sum-to-one", "sum-le-one")}
    print(f"\n{scene}: abundance RMSE {rmse}")
    if scene == "samson":
        assert rmse["sum-to-one"] < 0.75 * rmse["free"]          # measured 0.68
        assert rmse["sum-le-one"] < 0.85 * rmse["free"]          # measured 0.76
    else:
        assert rmse["sum-to-one"] < 0.97 * rmse["free"]          # measured 0.95
        assert rmse["sum-le-one"] < 0.92 * rmse["free"]          # measured 0.88
