"""The bundled a-Si prior: loads by name, records its training data, and generates sane structures."""

import numpy as np
import pytest

from specguide.diffusion.sampler import generate
from specguide.pretrained import bundled_priors, load_prior


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
    kwargs = dict(density_g_cm3=2.33, n_atoms=64, n_replicas=2, steps=48, seed=3, progress=False, preset="fast")
    first = generate("a-Si", **kwargs).structures
    second = generate("a-Si", **kwargs).structures
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a.positions, b.positions)
        density = a.get_masses().sum() / a.get_volume() / 0.602214076
        assert abs(density - 2.33) < 1e-6 and set(a.get_chemical_symbols()) == {"Si"}
        distances = a.get_all_distances(mic=True)[np.triu_indices(len(a), 1)]
        assert distances.min() > 1.5  # the veto's floor (0.7 × covalent radii = 1.55 Å) holds


def test_bundled_a_c_prior_covers_its_densities_and_bonds_like_carbon():
    """The a-C prior (all five MD densities): records its data range; with restarts at 2.0 g/cm³ no carbon is
    left one-fold and the mean coordination (1.85 Å) is that of a mostly sp2 network."""
    assert "a-C" in bundled_priors()  # shipped with the package: its absence is a packaging error, not a skip
    _, meta = load_prior("a-C")
    assert meta["data"]["elements"] == ["C"]
    np.testing.assert_allclose(meta["data"]["density_g_cm3"], [1.5, 3.5], rtol=1e-5)
    (atoms,) = generate("a-C", density_g_cm3=2.0, n_atoms=216, steps=128, seed=1, n_restarts=4, progress=False,
                        preset="fast", cn_range={"C": (2, 4)}).structures  # fmt: skip
    distances = atoms.get_all_distances(mic=True)
    np.fill_diagonal(distances, np.inf)
    coordination = (distances < 1.85).sum(axis=1)
    assert distances.min() > 1.0  # the default veto: 0.7 × covalent radii = 1.06 Å
    assert (coordination == 1).sum() == 0 and (coordination == 0).sum() == 0
    assert 2.7 < coordination.mean() < 3.4


def test_bundled_a_sio2_prior_records_silica_and_generates_sio2():
    """The a-SiO2 prior: records its data (O and Si at 2.2 g/cm³) and generates SiO2 cells with the veto held."""
    assert "a-SiO2" in bundled_priors()  # shipped with the package
    network, meta = load_prior("a-SiO2")
    assert meta["data"]["elements"] == ["O", "Si"] and tuple(network.config.species) == (8, 14)
    np.testing.assert_allclose(meta["data"]["density_g_cm3"], [2.2, 2.2], rtol=1e-5)
    (atoms,) = generate("a-SiO2", density_g_cm3=2.2, n_atoms=48, steps=32, progress=False, preset="fast").structures
    symbols = atoms.get_chemical_symbols()
    assert symbols.count("Si") == 16 and symbols.count("O") == 32
    distances = atoms.get_all_distances(mic=True)[np.triu_indices(len(atoms), 1)]
    assert distances.min() > 0.7 * 2 * 0.66 - 1e-6  # the veto's floor: 0.7 × O–O covalent radii
    assert meta["chemistry"]["composition"] == pytest.approx({"O": 2 / 3, "Si": 1 / 3}, abs=1e-5)  # the default


def test_the_quality_preset_uses_the_priors_recommendation_chemistry_and_a_tightening_veto():
    """Defaults: corrector steps and local restarts as the prior records; restarts re-sample the coordination
    classes the MD holds less often; the veto ends at the MD's shortest pair; nothing closer than that is left."""
    run = generate("a-Si", density_g_cm3=2.5, n_atoms=64, n_replicas=1, steps=16, seed=0, progress=False)
    config, chemistry = run.config, run.chemistry
    assert (config["preset"], config["corrector_steps"], config["n_restarts"], config["restart_mode"]) == (
        "quality", 4, 12, "local")  # fmt: skip
    assert config["cn_reference"]["Si"] == chemistry.coordination_at(2.5)["Si"] and config["cn_range"] is None
    assert config["d_min"]["final"]["Si-Si"] == pytest.approx(chemistry.shortest["Si-Si"])
    assert config["bond_cutoffs"] == {"Si-Si": chemistry.bond_cutoffs["Si-Si"]}
    fast = generate("a-Si", density_g_cm3=2.5, n_atoms=64, steps=16, preset="fast", progress=False).config
    assert (fast["corrector_steps"], fast["n_restarts"]) == (0, 0)
