"""Issue 14, items 4 and 8 and the stale composites of 10: an output set is whole or absent.

A result folder is written into a temporary folder beside it and swapped in whole
(``napari_unmix.core._files.atomic_folder``).  These tests break the write at each
phase, one file after another and then the swap itself, with SIGINT, SIGTERM, a
full disk (a patched write raising ENOSPC, and a real 256 kB tmpfs where it can be
mounted) and a refused rename (EPERM: a patched ``os.replace`` / ``os.rename``, since
root ignores read-only folders).  After each, the folder holds the earlier set
byte for byte (or, for a signal that came during the swap, the whole new set) and
no temporary file or folder is left anywhere.

Each test failed on the code before (file-by-file atomic writes: a mixed set, the
hidden ``.tmp`` files of SIGTERM, 0600 files, stale ``composite_z*.png``), checked
against a worktree of that commit.
"""

from __future__ import annotations

import contextlib
import errno
import inspect
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from napari_unmix.core import AnalysisConfig, UnmixResult, run_analysis
from napari_unmix.io import read_result_bundle, write_analysis_outputs, write_result_bundle

#: the fixture's report of a changed signal state is shown, not an error
pytestmark = pytest.mark.filterwarnings("default:the test process's signals:RuntimeWarning")

SHAPE = (10, 12)
#: The phases of writing a set: each file as it is renamed into place, then the swap.
PHASES = ("maps.tif", "spectra.csv", "composite.png", "result.npz", "config.json",
          "result.json", "swap")


def _result(seed: int, shape=SHAPE) -> UnmixResult:
    stack = np.random.default_rng(seed).random((6, *shape)).astype(np.float32)
    return run_analysis(stack, AnalysisConfig(mode="pca", n_components=2))


def _kernel_signal_state() -> dict:
    """SIGINT / SIGTERM as the kernel has them for this process's main thread
    (``/proc/self/status``: ignored, blocked), whatever Python's handler cache says."""
    try:
        fields = dict(line.split(":\t", 1) for line in
                      Path("/proc/self/status").read_text().splitlines() if ":\t" in line)
    except OSError:
        return {}
    out = {}
    for name in ("SigIgn", "SigBlk"):
        mask = int(fields.get(name, "0"), 16)
        out[name] = [s.name for s in (signal.SIGINT, signal.SIGTERM) if mask >> (s - 1) & 1]
    return out


@pytest.fixture(autouse=True)
def _signals_as_a_shell_starts_us():
    """SIGINT at Python's KeyboardInterrupt handler, SIGTERM at its default, neither
    blocked: what a command started from a terminal has, and what the subprocesses
    started here inherit.  A library used by an earlier test may have left the test
    process otherwise (a C library ignoring SIGINT, a thread mask); that is not what
    these tests are about, so the state is set here, and a warning says what it was."""
    before = _kernel_signal_state()
    python_before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    if any(before.values()) or python_before[signal.SIGINT] is not signal.default_int_handler \
            or python_before[signal.SIGTERM] is not signal.SIG_DFL:
        import warnings

        warnings.warn(f"the test process's signals were changed before this test: kernel "
                      f"{before}, Python {python_before}; set to the defaults for it",
                      RuntimeWarning, stacklevel=1)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    blocked = signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})
    yield
    signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
    for s, handler in python_before.items():
        signal.signal(s, handler if handler is not None else signal.SIG_DFL)


@pytest.fixture(scope="module")
def old():
    return _result(1)


@pytest.fixture(scope="module")
def new(tmp_path_factory):
    """The new result, read back from a bundle (as the subprocesses read it)."""
    path = tmp_path_factory.mktemp("new") / "new.npz"
    write_result_bundle(path, _result(2), SHAPE)
    return path, read_result_bundle(path).result


