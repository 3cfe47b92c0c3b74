"""Issue 13, problem 7: words.  Every control has a tooltip, messages name the dock's
controls instead of Python arguments, a first Run works, the tolerance box takes any
positive value, and the README gives napari 0.9's menu path."""

from __future__ import annotations

from pathlib import Path

import pytest

napari = pytest.importorskip("napari")
pytestmark = pytest.mark.gui

from napari.utils.notifications import NotificationSeverity, notification_manager  # noqa: E402
from qtpy.QtWidgets import (  # noqa: E402
    QAbstractButton,
    QAbstractSpinBox,
    QComboBox,
    QLineEdit,
)

from napari_unmix._napari.source_editors import menu_kinds  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
CONTROLS = (QAbstractButton, QComboBox, QAbstractSpinBox, QLineEdit)


def _without_tooltip(widget):
    out = []
    for w in widget.findChildren(CONTROLS):
        if isinstance(w, QLineEdit) and isinstance(w.parent(), (QComboBox, QAbstractSpinBox)):
            continue  # the editor inside a combo / spin box: the box has the tooltip
        if not w.toolTip().strip():
            text = w.text() if hasattr(w, "text") else ""
            out.append(f"{type(w).__name__} {w.objectName() or text}")
    return out


def _run_and_read_warnings(qtbot, dock) -> str:
    """Press Run, wait for the job if one started, and return the warnings and errors
    napari showed meanwhile, joined."""
    since = len(notification_manager.records)
    job = dock.run()
    if job is not None:
        qtbot.waitUntil(lambda: job.done, timeout=60_000)
    return " ".join(str(r.message) for r in notification_manager.records[since:]
                    if r.severity >= NotificationSeverity.WARNING)


def test_every_control_has_a_tooltip(crs_viewer, crs_dock):
    dock = crs_dock
    for kind in menu_kinds():  # a row of every source kind, every page built
        row = dock.table.add_row()
        row.kind.setCurrentIndex(row.kind.findData(kind))
    missing = _without_tooltip(dock)
    assert not missing, missing
    # the settings' tooltips say what the default is
    for w in dock.form.container:
        if w.widget_type not in ("Label",):
            assert "default" in (w.tooltip or "").lower(), w.name


def test_messages_name_the_dock_controls(qtbot, crs_viewer, crs_dock, run_dock):
    viewer, dock = crs_viewer, crs_dock
    dark = viewer.layers[0].data - 1.0  # negative values
    viewer.add_image(dark, name="dark", metadata=dict(viewer.layers[0].metadata))
    dock.reset_choices()
    dock.form.image.value = "dark"
    f = dock.form
    f.mode.value = "nmf"
    f.max_iter.value = 20
    said = _run_and_read_warnings(qtbot, dock)
    assert "negative='clip'" not in said and "pass " not in said, said
    assert "'negative values'" in said and "clip" in said, said


def test_a_first_run_works_and_rows_switch_to_seeded_nnmf(qtbot, crs_viewer, crs_dock,
                                                          run_dock):
    dock = crs_dock
    assert not dock.form.spec.seeded  # random NNMF until rows exist
    dock.form.max_iter.value = 30
    run_dock(dock)
    assert dock.result is not None and dock.status.text().startswith("Done")
    dock.table.add_row()
    assert dock.form.spec.seeded and dock.form.spec.builds_maps
    # the user's own choice is kept
    dock.form.mode.value = "pca"
    dock.table.add_row()
    assert dock.form.mode.value == "pca"


def test_the_tolerance_takes_any_positive_value(crs_dock):
    f = crs_dock.form
    f.mode.value = "nmf"
    f.tol.value = "1e-8"
    assert f.config_kwargs()["tol"] == 1e-8
    f.tol.value = "-1e-3"
    with pytest.raises(ValueError, match="'tolerance' must be a positive number"):
        f.config_kwargs()


