"""Noise (eps) and clean-cluster (x0) parametrisations of the site denoiser, and loading older checkpoints."""

import numpy as np
import pytest
import torch

from specguide.models.egnn import EGNNConfig, SiteDenoiser
from specguide.pretrained import load_site_model
from specguide.sites.diffusion import (
    COORD_SCALE,
    MIN_SNR_GAMMA,
    SPECIES,
    alpha_sigma,
    clean_and_noise,
    diffusion_loss,
    one_hot_species,
)
from specguide.training.sites import save_site_model

torch.set_num_threads(1)


def _cluster():
    torch.manual_seed(4)
    x = torch.randn(6, 3, dtype=torch.float64) * 2.0
    x[0] = 0.0
    numbers = torch.tensor([8, 14, 14, 8, 8, 14])
    batch = torch.zeros(6, dtype=torch.long)
    excited = torch.zeros(6, dtype=torch.bool)
    excited[0] = True
    return x, numbers, batch, excited, torch.rand(1, 20, dtype=torch.float64)


class _Oracle(torch.nn.Module):
    """Returns the true clean cluster (x0) or the true noise (eps) for the one cluster it was built with."""

    def __init__(self, prediction, x0, h, noise):
        super().__init__()
        self.config = EGNNConfig(n_spectrum=20, prediction=prediction)
        self.x0, self.h, self.noise = x0, h, noise

    def forward(self, x, h, t, spectrum, batch, excited):
        free = (~excited)[:, None].to(x.dtype)
        if self.config.prediction == "x0":
            return self.x0 * free, self.h
        return self.noise[0] * free, self.noise[1]


@pytest.mark.parametrize("prediction", ["x0", "eps"])
def test_perfect_prediction_has_zero_loss_and_consistent_estimates(prediction):
    x, numbers, batch, excited, spec = _cluster()
    free = (~excited)[:, None].to(x.dtype)
    gen = torch.Generator().manual_seed(0)
    noise = (torch.randn(6, 3, generator=gen, dtype=x.dtype) * free, torch.randn(6, 2, generator=gen, dtype=x.dtype))
    noise = (noise[0], noise[1] * free)
    h = one_hot_species(numbers).to(x.dtype)
    oracle = _Oracle(prediction, x / COORD_SCALE, h, noise)
    t = torch.tensor([0.37], dtype=x.dtype)
    loss = diffusion_loss(oracle, x, numbers, spec, batch, excited, t=t, noise=noise)
    assert float(loss) == pytest.approx(0.0, abs=1e-20)
    # the two estimates returned by clean_and_noise satisfy z = alpha x0 + sigma eps (free atoms)
    a, s = alpha_sigma(t)
    zx = (a * x / COORD_SCALE + s * noise[0]) * free
    zh = (a * h + s * noise[1]) * free + h * (1 - free)
    x0, h0, eps_x, eps_h = clean_and_noise(oracle, zx, zh, t, spec, batch, excited)
    torch.testing.assert_close(x0, x / COORD_SCALE * free)
    torch.testing.assert_close(eps_x, noise[0])
    torch.testing.assert_close(h0[1:], h[1:])
    torch.testing.assert_close(eps_h[1:], noise[1][1:])


def test_x0_loss_is_min_snr_weighted():
    """A clean estimate off by d (scaled units) on one atom costs min(SNR, gamma)·d² over the 5 free atoms."""
    x, numbers, batch, excited, spec = _cluster()
    h = one_hot_species(numbers).to(x.dtype)
    wrong = x / COORD_SCALE
    wrong = wrong.clone()
    wrong[2, 1] += 0.3
    oracle = _Oracle("x0", wrong, h, None)
    for t_value in (0.05, 0.6):  # SNR above and below gamma
        t = torch.tensor([t_value], dtype=x.dtype)
        a, s = alpha_sigma(t)
        expected = min(float(a**2 / s**2), MIN_SNR_GAMMA) * 0.3**2 / 5
        loss = diffusion_loss(oracle, x, numbers, spec, batch, excited, t=t)
        assert float(loss) == pytest.approx(expected, rel=1e-9)


def test_checkpoint_without_new_options_loads_as_noise_predictor(tmp_path):
    """Models saved before x0-prediction, radial bases and Fourier time features keep their meaning."""
    old = EGNNConfig(n_spectrum=20, hidden=16, layers=2, spectrum_embed=4, n_rbf=0, n_time_fourier=0, prediction="eps")
    model = SiteDenoiser(old)
    path = tmp_path / "old.pt"
    save_site_model(path, model, np.linspace(-1, 19, 20), 20.0, {"steps": 0})
    payload = torch.load(path, weights_only=True)
    for key in ("prediction", "n_rbf", "n_time_fourier", "rbf_max"):
        payload["config"].pop(key)
    torch.save(payload, path)
    loaded, _ = load_site_model(path)
    assert loaded.config.prediction == "eps" and loaded.config.n_rbf == 0 and loaded.config.n_time_fourier == 0
    for a, b in zip(model.state_dict().values(), loaded.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b)


def test_unknown_prediction_refused():
    with pytest.raises(ValueError, match="prediction"):
        EGNNConfig(prediction="v")
    assert len(SPECIES) == 2


class _FavoursAluminium(torch.nn.Module):
    """An x0 network of species (O, Al, Si) whose clean species estimate is Al 1.0, Si 0.5, O 0 for every atom."""

    def __init__(self):
        super().__init__()
        self.config = EGNNConfig(n_spectrum=20, species=(8, 13, 14))
        self.anchor = torch.nn.Parameter(torch.zeros(1))  # the sampler reads the device from the parameters

    def forward(self, x, h, t, spectrum, batch, excited):
        return x, torch.tensor([0.0, 1.0, 0.5]).expand(len(x), 3)


def test_sampling_takes_the_best_allowed_species_and_refuses_species_the_model_lacks():
    from specguide.sites.diffusion import sample_clusters

    model, spectrum = _FavoursAluminium(), torch.rand(1, 20)
    free = sample_clusters(model, spectrum, n_atoms=[7], samples=3, steps=50, seed=0)
    only = sample_clusters(model, spectrum, n_atoms=[7], samples=3, steps=50, seed=0, allowed_species=(8, 14))
    for (pos_free, num_free), (pos_only, num_only) in zip(free, only, strict=True):
        assert num_free.tolist() == [8] + [13] * 6 and num_only.tolist() == [8] + [14] * 6
        np.testing.assert_array_equal(pos_free, pos_only)  # the restriction changes the species only
    for bad in ((14,), (8, 26)):
        with pytest.raises(ValueError, match="species"):
            sample_clusters(model, spectrum, n_atoms=[7], samples=1, steps=2, allowed_species=bad)


def test_a_config_needs_distinct_species_and_counts_its_channels_from_them():
    assert EGNNConfig().species == SPECIES and EGNNConfig().n_species == 2
    assert EGNNConfig(species=(8, 13, 14)).n_species == 3
    with pytest.raises(ValueError, match="distinct"):
        EGNNConfig(species=(8, 8))
