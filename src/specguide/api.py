"""The Python API behind each CLI command: one call per job."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from specguide.graph import batch_from_atoms, perpendicular_widths
from specguide.io import InputError, read_structures
from specguide.observables.base import Observable
from specguide.observables.registry import build_observable, pair_range

DEFAULT_R_MAX = 8.0  # Å


def compute_spectrum(
    structure: str | Path,
    kind: str,
    *,
    weighting: str = "number",
    r_max: float | None = None,
    **options: float,
) -> tuple[np.ndarray, np.ndarray, Observable]:
    """Spectrum of every frame of ``structure``, averaged over frames.

    ``kind`` is one of gr, pdf, rdf, adf, sq, fq, xrd, nd. ``r_max`` (Å) is the largest pair distance used;
    the default is min(8 Å, half the smallest cell width), and a larger explicit value is refused because
    periodic images of one pair would be counted twice. ``options`` are the other grid settings (``dr``,
    ``sigma`` in Å; ``q_min``, ``q_max``, ``dq`` in Å⁻¹; ``adf_cutoff`` in Å). Returns
    ``(x, y, observable)`` with ``x`` the grid and ``y`` the frame-averaged spectrum.
    """
    frames = read_structures(structure)
    positions, cells, numbers, batch = batch_from_atoms(frames)
    half_width = float(perpendicular_widths(cells).min()) / 2
    if r_max is None:
        step = float(options.get("dr", 0.02))
        r_max = min(DEFAULT_R_MAX, math.floor(half_width / step) * step)
    observable = build_observable(kind, weighting=weighting, r_max=r_max, **options)
    needed = pair_range(observable)
    if needed > half_width + 1e-9:
        raise InputError(
            f"{structure}: --r-max {needed:g} Å is beyond half the cell ({half_width:.3g} Å), where periodic "
            f"images of the same pair would be counted; lower --r-max to ≤ {half_width:.3g} Å or replicate the "
            "cell (e.g. ase's atoms.repeat((2, 2, 2)))"
        )
    try:
        with torch.no_grad():
            spectra = observable(positions, cells, numbers, batch)
    except ValueError as exc:  # e.g. an element without tabulated scattering data
        raise InputError(f"{structure}: {exc}") from None
    return observable.grid.numpy(), spectra.mean(0).numpy(), observable
