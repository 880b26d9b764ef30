"""Readers for the measured-data files that labs produce: PDFs, structure factors, powder patterns, XAS.

``read_measured(path)`` picks a format from the file's content and extension (or takes ``fmt=``, as ASE's
``ase.io.read(format=...)`` does), reads x, y and the standard error of y, converts the abscissa to canonical
units (r in Å, Q in Å⁻¹, 2θ in degrees, k in Å⁻¹, E in eV) and reports what the file itself says y is.
Every problem raises ``specguide.io.InputError`` with one line that names the file and the fix.

Formats live in one table, ``FORMATS`` (modelled on ASE's ``ase/io/formats.py`` ``ioformats``): each
``DataFormat`` has a name, a description, the extensions it claims, a ``detect(first_lines)`` content test and
a ``read(path, text, columns=, wavelength=)`` function. Choice: a format whose content test passes and that
claims the extension; else any whose content test passes; else the first that claims the extension; else
``plain``.

y quantities (``MeasuredData.y_quantity``), as the conventions in docs/CONVENTIONS.md and the programs use them:
``G(r)`` = 4πρr[g(r) − 1] (Å⁻², PDFgui/PDFgetX3), ``g(r)``, ``D(r)`` (Keen 2001: 4πρr G_keen(r)), ``RDF``,
``S(Q)`` (Faber–Ziman), ``F(Q)`` = Q[S(Q) − 1] (Å⁻¹, PDFgetX3), ``F_keen(Q)`` = Σ c_a c_b b_a b_b [S_ab(Q) − 1]
(barn/sr/atom: Gudrun's .mint01, RMCProfile's and Dissolve's F(Q)), ``G_keen(r)`` (barn, RMCProfile .gr),
``I(Q)`` (an intensity or differential cross section, whatever the abscissa), ``chi(k)``, ``k*chi(k)``,
``k2*chi(k)``, ``k3*chi(k)``, ``mu(E)``, ``norm(E)``; None when the file does not say.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
from ase.data import atomic_numbers

from specguide.chemistry import parse_composition
from specguide.io import InputError

X_QUANTITIES = ("r", "Q", "2theta", "k", "E", "angle", "unknown")
DETECT_LINES = 200  # how many leading lines the content tests see


@dataclass
class MeasuredData:
    """One measured curve: ``y(x)`` with optional standard errors, in canonical units."""

    path: Path
    format: str  # key of the FORMATS entry that read it
    x: np.ndarray  # r (Å) | Q (Å⁻¹) | 2θ (degrees) | k (Å⁻¹) | E (eV) | angle (degrees)
    y: np.ndarray
    err: np.ndarray | None  # standard error of y (same units as y), or None
    x_quantity: str  # one of X_QUANTITIES
    y_quantity: str | None  # what the file says y is (see the module docstring), None if it does not say
    header: dict[str, Any] = field(default_factory=dict)  # canonical keys: qmax, composition, wavelength, ...
    notes: list[str] = field(default_factory=list)  # what the user should be told about the reading


@dataclass(frozen=True)
class DataFormat:
    """One file format: how to recognise it and how to read it (compare ASE's ``IOFormat``)."""

    name: str
    description: str
    extensions: tuple[str, ...]  # lower case, without the dot
    detect: Callable[[list[str]], bool]  # content test on the first DETECT_LINES lines
    read: Callable[..., MeasuredData]  # read(path, text, *, columns=None, wavelength=None)


# ----------------------------------------------------------------------------------------------------------
# Column names and units
# ----------------------------------------------------------------------------------------------------------

# pyFAI unit names (pyFAI.units: "2th_deg", "q_nm^-1", ...) → (x quantity, factor to canonical units)
_PYFAI_UNITS = {
    "2th_deg": ("2theta", 1.0),
    "2th_rad": ("2theta", 180.0 / math.pi),
    "q_nm^-1": ("Q", 0.1),
    "q_a^-1": ("Q", 1.0),
}
_PYFAI_REFUSED = ("r_mm", "r_m", "d*2_a^-2", "d*2_nm^-2", "chi_deg", "chi_rad", "log10(q.m)_none")
_X_NAMES = {
    "r": "r",
    "q": "Q",
    "k": "k",
    "energy": "E",
    "en": "E",
    "pe": "E",  # photon energy (beamline exports)
    "photon energy": "E",
    "photon_energy": "E",
    "hv": "E",
    "e": "E",  # only as the first column; elsewhere "e" is an error (see _meaning)
    "2theta": "2theta",
    "2th": "2theta",
    "tth": "2theta",
    "twotheta": "2theta",
    "two_theta": "2theta",
    "2-theta": "2theta",
    "2θ": "2theta",
    "angle": "angle",
}
_Y_EXACT = {  # case matters: G is the reduced PDF, g the pair distribution function
    "G(r)": "G(r)",
    "G": "G(r)",
    "g(r)": "g(r)",
    "g": "g(r)",
    "D(r)": "D(r)",
    "D": "D(r)",
    "RDF": "RDF",
    "R(r)": "RDF",
    "S(Q)": "S(Q)",
    "S": "S(Q)",
    "F(Q)": "F(Q)",
    "F": "F(Q)",
    "I(Q)": "I(Q)",
    "I": "I(Q)",
}
_Y_LOWER = {
    "rdf": "RDF",
    "s(q)": "S(Q)",
    "sq": "S(Q)",
    "f(q)": "F(Q)",
    "fq": "F(Q)",
    "i(q)": "I(Q)",
    "intensity": "I(Q)",
    "int": "I(Q)",
    "counts": "I(Q)",
    "chi": "chi(k)",
    "chi(k)": "chi(k)",
    "chik": "k*chi(k)",
    "chik1": "k*chi(k)",
    "chik2": "k2*chi(k)",
    "chik3": "k3*chi(k)",
    "mu": "mu(E)",
    "xmu": "mu(E)",
    "mu(e)": "mu(E)",
    "mutrans": "mu(E)",  # XDI column names
    "mufluor": "mu(E)",
    "norm": "norm(E)",
    "flat": "norm(E)",
    "norm(e)": "norm(E)",
    "normtrans": "norm(E)",
    "normfluor": "norm(E)",
}
_ERR_NAMES = {
    "err", "error", "errors", "sigma", "sig", "esd", "e", "dy", "dg", "dg(r)", "d_gr", "dgr", "ds", "ds(q)",
    "df", "df(q)", "di", "di(q)", "std", "stddev", "uncertainty", "unc",
}  # fmt: skip
_XERR_NAMES = {"dr", "d_r", "dx", "dq", "dk", "de"}


def _clean_label(label: str) -> str:
    """``'G($\\AA^{-2}$)'`` → ``'G(Å^-2)'``: LaTeX and markup removed, units kept."""
    text = label.replace("\\AA", "Å").replace("\\r{A}", "Å")
    return re.sub(r"[${}\\]", "", text).strip()


def _label_parts(label: str) -> tuple[str, str]:
    """``('G', 'Å^-2')`` for ``G(Å^-2)``; ``('G(r)', '')`` for ``G(r)`` (a bracketed variable is no unit)."""
    text = _clean_label(label)
    match = re.fullmatch(r"(?P<base>[^(\[]*?)\s*[(\[](?P<inner>[^)\]]*)[)\]]\s*", text)
    slash = re.fullmatch(r"(?P<base>[^/]+?)\s*/\s*(?P<unit>k?eV|Å|A|nm|Å\^?-1|A\^?-1|nm\^?-1|1/Å|deg|degrees?|rad)",
                         text, flags=re.IGNORECASE)  # fmt: skip
    if slash and not match:  # "PE/eV", "Q/nm^-1": quantity / unit, as spreadsheets and beamline software write
        return slash["base"].strip(), slash["unit"]
    if not match or not match["base"]:
        return text, ""
    base, inner = match["base"].strip(), match["inner"].strip()
    if inner in ("r", "Q", "q", "k", "E", "e"):
        return f"{base}({inner})", ""
    return base, inner


def _unit_kind(unit: str) -> str:
    """``'nm'`` | ``'rad'`` | ``'kev'`` | ``'mm'`` | ``''`` (Å, Å⁻¹, degrees, eV, or not stated)."""
    u = unit.lower()
    if "nm" in u or "nanomet" in u:
        return "nm"
    if "rad" in u:
        return "rad"
    if "kev" in u:
        return "kev"
    if u == "mm" or "millim" in u:
        return "mm"
    return ""


_X_SCALE = {("Q", "nm"): 0.1, ("r", "nm"): 10.0, ("2theta", "rad"): 180.0 / math.pi, ("E", "kev"): 1000.0}


def _meaning(name: str, position: int) -> tuple[str, str | None, float]:
    """What a column name says: ``(role, quantity, factor to canonical units)``.

    role: ``x`` | ``y`` | ``err`` (error of y) | ``xerr`` (error of x, never used) | ``other``.
    """
    if name.lower() in _PYFAI_UNITS:
        quantity, scale = _PYFAI_UNITS[name.lower()]
        return "x", quantity, scale
    base, unit = _label_parts(name)
    low = base.lower()
    if low in _X_NAMES and not (low == "e" and position > 0):
        quantity = _X_NAMES[low]
        return "x", quantity, _X_SCALE.get((quantity, _unit_kind(unit)), 1.0)
    if base in _Y_EXACT or low in _Y_LOWER:
        return "y", _Y_EXACT.get(base) or _Y_LOWER[low], 1.0
    if low in _ERR_NAMES:
        return "err", None, 1.0
    if low in _XERR_NAMES:
        return "xerr", None, 1.0
    return "other", None, 1.0


def _roles_from_names(names: Sequence[str]) -> tuple[int, int, int | None] | None:
    """Default (x, y, err) columns chosen by name, or None when the names do not say."""
    meanings = [_meaning(name, i) for i, name in enumerate(names)]
    roles = [m[0] for m in meanings]
    if "y" not in roles and "x" not in roles:
        return None
    x = roles.index("x") if "x" in roles else 0
    ys = [i for i, role in enumerate(roles) if role == "y" and i != x]
    rest = [i for i, role in enumerate(roles) if role not in ("xerr", "err") and i != x]
    if not ys and not rest:
        return None
    y = ys[0] if ys else rest[0]
    errs = [i for i, role in enumerate(roles) if role == "err" and i > y]
    return x, y, (errs[0] if errs else None)


# ----------------------------------------------------------------------------------------------------------
# Numeric tables
# ----------------------------------------------------------------------------------------------------------

_FORTRAN_D = re.compile(r"(?<=[0-9.])[dD](?=[+-]?\d)")  # 0.1234D+01 (RMCProfile, old Fortran writers)


def _strip_comment(line: str, comments: str) -> str:
    for char in comments:
        line = line.split(char, 1)[0]
    return line.strip()


def _normalise(text: str, semicolons: bool) -> str:
    """Numbers separated by whitespace: ``;`` separates when present (``,`` is then a decimal comma), else ``,``
    does; Fortran ``1.0D+01`` becomes ``1.0e+01``."""
    if semicolons:
        text = text.replace(",", ".").replace(";", " ")
    return _FORTRAN_D.sub("e", text.replace(",", " "))


def _numbers(text: str) -> list[float] | None:
    """The numbers of one (comment-free) data line, or None if any field is not a number."""
    try:
        return [float(value) for value in _normalise(text, ";" in text).split()]
    except ValueError:
        return None


def _first_data_line(lines: Sequence[str], start: int = 0, stop: int | None = None, comments: str = "#") -> int:
    """Index of the first line (≥ start) holding two or more numbers; a lone count line is skipped."""
    for index in range(start, len(lines) if stop is None else stop):
        values = _numbers(_strip_comment(lines[index], comments))
        if values is not None and len(values) >= 2:
            return index
    return -1


@dataclass
class _Table:
    """A block of numeric rows and where it sits in the file (for line numbers in messages)."""

    values: np.ndarray  # [rows, columns]
    lines: Sequence[str]
    first: int  # index of the first data line
    stop: int | None
    comments: str
    rows_per_line: int = 1  # GSAS ESD / STD banks hold 5 or 10 points a line

    def where(self, row: int) -> str:
        """``'line N'`` (1-based file line) of data row ``row``, counted before any reordering."""
        seen, target = -1, row // self.rows_per_line
        for index in range(self.first, len(self.lines) if self.stop is None else self.stop):
            if _strip_comment(self.lines[index], self.comments):
                seen += 1
                if seen == target:
                    return f"line {index + 1}"
        return f"data row {row + 1}"


def _read_table(path: Path, lines: Sequence[str], start: int = 0, stop: int | None = None, comments: str = "#"):
    """The numeric block from the first data line at or after ``start`` up to ``stop``; one-line errors."""
    first = _first_data_line(lines, start, stop, comments)
    if first < 0:
        raise InputError(f"{path}: no numeric data found (need rows of two or more numbers); check the file")
    text = _normalise("\n".join(lines[first:stop]), ";" in _strip_comment(lines[first], comments))
    try:
        values = np.loadtxt(io.StringIO(text), comments=list(comments), ndmin=2, dtype=np.float64)
    except ValueError:
        _explain_bad_rows(path, lines, first, stop, comments)
    return _Table(values, lines, first, stop, comments)


def _explain_bad_rows(path: Path, lines: Sequence[str], first: int, stop: int | None, comments: str) -> NoReturn:
    """Raise the InputError that says which line of the data block is wrong and how."""
    width = None
    for index in range(first, len(lines) if stop is None else stop):
        text = _strip_comment(lines[index], comments)
        if not text:
            continue
        values = _numbers(text)
        if values is None:
            raise InputError(
                f"{path}: line {index + 1} is not numeric: {lines[index].strip()[:60]!r}; delete it or start it with #"
            )
        if width is None:
            width = len(values)
        elif len(values) != width:
            raise InputError(
                f"{path}: line {index + 1} has {len(values)} columns but the rows above have {width}; "
                "every data row needs the same number of columns"
            )
    raise InputError(f"{path}: the numeric data could not be read; check the file")


# ----------------------------------------------------------------------------------------------------------
# Header values
# ----------------------------------------------------------------------------------------------------------

_HEADER_ALIASES = {
    "qsig": "qdamp",
    "qalp": "qbroad",
    "temp": "temperature",
    "stype": "mode",
    "number density": "number_density",
    "numberdensity": "number_density",
    "number_density": "number_density",
    "rho0": "number_density",
    "lambda": "wavelength",
}
_NUMERIC_KEYS = ("qmax", "qmin", "qmaxinst", "qdamp", "qbroad", "wavelength", "temperature", "number_density", "rpoly")
_FLOAT = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eEdD][-+]?\d+)?"


