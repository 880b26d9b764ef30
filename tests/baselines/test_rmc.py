"""The RMC wrapper fits the curve we mean: g(r) on our grid, with the engine's conventions undone."""

import numpy as np
import pytest
import torch
from ase.neighborlist import neighbor_list

from specguide.baselines.rmc import histogram_target, random_start, rmc_refine
from specguide.data.md import load_md_dataset
from specguide.diffusion.guidance import Target
from specguide.graph import batch_from_atoms
from specguide.io import InputError
from specguide.observables import PairDistribution, XRayDiffraction


def independent_histogram(atoms, dr, n):
    """g(r) in bins [k dr, (k + 1) dr), exact shell volumes, from ASE's neighbour list."""
    edges = np.arange(n + 1) * dr
    counts, _ = np.histogram(neighbor_list("d", atoms, edges[-1]), bins=edges)
    rho = len(atoms) / atoms.get_volume()
    return counts / (len(atoms) * rho * 4 * np.pi / 3 * (edges[1:] ** 3 - edges[:-1] ** 3))


def g_error(structures, target):
    positions, cells, numbers, batch = batch_from_atoms(structures)
    with torch.no_grad():
        g = target.observable(positions, cells, numbers, batch)
    return float((g - target.y).abs().mean())


@pytest.fixture(scope="module")
def held_out():
    return load_md_dataset("a-Si_2.5", split="test")


def test_engine_sees_a_structure_exactly_as_we_do(held_out):
    # an MD structure scored against its own histogram: the engine's χ² vanishes and its curve is ours
    frame = held_out[0]
    target = histogram_target([frame], r_max=6.0, dr=0.05)
    result = rmc_refine(frame, [target], max_seconds=5, max_moves=1, chunk=1, max_step=1e-9)
    assert result.error_history[-1][1] < 1e-12
    fitted = result.fitted[target.label]
    assert fitted["model"] == pytest.approx(independent_histogram(frame, 0.05, 120), abs=1e-9)
    assert fitted["target"] == pytest.approx(target.y.numpy(), abs=1e-12)


def test_a_target_off_by_one_is_far_from_the_structure(held_out):
    # the same structure against g(r) + 1 (what feeding the engine g instead of g − 1 would ask for) is far off
    frame = held_out[0]
    target = histogram_target([frame], r_max=6.0, dr=0.05)
    shifted = Target(target.observable, target.y + 1.0, label="shifted", kind="gr")
    result = rmc_refine(frame, [shifted], max_seconds=5, max_moves=1, chunk=1, max_step=1e-9)
    assert result.error_history[-1][1] > 10


def test_rmc_moves_a_random_start_towards_the_target_and_reports_the_curve_of_its_result(held_out):
    target = histogram_target(held_out, r_max=6.0, dr=0.05)
    smooth = PairDistribution(r_max=6.0, sigma=0.15)
    smooth_target = Target(smooth, PairDistribution(r_max=6.0, sigma=0.15)(*batch_from_atoms(held_out)).mean(0))
    start = random_start("Si", 2.5, 216, seed=0)
    result = rmc_refine(start, [target], max_seconds=4.0, seed=1)
    assert result.moves_tried > 10_000
    assert g_error([result.structure], smooth_target) < 0.6 * g_error([start], smooth_target)
    # the curve the engine reports is the histogram of the structure it returns (its last move may be rejected,
    # so compare up to one atom's worth of pairs)
    fitted = result.fitted[target.label]
    ours = independent_histogram(result.structure, 0.05, 120)
    assert np.abs(fitted["model"] - ours).mean() < 0.01
    assert result.error_history[-1][1] < result.error_history[1][1]


def test_unsupported_targets_and_species_are_refused(held_out):
    xrd = XRayDiffraction(q_min=1.0, q_max=10.0, r_max=6.0)
    target = Target(xrd, torch.ones(len(xrd.grid)), label="xrd", kind="xrd")
    with pytest.raises(InputError, match="fits gr, pdf"):
        rmc_refine(held_out[0], [target], max_seconds=1)
    with pytest.raises(InputError, match="one element"):
        frame = held_out[0].copy()
        frame.symbols[0] = "C"
        rmc_refine(frame, [histogram_target(held_out, 6.0)], max_seconds=1)


def test_targets_given_as_kind_file_strings_drive_rmc(held_out, tmp_path):
    # the same KIND:FILE strings as `specguide invert`: a G(r) file (pdf kind) is fitted as g(r) on its grid
    from specguide.observables import ReducedPairDistribution

    reduced = ReducedPairDistribution(r_max=6.0, sigma=0.15)
    values = reduced(*batch_from_atoms(held_out)).mean(0).numpy()
    np.savetxt(tmp_path / "G.dat", np.column_stack([reduced.grid.numpy(), values]))
    result = rmc_refine(held_out[0], [f"pdf:{tmp_path / 'G.dat'}"], max_seconds=5, max_moves=1, chunk=1)
    fitted = result.fitted["pdf:G.dat"]
    rho = len(held_out[0]) / held_out[0].get_volume()
    grid = fitted["grid"]
    inside = grid <= 6.0
    expected = 1 + np.interp(grid[inside], reduced.grid.numpy(), values) / (4 * np.pi * rho * grid[inside])
    assert fitted["target"][inside] == pytest.approx(expected, abs=1e-9)  # G(r) -> g(r) = 1 + G / (4πρr)


def test_liquid_start_is_a_dense_disordered_liquid():
    from specguide.analysis.structure import coordination
    from specguide.baselines.rmc import liquid_start

    liquid = liquid_start("Si", 2.5, 64, seed=1, melt_ps=0.2)
    assert liquid.get_masses().sum() * 1.66054 / liquid.get_volume() == pytest.approx(2.5, rel=1e-3)
    fractions = coordination([liquid], {("Si", "Si"): 2.85})["species"]["Si"]
    assert max(fractions.values()) < 0.6  # no dominant coordination, unlike the 95 % four-fold glass
