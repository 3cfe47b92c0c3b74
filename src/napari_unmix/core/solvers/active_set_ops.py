"""Array-library shims: the active-set algorithms are written once for numpy and torch.

:class:`NumpyOps` and :class:`TorchOps` offer the same methods (array creation,
gathers, bit packing, grouping of rows) to the enumeration, the pivoting and the
refinement of :mod:`.active_set`; float arrays are float64 throughout.
"""

from __future__ import annotations

import sys

import numpy as np

__all__ = ["NumpyOps", "TorchOps"]

_ONES = np.ones(8)
#: multiplier that gathers the low bits of eight bytes into the top byte
_GATHER_BITS = np.uint64(0x0102040810204080)
_LITTLE = sys.byteorder == "little"


class NumpyOps:
    """The array operations of the active-set algorithms in numpy (on the CPU)."""

    device = "cpu"

    def asarray(self, a):
        return np.asarray(a)

    def ones_bool(self, n, k):
        return np.ones((n, k), dtype=bool)

    def zeros_bool(self, n):
        return np.zeros(n, dtype=bool)

    def zeros(self, shape):
        return np.zeros(shape)

    def full_int(self, n, value):
        return np.full(n, value, dtype=np.int64)

    def arange(self, n):
        return np.arange(n)

    def where(self, cond, a, b):
        return np.where(cond, a, b)

    def minimum(self, a, b):
        return np.minimum(a, b)

    def maximum(self, a, b):
        return np.maximum(a, b)

    def store(self, out, a):
        out[...] = a

    def take(self, table, index):
        return table.take(index, axis=0)

    def take_along(self, a, cols):
        n, m = a.shape
        cols += np.arange(0, n * m, m)[:, None]
        return a.reshape(-1).take(cols)

    def gather_matvec(self, b, M):
        return np.einsum("nj,njl->nl", b, M)

    def row_abssum(self, b):
        return np.abs(b).sum(axis=1) if b.shape[1] > 8 else np.abs(b) @ _ONES[:b.shape[1]]

    def encode(self, F, pow2):
        return (F.astype(np.float64) @ pow2).astype(np.int64)

    def pack(self, P):
        """Little-endian bytes of every 8 columns (the last byte zero-padded).

        Rows of whole bytes are read eight booleans (0 or 1 bytes) at a time as one
        uint64: multiplied by ``0x0102040810204080``, boolean ``i`` lands on bit
        ``56 + i`` and no two partial products share a bit, so the top byte is the
        packed byte, exactly (three times faster than ``np.packbits``).
        """
        n, m = P.shape
        if m % 8 or not _LITTLE or not P.flags.c_contiguous:
            return np.packbits(P, axis=1, bitorder="little")
        words = P.view(np.uint64) * _GATHER_BITS      # (n, m / 8), on the same bytes
        words >>= np.uint64(56)
        return words.astype(np.uint8)

    def top_bit(self, mask, n_bits):
        """Index of the highest set bit of each int64 mask (-1 for 0), exactly."""
        if n_bits <= 32:
            return np.frexp(mask.astype(np.float64))[1] - 1
        high = (mask >> 32) & 0xFFFFFFFF
        low = mask & 0xFFFFFFFF
        return np.where(high > 0, 31 + np.frexp(high.astype(np.float64))[1],
                        np.frexp(low.astype(np.float64))[1] - 1)

    def last_true(self, V):
        return V.shape[1] - 1 - V[:, ::-1].argmax(axis=1)

    def group(self, F):
        """Distinct rows of ``F`` and the rows holding each: ``(keys, order, bounds)``."""
        keys, inv = np.unique(F, axis=0, return_inverse=True)
        inv = inv.reshape(-1)
        order = np.argsort(inv, kind="stable")
        bounds = np.concatenate([[0], np.cumsum(np.bincount(inv, minlength=len(keys)))])
        return keys, order, bounds.tolist()

    def to_numpy(self, a):
        return a


class TorchOps:
    """The array operations of the active-set algorithms in PyTorch.

    Parameters
    ----------
    torch : module
        The imported ``torch``.
    device : torch.device or str
        Where the arrays live.
    """

    def __init__(self, torch, device):
        self.torch = torch
        self.device = device

    def asarray(self, a):
        return self.torch.as_tensor(np.ascontiguousarray(a), device=self.device)

    def ones_bool(self, n, k):
        return self.torch.ones((n, k), dtype=self.torch.bool, device=self.device)

    def zeros_bool(self, n):
        return self.torch.zeros(n, dtype=self.torch.bool, device=self.device)

    def zeros(self, shape):
        return self.torch.zeros(shape, dtype=self.torch.float64, device=self.device)

    def full_int(self, n, value):
        return self.torch.full((n,), value, dtype=self.torch.int64, device=self.device)

    def arange(self, n):
        return self.torch.arange(n, device=self.device)

    def where(self, cond, a, b):
        return self.torch.where(cond, a, b)

    def minimum(self, a, b):
        return self.torch.minimum(a, b)

    def maximum(self, a, b):
        return self.torch.clamp_min(a, b)

    def store(self, out, a):
        out[...] = self.to_numpy(a)

    def take(self, table, index):
        return table[index.long()]

    def take_along(self, a, cols):
        return self.torch.gather(a, 1, cols)

    def gather_matvec(self, b, M):
        return self.torch.bmm(b.unsqueeze(1), M).squeeze(1)

    def row_abssum(self, b):
        return b.abs().sum(dim=1)

    def encode(self, F, pow2):
        return (F.to(pow2.dtype) @ pow2).long()

    def pack(self, P):
        """Little-endian bytes of every 8 columns (a partial last byte is dropped)."""
        torch = self.torch
        n, m = P.shape
        weights = 2.0 ** torch.arange(8, device=self.device, dtype=torch.float32)
        return (P[:, :m - m % 8].reshape(n, -1, 8).to(torch.float32) @ weights).long()

    def top_bit(self, mask, n_bits):
        torch = self.torch

        def top(m):
            return torch.frexp(m.to(torch.float64)).exponent.long() - 1
        if n_bits <= 32:
            return top(mask)
        high = (mask >> 32) & 0xFFFFFFFF
        return torch.where(high > 0, 32 + top(high), top(mask & 0xFFFFFFFF))

    def last_true(self, V):
        return V.shape[1] - 1 - V.flip(1).to(self.torch.uint8).argmax(dim=1)

    def group(self, F):
        torch = self.torch
        keys, inv = torch.unique(F.to(torch.uint8), dim=0, return_inverse=True)
        order = torch.argsort(inv, stable=True)
        counts = torch.bincount(inv, minlength=keys.shape[0])
        return keys.bool(), order, [0] + torch.cumsum(counts, 0).tolist()

    def to_numpy(self, a):
        return a.detach().cpu().numpy()
