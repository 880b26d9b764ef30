"""Measured XAS: edge energy, Larch-style normalisation, and the fitted shift and broadening, against known answers."""

import math

import numpy as np
import pytest
import torch
from scipy.special import erf

from specguide.observables.xas import (
    Alignment,
    AlignmentGrid,
    broadening_matrix,
    find_e0,
    looks_normalized,
    normalize,
    shift_matrix,
)


def raw_edge(energy, e0=285.0, step=0.8, width=1.2, slope=-0.002, offset=0.35):
    """μ(E) = a line + step × an error-function edge at e0 (its derivative is largest at e0)."""
    return offset + slope * (energy - 270.0) + step * 0.5 * (1.0 + erf((energy - e0) / width))


def test_e0_is_the_largest_derivative_and_normalisation_recovers_the_edge_step():
    energy = np.arange(260.0, 340.0, 0.1)
    mu = raw_edge(energy)
    assert find_e0(energy, mu) == pytest.approx(285.0, abs=0.1)
    done = normalize(energy, mu)
    assert done.e0 == pytest.approx(285.0, abs=0.1) and done.step == pytest.approx(0.8, rel=1e-3)
    expected = 0.5 * (1.0 + erf((energy - 285.0) / 1.2))  # the edge alone, unit step, no background
    assert np.abs(done.norm - expected).max() < 2e-3
    assert looks_normalized(energy, done.norm, done.e0) and not looks_normalized(energy, mu, done.e0)
    assert done.ranges["nnorm"] == 0  # a 35 eV post-edge range (20…55 eV): a constant, as Larch chooses


def test_a_lone_spike_does_not_move_e0():
    energy = np.arange(260.0, 340.0, 0.1)
    mu = raw_edge(energy)
    mu[100] += 5.0  # one bad point
    assert find_e0(energy, mu) == pytest.approx(285.0, abs=0.1)


def test_shift_and_broadening_matrices_do_what_they_say():
    grid = np.arange(-10.0, 40.0, 0.1)
    peak = np.exp(-0.5 * ((grid - 5.0) / 0.3) ** 2)
    moved = shift_matrix(grid, 1.5) @ peak
    assert grid[np.argmax(moved)] == pytest.approx(6.5, abs=0.05)
    fwhm = 1.0
    wide = broadening_matrix(grid, gaussian=fwhm) @ peak
    sigma = math.hypot(0.3, fwhm / (2 * math.sqrt(2 * math.log(2))))  # Gaussian widths add in quadrature
    expected = 0.3 / sigma * np.exp(-0.5 * ((grid - 5.0) / sigma) ** 2)
    assert np.abs(wide - expected).max() < 1e-3


def test_alignment_finds_the_shift_and_broadening_of_the_data():
    grid = np.arange(-10.0, 40.0, 0.5)
    model = 1.0 / (1.0 + np.exp(-(grid - 2.0))) + 0.8 * np.exp(-0.5 * ((grid - 6.0) / 0.6) ** 2)
    data = shift_matrix(grid, 2.4) @ broadening_matrix(grid, gaussian=1.5) @ model
    alignment = Alignment(grid, AlignmentGrid.span(None, None, 0.0))

    def loss(candidates):
        return ((candidates - torch.as_tensor(data)) ** 2).mean(-1)

    alignment.choose(torch.as_tensor(model), loss)
    assert alignment.shift == pytest.approx(2.4, abs=0.2) and alignment.gaussian == pytest.approx(1.5, abs=0.25)
    aligned = alignment.apply(torch.as_tensor(model)[None])[0].numpy()
    assert np.abs(aligned - data).max() < 0.02


def test_a_measured_xanes_file_in_absolute_ev_is_normalised_and_aligned(tiny_spectra_dir, tmp_path):
    """A raw μ(E) in absolute eV against a surrogate on E − E_F: normalised, put on E0, shift fitted."""
    import ase.io

    from specguide.datasets.spectra import load_spectra_dataset
    from specguide.graph import batch_from_atoms
    from specguide.models.surrogate import SurrogateConfig
    from specguide.observables.measured import load_target
    from specguide.observables.surrogate import SurrogateSpectrum
    from specguide.training.surrogate import train_surrogate

    dataset = load_spectra_dataset([tiny_spectra_dir / "structures"], [tiny_spectra_dir / "spectra"])
    grid_ev = np.linspace(-10.0, 40.0, dataset.n_grid)
    checkpoint = tmp_path / "xanes_ev.pt"
    config = SurrogateConfig(species=(14,), n_grid=dataset.n_grid, hidden=16, n_layers=2, cutoff=3.0)
    train_surrogate(dataset, checkpoint, kind="xanes", grid=grid_ev, grid_unit="eV", max_epochs=2, config=config,
                    progress=False)  # fmt: skip
    observable = SurrogateSpectrum(checkpoint)
    atoms = ase.io.read(tiny_spectra_dir / "structures" / "s1.vasp")
    with torch.no_grad():
        model = observable(*batch_from_atoms([atoms]))[0].numpy().astype(float)
    # the "measurement": the model's spectrum moved by 3 eV, broadened, put at E0 = 284 eV on a sloping background
    energy = np.arange(270.0, 330.0, 0.25)
    relative = np.interp(energy - 284.0 - 3.0, grid_ev, model, left=model[0], right=model[-1])
    mu = 0.2 + 0.001 * (energy - 270.0) + 0.5 * np.clip(relative, 0, None)
    path = tmp_path / "film.xmu"
    path.write_text("# energy mu\n" + "\n".join(f"{e:.3f} {m:.6f}" for e, m in zip(energy, mu)))
    target = load_target(f"xanes:{path}:surrogate={checkpoint},e0=284", half_cell=5.0)
    notes = " ".join(target.metadata["notes"])
    assert "normalised" in notes and "E0 = 284.00 eV" in notes and target.alignment is not None
    with torch.no_grad():
        target.fitted(torch.as_tensor(model)[None], realign=True)
    assert target.alignment.shift == pytest.approx(3.0, abs=0.6)
    measured = target.metadata["measured"]
    assert measured["e0_eV"] == 284.0
    np.testing.assert_allclose(measured["x"], energy) and np.testing.assert_allclose(measured["y"], mu)
