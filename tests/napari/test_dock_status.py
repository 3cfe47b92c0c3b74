"""Issue 13, problem 6: no stale words.  The status line and the summary are cleared
when a run starts; a refused or failed run says so, and the summary never shows the
previous run's numbers as if they were the new run's."""

from __future__ import annotations

import pytest

napari = pytest.importorskip("napari")
pytestmark = pytest.mark.gui

from napari_unmix.core.modes import MODES, ModeSpec, register_mode, unregister_mode  # noqa: E402


def _broken_mode(data, config, seeds, callback):
    raise ValueError("this toy mode always fails")


@pytest.fixture
def broken_mode():
    spec = register_mode(ModeSpec("toy-broken", "Toy broken mode", "Does it fail?",
                                  _broken_mode, options=frozenset({"n_components"})))
    yield spec
    unregister_mode(spec.name)
    assert spec.name not in MODES


def _nmf(dock):
    f = dock.form
    f.mode.value = "nmf"
    f.n_components.value = 3
    f.max_iter.value = 30
    f.solver.value = "hals"


def test_status_and_summary_are_never_stale(qtbot, crs_viewer, crs_dock, run_dock,
                                            broken_mode):
    dock = crs_dock
    dock.reset_choices()
    _nmf(dock)
    run_dock(dock)
    assert dock.status.text().startswith("Done")
    done_summary = dock.summary.text()
    assert "reconstruction error" in done_summary
    # refused before it starts: the status says so, not "Done"
    dock.form.mode.value = "seeded-nmf"
    dock.table.clear()
    assert dock.run() is None
    assert dock.status.text().startswith("Refused:"), dock.status.text()
    assert "Done" not in dock.status.text()
    # while a new run goes on, the last run's numbers are not shown as the summary
    _nmf(dock)
    job = dock.run()
    assert job is not None
    assert dock.summary.text() == "" and dock.status.text().startswith("Running")
    qtbot.waitUntil(lambda: job.done, timeout=60_000)
    assert dock.summary.text() and dock.status.text().startswith("Done")
    # a failure is shown as a failure, without the previous numbers
    dock.form.mode.value = "toy-broken"
    run_dock(dock)
    assert dock.status.text().startswith("Failed:")
    assert "always fails" in dock.status.text()
    assert "reconstruction error" not in dock.summary.text()


def test_an_image_deleted_during_the_run_gets_no_maps(qtbot, crs_viewer, crs_dock, quick_nmf):
    dock = crs_dock
    quick_nmf(dock, 3)
    image = crs_viewer.layers[0]
    job = dock.run()
    assert job is not None
    crs_viewer.layers.remove(image)  # before the job's done callback can run
    qtbot.waitUntil(lambda: job.done, timeout=60_000)
    assert len(crs_viewer.layers) == 0, [lyr.name for lyr in crs_viewer.layers]
    text = dock.status.text()
    assert text.startswith("Failed") and "Done" not in text, text
    assert repr(image.name) in text and "removed during the run" in text, text
    assert dock.result is None and dock.run_button.isEnabled()
