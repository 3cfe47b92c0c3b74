"""The dock's z / t series strategies, driven through napari like a user would.

A small synthetic z-series ``(Z, C, Y, X)`` (4 planes of 24 x 24 pixels, 16
channels, placed with a scale and an offset) is unmixed through the dock with every
series strategy; the maps must be 4-D layers lying over the image's planes and equal
to what :func:`napari_unmix.core.series.unmix_series` gives for the same settings.
Seeds belong to a plane, cancel stops a series run, and a single ``(C, Y, X)`` stack
has no series choice.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

napari = pytest.importorskip("napari")
pytestmark = pytest.mark.gui

from napari.utils.notifications import NotificationSeverity, notification_manager  # noqa: E402

from napari_unmix._napari.layers import result_layers  # noqa: E402
from napari_unmix._napari.sample_data import sample_layer_data  # noqa: E402
from napari_unmix._napari.series_run import SERIES_CHOICES  # noqa: E402
from napari_unmix.core.analysis import AnalysisConfig  # noqa: E402
from napari_unmix.core.components import (  # noqa: E402
    ComponentSpec,
    FromComponent,
    RoiLabel,
    RoiMask,
)
from napari_unmix.core.preprocess import Preprocessing  # noqa: E402
from napari_unmix.core.series import unmix_series  # noqa: E402
from napari_unmix.core.synthetic import make_crs_sample, make_crs_sample_4d  # noqa: E402

N_PLANES = 4
SHAPE = (24, 24)
N_CHANNELS = 16
SCALE = (3.0, 1.0, 0.5, 0.5)
TRANSLATE = (10.0, 0.0, 2.0, -1.0)
RUN_TIMEOUT_MS = 60_000
# fast settings that converge on this sample (no ConvergenceWarning)
SETTINGS = {"solver": "hals", "backend": "numpy", "max_iter": 200, "tol": 1e-3,
            "random_state": 0}
CORE_STRATEGY = {"per-plane": "per-slice", "plane": "shared-basis", "pooled": "shared-basis"}


@pytest.fixture(autouse=True)
def _main_thread_only(monkeypatch):
    monkeypatch.setenv("NAPARI_ENSURE_PLUGIN_MAIN_THREAD", "1")


@pytest.fixture(scope="module")
def zs():
    return make_crs_sample_4d(n_planes=N_PLANES, shape=SHAPE, n_channels=N_CHANNELS,
                              random_state=0)


@pytest.fixture
def viewer(make_napari_viewer, zs):
    v = make_napari_viewer(strict_qt=True)
    data, kwargs, _ = sample_layer_data(zs, "z-series")[0]
    v.add_image(data, scale=SCALE, translate=TRANSLATE, **kwargs)
    return v


@pytest.fixture
def dock(viewer):
    _, widget = viewer.window.add_plugin_dock_widget("napari-unmix", "Spectral unmixing")
    return widget


def _notes(since, severity=None):
    recs = notification_manager.records[since:]
    return [str(r.message) for r in recs if severity is None or r.severity == severity]


def _configure(dock, mode, series, plane=None, **values):
    f = dock.form
    f.mode.value = mode
    for name, value in {**SETTINGS, "random_state": "0", **values}.items():
        getattr(f, name).value = value
    panel = dock.series_panel
    panel.series.value = series
    if plane is not None:
        panel.series_plane.value = plane


def _run(qtbot, dock):
    job = dock.run()
    assert job is not None, "the run was refused"
    qtbot.waitUntil(lambda: job.done, timeout=RUN_TIMEOUT_MS)
    return job


def _cos(A, B):
    A = A / np.linalg.norm(A, axis=1, keepdims=True)
    B = B / np.linalg.norm(B, axis=1, keepdims=True)
    return A @ B.T


def _check_maps(viewer, dock, expected, image="z-series"):
    """The dock's layers are the core's maps, one 4-D layer per component, over the
    image's planes."""
    layers = result_layers(viewer, source_image=image)
    assert [lyr.metadata["component_name"] for lyr in layers] == expected.component_names
    img = viewer.layers[image]
    n_planes = expected.n_planes
    for i, layer in enumerate(layers):
        # (Z, 1, Y, X): a length-1 spectral axis keeps the planes on the image's axis 0
        assert layer.data.shape == (n_planes, 1, *expected.plane_shape[-2:])
        np.testing.assert_allclose(layer.data[:, 0], expected.maps[i], rtol=1e-5, atol=1e-7)
    # pixel (z, y, x) of a map lies on pixel (z, y, x) of the image, in every plane
    for z in range(n_planes):
        for y, x in ((0, 0), (5, 17)):
            a = np.asarray(layers[0].data_to_world((z, 0, y, x)))
            b = np.asarray(img.data_to_world((z, 3, y, x)))
            np.testing.assert_allclose(a[[0, 2, 3]], b[[0, 2, 3]])
    assert dock.run_button.isEnabled() and dock.progress.format() == "idle"


