"""A saved setup's series choice (``AnalysisConfig.series``): written only when set, read
back exactly, and a bad hand-edited block refused with a message naming its field.

The keys and values are those of a series result's ``params["series"]``, so the same
reader (``napari-unmix run --config``) takes both.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from napari_unmix.cli import main
from napari_unmix.core.config import AnalysisConfig
from napari_unmix.core.series_choice import SeriesChoice
from napari_unmix.core.synthetic import make_crs_sample_4d


def _cfg(**kw):
    return AnalysisConfig(mode="nmf", n_components=2, solver="hals", backend="numpy",
                          random_state=0, **kw)


def test_the_series_choice_round_trips_and_is_absent_when_unset(tmp_path):
    choice = SeriesChoice("shared-basis", 0, "pooled")
    cfg = _cfg(series=choice)
    back = AnalysisConfig.load(cfg.save(tmp_path / "setup.json"))
    assert back.series == choice
    assert json.loads((tmp_path / "setup.json").read_text())["series"] == {
        "strategy": "shared-basis", "series_axis": 0, "reference": "pooled", "match": "auto"}
    plain = _cfg()
    assert "series" not in plain.to_dict()
    assert cfg.replace(series=None).to_json() == plain.to_json()


def test_a_series_result_s_params_are_a_series_choice():
    zs = make_crs_sample_4d(n_planes=2, shape=(8, 8), n_channels=8, random_state=0)
    from napari_unmix.core.series import unmix_series

    sr = unmix_series(zs.stack, _cfg(max_iter=300, tol=1e-3), strategy="per-slice",
                      series_axis=0, spectral_axis=1, reference=1)
    params = sr.as_result().params["series"]
    choice = SeriesChoice.from_dict({k: params[k] for k in
                                     ("strategy", "series_axis", "reference", "match")})
    assert choice == SeriesChoice("per-slice", 0, 1, "auto")


@pytest.mark.parametrize("block, field", [
    ({"strategy": "per-plane", "series_axis": 0, "reference": 1}, "series.strategy"),
    ({"strategy": "per-slice", "series_axis": -1, "reference": 1}, "series.series_axis"),
    ({"strategy": "per-slice", "series_axis": 0.5, "reference": 1}, "series.series_axis"),
    ({"strategy": "per-slice", "series_axis": 0, "reference": "all"}, "series.reference"),
    ({"strategy": "per-slice", "series_axis": 0, "reference": "pooled"}, "series.reference"),
    ({"strategy": "per-slice", "series_axis": 0, "reference": 0, "match": "best"},
     "series.match"),
    ({"strategy": "per-slice", "series_axis": 0}, "series must be an object"),
    ({"strategy": "per-slice", "series_axis": 0, "reference": 0, "plane": 2},
     "series must be an object"),
    ("per-slice", "series must be an object"),
])
def test_a_bad_hand_edited_series_block_is_refused_naming_the_field(tmp_path, capsys, block,
                                                                     field):
    doc = _cfg().to_dict()
    doc["series"] = block
    path = tmp_path / "setup.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match=f"setup.json: {field}"):
        AnalysisConfig.load(path)
    np.save(tmp_path / "stack.npy", np.ones((2, 4, 3, 3)))
    rc = main(["run", str(tmp_path / "stack.npy"), "--spectral-axis", "1", "--config",
               str(path), "--out", str(tmp_path / "out"), "--quiet", "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and field in err and not (tmp_path / "out").exists(), err