def _as_value(text: str) -> Any:
    """A float when the text is a number (optionally followed by a unit), else the stripped text."""
    text = text.strip()
    match = re.fullmatch(rf"({_FLOAT})(\s+\S+)?", text)
    return float(_FORTRAN_D.sub("e", match[1])) if match else text


def _canonical_header(raw: Mapping[str, str], notes: list[str]) -> dict[str, Any]:
    """Lower-case keys, canonical names (qdamp, number_density, ...), floats, composition as fractions."""
    header: dict[str, Any] = {}
    for key, value in raw.items():
        name = _HEADER_ALIASES.get(key.strip().lower(), key.strip().lower())
        header[name] = _as_value(value) if isinstance(value, str) else value
    for key in _NUMERIC_KEYS:
        if isinstance(header.get(key), str):
            header[f"{key}_text"] = header.pop(key)
    if "mode" in header:
        mode = str(header["mode"]).strip().lower()
        header["mode"] = {"x": "xray", "x-ray": "xray", "n": "neutron", "e": "electron"}.get(mode, mode)
    if isinstance(header.get("composition"), str):
        text = header["composition"]
        try:
            header["composition"] = parse_composition(text)
        except ValueError:
            header["composition_text"] = header.pop("composition")
            notes.append(f"could not read the composition {text!r}; it is kept as header['composition_text']")
    return header


