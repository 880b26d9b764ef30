"""Keep freed memory for reuse instead of returning it to the operating system after every step (glibc malloc).

PyTorch's CPU tensors come from ``malloc``. With glibc's defaults, freed memory at the top of the heap is handed
back to the kernel once more than a few MiB of it is free (the trim threshold, 2x the mmap threshold), and blocks
above the mmap threshold are mapped and unmapped one by one. A sampler step allocates and frees tens of MiB of
pair and edge tensors, so each step faults the same pages in again, zero-filled by the kernel (timings:
docs/benchmarks.md).

The tuning is opt-in, since it changes the C library's behaviour for the whole process: ``import specguide``
calls :func:`tune_malloc_if_asked`, which tunes only where the environment variable ``SPECGUIDE_MALLOC_TUNING``
is ``1`` (``true``/``yes``/``on``); a program may also call :func:`tune_malloc` itself. It changes no result,
only how long memory stays with the process: up to ``trim_threshold`` of free heap is kept for reuse.
"""

from __future__ import annotations

import ctypes
import os
import platform

M_TRIM_THRESHOLD = -1  # glibc <malloc.h>
M_MMAP_THRESHOLD = -3
# bytes: blocks below this come from the heap. glibc's own dynamic threshold stops at 32 MiB on 64-bit systems, but a
# large cell's edge tensors are hundreds of MiB (a 27,000-atom step of the a-Si prior spent more CPU time zero-filling
# freshly mapped pages than computing with a 32 MiB threshold; docs/benchmarks.md), so the tuning serves up to 1 GiB
MMAP_THRESHOLD = 1024**3

tuned = False  # whether tune_malloc() has taken effect in this process


def tune_malloc(mmap_threshold: int = MMAP_THRESHOLD, trim_threshold: int = 1024**3) -> bool:
    """Serve blocks below ``mmap_threshold`` bytes from the heap and keep up to ``trim_threshold`` bytes of free
    heap instead of returning it. Returns True where glibc accepted both settings, False elsewhere (other C
    libraries, macOS, Windows: nothing changes)."""
    global tuned
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # pragma: no cover - glibc always has it
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    accepted = mallopt(M_MMAP_THRESHOLD, int(mmap_threshold)) == 1
    accepted = mallopt(M_TRIM_THRESHOLD, int(trim_threshold)) == 1 and accepted
    tuned = tuned or accepted
    return accepted


ENV = "SPECGUIDE_MALLOC_TUNING"


def tune_malloc_if_asked() -> bool:
    """:func:`tune_malloc` where ``SPECGUIDE_MALLOC_TUNING`` is ``1``/``true``/``yes``/``on``; nothing otherwise."""
    if os.environ.get(ENV, "").strip().lower() not in {"1", "true", "yes", "on"}:
        return False
    return tune_malloc()
