"""The "Spectral unmixing" dock, driven through napari like a user would.

The dock is opened through the plugin manifest, runs every mode on a small
synthetic CRS sample in its worker thread, and is checked for what a user sees:
map layers and their colours, spectra, notifications, and a dock that is usable
again after errors and cancellations.  napari's viewer leak checks stay on
(``strict_qt``) and layers may only be touched from the main thread
(``NAPARI_ENSURE_PLUGIN_MAIN_THREAD``).
"""

from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest

napari = pytest.importorskip("napari")
pytestmark = pytest.mark.gui

from napari.utils.notifications import NotificationSeverity, notification_manager  # noqa: E402
from scipy.optimize import linear_sum_assignment  # noqa: E402

from napari_unmix._napari.layers import result_layers  # noqa: E402
from napari_unmix._napari.sample_data import sample_layer_data  # noqa: E402
from napari_unmix._napari.seed_inputs import RowSettings, SourceChoice  # noqa: E402
from napari_unmix.core.analysis import AnalysisConfig, run_analysis  # noqa: E402
from napari_unmix.core.colors import DEFAULT_COLORS, hex_to_rgb  # noqa: E402
from napari_unmix.core.modes import MODES, ModeSpec, register_mode, unregister_mode  # noqa: E402
from napari_unmix.core.result import UnmixResult  # noqa: E402
from napari_unmix.core.solvers import NMF_SOLVERS, NNLS_SOLVERS  # noqa: E402
from napari_unmix.core.synthetic import make_crs_sample, make_crs_sample_4d  # noqa: E402

SHAPE = (48, 48)
N_CHANNELS = 32
RUN_TIMEOUT_MS = 60_000


@pytest.fixture(autouse=True)
def _main_thread_only(monkeypatch):
    monkeypatch.setenv("NAPARI_ENSURE_PLUGIN_MAIN_THREAD", "1")


@pytest.fixture(scope="module")
def sample():
    return make_crs_sample(shape=SHAPE, n_channels=N_CHANNELS, random_state=0)


@pytest.fixture
def viewer(make_napari_viewer, sample):
    v = make_napari_viewer(strict_qt=True)
    data, kwargs, _ = sample_layer_data(sample, "crs")[0]
    v.add_image(data, **kwargs)
    return v


@pytest.fixture
def dock(viewer):
    _, widget = viewer.window.add_plugin_dock_widget("napari-unmix", "Spectral unmixing")
    return widget


def _dominant(sample, n=20):
    """Per component, the ``n`` pixels where it makes up the largest fraction."""
    frac = sample.W / sample.W.sum(axis=1, keepdims=True)
    return [np.argsort(-frac[:, i], kind="stable")[:n] for i in range(sample.n_components)]


def _truth_labels(sample):
    lab = np.zeros(sample.W.shape[0], dtype=np.uint16)
    for i, idx in enumerate(_dominant(sample)):
        lab[idx] = i + 1
    return lab.reshape(SHAPE)


def _truth_rectangles(sample):
    """A 3 x 3 pixel square around the most dominant pixel of every component."""
    rects = []
    for idx in _dominant(sample, 1):
        y, x = np.unravel_index(idx[0], SHAPE)
        y, x = np.clip([y, x], 1, np.array(SHAPE) - 2)
        rects.append(np.array([[y - 1, x - 1], [y - 1, x + 1], [y + 1, x + 1], [y + 1, x - 1]],
                              float))
    return rects


def _cos(A, B):
    A = A / np.linalg.norm(A, axis=1, keepdims=True)
    B = B / np.linalg.norm(B, axis=1, keepdims=True)
    return A @ B.T


def _notes(since, severity=None):
    recs = notification_manager.records[since:]
    return [str(r.message) for r in recs if severity is None or r.severity == severity]


def _configure(dock, mode, **values):
    f = dock.form
    f.mode.value = mode
    defaults = {"max_iter": 200, "random_state": "0"}
    if mode in ("nmf", "seeded-nmf"):
        defaults.update(solver="hals", backend="numpy")  # fast, cancellable, no torch warm-up
    for name, value in {**defaults, **values}.items():
        getattr(f, name).value = value


def _run(qtbot, dock):
    job = dock.run()
    assert job is not None, "the run was refused"
    qtbot.waitUntil(lambda: job.done, timeout=RUN_TIMEOUT_MS)
    return job


