"""A hand-edited config with a value of the wrong type is refused, naming the key and
the file; nothing is read as the opposite of what it says.

``bool("false")`` is True: ``"locked": "false"`` locked the component and
``"background": "no"`` made it a background component; ``"components": {}`` ran with
no components at all; ``"mode": ["nnls"]`` failed with ``unhashable type: 'list'``.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from napari_unmix.core import AnalysisConfig, ComponentSpec, Spectrum


@pytest.fixture
def saved(tmp_path):
    cfg = AnalysisConfig(mode="nnls", components=[
        ComponentSpec("lipid", h_source=Spectrum(np.linspace(0.1, 1.0, 8))),
        ComponentSpec("water", h_source=Spectrum(np.linspace(1.0, 0.1, 8)))])
    return json.loads(cfg.to_json()), tmp_path / "config.json"


@pytest.mark.parametrize(("key", "value"), [
    ("locked", "false"), ("locked", 1), ("background", "no"), ("use_subtracted", "false"),
    ("color", 5)])
def test_component_field_of_the_wrong_type_is_refused(saved, key, value):
    doc, path = saved
    doc["components"][0][key] = value
    path.write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(ValueError) as err:
        AnalysisConfig.load(path)
    msg = str(err.value)
    assert str(path) in msg and key in msg and "'lipid'" in msg


@pytest.mark.parametrize(("key", "value", "named"), [
    ("components", {}, "components"), ("components", 0, "components"),
    ("mode", ["nnls"], "mode"), ("negative", ["raise"], "negative")])
def test_config_field_of_the_wrong_type_is_refused(saved, key, value, named):
    doc, path = saved
    doc[key] = value
    path.write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(ValueError, match=named) as err:
        AnalysisConfig.load(path)
    assert str(path) in str(err.value)


def test_boolean_flags_still_round_trip(saved):
    doc, path = saved
    doc["components"][0].update(locked=True, background=False, use_subtracted=False,
                                color="#ff00ff")
    path.write_text(json.dumps(doc), encoding="utf-8")
    c = AnalysisConfig.load(path).components[0]
    assert (c.locked, c.background, c.use_subtracted, c.color) == (True, False, False,
                                                                   "#ff00ff")
    assert ComponentSpec("x", h_source=Spectrum(np.ones(3)), locked=np.bool_(True)).locked


def _strict_json(text):
    """JSON as other tools read it: no NaN / Infinity constants."""
    def refuse(name):
        raise ValueError(f"non-standard JSON constant {name}")
    return json.loads(text, parse_constant=refuse)


def test_locked_anchor_is_written_as_standard_json(tmp_path):
    """anchor=inf (locked: the CLI's --anchor inf) was written as ``Infinity``, which
    JavaScript's JSON.parse refuses and jq reads as 1.8e308; it is "inf" now and reads
    back as inf, and files written before still load."""
    cfg = AnalysisConfig(mode="seeded-nmf", anchor=float("inf"), components=[
        ComponentSpec("lipid", h_source=Spectrum(np.linspace(0.1, 1.0, 8)),
                      anchor=float("inf")),
        ComponentSpec("water", h_source=Spectrum(np.linspace(1.0, 0.1, 8)), anchor=0.5)])
    path = cfg.save(tmp_path / "config.json")
    doc = _strict_json(path.read_text(encoding="utf-8"))
    assert doc["anchor"] == "inf" and doc["components"][0]["anchor"] == "inf"
    back = AnalysisConfig.load(path)
    assert back.anchor == float("inf") and back.components[0].anchor == float("inf")
    assert back.components[1].anchor == 0.5
    assert back.anchor_strengths() == cfg.anchor_strengths()
    old = path.read_text(encoding="utf-8").replace('"inf"', "Infinity")
    (tmp_path / "old.json").write_text(old, encoding="utf-8")
    assert AnalysisConfig.load(tmp_path / "old.json").anchor == float("inf")
    with pytest.raises(ValueError, match="anchor"):
        AnalysisConfig(anchor="inf")   # the constructor takes numbers only


@pytest.mark.parametrize(("changes", "named"), [
    ({"smoothing": "savgol", "window_length": 7.9}, "window_length"),
    ({"smoothing": "savgol", "window_length": "7"}, "window_length"),
    ({"smoothing": "savgol", "window_length": 6}, "window_length"),
    ({"smoothing": "savgol", "polyorder": 7}, "polyorder"),
    ({"smoothing": "gaussian", "sigma": "1"}, "sigma"),
    ({"smoothing": "gaussian", "sigma": 0}, "sigma"),
    ({"smoothing": ["savgol"]}, "smoothing"),
    ({"window": 7}, "window")])
def test_preprocessing_field_of_the_wrong_type_is_refused(saved, changes, named):
    """window_length 7.9 was run as 7 (int() truncates) and "7" was taken; a misspelt
    key failed with 'Preprocessing.__init__() got an unexpected keyword argument'."""
    doc, path = saved
    doc["preprocessing"].update(changes)
    path.write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(ValueError, match=named) as err:
        AnalysisConfig.load(path)
    assert str(path) in str(err.value) and "preprocessing" in str(err.value).lower()


def test_preprocessing_whole_floats_from_json_are_taken(saved):
    doc, path = saved
    doc["preprocessing"].update(smoothing="savgol", window_length=9.0, polyorder=3.0)
    path.write_text(json.dumps(doc), encoding="utf-8")
    pre = AnalysisConfig.load(path).preprocessing
    assert (pre.window_length, pre.polyorder) == (9, 3)
    assert isinstance(pre.window_length, int)


@pytest.mark.parametrize("version", [0, -1])
def test_a_format_version_below_1_is_refused(version):
    # format_version 0 or negative was accepted as if it were a version of the format
    d = AnalysisConfig(mode="nmf", n_components=2).to_dict()
    d["format_version"] = version
    with pytest.raises(ValueError, match=rf"format_version must be a whole number from 1 .*"
                                         rf"got {version}"):
        AnalysisConfig.from_dict(d)
