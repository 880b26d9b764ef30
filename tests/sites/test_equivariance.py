"""E(3) equivariance of the EGNN denoiser and of a sampling step; permutation invariance of the loss."""

import pytest
import torch
from scipy.spatial.transform import Rotation

from specguide.models.egnn import EGNNConfig, SiteDenoiser, full_edges
from specguide.sites.diffusion import SPECIES, denoise_step, diffusion_loss, one_hot_species

torch.set_num_threads(1)


def _model(seed=0, prediction="x0"):
    torch.manual_seed(seed)
    config = EGNNConfig(n_spectrum=20, hidden=32, layers=3, spectrum_embed=8, max_atoms=12, prediction=prediction)
    model = SiteDenoiser(config)
    # make the coordinate updates non-trivial (the default init is tiny)
    for layer in model.layers:
        torch.nn.init.normal_(layer.coord[-1].weight, std=0.3)
    return model.double().eval()


def _graphs():
    torch.manual_seed(3)
    counts = torch.tensor([5, 7])
    batch = torch.repeat_interleave(torch.arange(2), counts)
    excited = torch.zeros(12, dtype=torch.bool)
    excited[[0, 5]] = True
    x = torch.randn(12, 3, dtype=torch.float64)
    x[excited] = 0.0
    h = torch.randn(12, len(SPECIES), dtype=torch.float64)
    spec = torch.rand(2, 20, dtype=torch.float64)
    return x, h, spec, batch, excited


def _rotation():
    return torch.tensor(Rotation.from_euler("xyz", [0.3, -1.1, 2.0]).as_matrix())


def test_full_edges_all_pairs_within_graphs():
    batch = torch.tensor([0, 0, 0, 1, 1])
    src, dst = full_edges(batch)
    pairs = set(zip(src.tolist(), dst.tolist(), strict=True))
    assert pairs == {(i, j) for i in range(3) for j in range(3) if i != j} | {(3, 4), (4, 3)}


@pytest.mark.parametrize("prediction", ["x0", "eps"])
def test_denoiser_rotation_translation_equivariant(prediction):
    model = _model(prediction=prediction)
    x, h, spec, batch, excited = _graphs()
    t = torch.tensor([0.3, 0.8], dtype=torch.float64)
    rot, shift = _rotation(), torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    ex, eh = model(x, h, t, spec, batch, excited)
    ex2, eh2 = model(x @ rot.T + shift, h, t, spec, batch, excited)
    assert (ex - x * (~excited)[:, None]).abs().max() > 1e-3  # not trivially zero or the input
    if prediction == "eps":  # noise is a displacement: rotates, does not translate
        torch.testing.assert_close(ex2, ex @ rot.T)
    else:  # clean positions rotate and translate with the input (excited atom pinned at 0)
        torch.testing.assert_close(ex2, (ex @ rot.T + shift) * (~excited)[:, None])
    torch.testing.assert_close(eh2, eh)
    assert (ex[excited] == 0).all()


@pytest.mark.parametrize("prediction", ["x0", "eps"])
def test_sampling_step_equivariant(prediction):
    model = _model(1, prediction)
    x, h, spec, batch, excited = _graphs()
    gen = torch.Generator().manual_seed(5)
    noise = (
        torch.randn(12, 3, generator=gen, dtype=torch.float64),
        torch.randn(12, 2, generator=gen, dtype=torch.float64),
    )
    rot, shift = _rotation(), torch.tensor([0.4, 0.2, -3.0], dtype=torch.float64)
    x1, h1 = denoise_step(model, x, h, 0.7, 0.65, spec, batch, excited, noise)
    x2, h2 = denoise_step(model, x @ rot.T + shift, h, 0.7, 0.65, spec, batch, excited, (noise[0] @ rot.T, noise[1]))
    assert (x1 - x).abs().max() > 1e-3
    torch.testing.assert_close(x2, x1 @ rot.T + shift)
    torch.testing.assert_close(h2, h1)


@pytest.mark.parametrize("prediction", ["x0", "eps"])
def test_loss_permutation_invariant(prediction):
    model = _model(2, prediction).float()
    x, _, spec, batch, excited = _graphs()
    x, spec = x.float(), spec.float()
    numbers = torch.tensor([8, 14, 14, 8, 8, 8, 14, 14, 8, 14, 8, 14])
    gen = torch.Generator().manual_seed(0)
    eps = (torch.randn(12, 3, generator=gen), torch.randn(12, 2, generator=gen))
    t = torch.tensor([0.4, 0.9])
    loss = diffusion_loss(model, x, numbers, spec, batch, excited, t=t, noise=eps)
    perm = torch.cat([torch.tensor([2, 0, 4, 1, 3]), 5 + torch.tensor([6, 2, 0, 5, 1, 4, 3])])
    loss_p = diffusion_loss(
        model, x[perm], numbers[perm], spec, batch, excited[perm], t=t, noise=(eps[0][perm], eps[1][perm])
    )
    torch.testing.assert_close(loss_p, loss)
    assert loss.shape == (2,) and (loss > 0).all()
    assert one_hot_species(numbers).sum(1).eq(1).all()
