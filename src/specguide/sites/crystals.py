"""Si–O crystals built with ``ase.spacegroup.crystal`` from published crystallographic data, and their checks.

Every builder is validated by :func:`validate_silica` (Si four-fold at 1.55–1.70 Å, six-fold at 1.75–1.82 Å
for stishovite and 1.70–1.90 Å for seifertite; every O bonded to the expected number of Si; density within 2 %
of the literature value).
Structures whose published data we could not reproduce reliably (β-cristobalite, tridymite, keatite,
moganite) are not included; :data:`REJECTED` says why.
"""

from __future__ import annotations

from dataclasses import dataclass

import ase
import numpy as np
from ase.spacegroup import crystal

from specguide.structure import density_g_cm3


@dataclass(frozen=True)
class SilicaPhase:
    """A published Si–O crystal structure: space group, cell (Å, degrees), fractional basis, literature density."""

    name: str
    spacegroup: int
    cell: tuple[float, float, float, float, float, float]
    basis: tuple[tuple[float, float, float], ...]
    symbols: tuple[str, ...]
    density_g_cm3: float
    si_cn: int
    bond_range: tuple[float, float]
    reference: str


PHASES: dict[str, SilicaPhase] = {
    p.name: p
    for p in [
        SilicaPhase(
            "alpha-quartz",
            154,
            (4.9134, 4.9134, 5.4052, 90, 90, 120),
            ((0.4697, 0.0, 2 / 3), (0.4135, 0.2669, 0.1191 + 2 / 3)),  # Levien's z shifted to the ITA origin
            ("Si", "O"),
            2.648,
            4,
            (1.55, 1.70),
            "Levien, Prewitt & Weidner, Am. Mineral. 65, 920 (1980)",
        ),
        SilicaPhase(
            "beta-quartz",
            180,
            (4.9965, 4.9965, 5.4570, 90, 90, 120),
            ((0.5, 0.0, 0.0), (0.2083, 0.4166, 0.5)),
            ("Si", "O"),
            2.533,
            4,
            (1.55, 1.70),
            "Wright & Lehmann, J. Solid State Chem. 36, 371 (1981), 600 °C",
        ),
        SilicaPhase(
            "alpha-cristobalite",
            92,
            (4.9717, 4.9717, 6.9223, 90, 90, 90),
            ((0.3003, 0.3003, 0.0), (0.2392, 0.1044, 0.1787)),
            ("Si", "O"),
            2.334,
            4,
            (1.55, 1.70),
            "Downs & Palmer, Am. Mineral. 79, 9 (1994)",
        ),
        SilicaPhase(
            "stishovite",
            136,
            (4.1772, 4.1772, 2.6651, 90, 90, 90),
            ((0.0, 0.0, 0.0), (0.3062, 0.3062, 0.0)),
            ("Si", "O"),
            4.287,
            6,
            (1.75, 1.82),
            "Ross, Shu, Hazen & Gasparik, Am. Mineral. 75, 739 (1990)",
        ),
        SilicaPhase(
            "coesite",
            15,
            (7.1356, 12.3692, 7.1736, 90, 120.34, 90),
            (
                (0.14033, 0.10833, 0.07227),
                (0.50682, 0.15799, 0.54077),
                (0.0, 0.0, 0.0),
                (0.5, 0.1163, 0.75),
                (0.2660, 0.1234, 0.9401),
                (0.3114, 0.1038, 0.3282),
                (0.0172, 0.2117, 0.4782),
            ),
            ("Si", "Si", "O", "O", "O", "O", "O"),
            2.921,
            4,
            (1.55, 1.70),
            "Levien & Prewitt, Am. Mineral. 66, 324 (1981), 1 atm (AMCSD 0000816)",
        ),
        SilicaPhase(
            "seifertite",
            60,
            (4.097, 5.0462, 4.4946, 90, 90, 90),
            ((0.0, 0.1522, 0.25), (0.7336, 0.6245, 0.9186)),
            ("Si", "O"),
            4.295,
            6,
            (1.70, 1.90),
            "Dera, Prewitt, Boctor & Hemley, Am. Mineral. 87, 1018 (2002) (AMCSD 0002871)",
        ),
    ]
}

