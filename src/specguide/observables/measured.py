"""Measured spectra as guidance targets: read a lab's file, check it is what the kind says, see it as the cell can.

A target is named on the command line as ``KIND:FILE[:key=value,...]``:

- ``KIND``: a row of :data:`specguide.observables.registry.SPECS`: ``gr`` (g(r)), ``pdf`` (G(r) = 4πρr[g(r) − 1],
  Å⁻²), ``rdf`` (4πr²ρg(r), Å⁻¹), ``adf`` (bond angles, degrees), ``sq`` (Faber–Ziman S(Q)), ``fq`` (F(Q) =
  Q[S(Q) − 1]), ``xrd`` (X-ray I(Q)), ``nd`` (neutron I(Q)), ``xanes`` / ``exafs`` (through a surrogate);
  conventions as in docs/CONVENTIONS.md. What a kind's data may be, how x and y convert, the default fit of
  scale and offset and the excluded core come from its row, not from lists here;
- ``FILE``: any format of :data:`specguide.observables.datafiles.FORMATS` (PDFgetX3 .gr/.sq/.fq/.iq with their
  header, PDFgui 4-column .gr, .xye/.chi/pyFAI/GSAS patterns in 2θ or Q, Gudrun .mint01/.dcs01, RMCProfile
  .fq/.gr, ISIS GENIE, Larch .chik/.xmu/.nor, plain columns x, y[, error of y]); the error becomes weights 1/err²;
- keys: ``units`` of x in plain files (``A`` | ``nm``, ``A-1`` | ``nm-1``, ``deg`` | ``rad``); ``weighting``
  (``number`` | ``xray`` | ``neutron``, for gr/pdf/rdf/sq/fq; default the file header's ``mode``, else number);
  ``weight`` (this target's share of the loss); ``range`` (``lo-hi``: only this part guides); ``scale``,
  ``offset`` (``fit`` | ``fixed``; default fit for xrd/nd); ``sigma`` (Å, Gaussian width of the model's pair
  distances); ``columns`` (1-based, or names: ``columns=k,chik2``); ``format`` (a FORMATS key); ``wavelength``
  (Å, for 2θ data); ``qmax``, ``qmin``, ``qdamp``, ``qbroad`` (Å⁻¹, the finite Q range and instrument terms of a
  measured PDF; default the file header's; ``qmax=none`` switches the termination off); ``resolution`` (the
  instrument's Gaussian FWHM in Q: ``0.03`` Å⁻¹ or ``1%`` of Q); ``b_iso`` (Å², Debye–Waller pair damping of
  reciprocal kinds; default 4π²(0.07 Å)² = 0.19 Å² for sq/fq, room-temperature vibrations, and 1.5 for xrd/nd);
  ``cutoff`` (Å, adf); ``surrogate`` (checkpoint, xanes/exafs); ``core`` (weight of the
  excluded core of gr/pdf/rdf, below the first-neighbour onset; the loss is a weighted *mean*, so a large core
  weight also takes pull from the rest of the curve — raise the strength to compensate); ``quantity`` (what y is,
  for files that do not say: ``g(r)``, ``G(r)``, ``RDF``, ``S(Q)``, ``S(Q)-1``, ``F(Q)``, ``F_keen(Q)``, ``I(Q)``).

What the model is compared with (docs/CONVENTIONS.md, "Comparing with measured data"):

- reciprocal space: the model sums pairs up to half the cell width under a Lorch window, and the *data* are seen
  through the same box (:func:`specguide.observables.resolution.box_view`); grid points the box cannot see
  reliably near the ends of the data get no weight. When the box changes the data by more than 5 % rms, the
  target says so and names the cell that would resolve them;
- real space with a finite Qmax (from the header or ``qmax=``): the *model* G(r) is terminated, damped and
  broadened as the data were (:class:`~specguide.observables.resolution.TerminatedPDF`), with a default pair
  width of 0.07 Å (room-temperature vibrations, which the inherent structures of the MD training data lack);
  without a Qmax the model is compared as is, with 0.15 Å (GLASS);
- Keen's F(Q) (barn/sr/atom: .mint01, RMCProfile .fq) becomes S(Q) or F(Q) with ⟨b⟩² of the composition, and a
  Gudrun differential cross section becomes S(Q) with ⟨b²⟩ and ⟨b⟩²; 2θ becomes Q with the wavelength;
- a file that holds another quantity than the kind names (G(r) given as ``gr:``, g(r) below −0.5, S(Q) as
  ``fq:``, ...) is refused with the kind to use.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from specguide.chemistry import parse_composition, to_z
from specguide.io import InputError
from specguide.observables.datafiles import MeasuredData, keen_to_faber_ziman, looks_like, read_measured, to_q
from specguide.observables.registry import (
    DEFAULT_DQ,
    DEFAULT_DR,
    DEFAULT_SIGMA,
    REAL_SPACE_KINDS,
    SPECS,
    build_observable,
    kinds_of,
    spec_of,
)
from specguide.observables.resolution import (
    ResolvedScattering,
    TerminatedPDF,
    Termination,
    box_view,
    resolving_half_width,
)
from specguide.observables.target import Target
from specguide.observables.weights import neutron_scattering_length

DR = DEFAULT_DR  # Å
DQ = DEFAULT_DQ  # Å⁻¹
Q_LIMITS = (0.5, 30.0)  # Å⁻¹
SIGMA_MODEL = DEFAULT_SIGMA  # Å: pair width against curves that carry no finite-Q termination (GLASS)
SIGMA_MEASURED = 0.07  # Å: pair width against a measured PDF (room-temperature vibrations)
BLUR_TOLERANCE = 0.05  # rms change of the data by the box above which the target says so
MIN_PAIR_RANGE = 5.0  # Å: a cell must hold pairs this far (or half a real-space target's reach) to fit a target
UNITS = {
    "real": {"a": 1.0, "å": 1.0, "angstrom": 1.0, "nm": 10.0},
    "reciprocal": {"a-1": 1.0, "1/a": 1.0, "å-1": 1.0, "1/å": 1.0, "nm-1": 0.1, "1/nm": 0.1},
    "angle": {"deg": 1.0, "degree": 1.0, "degrees": 1.0, "rad": 180.0 / math.pi},
}
KEYS = ("units", "weighting", "weight", "range", "scale", "offset", "sigma", "columns", "cutoff", "surrogate", "core",
        "format", "wavelength", "qmax", "qmin", "qdamp", "qbroad", "resolution", "b_iso", "quantity", "e0",
        "normalize", "shift", "broaden", "lorentz", "kweight", "s02", "de0")  # fmt: skip
# what ``quantity=`` may say a file's y is (for files that do not say it themselves)
QUANTITIES = ("g(r)", "G(r)", "RDF", "S(Q)", "S(Q)-1", "F(Q)", "F_keen(Q)", "I(Q)")
CORE_FRACTION = 0.01  # the core ends where g(r) first reaches this fraction of its maximum
FIXED_UNIT_FORMATS = ("gudrun", "genie", "rmcprofile", "pdfgetx3")  # formats whose Q is always in Å⁻¹


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
    if kind not in SPECS:
        raise InputError(f"--target {text!r}: unknown kind {kind!r}; choose one of {', '.join(SPECS)}")
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


def _float_option(spec: TargetSpec, key: str, default: float | None) -> float | None:
    if key not in spec.options:
        return default
    try:
        value = float(spec.options[key])
    except ValueError:
        raise InputError(f"{spec.path}: option {key}={spec.options[key]!r} is not a number") from None
    if not math.isfinite(value) or value < 0:
        raise InputError(f"{spec.path}: option {key}={spec.options[key]!r} must be a finite number >= 0")
    return value


# ----------------------------------------------------------------------------------------------------------------
# reading: the file's curve in the kind's own convention
# ----------------------------------------------------------------------------------------------------------------


@dataclass
class TargetData:
    """A measured curve converted to its kind's convention (x in Å, Å⁻¹ or degrees)."""

    x: np.ndarray
    y: np.ndarray
    err: np.ndarray | None
    header: dict
    notes: list[str]
    format: str
    quantity: str | None  # what the file held before conversion


