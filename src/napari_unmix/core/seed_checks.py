"""Checks of NNMF seeds, locks and anchors (``core.nmf`` and its dask path).

Seeds take the data's dtype and must be finite, non-negative and not all zero;
``locked`` is a flag per component or a list of indices; ``anchor`` one strength or
one per component (0 free, ``inf`` locked).
"""

from __future__ import annotations

import numpy as np

from ._validation import as_float_array, check_nonnegative

__all__ = ["anchor_strengths", "check_seed", "locked_mask", "resolve_locks"]


def check_seed(A, shape, name, dtype):
    """``A`` checked as a seed of ``shape`` (``name``: ``"W0"`` or ``"H0"``), in ``dtype``."""
    A = as_float_array(A, name=name)
    if A.shape != shape:
        raise ValueError(
            f"{name} has shape {A.shape}, but shape {shape} is needed "
            f"({'(n_pixels, n_components)' if name == 'W0' else '(n_components, n_channels)'})."
        )
    if not np.isfinite(A).all():
        raise ValueError(f"{name} contains NaN or infinite values; seeds must be finite.")
    with np.errstate(over="ignore"):  # an overflow is refused just below
        converted = A.astype(dtype, copy=False)
    if converted is not A and not np.isfinite(converted).all():  # narrowed: overflowed?
        big = float(np.abs(A).max())
        raise ValueError(f"{name} holds values up to {big:.3g}, beyond the range of the "
                         f"data's {np.dtype(dtype).name} ({float(np.finfo(dtype).max):.3g}); "
                         "rescale the seeds to the data's units, or give the data as float64.")
    check_nonnegative(A, name=name, remedy="Seeds must be >= 0; clip or rebuild them.")
    if not A.any():
        raise ValueError(
            f"{name} is all zeros: no iterative update can move an all-zero seed. "
            "Give a seed with some positive values, or leave it out (None)."
        )
    # documented conversion: seeds take the data's dtype
    return converted


def locked_mask(locked, k):
    """``locked`` (flags or indices) as a boolean mask of k rows, or None when none is."""
    if locked is None:
        return None
    arr = np.asarray(locked)
    if arr.size == 0:                 # [] or an empty array: no row is locked
        return None
    if arr.dtype == bool:
        if arr.shape != (k,):
            raise ValueError(f"locked must have one flag per component ({k}), got {arr.shape}.")
        mask = arr.copy()
    else:
        if arr.dtype.kind not in "iu" or arr.ndim > 1:
            # 1.5 or [0., 1., 0.] must not become indices: the wrong rows would be locked
            raise ValueError(
                f"locked must be component indices (integers) or one True/False flag per "
                f"component ({k}), got {locked!r}.")
        mask = np.zeros(k, dtype=bool)
        idx = arr.astype(np.int64).ravel()
        if idx.size and (idx.min() < -k or idx.max() >= k):
            raise ValueError(f"locked indices {idx.tolist()} are out of range for {k} components.")
        mask[idx] = True
    return mask if mask.any() else None


def anchor_strengths(anchor, k):
    """``anchor`` as k relative strengths (0 free, inf locked), or None."""
    if anchor is None:
        return None
    try:
        a = np.asarray(anchor, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"anchor must be one number >= 0 or {k} of them (0: free, inf: "
                         f"locked), got {anchor!r}.") from None
    if a.ndim == 0:
        a = np.full(k, float(a))
    if a.shape != (k,) or np.isnan(a).any() or (a < 0).any():
        raise ValueError(f"anchor must be one number >= 0 or {k} of them (0: free, inf: "
                         f"locked), got {anchor!r}.")
    return a


def resolve_locks(locked, anchor, k, H0):
    """The locks and anchors of one NNMF run, checked together.

    Returns ``(lock, strength, free, anchored)``: ``lock`` the locked rows (an infinite
    anchor locks its row too; ``None`` when no row is locked), ``strength`` the anchor
    per component (``anchor_strengths``), ``free`` the rows the solver updates and
    ``anchored`` whether any free row is pulled towards its seed.  Anchors and locks
    need the seeds ``H0``.
    """
    lock = locked_mask(locked, k)
    strength = anchor_strengths(anchor, k)
    if strength is not None and H0 is None and strength.any():
        raise ValueError("anchor pulls spectra towards their seeds: it needs H0.")
    if strength is not None and np.isinf(strength).any():
        lock = np.isinf(strength) if lock is None else lock | np.isinf(strength)
    if lock is not None and not lock.any():
        lock = None
    if lock is not None and H0 is None:
        raise ValueError("locked spectra need H0: pass the spectra to keep fixed as H0.")
    free = np.ones(k, dtype=bool) if lock is None else ~lock
    anchored = strength is not None and bool(((strength > 0) & free).any())
    return lock, strength, free, anchored