def _rows_from_truth_labels(viewer, dock, sample):
    viewer.add_labels(_truth_labels(sample), name="segmentation")
    assert dock.components_from_layer("segmentation") == 4
    for row, name in zip(dock.table.rows, sample.component_names, strict=True):
        row.name.setText(name)


@pytest.fixture(scope="module")
def random_nmf(sample):
    """Random NNMF of the sample with the settings the tests use in the dock."""
    cfg = AnalysisConfig(mode="nmf", n_components=4, solver="hals", backend="numpy",
                         max_iter=200, random_state=0)
    return run_analysis(sample.stack, cfg)


# -- opening ---------------------------------------------------------------------------------
def test_dock_opens_through_the_manifest_with_choices_from_the_core_tables(viewer, dock):
    f = dock.form
    assert f.image.value == "crs"
    # a 2-D image has no spectral axis to unmix along: it is not offered
    viewer.add_image(np.ones(SHAPE, np.float32), name="plain 2-D")
    dock.reset_choices()
    assert "plain 2-D" not in f.image.choices and f.image.value == "crs"
    assert f.spectral_axis.value == 0
    assert "32 channels, 2800 to 3100 cm^-1" in f.axis_info.value
    assert [v for v in f.mode.choices] == list(MODES)
    for mode, table in (("nmf", NMF_SOLVERS), ("nnls", NNLS_SOLVERS)):
        f.mode.value = mode
        # the solvers and backends that fit the chosen loss (least squares by default)
        fits = [spec for spec in table.values() if spec.available()
                and f.loss.value in spec.losses]
        algos = {spec.algorithm for spec in fits}
        assert set(f.solver.choices) == {"auto", *algos}
        f.solver.value = "auto"
        backends = {spec.backend for spec in fits}
        assert set(f.backend.choices) == {"auto", *backends}
        assert f.device_info.value  # says where the solver runs (CPU / CUDA)
    f.mode.value = "pca"
    assert f.solver.native.isHidden() and not f.n_components.native.isHidden()


def _mean_spectrum_mode(data, config, seeds, callback):
    """A toy mode: one component, the mean spectrum, and its least-squares map."""
    assert config.n_components == 1
    X = np.asarray(data.fit.X, dtype=np.float64)
    h = X.mean(axis=0, keepdims=True)
    W = X @ h.T / float((h * h).sum())
    return UnmixResult(W=W, H=h, mode="toy-mean", backend="numpy", device="cpu", n_iter=0,
                       reconstruction_err=float(np.linalg.norm(X - W @ h)))


@pytest.fixture
def toy_mode():
    spec = register_mode(ModeSpec("toy-mean", "Toy mean spectrum", "What is the average?",
                                  _mean_spectrum_mode,
                                  options=frozenset({"n_components", "negative"})))
    yield spec
    unregister_mode(spec.name)
    assert spec.name not in MODES


def test_a_mode_registered_in_the_core_is_offered_and_runs(qtbot, toy_mode, viewer, sample):
    # registered before the dock opens; nothing in the dock's code knows it
    _, dock = viewer.window.add_plugin_dock_widget("napari-unmix", "Spectral unmixing")
    f = dock.form
    assert list(f.mode.choices)[-1] == "toy-mean"
    f.mode.value = "toy-mean"
    assert not f.negative.native.isHidden() and not f.n_components.native.isHidden()
    assert f.solver.native.isHidden() and f.tol.native.isHidden()
    assert not dock.table.isEnabled()  # not a seeded mode
    f.n_components.value = 1
    _run(qtbot, dock)
    assert dock.result.mode == "toy-mean"
    np.testing.assert_allclose(dock.result.H[0], sample.stack.reshape(N_CHANNELS, -1).mean(1),
                               rtol=1e-5)
    maps = result_layers(viewer, source_image="crs")
    assert [lyr.name for lyr in maps] == ["run 1 · C1"]
    assert dock.summary.text().startswith("Toy mean spectrum · 1 components")
    assert [c.label for c in dock.spectra_plot.content.curves] == ["C1"]


