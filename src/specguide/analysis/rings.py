"""Shortest-path ring statistics (King's criterion with Franzblau's multiplicities), vectorised.

For every bond angle j–i–k, the shortest rings through it are the shortest paths from j to k that avoid i,
closed by the bonds k–i–j; their size is the path length + 2. All shortest paths are counted (their number
is the ring multiplicity of the angle), so a ring of size n found at all n of its angles contributes
n / n = 1: ``rings per atom(n) = Σ_angles multiplicity(n) / n / N``. Diamond: two 6-rings per atom;
simple cubic: three 4-rings and two 6-rings per atom.

Paths follow periodic images exactly (every node carries its integer cell shift), so rings that wrap around
a small cell are never confused with local rings. The search is a breadth-first search over all angles of a
structure at once (numpy arrays of states, no Python loop over atoms), limited to ``max_size``.
"""

from __future__ import annotations

from collections.abc import Sequence

import ase
import numpy as np
import torch

from specguide.analysis.structure import Cutoffs
from specguide.chemistry import PairTable
from specguide.graph import batch_from_atoms, neighbor_graph
from specguide.observables.adf import triplets

_SHIFT_BITS = 6  # cell shifts within ±31 per axis


def _ring_counts_one(atoms: ase.Atoms, cutoffs: Cutoffs, max_size: int) -> np.ndarray:
    """Σ over angles of the number of shortest rings of each size ``[max_size + 1]`` (index = ring size)."""
    positions, cells, numbers, batch = batch_from_atoms([atoms])
    table = PairTable(cutoffs)
    graph = neighbor_graph(positions, cells, batch, table.max_for(numbers), full_list=True)
    i, j = graph.edge_index
    bonded = (graph.distances < table.lookup(numbers[i], numbers[j], graph.distances.dtype)).numpy()
    src, dst = i.numpy()[bonded], j.numpy()[bonded]
    shift = graph.shifts.numpy()[bonded].round().astype(np.int64)
    n = len(atoms)
    counts = np.zeros(max_size + 1)
    if len(src) == 0:
        return counts
    order = np.argsort(src, kind="stable")
    src, dst, shift = src[order], dst[order], shift[order]
    degree = np.bincount(src, minlength=n)
    start = np.cumsum(degree) - degree
    first, second = (t.numpy() for t in triplets(torch.as_tensor(src), n))
    n_angles = len(first)
    if n_angles == 0:
        return counts
    centre = src[first]
    goal_atom, goal_shift = dst[second], shift[second]
    offset = 1 << (_SHIFT_BITS - 1)

    def key(angle, atom, s):
        k = angle.astype(np.int64) * n + atom
        for axis in range(3):
            k = (k << _SHIFT_BITS) | (s[:, axis] + offset)
        return k

    # states: (angle, atom, shift, number of shortest paths reaching it)
    angle = np.arange(n_angles)
    atom, cur_shift, paths = dst[first], shift[first], np.ones(n_angles)
    visited = np.sort(
        np.concatenate([key(angle, atom, cur_shift), key(angle, centre, np.zeros((n_angles, 3), np.int64))])
    )
    open_angle = np.ones(n_angles, dtype=bool)
    for length in range(1, max_size - 1):  # path j -> k of `length` bonds closes a ring of length + 2
        deg = degree[atom]
        e = np.repeat(start[atom], deg) + (np.arange(deg.sum()) - np.repeat(np.cumsum(deg) - deg, deg))
        angle, paths = np.repeat(angle, deg), np.repeat(paths, deg)
        atom, cur_shift = dst[e], np.repeat(cur_shift, deg, axis=0) + shift[e]
        keys = key(angle, atom, cur_shift)
        fresh = ~np.isin(keys, visited, assume_unique=False)
        angle, atom, cur_shift, paths, keys = angle[fresh], atom[fresh], cur_shift[fresh], paths[fresh], keys[fresh]
        unique, index, inverse = np.unique(keys, return_index=True, return_inverse=True)
        paths = np.bincount(inverse, weights=paths)
        angle, atom, cur_shift = angle[index], atom[index], cur_shift[index]
        hit = (atom == goal_atom[angle]) & (cur_shift == goal_shift[angle]).all(1)
        if hit.any():
            found = np.bincount(angle[hit], weights=paths[hit], minlength=n_angles)
            counts[length + 2] += found.sum()
            open_angle &= found == 0
        keep = open_angle[angle] & ~hit
        angle, atom, cur_shift, paths = angle[keep], atom[keep], cur_shift[keep], paths[keep]
        visited = np.union1d(visited, unique)
        if len(angle) == 0:
            break
    return counts


def ring_statistics(structures: Sequence[ase.Atoms], cutoffs: Cutoffs, max_size: int = 10) -> dict:
    """Shortest-path rings of the ensemble.

    Returns ``{"per_atom": {"6": x, ...}, "fraction": {"6": f, ...}, "max_size": max_size}``: rings of each size
    per atom, and each size's share of all rings found (sizes 3 … ``max_size``).
    """
    if max_size < 3:
        raise ValueError(f"max_size must be >= 3, got {max_size}")
    total = np.zeros(max_size + 1)
    n_atoms = 0
    for atoms in structures:
        total += _ring_counts_one(atoms, cutoffs, max_size)
        n_atoms += len(atoms)
    sizes = np.arange(max_size + 1)
    rings = np.divide(total, sizes, out=np.zeros_like(total), where=sizes > 0)
    per_atom = {str(s): float(rings[s] / n_atoms) for s in range(3, max_size + 1) if rings[s] > 0}
    all_rings = rings.sum()
    fraction = {s: float(v * n_atoms / all_rings) if all_rings else 0.0 for s, v in per_atom.items()}
    return {"per_atom": per_atom, "fraction": fraction, "max_size": max_size}
