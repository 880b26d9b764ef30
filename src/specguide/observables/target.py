"""A measured spectrum on an observable's grid, and the misfit the guidance minimises.

For one target and replica ``s`` (:meth:`Target.loss`)::

    L_s = mean_k [ u_k (a_s A(F(x_s))_k + b_s − y_k)² ] / max_k |y_k|²

with per-point weights ``u`` (an error column as 1/err², normalised to mean 1, times an optional r/Q range mask;
0 where the target has no data), a scale ``a`` and offset ``b`` fitted by least squares per replica where the data
are not absolute (``a = 1, b = 0`` otherwise) and ``A`` an optional fitted alignment (shift and broadening of
XAS). Dividing by ``max|y|²`` makes targets of different modalities and units comparable (as GLASS's Delta_ED
normalisation). :func:`total_loss` weights and sums several targets; :mod:`specguide.observables.measured` makes
targets from measured files, :class:`specguide.diffusion.guidance.SpectralGuidance` follows their gradient.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from specguide.observables.base import Observable
from specguide.observables.registry import DEFAULT_Q_MAX, DEFAULT_Q_MIN, DEFAULT_R_MAX, build_observable, spec_of


@dataclass
class Target:
    """One measured spectrum on an observable's grid.

    ``y [n]`` and ``point_weights [n]`` are on ``observable.grid``; ``weight`` is the target's share of the
    total loss; ``fit_scale`` / ``fit_offset`` fit ``a F + b`` to ``y`` per replica (least squares).
    ``label`` names it in reports (e.g. ``"gr:target.dat"``). ``y`` is what the model is compared with (measured
    data as the cell sees them); ``raw`` keeps the data as measured, ``(x, y)`` on their own grid.
    """

    observable: Observable
    y: torch.Tensor
    point_weights: torch.Tensor | None = None
    weight: float = 1.0
    fit_scale: bool = False
    fit_offset: bool = False
    label: str = ""
    kind: str = ""
    metadata: dict = field(default_factory=dict)
    raw: tuple | None = None  # the measured curve (x, y) on its own grid, before the box saw it (plots, fit files)
    alignment: object | None = None  # an observables.xas.Alignment: shift/broadening fitted to the data (XAS)

    def __post_init__(self) -> None:
        grid = self.observable.grid
        self.y = torch.as_tensor(self.y, dtype=torch.float64).flatten()
        if self.y.shape != grid.shape:
            raise ValueError(f"{self.label or 'target'}: y has {self.y.numel()} points, the grid {grid.numel()}")
        if self.point_weights is None:
            self.point_weights = torch.ones_like(self.y)
        self.point_weights = torch.as_tensor(self.point_weights, dtype=torch.float64).flatten()
        if self.point_weights.shape != self.y.shape or bool((self.point_weights < 0).any()):
            raise ValueError(f"{self.label or 'target'}: point weights must be >= 0, one per grid point")
        if not bool(torch.isfinite(self.y).all()) or not bool(torch.isfinite(self.point_weights).all()):
            raise ValueError(f"{self.label or 'target'}: target values and weights must be finite")
        if float(self.point_weights.sum()) <= 0:
            raise ValueError(f"{self.label or 'target'}: no grid point carries weight (check the ranges)")
        if self.weight < 0:
            raise ValueError(f"{self.label or 'target'}: weight must be >= 0")
        active = self.point_weights > 0
        self.norm = float(self.y[active].abs().max())
        if self.norm < 1e-9:
            raise ValueError(
                f"{self.label or 'target'}: the target is zero everywhere on the grid it guides; "
                "check the units of x (Å vs nm, Å⁻¹ vs nm⁻¹) and the range"
            )

    @classmethod
    def from_arrays(
        cls, kind: str, x, y, err=None, *, weight: float = 1.0, label: str | None = None, **grid: float | str | None
    ) -> Target:
        """A target from arrays: ``x`` in the kind's own unit (Å, Å⁻¹, degrees, eV: its row of
        :data:`~specguide.observables.registry.SPECS`), ``y`` its quantity, ``err`` (optional) the error of y.

        The observable is the kind's with the grid settings ``grid`` (``r_max``, ``dr``, ``sigma``, ``q_min``,
        ``q_max``, ``dq``, ``weighting``, ``surrogate``, ...: :func:`~specguide.observables.registry.build_observable`);
        by default a real-space grid ends at the data's last r (at most the default reach) and a reciprocal one spans
        the data's Q range within the default one. ``y`` is interpolated onto the grid; grid points outside the data
        carry no weight, ``err`` gives weights 1/err² (mean 1). Scale and offset are fitted where the row says so.
        No file conversions, instrument terms or box view are applied: for measured files give ``KIND:FILE``.
        """
        row = spec_of(kind)
        x, y = np.asarray(x, dtype=float).ravel(), np.asarray(y, dtype=float).ravel()
        if x.shape != y.shape or len(x) < 5 or not (np.isfinite(x).all() and np.isfinite(y).all()):
            raise ValueError(f"{kind}: give x and y as finite arrays of the same length (at least 5 points)")
        order = np.argsort(x)
        x, y = x[order], y[order]
        options = dict(grid)
        if row.space == "real":
            options.setdefault("r_max", min(DEFAULT_R_MAX, float(x.max())))
        elif row.space == "reciprocal" and not row.surrogate:
            options.setdefault("q_min", max(DEFAULT_Q_MIN, float(x.min())))
            options.setdefault("q_max", min(DEFAULT_Q_MAX, float(x.max())))
        observable = build_observable(kind, **options)
        points = observable.grid.numpy()
        inside = (points >= x[0]) & (points <= x[-1])
        weights = inside.astype(float)
        if err is not None:
            e = np.asarray(err, dtype=float).ravel()[order]
            if e.shape != x.shape or not (np.isfinite(e).all() and (e > 0).all()):
                raise ValueError(f"{kind}: err must hold one positive, finite error per point")
            weights = np.where(inside, np.interp(points, x, 1.0 / e**2), 0.0)
            weights = weights / weights[inside].mean()
        return cls(observable, np.interp(points, x, y), weights, weight=weight, fit_scale=row.fit, fit_offset=row.fit,
                   label=label or f"{kind}:arrays", kind=kind, raw=(x, y))  # fmt: skip

    def fitted(self, spectra: torch.Tensor, realign: bool = False) -> torch.Tensor:
        """``a A(F) + b`` per replica: ``A`` the :attr:`alignment` (shift and broadening, chosen on the ensemble
        mean; ``realign`` chooses again now), ``a, b`` fitted (detached: by the envelope theorem the loss gradient
        at the optimum is the same as with them held fixed)."""
        return self.scaled(self._aligned(spectra, realign))

    def _aligned(self, spectra: torch.Tensor, realign: bool = False) -> torch.Tensor:
        if self.alignment is None:
            return spectra
        self.alignment.choose(spectra.detach().mean(0), self._raw_loss, force=realign)
        return self.alignment.apply(spectra)

    def _raw_loss(self, spectra: torch.Tensor) -> torch.Tensor:
        residual = self.scaled(spectra) - self.y.to(spectra)
        u = self.point_weights.to(spectra)
        return (u * residual**2).sum(-1) / u.sum() / self.norm**2

    def scaled(self, spectra: torch.Tensor) -> torch.Tensor:
        """``a F + b`` per replica with the scale and offset fitted (no alignment); see :meth:`fitted`."""
        if not (self.fit_scale or self.fit_offset):
            return spectra
        u = self.point_weights.to(spectra)  # the spectra's dtype and device
        y = self.y.to(spectra)
        f = spectra.detach()
        w_sum = u.sum()
        if self.fit_scale and self.fit_offset:
            mf, my = (f * u).sum(-1) / w_sum, (y * u).sum() / w_sum
            cov = ((f - mf[:, None]) * (y - my) * u).sum(-1)
            var = ((f - mf[:, None]) ** 2 * u).sum(-1).clamp_min(1e-30)
            a = cov / var
            b = my - a * mf
        elif self.fit_scale:
            a = (f * y * u).sum(-1) / (f * f * u).sum(-1).clamp_min(1e-30)
            b = torch.zeros_like(a)
        else:
            a = torch.ones(f.shape[0], dtype=f.dtype, device=f.device)
            b = ((y - f) * u).sum(-1) / w_sum
        return a[:, None] * spectra + b[:, None]

    def loss(self, spectra: torch.Tensor, realign: bool = False) -> torch.Tensor:
        """Normalised weighted mean squared misfit per replica ``[S]`` (dimensionless, without ``weight``)."""
        return self._raw_loss(self._aligned(spectra, realign))

    def evaluate(self, positions, cells, numbers, batch) -> tuple[torch.Tensor, torch.Tensor]:
        """``(spectra [S, n], loss [S])`` of a batch of structures."""
        spectra = self.observable(positions, cells, numbers, batch)
        return spectra, self.loss(spectra)


def total_loss(
    targets: Sequence[Target], positions, cells, numbers, batch
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Weighted sum of the targets' losses per replica ``[S]`` and each target's own loss."""
    total = positions.new_zeros(cells.shape[0])
    parts = {}
    for target in targets:
        _, loss = target.evaluate(positions, cells, numbers, batch)
        parts[target.label] = loss
        total = total + target.weight * loss
    return total, parts
