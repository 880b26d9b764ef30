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
