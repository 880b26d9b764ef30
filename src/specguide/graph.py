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

import math
import os
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple, Protocol

import ase
import numpy as np
import torch
from vesin_torch import NeighborList

from specguide.io import InputError

PAIR_CHUNK = 2**16  # pairs processed at once by pairwise_sum: their temporaries stay in cache and in malloc's heap
# bytes per listed pair while a list is built and used, per byte of the float type (vesin's indices and shifts,
# the stored indices, shifts and offsets): above the peak RSS of g(r) forward + backward at 64,000 atoms less
# torch's own (~90 B per pair in float32, ~115 B in float64; docs/benchmarks.md)
PAIR_BYTES_PER_FLOAT_BYTE = 24


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


def available_memory() -> int:
    """Bytes this process may still allocate: MemAvailable of /proc/meminfo (Linux), else the physical memory."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


def expected_pairs(cells: torch.Tensor, batch: torch.Tensor, cutoff: float, full_list: bool = True) -> float:
    """Pairs a neighbour list within ``cutoff`` (Å) holds for uniformly spread atoms: ``Σ_s N_s ρ_s 4π c³/3``
    (halved for ``full_list=False``), periodic images included."""
    if cells.dim() == 2:
        cells = cells.unsqueeze(0)
    counts = atoms_per_structure(batch, cells.shape[0]).to(torch.float64)
    volumes = cell_volumes(cells.detach().to(torch.float64)).clamp_min(1e-30)
    pairs = float((counts * counts / volumes).sum()) * 4.0 / 3.0 * math.pi * float(cutoff) ** 3
    return pairs if full_list else pairs / 2.0


def check_pair_memory(
    cells: torch.Tensor, batch: torch.Tensor, cutoff: float, dtype: torch.dtype, *, full_list: bool, what: str
) -> None:
    """Refuse (``InputError`` with the estimate and the fix) a neighbour list that would not fit into the memory
    this machine has available. ``what`` names the caller in the message (e.g. ``"g(r) up to r_max = 8 Å"``)."""
    pairs = expected_pairs(cells, batch, cutoff, full_list)
    itemsize = torch.finfo(dtype).bits // 8 if dtype.is_floating_point else 8
    needed = pairs * PAIR_BYTES_PER_FLOAT_BYTE * itemsize
    on_gpu = cells.device.type == "cuda"
    free = int(torch.cuda.mem_get_info(cells.device)[0]) if on_gpu else available_memory()
    if needed > 0.8 * free:
        n_atoms = int(batch.numel())
        fits = int(n_atoms * 0.8 * free / needed)  # at a fixed density the pairs grow as the atoms
        where = f" on {cells.device}" if on_gpu else ""
        raise InputError(
            f"{what}: {n_atoms:,} atoms with pairs up to {cutoff:.3g} Å make about {pairs:,.0f} pairs, which need "
            f"about {needed / 2**30:.1f} GiB; {free / 2**30:.1f} GiB are available{where}: use at most about "
            f"{fits:,} atoms at this density, a smaller r_max" + (", or float32" if itemsize > 4 else "")
        )


class PairList(NamedTuple):
    """Listed pairs ``i -> j`` without their vectors, which :meth:`vectors` makes for a range of them at a time.

    ``vectors = r_j - r_i + offset`` with ``offsets`` the Cartesian image offsets (Å) of a fixed cell, or, where
    ``offsets`` is None, ``shifts @ cells[edge_batch]`` (differentiable in the cells).
    """

    edge_index: torch.Tensor  # [2, E]
    shifts: torch.Tensor  # [E, 3] integer cell shifts (as float)
    offsets: torch.Tensor | None  # [E, 3] Å, or None: built from the cells
    edge_batch: torch.Tensor  # [E]
    order: torch.Tensor | None = None  # [N]: edge_index counts atoms in this order of the caller's (None: as given)

    @property
    def n_pairs(self) -> int:
        return self.edge_index.shape[1]

    def per_atom(self, values: torch.Tensor) -> torch.Tensor:
        """Per-atom ``values [N, ...]`` in the caller's atom order, put into the order ``edge_index`` counts in."""
        return values if self.order is None else values.index_select(0, self.order)

    def vectors(self, positions: torch.Tensor, cells: torch.Tensor, start: int = 0, stop: int | None = None):
        """``(vectors [E', 3], lengths [E'])`` (Å) of pairs ``start:stop``, differentiable in positions and cells."""
        i, j = self.edge_index[0, start:stop], self.edge_index[1, start:stop]
        vectors = positions.index_select(0, j) - positions.index_select(0, i)
        if self.offsets is not None:
            vectors = vectors + self.offsets[start:stop]
        else:
            images = cells.index_select(0, self.edge_batch[start:stop])
            vectors = vectors + torch.einsum("ek,ekl->el", self.shifts[start:stop], images)
        return vectors, torch.linalg.vector_norm(vectors, dim=-1)


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
    pairs = list_pairs(positions.detach(), cells, batch, cutoff, periodic=periodic, full_list=full_list)
    vectors, distances = pairs.vectors(positions, cells)
    return NeighborGraph(pairs.edge_index, pairs.shifts, vectors, distances, pairs.edge_batch)


