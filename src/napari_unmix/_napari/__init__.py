"""The napari plugin: npe2 hooks and widgets over :mod:`napari_unmix.core` and ``io``.

Everything that imports napari, Qt or magicgui lives in this package, and nothing
outside it imports from here.
"""
