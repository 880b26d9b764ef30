"""The periodic neighbour graph against ASE's own neighbour list (an independent implementation)."""

import ase
import ase.build
import numpy as np
import pytest
import torch
from ase.neighborlist import neighbor_list

from specguide.graph import (
    VerletNeighborList,
    _Lengths,
    atoms_from_batch,
    batch_from_atoms,
    neighbor_graph,
    perpendicular_widths,
)


def triclinic_structure(n_atoms: int, seed: int) -> ase.Atoms:
    rng = np.random.default_rng(seed)
    cell = np.array([[6.0, 0.0, 0.0], [1.7, 5.5, 0.0], [-1.1, 0.8, 6.3]])
    return ase.Atoms("Si" * n_atoms, scaled_positions=rng.random((n_atoms, 3)), cell=cell, pbc=True)


def sorted_pairs(i, j, d):
    order = np.lexsort((np.round(d, 8), j, i))
    return np.stack([i[order], j[order]]), np.round(d[order], 8)


@pytest.mark.parametrize("cutoff", [3.0, 7.5])  # 7.5 Å exceeds the cell widths: images of self count
def test_matches_ase_neighbour_list_on_triclinic_cells(cutoff):
    structures = [triclinic_structure(20, 0), triclinic_structure(7, 1)]
    positions, cells, numbers, batch = batch_from_atoms(structures)
    graph = neighbor_graph(positions, cells, batch, cutoff)
    offset = 0
    for s, atoms in enumerate(structures):
        i_ref, j_ref, d_ref = neighbor_list("ijd", atoms, cutoff)
        mask = (graph.edge_batch == s).numpy()
        i = graph.edge_index[0].numpy()[mask] - offset
        j = graph.edge_index[1].numpy()[mask] - offset
        d = graph.distances.detach().numpy()[mask]
        ours, ours_d = sorted_pairs(i, j, d)
        ref, ref_d = sorted_pairs(i_ref, j_ref, d_ref)
        np.testing.assert_array_equal(ours, ref)
        np.testing.assert_allclose(ours_d, ref_d, atol=1e-7)
        offset += len(atoms)


def test_half_list_has_each_pair_once():
    atoms = triclinic_structure(15, 3)
    positions, cells, _, batch = batch_from_atoms(atoms)
    full = neighbor_graph(positions, cells, batch, 4.0)
    half = neighbor_graph(positions, cells, batch, 4.0, full_list=False)
    assert 2 * half.distances.numel() == full.distances.numel()
    np.testing.assert_allclose(
        np.sort(np.repeat(half.distances.numpy(), 2)), np.sort(full.distances.numpy()), atol=1e-10
    )


def test_edge_vectors_are_differentiable_in_positions_and_cell():
    atoms = triclinic_structure(10, 4)
    positions, cells, _, batch = batch_from_atoms(atoms)
    positions.requires_grad_(True)
    cells.requires_grad_(True)
    graph = neighbor_graph(positions, cells, batch, 3.5)
    (graph.distances**2).sum().backward()
    # sum over edges of d² → gradient w.r.t. r_i is Σ 2 (r_i − r_j − image) over both directions
    i, j = graph.edge_index
    expected = torch.zeros_like(positions)
    expected.index_add_(0, i, -4 * graph.vectors.detach())
    torch.testing.assert_close(positions.grad, expected)
    assert cells.grad is not None and torch.isfinite(cells.grad).all()


def test_perpendicular_widths_of_a_cubic_and_a_sheared_cell():
    cells = torch.tensor([[[4.0, 0, 0], [0, 5.0, 0], [0, 0, 6.0]], [[4.0, 0, 0], [2.0, 5.0, 0], [0, 0, 6.0]]])
    widths = perpendicular_widths(cells)
    torch.testing.assert_close(widths[0], torch.tensor([4.0, 5.0, 6.0]))
    # shearing b along a leaves the volume and the a-c face unchanged (width along b stays 5 Å) but
    # tilts the b-c face, so the width across it is V / |b×c| = 120 / 32.3 < 4 Å
    assert torch.isclose(widths[1, 1], torch.tensor(5.0)) and widths[1, 0] < 4.0


def test_round_trip_through_ase():
    structures = [triclinic_structure(5, 5), ase.build.bulk("Cu", "fcc", 3.6, cubic=True)]
    back = atoms_from_batch(*batch_from_atoms(structures))
    for a, b in zip(structures, back):
        np.testing.assert_allclose(a.positions, b.positions)
        np.testing.assert_allclose(a.cell[:], b.cell[:])
        np.testing.assert_array_equal(a.numbers, b.numbers)


def _pair_set(graph) -> dict:
    """{(i, j, shift): distance}; a half list's pair is stored with i < j (or i == j and a positive shift)."""
    out = {}
    for (i, j), shift, d in zip(graph.edge_index.T.tolist(), graph.shifts.tolist(), graph.distances.tolist()):
        shift = tuple(round(x) for x in shift)
        if (j, i) < (i, j) or (i == j and shift < (0, 0, 0)):
            i, j, shift = j, i, tuple(-x for x in shift)
        out[(i, j, shift)] = d
    return out


