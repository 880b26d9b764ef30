"""Bond-angle distribution P(θ), differentiable and linear scaling.

Conventions:

- Triplets ``j–i–k``: centre ``i`` and two distinct neighbours ``j, k`` (periodic images included) with
  ``r_ij < r_c(Z_i, Z_j)`` and ``r_ik < r_c(Z_i, Z_k)``; each unordered pair {j, k} is counted once; no condition on
  ``r_jk``. ``θ_jik = arccos(r̂_ij · r̂_ik)`` in degrees (the cosine is clamped to ``[−1 + ε, 1 − ε]``, so the gradient
  is finite, and zero for exactly collinear or coincident bonds).
- Cut-offs: by default ``cutoff_scale × (r_cov(Z_i) + r_cov(Z_j))`` with ASE's covalent radii (1.3 ×: Si–Si 2.89 Å,
  C–C 1.98 Å, Si–O 2.30 Å, O–H 1.26 Å, Cu–Cu 3.43 Å), i.e. first-shell bonds in covalent and most metallic glasses;
  a float sets one cut-off for every pair, a dict ``{("Si", "O"): 2.0, "Si-Si": 2.9, (14, 14): …}`` overrides
  given (unordered) pairs. The cut-off is hard, as in GLASS and LAMMPS ``compute adf``.
- Grid: bin centres ``(k + ½) dθ`` on [0°, 180°]. Kernel: normalised Gaussian of width ``sigma`` (degrees; default
  0.1 rad = 5.73°, GLASS), reflected at 0° and 180° so no weight leaks out of [0°, 180°] and the density has zero
  slope at the ends; cut at ``truncate·σ``. No sin θ (solid-angle) division.
- Normalisation: unit area per structure, ``Σ_k P(θ_k) dθ = 1`` (deg⁻¹); a structure without triplets gives 0.
"""

from __future__ import annotations

import math

import torch
from ase.data import atomic_numbers, covalent_radii

from specguide.graph import VerletNeighborList
from specguide.observables.base import Observable
from specguide.observables.pdf import gaussian_histogram
from specguide.observables.weights import element_symbol


def _atomic_number(z) -> int:
    if isinstance(z, str):
        if z not in atomic_numbers:
            raise ValueError(f"unknown element {z!r}")
        return atomic_numbers[z]
    z = int(z)
    element_symbol(z)
    return z


def _pair_key(pair) -> tuple[int, int]:
    if isinstance(pair, str):
        pair = pair.split("-")
    a, b = (_atomic_number(z) for z in pair)
    return (a, b) if a <= b else (b, a)


def _species_set(value) -> tuple[int, ...] | None:
    if value is None:
        return None
    if isinstance(value, (str, int)):
        value = [value]
    return tuple(_atomic_number(z) for z in value)


def triplets(centre: torch.Tensor, n_atoms: int) -> tuple[torch.Tensor, torch.Tensor]:
    """All pairs of edges sharing a centre, without loops: ``(first, second)`` edge indices, ``first < second``.

    ``centre[e]`` is the centre atom of edge ``e``. Edges are sorted by centre; edge at local position ``l`` in a
    run of ``c`` edges pairs with the ``c − 1 − l`` edges after it (``Σ c(c − 1)/2`` triplets in all).
    """
    order = torch.argsort(centre, stable=True)
    counts = torch.bincount(centre, minlength=n_atoms)
    starts = torch.cumsum(counts, 0) - counts
    sorted_centre = centre[order]
    local = torch.arange(len(order), device=centre.device) - starts[sorted_centre]
    n_after = counts[sorted_centre] - 1 - local
    first = torch.repeat_interleave(torch.arange(len(order), device=centre.device), n_after)
    run_start = torch.cumsum(n_after, 0) - n_after
    offset = torch.arange(len(first), device=centre.device) - torch.repeat_interleave(run_start, n_after)
    second = first + 1 + offset
    return order[first], order[second]


