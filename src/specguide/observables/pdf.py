"""Pair distribution functions g(r), G(r) and the radial distribution function, differentiable and linear scaling.

Conventions (all per structure of a batch; Å, Å⁻³):

- Grid: bin centres ``r_k = r_min + (k + 1/2) dr``, ``k = 0 .. n_r - 1`` with ``n_r = round((r_max - r_min) / dr)``,
  so ``r = 0`` is never a grid point (the first one is ``dr / 2``) and nothing divides by zero.
- Kernel: the normalised Gaussian ``K(x) = exp(-x² / 2σ²) / (√(2π) σ)`` (Å⁻¹), truncated at ``|x| ≈ truncate·σ``
  (default 6σ: the dropped tail is below 2·10⁻⁸ of the peak, so ``r ↦ g(r)`` is continuous in the positions to
  that level); pairs farther than ``r_max + truncate·σ`` are not listed at all.
- Smoothed pair density (``rdf``, number of neighbours per Å at distance r, per atom):
  ``n(r) = (1/N) Σ_{i≠j, incl. periodic images} (f_i f_j / ⟨f⟩²) K(r − r_ij)`` (ordered pairs; ``f`` = 1, Z or b_c).
- ``g(r) = n(r) / (4π ρ r²)`` with ``ρ = N / V``; this equals ``Σ_ab w_ab g_ab(r)`` with Faber-Ziman weights
  ``w_ab = c_a c_b f_a f_b / (Σ c f)²`` and partials
  ``g_ab(r) = V / (N_a N_b) Σ_{i∈a, j∈b, i≠j} K(r − r_ij) / (4π r²)``.
  Like freud's ``normalization_mode='exact'``, an ideal gas gives ``(N − 1) / N``; the Gaussian broadening of the
  ideal-gas shell adds ``σ² / r²`` (``∫ 4π d² K(r − d) dd = 4π (r² + σ²)``), i.e. g = 1 + σ²/r² at large N.
- ``G(r) = 4π ρ r [g(r) − 1] = n(r) / r − 4π ρ r`` (PDFgui's reduced PDF, Å⁻²).

Evaluation is linear in the number of pairs: the neighbour list (``full_list=False``) gives each unordered pair once,
and the Gaussian sum over pairs is done by :func:`gaussian_histogram` (binned Taylor moments + a short convolution),
which is exact to ~10⁻¹² of the peak in float64 and costs O(E · P + n_r · W · P) with P ≈ 6-25 moments and a
window of W grid steps, instead of O(E · W) for a per-pair windowed scatter.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

from specguide.graph import (
    PAIR_CHUNK,
    SPATIAL_ORDER_ATOMS,
    VerletNeighborList,
    atoms_per_structure,
    cell_volumes,
    pairwise_sum,
)
from specguide.observables.base import Observable
from specguide.observables.registry import DEFAULT_DR, DEFAULT_R_MAX, DEFAULT_SIGMA
from specguide.observables.weights import WEIGHTINGS, element_symbol, species_index, species_weights

OUTPUTS = ("g", "G", "rdf")

_OUTPUT_LABELS = {
    # output: (kind, y_label, description)
    "g": ("gr", "g(r)", "g(r), total pair distribution function (→ 1 at large r)"),
    "G": ("pdf", "G(r) (Å⁻²)", "G(r) = 4πρr[g(r) − 1], reduced pair distribution function (PDFgui convention)"),
    "rdf": ("rdf", "4πr²ρg(r) (Å⁻¹)", "4πr²ρg(r), radial distribution function (neighbours per Å at r)"),
}

_WEIGHTING_LABELS = {
    "number": "number-weighted",
    "xray": "X-ray-weighted (f = Z), Faber-Ziman",
    "neutron": "neutron-weighted (coherent b_c), Faber-Ziman",
}


# ------------------------------------------------------------------------------------------------------------
# Gaussian kernel density on a uniform grid, linear in the number of samples
# ------------------------------------------------------------------------------------------------------------


def _window(sigma: float, step: float, truncate: float) -> int:
    """Half-width W (grid steps) such that every grid point within ``truncate·σ`` of a sample is reached."""
    return max(1, math.ceil(truncate * sigma / step + 0.5))


def _substeps(sigma: float, step: float) -> int:
    """Moments are binned on a grid ``q`` times finer than the output so that the bin half-width is ≤ σ/4."""
    return max(1, math.ceil(2.0 * step / sigma))


def _taylor_order(sigma: float, step: float, window: int, tol: float) -> int:
    """Smallest P such that truncating ``exp(a u)`` after ``u^P`` errs by < ``tol`` (relative to the kernel peak).

    For a sample at ``x = x_j + u σ`` (``|u| ≤ step / 2σ``, ``x_j`` the nearest grid point) and a grid point
    ``x_j + a σ``: ``exp(-(a − u)² / 2) = exp(-a²/2) exp(-u²/2) exp(a u)``; the Lagrange remainder of the
    exponential is at most ``|a u|^(P+1) / (P+1)! · exp(|a u|)``.
    """
    u = step / (2.0 * sigma)
    a = [m * step / sigma for m in range(window + 1)]
    for order in range(1, 80):
        worst = max(math.exp(-ai * ai / 2.0 + ai * u) * (ai * u) ** (order + 1) / math.factorial(order + 1) for ai in a)
        if worst < tol:
            return order
    raise ValueError(f"kernel width {sigma} is too small for grid step {step}")  # pragma: no cover


class _BinnedGaussianMoments(torch.autograd.Function):
    """``out[p, b] = Σ_{e: index_e = b} w_e exp(-u_e²/2) u_e^p / p!`` (``w = 1`` if None), ``[P+1, n_bins]``.

    Kept one contiguous row per order ``p`` (the rows built by ``B_p = B_{p−1} u / p``, scattered along the
    bins in one call, and the gradient gathered per row), rather than one row per sample with the orders as
    columns, whose construction and scatter stride through memory. The backward uses
    ``∂B_p/∂u = B_{p−1} − u B_p``.
    """

    @staticmethod
    def forward(ctx, u, weights, index, n_bins, order):
        basis = _moment_basis(u, order)
        ctx.save_for_backward(u, weights, basis, index)
        out = torch.zeros(order + 1, n_bins, dtype=u.dtype, device=u.device)
        return out.scatter_add_(1, index.expand(order + 1, -1), basis if weights is None else basis * weights)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        u, weights, basis, index = ctx.saved_tensors
        grad = _gather_rows(grad.contiguous(), index)
        grad_u = grad_w = None
        projected = (grad * basis).sum(0)
        if ctx.needs_input_grad[0]:
            grad_u = (grad[1:] * basis[:-1]).sum(0) - u * projected
            grad_u = grad_u if weights is None else weights * grad_u
        if ctx.needs_input_grad[1]:
            grad_w = projected
        return grad_u, grad_w, None, None, None


def _moment_basis(u: torch.Tensor, order: int) -> torch.Tensor:
    """``B_p = exp(-u²/2) u^p / p!`` for p = 0..order, ``[P+1, E]``, one contiguous row per order."""
    basis = torch.empty(order + 1, u.shape[0], dtype=u.dtype, device=u.device)
    torch.exp(-0.5 * u * u, out=basis[0])
    for p in range(1, order + 1):
        torch.mul(basis[p - 1], u, out=basis[p]).mul_(1.0 / p)
    return basis


def _gather_rows(table: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``table[:, index]`` as ``[P+1, E]``: one 1-D gather per row (faster than one gather over a 2-D expand)."""
    gathered = table.new_empty(table.shape[0], index.shape[0])
    for p in range(table.shape[0]):
        torch.index_select(table[p], 0, index, out=gathered[p])
    return gathered


