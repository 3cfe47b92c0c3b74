"""The dock's z / t series glue (no Qt): plans, seeds per plane, spectra and summaries.

Seeds are put on the plane(s) a strategy fits by the core sources themselves
(``on_plane`` / ``on_every_plane`` / ``needs_geometry``); the refusals name the
component, say why and what to do.
"""

from __future__ import annotations

import numpy as np
import pytest

napari = pytest.importorskip("napari")

from napari.layers import Image  # noqa: E402

from napari_unmix._napari.rois import ImageGrid, RoiError  # noqa: E402
from napari_unmix._napari.series_run import (  # noqa: E402
    SERIES_CHOICES,
    SeriesPlan,
    series_axis,
    series_seeds,
    series_spectra,
    series_summary,
    series_text,
)
from napari_unmix.core.analysis import AnalysisConfig  # noqa: E402
from napari_unmix.core.components import (  # noqa: E402
    ComponentSpec,
    FixedW,
    FromComponent,
    Gaussian,
    PreviousResult,
    RoiLabel,
    RoiMask,
)
from napari_unmix.core.series import unmix_series  # noqa: E402
from napari_unmix.core.synthetic import make_crs_sample_4d  # noqa: E402

Z, Y, X, C = 4, 6, 5, 8
FAST = {"solver": "hals", "backend": "numpy", "max_iter": 100, "tol": 1e-3, "random_state": 0}


@pytest.fixture
def grid():
    return ImageGrid(Image(np.ones((Z, C, Y, X), np.float32), name="zs"), 1)


def _plan(choice, plane=1):
    return SeriesPlan(choice=choice, axis=0, n_planes=Z, plane=plane)


# -- plans -------------------------------------------------------------------------------
def test_plans_say_the_core_strategy_and_reference():
    assert list(SERIES_CHOICES.values()) == ["joint", "per-plane", "plane", "pooled"]
    per, plane, pooled = _plan("per-plane", 2), _plan("plane", 2), _plan("pooled", 2)
    assert (per.strategy, per.reference, per.reference_plane) == ("per-slice", 2, 2)
    assert (plane.strategy, plane.reference) == ("shared-basis", 2)
    assert (pooled.strategy, pooled.reference, pooled.reference_plane) == \
        ("shared-basis", "pooled", None)
    assert plane.label == "shared basis from plane 2"
    assert pooled.label == "shared basis from all planes (pooled sample)"
    for bad in ("joint", "per-slice"):
        with pytest.raises(ValueError, match="not a series strategy"):
            _plan(bad)


def test_the_series_axis_is_the_first_spatial_axis_before_the_plane(grid):
    assert series_axis(grid) == 0
    assert series_text(grid) == "series along axis 0: 4 planes of 6 x 5 pixels"
    single = ImageGrid(Image(np.ones((C, Y, X), np.float32)), 0)
    assert series_axis(single) is None and series_text(single) == ""
    tz = ImageGrid(Image(np.ones((2, 3, C, Y, X), np.float32)), 2)
    assert series_axis(tz) == 0
    assert series_text(tz) == ("series along axis 0: 2 planes of 3 x 6 x 5 pixels (each "
                               "plane is a volume)")
    # the spectral axis first: the series axis is the next one
    assert series_axis(ImageGrid(Image(np.ones((C, Z, Y, X), np.float32)), 0)) == 1


# -- seeds -------------------------------------------------------------------------------
def _mask(planes, where=(slice(1, 3), slice(1, 3))):
    m = np.zeros((Z, Y, X), bool)
    for z in planes:
        m[(z, *where)] = True
    return m


def _labels(planes, label=1):
    lab = np.zeros((Z, Y, X), np.int32)
    for z in planes:
        lab[z, 0, 0] = label
    return lab


