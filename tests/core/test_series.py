"""Series (z / t) unmixing: shared basis and per-slice runs on the synthetic 4-D CRS sample.

References and margins
----------------------
* With the true spectra as the shared basis, fixed-H NNLS is the best any method
  can do; its abundance error is set by the noise.  The unconstrained least-squares
  estimate has error ``sigma * sqrt(diag((H H^T)^-1))`` per component; NNLS only
  adds information (``W >= 0``), so its RMSE must not exceed that (10 % slack for
  the finite sample).  The residual of a fit with ``k`` spectra on ``C`` channels
  removes ``k`` of the ``C`` noise dimensions, so every plane's relative error must
  be ``noise_floor * sqrt(1 - k / C)`` within 3 %.
* A fitted shared basis (seeded NNMF from spectra 10 cm^-1 off, 0.197 rad from the
  truth) is compared with the truth (spectral angle, abundance RMSE after the
  least-squares scale the model cannot fix) and with per-slice fits of the same
  config.  Its spectra must end closer to the truth than the seeds (< 0.7x the
  seed angle; measured 0.50-0.58x with the default solver, 0.38-0.47x with MU), and
  sharing one basis must cost at most 25 % accuracy per plane against per-slice
  fits (measured -15 % to +5 % with the default solver; -20 % to +25 % over all
  registered NNMF solvers).  The maps must stay within 2.5x of what the true
  spectra give (measured 1.8-2.3x with the default solver, 1.4-1.7x with MU; NNMF
  fits part of the noise on this sample, its relative error drops below the noise
  floor, so its spectra drift off the truth).
* Random NNMF is not identifiable on the CRS spectra (flat background, overlapping
  C-H bands: per-plane angles to the truth ~0.3 rad and drifts between planes up to
  0.75 rad were measured), so the test of consistent component order uses the
  sample's true maps with four separated bands, where per-plane NNMF solutions are
  stable but come out in different orders.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from napari_unmix.core import (
    AnalysisConfig,
    Cancelled,
    ComponentSpec,
    RoiMask,
    Spectrum,
    nnls,
    pca,
    stack_to_matrix,
)
from napari_unmix.core.metrics import (
    abundance_rmse,
    match_components,
    mean_spectral_angle,
    spectral_angle,
)
from napari_unmix.core.series import (
    SeriesProgressInfo,
    SeriesResult,
    default_series_axis,
    unmix_series,
)
from napari_unmix.core.series.matching import match_spectra
from napari_unmix.core.synthetic import crs_spectra, make_crs_sample_4d

Z, SHAPE, C, K = 4, (32, 32), 24, 4


@pytest.fixture(scope="module")
def sample():
    return make_crs_sample_4d(n_planes=Z, shape=SHAPE, n_channels=C, noise=0.01, random_state=0)


@pytest.fixture(scope="module")
def shifted_components(sample):
    """Seed spectra: the true band shapes 10 cm^-1 off (0.197 rad mean angle to the truth)."""
    seeds = crs_spectra(sample.spectral_axis + 10.0)
    return [ComponentSpec(n, h_source=Spectrum(seeds[i]))
            for i, n in enumerate(sample.component_names)]


def plane_matrix(stack, z):
    return stack_to_matrix(stack[z], 0)[0]


def true_W(sample, z):
    return sample.maps[:, z].reshape(K, -1).T


def est_W(res, z):
    return res.maps[:, z].reshape(res.n_components, -1).T


def plane_noise_floor(sample, z):
    clean = sample.clean()[z]
    noisy = sample.stack[z].astype(np.float64)
    return float(np.linalg.norm(noisy - clean) / np.linalg.norm(noisy))


# --------------------------------------------------------------------- shared basis
def test_shared_true_basis_reaches_the_noise_limit(sample):
    res = unmix_series(sample.stack, H=sample.H)
    assert res.maps.shape == (K, Z, *SHAPE) and res.H.shape == (K, C)
    sigma = sample.noise * float((sample.W @ sample.H).max())
    ls_rmse = sigma * np.sqrt(np.mean(np.diag(np.linalg.inv(sample.H @ sample.H.T))))
    shrink = np.sqrt(1 - K / C)
    for z in range(Z):
        rmse = abundance_rmse(true_W(sample, z), est_W(res, z), H_true=sample.H, H_est=res.H,
                              scale="none")
        assert rmse <= 1.1 * ls_rmse, (z, rmse, ls_rmse)  # measured 0.018 vs 0.022
        rel = res.planes[z]["relative_error"]
        assert rel == pytest.approx(plane_noise_floor(sample, z) * shrink, rel=0.03)
    assert res.summary["basis"]["source"] == "given"
    assert res.summary["hit_max_iter"] is False
    assert [p["plane"] for p in res.planes] == list(range(Z))


def test_shared_basis_equals_nnls_plane_by_plane(sample):
    res = unmix_series(sample.stack, H=sample.H)
    for z in range(Z):
        ref = nnls(plane_matrix(sample.stack, z), sample.H)
        np.testing.assert_array_equal(est_W(res, z), ref.W)
        assert res.planes[z]["reconstruction_err"] == pytest.approx(ref.reconstruction_err)


@pytest.mark.parametrize("reference", ["pooled", 2])
def test_fitted_shared_basis_matches_truth_and_per_slice(sample, shifted_components, reference):
    cfg = AnalysisConfig(mode="seeded-nmf", components=shifted_components, random_state=0,
                         max_iter=3000)
    shared = unmix_series(sample.stack, cfg, reference=reference)
    per_slice = unmix_series(sample.stack, cfg, strategy="per-slice")
    truth = unmix_series(sample.stack, H=sample.H)
    seed_angle = mean_spectral_angle(sample.H, crs_spectra(sample.spectral_axis + 10.0))
    angle = mean_spectral_angle(sample.H, shared.H)
    assert angle < 0.7 * seed_angle, (angle, seed_angle)  # measured 0.114 / 0.098 vs 0.197
    assert shared.component_names == list(sample.component_names)
    for z in range(Z):
        kw = {"H_true": sample.H}
        e_shared = abundance_rmse(true_W(sample, z), est_W(shared, z), H_est=shared.H, **kw)
        e_slice = abundance_rmse(true_W(sample, z), est_W(per_slice, z),
                                 H_est=per_slice.H[z], **kw)
        e_truth = abundance_rmse(true_W(sample, z), est_W(truth, z), H_est=sample.H, **kw)
        assert e_shared <= 1.25 * e_slice, (z, e_shared, e_slice)
        assert e_shared <= 2.5 * e_truth, (z, e_shared, e_truth)
        # the maps are the fixed-H NNLS abundances of the shared basis
        np.testing.assert_array_equal(est_W(shared, z),
                                      nnls(plane_matrix(sample.stack, z), shared.H).W)
    basis = shared.summary["basis"]
    if reference == "pooled":
        assert basis["source"] == "pooled"
        assert basis["pool_size"] == SHAPE[0] * SHAPE[1]  # default: one plane's pixels
        assert basis["pool_pixels_per_plane"] == [SHAPE[0] * SHAPE[1] // Z] * Z
    else:
        assert basis == {**basis, "source": "plane", "plane": 2}
    assert basis["mode"] == "seeded-nmf" and basis["n_iter"] > 0


def test_shared_basis_from_nnls_config_equals_per_slice_nnls(sample, shifted_components):
    """Plane-independent seed spectra: per-slice NNLS and the shared basis agree exactly."""
    cfg = AnalysisConfig(mode="nnls", components=shifted_components)
    shared = unmix_series(sample.stack, cfg, reference=0)
    per_slice = unmix_series(sample.stack, cfg, strategy="per-slice")
    assert per_slice.H.shape == (Z, K, C)
    for z in range(Z):
        np.testing.assert_array_equal(per_slice.H[z], shared.H)
        ref = nnls(plane_matrix(sample.stack, z), per_slice.H[z])
        np.testing.assert_array_equal(est_W(per_slice, z), ref.W)
        np.testing.assert_array_equal(est_W(shared, z), ref.W)
    assert per_slice.summary["match"]["policy"] == "none"  # seeded: order from the seeds
    assert per_slice.summary["match"]["max_angle"] == pytest.approx(0.0, abs=1e-6)


# ------------------------------------------------------------------------- per slice
@pytest.fixture(scope="module")
def separated(sample):
    """The sample's true maps with four separated bands instead of the CRS spectra."""
    nu = sample.spectral_axis
    H = np.stack([np.exp(-0.5 * ((nu - c) / 15.0) ** 2) for c in (2850, 2930, 3010, 3080)])
    clean = np.einsum("kzyx,kc->zcyx", sample.maps, H)
    noise = 0.01 * clean.max() * np.random.default_rng(1).standard_normal(clean.shape)
    return np.clip(clean + noise, 0, None).astype(np.float32), H


