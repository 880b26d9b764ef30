"""Coordination clusters around an excited atom: atoms within a number of bonded shells, and unique sites.

A cluster (Okubo et al.) is the excited atom plus every atom reachable through at most ``shells`` bonds
(bond = any pair closer than ``bond_cutoff`` Å, periodic images followed by minimum-image shifts), as a
non-periodic ``ase.Atoms`` with the excited atom first and at the origin; ``arrays['shell']`` holds each
atom's bond distance from it (0, 1, 2, 3).
"""

from __future__ import annotations

import ase
import numpy as np

BOND_CUTOFF = 2.0  # Å, the paper's neighbour cut-off
SHELLS = 3


def site_cluster(atoms: ase.Atoms, site: int, shells: int = SHELLS, bond_cutoff: float = BOND_CUTOFF) -> ase.Atoms:
    """Atoms within ``shells`` bonds (``bond_cutoff`` Å) of ``site``; excited atom first, at the origin (Å).

    Works for periodic structures (image shifts are tracked, so a cluster can be larger than the cell) and
    for non-periodic ones. Atoms are ordered by shell, then by distance from the excited atom.
    """
    from ase.neighborlist import neighbor_list

    if not 0 <= site < len(atoms):
        raise IndexError(f"site {site} out of range for a structure of {len(atoms)} atoms")
    i, j, shift = neighbor_list("ijS", atoms, bond_cutoff)
    order = np.argsort(i, kind="stable")
    i, j, shift = i[order], j[order], shift[order]
    start = np.searchsorted(i, np.arange(len(atoms) + 1))
    cell = np.asarray(atoms.cell[:]) if atoms.pbc.any() else np.zeros((3, 3))

    # nodes: (atom index, integer image shift); frontier expanded one shell at a time
    seen = {(site, (0, 0, 0)): 0}
    frontier = [(site, np.zeros(3, dtype=int))]
    for shell in range(1, shells + 1):
        nxt = []
        for idx, img in frontier:
            lo, hi = start[idx], start[idx + 1]
            for nb, s in zip(j[lo:hi], shift[lo:hi] + img, strict=True):
                key = (int(nb), tuple(int(v) for v in s))
                if key not in seen:
                    seen[key] = shell
                    nxt.append((int(nb), s))
        frontier = nxt
    keys = list(seen)
    index = np.array([k[0] for k in keys])
    images = np.array([k[1] for k in keys], dtype=float)
    shell_of = np.array([seen[k] for k in keys])
    positions = atoms.positions[index] + images @ cell - atoms.positions[site]
    dist = np.linalg.norm(positions, axis=1)
    order = np.lexsort((dist, shell_of))
    cluster = ase.Atoms(numbers=atoms.numbers[index[order]], positions=positions[order], pbc=False)
    cluster.arrays["shell"] = shell_of[order]
    cluster.arrays["source_index"] = index[order]
    return cluster


def sites_with_cluster_species(atoms: ase.Atoms, sites: np.ndarray, allowed: set[int] | None) -> np.ndarray:
    """The ``sites`` whose cluster (:func:`site_cluster`) holds only the atomic numbers in ``allowed`` (all when
    None): e.g. the O of a silicate that a site model of O and Si can describe."""
    if allowed is None:
        return np.asarray(sites, dtype=int)
    return np.array([int(s) for s in sites if set(site_cluster(atoms, int(s)).numbers.tolist()) <= allowed], dtype=int)


def unique_sites(atoms: ase.Atoms, element: str = "O") -> np.ndarray:
    """Indices of symmetry-unique ``element`` sites: one per asymmetric-unit kind when the structure was built
    by ``ase.spacegroup.crystal`` (``arrays['spacegroup_kinds']``), else one per distinct cluster fingerprint
    (sorted shell distances rounded to 0.01 Å and species), which merges sites equivalent by symmetry."""
    from ase.data import atomic_numbers

    candidates = np.flatnonzero(atoms.numbers == atomic_numbers[element])
    if "spacegroup_kinds" in atoms.arrays:
        kinds = atoms.arrays["spacegroup_kinds"][candidates]
        _, first = np.unique(kinds, return_index=True)
        return candidates[np.sort(first)]
    keep, prints = [], set()
    for idx in candidates:
        cluster = site_cluster(atoms, int(idx))
        r = np.round(np.linalg.norm(cluster.positions, axis=1), 2)
        fp = tuple(sorted(zip(cluster.arrays["shell"].tolist(), cluster.numbers.tolist(), r.tolist(), strict=True)))
        if fp not in prints:
            prints.add(fp)
            keep.append(int(idx))
    return np.array(keep, dtype=int)
