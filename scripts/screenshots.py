"""Screenshots of the napari-unmix plugin for the README and the user guide.

Run it headless under Xvfb::

    xvfb-run -a python scripts/screenshots.py --out docs/images

It does what a user does, through the plugin's real entry points:

1. opens napari and the bundled synthetic CRS sample (``File > Open Sample >
   napari-unmix``);
2. paints a Labels layer with a brush over a few structures one recognises in the
   stack: lipid droplets, two nuclei (protein) and the medium outside the cells
   (water);
3. opens the "Spectral unmixing" dock from the plugin manifest, makes one
   component per label with "Components from layer", adds a fourth row for the
   non-resonant background (source "flat (non-resonant)", ticked "background"
   and "lock": it is spectrally flat, and locking it keeps that offset out of the
   other spectra), names the rows and picks their colours;
4. chooses "Seeded NNMF", presses Run and waits, in a Qt event loop, for the
   worker to finish;
5. hides the raw stack and the seed labels so that the canvas shows the
   false-colour composite of the component maps, and saves

   * ``viewer.png``: the whole window (canvas, unmixing dock with the component
     table and fit summary, spectra dock);
   * ``spectra.png``: the spectra dock's figure alone, drawn ``--dpi-scale`` times
     finer than on screen;
   * ``composite.png``: the canvas alone;

6. and the states of issue 13 (:func:`new_states`): ``inspector.png`` (the pixel
   inspector on a lipid droplet), ``residual.png`` (the run's residual map),
   ``figure.png`` (the exported figure: legend and scale bar) and ``runs.png`` (a
   second, random NNMF run kept beside the seeded one and compared with it).

BLAS runs single-threaded (``OPENBLAS_NUM_THREADS=1`` unless set), so that the
numbers in the pictures are the same on every machine.

The brush positions are found from the sample's known ground truth (stored in the
image layer's metadata), so that the script paints the same structures on every
run; a user would simply see them.  PNGs are saved optimised (palette-reduced when
that keeps them well below ``--max-kb``).
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import time
from pathlib import Path

# Single-threaded BLAS (unless the caller sets it): the same numbers, iteration count
# and summary text on every machine.  It is also much faster here: with OpenBLAS's
# default threads the run in napari's worker took 75-145 s on a busy 2-core machine,
# against 5 s single-threaded.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

#: Component names of the rows, in label order (label 1 = lipid ...).
NAMES = ("lipid", "protein", "water", "background")
#: Colours picked for the rows (Okabe-Ito orange, reddish purple, blue, grey).  The
#: default order gives protein sky blue and water bluish green, two cool colours that
#: add up to a pale cyan wherever cells and medium meet.
COLORS = ("#E69F00", "#CC79A7", "#0072B2", "#BBBBBB")


# -- where to paint --------------------------------------------------------------------
def _blobs(image, threshold):
    """(centre, peak value, size) of every connected region above ``threshold``."""
    from scipy import ndimage as ndi

    lab, n = ndi.label(image > threshold)
    idx = list(range(1, n + 1))
    centres = ndi.center_of_mass(image, lab, idx)
    peaks = ndi.maximum(image, lab, idx)
    sizes = ndi.sum(np.ones_like(image), lab, idx)
    return sorted(zip(centres, peaks, sizes, strict=True), key=lambda b: -b[1])


def brush_strokes(maps: np.ndarray) -> dict[int, list[tuple[float, float, int]]]:
    """Brush dabs ``{label: [(y, x, brush size), ...]}`` over recognisable structures.

    ``maps`` is the true abundance maps ``(4, Y, X)`` of the sample (lipid,
    protein, water, background).  Label 1: lipid droplets, 2: nuclei, 3: the
    medium.  The flat non-resonant background lies under every pixel, so no
    region shows it alone; it gets no label (see :func:`main`).
    """
    lipid, protein, _water, _ = maps
    ny, nx = lipid.shape
    strokes: dict[int, list] = {1: [], 2: [], 3: []}
    # 1: the four brightest lipid droplets, a small dab on each
    for (cy, cx), _, _ in _blobs(lipid, 0.5)[:4]:
        strokes[1].append((cy, cx, 3))
    # 2: the two largest nuclei (where protein is highest), a few dabs inside
    nuclei = sorted(_blobs(protein, 0.8), key=lambda b: -b[2])[:2]
    for (cy, cx), _, _ in nuclei:
        for dy, dx in ((0, 0), (-2, 2), (2, -2)):
            strokes[2].append((cy + dy, cx + dx, 5))
    # 3: the medium, away from every cell: a short stroke in the emptiest corner
    occupied = protein + lipid
    corners = {(0.12, 0.12): None, (0.12, 0.88): None, (0.88, 0.12): None, (0.88, 0.88): None}
    for fy, fx in corners:
        y0, x0 = int(fy * ny), int(fx * nx)
        corners[(fy, fx)] = occupied[max(0, y0 - 8):y0 + 8, max(0, x0 - 8):x0 + 8].sum()
    fy, fx = min(corners, key=corners.get)
    for d in range(-6, 7, 3):
        strokes[3].append((fy * ny + d * 0.5, fx * nx + d, 7))
    return strokes


def paint_labels(viewer, shape, strokes, name="seed regions"):
    """A Labels layer painted with the brush (``Labels.paint``), as by hand."""
    layer = viewer.add_labels(np.zeros(shape, dtype=np.uint8), name=name, opacity=0.6)
    for label, dabs in strokes.items():
        for y, x, size in dabs:
            layer.brush_size = size
            layer.paint((y, x), label, refresh=False)
    layer.refresh()
    return layer


# -- Qt helpers ------------------------------------------------------------------------
def process_events(seconds=0.3):
    from qtpy.QtWidgets import QApplication

    end = time.monotonic() + seconds
    while time.monotonic() < end:
        QApplication.processEvents()
        time.sleep(0.02)


def wait_for(predicate, timeout_s, what):
    """Run the Qt event loop until ``predicate()`` is true (or fail after the timeout)."""
    from qtpy.QtCore import QEventLoop, QTimer

    loop = QEventLoop()
    timer = QTimer()
    timer.setInterval(50)
    timer.timeout.connect(lambda: loop.quit() if predicate() else None)
    deadline = QTimer()
    deadline.setSingleShot(True)
    deadline.timeout.connect(loop.quit)
    timer.start()
    deadline.start(int(timeout_s * 1000))
    if not predicate():
        loop.exec()
    timer.stop()
    deadline.stop()
    if not predicate():
        raise TimeoutError(f"{what} did not finish within {timeout_s:g} s.")


def dock_of(widget):
    """The QDockWidget that holds ``widget`` (found through its Qt parents)."""
    from qtpy.QtWidgets import QDockWidget

    w = widget
    while w is not None and not isinstance(w, QDockWidget):
        w = w.parentWidget()
    if w is None:
        raise RuntimeError(f"{type(widget).__name__} is not docked")
    return w


def arrange(viewer, dock, spectra_height):
    """Give the spectra dock ``spectra_height`` pixels (as a user drags the splitter)
    and scroll the unmixing dock down to the component table and the fit summary."""
    from qtpy.QtCore import Qt
    from qtpy.QtWidgets import QScrollArea

    main = viewer.window._qt_window  # the QMainWindow: resizeDocks is its own API
    upper, lower = dock_of(dock), dock_of(dock.spectra_plot)
    total = upper.height() + lower.height()
    main.resizeDocks([upper, lower], [total - spectra_height, spectra_height],
                     Qt.Orientation.Vertical)
    process_events()
    scroll = dock.findChild(QScrollArea)
    top = dock.components_box.mapTo(scroll.widget(), dock.components_box.rect().topLeft())
    scroll.verticalScrollBar().setValue(top.y() - 4)


# -- saving ----------------------------------------------------------------------------
def save_png(rgb: np.ndarray, path: Path, max_kb: int) -> int:
    """Save an RGB(A) array as an optimised PNG; returns its size in bytes.

    Tries a lossless optimised PNG first; if that is larger than ``max_kb``, an
    adaptive 256-colour palette (dithering off: flat UI colours stay flat).
    """
    from PIL import Image

    img = Image.fromarray(np.ascontiguousarray(rgb[..., :3]).astype(np.uint8), "RGB")
    buf = io.BytesIO()
    img.save(buf, "PNG", optimize=True)
    if buf.tell() > max_kb * 1024:
        buf = io.BytesIO()
        img.quantize(colors=256, method=Image.Quantize.MEDIANCUT,
                     dither=Image.Dither.NONE).save(buf, "PNG", optimize=True)
    path.write_bytes(buf.getvalue())
    return path.stat().st_size


def trim(rgb: np.ndarray) -> np.ndarray:
    """Cut away the uniform canvas border around the image."""
    border = rgb[0, 0]
    inside = np.any(rgb != border, axis=-1)
    ys, xs = np.nonzero(inside)
    if ys.size == 0:
        return rgb
    return rgb[ys.min():ys.max() + 1, xs.min():xs.max() + 1]


def render_figure(figure, scale: float) -> np.ndarray:
    """The spectra dock's matplotlib figure, drawn ``scale`` times finer, as RGB."""
    buf = io.BytesIO()
    figure.savefig(buf, format="png", dpi=figure.dpi * scale,
                   facecolor=figure.get_facecolor())
    from PIL import Image

    buf.seek(0)
    return np.asarray(Image.open(buf).convert("RGB"))