def test_per_slice_gives_one_component_order_across_planes(separated):
    stack, H = separated
    cfg = AnalysisConfig(mode="nmf", n_components=K, random_state=0, max_iter=2000,
                         solver="mu", backend="sklearn")
    raw = unmix_series(stack, cfg, strategy="per-slice", match="none")
    matched = unmix_series(stack, cfg, strategy="per-slice")  # auto -> "previous"

    def truth_order(res):
        return [tuple(match_components(H, res.H[z]).est_index) for z in range(Z)]

    assert len(set(truth_order(raw))) > 1  # the solver's own order changes between planes
    assert len(set(truth_order(matched))) == 1
    info = matched.summary["match"]
    assert info["policy"] == "previous" and info["reordered_planes"]
    assert info["max_angle"] < 0.25  # measured 0.178; unmatched: 1.49
    assert raw.summary["match"]["max_angle"] > 1.0
    for z in range(1, Z):
        p = matched.planes[z]
        assert p["matched_to"] == z - 1 and len(p["angles"]) == K
        # maps were permuted with their spectra: plane z still equals the solver's output
        order = p["order"]
        np.testing.assert_array_equal(matched.maps[:, z], raw.maps[order, z])
        np.testing.assert_array_equal(matched.H[z], raw.H[z][order])