def gaussian_reach(start: float, step: float, n: int, sigma: float, truncate: float = 6.0) -> float:
    """Samples at or beyond this value contribute nothing to :func:`gaussian_histogram` on this grid."""
    fine = step / _substeps(sigma, step)
    return start + (n - 1) * step + (_window(sigma, fine, truncate) + 0.5) * fine


def gaussian_histogram(
    x: torch.Tensor,
    group: torch.Tensor,
    n_groups: int,
    start: float,
    step: float,
    n: int,
    sigma: float,
    weights: torch.Tensor | None = None,
    truncate: float = 6.0,
) -> torch.Tensor:
    """``out[g, k] = Σ_{e: group_e = g} w_e K(start + k·step − x_e)`` with the normalised Gaussian ``K`` of width σ.

    Returns ``[n_groups, n]``, differentiable w.r.t. ``x`` and ``weights``; linear in the number of samples.
    Each sample is assigned to its nearest point ``x_j`` of a grid of spacing ``h = step / q ≤ σ/2`` and offset
    ``u = (x − x_j) / σ``; the per-bin moments ``Σ w e^{-u²/2} u^p / p!`` (p ≤ P) are scattered once, then
    convolved (stride q) with ``e^{-a²/2} a^p`` (``a = m·h/σ``, ``|m| ≤ W``): an exact factorisation of the
    Gaussian up to the Taylor truncation of ``e^{a u}`` (< 10⁻¹² of the peak in float64, 10⁻⁸ in float32).
    The kernel is cut at W fine steps, ``(W − ½)·h ≥ truncate·σ`` (6σ: the cut tail is < 2·10⁻⁸ of the peak).
    """
    plan = _HistogramPlan.make(start, step, n, sigma, truncate, x.dtype, x.device)
    u, weights, index, _ = plan.assign(x, group, weights)
    binned = _BinnedGaussianMoments.apply(u, weights, index, n_groups * plan.length, plan.order)  # [P+1, G·L]
    return plan.convolve(binned, n_groups)


