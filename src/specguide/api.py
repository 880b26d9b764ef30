"""The Python API behind each CLI command: one call per job."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from specguide.graph import batch_from_atoms, perpendicular_widths
from specguide.io import InputError, read_structures
from specguide.observables.base import Observable
from specguide.observables.registry import build_observable, pair_range


def compute_spectrum(
    structure: str | Path,
    kind: str,
    *,
    weighting: str = "number",
    **options: float,
) -> tuple[np.ndarray, np.ndarray, Observable]:
    """Spectrum of every frame of ``structure``, averaged over frames.

    ``kind`` is one of gr, pdf, rdf, adf, sq, fq, xrd, nd; ``options`` are grid settings (``r_max``,
    ``dr``, ``sigma`` in Å; ``q_min``, ``q_max``, ``dq`` in Å⁻¹; ``adf_cutoff`` in Å). Returns
    ``(x, y, observable)`` with ``x`` the grid and ``y`` the frame-averaged spectrum.
    """
    frames = read_structures(structure)
    observable = build_observable(kind, weighting=weighting, **options)
    positions, cells, numbers, batch = batch_from_atoms(frames)
    needed = pair_range(observable)
    half_width = float(perpendicular_widths(cells).min()) / 2
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
