"""The solver tables and their name resolution (``core/solvers/__init__.py``).

``pick_nmf_solver`` / ``pick_nnls_solver`` decide what ``"auto"`` means on a CUDA
machine and on a CPU-only one, with and without torch.  Both conditions are
monkeypatched here (``cuda_available`` / ``torch_available`` as the registry sees
them), so every branch is tested on any machine; nothing is run on a device.
"""

from __future__ import annotations

import re

import pytest

from napari_unmix.core import solvers
from napari_unmix.core.solvers import (
    NMF_SOLVERS,
    NNLS_SOLVERS,
    SolverSpec,
    pick_nmf_solver,
    pick_nnls_solver,
)
from napari_unmix.core.solvers.active_set import (
    fit_nnls_active_set_numpy,
    fit_nnls_active_set_torch,
)
from napari_unmix.core.solvers.hals import fit_hals_numpy
from napari_unmix.core.solvers.hals_torch import fit_hals_torch
from napari_unmix.core.solvers.kl import fit_nnls_kl_numpy, fit_nnls_kl_torch
from napari_unmix.core.solvers.mu import fit_mu_numpy, fit_mu_torch
from napari_unmix.core.solvers.scipy_nnls import fit_nnls_scipy
from napari_unmix.core.solvers.simplex_nmf import fit_fcls_hals
from napari_unmix.core.solvers.sklearn_nmf import fit_sklearn
from napari_unmix.core.solvers.torch_fista import fit_nnls_fista


@pytest.fixture(params=["cpu", "cuda"])
def place(request, monkeypatch):
    """Run a test as if on a CPU-only machine and as if a CUDA GPU were visible."""
    monkeypatch.setattr(solvers, "cuda_available", lambda: request.param == "cuda")
    monkeypatch.setattr(solvers, "torch_available", lambda: True)
    return request.param


@pytest.fixture
def no_torch(monkeypatch):
    """As if torch did not import (and so no CUDA either)."""
    monkeypatch.setattr(solvers, "cuda_available", lambda: False)
    monkeypatch.setattr(solvers, "torch_available", lambda: False)


def key(spec):
    return (spec.algorithm, spec.backend)


# ------------------------------------------------------------------------- tables


def test_every_entry_is_the_module_function():
    assert {k: s.func for k, s in NMF_SOLVERS.items()} == {
        ("hals", "numpy"): fit_hals_numpy, ("hals", "torch"): fit_hals_torch,
        ("mu", "numpy"): fit_mu_numpy, ("mu", "torch"): fit_mu_torch,
        ("mu", "sklearn"): fit_sklearn, ("cd", "sklearn"): fit_sklearn,
        ("fcls", "numpy"): fit_fcls_hals,
    }
    assert {k: s.func for k, s in NNLS_SOLVERS.items()} == {
        ("active-set", "numpy"): fit_nnls_active_set_numpy,
        ("active-set", "torch"): fit_nnls_active_set_torch,
        ("lawson-hanson", "scipy"): fit_nnls_scipy,
        ("fista", "torch"): fit_nnls_fista,
        ("mu", "numpy"): fit_nnls_kl_numpy, ("mu", "torch"): fit_nnls_kl_torch,
    }


@pytest.mark.parametrize("table", [NMF_SOLVERS, NNLS_SOLVERS], ids=["nmf", "nnls"])
def test_entries_describe_themselves(table):
    for k, spec in table.items():
        assert isinstance(spec, SolverSpec) and key(spec) == k
        assert spec.needs_torch == (spec.backend == "torch")
        assert spec.summary and "\n" not in spec.summary


def test_flags():
    assert {k for k, s in NNLS_SOLVERS.items() if s.exact} == {
        ("active-set", "numpy"), ("active-set", "torch"), ("lawson-hanson", "scipy")}
    assert not any(s.exact for s in NMF_SOLVERS.values())
    # scikit-learn can neither lock a subset of H nor report progress midway
    assert {k for k, s in NMF_SOLVERS.items() if not s.partial_lock} == {
        ("mu", "sklearn"), ("cd", "sklearn")}
    assert {k for k, s in NMF_SOLVERS.items() if not s.cancellable} == {
        ("mu", "sklearn"), ("cd", "sklearn")}