def test_loss_and_abundance_are_offered_where_the_mode_uses_them(crs_dock):
    import dataclasses

    from napari_unmix.core.config import AnalysisConfig
    from napari_unmix.core.modes import MODES

    fields = {f.name for f in dataclasses.fields(AnalysisConfig)}
    assert {"loss", "abundance"} <= fields
    f = crs_dock.form
    for mode, spec in MODES.items():
        f.mode.value = mode
        assert (not f.loss.native.isHidden()) == spec.uses("loss")
        assert (not f.abundance.native.isHidden()) == spec.uses("abundance")
    f.mode.value = "nnls"
    f.loss.value = "poisson"
    assert set(f.solver.choices) - {"auto"} <= set(MODES["nnls"].solver_names(loss="poisson"))
    kw = f.config_kwargs()
    assert kw["loss"] == "poisson" and kw["abundance"] == "free"


def test_the_readme_gives_the_menu_path_napari_shows(crs_viewer, crs_dock):
    menubar = crs_viewer.window._qt_window.menuBar()
    plugins = next(a.menu() for a in menubar.actions() if "Plugins" in a.text())
    items = [a.text() for a in plugins.actions()]
    assert "Spectral unmixing (napari-unmix)" in items
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "Plugins → Spectral unmixing (napari-unmix)" in readme
    assert "Plugins → napari-unmix → Spectral unmixing" not in readme


def test_too_many_components_names_the_components_box():
    # before: "... Reduce n_components or use more pixels/channels."
    from napari_unmix._napari.help_texts import dock_words

    said = dock_words("nmf asks for n_components=20, but data with 1024 pixel(s) and 8 "
                      "channel(s) supports at most 8. Reduce n_components or use more "
                      "pixels/channels.")
    assert "n_components" not in said
    assert "asks for 'components' = 20" in said and "Reduce 'components' or" in said


def test_options_a_lazy_image_cannot_take_name_the_dock_s_controls():
    # before: "... needs the data in memory (np.asarray it), or pass solver='auto'."
    import dask.array as da
    import numpy as np

    from napari_unmix._napari.help_texts import dock_words
    from napari_unmix.core.analysis import AnalysisConfig, run_analysis

    lazy = da.from_array(np.ones((6, 8, 8), np.float32), chunks=(6, 4, 4))
    with pytest.raises(ValueError) as info:
        run_analysis(lazy, AnalysisConfig(mode="nmf", n_components=2, solver="mu"))
    said = dock_words(str(info.value))
    assert "'solver' = mu" in said and "'solver' = auto" in said
    assert "load the image into memory" in said and "np.asarray(layer.data)" in said
    assert "solver='" not in said


def test_an_image_with_nan_is_refused_in_the_dock_s_words(qtbot, crs_viewer, crs_dock):
    # before: "stack contains 8 NaN ... Exclude those pixels with a mask
    # (stack_to_matrix(..., mask=finite_mask(stack)))", which nothing in the dock does
    viewer, dock = crs_viewer, crs_dock
    holed = viewer.layers[0].data.astype("float32")
    holed[:, 3, 3] = float("nan")
    viewer.add_image(holed, name="holed", metadata=dict(viewer.layers[0].metadata))
    dock.reset_choices()
    dock.form.image.value = "holed"
    dock.form.mode.value = "nmf"
    dock.form.max_iter.value = 20
    said = _run_and_read_warnings(qtbot, dock)
    assert "the image holds 64 NaN" in said, said
    assert "Set 'NaN pixels' to omit" in said and "np.nan_to_num" in said, said
    assert "finite_mask" not in said and "stack_to_matrix" not in said, said


def test_an_roi_not_on_every_plane_is_refused_in_the_dock_s_words():
    # the core's remedy names masks and label images (its users include the CLI and the
    # API); the dock says what to do with its layers, as it did when the core said it
    import numpy as np

    from napari_unmix._napari.help_texts import dock_words
    from napari_unmix.core.sources import RoiMask

    mask = np.zeros((3, 4, 5), bool)
    mask[1, 1:3, 1:3] = True
    with pytest.raises(ValueError) as info:
        RoiMask(mask).on_every_plane(spatial_shape=(3, 4, 5))
    core = str(info.value)
    assert "layer" not in core.lower() and "Shapes" not in core
    assert dock_words(core) == (
        "its ROI is not the same on every plane (it covers plane(s) 1), but every plane is "
        "seeded from the same ROI. Draw it in a 2-D Shapes layer (the same region on every "
        "plane), seed it from a Labels layer painted on every plane, or fit a shared basis "
        "on one plane.")