# -- the choice --------------------------------------------------------------------------
def test_series_choice_only_for_a_series_axis_and_reference_plane_follows_viewer(dock, viewer):
    f, panel = dock.form, dock.series_panel
    assert not panel.series.native.isHidden()
    assert list(panel.series.choices) == list(SERIES_CHOICES.values())
    assert panel.series.value == "joint" and panel.series_choice() is None  # today's behaviour
    assert "axis 0: 4 planes of 24 x 24 pixels" in panel.series_info.value
    assert panel.series_plane.native.isHidden()
    panel.series.value = "plane"
    assert not panel.series_plane.native.isHidden() and panel.series_plane.max == N_PLANES - 1
    # the reference plane is the plane the viewer shows (world z = 10 + 3 * plane) ...
    viewer.dims.set_current_step(0, 2)
    assert panel.series_plane.value == 2
    viewer.dims.set_current_step(0, 3)
    assert panel.series_plane.value == 3
    # ... until the user picks another one
    panel.series_plane.value = 1
    viewer.dims.set_current_step(0, 0)
    assert panel.series_plane.value == 1
    panel.series_plane.value = 0  # back on the viewer's plane: it follows again
    viewer.dims.set_current_step(0, 2)
    assert panel.series_plane.value == 2
    f.mode.value = "nmf"
    assert dock._prepare().series.reference == 2
    # a single spectral image has no series choice (a hidden choice is ignored)
    panel.series.value = "per-plane"
    single = make_crs_sample(shape=(16, 16), n_channels=N_CHANNELS, random_state=0)
    data, kwargs, _ = sample_layer_data(single, "crs")[0]
    viewer.add_image(data, **kwargs)
    f.image.value = "crs"
    assert panel.series.native.isHidden() and panel.series_plane.native.isHidden()
    assert panel.series_choice() is None and dock._prepare().series is None
    # a 5-D image is a series along its first axis, of volumes
    viewer.add_image(np.ones((2, 3, N_CHANNELS, 8, 8), np.float32), name="tz",
                     metadata={"spectral_axis_index": 2})
    f.image.value = "tz"
    assert not panel.series.native.isHidden()
    assert "axis 0: 2 planes of 3 x 8 x 8 pixels (each plane is a volume)" in \
        panel.series_info.value


