"""AnalysisConfig and run_analysis: seeded NNMF end to end, reproducibility, real data."""

import json
from pathlib import Path

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter
from sklearn.exceptions import ConvergenceWarning

from napari_unmix.core import MODES, UnmixResult, nmf, nnls
from napari_unmix.core.analysis import AnalysisConfig, run_analysis
from napari_unmix.core.components import (
    BackgroundMap,
    ComponentSpec,
    FixedW,
    FromComponent,
    Gaussian,
    ImportedMap,
    PreviousResult,
    RoiLabel,
    RoiMask,
    SeedPixels,
    Spectrum,
)
from napari_unmix.core.metrics import abundance_rmse, mean_spectral_angle
from napari_unmix.core.preprocess import Preprocessing
from napari_unmix.core.progress import Cancelled
from napari_unmix.core.spectra import gaussian_model

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
SHAPE = (32, 32)
AXIS = np.linspace(2800.0, 3000.0, 60)


def _crs_scene(seed=0, noise=0.01):
    """Two overlapping resonances (A, B) in blobs over a sloped, uneven background."""
    rng = np.random.default_rng(seed)
    hA = gaussian_model(AXIS, [(2880, 40, 1.0), (2940, 30, 0.3)])
    hB = gaussian_model(AXIS, [(2905, 40, 1.0), (2960, 30, 0.25)])
    hC = 0.6 + 0.4 * (AXIS - 2800) / 200
    H = np.stack([hA, hB, hC])
    yy, xx = np.mgrid[:SHAPE[0], :SHAPE[1]]

    def blob(cy, cx, r):
        return np.clip(1.2 - np.hypot(yy - cy, xx - cx) / r, 0, 1)

    a = np.minimum(blob(10, 10, 7) + blob(22, 24, 5), 1)
    b = np.minimum(blob(10, 20, 7) + blob(24, 10, 6), 1)
    c = gaussian_filter(rng.random(SHAPE), 5)
    c = 0.3 + 0.4 * (c - c.min()) / (c.max() - c.min())
    W = np.stack([a.ravel(), b.ravel(), c.ravel()], axis=1)
    X = W @ H + noise * rng.standard_normal((W.shape[0], AXIS.size))
    stack = np.maximum(X, 0).T.reshape(AXIS.size, *SHAPE).astype(np.float32)
    rois = {"A": (W[:, 0] > 0.9) & (W[:, 1] < 0.05), "B": (W[:, 1] > 0.9) & (W[:, 0] < 0.05),
            "bg": (W[:, 0] == 0) & (W[:, 1] == 0)}
    return stack, W, H, {k: v.reshape(SHAPE) for k, v in rois.items()}


@pytest.fixture(scope="module")
def scene():
    return _crs_scene()


def _seeded_config(rois, **kw):
    comps = [ComponentSpec("A", color="#E69F00", h_source=RoiMask(rois["A"])),
             ComponentSpec("B", color="#56B4E9", h_source=RoiMask(rois["B"])),
             ComponentSpec("bg", h_source=RoiMask(rois["bg"]), background=True)]
    kw.setdefault("preprocessing", Preprocessing(background=FromComponent("bg")))
    kw.setdefault("random_state", 0)
    return AnalysisConfig(mode="seeded-nmf", components=comps, **kw)


@pytest.mark.parametrize("solver, backend", [("auto", "auto"), ("mu", "torch")])
def test_seeded_nmf_beats_random_nmf_on_overlapping_resonances(scene, solver, backend):
    stack, W, H, rois = scene
    opts = dict(solver=solver, backend=backend)
    random_angles = []
    for init, rs in (("nndsvda", 0), ("random", 0), ("random", 1)):
        res = run_analysis(stack, AnalysisConfig(mode="nmf", n_components=3, init=init,
                                                 random_state=rs, **opts), spectral_values=AXIS)
        random_angles.append(mean_spectral_angle(H, res.H))
    seeded = run_analysis(stack, _seeded_config(rois, **opts), spectral_values=AXIS)
    msa = mean_spectral_angle(H, seeded.H)
    rmse = abundance_rmse(W, seeded.W, H_true=H, H_est=seeded.H)
    best_random = min(random_angles)
    print(f"\n[{seeded.params['solver']}/{seeded.backend}] mean spectral angle (rad): seeded "
          f"NNMF {msa:.4f} (abundance RMSE {rmse:.4f}); random NNMF "
          f"{', '.join(f'{a:.4f}' for a in random_angles)} (best {best_random:.4f})")
    assert msa < 0.1
    assert best_random > 0.2
    assert msa < best_random / 3
    assert rmse < 0.05
    assert seeded.mode == "seeded-nmf"
    assert seeded.component_names == ["A", "B", "bg"]
    assert np.array_equal(seeded.spectral_values, AXIS)
    seeds = seeded.summary["seeds"]
    assert [c["working_data"] for c in seeds["components"]] == ["processed", "processed", "raw"]
    assert [s["step"] for s in seeded.summary["preprocessing"]] == ["negative", "background"]


