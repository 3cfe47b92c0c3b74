"""``core.series.seeds_for_strategy``: seeds drawn on a whole z / t series put on the
plane(s) a strategy fits.

The glue lived in the dock (``_napari.series_run.series_seeds``), so the CLI could not
use it: a config carrying ROI masks of the whole series ``(Z, Y, X)`` went to
``unmix_series`` unchanged, and every plane's fit refused the masks on shape.  These
tests check, per strategy, which plane's pixels end up in each mask, which label image
goes to the run, what is refused (naming the component) and what is left out with a
note.
"""

from __future__ import annotations

import numpy as np
import pytest

from napari_unmix.core import ComponentSpec
from napari_unmix.core.series import SeedPlacementError, SeriesSeeds, seeds_for_strategy
from napari_unmix.core.sources import (
    FixedW,
    Flat,
    Gaussian,
    PreviousResult,
    RoiLabel,
    RoiMask,
    SeedPixels,
)

Z, Y, X, C = 3, 5, 6, 8
SPATIAL = (Z, Y, X)


def _boxes():
    """A (Z, Y, X) mask with a different box on every plane, and those boxes."""
    m = np.zeros(SPATIAL, dtype=bool)
    m[0, 0:2, 0:2] = m[1, 1:3, 2:5] = m[2, 3:5, 4:6] = True
    return m


def _seeds(comps, labels=None, **kw):
    return seeds_for_strategy(comps, labels, spatial_shape=SPATIAL, **kw)


def test_a_shared_basis_from_plane_n_takes_plane_n_s_pixels():
    boxes = _boxes()
    labels = np.zeros(SPATIAL, dtype=np.int32)
    labels[1, 4, 0] = labels[2, 0, 5] = 7
    maps = np.random.default_rng(0).random(SPATIAL)
    pixels = np.array([[0, 1, 1], [1, 2, 3], [1, 4, 4], [2, 0, 0]])
    comps = [ComponentSpec("roi", h_source=RoiMask(boxes)),
             ComponentSpec("label", h_source=RoiLabel(7)),
             ComponentSpec("pix", h_source=SeedPixels(pixels=pixels)),
             ComponentSpec("prev", h_source=PreviousResult(h=np.ones(C)), w_source=FixedW(maps)),
             ComponentSpec("model", h_source=Gaussian([(2900.0, 20.0, 1.0)]))]
    for plane in (1, 2):
        out = _seeds(comps, labels, strategy="shared-basis", reference=plane)
        assert isinstance(out, SeriesSeeds) and [c.name for c in out.components] == \
            [c.name for c in comps]
        # the ROI keeps exactly its pixels on that plane, in one plane's shape
        np.testing.assert_array_equal(out.components[0].h_source.mask, boxes[plane])
        np.testing.assert_array_equal(out.labels, labels[plane])
        assert isinstance(out.components[1].h_source, RoiLabel)
        np.testing.assert_array_equal(out.components[2].h_source.pixels,
                                      pixels[pixels[:, 0] == plane, 1:])
        np.testing.assert_array_equal(out.components[3].w_source.map, maps[plane])
        assert out.components[4] is comps[4]      # nothing to place: the same component
        assert out.notes == () and out.maps_left_out == ()
    # the inputs are not changed
    np.testing.assert_array_equal(comps[0].h_source.mask, _boxes())
    assert comps[3].w_source.map.shape == SPATIAL


def test_a_shared_basis_plane_without_the_seed_is_refused_naming_the_component():
    comps = [ComponentSpec("only 1", h_source=RoiMask(_boxes() & (np.arange(Z) == 1)[:, None,
                                                                                        None]))]
    with pytest.raises(SeedPlacementError) as info:
        _seeds(comps, strategy="shared-basis", reference=0)
    assert str(info.value).startswith("Component 'only 1': its ROI has no pixel on plane 0 "
                                      "(it lies on plane(s) 1)")
    assert info.value.components == ("only 1",) and not info.value.needs_geometry
    labels = np.zeros(SPATIAL, dtype=np.int32)
    labels[2, 0, 0] = 3
    with pytest.raises(SeedPlacementError, match=r"^Component 'lab': label 3 is not on plane 1"):
        _seeds([ComponentSpec("lab", h_source=RoiLabel(3))], labels, strategy="shared-basis",
               reference=1)
    with pytest.raises(ValueError, match="reference=5 is out of range"):
        _seeds(comps, strategy="shared-basis", reference=5)