def _columns(spec: TargetSpec) -> list[int | str] | None:
    text = spec.options.get("columns")
    if not text:
        return None
    parts = [c.strip() for c in text.split(",") if c.strip()]
    if len(parts) not in (2, 3):
        raise InputError(f"{spec.path}: columns={text!r}; give x,y or x,y,err (1-based numbers or column names)")
    if all(p.isdigit() for p in parts):
        if min(int(p) for p in parts) < 1:
            raise InputError(f"{spec.path}: columns={text!r}; column numbers start at 1")
        return [int(p) - 1 for p in parts]
    return parts


def _composition(spec: TargetSpec, data: MeasuredData, composition: dict[str, float] | None) -> dict[str, float]:
    """The composition for conversions: the structures' own, else the file header's (refused if neither)."""
    from_file = data.header.get("composition")
    if composition is None and isinstance(from_file, dict):
        return from_file
    if composition is None:
        raise InputError(f"{spec.path}: converting {data.y_quantity} needs the composition; give the prior's "
                         "composition or --composition")  # fmt: skip
    return parse_composition(composition)


def _convert(spec: TargetSpec, data: MeasuredData, composition: dict[str, float] | None) -> tuple[np.ndarray, list]:
    """y in the kind's convention (its row's ``quantity``), converting what the row ``accepts`` and refusing the
    rest."""
    kind, quantity, x, y = spec.kind, data.y_quantity, data.x, data.y
    row = spec_of(kind)
    own = row.quantity
    notes = []
    if quantity is None and row.confused_with:  # a file that does not say: the shape tells the usual mix-up
        quantity = looks_like(replace(data, x_quantity="r" if row.space == "real" else "Q"))
        if quantity == row.confused_with:
            raise InputError(f"{spec.path}: the curve looks like {quantity}, not {own}; if so, give it as "
                             f"{kinds_of(quantity)}:{spec.path.name} (the file does not say which it is)")  # fmt: skip
        quantity = own
    if own == "g(r)" and float(np.min(y)) < -0.5:
        raise InputError(f"{spec.path}: g(r) reaches {np.min(y):.3g}, but g(r) ≥ 0; is this G(r) = 4πρr[g − 1]? "
                         f"then give {kinds_of('G(r)')}:{spec.path.name}")  # fmt: skip
    if quantity is None or quantity == own:
        return y, notes
    if quantity not in row.accepts:
        better = kinds_of(quantity)
        fix = f"give it as {better}:{spec.path.name}" if better else "convert it to a quantity specguide fits"
        raise InputError(f"{spec.path}: holds {quantity}, not what {kind} fits; {fix}")
    if quantity == "S(Q)-1":
        return (1.0 + y, notes) if own == "S(Q)" else (x * y, notes)
    fractions = _composition(spec, data, composition)

    b = {s: neutron_scattering_length(to_z(s)) for s in fractions}  # fm
    b_mean2 = sum(c * b[s] for s, c in fractions.items()) ** 2 / 100.0  # barn
    b2_mean = sum(c * b[s] ** 2 for s, c in fractions.items()) / 100.0  # barn
    if quantity == "F_keen(Q)":
        s_q = keen_to_faber_ziman(x, y, fractions)
        notes.append(f"Keen F(Q) (barn/sr/atom) converted with ⟨b⟩² = {b_mean2:.4g} barn for {_formula(fractions)}")
        if own == "S(Q)":
            return s_q, notes
        if own == "F(Q)":
            return x * (s_q - 1.0), notes
        return 100.0 * (b2_mean + b_mean2 * (s_q - 1.0)), notes  # neutron I(Q)/N in fm² per atom
    # S(Q) from a neutron differential cross section (barn/sr/atom): S − 1 = (DCS − ⟨b²⟩) / ⟨b⟩²
    if data.format != "gudrun":
        raise InputError(f"{spec.path}: holds an intensity I(Q); give it as xrd: or nd: (scale and offset are fitted)")
    notes.append(f"differential cross section converted with ⟨b²⟩ = {b2_mean:.4g}, ⟨b⟩² = {b_mean2:.4g} barn")
    return 1.0 + (y - b2_mean) / b_mean2, notes


