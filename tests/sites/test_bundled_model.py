"""The bundled O K-edge site model and data set load, are small, and generate well-formed clusters."""

import numpy as np
import torch

from specguide.pretrained import default_sites_dir, load_site_model
from specguide.sites.dataset import load_site_dataset
from specguide.sites.diffusion import sample_clusters

torch.set_num_threads(1)


def test_bundled_files_small_and_consistent():
    for name in ("O-K_SiO.pt", "O-K_SiO.npz"):
        assert (default_sites_dir() / name).stat().st_size < 2e6
    data = load_site_dataset()
    model, meta = load_site_model("O-K_SiO")
    np.testing.assert_allclose(meta["grid"], data.grid, atol=1e-5)
    assert model.config.species == tuple(meta["species"]) == (8, 14)  # O (the absorber) first, then Si
    np.testing.assert_allclose(np.trapezoid(data.spectra, data.grid, axis=1), 1.0, rtol=1e-3)
    # split by material: the held-out crystal and the amorphous sites were not trained on
    assert "alpha-cristobalite" not in meta["log"]["materials"] and "a-SiO2_2.2" not in meta["log"]["materials"]
    assert all(np.allclose(c.positions[0], 0.0) and c.numbers[0] == 8 for c in data.clusters)


def test_bundled_model_generates_clusters():
    data = load_site_dataset()
    model, meta = load_site_model("O-K_SiO")
    k = int(np.flatnonzero(data.material == "alpha-quartz")[0])
    spec = torch.tensor(data.spectra[k][None] * meta["spectrum_scale"])
    out = sample_clusters(model, spec, n_atoms=[len(data.clusters[k])], samples=2, steps=20, seed=1)
    for pos, num in out:
        assert pos.shape == (15, 3) and num[0] == 8 and np.isfinite(pos).all()
        assert np.allclose(pos[0], 0.0) and set(num.tolist()) <= {8, 14}