def test_w_seed_mode_nnls_and_selective_both_work_end_to_end(scene):
    stack, W, H, rois = scene
    for mode in ("nnls", "selective_score"):
        res = run_analysis(stack, _seeded_config(rois, w_seed_mode=mode), spectral_values=AXIS)
        assert mean_spectral_angle(H, res.H) < 0.1, mode
        assert res.summary["seeds"]["w_seed_mode"] == mode


def test_locked_rows_stay_bit_identical_while_others_move(scene):
    stack, W, H, rois = scene
    cfg = _seeded_config(rois)
    cfg.components[2] = ComponentSpec("bg", h_source=RoiMask(rois["bg"]), background=True,
                                      locked=True)
    res = run_analysis(stack, cfg, spectral_values=AXIS)
    H0 = res.arrays["H0"]
    assert res.H[2].tobytes() == H0[2].tobytes()
    assert res.params["locked"] == [2]
    for j in (0, 1):
        assert np.abs(res.H[j] - H0[j]).max() > 1e-3 * H0[j].max()
    # fixed-H NNLS is the all-locked case; random NNMF locks nothing
    fixed = run_analysis(stack, cfg.replace(mode="nnls"), spectral_values=AXIS)
    X = stack.reshape(AXIS.size, -1).T
    direct = nnls(X, fixed.H)
    assert np.array_equal(fixed.W, direct.W)
    assert fixed.H.tobytes() == H0.tobytes()
    rnd = run_analysis(stack, AnalysisConfig(mode="nmf", n_components=3, random_state=0))
    assert rnd.params["locked"] == []


def test_fixed_h_nnls_warns_about_fallback_spectra(scene):
    stack, W, H, rois = scene
    comps = [ComponentSpec("A", h_source=RoiMask(rois["A"])), ComponentSpec("mystery")]
    with pytest.warns(UserWarning, match="'mystery'.*emergency stand-in"):
        res = run_analysis(stack, AnalysisConfig(mode="nnls", components=comps, random_state=0))
    rep = res.summary["seeds"]["components"][1]
    assert rep["h_fallback"] in ("residual", "random")
    assert any("emergency fallback" in w for w in rep["warnings"])


def test_every_mode_runs_through_run_analysis(scene):
    stack, W, H, rois = scene
    assert "seeded-nmf" in MODES
    assert MODES["seeded-nmf"].func is nmf
    for mode in MODES:
        if mode in ("seeded-nmf", "nnls"):
            cfg = _seeded_config(rois).replace(mode=mode)
        else:
            cfg = AnalysisConfig(mode=mode, n_components=3, random_state=0)
        res = run_analysis(stack, cfg, spectral_values=AXIS)
        assert res.mode == mode
        assert res.W.shape == (SHAPE[0] * SHAPE[1], 3) and res.H.shape == (3, AXIS.size)
        assert res.params["config"]["mode"] == mode


