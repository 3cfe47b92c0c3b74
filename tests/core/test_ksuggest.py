"""How many components: suggest_n_components on data whose number is known.

Targets of issue 15: the suggested k equals the true k on the bundled sample
(``make_crs_sample``, k = 4) and on the benchmark cube (``benchmarks/_data.py``
``make_stack``, k = 5).  Measured (``benchmarks/diagnostics.py``): the sample 4 by
all three criteria, the paired z of k = 3 against the best 31 and of k = 5 3.3; the
cube (20 000 pixels, generator seeds 0-4; its clipped pixels left out) scree 5,
cross-validation 5 (z of k = 4: 18-46), the NNMF
residual not at the noise floor by k = 8 (slow HALS convergence on its strongly
overlapping spectra; the median lets the other two decide).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from napari_unmix.core import KSuggestion, suggest_n_components
from napari_unmix.core.synthetic import make_crs_sample

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from _data import make_stack  # noqa: E402


@pytest.fixture(scope="module")
def sample_k():
    s = make_crs_sample()  # the bundled sample as the dock opens it: 128 x 128 x 64
    return suggest_n_components(s.stack, spectral_axis=0, k_max=7)


def test_the_bundled_sample_gives_its_four_components_by_every_criterion(sample_k):
    ks = sample_k
    assert ks.k == 4
    assert (ks.k_scree, ks.k_residual, ks.k_cv) == (4, 4, 4)
    assert ks.agree and not ks.at_limit
    # margins: the 4th component is well above noise, the 5th not
    assert ks.eigenvalues[3] > 3 * ks.mp_edge
    assert ks.eigenvalues[4] < 1.1 * ks.mp_edge
    assert ks.cv_z[2] > 10          # k = 3 predicts held-out data clearly worse
    assert ks.cv_z[4] < 5           # k = 5 is no better than 4
    # the NNMF reaches the noise floor at 4 and not at 3
    assert ks.relative_error[2] > 1.03 * ks.residual_floor[2]
    assert ks.relative_error[3] < 1.02 * ks.residual_floor[3]


@pytest.mark.parametrize("seed", range(5))
def test_the_benchmark_cube_gives_its_five_components(seed):
    """Every generator seed: its noise is clipped at zero, which read naively counts
    as a sixth component (seeds 2 and 4 below); the clipped pixels are left out."""
    cube = make_stack(n_pixels=20_000, seed=seed)  # the benchmark's distribution
    ks = suggest_n_components(cube.X, k_max=8)
    assert ks.clipped and any("clipped at zero" in n for n in ks.notes)
    assert ks.k == 5
    assert ks.k_scree == 5 and ks.k_cv == 5
    assert ks.cv_z[3] > 10  # four components predict held-out data clearly worse
    assert ks.cv_z[4] == 0.0 or ks.cv_z[4] < 5


@pytest.mark.parametrize("seed", [2, 4])
def test_clipped_noise_read_as_linear_counts_a_component_more(seed):
    """What ``clipped="auto"`` guards against: the same cube with every pixel read."""
    cube = make_stack(n_pixels=20_000, seed=seed)
    ks = suggest_n_components(cube.X, k_max=8, clipped=False, residual=False)
    assert not ks.clipped
    assert ks.k_scree == 6 and ks.k_cv == 6


def test_counts_are_not_taken_as_clipped():
    """Integer data: zeros are counts of nothing, not clipped noise."""
    s = make_crs_sample(shape=(48, 48))
    rng = np.random.default_rng(0)
    counts = rng.poisson(3.0 * s.stack / s.stack.mean()).astype(np.float32)
    assert (counts == 0).mean() > 0.01
    ks = suggest_n_components(counts, spectral_axis=0, k_max=5, residual=False)
    assert not ks.clipped
    assert ks.n_pixels_used == 48 * 48


def test_too_few_unclipped_pixels_fall_back_to_all_with_a_note():
    s = make_crs_sample(shape=(32, 32))
    X = np.moveaxis(s.stack, 0, -1).reshape(-1, s.stack.shape[0]).astype(np.float64)
    X[:, :4] = 0.0  # four dead channels: no pixel is above the noise everywhere
    ks = suggest_n_components(X, k_max=4, residual=False)
    assert not ks.clipped and ks.n_pixels_used == 32 * 32
    assert any("all pixels were used" in n for n in ks.notes)
    with pytest.raises(ValueError, match="clipped="):
        suggest_n_components(X, k_max=4, clipped="yes")


def test_a_stack_with_a_component_more_suggests_one_more():
    """The criteria follow the data, not a default: drop the sample's lipid (3 left)."""
    s = make_crs_sample(shape=(64, 64))
    W = s.W.copy()
    W[:, 0] = 0.0
    rng = np.random.default_rng(3)
    X = W @ s.H + 0.01 * float((s.W @ s.H).max()) * rng.standard_normal((W.shape[0], 64))
    ks = suggest_n_components(X, k_max=6)
    assert ks.k == 3