@dataclass
class _Layout:
    """What a format reader found, before the checks every format shares."""

    table: _Table
    x: int = 0
    y: int = 1
    err: int | None = None
    names: list[str] | None = None  # one name per column, as the file spells them
    x_quantity: str = "unknown"
    y_quantity: str | None = None
    x_scale: float = 1.0  # factor to canonical units
    y_scale: float | None = None  # None: follow x (F(Q) and G(r) carry the unit of Q and r)
    header: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _use_names(layout: _Layout, names: Sequence[str] | None) -> bool:
    """Take x, y, err (and what x and y are) from column names when the names say so; True if they did."""
    roles = _roles_from_names(names) if names and len(names) == layout.table.values.shape[1] else None
    if not roles:
        return False
    layout.names = list(names)
    layout.x, layout.y, layout.err = roles
    role, quantity, scale = _meaning(names[layout.x], layout.x)
    if role == "x" and quantity:
        layout.x_quantity, layout.x_scale = quantity, scale
    role, quantity, _ = _meaning(names[layout.y], layout.y)
    if role == "y":
        layout.y_quantity = quantity
    return True


def _resolve_columns(path: Path, columns: Sequence[int | str], names: list[str] | None, width: int) -> list[int]:
    if isinstance(columns, (str, bytes)) or len(columns) not in (2, 3):
        raise InputError(f"{path}: columns={columns!r}; give 2 or 3 columns (x, y[, err]), e.g. (0, 1, 2)")
    index = []
    for column in columns:
        if isinstance(column, str):
            lower = [n.lower() for n in names] if names else []
            if column.lower() not in lower:
                known = f"the columns are {', '.join(names)}" if names else "the file does not name its columns"
                raise InputError(f"{path}: no column named {column!r}; {known} (or give 0-based indices)")
            index.append(lower.index(column.lower()))
        elif isinstance(column, (int, np.integer)) and not isinstance(column, bool) and 0 <= column < width:
            index.append(int(column))
        else:
            raise InputError(
                f"{path}: column {column!r} is out of range; the file has {width} columns "
                f"(0-based indices 0-{width - 1})"
            )
    return index


def _finish(
    path: Path,
    fmt: str,
    layout: _Layout,
    columns: Sequence[int | str] | None = None,
    wavelength: float | None = None,
) -> MeasuredData:
    """Choose columns, convert units, check values, sort, average repeats and build the MeasuredData."""
    values, names, notes, header = layout.table.values, layout.names, list(layout.notes), dict(layout.header)
    width = values.shape[1]
    if names is not None and len(names) == width:
        header["columns"] = list(names)
    else:
        names = None
    x_col, y_col, e_col = layout.x, layout.y, layout.err
    x_quantity, y_quantity, x_scale = layout.x_quantity, layout.y_quantity, layout.x_scale
    if columns is not None:
        chosen = _resolve_columns(path, columns, names, width)
        if chosen[0] != x_col:
            role, quantity, x_scale = _meaning(names[chosen[0]], chosen[0]) if names else ("other", None, 1.0)
            x_quantity = quantity if role == "x" and quantity else "unknown"
        if chosen[1] != y_col:
            role, quantity, _ = _meaning(names[chosen[1]], chosen[1]) if names else ("other", None, 1.0)
            y_quantity = quantity if role == "y" else None
        x_col, y_col, e_col = chosen[0], chosen[1], (chosen[2] if len(chosen) == 3 else None)
    if max(x_col, y_col, -1 if e_col is None else e_col) >= width:
        raise InputError(f"{path}: expected at least {max(x_col, y_col, e_col or 0) + 1} columns, found {width}")
    if len(values) < 2:
        raise InputError(f"{path}: only {len(values)} data row; a curve needs at least 2 points")

    x = values[:, x_col] * x_scale
    y_scale = layout.y_scale
    if y_scale is None:  # F(Q) = Q[S − 1] and G(r) = 4πρr[g − 1] carry the units of Q and r
        y_scale = {("F(Q)", 0.1): 0.1, ("G(r)", 10.0): 0.01}.get((y_quantity, x_scale), 1.0)
        if y_scale != 1.0:
            notes.append(f"x was in nm-based units: converted x to Å-based units and scaled {y_quantity} by {y_scale}")
    y = values[:, y_col] * y_scale
    err = values[:, e_col] * abs(y_scale) if e_col is not None else None

    bad = ~np.isfinite(x) | ~np.isfinite(y) | (~np.isfinite(err) if err is not None else False)
    if bad.any():
        raise InputError(f"{path}: {layout.table.where(int(np.argmax(bad)))} holds NaN or inf; remove or fix that row")
    rows = np.arange(len(x))
    if err is not None:
        x, y, err, rows = _checked_errors(path, layout.table, x, y, err, rows, notes)
    x, y, err = _order(path, layout.table, rows, x, y, err, notes)
    if len(x) < 2:
        raise InputError(f"{path}: fewer than 2 distinct x values; a curve needs at least 2 points")

    if wavelength is not None:
        try:
            wavelength = float(wavelength)
        except (TypeError, ValueError):
            wavelength = math.nan
        if not (math.isfinite(wavelength) and wavelength > 0):
            raise InputError(f"{path}: wavelength={wavelength!r}; give the wavelength in Å as a number > 0")
        if isinstance(header.get("wavelength"), float) and not math.isclose(header["wavelength"], wavelength):
            notes.append(f"wavelength={wavelength} Å given; the file says {header['wavelength']} Å (ignored)")
        header["wavelength"] = float(wavelength)
    if x_quantity == "2theta" and "wavelength" not in header:
        notes.append("x is 2θ (degrees) and no wavelength is known; give wavelength= (Å) to convert to Q")
    return MeasuredData(path, fmt, x, y, err, x_quantity, y_quantity, header, notes)


def _checked_errors(path: Path, table: _Table, x, y, err, rows, notes: list[str]):
    """Drop zero-padded ends (Gudrun, GENIE: y = 0 with err = 0 is no measurement); refuse errors <= 0."""
    real = (y != 0) | (err != 0)
    if not real.any():
        raise InputError(f"{path}: every row has y = 0 and err = 0; there is no measurement in the file")
    lo, hi = int(np.argmax(real)), len(real) - int(np.argmax(real[::-1]))
    if lo > 0 or hi < len(real):
        notes.append(f"dropped {lo + len(real) - hi} zero-padded rows (y = 0, err = 0) at the ends")
        x, y, err, rows = x[lo:hi], y[lo:hi], err[lo:hi], rows[lo:hi]
    if (err == 0).all():
        notes.append("the error column is all zero; errors ignored")
        return x, y, None, rows
    if (err <= 0).any():
        raise InputError(
            f"{path}: the error column is <= 0 at {table.where(int(rows[np.argmax(err <= 0)]))}; errors must be "
            "> 0 (fix the row, or pass columns=(x, y) to ignore the errors)"
        )
    return x, y, err, rows


def _order(path, table: _Table, rows, x, y, err, notes: list[str]):
    """Sort by x and average repeated x (digitized curves repeat x along steep rises); refuse restarts."""
    steps = np.diff(x)
    if (steps < 0).sum() > (steps > 0).sum():
        x, y, err, rows = x[::-1], y[::-1], (err[::-1] if err is not None else None), rows[::-1]
        notes.append("x was in descending order; reversed")
        steps = np.diff(x)
    if (steps < 0).any():
        drop = int(np.argmin(steps))
        if -steps[drop] > 0.5 * (x.max() - x.min()):
            raise InputError(
                f"{path}: x falls back from {x[drop]:g} to {x[drop + 1]:g} at {table.where(int(rows[drop + 1]))} "
                "(several data sets in one file?); keep one curve per file"
            )
        order = np.argsort(x, kind="stable")
        notes.append(f"sorted {int((steps < 0).sum())} out-of-order x values (digitized curve?)")
        x, y, err = x[order], y[order], (err[order] if err is not None else None)
    unique, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    if len(unique) < len(x):
        y = np.bincount(inverse, weights=y) / counts
        if err is not None:  # the error of a mean of n values: sqrt(Σσ²)/n
            err = np.sqrt(np.bincount(inverse, weights=err**2)) / counts
        notes.append(
            f"averaged {int((counts > 1).sum())} groups of repeated x values "
            f"({len(x) - len(unique)} points merged; digitized curve?)"
        )
        x = unique
    return x, y, err


