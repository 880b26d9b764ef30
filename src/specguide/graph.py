"""Periodic neighbour graphs for batches of structures.

A *batch* is the PyTorch Geometric convention: the atoms of several structures are concatenated,

- ``positions``: ``[N, 3]`` Cartesian coordinates in Å (all structures, concatenated),
- ``cells``: ``[S, 3, 3]`` cell vectors as rows, in Å (one per structure),
- ``numbers``: ``[N]`` atomic numbers,
- ``batch``: ``[N]`` index of the structure each atom belongs to (sorted, 0..S-1).

Neighbour *indices* and integer cell *shifts* come from vesin-torch (linear scaling cell lists); the
edge vectors are then recomputed from ``positions`` and ``cells`` in plain torch, so they are
differentiable with respect to both.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from typing import NamedTuple

import ase
import numpy as np
import torch
from vesin_torch import NeighborList


class _Lengths(torch.autograd.Function):
    """Row norms ``|v|`` of ``[E, 3]`` vectors with a lean backward ``v · grad / |v|`` (0 for a zero vector).

    ``Tensor.norm``'s backward also masks zero norms (an equality test and a masked fill over all rows); this
    backward skips that pass over all rows. Differentiable once.
    """

    @staticmethod
    def forward(ctx, vectors):
        lengths = torch.linalg.vector_norm(vectors, dim=-1)
        ctx.save_for_backward(vectors, lengths)
        return lengths

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        vectors, lengths = ctx.saved_tensors
        return vectors * (grad / lengths.clamp_min(torch.finfo(lengths.dtype).tiny))[:, None]


class NeighborGraph(NamedTuple):
    """Directed edges ``i -> j`` with ``vectors = r_j - r_i + shift @ cell`` (Å)."""

    edge_index: torch.Tensor  # [2, E] global atom indices (i, j)
    shifts: torch.Tensor  # [E, 3] integer cell shifts (as float, same dtype as positions)
    vectors: torch.Tensor  # [E, 3] Å
    distances: torch.Tensor  # [E] Å
    edge_batch: torch.Tensor  # [E] structure index of each edge


def structure_slices(batch: torch.Tensor, n_structures: int | None = None) -> torch.Tensor:
    """Start offsets ``[S+1]`` of each structure in a sorted ``batch`` vector."""
    if n_structures is None:
        n_structures = int(batch.max().item()) + 1 if batch.numel() else 0
    counts = torch.bincount(batch, minlength=n_structures)
    return torch.cat([counts.new_zeros(1), torch.cumsum(counts, 0)])


def atoms_per_structure(batch: torch.Tensor, n_structures: int) -> torch.Tensor:
    """Number of atoms ``[S]`` in each structure."""
    return torch.bincount(batch, minlength=n_structures)


def cell_volumes(cells: torch.Tensor) -> torch.Tensor:
    """Cell volumes ``[S]`` in Å³ (absolute value of the determinant)."""
    return torch.linalg.det(cells).abs()


def perpendicular_widths(cells: torch.Tensor) -> torch.Tensor:
    """Distances between opposite cell faces ``[S, 3]`` in Å.

    The largest sphere that fits in a periodic cell has radius ``min(widths) / 2``: a pair-distance
    grid beyond it counts a periodic image of the same pair more than once.
    """
    volumes = cell_volumes(cells)
    a, b, c = cells[:, 0], cells[:, 1], cells[:, 2]
    areas = torch.stack(
        [
            torch.linalg.cross(b, c).norm(dim=-1),
            torch.linalg.cross(c, a).norm(dim=-1),
            torch.linalg.cross(a, b).norm(dim=-1),
        ],
        dim=-1,
    )
    return volumes[:, None] / areas


def neighbor_graph(
    positions: torch.Tensor,
    cells: torch.Tensor,
    batch: torch.Tensor | None,
    cutoff: float,
    *,
    periodic: bool = True,
    full_list: bool = True,
) -> NeighborGraph:
    """All pairs closer than ``cutoff`` (Å) in every structure of a batch.

    ``full_list=True`` returns both ``i -> j`` and ``j -> i`` (message passing); ``False`` returns each
    unordered pair once (pair histograms). Periodic images of an atom itself are included when the
    cutoff exceeds a cell width, so any cutoff is valid for any cell.
    """
    if batch is None:
        batch = torch.zeros(positions.shape[0], dtype=torch.long, device=positions.device)
    if cells.dim() == 2:
        cells = cells.unsqueeze(0)
    n_structures = cells.shape[0]
    offsets = structure_slices(batch, n_structures)
    calculator = NeighborList(cutoff=float(cutoff), full_list=full_list)

    edges_i, edges_j, edge_shifts, edge_offsets, edge_batch = [], [], [], [], []
    detached = positions.detach()
    for s in range(n_structures):
        start, stop = int(offsets[s]), int(offsets[s + 1])
        if stop - start == 0:
            continue
        box = cells[s].detach() if periodic else torch.zeros_like(cells[s]).detach()
        i, j, shift = calculator.compute(points=detached[start:stop], box=box, periodic=periodic, quantities="ijS")
        shift = shift.to(positions.dtype)
        edges_i.append(i.to(torch.long) + start)
        edges_j.append(j.to(torch.long) + start)
        edge_shifts.append(shift)
        if periodic:  # Cartesian image offsets, differentiable in the cell
            edge_offsets.append(shift @ cells[s])
        edge_batch.append(torch.full_like(i, s, dtype=torch.long))

    if edges_i:
        i = torch.cat(edges_i)
        j = torch.cat(edges_j)
        shifts = torch.cat(edge_shifts)
        e_batch = torch.cat(edge_batch)
    else:
        i = j = e_batch = torch.zeros(0, dtype=torch.long, device=positions.device)
        shifts = positions.new_zeros((0, 3))

    # index_select, not positions[j]: its backward is a scatter-add instead of a sorting index_put (~2x faster)
    vectors = positions.index_select(0, j) - positions.index_select(0, i)
    if periodic and edge_offsets:
        vectors = vectors + torch.cat(edge_offsets)
    distances = vectors.norm(dim=-1)
    return NeighborGraph(torch.stack([i, j]), shifts, vectors, distances, e_batch)


_LISTS: weakref.WeakSet = weakref.WeakSet()  # every live VerletNeighborList, for reset_verlet_lists()


def reset_verlet_lists() -> None:
    """Make every Verlet list rebuild on its next call. A list built at another moment holds the same pairs in
    another order, which changes float sums in the last bit; the sampler resets all lists at fixed steps so that a
    run resumed from such a step continues bit for bit as the uninterrupted run did."""
    for neighbor_list in list(_LISTS):
        neighbor_list.reset()


class VerletNeighborList:
    """:func:`neighbor_graph` with a skin (a Verlet list), for observables evaluated again and again on
    slowly moving atoms (guidance along a denoising trajectory).

    The pairs within ``cutoff + skin`` (Å) are listed once; later calls only recompute those pairs' vectors and
    keep the ones within ``cutoff``, until the two largest displacements since the list was made add up to
    ``skin`` (a pair's distance changes by at most the sum of its two atoms' displacements, so before that no
    pair can have entered the cut-off unseen) or the cells, the batch, the cut-off or the list kind changed.
    Atoms wrapped back into the cell in between are followed through their lattice jumps. Returns the same pairs
    as :func:`neighbor_graph` (possibly in another order), differentiable in the same way.
    """

    def __init__(self, skin: float = 1.0):
        if skin < 0:
            raise ValueError(f"skin must be >= 0 Å, got {skin}")
        self.skin = float(skin)
        self.builds = 0  # how many times the candidate list was made (for tests and benchmarks)
        self._key = None
        self._candidates: NeighborGraph | None = None
        self._reference: torch.Tensor | None = None
        _LISTS.add(self)

    def reset(self) -> None:
        """Forget the candidate list: the next call builds a fresh one."""
        self._key = None
        self._candidates = None
        self._reference = None

    def _reusable(self, positions, cells, batch, key) -> torch.Tensor | None:
        """The integer lattice jump ``[N, 3]`` of every atom since the last build, or None to rebuild."""
        if self._key != key or self._reference is None or self._reference.shape != positions.shape:
            return None
        cached_cells, cached_batch, inverse_cells = self._cell_batch
        if inverse_cells is None or not (torch.equal(cached_cells, cells) and torch.equal(cached_batch, batch)):
            return None
        moved = positions - self._reference
        jumps = torch.round(torch.einsum("nk,nkl->nl", moved, inverse_cells[batch]))  # fractional coordinates
        true_move = moved - torch.einsum("nk,nkl->nl", jumps, cells[batch])
        largest = true_move.norm(dim=-1).topk(min(2, len(true_move))).values
        if float(largest.sum()) >= self.skin:  # one atom alone: a pair with its own image never changes length
            return None
        return jumps

    def __call__(
        self,
        positions: torch.Tensor,
        cells: torch.Tensor,
        batch: torch.Tensor | None,
        cutoff: float,
        *,
        full_list: bool = True,
        exact: bool = True,
    ) -> NeighborGraph:
        """The pairs within ``cutoff`` (Å); with ``exact=False`` all listed candidates, a superset up to
        ``cutoff + skin``, for callers that ignore pairs beyond ``cutoff`` themselves (saves a filtering pass)."""
        if batch is None:
            batch = torch.zeros(positions.shape[0], dtype=torch.long, device=positions.device)
        if cells.dim() == 2:
            cells = cells.unsqueeze(0)
        detached, fixed_cells = positions.detach(), cells.detach()
        key = (float(cutoff), bool(full_list), positions.dtype)
        jumps = self._reusable(detached, fixed_cells, batch, key)
        if jumps is None:
            self._candidates = neighbor_graph(detached, fixed_cells, batch, cutoff + self.skin, full_list=full_list)
            self._reference = detached.clone()
            # a lattice jump is told from a move (< skin while the list is reused) only in cells wider than 2 skins
            narrow = bool((perpendicular_widths(fixed_cells).min(dim=-1).values <= 2 * self.skin).any())
            inverse = None if narrow else torch.linalg.inv(fixed_cells)
            self._cell_batch = (fixed_cells.clone(), batch.clone(), inverse)
            # Cartesian image offsets of the candidates (Å), for calls with a fixed cell
            i, j = self._candidates.edge_index
            self._offsets = self._candidates.vectors - (detached.index_select(0, j) - detached.index_select(0, i))
            self._key = key
            self.builds += 1
            jumps = torch.zeros_like(detached)
        candidates = self._candidates
        i, j = candidates.edge_index
        jumped = bool(jumps.any())
        if cells.requires_grad:  # offsets must carry the cell's gradient: build them from the cell
            shifts = candidates.shifts + jumps.index_select(0, i) - jumps.index_select(0, j)
            offsets = torch.einsum("ek,ekl->el", shifts, cells.index_select(0, candidates.edge_batch))
            vectors = positions.index_select(0, j) - positions.index_select(0, i) + offsets
        else:  # undo each atom's lattice jumps once, per atom, instead of a cell product per pair
            unwrapped = positions - torch.einsum("nk,nkl->nl", jumps, fixed_cells[batch]) if jumped else positions
            vectors = unwrapped.index_select(0, j) - unwrapped.index_select(0, i) + self._offsets
        distances = _Lengths.apply(vectors)
        if not exact:
            shifts = candidates.shifts
            if jumped:
                shifts = shifts + jumps.index_select(0, i) - jumps.index_select(0, j)
            return NeighborGraph(candidates.edge_index, shifts, vectors, distances, candidates.edge_batch)
        keep = torch.nonzero(distances.detach() < cutoff).squeeze(1)
        edge_index = candidates.edge_index.index_select(1, keep)
        shifts = candidates.shifts.index_select(0, keep)
        if jumped:
            shifts = shifts + jumps.index_select(0, edge_index[0]) - jumps.index_select(0, edge_index[1])
        return NeighborGraph(
            edge_index,
            shifts,
            vectors.index_select(0, keep),
            distances.index_select(0, keep),
            candidates.edge_batch.index_select(0, keep),
        )


def batch_from_atoms(
    structures: Sequence[ase.Atoms] | ase.Atoms,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str = "cpu",
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Concatenate ``ase.Atoms`` into ``(positions [N,3], cells [S,3,3], numbers [N], batch [N])``."""
    if isinstance(structures, ase.Atoms):
        structures = [structures]
    positions = torch.as_tensor(np.concatenate([a.get_positions() for a in structures]), dtype=dtype, device=device)
    cells = torch.as_tensor(np.stack([np.asarray(a.cell[:]) for a in structures]), dtype=dtype, device=device)
    numbers = torch.as_tensor(np.concatenate([a.numbers for a in structures]), dtype=torch.long, device=device)
    batch = torch.repeat_interleave(
        torch.arange(len(structures), device=device),
        torch.as_tensor([len(a) for a in structures], device=device),
    )
    return positions, cells, numbers, batch


def atoms_from_batch(
    positions: torch.Tensor,
    cells: torch.Tensor,
    numbers: torch.Tensor,
    batch: torch.Tensor,
    pbc: bool = True,
) -> list[ase.Atoms]:
    """Split a batch back into a list of ``ase.Atoms``."""
    offsets = structure_slices(batch, cells.shape[0])
    out = []
    for s in range(cells.shape[0]):
        start, stop = int(offsets[s]), int(offsets[s + 1])
        out.append(
            ase.Atoms(
                numbers=numbers[start:stop].detach().cpu().numpy(),
                positions=positions[start:stop].detach().cpu().numpy(),
                cell=cells[s].detach().cpu().numpy(),
                pbc=pbc,
            )
        )
    return out