# -- every strategy ----------------------------------------------------------------------
def test_every_strategy_publishes_the_core_maps_as_4d_layers(qtbot, viewer, dock, zs):
    cfg = AnalysisConfig(mode="nmf", n_components=3, **SETTINGS)
    for choice in ("plane", "pooled", "per-plane"):
        _configure(dock, "nmf", choice, plane=1, n_components=3)
        _run(qtbot, dock)
        expected = unmix_series(zs.stack, cfg, strategy=CORE_STRATEGY[choice], series_axis=0,
                                spectral_axis=1,
                                reference="pooled" if choice == "pooled" else 1,
                                spectral_values=zs.spectral_axis)
        _check_strategy(viewer, dock, choice, expected)
    # planes that hit the iteration cap are named, in the warning and in the summary
    _configure(dock, "nmf", "per-plane", plane=1, n_components=3, max_iter=3, tol=1e-12)
    since = len(notification_manager.records)
    _run(qtbot, dock)
    warned = _notes(since, NotificationSeverity.WARNING)
    assert any("4 of 4 planes (0-3)" in w and "'max iterations' = 3" in w for w in warned)
    assert "cap hit on plane(s) 0-3: raise 'max iterations'" in dock.summary.text()

    # a 5-D image (T, Z, C, Y, X): per time point, its z-stack is fitted as one plane
    t0, t1 = (make_crs_sample_4d(n_planes=2, shape=(12, 12), n_channels=N_CHANNELS,
                                 random_state=seed).stack for seed in (1, 2))
    stack = np.stack([t0, t1])
    viewer.add_image(stack, name="tz", metadata={"spectral_axis_index": 2})
    dock.form.image.value = "tz"
    _configure(dock, "nmf", "per-plane", plane=0, n_components=3)
    _run(qtbot, dock)
    expected = unmix_series(stack, cfg, strategy="per-slice", series_axis=0, spectral_axis=2,
                            reference=0)
    layers = result_layers(viewer, source_image="tz")
    assert [lyr.data.shape for lyr in layers] == [(2, 2, 1, 12, 12)] * 3
    for i, layer in enumerate(layers):
        np.testing.assert_allclose(layer.data[:, :, 0], expected.maps[i], rtol=1e-5, atol=1e-7)
    assert len(result_layers(viewer, source_image="z-series")) == 3  # left alone


def _check_strategy(viewer, dock, choice, expected):
    _check_maps(viewer, dock, expected)
    sr = dock.series_result
    np.testing.assert_allclose(sr.H, expected.H, rtol=1e-5, atol=1e-7)
    # the dock's result covers the whole stack: W in the C order of (Z, Y, X)
    res = dock.result
    assert res.W.shape == (N_PLANES * SHAPE[0] * SHAPE[1], 3)
    np.testing.assert_allclose(res.maps((N_PLANES, *SHAPE)), expected.maps, rtol=1e-5,
                               atol=1e-7)
    text = dock.summary.text()
    assert f"{N_PLANES} planes" in text
    errors = ", ".join(format(e, ".3g") for e in expected.summary["plane_relative_errors"])
    assert f"relative error per plane: {errors}" in text
    plot = dock.spectra_plot
    assert [c.label for c in plot.content.curves] == expected.component_names
    if choice == "per-plane":
        assert text.startswith("Per plane") and "iterations per plane" in text
        assert res.arrays["plane_H"].shape == (N_PLANES, 3, N_CHANNELS)
        # the spectra dock shows the spectra of the plane the viewer shows
        for z in (3, 0):
            viewer.dims.set_current_step(0, z)
            np.testing.assert_allclose([c.values for c in plot.content.curves],
                                       expected.H[z], rtol=1e-5)
            assert f"plane {z}" in plot.content.title
    else:
        where = "plane 1" if choice == "plane" else "pooled sample"
        assert text.startswith("Shared basis") and where in text
        np.testing.assert_allclose([c.values for c in plot.content.curves], expected.H,
                                   rtol=1e-5)
        assert where in plot.content.title


# -- seeds -------------------------------------------------------------------------------
def _labels_on_plane(zs, z, n=12):
    """Labels (Z, Y, X) on plane ``z`` only: the ``n`` pixels where each true component
    makes up the largest fraction of that plane."""
    W = zs.maps[:, z].reshape(zs.n_components, -1).T
    frac = W / W.sum(axis=1, keepdims=True)
    lab = np.zeros((N_PLANES, SHAPE[0] * SHAPE[1]), dtype=np.uint16)
    for i in range(zs.n_components):
        lab[z, np.argsort(-frac[:, i], kind="stable")[:n]] = i + 1
    return lab.reshape((N_PLANES, *SHAPE))