def test_available_follows_torch(monkeypatch):
    monkeypatch.setattr(solvers, "torch_available", lambda: False)
    assert [k for k, s in NMF_SOLVERS.items() if not s.available()] == [
        ("hals", "torch"), ("mu", "torch")]
    assert [k for k, s in NNLS_SOLVERS.items() if not s.available()] == [
        ("active-set", "torch"), ("fista", "torch"), ("mu", "torch")]
    monkeypatch.setattr(solvers, "torch_available", lambda: True)
    assert all(s.available() for s in (*NMF_SOLVERS.values(), *NNLS_SOLVERS.values()))


# ------------------------------------------------------------------------- "auto"


AUTO = {
    # (solver, backend, seeded): {place: expected key}
    ("auto", "auto", False): {"cpu": ("hals", "numpy"), "cuda": ("hals", "torch")},
    ("auto", "auto", True): {"cpu": ("mu", "numpy"), "cuda": ("mu", "torch")},
    ("mu", "auto", False): {"cpu": ("mu", "numpy"), "cuda": ("mu", "torch")},
    ("hals", "auto", True): {"cpu": ("hals", "numpy"), "cuda": ("hals", "torch")},
    ("cd", "auto", False): {"cpu": ("cd", "sklearn"), "cuda": ("cd", "sklearn")},
    ("auto", "sklearn", False): {"cpu": ("cd", "sklearn"), "cuda": ("cd", "sklearn")},
    ("auto", "sklearn", True): {"cpu": ("mu", "sklearn"), "cuda": ("mu", "sklearn")},
    ("auto", "torch", False): {"cpu": ("hals", "torch"), "cuda": ("hals", "torch")},
    ("auto", "numpy", True): {"cpu": ("mu", "numpy"), "cuda": ("mu", "numpy")},
}


@pytest.mark.parametrize(("solver", "backend", "seeded"), list(AUTO))
def test_nmf_auto(place, solver, backend, seeded):
    # a named solver on a CUDA machine takes its torch version (it fell back to the
    # table order, numpy first, before)
    spec = pick_nmf_solver(solver, backend, seeded=seeded)
    assert key(spec) == AUTO[(solver, backend, seeded)][place]


@pytest.mark.parametrize(("solver", "backend", "expected"), [
    ("auto", "auto", ("hals", "numpy")),
    ("mu", "auto", ("mu", "numpy")),
    ("auto", "sklearn", ("cd", "sklearn")),
])
def test_nmf_auto_without_torch(no_torch, solver, backend, expected):
    assert key(pick_nmf_solver(solver, backend)) == expected


def test_nmf_auto_with_cuda_but_no_torch_build(monkeypatch):
    """A torch that cannot be used makes CUDA irrelevant: the numpy solvers win."""
    monkeypatch.setattr(solvers, "cuda_available", lambda: True)
    monkeypatch.setattr(solvers, "torch_available", lambda: False)
    assert key(pick_nmf_solver()) == ("hals", "numpy")
    assert key(pick_nmf_solver(seeded=True)) == ("mu", "numpy")
    assert key(pick_nnls_solver()) == ("active-set", "numpy")


@pytest.mark.parametrize("seeded", [False, True])
def test_nmf_auto_with_partial_lock(place, seeded):
    spec = pick_nmf_solver(partial_lock=True, seeded=seeded)
    assert spec.partial_lock
    assert key(spec) == AUTO[("auto", "auto", seeded)][place]
    # mu/sklearn would be the seeded choice for backend="sklearn", but cannot lock: the
    # refusal names the matches and why (it said "no solver matches" before)
    with pytest.raises(ValueError, match="The NNMF solver/backend ../sklearn, ../sklearn "
                                         "cannot keep a subset of the spectra fixed"):
        pick_nmf_solver("auto", "sklearn", partial_lock=True, seeded=seeded)


@pytest.mark.parametrize(("solver", "backend", "expected"), [
    ("auto", "auto", {"cpu": ("active-set", "numpy"), "cuda": ("active-set", "torch")}),
    ("active-set", "auto", {"cpu": ("active-set", "numpy"), "cuda": ("active-set", "torch")}),
    ("fista", "auto", {"cpu": ("fista", "torch"), "cuda": ("fista", "torch")}),
    ("auto", "scipy", {"cpu": ("lawson-hanson", "scipy"), "cuda": ("lawson-hanson", "scipy")}),
    ("auto", "torch", {"cpu": ("active-set", "torch"), "cuda": ("active-set", "torch")}),
])
def test_nnls_auto(place, solver, backend, expected):
    spec = pick_nnls_solver(solver, backend)
    assert key(spec) == expected[place]
    if solver == "auto":
        assert spec.exact


