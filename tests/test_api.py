"""specguide.api: one function per command, taking ase.Atoms or arrays as well as files; Target.from_arrays."""

import ase
import ase.build
import numpy as np
import pytest

from specguide import api
from specguide.io import InputError
from specguide.observables.target import Target


@pytest.fixture(scope="module")
def silicon():
    atoms = ase.build.bulk("Si", "diamond", 5.43, cubic=True).repeat(2)
    atoms.rattle(0.1, seed=0)
    return atoms


def test_every_command_has_its_function():
    from typer.main import get_command

    from specguide.cli import app

    names = {"spectrum": "compute_spectrum", "example": "example", "md": "melt_quench", "train-prior": "train_prior",
             "train-surrogate": "train_surrogate", "generate": "generate", "invert": "invert", "demo": "demo",
             "analyze": "analyze", "sites": "sites_generate"}  # fmt: skip
    assert set(get_command(app).commands) == set(names)
    for function in names.values():
        assert callable(getattr(api, function)) and getattr(api, function).__doc__


def test_the_command_line_runs_every_command_through_the_api():
    """The CLI parses and prints: it imports none of the working functions that :mod:`specguide.api` wraps."""
    import ast
    from pathlib import Path

    import specguide.cli

    wrapped = {
        ("specguide.diffusion.sampler", "generate"),
        ("specguide.diffusion.sampler", "generate_seeds"),
        ("specguide.diffusion.inversion", "invert"),
        ("specguide.diffusion.inversion", "invert_seeds"),
        ("specguide.training.prior", "train_prior"),
        ("specguide.training.surrogate", "train_surrogate"),
        ("specguide.simulate.lammps", "melt_quench_replicas"),
        ("specguide.analysis.report", "analyze"),
        ("specguide.sites.api", "generate_sites"),
        ("specguide.sites.api", "evaluate_sites"),
        ("specguide.training.sites", "train_site_model"),
        ("specguide.demo", "run_demo"),
        ("specguide.observables.spectrum", "compute_spectrum"),
        ("specguide.pretrained", "example_structure"),
    }
    api_source = ast.parse(Path(api.__file__).read_text())
    used_by_api = {(node.module, alias.name) for node in ast.walk(api_source) if isinstance(node, ast.ImportFrom)
                   for alias in node.names}  # fmt: skip
    assert wrapped <= used_by_api | {("specguide.observables.spectrum", "compute_spectrum")}
    found = set()
    for path in Path(specguide.cli.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                found |= {(node.module, alias.name) for alias in node.names} & wrapped
    assert not found, f"the CLI calls {sorted(found)} directly; call specguide.api"


def test_spectra_of_atoms_and_of_files_agree(silicon, tmp_path):
    silicon.write(tmp_path / "si.extxyz")
    x, y, _ = api.compute_spectrum(silicon, "gr", r_max=5.0)
    x2, y2, _ = api.compute_spectrum(tmp_path / "si.extxyz", "gr", r_max=5.0)
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_allclose(y, y2, rtol=1e-6, atol=1e-7)  # extxyz keeps 8 digits of a position
    overlapping = silicon.copy()
    overlapping.positions[1] = overlapping.positions[0] + 0.1
    with pytest.raises(InputError, match="atoms overlap"):
        api.compute_spectrum(overlapping, "gr", r_max=5.0)


def test_a_target_from_arrays_fits_the_structure_it_came_from(silicon):
    from specguide.graph import batch_from_atoms

    x, y, _ = api.compute_spectrum(silicon, "gr", r_max=5.0)
    target = Target.from_arrays("gr", x, y, np.full_like(y, 0.05))
    assert target.kind == "gr" and target.label == "gr:arrays" and not target.fit_scale
    assert float(target.point_weights.mean()) == pytest.approx(1.0)
    positions, cells, numbers, batch = batch_from_atoms([silicon])
    assert float(target.evaluate(positions.double(), cells.double(), numbers, batch)[1][0]) < 1e-3
    xrd = Target.from_arrays("xrd", np.linspace(2.0, 8.0, 50), np.ones(50), r_max=5.0)
    assert xrd.fit_scale and xrd.fit_offset  # the row's default for intensities in arbitrary units
    assert float(xrd.observable.grid.min()) >= 2.0 and float(xrd.observable.grid.max()) <= 8.0
    with pytest.raises(ValueError, match="same length"):
        Target.from_arrays("gr", x, y[:-1])


def test_invert_and_analyze_take_objects(silicon):
    x, y, _ = api.compute_spectrum(silicon, "gr", r_max=5.0)
    result = api.invert("a-Si", [Target.from_arrays("gr", x, y)], density_g_cm3=2.33, n_atoms=64, n_replicas=1,
                        steps=4, preset="fast", progress=False)  # fmt: skip
    assert "gr:arrays" in result.summary["losses"] and len(result.structures) == 1
    assert result.config["invert"]["targets"] == ["gr:arrays"]
    analysis = api.analyze(result.structures, reference=[silicon], cutoffs=["Si-Si=2.85"], energy=False, max_ring=6)
    assert "Si" in analysis.summary["coordination"]
    assert isinstance(api.example("a-Si"), ase.Atoms)
    with pytest.raises(ValueError, match="no bundled data set"):
        api.example("a-Xx")
