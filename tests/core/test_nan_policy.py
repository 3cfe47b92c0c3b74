"""``AnalysisConfig.nan_policy="omit"``: pixels with NaN or infinite values left out.

The reference is the same analysis of the stack cropped to the finite pixels: when
the left-out pixels are whole image rows, cropping them gives the same pixels in
the same order, so every mode must give the same spectra and maps bit for bit, and
NaN maps where the pixels were left out (RELIABILITY, C: "a result on masked data
equals the result on the cropped data; masked pixels come back as NaN").
"""

from __future__ import annotations

import numpy as np
import pytest

from napari_unmix.core import (
    AnalysisConfig,
    ComponentSpec,
    FixedW,
    RoiLabel,
    RoiMask,
    SeedPixels,
    Spectrum,
    UnmixResult,
    run_analysis,
)
from napari_unmix.core.synthetic import make_crs_sample


@pytest.fixture(scope="module")
def sample():
    return make_crs_sample(shape=(20, 16), n_channels=24, random_state=3)


@pytest.fixture(scope="module")
def holed(sample):
    """The sample with image rows 0 and 7 blanked by NaN (one value each suffices)."""
    stack = sample.stack.astype(np.float64).copy()
    stack[5, 0, :] = np.nan
    stack[:, 7, :] = np.nan
    stack[2, 7, 3] = np.inf
    return stack


KEPT = np.r_[1:7, 8:20]  # the image rows left


def _labels(sample):
    lab = np.zeros(sample.stack.shape[1:], dtype=np.int32)
    share = sample.W / sample.W.sum(axis=1, keepdims=True)
    for j in range(3):
        lab.reshape(-1)[np.argsort(-share[:, j])[:12]] = j + 1
    lab[7, :4] = 1  # some of label 1 on a blanked row: those pixels drop out
    return lab


def _configs(sample, rows=slice(None)):
    """Each mode's config and label image; ``rows``: the image rows its images keep."""
    lab = _labels(sample)[rows]
    roi = lab == 2
    yield "nmf", AnalysisConfig(mode="nmf", n_components=3, random_state=0, max_iter=60), None
    yield "pca", AnalysisConfig(mode="pca", n_components=3), None
    yield "nnls", AnalysisConfig(mode="nnls", components=[
        ComponentSpec(n, h_source=Spectrum(values=h)) for n, h in
        zip(sample.component_names, sample.H, strict=True)]), None
    comps = [ComponentSpec("a", h_source=RoiLabel(1)), ComponentSpec("b", h_source=RoiMask(roi)),
             ComponentSpec("c", h_source=RoiLabel(3),
                           w_source=FixedW(sample.maps[2][rows] + 0.01)),
             ComponentSpec("d")]
    yield "seeded-nmf", AnalysisConfig(mode="seeded-nmf", components=comps, random_state=0,
                                       max_iter=60), lab


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # both capped
@pytest.mark.filterwarnings("ignore:Seeded NNMF")  # the residual row "d" moves: on both
@pytest.mark.parametrize("mode", ["nmf", "pca", "nnls", "seeded-nmf"])
def test_omitting_blank_rows_equals_the_cropped_stack(sample, holed, mode):
    _, cfg, labels = next(c for c in _configs(sample) if c[0] == mode)
    _, cropped, cropped_labels = next(c for c in _configs(sample, KEPT) if c[0] == mode)
    cfg = cfg.replace(nan_policy="omit")
    res = run_analysis(holed, cfg, spectral_values=sample.spectral_axis, labels=labels)
    ref = run_analysis(holed[:, KEPT], cropped.replace(nan_policy="omit"),
                       spectral_values=sample.spectral_axis, labels=cropped_labels)
    np.testing.assert_array_equal(res.H, ref.H)
    np.testing.assert_array_equal(res.W, ref.W)
    mask = res.pixel_mask
    assert mask.shape == (20, 16) and not mask[[0, 7]].any() and mask[KEPT].all()
    maps = res.maps((20, 16))
    assert np.isnan(maps[:, [0, 7]]).all()
    np.testing.assert_array_equal(maps[:, KEPT], ref.maps((18, 16)))
    step = res.summary.preprocessing[0]
    assert step == {"step": "non-finite pixels", "policy": "omit", "omitted_pixels": 32,
                    "kept_pixels": 288}
    assert res.params["nan_policy"] == "omit" and ref.pixel_mask is None


def test_the_default_refuses_nan_and_omit_on_a_finite_stack_changes_nothing(sample, holed):
    cfg = AnalysisConfig(mode="nmf", n_components=3, random_state=0, max_iter=30)
    # the advice is the option of this call, not a lower-level function's mask
    with pytest.raises(ValueError, match=r"NaN.*Pass nan_policy='omit' to leave those "
                       r"pixels out") as info:
        run_analysis(holed, cfg)
    assert "stack_to_matrix" not in str(info.value)
    plain = run_analysis(sample.stack, cfg)
    omit = run_analysis(sample.stack, cfg.replace(nan_policy="omit"))
    np.testing.assert_array_equal(plain.W, omit.W)
    assert omit.pixel_mask is None
    assert omit.summary.preprocessing[0]["omitted_pixels"] == 0