class BondAngleDistribution(Observable):
    """Gaussian-smoothed bond-angle distribution ``P(θ)`` of each structure (unit area, θ in degrees).

    Args:
        cutoff: ``None`` (covalent-radii rule), one float (Å) for all pairs, or a dict of per-pair overrides.
        dtheta: grid step (degrees); the grid is the bin centres ``(k + ½) dθ`` in [0, 180].
        sigma: Gaussian width (degrees); default 0.1 rad.
        centre: species of the centre atom (symbol or atomic number), or ``None`` for all.
        neighbours: ``None`` (any), one species (both neighbours of it) or two species (one of each).
        cutoff_scale: factor on the sum of covalent radii for the default cut-offs.
        truncate: kernel cut-off in units of σ.

    ``__call__(positions [N,3], cells [S,3,3], numbers [N], batch [N] | None) -> [S, n_theta]`` (deg⁻¹).
    """

    kind = "adf"
    x_label = "θ (degrees)"
    y_label = "P(θ) (deg⁻¹)"

    def __init__(
        self,
        cutoff: float | dict | None = None,
        dtheta: float = 1.0,
        sigma: float = math.degrees(0.1),
        centre=None,
        neighbours=None,
        cutoff_scale: float = 1.3,
        truncate: float = 6.0,
    ) -> None:
        if dtheta <= 0 or sigma <= 0:
            raise ValueError(f"dtheta and sigma must be positive, got {dtheta}, {sigma}")
        self.default_cutoff = float(cutoff) if isinstance(cutoff, (int, float)) else None
        self.pair_cutoffs = {_pair_key(k): float(v) for k, v in cutoff.items()} if isinstance(cutoff, dict) else {}
        self.cutoff_scale = float(cutoff_scale)
        self.neighbors = VerletNeighborList()  # reused while atoms move little (guidance steps)
        self.centre = _species_set(centre)
        self.neighbours = _species_set(neighbours)
        if self.centre is not None and len(self.centre) != 1:
            raise ValueError("centre must be a single species")
        if self.neighbours is not None and len(self.neighbours) not in (1, 2):
            raise ValueError("neighbours must be one species or a pair of species")
        self.dtheta, self.sigma, self.truncate = float(dtheta), float(sigma), float(truncate)
        self.n_theta = max(1, round(180.0 / dtheta))
        self.dtheta = 180.0 / self.n_theta
        self.grid = (torch.arange(self.n_theta, dtype=torch.float64) + 0.5) * self.dtheta
        selection = ""
        if self.centre is not None or self.neighbours is not None:
            c = element_symbol(self.centre[0]) if self.centre else "*"
            nb = [element_symbol(z) for z in self.neighbours] if self.neighbours else ["*"]
            selection = f"; triplets {nb[0]}-{c}-{nb[-1]}"
        self.quantity = (
            f"P(θ), bond-angle distribution at the centre atom (unit area){selection}; Gaussian-broadened, "
            f"sigma = {self.sigma:.3g}°"
        )

    def pair_cutoff(self, a: int, b: int) -> float:
        """Bond cut-off (Å) between atomic numbers ``a`` and ``b``."""
        key = (a, b) if a <= b else (b, a)
        if key in self.pair_cutoffs:
            return self.pair_cutoffs[key]
        if self.default_cutoff is not None:
            return self.default_cutoff
        return self.cutoff_scale * float(covalent_radii[a] + covalent_radii[b])

    def angles(self, positions, cells, numbers, batch=None) -> tuple[torch.Tensor, torch.Tensor]:
        """Bond angles (degrees) of the selected triplets and the structure of each: ``([T], [T])``."""
        if cells.dim() == 2:
            cells = cells.unsqueeze(0)
        if batch is None:
            batch = torch.zeros(positions.shape[0], dtype=torch.long, device=positions.device)
        species = torch.unique(numbers)
        table = torch.tensor(
            [[self.pair_cutoff(a, b) for b in species.tolist()] for a in species.tolist()],
            dtype=positions.dtype,
            device=positions.device,
        )
        kind = torch.searchsorted(species, numbers)
        graph = self.neighbors(positions, cells, batch, float(table.max()), full_list=True)
        i, j = graph.edge_index
        keep = graph.distances < table[kind[i], kind[j]]
        if self.centre is not None:
            keep &= numbers[i] == self.centre[0]
        if self.neighbours is not None:
            allowed = torch.as_tensor(self.neighbours, device=numbers.device)
            keep &= torch.isin(numbers[j], allowed)
        edges = torch.nonzero(keep).squeeze(1)
        first, second = triplets(i[edges], positions.shape[0])
        first, second = edges[first], edges[second]
        if self.neighbours is not None and len(set(self.neighbours)) == 2:
            mixed = numbers[j[first]] != numbers[j[second]]
            first, second = first[mixed], second[mixed]

        v1, v2 = graph.vectors[first], graph.vectors[second]
        cosine = (v1 * v2).sum(-1) / (graph.distances[first] * graph.distances[second])
        eps = 1e-12 if positions.dtype == torch.float64 else 1e-6
        theta = torch.rad2deg(torch.acos(cosine.clamp(-1.0 + eps, 1.0 - eps)))
        return theta, graph.edge_batch[first]

    def __call__(self, positions, cells, numbers, batch=None) -> torch.Tensor:
        n_structures = 1 if cells.dim() == 2 else cells.shape[0]
        theta, structure = self.angles(positions, cells, numbers, batch)
        samples = torch.cat([theta, -theta, 360.0 - theta])  # reflections at 0° and 180°
        groups = torch.cat([structure, structure, structure])
        density = gaussian_histogram(
            samples,
            groups,
            n_structures,
            start=0.5 * self.dtheta,
            step=self.dtheta,
            n=self.n_theta,
            sigma=self.sigma,
            truncate=self.truncate,
        )
        area = density.sum(-1, keepdim=True) * self.dtheta
        return density / area.clamp(min=torch.finfo(density.dtype).tiny)
