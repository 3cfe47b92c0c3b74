"""Fixtures of the command-line tests."""

from __future__ import annotations

import pytest

from napari_unmix.cli import main


@pytest.fixture
def cli_error(capsys):
    """``cli_error(*args)``: run ``napari-unmix *args``, assert it exits 2 with exactly
    one ``napari-unmix: error:`` line and no traceback, and return that line."""
    def run(*args) -> str:
        code = main([str(a) for a in args])
        out, err = capsys.readouterr()
        assert code == 2, (out, err)
        assert "Traceback" not in err
        lines = [ln for ln in err.splitlines() if ln.startswith("napari-unmix: error:")]
        assert len(lines) == 1, err
        return lines[0]
    return run
