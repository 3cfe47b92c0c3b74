"""``run --config``: the config of an earlier run, from a file or a result, and its labels.

``--config`` takes

* an :class:`~napari_unmix.core.config.AnalysisConfig` JSON file: the
  ``config.json`` every run writes into its result folder, or a file saved with
  :meth:`AnalysisConfig.save`;
* a result folder: its ``config.json``, else the config inside its ``result.npz``
  (folders written before ``config.json`` existed);
* a result ``.npz`` file (the config inside it), or a result folder's
  ``result.json`` (read as its folder).

When the config comes from a result (or is the ``config.json`` of a result folder)
the checksum of the label image that result was made with is known
(``summary.labels_sha256``, :func:`napari_unmix.core.analysis.labels_sha256`):
:func:`check_labels` refuses a ``--labels`` image with another checksum, since its
label ids would seed other pixels, unless ``--new-labels`` is given; and a config
whose seeds are label ids (``RoiLabel``) without ``--labels`` is refused with what
to pass.  A setup saved beside its label image (the dock's "Save setup" of labels
painted plane by plane: ``setup.json`` naming ``setup.labels.tif`` and its checksum in
``label_image``) brings that image: :func:`run_labels` reads it when ``--labels`` is not
given, and a ``--labels`` image or a file beside it with another checksum is refused
the same way.  A result folder of a run seeded from label ids keeps its label image
the same way (``labels.tif``, named in its ``config.json``), so it reruns without
``--labels`` too.  A z / t series result records the checksum of the labels its planes
were fitted with (``summary.labels_sha256``: plane N's for a shared basis from plane
N), and its rerun compares it once its labels are put on those planes.  The config of
a z / t series result comes with the series' params (:attr:`ConfigSource.series`, from
its ``result.json`` or ``result.npz``), so that ``run`` reruns it plane by plane as it
ran (:func:`napari_unmix.cli.series.series_plan`); a setup saved with a series choice
(its config's ``series``) brings that choice the same way.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core import MODES, AnalysisConfig
from ..core.analysis import labels_sha256
from ..io import CONFIG_NAME, OUTPUT_NAMES, read_result_bundle
from ..io.results import RESULT_JSON_FORMAT
from .console import CLIError

__all__ = ["ConfigSource", "check_labels", "read_config", "run_labels"]


@dataclass
class ConfigSource:
    """A config read by ``--config``.

    Attributes
    ----------
    config : AnalysisConfig
    path : Path
        What ``--config`` named.
    labels_sha256 : str or None
        The checksum of the label image of the result it came from, where known.
    series : dict or None
        The series params of a z / t series result (strategy, axes, reference,
        matching, planes), or a saved setup's series choice (its config's
        ``series``, the same keys): ``run`` reruns it as that series (:mod:`.series`).
    spectral_values : ndarray or None
        The spectral values of the channels of the result it came from, and their
        ``spectral_unit``: a rerun on a stack without an axis of its own takes them.
    labels_file : Path or None
        The label image saved beside a setup (its ``label_image``), read when
        ``--labels`` is not given; its checksum is ``labels_sha256``.
    """

    config: AnalysisConfig
    path: Path
    labels_sha256: str | None = None
    series: dict | None = None
    spectral_values: np.ndarray | None = None
    spectral_unit: str | None = None
    labels_file: Path | None = None

    def __post_init__(self):
        ref = self.config.label_image
        if ref is not None and self.labels_file is None:  # a setup beside its label image
            where = self.path / CONFIG_NAME if self.path.is_dir() else self.path
            self.labels_file = ref.resolve(where)
            self.labels_sha256 = ref.sha256
        if self.series is None and self.config.series is not None:  # a setup's choice
            self.series = self.config.series.to_dict()


def _result_doc(folder: Path) -> dict | None:
    """The result folder's ``result.json``, when it is one (format marker)."""
    try:
        doc = json.loads((folder / OUTPUT_NAMES["json"]).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return doc if isinstance(doc, dict) and doc.get("format") == RESULT_JSON_FORMAT else None


def _recorded_series(doc: dict | None) -> dict | None:
    """The series facts of a series result's ``result.json`` (``params.series``)."""
    params = (doc or {}).get("params")
    series = params.get("series") if isinstance(params, dict) else None
    if not isinstance(series, dict):
        return None
    summary = (doc or {}).get("summary")
    n = summary.get("n_planes") if isinstance(summary, dict) else None
    return {**series, "n_planes": n}


def _recorded_sha(doc: dict | None) -> str | None:
    summary = (doc or {}).get("summary")
    sha = summary.get("labels_sha256") if isinstance(summary, dict) else None
    return sha if isinstance(sha, str) and sha else None


def _recorded_axis(folder: Path) -> dict:
    """``spectral_values`` and ``spectral_unit`` of the result folder's bundle (empty
    when it has none, or it cannot be read: the axis is then not known)."""
    try:
        with np.load(folder / OUTPUT_NAMES["bundle"], allow_pickle=False) as z:
            if "spectral_axis" not in z.files:
                return {}
            values = np.asarray(z["spectral_axis"], dtype=np.float64)
            unit = json.loads(str(z["meta"])).get("spectral_unit") if "meta" in z.files else None
    except (OSError, ValueError, KeyError, json.JSONDecodeError, AttributeError):
        return {}
    return {"spectral_values": values, "spectral_unit": unit if isinstance(unit, str) else None}


#: the options of ``run`` that repeat a fit's params, for a result without a config
_RUN_FLAGS = {"mode": "--mode", "n_components": "-k", "solver": "--solver",
              "backend": "--backend", "max_iter": "--max-iter", "tol": "--tol",
              "random_state": "--random-state", "negative": "--negative",
              "abundance": "--abundance", "loss": "--loss"}


def _no_config(result, given: Path) -> CLIError:
    """The error for a result made without ``run_analysis`` (a demo run): the options
    that repeat its fit, from its params."""
    params = result.params
    flags = " ".join(f"{flag} {params[key]}" for key, flag in _RUN_FLAGS.items()
                     if params.get(key) is not None)
    spec = MODES.get(result.mode)
    spectra = (" --spectra " + str(Path(given) / "spectra.csv")   # the spectra it kept
               if spec is not None and spec.fixed_spectra and Path(given).is_dir() else "")
    return CLIError(f"--config {given}: this result holds no analysis config (it was made "
                    "by fitting the stack directly, as the demo's runs are, not by 'run'); "
                    f"give its settings as options instead: {flags}{spectra}.")


def _config_of_result(path: Path, given: Path) -> ConfigSource:
    try:
        bundle = read_result_bundle(path)
    except ValueError as exc:
        raise CLIError(f"--config {given}: {exc}") from None
    if "config" not in bundle.result.params:
        raise _no_config(bundle.result, given)
    try:
        cfg = AnalysisConfig.from_result(bundle.result)
    except ValueError as exc:
        raise CLIError(f"--config {given}: {exc}") from None
    series = bundle.result.params.get("series")
    if isinstance(series, dict):
        series = {**series, "n_planes": getattr(bundle.result.summary, "n_planes", None)}
    res = bundle.result
    return ConfigSource(cfg, given, getattr(res.summary, "labels_sha256", None),
                        series if isinstance(series, dict) else None,
                        spectral_values=res.spectral_values, spectral_unit=res.spectral_unit)


def _config_file(path: Path, given: Path) -> AnalysisConfig | ConfigSource:
    """The config in a JSON file, or the result folder a ``result.json`` belongs to."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CLIError(f"--config {given} is not a JSON file ({exc}); give the config.json "
                       "of a result folder, the folder itself, or a file saved by "
                       "AnalysisConfig.save.") from None
    if isinstance(doc, dict) and doc.get("format") == RESULT_JSON_FORMAT:
        return _read_folder(path.parent, given)
    if not isinstance(doc, dict):
        raise CLIError(f"--config {given} holds a JSON {type(doc).__name__}, not an analysis "
                       "config; give the config.json of a result folder or the folder.")
    try:
        return AnalysisConfig.from_dict(doc)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise CLIError(f"--config {given} is not a valid analysis config ({exc}).") from None


def _read_folder(folder: Path, given: Path) -> ConfigSource:
    doc = _result_doc(folder)
    if (folder / CONFIG_NAME).is_file():
        cfg = _config_file(folder / CONFIG_NAME, given)
        if isinstance(cfg, ConfigSource):
            return cfg
        return ConfigSource(cfg, given, _recorded_sha(doc), _recorded_series(doc),
                            **(_recorded_axis(folder) if doc is not None else {}))
    if doc is None:
        raise CLIError(f"--config {given} is a folder but not a napari-unmix result folder (no "
                       f"{CONFIG_NAME} or {OUTPUT_NAMES['json']}); give a config file or a "
                       "result folder.")
    return _config_of_result(folder, given)


def read_config(path) -> ConfigSource:
    """The config ``--config`` names (a file, a result folder or a result ``.npz``).

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    ConfigSource

    Raises
    ------
    CLIError
        Missing, unreadable, or not a config or result.
    """
    given = Path(path)
    if not given.exists():
        raise CLIError(f"config file {given} not found.")
    if given.is_dir():
        return _read_folder(given, given)
    if given.suffix.lower() == ".npz":
        return _config_of_result(given, given)
    cfg = _config_file(given, given)
    if isinstance(cfg, ConfigSource):
        return cfg
    doc = _result_doc(given.parent) if given.name == CONFIG_NAME else None
    return ConfigSource(cfg, given, _recorded_sha(doc), _recorded_series(doc),
                        **(_recorded_axis(given.parent) if doc is not None else {}))


def run_labels(source: ConfigSource | None, labels_path, spatial_shape, *,
               plane_shape=None, new_labels: bool = False, compare: bool = True):
    """The label image of a run: ``--labels``, else the one saved beside a setup or in
    a result folder (``source.labels_file``), checked (:func:`check_labels`).

    ``compare=False`` leaves the checksum of ``--labels`` unchecked (only a missing
    image, or a changed file beside the config, is refused): a series run compares it
    once its labels are put on the plane(s) it fits (``check_labels(..., placed=...)``).

    Returns
    -------
    labels : ndarray or None
    path : Path or None
        The file it was read from.
    """
    from .seed_inputs import read_labels

    path = None if labels_path is None else Path(labels_path)
    beside = source is not None and path is None and source.labels_file is not None
    if beside:
        path = source.labels_file
        if not path.is_file():
            raise CLIError(f"--config {source.path} takes its label ids from the label image "
                           f"{path.name} saved beside it, which is not there ({path.parent}); "
                           "put it back (the two files belong together), or pass the label "
                           "image with --labels LABELS.tif.")
    labels = None if path is None else read_labels(path, spatial_shape,
                                                   plane_shape=plane_shape)
    # the file beside a config is always the one it names; --labels of a series run may
    # be the whole image of labels whose placed part is the one recorded
    check_labels(source, path, labels, new_labels=not beside and (new_labels or not compare))
    return labels, path


def check_labels(source: ConfigSource | None, labels_path, labels, *,
                 new_labels: bool = False, placed=None) -> None:
    """Refuse a rerun whose label image is missing or not the config's.

    Parameters
    ----------
    source : ConfigSource or None
        ``--config`` (None: no config, nothing to check).
    labels_path : str or None
        ``--labels``.
    labels : ndarray or None
        The label image read from it.
    new_labels : bool
        ``--new-labels``: run with a label image other than the recorded one.
    placed : ndarray, optional
        A series run's labels as put on the plane(s) it fits (plane N's for a shared
        basis from plane N): a series result records those (``summary.labels_sha256``
        of what :func:`~napari_unmix.core.series.unmix_series` got), so either
        ``labels`` or ``placed`` may have the recorded checksum.

    Raises
    ------
    CLIError
    """
    if source is None:
        return
    if labels is None:
        users = source.config.label_users()
        if users:
            raise CLIError(f"the config {source.path} seeds {', '.join(users)} from the ids of "
                           "a label image; pass that image with --labels LABELS.tif (or .npy).")
        return
    if source.labels_sha256 is None or new_labels:
        return
    got = labels_sha256(labels)
    if placed is not None and labels_sha256(placed) == source.labels_sha256:
        return
    if got != source.labels_sha256 and labels_path == source.labels_file:
        what = ("the result was written" if _result_doc(source.labels_file.parent)
                else "the setup was saved")
        raise CLIError(f"the label image {labels_path} beside --config {source.path} was "
                       f"changed since {what} (labels checksum {got[:12]}..., "
                       f"recorded {source.labels_sha256[:12]}...): its label ids would seed "
                       "other pixels. Put back the file saved with it, or pass a label image "
                       "with --labels LABELS.tif --new-labels to run with another one.")
    if got != source.labels_sha256:
        whose = (f"--config {source.path} was saved with" if source.labels_file is not None
                 else f"the result of --config {source.path} was made with")
        raise CLIError(f"the label image --labels {labels_path} is not the one {whose} "
                       f"(labels checksum "
                       f"{got[:12]}..., recorded {source.labels_sha256[:12]}...): its label "
                       "ids would seed other pixels. Pass the original label image, or "
                       "--new-labels to run with this one.")