def snapshot(folder: Path) -> dict:
    """Every file under ``folder``: relative name -> bytes."""
    return {str(p.relative_to(folder)): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _same_set(got: dict, want: dict) -> bool:
    # result.npz is a zip: its members carry the time they were written
    if set(got) != set(want):
        return False
    return all(got[n] == want[n] for n in got if not n.endswith(".npz"))


def state(out: Path, old_set: dict, new_set: dict) -> str:
    """"old" (byte-identical), "new" (the whole new set), "absent", else "mixed"."""
    if not out.exists():
        return "absent"
    got = snapshot(out)
    if got == old_set:
        return "old"
    if _same_set(got, new_set):
        return "new"
    return "mixed: " + ", ".join(sorted(n for n in set(got) | set(old_set)
                                       if got.get(n) != old_set.get(n)))


def leftovers(out: Path) -> list[str]:
    """Temporary files or folders beside or inside ``out``."""
    beside = [n for n in os.listdir(out.parent) if n != out.name]
    inside = [n for n in os.listdir(out) if n.startswith(".") or n.endswith(".tmp")] \
        if out.is_dir() else []
    return sorted(beside + inside)


def install_hook(phase, fire, instead, setattr):
    """Call ``fire()`` when the set reaches ``phase``: after (or, with ``instead``, in
    place of) the rename of that file into place; for ``"swap"``, before the swap.

    Self-contained: its source also runs in the subprocesses.
    """
    import os
    from pathlib import Path

    import napari_unmix.core._files as files_mod

    fired = []
    if phase == "swap":
        real_swap = files_mod._swap_in

        def swap(*args, **kwargs):
            if not fired:
                fired.append(phase)
                fire()
            return real_swap(*args, **kwargs)
        setattr(files_mod, "_swap_in", swap)
        return fired
    real_replace = os.replace

    def replace(src, dst, *args, **kwargs):
        hit = not fired and Path(dst).name == phase
        if hit:
            fired.append(phase)
            if instead:
                fire()
        real_replace(src, dst, *args, **kwargs)
        if hit and not instead:
            fire()
    setattr(os, "replace", replace)
    return fired


def _fault(kind):
    """(fire, instead, expected exception) of an in-process fault."""
    if kind == "sigint":
        return (lambda: os.kill(os.getpid(), signal.SIGINT)), False, KeyboardInterrupt
    code, exc = {"enospc": (errno.ENOSPC, OSError), "eperm": (errno.EPERM, PermissionError)}[kind]

    def fire():
        raise exc(code, os.strerror(code))
    return fire, True, OSError


def _use_swap(setattr, impl):
    if impl == "renames":  # no renameat2 exchange: rename aside, rename in, remove
        import napari_unmix.core._files as files_mod

        setattr(files_mod, "_exchange", lambda a, b: False)


@pytest.mark.parametrize("impl", ["exchange", "renames"])
@pytest.mark.parametrize("kind", ["sigint", "enospc", "eperm"])
def test_a_fault_at_each_phase_leaves_the_old_set_and_no_temporary_file(
        tmp_path, monkeypatch, old, new, kind, impl):
    new_path, new_res = new
    write_analysis_outputs(tmp_path / "ref", new_res, SHAPE)
    new_set = snapshot(tmp_path / "ref")
    fire, instead, error = _fault(kind)
    problems = []
    for phase in PHASES:
        out = tmp_path / phase / "out"
        write_analysis_outputs(out, old, SHAPE)
        old_set = snapshot(out)
        with monkeypatch.context() as mp:
            try:
                _use_swap(mp.setattr, impl)
                fired = install_hook(phase, fire, instead, mp.setattr)
                with pytest.raises(error):
                    write_analysis_outputs(out, new_res, SHAPE)
            except BaseException as exc:  # noqa: BLE001 - reported per phase below
                if isinstance(exc, KeyboardInterrupt) and kind != "sigint":
                    raise
                problems.append(f"{phase}: {type(exc).__name__}: {exc}")
                continue
        assert fired == [phase]
        # a signal during the swap lets the swap finish (the new set, whole)
        allowed = {"old", "new"} if phase == "swap" and kind == "sigint" else {"old"}
        got = state(out, old_set, new_set)
        if got not in allowed:
            problems.append(f"{phase}: the folder holds {got}")
        if leftovers(out):
            problems.append(f"{phase}: left {leftovers(out)}")
    assert not problems, "\n".join(problems)


DRIVER = inspect.getsource(install_hook) + '''
import os, signal, sys

bundle, out, phase, impl, signame = sys.argv[1:6]
argv = sys.argv[6:]
fire = lambda: os.kill(os.getpid(), getattr(signal, signame))
if impl == "renames":
    import napari_unmix.core._files as files_mod
    files_mod._exchange = lambda a, b: False
install_hook(phase, fire, False, setattr)
if argv:
    from napari_unmix.cli import main
    sys.exit(main(argv))
from napari_unmix.io import read_result_bundle, write_analysis_outputs
b = read_result_bundle(bundle)
write_analysis_outputs(out, b.result, b.spatial_shape)
print("finished")
'''


def _run_all(commands, parallel=4):
    """Run the commands, a few at a time; their CompletedProcess-like (rc, output)."""
    results, running = [None] * len(commands), {}
    pending = list(enumerate(commands))
    while pending or running:
        while pending and len(running) < parallel:
            i, cmd = pending.pop(0)
            running[i] = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                          text=True)
        i = next(iter(running))
        out, _ = running[i].communicate(timeout=120)
        results[i] = (running.pop(i).returncode, out)
    return results