# ----------------------------------------------------------------------------------------------------------
# Format readers
# ----------------------------------------------------------------------------------------------------------

_START_DATA = re.compile(r"^#+\s*start data", re.I)


def _suffix(path: Path) -> str:
    return path.suffix.lower().lstrip(".")


def _comment_names(line: str, width: int, comments: str = "#") -> list[str] | None:
    """Column names from a header line (comment marks removed) when it names exactly ``width`` columns."""
    text = line.strip().lstrip(comments).strip()
    if text[:2] in ("L ", "L\t"):  # SPEC-style "#L r G(r) dr dG(r)"
        text = text[2:]
    if re.search(r"[,;]", text):
        names = [n.strip() for n in re.split(r"[,;]+", text) if n.strip()]
    else:  # "Q (nm-1)  S(Q)": a bracketed unit after a space belongs to the name before it
        names = re.sub(r"\s+(?=[(\[])", "", text).split()
    if len(names) != width or _numbers(text) is not None:
        return None
    return names


# PDFgetX3 (.gr .sq .fq .iq): "[DEFAULT]" + "key = value" lines + "#### start data" + "#S 1" + "#L r($\AA$)  G(...)"
# Checked against diffpy's pdfgetx output header (CONFIG_ASCII_HEADER with "version = diffpy.pdfgetx-2.2.1" in
# public test data, find_string "version = diffpy.pdfgetx") and GSAS-II's PDFgetX3-style writer
# (AdvancedPhotonSource/GSAS-II GSASIIIO "#L r($\AA$)  G($\AA^{-2}$)").
_PDFGETX3_DEFAULTS = {"gr": ("r", "G(r)"), "sq": ("Q", "S(Q)"), "fq": ("Q", "F(Q)"), "iq": ("Q", "I(Q)")}


def _detect_pdfgetx3(lines: list[str]) -> bool:
    return any(re.fullmatch(r"\[\w+\]", line.strip()) for line in lines) and any(
        _START_DATA.match(line) for line in lines
    )


def _start_data(lines: Sequence[str]) -> int:
    return next((i for i, line in enumerate(lines) if _START_DATA.match(line)), -1)


def _spec_labels(lines: Sequence[str], start: int, first: int) -> list[str] | None:
    """The text of the last ``#L`` line between ``start`` and the first data line."""
    labels = [line for line in lines[start:first] if line.startswith("#L")]
    return labels[-1][2:].split() if labels else None


def _read_pdfgetx3(path: Path, text: str, columns=None, wavelength=None) -> MeasuredData:
    lines = text.splitlines()
    start = _start_data(lines)
    raw: dict[str, str] = {}
    for line in lines[: max(start, 0)]:
        body = _strip_comment(line, "#")
        if "=" in body and not body.startswith("["):
            key, _, value = body.partition("=")
            raw[key] = value
    notes: list[str] = []
    layout = _Layout(_read_table(path, lines, max(start, 0)), header=_canonical_header(raw, notes), notes=notes)
    layout.x_quantity, layout.y_quantity = _PDFGETX3_DEFAULTS.get(_suffix(path), ("unknown", None))
    if start < 0 and not raw:
        layout.y_quantity = None
        notes.append(f"no PDFgetX3 header: y is not labelled (x taken as {layout.x_quantity} from the extension)")
    _use_names(layout, _spec_labels(lines, max(start, 0), layout.table.first))
    return _finish(path, "pdfgetx3", layout, columns, wavelength)


# PDFgui / PDFgetN / PDFgetX2 / Mantid SavePDFGui .gr: free header, "##### start data", "#L r G(r) dr dG(r)",
# columns r, G, dr, dG. Checked against diffpy/diffpy.pdfgui src/diffpy/pdfgui/control/pdfdataset.py
# (readStr: 4th column dGobs is the error of G, 3rd is drobs; header regexes qmax=, qdamp|qsig=, qbroad|qalp=,
# temperature|temp|T=, "x-ray|PDFgetX" / "neutron|PDFgetN") and mantidproject/mantid SavePDFGui.cpp
# ("#Comment: neutron, Qmin=…, Qmax=…, Qdamp=…, Qbroad=…", "#L r G(r) dr dG(r)", dr written as 0).
_PDFGUI_KEYS = re.compile(
    rf"\b(qmax|qmin|qdamp|qsig|qbroad|qalp|dscale|spdiameter|temperature|temp|T|doping)\s*=\s*({_FLOAT})", re.I
)


def _detect_pdfgui(lines: list[str]) -> bool:
    return not _detect_pdfgetx3(lines) and any(
        _START_DATA.match(line) or re.match(r"#\s*Comment:|stype\s*=|#S 1 - PDF from", line) for line in lines
    )


def _read_pdfgui(path: Path, text: str, columns=None, wavelength=None) -> MeasuredData:
    lines = text.splitlines()
    start = _start_data(lines)
    head = "\n".join(lines[: max(start, 0)])
    raw = {("temperature" if key in ("T", "t", "temp") else key): value for key, value in _PDFGUI_KEYS.findall(head)}
    if re.search(r"x-?ray|PDFgetX|stype\s*=\s*X", head, re.I):
        raw["mode"] = "xray"
    elif re.search(r"neutron|PDFgetN|stype\s*=\s*N", head, re.I):
        raw["mode"] = "neutron"
    notes: list[str] = []
    table = _read_table(path, lines, max(start, 0))
    layout = _Layout(table, header=_canonical_header(raw, notes), notes=notes, x_quantity="r")
    width = table.values.shape[1]
    if not _use_names(layout, _spec_labels(lines, max(start, 0), table.first)):
        # PDFgui: r, G, dr, dG (4+ columns: the 4th is the error of G, the 3rd the error of r);
        # 3 columns are read as r, G, dG here (PDFgui itself would take the 3rd as dr)
        layout.err = 3 if width >= 4 else (2 if width == 3 else None)
        if width == 3:
            notes.append("3 columns read as r, G, dG (the 3rd column is taken as the error of G)")
        if start >= 0 or raw:
            layout.y_quantity = "G(r)"
    return _finish(path, "pdfgui", layout, columns, wavelength)


# RMCProfile experimental data (.fq .sq .gr .dr): line 1 the number of points, line 2 a title, then x y [err];
# or STOG style "# Key: value" lines. Checked against the RMCProfile manual v6.7.9 §4.12 as summarised in
# fabiocampolim-design/rmcprofile-skill references/formats.md, and GSAS-II's RMCProfile writer
# ('%20d' count line, file name as title, then "q f(q)" rows). RMCProfile's F(Q) is Keen's (barn/sr/atom) and
# its G(r) is Keen's G(r) (barn); the files do not label y, so the extension decides.
_RMC_Y = {"fq": ("Q", "F_keen(Q)"), "sq": ("Q", "S(Q)"), "gr": ("r", "G_keen(r)"), "dr": ("r", "D(r)")}


def _detect_rmcprofile(lines: list[str]) -> bool:
    body = [line.strip() for line in lines if line.strip()]
    if len(body) >= 3 and re.fullmatch(r"\d+", body[0]) and _numbers(body[1]) is None:
        values = _numbers(body[2])
        return values is not None and len(values) >= 2
    return any(re.match(r"#\s*(File|Title|Number of points)\s*:", line) for line in body[:20]) and any(
        line.startswith("# ---") or line.startswith("#---") for line in body[:40]
    )


