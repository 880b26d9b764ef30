"""How many threads torch should use: the cores this process may run on, less those other processes keep busy.

torch starts one intra-op thread per core of the machine. Beside busy neighbours that oversubscribes the cores,
and every parallel region then waits for its slowest thread: a 2-thread inversion beside two busy processes ran
4x slower, a 1-thread one 1.6x. :func:`choose_threads` therefore takes, in this order: an explicit count
(``--threads``), ``OMP_NUM_THREADS``, or the cores of ``os.sched_getaffinity`` minus the load average of the last
minute (at least one).
"""

from __future__ import annotations

import os


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity), or the machine's count where affinity is unknown."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def idle_cores(cores: int | None = None) -> int:
    """``cores`` (default :func:`available_cores`) less the 1-minute load average, rounded, at least 1."""
    cores = available_cores() if cores is None else cores
    try:
        busy = os.getloadavg()[0]
    except (AttributeError, OSError):
        return cores
    return max(1, min(cores, int(cores - busy + 0.5)))


def choose_threads(requested: int | None = None) -> tuple[int, str]:
    """``(threads, why)``: ``requested`` if given, else ``OMP_NUM_THREADS`` if set, else :func:`idle_cores`."""
    if requested is not None:
        if requested < 1:
            raise ValueError(f"--threads {requested}: give at least 1")
        return int(requested), "--threads"
    from_env = os.environ.get("OMP_NUM_THREADS", "").strip()
    if from_env.isdigit() and int(from_env) > 0:
        return int(from_env), "OMP_NUM_THREADS"
    cores = available_cores()
    idle = idle_cores(cores)
    return idle, f"{idle} of {cores} available cores idle"


def use_threads(requested: int | None = None) -> tuple[int, str]:
    """Set torch's intra-op threads by :func:`choose_threads`; returns what was chosen and why."""
    import torch

    threads, why = choose_threads(requested)
    torch.set_num_threads(threads)
    return threads, why
