"""A dock setup with Shapes ROIs over a z / t series reruns in the CLI as the dock runs it.

The dock's setup of a joint fit (what "Save setup" writes, and a joint run's
config.json) holds the ROIs of a 2-D Shapes layer over a ``(Z, C, Y, X)`` image as
masks of the whole series ``(Z, Y, X)``.  ``napari-unmix run --config SETUP
--strategy shared-basis --reference N`` (or ``per-slice``) passed them on unchanged and
every plane's fit refused them on shape; the CLI now puts them on the plane(s) fitted
with the dock's rule (``core.series.seeds_for_strategy``), so it gives the maps and
spectra of the dock's own series run of that setup.  No Qt: the dock's session model on
a ``ViewerModel``.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

napari = pytest.importorskip("napari")

from napari.components import ViewerModel  # noqa: E402

from napari_unmix._napari.sample_data import sample_layer_data  # noqa: E402
from napari_unmix._napari.session import UnmixSession  # noqa: E402
from napari_unmix.cli import main  # noqa: E402
from napari_unmix.core.series import SeriesResult  # noqa: E402
from napari_unmix.core.synthetic import make_crs_sample_4d  # noqa: E402
from napari_unmix.io import read_result_bundle  # noqa: E402

N_PLANES, SHAPE, N_CHANNELS = 3, (12, 12), 10
KW = {"mode": "seeded-nmf", "solver": "hals", "backend": "numpy", "max_iter": 50,
      "tol": 1e-3, "random_state": 0}


@pytest.fixture
def session():
    zs = make_crs_sample_4d(n_planes=N_PLANES, shape=SHAPE, n_channels=N_CHANNELS,
                            random_state=0)
    viewer = ViewerModel()
    data, kwargs, _ = sample_layer_data(zs, "z-series")[0]
    viewer.add_image(data, **kwargs)
    viewer.add_shapes([np.array([[1.0, 1], [1, 4], [4, 4], [4, 1]]),
                       np.array([[7.0, 7], [7, 11], [11, 11], [11, 7]])],
                      shape_type="rectangle", name="rois")   # 2-D: on every plane
    s = UnmixSession(viewer)
    s.set_image("z-series")
    assert s.rows_from_layer("rois") == 2
    yield s, zs
    s.close()


@pytest.mark.parametrize("choice, flags", [
    ("plane", ["--strategy", "shared-basis", "--reference", "1"]),
    ("per-plane", ["--strategy", "per-slice"]),
])
def test_the_cli_rerun_of_a_dock_setup_is_the_dock_s_series_run(session, tmp_path, choice,
                                                                flags):
    s, zs = session
    setup = s.prepare(dict(KW)).config            # the joint setup, as "Save setup" has it
    assert [c.h_source.mask.shape for c in setup.components] == [(N_PLANES, *SHAPE)] * 2
    path = setup.save(tmp_path / "setup.json")
    s.set_series_choice(choice)
    s.set_plane(1)
    request = s.prepare(dict(KW))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dock = request.func(callback=None)
    np.save(tmp_path / "stack.npy", zs.stack)
    rc = main(["run", str(tmp_path / "stack.npy"), "--spectral-axis", "1", "--config",
               str(path), *flags, "--out", str(tmp_path / "cli"), "--quiet", "--no-progress"])
    assert rc == 0
    cli = SeriesResult.from_result(read_result_bundle(tmp_path / "cli").result,
                                   (N_PLANES, *SHAPE))
    assert cli.strategy == dock.strategy
    np.testing.assert_allclose(cli.maps, dock.maps, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(cli.H, dock.H, rtol=1e-6, atol=1e-9)
    assert cli.component_names == dock.component_names == ["shape 1", "shape 2"]