def test_nnls_auto_without_torch(no_torch):
    assert key(pick_nnls_solver()) == ("active-set", "numpy")
    with pytest.raises(ValueError, match=re.escape(
            "No available NNLS solver/backend matches solver='fista', backend='auto'. "
            "Registered: active-set/numpy, active-set/torch, lawson-hanson/scipy, "
            "fista/torch, mu/numpy, mu/torch (torch ones need PyTorch installed).")):
        pick_nnls_solver("fista")


# ------------------------------------------------------------------ explicit names


@pytest.mark.parametrize("k", list(NMF_SOLVERS))
def test_explicit_nmf_names(place, k):
    assert pick_nmf_solver(*k) is NMF_SOLVERS[k]


@pytest.mark.parametrize("k", list(NNLS_SOLVERS))
def test_explicit_nnls_names(place, k):
    (loss,) = sorted(NNLS_SOLVERS[k].losses)  # every NNLS entry fits one loss
    assert pick_nnls_solver(*k, loss=loss) is NNLS_SOLVERS[k]


def test_explicit_sklearn_with_partial_lock_is_refused():
    with pytest.raises(ValueError, match=re.escape(
            "The NNMF solver/backend mu/sklearn cannot keep a subset of the spectra fixed "
            "(locked); use one of hals/numpy, hals/torch, mu/numpy, mu/torch, fcls/numpy.")):
        pick_nmf_solver("mu", "sklearn", partial_lock=True)
    assert key(pick_nmf_solver("mu", "sklearn", partial_lock=False)) == ("mu", "sklearn")


