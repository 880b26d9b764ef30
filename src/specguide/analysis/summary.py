"""A quick structural summary of an ensemble (``summary.json`` of ``generate`` and ``invert``): coordination
fractions per species and their spread over structures, carbon sp/sp2/sp3 fractions, shortest pairs, the RDF's
first peak, and — given the prior's :class:`~specguide.chemistry.Chemistry` — its training data beside them."""

from __future__ import annotations

import math
from collections.abc import Sequence

import ase
import torch
from ase.data import chemical_symbols

from specguide.chemistry import (
    BOND_FACTOR,
    Chemistry,
    PairTable,
    PairValues,
    coordination_numbers,
    find_defects,
    pair_values_json,
    to_z,
)
from specguide.graph import batch_from_atoms, neighbor_graph, perpendicular_widths
from specguide.structure import density_g_cm3 as density_of


def _fractions_per_structure(
    values: torch.Tensor, batch: torch.Tensor, n_structures: int, n_values: int
) -> torch.Tensor:
    """Fraction of each value 0..n_values-1 within each structure, shape (n_structures, n_values)."""
    counts = torch.zeros(n_structures, n_values, dtype=torch.float64)
    counts.index_put_((batch, values), torch.ones_like(values, dtype=torch.float64), accumulate=True)
    totals = counts.sum(dim=1, keepdim=True)
    return counts / totals.clamp_min(1.0)


HYBRIDIZATION = {"sp": 2, "sp2": 3, "sp3": 4}
"""Carbon hybridization by coordination number within the bond cutoff (the convention of MD studies of a-C)."""


def _carbon_hybridization(cn: torch.Tensor, numbers: torch.Tensor, batch: torch.Tensor, n_structures: int) -> dict:
    """sp/sp2/sp3 fractions of carbon atoms: ensemble mean and standard deviation over structures (fractions, 0-1)."""
    carbon = numbers == 6
    if not bool(carbon.any()):
        return {}
    values = cn[carbon]
    per_structure = _fractions_per_structure(values, batch[carbon], n_structures, int(values.max()) + 1)
    has_carbon = torch.bincount(batch[carbon], minlength=n_structures) > 0
    per_structure = per_structure[has_carbon]
    result = {}
    for name, k in HYBRIDIZATION.items():
        column = (
            per_structure[:, k] if k < per_structure.shape[1] else torch.zeros(len(per_structure), dtype=torch.float64)
        )
        result[name] = {
            "mean": round(float(column.mean()), 5),
            "std": round(float(column.std(unbiased=False)), 5),
            "per_structure": [round(float(v), 5) for v in column],
        }
    other = 1.0 - sum(result[name]["mean"] for name in HYBRIDIZATION)
    result["other"] = round(max(other, 0.0), 5)
    result["definition"] = "coordination number within the C-C bond cutoff: sp = 2, sp2 = 3, sp3 = 4"
    return result