def _read_rmcprofile(path: Path, text: str, columns=None, wavelength=None) -> MeasuredData:
    lines = text.splitlines()
    body = [i for i, line in enumerate(lines) if line.strip()]
    raw: dict[str, str] = {}
    notes: list[str] = []
    start = 0
    if body and re.fullmatch(r"\d+", lines[body[0]].strip()):
        raw["npoints"] = lines[body[0]].strip()
        raw["title"] = lines[body[1]].strip() if len(body) > 1 else ""
        start = body[1] + 1 if len(body) > 1 else 1
    for line in lines:
        match = re.match(r"#\s*([A-Za-z][\w ]*?)\s*:\s*(.+)", line)
        if match:
            raw[match[1]] = match[2]
    x_quantity, y_quantity = _RMC_Y.get(_suffix(path), ("unknown", None))
    table = _read_table(path, lines, start)
    header = _canonical_header(raw, notes)
    stated = header.get("npoints", header.get("number of points"))
    if isinstance(stated, float) and int(stated) != len(table.values):
        notes.append(f"the file says {int(stated)} points but holds {len(table.values)}")
    if y_quantity:
        notes.append(f"RMCProfile files do not label y; {y_quantity} assumed from the .{_suffix(path)} extension")
    width = table.values.shape[1]
    layout = _Layout(table, err=2 if width >= 3 else None, x_quantity=x_quantity, y_quantity=y_quantity)
    layout.header, layout.notes = header, notes
    return _finish(path, "rmcprofile", layout, columns, wavelength)


# Gudrun (.mint01 .mdcs01 .dcs01 .mgor01 .mdor01): "#" header (file name, title, numbers), then columns
# x, y, err per detector group (x, y1, e1, y2, e2, ... in per-group .dcs01). Checked against Dissolve's example
# data (disorderedmaterials/dissolve examples/*/data/*.mint01; /work/scratch/expdata/SiO2_NIMROD.mint01) and its
# reader src/io/import/data1D_mint.cpp, which takes x as histogram bin left edges and converts them to bin
# centres (Filters::convertBinBoundaries, dropping the last row), as Gudrun's own gnuplot scripts do for .dcs01
# (x plotted at (x_n + x_{n-1})/2); Mantid's LoadGudrunOutput (X, Y, E, Y1, E1, ...); GudPy's plot labels
# (mint01 / mdcs01: "DCS, barns/sr/atom" against Q in 1/Å; mgor01 / mdor01 against r in Å).
_GUDRUN_KINDS = {  # extension stem → (x quantity, y quantity, x holds bin edges, what y is)
    "mint": ("Q", "F_keen(Q)", True, "interference differential cross section F(Q), barn/sr/atom"),
    "mdcs": ("Q", "I(Q)", True, "merged differential cross section, barn/sr/atom, self scattering included"),
    "dcs": ("Q", "I(Q)", True, "differential cross section per detector group, barn/sr/atom, self included"),
    "mgor": ("r", "G_keen(r)", False, "Keen's G(r), barn"),
    "mdor": ("r", "D(r)", False, "Keen's D(r) = 4πρr G(r)"),
}
_GUDRUN_NAME = re.compile(r"#\s*\S+\.(mint|mdcs|dcs|mgor|mdor)\d\d\s*$", re.I)


def _detect_gudrun(lines: list[str]) -> bool:
    return bool(lines) and bool(_GUDRUN_NAME.match(lines[0]))


def _gudrun_kind(path: Path, lines: Sequence[str]) -> str | None:
    stem = re.fullmatch(r"(mint|mdcs|dcs|mgor|mdor)\d\d", _suffix(path))
    if stem:
        return stem[1]
    match = _GUDRUN_NAME.match(lines[0]) if lines else None
    return match[1].lower() if match else None


def _read_gudrun(path: Path, text: str, columns=None, wavelength=None) -> MeasuredData:
    lines = text.splitlines()
    kind = _gudrun_kind(path, lines)
    x_quantity, y_quantity, edges, what = _GUDRUN_KINDS.get(kind or "", ("unknown", None, False, ""))
    table = _read_table(path, lines)
    head = [line.lstrip("#").strip() for line in lines[: table.first] if line.startswith("#")]
    header: dict[str, Any] = {"run": head[0]} if head else {}
    if len(head) > 1:
        header["title"] = head[1]
    notes = [f"Gudrun {what}"] if what else ["Gudrun output of unknown kind: x and y not labelled"]
    width = table.values.shape[1]
    if width > 3 and (width - 1) % 2 == 0 and columns is None:
        raise InputError(
            f"{path}: holds {(width - 1) // 2} detector groups (x, y, err each); pick one with "
            "columns=(0, 1, 2), (0, 3, 4), ... or read the merged .mdcs01 / .mint01"
        )
    if edges:
        values = table.values
        table.values = np.column_stack([0.5 * (values[:-1, 0] + values[1:, 0]), values[:-1, 1:]])
        notes.append("x holds histogram bin edges (Gudrun); converted to bin centres as Dissolve does")
    layout = _Layout(table, err=2 if width >= 3 else None, x_quantity=x_quantity, y_quantity=y_quantity)
    layout.header, layout.notes = header, notes
    return _finish(path, "gudrun", layout, columns, wavelength)


# ISIS GENIE / EPSR ASCII (.dat): "# ****** stream = 1 start = … end = … npt= …", "# Bin no. x y e", then
# bin number, x, y, e. Checked against Dissolve's EPSR example data (NeutronSiO2sq.dat, in
# /work/scratch/expdata/silica_epsr_dissolve). The file does not state what x and y are.
def _detect_genie(lines: list[str]) -> bool:
    return any(re.match(r"#\s*Bin no\.", line) or "****** stream" in line for line in lines[:20])


def _read_genie(path: Path, text: str, columns=None, wavelength=None) -> MeasuredData:
    lines = text.splitlines()
    table = _read_table(path, lines)
    head = " ".join(line for line in lines[: table.first] if line.startswith("#") and "=" in line)
    raw = dict(re.findall(rf"(\w+)\s*=\s*({_FLOAT})", head))
    notes: list[str] = []
    width = table.values.shape[1]
    if width < 3:
        raise InputError(f"{path}: a GENIE file needs bin, x, y[, e] columns; found {width}")
    layout = _Layout(table, x=1, y=2, err=3 if width >= 4 else None, header=_canonical_header(raw, notes))
    layout.names = ["bin", "x", "y", "e"][:width] if width <= 4 else None
    layout.notes = notes + ["GENIE/EPSR file: column 1 is the bin number; the file does not say what x and y are"]
    return _finish(path, "genie", layout, columns, wavelength)


# Fit2D .chi: line 1 title, line 2 x label ("2-Theta Angle (Degrees)", "Q (Inverse Nanometres)",
# "D-spacing (Angstroms)", "Radial Distance (mm)"), line 3 y label, line 4 the number of points (optionally a
# second number), then x y rows. Checked against Fit2D's own labels (find_string "2-Theta Angle (Degrees)":
# Fit2D source mxlabel assignments) and chi writers in public code that write the same four lines.
def _detect_fit2d(lines: list[str]) -> bool:
    if len(lines) < 5:
        return False
    label = lines[1].lower()
    count = lines[3].split()
    return (
        any(word in label for word in ("2-theta", "q (", "d-spacing", "radial distance", "angle"))
        and bool(count)
        and count[0].isdigit()
        and _first_data_line(lines, 4, 5) == 4
    )


def _fit2d_axis(path: Path, label: str) -> tuple[str, float, bool]:
    """``(x quantity, factor, x is d-spacing)`` for a Fit2D x label."""
    low = label.lower()
    if "2-theta" in low or "2theta" in low:
        return ("2theta", 180.0 / math.pi, False) if "rad" in low else ("2theta", 1.0, False)
    if low.startswith("q"):
        return "Q", (0.1 if _unit_kind(low) == "nm" else 1.0), False
    if low.startswith("d-spacing"):
        return "Q", (10.0 if _unit_kind(low) == "nm" else 1.0), True
    if "radial" in low or _unit_kind(low) == "mm":
        raise InputError(f"{path}: x is a radial distance on the detector ({label}); integrate in 2θ or Q instead")
    return "unknown", 1.0, False


