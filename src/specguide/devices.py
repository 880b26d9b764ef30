"""Where torch computes: ``--device auto|cpu|cuda[:k]`` resolved to a ``torch.device``, and random generators that
live on it.

``auto`` is ``cuda`` (the current GPU) where ``torch.cuda.is_available()``, else ``cpu``. Anything else is refused
with :class:`~specguide.io.InputError` naming the option and the fix, before any work. The same seed on the same
device gives the same numbers (on a GPU under :func:`reproducible`); CPU and GPU draw different streams, so
structures from one device are not those of the other (their statistics agree: ``tests/test_gpu_parity.py``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager

import torch

from specguide.io import InputError

DEVICE_CHOICES = "auto, cpu, cuda or cuda:K"
_PATTERN = re.compile(r"^(auto|cpu|cuda)(?::(\d+))?$")


def resolve_device(spec: str | torch.device | None = "auto", option: str = "--device") -> torch.device:
    """The ``torch.device`` of ``spec`` (``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:K"`` or a ``torch.device``;
    ``None`` is ``"auto"``). ``InputError`` naming ``option`` for an unknown device, a GPU this torch cannot use
    or a GPU index that is not there."""
    if isinstance(spec, torch.device):
        spec = str(spec)
    text = "auto" if spec is None else str(spec).strip().lower()
    match = _PATTERN.match(text)
    if match is None or (match.group(2) is not None and match.group(1) != "cuda"):
        raise InputError(f"{option} {spec}: not a device specguide can use; give {DEVICE_CHOICES}")
    kind, index = match.group(1), match.group(2)
    if kind == "auto":
        return torch.device("cuda", torch.cuda.current_device()) if torch.cuda.is_available() else torch.device("cpu")
    if kind == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        build = "this torch is a CPU-only build" if torch.version.cuda is None else "torch sees no GPU"
        raise InputError(f"{option} {spec}: {build} (torch {torch.__version__}); install a CUDA build of torch "
                         "(https://pytorch.org/get-started/locally/) on a machine with an NVIDIA GPU, or use "
                         f"{option} cpu")  # fmt: skip
    count = torch.cuda.device_count()
    k = torch.cuda.current_device() if index is None else int(index)
    if k >= count:
        raise InputError(f"{option} {spec}: torch sees {count} GPU(s), cuda:0 to cuda:{count - 1}")
    return torch.device("cuda", k)


def device_record(device: torch.device) -> dict:
    """What ``config.json`` records of the device a result was computed on: ``{"device": "cpu"}`` or
    ``{"device": "cuda:0", "device_name": ..., "cuda": ...}`` (the same seed reproduces a result on the same kind of
    device)."""
    record: dict = {"device": str(device)}
    if device.type == "cuda":
        record["device_name"] = torch.cuda.get_device_name(device)
        record["cuda"] = torch.version.cuda
    return record


def seeded_generator(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A ``torch.Generator`` on ``device`` seeded with ``seed`` (on the CPU the same stream as
    ``torch.Generator().manual_seed(seed)``)."""
    return torch.Generator(device=torch.device(device)).manual_seed(int(seed))


@contextmanager
def reproducible(device: torch.device) -> Iterator[None]:
    """On a GPU, torch's deterministic algorithms while the block runs (restored after it): the atomic additions of
    ``index_add`` and scatters would otherwise sum in a varying order, and a stochastic trajectory amplifies those
    last-bit differences, so the same seed would not give the same structures. Operations without a deterministic
    form warn instead of failing. On the CPU nothing changes."""
    if device.type != "cuda":
        yield
        return
    before = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # cuBLAS's deterministic mode (read at its start)
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before[0], warn_only=before[1])
