""""Save setup" keeps the dock's z / t series choice, and Load setup and the CLI follow it.

The dock's setup of a series run "per plane" or "shared basis" held no series choice:
Load setup left the dock on its own choice and ``napari-unmix run STACK --config
SETUP`` ran a joint fit unless ``--strategy ... --reference ...`` were added by hand.
A setup now keeps the choice in its config's ``series`` (the keys of a series result's
``params.series``), written only when it is not the joint fit, so a joint setup's
file is as before.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

napari = pytest.importorskip("napari")
pytestmark = pytest.mark.gui

from napari_unmix._napari.sample_data import sample_layer_data  # noqa: E402
from napari_unmix.cli import main  # noqa: E402
from napari_unmix.core.series import SeriesResult  # noqa: E402
from napari_unmix.io import read_result_bundle  # noqa: E402

N_PLANES, SHAPE, N_CHANNELS = 3, (16, 16), 12


#: a short random NNMF per plane that converges on this sample (the dock's form)
FORM = {"mode": "nmf", "n_components": 3, "solver": "hals", "backend": "numpy",
        "max_iter": 200, "tol": "1e-3", "random_state": "0"}


@pytest.fixture
def zs(plane_labelled_series, monkeypatch):
    """The z-series (3 planes of 16 x 16 pixels, 12 channels), for docks whose plugin
    runs on the main thread."""
    monkeypatch.setenv("NAPARI_ENSURE_PLUGIN_MAIN_THREAD", "1")
    sample = plane_labelled_series.sample
    assert sample.stack.shape == (N_PLANES, N_CHANNELS, *SHAPE)
    return sample


def _dock(make_napari_viewer, data_of, name="z-series"):
    viewer = make_napari_viewer(strict_qt=True)
    data, kwargs, _ = sample_layer_data(data_of, name)[0]
    viewer.add_image(data, **kwargs)
    _, dock = viewer.window.add_plugin_dock_widget("napari-unmix", "Spectral unmixing")
    return viewer, dock


def _configure(dock, series="joint", plane=None):
    for name, value in FORM.items():
        getattr(dock.form, name).value = value
    dock.series_panel.series.value = series
    if plane is not None:
        dock.series_panel.series_plane.value = plane


def _cli(tmp_path, stack, config, *flags, out="cli", axis="1"):
    np.save(tmp_path / "stack.npy", stack)
    return main(["run", str(tmp_path / "stack.npy"), "--spectral-axis", axis, "--config",
                 str(config), *flags, "--out", str(tmp_path / out), "--quiet",
                 "--no-progress"])


@pytest.mark.parametrize("choice, plane, saved", [
    ("per-plane", 1, {"strategy": "per-slice", "series_axis": 0, "reference": 1,
                      "match": "auto"}),
    ("plane", 2, {"strategy": "shared-basis", "series_axis": 0, "reference": 2,
                  "match": "auto"}),
    ("pooled", None, {"strategy": "shared-basis", "series_axis": 0, "reference": "pooled",
                      "match": "auto"}),
])
def test_save_setup_keeps_the_series_choice_and_load_setup_restores_it(
        make_napari_viewer, zs, tmp_path, choice, plane, saved):
    _, dock = _dock(make_napari_viewer, zs)
    _configure(dock, choice, plane)
    path = dock.setup.save_setup(tmp_path / "setup.json")
    assert path is not None, dock.status.text()
    status = dock.status.text()
    assert "not in the file" not in status and "--strategy" not in status, status
    assert "series choice" in status, status
    assert json.loads(path.read_text())["series"] == saved
    # a new dock, on the joint fit, takes the choice and the reference plane from the file
    _, dock2 = _dock(make_napari_viewer, zs)
    assert dock2.series_panel.choice() is None
    notes = dock2.setup.load_setup(path)
    assert notes == [], (notes, dock2.status.text())
    assert dock2.series_panel.choice() == choice
    plan = dock2.session.plan()
    assert (plan.choice, plan.axis, plan.reference) == (choice, 0, saved["reference"])


def test_a_joint_setup_writes_no_series_field(make_napari_viewer, zs, tmp_path):
    _, dock = _dock(make_napari_viewer, zs)
    _configure(dock, "per-plane", 1)
    per_plane = json.loads(dock.setup.save_setup(tmp_path / "per_plane.json").read_text())
    dock.series_panel.series.value = "joint"
    joint = dock.setup.save_setup(tmp_path / "joint.json")
    doc = json.loads(joint.read_text())
    assert "series" not in doc
    assert doc == {k: v for k, v in per_plane.items() if k != "series"}


def test_the_cli_reruns_a_saved_per_plane_setup_as_the_dock_ran_it(
        make_napari_viewer, run_dock, zs, tmp_path):
    _, dock = _dock(make_napari_viewer, zs)
    _configure(dock, "per-plane", 1)
    run_dock(dock)
    first = dock.series_result
    assert first.strategy == "per-slice"
    path = dock.setup.save_setup(tmp_path / "setup.json")
    assert path is not None, dock.status.text()
    assert _cli(tmp_path, zs.stack, path) == 0       # no series flags
    cli = SeriesResult.from_result(read_result_bundle(tmp_path / "cli").result,
                                   (N_PLANES, *SHAPE))
    assert cli.strategy == "per-slice" and cli.params["series_axis"] == 0
    assert cli.component_names == first.component_names
    np.testing.assert_allclose(cli.maps, first.maps, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(cli.H, first.H, rtol=1e-6, atol=1e-9)
    # --strategy joint fits the whole stack, and its result records no series
    assert _cli(tmp_path, zs.stack, path, "--strategy", "joint", out="joint") == 0
    res = read_result_bundle(tmp_path / "joint").result
    assert "series" not in res.params
    assert "series" not in json.loads((tmp_path / "joint" / "config.json").read_text())


def test_a_series_setup_on_one_spectral_image(make_napari_viewer, crs_dock, zs, tmp_path,
                                              capsys):
    _, dock = _dock(make_napari_viewer, zs)
    _configure(dock, "per-plane", 1)
    path = dock.setup.save_setup(tmp_path / "setup.json")
    one = zs.stack[0]                                   # (C, Y, X)
    assert _cli(tmp_path, one, path, axis="0") == 2
    err = capsys.readouterr().err
    assert "--strategy joint" in err and "per-slice" in err, err
    assert _cli(tmp_path, one, path, "--strategy", "joint", axis="0") == 0
    # Load setup on a (C, Y, X) image: a note, and the joint fit
    notes = crs_dock.setup.load_setup(path)
    assert notes is not None, crs_dock.status.text()
    assert any("series choice" in n and "joint fit" in n for n in notes), notes
    assert crs_dock.series_panel.choice() is None and crs_dock.session.plan() is None