def _read_fit2d(path: Path, text: str, columns=None, wavelength=None) -> MeasuredData:
    lines = text.splitlines()
    if not _detect_fit2d(lines):
        raise InputError(
            f"{path}: not a Fit2D .chi file (line 2 names the x axis, line 4 the number of points); "
            "try fmt='larch' or fmt='plain'"
        )
    x_quantity, x_scale, d_spacing = _fit2d_axis(path, lines[1].strip())
    table = _read_table(path, lines, 4)
    notes: list[str] = []
    header = {"title": lines[0].strip(), "x_label": lines[1].strip(), "y_label": lines[2].strip()}
    count = lines[3].split()
    if count and count[0].isdigit() and int(count[0]) != len(table.values):
        notes.append(f"the file says {count[0]} points but holds {len(table.values)}")
    if d_spacing:
        with np.errstate(divide="ignore"):
            table.values = table.values.copy()
            table.values[:, 0] = 2.0 * np.pi / (table.values[:, 0] * x_scale)
        x_scale = 1.0
        notes.append("x was d-spacing; converted to Q = 2π/d")
    if x_quantity == "unknown":
        notes.append(f"unrecognised x label {lines[1].strip()!r}")
    y_quantity = "I(Q)" if "intens" in lines[2].lower() else None
    width = table.values.shape[1]
    layout = _Layout(table, err=2 if width >= 3 else None, x_quantity=x_quantity, y_quantity=y_quantity)
    layout.x_scale, layout.y_scale, layout.header, layout.notes = x_scale, 1.0, header, notes
    return _finish(path, "fit2d-chi", layout, columns, wavelength)


# pyFAI 1D output (.dat .xy): "# == pyFAI calibration ==" header with "# Wavelength: 1e-10 m" (metres), then a
# column line "#  2th_deg  I  sigma" or "#  q_nm^-1  I  sigma". Checked against pyFAI's AzimuthalIntegrator
# save1D/makeHeaders (public pyFAI source: "#%14s %14s %s" % (dim1_unit, "I ", ...), "Wavelength: %s") and the
# unit names of pyFAI.units (2th_deg, 2th_rad, q_nm^-1, q_A^-1, r_mm).
_PYFAI_COLUMN = re.compile(r"#\s*(2th_deg|2th_rad|q_nm\^-1|q_A\^-1|r_mm|r_m|d\*2_A\^-2|d\*2_nm\^-2|chi_deg)\b", re.I)


def _detect_pyfai(lines: list[str]) -> bool:
    return any("pyFAI" in line or _PYFAI_COLUMN.match(line) for line in lines if line.startswith("#"))


def _read_pyfai(path: Path, text: str, columns=None, wavelength=None) -> MeasuredData:
    lines = text.splitlines()
    table = _read_table(path, lines)
    raw: dict[str, str] = {}
    names = None
    for line in lines[: table.first]:
        match = re.match(r"#\s*([A-Za-z][\w ]*?)\s*:\s*(.+)", line)
        if match:
            raw[match[1]] = match[2]
        if _PYFAI_COLUMN.match(line):
            names = _comment_names(line, table.values.shape[1])
    notes: list[str] = []
    if "Wavelength" in raw:  # pyFAI writes metres ("1e-10" or "1.0e-10 m")
        value = _as_value(raw.pop("Wavelength").replace(" m", ""))
        if isinstance(value, float):
            raw["wavelength"] = repr(value * 1e10 if value < 1e-6 else value)
    header = _canonical_header(raw, notes)
    if names is None:
        raise InputError(f"{path}: no pyFAI column line (e.g. '# 2th_deg I sigma') before the data; use fmt='plain'")
    if names[0].lower() in _PYFAI_REFUSED:
        raise InputError(f"{path}: x is {names[0]}; integrate in 2θ (2th_deg) or Q (q_A^-1, q_nm^-1) instead")
    layout = _Layout(table, names=names, header=header, notes=notes, y_quantity="I(Q)", y_scale=1.0)
    _use_names(layout, names)
    return _finish(path, "pyfai", layout, columns, wavelength)


# GSAS (.gsa .gsas .fxye .raw .gda): line 1 title, optional "Instrument parameter file: …", "BANK n nchan nrec
# BINTYP bcoef1 bcoef2 bcoef3 bcoef4 TYPE"; constant-wavelength (BINTYP CONS) 2θ in centidegrees. Types read
# here: FXYE (x y esd rows), FXY (x y), ESD (5 × (y, esd) in 8-character fields, x = start + k·step), STD
# (10 × (count-number in 2, y in 6 characters)). Checked against AdvancedPhotonSource/GSAS-II
# GSASII/imports/G2pwd_fxye.py (GetFXYEdata, GetESDdata, GetSTDdata) and GSAS-II's FXYE exporter
# ("BANK 1 %d %d CONS %.2f %.2f 0 0 FXYE", x written as 100·2θ).
def _detect_gsas(lines: list[str]) -> bool:
    return any(line.startswith("BANK") for line in lines)


def _read_gsas(path: Path, text: str, columns=None, wavelength=None) -> MeasuredData:
    lines = text.splitlines()
    banks = [i for i, line in enumerate(lines) if line.startswith("BANK")]
    if not banks:
        raise InputError(f"{path}: no BANK line; this is not a GSAS powder file (try fmt='xye' or 'plain')")
    bank = lines[banks[0]].split()
    stop = next((i for i in range(banks[0] + 1, len(lines)) if lines[i].startswith(("BANK", "#"))), len(lines))
    header: dict[str, Any] = {"title": lines[0].strip(), "bank": bank[1] if len(bank) > 1 else "1"}
    if len(lines) > 1 and lines[1].lower().startswith("inst") and ":" in lines[1]:
        header["instrument_parameter_file"] = lines[1].split(":", 1)[1].strip()
    notes = [f"read bank {header['bank']} of {len(banks)}"] if len(banks) > 1 else []
    bintyp = bank[4].upper() if len(bank) > 4 else ""
    dtype = bank[9].upper() if len(bank) > 9 else "STD"
    if bintyp != "CONS" or dtype not in ("FXYE", "FXY", "ESD", "STD"):
        raise InputError(
            f"{path}: GSAS bank type {bintyp or '?'} {dtype} is not supported (only constant-wavelength CONS with "
            "FXYE, FXY, ESD or STD data); export the pattern as .xye"
        )
    if dtype in ("FXYE", "FXY"):
        layout = _Layout(_read_table(path, lines, banks[0] + 1, stop), x_quantity="2theta", y_quantity="I(Q)")
        layout.x_scale, layout.err = 0.01, (2 if dtype == "FXYE" else None)
    else:
        values = _gsas_fixed(path, lines[banks[0] + 1 : stop], bank, dtype)
        table = _Table(values, lines, banks[0] + 1, stop, "#", rows_per_line=5 if dtype == "ESD" else 10)
        layout = _Layout(table, err=2, x_quantity="2theta", y_quantity="I(Q)")
        if dtype == "STD":
            notes.append("STD data: errors sqrt(max(y, 1)/n) from the counts")
    layout.header, layout.notes, layout.y_scale = header, notes, 1.0
    return _finish(path, "gsas-xye", layout, columns, wavelength)


def _gsas_fixed(path: Path, block: Sequence[str], bank: Sequence[str], dtype: str) -> np.ndarray:
    """The x, y, err table of an ESD or STD bank (fixed-width fields; x = start + k·step, centidegrees)."""
    try:
        n_points, start, step = int(bank[2]), float(bank[5]) / 100.0, float(bank[6]) / 100.0
    except (IndexError, ValueError):
        raise InputError(f"{path}: the BANK line {' '.join(bank)!r} lacks the point count, start or step") from None
    widths = [8] * 10 if dtype == "ESD" else [2, 6] * 10
    padded = [line.ljust(80)[:80] for line in block if line.strip()]
    fields = np.genfromtxt(padded, delimiter=widths, dtype=np.float64).reshape(len(padded), -1)
    pairs = fields.reshape(-1, 2)[:n_points]
    if dtype == "ESD":
        y, err = pairs[:, 0], pairs[:, 1]
    else:
        counts = np.maximum(np.nan_to_num(pairs[:, 0], nan=1.0), 1.0)
        y = pairs[:, 1]
        err = np.sqrt(np.maximum(y, 1.0) / counts)
    x = start + step * np.arange(len(pairs))
    return np.column_stack([x, y, err])