class _HistogramPlan(NamedTuple):
    """The fine grid, window, Taylor order and convolution kernel of :func:`gaussian_histogram`."""

    start: float
    h: float  # fine grid step (Å)
    q: int  # fine steps per output step
    window: int  # W: kernel half-width in fine steps
    order: int  # P: Taylor order
    n_fine: int
    length: int  # fine bins per group, n_fine + 2W
    sigma: float
    kernel: torch.Tensor  # [P+1, 2W+1]

    @classmethod
    def make(cls, start, step, n, sigma, truncate, dtype, device) -> _HistogramPlan:
        q = _substeps(sigma, step)
        h = step / q
        window = _window(sigma, h, truncate)
        order = _taylor_order(sigma, h, window, 1e-12 if dtype == torch.float64 else 1e-8)
        n_fine = (n - 1) * q + 1
        # conv1d correlates: tap t multiplies bin k + t, i.e. offset m = W − t from the output point
        a = torch.arange(window, -window - 1, -1, dtype=torch.float64) * (h / sigma)
        powers = a[None, :] ** torch.arange(order + 1, dtype=torch.float64)[:, None]  # [P+1, 2W+1]
        kernel = powers * torch.exp(-0.5 * a * a)[None, :] / (math.sqrt(2.0 * math.pi) * sigma)
        kernel = kernel.to(dtype=dtype, device=device)
        return cls(float(start), h, q, window, order, n_fine, n_fine + 2 * window, float(sigma), kernel)

    def assign(self, x: torch.Tensor, group: torch.Tensor, weights: torch.Tensor | None):
        """Samples within reach: ``(u, weights, bin index in [G·L], kept)``, ``u`` the offset from the nearest fine
        grid point in units of σ (differentiable in ``x``), ``kept`` the indices of the samples kept (None: all)."""
        j = torch.round((x.detach() - self.start) / self.h).to(torch.long)
        keep = (j >= -self.window) & (j <= self.n_fine - 1 + self.window)
        kept = None
        if not bool(keep.all()):
            kept = torch.nonzero(keep).squeeze(1)
            x, j, group = x.index_select(0, kept), j.index_select(0, kept), group.index_select(0, kept)
            weights = weights.index_select(0, kept) if weights is not None else None
        u = (x - (self.start + j.to(x.dtype) * self.h)) / self.sigma
        return u, weights, group * self.length + j + self.window, kept

    def convolve(self, binned: torch.Tensor, n_groups: int) -> torch.Tensor:
        """Binned moments ``[P+1, G·L]`` → ``[G, n]`` on the output grid."""
        binned = binned.view(self.order + 1, n_groups, self.length).transpose(0, 1)  # [G, P+1, L]
        return F.conv1d(binned, self.kernel[None], stride=self.q).squeeze(1)

    def convolve_backward(self, grad: torch.Tensor, n_groups: int) -> torch.Tensor:
        """The gradient ``[G, n]`` of :meth:`convolve`'s output → that of its input, ``[P+1, G·L]``."""
        shape = (n_groups, self.order + 1, self.length)
        binned = torch.nn.grad.conv1d_input(shape, self.kernel[None], grad[:, None, :], stride=self.q)
        return binned.transpose(0, 1).reshape(self.order + 1, n_groups * self.length).contiguous()


