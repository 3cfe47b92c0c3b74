"""The data on a torch device in blocks: resident when it fits, streamed when it does not.

The torch solvers read ``X`` (n_pixels, n_channels) one block of pixels at a time
(:class:`DeviceBlocks`).  Where ``X`` fits the device's memory budget
(:func:`device_memory_budget`: :data:`RESIDENT_FRACTION` of the free memory of a
CUDA device) it is copied to the device once and the blocks are views of it; the
factors ``W`` (n_pixels x k) and ``H`` always stay on the device.  Where it does not
fit, every pass over the data copies the blocks again, :data:`STREAM_BLOCK_BYTES`
each, from two pinned (page-locked) host buffers on a CUDA stream of its own: while
the device works on block ``b``, the host fills the other buffer with block ``b + 1``
and the copy stream moves it, so copies and compute overlap.  A buffer is refilled
only after the compute stream is done with the block it held (CUDA events).

On the CPU a torch tensor shares the host's memory, so ``X`` is "resident" without a
copy; the streamed path runs there too (plain copies, no streams) when a budget is
given, which is how the tests check, by recording the transfers
(:func:`napari_unmix.core.device.to_device`), that no copy exceeds its block.
"""

from __future__ import annotations

import numpy as np

from . import device as _device

__all__ = ["RESIDENT_FRACTION", "STREAM_BLOCK_BYTES", "DeviceBlocks", "device_memory_budget",
           "is_tensor", "plan_blocks"]

#: Fraction of a CUDA device's free memory that ``X`` may take when it is kept there.
RESIDENT_FRACTION = 0.5
#: Bytes of ``X`` per streamed block (two on the device and two pinned on the host).
STREAM_BLOCK_BYTES = 256 * 2**20


def _slices(n: int, size: int):
    size = max(1, int(size))
    return [slice(start, min(start + size, n)) for start in range(0, n, size)]


def is_tensor(a) -> bool:
    """Whether ``a`` is a torch tensor (without importing torch)."""
    return type(a).__module__.split(".")[0] == "torch"


def device_memory_budget(device) -> int | None:
    """Bytes of data that may stay on ``device``; ``None``: no limit (the CPU)."""
    name = str(device)
    if not name.startswith("cuda"):
        return None
    torch = _device.get_torch()
    free, _total = torch.cuda.mem_get_info(torch.device(name))
    return int(RESIDENT_FRACTION * free)


