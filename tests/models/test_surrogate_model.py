"""Spectrum surrogate: exact invariances, checkpoints, and training that never splits a structure."""

import ase.build
import numpy as np
import pytest
import torch

from specguide.data.spectra import load_spectra_dataset
from specguide.graph import batch_from_atoms
from specguide.models.surrogate import SpectrumSurrogate, SurrogateConfig, load_surrogate, save_surrogate
from specguide.models.surrogate_training import train_surrogate


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

    fixed = train_surrogate(dataset, tmp_path / "f.pt", config=config, max_steps=2, val_names=["s1", "s3"],
                            progress=False)  # fmt: skip
    _, meta = load_surrogate(fixed)
    assert meta["data"]["val_names"] == ["s1", "s3"] and "s1" not in meta["data"]["train_names"]


def test_cosine_learning_rate_decays_to_the_floor_over_the_horizon(tiny_spectra_dir, tmp_path):
    import csv
    import math

    from specguide.models.surrogate_training import cosine_lr

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