# Athena / Larch ASCII exports (.chik .chi .xmu .nor .xdi): "#" header whose last line names the columns
# ("#  k chi chik chik2 chik3 win energy", "#  energy norm bkg_norm der_norm stddev", "#   energy  mu  i0"),
# XDI-style "# Column.1: energy eV" lines, Larch's "# key = value". Checked against xraypy/xraylarch
# examples/xafsdata/cu_rt01.xmu, examples/fitting/doc_example3/FromAthena/Au foil.nor (5 names, 4 columns),
# larch/io/columnfile.py (read_ascii: last header line → labels, extra labels dropped; write_ascii/write_group)
# and Athena .chik headers quoted in public scripts ("#  k chi chik chik2 chik3 win energy").
_XAS_COMMENTS = "#%!"


def _detect_larch(lines: list[str]) -> bool:
    head = " ".join(lines[:3])
    if re.search(r"Athena data file|XDI/|Larch", head) or any(re.match(r"#\s*Column\.\d+:", ln) for ln in lines):
        return True
    first = _first_data_line(lines, 0, None, _XAS_COMMENTS)
    label = lines[first - 1].lower().lstrip(_XAS_COMMENTS).split() if first > 0 else []
    return ("k" in label and "chi" in label) or ("energy" in label and bool({"mu", "xmu", "norm", "flat"} & {*label}))


def _read_larch(path: Path, text: str, columns=None, wavelength=None) -> MeasuredData:
    lines = text.splitlines()
    table = _read_table(path, lines, comments=_XAS_COMMENTS)
    head = lines[: table.first]
    width = table.values.shape[1]
    raw: dict[str, str] = {}
    xdi: dict[int, tuple[str, str]] = {}
    for line in head:
        body = line.lstrip(_XAS_COMMENTS).strip()
        column = re.match(r"Column\.(\d+)\s*:\s*(\S+)\s*(\S*)", body)
        if column:
            xdi[int(column[1])] = (column[2], column[3])
        elif body.count("=") < 2 and re.fullmatch(r"[\w.]+\s*[:=]\s*\S.*", body):
            key, _, value = re.split(r"\s*([:=])\s*", body, maxsplit=1)
            raw[key] = value
        else:
            raw.update(re.findall(r"\b([A-Za-z]\w*)=\s*([^\s=]+)", body))  # Athena ".  Element=Au   Edge=L3"
    notes: list[str] = []
    if xdi:
        names = [xdi.get(i + 1, (f"col{i + 1}", ""))[0] for i in range(width)]
        units = [xdi.get(i + 1, ("", ""))[1] for i in range(width)]
    else:
        labels = [ln.lstrip(_XAS_COMMENTS).split() for ln in head if ln.strip(_XAS_COMMENTS + " -\t")]
        names = labels[-1] if labels else [f"col{i + 1}" for i in range(width)]
        units = [""] * width
        if len(names) != width:
            notes.append(f"the header names {len(names)} columns for {width} data columns; names matched in order")
            names = (names + [f"col{i + 1}" for i in range(len(names), width)])[:width]
    lower = [name.lower() for name in names]
    layout = _Layout(table, names=names, header=_canonical_header(raw, notes), notes=notes, y_scale=1.0)
    if "k" in lower and "chi" in lower:
        layout.x, layout.y, layout.x_quantity = lower.index("k"), lower.index("chi"), "k"
    elif energy := [i for i, name in enumerate(lower) if name in ("energy", "e", "en")]:
        layout.x, layout.x_quantity = energy[0], "E"
        preferred = ("norm", "normtrans", "normfluor", "flat", "xmu", "mu", "mutrans", "mufluor")
        layout.y = next((lower.index(n) for n in preferred if n in lower), 1 - min(energy[0], 1))
        layout.x_scale = 1000.0 if _unit_kind(units[energy[0]]) == "kev" else 1.0
    else:
        role, quantity, layout.x_scale = _meaning(names[0], 0)
        layout.x_quantity = quantity if role == "x" and quantity else "unknown"
    role, quantity, _ = _meaning(names[layout.y], layout.y)
    layout.y_quantity = quantity if role == "y" else None
    return _finish(path, "larch", layout, columns, wavelength)


# Topas / GSAS-II .xye and plain .xy powder patterns: 2θ, I[, σ] with "#" or "'" comments. Checked against
# GSAS-II's G2pwd_xye.py importer and xye exporter (x y e rows, "/*" or "#" comments).
def _never(lines: list[str]) -> bool:
    return False


def _read_xye(path: Path, text: str, columns=None, wavelength=None) -> MeasuredData:
    lines = text.splitlines()
    table = _read_table(path, lines, comments="#'")
    layout = _named_layout(table, lines, "#'", note_error=False)
    x = table.values[:, layout.x]
    if layout.x_quantity == "unknown" and 20.0 <= x.max() <= 180.0 and x.min() >= 0.0:
        layout.x_quantity = "2theta"
        layout.notes.append(f"x taken as 2θ (degrees) from the .{_suffix(path)} extension and its range")
    if layout.y_quantity is None:
        layout.y_quantity = "I(Q)"  # the format's y is an intensity
    return _finish(path, "xye", layout, columns, wavelength)


def _named_layout(table: _Table, lines: Sequence[str], comments: str, note_error: bool = True) -> _Layout:
    """Columns chosen by the names of a text header line when it has them, else x, y[, err] in order."""
    width = table.values.shape[1]
    previous = [line for line in lines[: table.first] if line.strip(comments + " \t")]
    names = _comment_names(previous[-1], width, comments) if previous else None
    layout = _Layout(table, err=2 if width >= 3 else None)
    if _use_names(layout, names):
        return layout
    if names and not previous[-1].lstrip().startswith(tuple(comments)):
        layout.names = names  # a commented line counts as column names only when they are recognisable
    if width >= 3 and note_error:
        layout.notes.append("column 3 taken as the standard error of y")
    return layout


# Plain numeric table (specguide.io.read_columns' behaviour): whitespace or commas, "#" comments, an optional
# text header line naming the columns ("r g err", "Q,S(Q)").
def _read_plain(path: Path, text: str, columns=None, wavelength=None) -> MeasuredData:
    lines = text.splitlines()
    table = _read_table(path, lines)
    return _finish(path, "plain", _named_layout(table, lines, "#"), columns, wavelength)


def _f(name: str, description: str, extensions: str, detect: Callable[[list[str]], bool], read) -> DataFormat:
    return DataFormat(name, description, tuple(extensions.split()), detect, read)


# Order matters: the first format whose content test passes (among those claiming the extension) wins.
FORMATS: dict[str, DataFormat] = {
    f.name: f
    for f in (
        _f("pdfgui", "PDFgui / PDFgetN / Mantid G(r) (r, G, dr, dG)", "gr", _detect_pdfgui, _read_pdfgui),
        _f("pdfgetx3", "PDFgetX3 output (.gr .sq .fq .iq)", "gr sq fq iq", _detect_pdfgetx3, _read_pdfgetx3),
        _f("rmcprofile", "RMCProfile data (count, title, x y [e])", "fq sq gr dr", _detect_rmcprofile,
           _read_rmcprofile),
        _f("gudrun", "Gudrun output (.mint01 .mdcs01 .dcs01 .mgor01 .mdor01)", "mint01 mdcs01 dcs01 mgor01 mdor01",
           _detect_gudrun, _read_gudrun),
        _f("genie", "ISIS GENIE / EPSR ASCII (bin, x, y, e)", "", _detect_genie, _read_genie),
        _f("fit2d-chi", "Fit2D .chi (title, x label, y label, count)", "chi", _detect_fit2d, _read_fit2d),
        _f("pyfai", "pyFAI 1D integration (.dat .xy)", "", _detect_pyfai, _read_pyfai),
        _f("gsas-xye", "GSAS powder data (BANK, CONS FXYE/FXY/ESD/STD)", "gsa gsas fxye raw gda", _detect_gsas,
           _read_gsas),
        _f("larch", "Athena / Larch / XDI ASCII (.chik .xmu .nor)", "chik chi xmu nor xdi", _detect_larch, _read_larch),
        _f("xye", "powder pattern x, I[, σ] (.xye .xy)", "xye xy", _never, _read_xye),
        _f("plain", "plain numeric columns (optional header line)", "dat txt csv", _never, _read_plain),
    )
}  # fmt: skip


