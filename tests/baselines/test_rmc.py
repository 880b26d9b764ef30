"""The RMC wrapper fits the curve we mean: g(r), S(Q) and F(Q) on our grids, with the engine's conventions undone."""

import numpy as np
import pytest
import torch
from ase.neighborlist import neighbor_list

from specguide.baselines.rmc import default_d_min, histogram_target, pair_d_min, random_start, rmc_refine
from specguide.graph import batch_from_atoms
from specguide.io import InputError
from specguide.observables import (
    BondAngleDistribution,
    NeutronDiffraction,
    PairDistribution,
    ReducedStructureFactor,
    StructureFactor,
    XRayDiffraction,
)
from specguide.observables.target import Target
from specguide.observables.weights import species_weights
from specguide.pretrained import load_md_dataset


def independent_histogram(atoms, dr, n, weighting="number"):
    """Faber–Ziman g(r) in bins [k dr, (k + 1) dr), exact shell volumes, from ASE's neighbour list."""
    edges = np.arange(n + 1) * dr
    i, j, d = neighbor_list("ijd", atoms, edges[-1])
    f = species_weights(torch.as_tensor(atoms.numbers), weighting).numpy()  # per atom: 1, Z or b_c
    counts, _ = np.histogram(d, bins=edges, weights=f[i] * f[j])
    rho = len(atoms) / atoms.get_volume()
    return counts / (len(atoms) * f.mean() ** 2 * rho * 4 * np.pi / 3 * (edges[1:] ** 3 - edges[:-1] ** 3))


def curve(observable, structures):
    with torch.no_grad():
        return observable(*batch_from_atoms(structures))


def g_error(structures, target):
    return float((curve(target.observable, structures) - target.y).abs().mean())


def scored(frame, targets, **options):
    """The engine's view of ``frame`` as it is (one move of 1e-9 Å)."""
    return rmc_refine(frame, targets, max_seconds=5, max_moves=1, chunk=1, max_step=1e-9, **options)


@pytest.fixture(scope="module")
def held_out():
    return load_md_dataset("a-Si_2.5", split="test")


@pytest.fixture(scope="module")
def silica():
    return load_md_dataset("a-SiO2_2.2", split="test")


def test_engine_sees_a_structure_exactly_as_we_do(held_out):
    # an MD structure scored against its own histogram: the engine's χ² vanishes and its curve is ours
    frame = held_out[0]
    target = histogram_target([frame], r_max=6.0, dr=0.05)
    result = scored(frame, [target])
    assert result.error_history[-1][1] < 1e-12
    fitted = result.fitted[target.label]
    assert fitted["engine_model"] == pytest.approx(independent_histogram(frame, 0.05, 120), abs=1e-9)
    assert fitted["model"] == pytest.approx(fitted["engine_model"], abs=1e-9)  # our observable: the same histogram
    assert fitted["target"] == pytest.approx(target.y.numpy(), abs=1e-12)
    assert fitted["engine_scale"] == pytest.approx(1.0, abs=1e-9)


@pytest.mark.parametrize("weighting", ["neutron", "xray"])
def test_two_element_g_r_is_weighted_as_faber_ziman(silica, weighting):
    # set_weight(a, b, f_a f_b / ⟨f⟩²) makes the engine's total our Faber–Ziman one: χ² ≈ 0 on the MD cell itself
    frame = silica[0]
    target = histogram_target([frame], r_max=6.0, dr=0.05, weighting=weighting)
    result = scored(frame, [target])
    assert result.error_history[-1][1] < 1e-12
    fitted = result.fitted[target.label]
    assert fitted["engine_model"] == pytest.approx(independent_histogram(frame, 0.05, 120, weighting), abs=1e-9)
    assert fitted["model"] == pytest.approx(fitted["engine_model"], abs=1e-9)
    number = histogram_target([frame], r_max=6.0, dr=0.05)  # the weighting matters: number-weighted is far off
    assert np.abs(number.y.numpy() - target.y.numpy()).max() > 1.0


@pytest.mark.parametrize("weighting", ["neutron", "xray"])
def test_structure_factor_of_the_engine_agrees_with_ours(silica, weighting):
    frame = silica[0]
    observable = StructureFactor(0.5, 20.0, 0.05, weighting=weighting, r_max=8.27)  # Lorch, half the 16.55 Å cell
    target = Target(observable, curve(observable, [frame])[0], label="sq", kind="sq")
    exact = scored(frame, [target], reciprocal_route="python").fitted["sq"]
    assert exact["route"] == "python"
    assert exact["engine_model"] == pytest.approx(exact["model"], abs=1e-9)  # our S(Q), updated move by move
    assert exact["model"] == pytest.approx(target.y.numpy(), abs=1e-12)
    native = scored(frame, [target]).fitted["sq"]
    if weighting == "xray":  # f_Si(Q)/f_O(Q) varies: scalar partial weights cannot express it
        assert native["route"] == "python"
        return
    assert native["route"] == "engine"
    difference = np.abs(native["engine_model"] - native["model"])
    low = native["engine_grid"] < 3.0
    assert difference[low].max() < 0.02 and difference.max() < 0.06  # the engine's 0.05 Å histogram (docstring)
    assert native["engine_scale"] == pytest.approx(1.0, abs=0.005)