def test_a_shared_basis_from_plane_n_takes_the_seeds_on_plane_n(grid):
    maps = np.random.default_rng(0).random((Z, Y, X))
    comps = [ComponentSpec("roi", h_source=RoiMask(_mask([1, 2]))),
             ComponentSpec("label", h_source=RoiLabel(1)),
             ComponentSpec("model", h_source=Gaussian([(2900.0, 20.0, 1.0)])),
             ComponentSpec("prev", h_source=PreviousResult(h=np.ones(C)), w_source=FixedW(maps))]
    seeds = series_seeds(comps, _labels([0, 1]), grid, _plan("plane", 1))
    out, lab, notes = seeds.components, seeds.labels, list(seeds.notes)
    np.testing.assert_array_equal(out[0].h_source.mask, _mask([1, 2])[1])
    assert isinstance(out[1].h_source, RoiLabel) and lab.shape == (Y, X) and lab[0, 0] == 1
    assert out[2] is comps[2]  # nothing to restrict: the same component
    np.testing.assert_array_equal(out[3].w_source.map, maps[1])
    assert notes == []

    with pytest.raises(RoiError) as info:
        series_seeds(comps, _labels([0, 1]), grid, _plan("plane", 3))
    msg = str(info.value)
    assert msg.startswith("Component 'roi': its ROI has no pixel on plane 3")
    assert "plane(s) 1-2" in msg and "draw the ROI on plane 3" in msg
    with pytest.raises(RoiError, match=r"^Component 'label': label 1 is not on plane 2 \(it is "
                       r"on plane\(s\) 0-1\)\. Choose a plane the label is on"):
        series_seeds(comps[1:], _labels([0, 1]), grid, _plan("plane", 2))


def test_a_per_plane_run_needs_seeds_on_every_plane(grid):
    maps = np.ones((Z, Y, X))
    comps = [ComponentSpec("roi", h_source=RoiMask(_mask(range(Z)))),
             ComponentSpec("label", h_source=RoiLabel(1)),
             ComponentSpec("prev", h_source=PreviousResult(h=np.ones(C)), w_source=FixedW(maps))]
    labels = _labels(range(Z))
    seeds = series_seeds(comps, labels, grid, _plan("per-plane"))
    out, lab, notes = seeds.components, seeds.labels, list(seeds.notes)
    np.testing.assert_array_equal(out[0].h_source.mask, _mask([0])[0])
    assert lab is labels or np.array_equal(lab, labels)  # every plane keeps its labels
    assert out[2].w_source is None and isinstance(out[2].h_source, PreviousResult)
    assert len(notes) == 1 and notes[0].startswith("'prev': seeded from the previous "
                                                   "result's spectrum only")
    assert "'per plane' run cannot take its maps" in notes[0]

    with pytest.raises(RoiError) as info:
        series_seeds([ComponentSpec("roi", h_source=RoiMask(_mask([0, 2])))], None, grid,
                     _plan("per-plane"))
    msg = str(info.value)
    assert msg.startswith("Component 'roi': its ROI is not the same on every plane")
    assert "plane(s) 0, 2" in msg and "2-D Shapes layer" in msg
    with pytest.raises(RoiError, match=r"^Component 'label': label 1 is missing on plane\(s\) "
                       r"0-1, 3; .* Paint it on every plane"):
        series_seeds(comps[1:2], _labels([2]), grid, _plan("per-plane"))


def test_a_pooled_sample_refuses_geometric_seeds_and_leaves_maps_out(grid):
    comps = [ComponentSpec("roi", h_source=RoiMask(_mask([1]))),
             ComponentSpec("label", h_source=RoiLabel(1)),
             ComponentSpec("model", h_source=Gaussian([(2900.0, 20.0, 1.0)]))]
    with pytest.raises(RoiError) as info:
        series_seeds(comps, _labels([1]), grid, _plan("pooled"))
    msg = str(info.value)
    assert "pooled from every plane, which has no image geometry" in msg
    assert "component(s) 'roi', 'label')" in msg and "'shared basis from plane N'" in msg
    prev = ComponentSpec("prev", h_source=PreviousResult(h=np.ones(C)),
                         w_source=FixedW(np.ones((Z, Y, X))))
    seeds = series_seeds([comps[2], prev], None, grid, _plan("pooled"))
    out, lab, notes = seeds.components, seeds.labels, list(seeds.notes)
    assert out[0] is comps[2] and out[1].w_source is None and lab is None
    assert notes and "'prev'" in notes[0] and "shared basis from all planes" in notes[0]


