"""Property-based tests: random files and values never give a traceback, a hang, or an exit 0 with invalid output.

Every input path a user reaches (target specs, measured-data files, structure files, CLI grid options) either
succeeds with finite, well-formed results or refuses with ``InputError`` (exit 2 on the command line).
"""

import json
import math

import ase.build
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from specguide.cli import app
from specguide.io import InputError, read_structures
from specguide.observables.datafiles import read_measured
from specguide.observables.measured import load_target, parse_target_spec

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
number = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=32),
    st.sampled_from([0.0, -1.0, 1e-30, 1e30, 2.35, 1.0]),
)
token = st.one_of(number.map(lambda v: f"{v:g}"), st.sampled_from(["nan", "inf", "-", "x", "#", ",", "G(r)", "Q"]))
line = st.lists(token, min_size=0, max_size=5).map(" ".join)


@FAST
@given(st.text(max_size=60))
def test_any_target_spec_parses_or_is_refused_with_input_error(text):
    try:
        spec = parse_target_spec(text)
    except InputError:
        return
    assert spec.kind and str(spec.path)


@FAST
@given(st.lists(line, min_size=0, max_size=30), st.sampled_from(["gr", "pdf", "sq", "fq", "xrd", "adf"]),
       st.sampled_from([".dat", ".gr", ".xye", ".mint01", ".chi", ".sq"]))  # fmt: skip
def test_any_data_file_loads_as_a_finite_target_or_is_refused(tmp_path, lines, kind, suffix):
    path = tmp_path / f"data{suffix}"
    path.write_text("\n".join(lines) + "\n")
    try:
        target = load_target(f"{kind}:{path}", half_cell=8.0, composition={"Si": 1.0}, number_density=0.05)
    except InputError:
        return
    assert np.isfinite(target.y.numpy()).all() and np.isfinite(target.point_weights.numpy()).all()
    assert float(target.point_weights.sum()) > 0


@FAST
@given(st.lists(st.tuples(number, number, number), min_size=0, max_size=40))
def test_any_numeric_table_reads_as_finite_sorted_data_or_is_refused(tmp_path, rows):
    path = tmp_path / "curve.dat"
    path.write_text("\n".join(" ".join(f"{v!r}" for v in row) for row in rows) + "\n")
    try:
        data = read_measured(path)
    except InputError:
        return
    assert np.isfinite(data.x).all() and np.isfinite(data.y).all() and (np.diff(data.x) > 0).all()
    assert data.err is None or (data.err > 0).all()


@FAST
@given(st.binary(max_size=300), st.sampled_from([".extxyz", ".xyz", ".vasp", ".cif", ".data", ".lammpstrj"]))
def test_any_structure_file_reads_as_finite_structures_or_is_refused(tmp_path, content, suffix):
    path = tmp_path / f"structure{suffix}"
    path.write_bytes(content)
    try:
        frames = read_structures(path)
    except InputError:
        return
    for atoms in frames:
        assert len(atoms) > 0 and np.isfinite(atoms.positions).all()


@pytest.fixture(scope="module")
def crystal(tmp_path_factory):
    path = tmp_path_factory.mktemp("crystal") / "si.extxyz"
    atoms = ase.build.bulk("Si", "diamond", 5.43, cubic=True).repeat(2)
    atoms.rattle(0.05, seed=1)
    atoms.write(path)
    return path


# derandomized: each example builds real grids, and CI must not meet a new memory-hungry one by chance (explore
# by setting derandomize=False and running with --hypothesis-seed=N; 60 seeds passed under ulimit -v 8 GB)
@settings(max_examples=25, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.sampled_from(["gr", "pdf", "sq", "adf"]),
    st.dictionaries(st.sampled_from(["--sigma", "--dr", "--q-min", "--q-max", "--dq", "--r-max"]),
                    st.one_of(number, st.integers(-5, 50).map(float)), max_size=3),
)  # fmt: skip
def test_spectrum_options_give_valid_output_or_one_line_and_exit_2(crystal, kind, options):
    args = ["spectrum", str(crystal), "--kind", kind]
    for key, value in options.items():
        args += [key, repr(value) if math.isfinite(value) else str(value)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code in (0, 2), result.output
    if result.exit_code == 2:
        assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output
        return
    rows = [row for row in result.stdout.splitlines() if not row.startswith("#")]
    table = np.loadtxt(rows, ndmin=2)
    assert table.shape[1] == 2 and np.isfinite(table).all()


def test_written_json_is_always_valid(tmp_path):
    from specguide.io import write_json

    write_json(tmp_path / "a.json", {"x": [float("nan"), np.float64("inf"), np.array([1.0, np.nan])]})
    assert json.loads((tmp_path / "a.json").read_text()) == {"x": [None, None, [1.0, None]]}