# -- the states of issue 13 ---------------------------------------------------------------
def new_states(viewer, dock, image, residual, maps_layers, args) -> dict:
    """``inspector.png`` (a lipid droplet's pixel in the spectra dock), ``residual.png``
    (the residual map alone), ``figure.png`` ("Export figure…") and ``runs.png`` (a
    second, random NNMF run kept beside the first and compared with it)."""
    from napari_unmix._napari.figure_export import export_figure

    sizes = {}
    truth = image.metadata["ground_truth"]
    lipid = np.asarray(truth["W"])[:, 0].reshape(image.data.shape[1:])
    y, x = np.unravel_index(int(np.argmax(lipid)), lipid.shape)
    view = dock.inspect_at(image.data_to_world((0, y, x)))
    if view is None:
        raise RuntimeError("the pixel inspector showed nothing")
    process_events(0.5)
    sizes["inspector.png"] = save_png(render_figure(dock.spectra_plot.figure, args.dpi_scale),
                                      args.out / "inspector.png", args.max_kb)
    for lyr in maps_layers:
        lyr.visible = False
    residual.visible = True
    process_events(0.5)
    canvas = trim(viewer.screenshot(canvas_only=True, flash=False))
    sizes["residual.png"] = save_png(canvas, args.out / "residual.png", args.max_kb)
    residual.visible = False
    for lyr in maps_layers:
        lyr.visible = not lyr.metadata.get("napari_unmix", {}).get("background", False) \
            and lyr.name != "run 1 · background"
    process_events(0.3)
    tmp = args.out / ".figure.png"
    export_figure(dock, tmp, dpi=110)
    from PIL import Image

    rgb = np.asarray(Image.open(tmp).convert("RGB"))
    tmp.unlink()
    sizes["figure.png"] = save_png(rgb, args.out / "figure.png", args.max_kb)

    # a second run, random NNMF, kept beside the first and compared with it
    h = dock.history
    h.keep.setCurrentIndex(h.keep.findData("keep"))
    h.residual.setChecked(False)
    f = dock.form
    f.mode.value = "nmf"
    f.n_components.value = 4
    dock.run_button.click()
    wait_for(lambda: dock.job.done, args.timeout, "the random NNMF run")
    for lyr in viewer.layers:
        if lyr.name.startswith("run 1"):
            lyr.visible = False
    h.compare.setCurrentIndex(h.compare.findData(1))
    viewer.grid.enabled = False
    process_events(0.5)
    from qtpy.QtWidgets import QScrollArea

    scroll = dock.findChild(QScrollArea)
    top = h.mapTo(scroll.widget(), h.rect().topLeft())
    scroll.verticalScrollBar().setValue(top.y() - 4)
    process_events(1.0)
    shot = viewer.screenshot(canvas_only=False, flash=False)
    sizes["runs.png"] = save_png(shot, args.out / "runs.png", args.max_kb)
    return sizes


