"""Spectral guidance: the loss, the fitted scale/offset and the guidance score against independent references."""

import ase.build
import numpy as np
import pytest
import torch

from specguide.diffusion.guidance import SpectralGuidance
from specguide.diffusion.sampler import sample
from specguide.graph import batch_from_atoms
from specguide.observables import PairDistribution, XRayDiffraction
from specguide.observables.target import Target, total_loss


def amorphous_like(n_replicas=2, seed=0):
    """Diamond Si 2x2x2 (64 atoms) with random displacements: a smooth, bond-rich test structure."""
    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(n_replicas):
        atoms = ase.build.bulk("Si", "diamond", a=5.43, cubic=True).repeat((2, 2, 2))
        atoms.positions += 0.25 * rng.standard_normal(atoms.positions.shape)
        frames.append(atoms)
    return frames


def test_fitted_scale_and_offset_match_numpy_least_squares():
    observable = XRayDiffraction(q_min=1.0, q_max=8.0, r_max=5.0)
    positions, cells, numbers, batch = batch_from_atoms(amorphous_like(2))
    with torch.no_grad():
        spectra = observable(positions.double(), cells.double(), numbers, batch)
    y = 3.0 * spectra[0] + 7.0 + 0.1 * torch.sin(observable.grid)
    target = Target(observable, y, fit_scale=True, fit_offset=True)
    fitted = target.fitted(spectra)
    for s in range(2):
        a, b = np.polyfit(spectra[s].numpy(), y.numpy(), 1)
        np.testing.assert_allclose(fitted[s].numpy(), a * spectra[s].numpy() + b, rtol=1e-9)
    only_scale = Target(observable, y - 7.0, fit_scale=True)
    a = float((spectra[1] * (y - 7.0)).sum() / (spectra[1] ** 2).sum())
    np.testing.assert_allclose(only_scale.fitted(spectra)[1].numpy(), a * spectra[1].numpy(), rtol=1e-9)