def _formula(fractions: dict[str, float]) -> str:
    return " ".join(f"{s}{c:.3g}" for s, c in fractions.items())


def read_target_data(spec: TargetSpec, composition: dict[str, float] | None = None) -> TargetData:
    """The file's curve in the convention of ``spec.kind``, x in Å / Å⁻¹ / degrees, checked.

    ``composition`` (``{symbol: fraction}``, the structures') converts Keen's F(Q) and cross sections; the file
    header's composition is used when it is not given.
    """
    row = spec_of(spec.kind)
    space = row.treatment
    wavelength = _float_option(spec, "wavelength", None)
    if wavelength is not None and wavelength <= 0:
        raise InputError(f"{spec.path}: wavelength={spec.options['wavelength']!r}; give the wavelength in Å (> 0)")
    data = read_measured(spec.path, fmt=spec.options.get("format"), columns=_columns(spec), wavelength=wavelength)
    notes = list(data.notes)
    if "quantity" in spec.options:
        said = {q.lower(): q for q in QUANTITIES}.get(spec.options["quantity"].replace(" ", "").lower())
        if said is None:
            raise InputError(f"{spec.path}: quantity={spec.options['quantity']!r}; use one of {', '.join(QUANTITIES)}")
        if data.y_quantity not in (None, said):
            notes.append(f"the file says y is {data.y_quantity}; read as {said} (quantity=)")
        data = replace(data, y_quantity=said)
    if space == "surrogate":  # x is on the surrogate's own grid (eV, Å⁻¹ or index): no conversion
        if "units" in spec.options:
            raise InputError(f"{spec.path}: units do not apply to {spec.kind}; x must be on the surrogate's grid")
        if len(data.x) < 5:
            raise InputError(f"{spec.path}: only {len(data.x)} data points; a spectrum needs at least 5")
        return TargetData(data.x, data.y, data.err, data.header, notes, data.format, data.y_quantity)

    expected = {"real": ("r",), "reciprocal": ("Q", "2theta"), "angle": ("angle",)}[space]
    if data.x_quantity not in (*expected, "unknown"):
        raise InputError(f"{spec.path}: x is {data.x_quantity}, but {spec.kind} needs "
                         f"{' or '.join(expected)}; check the kind or the columns")  # fmt: skip
    if data.x_quantity == "2theta":
        data = to_q(data)
        notes = list(data.notes)
    unit = spec.options.get("units")
    x = data.x.copy()
    y = data.y.copy()
    err = None if data.err is None else data.err.copy()
    if unit is not None:
        unit = unit.lower()
        if unit not in UNITS[space]:
            raise InputError(f"{spec.path}: units={unit!r} do not fit a {spec.kind} target; use one of "
                             f"{', '.join(UNITS[space])}")  # fmt: skip
        x *= UNITS[space][unit]
        if row.y_per_x:  # e.g. F(Q) = Q[S(Q) - 1] carries the unit of Q
            y *= UNITS[space][unit]
            err = None if err is None else err * UNITS[space][unit]
    if len(x) < 5:
        raise InputError(f"{spec.path}: only {len(x)} data points; a spectrum needs at least 5")
    if unit is None:
        if space == "real" and x.max() < 1.5:
            raise InputError(f"{spec.path}: r only reaches {x.max():.3g}; if r is in nm, add :units=nm")
        if space == "reciprocal" and x.max() > 80 and data.format not in FIXED_UNIT_FORMATS:
            raise InputError(f"{spec.path}: Q reaches {x.max():.3g}; if Q is in nm⁻¹, add :units=nm-1")
        if space == "angle" and x.max() < 2 * math.pi + 1e-6:
            raise InputError(f"{spec.path}: angles only reach {x.max():.3g}; if they are in radians, add :units=rad")
    said = data.header.get("composition")
    if isinstance(said, dict) and composition is not None:
        ours = parse_composition(composition)
        if any(abs(said.get(k, 0.0) - ours.get(k, 0.0)) > 0.02 for k in set(said) | set(ours)):
            notes.append(f"the file's header says the sample is {_formula(said)}; the structures are "
                         f"{_formula(ours)} (give --composition to change them)")  # fmt: skip
    converted = replace(data, x=x, y=y, err=err)
    y, more = _convert(spec, converted, composition)
    return TargetData(x, y, err, data.header, notes + more, data.format, data.y_quantity)