@pytest.mark.parametrize("full_list", [True, False])
def test_verlet_list_matches_a_fresh_list_along_a_trajectory_that_wraps(full_list):
    """Small random moves, with atoms wrapped back into the cell, in two structures at once: every call gives
    exactly the pairs (and distances) of a freshly built list, while the candidates are rebuilt only rarely."""
    structures = [triclinic_structure(40, 3), triclinic_structure(30, 4)]
    positions, cells, _, batch = batch_from_atoms(structures)
    generator = torch.Generator().manual_seed(0)
    verlet = VerletNeighborList(skin=1.0)
    for _ in range(30):
        positions = positions + 0.04 * torch.randn(positions.shape, generator=generator, dtype=positions.dtype)
        fractional = torch.linalg.solve(cells.transpose(-1, -2)[batch], positions.unsqueeze(-1)).squeeze(-1)
        positions = torch.einsum("nk,nkl->nl", fractional - torch.floor(fractional), cells[batch])  # wrap
        reused = _pair_set(verlet(positions, cells, batch, 3.2, full_list=full_list))
        fresh = _pair_set(neighbor_graph(positions, cells, batch, 3.2, full_list=full_list))
        assert reused.keys() == fresh.keys()
        assert np.allclose([reused[k] for k in fresh], list(fresh.values()), atol=1e-10)
        # exact=False: the candidates (listed within cutoff + skin, since moved by less than a skin in all), a
        # superset whose pairs within the cut-off are the same
        candidates = _pair_set(verlet(positions, cells, batch, 3.2, full_list=full_list, exact=False))
        assert max(candidates.values()) < 3.2 + 2 * 1.0 and len(candidates) > len(fresh)
        assert {k: d for k, d in candidates.items() if d < 3.2}.keys() == fresh.keys()
    assert 1 <= verlet.builds <= 10  # moves of ~0.07 Å per step: a rebuild every few steps at most


def test_verlet_list_rebuilds_when_two_atoms_together_moved_a_skin():
    """A pair can close by the sum of its atoms' displacements: one atom moving 0.9 skin keeps the list (no pair
    can have crossed in), two atoms moving towards each other by 1.1 skin in all must rebuild it."""
    skin, cutoff = 1.0, 3.0
    cell = torch.eye(3, dtype=torch.float64) * 12.0
    positions = torch.tensor([[2.0, 6.0, 6.0], [2.0 + cutoff + skin + 0.05, 6.0, 6.0], [9.0, 2.0, 2.0]],
                             dtype=torch.float64)  # fmt: skip
    verlet = VerletNeighborList(skin=skin)
    assert verlet(positions, cell, None, cutoff, full_list=False).distances.numel() == 0  # 0-1: not a candidate

    one_moved = positions.clone()
    one_moved[2, 0] += 0.9 * skin
    assert verlet(one_moved, cell, None, cutoff, full_list=False).distances.numel() == 0
    assert verlet.builds == 1

    closer = positions.clone()
    closer[0, 0] += 0.6 * skin
    closer[1, 0] -= 0.5 * skin  # now 0.05 Å inside the cut-off
    reused = verlet(closer, cell, None, cutoff, full_list=False)
    assert verlet.builds == 2
    assert torch.allclose(reused.distances, torch.tensor([cutoff - 0.05], dtype=torch.float64))


@pytest.mark.parametrize("cell_gradient", [False, True])
def test_verlet_list_rebuilds_for_a_new_structure_and_gives_the_same_gradient(cell_gradient):
    a, b = triclinic_structure(40, 5), triclinic_structure(40, 6)
    verlet = VerletNeighborList(skin=0.5)
    for call, atoms in enumerate((a, b, a, a)):  # same cell and size: must not reuse a's list for b
        positions, cells, _, batch = batch_from_atoms([atoms])
        positions = positions + 0.01 * call  # the last call reuses the third's list, every atom moved 0.017 Å
        positions.requires_grad_(True)
        cells.requires_grad_(cell_gradient)
        inputs = (positions, cells) if cell_gradient else (positions,)
        reused = verlet(positions, cells, batch, 3.0)
        grad_reused = torch.autograd.grad((reused.distances**2).sum(), inputs)
        fresh = neighbor_graph(positions, cells, batch, 3.0)
        grad_fresh = torch.autograd.grad((fresh.distances**2).sum(), inputs)
        assert _pair_set(reused).keys() == _pair_set(fresh).keys()
        for ours, theirs in zip(grad_reused, grad_fresh):
            assert torch.allclose(ours, theirs, atol=1e-10)
    assert verlet.builds == 3


def test_lean_pair_lengths_match_torch_norm_and_its_gradient_also_for_a_zero_vector():
    vectors = torch.randn(50, 3, dtype=torch.float64)
    vectors[7] = 0.0
    weights = torch.randn(50, dtype=torch.float64)
    ours = vectors.clone().requires_grad_(True)
    theirs = vectors.clone().requires_grad_(True)
    lengths = _Lengths.apply(ours)
    assert torch.equal(lengths, theirs.norm(dim=-1))
    (grad_ours,) = torch.autograd.grad((weights * lengths.sin()).sum(), ours)
    (grad_theirs,) = torch.autograd.grad((weights * theirs.norm(dim=-1).sin()).sum(), theirs)
    assert torch.allclose(grad_ours, grad_theirs, rtol=1e-14, atol=0) and torch.equal(grad_ours[7], torch.zeros(3))
    assert torch.autograd.gradcheck(_Lengths.apply, (vectors[vectors.norm(dim=-1) > 0].clone().requires_grad_(True),))
