"""Target files: parsing, units, resampling, weights and one clear error per kind of bad input."""

import numpy as np
import pytest
import torch

from specguide.diffusion.targets import core_mask, load_target, parse_target_spec
from specguide.io import InputError


def write(path, x, y, err=None, header="# r g(r)\n"):
    columns = [x, y] if err is None else [x, y, err]
    path.write_text(header + "\n".join(" ".join(f"{v:.10g}" for v in row) for row in zip(*columns)) + "\n")
    return path


def test_spec_parsing_with_options_and_commas_inside_columns(tmp_path):
    spec = parse_target_spec(f"xrd:{tmp_path / 'a.dat'}:units=nm-1,weight=0.5,columns=1,3,4,scale=fit")
    assert spec.kind == "xrd" and spec.path == tmp_path / "a.dat"
    assert spec.options == {"units": "nm-1", "weight": "0.5", "columns": "1,3,4", "scale": "fit"}
    assert parse_target_spec("gr:data.dat").options == {}
    for bad, message in [
        ("data.dat", "KIND:FILE"),
        ("foo:data.dat", "unknown kind"),
        ("gr:d.dat:colour=red", "colour"),
    ]:
        with pytest.raises(InputError, match=message):
            parse_target_spec(bad)


def test_nanometres_give_the_same_target_as_angstrom(tmp_path):
    r = np.linspace(0.0, 9.0, 451)
    g = 1 + np.exp(-((r - 2.35) ** 2) / 0.02) * 3 - np.exp(-r)
    in_a = load_target(f"gr:{write(tmp_path / 'a.dat', r, g)}", half_cell=7.0)
    in_nm = load_target(f"gr:{write(tmp_path / 'nm.dat', r / 10, g)}:units=nm", half_cell=7.0)
    torch.testing.assert_close(in_a.y, in_nm.y)
    assert float(in_a.observable.grid[-1]) <= 7.0  # limited by half the cell
    np.testing.assert_allclose(in_a.y.numpy(), np.interp(in_a.observable.grid.numpy(), r, g), atol=1e-12)

    q = np.linspace(0.3, 25.0, 500)
    f = q * np.sin(q) * np.exp(-0.1 * q)
    in_inv_a = load_target(f"fq:{write(tmp_path / 'fq.dat', q, f)}", half_cell=7.0)
    in_inv_nm = load_target(f"fq:{write(tmp_path / 'fqnm.dat', q * 10, f * 10)}:units=nm-1", half_cell=7.0)
    torch.testing.assert_close(in_inv_a.y, in_inv_nm.y)
    assert float(in_inv_a.observable.grid[0]) >= 0.5 and float(in_inv_a.observable.grid[-1]) <= 20.0 + 1e-9


def test_error_column_and_range_become_point_weights(tmp_path):
    r = np.linspace(0.5, 8.0, 300)
    err = np.where(r < 4, 0.1, 0.2)
    target = load_target(f"gr:{write(tmp_path / 'e.dat', r, 1 + 0 * r + np.sin(r), err)}:range=1-6", half_cell=9.0)
    grid, weights = target.observable.grid.numpy(), target.point_weights.numpy()
    assert (weights[(grid < 1) | (grid > 6)] == 0).all()
    inside = (grid > 1.1) & (grid < 3.9)
    outer = (grid > 4.1) & (grid < 5.9)
    assert weights[inside].mean() == pytest.approx(4 * weights[outer].mean(), rel=1e-6)  # 1/err² ratio
    assert target.weight == 1.0 and not target.fit_scale