def test_per_slice_fits_take_the_seeds_that_are_the_same_on_every_plane():
    box = np.zeros((Y, X), dtype=bool)
    box[1:4, 2:5] = True
    every = np.broadcast_to(box, SPATIAL).copy()     # a 2-D Shapes layer over the series
    labels = np.zeros(SPATIAL, dtype=np.int32)
    labels[:, 0, 0] = 2                               # label 2 on every plane
    maps = np.ones(SPATIAL)
    comps = [ComponentSpec("roi", h_source=RoiMask(every)),
             ComponentSpec("plane roi", h_source=RoiMask(box)),
             ComponentSpec("label", h_source=RoiLabel(2)),
             ComponentSpec("prev", h_source=PreviousResult(h=np.ones(C)), w_source=FixedW(maps))]
    out = _seeds(comps, labels, strategy="per-slice", reference=2)
    np.testing.assert_array_equal(out.components[0].h_source.mask, box)
    assert out.components[1] is comps[1]            # one plane's mask: used as it is
    assert out.labels is not None and out.labels.shape == SPATIAL    # every plane its own
    assert out.components[3].w_source is None
    assert isinstance(out.components[3].h_source, PreviousResult)
    assert out.maps_left_out == ("prev",) and len(out.notes) == 1
    assert out.notes[0].startswith("'prev': seeded from the spectrum only")
    assert "strategy='per-slice'" in out.notes[0]

    with pytest.raises(SeedPlacementError, match=r"^Component 'boxes': its ROI is not the same "
                       r"on every plane \(it covers plane\(s\) 0-2\)"):
        _seeds([ComponentSpec("boxes", h_source=RoiMask(_boxes()))], strategy="per-slice")
    labels[1, 0, 0] = 0
    with pytest.raises(SeedPlacementError, match=r"^Component 'label': label 2 is missing on "
                       r"plane\(s\) 1;"):
        _seeds(comps[2:3], labels, strategy="per-slice")


def test_a_pooled_sample_refuses_geometry_and_leaves_maps_out_with_a_note():
    comps = [ComponentSpec("roi", h_source=RoiMask(_boxes())),
             ComponentSpec("label", h_source=RoiLabel(1)),
             ComponentSpec("model", h_source=Gaussian([(2900.0, 20.0, 1.0)]))]
    for reference in ("pooled", None):
        with pytest.raises(SeedPlacementError) as info:
            _seeds(comps, strategy="shared-basis", reference=reference)
        assert info.value.needs_geometry and info.value.components == ("roi", "label")
        msg = str(info.value)
        assert "pooled pixel sample" in msg and "component(s) 'roi', 'label')" in msg
        assert "reference=<plane index>" in msg and "strategy='per-slice'" in msg
    prev = ComponentSpec("prev", h_source=PreviousResult(h=np.ones(C)),
                         w_source=FixedW(np.ones(SPATIAL)))
    out = _seeds([comps[2], prev], strategy="shared-basis", reference="pooled")
    assert out.components[0] is comps[2]
    assert out.components[1].w_source is None and out.components[1].h_source is prev.h_source
    assert out.maps_left_out == ("prev",) and out.labels is None
    assert len(out.notes) == 1 and out.notes[0].startswith("'prev': seeded from the spectrum "
                                                           "only")
    assert "reference='pooled'" in out.notes[0]


def test_one_plane_s_labels_stay_as_they_are():
    labels = np.zeros((Y, X), dtype=np.int32)
    labels[0, 0] = 1
    comps = [ComponentSpec("label", h_source=RoiLabel(1))]
    for kw in ({"strategy": "shared-basis", "reference": 2}, {"strategy": "per-slice"}):
        out = _seeds(comps, labels, **kw)
        np.testing.assert_array_equal(out.labels, labels)
        assert out.components[0] is comps[0]
    with pytest.raises(ValueError, match="strategy='joint' is not one of"):
        _seeds(comps, labels, strategy="joint")


# -- the region of a background subtraction ------------------------------------------------
def _region(planes=range(Z)):
    """A (Z, Y, X) background region: the same box on ``planes``."""
    m = np.zeros(SPATIAL, dtype=bool)
    for z in planes:
        m[z, 3:5, 0:3] = True
    return m


