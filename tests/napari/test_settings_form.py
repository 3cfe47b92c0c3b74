"""The dock's settings form: its mode menu, visible settings and solver choices come
from the core's mode table (``MODES``), and it hands AnalysisConfig keywords on."""

from __future__ import annotations

import pytest

pytest.importorskip("napari")
pytestmark = pytest.mark.gui

from napari_unmix._napari.settings_form import (  # noqa: E402
    EVERY_MODE,
    OPTION_OF,
    SettingsForm,
    first_run_mode,
    refining_mode,
)
from napari_unmix.core.analysis import AnalysisConfig  # noqa: E402
from napari_unmix.core.modes import MODES, ModeSpec, register_mode, unregister_mode  # noqa: E402


@pytest.fixture
def form(qapp):
    return SettingsForm()


def _shown(form) -> set:
    return {name for name in OPTION_OF if not getattr(form, name).native.isHidden()}


def _toy_run(data, config, seeds, callback):  # pragma: no cover - never run here
    raise NotImplementedError


@pytest.fixture
def toy_mode():
    spec = register_mode(ModeSpec("toy", "Toy mode", "Does a test find me?", _toy_run,
                                  options=frozenset({"n_components", "tol"})))
    yield spec
    unregister_mode("toy")
    assert "toy" not in MODES


def test_the_mode_menu_is_the_core_table(form):
    assert list(form.mode.choices) == list(MODES)
    labels = [form.mode.native.itemText(i) for i in range(form.mode.native.count())]
    assert labels == [spec.label for spec in MODES.values()]
    # the default mode needs no seeds (a first Run works, issue 13); rows switch the dock
    # to the mode that refines seeds, maps included
    assert form.mode.value == first_run_mode() == "nmf"
    assert refining_mode() == "seeded-nmf"
    assert MODES[refining_mode()].seeded and MODES[refining_mode()].builds_maps


def test_a_registered_mode_is_offered_with_its_own_settings(qapp, toy_mode):
    form = SettingsForm()  # nothing in the form knows the toy mode
    assert list(form.mode.choices)[-1] == "toy"
    assert form.mode.native.itemText(form.mode.native.count() - 1) == "Toy mode"
    form.mode.value = "toy"
    assert _shown(form) == {"n_components", "tol", "nan_policy"}  # the last: every mode's
    form.n_components.value = 5
    assert form.config_kwargs() == {"mode": "toy", "n_components": 5, "tol": 1e-4,
                                    "nan_policy": "raise"}
    assert form.picked_solver() is None and form.device_info.value == ""
    assert form.preprocessing_choice() == (False, None)


def test_a_form_offers_modes_registered_after_it_was_made(form, toy_mode):
    assert "toy" not in form.mode.choices
    form.reset_mode_choices()  # the dock does this whenever napari refreshes its menus
    assert "toy" in form.mode.choices and form.mode.value == first_run_mode()


@pytest.mark.parametrize("mode", ["pca", "nmf", "seeded-nmf", "nnls"])
def test_settings_shown_are_the_options_the_mode_uses(form, mode):
    spec = MODES[mode]
    form.mode.value = mode
    expected = {name for name, option in OPTION_OF.items()
                if spec.uses(option) or option in EVERY_MODE}
    if not spec.solvers:
        expected -= {"solver", "backend", "device", "device_info"}
    assert _shown(form) == expected
    kw = form.config_kwargs()
    assert kw["mode"] == mode
    assert set(kw) - {"mode"} == {OPTION_OF[name] for name in expected} - {"preprocessing"}
    AnalysisConfig(**kw)  # the core takes them as they are


def test_the_built_in_modes_show_what_they_use(form):
    form.mode.value = "pca"
    assert _shown(form) == {"n_components", "standardize", "nan_policy"}
    form.mode.value = "nmf"
    assert {"init", "random_state", "n_components", "solver"} <= _shown(form)
    assert not {"standardize", "w_seed_mode", "h_fallback"} & _shown(form)
    form.mode.value = "seeded-nmf"
    assert {"w_seed_mode", "overwrite", "h_fallback", "smoothing", "anchor"} <= _shown(form)
    assert not {"init", "n_components", "standardize"} & _shown(form)
    form.mode.value = "nnls"
    assert {"h_fallback", "subtract_background"} <= _shown(form)
    assert not {"w_seed_mode", "overwrite", "random_state", "init", "anchor"} & _shown(form)


@pytest.mark.parametrize("mode", ["nmf", "nnls"])
def test_solvers_and_backends_from_the_mode_table(form, mode):
    spec = MODES[mode]
    form.mode.value = mode
    # the solvers that fit the chosen loss (least squares by default)
    algos = {s.algorithm for s in spec.solvers.values() if s.available()
             and "frobenius" in s.losses}
    assert set(form.solver.choices) == {"auto", *algos}
    algo = sorted(algos)[0]
    form.solver.value = algo
    assert set(form.backend.choices) == {"auto", *spec.backend_names(algo, loss="frobenius")}
    backend = spec.backend_names(algo, loss="frobenius")[0]
    form.backend.value = backend
    picked = form.picked_solver()
    assert picked is spec.pick_solver(algo, backend)
    assert (picked.algorithm, picked.backend) == (algo, backend)
    assert form.device_info.value.startswith(f"{algo}/{backend} ")
    # an exact solver says that the tolerance does nothing for it
    assert ("'tolerance' not used" in form.device_info.value) == picked.exact
    assert form.config_kwargs()["solver"] == algo


def test_config_values_and_preprocessing(form):
    form.mode.value = "seeded-nmf"
    form.random_state.value = " 7 "
    form.max_iter.value = 321
    form.w_seed_mode.value = "average"
    form.subtract_background.value = True
    form.smoothing.value = "savgol"
    form.anchor.value = 0.3
    kw = form.config_kwargs()
    assert (kw["random_state"], kw["max_iter"], kw["w_seed_mode"]) == (7, 321, "average")
    assert kw["anchor"] == 0.3 and AnalysisConfig(**kw).anchor == 0.3
    assert form.preprocessing_choice() == (True, "savgol")
    form.random_state.value = ""
    assert form.config_kwargs()["random_state"] is None  # a new seed, recorded in the result
    form.random_state.value = "x1"
    with pytest.raises(ValueError, match="'random_state' must be an integer or empty"):
        form.config_kwargs()
    form.mode.value = "pca"  # preprocessing is not used by PCA, even when ticked
    assert form.preprocessing_choice() == (False, None)
