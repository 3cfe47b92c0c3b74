"""Dask input through run_analysis (every mode) and on a dask.distributed cluster; the
core without dask."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

da = pytest.importorskip("dask.array")

import napari_unmix.core as uc  # noqa: E402


def scene(seed=0, shape=(40, 48), m=16, k=4, noise=0.02):
    rng = np.random.default_rng(seed)
    x = np.linspace(0, 1, m)
    H = np.stack([np.exp(-0.5 * ((x - c) / 0.12) ** 2) for c in np.linspace(0.1, 0.9, k)])
    W = rng.gamma(1.0, 1.0, size=(shape[0] * shape[1], k))
    X = np.abs(W @ H + noise * rng.standard_normal((W.shape[0], m)))
    return X.T.reshape(m, *shape).astype(np.float32), H.astype(np.float32)


#: bands of whole image rows (C order), and tiles of 12 x 16 px (a 4 x 3 grid with a
#: short last row of tiles), which are read tile by tile (core.pixel_layout)
CHUNKS = {"bands": (8, 10, 48), "tiles": (8, 12, 16)}


@pytest.fixture(params=sorted(CHUNKS))
def data(request):
    stack, H = scene()
    return stack, da.from_array(stack, chunks=CHUNKS[request.param]), H


def _config(mode, H):
    if mode in ("nnls", "seeded-nmf"):
        return uc.AnalysisConfig(mode=mode, components=[
            uc.ComponentSpec(name=n, h_source=uc.Spectrum(H[j])) for j, n in enumerate("abcd")],
            random_state=0)
    return uc.AnalysisConfig(mode=mode, n_components=4, random_state=0)


@pytest.mark.parametrize("mode", ["pca", "nmf", "seeded-nmf", "nnls"])
def test_run_analysis_every_mode(data, mode):
    stack, lazy, H = data
    cfg = _config(mode, H)
    ref = uc.run_analysis(stack, cfg)
    res = uc.run_analysis(lazy, cfg)
    assert res.is_lazy and res.mode == ref.mode
    assert res.component_names == ref.component_names
    assert res.config.to_dict() == ref.config.to_dict()
    # nnls: W is bit-identical; its squared error is summed over other groups of pixels
    tol = {"pca": 1e-6, "nnls": 1e-9, "seeded-nmf": 1e-5, "nmf": 5e-3}[mode]
    assert res.reconstruction_err == pytest.approx(ref.reconstruction_err, rel=tol)
    assert res.summary.relative_error == pytest.approx(ref.summary.relative_error, rel=tol)
    maps = res.maps((40, 48))
    assert maps.shape == (4, 40, 48)
    if mode == "nnls":
        assert np.array_equal(np.asarray(maps), ref.maps((40, 48)))


def test_roi_seeds_read_only_their_pixels(data):
    stack, lazy, _ = data
    masks = np.zeros((4, 40, 48), dtype=bool)
    for j in range(4):
        masks[j, 10 * j:10 * (j + 1), :10] = True
    cfg = uc.AnalysisConfig(mode="seeded-nmf", components=[
        uc.ComponentSpec(name=f"r{j}", h_source=uc.RoiMask(masks[j])) for j in range(4)])
    # bands over mixtures: seeds alike and spectra that move, said in warnings
    with pytest.warns(UserWarning):
        ref = uc.run_analysis(stack, cfg)
    with pytest.warns(UserWarning):
        res = uc.run_analysis(lazy, cfg)
    assert np.array_equal(res.arrays["H0"], ref.arrays["H0"])   # the ROI means, exactly
    # the start's maps: the NNLS fit to the seeds (in memory: floored unit-maximum maps)
    assert res.summary.init["W0"].startswith("nnls")
    assert res.reconstruction_err == pytest.approx(ref.reconstruction_err, rel=0.02)


def test_label_and_pixel_seeds_find_their_pixels_in_tiles():
    stack, H = scene()
    lazy = da.from_array(stack, chunks=CHUNKS["tiles"])
    labels = np.zeros((40, 48), dtype=np.int32)
    labels[30:38, 35:45] = 1            # a region over two tiles of the last row
    labels[5:9, 14:19] = 2              # one across a tile corner
    pixels = np.array([[39, 47], [0, 0], [13, 17]])
    cfg = uc.AnalysisConfig(mode="nnls", components=[
        uc.ComponentSpec(name="one", h_source=uc.RoiLabel(1)),
        uc.ComponentSpec(name="two", h_source=uc.RoiLabel(2)),
        uc.ComponentSpec(name="px", h_source=uc.SeedPixels(pixels=pixels)),
        uc.ComponentSpec(name="flat", h_source=uc.SeedPixels(
            pixels=np.ravel_multi_index(tuple(pixels[:2].T), (40, 48))))])
    ref = uc.run_analysis(stack, cfg, labels=labels)
    res = uc.run_analysis(lazy, cfg, labels=labels)
    X, _ = uc.stack_to_matrix(stack, 0)
    flat = labels.reshape(-1)
    assert np.allclose(res.H[0], X[flat == 1].mean(axis=0), rtol=1e-6)
    assert np.allclose(res.H[1], X[flat == 2].mean(axis=0), rtol=1e-6)
    assert np.allclose(res.H, ref.H, rtol=1e-6)
    assert np.array_equal(np.asarray(res.W), ref.W)


@pytest.mark.parametrize("chunks", [(1, 40, 48), (5, 40, 48), (1, 40, 16)],
                         ids=["pages", "channel-groups", "column-tiles"])
@pytest.mark.parametrize("mode", ["pca", "nnls"])
def test_stack_stored_per_channel_is_not_read_in_one_block(chunks, mode):
    # a TIFF read one page per channel, a zarr store of whole-plane chunks: merging the
    # spectral chunks made one block of the whole stack (the lazy run held it all at
    # once, several times over); the blocks are now cut to dask's array.chunk-size
    import dask

    from napari_unmix.core.chunked import block_pixel_matrix

    stack, H = scene()
    lazy = da.from_array(stack, chunks=chunks)
    cfg = _config(mode, H)
    ref = uc.run_analysis(stack, cfg)
    limit = 16 * 48 * 4 * 16   # 16 channels x 4 bytes: 16 image rows of 48 pixels
    with dask.config.set({"array.chunk-size": limit}):
        X, layout = block_pixel_matrix(lazy, 0)
        assert max(X.chunks[0]) * X.shape[1] * X.dtype.itemsize <= limit
        assert X.numblocks[0] >= 3
        res = uc.run_analysis(lazy, cfg)
    assert res.summary.extra["chunked"]["n_blocks"] >= 3
    np.testing.assert_allclose(np.asarray(res.W), np.asarray(ref.W),
                               rtol=1e-5, atol=1e-6 * float(np.abs(ref.W).max()))


def test_saved_lazy_result_loads_in_memory(data, tmp_path):
    _, lazy, H = data
    res = uc.run_analysis(lazy, _config("nnls", H))
    path = res.save(tmp_path / "run.npz")
    back = uc.UnmixResult.load(path)
    assert not back.is_lazy and np.array_equal(back.W, np.asarray(res.W))


def test_preprocessing_refused_for_dask(data):
    _, lazy, H = data
    cfg = _config("nnls", H).replace(preprocessing=uc.Preprocessing(smoothing="savgol"))
    with pytest.raises(ValueError, match="in memory"):
        uc.run_analysis(lazy, cfg)


def test_local_cluster_gives_the_threaded_numbers(data):
    distributed = pytest.importorskip("distributed")
    _, lazy, H = data
    X, _ = uc.stack_to_matrix(np.asarray(lazy), 0)
    Xd = da.from_array(X, chunks=(320, 16))
    W0 = np.random.default_rng(3).random((X.shape[0], 4)).astype(np.float32)
    threaded = (uc.nnls(Xd, H), uc.nmf(Xd, 4, W0=W0, H0=H + 0.1, anchor=1.0), uc.pca(Xd, 3))
    seen = []
    with distributed.LocalCluster(processes=False, n_workers=2, threads_per_worker=1,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster):
        on_cluster = (uc.nnls(Xd, H, callback=lambda i: seen.append(i.iteration)),
                      uc.nmf(Xd, 4, W0=W0, H0=H + 0.1, anchor=1.0), uc.pca(Xd, 3))
        assert on_cluster[0].summary.extra["chunked"]["scheduler"] == "distributed"
        with pytest.raises(uc.Cancelled):
            uc.nnls(Xd, H, callback=lambda info: info.iteration < 2)
        computed = [np.asarray(r.W) for r in on_cluster]
    assert sorted(seen) == list(range(1, Xd.numblocks[0] + 1))
    for a, b, w in zip(threaded, on_cluster, computed, strict=True):
        assert np.array_equal(w, np.asarray(a.W))
        assert np.array_equal(b.H, a.H)
        assert b.reconstruction_err == a.reconstruction_err
        assert b.n_iter == a.n_iter


def test_a_run_on_a_cluster_sends_each_key_one_way(caplog):
    # random NNMF of a lazy stack on a cluster: the noise estimate of its stopping rule
    # computed a sample of X with dask's optimiser while the fit's graphs (sent
    # unoptimised) were waiting, so the scheduler saw one key as two tasks
    # ("Detected different run_spec ... can cause failures and deadlocks")
    distributed = pytest.importorskip("distributed")
    stack, _ = scene()
    lazy = da.from_array(stack, chunks=(1, 40, 48))   # a TIFF read page by page
    with caplog.at_level("WARNING", logger="distributed.scheduler"), \
            distributed.LocalCluster(processes=False, n_workers=1, threads_per_worker=2,
                                     dashboard_address=None) as cluster, \
            distributed.Client(cluster):
        for cfg in (uc.AnalysisConfig(mode="nmf", n_components=3, max_iter=30,
                                      random_state=0),
                    uc.AnalysisConfig(mode="pca", n_components=2)):
            uc.run_analysis(lazy, cfg)
    assert not [r for r in caplog.records if "run_spec" in r.getMessage()]


def test_core_runs_without_dask():
    code = ("import sys; sys.modules['dask'] = None; sys.modules['distributed'] = None\n"
            "import numpy as np, napari_unmix.core as uc\n"
            "X = np.random.default_rng(0).random((200, 8)).astype(np.float32)\n"
            "uc.nnls(X, X[:2]); uc.nmf(X, 2, random_state=0); uc.pca(X, 2)\n"
            "r = uc.run_analysis(X.T.reshape(8, 10, 20), uc.AnalysisConfig(mode='pca', "
            "n_components=2))\n"
            "assert not r.is_lazy\n")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("fit", ["pca", "nmf", "nnls"])
def test_unknown_chunk_sizes_are_refused_with_what_to_call(fit):
    # boolean indexing leaves NaN chunk sizes: PCA raised LinAlgError, NNMF and NNLS
    # numpy's messages about floats

    X = np.random.default_rng(0).random((400, 8)).astype(np.float32)
    Xd = da.from_array(X, chunks=(100, 8))
    Xu = Xd[Xd[:, 0] > 0.3]
    call = {"pca": lambda: uc.pca(Xu, 2), "nmf": lambda: uc.nmf(Xu, 2),
            "nnls": lambda: uc.nnls(Xu, X[:2])}[fit]
    with pytest.raises(ValueError, match=r"chunk sizes are unknown.*compute_chunk_sizes\(\)"):
        call()
    known = Xu.compute_chunk_sizes()       # what the message says to do, then it runs
    assert {"pca": lambda: uc.pca(known, 2), "nmf": lambda: uc.nmf(known, 2, max_iter=500),
            "nnls": lambda: uc.nnls(known, X[:2])}[fit]().W.shape[1] == 2
