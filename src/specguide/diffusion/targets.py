"""Measured spectra as guidance targets: read a text/CSV file, check it, convert units, resample onto a grid.

A target is named on the command line as ``KIND:FILE[:key=value,...]``:

- ``KIND``: ``gr`` (g(r)), ``pdf`` (G(r) = 4πρr[g(r) − 1], Å⁻²), ``rdf`` (4πr²ρg(r), Å⁻¹), ``adf`` (bond
  angles, degrees), ``sq`` (S(Q)), ``fq`` (F(Q) = Q[S(Q) − 1]), ``xrd`` (X-ray I(Q)), ``nd`` (neutron I(Q));
  conventions as in docs/CONVENTIONS.md;
- ``FILE``: two or more numeric columns (whitespace or commas; ``#`` comments and a text header are skipped):
  x, y and, if present, the standard error of y (used as weights 1/err²);
- keys: ``units`` of x (``A`` | ``nm`` for real space, ``A-1`` | ``nm-1`` for Q, ``deg`` | ``rad`` for
  angles; default Å, Å⁻¹, degrees); ``weighting`` (``number`` | ``xray`` | ``neutron``, for gr/pdf/rdf/sq/fq);
  ``weight`` (this target's share of the loss, default 1); ``range`` (``lo-hi`` in Å, Å⁻¹ or degrees: only this
  part of the data guides); ``scale`` and ``offset`` (``fit`` | ``fixed``: fit ``a F + b`` to the data per
  replica; default ``fit`` for xrd/nd, whose absolute scale is rarely known, ``fixed`` otherwise);
  ``sigma`` (Å, Gaussian broadening of real-space spectra, default 0.15); ``columns`` (1-based, e.g. ``1,2``
  or ``1,2,3``); ``cutoff`` (Å, bond cutoff for adf); ``surrogate`` (checkpoint of a learned XANES / EXAFS
  surrogate, for the kinds ``xanes`` and ``exafs``, whose x column is on the surrogate's grid: eV, Å⁻¹, or the
  index 0…G−1 when the training data had no energies); ``core`` (for gr / pdf / rdf: the weight of the grid
  points inside the excluded core, below the first-neighbour onset, where no pair belongs; default 1. GLASS
  weights small r more to suppress unphysical short bonds; the README's far-target recipe uses ``core=100``).
  The loss is a weighted *mean* (see specguide.diffusion.guidance), so a large ``core`` also takes weight from
  the rest of the curve: with ``core=100`` on a 0–8 Å a-Si g(r) the core's ~25 % of points carry ~97 % of the
  weight, and once the core is empty the normalised step pulls on the rest ~5x (√ of the mean weight) more weakly
  than with ``core=1``; raise the strength to compensate.

The observable's grid spans the part of its default grid (r: 0–8 Å in 0.02 Å, limited by half the cell;
Q: 0.5–20 Å⁻¹ in 0.05 Å⁻¹; angles: 1° bins) that the data cover; the data are interpolated linearly onto it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from specguide.diffusion.guidance import Target
from specguide.io import InputError, read_columns
from specguide.observables.registry import (
    KINDS,
    REAL_SPACE_KINDS,
    RECIPROCAL_KINDS,
    SURROGATE_KINDS,
    build_observable,
)

DR = 0.02  # Å
DQ = 0.05  # Å⁻¹
R_MAX_DEFAULT = 8.0  # Å
Q_LIMITS = (0.5, 20.0)  # Å⁻¹
UNITS = {
    "real": {"a": 1.0, "å": 1.0, "angstrom": 1.0, "nm": 10.0},
    "reciprocal": {"a-1": 1.0, "1/a": 1.0, "å-1": 1.0, "1/å": 1.0, "nm-1": 0.1, "1/nm": 0.1},
    "angle": {"deg": 1.0, "degree": 1.0, "degrees": 1.0, "rad": 180.0 / math.pi},
}
KEYS = ("units", "weighting", "weight", "range", "scale", "offset", "sigma", "columns", "cutoff", "surrogate", "core")
CORE_FRACTION = 0.01  # the core ends where g(r) first reaches this fraction of its maximum


@dataclass
class TargetSpec:
    """A parsed ``KIND:FILE[:key=value,...]``: what to read and how to use it."""

    kind: str
    path: Path
    options: dict[str, str] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.kind}:{self.path.name}"


def parse_target_spec(text: str) -> TargetSpec:
    """Parse ``KIND:FILE[:key=value,...]`` (``InputError`` with the fix for anything malformed)."""
    kind, sep, rest = text.partition(":")
    kind = kind.strip().lower()
    if not sep or not rest:
        raise InputError(f"--target {text!r}: write KIND:FILE[:key=value,...], e.g. gr:measured_gr.dat:units=A")
    if kind not in KINDS:
        raise InputError(f"--target {text!r}: unknown kind {kind!r}; choose one of {', '.join(KINDS)}")
    path_text, options = rest, {}
    if ":" in rest:
        head, _, tail = rest.rpartition(":")
        if "=" in tail:
            path_text = head
            options = _parse_options(text, tail)
    return TargetSpec(kind, Path(path_text), options)


def _parse_options(text: str, tail: str) -> dict[str, str]:
    options: dict[str, str] = {}
    # "columns=1,2,3" contains commas: split on commas that start a new key=value
    parts: list[str] = []
    for chunk in tail.split(","):
        if "=" in chunk or not parts:
            parts.append(chunk)
        else:
            parts[-1] += "," + chunk
    for part in parts:
        key, sep, value = part.partition("=")
        key = key.strip().lower()
        if not sep or key not in KEYS:
            raise InputError(f"--target {text!r}: unknown option {part!r}; known keys: {', '.join(KEYS)}")
        options[key] = value.strip()
    return options


def _float_option(spec: TargetSpec, key: str, default: float) -> float:
    if key not in spec.options:
        return default
    try:
        value = float(spec.options[key])
    except ValueError:
        raise InputError(f"{spec.path}: option {key}={spec.options[key]!r} is not a number") from None
    if not math.isfinite(value) or value < 0:
        raise InputError(f"{spec.path}: option {key}={spec.options[key]!r} must be a finite number >= 0")
    return value


def _space(kind: str) -> str:
    if kind in REAL_SPACE_KINDS:
        return "real"
    if kind in RECIPROCAL_KINDS:
        return "reciprocal"
    if kind in SURROGATE_KINDS:
        return "surrogate"
    return "angle"


def read_target_data(spec: TargetSpec) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """``(x, y, err or None)`` from the file, x converted to Å / Å⁻¹ / degrees and checked."""
    table = read_columns(spec.path)
    columns = spec.options.get("columns")
    if columns:
        try:
            index = [int(c) - 1 for c in columns.split(",")]
        except ValueError:
            raise InputError(
                f"{spec.path}: columns={columns!r}; give 1-based column numbers like 1,2 or 1,2,3"
            ) from None
        if len(index) not in (2, 3) or min(index) < 0 or max(index) >= table.shape[1]:
            raise InputError(f"{spec.path}: columns={columns!r} does not fit a table of {table.shape[1]} columns")
    else:
        index = [0, 1, 2] if table.shape[1] >= 3 else [0, 1]
    x, y = table[:, index[0]].copy(), table[:, index[1]].copy()
    err = table[:, index[2]].copy() if len(index) == 3 else None

    space = _space(spec.kind)
    if space == "surrogate":  # x is on the surrogate's own grid (eV, Å⁻¹ or index): no conversion
        if "units" in spec.options:
            raise InputError(f"{spec.path}: units do not apply to {spec.kind}; x must be on the surrogate's grid")
        if len(x) < 5 or not (np.diff(x) > 0).all():
            raise InputError(f"{spec.path}: need at least 5 points with x increasing strictly")
        return x, y, err
    unit = spec.options.get("units", {"real": "A", "reciprocal": "A-1", "angle": "deg"}[space]).lower()
    if unit not in UNITS[space]:
        raise InputError(
            f"{spec.path}: units={unit!r} do not fit a {spec.kind} target; use one of {', '.join(UNITS[space])}"
        )
    x *= UNITS[space][unit]
    if spec.kind in ("fq",) and unit.startswith(("nm", "1/nm")):
        y *= 0.1  # F(Q) = Q[S(Q) - 1] carries the unit of Q
    if len(x) < 5:
        raise InputError(f"{spec.path}: only {len(x)} data points; a spectrum needs at least 5")
    steps = np.diff(x)
    if not (steps > 0).all():
        bad = int(np.argmax(steps <= 0)) + 1
        raise InputError(
            f"{spec.path}: x must increase strictly (row {bad + 1} does not); sort the data and remove duplicates"
        )
    if err is not None and not (err > 0).all():
        raise InputError(f"{spec.path}: the error column must be > 0 everywhere (it weights points by 1/err²)")
    if "units" not in spec.options:
        if space == "real" and x.max() < 1.5:
            raise InputError(f"{spec.path}: r only reaches {x.max():.3g}; if r is in nm, add :units=nm")
        if space == "reciprocal" and x.max() > 80:
            raise InputError(f"{spec.path}: Q reaches {x.max():.3g}; if Q is in nm⁻¹, add :units=nm-1")
        if space == "angle" and x.max() < 2 * math.pi + 1e-6:
            raise InputError(f"{spec.path}: angles only reach {x.max():.3g}; if they are in radians, add :units=rad")
    return x, y, err


def core_mask(kind: str, grid: np.ndarray, y: np.ndarray, fraction: float = CORE_FRACTION) -> np.ndarray:
    """Grid points ``[n]`` (bool) inside the excluded core of a real-space target: below the first-neighbour onset.

    ``gr``: where g(r) has not yet reached ``fraction`` of its maximum; ``rdf`` (4πr²ρg): the same on y / r²;
    ``pdf`` (G(r) = 4πρr[g − 1], which falls as −4πρr while g = 0): below the lowest point of G before its
    maximum, where the first shell sets in (no density needed). Empty if the data start past the onset.
    """
    grid, y = np.asarray(grid, dtype=float), np.asarray(y, dtype=float)
    if kind not in REAL_SPACE_KINDS:
        raise ValueError(f"the excluded core is defined for real-space targets ({', '.join(REAL_SPACE_KINDS)}), "
                         f"not {kind}")  # fmt: skip
    if kind == "pdf":
        onset = int(np.argmin(y[: int(np.argmax(y)) + 1]))
    else:
        shape = y if kind == "gr" else y / np.maximum(grid, 1e-6) ** 2
        onset = int(np.argmax(shape > fraction * shape.max()))
    return grid < grid[onset]


def load_target(spec: TargetSpec | str, half_cell: float) -> Target:
    """Read a target file and put it onto its observable's grid for cells whose half width is ``half_cell`` (Å).

    Raises ``InputError`` (naming the file and the fix) for malformed files, non-monotonic or non-overlapping
    grids and unusable options.
    """
    if isinstance(spec, str):
        spec = parse_target_spec(spec)
    x, y, err = read_target_data(spec)
    kind, space = spec.kind, _space(spec.kind)
    weighting = spec.options.get("weighting", "number").lower()
    if weighting not in ("number", "xray", "neutron"):
        raise InputError(f"{spec.path}: weighting={weighting!r}; use number, xray or neutron")
    sigma = _float_option(spec, "sigma", 0.15)
    cutoff = _float_option(spec, "cutoff", 0.0) or None
    r_limit = math.floor(min(R_MAX_DEFAULT, half_cell) / DR) * DR
    try:
        if space == "real":
            r_max = min(r_limit, math.ceil(x.max() / DR) * DR)
            if r_max < 1.0:
                raise InputError(
                    f"{spec.path}: the data reach {x.max():.3g} Å; a real-space target needs data beyond 1 Å"
                )
            observable = build_observable(kind, weighting=weighting, r_max=r_max, dr=DR, sigma=sigma)
        elif space == "reciprocal":
            q_min = max(Q_LIMITS[0], math.ceil(x.min() / DQ) * DQ)
            q_max = min(Q_LIMITS[1], math.floor(x.max() / DQ) * DQ)
            if q_max - q_min < 5 * DQ:
                raise InputError(
                    f"{spec.path}: Q from {x.min():.3g} to {x.max():.3g} Å⁻¹ barely overlaps the usable range "
                    f"{Q_LIMITS[0]}–{Q_LIMITS[1]} Å⁻¹; check the units (add :units=nm-1 for nm⁻¹)"
                )
            observable = build_observable(
                kind, weighting=weighting, r_max=r_limit, q_min=q_min, q_max=q_max + DQ / 2, dq=DQ
            )
        elif space == "surrogate":
            if not spec.options.get("surrogate"):
                raise InputError(
                    f"{spec.path}: a {kind} target needs the surrogate that computes it: --surrogate CKPT "
                    f"(or {kind}:FILE:surrogate=CKPT)"
                )
            observable = build_observable(kind, surrogate=spec.options["surrogate"])
        else:
            observable = build_observable("adf", adf_cutoff=cutoff)
    except FileNotFoundError as exc:
        raise InputError(str(exc)) from None
    except ValueError as exc:
        raise InputError(f"{spec.path}: {exc}") from None

    grid = observable.grid.numpy()
    inside = (grid >= x.min()) & (grid <= x.max())
    lo_hi = spec.options.get("range")
    if lo_hi:
        try:
            lo, hi = (float(v) for v in lo_hi.replace(":", "-").split("-", 1))
        except ValueError:
            raise InputError(f"{spec.path}: range={lo_hi!r}; write range=LO-HI (e.g. range=1.5-6)") from None
        inside &= (grid >= lo) & (grid <= hi)
    if inside.sum() < 5:
        raise InputError(
            f"{spec.path}: data ({x.min():.3g}–{x.max():.3g}) overlap the {kind} grid ({grid[0]:.3g}–{grid[-1]:.3g}) "
            "in fewer than 5 points; check the units and the range"
        )
    values = np.interp(grid, x, y)
    weights = inside.astype(np.float64)
    if err is not None:
        inverse = 1.0 / np.interp(grid, x, err) ** 2
        weights *= inverse / inverse[inside].mean()
    if "core" in spec.options:
        if space != "real":
            raise InputError(f"{spec.path}: core= weights the excluded core of gr, pdf or rdf data, not {kind}")
        weights = np.where(core_mask(kind, grid, values), _float_option(spec, "core", 1.0) * weights, weights)
    default_fit = "fit" if kind in ("xrd", "nd") else "fixed"
    fits = {}
    for key in ("scale", "offset"):
        value = spec.options.get(key, default_fit).lower()
        if value not in ("fit", "fixed"):
            raise InputError(f"{spec.path}: {key}={value!r}; use fit or fixed")
        fits[key] = value == "fit"
    try:
        return Target(
            observable,
            torch.as_tensor(values),
            torch.as_tensor(weights),
            weight=_float_option(spec, "weight", 1.0),
            fit_scale=fits["scale"],
            fit_offset=fits["offset"],
            label=spec.label,
            kind=kind,
            metadata={"file": str(spec.path), "options": dict(spec.options), "weighting": weighting,
                      "data_range": [float(x.min()), float(x.max())], "points": int(len(x))},
        )  # fmt: skip
    except ValueError as exc:
        raise InputError(f"{spec.path}: {str(exc).split(': ', 1)[-1]}") from None
