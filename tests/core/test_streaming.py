"""The torch data pipeline (issue 11): X resident when it fits, streamed in bounded blocks.

On the CPU there is no device memory to run out of, so the streamed path is forced
with a small ``budget`` and every copy of the data is recorded through the one
transfer helper, ``core.device.to_device``: no copy may exceed its block, and the
streamed run must give the resident run's result bit for bit (the same blocks, the
same operations).  The CUDA streams and pinned buffers themselves run only on a GPU
(``benchmarks/gpu_check.sh``, the ``cuda``-marked tests).
"""

from __future__ import annotations

import numpy as np
import pytest

from napari_unmix.core import device as device_mod
from napari_unmix.core.streaming import (
    STREAM_BLOCK_BYTES,
    DeviceBlocks,
    device_memory_budget,
    plan_blocks,
)

pytestmark = pytest.mark.requires_torch


def _problem(n=6000, m=32, k=3, seed=0):
    rng = np.random.default_rng(seed)
    H = rng.random((k, m)).astype(np.float32) + 0.05
    X = (rng.random((n, k)) @ H + 0.01 * rng.random((n, m))).astype(np.float32)
    W0 = rng.random((n, k)).astype(np.float32) + 0.1
    return X, W0, H


@pytest.fixture
def transfers(monkeypatch):
    """Every array moved by ``to_device``: its bytes, in order."""
    seen = []
    original = device_mod.to_device

    def record(a, device, **kw):
        seen.append(int(a.nbytes) if isinstance(a, np.ndarray) else
                    int(a.element_size() * a.nelement()))
        return original(a, device, **kw)

    monkeypatch.setattr(device_mod, "to_device", record)
    return seen


def test_plan_and_budget():
    assert device_memory_budget("cpu") is None
    resident, blocks = plan_blocks(1000, 256, "cpu")
    assert resident and blocks == [slice(0, 1000)]
    resident, blocks = plan_blocks(1000, 256, "cpu", block_bytes=25600)
    assert resident and len(blocks) == 10
    resident, blocks = plan_blocks(1000, 256, "cpu", budget=40000)
    assert not resident
    assert all((b.stop - b.start) * 256 <= 10000 for b in blocks)   # a quarter of the budget
    assert blocks[-1].stop == 1000
    big = plan_blocks(10**7, 256, "cpu", budget=10**9)[1]
    assert (big[0].stop - big[0].start) * 256 <= STREAM_BLOCK_BYTES


def test_device_blocks_copy_each_block_once_per_pass(transfers):
    X = _problem()[0]
    _, slices = plan_blocks(X.shape[0], X.shape[1] * 4, "cpu", budget=X.nbytes // 8)
    blocks = DeviceBlocks(X, "cpu", slices, resident=False)
    for _ in range(2):
        got = np.concatenate([b.numpy() for _, b in blocks])
        np.testing.assert_array_equal(got, X)
    assert len(transfers) == 2 * len(slices) and max(transfers) <= X.nbytes // 32 + 128
    transfers.clear()
    resident = DeviceBlocks(X, "cpu", slices)
    assert resident.resident and transfers == [X.nbytes]
    list(resident)
    list(resident)
    assert transfers == [X.nbytes]                                # moved once


@pytest.mark.parametrize("solver", ["hals", "mu", "kl"])
def test_streamed_nnmf_stays_within_its_blocks_and_matches_resident(transfers, solver):
    from napari_unmix.core.solvers.hals_torch import fit_hals_torch
    from napari_unmix.core.solvers.kl import fit_kl_torch
    from napari_unmix.core.solvers.mu import fit_mu_torch

    X, W0, H0 = _problem()
    block = 32 * 1024                                  # bytes of X per block
    budget = 4 * block                                 # X (768 kB) does not fit
    fn = {"hals": fit_hals_torch, "mu": fit_mu_torch, "kl": fit_kl_torch}[solver]
    kw = dict(max_iter=12, tol=0.0, track_error_every=4, device="cpu", block_bytes=block)
    if solver == "mu":  # its torch version cuts no blocks of its own on the CPU
        kw.pop("block_bytes")
        budget = X.nbytes // 8
        block = budget // 4
    resident = fn(X, W0, H0, budget=None, **kw)
    assert transfers[0] == X.nbytes
    transfers.clear()
    streamed = fn(X, W0, H0, budget=budget, **kw)
    data = [t for t in transfers if t > 4 * W0.shape[1] * 4 * 50]     # not H, not W
    assert data and max(data) <= block
    assert sum(data) >= (12 + 4) * X.nbytes * 0.99      # every pass reads all of X
    if solver == "mu":
        np.testing.assert_allclose(streamed.W @ streamed.H, resident.W @ resident.H,
                                   rtol=2e-5, atol=1e-6)  # other blocks: rounding only
    else:
        np.testing.assert_array_equal(streamed.W, resident.W)
        np.testing.assert_array_equal(streamed.H, resident.H)
        assert streamed.history == resident.history


def test_active_set_torch_takes_data_on_the_device():
    import torch

    from napari_unmix.core.solvers.active_set import (
        fit_nnls_active_set_numpy,
        fit_nnls_active_set_torch,
    )

    X, _, H = _problem(n=3000)
    on_host = fit_nnls_active_set_torch(X, H, device="cpu")
    resident = fit_nnls_active_set_torch(torch.from_numpy(X), H)
    assert isinstance(resident.W, torch.Tensor) and resident.W.dtype == torch.float32
    np.testing.assert_array_equal(resident.W.numpy(), on_host.W)
    np.testing.assert_allclose(on_host.W, fit_nnls_active_set_numpy(X, H).W, rtol=0,
                               atol=1e-5 * np.abs(on_host.W).max())
