"""Local chemistry of a material, as its training data show it: composition, bonds, coordination, closest approach.

A structural prior is trained on MD snapshots; what those snapshots say about the material's local chemistry is
what generation should respect by default (:class:`Chemistry`, stored in every prior checkpoint):

- **composition**: atomic fractions, pooled over the data;
- **bond cutoffs**: for every *bonded* species pair, the first minimum of the ensemble-mean partial g_ab(r) after
  its first peak (Gaussian width 0.05 Å). A pair is bonded when that first peak lies within 1.2 × the sum of the
  covalent radii (Si–O in silica, not O–O or Si–Si; every pair in a metallic glass);
- **coordination**: the fraction of each species' atoms with n bonded neighbours, per training density;
- **shortest pairs**: the shortest distance per species pair seen anywhere in the data (the veto distance).

:func:`specguide.analysis.structure.chemistry_of` measures it on a set of structures.

Also here, because every layer needs them, each written once: element keys, per-pair distance tables
(:class:`PairTable`), coordination numbers on a batch and every rule that decides what is bonded
(:func:`coordination_numbers`: a cutoff per species pair, from :data:`BOND_FACTOR` x covalent radii, the
training data's :class:`Chemistry`, or the data cards' :data:`DEFAULT_CUTOFFS`), coordination fractions of
structures (:func:`coordination_fractions`), coordination defects (:func:`find_defects`,
:func:`excess_coordination`) and composition strings (:func:`parse_composition`, :func:`species_counts`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import ase
import numpy as np
import torch
from ase.data import atomic_masses, atomic_numbers, chemical_symbols, covalent_radii

from specguide.graph import batch_from_atoms, neighbor_graph
from specguide.io import InputError

PairValues = float | dict[tuple[int | str, int | str], float]
BOND_FACTOR = 1.21  # default bond cutoff = 1.21 x sum of covalent radii (C–C: 1.84 Å, as in Kwon et al.)
VETO_FACTOR = 0.7  # default closest approach = 0.7 x sum of covalent radii (C–C: 1.06 Å)
# carbon: CN1 and CN5 are defects (Kwon et al. Sec. 4.6); silicon: anything but three- or four-fold
DEFAULT_CN_RANGE = {6: (2, 4), 14: (3, 4)}
# bond cutoffs of the MD data cards (Å): Si–Si and C–C at the first minimum of their g(r); silica counts Si–O only
DEFAULT_CUTOFFS: dict[tuple[str, str], float] = {
    ("Si", "Si"): 2.85,
    ("C", "C"): 1.85,
    ("Si", "O"): 2.0,
}


def to_z(key: int | str) -> int:
    """Atomic number of an element symbol or number (``ValueError`` for an unknown symbol)."""
    if isinstance(key, str):
        if key not in atomic_numbers:
            raise ValueError(f"unknown element symbol {key!r}")
        return atomic_numbers[key]
    return int(key)


def pair_key(a: int | str, b: int | str) -> str:
    """``"O-Si"``: the two symbols of a species pair, sorted by atomic number."""
    za, zb = sorted((to_z(a), to_z(b)))
    return f"{chemical_symbols[za]}-{chemical_symbols[zb]}"


def split_pair(key: str | tuple) -> tuple[int, int]:
    """Atomic numbers of ``"Si-O"`` or ``("Si", "O")`` (either order)."""
    a, b = key.split("-") if isinstance(key, str) else key
    return to_z(a.strip() if isinstance(a, str) else a), to_z(b.strip() if isinstance(b, str) else b)


def pair_values_json(values):
    """``{(a, b): value}`` as JSON: ``{"Si-O": value}`` (anything else as it is)."""
    if isinstance(values, dict):
        return {"-".join(chemical_symbols[to_z(k)] for k in key): float(v) for key, v in values.items()}
    return values


class PairTable:
    """A distance per species pair: one float for all pairs, or a dict ``{(z1, z2): r}`` (symbols or ``"Si-O"``
    keys allowed). Pairs missing from a dict get 0 (never bonded / never vetoed). Symmetric."""

    def __init__(self, values: PairValues | Mapping[str, float]):
        self.table = torch.zeros(119, 119, dtype=torch.float64)
        if isinstance(values, Mapping):
            for key, r in values.items():
                za, zb = split_pair(key)
                self.table[za, zb] = self.table[zb, za] = float(r)
        else:
            self.table[:] = float(values)
        if bool((self.table < 0).any()):
            raise ValueError("pair distances must be >= 0")

    def max_for(self, numbers: torch.Tensor) -> float:
        present = torch.unique(numbers).cpu()
        return float(self.table[present][:, present].max()) if present.numel() else 0.0

    def lookup(self, zi: torch.Tensor, zj: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """The distances of the pairs ``(zi, zj)`` (Å) as ``dtype``, on the device of ``zi``."""
        if zi.device.type == "cpu":
            return self.table[zi, zj].to(dtype)
        key = (str(zi.device), dtype)  # the table is copied to a GPU once (and kept), not at every lookup
        cache = self.__dict__.setdefault("_on_device", {})
        if key not in cache or cache[key][0] is not self.table:
            cache[key] = (self.table, self.table.to(device=zi.device, dtype=dtype))
        return cache[key][1][zi, zj]

    @staticmethod
    def covalent(numbers: Sequence[int], factor: float) -> dict[tuple[int, int], float]:
        zs = sorted({int(z) for z in numbers})
        return {(a, b): round(factor * (covalent_radii[a] + covalent_radii[b]), 4) for a in zs for b in zs if a <= b}


def coordination_numbers(
    positions: torch.Tensor,
    cells: torch.Tensor,
    numbers: torch.Tensor,
    batch: torch.Tensor,
    bond_cutoffs: PairValues | PairTable,
    *,
    return_bonds: bool = False,
):
    """Number of bonded neighbours of every atom ``[N]`` (bond: distance below the pair's cutoff, Å);
    with ``return_bonds`` also the bonded directed edges ``[2, E]``."""
    table = bond_cutoffs if isinstance(bond_cutoffs, PairTable) else PairTable(bond_cutoffs)
    cutoff = table.max_for(numbers)
    n = positions.shape[0]
    if cutoff <= 0:
        cn = torch.zeros(n, dtype=torch.long, device=positions.device)
        return (cn, torch.zeros(2, 0, dtype=torch.long, device=positions.device)) if return_bonds else cn
    graph = neighbor_graph(positions.detach(), cells.detach(), batch, cutoff, full_list=True)
    i, j = graph.edge_index
    bonded = graph.distances < table.lookup(numbers[i], numbers[j], graph.distances.dtype)
    cn = torch.bincount(i[bonded], minlength=n)
    if return_bonds:
        return cn, graph.edge_index[:, bonded]
    return cn


def find_defects(
    positions: torch.Tensor,
    cells: torch.Tensor,
    numbers: torch.Tensor,
    batch: torch.Tensor,
    bond_cutoffs: PairValues | PairTable,
    cn_range: dict[int | str, tuple[int, int]] | None,
    *,
    return_bonds: bool = False,
    return_cn: bool = False,
):
    """Boolean mask ``[N]`` of atoms whose coordination number is outside ``cn_range[species]``.

    Species without an entry in ``cn_range`` (or ``cn_range=None``) are never defects. ``return_bonds`` and
    ``return_cn`` append the bonded edges ``[2, E]`` and the coordination numbers ``[N]``.
    """
    cn, bonds = coordination_numbers(positions, cells, numbers, batch, bond_cutoffs, return_bonds=True)
    extra = ((bonds,) if return_bonds else ()) + ((cn,) if return_cn else ())
    if not cn_range:
        defects = torch.zeros_like(cn, dtype=torch.bool)
        return (defects, *extra) if extra else defects
    low = torch.full((119,), -1, dtype=torch.long, device=numbers.device)
    high = torch.full((119,), 10**6, dtype=torch.long, device=numbers.device)
    for species, (lo, hi) in cn_range.items():
        z = to_z(species)
        low[z], high[z] = int(lo), int(hi)
    zs = numbers.long()
    defects = (cn < low[zs]) | (cn > high[zs])
    return (defects, *extra) if extra else defects


def default_cutoffs(symbols: Sequence[str]) -> dict[tuple[str, str], float]:
    """The data cards' bond cutoffs for a set of species (:data:`DEFAULT_CUTOFFS`): Si–Si 2.85 Å, C–C 1.85 Å; for
    silica only Si–O (2.0 Å)."""
    s = set(symbols)
    if s == {"Si", "O"}:
        return {("Si", "O"): 2.0}
    return {k: v for k, v in DEFAULT_CUTOFFS.items() if set(k) <= s}


def coordination_fractions(
    atoms: ase.Atoms | Sequence[ase.Atoms], cutoffs: Mapping | None = None
) -> dict[str, dict[int, float]]:
    """Fraction of atoms of each species with coordination number ``n`` (:func:`coordination_numbers`).

    ``cutoffs``: bond cutoffs per species pair (Å), keys ``('Si', 'O')``, ``'Si-O'`` or atomic numbers (symmetric);
    the default is :func:`default_cutoffs` for the species present. A list of structures is pooled.
    Returns ``{species: {cn: fraction}}`` with the CNs sorted.
    """
    frames = [atoms] if isinstance(atoms, ase.Atoms) else list(atoms)
    symbols = sorted({s for a in frames for s in a.get_chemical_symbols()})
    if cutoffs is None:
        cutoffs = default_cutoffs(symbols)
    if not cutoffs:
        raise ValueError("no bond cutoffs for these species")
    positions, cells, numbers, batch = batch_from_atoms(frames)
    cn = coordination_numbers(positions, cells, numbers, batch, PairTable(cutoffs)).numpy()
    out = {}
    for symbol in symbols:
        values = cn[numbers.numpy() == atomic_numbers[symbol]]
        if values.size == 0:
            continue
        found, count = np.unique(values, return_counts=True)
        out[symbol] = {int(v): float(n) / values.size for v, n in zip(found, count, strict=True)}
    return out


def mean_coordination(atoms: ase.Atoms | Sequence[ase.Atoms], cutoffs: Mapping | None = None) -> dict[str, float]:
    """Mean coordination number per species (same conventions as :func:`coordination_fractions`)."""
    return {s: sum(k * f for k, f in d.items()) for s, d in coordination_fractions(atoms, cutoffs).items()}


# ----------------------------------------------------------------------------------------------------------------
# compositions
# ----------------------------------------------------------------------------------------------------------------


def _formula_amounts(text: str) -> dict[str, float]:
    """Element amounts of a formula: ``SiO2``, ``Si1 O2``, ``Cu64Zr36``, ``(SiO2)0.9(Na2O)0.1`` (``ValueError``)."""
    compact = re.sub(r"[\s,]+", "", text)
    tokens = re.findall(r"[A-Z][a-z]?|\(|\)|\d+\.?\d*|\.\d+", compact)
    if not compact or "".join(tokens) != compact:
        raise ValueError("not a chemical formula")
    stack: list[dict[str, float]] = [{}]
    pending: dict[str, float] | None = None  # the element or closed group that a following count multiplies

    def flush(count: float) -> None:
        for symbol, n in (pending or {}).items():
            stack[-1][symbol] = stack[-1].get(symbol, 0.0) + n * count

    for token in tokens:
        if token == "(":
            flush(1.0)
            pending = None
            stack.append({})
        elif token == ")":
            if len(stack) == 1:
                raise ValueError("unbalanced ')'")
            flush(1.0)
            pending = stack.pop()
        elif token[0].isdigit() or token[0] == ".":
            if pending is None:
                raise ValueError(f"the count {token} follows no element")
            flush(float(token))
            pending = None
        else:
            if token not in atomic_numbers or token == chemical_symbols[0]:
                raise ValueError(f"unknown element {token!r}")
            flush(1.0)
            pending = {token: 1.0}
    flush(1.0)
    if len(stack) != 1:
        raise ValueError("unbalanced '('")
    return stack[0]


_PAIRS = re.compile(r"\s*[A-Za-z]+\s*[:=]\s*[\d.eE+-]+(\s*,\s*[A-Za-z]+\s*[:=]\s*[\d.eE+-]+)*\s*")


def parse_composition(text: str | Mapping[str, float]) -> dict[str, float]:
    """Atomic fractions from ``"SiO2"``, ``"Si1 O2"``, ``"Cu64Zr36"``, ``"(SiO2)0.9(Na2O)0.1"``, ``"Si:1,O:2"`` or
    ``{"Si": 1, "O": 2}`` → ``{"Si": 0.333, "O": 0.667}``.

    Raises ``InputError`` with the fix for anything else (unknown elements, negative or zero amounts).
    """
    if isinstance(text, Mapping):
        amounts = {str(k): float(v) for k, v in text.items()}
    elif _PAIRS.fullmatch(str(text)):
        amounts = {}
        for part in str(text).split(","):
            symbol, value = re.split(r"[:=]", part)
            amounts[symbol.strip()] = amounts.get(symbol.strip(), 0.0) + float(value)
    else:
        try:
            amounts = _formula_amounts(str(text))
        except ValueError as exc:
            raise InputError(
                f"composition {text!r}: {exc}; write a formula (SiO2, Cu64Zr36) or SYMBOL:AMOUNT pairs (Si:1,O:2)"
            ) from None
    unknown = [s for s in amounts if s not in atomic_numbers or s == chemical_symbols[0]]
    if unknown:
        raise InputError(f"composition {text!r}: unknown element(s) {', '.join(unknown)}")
    if any(not math.isfinite(v) or v < 0 for v in amounts.values()) or sum(amounts.values()) <= 0:
        raise InputError(f"composition {text!r}: amounts must be non-negative and not all zero")
    total = sum(amounts.values())
    return {s: v / total for s, v in amounts.items() if v > 0}


def parse_cn_ranges(texts: list[str] | None) -> dict[str, tuple[int, int]] | None:
    """``["Si:4-4"]`` → ``{"Si": (4, 4)}`` (``InputError`` with the fix for anything malformed)."""
    if not texts:
        return None
    ranges = {}
    for text in texts:
        symbol, _, span = text.partition(":")
        try:
            lo, hi = (int(v) for v in span.split("-"))
        except ValueError:
            raise InputError(f"--cn-range {text!r}: write SYMBOL:LO-HI, e.g. Si:4-4") from None
        if symbol not in atomic_numbers or not 0 <= lo <= hi:
            raise InputError(f"--cn-range {text!r}: need a known element symbol and 0 <= LO <= HI, e.g. Si:3-4")
        ranges[symbol] = (lo, hi)
    return ranges


def composition_of(structures: Sequence[ase.Atoms]) -> dict[str, float]:
    """Atomic fractions pooled over ``structures``, sorted by atomic number."""
    numbers = np.concatenate([a.numbers for a in structures])
    zs, counts = np.unique(numbers, return_counts=True)
    return {chemical_symbols[int(z)]: round(float(c) / len(numbers), 6) for z, c in zip(zs, counts)}


def species_counts(composition: Mapping[str, float], n_atoms: int) -> list[int]:
    """Atomic numbers of ``n_atoms`` atoms in ``composition`` (largest-remainder rounding), sorted by species."""
    fractions = parse_composition(composition)
    zs = [to_z(s) for s in fractions]
    exact = np.asarray(list(fractions.values())) * n_atoms
    counts = np.floor(exact).astype(int)
    for index in np.argsort(-(exact - counts), kind="stable")[: n_atoms - counts.sum()]:
        counts[index] += 1
    return [z for z, c in zip(zs, counts) for _ in range(c)]


def numbers_for_composition(
    composition: Mapping[str, float] | str | None,
    n_atoms: int,
    species: Sequence[int],
    chemistry: Chemistry | None = None,
) -> list[int]:
    """Atomic numbers of ``n_atoms`` atoms for a composition (largest-remainder rounding, :func:`species_counts`)
    made of the allowed ``species`` (a prior's; empty: any); without a composition, the single allowed species or
    the composition of ``chemistry`` (a prior's training data)."""
    if composition is None:
        if len(species) == 1:
            return [int(species[0])] * n_atoms
        if chemistry is None:
            symbols = [chemical_symbols[z] for z in species]
            raise ValueError(f"the prior covers several species {symbols} and records no training composition: "
                             "give the composition (e.g. --composition SiO2)")  # fmt: skip
        composition = chemistry.composition
    fractions = parse_composition(composition)
    unknown = [s for s in fractions if species and to_z(s) not in species]
    if unknown:
        raise ValueError(
            f"composition has {unknown}, which the prior was not trained on ({[chemical_symbols[z] for z in species]})"
        )
    return species_counts(fractions, n_atoms)


def mean_mass(composition: Mapping[str, float]) -> float:
    """Mean atomic mass (amu) of a composition."""
    return float(sum(f * atomic_masses[to_z(s)] for s, f in parse_composition(composition).items()))


# ----------------------------------------------------------------------------------------------------------------
# what MD data say
# ----------------------------------------------------------------------------------------------------------------


def first_peak_and_minimum(r: np.ndarray, g: np.ndarray) -> tuple[float | None, float | None]:
    """r (Å) of the first peak of g and of the first minimum after it (the first-shell boundary); None if absent."""
    if g.max() <= 0:
        return None, None
    peak = int(np.argmax(g > 0.5 * g.max()))  # rising edge of the first peak
    while peak + 1 < len(g) and g[peak + 1] >= g[peak]:
        peak += 1
    k = peak
    while k + 1 < len(g) and g[k + 1] <= g[k]:
        k += 1
    return float(r[peak]), (float(r[k]) if 0 < k < len(g) - 1 else None)


def first_minimum(r: np.ndarray, g: np.ndarray) -> float | None:
    """r (Å) of the first minimum of g after its first peak (the first-shell boundary), or None."""
    return first_peak_and_minimum(r, g)[1]


def shortest_pairs(structures: Sequence[ase.Atoms], reach: float = 4.0) -> dict[str, float]:
    """The shortest distance (Å) per species pair over all ``structures`` (pairs within ``reach`` Å)."""
    positions, cells, numbers, batch = batch_from_atoms(list(structures))
    graph = neighbor_graph(positions, cells, batch, reach, full_list=False)
    i, j = graph.edge_index
    zi, zj = torch.minimum(numbers[i], numbers[j]), torch.maximum(numbers[i], numbers[j])
    code = zi * 119 + zj
    shortest = torch.full((119 * 119,), math.inf, dtype=graph.distances.dtype)
    shortest = shortest.scatter_reduce(0, code, graph.distances, reduce="amin")
    found = torch.nonzero(torch.isfinite(shortest)).flatten().tolist()
    return {pair_key(c // 119, c % 119): round(float(shortest[c]), 4) for c in found}


def _nearest_density(records: Mapping[str, Any], density_g_cm3: float | None) -> str | None:
    """The key (a density in g/cm³, as text) of ``records`` nearest ``density_g_cm3``; the middle one if None."""
    if not records:
        return None
    keys = sorted(records, key=float)
    if density_g_cm3 is None:
        return keys[len(keys) // 2]
    return min(keys, key=lambda d: abs(float(d) - float(density_g_cm3)))


@dataclass
class Chemistry:
    """What a prior's training data say about local chemistry (see the module docstring); JSON-serialisable."""

    composition: dict[str, float]
    bond_cutoffs: dict[str, float]  # "O-Si": Å
    shortest: dict[str, float]  # "O-Si": Å
    coordination: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)  # density -> species -> CN
    source: str = ""
    # density -> {"r": Å, "g": g(r), "theta": °, "p_theta": deg⁻¹, "smoothing": text}: the curves reports draw
    curves: dict[str, dict] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "composition": self.composition,
            "bond_cutoffs": self.bond_cutoffs,
            "shortest": self.shortest,
            "coordination": self.coordination,
            "source": self.source,
            "curves": self.curves,
        }

    @classmethod
    def from_dict(cls, data: Mapping) -> Chemistry:
        return cls(
            dict(data["composition"]),
            dict(data["bond_cutoffs"]),
            dict(data["shortest"]),
            {k: {s: dict(v) for s, v in d.items()} for k, d in data.get("coordination", {}).items()},
            str(data.get("source", "")),
            {k: dict(v) for k, v in data.get("curves", {}).items()},
        )

    def coordination_at(self, density_g_cm3: float | None) -> dict[str, dict[str, float]]:
        """The coordination fractions of the training density nearest ``density_g_cm3`` (any, if None)."""
        key = _nearest_density(self.coordination, density_g_cm3)
        return self.coordination[key] if key is not None else {}

    def curves_at(self, density_g_cm3: float | None) -> tuple[str, dict] | None:
        """``(density, curves)`` of the training density nearest ``density_g_cm3``: the g(r) and bond-angle
        distribution of the training data (see :func:`specguide.observables.spectrum.structure_curves`), or None
        for priors trained before they were recorded."""
        key = _nearest_density(self.curves, density_g_cm3)
        return (key, self.curves[key]) if key is not None else None

    def bond_table(self) -> dict[tuple[int, int], float]:
        return {split_pair(k): float(v) for k, v in self.bond_cutoffs.items()}

    def veto_table(self) -> dict[tuple[int, int], float]:
        """Closest approach per species pair: the shortest pair the training data hold (never closer)."""
        return {split_pair(k): float(v) for k, v in self.shortest.items()}


def excess_coordination(
    cn: torch.Tensor, numbers: torch.Tensor, reference: Mapping[str, Mapping[str, float]]
) -> torch.Tensor:
    """Boolean mask ``[N]`` of atoms in coordination classes that the given atoms hold more often than
    ``reference`` does (``{"Si": {"4": 0.95, ...}}``, e.g. :meth:`Chemistry.coordination_at`).

    Restarting exactly these atoms moves the ensemble's coordination distribution towards the reference from the
    side of its excess: a class the reference never shows (one-fold carbon) is always re-sampled, and a class is
    left alone once its share has fallen to the reference's. Species without a reference are never selected.
    """
    selected = torch.zeros(len(cn), dtype=torch.bool, device=cn.device)
    for symbol, fractions in reference.items():
        mask = numbers == to_z(symbol)
        if not bool(mask.any()):
            continue
        values = cn[mask]
        counts = torch.bincount(values).to(torch.float64)
        share = counts / counts.sum()
        target = torch.zeros_like(share)
        for n, f in fractions.items():
            if int(n) < len(target):
                target[int(n)] = float(f)
        selected[mask] = (share > target)[values]
    return selected