REJECTED: dict[str, str] = {
    "beta-cristobalite": "idealised Fd-3m model: linear Si–O–Si, Si–O 1.545 Å < 1.55 Å (the real phase is disordered)",
    "tridymite": (
        "idealised P6₃/mmc high-tridymite: linear Si–O–Si, Si–O 1.546–1.555 Å < 1.55 Å; the C222₁ average structure"
        " of Lee & Xu, Acta Cryst. B75 (2019) gives Si–O 1.551–1.559 Å (apparent shortening of a high-temperature"
        " average), not a site geometry"
    ),
    "keatite": "no reliable published coordinates at hand",
    "moganite": "no reliable published coordinates at hand",
}


def build_phase(name: str) -> ase.Atoms:
    """The conventional cell of a published Si–O phase (see :data:`PHASES`) as periodic ``ase.Atoms``."""
    if name not in PHASES:
        raise KeyError(f"unknown Si–O phase {name!r}; choose one of {sorted(PHASES)}")
    p = PHASES[name]
    atoms = crystal(list(p.symbols), list(p.basis), spacegroup=p.spacegroup, cellpar=list(p.cell), primitive_cell=False)
    atoms.info["material"] = name
    return atoms


def si_o_bonds(atoms: ase.Atoms, cutoff: float = 2.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Si–O pairs within ``cutoff`` Å (periodic): (Si index, O index, distance Å), one row per bond."""
    from ase.neighborlist import neighbor_list

    i, j, d = neighbor_list("ijd", atoms, cutoff)
    keep = (atoms.numbers[i] == 14) & (atoms.numbers[j] == 8)
    return i[keep], j[keep], d[keep]


def bond_report(
    atoms: ase.Atoms, si: np.ndarray, o: np.ndarray, d: np.ndarray, density: float
) -> tuple[dict, np.ndarray, np.ndarray]:
    """What the validators check, from the Si–O bonds ``(si, o, d)`` (indices, Å): the sets of Si and O
    coordination numbers, the shortest and longest bond (Å), the density (g/cm³) and its relative error against
    ``density``; also the coordination number of every Si and of every O."""
    si_cn = np.bincount(si, minlength=len(atoms))[atoms.numbers == 14]
    o_cn = np.bincount(o, minlength=len(atoms))[atoms.numbers == 8]
    rho = density_g_cm3(atoms)
    report = dict(
        si_cn=sorted(set(si_cn.tolist())),
        o_cn=sorted(set(o_cn.tolist())),
        bond_min=float(d.min()) if d.size else float("nan"),
        bond_max=float(d.max()) if d.size else float("nan"),
        density=rho,
        density_error=rho / density - 1.0,
    )
    return report, si_cn, o_cn


def validate_silica(atoms: ase.Atoms, phase: SilicaPhase) -> dict:
    """Coordination, bond lengths and density of ``atoms`` against ``phase``; ``ok`` says whether all pass."""
    si, o, d = si_o_bonds(atoms)
    report, si_cn, o_cn = bond_report(atoms, si, o, d, phase.density_g_cm3)
    o_expected = phase.si_cn // 2
    lo, hi = phase.bond_range
    report["ok"] = bool(
        d.size
        and (si_cn == phase.si_cn).all()
        and (o_cn == o_expected).all()
        and lo <= d.min()
        and d.max() <= hi
        and abs(report["density_error"]) <= 0.02
    )
    return report


def silica_crystals() -> dict[str, ase.Atoms]:
    """Every phase of :data:`PHASES` that passes :func:`validate_silica` (all of them, as bundled)."""
    out = {}
    for name, phase in PHASES.items():
        atoms = build_phase(name)
        if validate_silica(atoms, phase)["ok"]:
            out[name] = atoms
    return out
