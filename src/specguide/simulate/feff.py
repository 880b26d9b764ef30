"""Per-site K-edge XANES and EXAFS spectra with FEFF10 (the ``feff10-rs`` package, import name ``feff10``).

:func:`absorber_cluster` cuts a non-periodic, absorber-centred cluster from a (periodic) structure;
:func:`site_spectra` runs FEFF once per absorbing site, one process per site across cores (FEFF does not
thread), each run in its own temporary directory, and caches every site's raw FEFF output on disk under a
hash of the cluster and the FEFF settings, so an interrupted run resumes and a repeat costs nothing.

Spectra (see :class:`FeffSettings` for the FEFF cards):

- ``kind="xanes"``: ``mu(E)`` on a grid of ``E − E_F`` in eV, ``E_F`` FEFF's Fermi level (the absorption
  onset; FEFF's "Mu" in the xmu.dat header, where its k = 0). Normalised the FEFF way, which is the usual
  edge-step normalisation: ``mu`` is divided by the atomic (embedded-atom) background ``mu0`` at 50 eV above
  the edge, so the post-edge region oscillates about 1.
- ``kind="exafs"``: ``k² chi(k)`` (Å⁻²) on a grid of photo-electron wavenumber k in Å⁻¹ (FEFF's k, measured
  from E_F), no Debye–Waller damping unless ``FeffSettings.sig2`` > 0 (structural disorder of the input
  snapshot is all there is).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import ase
import numpy as np

from specguide.executors import ExecutorConfig, run_tasks

# Default grids. XANES: E − E_F in eV. EXAFS: k in Å⁻¹ (both ends included).
XANES_GRID_EV: np.ndarray = np.linspace(-10.0, 40.0, 100)
EXAFS_GRID_K: np.ndarray = np.round(np.linspace(2.0, 12.0, 201), 6)

# E (eV) = HBAR2_2M * k² (k in Å⁻¹): ħ²/2mₑ = 3.80998 eV Å².
HBAR2_2M = 3.80998212


class FeffSiteError(RuntimeError):
    """FEFF failed (twice) for one absorbing site; the message names the structure index and the site."""


@dataclass(frozen=True)
class FeffSettings:
    """FEFF cards for K-edge spectra. Radii in Å, k in Å⁻¹, σ² in Å².

    XANES: full multiple scattering within ``fms_radius`` (``FMS``), self-consistent potentials within
    ``scf_radius`` (``SCF``; ``None`` = overlapped atomic potentials), final-state-rule core hole
    (``COREHOLE FSR``), energies up to ``xanes_kmax`` above E_F (4 Å⁻¹ ≈ 61 eV).
    EXAFS: path expansion (``EXAFS``, ``RPATH``, ``NLEG``) with non-SCF potentials by default (the usual
    choice for EXAFS), ``sig2`` a global Debye–Waller σ² (0: none).
    ``extra_cards`` are appended verbatim (e.g. ``("EXCHANGE 0 0.0 0.5",)`` for 0.5 eV extra broadening).
    """

    xanes_scf_radius: float | None = 4.0
    xanes_fms_radius: float = 5.0
    xanes_kmax: float = 4.0
    exafs_scf_radius: float | None = None
    exafs_rpath: float = 5.0
    exafs_kmax: float = 14.0
    exafs_nleg: int = 4
    sig2: float = 0.0
    corehole: str = "FSR"
    extra_cards: tuple[str, ...] = ()

    def cards(self, kind: str) -> list[str]:
        """FEFF cards (besides EDGE, S02, POTENTIALS, ATOMS) for ``kind`` 'xanes' or 'exafs'."""
        cards = [f"COREHOLE {self.corehole}"]
        if kind == "xanes":
            cards += [f"XANES {self.xanes_kmax:g} 0.07 0.0", f"FMS {self.xanes_fms_radius:g} 0", "RPATH 0.1"]
            scf = self.xanes_scf_radius
        else:
            cards += [
                f"EXAFS {self.exafs_kmax:g}",
                f"RPATH {self.exafs_rpath:g}",
                f"NLEG {self.exafs_nleg:d}",
                f"SIG2 {self.sig2:g}",
            ]
            scf = self.exafs_scf_radius
        if scf is not None:
            cards.append(f"SCF {scf:g} 0 30 0.1 1")
        return cards + list(self.extra_cards)


DEFAULT_SETTINGS = FeffSettings()
# About half the XANES cost of the defaults (FMS 4.5 Å, SCF 3.5 Å); see data/defaults/FEFF.md for the difference.
FAST_SETTINGS = FeffSettings(xanes_scf_radius=3.5, xanes_fms_radius=4.5)

# FEFF modules needed for K-edge XANES/EXAFS with an FSR (or no) core hole: skipping the others (DMDW, LDOS,
# SCREEN, CRPA, OPCONSAT, SFCONV, COMPTON, EELS, RHORRP) gives identical xmu.dat/chi.dat and saves ~0.5 s CPU
# per site (each module runs in its own Python worker process). An RPA core hole needs SCREEN: all modules run.
_STAGES = ("rdinp", "atomic", "pot", "xsph", "fms", "mkgtr", "path", "genfmt", "ff2x")


# --------------------------------------------------------------------------------------------------
# clusters
# --------------------------------------------------------------------------------------------------


def absorber_cluster(structure: ase.Atoms, site: int, radius: float = 6.0) -> ase.Atoms:
    """Non-periodic cluster of all atoms (periodic images included) within ``radius`` Å of atom ``site``,
    absorber first and at the origin, the rest sorted by distance; works for cells smaller than 2·radius
    (uses periodic images), and for non-periodic input. ``info['site']`` is the site's index."""
    n = len(structure)
    if not -n <= site < n:
        raise IndexError(f"site {site} out of range for a structure of {n} atoms")
    site = site % n
    if not radius > 0:
        raise ValueError(f"cluster radius must be > 0 Å, got {radius}")
    positions = structure.positions
    pbc = np.asarray(structure.pbc, dtype=bool)
    cell = structure.cell[:]
    if pbc.any():
        import torch

        from specguide.graph import perpendicular_widths

        if abs(np.linalg.det(cell)) < 1e-9:
            raise ValueError("periodic structure has a zero-volume cell; give a 3D cell or set pbc=False")
        widths = perpendicular_widths(torch.as_tensor(cell[None], dtype=torch.float64))[0].numpy()
        reach = np.where(pbc, np.ceil(radius / widths).astype(int) + 1, 0)
        ranges = [np.arange(-m, m + 1) for m in reach]
        shifts = np.stack(np.meshgrid(*ranges, indexing="ij"), axis=-1).reshape(-1, 3) @ cell  # [n_img, 3]
        # wrap periodic directions so that every atom lies in the same cell image as the absorber's frame
        frac = np.linalg.solve(cell.T, (positions - positions[site]).T).T
        frac = np.where(pbc, frac - np.round(frac), frac)
        rel = frac @ cell  # [n, 3], minimum-image-ish displacement from the absorber
        disp = (rel[None, :, :] + shifts[:, None, :]).reshape(-1, 3)
        numbers = np.tile(structure.numbers, len(shifts))
    else:
        disp = positions - positions[site]
        numbers = structure.numbers.copy()
    dist = np.linalg.norm(disp, axis=1)
    keep = dist <= radius
    disp, numbers, dist = disp[keep], numbers[keep], dist[keep]
    order = np.lexsort((disp[:, 2], disp[:, 1], disp[:, 0], dist))
    disp, numbers, dist = disp[order], numbers[order], dist[order]
    if dist[0] > 1e-8:
        raise AssertionError("absorber missing from its own cluster")  # cannot happen: distance 0 is kept
    disp[0] = 0.0
    cluster = ase.Atoms(numbers=numbers, positions=disp, pbc=False)
    cluster.info["site"] = int(site)
    return cluster