class PairGaussianHistogram:
    """:func:`gaussian_histogram` of pair lengths as a :class:`~specguide.graph.PairReduction` for
    :func:`~specguide.graph.pairwise_sum` (``[n_groups, n]``). ``terms(start, stop)`` gives the group ``[E']``
    and the weight ``[E']`` (or None for 1) of pairs ``start:stop``; samples beyond the grid's reach are dropped."""

    def __init__(self, plan: _HistogramPlan, n_groups: int, terms):
        self.plan, self.n_groups, self.terms = plan, n_groups, terms

    def _moments(self, lengths, start, stop):
        u, weights, index, kept = self.plan.assign(lengths, *self.terms(start, stop))
        return u, weights, _moment_basis(u, self.plan.order), index, kept

    def new_buffer(self, dtype, device):
        return torch.zeros(self.plan.order + 1, self.n_groups * self.plan.length, dtype=dtype, device=device)

    def accumulate(self, buffer, lengths, start, stop):
        _, weights, basis, index, _ = self._moments(lengths, start, stop)
        buffer.scatter_add_(1, index.expand(basis.shape[0], -1), basis if weights is None else basis * weights)

    def finish(self, buffer):
        return self.plan.convolve(buffer, self.n_groups)

    def gradient_table(self, grad):
        return self.plan.convolve_backward(grad.contiguous(), self.n_groups)

    def distance_gradient(self, table, lengths, start, stop):
        u, weights, basis, index, kept = self._moments(lengths, start, stop)
        gathered = _gather_rows(table, index)
        grad_u = (gathered[1:] * basis[:-1]).sum(0) - u * (gathered * basis).sum(0)
        grad = (grad_u if weights is None else weights * grad_u) / self.plan.sigma
        if kept is None:
            return grad
        return torch.zeros_like(lengths).index_copy_(0, kept, grad)


# ------------------------------------------------------------------------------------------------------------
# Pair distribution functions
# ------------------------------------------------------------------------------------------------------------


class PartialPDFs(NamedTuple):
    """Partial pair distribution functions ``g_ab(r)`` for every unordered species pair ``a ≤ b``."""

    values: torch.Tensor  # [S, n_pairs, n_r]
    pairs: torch.Tensor  # [n_pairs, 2] atomic numbers (a, b), a ≤ b, in row-major upper-triangle order
    labels: list[str]  # e.g. ["O-O", "O-Si", "Si-Si"] (sorted by atomic number: O = 8 before Si = 14)


def _as_species(species) -> torch.Tensor | None:
    if species is None:
        return None
    out = torch.as_tensor(sorted({int(z) for z in species}), dtype=torch.long)
    for z in out.tolist():
        element_symbol(z)
    return out


