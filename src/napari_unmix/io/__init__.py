"""Readers and writers of stacks, spectra, maps and result summaries.

Uses :mod:`napari_unmix.core` data types; never napari or Qt.  Every writer is
atomic: it writes a temporary file and renames it onto the target on success.
"""

from .bundle import ResultBundle, is_result_bundle, read_result_bundle, write_result_bundle
from .readers import (
    lazy_threshold,
    open_stack,
    read_slice_folder,
    read_spectral_sidecar,
    read_stack,
)
from .stack import STACK_SUFFIXES, StackData
from .writers import (
    OUTPUT_NAMES,
    read_maps_tiff,
    read_spectra_csv,
    result_info,
    unit_from_header,
    write_analysis_outputs,
    write_composite_png,
    write_maps_tiff,
    write_result_json,
    write_spectra_csv,
    write_stack_tiff,
)

__all__ = [
    "OUTPUT_NAMES",
    "STACK_SUFFIXES",
    "ResultBundle",
    "StackData",
    "is_result_bundle",
    "lazy_threshold",
    "open_stack",
    "read_maps_tiff",
    "read_result_bundle",
    "read_slice_folder",
    "read_spectra_csv",
    "read_spectral_sidecar",
    "read_stack",
    "result_info",
    "unit_from_header",
    "write_analysis_outputs",
    "write_composite_png",
    "write_maps_tiff",
    "write_result_bundle",
    "write_result_json",
    "write_spectra_csv",
    "write_stack_tiff",
]
