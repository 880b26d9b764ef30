"""Energy per atom through LAMMPS with the shipped Tersoff potential."""

import ase.build
import pytest

from specguide.analysis.energy import energy_per_atom
from specguide.pretrained import load_md_dataset


def test_diamond_silicon_with_tersoff_is_minus_4_63_ev():
    # Tersoff Si(B), PRB 37, 6991 (1988): cohesive energy 4.63 eV/atom at a = 5.432 Å
    assert energy_per_atom(ase.build.bulk("Si", "diamond", 5.432, cubic=True)) == pytest.approx(-4.630, abs=2e-3)
    # a non-orthogonal (primitive fcc) cell gives the same energy
    assert energy_per_atom(ase.build.bulk("Si", "diamond", 5.432)) == pytest.approx(-4.630, abs=2e-3)


def test_matches_the_energy_the_md_run_recorded():
    frame = load_md_dataset("a-Si_2.5", split="test")[0]
    assert energy_per_atom(frame) == pytest.approx(frame.info["energy_per_atom"], abs=1e-5)
