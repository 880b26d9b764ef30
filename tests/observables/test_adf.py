"""Bond-angle distribution against crystal geometry, a brute-force reference (ASE neighbour list + loops),
finite differences and symmetry."""

import math

import ase
import ase.build
import numpy as np
import pytest
import torch
from ase.neighborlist import neighbor_list

from specguide.graph import batch_from_atoms
from specguide.observables import BondAngleDistribution
from specguide.observables.adf import triplets

TETRAHEDRAL = math.degrees(math.acos(-1 / 3))  # 109.47°


def to_torch(structures):
    return batch_from_atoms(structures, dtype=torch.float64)


def area(p: torch.Tensor, grid: torch.Tensor, lo: float, hi: float, step: float) -> float:
    return float(p[(grid > lo) & (grid < hi)].sum() * step)


def cristobalite() -> ase.Atoms:
    """Ideal β-cristobalite: Si on a diamond lattice (a = 7.16 Å), O at every Si–Si bond midpoint (Si–O 1.55 Å)."""
    si = ase.build.bulk("Si", "diamond", 7.16, cubic=True)
    i, j, d = neighbor_list("ijD", si, 3.2)
    midpoints = si.positions[i[i < j]] + d[i < j] / 2
    oxygen = ase.Atoms("O" * len(midpoints), positions=midpoints, cell=si.cell, pbc=True)
    atoms = si + oxygen
    atoms.wrap()
    return atoms


def test_triplet_enumeration():
    centre = torch.tensor([2, 0, 2, 1, 0, 2, 2])
    first, second = triplets(centre, 4)
    got = sorted(tuple(sorted(pair)) for pair in zip(first.tolist(), second.tolist(), strict=True))
    expected = sorted((a, b) for a in range(len(centre)) for b in range(a + 1, len(centre)) if centre[a] == centre[b])
    assert got == expected


def test_diamond_silicon_is_tetrahedral():
    adf = BondAngleDistribution(cutoff=2.85, sigma=1.0)
    p = adf(*to_torch(ase.build.bulk("Si", "diamond", 5.43, cubic=True).repeat(2)))[0]
    assert float(adf.grid[torch.argmax(p)]) == pytest.approx(TETRAHEDRAL, abs=adf.dtheta)
    assert float(p.sum() * adf.dtheta) == pytest.approx(1.0, abs=1e-12)
    assert area(p, adf.grid, TETRAHEDRAL - 6, TETRAHEDRAL + 6, adf.dtheta) == pytest.approx(1.0, abs=1e-6)
    # the default covalent-radii cut-off (1.3 × 2 × 1.11 Å = 2.89 Å) keeps exactly the four bonds
    torch.testing.assert_close(
        BondAngleDistribution(sigma=1.0)(*to_torch(ase.build.bulk("Si", "diamond", 5.43))), p[None]
    )


def test_fcc_copper_nearest_neighbour_angles():
    """12 nearest neighbours: of the 66 pairs, 24 at 60°, 12 at 90°, 24 at 120°, 6 at 180° (primitive cell, so every
    neighbour is an image of the atom itself). The kernel is reflected at 180°, so that peak keeps all its weight."""
    adf = BondAngleDistribution(cutoff=3.0, sigma=1.0)
    p = adf(*to_torch(ase.build.bulk("Cu", "fcc", 3.615)))[0]
    grid = adf.grid
    interior = (p[1:-1] > p[:-2]) & (p[1:-1] >= p[2:])
    maxima = grid[1:-1][interior & (p[1:-1] > 1e-3)].tolist()
    if p[-1] > p[-2]:
        maxima.append(float(grid[-1]))
    assert len(maxima) == 4
    for found, angle in zip(maxima, [60, 90, 120, 180], strict=True):
        assert found == pytest.approx(angle, abs=adf.dtheta)
    for angle, count in [(60, 24), (90, 12), (120, 24), (180, 6)]:
        assert area(p, grid, angle - 8, angle + 8, adf.dtheta) == pytest.approx(count / 66, abs=1e-6)


def test_species_selection_and_default_cutoffs_in_cristobalite():
    atoms = cristobalite()
    batch = to_torch(atoms)
    osio = BondAngleDistribution(centre="Si", neighbours="O", sigma=1.0)
    p = osio(*batch)[0]
    assert area(p, osio.grid, TETRAHEDRAL - 6, TETRAHEDRAL + 6, osio.dtheta) == pytest.approx(1.0, abs=1e-6)
    sios = BondAngleDistribution(centre=8, neighbours=14, sigma=1.0)(*batch)[0]
    assert area(sios, osio.grid, 174, 180, osio.dtheta) == pytest.approx(1.0, abs=1e-6)
    # all triplets: 8 Si × 6 O–Si–O and 16 O × 1 Si–O–Si
    both = BondAngleDistribution(sigma=1.0)(*batch)[0]
    assert area(both, osio.grid, TETRAHEDRAL - 6, TETRAHEDRAL + 6, osio.dtheta) == pytest.approx(0.75, abs=1e-6)
    assert area(both, osio.grid, 174, 180, osio.dtheta) == pytest.approx(0.25, abs=1e-6)
    # no Si–Si bonds within 2.89 Å (they are 3.10 Å apart), so no O–Si–Si triplets
    assert float(BondAngleDistribution(centre="Si", neighbours=("O", "Si"))(*batch).abs().max()) == 0.0
    # a per-pair override below the Si–O bond length removes every triplet
    assert float(BondAngleDistribution(cutoff={("O", "Si"): 1.5})(*batch).abs().max()) == 0.0
    # and one above the Si–Si distance adds Si–Si–Si and O–Si–Si triplets
    p_all = BondAngleDistribution(cutoff={"Si-Si": 3.2}, centre="Si", neighbours=("O", "Si"), sigma=1.0)(*batch)[0]
    assert float(p_all.sum()) > 0