def test_per_slice_reference_plane_anchors_the_order(separated):
    stack, H = separated
    cfg = AnalysisConfig(mode="nmf", n_components=K, random_state=0, max_iter=2000,
                         solver="mu", backend="sklearn")
    res = unmix_series(stack, cfg, strategy="per-slice", reference=2, match="reference")
    assert res.planes[2]["order"] == list(range(K)) and res.planes[2]["matched_to"] is None
    assert all(res.planes[z]["matched_to"] == 2 for z in (0, 1, 3))
    ref_order = match_components(H, res.H[2]).est_index
    for z in range(Z):
        np.testing.assert_array_equal(match_components(H, res.H[z]).est_index, ref_order)


def test_pca_matching_flips_signs_and_reorders():
    rng = np.random.default_rng(3)
    H_ref = np.linalg.qr(rng.standard_normal((12, 3)))[0].T
    order, signs, angles = match_spectra(H_ref, -H_ref[[2, 0, 1]], signed=True)
    np.testing.assert_array_equal(order, [1, 2, 0])
    np.testing.assert_array_equal(signs, [-1, -1, -1])
    np.testing.assert_allclose(angles, 0, atol=1e-7)


def test_per_slice_pca_maps_follow_their_loadings(sample):
    res = unmix_series(sample.stack, {"mode": "pca", "n_components": 3}, strategy="per-slice")
    assert res.mode == "pca" and res.H.shape == (Z, 3, C)
    for z in range(Z):
        ref = pca(plane_matrix(sample.stack, z), 3)
        p = res.planes[z]
        signs = np.array(p["signs"])
        np.testing.assert_allclose(est_W(res, z), ref.W[:, p["order"]] * signs, rtol=1e-6)
        np.testing.assert_allclose(res.H[z], ref.H[p["order"]] * signs[:, None], rtol=1e-6)
    # the reported angles are those between neighbouring planes' matched loadings
    for z in range(1, Z):
        a = spectral_angle(res.H[z], res.H[z - 1])
        np.testing.assert_allclose(res.planes[z]["angles"], np.minimum(a, np.pi - a), atol=1e-9)
    assert max(res.planes[z]["angles"][0] for z in range(Z)) < 0.2  # PC1: measured 0.15
    for z in range(Z):  # per-component summaries follow the matched order
        evr = pca(plane_matrix(sample.stack, z), 3).explained_variance_ratio[:3]
        np.testing.assert_allclose(res.planes[z]["explained_variance_ratio"],
                                   evr[res.planes[z]["order"]])


