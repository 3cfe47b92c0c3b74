"""Readers and writers of stacks, spectra, maps and result summaries.

Uses :mod:`napari_unmix.core` data types; never napari or Qt.  Every writer is
atomic: it writes a temporary file and renames it onto the target on success.

The modules:

* :mod:`~napari_unmix.io.readers`: the one dispatcher for reading stacks,
  :func:`open_stack` and :func:`read_stack`;
* :mod:`~napari_unmix.io.stack`: :class:`StackData` and the axis rules every
  stack reader shares (a leaf: it imports no sibling);
* the formats: :mod:`~napari_unmix.io.tiff_stacks` (TIFF / OME / ImageJ / LSM;
  :mod:`~napari_unmix.io.lsm_stacks`: the Zeiss LSM metadata),
  :mod:`~napari_unmix.io.numpy_stacks` (``.npy`` / ``.npz``),
  :mod:`~napari_unmix.io.slice_folder` (folders of single-channel slices);
* helpers: :mod:`~napari_unmix.io.spectral_sidecar` (sidecar files, units),
  :mod:`~napari_unmix.io.lazy` (dask arrays), :mod:`~napari_unmix.io.tiff_log`
  (tifffile's log);
* :mod:`~napari_unmix.io.tables`: spectra CSV, maps TIFF, composite PNG and
  stack TIFF, written and read together;
* :mod:`~napari_unmix.io.results`: the result bundle, ``result.json`` and
  reading result folders;
* :mod:`~napari_unmix.io.result_folder`: the result folder, written as a whole
  (:func:`write_analysis_outputs`, :func:`check_output_folder`);
* :mod:`~napari_unmix.io.setup_files`: a saved setup, its config and the label image
  beside it (:func:`write_setup`, :func:`read_setup_labels`);
* :mod:`~napari_unmix.io.stack_layout`: where a result's maps lie in the analysed
  stack (:class:`StackLayout`), kept by both.
"""

from .readers import (
    lazy_threshold,
    open_stack,
    read_slice_folder,
    read_spectral_sidecar,
    read_stack,
)
from .result_folder import CONFIG_NAME, check_output_folder, write_analysis_outputs
from .results import (
    OUTPUT_NAMES,
    ResultBundle,
    is_result_bundle,
    read_result_bundle,
    result_info,
    write_result_bundle,
    write_result_json,
)
from .setup_files import read_setup_labels, setup_labels_path, write_setup
from .stack import STACK_SUFFIXES, StackData
from .stack_layout import StackLayout
from .tables import (
    read_maps_tiff,
    read_spectra_csv,
    unit_from_header,
    write_composite_png,
    write_maps_tiff,
    write_spectra_csv,
    write_stack_tiff,
)

__all__ = [
    "CONFIG_NAME",
    "OUTPUT_NAMES",
    "STACK_SUFFIXES",
    "ResultBundle",
    "StackData",
    "StackLayout",
    "check_output_folder",
    "is_result_bundle",
    "lazy_threshold",
    "open_stack",
    "read_maps_tiff",
    "read_result_bundle",
    "read_slice_folder",
    "read_spectra_csv",
    "read_setup_labels",
    "read_spectral_sidecar",
    "read_stack",
    "result_info",
    "setup_labels_path",
    "unit_from_header",
    "write_analysis_outputs",
    "write_composite_png",
    "write_maps_tiff",
    "write_result_bundle",
    "write_result_json",
    "write_setup",
    "write_spectra_csv",
    "write_stack_tiff",
]