def _read_text(path: Path) -> str:
    if not path.exists():
        raise InputError(f"{path}: no such file; check the path")
    if path.is_dir():
        raise InputError(f"{path}: is a directory; give a data file")
    raw = path.read_bytes()
    if b"\x00" in raw[:4096]:
        raise InputError(f"{path}: is a binary file; export the data as text columns")
    try:
        return raw.decode("utf-8-sig")  # a spreadsheet's byte-order mark is not part of the first column's name
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def guess_format(path: str | Path, lines: Sequence[str] | None = None) -> str:
    """The FORMATS key that ``read_measured`` would use for ``path`` (content first, then the extension)."""
    path = Path(path)
    if lines is None:
        lines = _read_text(path).splitlines()
    first = list(lines[:DETECT_LINES])
    suffix = _suffix(path)
    claiming = [f for f in FORMATS.values() if suffix in f.extensions]
    matching = [f for f in FORMATS.values() if f.detect(first)]
    for candidates in ([f for f in matching if f in claiming], matching, claiming):
        if candidates:
            return candidates[0].name
    return "plain"


def read_measured(
    path: str | Path,
    *,
    fmt: str | None = None,
    columns: Sequence[int | str] | None = None,
    wavelength: float | None = None,
) -> MeasuredData:
    """Read a measured curve from ``path`` in any format of ``FORMATS``.

    ``fmt``: a FORMATS key, overriding the guess from content and extension. ``columns``: 0-based indices or
    column names (``("k", "chik2")``) of x, y[, err], overriding the format's choice. ``wavelength`` (Å): stored
    in ``header["wavelength"]`` (x stays 2θ; see ``to_q``). Raises ``InputError`` with one line for problems.
    """
    path = Path(path)
    if fmt is not None and fmt not in FORMATS:
        raise InputError(f"{path}: unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    text = _read_text(path)
    name = fmt or guess_format(path, text.splitlines())
    return FORMATS[name].read(path, text, columns=columns, wavelength=wavelength)


# ----------------------------------------------------------------------------------------------------------
# Conversions
# ----------------------------------------------------------------------------------------------------------


def two_theta_to_q(two_theta_deg: np.ndarray | float, wavelength: float) -> np.ndarray:
    """Momentum transfer ``Q = 4π sin(θ) / λ`` (Å⁻¹) from the scattering angle 2θ (degrees) and λ (Å)."""
    if not (math.isfinite(wavelength) and wavelength > 0):
        raise ValueError(f"wavelength must be > 0 Å, not {wavelength!r}")
    return 4.0 * np.pi * np.sin(np.radians(np.asarray(two_theta_deg, dtype=np.float64)) / 2.0) / wavelength


def to_q(data: MeasuredData) -> MeasuredData:
    """The same data with x in Q (Å⁻¹): converts 2θ with ``header['wavelength']``; Q data pass through."""
    if data.x_quantity == "Q":
        return data
    if data.x_quantity != "2theta":
        raise InputError(f"{data.path}: x is {data.x_quantity}, not 2θ or Q; it cannot be converted to Q")
    wavelength = data.header.get("wavelength")
    if not isinstance(wavelength, float):
        raise InputError(f"{data.path}: x is 2θ (degrees); give the wavelength: wavelength=0.1665 (Å)")
    q = two_theta_to_q(data.x, wavelength)
    notes = [*data.notes, f"converted 2θ to Q with λ = {wavelength:g} Å"]
    return replace(data, x=q, x_quantity="Q", notes=notes)


def keen_to_faber_ziman(q: np.ndarray, f_keen: np.ndarray, composition: Mapping[str, float] | str) -> np.ndarray:
    """Faber–Ziman ``S(Q)`` from Keen's ``F(Q)`` (barn/sr/atom, Gudrun .mint01, RMCProfile): ``S − 1 = F / ⟨b⟩²``.

    ``⟨b⟩ = Σ_a c_a b_a`` with coherent lengths b_a (fm, periodictable) and 1 barn = 100 fm². ``q`` (Å⁻¹) must
    match ``f_keen`` point for point. ``composition``: ``{symbol: fraction}`` or a formula (``"SiO2"``).
    """
    from specguide.observables.weights import neutron_scattering_length

    q, f_keen = np.asarray(q, dtype=np.float64), np.asarray(f_keen, dtype=np.float64)
    if q.shape != f_keen.shape:
        raise ValueError(f"q {q.shape} and F(Q) {f_keen.shape} must have the same shape")
    fractions = parse_composition(composition) if isinstance(composition, str) else dict(composition)
    total = sum(fractions.values())
    if not fractions or total <= 0:
        raise ValueError(f"composition {composition!r} has no atoms")
    b_mean = sum(c * neutron_scattering_length(atomic_numbers[s]) for s, c in fractions.items()) / total  # fm
    b2_barn = b_mean**2 / 100.0
    if b2_barn < 1e-12:
        raise ValueError(f"⟨b⟩ = 0 for {composition!r} (a null-scattering alloy): Faber-Ziman S(Q) is undefined")
    return 1.0 + f_keen / b2_barn


def looks_like(data: MeasuredData) -> str | None:
    """A guess from the shape of y of what a total-scattering curve is, when the file does not say.

    Real space (x_quantity ``r``): ``g(r)`` if y ≥ −0.1 everywhere and its last quarter averages ≈ 1;
    ``G(r)`` if y dips below −0.5, its last quarter averages ≈ 0 and, below the first peak, y falls linearly
    from ≈ 0 at r = 0 (−4πρr; Keen's D(r) has the same shape); ``RDF`` if y ≥ 0 and grows like r² at large r.
    Reciprocal space (``Q``): ``S(Q)`` if y ≥ −0.2 and its last quarter averages ≈ 1; ``F(Q)`` if y averages
    ≈ 0 at high Q while its oscillations keep at least 35 % of their mid-range amplitude (Q[S − 1] decays a
    power of Q more slowly than S − 1; S − 1 and Keen's F(Q) usually give None). Otherwise None.
    """
    x, y = np.asarray(data.x, dtype=np.float64), np.asarray(data.y, dtype=np.float64)
    if len(x) < 10 or data.x_quantity not in ("r", "Q"):
        return None
    span = x[-1] - x[0]
    tail = y[x >= x[0] + 0.75 * span]
    amplitude = max(float(np.abs(y).max()), 1e-12)
    if data.x_quantity == "r":
        if y.min() >= -0.1 and abs(tail.mean() - 1.0) < 0.2:
            return "g(r)"
        peak = int(np.argmax(y))
        trough = int(np.argmin(y[: peak + 1]))
        if y.min() < -0.5 and abs(tail.mean()) < 0.1 * amplitude and trough >= 2:
            slope, intercept = np.polyfit(x[: trough + 1], y[: trough + 1], 1)
            linear = np.corrcoef(x[: trough + 1], y[: trough + 1])[0, 1] < -0.9
            if linear and slope < 0 and abs(intercept) < 0.3 * abs(y[trough]):
                return "G(r)"
        if y.min() >= -0.05 * amplitude and len(tail) >= 3 and np.corrcoef(x[-len(tail) :] ** 2, tail)[0, 1] > 0.8:
            return "RDF"
        return None
    if y.min() >= -0.2 and abs(tail.mean() - 1.0) < 0.1:
        return "S(Q)"
    middle = y[(x >= x[0] + span / 3) & (x < x[0] + 2 * span / 3)]
    last = y[x >= x[0] + 2 * span / 3]
    if abs(tail.mean()) < 0.1 * amplitude and last.std() >= 0.35 * middle.std() > 0:
        return "F(Q)"
    return None
