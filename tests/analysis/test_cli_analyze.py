"""`specguide analyze` end to end, and its one-line errors with exit code 2."""

import json

import ase.build
import ase.io
import numpy as np
from typer.testing import CliRunner

from specguide.cli import app
from specguide.pretrained import load_md_dataset

runner = CliRunner()


def test_analyze_writes_metrics_and_figure_against_a_reference(tmp_path):
    frames = load_md_dataset("a-Si_2.5", split="test")
    ase.io.write(tmp_path / "generated.extxyz", frames[:1])
    ase.io.write(tmp_path / "md.extxyz", load_md_dataset("a-Si_2.5", split="train")[:3])
    out = tmp_path / "analysis"
    args = ["analyze", str(tmp_path / "generated.extxyz"), "--reference", str(tmp_path / "md.extxyz"),
            "--out", str(out), "--max-ring", "8"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "analysis.json").read_text())
    fractions = summary["coordination"]["Si"]
    assert abs(sum(fractions.values()) - 1) < 1e-12
    assert fractions["4"] > 0.8  # MD a-Si is mostly four-fold
    assert set(summary["delta_ed"]["delta_ed"]) == {"PDF", "ADF", "XRD", "ND"}
    assert summary["reference"]["n_structures"] == 3
    assert -4.6 < summary["energy_per_atom_eV"]["mean"] < -4.3
    assert (out / "analysis.png").stat().st_size > 10_000
    assert json.loads((out / "config.json").read_text())["max_ring"] == 8
    again = runner.invoke(app, args)  # never overwrites silently
    assert again.exit_code == 2 and "--force" in again.output


def test_given_cutoffs_are_used(tmp_path):
    ase.io.write(tmp_path / "si.extxyz", ase.build.bulk("Si", "diamond", 5.43, cubic=True).repeat(2))
    out = tmp_path / "out"
    args = ["analyze", str(tmp_path / "si.extxyz"), "--out", str(out), "--cutoff", "Si-Si=2.6", "--no-energy"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "analysis.json").read_text())
    assert summary["cutoffs_A"] == {"Si-Si": 2.6} and summary["coordination"] == {"Si": {"4": 1.0}}
    from specguide.analysis.report import AnalyzeConfig
    from specguide.api import analyze

    request = AnalyzeConfig.from_dict(json.loads((out / "config.json").read_text()))  # config.json reruns it
    assert request.cutoffs == {"Si-Si": 2.6} and request.energy is False
    rerun = analyze(request.files, request.reference or None, config=request)
    assert rerun.summary["coordination"] == summary["coordination"] and rerun.summary["cutoff_source"] == "given"
    assert summary["rings"]["per_atom"] == {"6": 2.0}


def test_bad_inputs_exit_2_with_one_line(tmp_path):
    missing = runner.invoke(app, ["analyze", str(tmp_path / "nope.extxyz"), "--out", str(tmp_path / "o")])
    assert missing.exit_code == 2 and "no such file" in missing.output
    crystal = ase.build.bulk("Si", "diamond", 5.43, cubic=True)
    crystal.positions[0, 0] = np.nan
    ase.io.write(tmp_path / "nan.extxyz", crystal)
    nan = runner.invoke(app, ["analyze", str(tmp_path / "nan.extxyz"), "--out", str(tmp_path / "o")])
    assert nan.exit_code == 2 and "NaN" in nan.output
    ase.io.write(tmp_path / "ok.extxyz", crystal.repeat(1)[1:])
    bad_cutoff = runner.invoke(app, ["analyze", str(tmp_path / "ok.extxyz"), "--out", str(tmp_path / "o"),
                                     "--cutoff", "Si-Si=abc"])  # fmt: skip
    assert bad_cutoff.exit_code == 2 and "PAIR=" in bad_cutoff.output