@pytest.mark.parametrize(("pick", "args", "message"), [
    (pick_nmf_solver, ("hals", "sklearn"),
     "Unknown NNMF solver/backend 'hals/sklearn'; choose one of: hals/numpy, hals/torch, "
     "mu/numpy, mu/torch, mu/sklearn, cd/sklearn, fcls/numpy, or 'auto' for either part."),
    (pick_nnls_solver, ("fista", "numpy"),
     "Unknown NNLS solver/backend 'fista/numpy'; choose one of: active-set/numpy, "
     "active-set/torch, lawson-hanson/scipy, fista/torch, mu/numpy, mu/torch, or 'auto' "
     "for either part."),
    (pick_nmf_solver, ("als", "auto"),
     "Unknown NNMF solver 'als'; choose one of: cd, fcls, hals, mu, or 'auto'."),
    (pick_nmf_solver, ("auto", "cupy"),
     "Unknown NNMF backend 'cupy'; choose one of: numpy, sklearn, torch, or 'auto'."),
    (pick_nnls_solver, ("simplex", "auto"),
     "Unknown NNLS solver 'simplex'; choose one of: active-set, fista, lawson-hanson, "
     "mu, or 'auto'."),
    (pick_nnls_solver, ("auto", "jax"),
     "Unknown NNLS backend 'jax'; choose one of: numpy, scipy, torch, or 'auto'."),
])
def test_unknown_names(pick, args, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        pick(*args)


@pytest.mark.parametrize(("pick", "args", "name"), [
    (pick_nmf_solver, ("hals", "torch"), "NNMF solver/backend 'hals/torch'"),
    (pick_nmf_solver, ("mu", "torch"), "NNMF solver/backend 'mu/torch'"),
    (pick_nnls_solver, ("fista", "torch"), "NNLS solver/backend 'fista/torch'"),
    (pick_nnls_solver, ("active-set", "torch"), "NNLS solver/backend 'active-set/torch'"),
])
def test_torch_entries_without_torch(no_torch, pick, args, name):
    with pytest.raises(ImportError, match=re.escape(
            f"The {name} needs PyTorch, which is not installed "
            "(pip install 'napari-unmix[torch]'); choose another or 'auto'.")):
        pick(*args)


# ------------------------------------------------------------------------- losses


def test_losses_of_the_entries():
    assert set(solvers.LOSSES) == {"frobenius", "poisson"}
    assert {k for k, s in NMF_SOLVERS.items() if "poisson" in s.losses} == {
        ("mu", "numpy"), ("mu", "torch"), ("mu", "sklearn")}   # not scikit-learn's cd
    assert {k for k, s in NNLS_SOLVERS.items() if "poisson" in s.losses} == {
        ("mu", "numpy"), ("mu", "torch")}
    assert all("frobenius" in s.losses for s in NMF_SOLVERS.values())
    assert {k for k, s in NNLS_SOLVERS.items() if "frobenius" not in s.losses} == {
        ("mu", "numpy"), ("mu", "torch")}


POISSON_AUTO = {
    # (pick, solver, backend, seeded, anchored): {place: expected key}
    ("nmf", "auto", "auto", False, False): {"cpu": ("mu", "numpy"), "cuda": ("mu", "torch")},
    ("nmf", "auto", "auto", True, True): {"cpu": ("mu", "numpy"), "cuda": ("mu", "torch")},
    ("nmf", "auto", "sklearn", False, False): {"cpu": ("mu", "sklearn"),
                                               "cuda": ("mu", "sklearn")},
    ("nmf", "mu", "auto", True, False): {"cpu": ("mu", "numpy"), "cuda": ("mu", "torch")},
    ("nnls", "auto", "auto", False, False): {"cpu": ("mu", "numpy"), "cuda": ("mu", "torch")},
    ("nnls", "auto", "torch", False, False): {"cpu": ("mu", "torch"), "cuda": ("mu", "torch")},
}


@pytest.mark.parametrize("case", list(POISSON_AUTO))
def test_poisson_auto(place, case):
    table, solver, backend, seeded, anchored = case
    if table == "nmf":
        spec = pick_nmf_solver(solver, backend, seeded=seeded, anchored=anchored,
                               partial_lock=anchored, loss="poisson")
    else:
        spec = pick_nnls_solver(solver, backend, loss="poisson")
    assert key(spec) == POISSON_AUTO[case][place]
    assert "poisson" in spec.losses


def test_poisson_auto_without_torch(no_torch):
    assert key(pick_nmf_solver(loss="poisson")) == ("mu", "numpy")
    assert key(pick_nnls_solver(loss="poisson")) == ("mu", "numpy")


@pytest.mark.parametrize(("pick", "args", "message"), [
    (pick_nmf_solver, ("cd", "sklearn"),
     "The NNMF solver/backend cd/sklearn cannot fit loss='poisson' (it fits "
     "loss='frobenius'); use mu/numpy, mu/torch, mu/sklearn (or 'auto')."),
    (pick_nmf_solver, ("hals", "auto"),
     "The NNMF solver/backend hals cannot fit loss='poisson' (it fits loss='frobenius'); "
     "use mu/numpy, mu/torch, mu/sklearn (or 'auto')."),
    (pick_nnls_solver, ("active-set", "numpy"),
     "The NNLS solver/backend active-set/numpy cannot fit loss='poisson' (it fits "
     "loss='frobenius'); use mu/numpy, mu/torch (or 'auto')."),
    (pick_nnls_solver, ("auto", "scipy"),
     "The NNLS solver/backend scipy cannot fit loss='poisson' (it fits loss='frobenius'); "
     "use mu/numpy, mu/torch (or 'auto')."),
])
def test_a_named_solver_that_cannot_fit_the_loss_is_refused(pick, args, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        pick(*args, loss="poisson")


def test_poisson_with_partial_lock_and_sum_constraints():
    # scikit-learn's mu fits the Poisson loss but cannot lock a subset of the spectra
    with pytest.raises(ValueError, match=re.escape(
            "The NNMF solver/backend mu/sklearn cannot keep a subset of the spectra fixed "
            "(locked); use one of mu/numpy, mu/torch.")):
        pick_nmf_solver("mu", "sklearn", partial_lock=True, loss="poisson")
    # the EM solvers of the Poisson loss fit free abundances only
    for pick in (pick_nmf_solver, pick_nnls_solver):
        with pytest.raises(ValueError, match=re.escape(
                "fits loss='poisson' with abundance='sum-to-one'; use abundance='free' with "
                "this loss, or loss='frobenius'.")):
            pick(loss="poisson", abundance="sum-to-one")


@pytest.mark.parametrize("pick", [pick_nmf_solver, pick_nnls_solver])
def test_unknown_loss(pick):
    with pytest.raises(ValueError, match=re.escape(
            "Unknown loss 'l1'; choose one of frobenius, poisson.")):
        pick(loss="l1")


def test_frobenius_picks_are_unchanged_by_the_poisson_entries(place):
    # the NNLS mu entries fit the Poisson loss only: least squares never gets them
    assert pick_nnls_solver().exact
    with pytest.raises(ValueError, match=re.escape(
            "The NNLS solver/backend mu cannot fit loss='frobenius' (it fits loss='poisson'); "
            "use active-set/numpy, active-set/torch, lawson-hanson/scipy, fista/torch (or "
            "'auto').")):
        pick_nnls_solver("mu")