def cluster_hash(cluster: ase.Atoms, kind: str, settings: FeffSettings) -> str:
    """Hash of the cluster (absorber first; positions rounded to 1e-4 Å, order-independent beyond the
    absorber), ``kind``, the settings and the feff10 version: the cache key of one site."""
    import feff10

    rows = np.column_stack([cluster.numbers, np.round(cluster.positions, 4)])
    rest = rows[1:][np.lexsort(rows[1:].T[::-1])]
    payload = json.dumps(
        {
            "absorber": int(cluster.numbers[0]),
            "kind": kind,
            "settings": dataclasses.asdict(settings),
            "feff10": feff10.__version__,
        },
        sort_keys=True,
    ).encode()
    h = hashlib.sha256(payload)
    h.update(np.ascontiguousarray(rest + 0.0).tobytes())  # + 0.0 turns -0.0 into 0.0
    return h.hexdigest()[:32]


# --------------------------------------------------------------------------------------------------
# one FEFF run
# --------------------------------------------------------------------------------------------------


def feff_input(cluster: ase.Atoms, kind: str, settings: FeffSettings = DEFAULT_SETTINGS):
    """``feff10.FeffInput`` for the K edge of the cluster's first atom (ipot 0); one potential per
    element for the other atoms."""
    import feff10
    from ase.data import chemical_symbols

    numbers = cluster.numbers
    species = sorted(set(numbers[1:].tolist()))
    ipot = {z: k + 1 for k, z in enumerate(species)}
    potentials = [feff10.Potential(0, int(numbers[0]), chemical_symbols[numbers[0]])]
    potentials += [feff10.Potential(ipot[z], int(z), chemical_symbols[z]) for z in species]
    atoms = [
        feff10.Atom(
            x=float(p[0]),
            y=float(p[1]),
            z=float(p[2]),
            ipot=0 if k == 0 else ipot[int(z)],
            tag=chemical_symbols[z],
        )
        for k, (p, z) in enumerate(zip(cluster.positions, numbers, strict=True))
    ]
    return feff10.FeffInput(
        title=[f"specguide {kind} K edge of {chemical_symbols[numbers[0]]}"],
        edge="K",
        s02=1.0,
        potentials=potentials,
        atoms=atoms,
        other_cards=settings.cards(kind),
    )


