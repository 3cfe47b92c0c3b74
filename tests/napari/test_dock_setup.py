"""Issue 13: the dock's whole setup saved and loaded, a saved result reopened as seeds,
and spectral values typed in the dock (no sidecar file).

The setup is the analysis config the CLI's ``run --config`` reads (region seeds kept as
masks, so the file runs without the Labels layer); loading it into a new dock gives the
same rows and settings, and the same fit.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

napari = pytest.importorskip("napari")
pytestmark = pytest.mark.gui

from napari_unmix._napari.dock_setup import parse_spectral_values  # noqa: E402
from napari_unmix.core import AnalysisConfig, RoiMask, run_analysis  # noqa: E402
from napari_unmix.core.synthetic import make_crs_sample  # noqa: E402
from napari_unmix.io import write_analysis_outputs  # noqa: E402


def _labels(shape, W):
    lab = np.zeros(shape, dtype=np.uint8)
    maps = W.reshape(*shape, -1)
    for i in range(3):
        y, x = np.unravel_index(int(np.argmax(maps[..., i])), shape)
        y, x = np.clip([y, x], 3, np.array(shape) - 4)
        lab[y - 2:y + 3, x - 2:x + 3] = i + 1
    return lab


def _seeded(dock, viewer):
    sample = make_crs_sample()
    viewer.add_labels(_labels(sample.stack.shape[1:], sample.W), name="dabs")
    dock.reset_choices()
    assert dock.components_from_layer("dabs") == 3
    f = dock.form
    f.mode.value = "seeded-nmf"
    f.max_iter.value = 50
    f.tol.value = "1e-8"
    f.solver.value = "hals"
    f.backend.value = "numpy"
    f.random_state.value = "7"


@pytest.mark.parametrize(("text", "first", "last"), [
    ("500 10", 500, 500 + 63 * 10), ("500:10", 500, 1130), ("2900, step -5", 2900, 2585),
    ("500 + 2.5", 500, 657.5), ("\n".join(str(v) for v in range(64)), 0, 63),
    ("; ".join(str(3000 - v) for v in range(64)), 3000, 2937)])
def test_spectral_values_are_read_as_start_step_or_a_list(text, first, last):
    values = parse_spectral_values(text, 64)
    assert values.shape == (64,) and values[0] == first and values[-1] == pytest.approx(last)


@pytest.mark.parametrize(("text", "match"), [
    ("1 2 3", "64 channels but 3 values"), ("500 0", "must not be 0"), ("abc", "neither"),
    ("1 3 2 " + " ".join(map(str, range(4, 65))), "strictly")])
def test_spectral_values_that_do_not_fit_are_refused(text, match):
    with pytest.raises(ValueError, match=match):
        parse_spectral_values(text, 64)
    assert list(parse_spectral_values("500 10", 2)) == [500, 10]  # two channels: values


def test_typed_spectral_values_reach_the_image_and_the_run(qtbot, crs_viewer, crs_dock,
                                                           run_dock):
    viewer, dock = crs_viewer, crs_dock
    assert dock.setup.set_values("abc") is None and "Refused" in dock.status.text()
    dock.setup.values.setText("500 10")
    dock.setup.unit.setCurrentText("nm")
    dock.setup.set_button.click()
    image = viewer.layers[0]
    np.testing.assert_array_equal(image.metadata["spectral_values"], 500 + 10 * np.arange(64))
    assert image.metadata["spectral_unit"] == "nm"
    assert "500 to 1130 nm" in dock.form.axis_info.value
    f = dock.form
    f.mode.value, f.n_components.value, f.max_iter.value = "nmf", 2, 20
    run_dock(dock)
    np.testing.assert_array_equal(dock.result.spectral_values, 500 + 10 * np.arange(64))
    assert dock.result.spectral_unit == "nm"


def test_a_saved_setup_is_the_clis_config_and_loads_into_a_new_dock(
        qtbot, crs_viewer, crs_dock, run_dock, make_napari_viewer, tmp_path):
    viewer, dock = crs_viewer, crs_dock
    _seeded(dock, viewer)
    path = dock.setup.save_setup(tmp_path / "setup.json")
    assert path is not None, dock.status.text()
    doc = json.loads(path.read_text())
    assert doc["mode"] == "seeded-nmf" and doc["tol"] == 1e-8 and doc["random_state"] == 7
    cfg = AnalysisConfig.load(path)  # what 'napari-unmix run --config' reads
    assert [c.name for c in cfg.components] == ["label 1", "label 2", "label 3"]
    assert all(isinstance(c.h_source, RoiMask) for c in cfg.components)  # no layer needed
    from napari_unmix.cli.rerun import read_config

    assert read_config(path).config.to_dict() == cfg.to_dict()
    run_dock(dock)
    first = dock.result
    headless = run_analysis(np.asarray(viewer.layers[0].data), cfg, spectral_axis=0,
                            spectral_values=first.spectral_values)
    np.testing.assert_allclose(headless.H, first.H, rtol=1e-5, atol=1e-6)
    assert headless.spectral_unit == first.spectral_unit == cfg.spectral_unit

    # a new viewer and dock: the same rows (painted into a new Labels layer) and settings
    other = make_napari_viewer(strict_qt=True)
    other.add_image(np.asarray(viewer.layers[0].data), **{
        "name": viewer.layers[0].name, "metadata": dict(viewer.layers[0].metadata)})
    _, dock2 = other.window.add_plugin_dock_widget("napari-unmix", "Spectral unmixing")
    notes = dock2.setup.load_setup(path)
    assert notes == [], notes
    assert "setup seeds" in other.layers
    seeds = other.layers["setup seeds"]
    assert seeds.data.ndim == 2 and set(np.unique(seeds.data)) == {0, 1, 2, 3}
    f = dock2.form
    assert (f.mode.value, f.tol.value, f.max_iter.value, f.random_state.value) == (
        "seeded-nmf", "1e-08", 50, "7")
    rows = dock2.table.settings()
    assert [r.name for r in rows] == ["label 1", "label 2", "label 3"]
    assert [r.color for r in rows] == [r.color for r in dock.table.settings()]
    run_dock(dock2)
    np.testing.assert_allclose(dock2.result.H, first.H, rtol=1e-5, atol=1e-6)


def test_a_saved_result_reopens_as_a_run_and_seeds_the_next(qtbot, crs_viewer, crs_dock,
                                                            run_dock, tmp_path):
    viewer, dock = crs_viewer, crs_dock
    f = dock.form
    f.mode.value, f.n_components.value, f.max_iter.value = "nmf", 3, 30
    f.solver.value, f.backend.value = "hals", "numpy"
    run_dock(dock)
    out = tmp_path / "saved"
    write_analysis_outputs(out, dock.result, (128, 128))
    for lyr in [lyr for lyr in viewer.layers if lyr.name.startswith("run 1")]:
        viewer.layers.remove(lyr)
    assert dock.setup.open_result(tmp_path / "missing") is None
    record = dock.setup.open_result(out)
    assert record is not None, dock.status.text()
    assert dock.result is record.result and record.source == "saved"
    assert [lyr.name for lyr in viewer.layers][-3:] == ["saved: C1", "saved: C2", "saved: C3"]
    assert dock.seeds_button.isEnabled()
    assert dock.use_result_as_seeds()
    assert [r.source.kind for r in dock.table.settings()] == ["previous-result"] * 3
    assert dock.form.mode.value == "seeded-nmf"
    f.max_iter.value = 10
    run_dock(dock)
    assert dock.result is not record.result and dock.result.n_components == 3


def test_a_spectrum_file_row_comes_back_from_a_setup_without_its_file(
        qtbot, crs_viewer, crs_dock, run_dock, make_napari_viewer, tmp_path):
    from napari_unmix._napari.seed_inputs import RowSettings, SourceChoice
    from napari_unmix.io import write_spectra_csv

    viewer, dock = crs_viewer, crs_dock
    sample = make_crs_sample()
    refs = write_spectra_csv(tmp_path / "refs.csv", sample.H, sample.spectral_axis,
                             sample.component_names, "cm^-1")
    dock.table.set_rows([RowSettings(name=n, color=c, source=SourceChoice(
        "spectrum", path=str(refs), column=str(i)))
        for i, (n, c) in enumerate(zip(sample.component_names, sample.colors, strict=True))])
    dock.session.update_rows(dock.table.settings())
    dock.form.mode.value = "nnls"
    path = dock.setup.save_setup(tmp_path / "setup.json")
    assert path is not None, dock.status.text()
    run_dock(dock)
    first = dock.result
    refs.unlink()                              # the setup embeds the values

    other = make_napari_viewer(strict_qt=True)
    other.add_image(np.asarray(viewer.layers[0].data), **{
        "name": viewer.layers[0].name, "metadata": dict(viewer.layers[0].metadata)})
    _, dock2 = other.window.add_plugin_dock_widget("napari-unmix", "Spectral unmixing")
    notes = dock2.setup.load_setup(path)
    assert notes == [], notes                 # it used to say: choose the file in the row
    rows = dock2.table.settings()
    assert [r.source.kind for r in rows] == ["spectrum"] * len(rows)
    assert all(r.source.path == "" and r.source.embedded is not None for r in rows)
    line = dock2.table.rows[0].editors["spectrum"].fields["path"]
    assert "from the setup" in line.placeholderText()
    run_dock(dock2)
    np.testing.assert_array_equal(dock2.result.H, first.H)
    np.testing.assert_allclose(np.asarray(dock2.result.W), np.asarray(first.W), rtol=1e-6)
    # a chosen file replaces the embedded spectrum
    write_spectra_csv(tmp_path / "other.csv", sample.H[::-1], sample.spectral_axis,
                      sample.component_names[::-1], "cm^-1")
    line.setText(str(tmp_path / "other.csv"))
    assert dock2.table.rows[0].settings().source.embedded is None


def test_a_setup_that_omits_nan_pixels_sets_the_dock_s_nan_pixels(crs_viewer, crs_dock,
                                                                   tmp_path):
    path = AnalysisConfig(mode="nmf", n_components=3, nan_policy="omit").save(
        tmp_path / "omit.json")
    assert crs_dock.setup.load_setup(path) == []
    assert crs_dock.form.nan_policy.value == "omit"
    saved = crs_dock.setup.save_setup(tmp_path / "again.json")
    assert AnalysisConfig.load(saved).nan_policy == "omit"


def test_overlapping_region_seeds_come_back_from_a_setup_exactly(
        qtbot, crs_viewer, crs_dock, make_napari_viewer, tmp_path):
    viewer, dock = crs_viewer, crs_dock
    a = np.array([[20, 20], [20, 60], [60, 60], [60, 20]], dtype=float)
    b = a + 20  # overlaps a's lower right quarter
    inner = a[[0, 0, 0, 0]] + [[25, 25], [25, 35], [35, 35], [35, 25]]  # inside a and b
    viewer.add_shapes([a, b, inner], shape_type="rectangle", name="rois")
    dock.reset_choices()
    assert dock.components_from_layer("rois") == 3
    dock.form.mode.value = "seeded-nmf"
    before = [(r.name, s) for r, s in dock.session.seed_previews()[0]]
    path = dock.setup.save_setup(tmp_path / "setup.json")
    assert path is not None, dock.status.text()
    other = make_napari_viewer(strict_qt=True)  # a new viewer and dock load it
    other.add_image(np.asarray(viewer.layers[0].data), **{
        "name": viewer.layers[0].name, "metadata": dict(viewer.layers[0].metadata)})
    _, dock2 = other.window.add_plugin_dock_widget("napari-unmix", "Spectral unmixing")
    notes = dock2.setup.load_setup(path)
    assert notes == [], notes
    # the inner square overlaps both others: three layers, each row with all its pixels
    assert [lyr.name for lyr in other.layers][1:] == [
        "setup seeds", "setup seeds 2", "setup seeds 3"]
    after = [(r.name, s) for r, s in dock2.session.seed_previews()[0]]
    assert [n for n, _ in after] == [n for n, _ in before] == ["shape 1", "shape 2", "shape 3"]
    for (name, s0), (_, s1) in zip(before, after, strict=True):
        np.testing.assert_array_equal(s1, s0, err_msg=name)
    # every row's pixels, none lost to another row
    cfg = AnalysisConfig.load(path)
    for comp, row in zip(cfg.components, dock2.session.rows, strict=True):
        lab = other.layers[row.source.layer].data
        np.testing.assert_array_equal(lab == row.source.label_id, comp.h_source.mask)


def test_a_setup_whose_preprocessing_the_dock_cannot_hold_says_so(crs_viewer, crs_dock,
                                                                   tmp_path):
    """A config that fits the processed data, with its own smoothing window, loaded
    without a word: the dock then fitted the raw data with window 7 (its saved setup
    said so), not what the file asked for."""
    from napari_unmix.core import ComponentSpec, FromComponent, Preprocessing

    shape = crs_viewer.layers[0].data.shape[1:]
    masks = [np.zeros(shape, dtype=bool) for _ in range(3)]
    for i, m in enumerate(masks):
        m[10 * i:10 * i + 4, 5:9] = True
    comps = [ComponentSpec("A", h_source=RoiMask(masks[0])),
             ComponentSpec("B", h_source=RoiMask(masks[1])),
             ComponentSpec("bg", h_source=RoiMask(masks[2]), background=True)]
    cfg = AnalysisConfig(mode="seeded-nmf", components=comps, fit_data="processed",
                         preprocessing=Preprocessing(background=FromComponent("bg"),
                                                     smoothing="savgol", window_length=11,
                                                     polyorder=3))
    notes = crs_dock.setup.load_setup(cfg.save(tmp_path / "processed.json"))
    text = " ".join(notes)
    assert "fit_data 'processed'" in text and "the dock fits the raw data" in text
    assert "window 11 and order 3" in text
    assert "background" not in text   # the first background row is 'bg': kept
    # what the dock holds of it is kept as it was
    assert crs_dock.form.subtract_background.value and crs_dock.form.smoothing.value == "savgol"