def test_noise_around_a_constant_is_one_component():
    rng = np.random.default_rng(0)
    X = 1.0 + 0.05 * rng.standard_normal((2000, 32))
    ks = suggest_n_components(X, k_max=6)
    assert (ks.k, ks.k_scree, ks.k_residual, ks.k_cv) == (1, 1, 1, 1)


def test_curves_json_and_table():
    s = make_crs_sample(shape=(32, 32), n_channels=32)
    ks = suggest_n_components(s.stack, spectral_axis=0, k_max=5, residual=False)
    assert ks.ks == [1, 2, 3, 4, 5]
    assert len(ks.cv_error) == len(ks.cv_z) == 5 and len(ks.noise) == 32
    assert np.all(np.diff(ks.eigenvalues) <= 0)
    back = KSuggestion.from_dict(ks.to_dict())
    assert back.to_dict() == ks.to_dict()
    assert [r["k"] for r in ks.table()] == ks.ks
    assert ks.to_json()


def test_at_limit_is_said():
    s = make_crs_sample(shape=(32, 32), n_channels=32)
    ks = suggest_n_components(s.stack, spectral_axis=0, k_max=2)
    assert ks.k == 2 and "scree" in ks.at_limit and "cross-validation" in ks.at_limit
    assert any("k_max=2" in n for n in ks.notes)


def test_nmf_cross_validation_runs():
    """A smoke test: the NNMF variant (slower; on this 32 x 32 crop it says 3, one less
    than the SVD's 4: its local minima blur the curve)."""
    s = make_crs_sample(shape=(32, 32), n_channels=32)
    ks = suggest_n_components(s.stack, spectral_axis=0, k_max=5, cv="nmf", residual=False)
    assert ks.cv == "nmf" and ks.k_cv in (3, 4) and ks.cv_z[ks.k_cv - 1] < 5


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="cv="):
        suggest_n_components(np.ones((50, 8)), cv="bogus")
    with pytest.raises(ValueError, match=r"^3 channel\(s\) are too few .* at least 4 channels"):
        suggest_n_components(np.random.default_rng(0).random((50, 3)))
    with pytest.raises(ValueError, match=r"^1 pixel\(s\) are too few"):
        suggest_n_components(np.random.default_rng(0).random((1, 30)))
    with pytest.raises(ValueError, match=r"folds=\(1, 2\) needs at least 2"):
        suggest_n_components(np.random.default_rng(0).random((100, 20)), folds=(1, 2))
    with pytest.raises(ValueError, match="spectral_axis"):
        suggest_n_components(np.ones((4, 5, 6)))