@contextlib.contextmanager
def _redirect_fds(path: Path):
    """Send this process's (and its children's) stdout/stderr file descriptors to ``path``."""
    import sys

    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(path, "ab") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def _fermi_level(header: list[str]) -> float | None:
    for line in header:
        if "Mu=" in line:
            token = line.split("Mu=", 1)[1].split("eV", 1)[0]
            with contextlib.suppress(ValueError):
                return float(token)
    return None


def _run_feff(cluster: ase.Atoms, kind: str, settings: FeffSettings) -> tuple[np.ndarray, np.ndarray]:
    """Run FEFF for one cluster in a temporary directory; return the raw spectrum ``(x, y)``:
    XANES ``(E − E_F in eV, normalised mu)``, EXAFS ``(k in Å⁻¹, chi)``. Raises on failure."""
    import feff10

    work = Path(tempfile.mkdtemp(prefix="specguide-feff-"))
    try:
        inp = feff_input(cluster, kind, settings)
        try:
            with _redirect_fds(work / "stdout.log"):
                stages = None if settings.corehole.upper() == "RPA" else [feff10.Stage.from_name(n) for n in _STAGES]
                result = feff10.FeffPipeline(feff10.FeffConfig(str(work / "run"), inp, stages=stages)).run()
        except Exception as exc:
            tail = ""
            log = work / "stdout.log"
            if log.exists():
                lines = [s for s in log.read_text(errors="replace").splitlines() if s.strip()]
                tail = " | ".join(lines[-4:])
            raise RuntimeError(f"{type(exc).__name__}: {exc}; FEFF log tail: {tail}") from None
        if kind == "xanes":
            table = result.read_xmu()
            cols = np.asarray(table.columns, dtype=np.float64)  # omega, e, k, mu, mu0, chi
            e_f = _fermi_level(table.header)
            e, k = cols[1], cols[2]
            x = e - e_f if e_f is not None else np.sign(k) * HBAR2_2M * k**2
            y = cols[3]
        else:
            table = result.read_chi()
            cols = np.asarray(table.columns, dtype=np.float64)  # k, chi, mag, phase
            x, y = cols[0], cols[1]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if x.size < 2 or not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise RuntimeError(f"FEFF returned an empty or non-finite {kind} spectrum ({x.size} points)")
    order = np.argsort(x, kind="stable")
    return x[order], y[order]


def _site_job(job: dict) -> dict:
    """Worker: run FEFF for one site, retrying once; return the raw spectrum or the error text."""
    import resource

    def cpu() -> float:  # FEFF's stages run in child processes of this one
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        return usage.ru_utime + usage.ru_stime

    t0, c0 = time.perf_counter(), cpu()
    errors = []
    for _attempt in range(2):
        try:
            x, y = _run_feff(job["cluster"], job["kind"], job["settings"])
            break
        except Exception as exc:  # FEFF failures are reported to the caller with the site's name
            errors.append(str(exc))
    else:
        x = y = None
    timing = dict(seconds=time.perf_counter() - t0, cpu_seconds=cpu() - c0, n_atoms=len(job["cluster"]))
    return dict(key=job["key"], x=x, y=y, error=errors[-1] if x is None else None, **timing)


# --------------------------------------------------------------------------------------------------
# the public driver
# --------------------------------------------------------------------------------------------------


def _load_cached(path: Path) -> tuple[np.ndarray, np.ndarray] | None:
    if not path.is_file():
        return None
    try:
        with np.load(path) as z:
            return z["x"].astype(np.float64), z["y"].astype(np.float64)
    except Exception:  # a truncated or foreign file: recompute it
        return None


