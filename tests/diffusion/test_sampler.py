"""The reverse-SDE sampler: exactness on a Gaussian target, determinism, veto, restarts, failure handling."""

import json
import math

import ase.build
import numpy as np
import pytest
import torch

from specguide.analysis.summary import summarize
from specguide.chemistry import PairTable, find_defects
from specguide.diffusion.sampler import (
    RestartOptions,
    generate,
    minimum_distance_veto,
    sample,
)
from specguide.graph import batch_from_atoms, neighbor_graph
from specguide.io import write_results
from specguide.models.schedule import VESchedule
from specguide.models.score import ScoreNetwork, ScoreNetworkConfig
from specguide.structure import cubic_cell_side


def tiny_network(species=(6,)) -> ScoreNetwork:
    torch.manual_seed(0)
    net = ScoreNetwork(ScoreNetworkConfig(species=species, hidden=16, n_layers=2, cutoff=3.0)).eval()
    with torch.no_grad():  # a random, untrained but non-zero score
        torch.nn.init.normal_(net.decoder[-1].weight, std=0.3)
    return net


def replicas(n_replicas: int, n_atoms: int, side: float, z: int = 6):
    cells = torch.eye(3).expand(n_replicas, 3, 3).clone() * side
    numbers = torch.full((n_replicas * n_atoms,), z)
    batch = torch.repeat_interleave(torch.arange(n_replicas), n_atoms)
    return cells, numbers, batch


def min_pair_distance(positions, cells, batch, cutoff=3.0) -> float:
    graph = neighbor_graph(positions.double(), cells.double(), batch, cutoff, full_list=False)
    return float(graph.distances.min())


def gaussian_case(s0: float, schedule: VESchedule, n: int = 3000):
    """Independent atoms, each coordinate N(mu, s0^2), in a 100 Å box: the exact score at every noise level
    and a clean sample of the target (noised to ``t_start`` inside ``sample``)."""
    g = torch.Generator().manual_seed(1)
    cells, numbers, batch = replicas(1, n, 100.0)
    mu = 30.0 + 40.0 * torch.rand(n, 3, generator=g)

    def gaussian_score(positions, cells, numbers, batch, t):
        variance = s0**2 + schedule.sigma(t)[batch][:, None] ** 2
        return -(positions - mu) / variance

    return cells, numbers, batch, mu, gaussian_score, mu + s0 * torch.randn(n, 3, generator=g)


def test_euler_maruyama_reproduces_a_gaussian_target():
    """Exact score of N(mu, s0^2) per coordinate: the reverse SDE must return mean mu and variance s0^2."""
    s0, schedule = 0.3, VESchedule(k=0.8)
    cells, numbers, batch, mu, gaussian_score, clean = gaussian_case(s0, schedule)
    result = sample(gaussian_score, cells, numbers, batch, positions=clean, schedule=schedule, steps=200, generator=7)
    deviation = (result.positions - mu).double()
    assert abs(float(deviation.mean())) < 0.02
    assert float(deviation.var()) == pytest.approx(s0**2, rel=0.06)
    # not trivially so: the starting cloud was much wider
    assert s0**2 + schedule.sigma(0.999) ** 2 > 7 * s0**2


def test_same_seed_same_structures_and_different_seed_differs():
    net = tiny_network()
    options = dict(density_g_cm3=2.0, n_atoms=40, n_replicas=2, steps=12, n_restarts=1, progress=False)
    first = generate(net, seed=3, **options).structures
    second = generate(net, seed=3, **options).structures
    other = generate(net, seed=4, **options).structures
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a.positions, b.positions)
    assert not np.allclose(first[0].positions, other[0].positions)


def test_veto_keeps_every_pair_above_d_min():
    net = tiny_network()
    d_min = 1.2
    structures = generate(
        net, density_g_cm3=2.0, n_atoms=64, n_replicas=3, steps=30, d_min=d_min, n_restarts=1, progress=False
    ).structures
    positions, cells, numbers, batch = batch_from_atoms(structures)
    assert min_pair_distance(positions, cells, batch) >= d_min - 1e-4


