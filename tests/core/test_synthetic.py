"""The synthetic CRS sample: determinism, exact model, shapes, noise floor, realism."""

from __future__ import annotations

import numpy as np
import pytest

from napari_unmix.core import stack_to_matrix
from napari_unmix.core.synthetic import (
    COMPONENT_NAMES,
    crs_spectra,
    make_crs_sample,
    make_crs_sample_4d,
)

SMALL = {"shape": (48, 40), "n_channels": 24}


@pytest.fixture(scope="module")
def sample():
    return make_crs_sample(**SMALL, noise=0.02, random_state=3)


def test_same_seed_same_sample(sample):
    again = make_crs_sample(**SMALL, noise=0.02, random_state=3)
    np.testing.assert_array_equal(again.stack, sample.stack)
    np.testing.assert_array_equal(again.W, sample.W)
    np.testing.assert_array_equal(again.H, sample.H)
    assert again.noise_floor == sample.noise_floor


def test_other_seed_other_sample(sample):
    other = make_crs_sample(**SMALL, noise=0.02, random_state=4)
    assert not np.allclose(other.maps, sample.maps)
    # the spectra are the fixed model, not random
    np.testing.assert_array_equal(other.H, sample.H)


def test_generator_seed_is_accepted_and_recorded():
    s = make_crs_sample(**SMALL, random_state=np.random.default_rng(1))
    t = make_crs_sample(**SMALL, random_state=s.random_state)
    np.testing.assert_array_equal(s.stack, t.stack)


def test_shapes_and_dtypes(sample):
    c, (ny, nx), k = SMALL["n_channels"], SMALL["shape"], len(COMPONENT_NAMES)
    assert sample.stack.shape == (c, ny, nx) and sample.stack.dtype == np.float32
    assert sample.W.shape == (ny * nx, k)
    assert sample.H.shape == (k, c)
    assert sample.maps.shape == (k, ny, nx)
    assert sample.spectral_axis.shape == (c,)
    assert sample.spectral_axis[0] == 2800.0 and sample.spectral_axis[-1] == 3100.0
    assert sample.spectral_unit == "cm^-1"
    assert sample.component_names == COMPONENT_NAMES
    assert len(sample.colors) == k and all(col.startswith("#") for col in sample.colors)
    # W is the maps in the pixel order of stack_to_matrix
    np.testing.assert_array_equal(sample.maps.reshape(k, -1).T, sample.W)


def test_noise_free_stack_is_exactly_w_times_h():
    s = make_crs_sample(**SMALL, noise=0.0, random_state=3)
    X, spatial = stack_to_matrix(s.stack, 0)
    assert spatial == SMALL["shape"]
    # float32 rounding of the float64 product is the only difference
    np.testing.assert_array_equal(X, (s.W @ s.H).astype(np.float32))
    assert s.noise_floor == pytest.approx(0.0, abs=1e-7)


def test_stack_is_w_h_plus_noise_of_the_requested_level(sample):
    clean = sample.clean()
    noise = sample.stack.astype(np.float64) - clean
    sigma = 0.02 * clean.max()
    # 46 080 samples: the sample std is within ~1 % of sigma
    assert noise.std() == pytest.approx(sigma, rel=0.03)
    assert abs(noise.mean()) < 4 * sigma / np.sqrt(noise.size)
    # same noise field whatever the noise level: the level only scales it
    s2 = make_crs_sample(**SMALL, noise=0.04, random_state=3)
    np.testing.assert_allclose(s2.stack - clean, 2 * noise, atol=1e-5)


def test_noise_floor_is_relative_noise_norm(sample):
    noisy = sample.stack.astype(np.float64)
    expected = np.linalg.norm(noisy - sample.clean()) / np.linalg.norm(noisy)
    assert sample.noise_floor == pytest.approx(expected, rel=1e-9)
    # and it is what the true factors score as a relative reconstruction error
    X, _ = stack_to_matrix(sample.stack, 0)
    rel = np.linalg.norm(X - sample.W @ sample.H) / np.linalg.norm(X)
    assert rel == pytest.approx(sample.noise_floor, rel=1e-5)


def test_spectra_have_their_bands_where_they_should():
    nu = np.linspace(2800, 3100, 301)  # 1 cm^-1 steps
    H = crs_spectra(nu)
    np.testing.assert_allclose(H.max(axis=1), 1.0)
    lipid, protein, water, background = H
    assert nu[np.argmax(lipid)] == pytest.approx(2850, abs=2)
    # the 2885 band is a local maximum of the lipid spectrum
    i = np.argmin(np.abs(nu - 2885))
    assert lipid[i - 3 : i + 4].argmax() in (2, 3, 4) and lipid[i] > 0.5
    assert nu[np.argmax(protein)] == pytest.approx(2935, abs=2)
    assert np.all(np.diff(water) > 0)  # rising towards the O-H band
    assert water[-1] > 10 * water[0]
    np.testing.assert_array_equal(background, 1.0)


def test_abundances_are_non_negative_and_overlap_realistically(sample):
    lipid, protein, water, background = sample.maps
    assert (sample.W >= 0).all()
    assert (background > 0.1).all() and (water > 0).all()  # everywhere
    in_cells = protein > 0.2
    assert 0.03 < in_cells.mean() < 0.7  # cells, but not everywhere
    # lipid and protein share pixels (droplets inside cells) ...
    assert np.any((lipid > 0.3) & (protein > 0.2))
    # ... and there are lipid droplets much brighter than the cytoplasm
    assert lipid.max() > 3 * np.median(lipid[in_cells])
    # water is displaced by the cells
    assert water[in_cells].mean() < water[~in_cells].mean()


def test_default_stack_stays_positive():
    s = make_crs_sample(shape=(64, 64), n_channels=32)
    assert s.stack.min() > 0


def test_4d_variant_layout_and_slow_change():
    s = make_crs_sample_4d(n_planes=5, shape=(40, 40), n_channels=16, noise=0.0,
                           random_state=2)
    assert s.stack.shape == (5, 16, 40, 40) and s.spectral_axis_index == 1
    assert s.maps.shape == (4, 5, 40, 40)
    X, spatial = stack_to_matrix(s.stack, 1)
    assert spatial == (5, 40, 40)
    np.testing.assert_array_equal(X, (s.W @ s.H).astype(np.float32))
    protein = s.maps[1]
    for z in range(4):
        a, b = protein[z].ravel(), protein[z + 1].ravel()
        assert np.corrcoef(a, b)[0, 1] > 0.8  # neighbours alike ...
        assert not np.allclose(a, b)  # ... but not equal
    np.testing.assert_array_equal(s.clean().shape, s.stack.shape)


@pytest.mark.parametrize("kwargs, match", [
    ({"shape": (4, 40)}, "shape"),
    ({"shape": (40, 40, 3)}, "shape"),
    ({"n_channels": 2}, "n_channels"),
    ({"noise": -0.1}, "noise"),
    ({"noise": float("nan")}, "noise"),
    ({"random_state": None}, "random_state"),
    ({"wavenumber_range": (3100, 2800)}, "increasing"),
])
def test_bad_arguments_are_rejected(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_crs_sample(**kwargs)


def test_4d_needs_positive_planes():
    with pytest.raises(ValueError, match="n_planes"):
        make_crs_sample_4d(n_planes=0)