def _full_config():
    rng = np.random.default_rng(1)
    mask = rng.random(SHAPE) > 0.7
    comps = [
        ComponentSpec("roi", h_source=RoiMask(mask), locked=True),
        ComponentSpec("lab", h_source=RoiLabel(2), use_subtracted=False),
        ComponentSpec("file", h_source=Spectrum(rng.random(20).astype(np.float32),
                                                axis=np.linspace(3000, 2800, 20), label="a.csv:x"),
                      w_source=ImportedMap(rng.random(SHAPE))),
        ComponentSpec("gauss", h_source=Gaussian([(2850, 30, 2.0), (2900, 10, 0.5)],
                                                 n_seed_pixels=5)),
        ComponentSpec("pix", h_source=SeedPixels(pixels=np.array([[1, 2], [3, 4]]))),
        ComponentSpec("best", h_source=SeedPixels(n_best=7, model=Gaussian([(2950, 20, 1)]))),
        ComponentSpec("prev", h_source=PreviousResult(h=rng.random(60)),
                      w_source=FixedW(rng.random(SHAPE[0] * SHAPE[1]))),
        ComponentSpec("bg", background=True, w_source=BackgroundMap()),
        ComponentSpec("free"),
    ]
    return AnalysisConfig(mode="seeded-nmf", components=comps, w_seed_mode="selective_score",
                          overwrite=False, h_fallback="random", residual_score=False,
                          preprocessing=Preprocessing(background=FromComponent("roi"),
                                                      smoothing="gaussian", sigma=1.5),
                          fit_data="processed", solver="mu", backend="torch", tol=1e-5,
                          max_iter=77, random_state=123, negative="clip", device="cpu",
                          spectral_unit="cm^-1")


def test_config_json_round_trip_is_exact(tmp_path):
    cfg = _full_config()
    text = cfg.to_json()
    back = AnalysisConfig.from_json(text)
    assert back.to_json() == text
    assert back.components[2].h_source.values.tobytes() == \
        cfg.components[2].h_source.values.tobytes()
    assert back.components[2].h_source.values.dtype == np.float32
    assert back.preprocessing.background.name == "roi"
    path = cfg.save(tmp_path / "analysis.json")
    assert AnalysisConfig.load(path).to_json() == text
    d = json.loads(text)
    assert d["format"] == "napari-unmix-config" and d["random_state"] == 123
    with pytest.raises(ValueError, match="Unknown config field"):
        AnalysisConfig.from_dict({**d, "colour": 1})
    with pytest.raises(ValueError, match="newer napari-unmix"):
        AnalysisConfig.from_dict({**d, "format_version": 99})


def test_config_validation():
    with pytest.raises(ValueError, match="Unknown mode"):
        AnalysisConfig(mode="ica")
    with pytest.raises(ValueError, match="w_seed_mode='best' is not one of"):
        AnalysisConfig(w_seed_mode="best")
    with pytest.raises(ValueError, match="fit_data"):
        AnalysisConfig(fit_data="both")
    with pytest.raises(ValueError, match="unique"):
        AnalysisConfig(components=[ComponentSpec("a"), ComponentSpec("a")])
    with pytest.raises(ValueError, match="component 'bg', which is not among"):
        AnalysisConfig(components=[ComponentSpec("a")],
                       preprocessing=Preprocessing(background=FromComponent("bg")))


def test_run_analysis_errors(scene):
    stack, W, H, rois = scene
    with pytest.raises(ValueError, match="needs components"):
        run_analysis(stack, AnalysisConfig(mode="seeded-nmf"))
    with pytest.raises(ValueError, match="n_components=4 but 3 components"):
        run_analysis(stack, _seeded_config(rois, n_components=4))
    with pytest.raises(ValueError, match="spectral_values has 10 values"):
        run_analysis(stack, _seeded_config(rois), spectral_values=np.arange(10.0))
    n = stack.shape[0]
    # the right count in the wrong shape: the message said "has 16 values but ... 16"
    with pytest.raises(ValueError, match=rf"spectral_values has shape \(1, {n}\); give a "
                                         rf"flat list of values but .* has {n} channels"):
        run_analysis(stack, _seeded_config(rois), spectral_values=np.arange(float(n))[None])
    with pytest.raises(TypeError, match="spectral_values are complex numbers"):
        run_analysis(stack, _seeded_config(rois), spectral_values=np.arange(n) + 1j)
    bad_axis = np.arange(float(stack.shape[0]))
    bad_axis[[2, 5]] = np.nan, np.inf
    for cfg in (_seeded_config(rois), AnalysisConfig(mode="pca", n_components=2)):
        with pytest.raises(ValueError, match=r"2 NaN or infinite value\(s\) \(at channel\(s\) "
                                             r"2, 5\)"):
            run_analysis(stack, cfg, spectral_values=bad_axis)
    with pytest.raises(ValueError, match="processed data holds .* negative"):
        run_analysis(stack, _seeded_config(rois, fit_data="processed"))
    res = run_analysis(stack, _seeded_config(rois, fit_data="processed", negative="clip"))
    assert res.summary["fit_data"] == "processed"
    with pytest.raises(Cancelled):
        run_analysis(stack, _seeded_config(rois), callback=lambda info: False)


