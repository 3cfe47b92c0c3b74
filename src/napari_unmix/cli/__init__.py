"""``napari-unmix``: headless spectral unmixing from the command line.

Two commands::

    napari-unmix run INPUT --mode {pca,nmf,seeded-nmf,nnls} [-k N] [--spectra CSV]
                     [--labels LABELS.tif] [--flat-background] [--config FILE] --out DIR
    napari-unmix demo [--out DIR]

``run`` unmixes one stack (TIFF, .npy or .npz) and writes the maps (TIFF), the
spectra (CSV), a false-colour composite (PNG), ``result.json`` and the exact result
(``result.npz``).  ``demo`` builds the bundled synthetic CRS sample, runs every
available mode and implementation on it and prints how well each recovered the
known ground truth.

Bad input (a missing or unreadable file, NaN in the stack, negative values without
``--negative``, ``k`` too large, spectra of the wrong length ...) prints one line
``napari-unmix: error: ...`` to stderr and exits with status 2.  ``--debug`` shows
the full traceback instead.

Modes come from :data:`napari_unmix.core.MODES` and solver / backend names from the
solver tables, so new ones appear here without changes to this package.

Modules:

* :mod:`.main` -- :func:`build_parser` and :func:`main`, the console script's entry;
* :mod:`.run` -- the ``run`` command;
* :mod:`.demo` -- the ``demo`` command;
* :mod:`.console` -- messages, the progress bar, collected warnings, :class:`CLIError`;
* :mod:`.outputs` -- the output folder and the output set of one result.
"""

from .main import build_parser, main

__all__ = ["build_parser", "main"]