def plan_blocks(n_rows: int, row_bytes: int, device, *, block_bytes: int | None = None,
                budget: int | None = None):
    """How ``n_rows`` rows of ``row_bytes`` each go to ``device``.

    Parameters
    ----------
    block_bytes : int, optional
        Bytes per block when the data is resident (``None``: one block).
    budget : int, optional
        Bytes the data may take on the device; default :func:`device_memory_budget`.

    Returns
    -------
    resident : bool
    slices : list of slice
        The blocks: of ``block_bytes`` when resident, of at most
        ``min(STREAM_BLOCK_BYTES, budget / 4)`` when streamed.
    """
    if budget is None:
        budget = device_memory_budget(device)
    resident = budget is None or n_rows * row_bytes <= budget
    if resident:
        size = n_rows if block_bytes is None else block_bytes // max(row_bytes, 1)
    else:
        cap = min(STREAM_BLOCK_BYTES, max(budget // 4, row_bytes))
        if block_bytes is not None:
            cap = min(cap, block_bytes)
        size = cap // max(row_bytes, 1)
    return resident, _slices(n_rows, max(1, size))


class DeviceBlocks:
    """The rows of ``X`` on ``device`` block by block, in order, every time it is iterated.

    Iterating yields ``(slice, block)`` with ``block`` a tensor on the device of the
    rows ``slice`` of ``X``.  A streamed block lives in a reused buffer: use it before
    taking the next one.

    Parameters
    ----------
    X : ndarray (n, m) or torch tensor
        The data (a tensor already on ``device`` is used in place: resident).
    device : str
        A resolved torch device.
    slices : list of slice
        The blocks (:func:`plan_blocks`).
    resident : bool, optional
        Keep the whole of ``X`` on the device (default: when ``X`` fits
        :func:`device_memory_budget`).

    Attributes
    ----------
    resident : bool
    X : torch tensor or None
        ``X`` on the device when resident.
    """

    def __init__(self, X, device, slices, *, resident: bool | None = None):
        self.device = str(device)
        self.slices = list(slices)
        self._host = X
        if is_tensor(X):
            resident = True
        elif resident is None:
            budget = device_memory_budget(device)
            resident = budget is None or X.nbytes <= budget
        self.resident = bool(resident)
        self.X = None
        if self.resident:
            self.X = X if is_tensor(X) else _device.to_device(X, self.device)
        self._cuda = self.device.startswith("cuda")
        self._buffers = None

    @property
    def shape(self):
        return tuple(self._host.shape)

    def __len__(self):
        return len(self.slices)

    def __iter__(self):
        if self.resident:
            for sl in self.slices:
                yield sl, self.X[sl]
        elif self._cuda:
            yield from self._stream_cuda()
        else:
            for sl in self.slices:
                yield sl, _device.to_device(np.ascontiguousarray(self._host[sl]), self.device)

    def _stream_cuda(self):
        torch = _device.get_torch()
        rows = max(sl.stop - sl.start for sl in self.slices)
        m = self._host.shape[1]
        dtype = _device.to_torch(np.zeros(0, self._host.dtype), "cpu").dtype
        if self._buffers is None:
            self._buffers = (
                [torch.empty((rows, m), dtype=dtype, pin_memory=True) for _ in range(2)],
                [torch.empty((rows, m), dtype=dtype, device=self.device) for _ in range(2)],
                torch.cuda.Stream(device=self.device),
                [None, None], [None, None])
        # the events outlive a pass: the next pass's first copies wait for the last
        # pass's compute on the same buffers
        staging, buffers, copy_stream, copied, used = self._buffers
        compute = torch.cuda.current_stream(self.device)

        def issue(b):
            j, sl = b % 2, self.slices[b]
            r = sl.stop - sl.start
            if copied[j] is not None:
                copied[j].synchronize()          # the last copy out of staging[j] is done
            staging[j][:r].numpy()[...] = self._host[sl]
            with torch.cuda.stream(copy_stream):
                if used[j] is not None:          # the compute on buffers[j] is done
                    copy_stream.wait_event(used[j])
                _device.to_device(staging[j][:r], self.device, out=buffers[j][:r],
                                  non_blocking=True)
                copied[j] = torch.cuda.Event()
                copied[j].record(copy_stream)

        issue(0)
        for b, sl in enumerate(self.slices):
            if b + 1 < len(self.slices):
                issue(b + 1)
            j = b % 2
            compute.wait_event(copied[j])
            yield sl, buffers[j][: sl.stop - sl.start]
            used[j] = torch.cuda.Event()
            used[j].record(compute)


class BlockSource:
    """The pixel blocks of ``X`` for one NNMF run: on the worker pool, or on a device.

    numpy (``device=None``): :meth:`map` calls ``fn(slice, X[slice])`` for every block
    on the :class:`~napari_unmix.core.parallel.Workers` pool; torch: one block after
    the other from :class:`DeviceBlocks` (``X`` resident or streamed).  Either way the
    results come back in block order, to be summed in that order.

    Parameters
    ----------
    X : ndarray (n, m)
    slices : list of slice
        The blocks; their sizes depend on the data only, not on the workers.
    workers : Workers, optional
        The pool (numpy).
    device : str, optional
        The torch device (torch).
    resident : bool, optional
        torch: keep ``X`` on the device (default: when it fits the budget).
    """

    def __init__(self, X, slices, *, workers=None, device=None, resident=None):
        self.slices = list(slices)
        self.workers = workers
        self.torch = device is not None
        self.blocks = DeviceBlocks(X, device, self.slices, resident=resident) \
            if self.torch else None
        self._X = X

    @property
    def resident(self) -> bool:
        return self.blocks is None or self.blocks.resident

    def map(self, fn) -> list:
        """``[fn(sl, X block) for every block]``, in block order."""
        if self.torch:
            return [fn(sl, Xb) for sl, Xb in self.blocks]
        X = self._X
        return self.workers.map(lambda sl: fn(sl, X[sl]), self.slices)

    def residual_norm(self, W, H) -> float:
        """``||X - W H||_F``, the blocks' squares summed in block order, in float64."""
        if self.torch:
            torch = _device.get_torch()

            def part(sl, Xb):
                R = W[sl] @ H
                R.sub_(Xb)
                return torch.linalg.vector_norm(R, dtype=torch.float64).square()
        else:
            from .solvers._common import residual_norm

            def part(sl, Xb):
                return residual_norm(Xb, W[sl], H, chunk_rows=sl.stop - sl.start) ** 2
        total = 0.0
        for p in self.map(part):
            total = total + p
        return float(np.sqrt(float(total)))