def test_scattered_nan_pixels_seed_from_the_finite_pixels_of_a_label(sample):
    stack = sample.stack.astype(np.float64).copy()
    lab = _labels(sample)
    ys, xs = np.nonzero(lab == 1)
    stack[4, ys[:3], xs[:3]] = np.nan  # three pixels of label 1
    # locked rows keep their seeds bit for bit: H is the label means
    cfg = AnalysisConfig(mode="seeded-nmf", components=[
        ComponentSpec("a", h_source=RoiLabel(1), locked=True),
        ComponentSpec("b", h_source=RoiLabel(2), locked=True)], nan_policy="omit")
    res = run_analysis(stack, cfg, labels=lab)
    finite = np.isfinite(stack).all(axis=0)
    np.testing.assert_array_equal(res.pixel_mask, finite)
    for row, label in ((0, 1), (1, 2)):
        expected = stack[:, (lab == label) & finite].mean(axis=1)
        np.testing.assert_allclose(res.H[row], expected, rtol=1e-6)
    maps = res.maps(lab.shape)
    assert np.isnan(maps[:, ~finite]).all() and np.isfinite(maps[:, finite]).all()


def test_what_cannot_be_omitted_is_refused(sample, holed):
    cfg = AnalysisConfig(mode="nmf", n_components=2, nan_policy="omit")
    with pytest.raises(ValueError, match="Every pixel of the stack holds a NaN"):
        run_analysis(np.full((4, 3, 3), np.nan), cfg)
    da = pytest.importorskip("dask.array")
    with pytest.raises(ValueError, match="out of a stack in memory only, not of a dask stack"):
        run_analysis(da.from_array(sample.stack, chunks=(24, 10, 16)), cfg)
    from napari_unmix.core import unmix_series

    with pytest.raises(ValueError, match="not of a series"):
        unmix_series(holed[None].repeat(2, axis=0), cfg)
    with pytest.raises(ValueError, match="nan_policy='drop' is not one of raise, omit"):
        AnalysisConfig(mode="nmf", n_components=2, nan_policy="drop")
    seeded = AnalysisConfig(mode="seeded-nmf", nan_policy="omit", components=[
        ComponentSpec("a", h_source=SeedPixels(pixels=[[7, 3], [2, 2]]))])
    with pytest.raises(ValueError, match="1 of the given pixel.*left out of the fit"):
        run_analysis(holed, seeded)


def test_a_saved_result_keeps_its_mask_and_reruns_identically(sample, holed, tmp_path):
    cfg = AnalysisConfig(mode="nmf", n_components=3, random_state=0, max_iter=30,
                         nan_policy="omit")
    res = run_analysis(holed, cfg)
    back = UnmixResult.load(res.save(tmp_path / "r.npz"))
    np.testing.assert_array_equal(back.pixel_mask, res.pixel_mask)
    np.testing.assert_array_equal(back.maps((20, 16)), res.maps((20, 16)))
    again = run_analysis(holed, back.config)
    np.testing.assert_array_equal(again.W, res.W)


def test_a_region_only_on_left_out_pixels_is_named(sample, holed):
    lab = np.zeros((20, 16), np.int32)
    lab[0, :5] = 1  # only on the blanked first row
    lab[10:13, 10:13] = 2
    for source, words in ((RoiLabel(1), "label 1 lies only on pixels left out"),
                          (RoiMask(lab == 1), "its ROI lies only on pixels left out")):
        cfg = AnalysisConfig(mode="seeded-nmf", nan_policy="omit", components=[
            ComponentSpec("a", h_source=source), ComponentSpec("b", h_source=RoiLabel(2))])
        with pytest.raises(ValueError, match=words):
            run_analysis(holed, cfg, labels=lab)


@pytest.mark.filterwarnings("ignore:The residual")
def test_diagnostics_of_an_omitting_result_read_the_whole_stack(sample, holed):
    # before: "The data (320 pixels x 24 channels) is not what the result fitted (288 x
    # 24)" and "stack contains 384 NaN ...", for the result and its every-pixel view
    from napari_unmix.core import residuals, stack_to_matrix, with_standard_errors

    comps = [ComponentSpec(n, h_source=Spectrum(values=h))
             for n, h in zip(sample.component_names, sample.H, strict=True)]
    res = run_analysis(holed, AnalysisConfig(mode="nnls", components=comps,
                                             nan_policy="omit"))
    X, _ = stack_to_matrix(holed, 0, mask=res.pixel_mask)
    se_kept = with_standard_errors(res, X).arrays["W_se"]  # the fitted pixels' matrix
    rel_kept = residuals(res, X).relative
    for r in (res, res.on_every_pixel()):  # the result, and what the dock holds
        se = with_standard_errors(r, holed, spectral_axis=0).arrays["W_se"]
        assert se.shape == (320, 4) and np.isnan(se.reshape(20, 16, 4)[[0, 7]]).all()
        np.testing.assert_allclose(se[res.pixel_mask.reshape(-1)], se_kept, rtol=1e-12)
        rel = residuals(r, holed, spectral_axis=0).relative
        assert rel.shape == (20, 16) and np.isnan(rel[[0, 7]]).all()
        np.testing.assert_allclose(rel[KEPT].reshape(-1), rel_kept, rtol=1e-12)


def test_an_omitting_result_seeds_the_next_omitting_run(sample, holed):
    from napari_unmix.core import PreviousResult

    first = run_analysis(holed, AnalysisConfig(mode="nmf", n_components=3, random_state=0,
                                               max_iter=200, nan_policy="omit"))
    comps = [ComponentSpec(f"c{i}", h_source=PreviousResult.from_result(first, i),
                           w_source=PreviousResult.from_result(first, i)) for i in range(3)]
    assert comps[0].w_source.w.shape == (20, 16)  # the image, NaN where left out
    again = run_analysis(holed, AnalysisConfig(mode="seeded-nmf", components=comps,
                                               anchor=float("inf"), nan_policy="omit"))
    np.testing.assert_array_equal(again.pixel_mask, first.pixel_mask)
    np.testing.assert_allclose(again.H, first.H, rtol=1e-12)  # locked by infinite trust
