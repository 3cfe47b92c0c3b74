"""A dock setup seeded from labels painted plane by plane reruns as the dock ran it.

A z / t series ``(Z, C, Y, X)`` fitted "per plane" from a Labels layer whose labels
differ between the planes seeds every plane from its own labels.  "Save setup" turned
each label into an ROI mask of the whole series, different on every plane, which a
per-plane run refuses ("not the same on every plane") and "Load setup" could not paint
(rows without a source).  The setup now keeps those rows as label ids and saves the
label image beside the file (``<name>.labels.tif``), so Load setup and
``napari-unmix run --config SETUP --strategy per-slice`` give the dock's maps again.
Labels that are the same on every plane stay masks in the file, as before, and load
again too.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

napari = pytest.importorskip("napari")
pytestmark = pytest.mark.gui

from napari_unmix._napari.sample_data import sample_layer_data  # noqa: E402
from napari_unmix.cli import main  # noqa: E402
from napari_unmix.core import AnalysisConfig, RoiLabel, RoiMask  # noqa: E402
from napari_unmix.core.series import SeriesResult  # noqa: E402
from napari_unmix.io import read_result_bundle  # noqa: E402

N_PLANES, SHAPE, N_CHANNELS = 3, (16, 16), 12
SCALE, TRANSLATE = (2.0, 1.0, 0.5, 0.5), (4.0, 0.0, 1.0, -1.0)


@pytest.fixture
def zs(plane_labelled_series):
    return plane_labelled_series.sample


def _dock(make_napari_viewer, zs):
    viewer = make_napari_viewer(strict_qt=True)
    data, kwargs, _ = sample_layer_data(zs, "z-series")[0]
    viewer.add_image(data, scale=SCALE, translate=TRANSLATE, **kwargs)
    _, dock = viewer.window.add_plugin_dock_widget("napari-unmix", "Spectral unmixing")
    return viewer, dock


def _configure(dock, series="per-plane"):
    f = dock.form
    f.mode.value = "seeded-nmf"
    f.solver.value = "hals"
    f.backend.value = "numpy"
    f.max_iter.value = 100
    f.tol.value = "1e-3"
    f.random_state.value = "0"
    dock.series_panel.series.value = series


@pytest.fixture
def painted(make_napari_viewer, zs, plane_labelled_series, monkeypatch):
    """A dock over the z-series with rows from a Labels layer painted plane by plane
    (its (Z, 1, Y, X) data lies over the image's planes, on every channel)."""
    monkeypatch.setenv("NAPARI_ENSURE_PLUGIN_MAIN_THREAD", "1")
    viewer, dock = _dock(make_napari_viewer, zs)
    lab = plane_labelled_series.labels
    viewer.add_labels(lab[:, None], name="cells", scale=(SCALE[0], SCALE[1] * N_CHANNELS,
                                                          *SCALE[2:]),
                      translate=(TRANSLATE[0], (N_CHANNELS - 1) / 2, *TRANSLATE[2:]))
    assert dock.components_from_layer("cells") == zs.n_components
    _configure(dock)
    return viewer, dock, lab


def _new_dock(make_napari_viewer, zs, setup, series="per-plane"):
    viewer, dock = _dock(make_napari_viewer, zs)
    notes = dock.setup.load_setup(setup)
    assert notes == [], (notes, dock.status.text())
    _configure(dock, series)
    return viewer, dock


def _cli(tmp_path, zs, config, *flags, out="cli"):
    np.save(tmp_path / "stack.npy", zs.stack)
    rc = main(["run", str(tmp_path / "stack.npy"), "--spectral-axis", "1", "--config",
               str(config), *flags, "--out", str(tmp_path / out), "--quiet", "--no-progress"])
    assert rc == 0
    return SeriesResult.from_result(read_result_bundle(tmp_path / out).result,
                                    (N_PLANES, *SHAPE))


def test_a_per_plane_setup_of_plane_labels_reloads_and_reruns_the_same_maps(
        qtbot, painted, run_dock, make_napari_viewer, zs, tmp_path):
    viewer, dock, lab = painted
    run_dock(dock)
    first = dock.series_result
    assert first.strategy == "per-slice"
    path = dock.setup.save_setup(tmp_path / "setup.json")
    assert path is not None, dock.status.text()
    status = dock.status.text()
    assert "setup.labels.tif" in status and "series choice (per plane)" in status, status
    # the rows stay label ids; the label image of every plane lies beside the file
    cfg = AnalysisConfig.load(path)
    assert all(isinstance(c.h_source, RoiLabel) for c in cfg.components)
    assert json.loads(path.read_text())["label_image"]["path"] == "setup.labels.tif"
    import tifffile

    np.testing.assert_array_equal(tifffile.imread(tmp_path / "setup.labels.tif"), lab)

    # Load setup in a new viewer paints them plane by plane, and the run is the same
    other, dock2 = _new_dock(make_napari_viewer, zs, path)
    painted_layer = other.layers["setup labels"]
    assert painted_layer.data.shape == (N_PLANES, 1, *SHAPE)
    np.testing.assert_array_equal(painted_layer.data[:, 0], lab)
    rows = dock2.table.settings()
    assert [(r.source.kind, r.source.label_id) for r in rows] == [
        ("roi-label", i + 1) for i in range(zs.n_components)]
    run_dock(dock2)
    again = dock2.series_result
    np.testing.assert_allclose(again.maps, first.maps, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(again.H, first.H, rtol=1e-6, atol=1e-9)

    # and the CLI reruns the file (the label image found beside it) with those maps
    cli = _cli(tmp_path, zs, path, "--strategy", "per-slice")
    assert cli.component_names == first.component_names
    np.testing.assert_allclose(cli.maps, first.maps, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(cli.H, first.H, rtol=1e-6, atol=1e-9)
    # --labels with the saved image is the same run; another label image is refused
    cli2 = _cli(tmp_path, zs, path, "--strategy", "per-slice", "--labels",
                str(tmp_path / "setup.labels.tif"), out="cli2")
    np.testing.assert_array_equal(cli2.maps, cli.maps)
    np.save(tmp_path / "other.npy", np.where(lab == 1, 2, lab).astype(lab.dtype))
    rc = main(["run", str(tmp_path / "stack.npy"), "--spectral-axis", "1", "--config",
               str(path), "--strategy", "per-slice", "--labels", str(tmp_path / "other.npy"),
               "--out", str(tmp_path / "cli3"), "--quiet", "--no-progress"])
    assert rc == 2 and not (tmp_path / "cli3").exists()


def test_a_changed_or_missing_label_image_beside_a_setup_is_refused(
        qtbot, painted, make_napari_viewer, zs, tmp_path, capsys):
    _, dock, lab = painted
    path = dock.setup.save_setup(tmp_path / "setup.json")
    assert path is not None, dock.status.text()
    import tifffile

    beside = tmp_path / "setup.labels.tif"
    tifffile.imwrite(beside, np.where(lab == 2, 0, lab).astype(lab.dtype),
                     photometric="minisblack")
    _, dock2 = _dock(make_napari_viewer, zs)
    assert dock2.setup.load_setup(path) is None
    assert "Refused" in dock2.status.text() and "changed" in dock2.status.text()
    np.save(tmp_path / "stack.npy", zs.stack)
    args = ["run", str(tmp_path / "stack.npy"), "--spectral-axis", "1", "--config", str(path),
            "--strategy", "per-slice", "--out", str(tmp_path / "cli"), "--quiet",
            "--no-progress"]
    capsys.readouterr()
    assert main(args) == 2
    assert "setup.labels.tif" in capsys.readouterr().err
    beside.unlink()
    assert dock2.setup.load_setup(path) is None
    assert "setup.labels.tif" in dock2.status.text()
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "setup.labels.tif" in err and "--labels" in err


def test_labels_the_same_on_every_plane_stay_masks_and_load_again(
        qtbot, make_napari_viewer, zs, plane_labelled_series, run_dock, tmp_path, monkeypatch):
    monkeypatch.setenv("NAPARI_ENSURE_PLUGIN_MAIN_THREAD", "1")
    viewer, dock = _dock(make_napari_viewer, zs)
    lab = plane_labelled_series.labels[1]
    viewer.add_labels(lab, name="cells", scale=SCALE[2:], translate=TRANSLATE[2:])
    assert dock.components_from_layer("cells") == zs.n_components
    _configure(dock)
    run_dock(dock)
    first = dock.series_result
    path = dock.setup.save_setup(tmp_path / "setup.json")
    assert path is not None, dock.status.text()
    assert not (tmp_path / "setup.labels.tif").exists()   # one self-contained file
    cfg = AnalysisConfig.load(path)
    assert all(isinstance(c.h_source, RoiMask) for c in cfg.components)
    other, dock2 = _new_dock(make_napari_viewer, zs, path)
    assert other.layers["setup seeds"].data.ndim == 2
    run_dock(dock2)
    np.testing.assert_allclose(dock2.series_result.maps, first.maps, rtol=1e-6, atol=1e-9)
    cli = _cli(tmp_path, zs, path, "--strategy", "per-slice")
    np.testing.assert_allclose(cli.maps, first.maps, rtol=1e-6, atol=1e-9)


def test_masks_that_differ_between_planes_load_over_the_planes(
        qtbot, painted, run_dock, make_napari_viewer, zs, tmp_path):
    # a setup saved before label ids were kept: every label a mask of the whole series
    _, dock, lab = painted
    run_dock(dock)
    first = dock.series_result
    import dataclasses

    cfg = dock.session.prepare(dock.form.config_kwargs()).config   # the rows' label ids
    masks = cfg.replace(components=[
        dataclasses.replace(c, h_source=RoiMask(lab == c.h_source.label_id))
        for c in cfg.components])
    path = masks.save(tmp_path / "old.json")
    other, dock2 = _new_dock(make_napari_viewer, zs, path)
    seeds = other.layers["old seeds"]
    assert seeds.data.shape == (N_PLANES, 1, *SHAPE)
    np.testing.assert_array_equal(seeds.data[:, 0], lab)   # ids 1..k in the rows' order
    run_dock(dock2)
    np.testing.assert_allclose(dock2.series_result.maps, first.maps, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("series, plane, beside", [("joint", None, True), ("plane", 1, False)])
def test_joint_and_shared_basis_setups_of_plane_labels_rerun_the_same(
        qtbot, painted, run_dock, make_napari_viewer, zs, tmp_path, series, plane, beside):
    _, dock, lab = painted
    dock.series_panel.series.value = series
    if plane is not None:
        dock.series_panel.series_plane.value = plane
    run_dock(dock)
    first = dock.result
    path = dock.setup.save_setup(tmp_path / "setup.json")
    assert path is not None, dock.status.text()
    # a joint fit keeps the labels of every plane; a basis from plane 1 has plane 1's masks
    assert (tmp_path / "setup.labels.tif").exists() == beside
    kinds = {type(c.h_source) for c in AnalysisConfig.load(path).components}
    assert kinds == ({RoiLabel} if beside else {RoiMask})
    _, dock2 = _new_dock(make_napari_viewer, zs, path, series)
    if plane is not None:
        dock2.series_panel.series_plane.value = plane
    run_dock(dock2)
    np.testing.assert_allclose(dock2.result.W, first.W, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(dock2.result.H, first.H, rtol=1e-6, atol=1e-9)