def test_loss_is_the_normalised_weighted_mean_square():
    observable = PairDistribution(r_max=4.0)
    n = observable.grid.numel()
    y = torch.linspace(0, 2, n, dtype=torch.float64)
    weights = torch.rand(n, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    target = Target(observable, y, weights)
    spectra = torch.stack([y + 0.1, y * 2])
    expected = [(weights * (s - y) ** 2).sum() / weights.sum() / 4.0 for s in spectra]
    np.testing.assert_allclose(target.loss(spectra).numpy(), torch.stack(expected).numpy(), rtol=1e-12)


def two_replicas_and_a_gr_target(sigma=0.15):
    """Two 64-atom replicas (float64) and the g(r) of a third structure as the target."""
    observable = PairDistribution(r_max=5.0, sigma=sigma)
    positions, cells, numbers, batch = batch_from_atoms(amorphous_like(2))
    reference = amorphous_like(1, seed=5)
    with torch.no_grad():
        y = observable(*[t.double() if t.is_floating_point() else t for t in batch_from_atoms(reference)])[0]
    return (positions.double(), cells.double(), numbers, batch), Target(observable, y)


def test_guidance_score_is_minus_w_n_times_the_loss_gradient_by_finite_differences():
    (positions, cells, numbers, batch), target = two_replicas_and_a_gr_target(sigma=0.2)
    w = 2.5
    guidance = SpectralGuidance([target], w, step="weight")
    t = torch.full((2,), 0.3, dtype=torch.float64)
    sigma = 0.8 * t
    score = torch.zeros_like(positions)  # x0 = x: the guidance is -w N dL/dx
    guide = guidance(positions, cells, numbers, batch, t, sigma, score)

    def loss_of(x):
        return float(total_loss([target], x, cells, numbers, batch)[0].sum())

    h = 1e-5
    for atom, axis in [(0, 0), (17, 1), (64 + 3, 2)]:
        plus, minus = positions.clone(), positions.clone()
        plus[atom, axis] += h
        minus[atom, axis] -= h
        derivative = (loss_of(plus) - loss_of(minus)) / (2 * h)
        assert float(guide[atom, axis]) == pytest.approx(-w * 64 * derivative, rel=1e-4, abs=1e-9)


def test_normalized_step_divides_by_the_residual_norm_and_respects_t_guide():
    frames = amorphous_like(1)
    observable = PairDistribution(r_max=5.0)
    positions, cells, numbers, batch = batch_from_atoms(frames)
    positions, cells = positions.double(), cells.double()
    y = torch.ones(observable.grid.numel(), dtype=torch.float64)
    target = Target(observable, y)
    t, sigma, score = torch.tensor([0.5]), torch.tensor([0.4]), torch.zeros_like(positions)
    args = (positions, cells, numbers, batch, t, sigma, score)
    weight = SpectralGuidance([target], 1.0, step="weight")(*args)
    normalized = SpectralGuidance([target], 1.0, step="normalized")
    scaled = normalized(positions, cells, numbers, batch, t, sigma, score)
    loss = float(target.loss(observable(positions, cells, numbers, batch))[0])
    torch.testing.assert_close(scaled, weight / loss**0.5)
    late = SpectralGuidance([target], 1.0, t_guide=0.4)
    assert float(late(positions, cells, numbers, batch, t, sigma, score).abs().max()) == 0.0


def test_float32_guidance_matches_float64():
    (positions, cells, numbers, batch), target = two_replicas_and_a_gr_target()
    t = torch.full((2,), 0.3, dtype=torch.float64)
    score = 0.1 * torch.randn(positions.shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    args = (positions, cells, numbers, batch, t, 0.8 * t, score)
    fast = SpectralGuidance([target], 30.0, dtype=torch.float32)(*args)
    exact = SpectralGuidance([target], 30.0)(*args)
    assert fast.dtype == torch.float64 and float(exact.norm()) > 0
    assert float((fast - exact).norm() / exact.norm()) < 1e-4


def test_dps_form_differentiates_through_the_score():
    frames = amorphous_like(1)
    observable = PairDistribution(r_max=5.0)
    positions, cells, numbers, batch = batch_from_atoms(frames)
    positions, cells = positions.double(), cells.double()
    target = Target(observable, torch.ones(observable.grid.numel(), dtype=torch.float64))

    def linear_score(x, cells, numbers, batch, t):  # x0 = x + σ² (-x/2) = (1 - σ²/2) x: gradient scales by that
        return -0.5 * x

    t, sigma = torch.tensor([0.5]), torch.tensor([1.0])
    args = (positions, cells, numbers, batch, t, sigma)
    x0 = SpectralGuidance([target], 1.0, step="weight", form="x0")
    dps = SpectralGuidance([target], 1.0, step="weight", form="dps", score=linear_score)
    at_x0 = x0(0.5 * positions, cells, numbers, batch, t, sigma, torch.zeros_like(positions))
    through = dps(*args, linear_score(positions, cells, numbers, batch, t))
    # L(x0(x)) with x0 = x/2 (before wrapping): dL/dx = 1/2 dL/dx0, so the dps step is half the x0 step at x0
    torch.testing.assert_close(through, 0.5 * at_x0, rtol=1e-6, atol=1e-10)
    with pytest.raises(ValueError, match="score"):
        SpectralGuidance([target], 1.0, form="dps")


def test_guidance_pulls_a_sampler_towards_the_target_pdf():
    """With a zero prior score (pure noise), PDF guidance must bring g(r) much closer to the target's."""
    reference = amorphous_like(1, seed=3)
    observable = PairDistribution(r_max=5.0, sigma=0.2)
    pos, cells, numbers, _ = batch_from_atoms(reference)
    y = observable(pos.double(), cells.double(), numbers)[0].detach()
    target = Target(observable, y)
    cells2 = cells.double().expand(2, 3, 3).clone()
    numbers2 = numbers.repeat(2)
    batch2 = torch.repeat_interleave(torch.arange(2), len(numbers))

    def zero_score(x, cells, numbers, batch, t):
        return torch.zeros_like(x)

    losses = {}
    for strength in (0.0, 30.0):
        guidance = SpectralGuidance([target], strength) if strength else None
        result = sample(zero_score, cells2, numbers2, batch2, steps=200, generator=1, guidance=guidance, d_min=1.5)
        with torch.no_grad():
            losses[strength] = float(target.loss(observable(result.positions, result.cells, numbers2, batch2)).mean())
    assert losses[30.0] < 0.3 * losses[0.0]
