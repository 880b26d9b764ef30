"""`specguide train-surrogate`, `spectrum --kind xanes --surrogate` and `invert --target xanes:FILE`, end to end."""

import json
import re

import numpy as np
import pytest
from typer.testing import CliRunner

from specguide.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def checkpoint(tiny_spectra_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("surrogate") / "xanes.pt"
    args = ["train-surrogate", "--structures", str(tiny_spectra_dir / "structures"), "--spectra",
            str(tiny_spectra_dir / "spectra"), "--max-epochs", "3", "--hidden", "16", "--layers", "2",
            "--out", str(out)]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert out.is_file()
    assert "vs coordination lookup" in result.output and "density-group mean" in result.output
    again = runner.invoke(app, args)
    assert again.exit_code == 2 and "--force" in again.output
    return out


def test_train_surrogate_reports_bad_data_in_one_line(tiny_spectra_dir, tmp_path):
    bad = tmp_path / "spectra"
    bad.mkdir()
    for k in range(5):
        matrix = np.loadtxt(tiny_spectra_dir / "spectra" / f"s{k}.txt")
        np.savetxt(bad / f"s{k}.txt", matrix[:-1] if k == 2 else matrix)
    args = ["train-surrogate", "--structures", str(tiny_spectra_dir / "structures"), "--spectra", str(bad),
            "--max-epochs", "1", "--out", str(tmp_path / "x.pt")]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert "s2.txt: 15 spectrum rows but the structure has 16 atoms" in result.output
    assert not (tmp_path / "x.pt").exists()


def test_spectrum_kind_xanes(checkpoint, tiny_spectra_dir, tmp_path):
    structure = tiny_spectra_dir / "structures" / "s1.vasp"
    result = runner.invoke(app, ["spectrum", str(structure), "--kind", "xanes", "--surrogate", str(checkpoint)])
    assert result.exit_code == 0, result.output
    rows = np.loadtxt(result.stdout.splitlines())
    assert rows.shape == (20, 2)
    np.testing.assert_allclose(rows[:, 0], np.arange(20))
    assert "index" in result.stdout and "mean over all Si" in result.stdout

    per_atom = runner.invoke(app, ["spectrum", str(structure), "--kind", "xanes", "--surrogate", str(checkpoint),
                                   "--per-atom"])  # fmt: skip
    table = np.loadtxt(per_atom.stdout.splitlines())
    assert table.shape == (20, 17)
    np.testing.assert_allclose(table[:, 1:].mean(1), rows[:, 1], rtol=1e-5, atol=1e-6)

    missing = runner.invoke(app, ["spectrum", str(structure), "--kind", "xanes"])
    assert missing.exit_code == 2 and "--surrogate" in missing.output
    wrong = runner.invoke(app, ["spectrum", str(structure), "--kind", "exafs", "--surrogate", str(checkpoint)])
    assert wrong.exit_code == 2 and "xanes surrogate" in wrong.output


def test_invert_with_a_xanes_target(checkpoint, tiny_spectra_dir, tmp_path):
    target = tmp_path / "target_xanes.dat"
    result = runner.invoke(app, ["spectrum", str(tiny_spectra_dir / "structures" / "s2.vasp"), "--kind", "xanes",
                                 "--surrogate", str(checkpoint), "--out", str(target)])  # fmt: skip
    assert result.exit_code == 0, result.output
    out = tmp_path / "run"
    args = ["invert", "--prior", "a-Si", "--target", f"xanes:{target}", "--surrogate", str(checkpoint),
            "--density", "2.33", "--atoms", "64", "--replicas", "1", "--steps", "8", "--preset", "fast",
            "--out", str(out)]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    loss = summary["losses"][f"xanes:{target.name}"]
    assert np.isfinite(loss["mean"])
    fit = np.loadtxt(next(out.glob("fit_xanes*.dat")))
    assert fit.shape == (20, 6)  # grid, fitted data, ensemble mean, std, weight, data as measured
    no_surrogate = runner.invoke(app, [*args[:5], *args[7:-1], str(tmp_path / "other")])
    assert no_surrogate.exit_code == 2 and "--surrogate" in no_surrogate.output


def test_spectrum_kind_exafs_with_the_bundled_surrogate(tmp_path):
    import ase.io

    from specguide.pretrained import load_md_dataset
    from specguide.simulate.feff import EXAFS_GRID_K

    structure = tmp_path / "held_out.extxyz"
    ase.io.write(structure, load_md_dataset("a-Si_2.5", split="test")[0])
    result = runner.invoke(app, ["spectrum", str(structure), "--kind", "exafs", "--surrogate", "Si-K_EXAFS"])
    assert result.exit_code == 0, result.output
    rows = np.loadtxt(result.stdout.splitlines())
    assert rows.shape == (len(EXAFS_GRID_K), 2) and np.isfinite(rows).all()
    np.testing.assert_allclose(rows[:, 0], EXAFS_GRID_K, atol=1e-6)
    assert "Si K-edge EXAFS" in result.stdout and "Si-K_EXAFS.pt" in result.stdout
    unknown = runner.invoke(app, ["spectrum", str(structure), "--kind", "exafs", "--surrogate", "Si-K_nonexistent"])
    assert unknown.exit_code == 2 and re.search(r"bundled: [^)]*Si-K_EXAFS", unknown.output)