class PairDistribution(Observable):
    """Gaussian-smoothed total pair distribution function of each structure, on a grid of r (Å).

    Args:
        r_min, r_max, dr: grid of bin centres ``r_min + (k + ½) dr`` up to ``r_max`` (Å); ``r_min ≥ 0``.
        sigma: Gaussian kernel width (Å); 0.15 as GLASS for disordered targets, ~0.02 for sharp crystal peaks.
        weighting: ``"number"``, ``"xray"`` (f = Z) or ``"neutron"`` (coherent b_c) Faber-Ziman total.
        output: ``"g"`` g(r) (kind ``gr``), ``"G"`` G(r) = 4πρr(g − 1) (kind ``pdf``),
            ``"rdf"`` 4πr²ρg(r) (kind ``rdf``).
        species: optional fixed atomic numbers (sorted, deduplicated); otherwise those present in each call.
        truncate: kernel cut-off in units of σ.

    ``__call__(positions [N,3], cells [S,3,3], numbers [N], batch [N] | None) -> [S, n_r]``;
    :meth:`partials` gives ``g_ab(r)`` as ``[S, n_pairs, n_r]``. See the module docstring for normalisations.
    """

    kind = "gr"
    quantity = _OUTPUT_LABELS["g"][2]
    x_label = "r (Å)"
    y_label = "g(r)"
    pair_chunk = PAIR_CHUNK  # pairs evaluated at once (memory beyond the neighbour list grows with it, not with N)

    def __init__(
        self,
        r_min: float = 0.0,
        r_max: float = DEFAULT_R_MAX,
        dr: float = DEFAULT_DR,
        sigma: float = DEFAULT_SIGMA,
        weighting: str = "number",
        output: str = "g",
        species=None,
        truncate: float = 6.0,
    ) -> None:
        if r_min < 0 or r_max <= r_min or dr <= 0:
            raise ValueError(f"need 0 ≤ r_min < r_max and dr > 0, got {r_min}, {r_max}, {dr}")
        if sigma <= 0:
            raise ValueError(f"sigma must be positive, got {sigma}")
        if weighting not in WEIGHTINGS:
            raise ValueError(f"unknown weighting {weighting!r}; choose one of {', '.join(WEIGHTINGS)}")
        if output not in OUTPUTS:
            raise ValueError(f"unknown output {output!r}; choose one of {', '.join(OUTPUTS)}")
        self.r_min, self.dr, self.sigma, self.truncate = float(r_min), float(dr), float(sigma), float(truncate)
        self.n_r = max(1, round((r_max - r_min) / dr))
        self.r_max = self.r_min + self.n_r * self.dr
        self.weighting, self.output = weighting, output
        self.species = _as_species(species)
        # reused while atoms move little (guidance steps); large cells listed along a space-filling curve
        self.neighbors = VerletNeighborList(lazy=True, spatial_order_atoms=SPATIAL_ORDER_ATOMS)
        self.grid = self.r_min + (torch.arange(self.n_r, dtype=torch.float64) + 0.5) * self.dr
        kind, y_label, description = _OUTPUT_LABELS[output]
        if type(self) is PairDistribution:  # subclasses fix these as class attributes
            self.kind, self.y_label = kind, y_label
        self.quantity = (
            f"{description}; {_WEIGHTING_LABELS[weighting]}; Gaussian-broadened, sigma = {self.sigma:g} Å; ρ = N/V"
        )

    @property
    def cutoff(self) -> float:
        """Neighbour-list cut-off (Å): pairs beyond it contribute nothing on the grid."""
        return gaussian_reach(self.r_min + 0.5 * self.dr, self.dr, self.n_r, self.sigma, self.truncate)

    def _histogram(self, positions, cells, pairs, n_groups, terms):
        """``[n_groups, n_r]`` Gaussian histogram of the pair lengths, ``pair_chunk`` pairs at a time."""
        plan = _HistogramPlan.make(
            self.r_min + 0.5 * self.dr, self.dr, self.n_r, self.sigma, self.truncate, positions.dtype, positions.device
        )
        return pairwise_sum(positions, cells, pairs, PairGaussianHistogram(plan, n_groups, terms), self.pair_chunk)

    def _species(self, numbers: torch.Tensor) -> torch.Tensor:
        if self.species is not None:
            return self.species.to(numbers.device)
        return torch.unique(numbers)

    @staticmethod
    def _prepare(positions, cells, batch):
        if cells.dim() == 2:
            cells = cells.unsqueeze(0)
        if batch is None:
            batch = torch.zeros(positions.shape[0], dtype=torch.long, device=positions.device)
        return cells, batch

    def radial_density(self, positions, cells, numbers, batch=None) -> torch.Tensor:
        """Weighted smoothed neighbour density ``n(r) = 4πr²ρ g(r)`` per atom, ``[S, n_r]`` (Å⁻¹)."""
        cells, batch = self._prepare(positions, cells, batch)
        n_structures = cells.shape[0]
        # candidates up to cutoff + skin: the histogram drops those beyond its reach (= cutoff) itself
        moved, pairs = self.neighbors.pairs(positions, cells, batch, self.cutoff, full_list=False)
        (i, j), edge_batch = pairs.edge_index, pairs.edge_batch
        n_atoms = atoms_per_structure(batch, n_structures).to(positions.dtype)
        if self.weighting == "number":
            scale = 2.0 / n_atoms.clamp(min=1.0)

            def terms(start, stop):
                return edge_batch[start:stop], None
        else:
            species = self._species(numbers)
            amplitude = species_weights(species, self.weighting, positions.dtype)[species_index(numbers, species)]
            mean = torch.zeros(n_structures, dtype=positions.dtype, device=positions.device)
            mean = mean.index_add(0, batch, amplitude) / n_atoms.clamp(min=1.0)
            scale = 2.0 / (n_atoms.clamp(min=1.0) * mean**2)
            amplitude = pairs.per_atom(amplitude)  # in the order i, j count atoms in

            def terms(start, stop):
                return edge_batch[start:stop], amplitude[i[start:stop]] * amplitude[j[start:stop]]

        counts = self._histogram(moved, cells, pairs, n_structures, terms)
        return counts * scale[:, None]  # each unordered pair is two ordered pairs

    def __call__(self, positions, cells, numbers, batch=None) -> torch.Tensor:
        cells, batch = self._prepare(positions, cells, batch)
        density = self.radial_density(positions, cells, numbers, batch)
        if self.output == "rdf":
            return density
        r = self.grid.to(dtype=positions.dtype, device=positions.device)
        rho = atoms_per_structure(batch, cells.shape[0]).to(positions.dtype) / cell_volumes(cells)
        if self.output == "g":
            return density / (4.0 * math.pi * rho[:, None] * r**2)
        return density / r - 4.0 * math.pi * rho[:, None] * r

    def pair_labels(self, species) -> tuple[torch.Tensor, list[str]]:
        """Unordered species pairs ``[n_pairs, 2]`` (a ≤ b, row-major upper triangle) and labels like ``"O-Si"``."""
        species = torch.as_tensor(species, dtype=torch.long)
        a, b = torch.triu_indices(len(species), len(species))
        pairs = torch.stack([species[a], species[b]], dim=1)
        labels = [f"{element_symbol(p)}-{element_symbol(q)}" for p, q in pairs.tolist()]
        return pairs, labels

    def partials(self, positions, cells, numbers, batch=None) -> PartialPDFs:
        """Partial ``g_ab(r) = V / (N_a N_b) Σ_{i∈a, j∈b, i≠j} K(r − r_ij) / (4πr²)`` as ``[S, n_pairs, n_r]``.

        Ordered pairs are counted, so ``g_ab = g_ba``; a pair whose species is absent from a structure gives 0.
        """
        cells, batch = self._prepare(positions, cells, batch)
        n_structures = cells.shape[0]
        species = self._species(numbers)
        n_species = len(species)
        pairs, labels = self.pair_labels(species.cpu())
        n_pairs = len(labels)
        pair_id = torch.zeros(n_species, n_species, dtype=torch.long, device=numbers.device)
        a, b = torch.triu_indices(n_species, n_species, device=numbers.device)
        pair_id[a, b] = torch.arange(n_pairs, device=numbers.device)
        pair_id[b, a] = pair_id[a, b]

        moved, listed = self.neighbors.pairs(positions, cells, batch, self.cutoff, full_list=False)
        (i, j), edge_batch = listed.edge_index, listed.edge_batch
        kind = species_index(numbers, species)
        listed_kind = listed.per_atom(kind)  # in the order i, j count atoms in

        def terms(start, stop):
            ki, kj = listed_kind[i[start:stop]], listed_kind[j[start:stop]]
            # an unordered like pair (a = b) is two ordered pairs i∈a, j∈a; an unlike one is one ordered pair
            weights = torch.where(ki == kj, 2.0, 1.0).to(positions.dtype)
            return edge_batch[start:stop] * n_pairs + pair_id[ki, kj], weights

        counts = self._histogram(moved, cells, listed, n_structures * n_pairs, terms)
        counts = counts.view(n_structures, n_pairs, self.n_r)

        per_species = torch.zeros(n_structures, n_species, dtype=positions.dtype, device=positions.device)
        per_species = per_species.index_put((batch, kind), torch.ones_like(positions[:, 0]), accumulate=True)
        norm = per_species[:, a] * per_species[:, b] / cell_volumes(cells)[:, None]  # N_a N_b / V, [S, n_pairs]
        r = self.grid.to(dtype=positions.dtype, device=positions.device)
        values = counts / (4.0 * math.pi * r**2) / norm.clamp(min=torch.finfo(positions.dtype).tiny)[..., None]
        values = torch.where(norm[..., None] > 0, values, torch.zeros_like(values))
        return PartialPDFs(values, pairs.to(numbers.device), labels)


class ReducedPairDistribution(PairDistribution):
    """``G(r) = 4πρr[g(r) − 1]`` (PDFgui convention); :class:`PairDistribution` with ``output="G"``."""

    kind = "pdf"
    y_label = _OUTPUT_LABELS["G"][1]

    def __init__(self, r_min=0.0, r_max=DEFAULT_R_MAX, dr=DEFAULT_DR, sigma=DEFAULT_SIGMA, weighting="number",
                 species=None, truncate=6.0):  # fmt: skip
        super().__init__(r_min, r_max, dr, sigma, weighting, "G", species, truncate)


class RadialDistribution(PairDistribution):
    """``4πr²ρg(r)``, neighbours per Å at r; :class:`PairDistribution` with ``output="rdf"``."""

    kind = "rdf"
    y_label = _OUTPUT_LABELS["rdf"][1]

    def __init__(self, r_min=0.0, r_max=DEFAULT_R_MAX, dr=DEFAULT_DR, sigma=DEFAULT_SIGMA, weighting="number",
                 species=None, truncate=6.0):  # fmt: skip
        super().__init__(r_min, r_max, dr, sigma, weighting, "rdf", species, truncate)
