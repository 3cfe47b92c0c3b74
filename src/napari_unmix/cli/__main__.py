"""``python -m napari_unmix.cli``: the same as the ``napari-unmix`` command."""

import sys

from .main import main

sys.exit(main())
