"""Noise schedule, denoising score-matching training, EMA and the prior checkpoint format."""

import ase.build
import numpy as np
import pytest
import torch

from specguide.graph import batch_from_atoms, neighbor_graph
from specguide.models.schedule import VESchedule
from specguide.models.score import ScoreNetwork, ScoreNetworkConfig
from specguide.pretrained import PRIOR_FORMAT_VERSION, load_prior
from specguide.training.loop import EMA, StructureDataset, collate_structures, data_summary, split_by_structure
from specguide.training.prior import dsm_loss, random_rotations, rotate_structures, train_prior

TINY = ScoreNetworkConfig(species=(14,), hidden=32, n_layers=2, cutoff=3.0)


def perturbed_silicon(n: int, seed: int = 0) -> list[ase.Atoms]:
    """Diamond Si (conventional 8-atom cell x 2 = 64 atoms) with thermal-like noise and a few densities."""
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        atoms = ase.build.bulk("Si", "diamond", a=5.43 * (1 + 0.01 * (k % 3)), cubic=True).repeat((2, 2, 2))
        atoms.positions += rng.normal(scale=0.08, size=atoms.positions.shape)
        out.append(atoms)
    return out


def test_schedule_sigma_and_g2():
    schedule = VESchedule(k=0.8)
    t = torch.tensor([0.1, 0.5, 0.9], dtype=torch.float64)
    torch.testing.assert_close(schedule.sigma(t), 0.8 * t)
    h = 1e-6
    numeric = (schedule.sigma(t + h) ** 2 - schedule.sigma(t - h) ** 2) / (2 * h)
    torch.testing.assert_close(schedule.g2(t), numeric)
    assert schedule.renoise_sigma(0.0, 0.3) == pytest.approx(0.24)
    with pytest.raises(ValueError):
        VESchedule(k=0.0)


def test_rotations_are_proper_and_keep_the_structure():
    rotations = random_rotations(5, torch.Generator().manual_seed(0), dtype=torch.float64)
    eye = torch.eye(3, dtype=torch.float64).expand(5, 3, 3)
    torch.testing.assert_close(rotations @ rotations.transpose(1, 2), eye)
    torch.testing.assert_close(torch.linalg.det(rotations), torch.ones(5, dtype=torch.float64))
    structures = perturbed_silicon(2)
    positions, cells, numbers, batch = batch_from_atoms(structures)
    new_positions, new_cells = rotate_structures(positions, cells, batch, rotations[:2])
    before = torch.sort(neighbor_graph(positions, cells, batch, 4.0).distances).values
    after = torch.sort(neighbor_graph(new_positions, new_cells, batch, 4.0).distances).values
    torch.testing.assert_close(after, before)  # same periodic structure, rotated


