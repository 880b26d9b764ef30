"""`specguide demo` (the README's first command) end to end, at toy settings so that it stays quick."""

import json

from typer.testing import CliRunner

from specguide.cli import app
from specguide.demo import run_demo

runner = CliRunner()


def test_demo_writes_everything_it_promises(tmp_path):
    result, comparison = run_demo(tmp_path / "demo", n_replicas=1, n_atoms=64, steps=16, n_restarts=0,
                                  progress=False)  # fmt: skip
    names = {p.name for p in (tmp_path / "demo").iterdir()}
    assert {"structures.extxyz", "summary.json", "config.json", "report.png", "target_gr.dat",
            "reference.extxyz", "fit_gr_target_gr.dat"} <= names  # fmt: skip
    summary = json.loads((tmp_path / "demo" / "summary.json").read_text())
    assert summary["demo"]["four_fold_pct_reference"] > 80  # the held-out MD replica is near four-fold
    assert 0 <= comparison["four_fold_pct_generated"] <= 100


def test_demo_cli_refuses_to_overwrite(tmp_path):
    (tmp_path / "demo").mkdir()
    (tmp_path / "demo" / "keep.txt").write_text("results")
    result = runner.invoke(app, ["demo", "--out", str(tmp_path / "demo")])
    assert result.exit_code == 2 and "--force" in result.output
    assert (tmp_path / "demo" / "keep.txt").read_text() == "results"