# -- the session -------------------------------------------------------------------------
def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=Path("docs/images"), help="output folder")
    p.add_argument("--size", type=int, nargs=2, default=(1400, 900), metavar=("W", "H"),
                   help="window size in pixels (default 1400 900)")
    p.add_argument("--max-kb", type=int, default=280, help="largest PNG before palette "
                   "reduction, in KiB (default 280)")
    p.add_argument("--spectra-height", type=int, default=330, metavar="PX",
                   help="height of the spectra dock in the window (default 330)")
    p.add_argument("--dpi-scale", type=float, default=2.0, help="spectra.png is drawn this "
                   "many times finer than on screen (default 2)")
    p.add_argument("--timeout", type=float, default=300.0, help="longest wait for the run [s]")
    p.add_argument("--keep-open", action="store_true", help="leave the viewer open (with a "
                   "display, to look around)")
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    import napari
    from napari_unmix._napari.layers import result_layers

    viewer = napari.Viewer(title="napari-unmix", show=True)
    viewer.window.set_geometry(0, 0, *args.size)
    layers = viewer.open_sample("napari-unmix", "crs")
    image = layers[0]
    truth = image.metadata["ground_truth"]
    shape = image.data.shape[1:]
    maps = np.asarray(truth["W"]).T.reshape((-1, *shape))

    labels = paint_labels(viewer, shape, brush_strokes(maps))
    _, dock = viewer.window.add_plugin_dock_widget("napari-unmix", "Spectral unmixing")
    process_events()

    # one component per painted label ...
    dock.rows_layer.setCurrentText(labels.name)
    dock.rows_button.click()
    # ... and one more for the non-resonant background.  It is everywhere, so no
    # painted region shows it alone (a region of cytoplasm, tried first, handed the
    # cytoplasm's protein to the "background"; with no source, the residual fallback
    # returned a noisy spectrum and the offset stayed in the other three).  What a
    # CRS user knows is that it is flat: seed it flat and lock it.
    dock.add_button.click()
    rows = dock.table.rows
    if len(rows) != len(NAMES):
        raise RuntimeError(f"expected {len(NAMES)} rows, got {len(rows)}")
    for row, name, color in zip(rows, NAMES, COLORS, strict=True):
        row.name.setText(name)
        row.name.editingFinished.emit()
        row.set_color(color)  # what the colour button's dialog does
        row.changed.emit()
    bg = rows[-1]
    bg.kind.setCurrentIndex(bg.kind.findData("flat"))
    bg.background.setChecked(True)  # its map starts hidden in the composite
    bg.locked.setChecked(True)

    f = dock.form
    f.mode.value = "seeded-nmf"
    f.random_state.value = "0"
    dock.history.residual.setChecked(True)  # the residual map of the run, for residual.png
    dock.preview_button.click()  # dashed ROI mean spectra, as a user checks the seeds
    process_events()

    t0 = time.perf_counter()
    dock.run_button.click()
    if dock.job is None:
        raise RuntimeError(f"the run was refused: {dock.status.text()}")
    wait_for(lambda: dock.job.done, args.timeout, "the seeded NNMF run")
    elapsed = time.perf_counter() - t0
    if dock.result is None:
        raise RuntimeError(f"the run did not produce a result: {dock.status.text()}")
    print(f"seeded NNMF: {dock.result.n_iter} iterations, {elapsed:.1f} s wall")
    print(dock.summary.text())
    for row in dock.table.rows:
        print(f"  {row.name.text():10s} {row.report.text()}")

    # what a user looks at: the composite alone (raw stack, seeds, residual hidden)
    image.visible = False
    labels.visible = False
    residual = viewer.layers["run 1 · residual"]
    residual.visible = False
    maps_layers = [lyr for lyr in result_layers(viewer, source_image=image.name)
                   if lyr is not residual]
    viewer.layers.selection.active = maps_layers[0]
    arrange(viewer, dock, args.spectra_height)
    viewer.reset_view()
    process_events(1.0)

    sizes = {}
    shot = viewer.screenshot(canvas_only=False, flash=False)
    sizes["viewer.png"] = save_png(shot, args.out / "viewer.png", args.max_kb)
    sizes["spectra.png"] = save_png(render_figure(dock.spectra_plot.figure, args.dpi_scale),
                                    args.out / "spectra.png", args.max_kb)
    canvas = trim(viewer.screenshot(canvas_only=True, flash=False))
    sizes["composite.png"] = save_png(canvas, args.out / "composite.png", args.max_kb)
    sizes.update(new_states(viewer, dock, image, residual, maps_layers, args))
    for name, size in sizes.items():
        print(f"wrote {args.out / name} ({size / 1024:.0f} KiB)")
    if args.keep_open:
        napari.run()
    else:
        viewer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
