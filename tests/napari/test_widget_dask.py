"""A chunked (dask) image in the dock: the run goes block by block through the core's
dask path (one tile per block), shows its progress, can be cancelled, and its maps
come back as lazy layers equal to those of the same image in memory."""

from __future__ import annotations

import numpy as np
import pytest

napari = pytest.importorskip("napari")
da = pytest.importorskip("dask.array")
pytestmark = pytest.mark.gui

from napari.utils.notifications import NotificationSeverity, notification_manager  # noqa: E402

from napari_unmix._napari.layers import result_layers  # noqa: E402
from napari_unmix._napari.sample_data import sample_layer_data  # noqa: E402
from napari_unmix.core.synthetic import make_crs_sample  # noqa: E402

SHAPE = (48, 48)
RUN_TIMEOUT_MS = 60_000


@pytest.fixture(autouse=True)
def _main_thread_only(monkeypatch):
    monkeypatch.setenv("NAPARI_ENSURE_PLUGIN_MAIN_THREAD", "1")


@pytest.fixture(scope="module")
def sample():
    return make_crs_sample(shape=SHAPE, n_channels=32, random_state=0)


@pytest.fixture
def viewer(make_napari_viewer, sample):
    v = make_napari_viewer(strict_qt=True)
    data, kwargs, _ = sample_layer_data(sample, "crs")[0]
    v.add_image(data, **kwargs)
    lazy = dict(kwargs, name="crs (dask)")
    v.add_image(da.from_array(data, chunks=(data.shape[0], 16, 16)), **lazy)  # 3 x 3 tiles
    return v


@pytest.fixture
def dock(viewer):
    _, widget = viewer.window.add_plugin_dock_widget("napari-unmix", "Spectral unmixing")
    return widget


def _configure(dock, image, mode, **values):
    f = dock.form
    f.image.value = image
    f.mode.value = mode
    for name, value in {"max_iter": 200, "random_state": "0", **values}.items():
        getattr(f, name).value = value


def _run(qtbot, dock):
    job = dock.run()
    assert job is not None, "the run was refused"
    qtbot.waitUntil(lambda: job.done, timeout=RUN_TIMEOUT_MS)
    return job


def test_a_dask_image_unmixes_tile_by_tile_into_lazy_maps(qtbot, viewer, dock, sample):
    truth = np.zeros(SHAPE, dtype=np.uint16)
    frac = sample.W / sample.W.sum(axis=1, keepdims=True)
    for i in range(sample.n_components):   # the 20 purest pixels, all over the image
        truth.reshape(-1)[np.argsort(-frac[:, i], kind="stable")[:20]] = i + 1
    viewer.add_labels(truth, name="segmentation")
    maps = {}
    for image in ("crs", "crs (dask)"):
        _configure(dock, image, "nnls")
        assert dock.components_from_layer("segmentation") == sample.n_components
        _run(qtbot, dock)
        assert dock.result is not None, _notes_since(0)
        maps[image] = [lyr.data for lyr in result_layers(viewer, source_image=image)]
    lazy = maps["crs (dask)"]
    assert lazy and all(hasattr(m, "dask") for m in lazy)      # lazy layers
    assert dock.result.is_lazy
    # NNLS tile by tile gives the in-memory maps to rounding: bit for bit where BLAS
    # rounds a pixel's products the same whatever the tile's shape (the core tests,
    # tests/core/test_dask_nnls.py); an AVX-512 OpenBLAS rounds the tail rows of some
    # tile shapes differently (here 5-row tiles: 0.04 % of the entries differ, by at
    # most 1.2e-10 on maps up to 1.13)
    for a, b in zip(maps["crs"], lazy, strict=True):
        a, b = np.asarray(a), np.asarray(b)
        np.testing.assert_allclose(b, a, rtol=0, atol=8 * np.finfo(np.float32).eps
                                   * np.abs(a).max())
        assert np.mean(a != b) < 0.01


def test_a_dask_run_shows_its_progress_and_cancels(qtbot, viewer, dock):
    n_layers = len(viewer.layers)
    _configure(dock, "crs (dask)", "nmf", n_components=4, max_iter=10_000_000, tol=0.0,
               solver="hals", backend="numpy")
    since = len(notification_manager.records)
    job = dock.run()
    assert job is not None
    qtbot.waitUntil(lambda: dock.progress.format().startswith("nmf: "),
                    timeout=RUN_TIMEOUT_MS)
    dock.cancel_button.click()
    qtbot.waitUntil(lambda: job.done, timeout=10_000)   # 10 million passes: cancelled
    assert dock.result is None and len(viewer.layers) == n_layers
    assert dock.run_button.isEnabled() and dock.progress.format() == "idle"
    assert "cancelled" in _notes_since(since, NotificationSeverity.INFO)[-1]


def _notes_since(since, severity=None):
    recs = notification_manager.records[since:]
    return [str(r.message) for r in recs if severity is None or r.severity == severity]


def test_on_a_distributed_client_progress_and_cancel_go_through_the_futures(
        qtbot, viewer, dock, sample):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(processes=False, n_workers=2, threads_per_worker=1,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        _configure(dock, "crs (dask)", "nmf", n_components=4, max_iter=10_000_000, tol=0.0,
                   solver="hals", backend="numpy")
        job = dock.run()
        assert job is not None
        qtbot.waitUntil(lambda: dock.progress.format().startswith("nmf: "),
                        timeout=RUN_TIMEOUT_MS)
        assert client.run_on_scheduler(          # the blocks ran on the cluster
            lambda dask_scheduler: any(p.startswith("hals-block")
                                       for p in dask_scheduler.task_prefixes))
        dock.cancel_button.click()
        qtbot.waitUntil(lambda: job.done, timeout=20_000)
        assert dock.result is None and dock.progress.format() == "idle"
        _configure(dock, "crs (dask)", "nmf", n_components=4, max_iter=5, tol=0.0,
                   solver="hals", backend="numpy")
        _run(qtbot, dock)                       # and the next run still works there
        assert dock.result is not None and dock.result.is_lazy
        assert dock.result.summary.extra["chunked"]["scheduler"] == "distributed"
