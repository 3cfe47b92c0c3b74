"""Atomic writing: a file through a temporary file, a folder through a temporary folder.

:func:`atomic_path`
    One file: written into a hidden temporary file beside the target, renamed onto
    it when the write succeeded.
:func:`atomic_folder`
    A whole set of files: written into a hidden temporary folder beside the
    target folder (same file system), then swapped in as a whole.  On Linux the
    swap is one ``renameat2(RENAME_EXCHANGE)`` call, so the target is at every
    moment either the old set or the new one; elsewhere (or on a file system
    without it) the old folder is renamed aside, the new one renamed in and the
    old one removed, and the two renames run with SIGINT / SIGTERM deferred.

Both create what they write with the process's umask (files ``0o666 & ~umask``,
folders ``0o777 & ~umask``), like ``open`` and ``mkdir`` do, and while they run
SIGINT and SIGTERM become an exception (:class:`Interrupted`) so that every
temporary file or folder is removed; the signal is then delivered again to the
disposition the process had (SIGTERM still ends the process, SIGINT still raises
``KeyboardInterrupt``).  A process that has its own handler for a signal keeps
it.  Signals are only handled in the main thread (Python delivers them there).

SIGKILL (or a power cut) cannot be handled: it leaves the target as it was or
whole (never a mix), plus at most one hidden ``.<name>.unmix-<pid>-<token>.new`` or
``.old`` folder beside it, or a hidden ``.<name>.<token><suffix>.tmp`` file.  The
next :func:`atomic_folder` of the same target removes the folders of dead
processes; when the target itself is missing (killed in the instant between the
two renames of the fallback swap) it first renames the ``.old`` folder back.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import re
import secrets
import shutil
import signal
import threading
from pathlib import Path

__all__ = ["Interrupted", "atomic_folder", "atomic_path", "critical", "file_path",
           "interruptible"]

_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM") if hasattr(signal, name))


class Interrupted(BaseException):  # noqa: N818 - like KeyboardInterrupt
    """SIGINT or SIGTERM received while :func:`interruptible` code ran.

    Raised so that ``finally`` clauses remove temporary files; :func:`interruptible`
    turns it back into the signal when it leaves.
    """

    def __init__(self, signum: int):
        super().__init__(f"interrupted by {signal.Signals(signum).name}")
        self.signum = signum


class _Guard:
    def __init__(self):
        self.saved: dict = {}
        self.pending: int | None = None
        self.depth = 0

    def handle(self, signum, frame):
        if self.depth:
            if self.pending is None:
                self.pending = signum
            return
        raise Interrupted(signum)


_active: _Guard | None = None


def _redeliver(signum: int, handler) -> None:
    """The signal again, to the disposition the process had before :func:`interruptible`."""
    if handler is signal.default_int_handler:
        raise KeyboardInterrupt from None
    signal.raise_signal(signum)  # SIG_DFL: the process ends, as it would have
    raise Interrupted(signum)


@contextlib.contextmanager
def interruptible():
    """Run the body with SIGINT / SIGTERM raised as :class:`Interrupted`.

    Only signals at their default disposition (and SIGINT at Python's
    ``KeyboardInterrupt`` handler) are taken over; nested uses share the
    outermost.  When the body ends by such a signal, the signal is delivered
    again after the handlers are restored.
    """
    global _active
    if _active is not None or threading.current_thread() is not threading.main_thread():
        yield
        return
    guard = _Guard()
    for s in _SIGNALS:
        current = signal.getsignal(s)
        if current is signal.SIG_DFL or current is signal.default_int_handler:
            guard.saved[s] = current
            signal.signal(s, guard.handle)
    _active = guard
    try:
        yield
    except Interrupted as exc:
        _active = None
        for s, h in guard.saved.items():
            signal.signal(s, h)
        if exc.signum in guard.saved:
            _redeliver(exc.signum, guard.saved[exc.signum])
        raise
    finally:
        if _active is guard:
            _active = None
            for s, h in guard.saved.items():
                signal.signal(s, h)


@contextlib.contextmanager
def critical():
    """Defer SIGINT / SIGTERM (inside :func:`interruptible`) until the body is done.

    For steps that must not be split: renames of a swap, removing temporary
    files.  A signal received meanwhile raises :class:`Interrupted` at the end.
    """
    guard = _active
    if guard is None:
        yield
        return
    guard.depth += 1
    try:
        yield
    finally:
        guard.depth -= 1
        if guard.depth == 0 and guard.pending is not None:
            signum, guard.pending = guard.pending, None
            raise Interrupted(signum)


def _new_file(parent: Path, prefix: str, suffix: str) -> Path:
    """Create an empty file of a fresh name, with mode ``0o666 & ~umask``."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        path = parent / f"{prefix}{secrets.token_hex(4)}{suffix}"
        try:
            fd = os.open(path, flags, 0o666)
        except FileExistsError:
            continue
        os.close(fd)
        return path
    raise FileExistsError(errno.EEXIST, "no free temporary file name", str(parent))


