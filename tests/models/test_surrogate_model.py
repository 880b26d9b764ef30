"""Spectrum surrogate: exact invariances, checkpoints, and training that never splits a structure."""

import ase.build
import numpy as np
import pytest
import torch

from specguide.datasets.spectra import load_spectra_dataset
from specguide.graph import batch_from_atoms, neighbor_graph
from specguide.models.surrogate import SpectrumSurrogate, SurrogateConfig
from specguide.pretrained import load_surrogate
from specguide.training.surrogate import save_surrogate, train_surrogate


def _structure():
    atoms = ase.build.bulk("C", "diamond", 3.57, cubic=True).repeat(2)
    atoms.rattle(0.15, seed=1)
    return atoms


def _network(seed=0):
    torch.manual_seed(seed)
    net = SpectrumSurrogate(SurrogateConfig(species=(6,), n_grid=12, hidden=16, n_layers=2)).double()
    # non-trivial normalisation so the buffers matter
    net.set_normalisation(torch.linspace(0, 1, 12), torch.linspace(0.5, 2, 12))
    return net


def test_rotation_translation_invariance_and_permutation_equivariance():
    net = _network()
    atoms = _structure()
    positions, cells, numbers, batch = batch_from_atoms([atoms])
    positions, cells = positions.double(), cells.double()
    reference = net(positions, cells, numbers, batch)

    q, _ = torch.linalg.qr(torch.randn(3, 3, generator=torch.Generator().manual_seed(3), dtype=torch.float64))
    rotated = net(positions @ q.T, cells @ q.T, numbers, batch)  # rotation or reflection (det ±1)
    torch.testing.assert_close(rotated, reference, atol=1e-9, rtol=1e-9)

    shifted = net(positions + torch.tensor([0.7, -1.3, 2.9], dtype=torch.float64), cells, numbers, batch)
    torch.testing.assert_close(shifted, reference, atol=1e-9, rtol=1e-9)

    order = torch.randperm(len(atoms), generator=torch.Generator().manual_seed(5))
    permuted = net(positions[order], cells, numbers[order], batch)
    torch.testing.assert_close(permuted, reference[order], atol=1e-9, rtol=1e-9)
    assert reference.std(0).max() > 1e-4  # atoms in different environments get different spectra


def test_checkpoint_round_trip_and_bad_files(tmp_path):
    net = _network().float()
    path = save_surrogate(tmp_path / "s.pt", net, kind="xanes", absorber=6, grid=torch.arange(12.0),
                          grid_unit="index", data={"n": 1}, training={})  # fmt: skip
    loaded, meta = load_surrogate(path)
    assert meta["kind"] == "xanes" and meta["absorber"] == 6 and meta["grid"] == list(range(12))
    positions, cells, numbers, batch = batch_from_atoms([_structure()])
    torch.testing.assert_close(loaded(positions, cells, numbers, batch), net(positions, cells, numbers, batch))
    (tmp_path / "junk.pt").write_text("not a checkpoint")
    with pytest.raises(ValueError, match="junk.pt"):
        load_surrogate(tmp_path / "junk.pt")
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        load_surrogate(tmp_path / "missing.pt")


def test_training_splits_by_structure_and_learns(tiny_spectra_dir, tmp_path):
    dataset = load_spectra_dataset(tiny_spectra_dir / "structures", tiny_spectra_dir / "spectra")
    config = SurrogateConfig(species=(14,), n_grid=20, hidden=32, n_layers=2)
    path = train_surrogate(dataset, tmp_path / "s.pt", config=config, max_steps=200, val_fraction=0.4,
                           progress=False, val_every_n_steps=200, noise_max=0.2)  # fmt: skip
    _, meta = load_surrogate(path)
    train, val = set(meta["data"]["train_names"]), set(meta["data"]["val_names"])
    assert train and val and not train & val and train | val == set(dataset.names)
    assert meta["grid_unit"] == "index" and meta["absorber"] == 14
    validation = meta["training"]["validation"]
    # clearly better than predicting the training sites' mean spectrum for every validation atom
    y_train = np.concatenate([dataset.spectra[dataset.names.index(n)] for n in train])
    y_val = np.concatenate([dataset.spectra[dataset.names.index(n)] for n in val])
    scale_sq = (y_train.std(0) ** 2).mean()
    baseline = float((((y_val - y_train.mean(0)) ** 2) / scale_sq).mean())
    assert validation["val/loss"] < 0.5 * baseline, (validation, baseline)
    assert set(validation) >= {"val/rmse_atom", "val/rel_l2_atom", "val/rel_l2_structure"}
    baselines = meta["training"]["baselines"]
    assert validation["val/rel_l2_atom_over_cn_lookup"] == pytest.approx(
        validation["val/rel_l2_atom"] / baselines["cn_lookup_rel_l2_atom"]
    )

    fixed = train_surrogate(dataset, tmp_path / "f.pt", config=config, max_steps=2, val_names=["s1", "s3"],
                            progress=False)  # fmt: skip
    _, meta = load_surrogate(fixed)
    assert meta["data"]["val_names"] == ["s1", "s3"] and "s1" not in meta["data"]["train_names"]