def test_the_background_region_is_put_on_the_planes_fitted(grid):
    """``series_seeds`` placed the components only; the region of a background
    subtraction (``Preprocessing.background``) of the whole series now goes the same
    way, in the dock's words when it does not fit."""
    model = [ComponentSpec("model", h_source=Gaussian([(2900.0, 20.0, 1.0)]))]
    every, some = _mask(range(Z)), _mask([1, 2])
    seeds = series_seeds(model, None, grid, _plan("plane", 2), background=RoiMask(some))
    np.testing.assert_array_equal(seeds.background.mask, some[2])
    seeds = series_seeds(model, None, grid, _plan("per-plane"), background=RoiMask(every))
    np.testing.assert_array_equal(seeds.background.mask, every[0])
    bg = FromComponent("model")      # the dock's own background: the row's spectrum
    assert series_seeds(model, None, grid, _plan("pooled"), background=bg).background is bg
    assert series_seeds(model, None, grid, _plan("per-plane")).background is None
    with pytest.raises(RoiError) as info:
        series_seeds(model, None, grid, _plan("per-plane"), background=RoiMask(some))
    msg = str(info.value)
    assert msg.startswith("The background subtraction (preprocessing.background, roi-mask): "
                          "its ROI is not the same on every plane (it covers plane(s) 1-2)")
    assert "2-D Shapes layer" in msg
    with pytest.raises(RoiError, match="the background cannot be subtracted from a region"):
        series_seeds(model, None, grid, _plan("pooled"), background=RoiMask(every))
    with pytest.raises(RoiError) as info:
        series_seeds([ComponentSpec("roi", h_source=RoiMask(every))], None, grid,
                     _plan("pooled"), background=RoiMask(every))
    assert "(component(s) 'roi'), nor a background subtracted from a region. Choose " \
        "'shared basis from plane N'" in str(info.value)


# -- results -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def zs():
    return make_crs_sample_4d(n_planes=3, shape=(10, 10), n_channels=C, random_state=0)


NMF = AnalysisConfig(mode="nmf", n_components=3, **FAST)


def _series(zs, cfg=NMF, **kw):
    return unmix_series(zs.stack, cfg, series_axis=0, spectral_axis=1,
                        spectral_values=zs.spectral_axis, **kw)


def test_per_plane_spectra_and_summary(zs):
    sr = _series(zs, strategy="per-slice", reference=1)
    res, title, suffix = series_spectra(sr, 2)
    np.testing.assert_array_equal(res.H, sr.H[2])
    assert title is None and suffix == " · plane 2 of 0-2 (follows the slider)"
    text = series_summary(sr).splitlines()
    assert text[0] == "Per plane · Random NNMF · 3 components · 3 planes"
    assert text[1].startswith("components matched to ")
    its = ", ".join(str(p.n_iter) for p in sr.planes)
    assert text[2].startswith(f"iterations per plane (of 100): {its}; ")
    errors = ", ".join(format(e, ".3g") for e in sr.summary.plane_relative_errors)
    assert f"relative error per plane: {errors}" in text
    assert text[-1].startswith("random_state 0 · time ")


def test_shared_basis_spectra_and_summary(zs):
    sr = _series(zs, strategy="shared-basis", reference=2)
    res, title, suffix = series_spectra(sr, 0)
    np.testing.assert_array_equal(res.H, sr.H)
    assert title == "Shared basis, fitted on plane 2" and suffix == ""
    text = series_summary(sr)
    assert text.startswith("Shared basis · 3 components · 3 planes\nbasis: Random NNMF on "
                           "plane 2, ")
    b = sr.summary.basis
    assert b.converged and f"plane 2, {b.n_iter} iterations (converged)\n" in text
    assert f"planes: fixed-H NNLS ({sr.params['nnls_solver']}/" in text
    assert "exact NNLS: every pixel of every plane solved" in text  # active-set planes
    pooled = _series(zs, strategy="shared-basis", reference="pooled")
    assert series_spectra(pooled, 1)[1] == "Shared basis, fitted on pooled sample of all planes"
    assert "on a pooled sample of " in series_summary(pooled)


def test_pca_per_plane_has_a_scree_per_plane(zs):
    sr = _series(zs, AnalysisConfig(mode="pca", n_components=2), strategy="per-slice",
                 reference=0)
    res, _, _ = series_spectra(sr, 1)
    np.testing.assert_allclose(res.explained_variance_ratio,
                               sr.planes[1].fit.explained_variance_ratio)
    evr = ", ".join(format(p.fit.cumulative_explained_variance, ".1%") for p in sr.planes)
    assert f"explained variance per plane: {evr}" in series_summary(sr)
    assert "random_state" not in series_summary(sr)
