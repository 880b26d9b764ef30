"""Published silicate structures: each builds, validates, and matches what its AMCSD record states."""

import re
from functools import cache

import numpy as np
import pytest
import spglib
from ase.data import atomic_masses, atomic_numbers
from ase.neighborlist import neighbor_list

from specguide.sites.clusters import unique_sites
from specguide.sites.crystals import PHASES, silica_crystals
from specguide.sites.silicates import SILICATES, build_silicate, silicate_crystals, validate_silicate

AVOGADRO = 6.02214076e23
spglib.error.OLD_ERROR_HANDLING = False  # raise on errors (spglib 2.5+), instead of its deprecation warning


def _hm_key(symbol: str) -> str:
    return re.sub(r"[\s\-_]", "", symbol)


@cache
def _hm_table() -> dict[str, frozenset[int]]:
    """Hermann–Mauguin symbol (spaces, bars, underscores dropped) -> space-group numbers, over spglib's 530 settings."""
    table: dict[str, set[int]] = {}
    for hall in range(1, 531):
        t = spglib.get_spacegroup_type(hall)
        for s in (t.international_short, t.international_full):
            table.setdefault(_hm_key(s), set()).add(t.number)
    return {k: frozenset(v) for k, v in table.items()}


def _spglib_numbers(symbol: str) -> frozenset[int]:
    """Space-group numbers of the published symbol (the records write ``F d 3 m`` for Fd-3m). ``C -1`` (a
    centred cell of P-1, used for albite) is not among spglib's settings."""
    if symbol == "C -1":
        return frozenset({2})
    return _hm_table()[_hm_key(symbol)]


def _formula(text: str) -> dict[str, float]:
    return {el: float(n) if n else 1.0 for el, n in re.findall(r"([A-Z][a-z]?)([0-9.]*)", text)}


@pytest.mark.parametrize("name", sorted(SILICATES))
def test_silicate_matches_its_record(name):
    phase = SILICATES[name]
    atoms = build_silicate(name)
    report = validate_silicate(atoms, phase)
    assert report["ok"], report
    # the record's cell volume and density (computed by the database from the published cell and formula)
    assert atoms.get_volume() == pytest.approx(phase.cell_volume, rel=1e-4)
    mass_g = sum(atomic_masses[z] for z in atoms.numbers) / AVOGADRO
    assert mass_g / (atoms.get_volume() * 1e-24) == pytest.approx(phase.density_g_cm3, rel=2e-3)
    # composition per Si as published
    symbols = atoms.get_chemical_symbols()
    published = _formula(phase.formula)
    assert set(symbols) == set(published)
    for el, n in published.items():
        assert symbols.count(el) / symbols.count("Si") == pytest.approx(n / published["Si"], rel=1e-2)
    # the symmetry spglib finds in the built cell is the published space group
    cell = (atoms.cell[:], atoms.get_scaled_positions(), atoms.numbers)
    dataset = spglib.get_symmetry_dataset(cell, symprec=1e-3)
    assert dataset.number in _spglib_numbers(phase.symbol)
    # one symmetry-distinct O per O of the published asymmetric unit, by spglib and by the builder's kinds
    o = atoms.numbers == atomic_numbers["O"]
    n_o_published = sum(s[0] == "O" for s in phase.sites)
    assert len(set(dataset.equivalent_atoms[o])) == n_o_published
    assert len(unique_sites(atoms)) == n_o_published
    # coordination with ASE's neighbour list directly: Si four- or six-fold, O bonded to at most two Si
    i, j = neighbor_list("ij", atoms, 2.0)
    si_o = (atoms.numbers[i] == 14) & (atoms.numbers[j] == 8)
    si_cn = np.bincount(i[si_o], minlength=len(atoms))[atoms.numbers == 14]
    assert set(si_cn.tolist()) <= {4, 6}
    assert np.bincount(j[si_o], minlength=len(atoms))[o].max() <= 2