def test_sigterm_at_each_phase_ends_the_process_and_leaves_the_old_set(tmp_path, old, new):
    new_path, new_res = new
    write_analysis_outputs(tmp_path / "ref", new_res, SHAPE)
    new_set = snapshot(tmp_path / "ref")
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    cases = [(phase, "exchange") for phase in PHASES] + [("swap", "renames")]
    outs, old_sets, commands = [], [], []
    for phase, impl in cases:
        out = tmp_path / f"{phase}-{impl}" / "out"
        write_analysis_outputs(out, old, SHAPE)
        outs.append(out)
        old_sets.append(snapshot(out))
        commands.append([sys.executable, str(driver), str(new_path), str(out), phase, impl,
                         "SIGTERM"])
    problems = []
    for (phase, impl), out, old_set, (rc, printed) in zip(
            cases, outs, old_sets, _run_all(commands), strict=True):
        if rc != -signal.SIGTERM:  # the process still ends by the signal, after cleaning up
            problems.append(f"{phase} ({impl}): exit status {rc}: {printed[-300:]}")
        allowed = {"old", "new"} if phase == "swap" else {"old"}
        got = state(out, old_set, new_set)
        if got not in allowed:
            problems.append(f"{phase} ({impl}): the folder holds {got}")
        if leftovers(out):
            problems.append(f"{phase} ({impl}): left {leftovers(out)}")
    assert not problems, "\n".join(problems)


def test_the_cli_interrupted_while_writing_keeps_the_old_set(tmp_path):
    """SIGINT (exit 130) and SIGTERM (killed by it) during `napari-unmix run`'s writes."""
    stack = tmp_path / "in" / "s.npy"
    stack.parent.mkdir()
    np.save(stack, np.random.default_rng(0).random((6, *SHAPE)).astype(np.float32))
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    outs, old_sets, commands = [], [], []
    for sig in ("SIGINT", "SIGTERM"):
        out = tmp_path / sig / "out"
        assert main_ok(["run", stack, "--mode", "nmf", "-k", "2", "--max-iter", "5",
                        "--out", out])
        outs.append(out)
        old_sets.append(snapshot(out))
        commands.append([sys.executable, str(driver), "-", str(out), "result.npz", "exchange",
                         sig, "run", str(stack), "--mode", "nmf", "-k", "3", "--max-iter", "5",
                         "--no-progress", "--out", str(out)])
    problems = []
    for sig, out, old_set, (rc, printed) in zip(("SIGINT", "SIGTERM"), outs, old_sets,
                                                _run_all(commands), strict=True):
        want = 130 if sig == "SIGINT" else -signal.SIGTERM
        if rc != want:
            problems.append(f"{sig}: exit status {rc}, not {want}: {printed[-300:]}")
        if sig == "SIGINT" and "interrupted" not in printed:
            problems.append(f"{sig}: no 'interrupted' message: {printed[-300:]}")
        if snapshot(out) != old_set:
            problems.append(f"{sig}: the folder holds {state(out, old_set, {})}")
        if leftovers(out):
            problems.append(f"{sig}: left {leftovers(out)}")
    assert not problems, "\n".join(problems)


def main_ok(argv) -> bool:
    from napari_unmix.cli import main

    return main([str(a) for a in argv] + ["--no-progress", "--quiet"]) == 0


# -- a real full disk ----------------------------------------------------------------


@pytest.fixture
def tiny_fs(tmp_path):
    """A 256 kB tmpfs (root, and a kernel that lets this process mount)."""
    where = tmp_path / "tiny"
    where.mkdir()
    if not hasattr(os, "geteuid") or os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root and mount(8)")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(where)],
                          capture_output=True, text=True)
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=False)


def test_a_full_disk_keeps_the_old_set(tiny_fs, old):
    out = tiny_fs / "out"
    write_analysis_outputs(out, old, SHAPE)
    old_set = snapshot(out)
    big = _result(3, shape=(128, 128))  # ~0.5 MB of maps and arrays: does not fit
    with pytest.raises(OSError) as caught:
        write_analysis_outputs(out, big, (128, 128))
    assert caught.value.errno == errno.ENOSPC
    assert snapshot(out) == old_set
    assert leftovers(out) == []


# -- EPERM in the fallback swap: the old set is put back ------------------------------


def test_a_refused_rename_in_the_fallback_swap_puts_the_old_set_back(tmp_path, monkeypatch,
                                                                       old, new):
    import napari_unmix.core._files as files_mod

    out = tmp_path / "out"
    write_analysis_outputs(out, old, SHAPE)
    old_set = snapshot(out)
    monkeypatch.setattr(files_mod, "_exchange", lambda a, b: False)
    real_rename, calls = os.rename, []

    def rename(src, dst):
        calls.append((Path(src).name, Path(dst).name))
        if Path(dst) == out.resolve() and len(calls) == 2:  # the new set moving in
            raise PermissionError(errno.EPERM, "Operation not permitted")
        return real_rename(src, dst)
    monkeypatch.setattr(os, "rename", rename)
    with pytest.raises(PermissionError):
        write_analysis_outputs(out, new[1], SHAPE)
    assert len(calls) == 3 and calls[2][1] == "out"  # aside, in (refused), back
    assert snapshot(out) == old_set and leftovers(out) == []


