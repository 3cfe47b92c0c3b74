"""Input checks shared by every mode.

Every check raises an error that names the input, says what is wrong with it and
what the user can do about it.  Nothing here changes data silently: dtype
conversion follows one documented rule (:func:`as_float_array`).
"""

from __future__ import annotations

import numbers

import numpy as np

__all__ = [
    "NONFINITE_REMEDY",
    "is_whole_number",
    "as_float_array",
    "float_dtype",
    "check_data_matrix",
    "checked_matrix_and_min",
    "check_iter_options",
    "check_n_components",
    "check_nonnegative",
    "check_spectra",
]

#: What to do about NaN or infinite values, in the API's terms (the CLI and the dock
#: replace this sentence by their own, see ``cli.console`` and ``_napari.help_texts``).
NONFINITE_REMEDY = ("Exclude those pixels with a mask (stack_to_matrix(..., "
                    "mask=finite_mask(stack))) or replace them before unmixing.")


def as_float_array(a, *, name: str = "X", dtype=None) -> np.ndarray:
    """Return ``a`` as a floating-point ndarray following the project's dtype rule.

    float32 and float64 are kept; float16, booleans and integers of up to 16 bits
    (uint8, uint16, int16 ...) become float32, which holds them exactly; wider
    integers become float64 for the same reason.  ``dtype`` forces a float type.
    Data in the other byte order (big-endian ``>f4`` on a little-endian machine)
    are converted to the machine's byte order, with the same type.  No copy is
    made when none is needed.

    Raises
    ------
    TypeError
        For object, complex, string or other non-numeric arrays.
    """
    refuse_masked(a, name)
    arr = np.asarray(a)
    return arr.astype(float_dtype(arr.dtype, name=name, force=dtype), copy=False)


def refuse_masked(a, name: str = "X") -> None:
    """Raise ``ValueError`` for a numpy masked array with masked entries.

    ``np.asarray`` would hand on the numbers under the mask as if they were data; a
    masked array with nothing masked is plain data and passes.
    """
    if isinstance(a, np.ma.MaskedArray) and np.ma.getmaskarray(a).any():
        n = int(np.ma.getmaskarray(a).sum())
        raise ValueError(
            f"{name} is a masked array with {n} masked value(s), which would be read as "
            "the numbers under the mask. Fill them (a.filled(value)), or set them to NaN "
            "and leave those pixels out with a mask (stack_to_matrix(..., "
            "mask=finite_mask(stack)))."
        )


def float_dtype(dtype, *, name: str = "array", force=None) -> np.dtype:
    """The float dtype data of ``dtype`` becomes under the project's rule
    (:func:`as_float_array`), in the machine's byte order; ``force`` a float type."""
    dtype = np.dtype(dtype)
    if dtype.kind not in "biuf":
        raise TypeError(
            f"{name} has dtype {dtype}, which is not a real number type. "
            "Pass a numeric array (integers or floats); convert object arrays with "
            "np.asarray(..., dtype=float) after checking their contents."
        )
    if force is not None:
        force = np.dtype(force)
        if force.kind != "f":
            raise TypeError(f"dtype must be a floating-point type, got {force}.")
        return force.newbyteorder("=")
    if dtype.kind == "f" and dtype.itemsize >= 4:
        return dtype.newbyteorder("=")
    return np.dtype(np.float32) if dtype.itemsize <= 2 else np.dtype(np.float64)


def _check_finite(arr: np.ndarray, name: str, remedy: str) -> float:
    """Refuse NaN and infinite values in ``arr``; return its minimum (0.0 if empty).

    NaN propagates through ``min`` and ``max``, and an infinite value is one of
    them, so the two reductions decide it (without a boolean copy of ``arr``),
    and the minimum is there for the negative-value check.
    """
    if arr.size == 0:
        return 0.0
    lo, hi = arr.min(), arr.max()
    if not (np.isfinite(lo) and np.isfinite(hi)):
        n_nan = int(np.isnan(arr).sum())
        n_inf = int(np.isinf(arr).sum())
        raise ValueError(
            f"{name} contains {n_nan} NaN and {n_inf} infinite value(s). {remedy}"
        )
    return float(lo)


def check_data_matrix(
    X, *, name: str = "X", dtype=None, min_samples: int = 1, min_features: int = 1
) -> np.ndarray:
    """Validate a data matrix ``(n_pixels, n_channels)`` and return it as floats.

    Raises
    ------
    TypeError
        For non-numeric input.
    ValueError
        For input that is not 2-D, is empty, or holds NaN / Inf.
    """
    return checked_matrix_and_min(X, name=name, dtype=dtype, min_samples=min_samples,
                                  min_features=min_features)[0]