def file_path(path, *, example: str) -> Path:
    """``path`` as a :class:`~pathlib.Path`, refused when it names a folder.

    A save to a folder would otherwise write a file *beside* it (``out`` ->
    ``out.npz``) or fail in ``os.replace`` with ``IsADirectoryError``.

    Parameters
    ----------
    path : str or Path
    example : str
        A file name to suggest inside the folder (``"result.npz"``).

    Returns
    -------
    Path

    Raises
    ------
    IsADirectoryError
        When ``path`` is an existing folder.
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder; give a file name, such as "
                                f"{path / example}.")
    return path


@contextlib.contextmanager
def atomic_path(path, *, suffix: str | None = None):
    """Yield a temporary path next to ``path``; on success rename it onto ``path``.

    If the body raises (or SIGINT / SIGTERM arrives), the temporary file is removed
    and any existing file at ``path`` is left untouched, so a failed write never
    leaves a partial output.  The file gets the mode ``0o666 & ~umask``.

    Parameters
    ----------
    path : str or Path
        Final destination.
    suffix : str, optional
        Suffix of the temporary file (some writers pick the format from it);
        defaults to the suffix of ``path``.
    """
    path = Path(path)
    with interruptible():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = None
        try:
            with critical():
                tmp = _new_file(path.parent, f".{path.name}.",
                                (path.suffix if suffix is None else suffix) + ".tmp")
            yield tmp
            os.replace(tmp, path)
        except BaseException:
            if tmp is not None:
                with critical(), contextlib.suppress(FileNotFoundError):
                    tmp.unlink()
            raise


# -- folders -------------------------------------------------------------------------

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def _renameat2():
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


def _exchange(a: Path, b: Path) -> bool:
    """Swap the paths ``a`` and ``b`` in one step; False where the system cannot."""
    fn = _renameat2() if hasattr(os, "uname") and os.uname().sysname == "Linux" else None
    if fn is None:
        return False
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def _swap_in(new: Path, target: Path, aside: Path) -> Path | None:
    """Put the folder ``new`` at ``target``; where the old target now is (None: none)."""
    if not os.path.lexists(target):
        os.rename(new, target)
        return None
    if _exchange(new, target):
        return new
    os.rename(target, aside)
    try:
        os.rename(new, target)
    except BaseException:
        os.rename(aside, target)
        raise
    return aside


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _make_parents(folder: Path, created: list) -> None:
    """Create ``folder`` and its missing parents, appending each one created to ``created``."""
    missing = []
    for p in (folder, *folder.parents):
        if os.path.lexists(p):
            break
        missing.append(p)
    for p in reversed(missing):
        try:
            os.mkdir(p, 0o777)
        except FileExistsError:
            continue
        created.append(p)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _sweep(target: Path) -> None:
    """Remove the temporary folders of dead processes beside ``target`` (SIGKILL leftovers).

    When ``target`` is missing, the old set a killed swap moved aside is renamed back.
    """
    pattern = re.compile(re.escape(f".{target.name}.unmix-") + r"(\d+)-[0-9a-f]+\.(new|old)")
    try:
        entries = sorted(os.scandir(target.parent), key=lambda e: e.name)
    except OSError:
        return
    for entry in entries:
        m = pattern.fullmatch(entry.name)
        if m is None or _alive(int(m.group(1))):
            continue
        path = Path(entry.path)
        if m.group(2) == "old" and not os.path.lexists(target):
            os.rename(path, target)
        else:
            _remove(path)


@contextlib.contextmanager
def atomic_folder(path):
    """Yield a new empty folder beside ``path``; on success it replaces ``path`` whole.

    Whatever ``path`` held before (a folder) is replaced as a whole: files of the
    old folder that the new one lacks are gone afterwards.  If the body raises (or
    SIGINT / SIGTERM arrives) the temporary folder is removed, ``path`` is left as
    it was, and folders created for it (``path``'s missing parents) are removed
    again.  A symbolic link at ``path`` is followed: the folder it points to is
    replaced.

    Parameters
    ----------
    path : str or Path
        The target folder; need not exist.

    Raises
    ------
    ValueError
        When ``path`` is empty ("" would be the current folder).
    NotADirectoryError
        When ``path`` exists and is not a folder.
    """
    if not str(path).strip():
        raise ValueError("the output folder is an empty path; name a folder.")
    target = Path(path).resolve()
    if target.exists() and not target.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, "not a folder", str(path))
    with interruptible():
        created: list[Path] = []
        new = None
        try:
            with critical():
                _make_parents(target.parent, created)
                _sweep(target)
                base = f".{target.name}.unmix-{os.getpid()}-{secrets.token_hex(4)}"
                os.mkdir(target.parent / f"{base}.new", 0o777)
                new = target.parent / f"{base}.new"
            yield new
            with critical():
                old = _swap_in(new, target, target.parent / f"{base}.old")
                new = None
                created = []
                if old is not None:
                    _remove(old)
        finally:
            with critical():
                if new is not None:
                    _remove(new)
                for p in reversed(created):
                    with contextlib.suppress(OSError):
                        os.rmdir(p)