def test_veto_step_reverts_only_the_offending_atoms():
    cells = torch.eye(3)[None] * 10.0
    numbers = torch.full((3,), 6)
    batch = torch.zeros(3, dtype=torch.long)
    old = torch.tensor([[1.0, 1.0, 1.0], [2.5, 1.0, 1.0], [6.0, 6.0, 6.0]])
    move = torch.tensor([[0.5, 0.0, 0.0], [0.0, 0.0, 0.0], [0.3, 0.0, 0.0]])  # atom 0 would come to 1.0 Å of atom 1
    displacement, vetoed = minimum_distance_veto(old, move, cells, numbers, batch, PairTable(1.2))
    assert vetoed.tolist() == [True, True, False]
    torch.testing.assert_close(displacement[0], torch.zeros(3))
    torch.testing.assert_close(displacement[2], move[2])
    # a pair that is already too short may separate
    close = torch.tensor([[1.0, 1.0, 1.0], [1.5, 1.0, 1.0], [6.0, 6.0, 6.0]])
    apart = torch.tensor([[-0.2, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    displacement, vetoed = minimum_distance_veto(close, apart, cells, numbers, batch, PairTable(1.2))
    assert not vetoed.any()


def rebuilt_each_round_veto(old, displacement, cells, numbers, batch, table):
    """The veto as first written: a fresh neighbour graph of the moved atoms in every round."""
    displacement, vetoed = displacement.clone(), torch.zeros(len(old), dtype=torch.bool)
    while True:
        graph = neighbor_graph(old + displacement, cells, batch, table.max_for(numbers), full_list=False)
        i, j = graph.edge_index
        before = (graph.vectors - (displacement[j] - displacement[i])).norm(dim=-1)
        offending = (graph.distances < table.lookup(numbers[i], numbers[j], graph.distances.dtype)) & (
            graph.distances < before
        )
        if not bool(offending.any()):
            return displacement, vetoed
        atoms = torch.cat([i[offending], j[offending]])
        displacement[atoms], vetoed[atoms] = 0.0, True


@pytest.mark.parametrize("step", [0.15, 0.6, 3.0])  # 3 Å: the two largest moves exceed the cut-off (other route)
def test_veto_with_one_pair_list_for_all_rounds_equals_a_fresh_graph_each_round(step):
    """Two dense random cells (many rounds of reverting), Si and O with their own closest approaches."""
    generator = torch.Generator().manual_seed(1)
    cells = torch.stack([torch.eye(3) * 9.0, torch.tensor([[9.5, 0, 0], [1.0, 9.0, 0], [0.5, -0.7, 9.2]])])
    batch = torch.repeat_interleave(torch.arange(2), 60)
    old = torch.einsum("nk,nkl->nl", torch.rand(120, 3, generator=generator), cells[batch])
    numbers = torch.tensor([14, 8, 8] * 40)
    table = PairTable({(14, 14): 2.2, (8, 14): 1.5, (8, 8): 2.0})
    move = step * torch.randn(120, 3, generator=generator)
    ours = minimum_distance_veto(old, move, cells, numbers, batch, table)
    reference = rebuilt_each_round_veto(old, move, cells, numbers, batch, table)
    assert ours[1].sum() >= 2 and not ours[1].all()  # something vetoed, something not
    assert torch.equal(ours[1], reference[1]) and torch.equal(ours[0], reference[0])


def mixture_score_factory(sites: torch.Tensor, shift: torch.Tensor, weight: float, s0: float, side: float, k: float):
    """Exact score (minimum image) of a per-atom mixture: own site (``weight``) or own site + ``shift``."""
    log_w = torch.log(torch.tensor([weight, 1.0 - weight]))

    def score(positions, cells, numbers, batch, t, replica_ids):
        own = sites[replica_ids].reshape(-1, 3)  # restarts integrate a subset of the replicas
        centres = torch.stack([own, own + shift])  # [2, N, 3]
        variance = s0**2 + (k * t[batch]) ** 2  # [N]
        d = positions[None] - centres
        d = d - side * torch.round(d / side)
        log_p = log_w[:, None] - (d**2).sum(-1) / (2 * variance)  # [2, N]
        p = torch.softmax(log_p, dim=0)
        return -(p[..., None] * d).sum(0) / variance[:, None]

    return score


def test_restart_removes_defects_and_leaves_good_replicas_untouched():
    atoms = ase.build.bulk("Si", "diamond", a=5.43, cubic=True)  # 8 atoms, CN 4
    n_replicas, side, k = 16, 5.43, 4.0
    sites = torch.as_tensor(np.tile(atoms.positions, (n_replicas, 1)), dtype=torch.float32)
    score = mixture_score_factory(sites.reshape(n_replicas, 8, 3), torch.tensor([0.9, 0.9, 0.0]), 0.9, 0.05, side, k)
    cells, numbers, batch = replicas(n_replicas, 8, side, z=14)
    bonds, cn_range = 2.75, {14: (4, 4)}
    schedule = VESchedule(k=k)
    common = dict(positions=sites, schedule=schedule, steps=60, generator=11)

    plain = sample(score, cells, numbers, batch, **common)
    defective = find_defects(plain.positions, cells, numbers, batch, bonds, cn_range)
    per_replica = torch.zeros(n_replicas, dtype=torch.long).index_add(0, batch, defective.long())
    assert int((per_replica > 0).sum()) >= 4  # the shifted component does create defects

    restarted = sample(score, cells, numbers, batch, restart=RestartOptions(8, 0.3, bonds, cn_range), **common)
    after = find_defects(restarted.positions, cells, numbers, batch, bonds, cn_range)
    after_per_replica = torch.zeros(n_replicas, dtype=torch.long).index_add(0, batch, after.long())
    assert int((after_per_replica > 0).sum()) < int((per_replica > 0).sum()) / 2
    assert restarted.report.defects_per_cycle[0] == per_replica.tolist()
    clean = (per_replica == 0)[batch]
    torch.testing.assert_close(restarted.positions[clean], plain.positions[clean], rtol=0, atol=0)
    assert all(c == 0 for c, d in zip(restarted.report.n_restart_cycles, per_replica.tolist()) if d == 0)

    local = sample(
        score, cells, numbers, batch, restart=RestartOptions(8, 0.3, bonds, cn_range, mode="local"), **common
    )
    after_local = find_defects(local.positions, cells, numbers, batch, bonds, cn_range)
    assert int(after_local.sum()) < int(defective.sum())


def test_local_restart_joint_pass_moves_every_atom_of_restarted_replicas_only():
    """Local restarts freeze atoms away from the defects; the final joint pass (``t_relax``) then moves every
    atom of the restarted replicas, and still none of the clean ones."""
    atoms = ase.build.bulk("Si", "diamond", a=5.43, cubic=True).repeat(2)  # 64 atoms, CN 4
    n_replicas, side, k = 6, 2 * 5.43, 4.0
    sites = torch.as_tensor(np.tile(atoms.positions, (n_replicas, 1)), dtype=torch.float32)
    score = mixture_score_factory(sites.reshape(n_replicas, 64, 3), torch.tensor([0.9, 0.9, 0.0]), 0.995, 0.05, side, k)
    cells, numbers, batch = replicas(n_replicas, 64, side, z=14)
    common = dict(positions=sites, schedule=VESchedule(k=k), steps=60, generator=3)
    one_cycle = dict(n_restarts=1, t_restart=0.3, bond_cutoffs=2.75, cn_range={14: (4, 4)}, mode="local")
    plain = sample(score, cells, numbers, batch, **common)

    def unmoved(result):
        return torch.isclose(result.positions, plain.positions, rtol=0, atol=1e-5).all(-1)

    frozen = sample(score, cells, numbers, batch, restart=RestartOptions(**one_cycle, t_relax=None), **common)
    restarted_atoms = torch.tensor(frozen.report.n_restart_cycles)[batch] > 0
    assert 0 < int(restarted_atoms.sum()) < len(batch)
    assert bool(unmoved(frozen)[restarted_atoms].any()) and bool(unmoved(frozen)[~restarted_atoms].all())
    relaxed = sample(score, cells, numbers, batch, restart=RestartOptions(**one_cycle), **common)
    assert not bool(unmoved(relaxed)[restarted_atoms].any()) and bool(unmoved(relaxed)[~restarted_atoms].all())
    with pytest.raises(ValueError, match="t_relax"):
        RestartOptions(2, mode="local", t_relax=1.5)


def test_non_finite_replica_is_reinitialised_and_output_is_finite():
    calls = {"n": 0}
    net = tiny_network()

    def flaky(positions, cells, numbers, batch, t):
        calls["n"] += 1
        out = net(positions, cells, numbers, batch, t)
        if calls["n"] <= 3 and cells.shape[0] == 3:  # replica 1 breaks during the first pass only
            out = torch.where((batch == 1)[:, None], torch.full_like(out, float("nan")), out)
        return out

    cells, numbers, batch = replicas(3, 30, 7.0)
    with pytest.warns(UserWarning, match="re-initialising 1"):
        result = sample(flaky, cells, numbers, batch, steps=10, generator=0)
    assert result.report.n_reinitialised == [0, 1, 0]
    assert torch.isfinite(result.positions).all()

    def broken(positions, cells, numbers, batch, t):
        return torch.full_like(positions, float("nan"))

    with pytest.warns(UserWarning), pytest.raises(RuntimeError, match="replica 0"):
        sample(broken, cells[:1], numbers[:30], batch[:30], steps=3, max_reinit=1)


def test_guidance_hook_is_called_and_added():
    s0, schedule = 0.2, VESchedule(k=0.8)
    cells, numbers, batch = replicas(2, 500, 50.0)
    mu = torch.full((1000, 3), 25.0)
    seen = {}

    def zero_prior(positions, cells, numbers, batch, t):
        return torch.zeros_like(positions)

    def guidance(positions, cells, numbers, batch, t, sigma, score, replica_ids=None):
        seen.update(
            t=t.shape, sigma=sigma.shape, score=score.shape, ids=replica_ids.tolist(), grad=torch.is_grad_enabled()
        )
        return -(positions - mu) / (s0**2 + sigma[batch][:, None] ** 2)

    result = sample(zero_prior, cells, numbers, batch, positions=mu, schedule=schedule, steps=100, guidance=guidance)
    assert seen == {"t": (2,), "sigma": (2,), "score": (1000, 3), "ids": [0, 1], "grad": True}
    assert float((result.positions - mu).std()) == pytest.approx(s0, rel=0.1)


def test_generate_cell_composition_crystal_seed_and_outputs(tmp_path):
    net = tiny_network(species=(6, 14))
    run = generate(net, density_g_cm3=2.5, n_atoms=50, composition={"C": 0.7, "Si": 0.3}, steps=5, progress=False)
    structures, details = run.structures, {"config": run.config}
    atoms = structures[0]
    assert sorted(atoms.get_chemical_symbols()).count("C") == 35
    density = atoms.get_masses().sum() / atoms.get_volume() / 0.602214
    assert density == pytest.approx(2.5, rel=1e-5)
    assert atoms.cell.cellpar()[:3] == pytest.approx([atoms.cell[0, 0]] * 3)
    assert details["config"]["seed"] == 0 and details["config"]["t_start"] == pytest.approx(0.999)
    with pytest.raises(ValueError, match="composition"):
        generate(net, density_g_cm3=2.0, n_atoms=10, steps=2, progress=False)
    assert cubic_cell_side(216, 12.011, 2.0) == pytest.approx((216 * 12.011 / (2.0 * 0.602214)) ** (1 / 3))

    silicon = tiny_network(species=(14,))
    seed_crystal = ase.build.bulk("Si", "diamond", a=5.43, cubic=True)
    seeded = generate(
        silicon, density_g_cm3=2.2, n_atoms=64, init=[seed_crystal], t_start=0.05, steps=5, progress=False
    ).structures
    assert len(seeded[0]) == 64
    summary = summarize(seeded, bond_cutoffs=2.75, cn_range={14: (4, 4)})
    assert summary["coordination"]["Si"]["fractions"].get("4", 0) > 0.5  # lightly noised crystal stays mostly 4-fold

    crystal_summary = summarize([ase.build.bulk("C", "diamond", a=3.567, cubic=True).repeat(2)])
    assert crystal_summary["coordination"]["C"]["fractions"] == {"4": 1.0}
    assert crystal_summary["rdf_first_peak"] == pytest.approx(1.545, abs=0.03)
    assert crystal_summary["min_distance"] == pytest.approx(1.5446, abs=1e-3)

    out = write_results(tmp_path / "run", structures, details["config"], summarize(structures))
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "structures.extxyz", "summary.json"]
    assert json.loads((out / "config.json").read_text())["n_atoms"] == 50
    with pytest.raises(FileExistsError, match="force"):
        write_results(out, structures, details["config"], {})
    write_results(out, structures, details["config"], {}, force=True)
    assert math.isfinite(ase.io.read(out / "structures.extxyz").positions.sum())


def test_langevin_corrector_follows_its_gaussian_recursion_and_pulls_towards_the_target():
    """Exact Gaussian score, only 3 predictor steps. Per coordinate the samplers are linear maps of the variance:
    Euler–Maruyama v <- (1 - g2 dt / V)^2 v + g2 dt, a Langevin step v <- (1 - eps / V)^2 v + 2 eps with
    eps = 2 (snr |z| / |s|)^2 = 2 snr^2 V^2 / v (V = s0^2 + sigma^2: the target's variance at that noise level).
    Both runs must follow these independent recursions; the corrector must bring the result closer to s0^2."""
    s0, schedule, steps, snr = 0.3, VESchedule(k=0.8), 3, 0.3
    cells, numbers, batch, mu, gaussian_score, clean = gaussian_case(s0, schedule)
    grid = torch.linspace(0.999, 0.001, steps + 1, dtype=torch.float64).tolist()
    for corrector in (0, 4):
        result = sample(
            gaussian_score, cells, numbers, batch, positions=clean, schedule=schedule, steps=steps, generator=7,
            corrector_steps=corrector, snr=snr,
        )  # fmt: skip
        assert result.report.score_evaluations == steps * (1 + corrector)
        v = s0**2 + schedule.sigma(grid[0]) ** 2
        for t, t_next in zip(grid[:-1], grid[1:], strict=True):
            dt, g2 = t - t_next, schedule.g2(t)
            v = (1 - g2 * dt / (s0**2 + schedule.sigma(t) ** 2)) ** 2 * v + g2 * dt
            target = s0**2 + schedule.sigma(t_next) ** 2
            for _ in range(corrector):
                eps = 2 * snr**2 * target**2 / v
                v = (1 - eps / target) ** 2 * v + 2 * eps
        measured = float((result.positions - mu).double().var())
        assert measured == pytest.approx(v, rel=0.06)
        if corrector == 0:
            predictor_only = measured
            assert predictor_only > 1.4 * s0**2  # three predictor steps alone are clearly off
    assert abs(measured - s0**2) < 0.5 * abs(predictor_only - s0**2)


def test_corrector_arguments_are_checked():
    cells, numbers, batch = replicas(1, 4, 10.0)
    with pytest.raises(ValueError, match="corrector_steps"):
        sample(lambda *a: torch.zeros(4, 3), cells, numbers, batch, corrector_steps=-1)


def test_carbon_hybridization_counts_bonds_per_structure_like_ase_neighbor_lists():
    """Diamond (all sp3) and graphite (all sp2) together: mean 0.5 each, spread 0.5; a random carbon cell is checked
    against coordination numbers counted independently with ASE's neighbour list at the same cutoff."""
    from ase.neighborlist import neighbor_list

    diamond = ase.build.bulk("C", "diamond", a=3.567, cubic=True).repeat(2)
    graphite = ase.build.graphene(a=2.46, size=(4, 4, 1), vacuum=None)
    graphite.cell[2, 2] = 6.7
    graphite.pbc = True
    both = summarize([diamond, graphite], bond_cutoffs=1.85)["carbon_hybridization"]
    assert both["sp3"]["per_structure"] == [1.0, 0.0] and both["sp2"]["per_structure"] == [0.0, 1.0]
    assert both["sp3"]["mean"] == pytest.approx(0.5) and both["sp3"]["std"] == pytest.approx(0.5)

    rng = np.random.default_rng(3)
    cells = [ase.Atoms("C60", positions=rng.uniform(0, 7.0, (60, 3)), cell=[7.0] * 3, pbc=True) for _ in range(3)]
    summary = summarize(cells, bond_cutoffs=1.85)
    for r, atoms in enumerate(cells):
        i = neighbor_list("i", atoms, 1.85)
        cn = np.bincount(i, minlength=len(atoms))
        for name, k in (("sp", 2), ("sp2", 3), ("sp3", 4)):
            assert summary["carbon_hybridization"][name]["per_structure"][r] == pytest.approx(
                np.mean(cn == k), abs=1e-5
            )
    assert "carbon_hybridization" not in summarize([ase.build.bulk("Si", "diamond", a=5.43, cubic=True)])