def test_dsm_loss_decreases_on_perturbed_silicon():
    torch.manual_seed(0)
    structures = perturbed_silicon(4)
    positions, cells, numbers, batch = collate_structures(StructureDataset(structures).items)
    net = ScoreNetwork(TINY)
    schedule = VESchedule(TINY.k)

    def held_out_loss() -> float:
        generator = torch.Generator().manual_seed(123)
        total = 0.0
        with torch.no_grad():
            for _ in range(4):
                loss, _, _ = dsm_loss(net, positions, cells, numbers, batch, schedule, generator=generator)
                total += float(loss)
        return total / 4

    before = held_out_loss()
    optimiser = torch.optim.Adam(net.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(0)
    for _ in range(50):
        rotations = random_rotations(cells.shape[0], generator)
        rotated, rotated_cells = rotate_structures(positions, cells, batch, rotations)
        loss, per_structure, t = dsm_loss(net, rotated, rotated_cells, numbers, batch, schedule, generator=generator)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    after = held_out_loss()
    assert per_structure.shape == (4,) and t.shape == (4,)
    assert after < before - 0.04, (before, after)  # the untrained network predicts a zero score


def test_ema_update_rule():
    net = torch.nn.Linear(2, 1)
    ema = EMA(net, decay=0.9, warmup=False)
    old = net.weight.detach().clone()
    with torch.no_grad():
        net.weight.add_(1.0)
    ema.update(net)
    torch.testing.assert_close(ema.model.weight, 0.9 * old + 0.1 * net.weight.detach())
    assert not any(p.requires_grad for p in ema.model.parameters())
    warm = EMA(net, decay=0.999)
    assert warm.current_decay() == pytest.approx(0.1)  # (1 + 0) / (10 + 0)
    with pytest.raises(ValueError):
        EMA(net, decay=1.0)


def test_split_is_by_structure():
    train, val = split_by_structure(10, 0.2, seed=0)
    assert sorted(train + val) == list(range(10)) and len(val) == 2 and not set(train) & set(val)
    assert split_by_structure(1, 0.5, 0) == ([0], [])


def test_train_prior_checkpoint_round_trip_and_resume(tmp_path):
    structures = perturbed_silicon(5)
    out = train_prior(structures, tmp_path / "prior.pt", max_steps=4, config=TINY, batch_size=2, seed=1, progress=False)
    assert out == tmp_path / "prior.pt" and (tmp_path / "prior.last.ckpt").is_file()
    network, meta = load_prior(out)
    assert network.config == TINY
    assert meta["format_version"] == PRIOR_FORMAT_VERSION and meta["k"] == 0.8
    assert meta["data"]["elements"] == ["Si"] and meta["data"]["n_structures"] == 5
    assert meta["data"]["atoms_per_cell"] == [64, 64]
    low, high = meta["data"]["density_g_cm3"]
    assert 2.1 < low < high < 2.4
    assert meta["training"]["steps"] == 4 and np.isfinite(meta["training"]["final_val_loss"])
    assert len(meta["training"]["val_loss_by_t"]) == 5
    # the exported weights are the EMA weights and reproduce the same scores after loading
    positions, cells, numbers, batch = batch_from_atoms(structures[:1], dtype=torch.float32)
    again, _ = load_prior(out)
    with torch.no_grad():
        torch.testing.assert_close(
            network(positions, cells, numbers, batch, 0.3), again(positions, cells, numbers, batch, 0.3)
        )

    resumed = train_prior(structures, out, max_steps=8, config=TINY, batch_size=2, seed=1, progress=False, resume=True)
    _, meta2 = load_prior(resumed)
    assert meta2["training"]["steps"] == 8


def test_train_prior_init_from_starts_at_the_given_weights(tmp_path):
    structures = perturbed_silicon(5)
    start = train_prior(structures, tmp_path / "a.pt", max_steps=4, config=TINY, batch_size=2, seed=1, progress=False)
    start_net, _ = load_prior(start)
    # lr = 0: the optimizer cannot move the weights, so the result holds exactly the weights it started from
    common = dict(max_steps=2, config=TINY, batch_size=2, seed=2, lr=0.0, progress=False)
    tuned = train_prior(structures, tmp_path / "b.pt", init_from=start, **common)
    fresh = train_prior(structures, tmp_path / "c.pt", **common)
    tuned_net, meta = load_prior(tuned)
    fresh_net, _ = load_prior(fresh)
    for name, value in start_net.state_dict().items():
        torch.testing.assert_close(tuned_net.state_dict()[name], value)
    assert any(not torch.equal(fresh_net.state_dict()[k], v) for k, v in start_net.state_dict().items())
    assert meta["training"]["init_from"]["prior"] == str(start)
    assert meta["training"]["init_from"]["data"]["n_structures"] == 5
    other = ScoreNetworkConfig(species=(14,), hidden=16, n_layers=2, cutoff=3.0)
    with pytest.raises(ValueError, match="network config"):
        train_prior(structures, tmp_path / "d.pt", init_from=start, **(common | {"config": other}))
    with pytest.raises(ValueError, match="resume"):
        train_prior(structures, tuned, init_from=start, resume=True, **common)


def test_load_prior_refuses_foreign_and_broken_files(tmp_path):
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"this is not a checkpoint at all")
    with pytest.raises(ValueError, match="garbage.pt"):
        load_prior(garbage)

    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {}, "epoch": 3}, foreign)
    with pytest.raises(ValueError, match="foreign.pt.*not a specguide prior"):
        load_prior(foreign)

    from specguide.training.prior import save_prior

    good = save_prior(tmp_path / "good.pt", ScoreNetwork(TINY), data=data_summary(perturbed_silicon(1)), training={})
    payload = torch.load(good, weights_only=True)

    payload_old = dict(payload, format_version=99)
    torch.save(payload_old, tmp_path / "future.pt")
    with pytest.raises(ValueError, match="future.pt.*version 99"):
        load_prior(tmp_path / "future.pt")

    payload_missing = {k: v for k, v in payload.items() if k != "data"}
    torch.save(payload_missing, tmp_path / "missing.pt")
    with pytest.raises(ValueError, match="missing.pt.*missing.*data"):
        load_prior(tmp_path / "missing.pt")

    payload_mismatch = dict(payload, network=dict(payload["network"], hidden=8))
    torch.save(payload_mismatch, tmp_path / "mismatch.pt")
    with pytest.raises(ValueError, match="mismatch.pt"):
        load_prior(tmp_path / "mismatch.pt")

    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[:200])
    with pytest.raises(ValueError, match="truncated.pt"):
        load_prior(truncated)
    with pytest.raises(FileNotFoundError):
        load_prior(tmp_path / "absent.pt")


def test_train_prior_t_range_limits_the_training_noise_levels(tmp_path, monkeypatch):
    import specguide.training.prior as training

    drawn = []

    def recording_dsm_loss(*args, **kwargs):
        loss, per_structure, t = dsm_loss(*args, **kwargs)
        drawn.append(t.detach().clone())
        return loss, per_structure, t

    monkeypatch.setattr(training, "dsm_loss", recording_dsm_loss)
    structures = perturbed_silicon(5)
    out = train_prior(structures, tmp_path / "low.pt", max_steps=6, config=TINY, batch_size=2, seed=1,
                      progress=False, t_range=(0.05, 0.2), val_every_n_steps=1000)  # fmt: skip
    _, meta = load_prior(out)
    assert meta["training"]["t_range"] == [0.05, 0.2]
    # validation draws its own t in 5 bins over the full range; the training steps draw only within t_range
    training_draws = torch.cat(drawn[:6])
    assert 0.05 <= float(training_draws.min()) and float(training_draws.max()) <= 0.2
    assert len(meta["training"]["val_loss_by_t"]) == 5
    with pytest.raises(ValueError, match="t_range"):
        train_prior(structures, tmp_path / "bad.pt", max_steps=1, config=TINY, progress=False, t_range=(0.5, 0.2))
