"""Shortest-path rings on crystals with known ring counts."""

import ase
import ase.build
import pytest

from specguide.analysis.rings import ring_statistics


@pytest.mark.parametrize("repeat", [1, 2])
def test_diamond_has_only_six_rings_two_per_atom(repeat):
    crystal = ase.build.bulk("Si", "diamond", 5.43, cubic=True).repeat(repeat)  # 8 atoms: rings wrap the cell
    result = ring_statistics([crystal], {("Si", "Si"): 2.6}, max_size=10)
    assert result["per_atom"] == {"6": pytest.approx(2.0)}


def test_simple_cubic_has_three_squares_and_two_hexagons_per_atom():
    # each atom: 12 right angles in one square each (12/4 = 3), 3 straight angles in four 6-rings each (12/6 = 2)
    crystal = ase.Atoms("Po", cell=[3.0] * 3, pbc=True).repeat(4)
    result = ring_statistics([crystal], {("Po", "Po"): 3.2}, max_size=8)
    assert result["per_atom"] == {"4": pytest.approx(3.0), "6": pytest.approx(2.0)}
    assert result["fraction"]["4"] == pytest.approx(0.6)


def test_graphene_has_half_a_hexagon_per_atom():
    sheet = ase.build.graphene(a=2.46, vacuum=5.0).repeat((3, 3, 1))
    result = ring_statistics([sheet], {("C", "C"): 1.6}, max_size=8)
    assert result["per_atom"] == {"6": pytest.approx(0.5)}


def test_small_max_size_is_refused():
    with pytest.raises(ValueError, match="max_size"):
        ring_statistics([ase.build.bulk("Si", "diamond", 5.43)], {("Si", "Si"): 2.6}, max_size=2)