def core_mask(kind: str, grid: np.ndarray, y: np.ndarray, fraction: float = CORE_FRACTION) -> np.ndarray:
    """Grid points ``[n]`` (bool) inside the excluded core of a real-space target: below the first-neighbour onset.

    The kind's row says where the core ends (:class:`~specguide.observables.registry.ObservableSpec` ``core``):
    ``"onset"`` where the curve's g(r)-like shape (g(r) itself; y / r² of the RDF 4πr²ρg) first reaches
    ``fraction`` of its maximum; ``"minimum"`` for G(r) = 4πρr[g − 1], which falls as −4πρr while g = 0: below the
    lowest point of G before its maximum, where the first shell sets in (no density needed). Empty if the data start
    past the onset.
    """
    grid, y = np.asarray(grid, dtype=float), np.asarray(y, dtype=float)
    row = spec_of(kind)
    if row.core is None:
        raise ValueError(f"the excluded core is defined for real-space targets ({', '.join(REAL_SPACE_KINDS)}), "
                         f"not {kind}")  # fmt: skip
    if row.core == "minimum":
        onset = int(np.argmin(y[: int(np.argmax(y)) + 1]))
    else:
        shape = row.shape(grid, y)
        onset = int(np.argmax(shape > fraction * shape.max()))
    return grid < grid[onset]