# -- every mode ------------------------------------------------------------------------------
def _check_published(viewer, dock, mode, names, colors=None):
    assert dock.result is not None and dock.result.mode == mode
    maps = result_layers(viewer, source_image="crs")
    # named by run (issue 13): "run N · component"
    assert [lyr.metadata["component_name"] for lyr in maps] == names
    assert all(lyr.name.endswith(f" · {n}") for lyr, n in zip(maps, names, strict=True))
    for i, layer in enumerate(maps):
        assert layer.data.shape == SHAPE
        np.testing.assert_allclose(layer.data.ravel(), dock.result.W[:, i])
        if colors is not None:
            top = layer.colormap.map(np.array([1.0]))[0][:3]
            np.testing.assert_allclose(top, hex_to_rgb(colors[i]), atol=1e-6)
    shown = dock.spectra_plot.content
    assert [c.label for c in shown.curves] == names
    assert (shown.scree is not None) == (mode == "pca")
    assert MODES[mode].label in dock.summary.text()
    # the dock is ready for the next run
    assert dock.run_button.isEnabled() and not dock.cancel_button.isEnabled()
    assert dock.progress.format() == "idle"


def test_pca_then_random_nnmf_replace_each_others_maps(qtbot, viewer, dock):
    n_user = len(viewer.layers)
    _configure(dock, "pca", n_components=3)
    _run(qtbot, dock)
    _check_published(viewer, dock, "pca", ["PC1", "PC2", "PC3"])
    # a capped NNMF: the solver's warning reaches the user, the result is still shown
    _configure(dock, "nmf", n_components=2, max_iter=3, tol=1e-12)
    since = len(notification_manager.records)
    _run(qtbot, dock)
    _check_published(viewer, dock, "nmf", ["C1", "C2"], colors=list(DEFAULT_COLORS[:2]))
    # in the dock's words (issue 13): the control, not the Python argument
    assert any("'max iterations' = 3" in w for w in _notes(since, NotificationSeverity.WARNING))
    assert "cap hit" in dock.summary.text()
    assert len(viewer.layers) == n_user + 2


def test_seeded_modes_from_a_segmentation(qtbot, viewer, dock, sample, random_nmf):
    _rows_from_truth_labels(viewer, dock, sample)
    names = list(sample.component_names)
    colors = [r.settings().color for r in dock.table.rows]
    # while seeding, the ROI mean spectra are previewed
    curves = dock.preview_seeds()
    assert [c.label for c in curves] == [f"{n} (seed)" for n in names]
    X = sample.stack.reshape(N_CHANNELS, -1).T
    for c, idx in zip(curves, _dominant(sample), strict=True):
        assert c.dashed
        np.testing.assert_allclose(c.values, X[idx].mean(axis=0), rtol=1e-5)
    assert dock.spectra_plot.content.previews == curves

    _configure(dock, "seeded-nmf")
    _run(qtbot, dock)
    _check_published(viewer, dock, "seeded-nmf", names, colors)
    assert dock.spectra_plot.content.previews == []
    _check_named_spectra(dock.result, sample, random_nmf)
    assert all(r.report.text().startswith("H0: roi-label") for r in dock.table.rows)
    # how far the fit moved each spectrum from its seed, per row and in the summary
    angles = np.degrees(dock.result.summary.seed_drift.angles)
    for row, angle in zip(dock.table.rows, angles, strict=True):
        assert f"moved {angle:.0f}° from its seed" in row.report.text()
    assert f"the spectra moved up to {angles.max():.0f}°" in dock.summary.text()

    # the trust in the seeds reaches the fit: trusted less, the spectra move farther
    dock.form.anchor.value = 0.0
    dock.table.rows[0].trust.setValue(5.0)  # ... except the row that keeps its own trust
    _run(qtbot, dock)
    assert dock.result.config.anchor == 0.0 and dock.result.config.components[0].anchor == 5.0
    free = np.degrees(dock.result.summary.seed_drift.angles)
    assert free[0] < angles[0] and (free[1:] > angles[1:]).any(), (free, angles)
    dock.form.anchor.value = 1.0
    dock.table.rows[0].trust.setValue(dock.table.rows[0].trust.minimum())

    _configure(dock, "nnls")
    _run(qtbot, dock)
    _check_published(viewer, dock, "nnls", names, colors)
    # fixed-H NNLS keeps the seed spectra: the ROI means
    np.testing.assert_allclose(dock.result.H, [c.values for c in curves], rtol=1e-5)


