"""Steinhardt order (analytic fcc/bcc values), Voronoi tiling and PTM crystallinity (optional OVITO)."""

import ase
import ase.build
import numpy as np
import pytest

from specguide.analysis.order import crystallinity, ovito_available, steinhardt, voronoi_volumes


def test_fcc_steinhardt_matches_the_analytic_values():
    crystal = ase.build.bulk("Cu", "fcc", 3.6, cubic=True).repeat(3)
    # q_l of the 12-neighbour cuboctahedron: q4 = sqrt(7/192)... = 0.19094, q6 = 0.57452 (Steinhardt et al. 1983)
    assert steinhardt(crystal, 6, 12) == pytest.approx(np.full(len(crystal), 0.574524), abs=1e-5)
    assert steinhardt(crystal, 4, 2.9) == pytest.approx(np.full(len(crystal), 0.190941), abs=1e-5)


def test_simple_cubic_q4_from_the_six_neighbour_octahedron():
    crystal = ase.Atoms("Po", cell=[3.0] * 3, pbc=True).repeat(3)
    assert steinhardt(crystal, 4, 6) == pytest.approx(np.full(len(crystal), 0.763763), abs=1e-5)  # sqrt(7/12)


def test_simple_cubic_voronoi_cells_are_the_cubes():
    crystal = ase.Atoms("Po", cell=[3.0] * 3, pbc=True).repeat(3)
    assert voronoi_volumes(crystal) == pytest.approx(np.full(len(crystal), 27.0), rel=1e-9)


def test_voronoi_volumes_tile_the_cell():
    crystal = ase.build.bulk("Si", "diamond", 5.43, cubic=True).repeat(2)
    crystal.rattle(0.1, seed=0)
    crystal.set_cell(crystal.cell[:] @ np.array([[1, 0, 0], [0.2, 1, 0], [0, 0, 1.1]]), scale_atoms=True)
    volumes = voronoi_volumes(crystal)
    assert volumes.sum() == pytest.approx(crystal.get_volume(), rel=1e-9)
    assert np.all(volumes > 0)


def test_crystallinity_says_why_without_ovito(monkeypatch):
    import specguide.analysis.order as order

    monkeypatch.setattr(order, "ovito_available", lambda: False)
    result = order.crystallinity([ase.build.bulk("Si", "diamond", 5.43, cubic=True)])
    assert result["available"] is False and "pip install" in result["reason"]


@pytest.mark.skipif(not ovito_available(), reason="OVITO (optional extra) not installed")
def test_ptm_finds_cubic_diamond_and_no_crystal_in_amorphous_silicon():
    from specguide.pretrained import load_md_dataset

    crystal = ase.build.bulk("Si", "diamond", 5.43, cubic=True).repeat(2)
    assert crystallinity([crystal])["fractions"] == {"cubic_diamond": 1.0}
    amorphous = crystallinity(load_md_dataset("a-Si_2.5", split="test"))["fractions"]
    assert amorphous.get("other", 0) > 0.95


def _icosahedron_in_a_box() -> ase.Atoms:
    """A Cu atom at the centre of a 12-atom Zr icosahedron, in a periodic box wide enough to leave it alone."""
    from ase.cluster import Icosahedron

    cluster = Icosahedron("Zr", noshells=2, latticeconstant=4.5)  # 13 atoms, the first one at the centre
    cluster.center(vacuum=8.0)
    cluster.pbc = True
    centre = int(np.argmin(np.linalg.norm(cluster.positions - cluster.positions.mean(0), axis=1)))
    cluster[centre].symbol = "Cu"
    return cluster


@pytest.mark.skipif(not ovito_available(), reason="OVITO (optional extra) not installed")
def test_voronoi_indices_of_fcc_bcc_and_an_icosahedron():
    from specguide.analysis.order import voronoi_index_statistics

    # the polyhedra: fcc's rhombic dodecahedron (12 quadrilaterals), bcc's truncated octahedron (6 squares,
    # 8 hexagons), the icosahedron's dual, the pentagonal dodecahedron (12 pentagons)
    fcc = voronoi_index_statistics([ase.build.bulk("Cu", "fcc", 3.6, cubic=True).repeat(3)])["centre"]["Cu"]
    assert fcc["top_indices"] == {"<0,12,0,0>": 1.0} and fcc["icosahedral"]["mean"] == 0.0
    bcc = voronoi_index_statistics([ase.build.bulk("Zr", "bcc", 3.6, cubic=True).repeat(3)])["centre"]["Zr"]
    assert bcc["top_indices"] == {"<0,6,0,8>": 1.0}
    b2 = ase.Atoms("CuZr", scaled_positions=[[0, 0, 0], [0.5, 0.5, 0.5]], cell=[3.2] * 3, pbc=True).repeat(3)
    stats = voronoi_index_statistics([b2, _icosahedron_in_a_box()])
    assert stats["centre"]["Cu"]["n_atoms"] == 28
    assert stats["centre"]["Cu"]["icosahedral"]["per_structure"] == [0.0, 1.0]  # the one Cu is the centre
    assert stats["centre"]["Cu"]["icosahedral"]["mean"] == pytest.approx(1 / 28)
    assert stats["centre"]["Zr"]["icosahedral"]["mean"] == 0.0


def test_voronoi_indices_say_why_without_ovito(monkeypatch):
    import specguide.analysis.order as order

    monkeypatch.setattr(order, "ovito_available", lambda: False)
    result = order.voronoi_index_statistics([ase.build.bulk("Cu", "fcc", 3.6, cubic=True)])
    assert result["available"] is False and "pip install" in result["reason"]


def _qhull_voronoi_indices(atoms: ase.Atoms) -> np.ndarray:
    """Face counts by number of edges per atom from scipy's Qhull Voronoi of the atoms and their 26 images."""
    from scipy.spatial import Voronoi

    cell = np.asarray(atoms.cell[:])
    shifts = np.array([[i, j, k] for i in (0, -1, 1) for j in (0, -1, 1) for k in (0, -1, 1)]) @ cell
    voronoi = Voronoi((atoms.get_positions(wrap=True)[None] + shifts[:, None]).reshape(-1, 3))
    n = len(atoms)
    counts = np.zeros((n, 30), dtype=np.int64)
    for pair, vertices in zip(voronoi.ridge_points, voronoi.ridge_vertices):
        for atom in pair[pair < n]:
            counts[atom, len(vertices) - 1] += 1
    return counts


@pytest.mark.skipif(not ovito_available(), reason="OVITO (optional extra) not installed")
def test_voronoi_indices_of_a_cuzr_glass_match_qhull():
    from specguide.analysis.order import voronoi_index_statistics, voronoi_indices
    from specguide.pretrained import load_md_dataset

    glass = load_md_dataset("Cu64Zr36_q100", split="test")[0]
    ours = voronoi_indices(glass)
    reference = _qhull_voronoi_indices(glass)
    assert np.array_equal(ours, reference[:, : ours.shape[1]]) and not reference[:, ours.shape[1] :].any()
    cu = np.array(glass.get_chemical_symbols()) == "Cu"
    icosahedral = np.all(reference[:, 2:6] == [0, 0, 12, 0], axis=1) & (reference[:, 6:].sum(1) == 0)
    stats = voronoi_index_statistics([glass])["centre"]
    assert stats["Cu"]["icosahedral"]["mean"] == pytest.approx(icosahedral[cu].mean())
    assert stats["Cu"]["icosahedral"]["mean"] > 0.02  # the glass has Cu-centred icosahedra
