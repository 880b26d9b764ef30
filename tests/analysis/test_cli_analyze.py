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


def test_analyze_reports_voronoi_indices_and_weighted_pair_distributions_of_a_cuzr_glass(tmp_path):
    from specguide.analysis.order import ovito_available

    ase.io.write(tmp_path / "glass.extxyz", load_md_dataset("Cu64Zr36_q100", split="test"))
    out = tmp_path / "analysis"
    result = runner.invoke(app, ["analyze", str(tmp_path / "glass.extxyz"), "--out", str(out), "--no-energy"])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "analysis.json").read_text())
    # every pair's first shell is found without --cutoff, each cutoff past its pair's first peak
    peaks = summary["pair_distribution"]["peaks_A"]
    assert set(summary["cutoffs_A"]) == {"Cu-Cu", "Cu-Zr", "Zr-Zr"}
    assert all(summary["cutoffs_A"][pair] > peaks[pair]["first_peak"] + 0.3 for pair in summary["cutoffs_A"])
    # the Goldschmidt metallic diameters (Cu 2.56, Zr 3.20 Å): like and unlike first neighbours in between
    assert peaks["Cu-Cu"]["first_peak"] < peaks["Cu-Zr"]["first_peak"] < peaks["Zr-Zr"]["first_peak"]
    assert abs(peaks["Cu-Cu"]["first_peak"] - 2.56) < 0.1 and abs(peaks["Zr-Zr"]["first_peak"] - 3.2) < 0.15
    table = np.loadtxt(out / "pair_distribution.dat")
    header = (out / "pair_distribution.dat").read_text().splitlines()[0].split("columns: ")[1].split()
    assert header == ["r_A", "Cu-Cu", "Cu-Zr", "Zr-Zr", "total_number", "total_xray", "total_neutron"]
    assert table.shape[1] == len(header) and abs(table[-1, 5] - 1) < 0.1  # g(r) → 1 at large r
    if ovito_available():
        voronoi = summary["voronoi_indices"]["centre"]
        assert voronoi["Cu"]["icosahedral"]["mean"] > voronoi["Zr"]["icosahedral"]["mean"]
        assert "<0,0,12,0>" in voronoi["Cu"]["top_indices"] and "Voronoi <0,0,12,0>: Cu" in result.output


def test_analyze_on_cpu_and_auto_gives_the_same_analysis_and_records_the_device(tmp_path):
    """--device cpu and the default (auto) write the same analysis.json on a machine without a GPU (the torch part,
    g(r) and Delta_ED spectra, runs on the device; tests/test_gpu_parity.py compares it on a GPU); config.json
    records the device asked for and the one used, and reruns with it."""
    import torch

    from conftest import noisy_silicon_frames
    from specguide.analysis.report import AnalyzeConfig

    frames = noisy_silicon_frames(3, seed=4)
    ase.io.write(tmp_path / "ours.extxyz", frames[:1])
    ase.io.write(tmp_path / "md.extxyz", frames[1:])
    base = ["analyze", str(tmp_path / "ours.extxyz"), "--reference", str(tmp_path / "md.extxyz"), "--no-energy",
            "--max-ring", "6"]  # fmt: skip
    written = {}
    for name, extra in (("cpu", ["--device", "cpu"]), ("auto", [])):
        result = runner.invoke(app, [*base, *extra, "--out", str(tmp_path / name)])
        assert result.exit_code == 0, result.output
        written[name] = ((tmp_path / name / "analysis.json").read_text(),
                         json.loads((tmp_path / name / "config.json").read_text()))  # fmt: skip
    assert written["cpu"][1]["device"] == "cpu" and written["cpu"][1]["resolved"] == {"device": "cpu"}
    assert written["auto"][1]["device"] == "auto"
    assert set(json.loads(written["cpu"][0])["delta_ed"]["delta_ed"]) == {"PDF", "ADF", "XRD", "ND"}
    if not torch.cuda.is_available():
        assert written["auto"][1]["resolved"] == {"device": "cpu"}
        assert written["auto"][0] == written["cpu"][0]
    assert AnalyzeConfig.from_dict(written["cpu"][1]).device == "cpu"  # config.json reruns on the device asked for