def _save_cached(path: Path, x: np.ndarray, y: np.ndarray, meta: dict) -> None:
    from specguide.io import write_atomically

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            np.savez(handle, x=x, y=y, meta=json.dumps(meta, sort_keys=True))

    write_atomically(path, write)


def _on_grid(x: np.ndarray, y: np.ndarray, grid: np.ndarray, kind: str) -> np.ndarray:
    """Interpolate a raw FEFF spectrum onto ``grid``. XANES below FEFF's first energy (a few eV under E_F)
    takes the first value: FEFF's K-edge mu has no pre-edge background and is ≈ 0 there."""
    low_ok = kind == "xanes" and abs(y[0]) <= 0.05 * np.abs(y).max()
    if (grid[0] < x[0] - 1e-6 and not low_ok) or grid[-1] > x[-1] + 1e-6:
        unit = "eV" if kind == "xanes" else "Å⁻¹"
        fix = "xanes_kmax" if kind == "xanes" else "exafs_kmax"
        raise ValueError(
            f"grid {grid[0]:g}..{grid[-1]:g} {unit} exceeds FEFF's {kind} range {x[0]:.3g}..{x[-1]:.3g} {unit}; "
            f"narrow the grid or raise FeffSettings.{fix}"
        )
    values = np.interp(grid, x, y)
    if kind == "exafs":
        values = values * grid**2
    return values


def site_spectra(
    structures: Sequence[ase.Atoms],
    sites: Sequence[Sequence[int]] | None = None,
    *,
    absorber: str,
    kind: Literal["xanes", "exafs"] = "xanes",
    grid: np.ndarray | None = None,
    cluster_radius: float = 6.0,
    workers: int | None = None,
    cache_dir: str | Path | None = None,
    progress: bool = True,
    settings: FeffSettings | None = None,
    timings: list[dict] | None = None,
    executor: ExecutorConfig | None = None,
) -> list[np.ndarray]:
    """K-edge spectra of absorbing sites with FEFF10: per structure, a float32 array ``[n_sites, len(grid)]``.

    ``sites``: per structure, atom indices (each must be an ``absorber`` atom); None = every atom of element
    ``absorber``. ``kind='xanes'``: normalised mu(E) (post-edge → 1, FEFF's division by the atomic background
    at E_F + 50 eV) on ``grid`` = E − E_F in eV (default :data:`XANES_GRID_EV`); ``kind='exafs'``: k²·chi(k) in
    Å⁻² on ``grid`` = k in Å⁻¹ (default :data:`EXAFS_GRID_K`). Clusters: :func:`absorber_cluster` with
    ``cluster_radius`` Å. One process per site (``workers``, default ``os.cpu_count()``; 1 runs in this
    process), each FEFF run in its own temporary directory; a failing site is retried once, then
    :class:`FeffSiteError` names the structure index and site. ``cache_dir``: one ``.npz`` per (cluster,
    settings) hash holding FEFF's raw spectrum (so any grid reuses it); existing entries are not recomputed.
    ``settings``: FEFF cards (:class:`FeffSettings`). ``timings``: if a list, gets one dict per FEFF run made
    (``seconds`` wall, ``cpu_seconds`` of FEFF's processes, ``n_atoms`` in the cluster, ``structure``, ``site``).
    ``executor``: where the sites run (:class:`~specguide.executors.ExecutorConfig`: local processes, a Dask
    cluster or a batch queue; default local, ``workers`` processes); each site's result is cached as it arrives.
    """
    from ase.data import atomic_numbers

    settings = settings or DEFAULT_SETTINGS
    if kind not in ("xanes", "exafs"):
        raise ValueError(f"kind must be 'xanes' or 'exafs', got {kind!r}")
    if absorber not in atomic_numbers:
        raise ValueError(f"unknown absorber element {absorber!r}; give a symbol such as 'C', 'O' or 'Si'")
    z_abs = atomic_numbers[absorber]
    if grid is None:
        grid = XANES_GRID_EV if kind == "xanes" else EXAFS_GRID_K
    grid = np.asarray(grid, dtype=np.float64)
    if grid.ndim != 1 or grid.size == 0:
        raise ValueError(f"grid must be a non-empty 1D array, got shape {grid.shape}")
    if not np.isfinite(grid).all() or (np.diff(grid) <= 0).any():
        raise ValueError("grid must be finite and strictly increasing")
    if isinstance(structures, ase.Atoms):
        structures = [structures]
    if sites is not None and len(sites) != len(structures):
        raise ValueError(f"sites has {len(sites)} entries for {len(structures)} structures; give one list each")

    # clusters and cache keys (cheap, in this process)
    per_structure: list[list[str]] = []
    jobs: dict[str, dict] = {}
    names: dict[str, tuple[int, int]] = {}
    for s, atoms in enumerate(structures):
        if sites is None:
            chosen = np.flatnonzero(atoms.numbers == z_abs)
            if chosen.size == 0:
                raise ValueError(f"structure {s} ({atoms.get_chemical_formula()}) has no {absorber} atoms")
        else:
            chosen = np.asarray(list(sites[s]), dtype=int)
            bad = chosen[(chosen < 0) | (chosen >= len(atoms))]
            if bad.size:
                raise IndexError(
                    f"structure {s}: site {int(bad[0])} out of range (the structure has {len(atoms)} atoms)"
                )
            wrong = chosen[atoms.numbers[chosen] != z_abs]
            if wrong.size:
                raise ValueError(
                    f"structure {s}: site {int(wrong[0])} is {atoms[int(wrong[0])].symbol}, not the absorber {absorber}"
                )
        keys = []
        for site in chosen.tolist():
            cluster = absorber_cluster(atoms, site, cluster_radius)
            key = cluster_hash(cluster, kind, settings)
            keys.append(key)
            names.setdefault(key, (s, site))
            jobs.setdefault(key, dict(key=key, cluster=cluster, kind=kind, settings=settings))
        per_structure.append(keys)

    cache = Path(cache_dir) if cache_dir is not None else None
    raw: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    if cache is not None:
        for key in jobs:
            hit = _load_cached(cache / f"{key}.npz")
            if hit is not None:
                raw[key] = hit
    todo = [jobs[k] for k in jobs if k not in raw]

    def collect(result: dict) -> None:  # in this process, as each site arrives: the cache grows site by site
        key = result["key"]
        if result["error"] is not None:
            s, site = names[key]
            raise FeffSiteError(
                f"FEFF failed twice for structure {s}, site {site} ({absorber} {kind}): {result['error']}"
            )
        raw[key] = (result["x"], result["y"])
        s, site = names[key]
        if timings is not None:
            timings.append(
                {k: result[k] for k in ("seconds", "cpu_seconds", "n_atoms")} | {"structure": s, "site": site}
            )
        if cache is not None:
            timing = {k: result[k] for k in ("seconds", "cpu_seconds", "n_atoms")}
            meta = dict(kind=kind, settings=dataclasses.asdict(settings), example=[s, site], **timing)
            _save_cached(cache / f"{key}.npz", result["x"], result["y"], meta)

    bar = _ProgressBar(progress, f"FEFF {absorber} K-edge {kind}", len(jobs), done=len(jobs) - len(todo))

    def arrived(_: int, result: dict) -> None:
        collect(result)
        bar.advance()

    # local: fork is cheap (no re-import); the pool's processes start at submit, before the progress thread
    run_tasks(_site_job, todo, executor or ExecutorConfig(workers=workers), default_workers=os.cpu_count() or 1,
              on_result=arrived, watch=bar)  # fmt: skip

    return [
        np.stack([_on_grid(*raw[k], grid, kind) for k in keys]).astype(np.float32)
        if keys
        else np.zeros((0, grid.size), np.float32)
        for keys in per_structure
    ]


