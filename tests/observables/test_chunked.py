"""Pair sums evaluated a chunk of pairs at a time (graph.pairwise_sum): the same values and gradients as with one
chunk, as the plain autograd route through all pair distances at once, and a clear refusal where the pair list
cannot fit into memory."""

import ase
import numpy as np
import pytest
import torch

from specguide.graph import SPATIAL_ORDER_ATOMS, VerletNeighborList, batch_from_atoms, neighbor_graph, spatial_order
from specguide.io import InputError
from specguide.observables import PairDistribution, StructureFactor, XRayDiffraction
from specguide.observables.pdf import gaussian_histogram


def random_sio2(n_si: int, length: float, seed: int) -> ase.Atoms:
    """Si_n O_2n spread uniformly over a sheared cell of edge ~``length`` Å."""
    cell = length * (np.diag([1.0, 0.95, 1.05]) + np.array([[0, 0, 0], [0.25, 0, 0], [-0.15, 0.1, 0]]))
    scaled = np.random.default_rng(seed).random((3 * n_si, 3))
    return ase.Atoms(numbers=[14, 8, 8] * n_si, scaled_positions=scaled, cell=cell, pbc=True)


def two_structures():
    positions, cells, numbers, batch = batch_from_atoms([random_sio2(12, 9.0, 1), random_sio2(10, 8.5, 2)])
    return positions, cells, numbers, batch


def values_and_gradients(observable, positions, cells, numbers, batch, call=None):
    """The observable (or ``call(observable, ...)``) and the gradients of a fixed random projection of it with
    respect to positions and cells."""
    x = positions.clone().requires_grad_(True)
    c = cells.clone().requires_grad_(True)
    out = (call or (lambda o, *a: o(*a)))(observable, x, c, numbers, batch)
    weights = torch.randn(out.shape, generator=torch.Generator().manual_seed(5), dtype=out.dtype)
    grad_x, grad_c = torch.autograd.grad((out * weights).sum(), (x, c))
    return out.detach(), grad_x, grad_c


def agree_along_a_trajectory(ours, reference, positions, cells, numbers, batch, call, wrap_after=None):
    """Values and gradients of two observables agree to 1e-10 at 3 steps of random 0.05 Å moves (the later calls
    reuse a Verlet list); after step ``wrap_after`` every atom is wrapped back into its cell (lattice jumps)."""
    generator = torch.Generator().manual_seed(0)
    for step in range(3):
        got = values_and_gradients(ours, positions, cells, numbers, batch, call)
        expected = values_and_gradients(reference, positions, cells, numbers, batch, call)
        for a, b in zip(got, expected):
            assert torch.allclose(a, b, rtol=0, atol=1e-10)
        assert got[0].abs().max() > 0.1 and got[1].abs().max() > 0  # not vacuous
        positions = positions + 0.05 * torch.randn(positions.shape, generator=generator, dtype=positions.dtype)
        if step == wrap_after:
            fractional = torch.einsum("nk,nkl->nl", positions, torch.linalg.inv(cells)[batch])
            positions = torch.einsum("nk,nkl->nl", torch.remainder(fractional, 1.0), cells[batch])


OBSERVABLES = {
    "g(r)": lambda: PairDistribution(r_max=4.0, dr=0.05),
    "g(r) xray": lambda: PairDistribution(r_max=4.0, dr=0.05, weighting="xray"),
    "partials": lambda: PairDistribution(r_max=4.0, dr=0.05),
    "S(Q)": lambda: StructureFactor(1.0, 12.0, 0.1, r_max=4.0),
    "XRD": lambda: XRayDiffraction(1.0, 12.0, 0.1, r_max=4.0),
}


@pytest.mark.parametrize("name", list(OBSERVABLES))
def test_tiny_chunks_give_the_values_and_gradients_of_one_chunk(name):
    """Chunks of 13 pairs against one chunk holding every pair, in float64, over a trajectory whose later calls
    reuse the Verlet list (built with its skin, so candidates beyond the cut-off are dropped chunk by chunk)."""
    positions, cells, numbers, batch = two_structures()
    call = (lambda o, *a: o.partials(*a).values) if name == "partials" else None
    tiny, whole = OBSERVABLES[name](), OBSERVABLES[name]()
    tiny.pair_chunk, whole.pair_chunk = 13, 10**9
    agree_along_a_trajectory(tiny, whole, positions, cells, numbers, batch, call)
    assert tiny.neighbors.builds == 2  # lazy: the first call without a skin, then one list with the skin


def test_chunked_gradient_matches_plain_autograd_through_all_distances():
    """The custom backward of pairwise_sum against torch's autograd through neighbor_graph's distances and the
    gaussian_histogram of all of them at once (a different code path), for positions and cells."""
    positions, cells, numbers, batch = two_structures()
    observable = PairDistribution(r_max=4.0, dr=0.05, output="rdf")
    observable.pair_chunk = 11

    def plain(_, x, c, numbers, batch):
        graph = neighbor_graph(x, c, batch, observable.cutoff, full_list=False)
        counts = gaussian_histogram(graph.distances, graph.edge_batch, 2, 0.025, 0.05, observable.n_r, 0.15)
        return counts * 2.0 / torch.bincount(batch).to(x.dtype)[:, None]

    ours = values_and_gradients(observable, positions, cells, numbers, batch)
    reference = values_and_gradients(None, positions, cells, numbers, batch, plain)
    for a, b in zip(ours, reference):
        assert torch.allclose(a, b, rtol=0, atol=1e-10)


