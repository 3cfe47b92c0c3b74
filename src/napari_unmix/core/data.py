"""Stack <-> matrix conversion, and the one validation pass of a run.

A hyperspectral stack has one spectral axis and any number of spatial (or z / t)
axes.  The unmixing modes work on a matrix ``X`` of shape ``(n_pixels, n_channels)``
whose rows are pixel spectra.  :func:`stack_to_matrix` builds it (optionally keeping
only the pixels of a mask) and :func:`matrix_to_maps` turns per-pixel results back
into images.

Checked once
    :func:`check_matrix` validates a matrix (numeric, 2-D, finite) and applies the
    negative-value policy of the non-negative modes (:func:`apply_negative_policy`),
    and returns a :class:`CheckedMatrix`.  The mode functions (``nmf``, ``nnls``,
    ``pca``) and the seeding engine accept one and then skip their own checks, so a
    run scans the data for NaN / Inf and negative values once.
    :func:`prepare_stack` does the same for a stack and returns the
    :class:`PreparedData` that :func:`~napari_unmix.core.analysis.run_analysis`
    hands to the modes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ._validation import as_float_array, check_nonnegative, checked_matrix_and_min, refuse_masked
from .pixel_layout import PixelLayout

__all__ = ["COMPUTE_FIRST", "NAN_POLICIES", "NEGATIVE_POLICIES", "NONFINITE_STACK_REMEDY",
           "OMIT_NEEDS_MEMORY", "CheckedMatrix",
           "PreparedData",
           "apply_negative_policy", "check_matrix", "check_nan_policy",
           "check_negative_policy", "check_spectral_values", "data_scale", "fits_unscaled",
           "finite_mask", "matrix_to_maps", "normalize_axis", "prepare_stack",
           "prepared_data", "roi_mean_spectrum", "stack_to_matrix"]

#: How NNMF / NNLS treat negative input values.
NEGATIVE_POLICIES = ("raise", "clip", "offset")
#: What an analysis does with pixels whose spectrum holds NaN or infinite values:
#: refuse the stack, or leave those pixels out of the fit (their maps are NaN).
NAN_POLICIES = ("raise", "omit")
#: Why ``nan_policy="omit"`` is refused for a dask stack, in the API's terms (the CLI
#: replaces it by its own, see ``cli.console``).
OMIT_NEEDS_MEMORY = ("a stack in memory only, not of a dask stack: compute the stack "
                     "(np.asarray), or replace its NaN values before unmixing it.")
#: What to do with a dask stack for an option that needs the data in memory, in the
#: API's terms (the CLI and the dock replace it by their own).
COMPUTE_FIRST = "compute the stack into memory first (np.asarray)"
#: What to do about NaN or infinite pixels of a stack given to a mode (prepare_stack).
NONFINITE_STACK_REMEDY = ("Pass nan_policy='omit' to leave those pixels out of the fit "
                          "(their maps are NaN), or replace them before unmixing.")


def normalize_axis(axis: int, ndim: int, *, name: str = "spectral_axis") -> int:
    """Return ``axis`` as a non-negative index into ``ndim`` dimensions."""
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
        raise TypeError(f"{name} must be the index (an integer) of an axis of the array, "
                        f"got {axis!r}.")
    if not -ndim <= axis < ndim:
        raise ValueError(f"{name}={axis} is out of range for an array with {ndim} dimensions.")
    return axis % ndim


def _check_stack(stack: np.ndarray) -> None:
    if stack.ndim < 2:
        raise ValueError(
            f"A spectral stack needs a spectral axis and at least one spatial axis; got an "
            f"array with shape {stack.shape}. A single spectrum is not an image: pass it "
            "as a (1, n_channels) matrix instead."
        )
    if stack.size == 0:
        raise ValueError(f"The stack is empty (shape {stack.shape}).")


def stack_to_matrix(stack, spectral_axis: int = 0, *, mask=None, dtype=None):
    """Reshape a spectral stack into a pixel-by-channel matrix.

    Parameters
    ----------
    stack : array_like
        Image stack with one spectral axis and one or more spatial axes, e.g.
        ``(C, Y, X)``, ``(Y, X, C)`` or ``(Z, C, Y, X)``.
    spectral_axis : int, default 0
        Position of the spectral axis (negative values count from the end).
    mask : array_like of bool, optional
        Boolean array with the spatial shape; only pixels where it is True become
        rows of ``X`` (in C order).  Use :func:`matrix_to_maps` with the same mask
        to put results back.
    dtype : float dtype, optional
        Force the output dtype.  By default float32 and float64 are kept, integers
        of up to 16 bits become float32 (exact, no overflow) and wider integers
        float64.

    Returns
    -------
    X : ndarray, shape (n_pixels, n_channels)
        Pixel spectra as rows, C-contiguous.  The input is never modified.
    spatial_shape : tuple of int
        Shape of the spatial axes, in their original order.

    Raises
    ------
    ValueError
        For a 1-D or empty stack, a bad axis, or a mask of the wrong shape or one
        that selects no pixel.

    Examples
    --------
    >>> import numpy as np
    >>> stack = np.zeros((64, 32, 48), dtype=np.uint16)   # (C, Y, X)
    >>> X, spatial_shape = stack_to_matrix(stack, spectral_axis=0)
    >>> X.shape, X.dtype, spatial_shape
    ((1536, 64), dtype('float32'), (32, 48))
    """
    refuse_masked(stack, "stack")
    stack = np.asarray(stack)
    _check_stack(stack)
    axis = normalize_axis(spectral_axis, stack.ndim)
    moved = np.moveaxis(stack, axis, -1)
    spatial_shape = tuple(moved.shape[:-1])
    n_channels = moved.shape[-1]
    X = as_float_array(moved.reshape(-1, n_channels), name="stack", dtype=dtype)
    if mask is not None:
        mask = _check_mask(mask, spatial_shape)
        X = X[mask.reshape(-1)]
    return np.ascontiguousarray(X), spatial_shape


def _check_mask(mask, spatial_shape) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.dtype != bool:
        raise TypeError(f"mask must be boolean, got dtype {mask.dtype}; use (labels > 0).")
    if mask.shape != tuple(spatial_shape):
        raise ValueError(
            f"mask has shape {mask.shape} but the stack's spatial shape is "
            f"{tuple(spatial_shape)}."
        )
    if not mask.any():
        raise ValueError("mask selects no pixel: every pixel is masked out.")
    return mask


def _checked_spatial_shape(spatial_shape) -> tuple:
    try:
        dims = list(spatial_shape)
    except TypeError:
        dims = None
    if dims is None or any(isinstance(d, bool) or not isinstance(d, (int, np.integer))
                           or d < 0 for d in dims):
        raise ValueError(f"spatial_shape must be the image's size along each spatial axis "
                         f"(a tuple of integers >= 0, e.g. (512, 512)), got "
                         f"{spatial_shape!r}.")
    return tuple(int(d) for d in dims)


def matrix_to_maps(W, spatial_shape, *, mask=None, fill_value=np.nan) -> np.ndarray:
    """Turn per-pixel values ``W (n_pixels, k)`` into ``k`` images.

    Parameters
    ----------
    W : array_like, shape (n_pixels, k)
        One column per component (abundances, scores ...).
    spatial_shape : tuple of int
        The spatial shape returned by :func:`stack_to_matrix`.
    mask : array_like of bool, optional
        The mask given to :func:`stack_to_matrix`; pixels outside it get
        ``fill_value``.
    fill_value : float, default NaN
        Value of masked-out pixels.

    Returns
    -------
    maps : ndarray, shape (k, *spatial_shape)
    """
    W = np.asarray(W)
    if W.ndim == 1:
        W = W[:, None]
    if W.ndim != 2:
        raise ValueError(f"W must be 2-D (n_pixels, k), got shape {W.shape}.")
    spatial_shape = _checked_spatial_shape(spatial_shape)
    n_total = int(np.prod(spatial_shape))
    k = W.shape[1]
    if mask is None:
        if W.shape[0] != n_total:
            raise ValueError(
                f"W has {W.shape[0]} rows but spatial shape {spatial_shape} has "
                f"{n_total} pixels; pass the mask used to build X."
            )
        return np.ascontiguousarray(W.T.reshape((k, *spatial_shape)))
    mask = _check_mask(mask, spatial_shape)
    if W.shape[0] != int(mask.sum()):
        raise ValueError(
            f"W has {W.shape[0]} rows but the mask selects {int(mask.sum())} pixels."
        )
    dtype = np.result_type(W.dtype, np.float32) if np.isnan(fill_value) else W.dtype
    maps = np.full((k, n_total), fill_value, dtype=dtype)
    maps[:, mask.reshape(-1)] = W.T
    return maps.reshape((k, *spatial_shape))


def finite_mask(stack, spectral_axis: int = 0) -> np.ndarray:
    """Boolean spatial mask of pixels whose whole spectrum is finite.

    Use it to exclude pixels with NaN or Inf explicitly:
    ``stack_to_matrix(stack, axis, mask=finite_mask(stack, axis))``.
    """
    stack = np.asarray(stack)
    _check_stack(stack)
    axis = normalize_axis(spectral_axis, stack.ndim)
    return np.isfinite(stack).all(axis=axis)


def roi_mean_spectrum(stack, mask, *, spectral_axis: int = 0) -> np.ndarray:
    """Mean spectrum (float64) of the pixels of a boolean spatial ``mask``.

    ``stack`` is a stack with its spectral axis at ``spectral_axis`` and ``mask``
    its spatial shape, or a matrix ``(n_pixels, n_channels)`` with
    ``spectral_axis=-1`` and a flat mask.  Only the masked pixels are read, so it
    stays cheap on large (memory-mapped, lazy) stacks.  The seeding engine's ROI
    seeds and the dock's seed previews both use it.
    """
    mask = np.asarray(mask, dtype=bool)
    arr = stack if isinstance(stack, np.ndarray) else np.asarray(stack)
    moved = np.moveaxis(arr, spectral_axis, -1)
    if mask.shape != moved.shape[:-1]:
        raise ValueError(f"ROI mask shape {mask.shape} does not match the spatial shape "
                         f"{moved.shape[:-1]} of the stack.")
    if not mask.any():
        raise ValueError("The ROI selects no pixel.")
    return np.asarray(moved[mask]).mean(axis=0, dtype=np.float64)


# -- the one validation pass --------------------------------------------------------------
def data_scale(X) -> float:
    """The power of two ``c`` with ``max|X| / c`` in ``[1, 2)`` (1.0 for all-zero data).

    ``core.nmf`` (and ``core.nnls`` under the Poisson loss) divide the data by it
    before the solver runs: exact in floating point, and every solver then sees values
    near 1 whatever the units; PCA and the fit norms of signed data do the same.  The
    largest magnitude comes from ``max`` and ``min`` (no ``|X|`` array is made).
    """
    X = np.asarray(X)
    top = max(float(X.max()), -float(X.min())) if X.size else 0.0
    if not top > 0 or not np.isfinite(top):
        return 1.0
    return float(2.0 ** np.floor(np.log2(top)))


#: The largest ``|log2(scale)|`` at which a solver exact under power-of-two scaling
#: fits the data as it is, per dtype: its squared norms (``H H^T`` ~ ``scale**2``)
#: then stay 60 or more binades inside the dtype's range (float32: 2**-126 to 2**128).
UNSCALED_EXPONENT = {np.dtype(np.float32): 32, np.dtype(np.float64): 256}


def fits_unscaled(scale: float, dtype) -> bool:
    """Whether data of :func:`data_scale` ``scale`` and ``dtype`` can be fitted unscaled.

    A solver whose iterates on ``2**s X`` are exactly ``2**s`` times its iterates on
    ``X`` (HALS: every product and quotient scales by a power of two, which rounding
    leaves exact) needs no scaled copy of ``X`` while ``|s|`` is at most
    :data:`UNSCALED_EXPONENT`; beyond that its squared norms could under- or overflow.
    """
    limit = UNSCALED_EXPONENT.get(np.dtype(dtype))
    return limit is not None and scale > 0 and abs(np.log2(scale)) <= limit


def check_negative_policy(policy) -> str:
    """``policy`` if it is one of :data:`NEGATIVE_POLICIES`, else a ValueError."""
    if not isinstance(policy, str) or policy not in NEGATIVE_POLICIES:
        raise ValueError(
            f"negative={policy!r} is not one of {', '.join(NEGATIVE_POLICIES)}."
        )
    return policy


def apply_negative_policy(X: np.ndarray, policy: str = "raise", *, name: str = "X",
                          min_value: float | None = None):
    """Apply the chosen treatment of negative values to ``X`` (never in place).

    Parameters
    ----------
    X : ndarray
    policy : {"raise", "clip", "offset"}
        ``"raise"`` (default): negative values are an error.  ``"clip"``: negative
        values become 0.  ``"offset"``: the global minimum is subtracted from every
        value, so the smallest becomes 0 (a constant added to every spectrum; a flat
        background component can absorb it).
    name : str
        Name of the data in messages.
    min_value : float, optional
        ``X.min()`` when the caller already has it (the finite check finds it).

    Returns
    -------
    X : ndarray
        The data to fit (``X`` itself when nothing changed).
    info : dict
        ``{"policy", "n_negative", "min_value", "offset"}``, for the fit summary.
    """
    check_negative_policy(policy)
    if min_value is None:
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


@dataclass(frozen=True, eq=False)
class CheckedMatrix:
    """A data matrix that passed the checks of :func:`check_matrix`.

    Attributes
    ----------
    X : ndarray (n_pixels, n_channels)
        Finite floats; non-negative when a negative policy was applied.
    negative : dict or None
        What the negative-value policy did (``None``: no policy, e.g. for PCA).
    """

    X: np.ndarray
    negative: dict | None = None

    @property
    def shape(self) -> tuple:
        return self.X.shape


def check_matrix(X, *, negative: str | None = None, name: str = "X", min_samples: int = 1,
                 nonfinite_remedy: str | None = None) -> CheckedMatrix:
    """Validate ``X`` once (see :func:`~napari_unmix.core._validation.check_data_matrix`)
    and apply the negative-value policy when ``negative`` is given.
    ``nonfinite_remedy``: the advice given when NaN or infinite values are refused.

    A :class:`CheckedMatrix` passes through unchanged, except that a policy is
    applied when it has none yet.
    """
    if isinstance(X, CheckedMatrix):
        if negative is None or X.negative is not None:
            return X
        data, info = apply_negative_policy(X.X, negative, name=name)
        return CheckedMatrix(data, info)
    data, min_value = checked_matrix_and_min(X, name=name, min_samples=min_samples,
                                             nonfinite_remedy=nonfinite_remedy)
    if negative is None:
        return CheckedMatrix(data, None)
    data, info = apply_negative_policy(data, negative, name=name, min_value=min_value)
    return CheckedMatrix(data, info)


@dataclass(eq=False)
class PreparedData:
    """A stack made ready for a mode, checked once.

    Attributes
    ----------
    raw : CheckedMatrix
        The stack as a matrix, validated, with the negative-value policy applied for
        the non-negative modes.
    spatial_shape : tuple of int
    spectral_values : ndarray (n_channels,) or None
        Spectral position of every channel.
    processed : ndarray or None
        The preprocessed data (background subtracted, smoothed), when preprocessing
        ran; seeds of components with ``use_subtracted`` are estimated from it.
    fit : CheckedMatrix
        The data the mode fits (the raw data, or the processed data for
        ``fit_data="processed"``).
    steps : list of dict
        What the negative policy and the preprocessing did, in order.
    layout : PixelLayout or None
        The order of the rows when it is not C order of the spatial axes (a chunked
        stack read tile by tile); None for C order.
    pixel_mask : ndarray of bool (spatial shape) or None
        The pixels the rows hold, in C order, when some were left out
        (``nan_policy="omit"``); None when every pixel is a row.
    """

    raw: CheckedMatrix
    spatial_shape: tuple
    spectral_values: np.ndarray | None = None
    processed: np.ndarray | None = None
    fit: CheckedMatrix | None = None
    steps: list = field(default_factory=list)
    layout: PixelLayout | None = None
    pixel_mask: np.ndarray | None = None

    def __post_init__(self):
        if self.fit is None:
            self.fit = self.raw

    @property
    def n_pixels(self) -> int:
        return int(self.raw.X.shape[0])

    @property
    def n_channels(self) -> int:
        return int(self.raw.X.shape[1])


def prepare_stack(stack, *, spectral_axis: int = 0, spectral_values=None,
                  negative: str | None = "raise", nan_policy: str = "raise",
                  name: str = "stack") -> PreparedData:
    """The stack as a checked matrix: :func:`stack_to_matrix`, then :func:`check_matrix`.

    Parameters
    ----------
    stack : array_like
    spectral_axis : int
        Position of the spectral axis.
    spectral_values : array_like (n_channels,), optional
        Spectral position of every channel; checked against the channel count.
    negative : {"raise", "clip", "offset"} or None
        Negative-value policy; ``None`` for modes without a sign constraint (PCA).
    nan_policy : {"raise", "omit"}, default "raise"
        Pixels with a NaN or infinite value in their spectrum: refused, or left out
        (the rows are the other pixels, ``pixel_mask`` says which; the step is
        recorded in ``steps`` with the number of pixels and values left out).
    name : str
        Name of the data in messages.
    """
    check_nan_policy(nan_policy)
    mask = None
    if nan_policy == "omit":
        keep = finite_mask(stack, spectral_axis)
        if not keep.any():
            raise ValueError(f"Every pixel of the {name} holds a NaN or infinite value, so "
                             "leaving them out leaves nothing to unmix.")
        mask = None if keep.all() else keep
    X, spatial_shape = stack_to_matrix(stack, spectral_axis, mask=mask)
    raw = check_matrix(X, negative=negative, name=name,
                       nonfinite_remedy=NONFINITE_STACK_REMEDY)
    data = prepared_data(raw, spatial_shape, spectral_values, spectral_axis)
    if nan_policy == "omit":
        omitted = 0 if mask is None else int(mask.size - mask.sum())
        data.steps.insert(0, {"step": "non-finite pixels", "policy": "omit",
                              "omitted_pixels": omitted,
                              "kept_pixels": int(raw.X.shape[0])})
        data.pixel_mask = mask
    return data


def check_nan_policy(policy) -> str:
    """``policy`` if it is one of :data:`NAN_POLICIES`, else a ValueError."""
    if not isinstance(policy, str) or policy not in NAN_POLICIES:
        raise ValueError(f"nan_policy={policy!r} is not one of {', '.join(NAN_POLICIES)}.")
    return policy


def check_spectral_values(values, n_channels: int, *, where: str = "the stack"):
    """``values`` as a float64 array of one finite number per channel, or ``None``.

    Raises ``ValueError`` naming the count, or the positions of NaN or infinite
    values (they would silently break the resampling of imported spectra, the
    placement of Gaussian models and the written axis).  The order is free: an axis
    may descend, or repeat (excitation x emission channel sets).
    """
    if values is None:
        return None
    values = np.asarray(values)
    if np.iscomplexobj(values):
        raise TypeError("spectral_values are complex numbers; give one real spectral "
                        "position per channel.")
    values = values.astype(np.float64)
    if values.shape != (n_channels,):
        held = (f"has {values.size} values" if values.ndim == 1 else
                f"has shape {values.shape}; give a flat list of values")
        raise ValueError(f"spectral_values {held} but {where} has {n_channels} channels.")
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        listed = ", ".join(str(int(i)) for i in bad[:10]) + (" ..." if bad.size > 10 else "")
        raise ValueError(f"spectral_values holds {bad.size} NaN or infinite value(s) (at "
                         f"channel(s) {listed}); give every channel its spectral position.")
    return values


def prepared_data(raw: CheckedMatrix, spatial_shape, spectral_values, spectral_axis
                  ) -> PreparedData:
    """The :class:`PreparedData` of a checked matrix (in memory or dask): the spectral
    values checked against its channels, the negative-value step recorded."""
    values = check_spectral_values(spectral_values, raw.X.shape[1],
                                   where=f"the stack (along axis {spectral_axis})")
    steps = [] if raw.negative is None else [{"step": "negative", **raw.negative}]
    return PreparedData(raw=raw, spatial_shape=spatial_shape, spectral_values=values,
                        steps=steps)
