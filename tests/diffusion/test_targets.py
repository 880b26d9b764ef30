"""Target files: parsing, units, resampling, weights and one clear error per kind of bad input."""

import numpy as np
import pytest
import torch

from specguide.io import InputError
from specguide.observables.measured import Q_LIMITS, core_mask, load_target, parse_target_spec


def write(path, x, y, err=None, header=None):
    if header is None:
        labels = {"f": "Q F(Q)", "x": "Q I", "s": "Q S(Q)"}
        header = f"# {labels.get(path.name[0], 'r g(r)')}\n"
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
    grid = in_inv_a.observable.grid
    assert float(grid[0]) >= Q_LIMITS[0] and float(grid[-1]) <= Q_LIMITS[1] + 1e-9


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
    # negative bounds (energies below E0) with "..": the same weights where the grid lies inside
    negative = load_target(f"gr:{tmp_path / 'e.dat'}:range=-1..6", half_cell=9.0)
    assert (negative.point_weights.numpy()[grid > 6] == 0).all() and (
        negative.point_weights.numpy()[grid < 1] > 0
    ).any()
    with pytest.raises(InputError, match="range='6-1.5'"):
        load_target(f"gr:{tmp_path / 'e.dat'}:range=6-1.5", half_cell=9.0)


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
        ("1 1\n2 1\n3 1\n4 1\n5 1\n6 1\n1 1\n2 1\n3 1\n", "", "falls back"),
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


# ---------------------------------------------------------------------------------------------------------------
# files as labs write them
# ---------------------------------------------------------------------------------------------------------------

PDFGETX3_HEADER = """[DEFAULT]

version = diffpy.pdfgetx-2.2.1

[PDFgetX3]
dataformat = QA
inputfile = asi.chi
backgroundfile =
mode = xray
bgscale = 1
composition = Si
rpoly = 0.9
qmaxinst = 26.0
qmin = 0.6
qmax = 24.0

#### start data
#S 1
#L r($\\AA$)  G($\\AA^{-2}$)
"""


def shell_curves(r):
    """g(r) and G(r) = 4πρr(g − 1) of an a-Si-like shell model at ρ = 0.05 Å⁻³."""
    g = np.where(r < 2.1, 0.0, 1.0) + 2.5 * np.exp(-((r - 2.35) ** 2) / (2 * 0.08**2)) * (r > 2.0)
    return g, 4 * np.pi * 0.05 * r * (g - 1)


def test_a_pdfgetx3_gr_is_g_of_r_terminated_at_its_header_qmax_in_its_header_mode(tmp_path):
    r = 0.01 * np.arange(1, 1001)
    _, big_g = shell_curves(r)
    path = tmp_path / "asi.gr"
    path.write_text(PDFGETX3_HEADER + "\n".join(f"{a:.4f} {b:.6f}" for a, b in zip(r, big_g)) + "\n")
    target = load_target(f"pdf:{path}", half_cell=9.0)
    assert target.metadata["weighting"] == "xray" and target.metadata["format"] == "pdfgetx3"
    assert target.observable.termination.q_max == 24.0 and target.observable.termination.q_min == 0.6
    assert target.observable.sigma == 0.07  # measured PDF: room-temperature pair width
    override = load_target(f"pdf:{path}:qmax=none,sigma=0.15", half_cell=9.0)
    assert not hasattr(override.observable, "termination") and override.observable.sigma == 0.15
    # the same file named as g(r) is refused with the kind to use
    with pytest.raises(InputError, match="pdf:asi.gr"):
        load_target(f"gr:{path}", half_cell=9.0)


def test_g_of_r_below_minus_half_and_g_shaped_curves_given_as_g_are_refused(tmp_path):
    r = 0.01 * np.arange(1, 801)
    g, big_g = shell_curves(r)
    with pytest.raises(InputError, match="pdf:"):  # a plain two-column G(r): no header says what it is
        load_target(f"gr:{write(tmp_path / 'plain.dat', r, big_g, header='')}", half_cell=9.0)
    with pytest.raises(InputError, match="looks like g\\(r\\)"):
        load_target(f"pdf:{write(tmp_path / 'g.dat', r, g, header='')}", half_cell=9.0)
    load_target(f"gr:{write(tmp_path / 'ok.dat', r, g, header='')}", half_cell=9.0)


def test_pdfgui_four_columns_take_the_fourth_as_the_error_of_g(tmp_path):
    r = 0.01 * np.arange(100, 801)
    _, big_g = shell_curves(r)
    dg = np.where(r < 4, 0.01, 0.02)
    path = tmp_path / "fit.gr"
    rows = "\n".join(f"{a:.3f} {b:.5f} 0.0 {e:.4f}" for a, b, e in zip(r, big_g, dg))
    path.write_text("# PDFgui data\n# qmax = 22\n#L r G dr dG\n" + rows + "\n")
    target = load_target(f"pdf:{path}:qmax=none", half_cell=9.0)
    grid, weights = target.observable.grid.numpy(), target.point_weights.numpy()
    assert weights[(grid > 2) & (grid < 3.9)].mean() == pytest.approx(4 * weights[(grid > 4.1) & (grid < 7)].mean())