def test_reduced_structure_factor_is_q_times_s_minus_one(silica):
    frame = silica[0]
    observable = ReducedStructureFactor(1.0, 15.0, 0.05, weighting="neutron", r_max=8.0)
    target = Target(observable, curve(observable, [frame])[0], label="fq", kind="fq")
    result = scored(frame, [target], reciprocal_route="python")
    assert result.error_history[-1][1] < 1e-12
    native = scored(frame, [target]).fitted["fq"]
    s_engine = 1 + native["engine_model"] / native["engine_grid"]
    s_ours = 1 + native["model"] / native["grid"]
    assert np.abs(s_engine - s_ours).max() < 0.06


def test_rmc_moves_a_random_start_towards_the_target_and_reports_the_curve_of_its_result(held_out):
    target = histogram_target(held_out, r_max=6.0, dr=0.05)
    smooth = PairDistribution(r_max=6.0, sigma=0.15)
    smooth_target = Target(smooth, curve(smooth, held_out).mean(0))
    start = random_start("Si", 2.5, 216, seed=0)
    result = rmc_refine(start, [target], max_seconds=1.5, seed=1)
    assert result.moves_tried > 10_000
    assert g_error([result.structure], smooth_target) < 0.6 * g_error([start], smooth_target)
    # the curves reported are those of the structure returned, by the engine and by our observable
    fitted = result.fitted[target.label]
    assert fitted["engine_model"] == pytest.approx(independent_histogram(result.structure, 0.05, 120), abs=1e-9)
    assert fitted["model"] == pytest.approx(fitted["engine_model"], abs=1e-9)
    assert result.error_history[-1][1] < result.error_history[1][1]


def test_a_random_silica_start_is_refined_against_s_of_q_without_breaking_closest_approach(silica):
    d_min = {"O-O": 2.2, ("Si", "Si"): 2.6}  # Si–O keeps its default, 0.9 × (r_Si + r_O)
    closest = pair_d_min(["O", "Si"], d_min)
    assert closest == {("O", "O"): 2.2, ("O", "Si"): default_d_min("Si", "O"), ("Si", "Si"): 2.6}
    start = random_start({"Si": 1, "O": 2}, 2.2, 300, seed=0, d_min=d_min)
    assert start.get_chemical_formula() == "O200Si100"
    assert start.cell.lengths() == pytest.approx(silica[0].cell.lengths(), abs=1e-5)
    neutron = StructureFactor(0.5, 20.0, 0.05, weighting="neutron", r_max=8.27)
    target = Target(neutron, curve(neutron, silica).mean(0), label="sq", kind="sq")
    result = rmc_refine(start, [target], max_seconds=60, max_moves=30_000, seed=1, d_min=d_min, temperature=0.0003)
    fitted = result.fitted["sq"]
    assert fitted["route"] == "engine"
    before = float((curve(neutron, [start])[0] - target.y).abs().mean())
    assert np.abs(fitted["model"] - fitted["target"]).mean() < 0.6 * before  # by our observable
    i, j, d = neighbor_list("ijd", result.structure, 3.0)
    symbols = np.array(result.structure.get_chemical_symbols())
    for (a, b), limit in closest.items():
        assert d[(symbols[i] == a) & (symbols[j] == b)].min() >= limit - 1e-9
    assert result.config["d_min"] == {"O-O": 2.2, "O-Si": default_d_min("O", "Si"), "Si-Si": 2.6}
    assert result.structure.get_chemical_formula() == "O200Si100"


def test_the_python_constraint_tracks_accepted_and_rejected_moves(silica):
    # X-ray S(Q) of SiO2 needs f(Q): our own S(Q) as a python constraint, updated move by move, must stay the S(Q)
    # of the structure the engine holds through thousands of accepted and rejected moves
    xray = StructureFactor(0.5, 20.0, 0.05, weighting="xray", r_max=8.27)
    target = Target(xray, curve(xray, silica).mean(0), label="sq", kind="sq")
    start = random_start("SiO2", 2.2, 300, seed=2)
    result = rmc_refine(start, [target], max_seconds=60, max_moves=1500, seed=1)
    assert 0 < result.moves_accepted < result.moves_tried == 1500
    fitted = result.fitted["sq"]
    assert fitted["route"] == "python"
    assert fitted["engine_model"] == pytest.approx(fitted["model"], abs=1e-9)
    assert result.error_history[-1][1] < 0.8 * result.error_history[0][1]


