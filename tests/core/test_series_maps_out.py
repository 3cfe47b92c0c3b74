"""Series maps written to disk plane by plane (``unmix_series(..., maps_out=...)``):
the same numbers as in memory, refused targets before any work, lazy whole-series
results."""

from __future__ import annotations

import numpy as np
import pytest

from napari_unmix.core import AnalysisConfig
from napari_unmix.core.series import SeriesResult, unmix_series
from napari_unmix.core.synthetic import make_crs_sample_4d

Z, SHAPE, C = 3, (24, 20), 16


@pytest.fixture(scope="module")
def sample():
    return make_crs_sample_4d(n_planes=Z, shape=SHAPE, n_channels=C, noise=0.01,
                              random_state=2)


def test_shared_basis_maps_into_a_new_zarr_array(sample, tmp_path):
    zarr = pytest.importorskip("zarr")
    ref = unmix_series(sample.stack, H=sample.H)
    res = unmix_series(sample.stack, H=sample.H, maps_out=tmp_path / "maps.zarr")
    assert isinstance(res.maps, zarr.Array) and res.maps.shape == ref.maps.shape
    assert res.maps.chunks == (1, 1, *SHAPE)             # one component, one plane
    assert np.array_equal(res.maps[:], ref.maps)
    assert res.params["maps_out"] == str(tmp_path / "maps.zarr")
    assert np.array_equal(zarr.open_array(str(tmp_path / "maps.zarr"))[:], ref.maps)
    assert np.array_equal(res.plane_result(1).W, ref.plane_result(1).W)
    whole = res.as_result()
    assert whole.is_lazy and np.array_equal(np.asarray(whole.W), ref.as_result().W)
    back = SeriesResult.load(res.save(tmp_path / "series.npz"))
    assert np.array_equal(back.maps, ref.maps)


def test_per_slice_matching_reorders_the_planes_on_disk(sample, tmp_path):
    cfg = AnalysisConfig(mode="nmf", n_components=4, random_state=0, max_iter=300)
    ref = unmix_series(sample.stack, cfg, strategy="per-slice")
    assert ref.summary.match.reordered_planes       # the matching moved components
    out = np.lib.format.open_memmap(tmp_path / "maps.npy", mode="w+", dtype=ref.maps.dtype,
                                    shape=ref.maps.shape)
    res = unmix_series(sample.stack, cfg, strategy="per-slice", maps_out=out)
    assert np.shares_memory(res.maps, out)            # written in place, not copied
    assert np.array_equal(np.load(tmp_path / "maps.npy"), ref.maps)
    assert res.summary.match.reordered_planes == ref.summary.match.reordered_planes


def test_an_existing_path_is_refused_before_any_fit(sample, tmp_path):
    (tmp_path / "maps.zarr").mkdir()
    calls = []
    with pytest.raises(ValueError, match="already exists.*new path"):
        unmix_series(sample.stack, H=sample.H, maps_out=tmp_path / "maps.zarr",
                     callback=calls.append)
    assert calls == []


def test_an_array_of_the_wrong_shape_is_refused(sample):
    with pytest.raises(ValueError, match=r"maps_out has shape \(4, 2, 24, 20\).*\(4, 3, 24, 20\)"):
        unmix_series(sample.stack, H=sample.H, maps_out=np.zeros((4, 2, *SHAPE)))
