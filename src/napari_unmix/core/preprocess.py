"""Explicit data treatments that make the "processed" data a mode fits.

Nothing here runs unless asked for, and every treatment reports what it did, so
that results can record it in their ``params`` and ``summary``.
"""

from __future__ import annotations

import numpy as np

from ._validation import check_nonnegative

__all__ = ["NEGATIVE_POLICIES", "apply_negative_policy"]

#: How NNMF / NNLS treat negative input values.
NEGATIVE_POLICIES = ("raise", "clip", "offset")


def apply_negative_policy(X: np.ndarray, policy: str = "raise", *, name: str = "X"):
    """Apply the chosen treatment of negative values to ``X`` (never in place).

    Parameters
    ----------
    X : ndarray
    policy : {"raise", "clip", "offset"}
        ``"raise"`` (default): negative values are an error.  ``"clip"``: negative
        values become 0.  ``"offset"``: the global minimum is subtracted from every
        value, so the smallest becomes 0 (a constant added to every spectrum; a flat
        background component can absorb it).

    Returns
    -------
    X : ndarray
        The data to fit (``X`` itself when nothing changed).
    info : dict
        ``{"policy", "n_negative", "min_value", "offset"}``, for the fit summary.
    """
    if policy not in NEGATIVE_POLICIES:
        raise ValueError(
            f"negative={policy!r} is not one of {', '.join(NEGATIVE_POLICIES)}."
        )
    min_value = float(X.min()) if X.size else 0.0
    n_negative = int((X < 0).sum()) if min_value < 0 else 0
    info = {"policy": policy, "n_negative": n_negative, "min_value": min_value, "offset": 0.0}
    if n_negative == 0:
        return X, info
    if policy == "raise":
        check_nonnegative(
            X, name=name,
            remedy="Background-subtracted CRS data often dips below zero: pass "
            "negative='clip' to set negative values to 0, or negative='offset' to shift "
            "all data up by the minimum. The choice is recorded in the result's params.",
        )
    if policy == "clip":
        return np.maximum(X, 0, dtype=X.dtype), info
    info["offset"] = -min_value
    out = X - X.dtype.type(min_value)
    np.maximum(out, 0, out=out)  # exact zero at the minimum despite rounding
    return out, info
