"""UnmixResult: exact save / load for every mode, pickling, atomic writes."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

from napari_unmix.core import UnmixResult, nmf, nnls, pca


def _run(mode, problem):
    X = problem.X
    if mode == "pca":
        return pca(X, 3)
    if mode == "nmf":
        return nmf(X, 3, solver="cd", backend="sklearn", random_state=0)
    if mode == "seeded-nmf":
        # a seed that is off in shape: scikit-learn's cd rule measures progress
        # relative to the start, so a seed already at the optimum never "converges"
        return nmf(X, 3, H0=problem.H + 0.3, solver="cd", backend="sklearn", random_state=0)
    if mode == "nnls":
        return nnls(X, problem.H, backend="scipy")
    raise AssertionError(mode)


MODES = ["pca", "nmf", "seeded-nmf", "nnls"]


def assert_same_result(a: UnmixResult, b: UnmixResult):
    for name in ("W", "H"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and x.shape == y.shape
        assert x.tobytes() == y.tobytes()  # bit-identical, NaN payloads included
    if a.explained_variance_ratio is None:
        assert b.explained_variance_ratio is None
    else:
        assert a.explained_variance_ratio.tobytes() == b.explained_variance_ratio.tobytes()
    assert sorted(a.arrays) == sorted(b.arrays)
    for name in a.arrays:
        assert a.arrays[name].dtype == b.arrays[name].dtype
        assert a.arrays[name].tobytes() == b.arrays[name].tobytes()
    for attr in ("mode", "backend", "device", "n_iter", "reconstruction_err", "summary",
                 "params", "component_names", "spectral_unit"):
        assert getattr(a, attr) == getattr(b, attr), attr
    if a.spectral_values is None:
        assert b.spectral_values is None
    else:
        np.testing.assert_array_equal(a.spectral_values, b.spectral_values)


@pytest.mark.parametrize("mode", MODES)
def test_save_load_round_trip(tmp_path, noisy, mode):
    res = _run(mode, noisy)
    assert res.mode == mode
    path = res.save(tmp_path / "result.npz")
    assert path == tmp_path / "result.npz"
    back = UnmixResult.load(path)
    assert_same_result(res, back)
    # what a user reads to judge or repeat the fit survives
    assert back.params["mode"] == mode
    if mode != "pca":
        assert back.summary["hit_max_iter"] is False


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_round_trip_keeps_dtype_and_metadata(tmp_path, low_rank, spectral_axis, dtype):
    res = nnls(low_rank.X.astype(dtype), low_rank.H, backend="scipy")
    res.component_names = ["lipid", "protein", "water"]
    res.spectral_values = 2800.0 + 200.0 * spectral_axis
    res.spectral_unit = "cm^-1"
    back = UnmixResult.load(res.save(tmp_path / "r.npz"))
    assert back.W.dtype == dtype
    assert_same_result(res, back)


def test_round_trip_nan_and_float_edge_values(tmp_path):
    W = np.array([[np.nan, 1e-323], [np.finfo(float).max, -0.0]])
    res = UnmixResult(W=W, H=np.eye(2), mode="nnls", backend="scipy", device="cpu", n_iter=0,
                      reconstruction_err=float("nan"),
                      summary={"capped_pixels": [0], "x": 0.1 + 0.2}, params={"tol": 1e-4})
    back = UnmixResult.load(res.save(tmp_path / "edge.npz"))
    assert back.W.tobytes() == W.tobytes()
    assert np.isnan(back.reconstruction_err)
    assert back.summary["x"] == 0.1 + 0.2  # floats survive JSON exactly (repr round trip)


def test_seeded_result_keeps_seeds(tmp_path, noisy):
    res = _run("seeded-nmf", noisy)
    back = UnmixResult.load(res.save(tmp_path / "s.npz"))
    np.testing.assert_array_equal(back.arrays["H0"], (noisy.H + 0.3).astype(noisy.X.dtype))
    assert back.arrays["W0"].shape == (noisy.n_pixels, 3)


def test_suffix_added(tmp_path, low_rank):
    res = _run("nnls", low_rank)
    assert res.save(tmp_path / "res").name == "res.npz"
    assert res.save(tmp_path / "res.v2").name == "res.v2.npz"
    assert UnmixResult.load(tmp_path / "res.npz").mode == "nnls"


@pytest.mark.parametrize("mode", MODES)
def test_pickle(noisy, mode):
    res = _run(mode, noisy)
    assert_same_result(res, pickle.loads(pickle.dumps(res)))


def test_summary_and_params_are_plain_json(noisy):
    # numpy scalars and tuples are converted at construction, so what is in memory
    # equals what comes back from a file
    res = UnmixResult(W=np.ones((2, 1)), H=np.ones((1, 3)), mode="nmf", backend="x",
                      device="cpu", n_iter=np.int64(3), reconstruction_err=np.float32(0.5),
                      summary={"a": np.float64(1.5), "b": (1, 2), "c": np.arange(2)},
                      params={"k": np.int32(1)})
    assert res.summary == {"a": 1.5, "b": [1, 2], "c": [0, 1]}
    assert type(res.params["k"]) is int
    assert json.loads(json.dumps(res.summary.to_dict())) == res.summary.to_dict()
    assert type(res.summary["a"]) is float and res.summary["b"] == [1, 2]
    with pytest.raises(TypeError, match="Cannot store"):
        UnmixResult(W=np.ones((2, 1)), H=np.ones((1, 3)), mode="nmf", backend="x",
                    device="cpu", n_iter=0, reconstruction_err=0.0, summary={"f": object()})


def test_shape_checks():
    with pytest.raises(ValueError, match="not \\(n_pixels, k\\) and \\(k, n_channels\\)"):
        UnmixResult(W=np.ones((4, 2)), H=np.ones((3, 5)), mode="nmf", backend="x",
                    device="cpu", n_iter=0, reconstruction_err=0.0)
    with pytest.raises(ValueError, match="component names"):
        UnmixResult(W=np.ones((4, 2)), H=np.ones((2, 5)), mode="nmf", backend="x",
                    device="cpu", n_iter=0, reconstruction_err=0.0, component_names=["a"])
    with pytest.raises(ValueError, match="spectral_values"):
        UnmixResult(W=np.ones((4, 2)), H=np.ones((2, 5)), mode="nmf", backend="x",
                    device="cpu", n_iter=0, reconstruction_err=0.0, spectral_values=np.ones(4))


def test_default_component_names(noisy):
    assert _run("pca", noisy).component_names == ["PC1", "PC2", "PC3"]
    assert _run("nnls", noisy).component_names == ["C1", "C2", "C3"]


def test_non_result_npz(tmp_path):
    path = tmp_path / "other.npz"
    np.savez(path, W=np.ones((2, 2)))
    with pytest.raises(ValueError, match="not a napari-unmix result file"):
        UnmixResult.load(path)
    np.savez(path, meta=np.array(json.dumps({"format": "something-else"})))
    with pytest.raises(ValueError, match="not a napari-unmix result file"):
        UnmixResult.load(path)


def test_newer_format_version(tmp_path, low_rank):
    res = _run("nnls", low_rank)
    path = res.save(tmp_path / "r.npz")
    with np.load(path) as data:
        payload = {k: data[k] for k in data.files}
    meta = json.loads(str(payload["meta"][()]))
    meta["format_version"] = 999
    payload["meta"] = np.array(json.dumps(meta))
    np.savez(path, **payload)
    with pytest.raises(ValueError, match="newer napari-unmix"):
        UnmixResult.load(path)


def test_load_refuses_pickled_objects(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, meta=np.array([{"format": "napari-unmix-result"}], dtype=object))
    with pytest.raises(ValueError, match="allow_pickle"):
        UnmixResult.load(path)


def test_save_is_atomic(tmp_path, low_rank, monkeypatch):
    res = _run("nnls", low_rank)
    path = res.save(tmp_path / "r.npz")
    original = path.read_bytes()

    def failing_savez(fh, **payload):
        fh.write(b"PK\x03\x04 half a zip file")  # a partial write, then a crash
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", failing_savez)
    other = _run("pca", low_rank)
    with pytest.raises(OSError, match="disk full"):
        other.save(path)
    # the old file is intact and no temporary file is left behind
    assert path.read_bytes() == original
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.npz"]
    monkeypatch.undo()
    assert UnmixResult.load(path).mode == "nnls"


def test_save_creates_parent_folders(tmp_path, low_rank):
    path = _run("nnls", low_rank).save(tmp_path / "a" / "b" / "r.npz")
    assert path.exists()


def test_maps_helper(low_rank):
    res = _run("nnls", low_rank)
    maps = res.maps((8, 12))
    assert maps.shape == (3, 8, 12)
    np.testing.assert_array_equal(maps[1].ravel(), res.W[:, 1])


def test_spectral_axis_is_a_deprecated_alias_of_spectral_values():
    res = UnmixResult(W=np.ones((4, 2)), H=np.ones((2, 3)), mode="nmf", backend="x",
                      device="cpu", n_iter=0, reconstruction_err=0.0,
                      spectral_values=np.array([500.0, 510.0, 520.0]))
    with pytest.warns(DeprecationWarning, match="use spectral_values"):
        values = res.spectral_axis
    np.testing.assert_array_equal(values, [500.0, 510.0, 520.0])


def test_typed_summary_and_config_of_an_analysis_survive_a_file(tmp_path):
    from napari_unmix.core import AnalysisConfig, NNLSSummary, nnls, run_analysis
    from napari_unmix.core.summaries import NMFSummary

    X = np.abs(np.random.default_rng(0).normal(size=(40, 6)))
    res = nnls(X, np.eye(6)[:2] + 0.1)
    assert isinstance(res.summary, NNLSSummary) and res.summary.solver == "active-set"
    assert res.summary["solver"] == "active-set" and "solver" in res.summary
    with pytest.raises(KeyError, match="NNLSSummary has no entry 'algorithms'"):
        res.summary["algorithms"]
    assert not hasattr(res.summary, "get")  # typed: no silent default for a misspelt name
    a = run_analysis(X, AnalysisConfig(mode="nmf", n_components=2, random_state=3),
                     spectral_axis=1)
    back = UnmixResult.load(a.save(tmp_path / "a.npz"))
    assert isinstance(back.summary, NMFSummary) and back.summary == a.summary
    assert back.config.n_components == 2 and back.config.random_state == 3
    # an earlier file's NNLS summary ("algorithm") reads into today's field
    old = NNLSSummary.from_dict({"algorithm": "active-set", "n_chunks": 1})
    assert old.solver == "active-set" and old.extra == {}


def test_saving_to_a_folder_is_refused_not_written_beside_it(tmp_path, noisy):
    # before: result.save("out") with a folder "out" wrote "out.npz" next to it, and
    # AnalysisConfig.save("out") ended in os.replace's IsADirectoryError
    from napari_unmix.core import AnalysisConfig

    folder = tmp_path / "out"
    folder.mkdir()
    res = nnls(noisy.X, noisy.H)
    with pytest.raises(IsADirectoryError, match=r"out is a folder; give a file name, such as "
                       r".*out/result\.npz"):
        res.save(folder)
    with pytest.raises(IsADirectoryError, match=r"such as .*out/config\.json"):
        AnalysisConfig(mode="nmf", n_components=2).save(folder)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"] and not any(folder.iterdir())