class _ProgressBar:
    """A rich progress bar (or nothing) as a reusable context: entered when the work starts, ``advance()`` per site."""

    def __init__(self, enabled: bool, description: str, total: int, done: int = 0):
        self.enabled, self.description, self.total, self.done = enabled, description, total, done
        self.bar = self.task = None

    def __call__(self) -> _ProgressBar:
        return self

    def __enter__(self) -> _ProgressBar:
        if self.enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            columns = TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()
            self.bar = Progress(*columns).__enter__()
            self.task = self.bar.add_task(self.description, total=self.total, completed=self.done)
        return self

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.__exit__(*exc)
            self.bar = None

    def advance(self) -> None:
        if self.bar is not None:
            self.bar.advance(self.task)


def append_timings(cache_dir: str | Path, timings: list[dict]) -> str:
    """Add new FEFF run timings to ``<cache_dir>/timings.json``; returns a one-line summary (CPU and wall s)."""
    log = Path(cache_dir) / "timings.json"
    old = json.loads(log.read_text()) if log.is_file() else []
    log.write_text(json.dumps(old + list(timings)))
    if not timings:
        return "no new FEFF runs"
    cpu = np.array([t["cpu_seconds"] for t in timings])
    wall = np.array([t["seconds"] for t in timings])
    return (f"{len(timings)} new FEFF runs: CPU {cpu.mean():.2f} s/site (median {np.median(cpu):.2f}), "
            f"wall {wall.mean():.2f} s/site")  # fmt: skip
