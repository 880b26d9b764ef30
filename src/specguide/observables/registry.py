"""Every observable specguide knows, in one table: command-line kind → class, space, units, fitting defaults, help.

Modelled on ASE's ``ase/io/formats.py``: one row per observable (:class:`ObservableSpec`) in :data:`SPECS`, and
everything that would otherwise list kinds by hand reads the rows — the CLI's ``--kind`` choices and help texts,
``--target`` parsing, which quantities a data file may hold and how they convert, units of x, the default fit of
scale and offset, the excluded core of real-space data, and the density scan of an inversion. A new observable is
its class (one file under ``observables/``) and one row here.

As ASE's table names a reader's module, a row names its class (``"pdf:PairDistribution"``: the class in
``specguide.observables.pdf``), imported only when an observable of that kind is built, so reading the table (the
CLI does, to list the kinds) loads no model code. The grid settings are one flat set for all kinds
(:class:`GridOptions`, defaults :data:`DEFAULT_R_MAX` ...); a row lists those its class takes.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable
from dataclasses import dataclass, fields

import numpy as np

# the default grids of every command (specguide spectrum, measured targets, build_observable)
DEFAULT_R_MAX = 8.0  # Å, largest pair distance of real-space curves (and of the pair sums of reciprocal ones)
DEFAULT_DR = 0.02  # Å, real-space grid step
DEFAULT_SIGMA = 0.15  # Å, Gaussian width of pair distances (GLASS)
DEFAULT_Q_MIN = 1.0  # Å⁻¹ (below ~1 Å⁻¹ the finite r-max window dominates)
DEFAULT_Q_MAX = 20.0  # Å⁻¹
DEFAULT_DQ = 0.05  # Å⁻¹, reciprocal grid step


@dataclass(frozen=True)
class GridOptions:
    """The flat grid settings every kind is built from (a row takes what applies to it).

    Real space: pairs up to ``r_max`` (Å) on a grid of step ``dr`` (Å), Gaussian width ``sigma`` (Å), pair
    ``weighting`` number | xray | neutron. Reciprocal space: ``q_min`` to ``q_max`` in steps ``dq`` (Å⁻¹) from pairs
    up to ``r_max`` under a Lorch window, Debye–Waller ``b_iso`` (Å², None: the class's default). Bond angles:
    ``adf_cutoff`` (Å, None: 1.3 × covalent radii). Surrogate kinds: ``surrogate`` (a checkpoint or bundled name).
    """

    weighting: str = "number"
    r_max: float = DEFAULT_R_MAX
    dr: float = DEFAULT_DR
    sigma: float = DEFAULT_SIGMA
    q_min: float = DEFAULT_Q_MIN
    q_max: float = DEFAULT_Q_MAX
    dq: float = DEFAULT_DQ
    adf_cutoff: float | None = None
    surrogate: str | None = None
    b_iso: float | None = None


def default_r_max(half_width: float, dr: float = DEFAULT_DR) -> float:
    """The default reach (Å) of a real-space curve in cells of half width ``half_width`` (Å): :data:`DEFAULT_R_MAX`
    or half the cell, whichever is shorter, in whole steps of ``dr``."""
    return math.floor(min(DEFAULT_R_MAX, half_width) / dr) * dr


def _g_shape(grid: np.ndarray, y: np.ndarray) -> np.ndarray:
    """A curve whose first peak is the first neighbour shell, as it is (g(r), G(r))."""
    return y


def _rdf_shape(grid: np.ndarray, y: np.ndarray) -> np.ndarray:
    """4πr²ρg(r) divided by r²: the g(r)-like shape of an RDF."""
    return y / np.maximum(grid, 1e-6) ** 2


@dataclass(frozen=True)
class ObservableSpec:
    """One observable: its class, how to build it and how measured data of it are read and fitted.

    - ``kind``: the command-line name (``gr``); ``help``: what it is, for ``--help``;
    - ``cls``: ``"module:Class"`` in ``specguide.observables`` (or the class itself); ``takes``: the
      :class:`GridOptions` its constructor takes, as keywords (``"cutoff=adf_cutoff"`` passes ``adf_cutoff`` as
      ``cutoff``; ``"kind"`` passes the row's kind);
    - ``space``: what x is — ``real`` (r, Å), ``reciprocal`` (Q or k, Å⁻¹), ``angle`` (θ, degrees), ``energy``
      (E − E_F, eV); ``surrogate``: computed by a learned surrogate, x on the surrogate's own grid;
    - ``quantity``: what y is (the names :mod:`specguide.observables.datafiles` reports for files: ``g(r)``,
      ``G(r)``, ``RDF``, ``S(Q)``, ``F(Q)``, ``I(Q)``, ...); ``accepts``: other quantities a file may hold that are
      converted into it (:func:`specguide.observables.measured.read_target_data`); ``confused_with``: the quantity
      a file that does not say what it holds may hold instead, told apart by the curve's shape;
    - ``weighted``: takes a pair weighting; ``fit``: scale and offset are fitted by default (data in arbitrary
      units); ``thermal``: measured data carry room-temperature pair damping the model adds by default
      (``b_iso``); ``y_per_x``: y carries the unit of x (F(Q) = Q[S − 1]), so it is rescaled with x;
    - real space only: ``shape`` (grid, y) → a curve whose first peak is the first neighbour shell, and ``core``,
      where the excluded core below the first-neighbour onset ends: ``"onset"`` (where the shape first reaches a
      fraction of its maximum) or ``"minimum"`` (the lowest point before the maximum, for G(r) = 4πρr[g − 1]);
    - reciprocal space only: ``form`` of y for the box view of measured data (``S``, ``F`` or ``I``).
    """

    kind: str
    cls: str | type
    takes: tuple[str, ...]
    space: str
    quantity: str
    help: str
    surrogate: bool = False
    accepts: tuple[str, ...] = ()
    confused_with: str | None = None
    weighted: bool = False
    fit: bool = False
    thermal: bool = False
    y_per_x: bool = False
    shape: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None
    core: str | None = None
    form: str | None = None

    @property
    def treatment(self) -> str:
        """How measured data of this kind are put onto the model's grid: ``surrogate`` or the :attr:`space`."""
        return "surrogate" if self.surrogate else self.space

    def observable_class(self) -> type:
        """The observable class (its module is imported now)."""
        if isinstance(self.cls, type):
            return self.cls
        module, _, name = self.cls.partition(":")
        return getattr(importlib.import_module(f"specguide.observables.{module}"), name)

    def build(self, options: GridOptions):
        """The observable of this kind for ``options``."""
        if self.surrogate and options.surrogate is None:
            raise ValueError(f"kind {self.kind!r} is computed by a learned surrogate: give its checkpoint "
                             "(--surrogate CKPT)")  # fmt: skip
        keywords = {}
        for item in self.takes:
            keyword, _, option = item.partition("=")
            keywords[keyword] = self.kind if item == "kind" else getattr(options, option or keyword)
        return self.observable_class()(**keywords)


SPACES = ("real", "reciprocal", "angle", "energy")
REAL = ("r_max", "dr", "sigma", "weighting")
SCATTERING = ("q_min", "q_max", "dq", "r_max", "b_iso")


def _rows(*specs: ObservableSpec) -> dict[str, ObservableSpec]:
    for spec in specs:
        if spec.space not in SPACES or spec.core not in (None, "onset", "minimum"):
            raise ValueError(f"observable {spec.kind!r}: unknown space {spec.space!r} or core {spec.core!r}")
    return {spec.kind: spec for spec in specs}


SPECS: dict[str, ObservableSpec] = _rows(
    ObservableSpec("gr", "pdf:PairDistribution", REAL, "real", "g(r)", "g(r)", confused_with="G(r)", weighted=True,
                   shape=_g_shape, core="onset"),
    ObservableSpec("pdf", "pdf:ReducedPairDistribution", REAL, "real", "G(r)", "G(r)", confused_with="g(r)",
                   weighted=True, shape=_g_shape, core="minimum"),
    ObservableSpec("rdf", "pdf:RadialDistribution", REAL, "real", "RDF", "4πr²ρg(r)", weighted=True,
                   shape=_rdf_shape, core="onset"),
    ObservableSpec("adf", "adf:BondAngleDistribution", ("cutoff=adf_cutoff",), "angle", "ADF", "bond angles"),
    ObservableSpec("sq", "scattering:StructureFactor", ("weighting", *SCATTERING), "reciprocal", "S(Q)", "S(Q)",
                   accepts=("S(Q)-1", "F_keen(Q)", "I(Q)"), confused_with="F(Q)", weighted=True, thermal=True,
                   form="S"),
    ObservableSpec("fq", "scattering:ReducedStructureFactor", ("weighting", *SCATTERING), "reciprocal", "F(Q)", "F(Q)",
                   accepts=("S(Q)-1", "F_keen(Q)"), confused_with="S(Q)", weighted=True, thermal=True, y_per_x=True,
                   form="F"),
    ObservableSpec("xrd", "scattering:XRayDiffraction", SCATTERING, "reciprocal", "I(Q)", "X-ray I(Q)", fit=True,
                   form="I"),
    ObservableSpec("nd", "scattering:NeutronDiffraction", SCATTERING, "reciprocal", "I(Q)", "neutron I(Q)",
                   accepts=("F_keen(Q)",), fit=True, form="I"),
    ObservableSpec("xanes", "surrogate:SurrogateSpectrum", ("surrogate", "kind"), "energy", "μ(E)",
                   "XANES through --surrogate", surrogate=True),
    ObservableSpec("exafs", "surrogate:SurrogateSpectrum", ("surrogate", "kind"), "reciprocal", "χ(k)",
                   "EXAFS through --surrogate", surrogate=True),
)  # fmt: skip

KINDS = tuple(SPECS)
REAL_SPACE_KINDS = tuple(k for k, s in SPECS.items() if s.treatment == "real")
RECIPROCAL_KINDS = tuple(k for k, s in SPECS.items() if s.treatment == "reciprocal")
SURROGATE_KINDS = tuple(k for k, s in SPECS.items() if s.surrogate)  # need a trained surrogate checkpoint
WEIGHTED_KINDS = tuple(k for k, s in SPECS.items() if s.weighted)


def spec_of(kind: str) -> ObservableSpec:
    """The row of ``kind`` (``ValueError`` naming the known kinds for anything else)."""
    if kind not in SPECS:
        raise ValueError(f"unknown kind {kind!r}; choose one of {', '.join(KINDS)}")
    return SPECS[kind]


def kinds_of(quantity: str) -> str:
    """The kinds whose data are ``quantity`` (``"I(Q)"`` → ``"xrd or nd"``), or ``""``."""
    return " or ".join(k for k, s in SPECS.items() if s.quantity == quantity)


def kind_help() -> str:
    """``gr: g(r); pdf: G(r); ...``: the kinds and what they are, for ``--help``."""
    return "; ".join(f"{kind}: {spec.help}" for kind, spec in SPECS.items()) + "."


def build_observable(kind: str, **options):
    """The observable for ``kind`` (a key of :data:`SPECS`) from flat grid ``options`` (:class:`GridOptions`).

    Real-space grids run to ``r_max`` (Å) in steps ``dr`` with Gaussian width ``sigma``; reciprocal-space
    grids run from ``q_min`` to ``q_max`` (Å⁻¹) in steps ``dq`` and use pairs up to ``r_max`` with a
    Lorch window; ``b_iso`` (Å²) sets their Debye–Waller pair damping (default: 0 for sq/fq, 1.5 for xrd/nd).
    ``adf_cutoff`` (Å) is the bond cutoff for angles (default: 1.3 × covalent radii sum).
    ``xanes`` / ``exafs`` need ``surrogate``, a checkpoint from ``specguide train-surrogate``.
    """
    unknown = set(options) - {f.name for f in fields(GridOptions)}
    if unknown:
        raise TypeError(f"build_observable() got unknown grid options {sorted(unknown)}")
    return spec_of(kind).build(GridOptions(**options))


def pair_range(observable) -> float:
    """The largest pair distance (Å) the observable reports or transforms; 0 for bond angles."""
    return float(getattr(observable, "r_max", 0.0) or 0.0)
