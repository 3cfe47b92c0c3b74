"""The manifest ships in the wheel and npe2 finds and validates it there.

``npe2 validate napari-unmix`` must pass from an editable install (the test
environment) and from a built wheel.  The wheel test builds one from a copy of the
tracked sources, installs it (without dependencies) into a folder of its own, and
asks npe2 for the manifest of the distribution found first on that path.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = ROOT / "src" / "napari_unmix" / "napari.yaml"


def _run(args, **kwargs):
    proc = subprocess.run(args, capture_output=True, text=True, timeout=300, **kwargs)
    assert proc.returncode == 0, f"{args}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    return proc


def _npe2_cli():
    exe = Path(sys.executable).with_name("npe2")
    if not exe.exists():
        pytest.skip(f"the npe2 command is not installed next to {sys.executable}")
    return str(exe)


def test_npe2_validate_passes_for_the_installed_plugin():
    proc = _run([_npe2_cli(), "validate", "napari-unmix", "--imports"])
    assert "valid" in (proc.stdout + proc.stderr)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    pytest.importorskip(
        "setuptools", minversion="77",
        reason="building the wheel needs setuptools >= 77 (PEP 639 license field)",
    )
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md", "LICENSE", "napari.yaml", "src"):
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, src / name, symlinks=True,
                            ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        elif path.exists() or path.is_symlink():
            shutil.copy2(path, src / name, follow_symlinks=False)
    out = tmp_path_factory.mktemp("dist")
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
          "--quiet", "-w", str(out), str(src)])
    (whl,) = out.glob("napari_unmix-*.whl")
    return whl


def test_wheel_carries_the_manifest_and_its_entry_point(wheel):
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        assert "napari_unmix/napari.yaml" in names
        assert zf.read("napari_unmix/napari.yaml") == MANIFEST.read_bytes()
        (ep_file,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        entry_points = zf.read(ep_file).decode()
    assert "[napari.manifest]" in entry_points
    assert "napari-unmix = napari_unmix:napari.yaml" in entry_points


def test_npe2_validates_the_manifest_from_the_installed_wheel(wheel, tmp_path):
    target = tmp_path / "site"
    _run([sys.executable, "-m", "pip", "install", "--no-deps", "--quiet",
          "--target", str(target), str(wheel)])
    code = (
        "import napari_unmix, npe2\n"
        "pm = npe2.PluginManifest.from_distribution('napari-unmix')\n"
        "pm.validate_imports()\n"
        "print(pm.name, '|', napari_unmix.__file__)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(target)}
    proc = _run([sys.executable, "-c", code], env=env, cwd=tmp_path)
    name, module_file = proc.stdout.strip().split(" | ")
    assert name == "napari-unmix"
    # the package and the manifest came from the wheel's copy, not the source tree
    assert Path(module_file).is_relative_to(target)