def test_cosine_learning_rate_decays_to_the_floor_over_the_horizon(tiny_spectra_dir, tmp_path):
    import csv
    import math

    from specguide.training.surrogate import cosine_lr

    assert cosine_lr(1e-3, 0.0, 0.05) == pytest.approx(1e-3)
    assert cosine_lr(1e-3, 0.5, 0.05) == pytest.approx(1e-3 * (0.05 + 0.95 * 0.5))
    assert cosine_lr(1e-3, 1.0, 0.05) == pytest.approx(5e-5) == cosine_lr(1e-3, 3.0, 0.05)
    dataset = load_spectra_dataset(tiny_spectra_dir / "structures", tiny_spectra_dir / "spectra")
    config = SurrogateConfig(species=(14,), n_grid=20, hidden=16, n_layers=1)
    path = train_surrogate(dataset, tmp_path / "c.pt", config=config, max_steps=40, val_fraction=0.4, batch_size=1,
                           progress=False, lr_schedule="cosine", lr=2e-3)  # fmt: skip
    _, meta = load_surrogate(path)
    assert meta["training"]["lr_schedule"] == "cosine"
    rows = list(csv.DictReader(open(next((tmp_path / "c_logs").rglob("metrics.csv")))))
    logged = [(int(r["step"]), float(r["train/lr"])) for r in rows if r.get("train/lr")]
    assert len(logged) >= 3
    for step, lr in logged:  # logged after step `step` ran at fraction step/40 (step counted from 0)
        assert lr == pytest.approx(2e-3 * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * step / 40))), rel=1e-6)
    assert logged[-1][1] < 0.2 * 2e-3
    with pytest.raises(ValueError, match="lr_schedule"):
        train_surrogate(dataset, tmp_path / "x.pt", config=config, max_steps=1, lr_schedule="linear")


def test_baselines_are_exact_when_spectra_follow_coordination_and_density():
    """Spectra that depend only on a site's coordination number (counted independently with ASE) make the
    lookup baseline exact; structure means that depend only on density make the density baseline exact; a
    crystal in a group is left out. Then one perturbed held-out spectrum gives the relative error by hand."""
    from ase.neighborlist import neighbor_list

    from specguide.datasets.spectra import SpectraDataset
    from specguide.structure import density_g_cm3
    from specguide.training.surrogate import spectrum_baselines

    rng = np.random.default_rng(0)
    grid = np.linspace(0, 1, 16)
    structures, spectra, sites, names = [], [], [], []
    for k, side in enumerate([7.0, 7.0, 7.0, 6.0, 6.0, 6.0]):
        atoms = ase.Atoms("C40", positions=rng.uniform(0, side, (40, 3)), cell=[side] * 3, pbc=True)
        cn = np.bincount(neighbor_list("i", atoms, 1.84), minlength=40)
        structures.append(atoms)
        spectra.append(np.stack([np.sin(3 * grid * (c + 1)) + 2 for c in cn]))
        sites.append(np.arange(40))
        names.append(f"s{k}")
    diamond = ase.build.bulk("C", "diamond", a=3.567, cubic=True).repeat(2)
    diamond.set_cell(diamond.cell * (216 / 40 / (diamond.get_volume() / len(diamond))) ** (1 / 3), scale_atoms=True)
    structures.append(diamond)
    spectra.append(np.tile(np.sin(3 * grid * 5) + 2, (len(diamond), 1)))  # four-fold, like the rest
    sites.append(np.arange(len(diamond)))
    names.append("diamond")
    dataset = SpectraDataset(structures, spectra, sites, names)
    train, val = [0, 1, 3, 4, 6], [2, 5]
    lookup = spectrum_baselines(dataset, train, val)
    # every coordination number of the held-out cells must have been seen for an exact lookup
    seen = {
        int(c)
        for k in train
        for c in np.bincount(neighbor_list("i", structures[k], 1.84), minlength=len(structures[k]))
    }
    held = {int(c) for k in val for c in np.bincount(neighbor_list("i", structures[k], 1.84), minlength=40)}
    assert held <= seen  # seed 0 draws cells where it holds
    assert lookup["cn_lookup_rel_l2_atom"] < 1e-6

    # density baseline: structure means set to constants by density; the held-out one off by a known vector
    flat = [np.tile(np.full(16, 1.0 if len(a) == 40 and a.cell[0, 0] == 7.0 else 2.0), (len(a), 1)) for a in structures]
    for k in range(6):  # site-to-site variation with zero mean over the 40 sites: disordered cells
        flat[k] = flat[k] + 0.2 * np.where(np.arange(40) % 2, 1.0, -1.0)[:, None] * np.cos(grid)[None]
    flat[6] = np.tile(5 + grid, (len(diamond), 1))  # a crystal far from everything: would spoil its density group
    flat[2] = flat[2] + 0.1 * np.sin(np.arange(16))[None]
    dataset = SpectraDataset(structures, flat, sites, names)
    result = spectrum_baselines(dataset, train, val)
    truth = flat[2].mean(0)
    assert abs(density_g_cm3(diamond) - density_g_cm3(structures[5])) < 1e-6  # the crystal sits in cell 5's group
    expected = (np.linalg.norm(np.ones(16) - truth) / np.linalg.norm(truth) + 0.0) / 2  # cell 5 exact
    assert result["density_mean_rel_l2_structure"] == pytest.approx(expected, rel=1e-9)


