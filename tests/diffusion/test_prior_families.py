"""Bundled prior families: ``--prior a-Si`` at a density loads the member trained nearest to that density."""

import json

import pytest

from specguide import pretrained
from specguide.diffusion.sampler import generate
from specguide.models.score import ScoreNetwork, ScoreNetworkConfig
from specguide.pretrained import load_prior, prior_families, resolve_prior
from specguide.training.prior import save_prior


@pytest.fixture
def family_dir(tmp_path, monkeypatch):
    """A bundle folder with two tiny priors, ``x@1.0`` and ``x`` (3.0 g/cm³), forming the family ``x``."""
    for name, density in (("x@1.0", 1.0), ("x", 3.0)):
        network = ScoreNetwork(ScoreNetworkConfig(species=(14,), hidden=8, n_layers=1, cutoff=3.0))
        save_prior(tmp_path / f"{name}.pt", network, data={"density_g_cm3": [density, density]}, training={})
    (tmp_path / "families.json").write_text(json.dumps({"x": {"1.0": "x@1.0", "3.0": "x"}}))
    monkeypatch.setattr(pretrained, "BUNDLED_PRIORS_DIR", tmp_path)
    monkeypatch.setattr(pretrained, "PRIOR_FAMILIES_FILE", tmp_path / "families.json")
    return tmp_path


def test_family_name_resolves_to_the_nearest_member(family_dir):
    assert prior_families() == {"x": {1.0: "x@1.0", 3.0: "x"}}
    assert resolve_prior("x", 1.2) == family_dir / "x@1.0.pt"
    assert resolve_prior("x", 1.9) == family_dir / "x@1.0.pt"
    assert resolve_prior("x", 2.1) == family_dir / "x.pt"
    assert resolve_prior("x") == family_dir / "x.pt"  # no density: the file of that name
    assert resolve_prior("x@1.0", 2.9) == family_dir / "x@1.0.pt"  # a member named directly stays itself
    path = str(family_dir / "x.pt")
    assert resolve_prior(path, 1.0) == family_dir / "x.pt"  # a file path is never redirected
    _, meta = load_prior("x", density_g_cm3=0.8)
    assert meta["path"] == str(family_dir / "x@1.0.pt") and meta["data"]["density_g_cm3"] == [1.0, 1.0]


def test_generate_records_the_member_it_used(family_dir):
    kwargs = dict(n_atoms=8, n_replicas=1, steps=2, seed=0, progress=False, d_min=None)
    run = generate("x", density_g_cm3=1.1, **kwargs)
    assert run.config["prior_file"] == str(family_dir / "x@1.0.pt")
    # a start from given structures (rescaled to the density asked for) follows that density too
    again = generate("x", density_g_cm3=2.8, init=run.structures[0], t_start=0.1,
                     **{k: v for k, v in kwargs.items() if k != "n_atoms"})  # fmt: skip
    assert again.config["prior_file"] == str(family_dir / "x.pt")


def test_bundled_families_point_at_bundled_priors_trained_at_their_density():
    families = prior_families()
    assert "a-Si" in families  # shipped with the package
    for name, members in families.items():
        for density, member in members.items():
            _, meta = load_prior(member)
            low, high = meta["data"]["density_g_cm3"]
            assert low - 0.05 <= density <= high + 0.05, f"{name}: member {member} was not trained at {density}"
