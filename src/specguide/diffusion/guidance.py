"""Spectroscopic guidance: steer the reverse SDE towards structures whose spectra match measured targets.

Posterior score = prior score + guidance score (Kwon et al. 2024 Sec. 4.2; GLASS Methods). Both forms go
through the clean-structure estimate (Tweedie) ``x0 = x + σ(t)² s(x, t)``:

- ``form="x0"`` (GLASS, default): ``s_guide = -∇_{x0} L(F(x0), y)``, the gradient taken at ``x0`` (treating
  ``∂x0/∂x`` as the identity), so the score network is not differentiated: cheap.
- ``form="dps"`` (Kwon): ``s_guide = -∇_{x} L(F(x0(x)), y)``, back-propagated through the score network.

The spectral loss of replica ``s`` sums over targets ``m``::

    L_s = Σ_m  λ_m · mean_k [ u_mk (a_ms F_m(x0_s)_k + b_ms − y_mk)² ] / max_k |y_mk|²

with per-point weights ``u`` (an error column as 1/err², normalised to mean 1, times an optional r/Q range
mask; 0 where the target has no data), per-target weights ``λ_m``, and a scale ``a`` and offset ``b`` fitted by
least squares per replica where the data are not absolute (``a = 1, b = 0`` otherwise). Dividing by
``max|y|²`` makes targets of different modalities and units comparable (as GLASS's Delta_ED normalisation).

Step size, per replica, with ``N_s`` atoms (the factor ``N_s`` makes the guidance per atom independent of the
cell size, since a structure-averaged spectrum moves by O(1/N) when one atom moves):

- ``step="weight"``: ``s_guide = -w N_s ∇L_s`` (GLASS's ``w``, in our normalisation);
- ``step="normalized"``: ``s_guide = -ξ N_s ∇L_s / sqrt(L_s)`` (Kwon's ``ξ/‖y − F‖`` form: the pull does not
  fade as the fit improves).

Guidance acts only for ``t ≤ t_guide``. The spectra and their gradient are computed in ``dtype``: the sampler's
precision by default (float64). ``dtype=torch.float32`` computes them in single precision: cheaper, but it changes
the guidance slightly, enough for a stochastic trajectory to end elsewhere, so results made with float64 are not
reproduced exactly (timings: docs/benchmarks.md, ``bench/invert.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from specguide.config import Config
from specguide.observables.target import Target, total_loss
from specguide.structure import wrap_positions

FORMS = ("x0", "dps")
STEPS = ("weight", "normalized")
SCHEDULES = ("two-stage", "guided")
DEFAULT_STRENGTH = 30.0  # ξ for step="normalized" (see bench/invert_ood.py for the sweep behind it)


@dataclass
class GuidanceConfig(Config):
    """How an inversion guides (``config.json``'s ``"guidance"``): ``strength`` (ξ for ``step="normalized"``, w for
    ``step="weight"``), ``form`` (``"x0"`` or ``"dps"``), ``schedule`` (``"two-stage"``: an unconditional pass,
    then guided from ``t_guide``; ``"guided"``: one pass guided for t ≤ ``t_guide``)."""

    strength: float = DEFAULT_STRENGTH
    form: str = "x0"
    step: str = "normalized"
    schedule: str = "two-stage"
    t_guide: float = 0.6

    def __post_init__(self) -> None:
        if self.form not in FORMS or self.step not in STEPS or self.schedule not in SCHEDULES:
            raise ValueError(f"guidance: form one of {FORMS}, step one of {STEPS}, schedule one of {SCHEDULES}; got "
                             f"{self.form!r}, {self.step!r}, {self.schedule!r}")  # fmt: skip
        if not 0 < self.t_guide <= 1:
            raise ValueError(f"t_guide must be in (0, 1], got {self.t_guide}")


class SpectralGuidance:
    """A guidance callable for :func:`specguide.diffusion.sampler.sample` from one or several targets.

    ``strength`` is ``w`` (``step="weight"``) or ``ξ`` (``step="normalized"``); see the module docstring.
    ``score`` is the prior's score function, needed for ``form="dps"``. ``history`` records the mean loss
    per guided step; ``last_losses`` the latest loss of each target per replica.
    """

    def __init__(
        self,
        targets: Sequence[Target],
        strength: float,
        *,
        form: str = "x0",
        step: str = "weight",
        t_guide: float = 1.0,
        score=None,
        dtype: torch.dtype | None = None,
    ):
        if not targets:
            raise ValueError("guidance needs at least one target")
        if form not in FORMS:
            raise ValueError(f"guidance form must be one of {FORMS}, got {form!r}")
        if step not in STEPS:
            raise ValueError(f"guidance step must be one of {STEPS}, got {step!r}")
        if form == "dps" and score is None:
            raise ValueError("form='dps' differentiates through the score network: pass score=")
        if strength < 0:
            raise ValueError("guidance strength must be >= 0")
        self.targets = list(targets)
        self.strength, self.form, self.step, self.t_guide, self.score = float(strength), form, step, t_guide, score
        self.dtype = dtype
        self.history: list[float] = []
        self.last_losses: dict[str, torch.Tensor] = {}
        self.__name__ = f"SpectralGuidance({form}, {step}={strength:g})"

    def status(self) -> str:
        return f"loss {self.history[-1]:.3g}" if self.history else ""

    def __call__(self, positions, cells, numbers, batch, t, sigma, score, replica_ids=None) -> torch.Tensor:
        if float(t.max()) > self.t_guide or self.strength == 0:
            return torch.zeros_like(positions)
        out_dtype = positions.dtype
        work = self.dtype or out_dtype
        positions, score, cells = positions.detach().to(work), score.detach().to(work), cells.to(work)
        s2 = (sigma**2).to(work).index_select(0, batch)[:, None]
        if self.form == "x0":
            x0 = (positions + s2 * score).requires_grad_(True)
            leaf = x0
        else:
            leaf = positions.requires_grad_(True)
            x0 = leaf + s2 * self.score(leaf, cells, numbers, batch, t.to(work)).to(work)
        x0_wrapped = wrap_positions(x0, cells, batch)
        loss, parts = total_loss(self.targets, x0_wrapped, cells, numbers, batch)
        (gradient,) = torch.autograd.grad(loss.sum(), leaf)
        n_atoms = torch.bincount(batch, minlength=cells.shape[0]).to(work)
        factor = self.strength * n_atoms
        if self.step == "normalized":
            factor = factor / loss.detach().clamp_min(1e-12).sqrt()
        self.history.append(float(loss.detach().mean()))
        self.last_losses = {k: v.detach() for k, v in parts.items()}
        # a non-finite value here is caught by the sampler, which re-initialises the replica
        return (-factor.index_select(0, batch)[:, None] * gradient).detach().to(out_dtype)
