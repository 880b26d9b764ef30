"""Reading user files with errors that name the file and the fix, and writing results safely.

Everything a user hands to specguide passes through here, so that a malformed file gives one clear
sentence instead of a traceback, and nothing already on disk is silently overwritten.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import ase
import ase.io
import numpy as np
from ase.data import chemical_symbols

# Pairs closer than this (Å) are treated as overlapping atoms: no real material has them.
MIN_PHYSICAL_DISTANCE = 0.5


class InputError(ValueError):
    """A user-supplied file or option is unusable; the message names the file and the fix."""


LAMMPS_FORMATS = ("lammps-data", "lammps-dump-text")


def split_format(path: str | Path) -> tuple[Path, str | None]:
    """``"dump.lammpstrj@lammps-dump-text"`` → ``(Path("dump.lammpstrj"), "lammps-dump-text")``.

    The part after the last ``@`` is a format only if ASE knows it and the whole name is not an existing file
    (bundled names like ``a-Si@1.5`` keep their ``@``).
    """
    from ase.io.formats import ioformats

    text = str(path)
    head, sep, tail = text.rpartition("@")
    if sep and tail in ioformats and not Path(text).exists():
        return Path(head), tail
    return Path(text), None


def parse_types(text: str | Sequence[str] | None) -> list[str] | None:
    """``"Si,O"`` → ``["Si", "O"]``: element of LAMMPS atom type 1, 2, ... (``InputError`` for unknown symbols)."""
    if text is None:
        return None
    symbols = [s.strip() for s in (text.split(",") if isinstance(text, str) else text) if s.strip()]
    unknown = [s for s in symbols if s not in chemical_symbols[1:]]
    if not symbols or unknown:
        raise InputError(f"--types {text!r}: give element symbols in LAMMPS type order, e.g. --types Si,O")
    return symbols


def _lammps_options(path: Path, fmt: str, types: list[str] | None) -> dict:
    """Reader options that turn LAMMPS atom types into elements, or ``InputError`` if nothing says which."""
    from ase.data import atomic_numbers

    head = path.read_text(errors="replace")[:200_000]
    if fmt == "lammps-data":
        if types:
            return {"Z_of_type": {k + 1: atomic_numbers[s] for k, s in enumerate(types)}}
        if not any(line.strip().startswith("Masses") for line in head.splitlines()):
            raise InputError(f"{path}: a LAMMPS data file without a Masses section names types, not elements; "
                             "give the element of each type in order, e.g. --types Si,O")  # fmt: skip
        return {}
    columns = next((line.split()[2:] for line in head.splitlines() if line.startswith("ITEM: ATOMS")), [])
    if types:
        return {"specorder": types}
    if "element" not in columns and "mass" not in columns:
        raise InputError(f"{path}: a LAMMPS dump with atom types but no element or mass column; give the element "
                         "of each type in order, e.g. --types Si,O")  # fmt: skip
    return {}


def read_structures(
    path: str | Path, index: str = ":", *, format: str | None = None, types: str | Sequence[str] | None = None
) -> list[ase.Atoms]:
    """Read every frame of an ASE-readable structure file, with checks a scientist would want.

    ``path`` may end in ``@FORMAT`` (an ASE format name, e.g. ``dump.lammpstrj@lammps-dump-text``), as may
    ``format=``. ``types`` names the element of each LAMMPS atom type in order (``"Si,O"``); a LAMMPS file that
    gives neither types, masses nor element names is refused rather than read as H, He, ... Raises
    ``InputError`` for a missing or unreadable file, an unknown element, a zero-volume cell or overlapping atoms
    (< 0.5 Å apart).
    """
    path, suffix_format = split_format(path)
    fmt = format or suffix_format
    types = parse_types(types)
    if not path.exists():
        raise InputError(f"{path}: no such file; check the path")
    if path.is_dir():
        raise InputError(f"{path}: is a directory; give a structure file (extxyz, POSCAR, CIF, LAMMPS data)")
    if fmt is None:
        try:
            fmt = ase.io.formats.filetype(str(path), guess=True)
        except Exception:  # ASE raises several kinds for files it cannot place; reading below says so
            fmt = None
    options = _lammps_options(path, fmt, types) if fmt in LAMMPS_FORMATS else {}
    if types and fmt not in LAMMPS_FORMATS:
        raise InputError(f"{path}: --types applies to LAMMPS data and dump files; this file reads as {fmt}")
    try:
        frames = ase.io.read(str(path), index=index, format=fmt, **options)
    except ase.io.formats.UnknownFileTypeError:
        raise InputError(
            f"{path}: unknown file format; use extxyz, POSCAR (.vasp), CIF or LAMMPS data, "
            "or name the format: FILE@FORMAT (an ASE format, e.g. FILE@lammps-dump-text)"
        ) from None
    except IndexError:
        raise InputError(f"{path}: the file has more atom types than --types names ({','.join(types or [])})") from None
    except Exception as exc:  # ASE raises many kinds of errors for malformed files
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"{path}: could not be read as a structure ({first_line}); check the file format") from None
    if isinstance(frames, ase.Atoms):
        frames = [frames]
    if not frames:
        raise InputError(f"{path}: contains no structures")
    for k, atoms in enumerate(frames):
        where = f"{path}" + (f" (frame {k})" if len(frames) > 1 else "")
        check_structure(atoms, where)
    return frames


def check_structure(atoms: ase.Atoms, where: str, periodic: bool = True) -> None:
    """Raise ``InputError`` if ``atoms`` is empty, has unknown elements, a degenerate cell or overlaps."""
    if len(atoms) == 0:
        raise InputError(f"{where}: has no atoms")
    numbers = atoms.numbers
    if (numbers <= 0).any() or (numbers >= len(chemical_symbols)).any():
        raise InputError(f"{where}: contains an unknown element (atomic number {int(numbers.min())}); fix the species")
    if not np.isfinite(atoms.positions).all():
        raise InputError(f"{where}: has non-finite (NaN/inf) coordinates")
    if periodic:
        volume = abs(np.linalg.det(atoms.cell[:]))
        if volume < 1e-6:
            raise InputError(
                f"{where}: cell has zero volume; periodic spectra need a full 3D cell "
                "(add lattice vectors, or use a format that stores them such as extxyz or POSCAR)"
            )
    shortest = shortest_distance(atoms, periodic)
    if shortest is not None and shortest < MIN_PHYSICAL_DISTANCE:
        raise InputError(
            f"{where}: atoms overlap (closest pair {shortest:.3f} Å < {MIN_PHYSICAL_DISTANCE} Å); "
            "check for duplicated atoms or wrong units (coordinates must be in Å)"
        )


def shortest_distance(atoms: ase.Atoms, periodic: bool = True) -> float | None:
    """Shortest interatomic distance in Å (periodic images included), or None for a single atom."""
    from vesin import NeighborList

    if len(atoms) < 2 and not periodic:
        return None
    box = atoms.cell[:] if periodic else np.zeros((3, 3))
    calculator = NeighborList(cutoff=MIN_PHYSICAL_DISTANCE * 4, full_list=False)
    (distances,) = calculator.compute(atoms.positions, box, periodic, quantities="d")
    return float(distances.min()) if len(distances) else None


def read_columns(path: str | Path, min_columns: int = 2) -> np.ndarray:
    """Read a whitespace- or comma-separated numeric table (``#`` comments, optional text header)."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file; check the path")
    rows = []
    with path.open() as handle:
        for number, line in enumerate(handle, start=1):
            text = line.split("#", 1)[0].strip()
            if not text:
                continue
            fields = text.replace(",", " ").split()
            try:
                rows.append([float(value) for value in fields])
            except ValueError:
                if rows:
                    raise InputError(f"{path}: line {number} is not numeric: {line.strip()!r}") from None
                continue  # a text header before the data
    if not rows:
        raise InputError(f"{path}: no numeric data found")
    width = len(rows[0])
    if width < min_columns or any(len(r) != width for r in rows):
        raise InputError(f"{path}: expected {min_columns}+ columns of equal length in every row")
    table = np.asarray(rows, dtype=np.float64)
    if not np.isfinite(table).all():
        bad = int(np.argwhere(~np.isfinite(table))[0, 0])
        raise InputError(f"{path}: row {bad + 1} of the data contains NaN or inf; remove or fix it")
    return table


def load_checkpoint(path: str | Path, what: str, fix: str, map_location: Any = "cpu") -> Any:
    """``torch.load(path, weights_only=True)``: tensors and plain data only, so a file that would run code when
    unpickled is refused, never executed. Raises ``FileNotFoundError`` for a missing file and ``ValueError``
    (``"{path}: not a readable {what} (...); {fix}"``) for anything else, without torch's advice to load unsafely."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such {what} file")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # unpickling anything but tensors and plain data, corrupt or truncated files
        text = str(exc).strip()
        if "Weights only load failed" in text or "weights_only" in text:
            reason = "it holds Python objects besides tensors and plain data, and loading those could run code"
        else:
            reason = text.splitlines()[0][:160] if text else type(exc).__name__
        raise ValueError(f"{path}: not a readable {what} ({reason}); {fix}") from None


def bundled_names(folder: Path) -> list[str]:
    """Names of the ``*.pt`` checkpoints shipped in ``folder``."""
    return sorted(p.stem for p in folder.glob("*.pt"))


def resolve_checkpoint(name_or_path: str | Path, folder: Path, what: str, hint: str = "") -> Path:
    """A checkpoint path from a file path or the name of a ``*.pt`` file bundled in ``folder``.

    ``what`` names the kind in the error ("prior", "surrogate"); ``hint`` is appended to it.
    """
    path = Path(name_or_path)
    if path.is_file():
        return path
    bundled = folder / f"{name_or_path}.pt"
    if bundled.is_file():
        return bundled
    names = ", ".join(bundled_names(folder)) or "none"
    raise FileNotFoundError(f"{path}: no such {what} checkpoint file or bundled {what} (bundled: {names}){hint}")


def refuse_overwrite(path: Path, force: bool) -> None:
    """Raise ``InputError`` if ``path`` exists (a non-empty directory or a file) and ``force`` is off."""
    if force or not path.exists():
        return
    if path.is_dir() and not any(path.iterdir()):
        return
    raise InputError(f"{path}: already exists; choose another output or pass --force to overwrite it")


def write_atomically(path: Path, write: Callable[[Path], Any]) -> None:
    """Call ``write(tmp_path)`` on a temporary file beside ``path``, then rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix, dir=path.parent)
    os.close(handle)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        umask = os.umask(0)
        os.umask(umask)
        tmp.chmod(0o666 & ~umask)  # mkstemp creates 0600; results should be readable like any other file
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_json(path: Path, data: dict, indent: int | None = 2) -> None:
    """Write ``data`` as JSON (indented, or on one line with ``indent=None``), atomically."""
    write_atomically(path, lambda tmp: tmp.write_text(json.dumps(data, indent=indent, default=_jsonable) + "\n"))


def write_two_columns(path: Path, x: np.ndarray, y: np.ndarray, header: str) -> None:
    """Write ``x, y`` columns with a ``#`` header, atomically."""
    table = np.column_stack([np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)])
    write_atomically(path, lambda tmp: np.savetxt(tmp, table, fmt="%.8g", header=header))


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    return str(value)