MORTON_BITS = 10  # bits per fractional coordinate of spatial_order's key: 1024 slabs along each cell vector
# atoms in a structure from which g(r) and S(Q) list its atoms in spatial_order: smaller cells gained nothing, and
# keeping their order keeps their float sums, hence their guided trajectories, bit for bit (docs/benchmarks.md)
SPATIAL_ORDER_ATOMS = 20_000


def spatial_order(positions: torch.Tensor, cells: torch.Tensor, batch: torch.Tensor) -> torch.Tensor:
    """A permutation ``[N]`` of the atoms that keeps each structure's atoms together (``batch`` sorted) and puts
    them, within a structure, along a Morton (Z-order) curve through their fractional coordinates: atoms close in
    space come close in memory, so the gathers of a pair list's two ends hit the CPU caches. Positions in Å."""
    if cells.dim() == 2:
        cells = cells.unsqueeze(0)
    detached = positions.detach()
    inverse, info = torch.linalg.inv_ex(cells.detach())
    if bool(info.any()):  # a singular cell has no fractional coordinates: keep the caller's order
        return torch.arange(len(detached), device=positions.device)
    fractional = torch.einsum("nk,nkl->nl", detached, inverse[batch])
    side = 1 << MORTON_BITS
    grid = (torch.remainder(fractional, 1.0) * side).long().clamp_(0, side - 1)
    key = torch.zeros(len(grid), dtype=torch.long, device=positions.device)
    for bit in range(MORTON_BITS):  # interleave the bits of the three grid coordinates
        for axis in range(3):
            key |= ((grid[:, axis] >> bit) & 1) << (3 * bit + axis)
    return torch.argsort(batch * (1 << 3 * MORTON_BITS) + key, stable=True)


def _cat(parts: list[torch.Tensor], dim: int = 0) -> torch.Tensor:
    return parts[0] if len(parts) == 1 else torch.cat(parts, dim)


def list_pairs(
    positions: torch.Tensor,
    cells: torch.Tensor,
    batch: torch.Tensor | None,
    cutoff: float,
    *,
    periodic: bool = True,
    full_list: bool = True,
) -> PairList:
    """The pairs of :func:`neighbor_graph` without their vectors: indices, shifts, and the Cartesian image
    offsets ``shift @ cell`` (Å; differentiable in ``cells``; None for ``periodic=False``)."""
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
        i, j = i.to(torch.long), j.to(torch.long)
        edges_i.append(i + start if start else i)
        edges_j.append(j + start if start else j)
        edge_shifts.append(shift)
        if periodic:  # Cartesian image offsets, differentiable in the cell
            edge_offsets.append(shift @ cells[s])
        edge_batch.append(torch.full_like(i, s, dtype=torch.long))

    if not edges_i:
        empty = torch.zeros(0, dtype=torch.long, device=positions.device)
        return PairList(torch.stack([empty, empty]), positions.new_zeros((0, 3)), None, empty)
    return PairList(
        torch.stack([_cat(edges_i), _cat(edges_j)]),
        _cat(edge_shifts),
        _cat(edge_offsets) if periodic else None,
        _cat(edge_batch),
    )


