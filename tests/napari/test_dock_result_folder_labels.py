"""The dock's result folder of a label-seeded run keeps its label image.

A run seeded from a Labels layer ("Components from layer") and saved through napari's
writer as a result folder (File > Save Layers with no extension: the writer hook
``write_result_folder``) held no ``labels.tif``: the layers carried the result but not
the labels, so ``napari-unmix run STACK --config FOLDER`` was refused without
``--labels``.  The dock's map layers now carry the run's label image (on the planes
fitted, for a z / t series), the writer keeps it as the CLI does (``labels.tif``, named
with its checksum in ``config.json``), and the reader puts a folder's label image back
in the layers, so a folder opened again and saved again keeps it.  A run without label
seeds writes none.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

napari = pytest.importorskip("napari")
pytestmark = pytest.mark.gui

import tifffile  # noqa: E402

from napari_unmix._napari.layers import LABELS_KEY, result_layers  # noqa: E402
from napari_unmix._napari.sample_data import sample_layer_data  # noqa: E402
from napari_unmix.cli import main  # noqa: E402
from napari_unmix.core import UnmixResult  # noqa: E402
from napari_unmix.core.synthetic import make_crs_sample  # noqa: E402

SETTINGS = {"solver": "hals", "backend": "numpy", "max_iter": 60, "tol": "1e-3",
            "random_state": "0"}


@pytest.fixture(autouse=True)
def _main_thread_only(monkeypatch):
    monkeypatch.setenv("NAPARI_ENSURE_PLUGIN_MAIN_THREAD", "1")


def _dock(viewer):
    _, dock = viewer.window.add_plugin_dock_widget("napari-unmix", "Spectral unmixing")
    return dock


def _configure(dock, mode="seeded-nmf", **values):
    dock.form.mode.value = mode
    for name, value in {**SETTINGS, **values}.items():
        getattr(dock.form, name).value = value


def _save(viewer, folder, image):
    """Save the maps of ``image`` as a result folder the way File > Save Layers does."""
    layers = result_layers(viewer, source_image=image)
    assert layers
    napari.save_layers(str(folder), layers, plugin="napari-unmix")
    assert (folder / "result.json").is_file()


def _rerun(tmp_path, stack, folder, axis, out):
    """``napari-unmix run STACK --config FOLDER --out OUT``, without --labels."""
    np.save(tmp_path / "stack.npy", stack)
    rc = main(["run", str(tmp_path / "stack.npy"), "--spectral-axis", str(axis), "--config",
               str(folder), "--out", str(out), "--quiet", "--no-progress"])
    assert rc == 0
    return UnmixResult.load(out / "result.npz")


def _viewer(make_napari_viewer, sample, labels):
    """A viewer with the image "crs" and its labels "cells" (seeding nothing yet)."""
    viewer = make_napari_viewer(strict_qt=True)
    data, kwargs, _ = sample_layer_data(sample, "crs")[0]
    viewer.add_image(data, **kwargs)
    viewer.add_labels(labels, name="cells")
    return viewer


@pytest.fixture
def image():
    """A small (C, Y, X) image and labels of the pixels each component dominates."""
    sample = make_crs_sample(shape=(14, 12), n_channels=10, random_state=4)
    labels = (np.argmax(sample.W, axis=1) + 1).astype(np.uint8)
    labels[sample.W.max(axis=1) < np.median(sample.W.max(axis=1))] = 0
    return sample, labels.reshape(sample.stack.shape[1:])


def test_a_label_seeded_dock_run_saved_as_a_folder_reruns_without_labels(
        make_napari_viewer, run_dock, image, tmp_path, kept_labels):
    sample, labels = image
    viewer = _viewer(make_napari_viewer, sample, labels)
    dock = _dock(viewer)
    assert dock.components_from_layer("cells") == len(np.unique(labels[labels > 0]))
    _configure(dock)
    run_dock(dock)
    ran = dock.session.result
    folder = tmp_path / "dock"
    _save(viewer, folder, "crs")
    kept_labels(folder, labels)
    # the CLI reruns the folder with the label image it keeps, to the same maps
    again = _rerun(tmp_path, np.asarray(viewer.layers["crs"].data), folder, 0, tmp_path / "cli")
    assert again.component_names == ran.component_names
    np.testing.assert_array_equal(again.W, ran.W)
    np.testing.assert_array_equal(again.H, ran.H)
    # opened again in napari, the layers hold the labels, and a save keeps them
    opened = viewer.open(str(folder), plugin="napari-unmix")
    assert all(np.array_equal(lyr.metadata[LABELS_KEY], labels) for lyr in opened)
    napari.save_layers(str(tmp_path / "copy"), opened, plugin="napari-unmix")
    kept_labels(tmp_path / "copy", labels)
    assert (tmp_path / "copy" / "labels.tif").read_bytes() == \
        (folder / "labels.tif").read_bytes()


def test_a_dock_run_without_label_seeds_keeps_no_label_image(
        make_napari_viewer, run_dock, image, tmp_path):
    sample, labels = image
    viewer = _viewer(make_napari_viewer, sample, labels)
    dock = _dock(viewer)
    _configure(dock, "nmf", n_components=3)
    run_dock(dock)
    assert all(LABELS_KEY not in lyr.metadata for lyr in result_layers(viewer))
    folder = tmp_path / "nmf"
    _save(viewer, folder, "crs")
    assert not (folder / "labels.tif").exists()
    assert "label_image" not in json.loads((folder / "config.json").read_text())


@pytest.mark.parametrize("choice, plane", [("per-plane", None), ("plane", 1)])
def test_a_series_from_plane_labels_saved_as_a_folder_reruns_without_labels(
        make_napari_viewer, run_dock, plane_labelled_series, tmp_path, choice, plane, kept_labels):
    zs, lab = plane_labelled_series.sample, plane_labelled_series.labels
    n_channels = zs.stack.shape[1]
    viewer = make_napari_viewer(strict_qt=True)
    data, kwargs, _ = sample_layer_data(zs, "z-series")[0]
    viewer.add_image(data, **kwargs)
    # (Z, 1, Y, X): the labels of every plane over the image's planes, on every channel
    viewer.add_labels(lab[:, None], name="cells", scale=(1.0, n_channels, 1.0, 1.0),
                      translate=(0.0, (n_channels - 1) / 2, 0.0, 0.0))
    dock = _dock(viewer)
    assert dock.components_from_layer("cells") == zs.n_components
    _configure(dock)
    dock.series_panel.series.value = choice
    if plane is not None:
        dock.series_panel.series_plane.value = plane
    run_dock(dock)
    ran = dock.session.result  # the whole series, as its maps are published
    assert dock.series_result.strategy == ("per-slice" if plane is None else "shared-basis")
    folder = tmp_path / "dock"
    _save(viewer, folder, "z-series")
    # the labels the fits were given: every plane's, or plane N's for a basis from it
    given = lab if plane is None else lab[plane]
    kept_labels(folder, given)
    again = _rerun(tmp_path, np.asarray(viewer.layers["z-series"].data), folder, 1,
                   tmp_path / "cli")
    np.testing.assert_array_equal(again.W, ran.W)
    np.testing.assert_array_equal(again.H, ran.H)
    opened = viewer.open(str(folder), plugin="napari-unmix")
    napari.save_layers(str(tmp_path / "copy"), opened, plugin="napari-unmix")
    kept_labels(tmp_path / "copy", given)


def test_a_folder_with_a_changed_label_image_opens_without_it_and_says_so(
        make_napari_viewer, image, tmp_path, kept_labels):
    from napari.utils.notifications import notification_manager

    sample, labels = image
    np.save(tmp_path / "stack.npy", sample.stack)
    np.save(tmp_path / "labels.npy", labels)
    folder = tmp_path / "cli"
    assert main(["run", str(tmp_path / "stack.npy"), "--spectral-axis", "0", "--mode",
                 "seeded-nmf", "--labels", str(tmp_path / "labels.npy"), "--max-iter", "5",
                 "--out", str(folder), "--quiet", "--no-progress"]) == 0
    kept_labels(folder, labels)
    viewer = make_napari_viewer(strict_qt=True)
    opened = viewer.open(str(folder), plugin="napari-unmix")
    assert all(np.array_equal(lyr.metadata[LABELS_KEY], labels) for lyr in opened)
    # a label image changed since the result was written is not taken for its labels
    tifffile.imwrite(folder / "labels.tif", np.where(labels == 2, 0, labels))
    since = len(notification_manager.records)
    opened = viewer.open(str(folder), plugin="napari-unmix")
    assert all(LABELS_KEY not in lyr.metadata for lyr in opened)
    said = " ".join(str(r.message) for r in notification_manager.records[since:])
    assert "labels.tif" in said and "changed" in said and "--labels" in said, said
    napari.save_layers(str(tmp_path / "copy"), opened, plugin="napari-unmix")
    assert not (tmp_path / "copy" / "labels.tif").exists()