def test_seeds_belong_to_the_reference_plane(qtbot, viewer, dock, zs):
    lab = _labels_on_plane(zs, 2)
    # painted in a Labels layer with the viewer's dimensions, on channel 0 of plane 2
    painted = np.zeros((N_PLANES, N_CHANNELS, *SHAPE), dtype=lab.dtype)
    painted[:, 0] = lab
    viewer.add_labels(painted, name="plane 2 cells", scale=SCALE, translate=TRANSLATE)
    assert dock.components_from_layer("plane 2 cells") == zs.n_components
    names = [r.settings().name for r in dock.table.rows]

    # the labels are on plane 2: a basis from plane 1 is refused before anything runs
    _configure(dock, "seeded-nmf", "plane", plane=1)
    since = len(notification_manager.records)
    assert dock.run() is None
    errors = _notes(since, NotificationSeverity.ERROR)
    assert len(errors) == 1 and "not on plane 1" in errors[0] and "plane(s) 2" in errors[0]
    # so is a per-plane run (the labels are missing on the other planes) and a pooled one
    dock.series_panel.series.value = "per-plane"
    assert dock.run() is None
    assert "missing on plane(s) 0-1, 3" in _notes(since, NotificationSeverity.ERROR)[-1]
    dock.series_panel.series.value = "pooled"
    assert dock.run() is None
    last = _notes(since, NotificationSeverity.ERROR)[-1]
    assert "pooled" in last and "ROI and label seeds cannot be used" in last
    assert dock.job is None and dock.run_button.isEnabled()

    # the basis from plane 2 takes the labels of plane 2
    _configure(dock, "seeded-nmf", "plane", plane=2)
    _run(qtbot, dock)
    cfg = AnalysisConfig(mode="seeded-nmf", **SETTINGS, components=[
        ComponentSpec(name, h_source=RoiLabel(i + 1)) for i, name in enumerate(names)])
    expected = unmix_series(zs.stack, cfg, reference=2, labels=lab[2],
                            spectral_values=zs.spectral_axis)
    _check_maps(viewer, dock, expected)
    # seeded by the truth on plane 2, the shared basis is close to the true spectra, in order
    assert np.diag(_cos(dock.series_result.H, zs.H)).min() > 0.9
    assert all(r.report.text().startswith("H0: roi-label") for r in dock.table.rows)

    # the result seeds the next run: on plane 2, its spectra and its maps of plane 2 (the
    # NNLS maps, optimal for those spectra), so the refined basis fit can only improve
    first = dock.series_result.summary["basis"]["reconstruction_err"]
    assert dock.use_result_as_seeds()
    _configure(dock, "seeded-nmf", "plane", plane=2)
    _run(qtbot, dock)
    assert dock.series_result.summary["basis"]["reconstruction_err"] <= first * (1 + 1e-5)
    assert all("W0: fixed-w" in r.report.text() for r in dock.table.rows)
    # a per-plane run takes the spectra only, and says so
    dock.series_panel.series.value = "per-plane"
    since = len(notification_manager.records)
    _run(qtbot, dock)
    assert "spectrum only" in _notes(since, NotificationSeverity.INFO)[0]
    assert dock.series_result.strategy == "per-slice"