class PairReduction(Protocol):
    """A sum over pairs that :func:`pairwise_sum` evaluates range by range: ``accumulate`` adds the pairs
    ``start:stop`` (their lengths, Å) into ``buffer``; ``finish`` turns the buffer into the output; in the backward
    pass ``gradient_table`` prepares what ``distance_gradient`` needs to give ``∂(grad · output)/∂length`` of
    pairs ``start:stop``."""

    def new_buffer(self, dtype: torch.dtype, device: torch.device) -> torch.Tensor: ...
    def accumulate(self, buffer: torch.Tensor, lengths: torch.Tensor, start: int, stop: int) -> None: ...
    def finish(self, buffer: torch.Tensor) -> torch.Tensor: ...
    def gradient_table(self, grad: torch.Tensor) -> torch.Tensor: ...
    def distance_gradient(self, table: torch.Tensor, lengths: torch.Tensor, start: int, stop: int) -> torch.Tensor: ...


class _PairwiseSum(torch.autograd.Function):
    """A :class:`PairReduction` over a :class:`PairList`, ``chunk`` pairs at a time in both passes: nothing per
    pair is kept for the backward pass but the list itself (the backward recomputes each range's vectors)."""

    @staticmethod
    def forward(ctx, positions, cells, pairs: PairList, reduction: PairReduction, chunk: int):
        buffer = reduction.new_buffer(positions.dtype, positions.device)
        for start in range(0, pairs.n_pairs, chunk):
            stop = min(pairs.n_pairs, start + chunk)
            reduction.accumulate(buffer, pairs.vectors(positions, cells, start, stop)[1], start, stop)
        ctx.save_for_backward(positions, cells)
        ctx.pairs, ctx.reduction, ctx.chunk = pairs, reduction, chunk
        return reduction.finish(buffer)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        positions, cells = ctx.saved_tensors
        pairs, reduction, chunk = ctx.pairs, ctx.reduction, ctx.chunk
        table = reduction.gradient_table(grad)
        grad_positions = torch.zeros_like(positions) if ctx.needs_input_grad[0] else None
        grad_cells = torch.zeros_like(cells) if ctx.needs_input_grad[1] else None
        for start in range(0, pairs.n_pairs, chunk):
            stop = min(pairs.n_pairs, start + chunk)
            vectors, lengths = pairs.vectors(positions, cells, start, stop)
            per_length = reduction.distance_gradient(table, lengths, start, stop)
            grad_vectors = vectors * (per_length / lengths.clamp_min(torch.finfo(lengths.dtype).tiny))[:, None]
            if grad_positions is not None:
                grad_positions.index_add_(0, pairs.edge_index[1, start:stop], grad_vectors)
                grad_positions.index_add_(0, pairs.edge_index[0, start:stop], -grad_vectors)
            if grad_cells is not None and pairs.offsets is None:
                outer = pairs.shifts[start:stop, :, None] * grad_vectors[:, None, :]
                grad_cells.index_add_(0, pairs.edge_batch[start:stop], outer)
        return grad_positions, grad_cells, None, None, None


