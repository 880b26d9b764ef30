"""Surrogate observable: mean over the absorbing species (or chosen sites), batched, gradient = finite difference."""

import ase
import ase.build
import pytest
import torch

from specguide.graph import batch_from_atoms
from specguide.models.surrogate import SpectrumSurrogate, SurrogateConfig
from specguide.observables.surrogate import SurrogateSpectrum


@pytest.fixture(scope="module")
def observable():
    torch.manual_seed(0)
    net = SpectrumSurrogate(SurrogateConfig(species=(6, 14), n_grid=8, hidden=16, n_layers=2)).double()
    meta = {"kind": "xanes", "absorber": 6, "grid": list(range(8)), "grid_unit": "index", "path": "toy.pt"}
    return SurrogateSpectrum(net, meta)


def _sic(seed):
    atoms = ase.build.bulk("SiC", "zincblende", 4.36, cubic=True).repeat((2, 1, 1))
    atoms.rattle(0.1, seed=seed)
    return atoms


def test_mean_over_absorbers_and_sites_batched(observable):
    frames = [_sic(1), _sic(2)]
    positions, cells, numbers, batch = batch_from_atoms(frames)
    positions, cells = positions.double(), cells.double()
    spectra = observable(positions, cells, numbers, batch)
    per_atom = observable.per_atom(positions, cells, numbers, batch)
    assert spectra.shape == (2, 8)
    for s in range(2):
        carbon = (batch == s) & (numbers == 6)
        torch.testing.assert_close(spectra[s], per_atom[carbon].mean(0))
        alone = observable(*[t.double() if t.is_floating_point() else t for t in batch_from_atoms([frames[s]])])
        torch.testing.assert_close(alone[0], spectra[s])
    carbons = [int(i) for i in torch.nonzero(numbers[batch == 0] == 6)[:2, 0]]
    subset = SurrogateSpectrum(observable.network, observable.meta, sites=carbons)
    local = torch.tensor(carbons)
    torch.testing.assert_close(subset(positions, cells, numbers, batch)[1], per_atom[16 + local].mean(0))
    with pytest.raises(ValueError, match="must all be C"):
        silicon = int(torch.nonzero(numbers[:8] == 14)[0, 0])
        SurrogateSpectrum(observable.network, observable.meta, sites=[silicon])(positions, cells, numbers, batch)


def test_gradient_matches_finite_differences(observable):
    positions, cells, numbers, batch = batch_from_atoms([_sic(3)])
    positions = positions.double().requires_grad_(True)
    cells = cells.double()
    weights = torch.linspace(-1, 1, 8, dtype=torch.float64)

    def value(x):
        return (observable(x, cells, numbers, batch) * weights).sum()

    (gradient,) = torch.autograd.grad(value(positions), positions)
    h = 1e-5
    with torch.no_grad():
        for atom, axis in [(0, 0), (3, 1), (10, 2), (15, 0)]:
            step = torch.zeros_like(positions)
            step[atom, axis] = h
            numeric = (value(positions + step) - value(positions - step)) / (2 * h)
            assert abs(float(numeric) - float(gradient[atom, axis])) < 1e-6 + 1e-4 * abs(float(numeric))
    assert float(gradient.abs().max()) > 1e-6