# ------------------------------------------------------------------ arrays and layout
class PlaneOnly:
    """An array-like that refuses to hand out more than one plane at a time."""

    def __init__(self, data, series_axis=0):
        self.data, self.series_axis = data, series_axis
        self.shape, self.ndim, self.dtype = data.shape, data.ndim, data.dtype
        self.reads = []

    def __getitem__(self, index):
        assert isinstance(index[self.series_axis], int), f"multi-plane read {index}"
        self.reads.append(index[self.series_axis])
        return self.data[index]

    def __array__(self, *args, **kwargs):
        raise AssertionError("the whole series was converted to one array")


def test_dask_stack_gives_the_numpy_result(sample, shifted_components):
    da = pytest.importorskip("dask.array")
    lazy = da.from_array(sample.stack, chunks=(1, C, 16, 16))
    cfg = AnalysisConfig(mode="seeded-nmf", components=shifted_components, random_state=0)
    for kw in ({"reference": "pooled"}, {"strategy": "per-slice"}):
        a = unmix_series(sample.stack, cfg, **kw)
        b = unmix_series(lazy, cfg, **kw)
        np.testing.assert_array_equal(a.maps, b.maps)
        np.testing.assert_array_equal(a.H, b.H)


def test_stack_is_read_one_plane_at_a_time(sample, shifted_components):
    cfg = AnalysisConfig(mode="seeded-nmf", components=shifted_components, random_state=0)
    wrapped = PlaneOnly(sample.stack)
    res = unmix_series(wrapped, cfg)
    assert wrapped.reads == list(range(Z)) * 2  # sampling pass, then the NNLS pass
    np.testing.assert_array_equal(res.maps, unmix_series(sample.stack, cfg).maps)


def test_axis_layouts_give_the_same_maps(sample):
    ref = unmix_series(sample.stack, H=sample.H)
    czyx = np.ascontiguousarray(np.moveaxis(sample.stack, 1, 0))
    zyxc = np.ascontiguousarray(np.moveaxis(sample.stack, 1, -1))
    yxzc = np.ascontiguousarray(np.transpose(sample.stack, (2, 3, 0, 1)))
    for stack, kw in ((czyx, {"series_axis": 1, "spectral_axis": 0}),
                      (zyxc, {"series_axis": 0, "spectral_axis": -1}),
                      (yxzc, {"series_axis": 2, "spectral_axis": 3})):
        res = unmix_series(stack, H=sample.H, **kw)
        # maps are always (k, n_planes, *plane_shape), whatever the stack's layout
        np.testing.assert_array_equal(res.maps, ref.maps)


# --------------------------------------------------------------- progress and cancel
def test_progress_covers_the_series_and_never_goes_back(sample, shifted_components):
    infos = []
    cfg = AnalysisConfig(mode="seeded-nmf", components=shifted_components, random_state=0)
    unmix_series(sample.stack, cfg, callback=infos.append)
    assert all(isinstance(i, SeriesProgressInfo) and i.n_planes == Z for i in infos)
    fractions = [i.fraction for i in infos]
    assert fractions == sorted(fractions) and fractions[-1] == pytest.approx(1.0)
    stages = [i.stage for i in infos]
    assert stages.count("sample") == Z and stages.count("series") == Z
    assert {i.plane for i in infos if i.stage == "nmf"} == {None}  # the pooled basis fit
    assert [i.plane for i in infos if i.stage == "series"] == list(range(Z))


