"""Potential energy per atom (eV) with the classical potentials shipped with LAMMPS, as a realism check.

The potential, its file and the LAMMPS instance come from :mod:`specguide.data.md` (Tersoff Si and C,
Munetoh Si–O, Mendelev Cu–Zr; :func:`~specguide.data.md.resolve_potential`), so a structure scores with the same
force field that made the MD reference. Diamond Si with Tersoff (Si(B)): −4.63 eV/atom.

LAMMPS runs in a separate (spawned) process: once its MPI runtime is loaded into a process, freud's Voronoi
tessellation in the same process crashes (segmentation fault, measured with lammps 2025.7 and freud 3.4).
"""

from __future__ import annotations

from collections.abc import Sequence

import ase
import numpy as np

from specguide.simulate.lammps import force_field_commands, new_lammps, resolve_potential


def _energy_in_this_process(atoms: ase.Atoms, potential: str | None = None, relax: bool = False) -> float:
    from ase.calculators.lammps import Prism, convert  # noqa: F401  (convert: unit helpers of the same module)

    symbols = sorted(set(atoms.get_chemical_symbols()))
    spec = resolve_potential(symbols, potential)
    prism = Prism(np.asarray(atoms.cell[:]))
    xhi, yhi, zhi, xy, xz, yz = (float(v) for v in prism.get_lammps_prism())
    positions = prism.vector_to_lammps(atoms.get_positions(wrap=True), wrap=True)
    types = [symbols.index(s) + 1 for s in atoms.get_chemical_symbols()]
    lmp = new_lammps()
    try:
        lmp.commands_list(["units metal", "atom_style atomic", "atom_modify map array", "boundary p p p",
                           f"region box prism 0 {xhi!r} 0 {yhi!r} 0 {zhi!r} {xy!r} {xz!r} {yz!r} units box",
                           f"create_box {len(symbols)} box"])  # fmt: skip
        lmp.create_atoms(len(atoms), list(range(1, len(atoms) + 1)), types, np.ravel(positions).tolist())
        lmp.commands_list(force_field_commands(spec, symbols))
        lmp.command("run 0")
        if relax:
            lmp.command("minimize 1.0e-8 1.0e-10 10000 100000")
        energy = float(lmp.get_thermo("pe"))
    finally:
        lmp.close()
    return energy / len(atoms)


def _energies_worker(structures: list[ase.Atoms], potential: str | None, relax: bool) -> list[float]:
    return [_energy_in_this_process(a, potential, relax) for a in structures]


def energies(structures: Sequence[ase.Atoms], potential: str | None = None, relax: bool = False) -> np.ndarray:
    """Potential energy per atom (eV) of every structure (one spawned LAMMPS process for all); ``relax=True``
    minimises each first (fixed cell). Raises ``ValueError`` when no shipped potential covers the species."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    structures = list(structures)
    resolve_potential(sorted({s for a in structures for s in a.get_chemical_symbols()}), potential)  # fail early
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return np.array(pool.submit(_energies_worker, structures, potential, relax).result())


def energy_per_atom(atoms: ase.Atoms, potential: str | None = None, relax: bool = False) -> float:
    """Potential energy per atom (eV) of one periodic structure (see :func:`energies`)."""
    return float(energies([atoms], potential, relax)[0])
