"""Optional torch support: availability, device choice and dtypes.

torch is an optional dependency.  Nothing here imports it at module import time;
:func:`get_torch` imports it on first use and returns ``None`` when it is missing,
so every mode keeps working on the numpy / SciPy / scikit-learn backends.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import os
import re
import sys

import numpy as np

__all__ = ["TORCH_DEVICE_TYPES", "backend_for_device", "check_device", "cuda_available",
           "get_torch", "resolve_device", "to_device", "to_numpy", "to_torch", "torch_available"]

#: Device types ``torch.device`` knows; a device name is one of them, optionally with
#: ``:N`` (the N-th device of that type), or ``"auto"``.
TORCH_DEVICE_TYPES = ("cpu", "cuda", "mps", "xpu", "hip", "hpu", "mtia", "xla", "meta", "ipu",
                      "ve", "fpga", "maia", "lazy", "vulkan", "opengl", "opencl", "ideep",
                      "mkldnn", "privateuseone")

_DEVICE_HELP = ("give auto (CUDA when available, else the CPU), cpu, cuda, cuda:N (the N-th "
                "GPU) or mps")


def check_device(device) -> str:
    """Check the form of a torch device name, without importing torch.

    Parameters
    ----------
    device : str or None
        ``"auto"`` (None means it too), or a torch device type of
        :data:`TORCH_DEVICE_TYPES` with an optional ``:N``, e.g. ``"cuda:1"``.

    Returns
    -------
    str
        The name (``"auto"`` for None).

    Raises
    ------
    ValueError
        When it is not such a name.
    """
    if device is None:
        return "auto"
    m = re.fullmatch(r"([a-z_]+)(:\d+)?", device) if isinstance(device, str) else None
    if device != "auto" and (m is None or m.group(1) not in TORCH_DEVICE_TYPES):
        raise ValueError(f"device={device!r} is not a torch device; {_DEVICE_HELP}.")
    return device


@functools.cache
def get_torch():
    """Return the ``torch`` module, or ``None`` when it cannot be imported."""
    try:
        return importlib.import_module("torch")
    except Exception:  # ImportError, or a broken install raising OSError
        return None


def torch_available() -> bool:
    """True when torch is installed.

    Answered without importing torch, which takes seconds (the dock's solver menus
    ask while it opens); once torch was imported, or failed to import, that answer
    is given.  A broken install found only at import time is reported by the run
    that needs it (:func:`resolve_device`).
    """
    if "torch" in sys.modules or get_torch.cache_info().currsize:
        return get_torch() is not None
    try:
        return importlib.util.find_spec("torch") is not None
    except (ImportError, ValueError):
        return False


def _no_nvidia_device() -> bool:
    """True when this Linux machine certainly has no NVIDIA GPU (cheap, no torch import)."""
    if not sys.platform.startswith("linux"):
        return False
    return not (os.path.exists("/proc/driver/nvidia") or os.path.exists("/dev/nvidia0")
                or os.path.exists("/dev/nvidiactl"))


@functools.cache
def cuda_available() -> bool:
    """True when torch sees a CUDA device.

    On Linux machines without any NVIDIA device node this answers without importing
    torch (which takes seconds), so "auto" choices stay fast on CPU-only machines.
    """
    if "torch" not in sys.modules and _no_nvidia_device():
        return False
    torch = get_torch()
    return bool(torch is not None and torch.cuda.is_available())


def backend_for_device(backend: str, device) -> str:
    """The backend a run takes when ``device`` is named.

    Only the torch implementations run off the CPU: a named non-CPU device (``"cuda"``,
    ``"cuda:1"``, ``"mps"`` ...) turns ``backend="auto"`` into ``"torch"`` and refuses
    any other named backend, instead of running on the CPU without a word.
    ``device="auto"`` (or None) and CPU devices leave ``backend`` as it is.

    Raises
    ------
    ValueError
        A named non-CPU device with a backend other than ``"torch"`` or ``"auto"``.
    """
    name = check_device(device)
    if name == "auto" or name.split(":")[0] == "cpu" or backend == "torch":
        return backend
    if backend == "auto":
        return "torch"
    raise ValueError(f"device={name!r} is used by the torch backend only, and "
                     f"backend={backend!r} runs on the CPU; choose backend='torch' (or "
                     "'auto'), or device='auto'.")


def resolve_device(device: str | None = "auto") -> str:
    """Pick the torch device: ``"auto"`` means CUDA when available, else CPU.

    Raises
    ------
    ImportError
        When torch is not installed.
    ValueError
        When ``"cuda"`` is requested but no CUDA device is visible.
    """
    torch = get_torch()
    if torch is None:
        raise ImportError(
            "This backend needs PyTorch, which is not installed. Install it with "
            "`pip install napari-unmix[torch]`, or choose a numpy/scipy/sklearn backend."
        )
    if device in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    device = check_device(device)
    try:
        parsed = torch.device(device)
    except (RuntimeError, ValueError, TypeError):
        raise ValueError(f"device={device!r} is not a device this torch ({torch.__version__}) "
                         f"knows; {_DEVICE_HELP}.") from None
    if parsed.type == "cuda":
        n_gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if n_gpus == 0:
            raise ValueError(
                f"device={device!r} was requested but torch sees no CUDA GPU "
                f"(torch {torch.__version__}). Use device='cpu' or 'auto'."
            )
        if parsed.index is not None and parsed.index >= n_gpus:
            raise ValueError(f"device={device!r} was requested but torch sees {n_gpus} CUDA "
                             f"GPU(s) (cuda:0 .. cuda:{n_gpus - 1}); choose one of them.")
    return device


def to_torch(a: np.ndarray, device: str):
    """Move a numpy array to a torch tensor on ``device``, keeping its dtype.

    Read-only arrays (memory maps, frozen seeds) are copied into a new tensor: torch
    warns when it wraps a read-only buffer, and the caller's array must never be
    written anyway.  Writable arrays on the CPU are shared without a copy.  A torch
    tensor is moved to ``device`` (no copy when it is there already).
    """
    torch = get_torch()
    if type(a).__module__.split(".")[0] == "torch":
        return a.to(device)
    a = np.ascontiguousarray(a)
    if not a.dtype.isnative:  # torch takes the machine's byte order only
        a = a.astype(a.dtype.newbyteorder("="))
    if not a.flags.writeable:
        return torch.tensor(a, device=device)
    return torch.as_tensor(a, device=device)


def to_device(a, device, *, out=None, non_blocking: bool = False):
    """Move host data to ``device``: the one transfer helper of the data pipeline.

    Every copy of (a block of) the data ``X`` to a torch device goes through here
    (:mod:`~napari_unmix.core.streaming`), so that the transfers can be recorded
    (the tests check that the streamed blocks stay within their budget).

    Parameters
    ----------
    a : ndarray or torch tensor
        Host data (a pinned staging tensor when ``non_blocking``).
    device : str
        The torch device.
    out : torch tensor, optional
        A buffer on ``device`` of ``a``'s shape to copy into.
    non_blocking : bool
        An asynchronous copy (from pinned memory, on the current CUDA stream).

    Returns
    -------
    torch tensor on ``device``
    """
    t = a if not isinstance(a, np.ndarray) else to_torch(a, "cpu")
    if out is not None:
        return out.copy_(t, non_blocking=non_blocking)
    return t.to(device, non_blocking=non_blocking)


def to_numpy(t) -> np.ndarray:
    """Copy a torch tensor back to a numpy array."""
    return t.detach().cpu().numpy()