@pytest.mark.parametrize("stop_at", [("nmf", None), ("nnls", 2), ("series", 1)])
def test_cancel_stops_the_run(sample, shifted_components, stop_at):
    cfg = AnalysisConfig(mode="seeded-nmf", components=shifted_components, random_state=0)
    seen = []

    def callback(info):
        seen.append((info.stage, info.plane))
        return (info.stage, info.plane) != stop_at

    with pytest.raises(Cancelled):
        unmix_series(sample.stack, cfg, callback=callback)
    assert seen[-1] == stop_at
    if stop_at[1] is not None:  # no plane was fitted after the cancelled one
        assert all(p <= stop_at[1] for s, p in seen if s in ("nnls", "series"))


# ------------------------------------------------------------------- reproducibility
def test_save_load_and_rerun_are_exact(sample, shifted_components, tmp_path):
    cfg = AnalysisConfig(mode="seeded-nmf", components=shifted_components)  # random_state None
    res = unmix_series(sample.stack, cfg, spectral_values=sample.spectral_axis)
    assert isinstance(res.params["config"]["random_state"], int)
    path = res.save(tmp_path / "series")
    with pytest.raises(IsADirectoryError, match="is a folder; give a file name"):
        res.save(tmp_path)  # would have written a sibling of tmp_path
    assert not tmp_path.with_suffix(".npz").exists()
    back = SeriesResult.load(path)
    np.testing.assert_array_equal(back.maps, res.maps)
    np.testing.assert_array_equal(back.H, res.H)
    np.testing.assert_array_equal(back.spectral_values, sample.spectral_axis)
    assert back.planes == res.planes and back.params == res.params
    again = back.rerun(sample.stack)
    np.testing.assert_array_equal(again.maps, res.maps)
    np.testing.assert_array_equal(again.H, res.H)
    plane = res.plane_result(1)
    np.testing.assert_array_equal(plane.W, est_W(res, 1))
    assert plane.summary["plane"] == 1 and plane.component_names == res.component_names


def test_warnings_of_many_planes_come_once_naming_the_planes(sample, shifted_components):
    cfg = AnalysisConfig(mode="seeded-nmf", components=shifted_components, random_state=0,
                         max_iter=3)
    with pytest.warns(ConvergenceWarning) as record:
        res = unmix_series(sample.stack, cfg, strategy="per-slice")
    messages = [str(w.message) for w in record if w.category is ConvergenceWarning]
    assert len(messages) == 1 and messages[0].startswith("4 of 4 planes (0-3): NNMF")
    assert res.summary["planes_hit_max_iter"] == list(range(Z))
    assert all(p["hit_max_iter"] and p["warnings"] for p in res.planes)
    with pytest.warns(ConvergenceWarning, match="^basis fit: NNMF") as record:
        res = unmix_series(sample.stack, cfg)
    assert len(record) == 1 and res.summary["basis"]["hit_max_iter"]


# ------------------------------------------------------------------------ bad input
@pytest.mark.parametrize(("kw", "err", "match"), [
    ({"series_axis": 1, "spectral_axis": 1}, ValueError, "must be different axes"),
    ({"series_axis": 4}, ValueError, "series_axis=4 is out of range"),
    ({"spectral_axis": -5}, ValueError, "spectral_axis=-5 is out of range"),
    ({"series_axis": True}, TypeError, "series_axis must be an int"),
    ({"spectral_axis": 1.0}, TypeError, "spectral_axis must be an int"),
])
def test_bad_axes_are_refused(sample, kw, err, match):
    with pytest.raises(err, match=match):
        unmix_series(sample.stack, H=sample.H, **kw)


