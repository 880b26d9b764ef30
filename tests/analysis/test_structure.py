"""Coordination, bond angles, dihedrals and RDF cutoffs against independent counts (ASE, analytic crystals)."""

import ase
import ase.build
import numpy as np
import pytest
from ase.neighborlist import neighbor_list

from specguide.analysis.structure import (
    bond_angles,
    coordination,
    dihedral_angles,
    first_shell_coordination,
    rdf_cutoffs,
)
from specguide.pretrained import load_md_dataset


def test_coordination_matches_ase_neighbour_counts_on_md_silicon():
    frames = load_md_dataset("a-Si_2.5", split="test")
    cutoff = 2.85
    result = coordination(frames, {("Si", "Si"): cutoff})
    counts = np.concatenate([np.bincount(neighbor_list("i", a, cutoff), minlength=len(a)) for a in frames])
    values, number = np.unique(counts, return_counts=True)
    expected = {str(v): n / counts.size for v, n in zip(values, number)}
    assert result["species"]["Si"] == pytest.approx(expected)
    assert result["mean"]["Si"] == pytest.approx(counts.mean())


def test_per_pair_coordination_in_rocksalt():
    crystal = ase.build.bulk("NaCl", "rocksalt", 5.64, cubic=True).repeat(2)
    result = coordination([crystal], {"Na-Cl": 3.0, "Na-Na": 4.2, "Cl-Cl": 4.2})
    assert result["pairs"]["Na-Cl"] == {"6": 1.0}
    assert result["pairs"]["Na-Na"] == {"12": 1.0}
    assert result["species"]["Cl"] == {"18": 1.0}


def test_rdf_cutoff_of_diamond_lies_between_first_and_second_shells():
    crystal = ase.build.bulk("Si", "diamond", 5.43, cubic=True).repeat(3)
    crystal.rattle(0.05, seed=1)
    (cutoff,) = rdf_cutoffs([crystal]).values()
    assert 2.45 < cutoff < 3.75  # first shell 2.35 Å, second 3.84 Å
    assert coordination([crystal], rdf_cutoffs([crystal]))["species"]["Si"] == {"4": 1.0}


def test_first_shell_coordination_from_g_of_r_counts_the_neighbours():
    from specguide.graph import batch_from_atoms
    from specguide.observables import PairDistribution

    pdf = PairDistribution(r_max=5.0, dr=0.01, sigma=0.05)
    for structures in ([ase.build.bulk("Si", "diamond", 5.43, cubic=True).repeat(3)], load_md_dataset("a-Si_2.5")[:4]):
        positions, cells, numbers, batch = batch_from_atoms(structures)
        g = pdf(positions, cells, numbers, batch).mean(0).numpy()
        density = len(structures[0]) / structures[0].get_volume()
        n1, r1 = first_shell_coordination(pdf.grid.numpy(), g, density)
        counted = np.mean([len(neighbor_list("i", a, r1)) / len(a) for a in structures])  # ASE, independent
        assert 2.5 < r1 < 3.7  # between the first (2.35 Å) and second (3.84 Å) shells
        assert n1 == pytest.approx(counted, abs=0.03)
    assert counted > 3.9  # a-Si is (nearly) four-fold
    with pytest.raises(ValueError, match="first minimum"):
        first_shell_coordination(pdf.grid.numpy(), np.exp(-pdf.grid.numpy()), density)


def test_bond_angles_of_diamond_are_tetrahedral():
    crystal = ase.build.bulk("Si", "diamond", 5.43, cubic=True).repeat(2)
    angles = bond_angles([crystal], {("Si", "Si"): 2.6})
    assert len(angles) == 6 * len(crystal)  # four bonds -> six angles per atom
    assert np.allclose(angles, np.degrees(np.arccos(-1 / 3)))


def test_dihedrals_of_diamond_are_staggered():
    crystal = ase.build.bulk("Si", "diamond", 5.43, cubic=True).repeat(2)
    dihedrals = dihedral_angles([crystal], {("Si", "Si"): 2.6})
    n_bonds = 2 * len(crystal)
    assert len(dihedrals) == 9 * n_bonds  # 3 x 3 neighbour pairs around each bond
    values, counts = np.unique(dihedrals.round(6), return_counts=True)
    assert values == pytest.approx([60.0, 180.0])
    assert counts.tolist() == [6 * n_bonds, 3 * n_bonds]


def test_dihedral_sign_convention_against_ase_get_dihedral():
    rng = np.random.default_rng(3)
    atoms = ase.Atoms(
        "Si4", positions=[[0, 0, 0], [2.3, 0, 0], [3.0, 2.2, 0], [3.5, 2.5, 2.1]], cell=[30] * 3, pbc=True
    )
    atoms.positions += rng.normal(scale=0.05, size=(4, 3)) + 10
    (value,) = dihedral_angles([atoms], {("Si", "Si"): 2.6})
    reference = atoms.get_dihedral(0, 1, 2, 3)
    assert value == pytest.approx(min(reference, 360 - reference), abs=1e-6)
