"""The bundled FEFF-trained C K-edge XANES surrogate (``C-K_XANES``): loads by name with its energy grid, beats the
trivial baselines on the structures it never saw (their FEFF spectra are the independent reference), and tells
sp² from sp³ carbon as FEFF does."""

import numpy as np
import pytest
import torch

from specguide.datasets.spectra import load_spectra_bundle
from specguide.graph import batch_from_atoms
from specguide.pretrained import bundled_surrogates, default_surrogates_dir, load_md_dataset, load_surrogate
from specguide.simulate.feff import XANES_GRID_EV
from specguide.training.surrogate import spectrum_baselines

PI_STAR = (-6.0, 2.0)  # eV above FEFF's Fermi level: the π* resonance of sp² carbon sits here


@pytest.fixture(scope="module")
def bundle():
    net, meta = load_surrogate("C-K_XANES")
    return net, meta, load_spectra_bundle(default_surrogates_dir() / "C-K_XANES_data.npz")


def _predict(net, atoms) -> np.ndarray:
    with torch.no_grad():
        return net(*batch_from_atoms([atoms], dtype=torch.float32)).double().numpy()


def _rel_l2(a, b):
    return np.linalg.norm(a - b, axis=-1) / np.linalg.norm(b, axis=-1)


def test_loads_by_name_on_the_feff_energy_grid(bundle):
    net, meta, _ = bundle
    assert "C-K_XANES" in bundled_surrogates()
    assert meta["kind"] == "xanes" and meta["absorber_symbol"] == "C" and meta["grid_unit"] == "eV"
    np.testing.assert_allclose(meta["grid"], XANES_GRID_EV, atol=1e-5)
    atoms = load_md_dataset("a-C_2.0", split="test")[0]
    per_atom = _predict(net, atoms)
    assert per_atom.shape == (len(atoms), len(XANES_GRID_EV)) and np.isfinite(per_atom).all()


def test_held_out_structures_beat_the_coordination_lookup_and_the_density_mean(bundle):
    """The validation structures (never trained on) against their FEFF spectra: per atom below the mean training
    spectrum of sites with the same coordination, structure mean below the mean of the training structures at
    the same density (the model card's claims)."""
    net, meta, dataset = bundle
    train = [dataset.names.index(n) for n in meta["data"]["train_names"]]
    held = [dataset.names.index(n) for n in meta["data"]["val_names"] if n.startswith("a-C_")]
    atom, structure = [], []
    for k in held:
        predicted = _predict(net, dataset.structures[k])[dataset.sites[k]]
        truth = dataset.spectra[k].astype(float)
        atom.append(_rel_l2(predicted, truth))
        structure.append(float(_rel_l2(predicted.mean(0), truth.mean(0))))
    baselines = spectrum_baselines(dataset, train, held)
    assert np.concatenate(atom).mean() < baselines["cn_lookup_rel_l2_atom"]
    assert np.mean(structure) < baselines["density_mean_rel_l2_structure"]


def test_graphite_has_the_pi_star_resonance_that_diamond_lacks(bundle):
    """Rattled graphite (sp²) against rattled diamond (sp³), copies held out from training: the predicted
    intensity in the π* window is larger for graphite, as in their FEFF spectra, by at least half FEFF's gap."""
    net, _, dataset = bundle
    window = (XANES_GRID_EV > PI_STAR[0]) & (XANES_GRID_EV < PI_STAR[1])
    predicted, feff = {}, {}
    for name in ("graphite_rattled1", "diamond_rattled1"):
        k = dataset.names.index(name)
        predicted[name] = _predict(net, dataset.structures[k])[:, window].mean()
        feff[name] = dataset.spectra[k][:, window].mean()
    feff_gap = feff["graphite_rattled1"] - feff["diamond_rattled1"]
    assert feff_gap > 0
    assert predicted["graphite_rattled1"] - predicted["diamond_rattled1"] > 0.5 * feff_gap