# ----------------------------------------------------------------------------------------------------------------
# loading: the observable, and the data as it sees them
# ----------------------------------------------------------------------------------------------------------------


def _termination(spec: TargetSpec, header: dict) -> Termination | None:
    """The finite-Q terms of a measured PDF from the keys, else from the file header; None if there is no Qmax."""
    if spec.options.get("qmax", "").lower() in ("none", "off", "0"):
        return None
    values = {}
    for key in ("qmax", "qmin", "qdamp", "qbroad"):
        option = _float_option(spec, key, None)
        value = option if option is not None else header.get(key)
        values[key] = float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None
    if values["qmax"] is None or values["qmax"] <= 0:
        return None
    try:
        return Termination(values["qmax"], values["qmin"] or 0.0, values["qdamp"] or 0.0, values["qbroad"] or 0.0)
    except ValueError as exc:
        raise InputError(f"{spec.path}: {exc}") from None


def _resolution(spec: TargetSpec) -> tuple[float, float] | None:
    text = spec.options.get("resolution")
    if not text:
        return None
    try:
        value = float(text.rstrip("%"))
    except ValueError:
        raise InputError(f"{spec.path}: resolution={text!r}; give a FWHM in Å⁻¹ (0.03) or of Q (1%)") from None
    if not math.isfinite(value) or value <= 0:
        raise InputError(f"{spec.path}: resolution={text!r} must be > 0")
    return (0.0, value / 100.0) if text.endswith("%") else (value, 0.0)


def _atoms_for(half_width: float, number_density: float | None) -> str:
    if not number_density:
        return f"a cell of ≥ {2 * half_width:.0f} Å"
    return f"a cell of ≥ {2 * half_width:.0f} Å (≈ {number_density * (2 * half_width) ** 3:,.0f} atoms)"


def _fit_or_value(spec: TargetSpec, key: str, default: str) -> float | None:
    """``None`` for ``key=fit``, else the number (eV)."""
    text = spec.options.get(key, default).lower()
    if text == "fit":
        return None
    try:
        return float(text)
    except ValueError:
        raise InputError(f"{spec.path}: {key}={text!r}; give fit or a number in eV") from None


