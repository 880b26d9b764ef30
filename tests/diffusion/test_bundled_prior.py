"""The bundled a-Si prior: loads by name, records its training data, and generates sane structures."""

import numpy as np
import pytest

from specguide.diffusion.sampling import generate
from specguide.diffusion.training import bundled_priors, load_prior


@pytest.fixture(scope="module")
def prior():
    if "a-Si" not in bundled_priors():
        pytest.skip("no bundled a-Si prior in this checkout")
    return load_prior("a-Si")


def test_checkpoint_records_data_and_hyperparameters(prior):
    network, meta = prior
    assert meta["data"]["elements"] == ["Si"]
    np.testing.assert_allclose(meta["data"]["density_g_cm3"], [2.5, 2.5], rtol=1e-5)
    assert meta["network"]["cutoff"] == network.config.cutoff == 4.2
    assert meta["k"] == 0.8 and meta["specguide_version"]


def test_generation_is_physical_and_reproducible():
    kwargs = dict(density_g_cm3=2.33, n_atoms=64, n_replicas=2, steps=48, seed=3, progress=False)
    first = generate("a-Si", **kwargs)
    second = generate("a-Si", **kwargs)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a.positions, b.positions)
        density = a.get_masses().sum() / a.get_volume() / 0.602214076
        assert abs(density - 2.33) < 1e-6 and set(a.get_chemical_symbols()) == {"Si"}
        distances = a.get_all_distances(mic=True)[np.triu_indices(len(a), 1)]
        assert distances.min() > 1.5  # the default veto (0.7 × covalent radii = 1.55 Å) holds
