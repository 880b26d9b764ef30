"""Variance-exploding noise schedule of the structural prior (Kwon et al. 2024, Sec. 4.1).

Positions are noised as ``x_t = x_0 + sigma(t) * eps`` with ``alpha_t = 1`` and ``sigma(t) = k t`` (Å),
``t`` in (0, 1). The forward SDE is ``dx = g(t) dw`` with ``g^2(t) = d sigma^2 / dt = 2 k^2 t``, and the
reverse-time SDE used for sampling is ``dx = -g^2(t) s(x, t) dt + g(t) dw`` (``dt < 0``).

The schedule lives with the networks: the score network divides its output by ``sigma(t)`` (its
:attr:`~specguide.models.score.ScoreNetwork.schedule`), and both the trainer (:mod:`specguide.training.prior`) and the
sampler (:mod:`specguide.diffusion.sampler`) work with the same one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

# Training draws t ~ U(T_MIN, T_MAX); sampling integrates from T_MAX down to T_MIN (paper values).
T_MIN = 0.001
T_MAX = 0.999


@dataclass(frozen=True)
class VESchedule:
    """``sigma(t) = k t`` in Å; ``k = 0.8`` Å is the value of the public a-C checkpoint."""

    k: float = 0.8

    def __post_init__(self) -> None:
        if not (self.k > 0 and math.isfinite(self.k)):
            raise ValueError(f"noise scale k must be a positive number of Å, got {self.k!r}")

    def sigma(self, t: torch.Tensor | float) -> torch.Tensor | float:
        """Noise standard deviation (Å) at time ``t``."""
        return self.k * t

    def g2(self, t: torch.Tensor | float) -> torch.Tensor | float:
        """Squared diffusion coefficient ``d sigma^2 / dt = 2 k^2 t`` (Å² per unit time)."""
        return 2.0 * self.k**2 * t

    def g(self, t: torch.Tensor | float) -> torch.Tensor | float:
        """Diffusion coefficient ``sqrt(2) k sqrt(t)``."""
        if isinstance(t, torch.Tensor):
            return torch.sqrt(self.g2(t))
        return math.sqrt(self.g2(t))

    def renoise_sigma(self, t_from: float, t_to: float) -> float:
        """Standard deviation of the noise that takes a sample at ``t_from`` to ``t_to > t_from``."""
        return math.sqrt(max(self.sigma(t_to) ** 2 - self.sigma(t_from) ** 2, 0.0))
