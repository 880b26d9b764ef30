"""`specguide invert`: a small run writes every output; bad targets and options exit 2 with one line."""

import json

import ase.build
import numpy as np
import pytest
from typer.testing import CliRunner

from specguide.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def gr_file(tmp_path_factory):
    from specguide.api import compute_spectrum

    folder = tmp_path_factory.mktemp("cli_invert")
    atoms = ase.build.bulk("Si", "diamond", 5.43, cubic=True).repeat(2)
    atoms.rattle(0.1, seed=0)
    atoms.write(folder / "seed.extxyz")
    x, y, _ = compute_spectrum(folder / "seed.extxyz", "gr", r_max=5.0)
    path = folder / "gr.dat"
    np.savetxt(path, np.column_stack([x, y]))
    return path


def test_invert_writes_results_and_refuses_to_overwrite(gr_file, tmp_path):
    out = tmp_path / "run"
    args = ["invert", "--prior", "a-Si", "--target", f"gr:{gr_file}", "--density", "2.33", "--atoms", "64",
            "--replicas", "1", "--steps", "16", "--seed", "4", "--preset", "fast", "--out", str(out)]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert {"structures.extxyz", "summary.json", "config.json", "report.png"} <= {p.name for p in out.iterdir()}
    summary = json.loads((out / "summary.json").read_text())
    assert f"gr:{gr_file.name}" in summary["losses"]
    again = runner.invoke(app, args)
    assert again.exit_code == 2 and "--force" in again.output


@pytest.mark.parametrize(
    "target, message",
    [("gr:missing.dat", "no such file"), ("spectrum:x.dat", "unknown kind"), ("gr", "KIND:FILE")],
)
def test_bad_targets_exit_2_with_one_line(tmp_path, target, message):
    result = runner.invoke(
        app,
        [
            "invert",
            "--prior",
            "a-Si",
            "--target",
            target,
            "--density",
            "2.3",
            "--atoms",
            "64",
            "--out",
            str(tmp_path / "o"),
        ],  # fmt: skip
    )
    assert result.exit_code == 2
    assert message in result.output
    assert not (tmp_path / "o").exists()


def test_bad_density_and_unknown_prior_exit_2(gr_file, tmp_path):
    base = ["invert", "--target", f"gr:{gr_file}", "--atoms", "64", "--out", str(tmp_path / "o")]
    result = runner.invoke(app, [*base, "--prior", "a-Si", "--density", "2.4:2.2:3"])
    assert result.exit_code == 2 and "scan" in result.output
    result = runner.invoke(app, [*base, "--prior", "no-such-prior", "--density", "2.3"])
    assert result.exit_code == 2


def test_cn_range_reaches_the_restarts_and_bad_ranges_exit_2(gr_file, tmp_path):
    out = tmp_path / "cn"
    args = ["invert", "--prior", "a-Si", "--target", f"gr:{gr_file}", "--density", "2.33", "--atoms", "64",
            "--replicas", "1", "--steps", "8", "--restarts", "1", "--restart-mode", "local", "--corrector-steps", "0",
            "--out", str(out)]  # fmt: skip
    result = runner.invoke(app, [*args, "--cn-range", "Si:4-4"])
    assert result.exit_code == 0, result.output
    assert json.loads((out / "config.json").read_text())["cn_range"] == {"Si": [4, 4]}
    for bad, message in (("Si4-4", "SYMBOL:LO-HI"), ("Xx:4-4", "element"), ("Si:5-3", "LO <= HI")):
        result = runner.invoke(app, [*args[:-1], str(tmp_path / "bad"), "--cn-range", bad])
        assert result.exit_code == 2 and message in result.output, result.output
        assert not (tmp_path / "bad").exists()


def test_silica_runs_from_the_command_line_with_the_prior_s_own_composition_and_chemistry(tmp_path):
    """`generate` and `invert --prior a-SiO2` need no composition; a neutron S(Q) in Keen's convention is read."""
    from specguide.api import compute_spectrum
    from specguide.pretrained import load_md_dataset

    out = tmp_path / "gen"
    args = ["generate", "--prior", "a-SiO2", "--density", "2.2", "--atoms", "48", "--steps", "8", "--preset", "fast",
            "--out", str(out)]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["coordination"]) == {"O", "Si"} and summary["n_atoms"] == [48]
    assert summary["reference"]["shortest_pairs"]["O-Si"] > 1.5  # the training data's, recorded in the checkpoint
    curves = summary["reference"]["curves"]  # the training data's g(r) and angles, drawn in report.png
    assert curves["density_g_cm3"] == 2.2 and len(curves["r"]) == len(curves["g"]) and "σ" in curves["smoothing"]
    config = json.loads((out / "config.json").read_text())
    assert config["composition"] == {"O": pytest.approx(2 / 3), "Si": pytest.approx(1 / 3)}
    assert config["d_min"]["final"]["O-O"] > 2.0  # the veto tightens to the MD's shortest O–O pair

    reference = tmp_path / "glass.extxyz"
    load_md_dataset("a-SiO2_2.2", split="test")[0].write(reference)
    q, s, _ = compute_spectrum(reference, "sq", weighting="neutron", q_min=0.5, q_max=15.0)
    b_mean2 = ((4.1491 + 2 * 5.803) / 3) ** 2 / 100  # barn
    edges = q - 0.025  # Gudrun writes bin edges
    path = tmp_path / "glass.mint01"
    rows = "\n".join(f"{a:.4f} {b_mean2 * (v - 1):.6f} 0.001" for a, v in zip(edges, s))
    path.write_text("#   glass.mint01\n" + rows)
    run = tmp_path / "inv"
    args = ["invert", "--prior", "a-SiO2", "--target", f"sq:{path}", "--density", "2.2", "--atoms", "72",
            "--replicas", "1", "--steps", "8", "--preset", "fast", "--out", str(run)]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    config = json.loads((run / "config.json").read_text())
    (target,) = config["targets"]
    assert target["weighting"] == "neutron" and target["file_quantity"] == "F_keen(Q)"
    assert "cannot resolve" in result.output  # a 72-atom cell blurs the glass's S(Q), and says which cell would not
    bad = runner.invoke(app, [*args[:-1], str(tmp_path / "x"), "--composition", "SiO2x"])
    assert bad.exit_code == 2 and "composition" in bad.output
