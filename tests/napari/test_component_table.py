"""The dock's component table (``_napari.component_table``): rows, pages per source kind,
settings round trips, menus, the generic page of a registered source, signals."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pytest

napari = pytest.importorskip("napari")
pytest.importorskip("pytestqt")

from qtpy.QtWidgets import QCheckBox, QComboBox, QDoubleSpinBox, QLineEdit, QSpinBox  # noqa: E402

from napari_unmix._napari.component_table import (  # noqa: E402
    TRUST_DEFAULT_TEXT,
    ComponentTable,
)
from napari_unmix._napari.rois import ImageGrid  # noqa: E402
from napari_unmix._napari.seed_inputs import (  # noqa: E402
    RowSettings,
    SeedContext,
    SourceChoice,
    build_components,
    seed_spectra,
    source_kinds,
)
from napari_unmix._napari.source_editors import EDITORS, menu_kinds  # noqa: E402
from napari_unmix.core.colors import DEFAULT_COLORS  # noqa: E402
from napari_unmix.core.sources import SOURCES, Source, register_source  # noqa: E402

pytestmark = pytest.mark.gui

ROWS = [
    RowSettings("none", "#E69F00"),
    RowSettings("box", "#56B4E9", SourceChoice("roi-mask", layer="rois", shape_index=1)),
    RowSettings("all", "#009E73", SourceChoice("roi-mask", layer="rois")),
    RowSettings("cell", "#F0E442", SourceChoice("roi-label", layer="cells", label_id=7),
                locked=True),
    RowSettings("file", "#0072B2", SourceChoice("spectrum", path="/tmp/refs.csv",
                                                column="lipid")),
    RowSettings("peak", "#D55E00", SourceChoice("gaussian", center=2930.0, width=25.0,
                                                amplitude=3.5), anchor=0.25),
    RowSettings("flat", "#CC79A7", SourceChoice("flat", level=2.5, absorb_offsets=False),
                background=True, use_subtracted=False),
    RowSettings("again", "#999999", SourceChoice("previous-result", component="q"),
                anchor=0.0),
]


@pytest.fixture(autouse=True)
def _main_thread_only(monkeypatch):
    monkeypatch.setenv("NAPARI_ENSURE_PLUGIN_MAIN_THREAD", "1")


@pytest.fixture
def table(qtbot):
    t = ComponentTable()
    qtbot.addWidget(t)
    return t


@pytest.fixture
def toy_bump():
    """A source registered only for the test: a bump on one channel over a floor."""

    @register_source
    @dataclass(eq=False)
    class ToyBump(Source):
        """A toy bump on one channel."""

        height: float = 1.0
        channel: int = 0
        sharp: bool = True
        note: str = ""
        kind: ClassVar[str] = "toy-bump"
        title: ClassVar[str] = "toy bump"
        gives_spectrum: ClassVar[bool] = True

        def spectrum(self, ctx, X, *, name="component", warnings=None):
            h = np.full(ctx.n_channels, 0.1)
            h[self.channel] = self.height
            return h, None

    yield ToyBump
    SOURCES.pop("toy-bump", None)


def test_rows_are_added_with_the_next_name_and_colour_and_removed(table, qtbot):
    with qtbot.waitSignal(table.changed):
        first = table.add_row()
    second = table.add_row()
    assert [r.settings().name for r in table.rows] == ["C1", "C2"]
    assert [r.settings().color for r in table.rows] == [c.upper() for c in DEFAULT_COLORS[:2]]
    assert first.settings().source.kind == "none"
    first.name.setText("C3")  # a taken name is skipped
    assert table.add_row().settings().name == "C4"
    with qtbot.waitSignal(table.changed):
        second.remove_button.click()
    assert table.rows[1:] != [second] and second not in table.rows
    table.remove_row(second)  # no longer a row: nothing happens
    assert len(table.rows) == 2
    with qtbot.waitSignal(table.changed):
        table.clear()
    assert table.rows == [] and table.settings() == []


def test_twelve_rows_get_twelve_colours(table):
    # rows 11 and 12 took the colours of rows 1 and 2: their maps looked alike
    colours = [table.add_row().settings().color for _ in range(12)]
    assert len(set(colours)) == 12


def test_settings_round_trip_for_every_kind(table, qtbot):
    table.set_layer_choices(["rois"], ["cells"])
    table.set_previous_components(["p", "q"])
    with qtbot.waitSignal(table.changed):
        table.set_rows(ROWS)
    assert table.settings() == ROWS
    assert {r.source.kind for r in ROWS} == set(menu_kinds())
    for row, settings in zip(table.rows, ROWS, strict=True):
        row.set_settings(settings)
        assert row.settings() == settings
    table.set_rows(reversed(ROWS))
    assert table.settings() == ROWS[::-1]


def test_layer_names_not_offered_are_kept(table):
    (row,) = [table.add_row(r) for r in ROWS[3:4]]
    assert row.settings().source.layer == "cells"  # kept though the menu lacked it
    table.set_layer_choices(["rois"], ["nuclei", "cells"])
    assert row.settings().source.layer == "cells"
    table.set_layer_choices(["rois"], ["nuclei"])  # gone: kept, never another layer
    assert row.settings().source.layer == "cells"


def test_one_page_per_kind(table):
    row = table.add_row()
    kinds = list(menu_kinds())
    assert kinds == list(source_kinds())
    assert [row.kind.itemData(i) for i in range(row.kind.count())] == kinds
    assert [row.kind.itemText(i) for i in range(row.kind.count())] == \
        ["none (fallback)"] + [SOURCES[k].title for k in kinds[1:]]
    assert row.pages.count() == len(kinds) == len(set(map(id, row.editors.values())))
    for i, kind in enumerate(kinds):
        row.kind.setCurrentIndex(i)
        assert row.pages.currentWidget() is row.editors[kind] is row.editor
        assert set(row.editor.fields) == {f.name for f in EDITORS[kind]}
        assert row.settings().source.kind == kind
    assert row.editors["none"].fields == {}
    gauss = row.editors["gaussian"].fields
    assert all(isinstance(gauss[k], QDoubleSpinBox) for k in ("center", "width", "amplitude"))
    assert isinstance(row.editors["roi-label"].fields["label_id"], QSpinBox)
    assert isinstance(row.editors["flat"].fields["absorb_offsets"], QCheckBox)
    assert isinstance(row.editors["spectrum"].fields["path"], QLineEdit)


def test_layer_and_component_menus(table):
    row = table.add_row()
    table.set_layer_choices(["s1", "s2"], ["l1"])
    table.set_previous_components(["p", "q"])
    late = table.add_row()  # rows added later get the menus too
    for r in (row, late):
        shapes = r.editors["roi-mask"].fields["layer"]
        labels = r.editors["roi-label"].fields["layer"]
        previous = r.editors["previous-result"].fields["component"]
        assert all(isinstance(w, QComboBox) for w in (shapes, labels, previous))
        assert [shapes.itemText(i) for i in range(shapes.count())] == ["s1", "s2"]
        assert [labels.itemText(i) for i in range(labels.count())] == ["l1"]
        assert [previous.itemText(i) for i in range(previous.count())] == ["p", "q"]
    row.kind.setCurrentIndex(row.kind.findData("roi-mask"))
    row.editor.fields["layer"].setCurrentIndex(1)
    row.editor.fields["shape_index"].setValue(2)  # "2" = the second shape
    assert (row.settings().source.layer, row.settings().source.shape_index) == ("s2", 1)
    row.editor.fields["shape_index"].setValue(0)
    assert row.editor.fields["shape_index"].text() == "all shapes"
    assert row.settings().source.shape_index is None
    table.set_layer_choices(["s0", "s2"], ["l1"])  # the chosen layer stays chosen
    assert row.settings().source.layer == "s2"


def test_an_empty_column_reads_as_the_first(table):
    row = table.add_row(ROWS[4])
    row.editor.fields["column"].setText("  ")
    assert row.settings().source.column == "0"


def test_changed_on_edits_but_not_on_set_settings(table, qtbot):
    row = table.add_row(ROWS[5])
    for edit in (lambda: row.editor.fields["width"].setValue(30.0),
                 lambda: row.kind.setCurrentIndex(row.kind.findData("flat")),
                 lambda: row.editor.fields["absorb_offsets"].setChecked(False),
                 lambda: row.locked.setChecked(True)):
        with qtbot.waitSignal(row.changed), qtbot.waitSignal(table.changed):
            edit()
    with qtbot.assertNotEmitted(row.changed):
        row.set_settings(ROWS[1])
    assert row.settings() == ROWS[1]


def test_unknown_kinds_are_refused(table):
    row = table.add_row()
    bad = RowSettings("x", "#000000")
    bad.source.kind = "seed-pixels"  # registered, but without a title: not offered
    with pytest.raises(ValueError, match="offers no source kind 'seed-pixels'"):
        row.set_settings(bad)


def test_reports_under_the_rows(table):
    table.set_rows(ROWS[:2])
    table.set_reports({"box": ("H0: roi-mask", "details")})
    assert table.rows[1].report.text() == "H0: roi-mask"
    assert table.rows[1].report.toolTip() == "details"
    assert table.rows[0].report.text() == ""
    table.set_reports({})
    assert table.rows[1].report.text() == ""


def test_a_registered_source_gets_a_generic_page_and_becomes_its_class(table, toy_bump):
    assert menu_kinds()["toy-bump"] == "toy bump"
    row = table.add_row()
    index = row.kind.findData("toy-bump")
    assert index >= 0 and row.kind.itemText(index) == "toy bump"
    row.kind.setCurrentIndex(index)
    fields = row.editor.fields
    assert isinstance(fields["height"], QDoubleSpinBox) and fields["height"].value() == 1.0
    assert isinstance(fields["channel"], QSpinBox) and isinstance(fields["sharp"], QCheckBox)
    assert isinstance(fields["note"], QLineEdit)
    from qtpy.QtCore import Qt

    assert row.kind.itemData(index, Qt.ItemDataRole.ToolTipRole) == "A toy bump on one channel."
    fields["height"].setValue(4.25)
    fields["channel"].setValue(2)
    settings = row.settings()
    assert settings.source.kind == "toy-bump"
    assert settings.source.params == {"height": 4.25, "channel": 2, "sharp": True, "note": ""}

    viewer = napari.components.ViewerModel()
    viewer.add_image(np.ones((5, 4, 6), np.float32), name="img")
    ctx = SeedContext(viewer.layers, ImageGrid(viewer.layers["img"], 0))
    (spec,), labels = build_components(table.settings(), ctx)
    assert labels is None and spec.name == "C1"
    assert type(spec.h_source) is toy_bump
    assert (spec.h_source.height, spec.h_source.channel) == (4.25, 2)
    ((_, preview),), problems = seed_spectra(table.settings(), ctx)
    assert not problems
    np.testing.assert_allclose(preview, [0.1, 0.1, 4.25, 0.1, 0.1])

    row.set_settings(RowSettings("t", "#000000", SourceChoice("toy-bump",
                                                              params={"note": "n"})))
    assert row.settings().source.params == {"height": 1.0, "channel": 0, "sharp": True,
                                            "note": "n"}  # defaults for the others


def test_a_registered_source_without_a_title_or_plain_fields_is_not_offered(toy_bump):
    toy_bump.title = ""
    try:
        assert "toy-bump" not in menu_kinds()
        with pytest.raises(ValueError, match="Unknown source kind 'toy-bump'"):
            SourceChoice("toy-bump")
    finally:
        toy_bump.title = "toy bump"

    @register_source
    @dataclass(eq=False)
    class Masked(Source):
        mask: np.ndarray
        kind: ClassVar[str] = "toy-masked"
        title: ClassVar[str] = "toy masked"
        gives_spectrum: ClassVar[bool] = True

    try:
        assert "toy-masked" not in menu_kinds()
    finally:
        SOURCES.pop("toy-masked")


def test_the_row_trust_is_its_own_or_the_default(table):
    row = table.add_row()
    assert row.trust.text() == TRUST_DEFAULT_TEXT and row.settings().anchor is None
    row.trust.setValue(3.5)
    assert row.settings().anchor == 3.5
    row.trust.setValue(0.0)  # zero is a trust (a free fit for this row), not the default
    assert row.settings().anchor == 0.0
    row.locked.setChecked(True)  # a locked spectrum does not move: nothing to trust
    assert not row.trust.isEnabled()