def test_a_pattern_in_two_theta_needs_the_wavelength(tmp_path):
    wavelength = 0.1665
    two_theta = np.linspace(2.0, 30.0, 600)
    q = 4 * np.pi * np.sin(np.radians(two_theta) / 2) / wavelength
    intensity = 100 + 20 * np.sin(2.3 * q) * np.exp(-0.1 * q)
    path = tmp_path / "pattern.xye"
    path.write_text("\n".join(f"{a:.8f} {b:.4f} {1.0:.2f}" for a, b in zip(two_theta, intensity)) + "\n")
    with pytest.raises(InputError, match="wavelength"):
        load_target(f"xrd:{path}", half_cell=9.0)
    target = load_target(f"xrd:{path}:wavelength={wavelength}", half_cell=9.0)
    grid = target.observable.grid.numpy()
    assert grid[0] >= q.min() - 0.05 and grid[-1] <= min(q.max(), 30.0) + 0.05
    np.testing.assert_allclose(np.asarray(target.raw[0]), q, rtol=1e-7)


def test_keen_f_of_q_from_gudrun_becomes_faber_ziman_with_the_composition(tmp_path):
    q_edges = np.arange(0.0, 25.0, 0.05)
    centres = q_edges + 0.025
    s_minus_1 = 0.8 * np.sin(1.6 * centres) * np.exp(-0.08 * centres)
    b_mean2 = ((4.1491 + 2 * 5.803) / 3) ** 2 / 100  # barn: SiO2, the worked example of ../shared/docs/EXPERIMENT.md
    path = tmp_path / "silica.mint01"
    rows = "\n".join(f"{a:.4f} {b:.6f} 0.001" for a, b in zip(q_edges, b_mean2 * s_minus_1))
    path.write_text("#   silica.mint01\n" + rows + "\n")
    target = load_target(f"sq:{path}", half_cell=20.0, composition={"Si": 1 / 3, "O": 2 / 3})
    assert target.metadata["weighting"] == "neutron" and target.metadata["file_quantity"] == "F_keen(Q)"
    raw_x, raw_y = (np.asarray(v) for v in target.raw)
    np.testing.assert_allclose(raw_y - 1, np.interp(raw_x, centres, s_minus_1), atol=2e-3 * 0.8)
    with pytest.raises(InputError, match="composition"):
        load_target(f"sq:{path}", half_cell=20.0)


def test_reciprocal_data_are_seen_through_the_box_and_a_small_cell_says_which_cell_would_resolve_them(tmp_path):
    q = np.linspace(0.3, 25.0, 1200)
    s = 1 + 0.9 * np.exp(-((q - 2.0) ** 2) / (2 * 0.12**2)) - 0.4 * np.exp(-((q - 1.2) ** 2) / 0.3)
    path = write(tmp_path / "sharp.sq", q, s, header="# Q S(Q)\n")
    small = load_target(f"sq:{path}", half_cell=8.0, number_density=0.05)
    large = load_target(f"sq:{path}", half_cell=40.0, number_density=0.05)
    peak = lambda t: float(t.y[(t.observable.grid > 1.8) & (t.observable.grid < 2.2)].max())  # noqa: E731
    assert peak(small) < peak(large) < 1.9 + 1e-6  # the box lowers the sharp peak, a larger box less
    (note,) = [n for n in small.metadata["notes"] if "cannot resolve" in n]
    assert "atoms" in note and not any("cannot resolve" in n for n in large.metadata["notes"])
    assert float(small.observable.r_max) == pytest.approx(8.0)  # pairs up to half the cell, not a fixed 8 Å cap


def test_digitized_curves_with_repeated_x_are_averaged_with_a_note(tmp_path):
    r = np.repeat(np.linspace(0.5, 8.0, 200), [2 if k % 40 == 0 else 1 for k in range(200)])
    g = 1 + np.sin(r)
    path = write(tmp_path / "digitized.csv", r, g, header="r,g(r)\n")
    target = load_target(f"gr:{path}", half_cell=9.0)
    assert any("repeat" in n for n in target.metadata["notes"])


def test_a_header_composition_other_than_the_structures_is_named(tmp_path):
    r = 0.01 * np.arange(1, 1001)
    _, big_g = shell_curves(r)
    path = tmp_path / "asi.gr"
    path.write_text(PDFGETX3_HEADER + "\n".join(f"{a:.4f} {b:.6f}" for a, b in zip(r, big_g)) + "\n")
    same = load_target(f"pdf:{path}", half_cell=9.0, composition={"Si": 1.0})
    other = load_target(f"pdf:{path}", half_cell=9.0, composition={"Si": 1 / 3, "O": 2 / 3})
    assert not any("header says" in n for n in same.metadata["notes"])
    assert any("header says the sample is Si1" in n for n in other.metadata["notes"])
