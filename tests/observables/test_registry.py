"""The table of observables: every row builds its class, and what lists kinds reads the table.

The last test adds a kind the package does not have — a neutron-weighted G(r) — as one class and one row, and
follows it through everything that reads the table: target parsing, data conversion, the excluded core, the default
fit, the observable's grid and the inversion's density-scan weights.
"""

import dataclasses
import json

import numpy as np
import pytest
import torch

from specguide.cli import Kind
from specguide.diffusion.inversion import _shell_weights
from specguide.models.surrogate import KINDS as SURROGATE_NETWORK_KINDS
from specguide.observables.base import Observable
from specguide.observables.measured import core_mask, load_target, parse_target_spec
from specguide.observables.pdf import ReducedPairDistribution
from specguide.observables.registry import (
    KINDS,
    SPECS,
    SURROGATE_KINDS,
    GridOptions,
    ObservableSpec,
    build_observable,
    kind_help,
    kinds_of,
)


@pytest.mark.parametrize("kind", [k for k in KINDS if not SPECS[k].surrogate])
def test_every_row_builds_an_observable_of_its_kind(kind):
    observable = build_observable(kind, r_max=6.0)
    assert isinstance(observable, SPECS[kind].observable_class()) and isinstance(observable, Observable)
    assert observable.kind == kind and observable.grid.numel() > 10


def test_surrogate_rows_name_the_surrogate_class_and_need_a_checkpoint():
    assert SURROGATE_KINDS == SURROGATE_NETWORK_KINDS == ("xanes", "exafs")
    for kind in SURROGATE_KINDS:
        assert SPECS[kind].observable_class().__name__ == "SurrogateSpectrum"
        with pytest.raises(ValueError, match="--surrogate CKPT"):
            build_observable(kind)
    assert build_observable("exafs", surrogate="Si-K_EXAFS").kind == "exafs"


def test_the_cli_and_the_messages_read_the_table():
    assert [k.value for k in Kind] == list(KINDS)
    assert kind_help().startswith("gr: g(r); pdf: G(r); rdf: 4πr²ρg(r); adf: bond angles; sq: S(Q)")
    assert kinds_of("I(Q)") == "xrd or nd" and kinds_of("G(r)") == "pdf" and kinds_of("nothing") == ""
    with pytest.raises(TypeError, match="colour"):
        build_observable("gr", colour="red")
    with pytest.raises(ValueError, match="unknown kind 'spectrum'"):
        build_observable("spectrum")


class NeutronPDF(ReducedPairDistribution):
    """G(r), neutron-weighted whatever the target says (the one new file of a new observable)."""

    kind = "npdf"
    quantity = "G(r), neutron-weighted"

    def __init__(self, r_max: float = 8.0, dr: float = 0.02, sigma: float = 0.15) -> None:
        super().__init__(r_max=r_max, dr=dr, sigma=sigma, weighting="neutron")


def test_a_new_observable_is_one_class_and_one_row(tmp_path, monkeypatch):
    row = ObservableSpec("npdf", NeutronPDF, ("r_max", "dr", "sigma"), "real", "G(r)", "neutron-weighted G(r)",
                         shape=SPECS["pdf"].shape, core="minimum")  # fmt: skip
    monkeypatch.setitem(SPECS, "npdf", row)
    assert "npdf: neutron-weighted G(r)." in kind_help()
    assert isinstance(build_observable("npdf", r_max=5.0, weighting="xray"), NeutronPDF)  # takes what it needs

    r = np.arange(0.01, 9.0, 0.02)
    g = np.where(r < 1.4, 0.0, 1 + 2.5 * np.exp(-((r - 1.6) ** 2) / 0.01) + 0.3 * np.exp(-((r - 2.6) ** 2) / 0.05))
    big_g = 4 * np.pi * 0.066 * r * (g - 1)  # G(r) of silica's number density
    path = tmp_path / "neutron.gr"
    path.write_text("# r G(r)\n" + "\n".join(f"{a:.5f} {b:.8f}" for a, b in zip(r, big_g)))

    spec = parse_target_spec(f"npdf:{path}:core=10")
    target = load_target(spec, half_cell=7.0)
    assert target.kind == "npdf" and isinstance(target.observable, NeutronPDF)
    assert target.observable.weighting == "neutron"
    assert not (target.fit_scale or target.fit_offset)  # the row's default: fixed
    grid = target.observable.grid.numpy()
    core = core_mask("npdf", grid, target.y.numpy())
    assert core.any() and grid[core].max() < 1.4  # the G(r) rule of the row: below the lowest point before the peak
    np.testing.assert_allclose(target.point_weights.numpy()[core], 10.0)
    shell = _shell_weights(target, None)  # density scans weigh real-space rows beyond the first shell
    assert shell is not None and float(shell.point_weights[grid < 1.7].sum()) == 0.0
    with pytest.raises(ValueError, match="holds S\\(Q\\), not what npdf fits; give it as sq:"):
        load_target(f"npdf:{path}:quantity=S(Q)", half_cell=7.0)  # the row accepts G(r) only


def test_a_new_row_is_a_kind_of_specguide_invert(tmp_path, monkeypatch):
    """The same row, used through the command line: ``specguide invert --target npdf:FILE``."""
    import ase.build
    from typer.testing import CliRunner

    from specguide.api import compute_spectrum
    from specguide.cli import app

    monkeypatch.setitem(SPECS, "npdf", ObservableSpec("npdf", NeutronPDF, ("r_max", "dr", "sigma"), "real", "G(r)",
                                                      "neutron-weighted G(r)", shape=SPECS["pdf"].shape,
                                                      core="minimum"))  # fmt: skip
    atoms = ase.build.bulk("Si", "diamond", 5.43, cubic=True).repeat(2)
    atoms.rattle(0.1, seed=0)
    atoms.write(tmp_path / "seed.extxyz")
    x, y, _ = compute_spectrum(tmp_path / "seed.extxyz", "pdf", weighting="neutron", r_max=5.0)
    path = tmp_path / "si.gr"
    np.savetxt(path, np.column_stack([x, y]), header="r G(r)")
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["invert", "--prior", "a-Si", "--target", f"npdf:{path}:core=10", "--density",
                                      "2.33", "--atoms", "64", "--replicas", "1", "--steps", "8", "--seed", "4",
                                      "--preset", "fast", "--out", str(out)])  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert f"npdf:{path.name}" in summary["losses"] and (out / "report.png").exists()


def test_rows_are_checked_when_the_table_is_made():
    with pytest.raises(ValueError, match="unknown space"):
        from specguide.observables.registry import _rows

        _rows(dataclasses.replace(SPECS["gr"], space="time"))
    assert GridOptions().r_max == 8.0 and torch.is_tensor(build_observable("gr").grid)