def test_random_start_keeps_single_element_starts_and_reads_formulas():
    from specguide.simulate.lammps import random_positions
    from specguide.structure import cubic_cell_length

    start = random_start("Si", 2.5, 64, seed=3)
    length = cubic_cell_length({"Si": 64}, 2.5)
    expected, _ = random_positions(64, length, default_d_min("Si"), np.random.default_rng(3))
    assert start.positions == pytest.approx(expected)  # the starts of earlier benchmarks, seed for seed
    glass = random_start("Cu64Zr36", 6.8, 100, seed=1)
    assert glass.get_chemical_formula() == "Cu64Zr36"


def test_a_target_off_by_one_is_far_from_the_structure(held_out):
    # the same structure against g(r) + 1 (what feeding the engine g instead of g − 1 would ask for) is far off
    frame = held_out[0]
    target = histogram_target([frame], r_max=6.0, dr=0.05)
    shifted = Target(target.observable, target.y + 1.0, label="shifted", kind="gr")
    result = scored(frame, [shifted])
    assert result.error_history[-1][1] > 10


def test_unsupported_targets_are_refused_in_one_line(held_out, silica):
    frame = held_out[0]
    cases = [
        (Target(XRayDiffraction(1.0, 10.0, r_max=6.0), torch.ones(181), label="xrd", kind="xrd"), {}, "fits gr, pdf"),
        (Target(NeutronDiffraction(1.0, 10.0, r_max=6.0), torch.ones(181), label="nd", kind="nd"), {}, "fits gr, pdf"),
        (Target(BondAngleDistribution(), torch.ones(180), label="adf", kind="adf"), {}, "not 'adf'"),
        (Target(StructureFactor(1.0, 10.0, r_max=9.0), torch.ones(181), label="far", kind="sq"), {}, "half the cell"),
    ]
    for target, options, message in cases:
        with pytest.raises(InputError, match=message) as error:
            rmc_refine(frame, [target], max_seconds=1, **options)
        assert "\n" not in str(error.value)
    two = [histogram_target([frame], 6.0), histogram_target([frame], 5.0, label="second")]
    with pytest.raises(InputError, match="one real-space"):
        rmc_refine(frame, two, max_seconds=1)
    xray = StructureFactor(1.0, 10.0, weighting="xray", r_max=8.0)
    target = Target(xray, torch.ones(181), label="sq", kind="sq")
    with pytest.raises(InputError, match="Q-dependent X-ray weights"):
        rmc_refine(silica[0], [target], max_seconds=1, reciprocal_route="engine")


def test_targets_given_as_kind_file_strings_drive_rmc(held_out, tmp_path):
    # the same KIND:FILE strings as `specguide invert`: a G(r) file (pdf kind) is fitted as g(r) on its grid
    from specguide.observables import ReducedPairDistribution

    reduced = ReducedPairDistribution(r_max=6.0, sigma=0.15)
    values = curve(reduced, held_out).mean(0).numpy()
    np.savetxt(tmp_path / "G.dat", np.column_stack([reduced.grid.numpy(), values]))
    result = rmc_refine(held_out[0], [f"pdf:{tmp_path / 'G.dat'}"], max_seconds=5, max_moves=1, chunk=1)
    fitted = result.fitted["pdf:G.dat"]
    rho = len(held_out[0]) / held_out[0].get_volume()
    grid = fitted["engine_grid"]
    inside = grid <= 6.0
    expected = 1 + np.interp(grid[inside], reduced.grid.numpy(), values) / (4 * np.pi * rho * grid[inside])
    assert fitted["engine_target"][inside] == pytest.approx(expected, abs=1e-9)  # G(r) -> g(r) = 1 + G / (4πρr)
    # and the yardstick: our G(r) of the structure on the target's own grid
    assert len(fitted["model"]) == len(fitted["grid"]) == len(fitted["target"])
    assert np.abs(fitted["model"] - fitted["target"])[fitted["weights"] > 0].mean() < 0.2


def test_liquid_start_is_a_dense_disordered_liquid():
    from specguide.analysis.structure import coordination
    from specguide.baselines.rmc import liquid_start

    liquid = liquid_start("Si", 2.5, 64, seed=1, melt_ps=0.2)
    assert liquid.get_masses().sum() * 1.66054 / liquid.get_volume() == pytest.approx(2.5, rel=1e-3)
    fractions = coordination([liquid], {("Si", "Si"): 2.85})["species"]["Si"]
    assert max(fractions.values()) < 0.6  # no dominant coordination, unlike the 95 % four-fold glass
