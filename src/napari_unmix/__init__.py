"""napari-unmix: spectral unmixing of hyperspectral microscopy stacks.

The numeric library lives in :mod:`napari_unmix.core` and imports neither napari
nor Qt; the napari plugin lives in :mod:`napari_unmix._napari`.  Importing this
package is cheap: it only defines the version.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
