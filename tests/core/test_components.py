"""Component specs and seed sources: validation and exact JSON round trips."""

import json

import numpy as np
import pytest

from napari_unmix.core import UnmixResult
from napari_unmix.core.components import (
    BackgroundMap,
    ComponentSpec,
    FixedW,
    Flat,
    FromComponent,
    Gaussian,
    ImportedMap,
    PreviousResult,
    RoiLabel,
    RoiMask,
    SeedPixels,
    Spectrum,
    decode_array,
    encode_array,
    source_from_dict,
)


def _same_bits(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


@pytest.mark.parametrize("arr", [
    np.array([0.1, -0.0, 1e-320, np.pi, np.nan, np.inf], dtype=np.float64),
    np.array([[0.1, 3.0], [1e-40, -2.5]], dtype=np.float32),
    np.arange(12, dtype=np.uint16).reshape(3, 4),
    np.array([[True, False], [False, True]]),
    np.asfortranarray(np.arange(6, dtype=">f8").reshape(2, 3)),
    np.zeros((0, 3), dtype=np.float32),
])
def test_encode_array_is_bit_exact_through_json(arr):
    text = json.dumps(encode_array(arr))
    back = decode_array(json.loads(text))
    assert _same_bits(arr, back)


def test_encode_array_by_reference():
    store = {}
    ref = encode_array(np.arange(3.0), arrays=store, key="x/y")
    assert ref == {"__array_ref__": "x/y"}
    assert np.array_equal(decode_array(ref, arrays=store), np.arange(3.0))
    with pytest.raises(ValueError, match="not supplied"):
        decode_array(ref, arrays={})
    with pytest.raises(TypeError, match="dtype object"):
        encode_array(np.array([object()]))


def _all_sources():
    rng = np.random.default_rng(0)
    mask = rng.random((5, 4)) > 0.5
    return [
        RoiMask(mask),
        RoiLabel(3),
        Spectrum(rng.random(7).astype(np.float32), axis=np.linspace(3000, 2800, 7), label="f:a"),
        Spectrum(rng.random(5)),
        Gaussian([(2850, 20, 1.5), (2930.5, 12, 0.25)], width_kind="sigma", baseline=0.1,
                 n_seed_pixels=4),
        SeedPixels(pixels=np.array([1, 5, 7])),
        SeedPixels(pixels=np.array([[0, 1], [2, 3]])),
        SeedPixels(n_best=6, model=Gaussian([(10, 3, 1)])),
        SeedPixels(n_best=2, model=Spectrum(np.ones(4), axis=np.arange(4.0))),
        PreviousResult(h=rng.random(5), w=rng.random(20), axis=np.arange(5.0), label="run 1"),
        FixedW(rng.random((5, 4))),
        ImportedMap(rng.random(20).astype(np.float32), label="x.tif"),
        BackgroundMap(),
        BackgroundMap(rng.random((5, 4))),
        FromComponent("bg"),
        Flat(),
        Flat(level=250.5),
    ]


def _assert_same_source(a, b):
    assert type(a) is type(b)
    da, db = a.to_dict(), b.to_dict()
    assert json.dumps(da, sort_keys=True) == json.dumps(db, sort_keys=True)
    for name in type(a)._array_fields:
        va, vb = getattr(a, name), getattr(b, name)
        assert (va is None) == (vb is None)
        if va is not None:
            assert _same_bits(va, vb)


@pytest.mark.parametrize("src", _all_sources(), ids=lambda s: s.kind)
def test_source_round_trip(src):
    back = source_from_dict(json.loads(json.dumps(src.to_dict())))
    _assert_same_source(src, back)
    store = {}
    by_ref = src.to_dict(arrays=store, prefix="p/")
    assert all(k.startswith("p/") for k in store)
    _assert_same_source(src, source_from_dict(by_ref, arrays=store))


def test_component_spec_round_trip_keeps_everything():
    spec = ComponentSpec("lipid", color="#E69F00",
                         h_source=Spectrum(np.array([0.0, 1.0, 0.5]), axis=np.array([1., 2, 3])),
                         w_source=FixedW(np.array([[0.0, 2.0], [1.0, 0.0]])),
                         background=False, use_subtracted=False, locked=True)
    d = json.loads(json.dumps(spec.to_dict()))
    back = ComponentSpec.from_dict(d)
    assert (back.name, back.color, back.background, back.use_subtracted, back.locked) == \
        ("lipid", "#E69F00", False, False, True)
    assert _same_bits(back.h_source.values, spec.h_source.values)
    assert _same_bits(back.w_source.map, spec.w_source.map)


def test_component_spec_validation():
    with pytest.raises(ValueError, match="non-empty name"):
        ComponentSpec("")
    with pytest.raises(TypeError, match="cannot give a spectrum"):
        ComponentSpec("a", h_source=FixedW(np.ones(3)))
    with pytest.raises(TypeError, match="cannot give a map"):
        ComponentSpec("a", w_source=RoiLabel(1))
    with pytest.raises(ValueError, match="locked but has no spectrum"):
        ComponentSpec("a", locked=True)
    with pytest.raises(ValueError, match="has no spectrum"):
        ComponentSpec("a", h_source=PreviousResult(w=np.ones(4)))
    with pytest.raises(ValueError, match="Unknown component field"):
        ComponentSpec.from_dict({"name": "a", "colour": "red"})


def test_source_validation():
    with pytest.raises(TypeError, match="boolean"):
        RoiMask(np.ones((2, 2)))
    with pytest.raises(ValueError, match=">= 1"):
        RoiLabel(0)
    with pytest.raises(TypeError, match="integer"):
        RoiLabel(1.5)
    with pytest.raises(ValueError, match="one axis value per"):
        Spectrum(np.ones(3), axis=np.ones(4))
    with pytest.raises(ValueError, match="width must be > 0"):
        Gaussian([(10, 0, 1)])
    with pytest.raises(ValueError, match="center, width, amplitude"):
        Gaussian([(10, 1)])
    with pytest.raises(ValueError, match="at least one peak"):
        Gaussian([])
    with pytest.raises(ValueError, match="width_kind"):
        Gaussian([(1, 1, 1)], width_kind="hwhm")
    with pytest.raises(ValueError, match="either pixels"):
        SeedPixels()
    with pytest.raises(TypeError, match="needs model"):
        SeedPixels(n_best=3)
    with pytest.raises(ValueError, match="integer array"):
        SeedPixels(pixels=np.array([0.5, 1.0]))
    with pytest.raises(ValueError, match="Unknown source kind"):
        source_from_dict({"kind": "lasso"})
    for bad in (0.0, -1.0, np.inf, np.nan):
        with pytest.raises(ValueError, match="Flat level must be finite and > 0"):
            Flat(level=bad)
    with pytest.raises(TypeError, match="Flat level must be a number"):
        Flat(level="1")


def test_previous_result_from_result():
    W = np.arange(12.0).reshape(6, 2)
    H = np.arange(8.0).reshape(2, 4) + 1
    res = UnmixResult(W=W, H=H, mode="nmf", backend="numpy", device="cpu", n_iter=1,
                      reconstruction_err=0.0, component_names=["a", "b"],
                      spectral_values=np.array([1.0, 2.0, 3.0, 4.0]))
    src = PreviousResult.from_result(res, "b")
    assert PreviousResult.from_result(res, 0, w=False).w is None
    assert np.array_equal(src.h, H[1]) and np.array_equal(src.w, W[:, 1])
    assert np.array_equal(src.axis, res.spectral_values)
    src.h[0] = -1  # a copy: the result is untouched
    assert res.H[1, 0] == H[1, 0]
    with pytest.raises(ValueError, match="no component 'c'"):
        PreviousResult.from_result(res, "c")
    with pytest.raises(ValueError, match="out of range"):
        PreviousResult.from_result(res, 2)


def test_previous_result_map_keeps_the_shape_of_its_stack():
    # a flat map seeded any image with as many pixels: a (2, 3) result's map was folded
    # onto a (3, 2) image without a word
    from napari_unmix.core.analysis import AnalysisConfig, run_analysis
    from napari_unmix.io import ResultBundle

    rng = np.random.default_rng(0)
    H = rng.uniform(0.5, 1.0, (2, 4))
    W = rng.uniform(0.1, 1.0, (6, 2))
    res = UnmixResult(W=W, H=H, mode="nmf", backend="numpy", device="cpu", n_iter=1,
                      reconstruction_err=0.0, component_names=["a", "b"])
    src = PreviousResult.from_result(res, "b", spatial_shape=(2, 3))
    assert src.w.shape == (2, 3) and np.array_equal(src.w.ravel(), W[:, 1])
    bundle = ResultBundle(result=res, spatial_shape=(2, 3))
    assert PreviousResult.from_result(bundle, "b").w.shape == (2, 3)
    with pytest.raises(ValueError, match=r"spatial_shape \(4, 4\) holds 16 pixels"):
        PreviousResult.from_result(res, "b", spatial_shape=(4, 4))

    stack = np.einsum("pk,kc->cp", W, H).reshape(4, 3, 2)   # the same pixels, on (3, 2)
    comps = [ComponentSpec(n, h_source=PreviousResult.from_result(bundle, n),
                           w_source=PreviousResult.from_result(bundle, n)) for n in "ab"]
    with pytest.raises(ValueError, match=r"has shape \(2, 3\), but the image has spatial "
                                         r"shape \(3, 2\)"):
        run_analysis(stack, AnalysisConfig(mode="seeded-nmf", components=comps))
