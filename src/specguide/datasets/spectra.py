"""Per-atom spectra paired with structures: the training data of spectrum surrogates.

Three layouts are read (one structure per file; spectra are one row per atom, in the structure's atom order):

- **text matrices** paired with structure files by name: ``structures/<name>.vasp`` (any ASE format) with
  ``spectra/<name>.txt`` (whitespace) or ``spectra/<name>.csv`` (commas; a header row of column indices
  0…G−1 is skipped), as in the a-C XANES set of Kwon et al. (``xanes/<name>.txt``, ``diamond.csv``);
- **extxyz** with a per-atom array (``spectrum``, ``xanes`` or ``exafs`` — or name it with ``key``); atoms
  without a spectrum carry NaN rows;
- **npz** beside the structure (same stem): ``spectra [n_rows, G]`` and optionally ``sites [n_rows]``
  (atom indices; default all atoms, or the absorber's atoms when ``n_rows`` equals their number) and
  ``grid [G]``.

A matrix has either one row per atom or one row per atom of the absorbing species (in order). Mismatched atom
counts, grids of different lengths, NaN values or unpaired files raise :class:`~specguide.io.InputError`
naming the file.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import ase
import numpy as np
from ase.data import atomic_numbers, chemical_symbols

from specguide.io import InputError, read_structures

STRUCTURE_SUFFIXES = (".vasp", ".poscar", ".extxyz", ".xyz", ".cif", ".traj", ".data", ".lmp")
SPECTRUM_SUFFIXES = (".txt", ".dat", ".csv", ".npz")
ARRAY_KEYS = ("spectrum", "xanes", "exafs")


@dataclass
class SpectraDataset:
    """Structures with per-site spectra.

    ``spectra[k]`` is ``[len(sites[k]), G]`` (float32) for the atoms ``sites[k]`` of ``structures[k]``;
    ``grid`` is the common energy / k grid when a file gave one (else ``None``); ``names`` identify the files.
    """

    structures: list[ase.Atoms]
    spectra: list[np.ndarray]
    sites: list[np.ndarray]
    names: list[str]
    grid: np.ndarray | None = None
    sources: list[str] = field(default_factory=list)

    @property
    def n_grid(self) -> int:
        return int(self.spectra[0].shape[1])

    def __len__(self) -> int:
        return len(self.structures)

    def scale_outliers(self, factor: float = 10.0) -> list[str]:
        """One message per file whose spectra are ``factor`` times stronger or weaker than the rest (median norm
        of its sites' spectra against the median over all files): usually a file normalised another way, which
        the surrogate would learn as structure and which makes relative errors meaningless."""
        medians = np.array([float(np.median(np.linalg.norm(s, axis=1))) if len(s) else np.nan for s in self.spectra])
        typical = float(np.nanmedian(medians))
        messages = []
        for k, median in enumerate(medians):
            if typical > 0 and np.isfinite(median) and not typical / factor <= median <= typical * factor:
                where = self.sources[k] if k < len(self.sources) else self.names[k]
                messages.append(
                    f"{where}: its spectra are {median / typical:.3g}× the others' (median norm {median:.3g} vs "
                    f"{typical:.3g}); normalised differently? Rescale the file or leave it out"
                )
        return messages


def _expand(paths: str | Path | Sequence[str | Path], suffixes: tuple[str, ...], what: str) -> list[Path]:
    if isinstance(paths, (str, Path)):
        paths = [paths]
    files: list[Path] = []
    for item in paths:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in suffixes)
            if not found:
                raise InputError(f"{path}: no {what} files ({', '.join(suffixes)}) in this directory")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise InputError(f"{path}: no such file or directory; check the {what} path")
    return files


def read_matrix(path: Path, n_atoms: int | None = None) -> np.ndarray:
    """A numeric matrix, whitespace- or comma-separated; a leading header row (text, or the column indices
    0…G−1 of a CSV) is skipped."""
    rows: list[list[float]] = []
    with open(path) as handle:
        for number, line in enumerate(handle, start=1):
            text = line.split("#", 1)[0].strip()
            if not text:
                continue
            try:
                rows.append([float(v) for v in text.replace(",", " ").split()])
            except ValueError:
                if rows:
                    raise InputError(f"{path}: line {number} is not numeric: {line.strip()[:60]!r}") from None
                continue  # text header
    if not rows:
        raise InputError(f"{path}: no numeric data found")
    widths = {len(r) for r in rows}
    if len(widths) != 1:
        raise InputError(f"{path}: rows have different lengths {sorted(widths)}; every atom needs the same grid")
    matrix = np.asarray(rows, dtype=np.float64)
    header = np.arange(matrix.shape[1], dtype=np.float64)
    if len(matrix) > 1 and (np.array_equal(matrix[0], header) or np.array_equal(matrix[0], header + 1)):
        if n_atoms is None or len(matrix) == n_atoms + 1 or path.suffix.lower() == ".csv":
            matrix = matrix[1:]  # a header row of column indices
    return matrix


def _absorber_z(absorber: str | int | None) -> int | None:
    if absorber is None:
        return None
    if isinstance(absorber, (int, np.integer)):
        return int(absorber)
    if absorber not in atomic_numbers:
        raise InputError(f"absorber {absorber!r} is not an element symbol (e.g. C, Si, O)")
    return atomic_numbers[absorber]


def _assign_sites(
    matrix: np.ndarray, atoms: ase.Atoms, z: int | None, source: Path, sites: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Rows → atom indices, dropping NaN rows of atoms without a spectrum; errors name ``source``."""
    if matrix.ndim != 2:
        raise InputError(f"{source}: spectra must be a 2D matrix (one row per atom), got shape {matrix.shape}")
    n = len(atoms)
    if sites is not None:
        sites = np.asarray(sites, dtype=np.int64)
        if sites.shape != (len(matrix),) or sites.min(initial=0) < 0 or sites.max(initial=0) >= n:
            raise InputError(f"{source}: 'sites' must give one atom index (0…{n - 1}) per spectrum row")
    elif len(matrix) == n:
        sites = np.arange(n)
    elif z is not None and len(matrix) == int((atoms.numbers == z).sum()):
        sites = np.flatnonzero(atoms.numbers == z)
    else:
        extra = "" if z is None else f" or {int((atoms.numbers == z).sum())} ({chemical_symbols[z]} atoms)"
        raise InputError(
            f"{source}: {len(matrix)} spectrum rows but the structure has {n} atoms{extra}; "
            "give one row per atom in the structure's order"
        )
    missing = np.isnan(matrix).all(axis=1)
    matrix, sites = matrix[~missing], sites[~missing]
    if not np.isfinite(matrix).all():
        row = int(np.argwhere(~np.isfinite(matrix))[0, 0])
        raise InputError(f"{source}: spectrum of atom {int(sites[row])} contains NaN or inf; fix or remove it")
    if z is not None:
        keep = atoms.numbers[sites] == z
        matrix, sites = matrix[keep], sites[keep]
    if not len(sites):
        raise InputError(f"{source}: no spectra of the absorbing species in this file")
    return matrix.astype(np.float32), sites


def load_spectra_dataset(
    structures: str | Path | Sequence[str | Path],
    spectra: str | Path | Sequence[str | Path] | None = None,
    *,
    absorber: str | int | None = None,
    key: str | None = None,
) -> SpectraDataset:
    """Read structures and their per-atom spectra (see the module docstring for the layouts).

    ``structures`` / ``spectra``: directories or files, paired by file stem (``spectra=None``: the spectra
    are per-atom arrays inside extxyz files, under ``key`` or one of ``spectrum``, ``xanes``, ``exafs``).
    ``absorber`` keeps only that element's sites. Every file must have the same number of grid points.
    """
    z = _absorber_z(absorber)
    structure_files = _expand(structures, STRUCTURE_SUFFIXES, "structure")
    if spectra is None:
        return _from_arrays(structure_files, z, key)
    spectrum_files = _expand(spectra, SPECTRUM_SUFFIXES, "spectrum")
    by_stem: dict[str, Path] = {}
    for path in spectrum_files:
        if path.stem in by_stem:
            raise InputError(f"{path}: two spectrum files for structure {path.stem!r} ({by_stem[path.stem].name})")
        by_stem[path.stem] = path
    names, atoms_list, matrices, sites_list, sources, grid = [], [], [], [], [], None
    for path in structure_files:
        if path.stem not in by_stem:
            raise InputError(
                f"{path}: no spectrum file named {path.stem}.txt/.csv/.npz among the spectra; pair them by name"
            )
        frames = read_structures(path)
        if len(frames) != 1:
            raise InputError(f"{path}: holds {len(frames)} frames; give one structure per file")
        atoms = frames[0]
        source = by_stem.pop(path.stem)
        file_sites, file_grid = None, None
        if source.suffix.lower() == ".npz":
            with np.load(source) as data:
                if "spectra" not in data:
                    raise InputError(f"{source}: npz needs an array 'spectra' [n_rows, n_grid]")
                matrix = np.asarray(data["spectra"], dtype=np.float64)
                file_sites = data["sites"] if "sites" in data else None
                file_grid = np.asarray(data["grid"], dtype=np.float64) if "grid" in data else None
        else:
            matrix = read_matrix(source, len(atoms))
        matrix, sites = _assign_sites(matrix, atoms, z, source, file_sites)
        if matrices and matrix.shape[1] != matrices[0].shape[1]:
            raise InputError(
                f"{source}: {matrix.shape[1]} grid points, but {sources[0]} has {matrices[0].shape[1]}; "
                "all spectra must share one grid"
            )
        if file_grid is not None:
            if file_grid.shape != (matrix.shape[1],):
                raise InputError(f"{source}: 'grid' has {file_grid.size} points, the spectra {matrix.shape[1]}")
            if grid is not None and not np.allclose(grid, file_grid):
                raise InputError(f"{source}: its grid differs from the one of the other files")
            grid = file_grid
        names.append(path.stem)
        atoms_list.append(atoms)
        matrices.append(matrix)
        sites_list.append(sites)
        sources.append(str(source))
    return SpectraDataset(atoms_list, matrices, sites_list, names, grid, sources)


def _from_arrays(files: list[Path], z: int | None, key: str | None) -> SpectraDataset:
    names, atoms_list, matrices, sites_list, sources = [], [], [], [], []
    for path in files:
        for k, atoms in enumerate(read_structures(path)):
            where = f"{path} (frame {k})"
            keys = [key] if key else [name for name in ARRAY_KEYS if name in atoms.arrays]
            if not keys or keys[0] not in atoms.arrays:
                raise InputError(
                    f"{where}: no per-atom spectrum array ({key or ', '.join(ARRAY_KEYS)}); "
                    "store one with atoms.arrays['spectrum'] = [n_atoms, n_grid] or give --spectra"
                )
            matrix = np.asarray(atoms.arrays[keys[0]], dtype=np.float64)
            if matrix.ndim == 1:
                matrix = matrix[:, None]
            matrix, sites = _assign_sites(matrix, atoms, z, Path(where))
            if matrices and matrix.shape[1] != matrices[0].shape[1]:
                raise InputError(f"{where}: {matrix.shape[1]} grid points, but {sources[0]} has {matrices[0].shape[1]}")
            names.append(f"{path.stem}:{k}")
            atoms_list.append(atoms)
            matrices.append(matrix)
            sites_list.append(sites)
            sources.append(where)
    return SpectraDataset(atoms_list, matrices, sites_list, names, None, sources)


def save_spectra_bundle(
    path: str | Path,
    structures: Sequence[ase.Atoms],
    spectra: Sequence[np.ndarray],
    sites: Sequence[Sequence[int]],
    names: Sequence[str],
    grid: np.ndarray | None = None,
    **extra,
) -> Path:
    """Write the one-file layout :func:`load_spectra_bundle` reads (float32, compressed, atomically); cells
    with fewer atoms than the largest are padded with atomic number 0. ``extra`` arrays (one value per
    structure, e.g. ``category``, ``density_g_cm3``, or a ``metadata`` JSON string) are stored as given."""
    from specguide.io import write_atomically

    width = max(len(a) for a in structures)
    positions = np.zeros((len(structures), width, 3), np.float32)
    numbers = np.zeros((len(structures), width), np.int16)
    for k, atoms in enumerate(structures):
        positions[k, : len(atoms)] = atoms.positions
        numbers[k, : len(atoms)] = atoms.numbers
    arrays = dict(
        positions=positions,
        cells=np.stack([a.cell[:] for a in structures]).astype(np.float32),
        numbers=numbers,
        names=np.array(list(names)),
        spectra=np.concatenate(spectra).astype(np.float32),
        structure=np.concatenate([np.full(len(s), i, np.int16) for i, s in enumerate(sites)]),
        sites=np.concatenate([np.asarray(s) for s in sites]).astype(np.int16),
        **extra,
    )
    if grid is not None:
        arrays["grid"] = np.asarray(grid, np.float32)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            np.savez_compressed(handle, **arrays)

    write_atomically(path, write)
    return path


def load_spectra_bundle(path: str | Path) -> SpectraDataset:
    """Read a one-file data set of structures with per-site spectra (``scripts/build_surrogate_dataset.py``):
    ``positions [S, N, 3]`` Å, ``cells [S, 3, 3]`` Å, ``numbers [S, N]``, ``names [S]``, ``spectra [R, G]``
    with ``structure [R]`` (its structure's index) and ``sites [R]`` (the atom), optional ``grid [G]``.
    Dataset names are ``names``; ``atoms.info`` gets ``category`` and ``density_g_cm3`` when present. Cells
    with fewer atoms than ``N`` are padded at the end with atomic number 0."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such spectra bundle")
    with np.load(path) as z:
        missing = [k for k in ("positions", "cells", "numbers", "names", "spectra", "structure", "sites") if k not in z]
        if missing:
            raise InputError(f"{path}: missing arrays {missing}; write it with scripts/build_surrogate_dataset.py")
        data = {k: z[k] for k in z.files}
    positions, cells, numbers = data["positions"], data["cells"], data["numbers"]
    rows, owner, sites = data["spectra"].astype(np.float32), data["structure"].astype(int), data["sites"].astype(int)
    n_struct, n_atoms = positions.shape[:2]
    if not np.isfinite(rows).all():
        raise InputError(f"{path}: non-finite spectra")
    if owner.min() < 0 or owner.max() >= n_struct or sites.min() < 0 or sites.max() >= n_atoms:
        raise InputError(f"{path}: structure or site index out of range ({n_struct} structures of {n_atoms} atoms)")
    structures, spectra, site_lists = [], [], []
    for s in range(n_struct):
        real = numbers[s] > 0  # cells with fewer atoms than the widest are padded with atomic number 0
        atoms = ase.Atoms(numbers=numbers[s][real], positions=positions[s][real].astype(np.float64), cell=cells[s],
                          pbc=True)  # fmt: skip
        if not real[: int(real.sum())].all():
            raise InputError(f"{path}: structure {s} has padding (atomic number 0) before its last atom")
        for key in ("category", "density_g_cm3"):
            if key in data:
                atoms.info[key] = data[key][s].item()
        keep = owner == s
        if keep.any() and sites[keep].max() >= len(atoms):
            raise InputError(f"{path}: structure {s} has a site beyond its {len(atoms)} atoms")
        structures.append(atoms)
        spectra.append(rows[keep])
        site_lists.append(sites[keep])
    grid = data["grid"].astype(np.float64) if "grid" in data else None
    names = [str(n) for n in data["names"]]
    return SpectraDataset(structures, spectra, site_lists, names, grid, [f"{path}:{n}" for n in names])
