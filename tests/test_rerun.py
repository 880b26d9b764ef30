"""Config objects: ``config.json`` records the request (GenerateConfig / InvertConfig), and ``--config`` reruns it
exactly: the same seed gives the same structures."""

import json

import ase.build
import ase.io
import numpy as np
import pytest
from typer.testing import CliRunner

from specguide.api import read_run_config
from specguide.cli import app
from specguide.diffusion.guidance import GuidanceConfig
from specguide.diffusion.inversion import InvertConfig
from specguide.diffusion.sampler import GenerateConfig
from specguide.io import InputError

runner = CliRunner()


def same_structures(first, second) -> None:
    a, b = ase.io.read(first / "structures.extxyz", ":"), ase.io.read(second / "structures.extxyz", ":")
    assert len(a) == len(b) > 0
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x.numbers, y.numbers)
        np.testing.assert_array_equal(x.cell[:], y.cell[:])
        np.testing.assert_array_equal(x.positions, y.positions)


def test_configs_round_trip_through_json():
    request = InvertConfig(
        targets=["gr:a.dat:core=10"], density_g_cm3="2.2:2.6:3",
        sampling=GenerateConfig(n_atoms=64, seed=5, cn_range={"Si": (4, 4), 6: (2, 4)}, bond_cutoffs={(14, 14): 2.8},
                                composition={"Si": 1.0}, cell=[1.0, 1.0, 2.0]),
        guidance=GuidanceConfig(strength=100.0, schedule="guided"), scan_range=(3.0, 6.0),
    )  # fmt: skip
    again = InvertConfig.from_dict(json.loads(json.dumps(request.to_dict())))
    assert again == request
    assert request.with_settings(strength=5.0, n_atoms=8, scan_replicas=1).guidance.strength == 5.0
    with pytest.raises(TypeError, match="colour"):
        request.with_settings(colour="red")
    with pytest.raises(ValueError, match="schedule"):
        GuidanceConfig(schedule="sometimes")


def test_generate_reruns_from_its_config_json(tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    args = ["generate", "--prior", "a-Si", "--density", "2.33", "--atoms", "64", "--replicas", "2", "--steps", "8",
            "--seed", "3", "--preset", "fast", "--restarts", "1", "--cn-range", "Si:3-4",
            "--out", str(first)]  # fmt: skip
    assert (result := runner.invoke(app, args)).exit_code == 0, result.output
    config = json.loads((first / "config.json").read_text())
    assert config["generate"]["seed"] == 3 and config["generate"]["cn_range"] == {"Si": [3, 4]}
    rerun = runner.invoke(app, ["generate", "--config", str(first / "config.json"), "--out", str(second)])
    assert rerun.exit_code == 0, rerun.output
    same_structures(first, second)


def test_invert_reruns_from_its_config_json(tmp_path):
    from specguide.api import compute_spectrum

    atoms = ase.build.bulk("Si", "diamond", 5.43, cubic=True).repeat(2)
    atoms.rattle(0.1, seed=0)
    atoms.write(tmp_path / "seed.extxyz")
    r, g, _ = compute_spectrum(tmp_path / "seed.extxyz", "gr", r_max=5.0)
    np.savetxt(tmp_path / "gr.dat", np.column_stack([r, g]))
    first, second = tmp_path / "first", tmp_path / "second"
    args = ["invert", "--prior", "a-Si", "--target", f"gr:{tmp_path / 'gr.dat'}:core=10", "--density", "2.33",
            "--atoms", "64", "--replicas", "1", "--steps", "8", "--seed", "4", "--strength", "60", "--preset", "fast",
            "--out", str(first)]  # fmt: skip
    assert (result := runner.invoke(app, args)).exit_code == 0, result.output
    prior, request, init = read_run_config(first / "config.json", "invert")
    assert (prior, init, request.guidance.strength, request.sampling.seed) == ("a-Si", "random", 60.0, 4)
    rerun = runner.invoke(app, ["invert", "--config", str(first / "config.json"), "--out", str(second)])
    assert rerun.exit_code == 0, rerun.output
    same_structures(first, second)


def test_a_config_without_the_request_is_refused(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"prior": "a-Si", "seed": 0}))
    with pytest.raises(InputError, match="records no invert request"):
        read_run_config(path, "invert")
    result = runner.invoke(app, ["generate", "--config", str(path), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "records no generate request" in result.output
    missing = runner.invoke(app, ["generate", "--out", str(tmp_path / "o")])
    assert missing.exit_code == 2 and "--prior, --density and --atoms" in missing.output