def pairwise_sum(
    positions: torch.Tensor,
    cells: torch.Tensor,
    pairs: PairList,
    reduction: PairReduction,
    chunk: int = PAIR_CHUNK,
) -> torch.Tensor:
    """``reduction`` summed over the pairs of ``pairs``, ``chunk`` pairs at a time: memory beyond the list is
    bounded by the chunk, and the temporaries of a chunk are reused from cache. Differentiable (once) in
    ``positions`` and, where the list builds its offsets from them, in ``cells``."""
    if cells.dim() == 2:
        cells = cells.unsqueeze(0)
    return _PairwiseSum.apply(positions, cells, pairs, reduction, max(1, int(chunk)))


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

    ``lazy=True`` lists the first call's pairs (and the first after :meth:`reset`) without a skin, and only
    rebuilds with the skin when a later call comes with moved atoms: a one-shot evaluation then carries no
    candidates beyond the cut-off. Before each build the list's memory is estimated
    (:func:`check_pair_memory`): one that would not fit is refused with the figure.

    ``spatial_order_atoms=n`` lists the atoms, at each build where a structure has ``n`` atoms or more, in
    :func:`spatial_order` (a Morton curve per structure): :meth:`pairs` then returns the positions in that order and
    a list counting atoms in it (``PairList.order``; per-atom values go through ``PairList.per_atom``), and
    ``__call__`` maps its edges back to the caller's atoms. Same pairs and sums up to the order of float additions;
    gradients reach the caller's positions through the permutation.
    """

    def __init__(self, skin: float = 1.0, lazy: bool = False, spatial_order_atoms: int | None = None):
        if skin < 0:
            raise ValueError(f"skin must be >= 0 Å, got {skin}")
        self.skin = float(skin)
        self.lazy = bool(lazy)
        self.spatial_order_atoms = spatial_order_atoms  # None: the caller's order always
        self.builds = 0  # how many times the candidate list was made (for tests and benchmarks)
        self.reset()
        _LISTS.add(self)

    def reset(self) -> None:
        """Forget the candidate list: the next call builds a fresh one."""
        self._key = None
        self._candidates: PairList | None = None
        self._order: torch.Tensor | None = None  # the atoms' spatial order at the build (spatial_order=True)
        self._reference: torch.Tensor | None = None
        self._built_skin = 0.0
        self._fresh = True  # a lazy list lists the next build without a skin

    def _reusable(self, positions, cells, batch, key) -> torch.Tensor | None:
        """The integer lattice jump ``[N, 3]`` of every atom since the last build, or None to rebuild."""
        if self._key != key or self._reference is None or self._reference.shape != positions.shape:
            return None
        cached_cells, cached_batch, inverse_cells = self._cell_batch
        if inverse_cells is None or not (torch.equal(cached_cells, cells) and torch.equal(cached_batch, batch)):
            return None
        moved = positions - self._reference
        if self._built_skin == 0.0:  # listed without a skin: reusable only for the very same positions
            return torch.zeros_like(positions) if not bool(moved.any()) else None
        jumps = torch.round(torch.einsum("nk,nkl->nl", moved, inverse_cells[batch]))  # fractional coordinates
        true_move = moved - torch.einsum("nk,nkl->nl", jumps, cells[batch])
        largest = true_move.norm(dim=-1).topk(min(2, len(true_move))).values
        if float(largest.sum()) >= self._built_skin:  # one atom alone: a pair with its own image never changes length
            return None
        return jumps

    def _prepare(self, positions, cells, batch, cutoff, full_list) -> torch.Tensor:
        """Build the candidates if needed; the lattice jumps ``[N, 3]`` since the build."""
        detached, fixed_cells = positions.detach(), cells.detach()
        key = (float(cutoff), bool(full_list), positions.dtype)
        jumps = self._reusable(detached, fixed_cells, batch, key)
        if jumps is not None:
            return jumps
        skin = 0.0 if (self.lazy and self._fresh) else self.skin
        check_pair_memory(fixed_cells, batch, cutoff + skin, positions.dtype, full_list=full_list,
                          what="neighbour list")  # fmt: skip
        # with the Cartesian image offsets of the candidates (Å), for calls with a fixed cell
        self._order = None
        if self.spatial_order_atoms is not None and len(batch):
            largest = int(atoms_per_structure(batch, fixed_cells.shape[0]).max())
            if largest >= self.spatial_order_atoms:
                self._order = spatial_order(detached, fixed_cells, batch)
        listed, listed_batch = detached, batch
        if self._order is not None:
            listed, listed_batch = detached.index_select(0, self._order), batch.index_select(0, self._order)
        self._candidates = list_pairs(listed, fixed_cells, listed_batch, cutoff + skin, full_list=full_list)
        self._candidates = self._candidates._replace(order=self._order)
        self._reference = detached.clone()
        # a lattice jump is told from a move (< skin while the list is reused) only in cells wider than 2 skins
        narrow = bool((perpendicular_widths(fixed_cells).min(dim=-1).values <= 2 * skin).any())
        inverse = None if narrow else torch.linalg.inv(fixed_cells)
        self._cell_batch = (fixed_cells.clone(), batch.clone(), inverse)
        self._key, self._built_skin, self._fresh = key, skin, False
        self.builds += 1
        return torch.zeros_like(detached)

    def _prepare_ordered(self, positions, cells, batch, cutoff, full_list):
        """:meth:`_prepare`, then ``(positions, batch, jumps)`` in the list's atom order."""
        jumps = self._prepare(positions, cells, batch, cutoff, full_list)
        if self._order is None:
            return positions, batch, jumps
        order = self._order
        return positions.index_select(0, order), batch.index_select(0, order), jumps.index_select(0, order)

    def _caller_atoms(self, edge_index: torch.Tensor) -> torch.Tensor:
        """Edges counted in the list's atom order, counted in the caller's."""
        return edge_index if self._order is None else self._order[edge_index]

    def pairs(
        self,
        positions: torch.Tensor,
        cells: torch.Tensor,
        batch: torch.Tensor | None,
        cutoff: float,
        *,
        full_list: bool = True,
    ) -> tuple[torch.Tensor, PairList]:
        """``(positions', candidates)``: the listed pairs, a superset of those within ``cutoff`` (up to
        ``cutoff + skin``), and the positions their vectors are to be made from (``PairList.vectors``): the atoms
        moved back through their lattice jumps since the build, differentiable in ``positions``, in the list's atom
        order (``candidates.order``; per-atom values: ``candidates.per_atom``). For
        :func:`pairwise_sum`, which never holds all the pairs' vectors at once."""
        if batch is None:
            batch = torch.zeros(positions.shape[0], dtype=torch.long, device=positions.device)
        if cells.dim() == 2:
            cells = cells.unsqueeze(0)
        positions, batch, jumps = self._prepare_ordered(positions, cells, batch, cutoff, full_list)
        candidates = self._candidates
        if not bool(jumps.any()):
            if cells.requires_grad:
                return positions, candidates._replace(offsets=None)
            return positions, candidates
        i, j = candidates.edge_index
        if cells.requires_grad:  # offsets must carry the cell's gradient: build them from the cell
            shifts = candidates.shifts + jumps.index_select(0, i) - jumps.index_select(0, j)
            return positions, candidates._replace(shifts=shifts, offsets=None)
        return positions - torch.einsum("nk,nkl->nl", jumps, cells.detach()[batch]), candidates

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
        positions, batch, jumps = self._prepare_ordered(positions, cells, batch, cutoff, full_list)
        candidates = self._candidates
        i, j = candidates.edge_index
        jumped = bool(jumps.any())
        if cells.requires_grad:  # offsets must carry the cell's gradient: build them from the cell
            shifts = candidates.shifts + jumps.index_select(0, i) - jumps.index_select(0, j)
            offsets = torch.einsum("ek,ekl->el", shifts, cells.index_select(0, candidates.edge_batch))
            vectors = positions.index_select(0, j) - positions.index_select(0, i) + offsets
        else:  # undo each atom's lattice jumps once, per atom, instead of a cell product per pair
            unwrapped = positions - torch.einsum("nk,nkl->nl", jumps, cells.detach()[batch]) if jumped else positions
            vectors = unwrapped.index_select(0, j) - unwrapped.index_select(0, i) + candidates.offsets
        distances = _Lengths.apply(vectors)
        if not exact:
            shifts = candidates.shifts
            if jumped:
                shifts = shifts + jumps.index_select(0, i) - jumps.index_select(0, j)
            return NeighborGraph(self._caller_atoms(candidates.edge_index), shifts, vectors, distances,
                                 candidates.edge_batch)  # fmt: skip
        keep = torch.nonzero(distances.detach() < cutoff).squeeze(1)
        edge_index = candidates.edge_index.index_select(1, keep)
        shifts = candidates.shifts.index_select(0, keep)
        if jumped:
            shifts = shifts + jumps.index_select(0, edge_index[0]) - jumps.index_select(0, edge_index[1])
        return NeighborGraph(
            self._caller_atoms(edge_index),
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
