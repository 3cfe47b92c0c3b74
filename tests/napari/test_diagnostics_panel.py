"""The dock's "Is my fit good?" section (issue 15), in a real viewer on the bundled sample."""

from __future__ import annotations

import numpy as np
import pytest
from napari.layers import Labels

from napari_unmix._napari.diagnostics import (
    SE_ROLE,
    draw_k_curves,
    residual_row,
    se_layer_name,
    stability_rows,
)
from napari_unmix._napari.diagnostics_panel import TIPS
from napari_unmix.core.synthetic import make_crs_sample

pytestmark = pytest.mark.gui

TIMEOUT_MS = 120_000


def _wait(qtbot, job):
    assert job is not None, "the action was refused"
    qtbot.waitUntil(lambda: job.done, timeout=TIMEOUT_MS)
    return job


def test_every_control_has_a_tooltip(crs_dock):
    panel = crs_dock.diagnostics
    assert not panel.body.isVisible()  # collapsed at first
    panel.set_expanded(True)
    for w in (panel.header, panel.n_components, panel.method, panel.suggest_button,
              panel.k_button, panel.stability_button, panel.n_starts, panel.residual_button,
              panel.errors, panel.table):
        assert w.toolTip().strip(), w
    assert set(TIPS) >= {"suggest", "k", "stability", "residual", "errors"}


def test_suggest_components_adds_seed_regions_rows_and_a_run(qtbot, crs_viewer, crs_dock):
    dock, panel = crs_dock, crs_dock.diagnostics
    _wait(qtbot, panel.suggest())
    # the suggestion: k = 4 suggested, its curves plotted, an editable Labels layer
    assert panel.suggestion.k.k == 4
    assert panel.k_plot is not None and panel.k_plot.suggestion.k == 4
    layer = crs_viewer.layers["suggested seeds"]
    assert isinstance(layer, Labels) and layer.data.shape == (128, 128)
    assert set(np.unique(layer.data)) == {0, 1, 2, 3, 4}
    assert [r.source.kind for r in dock.session.rows] == ["roi-label"] * 4
    assert dock.form.mode.value == "seeded-nmf"
    # then seeded NNMF runs from those rows, with the residual map (the report)
    qtbot.waitUntil(lambda: dock.result is not None and not dock.running, timeout=TIMEOUT_MS)
    assert dock.result.mode == "seeded-nmf" and dock.result.n_components == 4
    assert all(f"run 1 · label {i}" in crs_viewer.layers for i in range(1, 5))
    assert "run 1 · residual" in crs_viewer.layers
    # the same fit as the core's pipeline (its regions as masks, the dock's as labels)
    from napari_unmix.core import run_unsupervised

    core = run_unsupervised(crs_viewer.layers[0].data, spectral_axis=0, residual=False)
    np.testing.assert_allclose(dock.result.H, core.result.H, rtol=1e-4, atol=1e-6)


def test_k_curves_are_plotted_with_the_suggested_k(qtbot, crs_viewer, crs_dock):
    panel = crs_dock.diagnostics
    _wait(qtbot, panel.how_many())
    ks = panel.k_plot.suggestion
    assert ks.k == 4
    axes = panel.k_plot.axes
    assert len(axes) == 3
    for ax in axes:  # the suggested k marked by a vertical line in every panel
        assert any(len(line.get_xdata()) == 2 and np.allclose(line.get_xdata(), 4)
                   for line in ax.get_lines())
    assert "k = 4 suggested" in crs_dock.status.text()
    assert "4" in panel.k_plot.figure._suptitle.get_text()


def test_stability_table(qtbot, crs_viewer, crs_dock):
    dock, panel = crs_dock, crs_dock.diagnostics
    dock.form.n_components.value = 3
    panel.n_starts.setValue(3)
    _wait(qtbot, panel.check_stability())
    rep = panel.stability_report
    assert rep.n_components == 3 and rep.n_starts == 3
    assert panel.table.isVisibleTo(panel) and panel.table.rowCount() == 3
    for i in range(3):
        assert panel.table.item(i, 1).text() == f"{rep.spread[i]:.3f}"
        assert panel.table.item(i, 3).text() in ("reproducible", "not reproducible")
    assert "Stability" in dock.status.text()


def test_the_stability_table_names_its_image(qtbot, crs_viewer, crs_dock):
    """The table stays while another image is chosen, and it did not say which image it
    measured: it now names it, in its title and on the status line."""
    dock, panel = crs_dock, crs_dock.diagnostics
    name = crs_viewer.layers[0].name
    dock.form.n_components.value = 2
    panel.n_starts.setValue(2)
    _wait(qtbot, panel.check_stability())
    assert panel.table_title.text().startswith(f"Stability of {name!r}:")
    assert dock.status.text().startswith(f"Stability of {name!r}:")