# -- seeds -----------------------------------------------------------------------------------
def _check_named_spectra(result, sample, random_nmf):
    C = _cos(result.H, sample.H)
    # row i was seeded from the ROI of true component i: the best one-to-one matching of
    # fitted and true spectra is the identity (water and the flat background look alike,
    # so a plain argmax per row would be too strict)
    np.testing.assert_array_equal(linear_sum_assignment(-C)[1], np.arange(4))
    # with the default trust in the seeds (1) no spectrum ends farther from its material
    # than its seed (measured: lipid 0.886 from a seed at 0.882; a free fit, trust 0,
    # unmixes these mixed ROIs further, to 0.907)
    seeds = np.diag(_cos(result.arrays["H0"], sample.H))
    assert (np.diag(C) >= seeds - 1e-3).all(), (np.diag(C), seeds)
    assert np.diag(C).min() > 0.87
    # without seeds, NNMF finds good spectra too, but in no particular order
    assert np.diag(C).mean() > np.diag(_cos(random_nmf.H, sample.H)).mean() + 0.1


def test_shape_rois_seed_each_named_component(qtbot, viewer, dock, sample, random_nmf):
    viewer.add_shapes(_truth_rectangles(sample), shape_type="rectangle", name="rois")
    assert dock.components_from_layer("rois") == 4
    assert [r.settings().source.shape_index for r in dock.table.rows] == [0, 1, 2, 3]
    _configure(dock, "seeded-nmf")
    _run(qtbot, dock)
    _check_named_spectra(dock.result, sample, random_nmf)
    assert all(r.report.text().startswith("H0: roi-mask") for r in dock.table.rows)


def test_a_locked_flat_background_row_keeps_the_offset_out_of_the_spectra(
        qtbot, viewer, dock, sample):
    _rows_from_truth_labels(viewer, dock, sample)
    _configure(dock, "seeded-nmf", solver="mu", max_iter=400)
    _run(qtbot, dock)
    roi_background = dock.result
    bg = dock.table.rows[3]  # the background row: seeded flat and locked instead
    bg.kind.setCurrentIndex(bg.kind.findData("flat"))
    bg.editor.fields["level"].setValue(1.0)
    bg.locked.setChecked(True)
    bg.background.setChecked(True)
    _run(qtbot, dock)
    flat = dock.result
    assert np.array_equal(flat.H[3], np.ones(N_CHANNELS, dtype=flat.H.dtype))
    assert bg.report.text().startswith("H0: flat 1")
    assert set(flat.summary["offsets_moved"]["amounts"]) == set(sample.component_names[:3])
    assert np.all(flat.H[:3].min(axis=1) == 0)
    assert "offsets moved into background: lipid " in dock.summary.text()
    # every ROI mean carries the flat offset; with the offset in a locked row of its own
    # that takes the other spectra's offsets, every chemical spectrum comes out closer
    # to the truth
    before = np.diag(_cos(roi_background.H, sample.H))[:3]
    after = np.diag(_cos(flat.H, sample.H))[:3]
    # measured: cosines 0.904/0.917/0.960 -> 0.967/0.997/0.999
    assert np.all(after > before + 0.03)
    assert after.min() > 0.95
    # the row settings survive a round trip through the row widget
    settings = bg.settings()
    assert settings.source.kind == "flat" and settings.source.absorb_offsets
    bg.set_settings(settings)
    assert bg.settings() == settings


def test_use_result_as_seeds_refines_the_last_result(qtbot, viewer, dock, sample):
    _configure(dock, "nmf", n_components=3, max_iter=400)
    _run(qtbot, dock)
    first = dock.result
    assert dock.use_result_as_seeds()
    assert dock.form.mode.value == "seeded-nmf"
    assert [r.settings().source.kind for r in dock.table.rows] == ["previous-result"] * 3
    _configure(dock, "seeded-nmf", max_iter=400)
    _run(qtbot, dock)
    # started from the previous fit itself: it can only improve (up to float32 rounding),
    # and the spectra stay
    assert dock.result.reconstruction_err <= first.reconstruction_err * (1 + 1e-5)
    assert np.diag(_cos(dock.result.H, first.H)).min() > 0.99
    assert all(r.report.text().startswith("H0: previous-result") and "W0: fixed-w" in
               r.report.text() for r in dock.table.rows)


