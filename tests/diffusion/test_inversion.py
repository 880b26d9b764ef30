"""The inversion pipeline end to end with the bundled a-Si prior (small cells, few steps: plumbing, not quality)."""

import json

import ase.io
import numpy as np
import pytest
import torch

from specguide.diffusion.inversion import crystal_seed, invert, parse_densities, write_inversion
from specguide.io import InputError
from specguide.pretrained import load_md_dataset, prior_families, resolve_prior


@pytest.fixture(scope="module")
def target_file(tmp_path_factory):
    from specguide.api import compute_spectrum

    folder = tmp_path_factory.mktemp("targets")
    reference = load_md_dataset("a-Si_2.5", split="test")
    ase.io.write(folder / "ref.extxyz", reference)
    x, y, _ = compute_spectrum(folder / "ref.extxyz", "gr", r_max=5.0)
    path = folder / "gr.dat"
    np.savetxt(path, np.column_stack([x, y]), header="r g(r)")
    return path


def test_density_parsing():
    assert parse_densities("2.3") == [2.3]
    assert parse_densities("2.2:2.4:3") == pytest.approx([2.2, 2.3, 2.4])
    for bad in ("2.4:2.2:3", "a", "-1", "1:2"):
        with pytest.raises(InputError):
            parse_densities(bad)


def test_crystal_seed_sizes():
    assert len(crystal_seed("Si", 64)) == 64
    with pytest.raises(InputError, match="choose --atoms"):
        crystal_seed("Si", 100)


def test_invert_reduces_the_target_loss_and_is_reproducible(target_file, tmp_path):
    torch.set_num_threads(2)
    kwargs = dict(density_g_cm3=2.5, n_atoms=64, n_replicas=2, steps=24, seed=3, progress=False, preset="fast")
    unguided = invert("a-Si", [f"gr:{target_file}"], strength=0.0, **kwargs)
    guided = invert("a-Si", [f"gr:{target_file}"], strength=30.0, **kwargs)
    label = f"gr:{target_file.name}"
    assert guided.summary["losses"][label]["mean"] < unguided.summary["losses"][label]["mean"]
    again = invert("a-Si", [f"gr:{target_file}"], strength=30.0, **kwargs)
    for a, b in zip(guided.structures, again.structures):
        np.testing.assert_array_equal(a.positions, b.positions)

    out = write_inversion(tmp_path / "run", guided)
    names = {p.name for p in out.iterdir()}
    assert {"structures.extxyz", "config.json", "summary.json", "report.png", "fit_gr_gr.dat"} <= names
    config = json.loads((out / "config.json").read_text())
    assert config["seed"] == 3 and config["guidance"]["strength"] == 30.0
    assert config["targets"][0]["file"] == str(target_file)
    table = np.loadtxt(out / "fit_gr_gr.dat")
    assert table.shape[1] == 6 and np.isfinite(table[:, :5]).all()  # grid, fitted data, mean, std, weight, raw
    measured = np.isfinite(table[:, 5])
    np.testing.assert_allclose(table[measured, 5], table[measured, 1], atol=1e-6)  # g(r): the data are fitted as is
    assert "data as measured" in (out / "fit_gr_gr.dat").read_text().splitlines()[1]
    with pytest.raises(FileExistsError):
        write_inversion(tmp_path / "run", guided)


def test_density_scan_reports_every_density(target_file):
    result = invert("a-Si", [f"gr:{target_file}"], density_g_cm3="2.0:2.5:2", n_atoms=64, n_replicas=1, steps=8,
                    scan_replicas=1, progress=False, preset="fast")  # fmt: skip
    scan = result.summary["density_scan"]
    assert scan["densities_g_cm3"] == [2.0, 2.5] and len(scan["loss"]) == 2
    assert result.summary["density_g_cm3_used"] == scan["best_g_cm3"]
    assert scan["best_g_cm3"] == [2.0, 2.5][int(np.argmin(scan["loss"]))]
    # each density ran with the a-Si family's member trained there; the result records the one at the best
    member = prior_families()["a-Si"][scan["best_g_cm3"]]
    assert result.config["prior_file"] == str(resolve_prior(member))


def test_target_reaching_past_half_the_cell_is_cut_to_it(target_file):
    result = invert("a-Si", [f"gr:{target_file}"], density_g_cm3=2.5, n_atoms=32, n_replicas=1, steps=32,
                    progress=False, preset="fast")  # fmt: skip
    half = result.structures[0].cell.lengths().min() / 2
    assert float(result.targets[0].observable.grid[-1]) <= half


def test_density_auto_scans_the_priors_training_range_and_refuses_single_density_priors():
    from specguide.diffusion.inversion import auto_densities
    from specguide.pretrained import load_prior

    low, high = load_prior("a-C")[1]["data"]["density_g_cm3"]
    values = auto_densities("a-C")
    assert values[0] == pytest.approx(low, abs=1e-3) and values[-1] == pytest.approx(high, abs=1e-3)
    assert np.allclose(np.diff(values), 0.5, atol=1e-3)
    assert auto_densities("a-Si")[-1] == pytest.approx(3.5, abs=1e-3)  # the family spans its members' range
    with pytest.raises(InputError, match="trained at 2.2 g/cm³ only"):
        auto_densities("a-SiO2")
