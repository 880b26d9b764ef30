"""The Cu–Zr metallic glass from the command line: the bundled a-CuZr prior, its example and `analyze` on the result."""

import json

import pytest
from typer.testing import CliRunner

from specguide.analysis.order import ovito_available
from specguide.cli import app

runner = CliRunner()


def test_generate_with_the_cuzr_prior_at_a_composition_then_analyze_its_voronoi_indices(tmp_path):
    out = tmp_path / "glass"
    args = ["generate", "--prior", "a-CuZr", "--composition", "Cu50Zr50", "--density", "7.13", "--atoms", "50",
            "--replicas", "2", "--steps", "8", "--preset", "fast", "--seed", "1", "--out", str(out)]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    config = json.loads((out / "config.json").read_text())
    assert config["prior_file"].endswith("a-CuZr.pt")
    assert config["composition"] == {"Cu": pytest.approx(0.5), "Zr": pytest.approx(0.5)}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_atoms"] == [50, 50] and set(summary["coordination"]) == {"Cu", "Zr"}
    assert summary["density_g_cm3"] == pytest.approx([7.13, 7.13], abs=1e-3)
    # the training data's chemistry is recorded in the prior: all three pairs are first-shell neighbours
    assert set(summary["reference"]["shortest_pairs"]) == {"Cu-Cu", "Cu-Zr", "Zr-Zr"}

    example = tmp_path / "md.extxyz"
    assert runner.invoke(app, ["example", "a-CuZr", "--out", str(example)]).exit_code == 0
    analysis = tmp_path / "analysis"
    result = runner.invoke(app, ["analyze", str(out / "structures.extxyz"), "--reference", str(example),
                                 "--out", str(analysis), "--no-energy", "--max-ring", "4"])  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads((analysis / "analysis.json").read_text())
    assert set(report["pair_distribution"]["peaks_A"]) >= {"Cu-Zr", "total_xray", "total_neutron"}
    if ovito_available():
        voronoi = report["voronoi_indices"]["centre"]
        assert voronoi["Cu"]["n_atoms"] == 50 and len(voronoi["Cu"]["icosahedral"]["per_structure"]) == 2
        assert report["reference"]["voronoi_indices"]["centre"]["Cu"]["icosahedral"]["mean"] > 0.02