# ---------------------------------------------------------------------------------------------------------
# brute-force reference
# ---------------------------------------------------------------------------------------------------------


def brute_force_adf(atoms: ase.Atoms, cutoffs: dict, grid: np.ndarray, sigma: float, step: float) -> np.ndarray:
    """ASE neighbour list, explicit loops over centres and neighbour pairs, reflected untruncated Gaussian."""
    i, j, vectors = neighbor_list("ijD", atoms, max(cutoffs.values()))
    z = atoms.numbers
    keep = np.linalg.norm(vectors, axis=1) < np.array(
        [cutoffs[tuple(sorted((z[a], z[b])))] for a, b in zip(i, j, strict=True)]
    )
    i, vectors = i[keep], vectors[keep]
    angles = []
    for centre in range(len(atoms)):
        v = vectors[i == centre]
        for a in range(len(v)):
            for b in range(a + 1, len(v)):
                c = v[a] @ v[b] / np.linalg.norm(v[a]) / np.linalg.norm(v[b])
                angles.append(math.degrees(math.acos(np.clip(c, -1, 1))))
    angles = np.array(angles)
    density = sum(
        np.exp(-0.5 * ((grid[:, None] - x[None, :]) / sigma) ** 2).sum(1) for x in (angles, -angles, 360 - angles)
    )
    return density / (density.sum() * step)


def small_silica(seed: int) -> ase.Atoms:
    """Si and O on perturbed fcc sites of a small triclinic cell: cut-offs exceed half the cell widths."""
    base = ase.build.bulk("Cu", "fcc", a=3.2, cubic=True)
    base.set_cell(base.cell[:] + np.array([[0, 0, 0], [0.5, 0, 0], [0.2, -0.3, 0]]), scale_atoms=True)
    atoms = ase.Atoms(numbers=[14, 8, 8, 14], positions=base.positions, cell=base.cell, pbc=True)
    atoms.rattle(0.2, seed=seed)
    return atoms


def test_matches_brute_force_reference():
    atoms = small_silica(seed=4)
    cutoffs = {(8, 8): 2.6, (8, 14): 2.4, (14, 14): 3.0}
    adf = BondAngleDistribution(cutoff={(8, 8): 2.6, ("Si", "O"): 2.4, "Si-Si": 3.0}, dtheta=0.5, sigma=3.0)
    p = adf(*to_torch(atoms))[0].numpy()
    reference = brute_force_adf(atoms, cutoffs, adf.grid.numpy(), 3.0, adf.dtheta)
    np.testing.assert_allclose(p, reference, rtol=1e-6, atol=1e-6 * reference.max())


# ---------------------------------------------------------------------------------------------------------
# gradients and invariances
# ---------------------------------------------------------------------------------------------------------


def test_gradient_matches_finite_differences():
    atoms = ase.build.bulk("Si", "diamond", 5.43, cubic=True)
    atoms.rattle(0.1, seed=2)
    atoms.set_cell(atoms.cell[:] @ np.array([[1.0, 0.02, 0.0], [0.0, 1.0, -0.03], [0.01, 0.0, 0.98]]), scale_atoms=True)
    distances = neighbor_list("d", atoms, 4.0)
    cutoff = 2.85
    assert np.abs(distances - cutoff).min() > 0.05  # no bond near the hard cut-off within the FD step
    pos0, cells0, numbers, batch = to_torch(atoms)
    adf = BondAngleDistribution(cutoff=cutoff, dtheta=2.0)
    moved = [0, 3, 6]

    def forward(displacement, cells):
        pos = pos0.clone()
        pos[moved] = pos[moved] + displacement
        return adf(pos, cells, numbers, batch)

    displacement = torch.zeros(len(moved), 3, dtype=torch.float64, requires_grad=True)
    cells = cells0.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(forward, (displacement, cells), eps=1e-6, atol=1e-7, rtol=1e-4)


def test_invariances():
    adf = BondAngleDistribution(cutoff={"Si-O": 2.4, "O-O": 2.6, "Si-Si": 3.0})
    atoms = small_silica(seed=9).repeat((2, 1, 1))
    pos, cells, numbers, batch = to_torch(atoms)
    ref = adf(pos, cells, numbers, batch)
    assert float(ref.sum()) > 0

    shifted = pos + torch.tensor([1.3, -0.4, 7.1], dtype=torch.float64)
    torch.testing.assert_close(adf(shifted, cells, numbers, batch), ref, rtol=1e-10, atol=1e-10)

    images = torch.randint(-2, 3, (len(atoms), 3), generator=torch.Generator().manual_seed(0)).to(torch.float64)
    torch.testing.assert_close(adf(pos + images @ cells[0], cells, numbers, batch), ref, rtol=1e-10, atol=1e-10)
    wrapped = atoms.copy()
    wrapped.positions = (pos + images @ cells[0]).numpy()
    wrapped.wrap()
    torch.testing.assert_close(adf(*to_torch(wrapped)), ref, rtol=1e-10, atol=1e-10)

    perm = torch.randperm(len(atoms), generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(adf(pos[perm], cells, numbers[perm], batch), ref, rtol=1e-10, atol=1e-10)

    other = ase.build.bulk("Si", "diamond", 5.43, cubic=True)
    other.rattle(0.05, seed=3)
    joint = adf(*to_torch([atoms, other]))
    torch.testing.assert_close(joint[0], ref[0], rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(joint[1], adf(*to_torch(other))[0], rtol=1e-10, atol=1e-10)
