"""Readers of measured-data files: each format written the way its program writes it, read back."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from specguide.io import InputError
from specguide.observables.datafiles import (
    FORMATS,
    MeasuredData,
    guess_format,
    keen_to_faber_ziman,
    looks_like,
    parse_composition,
    read_measured,
    to_q,
    two_theta_to_q,
)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def rows(*columns: np.ndarray, fmt: str = "{:.6g}") -> str:
    return "".join(" ".join(fmt.format(v) for v in row) + "\n" for row in zip(*columns))


R = np.round(np.arange(0.5, 3.0, 0.5), 3)
G = np.array([-0.5, -1.0, 2.0, 0.5, -0.2])


# ---------------------------------------------------------------------------------------------- PDFgetX3


PDFGETX3_HEADER = """[DEFAULT]

version = diffpy.pdfgetx-2.2.1

# input and output specifications
dataformat = QA
inputfile = CeO2.dat
backgroundfile = background.xy
outputtype = {out}

# PDF calculation setup
mode = xray
wavelength = 0.1665
twothetazero = 0
composition = {composition}
bgscale = 1
rpoly = 0.9
qmaxinst = 25.5
qmin = 0.5
qmax = 23.0
rmin = 0
rmax = 30
rstep = 0.01

# End of config --------------------------------------------------------------