def test_labels_and_full_config_run(scene):
    stack, W, H, rois = scene
    labels = np.zeros(SHAPE, dtype=np.int32)
    labels[rois["A"]] = 1
    labels[rois["B"]] = 2
    cfg = _full_config()
    # several components are seeded with spectra this scene does not hold (random
    # values, a made-up model): the fit moves them far, and says so
    with pytest.warns(ConvergenceWarning, match="max_iter=77"), \
            pytest.warns(UserWarning, match="moved .* deg away from its seed"):
        res = run_analysis(stack, cfg, spectral_values=AXIS, labels=labels)
    reps = {r["name"]: r for r in res.summary["seeds"]["components"]}
    assert reps["lab"]["h_source"] == "roi-label 2" and reps["lab"]["working_data"] == "raw"
    assert reps["gauss"]["w_source"] == "spectral-info"  # overwrite=False keeps it
    assert reps["free"]["h_fallback"] == "random"
    assert reps["prev"]["w_source"] == "fixed-w"
    assert res.params["locked"] == [0]
    assert res.summary["labels_sha256"]
    assert [s["step"] for s in res.summary["preprocessing"]] == \
        ["negative", "background", "smoothing", "negative (processed data)"]


def test_same_config_twice_and_saved_result_rerun_are_identical(scene, tmp_path):
    stack, W, H, rois = scene
    cfg = _seeded_config(rois, random_state=None)
    a = run_analysis(stack, cfg, spectral_values=AXIS)
    seed = a.params["config"]["random_state"]
    assert isinstance(seed, int) and a.params["random_state"] == seed
    b = run_analysis(stack, cfg.replace(random_state=seed), spectral_values=AXIS)
    assert a.W.tobytes() == b.W.tobytes() and a.H.tobytes() == b.H.tobytes()

    path = a.save(tmp_path / "res.npz")
    loaded = UnmixResult.load(path)
    assert any(k.startswith("config/") for k in loaded.arrays)
    again = AnalysisConfig.from_result(loaded)
    assert again.to_json() == cfg.replace(random_state=seed).to_json()
    c = run_analysis(stack, again, spectral_values=AXIS)
    assert a.W.tobytes() == c.W.tobytes() and a.H.tobytes() == c.H.tobytes()
    assert np.array_equal(loaded.arrays["H0"], a.arrays["H0"])
    with pytest.raises(ValueError, match="holds no analysis config"):
        AnalysisConfig.from_result(nmf(stack.reshape(AXIS.size, -1).T, 2, random_state=0))


def test_random_nmf_same_random_state_identical(scene):
    stack, W, H, rois = scene
    cfg = AnalysisConfig(mode="nmf", n_components=3, init="random", random_state=7)
    a, b = run_analysis(stack, cfg), run_analysis(stack, cfg)
    assert a.W.tobytes() == b.W.tobytes() and a.H.tobytes() == b.H.tobytes()


def test_analysis_does_not_modify_inputs(scene):
    stack, W, H, rois = scene
    stack = stack.copy()
    before = stack.copy()
    cfg = _seeded_config(rois)
    masks = [c.h_source.mask.copy() for c in cfg.components]
    stack.setflags(write=False)
    run_analysis(stack, cfg, spectral_values=AXIS)
    assert stack.tobytes() == before.tobytes()
    for c, m in zip(cfg.components, masks, strict=True):
        assert np.array_equal(c.h_source.mask, m)
    assert cfg.random_state == 0


# -- real data ------------------------------------------------------------------------------
def _need(path):
    if not path.exists():
        pytest.skip(f"real data not found at {path} (see shared/data/README.md)")


def _samson():
    from scipy.io import loadmat

    path = DATA / "samson" / "Samson.mat"
    _need(path)
    d = loadmat(path)
    cube = d["Y"].T.reshape(95, 95, 156, order="F")  # column-major pixel order
    return cube, d["GT"], d["S_GT"].reshape(-1, 3), ["rock", "tree", "water"]


def _jasper():
    from scipy.io import loadmat

    path = DATA / "jasper_ridge" / "jasperRidge2_R198.mat"
    _need(path)
    d = loadmat(path)
    cube = d["Y"].T.reshape(100, 100, 198, order="F") / 5000.0  # reflectance
    A = d["A"].T.reshape(100, 100, 4, order="F")
    # the central 50 x 50 pixels hold all four materials; a crop keeps the test fast
    crop = (slice(25, 75), slice(25, 75))
    return cube[crop], d["M"].T, A[crop].reshape(-1, 4), ["tree", "water", "soil", "road"]


