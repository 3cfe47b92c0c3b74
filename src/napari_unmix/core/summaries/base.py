"""The base of the typed summaries: JSON conversion and a read-only mapping view.

See :mod:`napari_unmix.core.summaries`.

Typed fit summaries: what a user needs to judge a fit, as attributes.

Every mode returns its summary as a dataclass (:class:`NMFSummary`,
:class:`NNLSSummary`, :class:`PCASummary`; z / t series :class:`SeriesSummary`),
so code that reads a summary names its fields and a misspelt name fails loudly
instead of reading ``None`` from a dict.  Each summary converts to plain JSON with
:meth:`Summary.to_dict` (entries that do not apply, ``None``, are left out) and back
with :meth:`Summary.from_dict`; entries a newer or older version wrote that this
class does not know are kept in :attr:`Summary.extra`, so nothing is lost on a round
trip.

For scripts written against the earlier dict summaries, ``summary["name"]`` and
``"name" in summary`` still work (a missing entry raises ``KeyError``); there is no
``.get``, on purpose.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

__all__ = ["Summary", "jsonable", "plain"]


def jsonable(obj: Any) -> Any:
    """Convert numpy scalars / arrays, tuples, paths and summaries into plain JSON types."""
    from pathlib import Path

    if isinstance(obj, Summary):
        return obj.to_dict()
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    raise TypeError(f"Cannot store {type(obj).__name__} {obj!r} in a result's JSON fields.")


def plain(obj: Any) -> Any:
    """A JSON round trip: what :meth:`Summary.to_dict` gives back after save / load."""
    return json.loads(json.dumps(jsonable(obj)))


@dataclass(eq=False)
class Summary:
    """Base of the typed summaries.

    Subclasses are dataclasses whose fields default to ``None`` ("does not apply").
    ``_nested`` maps a field to the summary class of its value (or of every item of
    a list); ``_renamed`` maps keys that earlier versions wrote to today's fields.
    """

    _nested: ClassVar[dict[str, type]] = {}
    _renamed: ClassVar[dict[str, str]] = {}

    # -- conversion ---------------------------------------------------------------------
    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        """Names of the typed entries (``extra`` not included)."""
        return tuple(f.name for f in dataclasses.fields(cls) if f.name != "extra")

    def to_dict(self) -> dict:
        """Plain-JSON form: every entry that is not ``None``, then :attr:`extra`."""
        out: dict[str, Any] = {}
        for name in self.field_names():
            value = getattr(self, name)
            if value is not None:
                out[name] = jsonable(value)
        out.update(jsonable(getattr(self, "extra", {}) or {}))
        return out

    @classmethod
    def from_dict(cls, d) -> Summary:
        """Inverse of :meth:`to_dict`; unknown keys go to :attr:`extra`."""
        if isinstance(d, cls):
            return d
        if isinstance(d, Summary):
            d = d.to_dict()
        d = dict(d or {})
        names = set(cls.field_names())
        kwargs: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        for key, value in d.items():
            key = cls._renamed.get(key, key)
            if key not in names:
                extra[key] = value
                continue
            sub = cls._nested.get(key)
            if sub is not None and value is not None:
                value = ([sub.from_dict(v) for v in value] if isinstance(value, list)
                         else sub.from_dict(value))
            kwargs[key] = value
        out = cls(**kwargs)
        if "extra" in {f.name for f in dataclasses.fields(cls)}:
            out.extra = extra
        elif extra:
            raise ValueError(f"{cls.__name__} has no entries {sorted(extra)}.")
        return out

    def normalised(self) -> Summary:
        """A copy after a JSON round trip (numpy values become Python numbers)."""
        return type(self).from_dict(plain(self.to_dict()))

    def replace(self, **changes) -> Summary:
        """A copy with some entries changed."""
        return dataclasses.replace(self, **changes)

    # -- read-only mapping view, for scripts written against dict summaries ------------
    def __getitem__(self, key: str):
        extra = getattr(self, "extra", None) or {}
        if key in self.field_names():
            value = getattr(self, key)
            return extra.get(key) if value is None and key in extra else value
        if key in extra:
            return extra[key]
        raise KeyError(f"{type(self).__name__} has no entry {key!r} (entries: "
                       f"{', '.join(self.field_names())}).")

    def __contains__(self, key) -> bool:
        return key in self.keys()

    def keys(self) -> list[str]:
        """The entries present (not ``None``), as in :meth:`to_dict`."""
        return list(self.to_dict())

    def __eq__(self, other) -> bool:
        if isinstance(other, Summary):
            return type(self) is type(other) and plain(self) == plain(other)
        if isinstance(other, dict):
            return plain({k: self[k] for k in self.keys()}) == plain(other)
        return NotImplemented

    __hash__ = None  # mutable