def _xas_data(
    spec: TargetSpec, data: TargetData, observable, x: np.ndarray, y: np.ndarray, notes: list[str], measured: dict
):
    """Measured XANES / EXAFS in the surrogate's convention: ``(x, y, alignment or None)``.

    XANES in absolute energies (their range lies above the surrogate's grid) are put relative to the edge ``e0``
    (``e0=auto``: the largest derivative, Athena's E0), normalised as Larch's ``pre_edge`` does unless already
    normalised (``normalize=auto|yes|no``), and aligned to the model by a fitted rigid shift and Gaussian broadening
    (``shift=fit|eV``, ``broaden=fit|eV`` FWHM, ``lorentz=fit|eV`` FWHM, default 0). EXAFS: ``kweight=n`` says the
    data are kⁿχ(k) (Larch's chik/chik2/chik3 columns say so themselves), converted to the surrogate's weight;
    ``s02`` divides the data by S0² (``s02=fit`` fits it as a scale); ``de0`` (eV) moves the data's energy origin.
    ``measured["e0_eV"]`` gets the edge energy used (XANES).
    """
    from specguide.observables.xas import Alignment, AlignmentGrid, looks_normalized, normalize

    grid = observable.grid.numpy()
    unit = observable.meta.get("grid_unit")
    if spec_of(spec.kind).space == "energy":  # XANES
        absolute = unit == "eV" and float(np.min(x)) > float(grid.max()) + 50.0
        e0_text = spec.options.get("e0", "auto" if absolute else "0").lower()
        if e0_text == "auto":
            from specguide.observables.xas import find_e0

            e0 = find_e0(x, y)
        else:
            try:
                e0 = float(e0_text)
            except ValueError:
                raise InputError(f"{spec.path}: e0={e0_text!r}; give auto or the edge energy in eV") from None
        mode = spec.options.get("normalize", "auto").lower()
        if mode not in ("auto", "yes", "no"):
            raise InputError(f"{spec.path}: normalize={mode!r}; use auto, yes or no")
        if mode == "yes" or (mode == "auto" and absolute and not looks_normalized(x, y, e0)):
            try:
                done = normalize(x, y, e0=e0)
            except ValueError as exc:
                raise InputError(f"{spec.path}: {exc}") from None
            y, e0 = done.norm, done.e0
            notes.append(f"normalised as Larch's pre_edge does: E0 {e0:.2f} eV, edge step {done.step:.4g}, pre-edge "
                         f"{done.ranges['pre1']:g}…{done.ranges['pre2']:g} eV, post-edge {done.ranges['norm1']:g}…"
                         f"{done.ranges['norm2']:g} eV (order {done.ranges['nnorm']})")  # fmt: skip
        measured["e0_eV"] = float(e0)
        if e0:
            x = x - e0
            notes.append(f"energies taken relative to E0 = {e0:.2f} eV (the surrogate's grid is E − E_F)")
        default = "fit" if absolute else "0"
        candidates = AlignmentGrid.span(_fit_or_value(spec, "shift", default), _fit_or_value(spec, "broaden", default),
                                        _fit_or_value(spec, "lorentz", "0"))  # fmt: skip
        alignment = Alignment(grid, candidates)
        if alignment.fixed and not any(alignment.values().values()):
            alignment = None
        elif not alignment.fixed:
            notes.append("a rigid shift and a broadening between the model and the data are fitted along with the "
                         "structure (reported in summary.json)")  # fmt: skip
        return x, y, alignment
    # EXAFS
    weight = {"chi(k)": 0, "k*chi(k)": 1, "k2*chi(k)": 2, "k3*chi(k)": 3}.get(str(data.quantity))
    if "kweight" in spec.options:
        weight = int(_float_option(spec, "kweight", 0) or 0)
    quantity = str(observable.meta.get("quantity", ""))
    model_weight = 2 if quantity.startswith("k²") else 3 if quantity.startswith("k³") else 1 if quantity.startswith(
        "kχ") else 0 if quantity.startswith("χ") else None  # fmt: skip
    if weight is not None and model_weight is not None and weight != model_weight:
        y = y * np.asarray(x, dtype=float) ** (model_weight - weight)
        notes.append(f"k-weight {weight} converted to the surrogate's k-weight {model_weight}")
    try:
        de0 = float(spec.options.get("de0", "0"))
    except ValueError:
        raise InputError(f"{spec.path}: de0={spec.options['de0']!r}; give the shift of E0 in eV") from None
    if de0:
        k2 = np.asarray(x, dtype=float) ** 2 + de0 / 3.80998  # E = ħ²k²/2m = 3.80998 eV Å² · k²
        keep = k2 > 0
        x, y = np.sqrt(k2[keep]), y[keep]
        notes.append(f"energy origin moved by ΔE0 = {de0:g} eV")
    if "s02" in spec.options and spec.options["s02"].lower() != "fit":
        s02 = _float_option(spec, "s02", 1.0)
        if not s02:
            raise InputError(f"{spec.path}: s02 must be > 0")
        y = y / s02
    return x, y, None