def test_one_shot_call_lists_no_skin_and_a_second_call_rebuilds_with_it():
    positions, cells, _, batch = two_structures()
    verlet = VerletNeighborList(skin=1.0, lazy=True)
    _, first = verlet.pairs(positions, cells, batch, 3.0, full_list=False)
    exact = neighbor_graph(positions, cells, batch, 3.0, full_list=False)
    assert first.n_pairs == exact.distances.numel()  # no candidates beyond the cut-off
    moved = positions + 0.01
    _, second = verlet.pairs(moved, cells, batch, 3.0, full_list=False)
    assert verlet.builds == 2 and second.n_pairs > first.n_pairs  # now with the skin
    verlet.pairs(moved + 0.01, cells, batch, 3.0, full_list=False)
    assert verlet.builds == 2  # and reused


@pytest.mark.parametrize("make", [lambda: PairDistribution(r_max=3000.0, dr=0.5), lambda: StructureFactor(r_max=3e3)])
def test_a_pair_list_that_cannot_fit_is_refused_up_front_with_the_figure(make):
    """2,001 atoms with pairs up to 3000 Å: ~10¹³ pairs, far beyond any machine's memory. Refused before
    any list is built, with the estimate and what to change."""
    positions, cells, numbers, batch = batch_from_atoms(random_sio2(667, 30.0, 3))
    with pytest.raises(InputError, match=r"need about [\d,.]+ GiB; [\d.]+ GiB are available: use at most .* r_max"):
        make()(positions, cells, numbers, batch)


ORDERED = {
    **OBSERVABLES,
    "S(Q) xray, debye route": lambda: StructureFactor(1.0, 12.0, 0.1, r_max=4.0, weighting="xray", route="debye"),
}


@pytest.mark.parametrize("name", list(ORDERED))
def test_atoms_listed_in_spatial_order_give_the_values_and_gradients_of_the_callers_order(name):
    """g(r)/S(Q) list large cells' atoms along a Morton curve (here from 30 atoms on): against the same observable
    listing them in the caller's order,
    float64, atoms shuffled within each structure, over a trajectory that reuses the list and wraps atoms back
    into the cell (lattice jumps), gradients with respect to the caller's positions and cells."""
    positions, cells, numbers, batch = two_structures()
    generator = torch.Generator().manual_seed(3)
    shuffle = torch.cat([torch.randperm(36, generator=generator), 36 + torch.randperm(30, generator=generator)])
    positions, numbers = positions[shuffle], numbers[shuffle]
    call = (lambda o, *a: o.partials(*a).values) if name == "partials" else None
    ordered, plain = ORDERED[name](), ORDERED[name]()
    assert ordered.neighbors.spatial_order_atoms == SPATIAL_ORDER_ATOMS > 36  # this small cell: the caller's order
    ordered.neighbors.spatial_order_atoms = 30
    plain.neighbors = VerletNeighborList(lazy=True)
    agree_along_a_trajectory(ordered, plain, positions, cells, numbers, batch, call, wrap_after=1)
    order = ordered.neighbors._order
    assert order is not None and not torch.equal(order, torch.arange(len(order)))  # really reordered
    assert torch.equal(batch[order], batch)  # each structure's atoms kept together


def test_spatial_order_puts_neighbouring_atoms_close_in_memory():
    """On a random 4,000-atom cell the mean index gap |i - j| of the pairs within 3 Å falls far below that of
    the random order (~N/3): the point of the ordering."""
    atoms = random_sio2(1333, 35.0, 4)
    positions, cells, _, batch = batch_from_atoms(atoms)
    order = spatial_order(positions, cells, batch)
    assert torch.equal(torch.sort(order).values, torch.arange(len(positions)))  # a permutation
    gaps = []
    for x in (positions, positions[order]):
        i, j = neighbor_graph(x, cells, batch, 3.0, full_list=False).edge_index
        gaps.append((i - j).abs().double().mean().item())
    assert gaps[0] > len(positions) / 4 and gaps[1] < gaps[0] / 5


@pytest.mark.parametrize("name", ["g(r) xray", "XRD"])
def test_small_cells_keep_the_callers_order_and_their_sums_bit_for_bit(name):
    """Below SPATIAL_ORDER_ATOMS atoms per structure the list keeps the caller's order: values and gradients are
    bitwise those of a list that never reorders (seeded guided runs of small cells stay as they were)."""
    positions, cells, numbers, batch = two_structures()
    ours, plain = OBSERVABLES[name](), OBSERVABLES[name]()
    plain.neighbors = VerletNeighborList(lazy=True)
    got = values_and_gradients(ours, positions, cells, numbers, batch)
    expected = values_and_gradients(plain, positions, cells, numbers, batch)
    assert all(torch.equal(a, b) for a, b in zip(got, expected)) and ours.neighbors._order is None
