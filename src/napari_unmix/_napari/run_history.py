"""The dock's run history: every run's maps named and grouped by run, kept or replaced.

Each published run (or opened result) becomes a :class:`RunRecord` with a number;
its map layers are named ``"run 3 · lipid"`` (:func:`layer_name`) and sit together
in the layer list.  What happens to the maps of earlier runs of the same image when a
new run is published is the dock's choice (:data:`KEEP_CHOICES`):

``replace`` (the default)
    the earlier runs' maps are replaced by the new ones, except layers the user
    renamed: a renamed layer is the user's, and is never removed;
``keep``
    every run's maps stay, so that two runs (seeded and random, two settings ...) can
    be compared side by side (napari's grid mode shows them next to each other).

A run stays in the history while at least one of its layers is in the viewer
(:meth:`RunHistory.prune`); its result stays reachable from the dock: shown (its
spectra, summary, pixel inspector, seeds), or compared with the one shown (both sets
of spectra in the spectra dock).

Nothing here imports Qt or napari.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["KEEP_CHOICES", "RunHistory", "RunRecord", "layer_name"]

#: What a new run does with the earlier maps of its image: menu text -> value.
KEEP_CHOICES = {"replace earlier maps (renamed ones stay)": "replace",
                "keep earlier maps (compare runs)": "keep"}


def layer_name(number: int, component: str) -> str:
    """The name of the map layer of ``component`` in run ``number``."""
    return f"run {int(number)} · {component}"


@dataclass(eq=False)
class RunRecord:
    """One published run or opened result.

    ``result`` is the :class:`~napari_unmix.core.result.UnmixResult` (the whole
    series after a series run, whose :class:`~napari_unmix.core.series.SeriesResult`
    is ``series_result``), ``colors`` its components' colours, ``image`` the name of
    the image it was computed from when it was published and ``image_uid`` that
    layer's identity (the run follows its image by it, whatever its name becomes),
    ``layer_uids`` its map layers; ``source`` says
    where an opened result came from (``None`` for a run of the dock).
    """

    number: int
    result: object
    image: str | None
    colors: list
    series_result: object = None
    series_axis: int | None = None
    spectral_axis: int = 0
    layer_uids: list = field(default_factory=list)
    source: str | None = None
    residual_uid: str | None = None
    image_uid: str | None = None
    #: the spatial shape of its maps (None: not known)
    spatial_shape: tuple | None = None
    #: the run's label image (its ROI seeds and background came from it), if any
    labels: object = None

    @property
    def label(self) -> str:
        """A one-line description for the dock's menus."""
        from .summary_text import mode_label

        res = self.result
        err = getattr(res.summary, "relative_error", None)
        where = f" of {self.source}" if self.source else ""
        text = (f"run {self.number}{where} · {mode_label(res.mode)} · "
                f"{res.n_components} components")
        return text + (f" · relative error {float(err):.3g}" if err is not None else "")


class RunHistory:
    """The runs of one dock, in order (see the module documentation)."""

    def __init__(self):
        self.runs: list[RunRecord] = []
        self._next = 1

    def new_number(self) -> int:
        """The number of the next run."""
        n = self._next
        self._next += 1
        return n

    def add(self, record: RunRecord) -> RunRecord:
        self.runs.append(record)
        return record

    def release(self, uids) -> None:
        """The layers ``uids`` now belong to a new run: no earlier run holds them."""
        taken = set(uids)
        for r in self.runs:
            r.layer_uids = [u for u in r.layer_uids if u not in taken]

    def find(self, number) -> RunRecord | None:
        return next((r for r in self.runs if r.number == number), None)

    def prune(self, present_uids) -> list[RunRecord]:
        """Forget the runs none of whose layers is in the viewer any more
        (``present_uids``: the layers' identities); returns those forgotten."""
        present = set(present_uids)
        gone = [r for r in self.runs if not present & set(r.layer_uids)]
        self.runs = [r for r in self.runs if r not in gone]
        return gone

    def __len__(self) -> int:
        return len(self.runs)
