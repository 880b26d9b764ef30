"""How a measurement sees a structure: the finite box, the finite Q range and the instrument, as linear maps.

A periodic cell and a measured curve never resolve the same thing, so specguide puts both on one footing before it
compares them (docs/CONVENTIONS.md, "Comparing with measured data"):

- **Reciprocal space (sq, fq, xrd, nd): the data are seen through the box**, as RMCProfile does. The model's S(Q) sums
  pairs up to ``R`` (half the cell width) under a window ``W`` (Lorch by default), which is *exactly* the data's own
  reduced structure factor ``F = Q[S − 1]`` convolved with the box (Poisson/Fourier identity)::

      F_box(Q) = ∫_0^∞ F(Q') [B(Q − Q') − B(Q + Q')] dQ',    B(q) = (1/π) ∫_0^R cos(q r) W(r) dr

  with ``B(q) = sin(qR)/(πq)`` for a sharp cut-off and ``B(q) = R [Si(π + qR) + Si(π − qR)] / (2π²)`` for the
  Lorch window (``Si`` the sine integral). :func:`box_view` applies this to a measured curve; the model is computed
  as before. Below the data's first point ``S − 1`` is held constant (``F`` linear through the origin); above its
  last point ``F = 0``; grid points within the kernel's width (twice that for a sharp cut-off, whose kernel decays
  as 1/q) of either end are flagged unreliable.
  Intensities (``xrd``, ``nd``), whose scale and background are fitted, are convolved with ``B(Q − Q')`` normalised
  to unit area (the smooth self-scattering and background pass through unchanged).
- **Real space (gr, pdf, rdf) from data with a finite Q range: the model is seen through the measurement**, as
  PDFgui does. The model's reduced PDF ``G(r)`` is broadened by ``Qbroad`` (peak width ``σ √(1 + Qbroad² r²)``,
  PDFgui's form with the model's kernel width ``σ``), damped by the envelope ``exp(−(Qdamp r)²/2)`` and terminated
  to ``Qmin ≤ Q ≤ Qmax`` (:func:`termination_matrix`)::

      G_T(r) = (2/π) ∫_{Qmin}^{Qmax} F(Q) sin(Qr) dQ = ∫_0^∞ G(r') (1/π) [sin(Q d₋)/d₋ − sin(Q d₊)/d₊]_{Qmin}^{Qmax} dr'

  (``d∓ = r ∓ r'``), which adds the termination ripples of period ≈ 2π/Qmax that the measured curve carries.
- **Instrument resolution in Q (xrd, nd, sq, fq)**: the model is convolved with a Gaussian of constant FWHM (Å⁻¹)
  or of FWHM proportional to Q (ΔQ/Q, time-of-flight instruments) (:class:`ResolvedScattering`). Convolutions
  commute, so box-on-data and instrument-on-model compare the same thing.

Every map is a dense matrix on the (few hundred point) grid, built once and applied to ``[S, n]`` spectra, so it is
differentiable and costs a small matrix product per call.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from scipy.special import sici

from specguide.observables.base import Observable

WINDOWS = ("lorch", "none")
FORMS = ("S", "F", "I")  # what a reciprocal-space curve is: S(Q) → 1, F(Q) = Q[S − 1] → 0, or an intensity
_FINE_STEPS_PER_WIDTH = 40  # quadrature points per kernel FWHM


# ----------------------------------------------------------------------------------------------------------------
# the box
# ----------------------------------------------------------------------------------------------------------------


def box_response(q: np.ndarray, r_max: float, window: str = "lorch") -> np.ndarray:
    """``B(q) = (1/π) ∫_0^R cos(qr) W(r) dr`` (Å): the Q-space kernel of a pair sum cut at ``R = r_max`` (Å)."""
    q = np.abs(np.asarray(q, dtype=np.float64))
    R = float(r_max)
    if window == "none":
        small = q * R < 1e-8
        return np.where(small, R / math.pi, np.sin(q * R) / (math.pi * np.where(small, 1.0, q)))
    if window == "lorch":
        si_plus, _ = sici(math.pi + q * R)
        si_minus, _ = sici(math.pi - q * R)
        return R * (si_plus + si_minus) / (2.0 * math.pi**2)
    raise ValueError(f"unknown window {window!r}; choose one of {', '.join(WINDOWS)}")


def box_width(r_max: float, window: str = "lorch") -> float:
    """Full width at half maximum (Å⁻¹) of :func:`box_response`: the Q resolution of a cell with pairs up to r_max."""
    R = float(r_max)
    x = np.linspace(0.0, 12.0, 24001)  # in units of 1/R
    b = box_response(x / R, R, window)
    half = b[0] / 2.0
    k = int(np.argmax(b < half))
    x_half = x[k - 1] + (x[k] - x[k - 1]) * (b[k - 1] - half) / (b[k - 1] - b[k])
    return 2.0 * x_half / R


def box_matrix(
    q_out: np.ndarray, q_in: np.ndarray, r_max: float, window: str = "lorch", odd: bool = True
) -> np.ndarray:
    """``M [n_out, n_in]`` with ``M @ F(q_in) ≈ ∫_0^∞ F(Q') [B(Q − Q') ∓ B(Q + Q')] dQ'`` (trapezoid weights of q_in).

    ``odd=True``: ``F`` is odd in Q (F(Q) = Q[S − 1]), the mirror term is subtracted. ``odd=False``: plain
    convolution with ``B(Q − Q')``, each row normalised to unit sum (for intensities with a smooth background).
    """
    q_out = np.asarray(q_out, dtype=np.float64)
    q_in = np.asarray(q_in, dtype=np.float64)
    weights = np.zeros_like(q_in)
    steps = np.diff(q_in)
    weights[:-1] += steps / 2
    weights[1:] += steps / 2
    kernel = box_response(q_out[:, None] - q_in[None, :], r_max, window)
    if odd:
        kernel = kernel - box_response(q_out[:, None] + q_in[None, :], r_max, window)
        return kernel * weights[None, :]
    kernel = kernel * weights[None, :]
    return kernel / kernel.sum(1, keepdims=True)


@dataclass
class BoxView:
    """A measured curve as a cell of half width ``r_max`` sees it, on the grid ``q``."""

    q: np.ndarray  # Å⁻¹
    raw: np.ndarray  # the data linearly interpolated onto q (NaN outside their range)
    seen: np.ndarray  # the data convolved with the box
    reliable: np.ndarray  # bool: far enough from the ends of the data for the convolution to be exact
    r_max: float  # Å
    window: str
    width: float  # FWHM of the box kernel (Å⁻¹)

    def blur(self) -> float:
        """rms change ``seen − raw`` relative to the rms structure of the data (their deviation from the mean)."""
        mask = self.reliable & np.isfinite(self.raw)
        if mask.sum() < 3:
            return 0.0
        signal = self.raw[mask] - self.raw[mask].mean()
        change = self.seen[mask] - self.raw[mask]
        return float(np.sqrt(np.mean(change**2)) / max(np.sqrt(np.mean(signal**2)), 1e-300))

    def worst(self) -> tuple[float, float, float]:
        """``(Q, raw, seen)`` where the box changes the data most."""
        mask = self.reliable & np.isfinite(self.raw)
        k = np.flatnonzero(mask)[int(np.argmax(np.abs(self.seen[mask] - self.raw[mask])))]
        return float(self.q[k]), float(self.raw[k]), float(self.seen[k])


def box_view(
    q_data: np.ndarray,
    y_data: np.ndarray,
    form: str,
    q_out: np.ndarray,
    r_max: float,
    window: str = "lorch",
) -> BoxView:
    """The measured curve ``y_data(q_data)`` seen through a box of pairs up to ``r_max`` (Å), on ``q_out`` (Å⁻¹).

    ``form``: ``"S"`` (S(Q), convolved as F = Q[S − 1] and converted back), ``"F"`` (F(Q)) or ``"I"``
    (an intensity; normalised even convolution). See the module docstring for the extrapolation at the ends.
    """
    if form not in FORMS:
        raise ValueError(f"form must be one of {FORMS}, got {form!r}")
    q_data = np.asarray(q_data, dtype=np.float64)
    y_data = np.asarray(y_data, dtype=np.float64)
    q_out = np.asarray(q_out, dtype=np.float64)
    width = box_width(r_max, window)
    q_lo, q_hi = float(q_data[0]), float(q_data[-1])
    step = min(width / _FINE_STEPS_PER_WIDTH, float(np.min(np.diff(q_data))) if len(q_data) > 1 else width)
    step = max(step, width / (4 * _FINE_STEPS_PER_WIDTH))
    if form == "I":
        fine = np.arange(q_lo, q_hi + step / 2, step)
        values = np.interp(fine, q_data, y_data)
        seen = box_matrix(q_out, fine, r_max, window, odd=False) @ values
        edge_lo = edge_hi = width
    else:
        fine = np.arange(0.0, q_hi + step / 2, step)
        s_minus_1 = y_data - 1.0 if form == "S" else y_data / np.maximum(q_data, 1e-12)
        # S − 1 held at its first measured value below the data (F linear through the origin)
        f_fine = fine * np.interp(fine, q_data, s_minus_1)
        f_seen = box_matrix(q_out, fine, r_max, window, odd=True) @ f_fine
        seen = 1.0 + f_seen / np.maximum(q_out, 1e-12) if form == "S" else f_seen
        edge_lo, edge_hi = width, width
    if window == "none":  # the sharp cut-off's kernel decays slowly (1/q): keep farther from the ends
        edge_lo, edge_hi = 2 * edge_lo, 2 * edge_hi
    raw = np.where((q_out >= q_lo) & (q_out <= q_hi), np.interp(q_out, q_data, y_data), np.nan)
    reliable = (q_out >= q_lo + edge_lo) & (q_out <= q_hi - edge_hi)
    return BoxView(q_out, raw, seen, reliable, float(r_max), window, width)


def resolving_half_width(
    q_data: np.ndarray,
    y_data: np.ndarray,
    form: str,
    q_out: np.ndarray,
    window: str = "lorch",
    tolerance: float = 0.05,
    largest: float = 60.0,
) -> float | None:
    """Smallest pair range ``R`` (Å, half the cell width, to 0.5 Å) at which the box changes the data by at most
    ``tolerance`` rms (:meth:`BoxView.blur`); ``None`` if even ``largest`` does not. The blur falls as R grows."""

    def blur(R: float) -> float:
        return box_view(q_data, y_data, form, q_out, R, window).blur()

    if blur(largest) > tolerance:
        return None
    low, high = 2.0, float(largest)
    while high - low > 0.5:
        middle = 0.5 * (low + high)
        low, high = (low, middle) if blur(middle) <= tolerance else (middle, high)
    return high


# ----------------------------------------------------------------------------------------------------------------
# real space: termination, damping and broadening of the model G(r)
# ----------------------------------------------------------------------------------------------------------------


def termination_matrix(r: np.ndarray, q_min: float, q_max: float) -> np.ndarray:
    """``T [n, n]`` with ``T @ G(r) = (2/π) ∫_{Qmin}^{Qmax} F(Q) sin(Qr) dQ`` for ``G`` sampled on the uniform
    grid ``r`` (Å, bin centres from r = dr/2; ``F`` is the sine transform of ``G``). Element ``(i, j)``:
    ``dr/π · [sin(Q d₋)/d₋ − sin(Q d₊)/d₊]`` between ``Qmin`` and ``Qmax``, ``d∓ = r_i ∓ r_j``."""
    r = np.asarray(r, dtype=np.float64)
    if not 0 <= q_min < q_max:
        raise ValueError(f"need 0 <= qmin < qmax, got {q_min}, {q_max}")
    dr = float(r[1] - r[0])

    def sine_integral_kernel(d: np.ndarray) -> np.ndarray:
        """(sin(Qmax d) − sin(Qmin d)) / d, with its limit Qmax − Qmin at d = 0."""
        safe = np.where(np.abs(d) < 1e-12, 1.0, d)
        value = (np.sin(q_max * safe) - np.sin(q_min * safe)) / safe
        return np.where(np.abs(d) < 1e-12, q_max - q_min, value)

    minus = sine_integral_kernel(r[:, None] - r[None, :])
    plus = sine_integral_kernel(r[:, None] + r[None, :])
    return dr / math.pi * (minus - plus)


def broadening_matrix(r: np.ndarray, sigma: float, q_broad: float) -> np.ndarray:
    """``M [n, n]``: Gaussian smoothing whose width ``σ Qbroad r'`` grows with the source point r', so that a peak of
    width σ at r' ends with PDFgui's width ``σ √(1 + Qbroad² r'²)``; columns sum to 1 (pair counts are kept)."""
    r = np.asarray(r, dtype=np.float64)
    width = sigma * q_broad * r  # [n], per source point
    dr = float(r[1] - r[0])
    narrow = width < dr / 4
    safe = np.where(narrow, 1.0, width)
    kernel = np.exp(-0.5 * ((r[:, None] - r[None, :]) / safe[None, :]) ** 2)
    kernel = np.where(narrow[None, :], np.eye(len(r)), kernel)
    return kernel / kernel.sum(0, keepdims=True)


@dataclass(frozen=True)
class Termination:
    """The finite Q range and instrument terms of a measured PDF (PDFgui/PDFgetX3 names; Å⁻¹)."""

    q_max: float
    q_min: float = 0.0
    q_damp: float = 0.0
    q_broad: float = 0.0

    def __post_init__(self) -> None:
        values = (self.q_max, self.q_min, self.q_damp, self.q_broad)
        if not all(math.isfinite(v) and v >= 0 for v in values) or self.q_min >= self.q_max:
            raise ValueError(f"need 0 <= qmin < qmax and qdamp, qbroad >= 0 (Å⁻¹), got {self}")

    def matrix(self, r: np.ndarray, sigma: float) -> np.ndarray:
        """``T · D · M``: broaden, damp, terminate (the model's G(r) on the grid r → the G(r) the data show)."""
        r = np.asarray(r, dtype=np.float64)
        damping = np.exp(-0.5 * (self.q_damp * r) ** 2)
        out = termination_matrix(r, self.q_min, self.q_max) * damping[None, :]
        if self.q_broad > 0:
            out = out @ broadening_matrix(r, sigma, self.q_broad)
        return out

    def ripple(self) -> float:
        """Period of the termination ripples, 2π/Qmax (Å)."""
        return 2.0 * math.pi / self.q_max


class TerminatedPDF(Observable):
    """A real-space observable (g(r), G(r) or RDF) of the model as data with a finite Q range show it.

    Wraps a :class:`~specguide.observables.pdf.PairDistribution` (any output, any weighting) on a grid from r = 0:
    the model's G(r) is broadened, damped and terminated (:class:`Termination`), then converted to the wrapped
    observable's output with the structure's own number density.
    """

    x_label = "r (Å)"

    def __init__(self, inner, termination: Termination) -> None:
        from specguide.observables.pdf import PairDistribution, ReducedPairDistribution

        if not isinstance(inner, PairDistribution):
            raise TypeError("TerminatedPDF wraps a PairDistribution (gr, pdf or rdf)")
        if inner.r_min != 0:
            raise ValueError("the termination needs the model's G(r) from r = 0 (r_min = 0)")
        self.inner = inner
        self.termination = termination
        self.kind, self.y_label, self.output = inner.kind, inner.y_label, inner.output
        self.grid = inner.grid
        self.r_max, self.sigma, self.weighting = inner.r_max, inner.sigma, inner.weighting
        self._model = ReducedPairDistribution(0.0, inner.r_max, inner.dr, inner.sigma, inner.weighting, inner.species)
        self._model.neighbors = inner.neighbors
        self.matrix = torch.as_tensor(termination.matrix(self.grid.numpy(), inner.sigma))
        t = termination
        self.quantity = (
            f"{inner.quantity}; terminated to {t.q_min:g} ≤ Q ≤ {t.q_max:g} Å⁻¹, Qdamp {t.q_damp:g} Å⁻¹, "
            f"Qbroad {t.q_broad:g} Å⁻¹ (PDFgui conventions)"
        )

    def __call__(self, positions, cells, numbers, batch=None) -> torch.Tensor:
        from specguide.graph import atoms_per_structure, cell_volumes

        if cells.dim() == 2:
            cells = cells.unsqueeze(0)
        if batch is None:
            batch = torch.zeros(positions.shape[0], dtype=torch.long, device=positions.device)
        g_model = self._model(positions, cells, numbers, batch)  # [S, n]
        seen = g_model @ self.matrix.to(dtype=g_model.dtype, device=g_model.device).T
        if self.output == "G":
            return seen
        r = self.grid.to(dtype=seen.dtype, device=seen.device)
        rho = (atoms_per_structure(batch, cells.shape[0]).to(seen.dtype) / cell_volumes(cells))[:, None]
        g = 1.0 + seen / (4.0 * math.pi * rho * r)
        return g if self.output == "g" else 4.0 * math.pi * rho * r**2 * g

    def header(self) -> str:
        """Quantity, conventions and columns."""
        return f"{self.quantity}\ncolumns: {self.x_label}, {self.y_label}"


# ----------------------------------------------------------------------------------------------------------------
# instrument resolution in Q
# ----------------------------------------------------------------------------------------------------------------


def resolution_matrix(q_out: np.ndarray, q_in: np.ndarray, fwhm: float = 0.0, relative: float = 0.0) -> np.ndarray:
    """Gaussian resolution ``[n_out, n_in]`` (rows sum to 1): FWHM ``fwhm + relative · Q`` (Å⁻¹) at each output Q."""
    q_out = np.asarray(q_out, dtype=np.float64)
    q_in = np.asarray(q_in, dtype=np.float64)
    sigma = (fwhm + relative * q_out) / (2.0 * math.sqrt(2.0 * math.log(2.0)))
    if np.any(sigma <= 0):
        raise ValueError("the resolution FWHM must be positive")
    kernel = np.exp(-0.5 * ((q_out[:, None] - q_in[None, :]) / sigma[:, None]) ** 2)
    return kernel / kernel.sum(1, keepdims=True)


class ResolvedScattering(Observable):
    """A reciprocal-space observable convolved with the instrument's Gaussian resolution.

    The wrapped observable (S(Q), F(Q), X-ray or neutron intensity) is evaluated on a grid extended by three
    resolution widths at each end and mapped onto the output grid ``q`` (Å⁻¹). ``fwhm`` is a constant FWHM (Å⁻¹),
    ``relative`` a FWHM proportional to Q (ΔQ/Q); both may be given.
    """

    x_label = "Q (Å⁻¹)"

    def __init__(self, build, q: np.ndarray, fwhm: float = 0.0, relative: float = 0.0) -> None:
        q = np.asarray(q, dtype=np.float64)
        if fwhm < 0 or relative < 0 or fwhm + relative <= 0:
            raise ValueError("give a positive resolution: a FWHM in Å⁻¹ and/or a relative ΔQ/Q")
        dq = float(q[1] - q[0])
        pad = 3.0 * (fwhm + relative * float(q[-1]))
        n_pad = int(math.ceil(pad / dq))
        q_lo = max(0.05, float(q[0]) - n_pad * dq)
        self.inner = build(q_lo, float(q[-1]) + n_pad * dq, dq)
        self.kind, self.y_label, self.weighting = (
            self.inner.kind,
            self.inner.y_label,
            getattr(self.inner, "weighting", "number"),
        )
        self.r_max = self.inner.r_max
        self.grid = torch.as_tensor(q)
        self.fwhm, self.relative = float(fwhm), float(relative)
        self.matrix = torch.as_tensor(resolution_matrix(q, self.inner.grid.numpy(), fwhm, relative))
        self.quantity = f"{self.inner.quantity}; Gaussian resolution FWHM {fwhm:g} Å⁻¹ + {relative:g} Q"

    def __call__(self, positions, cells, numbers, batch=None) -> torch.Tensor:
        wide = self.inner(positions, cells, numbers, batch)
        return wide @ self.matrix.to(dtype=wide.dtype, device=wide.device).T

    def header(self) -> str:
        """The wrapped observable's header with the resolution named."""
        return self.inner.header().replace(self.inner.quantity, self.quantity)
