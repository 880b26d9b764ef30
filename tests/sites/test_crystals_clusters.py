"""Si–O crystal builders and 3-shell cluster extraction."""

import ase
import numpy as np
import pytest
from ase.neighborlist import neighbor_list

from specguide.sites.clusters import site_cluster, unique_sites
from specguide.sites.crystals import PHASES, build_phase, validate_silica
from specguide.structure import density_g_cm3


@pytest.mark.parametrize("name", sorted(PHASES))
def test_crystal_coordination_bonds_density(name):
    atoms = build_phase(name)
    phase = PHASES[name]
    report = validate_silica(atoms, phase)
    assert report["ok"], report
    # independent check with ASE's neighbour list and the textbook density formula
    i, j, d = neighbor_list("ijd", atoms, 2.0)
    si = atoms.numbers == 14
    cn = np.bincount(i[atoms.numbers[j] == 8], minlength=len(atoms))
    assert (cn[si] == phase.si_cn).all()
    assert (np.bincount(i[atoms.numbers[j] == 14], minlength=len(atoms))[~si] == phase.si_cn // 2).all()
    mass_g = (si.sum() * 28.0855 + (~si).sum() * 15.999) / 6.02214076e23
    assert mass_g / (atoms.get_volume() * 1e-24) == pytest.approx(phase.density_g_cm3, rel=0.02)
    assert density_g_cm3(atoms) == pytest.approx(phase.density_g_cm3, rel=0.02)


def test_quartz_bond_lengths_match_literature():
    # Levien et al. (1980): Si–O 1.6034 and 1.6132 Å
    atoms = build_phase("alpha-quartz")
    _, _, d = neighbor_list("ijd", atoms, 2.0)
    assert sorted(set(np.round(d, 3))) == [1.604, 1.613]


def test_coesite_sites_and_angles_match_literature():
    # Levien & Prewitt (1981): five O sites; O1 sits on an inversion centre, so Si1–O1–Si1 is exactly 180°,
    # and the other Si–O–Si angles are 137–151°; mean Si–O 1.61 Å
    atoms = build_phase("coesite")
    sites = unique_sites(atoms)
    assert len(sites) == 5
    i, j, d = neighbor_list("ijd", atoms, 2.0)
    assert d.mean() == pytest.approx(1.61, abs=0.01)
    angles = []
    for o in sites:
        si = j[i == o]
        assert len(si) == 2
        angles.append(atoms.get_angle(si[0], o, si[1], mic=True))
    assert angles[0] == pytest.approx(180.0, abs=0.01)
    assert all(135.0 < a < 152.0 for a in angles[1:]), angles


def _brute_force_cluster(atoms, site, shells=3, cutoff=2.0):
    """All atoms of a 7×7×7 supercell within `shells` bonds, by dense distance matrices."""
    big = atoms.repeat(7)
    centre = 171 * len(atoms) + site  # the cell (3, 3, 3) of the 7×7×7 repeat
    pos = big.positions
    d = np.linalg.norm(pos[:, None] - pos[None], axis=-1)
    adj = (d < cutoff) & (d > 0)
    level = np.full(len(big), -1)
    level[centre] = 0
    for s in range(1, shells + 1):
        new = adj[level == s - 1].any(0) & (level < 0)
        level[new] = s
    keep = level >= 0
    return pos[keep] - pos[centre], big.numbers[keep], level[keep]


@pytest.mark.parametrize("name", ["alpha-quartz", "stishovite"])
def test_cluster_matches_brute_force(name):
    atoms = build_phase(name)
    rng = np.random.default_rng(1)
    atoms.positions += rng.normal(0, 0.03, atoms.positions.shape)
    atoms.arrays.pop("spacegroup_kinds")
    site = int(np.flatnonzero(atoms.numbers == 8)[0])
    cluster = site_cluster(atoms, site)
    pos, num, level = _brute_force_cluster(atoms, site)
    assert len(cluster) == len(pos)
    assert np.allclose(cluster.positions[0], 0.0)
    key = lambda p, z, s: sorted(zip(np.round(np.linalg.norm(p, axis=1), 6), z, s, strict=True))  # noqa: E731
    assert key(cluster.positions, cluster.numbers, cluster.arrays["shell"]) == key(pos, num, level)
    # nearest-neighbour shells: O bonded to 2 Si (4-fold) or 3 Si (stishovite)
    assert (cluster.arrays["shell"] == 1).sum() == PHASES[name].si_cn // 2


def test_unique_sites_by_symmetry_and_fingerprint():
    atoms = build_phase("alpha-quartz")
    assert len(unique_sites(atoms)) == 1
    big = atoms.repeat(2)
    big.arrays.pop("spacegroup_kinds")
    assert len(unique_sites(big)) == 1
    big.positions[np.flatnonzero(big.numbers == 8)[0]] += [0.05, 0, 0]
    assert len(unique_sites(big)) > 1


def test_non_periodic_cluster_and_bad_site():
    mol = ase.Atoms("OSi2", positions=[[0, 0, 0], [1.6, 0, 0], [-1.6, 0, 0]])
    assert len(site_cluster(mol, 0)) == 3
    with pytest.raises(IndexError):
        site_cluster(mol, 5)
