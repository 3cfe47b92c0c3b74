"""The dock's session model, on a plain ``napari.components.ViewerModel`` (no Qt).

The session holds the chosen image, the rows, the last result and the series plan;
its reference plane follows the viewer's dims slider until the user edits it, and a
per-plane result's spectra follow the slider.  Runs are prepared and their
functions called here synchronously (the dock calls them in a worker).
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

napari = pytest.importorskip("napari")

from napari.components import ViewerModel  # noqa: E402

from napari_unmix._napari.layers import result_layers  # noqa: E402
from napari_unmix._napari.rois import RoiError  # noqa: E402
from napari_unmix._napari.sample_data import sample_layer_data  # noqa: E402
from napari_unmix._napari.seed_inputs import RowSettings, SourceChoice  # noqa: E402
from napari_unmix._napari.session import Refusal, SpectraView, UnmixSession  # noqa: E402
from napari_unmix.core.analysis import AnalysisConfig, run_analysis  # noqa: E402
from napari_unmix.core.modes import MODES, ModeSpec, register_mode, unregister_mode  # noqa: E402
from napari_unmix.core.series import unmix_series  # noqa: E402
from napari_unmix.core.synthetic import make_crs_sample, make_crs_sample_4d  # noqa: E402

N_PLANES = 4
SHAPE = (16, 16)
N_CHANNELS = 12
SCALE = (3.0, 1.0, 0.5, 0.5)
TRANSLATE = (10.0, 0.0, 2.0, -1.0)
FAST = {"solver": "hals", "backend": "numpy", "max_iter": 100, "tol": 1e-3, "random_state": 0}


@pytest.fixture(scope="module")
def zs():
    return make_crs_sample_4d(n_planes=N_PLANES, shape=SHAPE, n_channels=N_CHANNELS,
                              random_state=0)


@pytest.fixture(scope="module")
def single():
    return make_crs_sample(shape=SHAPE, n_channels=N_CHANNELS, random_state=0)


@pytest.fixture
def viewer(zs):
    v = ViewerModel()
    data, kwargs, _ = sample_layer_data(zs, "z-series")[0]
    v.add_image(data, scale=SCALE, translate=TRANSLATE, **kwargs)
    return v


@pytest.fixture
def session(viewer):
    s = UnmixSession(viewer)
    s.set_image("z-series")
    yield s
    s.close()


def _record(signal):
    seen = []
    signal.connect(lambda *args: seen.append(args[0] if args else None))
    return seen


def test_the_session_imports_no_qt():
    code = ("import sys, napari_unmix._napari.session; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('qtpy', 'PyQt5', 'PyQt6', 'PySide2', 'PySide6', 'magicgui', 'superqt')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


# -- the image -------------------------------------------------------------------------
def test_image_choice_spectral_axis_and_grid(viewer, session, single):
    viewer.add_image(np.ones(SHAPE, np.float32), name="plain 2-D")
    viewer.add_image(np.ones((3, *SHAPE), np.float32), name="untagged")
    data, kwargs, _ = sample_layer_data(single, "crs")[0]
    viewer.add_image(data, **kwargs)
    # tagged stacks first; 2-D images are not offered
    assert session.image_names() == ["z-series", "crs", "untagged"]
    assert session.spectral_axis_index == 1
    grid = session.grid()
    assert grid.spatial_shape == (N_PLANES, *SHAPE) and grid.n_channels == N_CHANNELS
    assert session.axis_text() == f"{N_CHANNELS} channels, 2800 to 3100 cm^-1"

    grids = _record(session.events.grid)
    session.set_image("untagged")
    assert session.spectral_axis_index == 0 and grids[-1].name == "untagged"
    assert "no spectral values" in session.axis_text()
    session.set_spectral_axis(2)
    assert grids[-1].spectral_axis_index == 2 and session.grid().n_channels == SHAPE[1]
    n = len(grids)
    session.set_spectral_axis(2)  # no change, no event
    assert len(grids) == n
    session.set_image(None)
    assert grids[-1] is None and session.axis_text() == "no spectral image in the viewer"
    with pytest.raises(ValueError, match="Choose the image to unmix"):
        session.grid()
    # a series result's maps are not offered as images
    session.set_image("crs")
    req = session.prepare({"mode": "pca", "n_components": 2})
    session.publish(req, req.func(callback=None))
    assert "run 1 · PC1" in viewer.layers and "run 1 · PC1" not in session.image_names()


# -- the reference plane -----------------------------------------------------------------
def test_the_reference_plane_follows_the_slider_until_the_user_edits_it(viewer, session):
    planes = _record(session.events.plane)
    viewer.dims.set_current_step(0, 2)
    assert session.plane == 0 and planes == []  # a joint fit has no reference plane
    session.set_series_choice("plane")
    assert session.plane == 2 and planes == [2]
    viewer.dims.set_current_step(0, 3)
    assert session.plane == 3 and planes == [2, 3]
    # the user picks another plane: it stays
    session.set_plane(1)
    assert not session.plane_follows
    viewer.dims.set_current_step(0, 0)
    assert session.plane == 1 and planes == [2, 3]
    # back on the viewer's plane: it follows again
    session.set_plane(0)
    assert session.plane_follows
    viewer.dims.set_current_step(0, 2)
    assert session.plane == 2 and planes[-1] == 2
    # choosing the image again makes it follow again
    session.set_plane(1)
    session.set_image("z-series")
    assert session.plane == 2 and session.plane_follows

    plan = session.plan()
    assert (plan.choice, plan.axis, plan.n_planes, plan.plane) == ("plane", 0, N_PLANES, 2)
    assert plan.strategy == "shared-basis" and plan.reference == 2
    assert plan.label == "shared basis from plane 2"
    session.set_series_choice("pooled")
    assert session.plan().reference == "pooled" and session.plan().reference_plane is None
    session.set_series_choice("per-plane")
    assert session.plan().strategy == "per-slice"
    session.set_series_choice("joint")
    assert session.plan() is None
    session.set_series_choice("plane")
    session.plane = 7
    with pytest.raises(ValueError, match="reference plane 7 is not a plane"):
        session.plan()


def test_a_single_stack_has_no_series_plan(viewer, session, single):
    data, kwargs, _ = sample_layer_data(single, "crs")[0]
    viewer.add_image(data, **kwargs)
    session.set_series_choice("per-plane")
    session.set_image("crs")
    assert session.strategy() is None and session.plan() is None
    assert session.viewer_plane() is None


# -- rows --------------------------------------------------------------------------------
def _labels_on_plane(zs, z, n=8):
    W = zs.maps[:, z].reshape(zs.n_components, -1).T
    frac = W / W.sum(axis=1, keepdims=True)
    lab = np.zeros((N_PLANES, SHAPE[0] * SHAPE[1]), dtype=np.uint16)
    for i in range(zs.n_components):
        lab[z, np.argsort(-frac[:, i], kind="stable")[:n]] = i + 1
    return lab.reshape((N_PLANES, *SHAPE))


def test_rows_from_a_labels_or_shapes_layer(viewer, session, zs):
    rows_seen = _record(session.events.rows)
    # painted in a Labels layer with the viewer's dimensions, on channel 0
    painted = np.zeros((N_PLANES, N_CHANNELS, *SHAPE), dtype=np.uint16)
    painted[:, 0] = _labels_on_plane(zs, 2)
    viewer.add_labels(painted, name="cells", scale=SCALE, translate=TRANSLATE)
    assert session.rows_from_layer("cells") == zs.n_components
    assert [r.source.kind for r in session.rows] == ["roi-label"] * zs.n_components
    assert [r.source.label_id for r in session.rows] == list(range(1, zs.n_components + 1))
    assert rows_seen[-1] == session.rows
    viewer.add_shapes([np.array([[2.0, 2], [2, 6], [6, 6], [6, 2]])] * 2,
                      shape_type="rectangle", name="rois", scale=SCALE[2:],
                      translate=TRANSLATE[2:])
    assert session.rows_from_layer("rois") == 2
    assert [(r.name, r.source.kind, r.source.shape_index) for r in session.rows] == \
        [("shape 1", "roi-mask", 0), ("shape 2", "roi-mask", 1)]
    viewer.add_labels(np.zeros(SHAPE, np.int32), name="empty")
    with pytest.raises(RoiError, match="is empty"):
        session.rows_from_layer("empty")
    many = np.arange(SHAPE[0] * SHAPE[1], dtype=np.int32).reshape(SHAPE) % 40
    viewer.add_labels(many, name="every cell")
    with pytest.raises(ValueError, match="39 labels on the image; .* at most 32"):
        session.rows_from_layer("every cell")
    with pytest.raises(ValueError, match="Choose a Labels or Shapes layer"):
        session.rows_from_layer("no such layer")
    assert len(session.rows) == 2  # refusals leave the rows alone


# -- runs and results --------------------------------------------------------------------
def _run(session, kw, **prep):
    request = session.prepare(kw, **prep)
    return request, session.publish(request, request.func(callback=None))


def test_a_joint_fit_is_published_and_seeds_the_next_run(viewer, session, zs):
    results, spectra = _record(session.events.result), _record(session.events.spectra)
    request, text = _run(session, {"mode": "nmf", "n_components": 3, **FAST})
    assert request.series is None and request.config.mode == "nmf"
    expected = run_analysis(zs.stack, AnalysisConfig(mode="nmf", n_components=3, **FAST),
                            spectral_axis=1, spectral_values=zs.spectral_axis)
    res = session.result
    np.testing.assert_allclose(res.W, expected.W, rtol=1e-5, atol=1e-7)
    assert text == "Done: run 1, 3 map layer(s) for 'z-series'."
    assert results == [res] and session.result_image == "z-series"
    maps = result_layers(viewer, source_image="z-series")
    assert [lyr.data.shape for lyr in maps] == [(N_PLANES, 1, *SHAPE)] * 3
    view = spectra[-1]
    assert isinstance(view, SpectraView) and view.result is res and view.title is None
    assert view.colors == session.result_colors and len(view.colors) == 3
    assert session.summary_text().startswith("Random NNMF · 3 components · hals/numpy")
    assert session.result_can_seed

    assert session.rows_from_result() == 3
    assert [(r.name, r.source.kind, r.source.component) for r in session.rows] == \
        [(n, "previous-result", n) for n in res.component_names]
    # started from the previous fit itself, the seeded fit can only improve
    _run(session, {"mode": "seeded-nmf", **FAST})
    assert session.result.reconstruction_err <= res.reconstruction_err * (1 + 1e-5)
    assert len(result_layers(viewer, source_image="z-series")) == 3  # replaced


def test_flags_of_the_rows_come_back_from_the_result_config(viewer, session):
    session.update_rows([
        RowSettings("flat bg", "#777777", SourceChoice("flat", level=0.1), background=True,
                    locked=True),
        RowSettings("lipid", "#E69F00", SourceChoice("gaussian", center=2850, width=30,
                                                     amplitude=1.0), use_subtracted=False),
    ])
    _run(session, {"mode": "nnls", "solver": "auto", "backend": "auto"})
    assert session.rows_from_result() == 2
    assert [(r.name, r.color, r.background, r.locked, r.use_subtracted)
            for r in session.rows] == [("flat bg", "#777777", True, True, True),
                                       ("lipid", "#E69F00", False, False, False)]


def test_signed_results_cannot_seed(viewer, session):
    with pytest.raises(Refusal, match="no result yet") as info:
        session.rows_from_result()
    assert info.value.kind == "info"
    _run(session, {"mode": "pca", "n_components": 2})
    assert not session.result_can_seed
    with pytest.raises(Refusal, match="PCA loadings and scores are signed") as info:
        session.rows_from_result()
    assert info.value.kind == "warning"
    # nor be a shared basis
    session.set_series_choice("plane")
    with pytest.raises(ValueError, match="PCA loadings are signed, so they cannot be a shared"):
        session.prepare({"mode": "pca", "n_components": 2})


def test_per_plane_spectra_follow_the_slider(viewer, session, zs):
    spectra = _record(session.events.spectra)
    session.set_series_choice("per-plane")
    viewer.dims.set_current_step(0, 1)
    request, text = _run(session, {"mode": "nmf", "n_components": 3, **FAST})
    assert request.series.reference == 1
    assert text == "Done: run 1, 3 map layer(s) for 'z-series' (4 planes, per plane)."
    cfg = AnalysisConfig(mode="nmf", n_components=3, **FAST)
    expected = unmix_series(zs.stack, cfg, strategy="per-slice", series_axis=0,
                            spectral_axis=1, reference=1, spectral_values=zs.spectral_axis)
    sr = session.series_result
    np.testing.assert_allclose(sr.H, expected.H, rtol=1e-5, atol=1e-7)
    # the session's result is the whole series as one result
    assert session.result.W.shape == (N_PLANES * SHAPE[0] * SHAPE[1], 3)
    np.testing.assert_allclose(session.result.arrays["plane_H"], expected.H, rtol=1e-5)
    assert spectra[-1].suffix == " · plane 1 of 0-3 (follows the slider)"
    np.testing.assert_allclose(spectra[-1].result.H, expected.H[1], rtol=1e-5)
    for z in (3, 0):
        viewer.dims.set_current_step(0, z)
        assert f"plane {z} of 0-3" in spectra[-1].suffix
        np.testing.assert_allclose(spectra[-1].result.H, expected.H[z], rtol=1e-5)
    n = len(spectra)
    viewer.dims.set_current_step(1, 5)  # another axis: the same plane, nothing redrawn
    assert len(spectra) == n
    assert session.summary_text().startswith("Per plane · Random NNMF · 3 components")


def test_a_shared_basis_shows_the_basis_on_every_plane(viewer, session, zs):
    spectra = _record(session.events.spectra)
    session.set_series_choice("plane")
    viewer.dims.set_current_step(0, 2)
    _run(session, {"mode": "nmf", "n_components": 3, **FAST})
    sr = session.series_result
    assert sr.shared_basis and sr.summary.basis.plane == 2
    assert spectra[-1].title == "Shared basis, fitted on plane 2"
    np.testing.assert_allclose(spectra[-1].result.H, sr.H)
    n = len(spectra)
    viewer.dims.set_current_step(0, 0)  # the basis is the same on every plane
    assert len(spectra) == n
    assert session.summary_text().startswith("Shared basis · 3 components · 4 planes")


# -- modes from the core's table ---------------------------------------------------------
@pytest.fixture
def toy_mode():
    def run(data, config, seeds, callback):  # pragma: no cover - not run here
        raise NotImplementedError

    spec = register_mode(ModeSpec("toy-seeded", "Toy seeded", "?", run,
                                  options=frozenset({"components"}), seeded=True))
    yield spec
    unregister_mode(spec.name)
    assert spec.name not in MODES


def test_a_registered_seeded_mode_needs_rows(session, toy_mode):
    with pytest.raises(ValueError, match="Toy seeded needs components"):
        session.prepare({"mode": "toy-seeded"})
    session.update_rows([RowSettings("a", "#E69F00", SourceChoice("flat", level=1.0))])
    request = session.prepare({"mode": "toy-seeded"})
    assert request.config.component_names == ["a"] and request.colors == ["#E69F00"]
    assert request.running_text() == "Running Toy seeded on 'z-series' …"