def test_progress_is_reported_and_cancel_stops_it():
    from napari_unmix.core.progress import Cancelled

    s = make_crs_sample(shape=(32, 32), n_channels=32)
    seen = []
    ks = suggest_n_components(s.stack, spectral_axis=0, k_max=4, callback=seen.append)
    assert [i.iteration for i in seen] == [1, 2, 3, 4, 5]
    assert {i.stage for i in seen} == {"suggest k"} and seen[-1].fraction == 1.0
    again = suggest_n_components(s.stack, spectral_axis=0, k_max=4)
    assert again.to_dict() == ks.to_dict()  # the callback changes nothing
    with pytest.raises(Cancelled):
        suggest_n_components(s.stack, spectral_axis=0, k_max=4,
                             callback=lambda info: info.iteration < 2)


@pytest.mark.parametrize("cv", ["svd", "nmf"])
def test_negative_values_are_said_and_fitted_as_zero_by_the_nnmf_parts(cv):
    # background-subtracted data (half the values below 0): the scree reads them as
    # they are, the NNMF fits as 0 (NNMF cannot fit them), and a note says so
    s = make_crs_sample(shape=(32, 32), n_channels=32)
    X = s.stack - np.median(s.stack)
    ks = suggest_n_components(X, spectral_axis=0, k_max=5, cv=cv)
    note = next(n for n in ks.notes if "negative" in n)
    assert f"{int((X < 0).sum())} of the values read are negative" in note
    assert ("cross-validation" in note) == (cv == "nmf")
    assert ks.k in (4, 5)
    clean = suggest_n_components(s.stack, spectral_axis=0, k_max=5, cv=cv)
    assert not any("negative" in n for n in clean.notes)


def test_pixels_with_nan_are_left_out_with_a_note():
    s = make_crs_sample(shape=(32, 32), n_channels=32)
    X = s.stack.copy()
    X[3, 5, 7] = np.nan
    X[0, 9, 9] = np.inf
    ks = suggest_n_components(X, spectral_axis=0, k_max=5, residual=False)
    assert any(n.startswith("2 of 1024 pixels hold NaN or inf") for n in ks.notes)
    assert ks.n_pixels_used == 1022
    with pytest.raises(ValueError, match="Every pixel holds NaN"):
        suggest_n_components(np.full((40, 8), np.nan))


@pytest.mark.parametrize("options, words", [
    (dict(folds=(2,)), r"folds must be two integers"),          # was an IndexError
    (dict(z_crit=-1), r"z_crit must be a finite number > 0"),   # was a bare StopIteration
    (dict(k_max=0), r"k_max must be an integer >= 1"),          # a message without subject
    (dict(k_max=2.5), r"k_max must be an integer"),             # was truncated to 2
    (dict(margin=float("nan")), r"margin must be a finite number >= 0"),  # gave k_scree=1
    (dict(random_state=-1), r"random_state must be an integer from 0"),
])
def test_options_that_are_no_number_of_their_kind_are_refused_by_name(options, words):
    X = np.random.default_rng(0).random((100, 20))
    with pytest.raises(ValueError, match=words):
        suggest_n_components(X, **options)


def test_one_k_tried_is_not_called_still_rising():
    # k_max=1 said "cross-validation still rising at k_max=1: the data support more
    # components than were tried", of a single point
    X = np.random.default_rng(0).random((200, 12))
    with np.errstate(all="ignore"):
        ks = suggest_n_components(X, k_max=1, random_state=0)
    assert ks.k == 1 and ks.ks == [1]
    assert not [c for c in ks.at_limit if c != "residual"]
    assert not any("still rising" in n for n in ks.notes), ks.notes


def test_a_lowered_k_max_is_said():
    # 24 channels leave room for k = 1..11 beside the held-out channels: k_max=12 was
    # lowered to 11 without a word (the help says "default 12")
    X = np.random.default_rng(0).random((500, 24))
    with np.errstate(all="ignore"):
        ks = suggest_n_components(X, k_max=12, random_state=0)
    assert ks.ks[-1] == 11
    assert any("k_max lowered from 12 to 11" in n and "24 channels" in n for n in ks.notes)
    with np.errstate(all="ignore"):
        quiet = suggest_n_components(X, k_max=5, random_state=0)
    assert not any("lowered" in n for n in quiet.notes)