@pytest.mark.realdata
@pytest.mark.parametrize("loader, limits", [
    (_samson, {"nnls": 0.01, "seeded": (0.08, 0.06)}),
    (_jasper, {"nnls": 0.07, "seeded": (0.1, 0.08)}),
], ids=["samson", "jasper"])
def test_published_endmembers_as_seeds(loader, limits):
    cube, M, A, names = loader()
    comps = [ComponentSpec(n, h_source=Spectrum(M[i])) for i, n in enumerate(names)]
    fixed = run_analysis(cube, AnalysisConfig(mode="nnls", components=comps),
                         spectral_axis=-1)
    rmse_fixed = abundance_rmse(A, fixed.W, H_true=M, H_est=fixed.H, scale="sum-to-one")
    # scikit-learn's mu cannot anchor the spectra: a free seeded fit (anchor=0)
    seeded = run_analysis(cube, AnalysisConfig(mode="seeded-nmf", components=comps,
                                               solver="mu", backend="sklearn", tol=1e-3,
                                               random_state=0, anchor=0.0), spectral_axis=-1)
    msa = mean_spectral_angle(M, seeded.H)
    rmse = abundance_rmse(A, seeded.W, H_true=M, H_est=seeded.H, scale="sum-to-one")
    print(f"\nfixed-H NNLS: angle 0 (spectra fixed), abundance RMSE {rmse_fixed:.4f}; "
          f"seeded NNMF: angle {msa:.4f} rad, abundance RMSE {rmse:.4f}")
    assert mean_spectral_angle(M, fixed.H) < 1e-6
    assert rmse_fixed < limits["nnls"]
    assert msa < limits["seeded"][0] and rmse < limits["seeded"][1]


@pytest.mark.realdata
def test_emulsion_negative_values_need_an_explicit_policy():
    path = DATA / "supure_raman_emulsion" / "emulsion_hsi.npz"
    _need(path)
    d = np.load(path)
    cube, wn = d["cube"], d["wavenumber_cm1"]
    X = cube.reshape(-1, cube.shape[-1])
    bright = (X.sum(1) > np.quantile(X.sum(1), 0.95)).reshape(cube.shape[:2])
    dim = (X.sum(1) < np.quantile(X.sum(1), 0.05)).reshape(cube.shape[:2])
    comps = [ComponentSpec("bright", h_source=RoiMask(bright)),
             ComponentSpec("dim", h_source=RoiMask(dim))]
    cfg = AnalysisConfig(mode="nnls", components=comps)
    with pytest.raises(ValueError, match=r"negative value.*negative='clip'.*negative='offset'"):
        run_analysis(cube, cfg, spectral_values=wn, spectral_axis=-1)
    for policy in ("clip", "offset"):
        res = run_analysis(cube, cfg.replace(negative=policy), spectral_values=wn,
                           spectral_axis=-1)
        neg = res.summary["negative"]
        assert neg["policy"] == policy and neg["n_negative"] > 0
        assert neg["min_value"] == pytest.approx(float(cube.min()))
        if policy == "offset":
            assert neg["offset"] == pytest.approx(-float(cube.min()))
        assert np.isfinite(res.W).all() and res.W.min() >= 0
        assert res.params["config"]["negative"] == policy


def test_a_unit_without_spectral_values_is_not_recorded():
    # channel indices have no unit: a config naming one used to be recorded in the
    # result (and its result.json) as if the channels were in it
    X = np.random.default_rng(0).random((8, 6, 5)).astype(np.float32)
    cfg = AnalysisConfig(mode="pca", n_components=2, spectral_unit="cm^-1")
    with pytest.warns(UserWarning, match=r"spectral_unit 'cm\^-1' is not recorded"):
        res = run_analysis(X, cfg)
    assert res.spectral_unit is None and res.spectral_values is None
    assert res.config.spectral_unit is None
    assert json.loads(json.dumps(res.params["config"])).get("spectral_unit") is None
    values = np.linspace(2800.0, 3000.0, 8)
    res = run_analysis(X, cfg, spectral_values=values)  # no warning: the unit is kept
    assert res.spectral_unit == "cm^-1"
    np.testing.assert_array_equal(res.spectral_values, values)
