"""The chemistry a prior's training data define: compositions, shortest pairs, bonds, coordination, restarts, veto."""

import math

import numpy as np
import pytest
import torch

from specguide.analysis.structure import chemistry_of
from specguide.chemistry import Chemistry, excess_coordination, parse_composition, shortest_pairs, species_counts
from specguide.diffusion.sampler import VetoSchedule
from specguide.io import InputError
from specguide.pretrained import load_md_dataset


@pytest.mark.parametrize(
    "text, expected",
    [
        ("SiO2", {"Si": 1 / 3, "O": 2 / 3}),
        ("Si1 O2", {"Si": 1 / 3, "O": 2 / 3}),
        ("Cu64Zr36", {"Cu": 0.64, "Zr": 0.36}),
        ("Si:1,O:2", {"Si": 1 / 3, "O": 2 / 3}),
        ("(SiO2)0.9(Na2O)0.1", {"Si": 0.9 / 3.0, "O": 1.9 / 3.0, "Na": 0.2 / 3.0}),
        ({"C": 3, "H": 1}, {"C": 0.75, "H": 0.25}),
    ],
)
def test_compositions_in_the_forms_people_write_them(text, expected):
    fractions = parse_composition(text)
    assert fractions.keys() == expected.keys()
    for symbol, value in expected.items():
        assert fractions[symbol] == pytest.approx(value)


@pytest.mark.parametrize("text", ["SiO2x", "Si:-1,O:2", "Xx2", "", "Si:0"])
def test_bad_compositions_say_how_to_write_one(text):
    with pytest.raises(InputError, match="composition"):
        parse_composition(text)


def test_species_counts_round_by_largest_remainder():
    counts = species_counts({"Si": 1, "O": 2}, 50)
    assert counts.count(14) == 17 and counts.count(8) == 33


def test_shortest_pairs_match_brute_force_over_all_images():
    cells = load_md_dataset("a-SiO2_2.2", split="test")
    found = shortest_pairs(cells)
    symbols = np.array(cells[0].get_chemical_symbols())
    for pair, value in found.items():
        a, b = pair.split("-")
        brute = math.inf
        for atoms in cells:
            d = atoms.get_all_distances(mic=True)
            np.fill_diagonal(d, np.inf)
            brute = min(brute, d[np.ix_(symbols == a, symbols == b)].min())
        assert value == pytest.approx(brute, abs=1e-4)


def test_silica_bonds_are_si_o_only_and_its_coordination_is_tetrahedral():
    chemistry = chemistry_of(load_md_dataset("a-SiO2_2.2", split="train"), source="test")
    assert set(chemistry.bond_cutoffs) == {"O-Si"} and 1.8 < chemistry.bond_cutoffs["O-Si"] < 2.4
    (record,) = chemistry.coordination.values()
    assert record["Si"]["4"] > 0.9 and record["O"]["2"] > 0.9
    assert sum(record["Si"].values()) == pytest.approx(1.0)
    assert chemistry.composition == pytest.approx({"O": 2 / 3, "Si": 1 / 3}, abs=1e-6)
    again = Chemistry.from_dict(chemistry.to_dict())
    assert again.coordination_at(5.0) == record and again.veto_table()[(8, 8)] == chemistry.shortest["O-O"]
    assert again.curves_at(5.0) == ("2.20", chemistry.curves["2.20"])


def test_the_recorded_reference_curves_match_a_brute_force_count_of_the_training_cells():
    """The g(r) and bond angles a prior records (report.png draws them) peak where a brute-force count over
    ASE's minimum-image distances puts them: the Si–O bond and the O–Si–O tetrahedral angle."""
    cells = load_md_dataset("a-SiO2_2.2", split="train")[:3]
    chemistry = chemistry_of(cells, source="test")
    (density, curves), cutoff = chemistry.curves_at(None), chemistry.bond_cutoffs["O-Si"]
    r, g, theta, p_theta = (np.asarray(curves[k]) for k in ("r", "g", "theta", "p_theta"))
    assert density == "2.20" and len(r) == len(g) and len(theta) == len(p_theta) == 180
    assert np.sum(p_theta) * (theta[1] - theta[0]) == pytest.approx(1.0, abs=1e-3)
    distances, angles = [], []
    for atoms in cells:
        vectors = atoms.get_all_distances(mic=True, vector=True)
        d = np.linalg.norm(vectors, axis=-1)
        np.fill_diagonal(d, np.inf)
        distances.append(d[np.triu_indices(len(atoms), 1)])
        for centre in np.flatnonzero(atoms.numbers == 14):
            bonded = np.flatnonzero(d[centre] < cutoff)
            unit = vectors[centre, bonded] / d[centre, bonded, None]
            cosines = (unit @ unit.T)[np.triu_indices(len(bonded), 1)]
            angles.append(np.degrees(np.arccos(np.clip(cosines, -1, 1))))
    counts, edges = np.histogram(np.concatenate(distances), bins=np.arange(1.0, 3.0, 0.01))
    assert r[np.argmax(g)] == pytest.approx(edges[np.argmax(counts)] + 0.005, abs=0.02)
    counts, edges = np.histogram(np.concatenate(angles), bins=np.arange(90.0, 131.0, 2.0))
    peak = theta[(theta > 90) & (theta < 130)][np.argmax(p_theta[(theta > 90) & (theta < 130)])]
    assert peak == pytest.approx(edges[np.argmax(counts)] + 1.0, abs=2.0)


def test_excess_coordination_selects_the_classes_above_the_reference():
    # 10 Si: 6 four-fold, 3 five-fold, 1 three-fold; the reference has 95 % four-fold and 5 % five-fold
    cn = torch.tensor([4] * 6 + [5] * 3 + [3] + [2, 2])
    numbers = torch.tensor([14] * 10 + [8, 8])
    chosen = excess_coordination(cn, numbers, {"Si": {"4": 0.95, "5": 0.05}})
    assert chosen[:6].sum() == 0 and chosen[6:10].all()  # five-fold 30 % > 5 %, three-fold never in the reference
    assert not chosen[10:].any()  # no reference for O: never selected


def test_the_veto_tightens_to_the_training_data_shortest_pair_as_the_noise_vanishes():
    schedule = VetoSchedule({("Si", "Si"): 2.28}, {("Si", "Si"): 1.55}, strict_below=0.05)
    table = lambda sigma: float(schedule.at(sigma).table[14, 14])  # noqa: E731
    assert table(0.8) == pytest.approx(1.55)  # high noise: the covalent floor
    assert table(0.1) == pytest.approx(2.28 - 3 * math.sqrt(2) * 0.1)
    assert table(0.04) == pytest.approx(2.28) and table(0.0) == pytest.approx(2.28)
