"""Reading user files with errors that name the file and the fix, and writing results safely.

Everything a user hands to specguide passes through here, so that a malformed file gives one clear
sentence instead of a traceback, and nothing already on disk is silently overwritten.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
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
    except KeyError as exc:  # ASE looks element symbols up in a table: an unknown one raises KeyError(symbol)
        raise InputError(f"{path}: unknown element {exc.args[0]!r}; fix the species (element symbols)") from None
    except Exception as exc:  # ASE raises many kinds of errors for malformed files
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if isinstance(exc, AttributeError) and "NoneType" in first_line:
            first_line = "ASE found no structure in it"
        raise InputError(f"{path}: could not be read as a structure ({first_line}); check the file format") from None
    if isinstance(frames, ase.Atoms):
        frames = [frames]
    if not frames:
        raise InputError(f"{path}: contains no structures")
    for k, atoms in enumerate(frames):
        where = f"{path}" + (f" (frame {k})" if len(frames) > 1 else "")
        check_structure(atoms, where)
    return frames


def as_structures(
    structures: str | Path | ase.Atoms | Sequence[str | Path | ase.Atoms], *, types: str | Sequence[str] | None = None
) -> list[ase.Atoms]:
    """A list of ``ase.Atoms`` from an ``ase.Atoms``, a structure file (every frame, :func:`read_structures`) or a
    sequence of either; Atoms given as such are checked as files are (:func:`check_structure`)."""
    items = [structures] if isinstance(structures, (str, Path, ase.Atoms)) else list(structures)
    frames = []
    for k, item in enumerate(items):
        if isinstance(item, ase.Atoms):
            check_structure(item, f"structure {k}")
            frames.append(item)
        else:
            frames += read_structures(item, types=types)
    if not frames:
        raise InputError("no structures given")
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


MIN_FREE_BYTES = 100 * 2**20  # an output is refused up front when its file system has less room than this


def refuse_overwrite(path: Path, force: bool, directory: bool | None = None, min_free: int = MIN_FREE_BYTES) -> None:
    """Check, before any work, that ``path`` can be written; ``InputError`` with the fix if not.

    Refused: a path below a file (``afile/sub``), a folder where a file is wanted or the reverse (``directory``:
    True for result folders, False for files, None for either), an existing output without ``force`` (an empty
    folder is fine), a folder that cannot be written, and a file system with less than ``min_free`` bytes free.
    """
    path = Path(path)
    ancestor = path.parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise InputError(f"{path}: {ancestor} is a file, not a folder; choose another output path")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise InputError(f"{path}: cannot write into {ancestor} (permission denied); choose another output path")
    if path.exists():
        if directory is True and not path.is_dir():
            raise InputError(f"{path}: exists and is a file; results go into a folder: choose another --out")
        if directory is False and path.is_dir():
            raise InputError(f"{path}: is a folder; give a file name")
        if not force and not (path.is_dir() and not any(path.iterdir())):
            raise InputError(f"{path}: already exists; choose another output or pass --force to overwrite it")
    free = shutil.disk_usage(ancestor).free
    if free < min_free:
        raise InputError(f"{path}: only {free / 2**20:.0f} MiB free on that file system (need {min_free / 2**20:.0f}); "
                         "free some space or choose another output")  # fmt: skip


class OutputDirectory:
    """A result folder that appears whole or not at all: ``with OutputDirectory(out, force) as staging: ...``.

    On entry (before any work) the output is checked (:func:`refuse_overwrite`) and locked (``.<name>.lock`` beside
    it, holding the process id; a second run into the same folder is refused while the first is alive). Results are
    written into the staging folder ``.<name>.partial`` beside it; :meth:`commit` renames it to ``out``, replacing
    an old result as a whole (with ``force``), so two runs never mix. A run that fails or is interrupted leaves the
    staging folder (what it had finished, e.g. for ``--resume``) and releases the lock.
    """

    def __init__(self, path: str | Path, force: bool = False, keep_partial: bool = False):
        self.path = Path(path)
        self.force = force
        self.keep_partial = keep_partial  # True: an existing staging folder is resumed instead of cleared
        self.staging = self.path.parent / f".{self.path.name}.partial"
        self.lock = self.path.parent / f".{self.path.name}.lock"
        self.committed = False

    def __enter__(self) -> Path:
        refuse_overwrite(self.path, self.force, directory=True)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._take_lock()
        try:
            if self.staging.exists() and not self.keep_partial:
                if any(self.staging.iterdir()) and not self.force:
                    raise InputError(f"{self.path}: an interrupted run left its finished work in {self.staging}; "
                                     "continue it with --resume, or start afresh with --force")  # fmt: skip
                shutil.rmtree(self.staging)
            self.staging.mkdir(exist_ok=True)
        except BaseException:
            self._release_lock()
            raise
        return self.staging

    def commit(self) -> Path:
        """Publish the staging folder as ``path`` (an existing result is replaced as a whole)."""
        old = None
        if self.path.exists():
            old = self.path.parent / f".{self.path.name}.old-{os.getpid()}"
            os.replace(self.path, old)
        os.replace(self.staging, self.path)
        if old is not None:
            shutil.rmtree(old) if old.is_dir() else old.unlink()
        self.committed = True
        return self.path

    def __exit__(self, kind, value, traceback) -> None:
        if not self.committed and self.staging.is_dir() and not any(self.staging.iterdir()):
            self.staging.rmdir()  # nothing was finished: leave nothing behind
        self._release_lock()

    def _take_lock(self) -> None:
        for _ in range(2):
            try:
                handle = os.open(self.lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                try:
                    pid = int(self.lock.read_text().strip() or 0)
                except (OSError, ValueError):
                    pid = 0
                if pid and _alive(pid):
                    raise InputError(f"{self.path}: another specguide run (process {pid}) is writing there; wait "
                                     f"for it or choose another --out (stale lock: {self.lock})") from None  # fmt: skip
                self.lock.unlink(missing_ok=True)  # left by a run that no longer exists
                continue
            with os.fdopen(handle, "w") as lock:
                lock.write(str(os.getpid()))
            return
        raise InputError(f"{self.path}: could not lock it ({self.lock}); remove that file if no run is writing there")

    def _release_lock(self) -> None:
        try:
            if self.lock.exists() and self.lock.read_text().strip() == str(os.getpid()):
                self.lock.unlink()
        except OSError:
            pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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


def write_extxyz(path: str | os.PathLike, frames: ase.Atoms | Sequence[ase.Atoms]) -> None:
    """Write frames to extended XYZ (``.gz`` compresses); dict-valued ``info`` entries are stored as JSON
    strings (``read_extxyz`` turns them back into dicts)."""
    if isinstance(frames, ase.Atoms):
        frames = [frames]
    out = []
    for a in frames:
        b = a.copy()
        b.info = {}
        for k, v in a.info.items():
            if isinstance(v, (dict, list, tuple)):
                b.info[k] = json.dumps(v, sort_keys=True)
            else:
                b.info[k] = v
        out.append(b)
    ase.io.write(str(path), out, format="extxyz")


def read_extxyz(path: str | os.PathLike) -> list[ase.Atoms]:
    """Read frames written by :func:`write_extxyz` (JSON strings in ``info`` become dicts again)."""
    frames = ase.io.read(str(path), index=":", format="extxyz")
    for a in frames:
        for k, v in list(a.info.items()):
            if isinstance(v, str) and v[:1] in "{[":
                with contextlib.suppress(ValueError):
                    a.info[k] = json.loads(v)
    return frames


def write_json(path: Path, data: dict, indent: int | None = 2) -> None:
    """Write ``data`` as valid JSON (indented, or on one line with ``indent=None``), atomically.

    NaN and infinities, which JSON cannot hold, are written as ``null``."""
    text = json.dumps(_finite(data), indent=indent, default=_jsonable, allow_nan=False)
    write_atomically(path, lambda tmp: tmp.write_text(text + "\n"))


def _finite(value: Any) -> Any:
    """``value`` with every non-finite float (also inside containers and numpy arrays) replaced by None."""
    if isinstance(value, float | np.floating):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    if isinstance(value, np.ndarray):
        return _finite(value.tolist())
    return value


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


def write_results(
    out_dir: str | Path,
    structures: Sequence[ase.Atoms],
    config: dict,
    summary: dict,
    force: bool = False,
) -> Path:
    """Write ``structures.extxyz`` (one frame per replica), ``config.json`` and ``summary.json`` atomically.

    Refuses (``FileExistsError``) to write into an existing non-empty directory unless ``force=True``, and
    refuses structures with non-finite positions.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise FileExistsError(f"{out_dir}: exists and is not a directory")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not force:
        raise FileExistsError(f"{out_dir}: already holds results; choose another directory or pass force=True")
    structures = list(structures)
    for r, atoms in enumerate(structures):
        if not np.isfinite(atoms.get_positions()).all():
            raise ValueError(f"structure {r} has non-finite positions; not writing {out_dir}")
    out_dir.mkdir(parents=True, exist_ok=True)
    write_atomically(out_dir / "structures.extxyz", lambda tmp: ase.io.write(tmp, structures, format="extxyz"))
    write_json(out_dir / "config.json", config)
    write_json(out_dir / "summary.json", summary)
    return out_dir