def test_angular_features_separate_planar_from_pyramidal_neighbours_that_distances_cannot():
    """A carbon with three neighbours at 1.42 Å, planar (sp2-like) or pyramidal (sp3-like), with a cutoff that
    holds only those bonds: no message passing, so the distance-only network sees identical inputs, while the
    angular invariants (exactly rotation-invariant) tell the two apart."""

    def star(height: float) -> ase.Atoms:
        angles = np.array([0.0, 2.0, 4.0]) * np.pi / 3
        radial = np.sqrt(1.42**2 - height**2)
        ring = np.column_stack([radial * np.cos(angles), radial * np.sin(angles), np.full(3, height)])
        return ase.Atoms("C4", positions=np.vstack([[0, 0, 0], ring]) + 10.0, cell=[20.0] * 3, pbc=True)

    outputs = {}
    for channels in (0, 4):
        torch.manual_seed(0)
        config = SurrogateConfig(species=(6,), n_grid=8, hidden=16, n_layers=0, cutoff=2.0, angular_channels=channels)
        net = SpectrumSurrogate(config).double()
        values = []
        for height in (0.0, 0.5):
            positions, cells, numbers, batch = batch_from_atoms([star(height)])
            values.append(net(positions.double(), cells.double(), numbers, batch)[0])
        outputs[channels] = values
    torch.testing.assert_close(outputs[0][0], outputs[0][1], atol=1e-12, rtol=0)  # distances alone: blind
    assert (outputs[4][0] - outputs[4][1]).abs().max() > 1e-6
    # the invariants themselves, by the addition theorem: three equal bonds at 120° in a plane sum to zero dipole
    # (l = 1), so B_l=1 of the centre vanishes for the planar star and not for the pyramid; l = 0 is the same
    b = {}
    for height in (0.0, 0.5):
        positions, cells, numbers, batch = batch_from_atoms([star(height)])
        graph = neighbor_graph(positions.double(), cells.double(), batch, 2.0)
        b[height] = net.angular.invariants(graph, *net.angular_inputs(graph, numbers), 4)[0].detach()
    torch.testing.assert_close(b[0.0][:, 0], b[0.5][:, 0], atol=1e-12, rtol=1e-9)
    assert b[0.0][:, 1].abs().max() < 1e-12 < b[0.5][:, 1].abs().min()
    np.testing.assert_allclose(  # the pyramid's dipole: |Σ unit vectors|² = (3 h / r)² times R_c R_d, 3 l=1 terms
        b[0.5][:, 1].numpy() / b[0.5][:, 0].numpy(), 3 * (3 * 0.5 / 1.42) ** 2 / 9, rtol=1e-9
    )

    torch.manual_seed(1)
    net = SpectrumSurrogate(SurrogateConfig(species=(6,), n_grid=12, hidden=16, n_layers=2, angular_channels=4))
    net = net.double()
    atoms = _structure()
    positions, cells, numbers, batch = batch_from_atoms([atoms])
    positions, cells = positions.double().requires_grad_(True), cells.double()
    reference = net(positions, cells, numbers, batch)
    q, _ = torch.linalg.qr(torch.randn(3, 3, generator=torch.Generator().manual_seed(3), dtype=torch.float64))
    torch.testing.assert_close(net(positions @ q.T, cells @ q.T, numbers, batch), reference, atol=1e-9, rtol=1e-9)
    # differentiable in the positions (guidance needs it): gradient matches a central finite difference
    weights = torch.randn(reference.shape, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    (grad,) = torch.autograd.grad((reference * weights).sum(), positions)
    step = torch.zeros_like(positions)
    step[5, 1] = 1e-5
    with torch.no_grad():
        plus = (net(positions + step, cells, numbers, batch) * weights).sum()
        minus = (net(positions - step, cells, numbers, batch) * weights).sum()
    assert float(grad[5, 1]) == pytest.approx(float((plus - minus) / 2e-5), rel=1e-5, abs=1e-8)