#### start data
#S 1
"""


def test_pdfgetx3_gr_header_and_composition(tmp_path):
    text = PDFGETX3_HEADER.format(out="gr", composition="Si1 O2") + "#L r($\\AA$)  G($\\AA^{-2}$)\n" + rows(R, G)
    data = read_measured(write(tmp_path, "sio2.gr", text))
    assert data.format == "pdfgetx3"
    assert (data.x_quantity, data.y_quantity, data.err) == ("r", "G(r)", None)
    np.testing.assert_allclose(data.x, R)
    np.testing.assert_allclose(data.y, G)
    assert data.header["composition"] == pytest.approx({"Si": 1 / 3, "O": 2 / 3})
    assert data.header["qmax"] == 23.0 and data.header["qmaxinst"] == 25.5 and data.header["rpoly"] == 0.9
    assert data.header["mode"] == "xray" and data.header["wavelength"] == 0.1665
    assert data.header["columns"] == ["r($\\AA$)", "G($\\AA^{-2}$)"]


@pytest.mark.parametrize(
    ("ext", "label", "quantity"),
    [("sq", "S", "S(Q)"), ("fq", "F($\\AA^{-1}$)", "F(Q)"), ("iq", "I($a.u.$)", "I(Q)")],
)
def test_pdfgetx3_reciprocal_outputs(tmp_path, ext, label, quantity):
    q = np.linspace(0.5, 2.5, 5)
    text = PDFGETX3_HEADER.format(out=ext, composition="SiO2") + f"#L Q($\\AA^{{-1}}$)  {label}\n" + rows(q, G)
    data = read_measured(write(tmp_path, f"sio2.{ext}", text))
    assert (data.format, data.x_quantity, data.y_quantity) == ("pdfgetx3", "Q", quantity)
    np.testing.assert_allclose(data.x, q)


def test_pdfgetx3_without_labels_uses_the_extension(tmp_path):
    text = PDFGETX3_HEADER.format(out="fq", composition="C") + rows(np.linspace(1, 3, 5), G)
    data = read_measured(write(tmp_path, "c.fq", text))
    assert (data.x_quantity, data.y_quantity, data.header["composition"]) == ("Q", "F(Q)", {"C": 1.0})


def test_q_in_inverse_nm_is_converted_and_fq_scales_with_it(tmp_path):
    text = PDFGETX3_HEADER.format(out="fq", composition="C") + "#L Q(nm$^{-1}$)  F(nm$^{-1}$)\n"
    q_nm = np.array([10.0, 20.0, 30.0])
    data = read_measured(write(tmp_path, "c.fq", text + rows(q_nm, [5.0, -10.0, 2.0])))
    np.testing.assert_allclose(data.x, [1.0, 2.0, 3.0])
    np.testing.assert_allclose(data.y, [0.5, -1.0, 0.2])
    assert any("nm" in note for note in data.notes)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("SiO2", {"Si": 1 / 3, "O": 2 / 3}),
        ("Si1 O2", {"Si": 1 / 3, "O": 2 / 3}),
        ("Cu64Zr36", {"Cu": 0.64, "Zr": 0.36}),
        ("C", {"C": 1.0}),
        ("Ga Nb4 Se8", {"Ga": 1 / 13, "Nb": 4 / 13, "Se": 8 / 13}),
        ("(SiO2)0.9(Na2O)0.1", {"Si": 0.9 / 3.0, "O": 1.9 / 3.0, "Na": 0.2 / 3.0}),
    ],
)
def test_parse_composition(text, expected):
    assert parse_composition(text) == pytest.approx(expected)


@pytest.mark.parametrize("text", ["Xx2", "sio2", "Si(O2", "2Si", ""])
def test_parse_composition_refuses_non_formulas(text):
    with pytest.raises(ValueError):
        parse_composition(text)


# ------------------------------------------------------------------------------------------------ PDFgui


def test_mantid_pdfgui_four_columns_take_dg_not_dr(tmp_path):
    # mantidproject/mantid SavePDFGui.cpp layout: dr written as 0, dG the error of G
    text = (
        "#Comment: neutron, Qmin=0.5, Qmax=31.42, Qdamp=0.017659, Qbroad=0.0191822\n"
        "##### start data\n#S 1 - PDF from Mantid 6.10.0.1\n#L r G(r) dr dG(r)\n"
    ) + rows(R, G, np.zeros(5), [0.01, 0.02, 0.03, 0.04, 0.05])
    data = read_measured(write(tmp_path, "nom.gr", text))
    assert (data.format, data.x_quantity, data.y_quantity) == ("pdfgui", "r", "G(r)")
    np.testing.assert_allclose(data.err, [0.01, 0.02, 0.03, 0.04, 0.05])
    assert data.header["mode"] == "neutron"
    assert (data.header["qmax"], data.header["qdamp"], data.header["qbroad"]) == (31.42, 0.017659, 0.0191822)


def test_pdfgui_own_writer_layout(tmp_path):
    # diffpy.pdfgui PDFDataSet.writeStr: "stype=X", "qmax=", "##### start data", "#L r(A) G(r) d_r d_Gr"
    text = (
        "History written: Mon Jan  1 00:00:00 2024\nproduced by user\n##### PDFgui\nstype=X  x-ray scattering\n"
        "qmax=25.00\nqdamp=0.04\nqbroad=0\ndscale=1\n# metadata\ntemperature=300\n##### start data\n"
        "#L r(A) G(r) d_r d_Gr\n"
    ) + rows(R, G, np.full(5, 0.01), np.full(5, 0.1))
    data = read_measured(write(tmp_path, "ni.gr", text))
    assert data.header["mode"] == "xray" and data.header["qmax"] == 25.0 and data.header["temperature"] == 300.0
    np.testing.assert_allclose(data.err, 0.1)


def test_three_column_gr_keeps_the_third_as_error(tmp_path):
    data = read_measured(write(tmp_path, "a.gr", rows(R, G, np.full(5, 0.2))))
    assert data.format == "pdfgui" and data.y_quantity is None  # a bare .gr does not say G or Keen's G
    np.testing.assert_allclose(data.err, 0.2)


# ------------------------------------------------------------------------------------- 2θ patterns


TT = np.round(np.arange(10.0, 110.0, 10.0), 3)
COUNTS = np.arange(100.0, 200.0, 10.0)


def test_xye_two_theta_wavelength_and_to_q(tmp_path):
    text = "' TOPAS xye export\n# CeO2 on 11-BM\n" + rows(TT, COUNTS, np.sqrt(COUNTS))
    path = write(tmp_path, "ceo2.xye", text)
    data = read_measured(path)
    assert (data.format, data.x_quantity, data.y_quantity) == ("xye", "2theta", "I(Q)")
    np.testing.assert_allclose(data.err, np.sqrt(COUNTS), rtol=1e-5)
    with pytest.raises(InputError, match=r"ceo2.xye: x is 2θ \(degrees\); give the wavelength: wavelength=0.1665"):
        to_q(data)
    data = read_measured(path, wavelength=0.4579)
    np.testing.assert_allclose(data.x, TT)  # still 2θ
    assert data.header["wavelength"] == 0.4579
    q = to_q(data)
    assert q.x_quantity == "Q"
    np.testing.assert_allclose(q.x, 4 * np.pi * np.sin(np.radians(TT / 2)) / 0.4579)


def test_two_theta_to_q():
    assert two_theta_to_q(90.0, 1.0) == pytest.approx(4 * math.pi * math.sin(math.pi / 4))
    with pytest.raises(ValueError):
        two_theta_to_q(10.0, 0.0)


def test_headerless_xy_with_small_x_is_unknown(tmp_path):
    data = read_measured(write(tmp_path, "pattern.xy", rows(np.linspace(0.5, 15, 10), COUNTS)))
    assert data.x_quantity == "unknown" and data.err is None


@pytest.mark.parametrize(
    ("label", "x_values", "quantity", "expected"),
    [
        ("2-Theta Angle (Degrees)", TT, "2theta", TT),
        ("Q (Inverse Nanometres)", TT, "Q", TT / 10),
        ("Q (Angstroms-1)", TT / 10, "Q", TT / 10),
    ],
)
def test_fit2d_chi(tmp_path, label, x_values, quantity, expected):
    text = f"ceo2_0001.tif: Azimuth/{label}\n{label}\nIntensity\n       {len(x_values)} 1\n" + rows(x_values, COUNTS)
    data = read_measured(write(tmp_path, "ceo2.chi", text))
    assert (data.format, data.x_quantity, data.y_quantity) == ("fit2d-chi", quantity, "I(Q)")
    np.testing.assert_allclose(data.x, expected)
    np.testing.assert_allclose(data.y, COUNTS)  # the count line "10 1" is not a data point
    assert data.header["x_label"] == label


PYFAI_HEADER = """# == pyFAI calibration ==
# Distance Sample to Detector: 0.2 m
# PONI: 1.000e-01, 1.000e-01 m
# Rotations: 0.000000 0.000000 0.000000 rad
#
# == Fit2d calibration ==
# Distance Sample-beamCenter: 200.000 mm
#
# Wavelength: 1.0e-10 m
# --> /data/ceo2.dat
"""


def test_pyfai_q_in_inverse_nm(tmp_path):
    text = PYFAI_HEADER + "#       q_nm^-1             I           sigma \n" + rows(TT, COUNTS, np.sqrt(COUNTS))
    data = read_measured(write(tmp_path, "ceo2.dat", text))
    assert (data.format, data.x_quantity, data.y_quantity) == ("pyfai", "Q", "I(Q)")
    np.testing.assert_allclose(data.x, TT / 10)
    np.testing.assert_allclose(data.y, COUNTS)  # intensity does not scale with the unit of Q
    np.testing.assert_allclose(data.err, np.sqrt(COUNTS), rtol=1e-5)
    assert data.header["wavelength"] == pytest.approx(1.0)  # metres → Å


def test_pyfai_two_theta(tmp_path):
    data = read_measured(write(tmp_path, "ceo2.xy", PYFAI_HEADER + "#  2th_deg  I\n" + rows(TT, COUNTS)))
    assert (data.format, data.x_quantity, data.header["wavelength"]) == ("pyfai", "2theta", pytest.approx(1.0))
    assert to_q(data).x[0] == pytest.approx(two_theta_to_q(10.0, 1.0))


def test_gsas_fxye_centidegrees_and_banks(tmp_path):
    body = rows(TT * 100, COUNTS, np.sqrt(COUNTS))
    text = (
        "CeO2 11-BM\nInstrument parameter file:11bm.instprm\n"
        f"BANK 1 {len(TT)} {len(TT)} CONS 1000.00 1000.00 0 0 FXYE\n{body}"
        f"BANK 2 {len(TT)} {len(TT)} CONS 1000.00 1000.00 0 0 FXYE\n{body}"
    )
    data = read_measured(write(tmp_path, "ceo2.gsa", text))
    assert (data.format, data.x_quantity, data.y_quantity) == ("gsas-xye", "2theta", "I(Q)")
    np.testing.assert_allclose(data.x, TT)
    np.testing.assert_allclose(data.err, np.sqrt(COUNTS), rtol=1e-5)
    assert data.header["instrument_parameter_file"] == "11bm.instprm"
    assert "read bank 1 of 2" in data.notes


def test_gsas_esd_fixed_width(tmp_path):
    y, e = np.arange(1.0, 13.0) * 100, np.arange(1.0, 13.0)
    fields = "".join(f"{a:8.1f}{b:8.2f}" for a, b in zip(y, e))
    block = "\n".join(fields[i : i + 80] for i in range(0, len(fields), 80))
    text = f"Ni ESD data\nBANK 1 12 3 CONS 500.0 2.0 0 0 ESD\n{block}\n"
    data = read_measured(write(tmp_path, "ni.gsas", text))
    np.testing.assert_allclose(data.x, 5.0 + 0.02 * np.arange(12))
    np.testing.assert_allclose(data.y, y)
    np.testing.assert_allclose(data.err, e)


def test_gsas_time_of_flight_is_refused(tmp_path):
    text = "TOF\nBANK 1 5 5 SLOG 1000.0 20000.0 0.0005 0 FXYE\n" + rows(TT, COUNTS, COUNTS)
    with pytest.raises(InputError, match="tof.gsa: GSAS bank type SLOG FXYE is not supported"):
        read_measured(write(tmp_path, "tof.gsa", text))


# ---------------------------------------------------------------------------------------- Gudrun, GENIE


GUDRUN_HEADER = """# NIMROD00001122.mint01 
# 3mm SiO2 flat plate in pos 9                                                    
#     1  1002
#    10
#  
# spec.bad 
# groups_def.dat 
#     6
#    -1
#  0.2000000E+02
#  0.0000000E+00  0.3733142E+01  0.0000000E+00
"""  # noqa: W291  (the layout of Dissolve's examples/silica_bulk/data/SiO2_NIMROD.mint01, trailing blanks kept)


def test_gudrun_mint01_bin_edges_padding_and_keen(tmp_path):
    edges = np.array([0.0, 0.025, 0.075, 0.125, 0.175, 0.225])
    f = np.array([0.0, -0.25, -0.24, -0.23, 0.0, 0.0])
    e = np.array([0.0, 3e-4, 2e-4, 1e-4, 0.0, 0.0])
    data = read_measured(write(tmp_path, "SiO2.mint01", GUDRUN_HEADER + rows(edges, f, e, fmt="{:14.7E}")))
    assert (data.format, data.x_quantity, data.y_quantity) == ("gudrun", "Q", "F_keen(Q)")
    np.testing.assert_allclose(data.x, [0.05, 0.1, 0.15])  # bin centres; zero-padded rows dropped
    np.testing.assert_allclose(data.y, [-0.25, -0.24, -0.23])
    np.testing.assert_allclose(data.err, [3e-4, 2e-4, 1e-4])
    assert data.header["title"] == "3mm SiO2 flat plate in pos 9"
    assert any("bin centres" in n for n in data.notes) and any("zero-padded" in n for n in data.notes)


def test_gudrun_dcs01_with_several_groups_needs_a_choice(tmp_path):
    q = np.array([0.5, 0.6, 0.7, 0.8])
    text = "# NIMROD00001122.dcs01\n# groups\n" + rows(q, q + 1, q / 100, q + 2, q / 50)
    path = write(tmp_path, "run.dcs01", text)
    with pytest.raises(InputError, match=r"run.dcs01: holds 2 detector groups .* columns=\(0, 1, 2\)"):
        read_measured(path)
    data = read_measured(path, columns=(0, 3, 4))
    np.testing.assert_allclose(data.x, [0.55, 0.65, 0.75])
    np.testing.assert_allclose(data.y, q[:-1] + 2)
    assert data.y_quantity is None  # another column than the format's default: the file does not label it


def test_keen_to_faber_ziman_sio2():
    # b_Si = 4.1491 fm, b_O = 5.803 fm → ⟨b⟩ = 5.2517 fm, ⟨b⟩² = 27.58 fm² = 0.2758 barn
    q = np.linspace(0.5, 20, 5)
    f = np.array([-0.2758, 0.1, 0.02, -0.05, 0.2758])
    s = keen_to_faber_ziman(q, f, "SiO2")
    np.testing.assert_allclose(f / (s - 1), 0.2758, rtol=1e-3)  # periodictable: 4.1507 and 5.8037 fm
    np.testing.assert_allclose(keen_to_faber_ziman(q, f, {"Si": 1, "O": 2}), s)
    with pytest.raises(ValueError):
        keen_to_faber_ziman(q[:2], f, "SiO2")


def test_genie_epsr_file_skips_the_bin_number(tmp_path):
    # layout of Dissolve's EPSR example NeutronSiO2sq.dat
    text = (
        "# ******  stream =   1    start =       0.300    end =     100.000 npt=  1995\n"
        "# ****** L1 = 11.02      L2 =  4.284\n#****** 2th=  0.21   EFIXED=  0.000      EMODE= 0\n"
        "# Bin no.        x             y             e\n"
        "      1 0.3000000    -0.9110302     0.2408143E-02\n      2 0.3500000    -0.9141222     0.1578747E-02\n"
        "      3 0.4000000    -0.9032170     0.1224776E-02\n      4 0.4500000     0.0000000E+00 0.0000000E+00\n"
    )
    data = read_measured(write(tmp_path, "NeutronSiO2sq.dat", text))
    assert data.format == "genie" and data.header["npt"] == 1995.0
    np.testing.assert_allclose(data.x, [0.3, 0.35, 0.4])
    np.testing.assert_allclose(data.err, [0.2408143e-2, 0.1578747e-2, 0.1224776e-2])


# -------------------------------------------------------------------------------------------- RMCProfile


def test_rmcprofile_two_line_header_and_fortran_exponents(tmp_path):
    text = "        4\nSiO2_NIMROD.fq  mutli by 1.0\n" + "".join(
        f"  {q:.4f}  {f:.6E}\n".replace("E", "D") for q, f in zip([0.5, 1.0, 1.5, 2.0], [-0.2, 0.1, 0.3, 0.0])
    )
    data = read_measured(write(tmp_path, "SiO2.fq", text))
    assert (data.format, data.x_quantity, data.y_quantity) == ("rmcprofile", "Q", "F_keen(Q)")
    np.testing.assert_allclose(data.y, [-0.2, 0.1, 0.3, 0.0])
    assert data.header["title"] == "SiO2_NIMROD.fq  mutli by 1.0"
    data = read_measured(write(tmp_path, "SiO2.gr", "5\nSiO2 G(r)\n" + rows(R, G)))
    assert (data.format, data.x_quantity, data.y_quantity) == ("rmcprofile", "r", "G_keen(r)")


def test_rmcprofile_stog_style(tmp_path):
    text = "# File: sio2.sq\n# Title: SiO2 S(Q)\n# Number of points: 5\n# ------------\n" + rows(R, G + 1)
    data = read_measured(write(tmp_path, "sio2.sq", text))
    assert (data.format, data.y_quantity, data.header["title"]) == ("rmcprofile", "S(Q)", "SiO2 S(Q)")


# ------------------------------------------------------------------------------------------------ Larch


K = np.arange(2.0, 4.5, 0.5)
CHI = np.array([0.1, -0.2, 0.15, -0.05, 0.02])


def test_athena_chik_columns_by_name(tmp_path):
    text = (
        "# Athena data file -- Athena version 0.9.26\n# Saving cu as chi(k)\n# .  Element=Cu   Edge=K\n"
        "#------------------------\n#  k chi chik chik2 chik3 win energy\n"
    ) + rows(K, CHI, K * CHI, K**2 * CHI, K**3 * CHI, np.ones(5), 8979 + 3.81 * K**2)
    path = write(tmp_path, "cu.chik", text)
    data = read_measured(path)
    assert (data.format, data.x_quantity, data.y_quantity, data.err) == ("larch", "k", "chi(k)", None)
    np.testing.assert_allclose(data.y, CHI)
    assert data.header["columns"] == ["k", "chi", "chik", "chik2", "chik3", "win", "energy"]
    assert data.header["element"] == "Cu"
    weighted = read_measured(path, columns=("k", "chik2"))
    assert weighted.y_quantity == "k2*chi(k)" and weighted.err is None
    np.testing.assert_allclose(weighted.y, K**2 * CHI)


def test_athena_chi_is_not_taken_for_fit2d(tmp_path):
    text = (
        "# Athena data file -- Athena version 0.9.26\n# Saving c as chi(k)\n# .  Element=Ni   Edge=K\n"
        "#------------------------\n#  k chi chik chik2 chik3\n"
    ) + rows(K, CHI, K * CHI, K**2 * CHI, K**3 * CHI)
    data = read_measured(write(tmp_path, "ni.chi", text))
    assert (data.format, data.x_quantity, data.y_quantity) == ("larch", "k", "chi(k)")


E = np.array([8960.0, 8970.0, 8980.0, 8990.0, 9000.0])
MU = np.array([0.0, 0.02, 0.5, 1.1, 1.0])


def test_athena_nor_prefers_norm_and_tolerates_extra_names(tmp_path):
    # xraypy/xraylarch examples/fitting/doc_example3/FromAthena/Au foil.nor: 5 names, 4 columns
    text = (
        "# Athena data file -- Athena version 0.8.061\n# Saving Au foil as normalized mu(E)\n"
        "# .  E0=11919.166  Eshift=0.000  Rbkg=1.600\n#------------------------\n"
        "#  energy norm bkg_norm der_norm stddev\n"
    ) + rows(E, MU, MU * 0.9, np.gradient(MU))
    data = read_measured(write(tmp_path, "au.nor", text))
    assert (data.x_quantity, data.y_quantity, data.header["e0"]) == ("E", "norm(E)", 11919.166)
    np.testing.assert_allclose(data.y, MU)


def test_larch_xmu_mu_and_xdi_kev(tmp_path):
    # xraypy/xraylarch examples/xafsdata/cu_rt01.xmu header style
    text = "#%name: Cu foil Room Temperature\n#%temp: Room Temperature\n#------------------------\n"
    text += "#   energy             mu            i0\n" + rows(E, MU, np.full(5, 1.2e5))
    data = read_measured(write(tmp_path, "cu.xmu", text))
    assert (data.format, data.y_quantity, data.header["temperature_text"]) == ("larch", "mu(E)", "Room Temperature")
    xdi = "# XDI/1.0\n# Column.1: energy keV\n# Column.2: mutrans\n# Column.3: i0\n# ///\n#----\n"
    data = read_measured(write(tmp_path, "cu.xdi", xdi + "# energy mutrans i0\n" + rows(E / 1000, MU, MU)))
    np.testing.assert_allclose(data.x, E)
    assert (data.x_quantity, data.y_quantity) == ("E", "mu(E)")


def test_beamline_csv_with_byte_order_mark_and_quantity_slash_unit_names(tmp_path):
    """A spreadsheet export as SLRI BL3.2Ua writes C K-edge NEXAFS: UTF-8 byte-order mark, CRLF line ends,
    "PE/eV" (photon energy / unit) and a free-form intensity name: x is the energy in eV."""
    energies = np.linspace(280.0, 281.0, 6)
    body = "PE/eV,AbNorm_161116_1251_Is\r\n" + "".join(f"{e:.1f},{0.07 + 0.01 * k}\r\n" for k, e in enumerate(energies))
    path = tmp_path / "CK.csv"
    path.write_bytes(b"\xef\xbb\xbf" + body.encode())
    data = read_measured(path)
    assert data.x_quantity == "E" and data.header["columns"][0] == "PE/eV"
    np.testing.assert_allclose(data.x, energies)
    np.testing.assert_allclose(data.y, 0.07 + 0.01 * np.arange(6))
    slash = read_measured(write(tmp_path, "q.txt", "Q/nm^-1 S(Q)\n" + rows(R * 10, G + 1)))
    assert slash.x_quantity == "Q"
    np.testing.assert_allclose(slash.x, R)


# ------------------------------------------------------------------------------------------------ plain


def test_plain_with_text_header(tmp_path):
    data = read_measured(write(tmp_path, "g.dat", "r g err\n" + rows(R, G + 1, np.full(5, 0.05))))
    assert (data.format, data.x_quantity, data.y_quantity) == ("plain", "r", "g(r)")
    np.testing.assert_allclose(data.err, 0.05)
    data = read_measured(write(tmp_path, "s.csv", "Q,S(Q)\n" + "".join(f"{a},{b}\n" for a, b in zip(R, G + 1))))
    assert (data.x_quantity, data.y_quantity, data.err) == ("Q", "S(Q)", None)
    data = read_measured(write(tmp_path, "t.txt", "# tth  I\n" + rows(TT, COUNTS)))
    assert data.x_quantity == "2theta"
    data = read_measured(write(tmp_path, "u.txt", "Q (nm-1)  S(Q)\n" + rows(R * 10, G + 1)))
    assert (data.x_quantity, data.y_quantity, data.header["columns"]) == ("Q", "S(Q)", ["Q(nm-1)", "S(Q)"])
    np.testing.assert_allclose(data.x, R)


def test_plain_r_in_nm_converts_r_and_g(tmp_path):
    data = read_measured(write(tmp_path, "g.dat", "# r(nm) G(nm^-2)\n" + rows(R / 10, G * 100)))
    np.testing.assert_allclose(data.x, R)
    np.testing.assert_allclose(data.y, G)


def test_plain_without_names_and_column_override(tmp_path):
    path = write(tmp_path, "a.dat", rows(R, G, np.full(5, 0.1), G * 2))
    data = read_measured(path)
    assert (data.x_quantity, data.y_quantity) == ("unknown", None)
    np.testing.assert_allclose(data.err, 0.1)  # the current read_columns behaviour: 3rd column = error
    data = read_measured(path, columns=[0, 3])
    np.testing.assert_allclose(data.y, G * 2)
    assert data.err is None


def test_explicit_format_overrides_the_guess(tmp_path):
    path = write(tmp_path, "q.xy", rows(np.linspace(1, 25, 10), COUNTS))
    assert read_measured(path).x_quantity == "2theta"
    assert read_measured(path, fmt="plain").x_quantity == "unknown"


# ------------------------------------------------------------------------------------ ordering, repeats


def test_repeated_x_are_averaged_with_combined_errors(tmp_path):
    x = [1.0, 2.0, 2.0, 3.0, 3.0, 3.0, 4.0]
    y = [1.0, 2.0, 4.0, 3.0, 6.0, 9.0, 4.0]
    e = [0.1, 0.3, 0.4, 0.2, 0.2, 0.2, 0.1]
    data = read_measured(write(tmp_path, "digitized.dat", rows(x, y, e)))
    np.testing.assert_allclose(data.x, [1, 2, 3, 4])
    np.testing.assert_allclose(data.y, [1, 3, 6, 4])
    np.testing.assert_allclose(data.err, [0.1, 0.25, math.sqrt(0.12) / 3, 0.1])
    assert "averaged 2 groups of repeated x values (3 points merged; digitized curve?)" in data.notes


def test_unsorted_and_descending_x_are_sorted(tmp_path):
    data = read_measured(write(tmp_path, "a.dat", rows([1.0, 2.0, 1.5, 3.0, 4.0], [1, 2, 1.5, 3, 4])))
    np.testing.assert_allclose(data.y, [1, 1.5, 2, 3, 4])
    assert any("sorted 1 out-of-order" in n for n in data.notes)
    data = read_measured(write(tmp_path, "b.dat", rows([4.0, 3.0, 2.0, 1.0], [4, 3, 2, 1])))
    np.testing.assert_allclose(data.x, [1, 2, 3, 4])
    assert "x was in descending order; reversed" in data.notes


# ------------------------------------------------------------------------------------------------ errors


@pytest.mark.parametrize(
    ("name", "text", "kwargs", "message"),
    [
        ("empty.dat", "# nothing\n", {}, "empty.dat: no numeric data found"),
        ("ragged.dat", "1 2\n2 3\n3 4 5\n", {}, "ragged.dat: line 3 has 3 columns but the rows above have 2"),
        ("text.dat", "1 2\n2 3\nend of data\n", {}, "text.dat: line 3 is not numeric"),
        ("nan.dat", "# h\n1 2\n2 nan\n3 4\n", {}, "nan.dat: line 3 holds NaN or inf"),
        ("fmt.dat", "1 2\n2 3\n", {"fmt": "cif"}, "fmt.dat: unknown format 'cif'; choose one of pdfgui, pdfgetx3"),
        ("col.dat", "1 2\n2 3\n", {"columns": (0, 5)}, r"col.dat: column 5 is out of range; the file has 2"),
        ("name.dat", "1 2\n2 3\n", {"columns": ("k", "chi")}, "name.dat: no column named 'k'"),
        ("err.dat", "1 2 0.1\n2 3 -0.1\n3 4 0.1\n", {}, r"err.dat: the error column is <= 0 at line 2"),
        ("two.dat", "1 1\n2 2\n3 3\n1 1\n2 2\n3 3\n", {}, "two.dat: x falls back from 3 to 1 at line 4"),
        ("wl.xye", "20 1\n30 2\n", {"wavelength": -1.0}, "wl.xye: wavelength=-1.0"),
        ("odd.chi", "1 2\n2 3\n3 4\n4 5\n5 6\n", {}, "odd.chi: not a Fit2D .chi file"),
    ],
)
def test_errors_are_one_line_and_name_the_file(tmp_path, name, text, kwargs, message):
    with pytest.raises(InputError, match=message) as info:
        read_measured(write(tmp_path, name, text), **kwargs)
    assert "\n" not in str(info.value)


def test_missing_and_binary_files(tmp_path):
    with pytest.raises(InputError, match="nope.dat: no such file"):
        read_measured(tmp_path / "nope.dat")
    (tmp_path / "b.dat").write_bytes(b"\x00\x01\x02binary")
    with pytest.raises(InputError, match="b.dat: is a binary file"):
        read_measured(tmp_path / "b.dat")


def test_every_format_is_in_the_table_and_detection_matches(tmp_path):
    assert {"pdfgetx3", "pdfgui", "xye", "fit2d-chi", "gsas-xye", "gudrun", "rmcprofile", "larch", "plain"} <= set(
        FORMATS
    )
    path = write(tmp_path, "renamed.txt", PDFGETX3_HEADER.format(out="gr", composition="C") + rows(R, G))
    assert guess_format(path) == "pdfgetx3"  # content wins over the extension


# ------------------------------------------------------------------------------------------- looks_like


def shells_g(r: np.ndarray) -> np.ndarray:
    """An amorphous-like g(r): hard core, Gaussian first and second shells, damped oscillation → 1."""
    core = 1.0 / (1.0 + np.exp(-(r - 2.1) / 0.05))
    shells = 2.5 * np.exp(-((r - 2.35) ** 2) / (2 * 0.08**2)) + 0.8 * np.exp(-((r - 3.8) ** 2) / (2 * 0.3**2))
    ripple = 0.2 * np.sin(2 * np.pi * (r - 4.5) / 1.3) * np.exp(-(r - 4.5) / 2.0) * (r > 4.5)
    return core * (1.0 + shells - 0.3 * np.exp(-((r - 3.0) ** 2) / (2 * 0.2**2)) + ripple)


def percus_yevick_s(q: np.ndarray, eta: float = 0.4, sigma: float = 2.5) -> np.ndarray:
    """Hard-sphere S(Q), Percus–Yevick: S = 1/(1 − ρĉ), ρĉ(k) = −24η ∫₀¹ (α + βs + γs³) s² j₀(ks) ds."""
    alpha = (1 + 2 * eta) ** 2 / (1 - eta) ** 4
    beta = -6 * eta * (1 + eta / 2) ** 2 / (1 - eta) ** 4
    gamma = eta * alpha / 2
    s = np.linspace(0.0, 1.0, 2001)
    ks = (q * sigma)[:, None] * s[None, :]
    integrand = (alpha + beta * s + gamma * s**3) * s**2 * np.sinc(ks / np.pi)
    rho_c = -24 * eta * np.trapezoid(integrand, s, axis=1)
    return 1.0 / (1.0 - rho_c)


def curve(x: np.ndarray, y: np.ndarray, quantity: str) -> MeasuredData:
    return MeasuredData(Path("synthetic"), "plain", x, y, None, quantity, None)


def test_looks_like_real_space():
    r = np.arange(0.5, 12.0, 0.02)
    g = shells_g(r)
    rho = 0.05
    assert looks_like(curve(r, g, "r")) == "g(r)"
    assert looks_like(curve(r, 4 * np.pi * rho * r * (g - 1), "r")) == "G(r)"
    assert looks_like(curve(r, 4 * np.pi * rho * r**2 * g, "r")) == "RDF"
    assert looks_like(curve(r, g, "unknown")) is None


def test_looks_like_reciprocal_space():
    q = np.arange(0.5, 20.0, 0.05)
    s = percus_yevick_s(q)
    assert looks_like(curve(q, s, "Q")) == "S(Q)"
    assert looks_like(curve(q, q * (s - 1), "Q")) == "F(Q)"
    assert looks_like(curve(q, s - 1, "Q")) is None  # S − 1 decays too fast to pass for F(Q)


def test_looks_like_structure_factor_of_rattled_silicon():
    import ase.build
    import torch

    from specguide.observables import StructureFactor

    atoms = ase.build.bulk("Si", "diamond", 5.43, cubic=True).repeat(2)
    atoms.rattle(0.1, seed=0)
    sq = StructureFactor(0.5, 15.0, 0.05, r_max=5.0)
    positions, cells = torch.as_tensor(atoms.positions), torch.as_tensor(atoms.cell[:])[None]
    y = sq(positions, cells, torch.as_tensor(atoms.numbers))[0].numpy()
    assert looks_like(curve(sq.grid.numpy(), y, "Q")) == "S(Q)"