def test_standard_error_layers_of_a_fixed_h_nnls_run(qtbot, crs_viewer, crs_dock, run_dock,
                                                      quick_nmf):
    dock, panel = crs_dock, crs_dock.diagnostics
    quick_nmf(dock, 4, max_iter=60, backend=None)
    run_dock(dock)
    assert dock.use_result_as_seeds()
    dock.form.mode.value = "nnls"
    panel.errors.setChecked(True)
    run_dock(dock)
    names = dock.result.component_names
    assert "W_se" in dock.result.arrays
    for j, comp in enumerate(names):
        layer = crs_viewer.layers[se_layer_name(2, comp)]
        assert layer.data.shape == (128, 128) and not layer.visible
        np.testing.assert_allclose(layer.data, dock.result.arrays["W_se"][:, j].reshape(
            128, 128), rtol=1e-6)
        assert np.nanmedian(layer.data) > 0
    # an NNMF run has none (the spectra's own uncertainty would be left out)
    quick_nmf(dock, 4, max_iter=60, backend=None)
    run_dock(dock)
    assert not any(" · SE · " in lyr.name and lyr.name.startswith("run 3") for lyr in
                   crs_viewer.layers)
    # a new NNLS run replaces the earlier errors
    assert dock.use_result_as_seeds()
    dock.form.mode.value = "nnls"
    run_dock(dock)
    assert se_layer_name(4, names[0]) in crs_viewer.layers
    assert se_layer_name(2, names[0]) not in crs_viewer.layers


def test_add_a_component_from_the_residual(qtbot, crs_viewer, crs_dock, run_dock, quick_nmf):
    dock, panel = crs_dock, crs_dock.diagnostics
    quick_nmf(dock, 3, max_iter=60, backend=None)  # one component short of the sample's four
    dock.form.max_iter.value = 200
    run_dock(dock)
    _wait(qtbot, panel.add_from_residual())
    rows = dock.session.rows
    assert [r.source.kind for r in rows] == ["previous-result"] * 3 + ["spectrum"]
    new = rows[-1]
    assert new.name == "residual 1" and new.anchor == 0.0
    assert "residual" in dock.status.text() and dock.form.mode.value == "seeded-nmf"
    run_dock(dock)
    assert dock.result.n_components == 4 and "run 2 · residual 1" in crs_viewer.layers
    # what the first run missed is explained now
    from napari_unmix.core import residuals

    before = panel.residual_report
    after = residuals(dock.result, crs_viewer.layers[0].data, spectral_axis=0)
    assert before.region_sizes[0] > 100  # measured: 1.5 % of the pixels, 0.12 % after
    assert after.unexplained_fraction < 0.25 * before.unexplained_fraction


def test_cancel_stops_a_diagnostic_and_changes_nothing(qtbot, crs_viewer, crs_dock):
    dock, panel = crs_dock, crs_dock.diagnostics
    n_layers = len(crs_viewer.layers)
    job = panel.suggest()
    assert dock.running and not panel.isEnabled() and dock.run() is None
    dock.cancel()
    _wait(qtbot, job)
    assert len(crs_viewer.layers) == n_layers and "suggested seeds" not in crs_viewer.layers
    assert dock.status.text().startswith("Cancelled") and panel.isEnabled()
    assert not dock.running and dock.result is None


def test_refusals_without_a_run(crs_dock):
    panel = crs_dock.diagnostics
    assert panel.add_from_residual() is None  # no run yet: said, nothing started
    assert not crs_dock.running


# -- without a viewer -----------------------------------------------------------------------
def test_the_parts_without_a_viewer(tmp_path):
    from matplotlib.figure import Figure

    from napari_unmix.core import nnls, residuals, suggest_n_components
    from napari_unmix.core.stability import stability

    s = make_crs_sample()
    X = s.stack.reshape(s.stack.shape[0], -1).T
    ks = suggest_n_components(X, k_max=6)
    axes = draw_k_curves(Figure(), ks)
    assert [ax.get_xlabel() for ax in axes] == ["k"] * 3
    rep = stability(X[::8], 2, n_starts=2, max_iter=50)
    rows = stability_rows(rep)
    assert len(rows) == 2 and rows[0][0] == "C1"
    res = nnls(X, s.H[1:])  # the first spectrum left out
    report = residuals(res, X, spatial_shape=s.stack.shape[1:])
    row, path = residual_row(report, name="missed", color="#FF0000", run=1, folder=tmp_path)
    assert path.exists() and row.source.path == str(path) and row.anchor == 0.0
    from napari_unmix.core.components import Spectrum

    h = Spectrum.from_file(path).values
    np.testing.assert_allclose(h, report.seed_spectrum(1), rtol=1e-12)
    full = nnls(X, s.H)
    noise = "no region of unexplained pixels: the residual is at the noise level"
    with pytest.raises(ValueError, match=f"{noise}.*so no component is missing"):
        residual_row(residuals(full, X, spatial_shape=s.stack.shape[1:]), name="x",
                     color="#FF0000", run=1, folder=tmp_path)


def test_two_docks_keep_their_own_standard_error_layers(qtbot, crs_viewer, crs_dock, run_dock,
                                                       quick_nmf):
    # the second dock's NNLS run with standard errors removed the first dock's SE layers
    # of the same image (map and residual layers already kept to their dock)
    from napari_unmix._napari.layers import META_KEY
    from napari_unmix._napari.widget import UnmixWidget

    second = UnmixWidget(crs_viewer)
    crs_viewer.window.add_dock_widget(second, name="second unmixing dock")

    def nnls_with_errors(dock):
        quick_nmf(dock, 3, max_iter=30)
        run_dock(dock)
        assert dock.use_result_as_seeds()
        dock.form.mode.value = "nnls"
        dock.diagnostics.errors.setChecked(True)
        run_dock(dock)

    def se_layers():
        return {str(lyr.unique_id) for lyr in crs_viewer.layers
                if (lyr.metadata.get(META_KEY) or {}).get("role") == SE_ROLE}

    nnls_with_errors(crs_dock)
    first = se_layers()
    assert len(first) == 3
    nnls_with_errors(second)
    assert first <= se_layers() and len(se_layers()) == 6
