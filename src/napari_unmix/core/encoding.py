"""Arrays in JSON, bit-exactly: how configs and sources store masks, maps and spectra.

An array is stored as the bytes ``np.save`` writes, zlib-compressed and
base64-encoded (:func:`encode_array`).  When a dict of arrays is passed as
``arrays=`` the array goes there instead and the JSON keeps a reference to it, which
is how an :class:`~napari_unmix.core.result.UnmixResult` carries its config without
doubling its arrays.
"""

from __future__ import annotations

import base64
import io
import math
import zlib

import numpy as np

__all__ = ["decode_array", "decode_unbounded", "encode_array", "encode_unbounded",
           "is_encoded_array", "plain_value"]

_ARRAY_KEY = "__ndarray__"
_REF_KEY = "__array_ref__"


def encode_array(a, *, arrays: dict | None = None, key: str | None = None) -> dict:
    """Encode an array for JSON, bit-exactly.

    Parameters
    ----------
    a : array_like
        Any numeric or boolean array (object arrays are refused).
    arrays : dict, optional
        If given, the array is stored in it under ``key`` and only a reference is
        returned.
    key : str, optional
        Name of the array in ``arrays``.

    Returns
    -------
    dict
        ``{"__ndarray__": base64 text, "dtype": ..., "shape": [...]}``, or
        ``{"__array_ref__": key}``.
    """
    a = np.asarray(a)
    if a.dtype.kind not in "biuf":
        raise TypeError(f"Cannot store an array of dtype {a.dtype} in a config; "
                        "use numbers or booleans.")
    if arrays is not None:
        if key is None:
            raise ValueError("encode_array: a key is needed to store an array by reference.")
        arrays[key] = a.copy()
        return {_REF_KEY: key}
    buf = io.BytesIO()
    np.save(buf, a, allow_pickle=False)
    text = base64.b64encode(zlib.compress(buf.getvalue(), 6)).decode("ascii")
    return {_ARRAY_KEY: text, "dtype": a.dtype.str, "shape": list(a.shape)}


def decode_array(d, *, arrays: dict | None = None) -> np.ndarray:
    """Inverse of :func:`encode_array`."""
    if isinstance(d, dict) and _REF_KEY in d:
        key = d[_REF_KEY]
        if arrays is None or key not in arrays:
            raise ValueError(
                f"The config refers to array {key!r}, which was not supplied. Load the "
                "config from the result that holds it (AnalysisConfig.from_result)."
            )
        return np.array(arrays[key], copy=True)
    if isinstance(d, dict) and _ARRAY_KEY in d:
        raw = zlib.decompress(base64.b64decode(d[_ARRAY_KEY]))
        return np.load(io.BytesIO(raw), allow_pickle=False)
    raise ValueError(f"Not an encoded array: {str(d)[:80]!r}.")


def is_encoded_array(v) -> bool:
    """True for the output of :func:`encode_array`."""
    return isinstance(v, dict) and (_ARRAY_KEY in v or _REF_KEY in v)


def plain_value(v):
    """A field value as plain JSON (numpy scalars and arrays become Python values)."""
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, (list, tuple)):
        return [plain_value(x) for x in v]
    if isinstance(v, np.ndarray):
        return v.tolist()
    return v


def encode_unbounded(v):
    """A number that may be infinite (an anchor: ``inf`` locks) as standard JSON.

    JSON has no infinity: ``json.dumps`` writes ``Infinity``, which JavaScript's
    ``JSON.parse`` refuses and ``jq`` reads as 1.8e308.  ``inf`` is written as the
    text ``"inf"`` instead (:func:`decode_unbounded` reads it back); other values are
    returned as they are.
    """
    if isinstance(v, (float, np.floating)) and math.isinf(v) and v > 0:
        return "inf"
    return v


def decode_unbounded(v):
    """Inverse of :func:`encode_unbounded`: the text ``"inf"`` (or ``"Infinity"``, any
    case) is ``math.inf``; anything else is returned as it is (and checked by its
    field)."""
    if isinstance(v, str) and v.strip().lower() in ("inf", "+inf", "infinity"):
        return math.inf
    return v
