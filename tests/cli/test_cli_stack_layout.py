"""The result folder of a run on a (Z, C, Y, X) stack opens in napari on the stack's axes.

napari opened its maps as (Z, Y, X) layers, which napari lines up with the stack
layer's last axes: their Z axis lay on its channel axis.  The run now records the
stack's spectral axis (``result.json`` ``stack_layout``), and the reader keeps a
length-1 axis there, as the dock's own maps do.
"""

from __future__ import annotations

import numpy as np
import pytest

from napari_unmix.cli import main
from napari_unmix.core.synthetic import make_crs_sample_4d
from napari_unmix.io import StackLayout, read_result_bundle, write_stack_tiff


def test_a_z_stack_run_records_its_spectral_axis_and_opens_on_the_stack(capsys, tmp_path):
    s4 = make_crs_sample_4d(n_planes=3, shape=(16, 18), n_channels=12, random_state=2)
    write_stack_tiff(tmp_path / "z.tif", s4.stack, axes="ZCYX", spectral_values=s4.spectral_axis,
                     spectral_unit="cm^-1")
    code = main(["run", str(tmp_path / "z.tif"), "--mode", "nmf", "-k", "2", "--max-iter", "5",
                 "--out", str(tmp_path / "o")])
    assert code == 0, capsys.readouterr().err
    assert read_result_bundle(tmp_path / "o").layout == StackLayout(spectral_axis=1)
    pytest.importorskip("napari")
    from napari_unmix._napari.reader import read_layers

    (stack, image_kw, _), = read_layers(str(tmp_path / "z.tif"))
    maps = read_layers(str(tmp_path / "o"))
    assert len(maps) == 2
    res = read_result_bundle(tmp_path / "o").result
    for i, (data, kwargs, _) in enumerate(maps):
        assert data.shape == (3, 1, 16, 18)
        assert kwargs["scale"] == (1.0, 12.0, 1.0, 1.0)       # one pixel over the channels
        assert kwargs["translate"] == (0.0, 5.5, 0.0, 0.0)
        assert kwargs["axis_labels"] == image_kw["axis_labels"]
        np.testing.assert_allclose(data[2, 0], res.W[:, i].reshape(3, 16, 18)[2])
