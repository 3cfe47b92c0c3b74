"""Component rows of the dock -> core ComponentSpecs (``_napari.seed_inputs``), without Qt."""

from __future__ import annotations

import numpy as np
import pytest

napari = pytest.importorskip("napari")

from napari.components import ViewerModel  # noqa: E402

from napari_unmix._napari.rois import ImageGrid, RoiError  # noqa: E402
from napari_unmix._napari.seed_inputs import (  # noqa: E402
    RowSettings,
    SeedContext,
    SourceChoice,
    build_components,
)
from napari_unmix.core import UnmixResult  # noqa: E402
from napari_unmix.core.components import (  # noqa: E402
    FixedW,
    Flat,
    Gaussian,
    PreviousResult,
    RoiLabel,
    RoiMask,
    Spectrum,
)

C, Y, X = 8, 10, 12


@pytest.fixture(autouse=True)
def _main_thread_only(monkeypatch):
    monkeypatch.setenv("NAPARI_ENSURE_PLUGIN_MAIN_THREAD", "1")


@pytest.fixture
def viewer():
    v = ViewerModel()
    v.add_image(np.ones((C, Y, X), np.float32), name="img")
    lab = np.zeros((Y, X), np.int32)
    lab[:3, :3], lab[5:, 5:] = 1, 4
    v.add_labels(lab, name="cells")
    other = np.zeros((Y, X), np.int32)
    other[4, 4:8] = 2
    v.add_labels(other, name="nuclei")
    v.add_shapes([np.array([[1.0, 1], [1, 3], [3, 3], [3, 1]]),
                  np.array([[6.0, 6], [6, 9], [8, 9], [8, 6]])], shape_type="rectangle",
                 name="rois")
    return v


def _ctx(viewer, previous=None):
    return SeedContext(viewer.layers, ImageGrid(viewer.layers["img"], 0), previous)


def _row(name, **source):
    return RowSettings(name=name, color="#E69F00", source=SourceChoice(**source))


def test_rows_become_component_specs_with_their_flags(viewer):
    rows = [_row("a", kind="roi-label", layer="cells", label_id=4),
            _row("b", kind="roi-label", layer="nuclei", label_id=2),
            _row("c", kind="roi-mask", layer="rois", shape_index=1),
            _row("d", kind="roi-mask", layer="rois"),
            _row("e", kind="gaussian", center=2900.0, width=20.0, amplitude=3.0),
            _row("f")]
    rows[0].locked, rows[5].background, rows[5].use_subtracted = True, True, False
    comps, labels = build_components(rows, _ctx(viewer))
    # the first Labels layer used is the run's label image; others become masks
    np.testing.assert_array_equal(labels, viewer.layers["cells"].data)
    assert isinstance(comps[0].h_source, RoiLabel) and comps[0].h_source.label_id == 4
    assert isinstance(comps[1].h_source, RoiMask)
    np.testing.assert_array_equal(comps[1].h_source.mask, viewer.layers["nuclei"].data == 2)
    assert comps[2].h_source.mask.sum() == 3 * 4  # the second shape only
    assert comps[3].h_source.mask.sum() == 9 + 3 * 4  # the union of both
    assert isinstance(comps[4].h_source, Gaussian)
    assert comps[4].h_source.peaks == [(2900.0, 20.0, 3.0)]
    assert comps[5].h_source is None
    assert [c.locked for c in comps] == [True] + [False] * 5
    assert (comps[5].background, comps[5].use_subtracted) == (True, False)
    assert [c.name for c in comps] == list("abcdef")


def test_flat_row_gives_a_locked_constant_spectrum(viewer):
    from napari_unmix._napari.seed_inputs import seed_spectra

    row = _row("non-resonant", kind="flat", level=2.5)
    row.background, row.locked = True, True
    (comp,), labels = build_components([row], _ctx(viewer))
    assert labels is None
    assert isinstance(comp.h_source, Flat) and comp.h_source.level == 2.5
    assert comp.h_source.absorb_offsets
    assert comp.locked and comp.background
    (spectrum,), problems = seed_spectra([row], _ctx(viewer))
    assert not problems
    np.testing.assert_array_equal(spectrum[1], np.full(C, 2.5))
    row.source.absorb_offsets = False
    (comp,), _ = build_components([row], _ctx(viewer))
    assert not comp.h_source.absorb_offsets


def test_spectrum_file_column_by_index_or_name(viewer, tmp_path):
    path = tmp_path / "refs.csv"
    path.write_text("wavenumber,lipid,protein\n2800,1,5\n2900,2,6\n3000,3,7\n")
    rows = [_row("x", kind="spectrum", path=str(path), column="1"),
            _row("y", kind="spectrum", path=str(path), column="lipid")]
    comps, _ = build_components(rows, _ctx(viewer))
    assert all(isinstance(c.h_source, Spectrum) for c in comps)
    np.testing.assert_array_equal(comps[0].h_source.values, [5, 6, 7])
    np.testing.assert_array_equal(comps[1].h_source.values, [1, 2, 3])
    np.testing.assert_array_equal(comps[0].h_source.axis, [2800, 2900, 3000])


def test_previous_result_gives_its_spectrum_and_exact_map(viewer):
    rng = np.random.default_rng(0)
    res = UnmixResult(W=rng.random((Y * X, 2)), H=rng.random((2, C)), mode="nmf",
                      backend="numpy", device="cpu", n_iter=1, reconstruction_err=0.0,
                      component_names=["p", "q"])
    comps, _ = build_components([_row("q2", kind="previous-result", component="q")],
                                _ctx(viewer, res))
    (spec,) = comps
    assert isinstance(spec.h_source, PreviousResult)
    np.testing.assert_array_equal(spec.h_source.h, res.H[1])
    assert isinstance(spec.w_source, FixedW)  # kept at its fitted scale
    np.testing.assert_array_equal(spec.w_source.map.ravel(), res.W[:, 1])