def test_a_background_region_goes_where_the_seeds_go():
    """The region of ``preprocessing.background`` of a series was passed on unchanged,
    and every plane's fit refused its (Z, Y, X) shape; it is now put on the plane(s)
    fitted like a component's ROI."""
    boxes = _boxes()
    comps = [ComponentSpec("model", h_source=Gaussian([(2900.0, 20.0, 1.0)]))]
    for plane in (0, 2):
        out = _seeds(comps, strategy="shared-basis", reference=plane,
                     background=RoiMask(boxes))
        np.testing.assert_array_equal(out.background.mask, boxes[plane])
        assert out.components[0] is comps[0] and out.notes == ()
    # per-slice fits: a region that is the same on every plane is one plane's region
    out = _seeds(comps, strategy="per-slice", background=RoiMask(_region()))
    np.testing.assert_array_equal(out.background.mask, _region()[0])
    # one plane's region, a label, a spectrum or a model: used as given
    labels = np.zeros(SPATIAL, dtype=np.int32)
    labels[:, 0, 0] = 4
    for bg in (RoiMask(_region()[1]), RoiLabel(4), Flat(2.0), Gaussian([(2900.0, 20.0, 1.0)])):
        for kw in ({"strategy": "per-slice"}, {"strategy": "shared-basis", "reference": 1}):
            assert _seeds(comps, labels, background=bg, **kw).background is bg
    assert _seeds(comps, strategy="per-slice").background is None
    # the label image goes to plane N with the labels of the background
    out = _seeds(comps, labels, strategy="shared-basis", reference=2, background=RoiLabel(4))
    np.testing.assert_array_equal(out.labels, labels[2])
    np.testing.assert_array_equal(_region(), _region())  # nothing given was changed


def test_a_background_region_off_the_planes_fitted_is_refused_saying_what_to_do():
    with pytest.raises(SeedPlacementError) as info:
        _seeds([], strategy="per-slice", background=RoiMask(_boxes()))
    msg = str(info.value)
    assert msg.startswith("The background subtraction (preprocessing.background, roi-mask): "
                          "its ROI is not the same on every plane (it covers plane(s) 0-2)")
    assert "fit a shared basis on one plane" in msg
    assert info.value.background and info.value.components == ()
    assert not info.value.needs_geometry
    with pytest.raises(SeedPlacementError, match=r"^The background subtraction .*: its ROI has "
                       r"no pixel on plane 0 \(it lies on plane\(s\) 1-2\)"):
        _seeds([], strategy="shared-basis", reference=0,
               background=RoiMask(_region(planes=[1, 2])))
    labels = np.zeros(SPATIAL, dtype=np.int32)
    labels[0, 0, 0] = 4
    with pytest.raises(SeedPlacementError, match=r"^The background subtraction "
                       r"\(preprocessing.background, roi-label 4\): label 4 is missing"):
        _seeds([], labels, strategy="per-slice", background=RoiLabel(4))


def test_a_pooled_sample_refuses_a_background_region_saying_what_to_do():
    model = ComponentSpec("model", h_source=Gaussian([(2900.0, 20.0, 1.0)]))
    with pytest.raises(SeedPlacementError) as info:
        _seeds([model], strategy="shared-basis", background=RoiMask(_region()))
    exc = info.value
    assert exc.needs_geometry and exc.background and exc.components == ()
    msg = str(exc)
    assert "pooled pixel sample" in msg and "the background cannot be subtracted from a " \
        "region (preprocessing.background, roi-mask)" in msg
    assert "reference=<plane index>" in msg and "strategy='per-slice'" in msg
    assert "a background spectrum or model (a Spectrum, Gaussian or Flat source)" in msg
    # with components refused too, both are named
    with pytest.raises(SeedPlacementError) as info:
        _seeds([ComponentSpec("roi", h_source=RoiMask(_boxes()))], strategy="shared-basis",
               reference="pooled", background=RoiLabel(1))
    assert info.value.components == ("roi",) and info.value.background
    assert "(component(s) 'roi'), nor can the background be subtracted from a region " \
        "(preprocessing.background, roi-label 1)" in str(info.value)
    # a spectrum or model needs no geometry
    flat = Flat(1.0)
    assert _seeds([model], strategy="shared-basis", background=flat).background is flat


def test_the_core_s_texts_name_no_napari_layer():
    """The core speaks to the API and the CLI too: its remedies name masks and label
    images, not napari's Shapes / Labels layers (the dock puts its own words in,
    ``_napari.help_texts.dock_words``)."""
    labels = np.zeros(SPATIAL, dtype=np.int32)
    labels[0, 0, 0] = 2
    messages = []
    for kw, bg in (({"strategy": "per-slice"}, RoiMask(_boxes())),
                   ({"strategy": "shared-basis", "reference": 0},
                    RoiMask(_region(planes=[1]))),
                   ({"strategy": "per-slice"}, RoiLabel(2)),
                   ({"strategy": "shared-basis", "reference": 1}, RoiLabel(2)),
                   ({"strategy": "shared-basis"}, RoiMask(_boxes()))):
        for comps, background in (([ComponentSpec("c", h_source=bg)], None), ([], bg)):
            with pytest.raises(SeedPlacementError) as info:
                _seeds(comps, labels, background=background, **kw)
            messages.append(str(info.value))
    for msg in messages:
        assert "layer" not in msg.lower() and "Shapes" not in msg, msg
    assert "Give the same region on every plane (or an ROI mask of one plane, (Y, X), which " \
        "applies to every plane)" in messages[0]