def test_core_mask_ends_at_the_first_neighbour_onset_of_each_real_space_kind():
    # one Gaussian shell, g = 2 exp(-(r - 2.35)² / 2s²): it reaches 1 % of its maximum at 2.35 - s sqrt(2 ln 100)
    r = 0.01 + 0.02 * np.arange(400)
    s, rho = 0.12, 0.05
    g = 2.0 * np.exp(-((r - 2.35) ** 2) / (2 * s**2))
    onset = 2.35 - s * np.sqrt(2 * np.log(100))
    np.testing.assert_array_equal(core_mask("gr", r, g), r < onset)
    np.testing.assert_array_equal(core_mask("rdf", r, 4 * np.pi * rho * r**2 * g), r < onset)
    # G = 4πρr(g − 1) is lowest where d[r(g − 1)]/dr = g − 1 + r g' = 0, found here by bisection
    slope = lambda x: (2 * np.exp(-((x - 2.35) ** 2) / (2 * s**2))) * (1 - x * (x - 2.35) / s**2) - 1  # noqa: E731
    lo, hi = 1.5, 2.3
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        lo, hi = (lo, mid) if slope(mid) > 0 else (mid, hi)
    end = r[~core_mask("pdf", r, 4 * np.pi * rho * r * (g - 1))][0]
    assert abs(end - lo) <= 0.02
    assert 2.0 * np.exp(-((lo - 2.35) ** 2) / (2 * s**2)) < 0.05 * 2.0  # G turns up where the shell begins
    # data that start past the onset have no core; other kinds have none defined
    assert not core_mask("gr", r[r > 2.2], g[r > 2.2]).any()
    with pytest.raises(ValueError, match="real-space"):
        core_mask("sq", r, g)


def test_core_option_weights_the_excluded_core(tmp_path):
    r = np.linspace(0.5, 8.0, 400)
    g = 2.0 * np.exp(-((r - 2.35) ** 2) / (2 * 0.12**2)) + (r > 2.35) * (1 - np.exp(-(r - 2.35)))
    target = load_target(f"gr:{write(tmp_path / 'g.dat', r, g)}:core=10", half_cell=9.0)
    grid, weights = target.observable.grid.numpy(), target.point_weights.numpy()
    core = core_mask("gr", grid, target.y.numpy()) & (grid >= 0.5)
    assert core.sum() > 50 and grid[core].max() < 2.0
    np.testing.assert_allclose(weights[core], 10.0)
    np.testing.assert_allclose(weights[~core & (grid >= 0.5)], 1.0)
    assert (weights[grid < 0.5] == 0).all()  # outside the data: still no weight
    q = np.linspace(1, 12, 200)
    with pytest.raises(InputError, match="core=") as info:
        load_target(f"xrd:{write(tmp_path / 'x.dat', q, 100 + np.cos(q))}:core=10", half_cell=6.0)
    assert "x.dat" in str(info.value)


def test_xrd_fits_scale_and_offset_by_default(tmp_path):
    q = np.linspace(1, 12, 200)
    target = load_target(f"xrd:{write(tmp_path / 'x.dat', q, 100 + np.cos(q))}", half_cell=6.0)
    assert target.fit_scale and target.fit_offset
    fixed = load_target(f"xrd:{tmp_path / 'x.dat'}:scale=fixed,offset=fixed", half_cell=6.0)
    assert not fixed.fit_scale and not fixed.fit_offset


@pytest.mark.parametrize(
    "content, spec_suffix, message",
    [
        ("1 1\n2 nan\n3 1\n4 1\n5 1\n6 1\n", "", "NaN"),
        ("1 1\n3 1\n2 1\n4 1\n5 1\n6 1\n", "", "increase"),
        ("0.01 0\n0.02 0\n0.03 1\n0.04 1\n0.05 1\n0.06 1\n", "", "units=nm"),
        ("1 1\n2 1\n3 1\n4 1\n5 1\n6 1\n", ":units=parsec", "units"),
        ("1 1\n2 1\n3 1\n4 1\n5 1\n6 1\n", ":range=7-8", "overlap"),
        ("1 1\n2 1\n3 1\n", "", "at least 5"),
        ("1 1 0\n2 1 1\n3 1 1\n4 1 1\n5 1 1\n6 1 1\n", "", "error column"),
        ("1 0\n2 0\n3 0\n4 0\n5 0\n6 0\n", "", "zero everywhere"),
    ],
)
def test_bad_real_space_targets_name_the_file_and_the_fix(tmp_path, content, spec_suffix, message):
    path = tmp_path / "bad.dat"
    path.write_text(content)
    with pytest.raises(InputError, match=message) as info:
        load_target(f"gr:{path}{spec_suffix}", half_cell=8.0)
    assert "bad.dat" in str(info.value) or "--target" in str(info.value)


def test_reciprocal_target_outside_the_usable_q_range_is_refused(tmp_path):
    q = np.linspace(30, 60, 50)
    with pytest.raises(InputError, match="overlaps"):
        load_target(f"sq:{write(tmp_path / 's.dat', q, 1 + 0 * q)}", half_cell=8.0)