# -- SIGKILL: what it leaves, and the next write cleans it up -------------------------


def test_sigkill_leftovers_are_cleaned_or_restored_by_the_next_write(tmp_path, old, new):
    new_path, new_res = new
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    during, between = tmp_path / "during" / "out", tmp_path / "between" / "out"
    for out in (during, between):
        write_analysis_outputs(out, old, SHAPE)
    old_set = snapshot(during)
    # killed while writing (after maps.tif), and in the fallback swap's one unsafe
    # instant: after the old set was renamed aside, before the new one was renamed in
    between_driver = tmp_path / "between.py"
    between_driver.write_text(DRIVER.replace(
        "install_hook(phase, fire, False, setattr)",
        "real_rename = os.rename\n"
        "def rename(src, dst):\n"
        "    real_rename(src, dst)\n"
        "    if str(dst).endswith('.old'):\n"
        "        os.kill(os.getpid(), signal.SIGKILL)\n"
        "os.rename = rename"))
    results = _run_all([
        [sys.executable, str(driver), str(new_path), str(during), "maps.tif", "exchange",
         "SIGKILL"],
        [sys.executable, str(between_driver), str(new_path), str(between), "-", "renames",
         "SIGKILL"]])
    assert [rc for rc, _ in results] == [-signal.SIGKILL] * 2, results
    # what SIGKILL leaves: the old set in place (or moved aside), one hidden folder
    assert snapshot(during) == old_set
    assert [n.endswith(".new") for n in leftovers(during)] == [True]
    assert not between.exists()
    aside = [n for n in os.listdir(between.parent) if n.endswith(".old")]
    assert len(aside) == 1 and snapshot(between.parent / aside[0]) == old_set
    # the next write into the same folder removes them (their process is dead), and
    # first renames an old set back when the folder itself is missing
    import napari_unmix.core._files as files_mod

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(files_mod, "_swap_in", _refuse)
        for out in (during, between):
            with pytest.raises(OSError, match="refused"):
                write_analysis_outputs(out, new_res, SHAPE)
            assert snapshot(out) == old_set and leftovers(out) == []


def _refuse(*args):
    raise OSError(errno.EIO, "refused")


# -- the umask --------------------------------------------------------------------------


@contextlib.contextmanager
def umask(mask):
    previous = os.umask(mask)
    try:
        yield
    finally:
        os.umask(previous)


def _modes(root: Path) -> set:
    return {(p.is_dir(), p.stat().st_mode & 0o777) for p in [root, *root.rglob("*")]}


def test_outputs_follow_the_umask(tmp_path, old, new):
    for mask, file_mode, dir_mode in ((0o022, 0o644, 0o755), (0o077, 0o600, 0o700)):
        top = tmp_path / f"m{mask:03o}"
        with umask(mask):
            write_analysis_outputs(top / "a" / "out", old, SHAPE)  # with a new parent
            write_analysis_outputs(top / "a" / "out", new[1], SHAPE)  # and replaced
            old.config.save(top / "config.json")
            old.config.save(top / "config.json")
        assert _modes(top / "a") == {(True, dir_mode), (False, file_mode)}, (mask, _modes(top))
        assert (top / "config.json").stat().st_mode & 0o777 == file_mode


# -- no stale files ---------------------------------------------------------------------


def test_a_2d_rerun_leaves_no_composite_of_the_3d_result(tmp_path):
    out = tmp_path / "out"
    z_result = _result(4, shape=(3, 5, 6))
    write_analysis_outputs(out, z_result, (3, 5, 6))
    assert sorted(p.name for p in out.glob("composite_z*.png")) == [
        "composite_z000.png", "composite_z001.png", "composite_z002.png"]
    flat = _result(5)
    files = write_analysis_outputs(out, flat, SHAPE)
    assert not list(out.glob("composite_z*.png"))
    written = {p.name for v in files.values() for p in (v if isinstance(v, list) else [v])}
    assert {p.name for p in out.iterdir()} == written
    np.testing.assert_array_equal(read_result_bundle(out).result.W, flat.W)


def test_the_users_own_files_are_never_replaced(tmp_path, old):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("my notes")
    with pytest.raises(ValueError, match=r"notes\.txt"):
        write_analysis_outputs(mine, old, SHAPE)
    assert snapshot(mine) == {"notes.txt": b"my notes"}
    res = tmp_path / "res"
    write_analysis_outputs(res, old, SHAPE)
    (res / "notes.txt").write_text("added to a result")
    before = snapshot(res)
    with pytest.raises(ValueError, match=r"notes\.txt"):
        write_analysis_outputs(res, old, SHAPE)
    assert snapshot(res) == before