def summarize(
    structures: Sequence[ase.Atoms],
    bond_cutoffs: PairValues | None = None,
    cn_range: dict | None = None,
    r_max: float = 5.0,
    dr: float = 0.02,
    chemistry: Chemistry | None = None,
    density_g_cm3: float | None = None,
) -> dict:
    """Quick structural checks: coordination fractions per species, shortest pair per species pair, RDF first peak.

    ``bond_cutoffs`` defaults to the ``chemistry``'s (the prior's training data: first minimum of each bonded
    partial g(r)) or else 1.21 x covalent radii (C–C 1.84 Å). With ``chemistry`` the summary also holds the
    training data's coordination fractions (at the training density nearest ``density_g_cm3``) and shortest
    pairs under ``reference``, and ``shorter_than_reference`` lists pairs that came closer than the data ever do.
    The RDF is a histogram of pair distances (bin ``dr``) normalised by the ideal-gas shell; its first peak is the
    maximum below the largest bond cutoff x 1.3 (or below ``r_max``).
    """
    structures = list(structures)
    if not structures:
        raise ValueError("no structures to summarize")
    positions, cells, numbers, batch = batch_from_atoms(structures)
    present = sorted({int(z) for z in numbers.tolist()})
    covers = chemistry is not None and {to_z(s) for s in chemistry.composition} >= set(present)
    if bond_cutoffs is None:
        bond_cutoffs = chemistry.bond_table() if covers and chemistry.bond_cutoffs else None
    if bond_cutoffs is None:
        bond_cutoffs = PairTable.covalent(present, BOND_FACTOR)
    table = PairTable(bond_cutoffs)
    cn = coordination_numbers(positions, cells, numbers, batch, table)

    coordination = {}
    n_structures = len(structures)
    for z in present:
        mask = numbers == z
        values = cn[mask]
        counts = torch.bincount(values)
        per_structure = _fractions_per_structure(values, batch[mask], n_structures, len(counts))
        coordination[chemical_symbols[z]] = {
            "fractions": {str(k): round(float(c) / int(mask.sum()), 5) for k, c in enumerate(counts.tolist()) if c},
            "spread": {
                str(k): round(float(per_structure[:, k].std(unbiased=False)), 5)
                for k, c in enumerate(counts.tolist())
                if c
            },
            "mean": round(float(values.double().mean()), 4),
        }
    hybridization = _carbon_hybridization(cn, numbers, batch, n_structures)

    half_width = float(perpendicular_widths(cells).min()) / 2
    r_hist = min(r_max, half_width)
    graph = neighbor_graph(positions, cells, batch, r_hist, full_list=False)
    distances = graph.distances.double()
    min_distance = float(distances.min()) if distances.numel() else float("nan")
    i, j = graph.edge_index
    code = torch.minimum(numbers[i], numbers[j]) * 119 + torch.maximum(numbers[i], numbers[j])
    shortest = torch.full((119 * 119,), math.inf, dtype=torch.float64).scatter_reduce(0, code, distances, "amin")
    shortest_pairs = {
        f"{chemical_symbols[c // 119]}-{chemical_symbols[c % 119]}": round(float(shortest[c]), 4)
        for c in torch.nonzero(torch.isfinite(shortest)).flatten().tolist()
    }
    bins = max(1, int(r_hist / dr))
    hist = torch.histc(distances, bins=bins, min=0.0, max=r_hist)
    edges = torch.linspace(0.0, r_hist, bins + 1, dtype=torch.float64)
    centres = 0.5 * (edges[1:] + edges[:-1])
    shell = 4.0 / 3.0 * math.pi * (edges[1:] ** 3 - edges[:-1] ** 3)
    n_total = len(numbers)
    density = sum(len(a) / a.get_volume() for a in structures) / len(structures)
    g = 2.0 * hist / (n_total * density * shell)
    smooth = torch.nn.functional.avg_pool1d(g[None, None], 3, stride=1, padding=1, count_include_pad=False)[0, 0]
    limit = min(r_hist, 1.3 * table.max_for(numbers)) if table.max_for(numbers) > 0 else r_hist
    window = centres < limit
    peak = float(centres[window][torch.argmax(smooth[window])]) if bool(window.any()) else float("nan")

    summary = {
        "n_structures": len(structures),
        "n_atoms": [len(a) for a in structures],
        "density_g_cm3": [round(density_of(a), 4) for a in structures],
        "bond_cutoffs": pair_values_json(bond_cutoffs),
        "coordination": coordination,
        "min_distance": round(min_distance, 4) if math.isfinite(min_distance) else None,
        "shortest_pairs": shortest_pairs,
        "rdf_first_peak": round(peak, 3) if math.isfinite(peak) else None,
    }
    if hybridization:
        summary["carbon_hybridization"] = hybridization
    if covers:
        summary["reference"] = {
            "source": chemistry.source or "the prior's training data",
            "coordination": chemistry.coordination_at(density_g_cm3),
            "shortest_pairs": chemistry.shortest,
        }
        curves = chemistry.curves_at(density_g_cm3)
        if curves is not None:  # the training data's g(r) and bond angles that report.png draws
            summary["reference"]["curves"] = {"density_g_cm3": float(curves[0]), **curves[1]}
        summary["shorter_than_reference"] = {
            pair: value for pair, value in shortest_pairs.items()
            if pair in chemistry.shortest and value < chemistry.shortest[pair] - 1e-4
        }  # fmt: skip
    if cn_range:
        defects = find_defects(positions, cells, numbers, batch, table, cn_range)
        summary["cn_range"] = {str(k): list(v) for k, v in cn_range.items()}
        summary["defect_fraction"] = round(float(defects.double().mean()), 5)
    return summary
