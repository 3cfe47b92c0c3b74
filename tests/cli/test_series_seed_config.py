"""``run --config --strategy``: the ROI seeds of a config are put on the plane(s) fitted.

A config drawn on a z / t series carries ROI masks of the whole series ``(Z, Y, X)``:
what the dock records for a 2-D Shapes layer over a ``(Z, C, Y, X)`` image (the same
box on every plane) or a 3-D one drawn on one plane (that plane only), e.g. in a setup
saved for a joint fit.  The CLI passed them to ``unmix_series`` unchanged, and every
plane's fit refused them ("ROI mask has shape (3, 8, 10), but the image has spatial
shape (8, 10)").  It now puts them where the dock puts them
(``core.series.seeds_for_strategy``): on plane N for ``--strategy shared-basis
--reference N``, on every plane for ``--strategy per-slice``, so the run gives the maps
and spectra of ``unmix_series`` with the masks of that plane (what the dock runs); a
pooled basis refuses ROI seeds naming the flags and leaves map seeds out with a note,
as the dock does.
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pytest
import tifffile

from napari_unmix.cli import main
from napari_unmix.core import AnalysisConfig, ComponentSpec, unmix_series
from napari_unmix.core.preprocess import Preprocessing
from napari_unmix.core.series import SeriesResult
from napari_unmix.core.sources import FixedW, PreviousResult, RoiMask
from napari_unmix.core.synthetic import make_crs_sample_4d
from napari_unmix.io import read_result_bundle

SHAPE = (3, 8, 10)          # (Z, Y, X)
QUIET = ["--no-progress", "--quiet"]
FAST = {"solver": "hals", "backend": "numpy", "max_iter": 40, "tol": 1e-3, "random_state": 0}


def _box(ys, xs, planes=range(SHAPE[0])):
    m = np.zeros(SHAPE, dtype=bool)
    for z in planes:
        m[z, ys, xs] = True
    return m


#: a 2-D Shapes layer over the series: the same box on every plane
EVERY = {"cell": _box(slice(1, 3), slice(1, 4)), "medium": _box(slice(5, 8), slice(6, 10))}
#: a box drawn on plane 1 of a 3-D Shapes layer
ON_PLANE_1 = _box(slice(1, 3), slice(2, 4), planes=[1])


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    d = tmp_path_factory.mktemp("series-seeds")
    s = make_crs_sample_4d(n_planes=SHAPE[0], shape=SHAPE[1:], n_channels=12, random_state=0)
    tifffile.imwrite(d / "zstack.tif", s.stack, imagej=True, metadata={"axes": "ZCYX"})
    return d / "zstack.tif", s.stack


def _config(masks, **kw):
    comps = [ComponentSpec(name, h_source=RoiMask(m)) for name, m in masks.items()]
    return AnalysisConfig(mode="seeded-nmf", components=comps, **FAST, **kw)


def _direct(data, cfg, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return unmix_series(data, cfg, series_axis=0, spectral_axis=1, **kw)


def _cli(path, cfg_file, out, *flags):
    return main([str(a) for a in ("run", path, "--config", cfg_file, "--out", out, *flags,
                                  *QUIET)])


def _series_of(folder) -> SeriesResult:
    return SeriesResult.from_result(read_result_bundle(folder).result, SHAPE)


def test_shared_basis_from_plane_n_takes_the_masks_on_plane_n(stack, tmp_path, capsys):
    path, data = stack
    masks = {**EVERY, "plane 1 cell": ON_PLANE_1}
    cfg_file = _config(masks).save(tmp_path / "setup.json")
    assert _cli(path, cfg_file, tmp_path / "out", "--strategy", "shared-basis",
                "--reference", 1) == 0, capsys.readouterr().err
    # what the dock runs: the masks of plane 1
    want = _direct(data, _config({n: m[1] for n, m in masks.items()}),
                   strategy="shared-basis", reference=1)
    got = _series_of(tmp_path / "out")
    assert got.strategy == "shared-basis" and got.params["reference"] == 1
    np.testing.assert_array_equal(got.maps, want.maps)
    np.testing.assert_array_equal(got.H, want.H)
    assert got.component_names == list(masks)
    # the folder's config holds plane 1's masks, as the dock's does: it reruns the same
    saved = AnalysisConfig.load(tmp_path / "out" / "config.json")
    for comp, m in zip(saved.components, masks.values(), strict=True):
        np.testing.assert_array_equal(comp.h_source.mask, m[1])
    assert _cli(path, tmp_path / "out", tmp_path / "again") == 0
    np.testing.assert_array_equal(_series_of(tmp_path / "again").maps, want.maps)


def test_per_slice_takes_masks_that_are_the_same_on_every_plane(stack, tmp_path, capsys):
    path, data = stack
    cfg_file = _config(EVERY).save(tmp_path / "setup.json")
    assert _cli(path, cfg_file, tmp_path / "out", "--strategy", "per-slice") == 0, \
        capsys.readouterr().err
    want = _direct(data, _config({n: m[0] for n, m in EVERY.items()}), strategy="per-slice")
    got = _series_of(tmp_path / "out")
    assert got.strategy == "per-slice"
    np.testing.assert_array_equal(got.maps, want.maps)
    np.testing.assert_array_equal(got.H, want.H)


@pytest.mark.parametrize("flags, words", [
    (["--strategy", "shared-basis", "--reference", "0"],
     ["Component 'plane 1 cell': its ROI has no pixel on plane 0 (it lies on plane(s) 1)",
      "Give --reference N with N a plane the ROI is on"]),
    (["--strategy", "per-slice"],
     ["Component 'plane 1 cell': its ROI is not the same on every plane",
      "--labels painted on every plane", "--strategy shared-basis --reference N"]),
])
def test_a_mask_off_the_planes_fitted_is_refused_naming_the_flags(stack, tmp_path, cli_error,
                                                                  flags, words):
    path, _ = stack
    cfg_file = _config({**EVERY, "plane 1 cell": ON_PLANE_1}).save(tmp_path / "setup.json")
    line = cli_error("run", path, "--config", cfg_file, *flags, "--out", tmp_path / "o")
    for w in words:
        assert w in line, line
    assert "Shapes layer" not in line and not (tmp_path / "o").exists()


def _with_map(data):
    """A config seeded from earlier results: a spectrum, and a spectrum with its maps
    of the whole series."""
    return AnalysisConfig(mode="seeded-nmf", **FAST, components=[
        ComponentSpec("medium", h_source=PreviousResult(h=data[1, :, 5:, 6:].mean(axis=(1, 2)))),
        ComponentSpec("prev", h_source=PreviousResult(h=data[0].mean(axis=(1, 2))),
                      w_source=FixedW(np.ones(SHAPE)))])


def test_a_pooled_basis_refuses_roi_seeds_naming_the_flags(stack, tmp_path, cli_error):
    path, data = stack
    cfg = _config(EVERY)
    cfg = cfg.replace(components=[*cfg.components, *_with_map(data).components[1:]])
    line = cli_error("run", path, "--config", cfg.save(tmp_path / "setup.json"), "--strategy",
                     "shared-basis", "--out", tmp_path / "o")
    assert "--reference pooled" in line and "--reference N" in line
    assert "--strategy per-slice" in line and "--spectra" in line
    # the ROI components are refused; the map seed is no reason to refuse (left out)
    assert "'cell', 'medium'" in line and "prev" not in line


def test_a_pooled_basis_leaves_map_seeds_out_with_a_note(stack, tmp_path, capsys):
    path, data = stack
    cfg = _with_map(data)
    rc = main(["run", str(path), "--config", str(cfg.save(tmp_path / "setup.json")),
               "--strategy", "shared-basis", "--out", str(tmp_path / "out"), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 0, err
    assert "note: 'prev': seeded from the spectrum only" in err
    assert "--reference pooled" in err and "reference='pooled'" not in err
    # the dock's run: the map left out, the spectrum kept
    want = _direct(data, cfg.replace(components=[
        cfg.components[0], ComponentSpec("prev", h_source=cfg.components[1].h_source)]),
        strategy="shared-basis", reference="pooled")
    got = _series_of(tmp_path / "out")
    np.testing.assert_array_equal(got.maps, want.maps)
    np.testing.assert_array_equal(got.H, want.H)


# -- the region of a background subtraction ------------------------------------------------
#: a background region of a 2-D Shapes layer over the series (the same box on every plane)
CORNER = _box(slice(6, 8), slice(0, 3))


def _with_background(region, masks=EVERY):
    """The config of ``masks`` (the medium marked background) with the background
    subtracted from ``region``."""
    cfg = _config(masks)
    return cfg.replace(components=[dataclasses.replace(c, background=c.name == "medium")
                                   for c in cfg.components],
                       preprocessing=Preprocessing(background=RoiMask(region)))


@pytest.mark.parametrize("flags, plane, strategy, reference", [
    (["--strategy", "per-slice"], 0, "per-slice", None),
    (["--strategy", "shared-basis", "--reference", "2"], 2, "shared-basis", 2),
])
def test_a_background_region_of_the_series_is_put_on_the_planes_fitted(
        stack, tmp_path, capsys, flags, plane, strategy, reference):
    """``run --config --strategy`` passed the (Z, Y, X) region of a config's background
    subtraction to ``unmix_series`` unchanged, and every plane's fit refused it on shape;
    it is now plane N's (shared basis) or one plane's (per-slice), as the seeds are."""
    path, data = stack
    cfg = _with_background(CORNER)
    cfg_file = cfg.save(tmp_path / "setup.json")
    assert _cli(path, cfg_file, tmp_path / "out", *flags) == 0, capsys.readouterr().err
    placed = cfg.replace(
        components=[dataclasses.replace(c, h_source=RoiMask(c.h_source.mask[plane]))
                    for c in cfg.components],
        preprocessing=Preprocessing(background=RoiMask(CORNER[plane])))
    kw = {} if reference is None else {"reference": reference}
    want = _direct(data, placed, strategy=strategy, **kw)
    got = _series_of(tmp_path / "out")
    np.testing.assert_array_equal(got.maps, want.maps)
    np.testing.assert_array_equal(got.H, want.H)
    # the background was subtracted: without it the seeds, so the fit, differ
    plain = _direct(data, placed.replace(preprocessing=Preprocessing()), strategy=strategy,
                    **kw)
    assert np.abs(plain.maps - want.maps).max() > 0.1 * np.abs(want.maps).max()
    saved = AnalysisConfig.load(tmp_path / "out" / "config.json")
    np.testing.assert_array_equal(saved.preprocessing.background.mask, CORNER[plane])


@pytest.mark.parametrize("region, flags, words", [
    (_box(slice(6, 8), slice(0, 3), planes=[0, 2]), ["--strategy", "per-slice"],
     ["The background subtraction (preprocessing.background, roi-mask): its ROI is not the "
      "same on every plane (it covers plane(s) 0, 2)", "--strategy shared-basis --reference N",
      "--labels painted on every plane"]),
    (_box(slice(6, 8), slice(0, 3), planes=[0, 2]), ["--strategy", "shared-basis",
                                                     "--reference", "1"],
     ["The background subtraction (preprocessing.background, roi-mask): its ROI has no pixel "
      "on plane 1 (it lies on plane(s) 0, 2)", "Give --reference N with N a plane the ROI is "
      "on"]),
])
def test_a_background_region_that_does_not_fit_the_series_is_refused_naming_the_flags(
        stack, tmp_path, cli_error, region, flags, words):
    path, _ = stack
    spectra = {"cell": EVERY["cell"][0], "medium": EVERY["medium"][0]}   # one plane's ROIs
    cfg_file = _with_background(region, spectra).save(tmp_path / "setup.json")
    line = cli_error("run", path, "--config", cfg_file, *flags, "--out", tmp_path / "o")
    for w in words:
        assert w in line, line
    assert "layer" not in line and "preprocessing.background=" not in line
    assert not (tmp_path / "o").exists()


def test_a_pooled_basis_refuses_a_background_region_naming_the_flags(stack, tmp_path,
                                                                      cli_error):
    path, data = stack
    cfg = _with_map(data)
    cfg = cfg.replace(components=[dataclasses.replace(c, w_source=None)
                                  for c in cfg.components],
                      preprocessing=Preprocessing(background=RoiMask(CORNER)))
    line = cli_error("run", path, "--config", cfg.save(tmp_path / "setup.json"),
                     "--strategy", "shared-basis", "--out", tmp_path / "o")
    for w in ("--reference pooled", "these seeds need it: the background subtraction of the "
              "--config, from a region (roi-mask).", "Give --reference N", "--strategy "
              "per-slice", "or subtract a background spectrum or model (a spectrum, gaussian "
              "or flat background in the --config) instead."):
        assert w in line, line
    assert "component(s)" not in line and "--spectra CSV" not in line