def checked_matrix_and_min(
    X, *, name: str = "X", dtype=None, min_samples: int = 1, min_features: int = 1,
    nonfinite_remedy: str | None = None,
) -> tuple[np.ndarray, float]:
    """:func:`check_data_matrix`, and the matrix's smallest value, found by its checks;
    a NaN or infinite value is refused with ``nonfinite_remedy`` as the advice
    (default :data:`NONFINITE_REMEDY`)."""
    X = as_float_array(X, name=name, dtype=dtype)
    if X.ndim != 2:
        raise ValueError(
            f"{name} must be a 2-D matrix (n_pixels, n_channels), got shape {X.shape}. "
            "Turn an image stack into one with napari_unmix.core.stack_to_matrix."
        )
    n, m = X.shape
    if n < min_samples or m < min_features:
        raise ValueError(
            f"{name} has shape {X.shape} but needs at least {min_samples} pixel(s) and "
            f"{min_features} channel(s)."
        )
    return X, _check_finite(X, name, nonfinite_remedy or NONFINITE_REMEDY)


def check_nonnegative(X: np.ndarray, *, name: str, remedy: str) -> None:
    """Raise ``ValueError`` if ``X`` holds negative values, with a remedy."""
    if X.size and X.min() < 0:
        n_neg = int((X < 0).sum())
        raise ValueError(
            f"{name} holds {n_neg} negative value(s) (minimum {float(X.min()):.6g}); "
            f"this mode needs non-negative input. {remedy}"
        )


def check_n_components(n_components, n_samples: int, n_features: int, *, mode: str) -> int:
    """Check ``1 <= n_components <= min(n_samples, n_features)``."""
    if isinstance(n_components, bool) or not isinstance(n_components, numbers.Integral):
        raise TypeError(f"n_components must be an integer, got {n_components!r}.")
    n_components = int(n_components)
    limit = min(n_samples, n_features)
    if n_components < 1:
        raise ValueError(f"n_components must be at least 1, got {n_components}.")
    if n_components > limit:
        raise ValueError(
            f"{mode} asks for n_components={n_components}, but data with {n_samples} "
            f"pixel(s) and {n_features} channel(s) supports at most {limit}. "
            "Reduce n_components or use more pixels/channels."
        )
    return n_components


def check_spectra(H, *, n_features: int, name: str = "H", dtype=None) -> np.ndarray:
    """Validate spectra ``H`` of shape ``(k, n_channels)``: finite, non-negative."""
    H = as_float_array(H, name=name, dtype=dtype)
    if H.ndim == 1:
        raise ValueError(
            f"{name} must be 2-D (n_components, n_channels), got a 1-D array of length "
            f"{H.shape[0]}; for one spectrum use {name}[None, :]."
        )
    if H.ndim != 2 or H.shape[0] < 1:
        raise ValueError(f"{name} must be 2-D (n_components, n_channels), got shape {H.shape}.")
    if H.shape[1] != n_features:
        raise ValueError(
            f"{name} has {H.shape[1]} channel(s) per spectrum but the data has "
            f"{n_features}. Resample the spectra onto the stack's spectral axis or pick "
            "the matching stack."
        )
    _check_finite(H, name, "Spectra must be finite; fix or drop the affected spectra.")
    check_nonnegative(
        H,
        name=name,
        remedy="Spectra used as a non-negative basis must be >= 0; remove the offset "
        "or clip them before use.",
    )
    return H


def check_iter_options(tol, max_iter) -> None:
    """Check the stopping options of the iterative solvers (``tol >= 0``, ``max_iter >= 1``)."""
    if not (isinstance(max_iter, (int, np.integer)) and not isinstance(max_iter, bool)) \
            or max_iter < 1:
        raise ValueError(f"max_iter must be a positive integer, got {max_iter!r}.")
    if isinstance(tol, bool) or not isinstance(tol, numbers.Real) or not np.isfinite(tol) \
            or tol < 0:
        raise ValueError(f"tol must be a finite number >= 0, got {tol!r}.")


def is_whole_number(value) -> bool:
    """Whether ``value`` is a whole number: an integer, or a real number with an
    integer value (``3.0``, as JSON may write it); booleans are not, nor is ``7.9``
    (refused rather than truncated) or the text ``"7"``."""
    if isinstance(value, bool):
        return False
    return isinstance(value, numbers.Integral) or (
        isinstance(value, numbers.Real) and float(value).is_integer())


def check_positive_int(value, *, name: str, optional: bool = False) -> None:
    """Refuse anything but an integer >= 1 (``None`` too when ``optional``).

    Floats are refused rather than truncated (``chunk_size=1.5`` is not 1), and so
    are booleans.
    """
    if optional and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1{' or None' if optional else ''}, "
                         f"got {value!r}.")