def test_garnet_silicon_has_one_si_o_distance():
    # Ia-3d garnets: Si on 24d (-4 site symmetry), so its four O are at one distance
    for name in ("pyrope", "grossular", "almandine"):
        atoms = build_silicate(name)
        i, j, d = neighbor_list("ijd", atoms, 2.0)
        si_o = (atoms.numbers[i] == 14) & (atoms.numbers[j] == 8)
        assert np.ptp(d[si_o]) < 1e-6


def test_validation_catches_broken_structures():
    phase = SILICATES["forsterite"]
    atoms = build_silicate("forsterite")
    stretched = atoms.copy()
    stretched.set_cell(atoms.cell[:] * 1.01, scale_atoms=True)  # 3 % less dense, Si–O still plausible
    report = validate_silicate(stretched, phase)
    assert not report["ok"] and report["density_error"] < -0.02
    squeezed = atoms.copy()
    o = int(np.flatnonzero(atoms.numbers == 8)[0])
    mg = int(np.flatnonzero(atoms.numbers == 12)[0])
    squeezed.positions[o] = squeezed.positions[mg] + [0.5, 0.0, 0.0]  # O 0.5 Å from Mg
    assert not validate_silicate(squeezed, phase)["ok"]
    no_mg = atoms[atoms.numbers != 12]
    assert not validate_silicate(no_mg, phase)["ok"]  # composition and density


def test_selection_by_species():
    mg_only = silicate_crystals({"Si", "O", "Mg"})
    assert set(mg_only) == {n for n, p in SILICATES.items() if p.species <= {"Si", "O", "Mg"}}
    assert {"forsterite", "enstatite", "ringwoodite", "akimotoite"} <= set(mg_only)
    assert all(set(a.get_chemical_symbols()) <= {"Si", "O", "Mg"} for a in mg_only.values())
    assert len(silicate_crystals()) == len(SILICATES)
    assert silicate_crystals({"Si", "O"}) == {}
    # the pure SiO2 selection is unchanged
    assert set(silica_crystals()) == set(PHASES)


def test_unknown_silicate():
    with pytest.raises(KeyError, match="forsterite"):
        build_silicate("olivine")


def test_cluster_species_filter_keeps_the_oxygens_no_other_cation_bonds_to():
    """``sites_with_cluster_species`` (``build_site_dataset.py --cluster-species O Si``) keeps an O exactly when no
    atom but O and Si lies within the bond cut-off of the O or of the Si atoms it bonds to (checked here with ASE's
    neighbour list on the cell, not through clusters); forsterite's Mg–O bonds (2.07–2.21 Å) are longer than the
    cut-off, jadeite's Al–O (1.93 Å) are not."""
    from specguide.sites.clusters import BOND_CUTOFF as cut
    from specguide.sites.clusters import sites_with_cluster_species

    for name, expected in (("forsterite", "all"), ("jadeite", "none"), ("enstatite", "some")):
        atoms = build_silicate(name)
        oxygens = np.flatnonzero(atoms.numbers == 8)
        kept = sites_with_cluster_species(atoms, oxygens, {8, 14})
        i, j = neighbor_list("ij", atoms, cut)
        bonded = [set(j[i == k].tolist()) for k in range(len(atoms))]
        reference = []
        for o in oxygens:  # 3 bonded shells: the O, its neighbours, theirs, and theirs
            shell, seen = {int(o)}, {int(o)}
            for _ in range(3):
                shell = set().union(*(bonded[a] for a in shell)) - seen
                seen |= shell
            reference.append(set(atoms.numbers[list(seen)].tolist()) <= {8, 14})
        assert kept.tolist() == oxygens[np.array(reference, dtype=bool)].tolist()
        fraction = len(kept) / len(oxygens)
        assert {"all": fraction == 1.0, "none": fraction == 0.0, "some": 0.0 < fraction < 1.0}[expected], name
        assert sites_with_cluster_species(atoms, oxygens, None).tolist() == oxygens.tolist()
