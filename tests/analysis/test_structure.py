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
    pair_distribution_peaks,
    pair_distributions,
    partial_shells,
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


def test_partial_and_weighted_pair_distributions_of_b2_cuzr():
    a = 3.26
    b2 = ase.Atoms("CuZr", scaled_positions=[[0, 0, 0], [0.5, 0.5, 0.5]], cell=[a] * 3, pbc=True).repeat(4)
    b2.rattle(0.02, seed=1)
    r, curves = pair_distributions([b2])
    peaks = pair_distribution_peaks(r, curves)
    # B2: unlike nearest neighbours at a√3/2, like ones at a (the Gaussian width 0.05 Å and 0.02 Å rattle
    # shift a peak of 4πr²-normalised counts by a few 0.01 Å at most)
    assert peaks["Cu-Zr"]["first_peak"] == pytest.approx(a * np.sqrt(3) / 2, abs=0.02)
    assert peaks["Cu-Cu"]["first_peak"] == pytest.approx(a, abs=0.02)
    assert peaks["Zr-Zr"]["first_peak"] == pytest.approx(a, abs=0.02)
    # totals are the Faber–Ziman sums of the partials: c = 1/2, f = Z (29, 40) or b_c (Cu 7.718, Zr 7.16 fm,
    # Sears, Neutron News 3, 26 (1992))
    for name, (f_cu, f_zr) in {"total_xray": (29.0, 40.0), "total_neutron": (7.718, 7.16),
                               "total_number": (1.0, 1.0)}.items():  # fmt: skip
        mean = (f_cu + f_zr) / 2
        expected = (0.25 * f_cu**2 * curves["Cu-Cu"] + 0.5 * f_cu * f_zr * curves["Cu-Zr"]
                    + 0.25 * f_zr**2 * curves["Zr-Zr"]) / mean**2  # fmt: skip
        assert curves[name] == pytest.approx(expected, abs=2e-3 * expected.max()), name


def test_a_first_minimum_beyond_r_max_is_looked_for_further():
    fcc = ase.build.bulk("Cu", "fcc", 3.61, cubic=True).repeat(4)
    fcc.rattle(0.02, seed=2)
    near = 3.61 / np.sqrt(2)  # 12 neighbours at a/√2, the next 6 at a
    peak, minimum = partial_shells([fcc], r_max=3.0)[("Cu", "Cu")]  # the shell ends between 2.55 and 3.61 Å
    assert peak == pytest.approx(near, abs=0.02) and near < minimum < 3.61
