"""Reverse Monte Carlo baseline: the ``reverse-monte-carlo`` engine (``import rmc``) behind specguide's targets.

The same ``KIND:FILE[:key=value,...]`` strings (or :class:`~specguide.observables.target.Target` objects) that drive
:func:`specguide.diffusion.inversion.invert` drive :func:`rmc_refine`, so both methods fit the same data: ``gr``,
``pdf``, ``rdf``, ``sq`` and ``fq``, number-, X-ray- or neutron-weighted (Faber–Ziman, docs/CONVENTIONS.md), on
structures of any number of elements. ``xrd``/``nd`` intensities (f(Q)² self term, fitted scale and offset),
``adf`` and the surrogate kinds raise :class:`~specguide.io.InputError`.

What the engine computes (reverse-monte-carlo 1.0.3, measured by probing it; no documentation exists; checked in
tests/baselines/test_rmc.py):

- **Every data constraint fits a free scale.** Its χ² is ``Σ_k (y_k − s m_k)²`` over the table's points with
  ``s = m·y / m·m`` (least squares), where m is the model curve: g(r) − 1 for ``PairCorrelationConstraint``, S(Q)
  for ``StructureFactorConstraint``, F(Q) for ``ReducedStructureFactorConstraint``. A third data column (errors) is
  ignored. The scale is pinned in practice where m has a known baseline (g − 1 = −1 in the excluded core, which the
  wrapper always feeds; S → 1), but not for F(Q). ``fitted[label]["engine_scale"]`` reports s. The engine holds one
  constraint of each kind ("singular"), so at most one real-space target and one native S(Q) and F(Q) target each.
- **Partial weights.** ``set_weight(a, b, w)`` (symmetric, one call per unordered pair, default 1, raw: not
  normalised, negative allowed) weights every ordered a–b pair by w, so that with Faber–Ziman ``w_ab = f_a f_b/⟨f⟩²``
  (``f`` = 1, Z or b_c; :func:`pair_weights`) the engine's total is ours: ``g = Σ_ab c_a c_b w_ab g_ab``, the −1
  untouched. There is no per-pair scattering length, no Q-dependent weight and no Debye–Waller factor.
- **g(r)** (``PairCorrelationConstraint``): for data columns ``x_0 … x_{n−1}`` the engine bins distances in
  ``[x_0 + k δ, x_0 + (k + 1) δ)`` with ``δ = (x_{n−1} − x_0)/n`` (not ``/(n − 1)``), and divides by shell volumes
  taken from the ``x`` values themselves. For our bin-centre grid ``r_k = (k + ½) dr`` the wrapper passes
  ``x_k = r_0 − dr/2 + k dr n/(n − 1)`` (so δ = dr and the bins are exactly ours) and the values ``c g(r_k) − 1``
  with ``c = ((n − 1)/n)³``, the resulting shell-volume factor. ``pdf`` (G(r)) and ``rdf`` targets are converted to
  g(r) with ρ = N/V of the structure. The model is an *unbroadened* histogram: a target computed with a Gaussian
  kernel (σ) is fitted by distances spread to mimic σ; for simulated targets use :func:`histogram_target`.
- **S(Q)** (``StructureFactorConstraint``, and F = Q[S − 1] for the reduced one, to 1e-14): the data's Q column is
  used pointwise (any grid), but r is an internal histogram independent of the data and of the cell, nodes
  ``r_k = 0.025 + k h`` (h = 0.05 Å, k = 1 … 398, to 19.925 Å), pair bins ``[a + k δ, a + (k + 1) δ)`` with
  ``a = 0.025 + h/398``, ``δ = h·397/398``, over *minimum-image pairs only*::

      S(Q) = 1 + Σ_k E(r_k + h/2) 4π r_k (r_k + h/2) h [n_k / V_k − ρ0] sin(Q r_k)/(Q r_k),

  n_k the weighted ordered pairs per atom in bin k, ``V_k = 4π/3 [(r_k + h)³ − r_k³]``, ρ0 the number density set,
  E the ``set_shape_function`` envelope (called once per bin with ``r_k + h/2``; default 1). A numpy replica agrees
  to 3·10⁻¹⁵. With E = 1 the density term runs to 19.95 Å while the pairs stop at the minimum-image range: on the
  16.5 Å a-SiO2 cell the engine's S(Q) is off by 69 at Q = 0.5 Å⁻¹. The wrapper therefore sets
  ``E = W(r_c) V_k / (4π r_k (r_k + h/2) h)`` (r_c the true bin centre, W our window at the target's ``r_max``,
  zero beyond) and ``ρ0 = ρ (397/398)³`` (the bins are δ, not h, wide), so the engine's S(Q) is our
  ``StructureFactor(r_max=R, window=W)`` up to its 0.05 Å histogram, whose sinc nodes are offset from the pairs'
  bin centres (−0.025 Å at small r, 0 at 10 Å): a phase error that grows with Q. Measured on an a-SiO2 MD cell (300
  atoms, R = 8.27 Å, Lorch, Q 0.5–20 Å⁻¹): max |S_engine − S_ours| = 0.011 below 3 Å⁻¹ and 0.054 above (number and
  neutron weighting alike; 0.084 with a plain Lorch envelope and ρ0 = ρ), i.e. up to 0.74 in F(Q) at 20 Å⁻¹.
  Targets need ``r_max`` ≤ half the smallest cell width. Only the target's active points (weight > 0) are fed;
  their relative weights (error columns) are lost.
- **Target weights.** The free scale makes data × √λ cost λ × χ², which is how ``Target.weight`` reaches the engine.

Routes for ``sq``/``fq`` (``reciprocal_route``): ``"engine"`` uses the native constraint as above (~20 000 moves/s
on 300-atom a-SiO2); ``"python"`` uses :class:`ScatteringConstraint`, an ``rmc.python_constraint`` that updates our
own S(Q) incrementally (numpy; the pair histogram of our default ``route="histogram"`` observable, same nodes and
linear weights, so it reproduces ``target.observable`` to ~1e-13), with X-ray f(Q), Debye–Waller damping, point
weights and no free scale, at ~3 000–4 000 moves/s. ``"auto"`` (default) takes the engine where it can express the
target (Q-independent weights, B = 0, first target of its kind) and the python constraint otherwise, e.g. for an
X-ray S(Q) of a glass of several elements, whose Faber–Ziman weights depend on Q. At equal time the engine wins:
from a random 300-atom SiO2 start, 3 s against the neutron S(Q) of the MD cells, the mean |S − S_target| by our
observable fell from 0.119 to 0.023 by the engine and to 0.039 by the python route at ``temperature=0.0003``
(0.041 and 0.049 at the default 0.003, which was chosen on g(r); the MD cell itself scores 0.007).

Closest approach: ``rmc.InterMolecularDistanceConstraint`` per species pair (``d_min``; default
:func:`default_d_min`, 0.9 × the sum of the two covalent radii: Si–Si 2.00, Si–O 1.59, O–O 1.19 Å; loose for
non-bonded pairs such as O–O, 2.4 Å in the MD glass: pass measured minima there), a rigid constraint: no accepted
move makes a pair shorter. Moves: one atom at a time, up to ``max_step`` (0.3 Å),
Metropolis acceptance at ``temperature`` (0.003, on the total χ²): on a-Si (216 atoms, random start, 12 s,
~3 × 10⁵ moves) the mean |g − g_MD| (σ = 0.15 Å) reached 0.067, against 0.112 with greedy acceptance and 0.1 Å
steps (one MD replica: 0.016; measured while choosing these defaults). Cell: ``rmc.PeriodicBC`` takes the cell
vectors as *columns* (ASE stores rows): the wrapper transposes.

``RMCResult.fitted[label]`` holds, for every target, ``grid``/``target``/``model``: the target as given and the
refined structure's curve computed by the target's own observable (the yardstick shared with guided diffusion),
next to ``engine_grid``/``engine_target``/``engine_model``/``engine_scale``: what the engine fitted (g(r) on our bin
centres for real-space targets, S(Q) or F(Q) on the active Q points) and its own curve, both of the structure
returned (curves are re-evaluated after the run: a native constraint otherwise keeps a last rejected proposal's).
``error_history`` is (seconds, total χ²), starting with the start's χ² (the engine's own counter reads 0 until its
first move).

Wall time is the control: ``max_seconds`` stops the run (checked between chunks of at most ``chunk`` moves, sized to
the measured rate), so RMC can be given exactly the time another method used.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import ase
import numpy as np
import torch
from ase.data import atomic_masses, atomic_numbers, chemical_symbols, covalent_radii

from specguide.chemistry import parse_composition, species_counts
from specguide.graph import batch_from_atoms
from specguide.io import InputError
from specguide.observables import PairDistribution
from specguide.observables.measured import load_target, parse_target_spec
from specguide.observables.scattering import debye_waller, histogram_step, uniform_term, window_function
from specguide.observables.target import Target
from specguide.observables.weights import species_weights
from specguide.structure import mass_density_g_cm3

REAL_SPACE_KINDS = ("gr", "pdf", "rdf")  # fitted through PairCorrelationConstraint (g(r) − 1)
RECIPROCAL_KINDS = ("sq", "fq")  # StructureFactorConstraint / ReducedStructureFactorConstraint or ScatteringConstraint
SUPPORTED_KINDS = (*REAL_SPACE_KINDS, *RECIPROCAL_KINDS)
ROUTES = ("auto", "engine", "python")

# the engine's internal S(Q) histogram (reverse-monte-carlo 1.0.3, measured; see the module docstring)
_SQ_STEP = 0.05  # h, Å
_SQ_BINS = 398  # nodes r_k = 0.025 + k h, k = 1 … 398
_SQ_FIRST_EDGE = 0.025 + _SQ_STEP / _SQ_BINS  # a, Å
_SQ_WIDTH = _SQ_STEP * (_SQ_BINS - 1) / _SQ_BINS  # δ, Å
_SQ_DENSITY_FACTOR = ((_SQ_BINS - 1) / _SQ_BINS) ** 3  # ρ0 = ρ δ³/h³

Pair = tuple[str, str]


@dataclass
class RMCResult:
    """A refined structure and the record of the run."""

    structure: ase.Atoms
    seconds: float
    moves_tried: int
    moves_accepted: int
    error_history: list[tuple[float, float]]  # (seconds, engine total error)
    fitted: dict[str, dict[str, Any]] = field(default_factory=dict)  # label -> curves (see the module docstring)
    config: dict[str, Any] = field(default_factory=dict)


# ----------------------------------------------------------------------------------------------------------------
# species pairs: closest approach and Faber–Ziman weights
# ----------------------------------------------------------------------------------------------------------------


def _pair(a: str, b: str) -> Pair:
    """An unordered species pair, lighter element first (the order of specguide's partial labels, e.g. O-Si)."""
    return (a, b) if (atomic_numbers[a], a) <= (atomic_numbers[b], b) else (b, a)


def pair_label(pair: Pair) -> str:
    """``("O", "Si")`` → ``"O-Si"``."""
    return "-".join(pair)


def default_d_min(a: str, b: str | None = None) -> float:
    """Closest approach (Å) of an a–b pair (b defaults to a): 0.9 × the sum of the covalent radii (Si–Si 2.00 Å,
    Si–O 1.59 Å, C–C 1.37 Å)."""
    b = a if b is None else b
    return round(0.9 * float(covalent_radii[atomic_numbers[a]] + covalent_radii[atomic_numbers[b]]), 3)


def pair_d_min(elements: Sequence[str], d_min: float | Mapping[str | Pair, float] | None = None) -> dict[Pair, float]:
    """Closest approach (Å) of every unordered pair of ``elements``: one value for all, or a mapping keyed
    ``"Si-O"``, ``("Si", "O")`` or ``"Si"`` (the Si–Si pair); pairs not named get :func:`default_d_min`."""
    pairs = sorted({_pair(a, b) for a in elements for b in elements})
    if d_min is not None and not isinstance(d_min, Mapping):
        return {p: float(d_min) for p in pairs}
    table = {p: default_d_min(*p) for p in pairs}
    for key, value in (d_min or {}).items():
        parts = tuple(key.split("-")) if isinstance(key, str) else tuple(key)
        parts = parts * 2 if len(parts) == 1 else parts
        if len(parts) != 2 or not set(parts) <= set(elements):
            raise InputError(f"d_min key {key!r}: name a pair of {', '.join(elements)} like 'Si-O'")
        table[_pair(*parts)] = float(value)
    return table


def pair_weights(symbols: Sequence[str], weighting: str) -> dict[Pair, float]:
    """Faber–Ziman weight per ordered pair of each unordered species pair, ``w_ab = f_a f_b / ⟨f⟩²`` with the
    Q-independent amplitudes of real space (number 1, xray Z, neutron b_c in fm); the total is
    ``Σ_ab c_a c_b w_ab X_ab`` over ordered pairs."""
    elements, counts = np.unique(np.asarray(symbols), return_counts=True)
    numbers = torch.tensor([atomic_numbers[e] for e in elements])
    f = species_weights(numbers, weighting).numpy()
    mean = float(counts @ f) / len(symbols)
    if abs(mean) < 1e-12:
        raise InputError(f"{weighting}-weighted totals are undefined for {dict(zip(elements, counts))}: ⟨f⟩ = 0")
    return {
        _pair(a, b): float(f[i] * f[j]) / mean**2
        for i, a in enumerate(elements)
        for j, b in enumerate(elements)
        if i <= j
    }


# ----------------------------------------------------------------------------------------------------------------
# targets
# ----------------------------------------------------------------------------------------------------------------


def _kind(target: Target) -> str:
    return target.kind or getattr(target.observable, "kind", "")


def _as_targets(targets: Sequence[Target | str], half_cell: float) -> list[Target]:
    loaded = []
    for item in targets:
        target = item if isinstance(item, Target) else load_target(parse_target_spec(item), half_cell)
        kind = _kind(target)
        if kind not in SUPPORTED_KINDS:
            raise InputError(
                f"{target.label}: the RMC baseline fits {', '.join(SUPPORTED_KINDS)} targets, not {kind!r}"
                + (
                    " (the engine has no f(Q)² self term nor a fitted offset: give S(Q))"
                    if kind in ("xrd", "nd")
                    else ""
                )
            )
        if target.fit_scale or target.fit_offset:
            raise InputError(f"{target.label}: RMC takes the curve as given; use scale=fixed,offset=fixed")
        reach = float(getattr(target.observable, "r_max", 0.0))
        if kind in RECIPROCAL_KINDS and reach > half_cell + 1e-9:
            raise InputError(
                f"{target.label}: r_max = {reach:g} Å exceeds half the cell width ({half_cell:.3f} Å); RMC sees "
                "minimum-image pairs only"
            )
        target.metadata.setdefault("weighting", getattr(target.observable, "weighting", "number"))
        loaded.append(target)
    return loaded


def _engine_table(target: Target, rho: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """The active part of a real-space target as the engine's data table (see the module docstring), plus our bin
    centres, the target as g(r) there, and the engine's normalisation factor ``c``."""
    grid = target.observable.grid.numpy()
    dr = float(grid[1] - grid[0])
    if abs(grid[0] - dr / 2) > 1e-9:
        raise InputError(f"{target.label}: RMC needs a grid of bins from r = 0 (first centre dr/2), not {grid[0]:g} Å")
    active = target.point_weights.numpy() > 0
    last = len(active) - int(
        np.argmax(active[::-1])
    )  # from r = 0 (the engine's shell volumes need it) to the data's end
    grid, y = grid[:last], target.y.numpy()[:last]
    kind = _kind(target)
    if kind == "gr":
        g = y
    elif kind == "pdf":
        g = 1.0 + y / (4 * np.pi * rho * grid)  # G(r) = 4πρr[g(r) − 1]
    else:
        g = y / (4 * np.pi * rho * grid**2)  # RDF = 4πr²ρ g(r)
    n = len(grid)
    scale = ((n - 1) / n) ** 3
    x = grid[0] - dr / 2 + np.arange(n) * dr * n / (n - 1)
    return np.column_stack([x, scale * g - 1.0]), grid, g, scale


def _q_independent(target: Target, elements: Sequence[str]) -> bool:
    """Whether the engine's scalar partial weights can express the target (no f(Q) mixing, no damping)."""
    weighting = getattr(target.observable, "weighting", "number")
    return (weighting != "xray" or len(elements) == 1) and float(getattr(target.observable, "b_iso", 0.0)) == 0.0


def _sq_envelope(r_max: float, window: str) -> tuple[Callable[[float], float], np.ndarray]:
    """The engine's per-bin envelope that turns its S(Q) into ours with window W on [0, r_max] (module docstring):
    ``E = W(r_c) V_k / (4π r_k (r_k + h/2) h)``, as a callable of ``r_k + h/2`` and as a table over k."""
    k = np.arange(_SQ_BINS + 1)
    nodes = 0.025 + _SQ_STEP * k
    centres = _SQ_FIRST_EDGE + (k + 0.5) * _SQ_WIDTH
    shells = 4 * np.pi / 3 * ((nodes + _SQ_STEP) ** 3 - nodes**3)
    w = window_function(torch.as_tensor(centres), r_max, window).numpy()
    table = w * shells / (4 * np.pi * nodes * (nodes + _SQ_STEP / 2) * _SQ_STEP)

    def envelope(r: float) -> float:
        return float(table[min(max(int(round(r / _SQ_STEP)) - 1, 0), _SQ_BINS)])

    return envelope, table


# ----------------------------------------------------------------------------------------------------------------
# our S(Q) as an rmc python constraint
# ----------------------------------------------------------------------------------------------------------------


class ScatteringConstraint:
    """An ``rmc.python_constraint`` fitting a ``sq``/``fq`` target with specguide's own S(Q), updated per move.

    ``S(Q) = 1 − ρ U(Q) D(Q) Σ_ab w_ab(Q) c_a c_b + Σ_{i≠j, r_ij < R} D(Q) w_ab(Q) sinc(Q r_ij) W(r_ij) / N`` (docs/
    CONVENTIONS.md), the pair sum taken as ``StructureFactor(route="histogram")`` does: each pair spread linearly on
    the nodes ``k dr`` (dr from the observable) and the kernel tabulated there per species pair and Q (the table holds
    ``2 D w_ab(Q) sinc(Q r_k) W(r_k) / N``). Minimum image (by rounding fractional coordinates: exact for orthogonal
    cells), so ``R`` ≤ half the cell width. Error (added to the
    engine's χ²): ``weight · Σ_k u_k (y_k − model_k)²`` over the target's active points, u the point weights
    normalised to mean 1 there; no free scale. The engine calls ``compute_error`` before and after each move; the
    positions are tracked and any atom whose coordinates changed is updated (a rejected move is undone in O(n_Q)).
    """

    rigid = False
    cost = 4.0e6  # after the engine's own constraints (the distance check costs 1, g(r) 1e6, S(Q) 2e6)

    def __init__(self, structure: ase.Atoms, target: Target) -> None:
        observable = target.observable
        self.name = f"ScatteringConstraint[{target.label}]"
        self.label, self.kind = target.label, _kind(target)
        weights = target.point_weights.numpy()
        active = weights > 0
        self.q = observable.grid.numpy()[active]
        self.y = target.y.numpy()[active]
        self.u = float(target.weight) * weights[active] / weights[active].mean()
        self.cell = np.asarray(structure.cell[:], dtype=np.float64)
        self.inverse = np.linalg.inv(self.cell)
        self.positions = np.asarray(structure.get_positions(wrap=True), dtype=np.float64).copy()
        n_atoms = len(structure)
        species, self.kinds = np.unique(structure.numbers, return_inverse=True)
        self.n_species = len(species)
        concentration = np.bincount(self.kinds) / n_atoms
        q = torch.as_tensor(self.q)
        f = observable.amplitudes(torch.as_tensor(species), torch.float64, torch.device("cpu")).numpy()[:, active]
        weight = f[:, None] * f[None, :] / (concentration @ f) ** 2 * debye_waller(q, observable.b_iso).numpy()
        rho = n_atoms / abs(np.linalg.det(self.cell))
        self.r_max = float(observable.r_max)
        uniform = uniform_term(q, self.r_max, observable.window).numpy()
        self.base = 1.0 - rho * uniform * np.einsum("abq,a,b->q", weight, concentration, concentration)
        self.step, self.n_bins = histogram_step(self.r_max, float(observable.grid.max()), observable.dr)
        nodes = torch.arange(self.n_bins + 1, dtype=torch.float64) * self.step
        kernel = (
            torch.sinc(nodes[:, None] * q[None, :] / math.pi)
            * window_function(nodes, self.r_max, observable.window)[:, None]
        )
        self.table = (2.0 / n_atoms * weight[:, :, None, :] * kernel.numpy()[None, None]).reshape(-1, len(self.q))
        self.s = self.base + self._all_pairs()
        self.undo: tuple[int, np.ndarray, np.ndarray] | None = None

    def _rows(
        self, kind_i: np.ndarray | int, kind_j: np.ndarray, r: np.ndarray, sign: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Table rows and linear weights of pairs at distances r (Å) < r_max."""
        x = r / self.step
        k0 = np.minimum(x.astype(np.int64), self.n_bins - 1)
        frac = x - k0
        rows = (kind_i * self.n_species + kind_j) * (self.n_bins + 1) + k0
        return np.concatenate([rows, rows + 1]), np.concatenate([sign * (1.0 - frac), sign * frac])

    def _all_pairs(self) -> np.ndarray:
        """Σ over all pairs, from a neighbour list (each unordered pair once, the table counts it twice)."""
        from vesin import NeighborList

        i, j, r = NeighborList(cutoff=self.r_max, full_list=False).compute(
            self.positions, self.cell, True, quantities="ijd"
        )
        keep = r < self.r_max
        rows, weights = self._rows(self.kinds[i[keep]], self.kinds[j[keep]], r[keep], np.ones(int(keep.sum())))
        histogram = np.bincount(rows, weights, minlength=len(self.table))
        return histogram @ self.table

    def _move(self, atom: int, new: np.ndarray) -> None:
        """Update S(Q) for ``atom`` moving from its tracked position to ``new`` (Å)."""
        ends = np.stack([self.positions[atom], new])  # old, new
        delta = self.positions[None, :, :] - ends[:, None, :]
        fractional = delta @ self.inverse
        delta = (fractional - np.round(fractional)) @ self.cell
        r = np.sqrt(np.einsum("eni,eni->en", delta, delta))
        r[:, atom] = np.inf
        end, j = np.nonzero(r < self.r_max)
        rows, weights = self._rows(self.kinds[atom], self.kinds[j], r[end, j], 2.0 * end - 1.0)
        self.undo = (atom, self.positions[atom].copy(), self.s)
        self.s = self.s + weights @ self.table[rows]
        self.positions[atom] = new

    def model(self) -> np.ndarray:
        """The current S(Q) or F(Q) on the target's active Q points."""
        return self.s if self.kind == "sq" else self.q * (self.s - 1.0)

    def compute_error(self, coords: np.ndarray, moved: np.ndarray) -> float:
        """``weight Σ u (y − model)²`` for ``coords`` [N, 3] (Å); ``moved`` is not needed (positions are diffed)."""
        for atom in np.flatnonzero(np.any(coords != self.positions, axis=1)):
            if self.undo is not None and self.undo[0] == atom and np.array_equal(coords[atom], self.undo[1]):
                self.positions[atom], self.s = self.undo[1], self.undo[2]  # the last move was rejected
                self.undo = None
            else:
                self._move(int(atom), np.array(coords[atom]))
        residual = self.y - self.model()
        return float(self.u @ residual**2)


# ----------------------------------------------------------------------------------------------------------------
# refinement
# ----------------------------------------------------------------------------------------------------------------


def _import_rmc():
    try:
        import rmc
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "the RMC baseline needs the reverse-monte-carlo package: pip install reverse-monte-carlo"
        ) from exc
    return rmc


@dataclass
class _Fit:
    """One target as given to the engine."""

    target: Target
    kind: str
    route: str  # engine | python
    grid: np.ndarray  # what the engine sees: r bin centres (g(r)) or Q points
    values: np.ndarray  # the target there: g(r), S(Q) or F(Q)
    scale: float = 1.0  # g(r) factor c of the real-space table
    constraint: Any = None


def rmc_refine(
    start: ase.Atoms,
    targets: Sequence[Target | str],
    *,
    max_seconds: float,
    max_moves: int | None = None,
    d_min: float | Mapping[str | Pair, float] | None = None,
    max_step: float = 0.3,
    temperature: float = 0.003,
    seed: int = 0,
    chunk: int = 5000,
    reciprocal_route: str = "auto",
) -> RMCResult:
    """Refine ``start`` against ``targets`` with reverse Monte Carlo for at most ``max_seconds`` (and ``max_moves``).

    ``max_step``: largest single-atom displacement (Å); ``temperature``: Metropolis temperature on the total χ²
    (0 = greedy, the engine's default); ``d_min``: closest approach (Å), one value, or per pair (see
    :func:`pair_d_min`); ``reciprocal_route``: ``auto`` | ``engine`` | ``python`` for ``sq``/``fq`` targets (module
    docstring). Returns the refined structure (wrapped into the cell) and the fitted curves.
    """
    rmc = _import_rmc()
    if max_seconds <= 0:
        raise ValueError(f"max_seconds must be > 0, got {max_seconds}")
    if reciprocal_route not in ROUTES:
        raise ValueError(f"unknown reciprocal_route {reciprocal_route!r}; choose one of {', '.join(ROUTES)}")
    symbols = start.get_chemical_symbols()
    elements = sorted(set(symbols), key=lambda s: atomic_numbers[s])
    cell = np.asarray(start.cell[:], dtype=np.float64)
    widths = start.cell.volume / np.linalg.norm(np.cross(cell[[1, 2, 0]], cell[[2, 0, 1]]), axis=1)
    loaded = _as_targets(targets, float(widths.min()) / 2)
    rho = len(start) / start.get_volume()
    closest = pair_d_min(elements, d_min)

    started = time.perf_counter()
    structure = rmc.AtomicStructure(
        np.ascontiguousarray(start.get_positions(wrap=True), dtype=np.float64),
        symbols,
        molecule_ids=list(range(len(start))),  # one "molecule" per atom: the distance constraint acts on all pairs
    )
    engine = rmc.Engine(structure, rmc.PeriodicBC(np.ascontiguousarray(cell.T)), frame_rng_seed=seed + 1729)
    fits: list[_Fit] = []
    native: set[str] = set()
    for target in loaded:
        kind = _kind(target)
        root = math.sqrt(target.weight)  # the engine's free scale turns data × √λ into χ² × λ
        expressible = kind in REAL_SPACE_KINDS or _q_independent(target, elements)  # by scalar partial weights
        weights = pair_weights(symbols, target.metadata["weighting"]) if expressible else {}
        if kind in REAL_SPACE_KINDS:
            if "real" in native:
                raise InputError(f"{target.label}: the engine fits one real-space (gr/pdf/rdf) target at a time")
            native.add("real")
            table, grid, g, scale = _engine_table(target, rho)
            constraint = rmc.PairCorrelationConstraint()
            constraint.set_experimental_data(np.column_stack([table[:, 0], root * table[:, 1]]))
            constraint.set_number_density(rho)
            fit = _Fit(target, kind, "engine", grid, g, scale)
        else:
            wants = "python" if (not weights or kind in native) else "engine"
            route = wants if reciprocal_route == "auto" else reciprocal_route
            if route == "engine" and wants == "python":
                raise InputError(
                    f"{target.label}: the engine cannot fit this {kind} target (Q-dependent X-ray weights, "
                    "Debye–Waller damping or a second one of its kind); use reciprocal_route='python' or 'auto'"
                )
            active = target.point_weights.numpy() > 0
            grid, values = target.observable.grid.numpy()[active], target.y.numpy()[active]
            fit = _Fit(target, kind, route, grid, values)
            if route == "python":
                fit.constraint = ScatteringConstraint(start, target)
                engine.add_constraint(rmc.python_constraint(fit.constraint))
                fits.append(fit)
                continue
            native.add(kind)
            constraint = rmc.StructureFactorConstraint() if kind == "sq" else rmc.ReducedStructureFactorConstraint()
            constraint.set_experimental_data(np.column_stack([grid, root * values]))
            constraint.set_number_density(rho * _SQ_DENSITY_FACTOR)
            constraint.set_shape_function(_sq_envelope(target.observable.r_max, target.observable.window)[0])
        constraint.set_elements(engine.structure)
        for (a, b), w in weights.items():
            constraint.set_weight(a, b, w)
        engine.add_constraint(rmc.Constraint(constraint))
        fits.append(fit)
    closest_approach = rmc.InterMolecularDistanceConstraint()
    closest_approach.set_structure(engine.structure)
    for (a, b), value in closest.items():
        closest_approach.set_minimum_distance(a, b, value)
    engine.add_constraint(rmc.Constraint(closest_approach))
    engine.build_atomic_groups(0.0, float(max_step), seed=seed)
    engine.set_sampler(rmc.MetropolisSampler(float(temperature)), seed=seed + 11)
    engine.initialise()

    history = [(0.0, _current_error(engine))]  # the engine's total_error is 0 until its first move
    budget_moves = max_moves if max_moves is not None else np.iinfo(np.int64).max
    done = 0
    while (elapsed := time.perf_counter() - started) < max_seconds and done < budget_moves:
        rate = done / max(elapsed, 1e-9) if done else 0.0  # moves per second so far
        fitting = int(rate * (max_seconds - elapsed)) + 1 if rate else 1000  # a first short chunk measures the rate
        n = int(min(chunk, budget_moves - done, max(fitting, 1)))
        engine.run(n)
        done += n
        history.append((time.perf_counter() - started, float(engine.total_error)))
    seconds = time.perf_counter() - started

    refined = ase.Atoms(symbols, positions=np.asarray(engine.structure.coordinates), cell=cell, pbc=True)
    refined.wrap()
    fitted = _fitted_curves(engine, fits, refined)
    stats = engine.stats
    config = {
        "engine": f"reverse-monte-carlo {getattr(rmc, '__version__', '?')}",
        "targets": [
            {
                "label": f.target.label,
                "kind": f.kind,
                "route": f.route,
                "weighting": f.target.metadata["weighting"],
                "sigma": getattr(f.target.observable, "sigma", None),
                "weight": f.target.weight,
            }
            for f in fits
        ],  # fmt: skip
        "max_seconds": max_seconds,
        "max_moves": max_moves,
        "d_min": {pair_label(p): v for p, v in closest.items()},
        "max_step": max_step,
        "temperature": temperature,
        "seed": seed,
        "reciprocal_route": reciprocal_route,
        "number_density": rho,
        "density_g_cm3": mass_density_g_cm3(float(atomic_masses[start.numbers].sum()), start.get_volume()),
    }
    refined.info.update(method="rmc", rmc_seconds=seconds)
    return RMCResult(refined, seconds, int(stats.steps_tried), int(stats.steps_accepted), history, fitted, config)


def _current_error(engine: Any) -> float:
    """The engine's total χ² for the structure it holds, every soft constraint evaluated afresh (this also brings
    each curve up to date: after a rejected last move a native constraint still holds the rejected proposal's)."""
    coords = np.ascontiguousarray(engine.structure.coordinates, dtype=np.float64)
    every = list(range(len(coords)))
    return float(sum(c.concrete().compute_error(coords, every) for c in engine.constraints if not c.is_rigid))


def _fitted_curves(engine: Any, fits: Sequence[_Fit], refined: ase.Atoms) -> dict[str, dict[str, Any]]:
    """Per target: the target and our observable's curve of ``refined`` on its grid, and the engine's own fit."""
    _current_error(engine)
    inside = {type(c.concrete()).__name__: c.concrete() for c in engine.constraints}
    native = {"gr": "PairCorrelationConstraint", "pdf": "PairCorrelationConstraint",
              "rdf": "PairCorrelationConstraint", "sq": "StructureFactorConstraint",
              "fq": "ReducedStructureFactorConstraint"}  # fmt: skip
    batch = batch_from_atoms(refined)
    out = {}
    for fit in fits:
        target = fit.target
        with torch.no_grad():
            ours = target.observable(*batch)[0].numpy()
        if fit.route == "python":
            model, scale = fit.constraint.model(), 1.0
        else:
            computed = np.asarray(inside[native[fit.kind]].computed, dtype=np.float64).ravel()
            data = np.asarray(inside[native[fit.kind]].experimental, dtype=np.float64).ravel()
            scale = float(computed @ data / (computed @ computed)) / math.sqrt(target.weight or 1.0)
            model = (computed + 1.0) / fit.scale if fit.kind in REAL_SPACE_KINDS else computed
        out[target.label] = {
            "grid": target.observable.grid.numpy(),
            "target": target.y.numpy(),
            "model": ours,
            "weights": target.point_weights.numpy(),
            "engine_grid": fit.grid,
            "engine_target": fit.values,
            "engine_model": model,
            "engine_scale": scale,
            "route": fit.route,
        }
    return out


# ----------------------------------------------------------------------------------------------------------------
# starts and targets
# ----------------------------------------------------------------------------------------------------------------


def _place(
    kinds: np.ndarray, closest: np.ndarray, length: float, rng: np.random.Generator, trials: int = 64
) -> np.ndarray:
    """Random sequential addition in a periodic cube (Å) with per-species-pair closest approach ``closest[a, b]``
    (Å); all limits are lowered by 5 % whenever an atom finds no place in 40 × ``trials`` tries."""
    factor = 1.0
    while True:
        positions = np.empty((len(kinds), 3))
        for i, kind in enumerate(kinds):
            limit = (factor * closest[kind, kinds[:i]]) ** 2
            for _ in range(40):
                candidates = rng.random((trials, 3)) * length
                delta = positions[None, :i] - candidates[:, None]
                delta -= length * np.round(delta / length)
                free = (np.einsum("tij,tij->ti", delta, delta) >= limit).all(axis=1)
                if free.any():
                    positions[i] = candidates[np.argmax(free)]
                    break
            else:
                factor *= 0.95
                break
        else:
            return positions


def _atomic_numbers(composition: str | Mapping[str, float], n_atoms: int) -> np.ndarray:
    """``n_atoms`` atomic numbers (sorted) in the proportions of ``composition``, by largest-remainder rounding."""
    if n_atoms < 1:
        raise InputError(f"composition {composition!r} with {n_atoms} atoms: need at least one atom")
    return np.sort(np.asarray(species_counts(parse_composition(composition), n_atoms)))


def random_start(
    composition: str | Mapping[str, float],
    density_g_cm3: float,
    n_atoms: int,
    seed: int = 0,
    d_min: float | Mapping[str | Pair, float] | None = None,
) -> ase.Atoms:
    """Random positions in a cubic cell at ``density_g_cm3`` with no pair closer than its ``d_min`` (Å).

    ``composition``: an element (``"Si"``), a formula (``"SiO2"``, ``"Cu64Zr36"``) or amounts (``{"Si": 1, "O": 2}``);
    ``n_atoms`` in all, split by largest-remainder rounding. ``d_min`` as in :func:`pair_d_min`.
    """
    from specguide.simulate.lammps import random_positions
    from specguide.structure import cubic_cell_length

    rng = np.random.default_rng(seed)
    numbers = _atomic_numbers(composition, n_atoms)
    symbols = [chemical_symbols[z] for z in numbers]
    length = float(cubic_cell_length(Counter(symbols), density_g_cm3))
    elements = sorted(set(symbols), key=lambda s: atomic_numbers[s])
    closest = pair_d_min(elements, d_min)
    if len(elements) == 1:  # the single-element starts of earlier benchmarks, seed for seed
        positions, _ = random_positions(n_atoms, length, closest[elements[0], elements[0]], rng)
    else:
        numbers = rng.permutation(numbers)  # species placed in random order
        kinds = np.searchsorted([atomic_numbers[e] for e in elements], numbers)
        matrix = np.array([[closest[_pair(a, b)] for b in elements] for a in elements])
        positions = _place(kinds, matrix, length, rng)
    return ase.Atoms(numbers, positions=positions, cell=[length] * 3, pbc=True)


def liquid_start(
    element: str, density_g_cm3: float, n_atoms: int, seed: int = 0, melt_ps: float = 2.0, temperature: float = 5000.0
) -> ase.Atoms:
    """A liquid snapshot: ``melt_ps`` of NVT MD at ``temperature`` (K) from a random start with the element's
    shipped classical potential (:func:`specguide.data.md.melt_quench` with the quench and anneal switched off)."""
    from specguide.simulate.lammps import MeltQuenchProtocol, melt_quench

    protocol = MeltQuenchProtocol(
        melt_temperature=temperature,
        melt_time=melt_ps,
        quench_temperature=temperature,
        quench_rate=1.0,
        anneal_time=0.0,
        minimize_final=False,
    )
    return melt_quench(element, density_g_cm3=density_g_cm3, n_atoms=n_atoms, seed=seed, protocol=protocol)


class HistogramPairDistribution(PairDistribution):
    """The *unbroadened* total g(r) in bins ``[k dr, (k + 1) dr)`` (centres ``(k + ½) dr``), each divided by its exact
    shell volume, Faber–Ziman weighted (number | xray f = Z | neutron b_c): the curve the RMC engine computes.
    Not differentiable (numpy histogram); ``sigma`` only names the bin width."""

    quantity = "g(r), unbroadened histogram, exact shell volumes"

    def __init__(self, r_max: float, dr: float = 0.05, weighting: str = "number") -> None:
        super().__init__(r_max=r_max, dr=dr, sigma=dr, weighting=weighting)
        self.quantity = f"g(r), unbroadened {weighting}-weighted histogram in {dr:g} Å bins, exact shell volumes"

    def __call__(self, positions, cells, numbers, batch=None) -> torch.Tensor:
        """``[S, n_r]`` histogram g(r) of each structure of the batch."""
        from vesin import NeighborList

        cells, batch = self._prepare(positions, cells, batch)
        edges = np.arange(self.n_r + 1) * self.dr
        shells = 4 * np.pi / 3 * (edges[1:] ** 3 - edges[:-1] ** 3)
        out = []
        for s in range(cells.shape[0]):
            inside = batch == s
            z = numbers[inside]
            species = torch.unique(z)
            f = species_weights(species, self.weighting).numpy()[torch.searchsorted(species, z).numpy()]
            i, j, r = NeighborList(cutoff=float(edges[-1]), full_list=True).compute(
                positions[inside].detach().numpy(), cells[s].detach().numpy(), True, quantities="ijd"
            )
            counts, _ = np.histogram(r, bins=edges, weights=f[i] * f[j])
            n = len(z)
            rho = n / abs(float(torch.linalg.det(cells[s])))
            out.append(counts / (n * f.mean() ** 2 * rho * shells))
        return torch.as_tensor(np.stack(out), dtype=positions.dtype)


def histogram_target(
    structures: Sequence[ase.Atoms],
    r_max: float,
    dr: float = 0.05,
    label: str = "gr-histogram",
    weighting: str = "number",
) -> Target:
    """The ensemble-mean *unbroadened* g(r) of ``structures`` (:class:`HistogramPairDistribution`, bin centres
    ``(k + ½) dr``) as a ``gr`` target: the curve the RMC engine itself computes, so that a simulated target asks RMC
    for what it can represent (a Gaussian-broadened g(r) would make it spread the distances to mimic the kernel)."""
    observable = HistogramPairDistribution(r_max, dr, weighting)
    with torch.no_grad():
        y = observable(*batch_from_atoms(list(structures))).mean(0)
    return Target(observable, y, label=label, kind="gr",
                  metadata={"convention": observable.quantity, "dr": dr, "weighting": weighting})  # fmt: skip