def load_target(
    spec: TargetSpec | str,
    half_cell: float,
    *,
    composition: dict[str, float] | None = None,
    number_density: float | None = None,
) -> Target:
    """Read a target file and put it onto its observable's grid for cells whose half width is ``half_cell`` (Å).

    ``composition`` (``{symbol: fraction}``) and ``number_density`` (Å⁻³) of the structures convert Keen-convention
    data and size the cell a note recommends. Raises ``InputError`` (naming the file and the fix) for malformed
    files, mismatched quantities, non-overlapping grids and unusable options. ``Target.metadata["notes"]`` holds
    what the user should be told (conversions, averaging, what the cell cannot resolve).
    """
    if isinstance(spec, str):
        spec = parse_target_spec(spec)
    data = read_target_data(spec, composition)
    x, y, err, notes = data.x, data.y, data.err, list(data.notes)
    kind, row = spec.kind, spec_of(spec.kind)
    space = row.treatment
    mode = data.header.get("mode")
    default_weighting = {"neutron": "neutron", "xray": "xray"}.get(str(mode).lower(), "number")
    if data.quantity == "F_keen(Q)" or data.format == "gudrun":
        default_weighting = "neutron"
    weighting = spec.options.get("weighting", default_weighting).lower()
    if weighting not in ("number", "xray", "neutron"):
        raise InputError(f"{spec.path}: weighting={weighting!r}; use number, xray or neutron")
    if str(mode).lower() == "electron" and "weighting" not in spec.options:
        raise InputError(f"{spec.path}: electron diffraction data; specguide weights number, xray or neutron: give "
                         "weighting= explicitly")  # fmt: skip
    cutoff = _float_option(spec, "cutoff", 0.0) or None
    half_cell = float(half_cell)
    r_limit = math.floor(half_cell / DR) * DR
    if space in ("real", "reciprocal"):
        needed = MIN_PAIR_RANGE if space == "reciprocal" else min(MIN_PAIR_RANGE, 0.5 * float(x.max()))
        if half_cell < needed:
            raise InputError(f"{spec.path}: this cell holds pairs up to {half_cell:.3g} Å only, too few for a {kind} "
                             f"target (it needs {needed:.3g} Å): use {_atoms_for(needed, number_density)}")  # fmt: skip
    raw = (x, y)
    valid = None
    try:
        if space == "real":
            termination = _termination(spec, data.header)
            sigma = _float_option(spec, "sigma", SIGMA_MEASURED if termination else SIGMA_MODEL)
            if not sigma:
                raise InputError(f"{spec.path}: sigma must be > 0 Å")
            reach = x.max() + (2 * termination.ripple() if termination else 0.0)
            r_max = min(r_limit, math.ceil(reach / DR) * DR)
            if r_max < 1.0:
                raise InputError(
                    f"{spec.path}: the data reach {x.max():.3g} Å and the cell's half width is {half_cell:.3g} Å; "
                    "a real-space target needs r beyond 1 Å: use more atoms"
                )
            observable = build_observable(kind, weighting=weighting, r_max=r_max, dr=DR, sigma=sigma)
            if termination:
                observable = TerminatedPDF(observable, termination)
                notes.append(f"model G(r) terminated at Qmax = {termination.q_max:g} Å⁻¹ (Qmin {termination.q_min:g}, "
                             f"Qdamp {termination.q_damp:g}, Qbroad {termination.q_broad:g}) as the data were; "
                             f"pair width σ = {sigma:g} Å")  # fmt: skip
                if r_max >= r_limit - 1e-9:  # the model's G(r) ends at the cell: its last ripple sees that edge
                    valid = observable.grid.numpy() <= r_max - termination.ripple()
            if x.max() > r_limit + DR:
                notes.append(f"the data reach {x.max():.3g} Å but this cell holds pairs up to {half_cell:.3g} Å only: "
                             f"r ≤ {r_limit:.3g} Å is fitted; {_atoms_for(x.max(), number_density)} would fit it "
                             "all")  # fmt: skip
        elif space == "reciprocal":
            q_min = max(Q_LIMITS[0], math.ceil(x.min() / DQ) * DQ)
            q_max = min(Q_LIMITS[1], math.floor(x.max() / DQ) * DQ)
            if q_max - q_min < 5 * DQ:
                raise InputError(
                    f"{spec.path}: Q from {x.min():.3g} to {x.max():.3g} Å⁻¹ barely overlaps the usable range "
                    f"{Q_LIMITS[0]}–{Q_LIMITS[1]} Å⁻¹; check the units (add :units=nm-1 for nm⁻¹)"
                )
            if r_limit < 2.0:
                raise InputError(f"{spec.path}: the cell's half width ({half_cell:.3g} Å) is too small for a "
                                 "structure factor; use more atoms")  # fmt: skip
            # measured S(Q) / F(Q) carry room-temperature vibrations that the inherent structures of the training MD
            # lack: pair damping exp(−σ²Q²/2) with σ = SIGMA_MEASURED, i.e. B = 4π²σ² (xrd/nd keep GLASS's 1.5 Å²)
            default_b = 4 * math.pi**2 * SIGMA_MEASURED**2 if row.thermal else None
            b_iso = _float_option(spec, "b_iso", default_b)

            def build(lo: float, hi: float, dq: float):
                return build_observable(kind, weighting=weighting, r_max=r_limit, q_min=lo, q_max=hi + dq / 2,
                                        dq=dq, b_iso=b_iso)  # fmt: skip

            observable = build(q_min, q_max, DQ)
            resolution = _resolution(spec)
            if resolution:
                observable = ResolvedScattering(build, observable.grid.numpy(), *resolution)
            grid = observable.grid.numpy()
            form = row.form
            view = box_view(x, y, form, grid, r_limit, "lorch")
            y_seen, valid = view.seen, view.reliable
            blur = view.blur()
            if blur > BLUR_TOLERANCE:
                q_worst, raw_worst, seen_worst = view.worst()
                needed = resolving_half_width(x, y, form, grid, "lorch", BLUR_TOLERANCE)
                size = _atoms_for(needed, number_density) if needed else "no cell up to 120 Å"
                notes.append(
                    f"this cell (pairs up to {r_limit:.3g} Å) cannot resolve the sharpest features of the data: seen "
                    f"through it they change by {100 * blur:.0f} % rms (at Q = {q_worst:.2f} Å⁻¹ the data read "
                    f"{raw_worst:.3g}, the cell sees {seen_worst:.3g}); the fit compares the model with the data as "
                    f"the cell sees them. {size} would keep the change below {100 * BLUR_TOLERANCE:.0f} %"
                )
        elif space == "surrogate":
            if not spec.options.get("surrogate"):
                raise InputError(
                    f"{spec.path}: a {kind} target needs the surrogate that computes it: --surrogate CKPT "
                    f"(or {kind}:FILE:surrogate=CKPT)"
                )
            observable = build_observable(kind, surrogate=spec.options["surrogate"])
            measured = {"x": np.asarray(x, dtype=float).tolist(), "y": np.asarray(y, dtype=float).tolist()}
            x, y, alignment = _xas_data(spec, data, observable, x, y, notes, measured)
            raw = (x, y)  # normalised and relative to E0; "measured" keeps the file's own axis and values
        else:
            observable = build_observable(kind, adf_cutoff=cutoff)
    except FileNotFoundError as exc:
        raise InputError(str(exc)) from None
    except ValueError as exc:
        if isinstance(exc, InputError):
            raise
        raise InputError(f"{spec.path}: {exc}") from None

    grid = observable.grid.numpy()
    inside = (grid >= x.min()) & (grid <= x.max())
    if valid is not None:
        inside &= valid
    lo_hi = spec.options.get("range")
    if lo_hi:
        number = r"\s*(-?\d+(?:\.\d*)?|-?\.\d+)\s*"
        match = re.fullmatch(number + r"(?:\.\.|-|:)" + number, lo_hi)
        if not match or float(match[1]) >= float(match[2]):
            raise InputError(f"{spec.path}: range={lo_hi!r}; write range=LO-HI (e.g. range=1.5-6, or range=-10..1 "
                             "with negative energies)")  # fmt: skip
        lo, hi = float(match[1]), float(match[2])
        inside &= (grid >= lo) & (grid <= hi)
    if inside.sum() < 5:
        raise InputError(
            f"{spec.path}: data ({x.min():.3g}–{x.max():.3g}) overlap the {kind} grid ({grid[0]:.3g}–{grid[-1]:.3g}) "
            "in fewer than 5 points; check the units and the range"
        )
    values = y_seen if space == "reciprocal" else np.interp(grid, x, y)
    weights = inside.astype(np.float64)
    if err is not None:
        inverse = 1.0 / np.interp(grid, x, err) ** 2
        weights *= inverse / inverse[inside].mean()
    if "core" in spec.options:
        if space != "real":
            raise InputError(f"{spec.path}: core= weights the excluded core of gr, pdf or rdf data, not {kind}")
        weights = np.where(core_mask(kind, grid, values), _float_option(spec, "core", 1.0) * weights, weights)
    default_fit = "fit" if row.fit else "fixed"
    fits = {}
    for key in ("scale", "offset"):
        value = spec.options.get(key, default_fit).lower()
        if value not in ("fit", "fixed"):
            raise InputError(f"{spec.path}: {key}={value!r}; use fit or fixed")
        fits[key] = value == "fit"
    fits["scale"] |= spec.options.get("s02", "").lower() == "fit"  # S0² fitted as the model's amplitude
    header = {k: v for k, v in data.header.items() if isinstance(v, (str, int, float, dict, list))}
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
                      "format": data.format, "file_quantity": data.quantity, "header": header,
                      "data_range": [float(x.min()), float(x.max())], "points": int(len(x)), "notes": notes,
                      **({"measured": measured} if space == "surrogate" else {})},
            raw=raw,
            alignment=alignment if space == "surrogate" else None,
        )  # fmt: skip
    except ValueError as exc:
        raise InputError(f"{spec.path}: {str(exc).split(': ', 1)[-1]}") from None