# -- failures, warnings, cancel --------------------------------------------------------------
def test_errors_are_notified_and_the_dock_stays_usable(qtbot, viewer, dock):
    # ROIs that cannot be used: refused before anything runs
    viewer.add_shapes([np.array([[100.0, 100], [100, 110], [110, 110]])], shape_type="polygon",
                      name="far away")
    dock.table.set_rows([RowSettings("a", "#E69F00", SourceChoice("roi-mask", layer="far away"))])
    _configure(dock, "seeded-nmf")
    since = len(notification_manager.records)
    assert dock.run() is None
    errors = _notes(since, NotificationSeverity.ERROR)
    assert len(errors) == 1 and "lies outside image 'crs'" in errors[0]
    assert dock.run_button.isEnabled() and dock.job is None
    viewer.add_labels(np.zeros(SHAPE, np.int32), name="empty")
    assert dock.components_from_layer("empty") == 0
    assert "is empty" in _notes(since, NotificationSeverity.ERROR)[-1]

    # an error inside the worker
    dark = viewer.layers["crs"].data - 1.0  # negative values, as after a bad offset
    viewer.add_image(dark, name="dark", metadata=dict(viewer.layers["crs"].metadata))
    dock.form.image.value = "dark"
    _configure(dock, "nmf", n_components=2, negative="raise")
    since = len(notification_manager.records)
    job = _run(qtbot, dock)
    errors = _notes(since, NotificationSeverity.ERROR)
    assert len(errors) == 1 and "negative" in errors[0]
    assert dock.result is None and not result_layers(viewer)
    assert dock.run_button.isEnabled() and dock.progress.format() == "idle"
    assert job.done
    # the advice works: clip the negative values and run again
    dock.form.negative.value = "clip"
    _run(qtbot, dock)
    assert len(result_layers(viewer, source_image="dark")) == 2


def _start_long_run(qtbot, dock):
    _configure(dock, "nmf", n_components=4, max_iter=10_000_000, tol=0.0)
    job = dock.run()
    assert job is not None
    qtbot.waitUntil(lambda: dock.progress.format().startswith("nmf: "), timeout=RUN_TIMEOUT_MS)
    return job


def test_cancel_stops_a_long_run_and_publishes_nothing(qtbot, viewer, dock):
    n_layers = len(viewer.layers)
    job = _start_long_run(qtbot, dock)
    since = len(notification_manager.records)
    assert dock.run() is None  # a second run is refused while one runs
    assert "already running" in _notes(since, NotificationSeverity.WARNING)[0]
    dock.cancel_button.click()
    # 10 million iterations would take hours: finishing at all means the cancel worked
    qtbot.waitUntil(lambda: job.done, timeout=5_000)
    assert dock.result is None and len(viewer.layers) == n_layers
    assert dock.run_button.isEnabled() and dock.progress.format() == "idle"
    assert "cancelled" in _notes(since, NotificationSeverity.INFO)[-1]


def test_closing_the_viewer_mid_run_stops_the_job(qtbot, viewer, dock):
    job = _start_long_run(qtbot, dock)
    viewer.close()
    qtbot.waitUntil(lambda: job.done, timeout=10_000)
    assert job.detached and job.cancel_requested


# -- repeated runs ---------------------------------------------------------------------------
def test_twenty_runs_replace_the_layers_and_keep_memory_flat(qtbot, viewer, dock):
    # a z-series first: its spectral axis (1) comes from its metadata, its maps are
    # (Z, 1, Y, X) so that they line up with its planes, and later runs on another
    # image leave them alone
    zs = make_crs_sample_4d(n_planes=3, shape=(32, 32), n_channels=16, random_state=1)
    data, kwargs, _ = sample_layer_data(zs, "z-series")[0]
    viewer.add_image(data, **kwargs)
    dock.form.image.value = "z-series"
    assert dock.form.spectral_axis.value == 1
    _configure(dock, "pca", n_components=2)
    _run(qtbot, dock)
    z_maps = result_layers(viewer, source_image="z-series")
    assert [lyr.data.shape for lyr in z_maps] == [(3, 1, 32, 32)] * 2

    dock.form.image.value = "crs"
    _run(qtbot, dock)
    n_layers = len(viewer.layers)
    olds = []
    for _ in range(20):
        olds.append(weakref.ref(dock.result))
        _run(qtbot, dock)
        assert len(viewer.layers) == n_layers
    gc.collect()
    alive = [r() for r in olds if r() is not None]
    assert not alive  # every replaced result (and its maps) was released
    assert result_layers(viewer, source_image="z-series") == z_maps
