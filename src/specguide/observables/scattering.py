"""Reciprocal-space observables: structure factors S(Q), F(Q) and X-ray / neutron diffraction intensities I(Q).

Conventions (the single reference is docs/CONVENTIONS.md):

- ``Q = 4π sin(θ)/λ`` in Å⁻¹; X-ray form factors f_a(Q) are Waasmaier-Kirfel (xraydb), neutron amplitudes are
  coherent scattering lengths b_a in fm (periodictable).
- Debye–Waller: every atom's amplitude carries ``exp(-B s²)`` with ``s = Q/4π``, so each *distinct* pair
  (i ≠ j) is damped by ``D(Q) = exp(-B Q²/(8π²))``; self terms (i = j) are not damped (the intensity lost from
  the pair terms reappears as thermal diffuse scattering). This is DebyeCalculator's convention.
- Two routes to the distinct-pair sums ``T_ab(Q) = Σ_{i∈a} Σ_{j∈b, j≠i} sin(Q r_ij)/(Q r_ij) W(r_ij)``
  (ordered pairs, periodic images included, r_ij < r_max):

  ``"histogram"`` (periodic, linear scaling, default): pairs from a neighbour list are spread onto a fine
  radial grid with linear ("cloud-in-cell") weights, differentiable almost everywhere, and the grid is
  multiplied by the tabulated kernel. Relative error of S(Q)−1 ≲ (Q dr)²/12 (2·10⁻⁴ with the default dr).

  ``"debye"``: the same sum evaluated exactly pair by pair (chunked; custom backward so memory stays bounded).
  With ``periodic=False`` (finite clusters) all pairs are summed, without window or cutoff.

- Faber–Ziman partials for periodic structures, with ρ = N/V and concentrations c_a:
  ``S_ab(Q) = 1 + D(Q) [T_ab(Q)/(N c_a c_b) − ρ U(Q)]``, ``U(Q) = 4π ∫_0^{r_max} r² sin(Qr)/(Qr) W(r) dr``
  (analytic), i.e. ``S_ab = 1 + D · 4πρ ∫_0^{r_max} r² [g_ab(r) − 1] sin(Qr)/(Qr) W(r) dr``.
  Window W: ``"lorch"`` (default) ``sin(πr/r_max)/(πr/r_max)``, or ``"none"`` (sharp cutoff at r_max).
  For finite clusters ``S_ab(Q) = 1 + D T_ab(Q)/(N c_a c_b)`` (no density subtraction).
- Total ``S(Q) = Σ_ab w_ab(Q) S_ab(Q)`` with Faber–Ziman weights ``w_ab = c_a c_b f_a f_b / ⟨f⟩²``
  (number: f = 1; X-ray: f_a(Q); neutron: b_a); ``F(Q) = Q [S(Q) − 1]``.
- Intensity per atom: ``I(Q)/N = ⟨f²⟩ + ⟨f⟩² [S(Q) − 1] = Σ_a c_a f_a² + D Σ_ab f_a f_b [T_ab/N − c_a c_b ρ U]``
  in electrons² per atom (X-ray) or fm² per atom (neutron; 1 barn = 100 fm²).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import torch
from torch.autograd.function import once_differentiable

from specguide.graph import (
    PAIR_CHUNK,
    SPATIAL_ORDER_ATOMS,
    VerletNeighborList,
    atoms_per_structure,
    cell_volumes,
    neighbor_graph,
    pairwise_sum,
    structure_slices,
)
from specguide.observables.base import Observable
from specguide.observables.weights import (
    concentrations,
    element_symbol,
    species_index,
    species_weights,
    xray_form_factors,
)

ROUTES = ("histogram", "debye")
WINDOWS = ("lorch", "none")
_DEFAULT_CHUNK = 2**22  # elements (pairs × Q points) held at once by the exact route


# ----------------------------------------------------------------------------------------------------------------
# kernels
# ----------------------------------------------------------------------------------------------------------------


def _sinc(x: torch.Tensor) -> torch.Tensor:
    """sin(x)/x with the limit 1 at x = 0."""
    return torch.sinc(x / math.pi)


def _dsinc(x: torch.Tensor) -> torch.Tensor:
    """d/dx [sin(x)/x] = (cos x − sin x / x)/x, with its series near 0."""
    small = x.abs() < 1e-3
    xs = torch.where(small, torch.ones_like(x), x)
    exact = (torch.cos(xs) - torch.sin(xs) / xs) / xs
    return torch.where(small, -x / 3.0 + x**3 / 30.0, exact)


def window_function(r: torch.Tensor, r_max: float, window: str) -> torch.Tensor:
    """Real-space window W(r) on [0, r_max] (zero beyond): ``lorch`` sin(πr/R)/(πr/R) or ``none`` 1."""
    inside = (r <= r_max).to(r.dtype)
    if window == "lorch":
        return _sinc(math.pi * r / r_max) * inside
    if window == "none":
        return inside
    raise ValueError(f"unknown window {window!r}; choose one of {', '.join(WINDOWS)}")


def _window_derivative(r: torch.Tensor, r_max: float, window: str) -> torch.Tensor:
    if window == "lorch":
        a = math.pi / r_max
        return a * _dsinc(a * r) * (r <= r_max).to(r.dtype)
    return torch.zeros_like(r)


def _kernel(r: torch.Tensor, q: torch.Tensor, r_max: float | None, window: str) -> torch.Tensor:
    """φ(r, Q) = sin(Qr)/(Qr) W(r): ``[len(r), len(q)]``. ``r_max=None``: no window (finite clusters)."""
    phi = _sinc(r[:, None] * q[None, :])
    if r_max is not None:
        phi = phi * window_function(r, r_max, window)[:, None]
    return phi


def _kernel_derivative(r: torch.Tensor, q: torch.Tensor, r_max: float | None, window: str) -> torch.Tensor:
    """∂φ/∂r ``[len(r), len(q)]``."""
    x = r[:, None] * q[None, :]
    d = q[None, :] * _dsinc(x)
    if r_max is not None:
        w = window_function(r, r_max, window)[:, None]
        dw = _window_derivative(r, r_max, window)[:, None]
        d = d * w + _sinc(x) * dw
    return d


def uniform_term(q: torch.Tensor, r_max: float, window: str) -> torch.Tensor:
    """U(Q) = 4π ∫_0^{r_max} r² sin(Qr)/(Qr) W(r) dr (Å³), analytic; ρ U is the uniform-density term.

    none:  U = 4π [sin(QR) − QR cos(QR)] / Q³            (4πR³/3 at Q = 0)
    lorch: U = 4π R sinc((Q − a)R) / (Q (Q + a)),  a = π/R, sinc(x) = sin(x)/x   (4R³/π at Q = 0)
    """
    R = float(r_max)
    small = q.abs() < 1e-6
    qs = torch.where(small, torch.ones_like(q), q)
    if window == "none":
        x = qs * R
        value = 4.0 * math.pi * (torch.sin(x) - x * torch.cos(x)) / qs**3
        return torch.where(small, torch.full_like(q, 4.0 * math.pi * R**3 / 3.0), value)
    if window == "lorch":
        a = math.pi / R
        value = 4.0 * math.pi * R * _sinc((qs - a) * R) / (qs * (qs + a))
        return torch.where(small, torch.full_like(q, 4.0 * R**3 / math.pi), value)
    raise ValueError(f"unknown window {window!r}; choose one of {', '.join(WINDOWS)}")


def debye_waller(q: torch.Tensor, b_iso: float) -> torch.Tensor:
    """Pair damping D(Q) = exp(−B Q²/(8π²)), i.e. exp(−B s²) per atom amplitude with s = Q/4π."""
    return torch.exp(-float(b_iso) * q**2 / (8.0 * math.pi**2))


# ----------------------------------------------------------------------------------------------------------------
# exact pair sums with bounded memory (custom backward: nothing of size pairs × Q is kept for autograd)
# ----------------------------------------------------------------------------------------------------------------


class _EdgeSincSum(torch.autograd.Function):
    """out[t, q] = Σ_{e: index[e] = t} φ(r_e, Q_q), chunked over edges."""

    @staticmethod
    def forward(ctx, r, index, n_out, q, r_max, window, chunk):  # noqa: D102
        n_q = q.numel()
        step = max(1, chunk // max(1, n_q))
        out = r.new_zeros(n_out * n_q)
        columns = torch.arange(n_q, device=r.device)
        for s in range(0, r.numel(), step):
            flat = (index[s : s + step, None] * n_q + columns).reshape(-1)
            out.index_add_(0, flat, _kernel(r[s : s + step], q, r_max, window).reshape(-1))
        out = out.view(n_out, n_q)
        ctx.save_for_backward(r, index, q)
        ctx.params = (r_max, window, step)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):  # noqa: D102
        r, index, q = ctx.saved_tensors
        r_max, window, step = ctx.params
        grad_r = torch.empty_like(r)
        for s in range(0, r.numel(), step):
            d = _kernel_derivative(r[s : s + step], q, r_max, window)
            grad_r[s : s + step] = (d * grad_out[index[s : s + step]]).sum(-1)
        return grad_r, None, None, None, None, None, None


def _cluster_blocks(n: int, n_q: int, chunk: int):
    """Row blocks [s, e) such that block rows × remaining columns × n_q ≲ chunk."""
    s = 0
    while s < n - 1:
        rows = max(1, chunk // max(1, (n - s) * n_q))
        e = min(n, s + rows)
        yield s, e
        s = e


class _ClusterSincSum(torch.autograd.Function):
    """out[a·n_s + b, q] = Σ_{i<j, s_i=a, s_j=b} sin(Q r_ij)/(Q r_ij) over all pairs of a finite cluster."""

    @staticmethod
    def _block(positions, kinds, n_species, s, e):
        xi = positions[s:e]
        xj = positions[s:]
        vec = xi[:, None, :] - xj[None, :, :]  # [B, n - s, 3]
        rows = torch.arange(e - s, device=positions.device)
        cols = torch.arange(positions.shape[0] - s, device=positions.device)
        mask = cols[None, :] > rows[:, None]
        ii, jj = mask.nonzero(as_tuple=True)
        vec = vec[ii, jj]
        r = vec.norm(dim=-1)
        t = kinds[s + ii] * n_species + kinds[s + jj]
        return ii + s, jj + s, vec, r, t

    @staticmethod
    def forward(ctx, positions, kinds, n_species, q, chunk):  # noqa: D102
        n_q = q.numel()
        out = positions.new_zeros(n_species * n_species * n_q)
        columns = torch.arange(n_q, device=positions.device)
        for s, e in _cluster_blocks(positions.shape[0], n_q, chunk):
            _, _, _, r, t = _ClusterSincSum._block(positions, kinds, n_species, s, e)
            out.index_add_(0, (t[:, None] * n_q + columns).reshape(-1), _kernel(r, q, None, "none").reshape(-1))
        out = out.view(n_species * n_species, n_q)
        ctx.save_for_backward(positions, kinds, q)
        ctx.params = (n_species, chunk)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):  # noqa: D102
        positions, kinds, q = ctx.saved_tensors
        n_species, chunk = ctx.params
        grad = torch.zeros_like(positions)
        for s, e in _cluster_blocks(positions.shape[0], q.numel(), chunk):
            i, j, vec, r, t = _ClusterSincSum._block(positions, kinds, n_species, s, e)
            g_r = (_kernel_derivative(r, q, None, "none") * grad_out[t]).sum(-1)
            u = vec / r.clamp_min(1e-12)[:, None]  # ∂r/∂x_i
            grad.index_add_(0, i, g_r[:, None] * u)
            grad.index_add_(0, j, -g_r[:, None] * u)
        return grad, None, None, None, None


# ----------------------------------------------------------------------------------------------------------------
# pair sums T_ab(Q)
# ----------------------------------------------------------------------------------------------------------------


def _symmetrise(t: torch.Tensor) -> torch.Tensor:
    """Unordered-pair sums stored at (a, b) → ordered-pair sums: T + Tᵀ (doubles a = b, as ordered pairs do)."""
    return t + t.transpose(1, 2)


def histogram_step(r_max: float, q_max: float, dr: float | None) -> tuple[float, int]:
    target = dr if dr is not None else min(0.01, 0.05 / max(q_max, 1e-6))
    n_bins = max(1, math.ceil(r_max / target))
    return r_max / n_bins, n_bins


def pair_sums(
    positions: torch.Tensor,
    cells: torch.Tensor,
    numbers: torch.Tensor,
    batch: torch.Tensor | None,
    species: torch.Tensor,
    q: torch.Tensor,
    *,
    route: str = "histogram",
    periodic: bool = True,
    r_max: float = 10.0,
    window: str = "lorch",
    dr: float | None = None,
    chunk_size: int = _DEFAULT_CHUNK,
    neighbors: VerletNeighborList | None = None,
    pair_chunk: int = PAIR_CHUNK,
) -> torch.Tensor:
    """Distinct-pair sums ``T_ab(Q) = Σ_{i∈a} Σ_{j∈b, j≠i} sin(Q r_ij)/(Q r_ij) W(r_ij)`` → ``[S, n_s, n_s, n_q]``.

    Ordered pairs (so ``T_ab = T_ba`` and each unordered pair counts twice), periodic images included up to
    ``r_max``. ``periodic=False``: all pairs of each finite cluster, no window (``route`` must be ``"debye"``).
    ``neighbors``: a :class:`~specguide.graph.VerletNeighborList` to reuse between calls (default: a fresh list).
    ``chunk_size``: elements (pairs × Q points) held at once by the exact route; ``pair_chunk``: pairs binned at once
    by the histogram route (its memory beyond the neighbour list is bounded by it, in both passes).
    """
    if route not in ROUTES:
        raise ValueError(f"unknown route {route!r}; choose one of {', '.join(ROUTES)}")
    if batch is None:
        batch = torch.zeros(positions.shape[0], dtype=torch.long, device=positions.device)
    if cells.dim() == 2:
        cells = cells.unsqueeze(0)
    n_structures = cells.shape[0]
    n_s = len(species)
    kinds = species_index(numbers, species)
    q = q.to(positions.dtype)

    if not periodic:
        if route != "debye":
            raise ValueError("finite clusters (periodic=False) need route='debye' (all pairs, no cutoff)")
        offsets = structure_slices(batch, n_structures)
        out = []
        for s in range(n_structures):
            a, b = int(offsets[s]), int(offsets[s + 1])
            t = _ClusterSincSum.apply(positions[a:b], kinds[a:b], n_s, q, chunk_size)
            out.append(t.view(n_s, n_s, -1))
        return _symmetrise(torch.stack(out)) if out else positions.new_zeros(0, n_s, n_s, q.numel())

    if route == "histogram":
        if neighbors is None:
            neighbors = VerletNeighborList(skin=0.0, spatial_order_atoms=SPATIAL_ORDER_ATOMS)
        moved, pairs = neighbors.pairs(positions, cells, batch, r_max, full_list=False)
        (i, j), edge_batch = pairs.edge_index, pairs.edge_batch
        kinds = pairs.per_atom(kinds)  # in the order i, j count atoms in
        step, n_bins = histogram_step(float(r_max), float(q.max()), dr)
        nodes = torch.linspace(0.0, float(r_max), n_bins + 1, dtype=positions.dtype, device=positions.device)

        def pair_type(start, stop):
            return (edge_batch[start:stop] * n_s + kinds[i[start:stop]]) * n_s + kinds[j[start:stop]]

        binning = PairLinearBinning(float(r_max), step, n_bins, n_structures * n_s * n_s, pair_type,
                                    _kernel(nodes, q, float(r_max), window))  # fmt: skip
        t = pairwise_sum(moved, cells, pairs, binning, pair_chunk)
        return _symmetrise(t.view(n_structures, n_s, n_s, -1))

    if neighbors is not None:
        graph = neighbors(positions, cells, batch, r_max, full_list=False)
    else:
        graph = neighbor_graph(positions, cells, batch, r_max, periodic=True, full_list=False)
    i, j = graph.edge_index
    r = graph.distances
    keep = r <= r_max
    if not bool(keep.all()):
        i, j, r, e_batch = i[keep], j[keep], r[keep], graph.edge_batch[keep]
    else:
        e_batch = graph.edge_batch
    pair_type = (e_batch * n_s + kinds[i]) * n_s + kinds[j]
    t = _EdgeSincSum.apply(r, pair_type, n_structures * n_s * n_s, q, float(r_max), window, chunk_size)
    return _symmetrise(t.view(n_structures, n_s, n_s, -1))


class PairLinearBinning:
    """Pair lengths ≤ ``r_max`` spread with linear ("cloud-in-cell") weights onto the nodes ``k·step`` of a radial
    grid per pair type, then multiplied by ``kernel [n_bins + 1, n_q]``: a :class:`~specguide.graph.PairReduction`
    giving ``[n_types, n_q]``. ``pair_type(start, stop)`` gives the type ``[E']`` of pairs ``start:stop``."""

    def __init__(self, r_max: float, step: float, n_bins: int, n_types: int, pair_type, kernel: torch.Tensor):
        self.r_max, self.step, self.n_bins, self.n_types = r_max, step, n_bins, n_types
        self.pair_type, self.kernel = pair_type, kernel

    def _bins(self, lengths, start, stop):
        """``(lower node [E''], fraction towards the upper one [E''], kept)`` of the pairs within ``r_max``."""
        types = self.pair_type(start, stop)
        keep = lengths <= self.r_max
        kept = None
        if not bool(keep.all()):
            kept = torch.nonzero(keep).squeeze(1)
            lengths, types = lengths.index_select(0, kept), types.index_select(0, kept)
        x = lengths / self.step
        k0 = torch.floor(x).long().clamp(0, self.n_bins - 1)
        return types * (self.n_bins + 1) + k0, x - k0.to(x.dtype), kept

    def new_buffer(self, dtype, device):
        return torch.zeros(self.n_types * (self.n_bins + 1), dtype=dtype, device=device)

    def accumulate(self, buffer, lengths, start, stop):
        base, frac, _ = self._bins(lengths, start, stop)
        buffer.index_add_(0, torch.cat([base, base + 1]), torch.cat([1.0 - frac, frac]))

    def finish(self, buffer):
        return buffer.view(self.n_types, self.n_bins + 1) @ self.kernel.to(buffer.dtype)

    def gradient_table(self, grad):
        return (grad @ self.kernel.to(grad.dtype).T).reshape(-1)

    def distance_gradient(self, table, lengths, start, stop):
        base, _, kept = self._bins(lengths, start, stop)
        grad = (table.index_select(0, base + 1) - table.index_select(0, base)) / self.step
        if kept is None:
            return grad
        return torch.zeros_like(lengths).index_copy_(0, kept, grad)


# ----------------------------------------------------------------------------------------------------------------
# finite-cluster reference
# ----------------------------------------------------------------------------------------------------------------


def _amplitudes(species: torch.Tensor, q: torch.Tensor, radiation: str) -> torch.Tensor:
    """Scattering amplitude per species ``[n_s, n_q]``: number 1, X-ray f_a(Q) (electrons), neutron b_a (fm)."""
    if radiation == "xray":
        return xray_form_factors(species, q)
    weights = species_weights(species, radiation, dtype=q.dtype).to(q.device)
    return weights[:, None].expand(-1, q.numel())


def debye_intensity(
    positions: torch.Tensor,
    numbers: torch.Tensor,
    q: torch.Tensor,
    *,
    radiation: str = "xray",
    b_iso: float = 0.0,
    amplitudes: Mapping[int, float | torch.Tensor] | None = None,
    chunk_size: int = _DEFAULT_CHUNK,
) -> torch.Tensor:
    """Exact Debye intensity of one finite cluster (all pairs, no cutoff), ``[n_q]``, not normalised::

        I(Q) = Σ_i f_i(Q)² + D(Q) Σ_i Σ_{j≠i} f_i(Q) f_j(Q) sin(Q r_ij)/(Q r_ij),   D = exp(−B Q²/(8π²))

    ``radiation``: ``xray`` (Waasmaier–Kirfel f(Q), electrons²), ``neutron`` (b_c, fm²) or ``number`` (f = 1).
    ``amplitudes`` overrides the amplitude per atomic number (a float or a tensor ``[n_q]``).
    Equals ``2 ×`` DebyeCalculator's ``iq()`` with the same ``biso`` (it sums i < j and halves the self term).
    Differentiable in ``positions``; memory is bounded by ``chunk_size`` (pairs × Q points), also in backward.
    """
    q = torch.as_tensor(q, dtype=positions.dtype, device=positions.device)
    species = torch.unique(numbers)
    if amplitudes is None:
        f = _amplitudes(species, q, radiation).to(positions.dtype)
    else:
        f = torch.stack(
            [torch.as_tensor(amplitudes[int(z)], dtype=q.dtype, device=q.device).expand(q.numel()) for z in species]
        )
    kinds = species_index(numbers, species)
    n_s = len(species)
    t = _ClusterSincSum.apply(positions, kinds, n_s, q, chunk_size).view(n_s, n_s, -1)
    t = t + t.transpose(0, 1)
    counts = torch.bincount(kinds, minlength=n_s).to(q.dtype)
    self_term = (counts[:, None] * f**2).sum(0)
    distinct = torch.einsum("aq,bq,abq->q", f, f, t)
    return self_term + debye_waller(q, b_iso) * distinct


# ----------------------------------------------------------------------------------------------------------------
# observables
# ----------------------------------------------------------------------------------------------------------------


class PartialStructureFactors(NamedTuple):
    """Faber–Ziman partials ``S_ab(Q)`` for every unordered species pair ``a ≤ b`` (layout of ``PartialPDFs``)."""

    values: torch.Tensor  # [S, n_pairs, n_q]
    pairs: torch.Tensor  # [n_pairs, 2] atomic numbers (a, b), a ≤ b, in row-major upper-triangle order
    labels: list[str]  # e.g. ["O-O", "O-Si", "Si-Si"]

    def matrix(self) -> torch.Tensor:
        """The symmetric ``[S, n_s, n_s, n_q]`` array ``S_ab`` (species sorted by atomic number)."""
        species = torch.unique(self.pairs)
        n_s = len(species)
        i = torch.searchsorted(species, self.pairs[:, 0])
        j = torch.searchsorted(species, self.pairs[:, 1])
        out = self.values.new_zeros(self.values.shape[0], n_s, n_s, self.values.shape[-1])
        out[:, i, j] = self.values
        out[:, j, i] = self.values
        return out


class _Scattering(Observable):
    """Shared machinery: Q grid, species, distinct-pair sums and Faber–Ziman bookkeeping."""

    radiation: str = "number"
    default_b_iso: float = 0.0
    pair_chunk = PAIR_CHUNK  # pairs binned at once by the histogram route

    def __init__(
        self,
        q_min: float = 0.5,
        q_max: float = 20.0,
        dq: float = 0.05,
        *,
        species: Sequence[int] | torch.Tensor | None = None,
        route: str | None = None,
        periodic: bool = True,
        r_max: float = 10.0,
        window: str = "lorch",
        b_iso: float | None = None,
        dr: float | None = None,
        chunk_size: int = _DEFAULT_CHUNK,
    ) -> None:
        if dq <= 0 or q_max < q_min or q_min < 0:
            raise ValueError("need 0 <= q_min <= q_max and dq > 0")
        n_q = int(round((q_max - q_min) / dq)) + 1
        self.grid = q_min + dq * torch.arange(n_q, dtype=torch.float64)
        self.species = None
        if species is not None:
            self.species = torch.as_tensor(sorted({int(z) for z in species}), dtype=torch.long)
            for z in self.species.tolist():
                element_symbol(z)
        self.route = route if route is not None else ("histogram" if periodic else "debye")
        if self.route not in ROUTES:
            raise ValueError(f"unknown route {self.route!r}; choose one of {', '.join(ROUTES)}")
        if not periodic and self.route != "debye":
            raise ValueError("finite clusters (periodic=False) need route='debye'")
        if window not in WINDOWS:
            raise ValueError(f"unknown window {window!r}; choose one of {', '.join(WINDOWS)}")
        self.periodic = periodic
        self.r_max = float(r_max)
        self.window = window
        self.b_iso = self.default_b_iso if b_iso is None else float(b_iso)
        self.dr = dr
        self.chunk_size = chunk_size
        self._form_factor_cache: dict[tuple, torch.Tensor] = {}
        # reused while atoms move little (guidance steps); large cells listed along a space-filling curve
        self.neighbors = VerletNeighborList(lazy=True, spatial_order_atoms=SPATIAL_ORDER_ATOMS)

    # -- helpers ------------------------------------------------------------------------------------------------
    def _species(self, numbers: torch.Tensor) -> torch.Tensor:
        if self.species is not None:
            return self.species.to(numbers.device)
        return torch.unique(numbers)

    def amplitudes(self, species: torch.Tensor, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        """Amplitude per species on the grid ``[n_s, n_q]`` (cached)."""
        key = (tuple(species.tolist()), self.radiation, dtype, str(device))
        if key not in self._form_factor_cache:
            q = self.grid.to(device=device, dtype=torch.float64)
            self._form_factor_cache[key] = _amplitudes(species.to(device), q, self.radiation).to(dtype)
        return self._form_factor_cache[key]

    def _parts(self, positions, cells, numbers, batch):
        """``(species, c [S, n_s], n_atoms [S], X_ab = D (T_ab/N − c_a c_b ρ U) [S, n_s, n_s, n_q], q)``."""
        if batch is None:
            batch = torch.zeros(positions.shape[0], dtype=torch.long, device=positions.device)
        if cells.dim() == 2:
            cells = cells.unsqueeze(0)
        n_structures = cells.shape[0]
        dtype = positions.dtype
        species = self._species(numbers)
        q = self.grid.to(device=positions.device, dtype=dtype)
        t = pair_sums(
            positions,
            cells,
            numbers,
            batch,
            species,
            q,
            route=self.route,
            periodic=self.periodic,
            r_max=self.r_max,
            window=self.window,
            dr=self.dr,
            chunk_size=self.chunk_size,
            neighbors=self.neighbors,
            pair_chunk=self.pair_chunk,
        )
        n_atoms = atoms_per_structure(batch, n_structures).to(dtype)
        c = concentrations(numbers, batch, species, n_structures, dtype)
        x = t / n_atoms[:, None, None, None]
        if self.periodic:
            rho = n_atoms / cell_volumes(cells)
            u = uniform_term(q, self.r_max, self.window)
            x = x - (c[:, :, None] * c[:, None, :])[..., None] * rho[:, None, None, None] * u
        x = x * debye_waller(q, self.b_iso)
        return species, c, n_atoms, x, q

    def header(self) -> str:
        """Quantity, conventions, parameters and columns."""
        if self.periodic:
            where = f"periodic, route={self.route}, r_max={self.r_max:g} Å, window={self.window}"
        else:
            where = "finite cluster, exact Debye sum over all pairs"
        return (
            f"{self.quantity}\n{where}, B_iso={self.b_iso:g} Å² (pair damping exp(-B Q²/8π²)); "
            f"Q = 4π sinθ/λ; see docs/CONVENTIONS.md\ncolumns: {self.x_label}, {self.y_label}"
        )


class StructureFactor(_Scattering):
    """Faber–Ziman total structure factor ``S(Q) [S, n_q]`` (→ 1 at high Q), weighting number | xray | neutron.

    ``S(Q) = Σ_ab w_ab(Q) S_ab(Q)``; ``S_ab(Q) = 1 + D(Q) · 4πρ ∫_0^{r_max} r² [g_ab(r) − 1] sinc(Qr) W(r) dr``
    evaluated as a sum over pairs (see the module docstring). ``b_iso`` defaults to 0 (no damping).
    """

    kind = "sq"
    quantity = "S(Q), Faber-Ziman total structure factor"
    x_label = "Q (Å⁻¹)"
    y_label = "S(Q)"

    def __init__(
        self,
        q_min: float = 0.5,
        q_max: float = 20.0,
        dq: float = 0.05,
        *,
        weighting: str = "number",
        species: Sequence[int] | torch.Tensor | None = None,
        route: str | None = None,
        periodic: bool = True,
        r_max: float = 10.0,
        window: str = "lorch",
        b_iso: float | None = None,
        dr: float | None = None,
        chunk_size: int = _DEFAULT_CHUNK,
    ) -> None:
        if weighting not in ("number", "xray", "neutron"):
            raise ValueError(f"unknown weighting {weighting!r}; choose number, xray or neutron")
        self.radiation = weighting
        super().__init__(
            q_min,
            q_max,
            dq,
            species=species,
            route=route,
            periodic=periodic,
            r_max=r_max,
            window=window,
            b_iso=b_iso,
            dr=dr,
            chunk_size=chunk_size,
        )

    @property
    def weighting(self) -> str:
        return self.radiation

    def partials(
        self,
        positions: torch.Tensor,
        cells: torch.Tensor,
        numbers: torch.Tensor,
        batch: torch.Tensor | None = None,
    ) -> PartialStructureFactors:
        """Faber–Ziman partials ``S_ab(Q)``: ``values [S, n_pairs, n_q]`` for pairs ``a ≤ b`` (1 where a or b is
        absent from a structure); ``S(Q) = Σ_ab w_ab S_ab`` over ordered pairs; ``.matrix()`` → ``[S, n_s, n_s, n_q]``.
        """
        species, c, _, x, _ = self._parts(positions, cells, numbers, batch)
        cc = (c[:, :, None] * c[:, None, :])[..., None]
        present = cc > 0
        full = 1.0 + torch.where(present, x / torch.where(present, cc, torch.ones_like(cc)), 0.0)
        iu = torch.triu_indices(len(species), len(species), device=species.device)
        pairs = species[iu].T
        labels = [f"{element_symbol(a)}-{element_symbol(b)}" for a, b in pairs.tolist()]
        return PartialStructureFactors(full[:, iu[0], iu[1]], pairs, labels)

    def __call__(self, positions, cells, numbers, batch=None) -> torch.Tensor:
        species, c, _, x, q = self._parts(positions, cells, numbers, batch)
        f = self.amplitudes(species, q.dtype, q.device)
        mean = (c[:, :, None] * f[None]).sum(1)  # [S, n_q]
        distinct = torch.einsum("aq,bq,sabq->sq", f, f, x)
        sq = 1.0 + distinct / mean**2
        return self._finish(sq, q)

    def _finish(self, sq: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        return sq


class ReducedStructureFactor(StructureFactor):
    """Reduced structure factor ``F(Q) = Q [S(Q) − 1]`` (Å⁻¹) of the Faber–Ziman ``S(Q)``."""

    kind = "fq"
    quantity = "F(Q) = Q[S(Q)-1], reduced Faber-Ziman structure factor"
    x_label = "Q (Å⁻¹)"
    y_label = "F(Q) (Å⁻¹)"

    def _finish(self, sq: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        return q * (sq - 1.0)


class _Intensity(_Scattering):
    default_b_iso = 1.5

    def __call__(self, positions, cells, numbers, batch=None) -> torch.Tensor:
        species, c, _, x, q = self._parts(positions, cells, numbers, batch)
        f = self.amplitudes(species, q.dtype, q.device)
        self_term = c @ f**2  # [S, n_q] = ⟨f²⟩
        return self_term + torch.einsum("aq,bq,sabq->sq", f, f, x)


class XRayDiffraction(_Intensity):
    """X-ray intensity per atom ``I(Q)/N = ⟨f²⟩ + ⟨f⟩²[S(Q) − 1]`` (electrons²/atom), Waasmaier–Kirfel f(Q).

    Pair terms are damped by ``exp(−B Q²/8π²)``, ``b_iso`` default 1.5 Å² (GLASS); self terms are not.
    """

    kind = "xrd"
    radiation = "xray"
    quantity = "I(Q)/N, X-ray intensity per atom (Debye, Waasmaier-Kirfel f0)"
    x_label = "Q (Å⁻¹)"
    y_label = "I(Q) (electrons²/atom)"


class NeutronDiffraction(_Intensity):
    """Neutron intensity per atom ``I(Q)/N = ⟨b²⟩ + ⟨b⟩²[S(Q) − 1]`` (fm²/atom), coherent b_c.

    Pair terms are damped by ``exp(−B Q²/8π²)``, ``b_iso`` default 1.5 Å²; self terms are not.
    """

    kind = "nd"
    radiation = "neutron"
    quantity = "I(Q)/N, coherent neutron intensity per atom (Debye, b_c)"
    x_label = "Q (Å⁻¹)"
    y_label = "I(Q) (fm²/atom)"
