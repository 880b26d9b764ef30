"""Local structure of an ensemble: bond cutoffs from the RDF, coordination, bond angles, dihedral angles.

Every function takes a list of ``ase.Atoms`` (an ensemble, pooled) and works on one batched neighbour list
(:func:`specguide.graph.neighbor_graph`), with no Python loops over atoms or pairs.

- Cutoffs: per unordered species pair, the first minimum of the partial g_ab(r) after its first peak
  (Gaussian width 0.05 Å, ensemble mean), unless given.
- Coordination: number of bonded neighbours (distance < the pair's cutoff) per atom; fractions per species
  (all neighbours) and per ordered pair (centre species, neighbour species).
- Bond angles j–i–k (degrees) of bonded triplets; dihedral angles i–j–k–l (degrees, in [0°, 180°]) about
  every bond j–k, with i bonded to j (i ≠ k) and l bonded to k (l ≠ j, l ≠ i).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import ase
import numpy as np
import torch
from ase.data import atomic_numbers, chemical_symbols, covalent_radii

from specguide.chemistry import (
    Chemistry,
    PairTable,
    composition_of,
    coordination_numbers,
    first_minimum,
    first_peak_and_minimum,
    pair_key,
    shortest_pairs,
)
from specguide.graph import batch_from_atoms, neighbor_graph, perpendicular_widths
from specguide.observables import BondAngleDistribution, PairDistribution
from specguide.observables.spectrum import structure_curves
from specguide.structure import density_g_cm3

Cutoffs = dict[tuple[str, str], float]


def _key(pair) -> tuple[str, str]:
    a, b = pair.split("-") if isinstance(pair, str) else pair
    a = chemical_symbols[a] if isinstance(a, int) else a
    b = chemical_symbols[b] if isinstance(b, int) else b
    for s in (a, b):
        if s not in atomic_numbers:
            raise ValueError(f"unknown element {s!r} in bond cutoff {pair!r}")
    return tuple(sorted((a, b)))  # type: ignore[return-value]


def normalize_cutoffs(cutoffs: Mapping | float | None, structures: Sequence[ase.Atoms]) -> Cutoffs | None:
    """``{("O", "Si"): r}`` with sorted symbol keys; a float applies to every species pair present."""
    if cutoffs is None:
        return None
    symbols = sorted({s for a in structures for s in a.get_chemical_symbols()})
    if isinstance(cutoffs, (int, float)):
        return {(a, b): float(cutoffs) for k, a in enumerate(symbols) for b in symbols[k:]}
    return {_key(k): float(v) for k, v in cutoffs.items()}


def first_shell_coordination(r: np.ndarray, g: np.ndarray, number_density: float) -> tuple[float, float]:
    """``(n1, r1)``: the mean first-shell coordination number ``∫_0^r1 4πρ r² g(r) dr`` of a g(r) on the grid ``r``
    (Å), with ``r1`` (Å) its first minimum after the first peak and ``ρ`` the number density (Å⁻³)."""
    r, g = np.asarray(r, dtype=float), np.asarray(g, dtype=float)
    minimum = first_minimum(r, g)
    if minimum is None:
        raise ValueError("g(r) has no first minimum after its first peak on this grid")
    shell = r <= minimum
    return float(np.trapezoid(4.0 * math.pi * number_density * r[shell] ** 2 * g[shell], r[shell])), minimum


SHELL_REACH = 5.0  # Å: a pair whose first minimum lies beyond r_max is looked for again up to here (Zr–Zr ~4.2 Å)


def partial_shells(
    structures: Sequence[ase.Atoms], r_max: float = 4.0, sigma: float = 0.05, device: torch.device | str = "cpu"
) -> dict[tuple[str, str], tuple[float | None, float | None]]:
    """``{("O", "Si"): (first peak, first minimum)}`` (Å) of every species pair's ensemble-mean partial g_ab(r)
    (Gaussian width ``sigma``, computed on ``device``) up to ``r_max`` or half the narrowest cell; pairs never within
    reach are left out. A pair with no minimum below ``r_max`` is looked at again up to :data:`SHELL_REACH` (large
    atoms: Zr–Zr)."""
    structures = list(structures)
    out = _shells(structures, r_max, sigma, device)
    if any(minimum is None for _, minimum in out.values()) and r_max < SHELL_REACH:
        wider = _shells(structures, SHELL_REACH, sigma, device)
        out = {pair: shell if shell[1] is not None else wider.get(pair, shell) for pair, shell in out.items()}
    return out


def _mean_partials(
    structures: Sequence[ase.Atoms], r_max: float, sigma: float, device: torch.device | str = "cpu"
) -> tuple[np.ndarray, dict]:
    """``(r, {label: ensemble-mean g_ab(r)})`` on a 0.01 Å grid up to ``r_max`` or half the narrowest cell (Å),
    computed on ``device``."""
    positions, cells, numbers, batch = batch_from_atoms(list(structures), device=device)
    half = float(perpendicular_widths(cells).min()) / 2
    reach = math.floor(min(r_max, half) / 0.01) * 0.01
    pdf = PairDistribution(r_max=reach, dr=0.01, sigma=sigma)
    with torch.no_grad():
        partials = pdf.partials(positions, cells, numbers, batch)
    curves = {label: partials.values[:, k].mean(0).cpu().numpy() for k, label in enumerate(partials.labels)}
    return pdf.grid.numpy(), curves


def _shells(structures: Sequence[ase.Atoms], r_max: float, sigma: float, device: torch.device | str = "cpu") -> dict:
    r, curves = _mean_partials(structures, r_max, sigma, device)
    return {_key(label): first_peak_and_minimum(r, g) for label, g in curves.items() if g.max() > 0}


PAIR_DISTRIBUTION_R_MAX = 8.0  # Å (or half the narrowest cell): reach of the curves `specguide analyze` writes


def pair_distributions(
    structures: Sequence[ase.Atoms], sigma: float = 0.05, device: torch.device | str = "cpu"
) -> tuple[np.ndarray, dict]:
    """Ensemble-mean partial g_ab(r) of every species pair and the number-, X-ray- (f = Z) and neutron- (b_c)
    weighted Faber–Ziman totals: ``(r (Å), {"Cu-Zr": g, ..., "total_number": g, "total_xray": g,
    "total_neutron": g})`` on a 0.01 Å grid up to 8 Å or half the narrowest cell, Gaussian width ``sigma`` (Å),
    computed on ``device`` (float64)."""
    structures = list(structures)
    r, curves = _mean_partials(structures, PAIR_DISTRIBUTION_R_MAX, sigma, device)
    curves = {"-".join(_key(label)): g for label, g in curves.items()}
    positions, cells, numbers, batch = batch_from_atoms(structures, device=device)
    for weighting in ("number", "xray", "neutron"):
        pdf = PairDistribution(r_max=float(r[-1] + 0.005), dr=0.01, sigma=sigma, weighting=weighting)
        with torch.no_grad():
            curves[f"total_{weighting}"] = pdf(positions, cells, numbers, batch).mean(0).cpu().numpy()
    return r, curves


def pair_distribution_peaks(r: np.ndarray, curves: Mapping[str, np.ndarray]) -> dict[str, dict]:
    """First peak and first minimum (Å) of each curve of :func:`pair_distributions` (None where absent)."""
    out = {}
    for name, g in curves.items():
        peak, minimum = first_peak_and_minimum(r, g) if g.max() > 0 else (None, None)
        out[name] = {key: None if value is None else round(value, 3)
                     for key, value in (("first_peak", peak), ("first_minimum", minimum))}  # fmt: skip
    return out


def rdf_cutoffs(
    structures: Sequence[ase.Atoms], r_max: float = 4.0, sigma: float = 0.05, device: torch.device | str = "cpu"
) -> Cutoffs:
    """Bond cutoff per species pair (Å): first minimum of the ensemble-mean partial g_ab(r) after its peak (the g(r)
    computed on ``device``).

    Raises ``ValueError`` for a pair whose partial has no minimum below ``r_max`` (give cutoffs instead).
    """
    out: Cutoffs = {}
    for pair, (_, minimum) in partial_shells(structures, r_max, sigma, device).items():
        if minimum is None:
            raise ValueError(f"partial g(r) of {'-'.join(pair)} has no first minimum below {r_max:.2f} Å; "
                             "give cutoffs")  # fmt: skip
        out[pair] = round(minimum, 3)
    return out


BONDED_PEAK_FACTOR = 1.2  # a pair is bonded if its first g_ab peak is within this × the covalent radii sum
DENSITY_GROUP = 0.05  # g/cm³: training structures this close in density share one coordination record


def chemistry_of(structures: Sequence[ase.Atoms], source: str = "") -> Chemistry:
    """The :class:`~specguide.chemistry.Chemistry` of a set of periodic structures (e.g. a prior's MD snapshots).

    Bonded pairs are those whose partial g_ab(r) peaks within 1.2 × the sum of covalent radii; their bond cutoff is
    the first minimum after that peak; coordination fractions and the mean g(r) and bond-angle distribution (as
    reports draw them, with those bond cutoffs) are recorded per density (0.05 g/cm³ groups).
    """
    structures = list(structures)
    if not structures:
        raise ValueError("no structures to take the chemistry from")
    cutoffs: Cutoffs = {}
    for pair, (peak, minimum) in partial_shells(structures).items():
        bond = BONDED_PEAK_FACTOR * sum(covalent_radii[atomic_numbers[s]] for s in pair)
        if peak is not None and minimum is not None and peak <= bond:
            cutoffs[pair] = round(minimum, 3)
    densities = np.array([density_g_cm3(a) for a in structures])
    groups = np.round(densities / DENSITY_GROUP) * DENSITY_GROUP
    records, curves = {}, {}
    bond_table = {pair_key(*pair): value for pair, value in cutoffs.items()}
    for value in np.unique(groups):
        members = [a for a, g in zip(structures, groups) if g == value]
        if cutoffs:
            fractions = coordination(members, cutoffs)["species"]
            records[f"{value:.2f}"] = {s: {n: round(f, 6) for n, f in d.items()} for s, d in fractions.items()}
        curves[f"{value:.2f}"] = _mean_curves(members, bond_table or None)
    return Chemistry(composition_of(structures), bond_table, shortest_pairs(structures), records, source, curves)


def _mean_curves(structures: Sequence[ase.Atoms], bond_cutoffs: dict[str, float] | None) -> dict:
    """The ensemble-mean g(r) and bond-angle distribution of :func:`structure_curves`, rounded for JSON."""
    curves = structure_curves(structures, bond_cutoffs)
    return {
        "r": np.round(curves["r"], 4).tolist(),
        "g": np.round(curves["g"].mean(0), 4).tolist(),
        "theta": np.round(curves["theta"], 4).tolist(),
        "p_theta": np.round(curves["p_theta"].mean(0), 6).tolist(),
        "smoothing": curves["smoothing"],
    }


def coordination(structures: Sequence[ase.Atoms], cutoffs: Cutoffs) -> dict:
    """Coordination fractions, pooled over the ensemble.

    Returns ``{"species": {"Si": {"4": f, ...}}, "pairs": {"Si-O": {"4": f, ...}}, "mean": {"Si": cn}}``:
    ``pairs[a-b]`` counts only b neighbours of a-centred atoms.
    """
    positions, cells, numbers, batch = batch_from_atoms(list(structures))
    cn, bonds = coordination_numbers(positions, cells, numbers, batch, PairTable(cutoffs), return_bonds=True)
    i, j = bonds
    species = torch.unique(numbers).tolist()
    result: dict = {"species": {}, "pairs": {}, "mean": {}}

    def fractions(values: torch.Tensor) -> dict[str, float]:
        counts = torch.bincount(values)
        return {str(k): float(c) / len(values) for k, c in enumerate(counts.tolist()) if c}

    for a in species:
        centre = numbers == a
        sa = chemical_symbols[a]
        result["species"][sa] = fractions(cn[centre])
        result["mean"][sa] = float(cn[centre].double().mean())
        for b in species:
            partial = torch.bincount(i[numbers[j] == b], minlength=len(numbers))
            result["pairs"][f"{sa}-{chemical_symbols[b]}"] = fractions(partial[centre])
    return result


def bond_angles(structures: Sequence[ase.Atoms], cutoffs: Cutoffs) -> np.ndarray:
    """All bond angles j–i–k (degrees) of bonded triplets in the ensemble."""
    positions, cells, numbers, batch = batch_from_atoms(list(structures))
    adf = BondAngleDistribution(cutoff={_key(k): v for k, v in cutoffs.items()}, cutoff_scale=0.0)
    with torch.no_grad():
        theta, _ = adf.angles(positions, cells, numbers, batch)
    return theta.numpy()


def dihedral_angles(structures: Sequence[ase.Atoms], cutoffs: Cutoffs) -> np.ndarray:
    """Dihedral angles i–j–k–l (degrees, 0–180°) about every bond j–k of the ensemble (each bond once)."""
    positions, cells, numbers, batch = batch_from_atoms(list(structures))
    table = PairTable(cutoffs)
    graph = neighbor_graph(positions, cells, batch, table.max_for(numbers), full_list=True)
    i, j = graph.edge_index
    bonded = graph.distances < table.lookup(numbers[i], numbers[j], graph.distances.dtype)
    edges = torch.nonzero(bonded).squeeze(1)
    centre, other, vec = i[edges], j[edges], graph.vectors[edges]
    shift = graph.shifts[edges]
    # middle bonds j->k: each unordered bond once (j < k, or a self-image bond counted by its shift's sign)
    first_nonzero = torch.where(shift != 0, shift, torch.zeros_like(shift))
    sign = torch.sign(first_nonzero[:, 0] * 4 + first_nonzero[:, 1] * 2 + first_nonzero[:, 2])
    middle = torch.nonzero((centre < other) | ((centre == other) & (sign > 0))).squeeze(1)
    # for every middle bond b = (j, k): pairs (edge a from j, edge c from k), excluding a -> k and c -> j
    count = torch.bincount(centre, minlength=positions.shape[0])
    order = torch.argsort(centre, stable=True)
    start = torch.cumsum(count, 0) - count
    nj, nk = count[centre[middle]], count[other[middle]]
    n_pairs = nj * nk
    mid = torch.repeat_interleave(middle, n_pairs)
    offset = torch.arange(int(n_pairs.sum())) - torch.repeat_interleave(torch.cumsum(n_pairs, 0) - n_pairs, n_pairs)
    nk_rep = torch.repeat_interleave(nk, n_pairs)
    a = order[start[centre[mid]] + offset // nk_rep]  # edge j -> i
    c = order[start[other[mid]] + offset % nk_rep]  # edge k -> l
    b1, b2, b3 = -vec[a], vec[mid], vec[c]  # i->j, j->k, k->l
    # exclude the bond itself (i = k with the same image, l = j) and three-rings (i = l): image-aware by vectors
    not_back_a = (vec[a] - vec[mid]).norm(dim=-1) > 1e-6
    not_back_c = (vec[c] + vec[mid]).norm(dim=-1) > 1e-6
    not_ring = (b1 + b2 + b3).norm(dim=-1) > 1e-6
    keep = not_back_a & not_back_c & not_ring
    b1, b2, b3 = b1[keep], b2[keep], b3[keep]
    n1, n2 = torch.linalg.cross(b1, b2), torch.linalg.cross(b2, b3)
    m1 = torch.linalg.cross(n1, b2 / b2.norm(dim=-1, keepdim=True))
    x, y = (n1 * n2).sum(-1), (m1 * n2).sum(-1)
    return torch.rad2deg(torch.atan2(y, x)).abs().numpy()


def histogram(values: np.ndarray, lo: float, hi: float, width: float) -> dict[str, list[float]]:
    """Normalised histogram ``{"x": bin centres, "density": per unit x}`` for JSON reports."""
    edges = np.arange(lo, hi + width / 2, width)
    density, _ = np.histogram(values, bins=edges, density=len(values) > 0)
    return {"x": ((edges[:-1] + edges[1:]) / 2).round(4).tolist(), "density": np.nan_to_num(density).round(6).tolist()}