@pytest.mark.parametrize("row, words", [
    (_row("a", kind="roi-label", layer="cells", label_id=3), "Component 'a': Label 3"),
    (_row("b", kind="roi-mask", layer="nope"), "Component 'b': No Shapes layer 'nope'"),
    (_row("c", kind="roi-mask", layer="cells"), "Component 'c': Layer 'cells' is not a Shapes"),
    (_row("d", kind="previous-result", component="x"),
     "Component 'd': There is no previous result"),
    (_row("e", kind="spectrum", path="/no/such/file.csv"), "Component 'e': "),
])
def test_unusable_rows_are_refused_with_the_component_named(viewer, row, words):
    with pytest.raises(ValueError, match=words):
        build_components([row], _ctx(viewer))


def test_roi_errors_stay_roi_errors(viewer):
    viewer.add_shapes([np.array([[50.0, 50], [50, 60], [60, 60]])], shape_type="polygon",
                      name="far")
    with pytest.raises(RoiError, match="Component 'far': Shape 1 of layer 'far' lies outside"):
        build_components([_row("far", kind="roi-mask", layer="far")], _ctx(viewer))


def test_seed_spectra_for_previews(viewer):
    from napari_unmix._napari.seed_inputs import seed_spectra
    from napari_unmix.core.spectra import gaussian_model

    img = viewer.layers["img"]
    img.data = np.arange(C, dtype=np.float32)[:, None, None] * np.ones((C, Y, X), np.float32)
    img.data[:, 0, 0] += 8.0  # one brighter pixel inside label 1
    axis = np.linspace(2800.0, 3100.0, C)
    img.metadata["spectral_values"], img.metadata["spectral_unit"] = axis, "cm^-1"
    rows = [_row("cell", kind="roi-label", layer="cells", label_id=1),
            _row("peak", kind="gaussian", center=2950.0, width=40.0, amplitude=2.0),
            _row("nothing"),
            _row("gone", kind="roi-mask", layer="nope")]
    spectra, problems = seed_spectra(rows, _ctx(viewer))
    assert [r.name for r, _ in spectra] == ["cell", "peak"]
    np.testing.assert_allclose(spectra[0][1], np.arange(C) + 8.0 / 9)  # mean of 9 pixels
    np.testing.assert_allclose(spectra[1][1], gaussian_model(axis, [(2950.0, 40.0, 2.0)]))
    assert len(problems) == 1 and problems[0].startswith("gone: No Shapes layer")


def test_preview_of_a_roi_is_the_runs_roi_mean(viewer, monkeypatch):
    """Previews and runs take the ROI mean from one function, core.data.roi_mean_spectrum."""
    from napari_unmix._napari import seed_inputs
    from napari_unmix.core.data import roi_mean_spectrum

    img = viewer.layers["img"]
    img.data = np.random.default_rng(1).random((C, Y, X)).astype(np.float32)
    calls = []

    def spy(stack, mask, *, spectral_axis):
        calls.append((mask.sum(), spectral_axis))
        return roi_mean_spectrum(stack, mask, spectral_axis=spectral_axis)

    monkeypatch.setattr(seed_inputs, "roi_mean_spectrum", spy)
    rows = [_row("cell", kind="roi-label", layer="cells", label_id=4),
            _row("box", kind="roi-mask", layer="rois", shape_index=0)]
    spectra, problems = seed_inputs.seed_spectra(rows, _ctx(viewer))
    assert not problems and calls == [(35, 0), (9, 0)]
    comps, labels = build_components(rows, _ctx(viewer))
    from napari_unmix.core.seeds import source_spectrum

    pixels = np.moveaxis(img.data, 0, -1).reshape(-1, C)
    for (_, preview), comp in zip(spectra, comps, strict=True):
        run, _ = source_spectrum(comp.h_source, pixels, spatial_shape=(Y, X), labels=labels)
        np.testing.assert_allclose(preview, run, rtol=1e-12)


def test_source_kinds_are_the_core_kinds():
    from napari_unmix._napari.seed_inputs import source_kinds

    kinds = source_kinds()
    assert list(kinds) == ["none", "roi-mask", "roi-label", "spectrum", "gaussian", "flat",
                           "previous-result"]
    assert kinds["roi-mask"] == RoiMask.title and kinds["none"] == "none (fallback)"


@pytest.mark.parametrize("old", ["shapes", "labels", "file", "previous", "seed-pixels"])
def test_other_kinds_are_refused(old):
    with pytest.raises(ValueError, match=f"Unknown source kind '{old}'; one of none, roi-mask"):
        SourceChoice(old)


def test_plain_fields_of_a_source_class():
    from dataclasses import dataclass, field

    from napari_unmix._napari.seed_inputs import PlainField, plain_fields
    from napari_unmix.core.sources import SeedPixels

    @dataclass
    class Thing:
        size: float
        count: int = 3
        on: bool = True
        note: str = "x"
        values: np.ndarray | None = None  # left at its default
        _hidden: float = 1.0
        tags: list = field(default_factory=list)

    assert plain_fields(Thing) == (PlainField("size", float, 0.0), PlainField("count", int, 3),
                                   PlainField("on", bool, True), PlainField("note", str, "x"))

    @dataclass
    class Needs:
        mask: np.ndarray

    assert plain_fields(Needs) is None and plain_fields(object) is None
    assert plain_fields(SeedPixels) == ()
