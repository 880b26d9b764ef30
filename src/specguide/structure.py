"""Periodic cells, densities and unit conversions: the geometry every layer of specguide shares, written once.

Units: positions and cells in Å (cell vectors as rows), masses in amu (ASE's table), densities in g/cm³.

Two conversions of a mass density are in use, and both are kept exactly as they were, because results depend on
them to the last digit:

- :data:`AMU_PER_A3_PER_G_CM3` (0.602214, i.e. 1 g/cm³ = 0.602214 amu/Å³, six digits): the sampler's cells, the
  densities recorded in prior checkpoints and their chemistry, :func:`density_g_cm3` and :func:`cubic_cell_side`;
- :data:`GRAMS_PER_AMU` (CODATA 2018, 1.66053906660e-24 g): the melt-quench cells (:func:`cubic_cell_length`) and
  the densities the MD engine, the RMC baseline and ``specguide analyze`` report (:func:`mass_density_g_cm3`).

They differ by 1.3e-7 relative (0.602214 × 1.66053906660 = 0.99999987): a cell side by 4e-8, enough to send a
melt-quench or a sampler run elsewhere from the same seed, so neither is rewritten in terms of the other.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import ase
import numpy as np
import torch
from ase.data import atomic_masses, atomic_numbers

AMU_PER_A3_PER_G_CM3 = 0.602214  # 1 g/cm³ = 0.602214 amu/Å³ (six digits; see the module docstring)
GRAMS_PER_AMU = 1.66053906660e-24  # g (CODATA 2018)
CM3_PER_A3 = 1e-24  # 1 Å³ in cm³


# ----------------------------------------------------------------------------------------------------------------
# densities and cell sizes
# ----------------------------------------------------------------------------------------------------------------


def density_g_cm3(atoms: ase.Atoms) -> float:
    """Mass density of a periodic structure, g/cm³ (with :data:`AMU_PER_A3_PER_G_CM3`)."""
    return float(atoms.get_masses().sum() / atoms.get_volume() / AMU_PER_A3_PER_G_CM3)


def mass_density_g_cm3(mass_amu: float, volume_a3: float) -> float:
    """Mass density (g/cm³) of ``mass_amu`` in ``volume_a3`` Å³, with the CODATA :data:`GRAMS_PER_AMU`."""
    return float(mass_amu * GRAMS_PER_AMU / (volume_a3 * CM3_PER_A3))


def volume_at_density(mass_amu: float, density_g_cm3: float) -> float:
    """Volume (Å³) that holds ``mass_amu`` at ``density_g_cm3`` (with :data:`AMU_PER_A3_PER_G_CM3`)."""
    return mass_amu / (density_g_cm3 * AMU_PER_A3_PER_G_CM3)


def number_density(density_g_cm3: float, mean_mass_amu: float) -> float:
    """Atoms per Å³ of a material of mean atomic mass ``mean_mass_amu`` at ``density_g_cm3``."""
    return density_g_cm3 * AMU_PER_A3_PER_G_CM3 / mean_mass_amu


def cubic_cell_side(n_atoms: int, mean_mass_amu: float, density_g_cm3: float) -> float:
    """Side (Å) of a cubic cell holding ``n_atoms`` of mean mass ``mean_mass_amu`` at ``density_g_cm3``."""
    if density_g_cm3 <= 0:
        raise ValueError(f"density must be positive, got {density_g_cm3} g/cm³")
    return (n_atoms * mean_mass_amu / (density_g_cm3 * AMU_PER_A3_PER_G_CM3)) ** (1.0 / 3.0)


def cubic_cell_length(species_counts: Mapping[str, int], density_g_cm3: float) -> float:
    """Edge (Å) of the cubic cell holding ``{symbol: count}`` atoms at this mass density (CODATA amu; the
    melt-quench convention)."""
    if density_g_cm3 <= 0:
        raise ValueError("density must be positive")
    mass_g = sum(atomic_masses[atomic_numbers[s]] * n for s, n in species_counts.items()) * GRAMS_PER_AMU
    return (mass_g / density_g_cm3 / CM3_PER_A3) ** (1.0 / 3.0)


def cell_of_volume(cell: Sequence[float] | np.ndarray, volume_a3: float) -> np.ndarray:
    """``cell`` (3 lengths, Å, or a 3x3 matrix of row vectors) scaled isotropically to ``volume_a3`` Å³.

    Raises ``ValueError`` for anything but 3 lengths or a non-singular 3x3 matrix."""
    shape = np.asarray(cell, dtype=float)
    shape = np.diag(shape) if shape.shape == (3,) else shape
    if shape.shape != (3, 3) or abs(np.linalg.det(shape)) < 1e-9:
        raise ValueError("cell must be 3 lengths or a non-singular 3x3 matrix of row vectors")
    return shape * (volume_a3 / abs(np.linalg.det(shape))) ** (1 / 3)


# ----------------------------------------------------------------------------------------------------------------
# positions in a cell
# ----------------------------------------------------------------------------------------------------------------


def wrap_positions(positions: torch.Tensor, cells: torch.Tensor, batch: torch.Tensor) -> torch.Tensor:
    """Map Cartesian positions ``[N, 3]`` (Å) into their cell (fractional coordinates mod 1); ``cells [S, 3, 3]``,
    ``batch [N]`` the structure of each atom."""
    cell = cells.index_select(0, batch)  # [N, 3, 3], rows are cell vectors
    fractional = torch.linalg.solve(cell.transpose(1, 2), positions.unsqueeze(-1)).squeeze(-1)
    fractional = fractional - torch.floor(fractional)
    return torch.einsum("ni,nij->nj", fractional, cell)