def test_a_background_from_a_shapes_layer_is_subtracted_on_the_planes_fitted(qtbot, viewer,
                                                                             dock, zs):
    """A row of a 2-D Shapes layer over the series marked background, its spectrum
    subtracted: the dock's series run takes the region on the plane(s) it fits, as the
    core run of the config with the masks of that plane does."""
    def rect(y0, y1, x0, x1):   # around the centres of pixels y0..y1, x0..x1
        return np.array([[y0, x0], [y0, x1], [y1, x1], [y1, x0]]) + [[-0.5, -0.5],
                                                                     [-0.5, 0.5],
                                                                     [0.5, 0.5], [0.5, -0.5]]

    rects = [rect(4, 4, 3, 4), rect(6, 7, 6, 7), rect(14, 20, 14, 20)]  # lipid, protein, medium
    viewer.add_shapes(rects, shape_type="rectangle", name="rois", scale=SCALE[2:],
                      translate=TRANSLATE[2:])                   # 2-D: on every plane
    assert dock.components_from_layer("rois") == 3
    dock.table.rows[2].background.setChecked(True)
    _configure(dock, "seeded-nmf", "joint")
    dock.form.subtract_background.value = True
    joint = dock._prepare().config       # the setup: every ROI a mask of the whole series
    assert [c.h_source.mask.shape for c in joint.components] == [(N_PLANES, *SHAPE)] * 3
    assert [int(c.h_source.mask[0].sum()) for c in joint.components] == [2, 4, 49]
    bg = joint.preprocessing.background
    assert isinstance(bg, FromComponent) and bg.name == joint.components[2].name
    for choice, plane in (("per-plane", 0), ("plane", 2)):
        _configure(dock, "seeded-nmf", choice, plane=plane)
        _run(qtbot, dock)
        placed = joint.replace(components=[
            dataclasses.replace(c, h_source=RoiMask(c.h_source.mask[plane]))
            for c in joint.components])
        kw = {"strategy": CORE_STRATEGY[choice], "series_axis": 0, "spectral_axis": 1,
              "reference": plane, "spectral_values": zs.spectral_axis}
        expected = unmix_series(zs.stack, placed, **kw)
        layers = result_layers(viewer, source_image="z-series")
        assert len(layers) == 3
        for i, layer in enumerate(layers):
            np.testing.assert_allclose(layer.data[:, 0], expected.maps[i], rtol=1e-6,
                                       atol=1e-9)
        assert dock.series_result.config().preprocessing.background.name == bg.name
        # the subtraction shaped the seeds: without it the run differs
        plain = unmix_series(zs.stack, placed.replace(preprocessing=Preprocessing()), **kw)
        assert np.abs(plain.maps - expected.maps).max() > 1e-3 * np.abs(expected.maps).max()


def test_an_roi_drawn_on_one_plane_is_refused_for_a_per_plane_run_in_the_dock_s_words(
        viewer, dock):
    """The core words the remedy neutrally (an ROI mask of one plane, a label image); the
    dock still names its layers."""
    box = np.array([[1, 0, 3, 3], [1, 0, 3, 8], [1, 0, 8, 8], [1, 0, 8, 3]], dtype=float)
    viewer.add_shapes([box], shape_type="rectangle", ndim=4, name="on plane 1",
                      scale=SCALE, translate=TRANSLATE)
    assert dock.components_from_layer("on plane 1") == 1
    _configure(dock, "seeded-nmf", "per-plane", plane=1)
    since = len(notification_manager.records)
    assert dock.run() is None
    errors = _notes(since, NotificationSeverity.ERROR)
    assert len(errors) == 1 and "its ROI is not the same on every plane (it covers plane(s) " \
        "1)" in errors[0]
    assert errors[0].endswith("Draw it in a 2-D Shapes layer (the same region on every "
                              "plane), seed it from a Labels layer painted on every plane, or "
                              "fit a shared basis on one plane."), errors[0]


# -- cancel ------------------------------------------------------------------------------
def test_cancel_stops_a_series_run_and_publishes_nothing(qtbot, viewer, dock):
    n_layers = len(viewer.layers)
    _configure(dock, "nmf", "per-plane", plane=0, n_components=3, max_iter=10_000_000,
               tol=0.0)
    job = dock.run()
    assert job is not None
    # the progress says which plane runs, and the iteration
    qtbot.waitUntil(lambda: dock.progress.format().startswith("plane 1/4 · nmf: "),
                    timeout=RUN_TIMEOUT_MS)
    since = len(notification_manager.records)
    dock.cancel_button.click()
    # 10 million iterations per plane would take hours: finishing means the cancel worked
    qtbot.waitUntil(lambda: job.done, timeout=5_000)
    assert dock.result is None and dock.series_result is None
    assert len(viewer.layers) == n_layers
    assert dock.run_button.isEnabled() and dock.progress.format() == "idle"
    assert "cancelled" in _notes(since, NotificationSeverity.INFO)[-1]
