"""Scattering weights: X-ray form factors (Waasmaier-Kirfel, via xraydb), coherent neutron scattering
lengths (Sears 1992, via periodictable) and Faber-Ziman pair weights.

Conventions (see docs/CONVENTIONS.md):
- ``Q`` is the momentum transfer in Å⁻¹, ``Q = 4π sin(θ)/λ``; xraydb tabulates f0 against
  ``sin(θ)/λ = Q / 4π``.
- Real-space X-ray weighting uses Q-independent weights ``f_a(0) ≈ Z_a`` (electrons), the "atomic number"
  weighting of fullrmc and of the GLASS benchmarks; reciprocal-space X-ray observables use the full ``f_a(Q)``.
- Neutron weights are coherent scattering lengths ``b_a`` in fm (they may be negative, e.g. H, Ti, Mn).
"""

from __future__ import annotations

from functools import cache

import numpy as np
import periodictable
import torch
import xraydb
from ase.data import chemical_symbols

WEIGHTINGS = ("number", "xray", "neutron")


class UnknownElementError(ValueError):
    """Raised for an atomic number without tabulated scattering data."""


def element_symbol(number: int) -> str:
    """Chemical symbol of atomic number ``number``; raises ``UnknownElementError`` if there is none."""
    if not 1 <= int(number) < len(chemical_symbols):
        raise UnknownElementError(f"atomic number {number} is not an element")
    return chemical_symbols[int(number)]


@cache
def neutron_scattering_length(number: int) -> float:
    """Coherent neutron scattering length b_c of the natural element, in fm."""
    element = periodictable.elements[int(number)]
    b_c = element.neutron.b_c if element.neutron is not None else None
    if b_c is None:
        raise UnknownElementError(
            f"no coherent neutron scattering length for {element_symbol(number)} in periodictable"
        )
    return float(b_c)


def xray_form_factors(species: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Waasmaier-Kirfel f0(Q) ``[n_species, n_q]`` (electrons) for atomic numbers ``species`` at Q (Å⁻¹)."""
    s = (q.detach().cpu().numpy() / (4.0 * np.pi)).astype(np.float64)
    rows = []
    for z in species.tolist():
        symbol = element_symbol(z)
        try:
            rows.append(np.asarray(xraydb.f0(symbol, s), dtype=np.float64))
        except Exception as exc:  # xraydb raises for elements it does not tabulate
            raise UnknownElementError(f"no X-ray form factor for {symbol} in xraydb") from exc
    return torch.as_tensor(np.stack(rows), dtype=q.dtype, device=q.device)


def species_weights(species: torch.Tensor, weighting: str, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Q-independent scattering amplitude per species ``[n_species]`` for real-space weighting.

    ``number`` → 1, ``xray`` → Z (≈ f(0), electrons), ``neutron`` → b_c (fm).
    """
    if weighting == "number":
        return torch.ones(len(species), dtype=dtype, device=species.device)
    if weighting == "xray":
        for z in species.tolist():
            element_symbol(z)
        return species.to(dtype)
    if weighting == "neutron":
        return torch.tensor(
            [neutron_scattering_length(z) for z in species.tolist()], dtype=dtype, device=species.device
        )
    raise ValueError(f"unknown weighting {weighting!r}; choose one of {', '.join(WEIGHTINGS)}")


def faber_ziman_weights(concentrations: torch.Tensor, amplitudes: torch.Tensor) -> torch.Tensor:
    """Faber-Ziman pair weights ``w_ab = c_a c_b f_a f_b / (Σ c_a f_a)²``.

    ``concentrations``: ``[S, n_species]`` atomic fractions; ``amplitudes``: ``[n_species]`` or
    ``[n_species, n_q]``. Returns ``[S, n_species, n_species]`` or ``[S, n_species, n_species, n_q]``.
    The weights sum to 1 (for Q-independent amplitudes), so the total is ``Σ_ab w_ab g_ab``.
    """
    if amplitudes.dim() == 1:
        cf = concentrations * amplitudes[None, :]  # [S, n]
        mean = cf.sum(-1)  # [S]
        return cf[:, :, None] * cf[:, None, :] / (mean**2)[:, None, None]
    cf = concentrations[:, :, None] * amplitudes[None, :, :]  # [S, n, Q]
    mean = cf.sum(1)  # [S, Q]
    return cf[:, :, None, :] * cf[:, None, :, :] / (mean**2)[:, None, None, :]


def species_index(numbers: torch.Tensor, species: torch.Tensor) -> torch.Tensor:
    """Index of each atom's atomic number in the sorted ``species`` list."""
    index = torch.searchsorted(species, numbers)
    if (index >= len(species)).any() or (species[index.clamp(max=len(species) - 1)] != numbers).any():
        raise ValueError("an atom's element is missing from the observable's species list")
    return index


def concentrations(
    numbers: torch.Tensor, batch: torch.Tensor, species: torch.Tensor, n_structures: int, dtype: torch.dtype
) -> torch.Tensor:
    """Atomic fractions ``[S, n_species]`` of each species in each structure."""
    index = species_index(numbers, species)
    counts = torch.zeros(n_structures, len(species), dtype=dtype, device=numbers.device)
    counts.index_put_((batch, index), torch.ones_like(index, dtype=dtype), accumulate=True)
    return counts / counts.sum(-1, keepdim=True)
