"""Measured X-ray absorption spectra as XAS users prepare them: edge energy, normalisation, shift and broadening.

- :func:`find_e0`: the edge energy E0 at the largest derivative of μ(E) (Athena/Larch's default).
- :func:`normalize`: Larch's ``pre_edge`` convention — a line fitted to μ(E) over ``[E0 + pre1, E0 + pre2]`` is the
  pre-edge background, a polynomial of order ``nnorm`` fitted to μ − pre-edge over ``[E0 + norm1, E0 + norm2]`` the
  post-edge curve, the edge step their difference at E0, and ``norm = (μ − pre-edge) / step`` (0 before the edge,
  ≈ 1 after it). Defaults follow Larch: ``pre1`` from the second energy point (rounded to 5 eV), ``pre2 ≈ pre1/3``,
  ``norm2`` the last point, ``norm1 ≈ min(150, norm2/3)`` eV, ``nnorm`` 2 / 1 / 0 for post-edge ranges over
  350 / 50 / below 50 eV.
- :class:`Alignment`: the rigid shift and the Gaussian and Lorentzian broadening between a computed and a measured
  spectrum, found on a grid of candidates (least squares, with the scale and offset of the target fitted inside)
  and applied as one linear map, so the structure's gradient passes through it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch


def _round5(value: float) -> float:
    return 5.0 * round(value / 5.0)


def find_e0(energy: np.ndarray, mu: np.ndarray) -> float:
    """E0 (eV): where dμ/dE is largest, ignoring the outer 5 % of the points and lone spikes (the slope is taken of
    μ under a 3-point median filter, and a point counts only if both neighbours rise faster than a tenth of the
    largest slope too)."""
    from scipy.ndimage import median_filter

    energy, mu = np.asarray(energy, dtype=float), np.asarray(mu, dtype=float)
    slope = np.gradient(median_filter(mu, size=3, mode="nearest")) / np.gradient(energy)
    slope[~np.isfinite(slope)] = -np.inf
    margin = max(3, int(0.05 * len(energy)))
    inner = np.arange(margin, len(energy) - margin)
    if len(inner) < 3:
        return float(energy[int(np.argmax(slope))])
    steep = slope > 0.1 * slope[inner].max()
    candidates = inner[steep[inner] & steep[inner - 1] & steep[inner + 1]]
    best = candidates[np.argmax(slope[candidates])] if len(candidates) else inner[np.argmax(slope[inner])]
    return float(energy[best])


@dataclass
class Normalized:
    """The result of :func:`normalize` (energies in eV)."""

    energy: np.ndarray
    norm: np.ndarray  # (μ − pre-edge) / step
    e0: float
    step: float
    pre_edge: np.ndarray
    post_edge: np.ndarray
    ranges: dict  # pre1, pre2, norm1, norm2 (eV relative to E0) and nnorm


def normalize(
    energy: np.ndarray,
    mu: np.ndarray,
    e0: float | None = None,
    pre1: float | None = None,
    pre2: float | None = None,
    norm1: float | None = None,
    norm2: float | None = None,
    nnorm: int | None = None,
) -> Normalized:
    """Pre-edge subtraction and edge-step normalisation of μ(E) (energies in eV; see the module docstring)."""
    energy, mu = np.asarray(energy, dtype=float), np.asarray(mu, dtype=float)
    if len(energy) < 10:
        raise ValueError("normalising an absorption spectrum needs at least 10 points")
    if e0 is None or not energy[1] <= e0 <= energy[-2]:
        e0 = find_e0(energy, mu)
    i0 = int(np.argmin(np.abs(energy - e0)))
    e0 = float(energy[i0])
    if pre1 is None:
        pre1 = _round5(energy[1] - e0) if i0 > 20 else 2.0 * round((energy[1] - e0) / 2.0)
    pre1 = max(pre1, energy[0] - e0)
    pre2 = _round5(pre1 / 3.0) if pre2 is None else pre2
    pre1, pre2 = min(pre1, pre2), max(pre1, pre2)
    if norm2 is None:
        norm2 = _round5(energy[-1] - e0)
    norm2 = min(norm2, energy[-1] - e0)
    norm1 = min(150.0, _round5(norm2 / 3.0)) if norm1 is None else norm1
    norm1, norm2 = min(norm1, norm2), max(norm1, norm2)
    if nnorm is None:
        nnorm = 2 if norm2 - norm1 >= 350 else 1 if norm2 - norm1 >= 50 else 0

    def window(lo: float, hi: float) -> slice:
        a = int(np.searchsorted(energy, e0 + lo))
        b = int(np.argmin(np.abs(energy - (e0 + hi))))
        return slice(a, max(b, a + 2))

    pre = window(pre1, pre2)
    line = np.polyfit(energy[pre], mu[pre], 1)
    pre_edge = np.polyval(line, energy)
    post = window(norm1, norm2)
    curve = np.polyfit(energy[post], (mu - pre_edge)[post], int(nnorm))
    post_edge = pre_edge + np.polyval(curve, energy)
    step = abs(float(post_edge[i0] - pre_edge[i0]))
    if not step > 0:
        raise ValueError("the edge step is zero: is this an absorption spectrum across an edge?")
    ranges = {"pre1": pre1, "pre2": pre2, "norm1": norm1, "norm2": norm2, "nnorm": int(nnorm)}
    return Normalized(energy, (mu - pre_edge) / step, e0, step, pre_edge, post_edge, ranges)


def looks_normalized(energy: np.ndarray, mu: np.ndarray, e0: float) -> bool:
    """True if μ(E) is already edge-step normalised: about 0 before E0 − 5 eV and about 1 well above it."""
    energy, mu = np.asarray(energy, dtype=float), np.asarray(mu, dtype=float)
    below, above = mu[energy < e0 - 5], mu[energy > e0 + 0.6 * (energy[-1] - e0)]
    if len(below) < 2 or len(above) < 2:
        return False
    return abs(float(np.median(below))) < 0.1 and abs(float(np.median(above)) - 1.0) < 0.25


# ----------------------------------------------------------------------------------------------------------------
# shift and broadening
# ----------------------------------------------------------------------------------------------------------------


def shift_matrix(grid: np.ndarray, shift: float) -> np.ndarray:
    """``S [n, n]`` with ``S @ f(grid) = f(grid − shift)`` by linear interpolation (ends held)."""
    grid = np.asarray(grid, dtype=float)
    where = np.clip(grid - shift, grid[0], grid[-1])
    k = np.clip(np.searchsorted(grid, where) - 1, 0, len(grid) - 2)
    frac = (where - grid[k]) / (grid[k + 1] - grid[k])
    matrix = np.zeros((len(grid), len(grid)))
    rows = np.arange(len(grid))
    matrix[rows, k] = 1.0 - frac
    matrix[rows, k + 1] += frac
    return matrix


def broadening_matrix(grid: np.ndarray, gaussian: float = 0.0, lorentzian: float = 0.0) -> np.ndarray:
    """``B [n, n]``: convolution with a Gaussian of FWHM ``gaussian`` and a Lorentzian of FWHM ``lorentzian`` (eV);
    rows sum to 1 (the kernel is renormalised at the ends of the grid)."""
    grid = np.asarray(grid, dtype=float)
    d = grid[:, None] - grid[None, :]
    step = float(np.median(np.diff(grid)))
    kernel = np.eye(len(grid))
    if gaussian > step / 4:
        sigma = gaussian / (2.0 * math.sqrt(2.0 * math.log(2.0)))
        kernel = kernel @ np.exp(-0.5 * (d / sigma) ** 2)
    if lorentzian > step / 4:
        half = lorentzian / 2.0
        kernel = kernel @ (half / (d**2 + half**2))
    return kernel / kernel.sum(1, keepdims=True)


@dataclass(frozen=True)
class AlignmentGrid:
    """Candidate shifts and broadenings (eV) that :class:`Alignment` searches."""

    shifts: tuple[float, ...] = (0.0,)
    gaussians: tuple[float, ...] = (0.0,)
    lorentzians: tuple[float, ...] = (0.0,)

    @classmethod
    def span(cls, shift: float | None, gaussian: float | None, lorentzian: float | None) -> AlignmentGrid:
        """``None``: fitted (shifts −10…10 eV in 0.2 eV, FWHM 0…4 eV in 0.25 eV); a number: fixed at it (eV)."""
        shifts = tuple(np.round(np.arange(-10.0, 10.0001, 0.2), 4)) if shift is None else (float(shift),)
        widths = tuple(np.round(np.arange(0.0, 4.0001, 0.25), 4))
        gaussians = widths if gaussian is None else (float(gaussian),)
        lorentzians = widths if lorentzian is None else (float(lorentzian),)
        return cls(shifts, gaussians, lorentzians)


class Alignment:
    """The shift and broadening that best align a computed spectrum with measured data, as a linear map.

    ``choose(mean_spectrum, fit_loss)`` tries every candidate of the grid on the ensemble-mean spectrum and keeps the
    one with the lowest ``fit_loss`` (the target's own loss, scale and offset fitted inside); ``apply(spectra)`` maps
    ``[S, n]`` spectra with it. Broadening first, then the shift (positive: the model moves to higher energy).
    """

    def __init__(self, grid: np.ndarray, candidates: AlignmentGrid, every: int = 8):
        self.every = int(every)  # choose again every this many calls (guidance steps), and whenever asked
        self.calls = 0
        self.grid = np.asarray(grid, dtype=float)
        self.candidates = candidates
        broaden = [(g, l_, broadening_matrix(self.grid, g, l_)) for g in candidates.gaussians
                   for l_ in candidates.lorentzians]  # fmt: skip
        self._widths = [(g, l_) for g, l_, _ in broaden]
        self._broaden = torch.as_tensor(np.stack([m for _, _, m in broaden]))  # [W, n, n]
        self._shift = torch.as_tensor(np.stack([shift_matrix(self.grid, s) for s in candidates.shifts]))  # [D, n, n]
        self.shift, self.gaussian, self.lorentzian = candidates.shifts[0], *self._widths[0]
        self._matrix = self._shift[0] @ self._broaden[0]
        self.fixed = len(candidates.shifts) == 1 and len(self._widths) == 1

    def choose(self, mean: torch.Tensor, fit_loss, force: bool = False) -> None:
        """Pick the candidate whose aligned ``mean`` (``[n]``) gives the lowest ``fit_loss([K, n]) -> [K]``: on the
        first call, every ``every`` calls after it and with ``force``."""
        self.calls += 1
        if self.fixed or not (force or self.calls == 1 or self.calls % self.every == 0):
            return
        mean = mean.detach().to(device="cpu", dtype=torch.float64)  # a small choice, made where the matrices are
        broadened = torch.einsum("wij,j->wi", self._broaden, mean)  # [W, n]
        aligned = torch.einsum("dij,wj->dwi", self._shift, broadened)  # [D, W, n]
        losses = fit_loss(aligned.reshape(-1, aligned.shape[-1])).reshape(aligned.shape[:2])
        d, w = divmod(int(torch.argmin(losses)), losses.shape[1])
        self.shift = self.candidates.shifts[d]
        self.gaussian, self.lorentzian = self._widths[w]
        self._matrix = self._shift[d] @ self._broaden[w]

    def apply(self, spectra: torch.Tensor) -> torch.Tensor:
        """``[S, n]`` spectra broadened and shifted by the chosen candidate (differentiable, linear)."""
        return spectra @ self._matrix.to(dtype=spectra.dtype, device=spectra.device).T

    def values(self) -> dict[str, float]:
        return {"shift_eV": float(self.shift), "gaussian_fwhm_eV": float(self.gaussian),
                "lorentzian_fwhm_eV": float(self.lorentzian)}  # fmt: skip