def test_bad_options_are_refused_with_advice(sample):
    stack = sample.stack
    with pytest.raises(ValueError, match="needs a series axis"):
        unmix_series(stack[0, :, 0], H=sample.H)
    with pytest.raises(ValueError, match="has 10 channel"):
        unmix_series(stack, H=sample.H[:, :10])
    with pytest.raises(ValueError, match=r"reference=7 is out of range.*4 plane"):
        unmix_series(stack, {"mode": "nmf", "n_components": 2}, reference=7)
    with pytest.raises(ValueError, match="leave reference out"):
        unmix_series(stack, H=sample.H, reference=0)
    with pytest.raises(ValueError, match="strategy='shared-basis'"):
        unmix_series(stack, H=sample.H, strategy="per-slice")
    with pytest.raises(ValueError, match="strategy='per-slice' for PCA"):
        unmix_series(stack, {"mode": "pca", "n_components": 2})
    with pytest.raises(ValueError, match="strategy="):
        unmix_series(stack, H=sample.H, strategy="pooled")
    with pytest.raises(ValueError, match="spectral_values has 3 values"):
        unmix_series(stack, H=sample.H, spectral_values=[1, 2, 3])
    with pytest.raises(ValueError, match="AnalysisConfig"):
        unmix_series(stack)
    roi = np.zeros(SHAPE, dtype=bool)
    roi[:4, :4] = True
    cfg = AnalysisConfig(mode="seeded-nmf", components=[ComponentSpec("a", h_source=RoiMask(roi)),
                                                         ComponentSpec("b")])
    with pytest.raises(ValueError, match=r"no image geometry.*'a' spectrum.*reference=<plane"):
        unmix_series(stack, cfg)


def test_bad_plane_is_named(sample):
    stack = sample.stack.copy()
    stack[2, 3, 5, 5] = np.nan
    with pytest.raises(ValueError, match="plane 2: .*NaN"):
        unmix_series(stack, H=sample.H)
    with pytest.raises(ValueError, match="labels has shape"):
        unmix_series(sample.stack, {"mode": "nmf", "n_components": 2}, reference=0,
                     labels=np.zeros((5, 5), int))


def test_per_plane_labels_seed_every_plane(sample):
    """RoiLabel seeds with one label image per plane: each plane uses its own."""
    from napari_unmix.core import RoiLabel, run_analysis

    dominant = np.argmax(sample.maps, axis=0) + 1  # (Z, Y, X): label of the largest share
    cfg = AnalysisConfig(mode="nnls", components=[
        ComponentSpec("water", h_source=RoiLabel(3)), ComponentSpec("protein")], random_state=0)
    with pytest.warns(UserWarning, match=r"4 of 4 planes \(0-3\): .*fallback spectrum"):
        res = unmix_series(sample.stack, cfg, strategy="per-slice", labels=dominant)
    for z in (0, 3):
        with pytest.warns(UserWarning, match="fallback spectrum"):
            ref = run_analysis(sample.stack[z], cfg, labels=dominant[z])
        np.testing.assert_array_equal(est_W(res, z), ref.W)
        np.testing.assert_array_equal(res.H[z], ref.H)
    assert all(p["seeds"]["fallbacks"] == ["protein"] for p in res.planes)  # kept per plane
    with pytest.raises(ValueError, match="no image geometry.*'water' spectrum"):
        unmix_series(sample.stack, cfg, labels=dominant)
    shared = unmix_series(sample.stack, cfg.replace(components=cfg.components[:1]),
                          reference=1, labels=dominant)
    np.testing.assert_array_equal(shared.H, res.H[1][:1])


@pytest.mark.parametrize("shape, spectral_axis, axis", [
    ((3, 8, 5, 6), 1, 0),       # (Z, C, Y, X)
    ((8, 3, 5, 6), 0, 1),       # (C, Z, Y, X)
    ((2, 3, 8, 5, 6), 2, 0),    # (T, Z, C, Y, X): a series of volumes along T
    ((3, 5, 6, 8), -1, 0),      # (Z, Y, X, C)
    ((8, 5, 6), 0, None),       # (C, Y, X): no series axis
])
def test_default_series_axis_is_the_first_axis_in_front_of_the_plane(shape, spectral_axis,
                                                                      axis):
    """The rule the dock and the CLI share: the first non-spectral axis in front of Y-X."""
    assert default_series_axis(len(shape), spectral_axis) == axis
