"""Silicates (Si–O crystals with other cations) built with ``ase.spacegroup.crystal`` from published structures.

The entries of :data:`SILICATES` are transcribed from American Mineralogist Crystal Structure Database (AMCSD)
records: cell (Å, degrees), space group as published (with the published symmetry operations where the setting
is not ASE's standard one, e.g. ``P b n m`` for olivine), asymmetric unit, the composition as published and
the density and cell volume the record states. Each is checked by :func:`validate_silicate`: every Si four-
or six-fold to O at 1.55–1.90 Å, every O bonded to 0–2 Si, no pair closer than a species-pair minimum,
density within 2 % of the stated one and the composition as published. :data:`REJECTED_SILICATES` lists the
records that were looked at and left out, with the reason.

Source: the AMCSD records carried in the public GitHub repository ``jappoker/mineral-lib-jekyll`` (commit
52071ba3d30b4ea7490f5c27c63f654909c1a0d1, ``_posts/0001-01-01-<Mineral>.md``; :data:`SOURCE`). That
repository's LICENSE is MIT (the file belongs to its Jekyll theme); the data are AMCSD's, which may be used
"so long as proper attribution is given to the journal article from which the data were obtained" (the AMCSD
statement in COD's copies of its records). Only the numbers are transcribed here, each entry citing its
article and AMCSD code; no record file is redistributed.

Silicates bring species other than Si and O to the site model; :func:`silicate_crystals` can restrict the
selection to a set of allowed species. The pure SiO₂ phases stay in :mod:`specguide.sites.crystals`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import ase
import numpy as np
from ase.data import atomic_numbers, covalent_radii
from ase.spacegroup import crystal

from specguide.sites.crystals import bond_report

SI_O_RANGE = (1.55, 1.90)  # Å, accepted Si–O bond lengths (four- and six-fold Si)
SI_O_CUTOFF = 2.0  # Å, Si–O pairs counted as bonds (the cluster cut-off of specguide.sites.clusters)
MIN_PAIR_FRACTION = 0.7  # no pair closer than this fraction of the sum of the two covalent radii (ASE's)
DENSITY_TOLERANCE = 0.02  # relative
SOURCE = (
    "github.com/jappoker/mineral-lib-jekyll@52071ba3d30b4ea7490f5c27c63f654909c1a0d1:_posts/0001-01-01-<Mineral>.md"
)


@dataclass(frozen=True)
class SilicatePhase:
    """A published silicate structure (an AMCSD record) in the form ``ase.spacegroup.crystal`` builds.

    ``formula`` is the composition as published (``_chemical_formula_sum``), ``cell`` (Å, degrees), ``sites``
    the asymmetric unit as (symbol, x, y, z) fractional, ``density_g_cm3`` and ``cell_volume`` (Å³) the values
    the record states. ``symops`` holds the published symmetry operations when the published setting is not
    ASE's standard setting of ``spacegroup`` (empty: standard setting ``setting``).
    """

    name: str
    formula: str
    spacegroup: int
    symbol: str
    cell: tuple[float, float, float, float, float, float]
    sites: tuple[tuple[str, float, float, float], ...]
    density_g_cm3: float
    cell_volume: float
    reference: str
    amcsd: str
    conditions: str
    symops: tuple[str, ...] = ()
    setting: int = 1

    @property
    def species(self) -> frozenset[str]:
        """The chemical elements of the structure."""
        return frozenset(s[0] for s in self.sites)

    def composition(self) -> dict[str, float]:
        """The published formula as {element: amount}."""
        return {el: float(n) if n else 1.0 for el, n in re.findall(r"([A-Z][a-z]?)([0-9.]*)", self.formula)}


SILICATES: dict[str, SilicatePhase] = {
    p.name: p
    for p in [
        SilicatePhase(
            "forsterite",
            "Si Mg2 O4",
            62,
            "P b n m",
            (4.752, 10.193, 5.977, 90, 90, 90),
            (
                ("Si", 0.4262, 0.094, 0.25),
                ("Mg", 0, 0, 0),
                ("Mg", 0.9915, 0.2774, 0.25),
                ("O", 0.7657, 0.0913, 0.25),
                ("O", 0.2215, 0.4474, 0.25),
                ("O", 0.2777, 0.1628, 0.0331),
            ),
            3.228,
            289.509,
            "Hazen R M, American Mineralogist 61, 1280 (1976)",
            "0000546",
            "T = 23 C, P = 1 atm",
            symops=(
                "x,y,z",
                "x,y,1/2-z",
                "-x,-y,1/2+z",
                "1/2+x,1/2-y,1/2+z",
                "1/2-x,1/2+y,1/2-z",
                "1/2-x,1/2+y,z",
                "1/2+x,1/2-y,-z",
                "-x,-y,-z",
            ),
        ),
        SilicatePhase(
            "fayalite",
            "Fe2 Si O4",
            62,
            "P b n m",
            (4.822, 10.488, 6.094, 90, 90, 90),
            (
                ("Fe", 0, 0, 0),
                ("Fe", 0.986, 0.2802, 0.25),
                ("Si", 0.4301, 0.0974, 0.25),
                ("O", 0.7679, 0.0916, 0.25),
                ("O", 0.2104, 0.4541, 0.25),
                ("O", 0.2881, 0.1649, 0.038),
            ),
            4.392,
            308.193,
            "Kudoh Y & Takeda H, Physica B 140, 333 (1986)",
            "0014999",
            "Sample- P = 0.001 kbar",
            symops=(
                "x,y,z",
                "x,y,1/2-z",
                "-x,-y,1/2+z",
                "1/2+x,1/2-y,1/2+z",
                "1/2-x,1/2+y,1/2-z",
                "1/2-x,1/2+y,z",
                "1/2+x,1/2-y,-z",
                "-x,-y,-z",
            ),
        ),
        SilicatePhase(
            "ringwoodite",
            "Si Mg2 O4",
            227,
            "F d 3 m",
            (8.0709, 8.0709, 8.0709, 90, 90, 90),
            (
                ("Si", 0.125, 0.125, 0.125),
                ("Mg", 0.5, 0.5, 0.5),
                ("O", 0.2441, 0.2441, 0.2441),
            ),
            3.555,
            525.734,
            "Hazen R M et al., American Mineralogist 78, 1320 (1993)",
            "0001624",
            "Sample- SUNY 859",
            setting=2,
        ),
        SilicatePhase(
            "akimotoite",
            "Si Mg O3",
            148,
            "R -3",
            (4.7284, 4.7284, 13.5591, 90, 90, 120),
            (
                ("Si", 0, 0, 0.15768),
                ("Mg", 0, 0, 0.3597),
                ("O", 0.3214, 0.0361, 0.24077),
            ),
            3.81,
            262.537,
            "Horiuchi H et al., American Mineralogist 67, 788 (1982)",
            "0000870",
            "",
        ),
        SilicatePhase(
            "enstatite",
            "Mg Si O3",
            61,
            "P b c a",
            (18.233, 8.8191, 5.1802, 90, 90, 90),
            (
                ("Mg", 0.3763, 0.6541, 0.8663),
                ("Mg", 0.3769, 0.4872, 0.3589),
                ("Si", 0.2715, 0.3418, 0.0506),
                ("Si", 0.4736, 0.3374, 0.7981),
                ("O", 0.1835, 0.3407, 0.034),
                ("O", 0.3114, 0.5029, 0.043),
                ("O", 0.3025, 0.2224, 0.832),
                ("O", 0.5622, 0.3414, 0.798),
                ("O", 0.4324, 0.4836, 0.69),
                ("O", 0.4483, 0.1951, 0.603),
            ),
            3.202,
            832.969,
            "Hugh-Jones D A & Angel R J, American Mineralogist 79, 405 (1994)",
            "0001644",
            "Sample- P = 0 GPa",
        ),
        SilicatePhase(
            "clinoenstatite",
            "Mg Si O3",
            14,
            "P 1 21/c 1",
            (9.606, 8.8131, 5.17, 90, 108.35, 90),
            (
                ("Mg", 0.25111, 0.6533, 0.2177),
                ("Mg", 0.25581, 0.01312, 0.2146),
                ("Si", 0.04331, 0.34088, 0.29449),
                ("Si", 0.55339, 0.83718, 0.23007),
                ("O", 0.8667, 0.3396, 0.1851),
                ("O", 0.1228, 0.5009, 0.3218),
                ("O", 0.1066, 0.2795, 0.6153),
                ("O", 0.3762, 0.8399, 0.1247),
                ("O", 0.634, 0.9825, 0.3891),
                ("O", 0.6053, 0.6942, 0.454),
            ),
            3.21,
            415.429,
            "Ohashi Y, Physics and Chemistry of Minerals 10, 217 (1984)",
            "0007357",
            "Sample- CLEN",
        ),
        SilicatePhase(
            "ferrosilite",
            "Fe Si O3",
            61,
            "P b c a",
            (18.417, 9.073, 5.239, 90, 90, 90),
            (
                ("Fe", 0.3758, 0.6539, 0.8741),
                ("Fe", 0.3777, 0.4855, 0.3662),
                ("Si", 0.2724, 0.339, 0.0486),
                ("Si", 0.4732, 0.3346, 0.789),
                ("O", 0.1847, 0.334, 0.039),
                ("O", 0.3119, 0.4961, 0.06),
                ("O", 0.3023, 0.236, 0.818),
                ("O", 0.5611, 0.3374, 0.785),
                ("O", 0.433, 0.4804, 0.693),
                ("O", 0.4477, 0.2027, 0.584),
            ),
            4.004,
            875.423,
            "Hugh-Jones D A et al., Physics and Chemistry of Minerals 24, 301 (1997)",
            "0008004",
            "Sample- P = 0 GPa",
        ),
        SilicatePhase(
            "diopside",
            "Mg Ca Si2 O6",
            15,
            "C 1 2/c 1",
            (9.7397, 8.9174, 5.2503, 90, 105.866, 90),
            (
                ("Mg", 0, 0.90808, 0.25),
                ("Ca", 0, 0.30148, 0.25),
                ("Si", 0.28619, 0.09319, 0.22936),
                ("O", 0.11554, 0.0869, 0.14186),
                ("O", 0.36094, 0.25019, 0.31776),
                ("O", 0.35073, 0.01744, 0.99543),
            ),
            3.279,
            438.631,
            "Thompson R M & Downs R T, American Mineralogist 93, 177 (2008)",
            "0004495",
            "Sample- P = 1 atm",
        ),
        SilicatePhase(
            "hedenbergite",
            "Ca Fe Si2 O6",
            15,
            "C 1 2/c 1",
            (9.8389, 9.0214, 5.2424, 90, 104.797, 90),
            (
                ("Ca", 0, 0.29953, 0.25),
                ("Fe", 0, 0.9072, 0.25),
                ("Si", 0.28784, 0.0925, 0.2327),
                ("O", 0.11965, 0.08995, 0.15206),
                ("O", 0.3629, 0.24596, 0.32346),
                ("O", 0.35021, 0.01994, 0.99292),
            ),
            3.663,
            449.887,
            "Zhang L et al., American Mineralogist 82, 245 (1997)",
            "0001861",
            "Sample- at P = 0.0 GPa; Note- cell parameters obtained by linear regression",
        ),
        SilicatePhase(
            "jadeite",
            "Na Al Si2 O6",
            15,
            "C 1 2/c 1",
            (9.4278, 8.5651, 5.2262, 90, 107.624, 90),
            (
                ("Na", 0, 0.3002, 0.25),
                ("Al", 0, 0.9061, 0.25),
                ("Si", 0.2902, 0.0935, 0.2281),
                ("O", 0.1112, 0.0757, 0.1293),
                ("O", 0.3602, 0.2634, 0.2939),
                ("O", 0.3534, 0.0071, 1.0066),
            ),
            3.338,
            402.208,
            "Nestola F et al., American Mineralogist 93, 1005 (2008)",
            "0004602",
            "Sample- Jd100Hd0, P = 0 GPa",
        ),
        SilicatePhase(
            "aegirine",
            "Na Fe Si2 O6",
            15,
            "C 1 2/c 1",
            (9.6554, 8.7952, 5.2942, 90, 107.396, 90),
            (
                ("Na", 0, 0.2988, 0.25),
                ("Fe", 0, 0.899, 0.25),
                ("Si", 0.2908, 0.0896, 0.236),
                ("O", 0.1143, 0.0785, 0.1384),
                ("O", 0.3591, 0.2553, 0.3015),
                ("O", 0.3523, 0.0076, 0.013),
            ),
            3.576,
            429.026,
            "Redhammer G J et al., American Mineralogist 91, 1271 (2006)",
            "0004215",
            "Sample- nahp22, T = 298 K",
        ),
        SilicatePhase(
            "kyanite",
            "Al2 Si O5",
            2,
            "P -1",
            (7.12, 7.8479, 5.5738, 89.974, 101.117, 106),
            (
                ("Al", 0.32533, 0.70412, 0.45812),
                ("Al", 0.2974, 0.69882, 0.9504),
                ("Al", 0.0998, 0.38615, 0.64043),
                ("Al", 0.11205, 0.9175, 0.16469),
                ("Si", 0.29625, 0.06488, 0.70657),
                ("Si", 0.29102, 0.33168, 0.18937),
                ("O", 0.10933, 0.14685, 0.12866),
                ("O", 0.12287, 0.68535, 0.18113),
                ("O", 0.27507, 0.45443, 0.95474),
                ("O", 0.28353, 0.9357, 0.93567),
                ("O", 0.10836, 0.1521, 0.66671),
                ("O", 0.12192, 0.63063, 0.63939),
                ("O", 0.28226, 0.44512, 0.42868),
                ("O", 0.29156, 0.94684, 0.46574),
                ("O", 0.50074, 0.27519, 0.24405),
                ("O", 0.50154, 0.23099, 0.75595),
            ),
            3.67,
            293.306,
            "Yang H et al., American Mineralogist 82, 467 (1997)",
            "0001892",
            "Sample- at P = 0.0 GPa, in air",
        ),
        SilicatePhase(
            "sillimanite",
            "Al2 Si O5",
            62,
            "P b n m",
            (7.48388, 7.6726, 5.76807, 90, 90, 90),
            (
                ("Al", 0, 0, 0),
                ("Al", 0.14181, 0.3451, 0.25),
                ("Si", 0.15318, 0.3407, 0.75),
                ("O", 0.3607, 0.4075, 0.75),
                ("O", 0.3572, 0.4348, 0.25),
                ("O", 0.4762, 0.0022, 0.75),
                ("O", 0.1258, 0.2228, 0.5151),
            ),
            3.25,
            331.207,
            "Burt J B et al., American Mineralogist 91, 319 (2006)",
            "0004109",
            "Sample- P = .0001 GPa",
            symops=(
                "x,y,z",
                "x,y,1/2-z",
                "-x,-y,1/2+z",
                "1/2+x,1/2-y,1/2+z",
                "1/2-x,1/2+y,1/2-z",
                "1/2-x,1/2+y,z",
                "1/2+x,1/2-y,-z",
                "-x,-y,-z",
            ),
        ),
        SilicatePhase(
            "pyrope",
            "Mg3 Al2 Si3 O12",
            230,
            "I a -3 d",
            (11.4425, 11.4425, 11.4425, 90, 90, 90),
            (
                ("Mg", 0.125, 0, 0.25),
                ("Al", 0, 0, 0),
                ("Si", 0.375, 0, 0.25),
                ("O", -0.03294, 0.0504, 0.15337),
            ),
            3.575,
            1498.176,
            "Nakatsuka A et al., American Mineralogist 96, 1593 (2011)",
            "0018537",
            "Note- T = 122.3 K",
        ),
        SilicatePhase(
            "grossular",
            "Ca3 Al2 Si3 O12",
            230,
            "I a -3 d",
            (11.864, 11.864, 11.864, 90, 90, 90),
            (
                ("Ca", 0.125, 0, 0.25),
                ("Al", 0, 0, 0),
                ("Si", 0.375, 0, 0.25),
                ("O", 0.038, 0.045, 0.6518),
            ),
            3.583,
            1669.911,
            "Hazen R M & Finger L W, American Mineralogist 63, 297 (1978)",
            "0000634",
            "P = 1 bar",
        ),
        SilicatePhase(
            "almandine",
            "Fe3 Al2 Si3 O12",
            230,
            "I a -3 d",
            (11.512, 11.512, 11.512, 90, 90, 90),
            (
                ("Fe", 0, 0.25, 0.125),
                ("Al", 0, 0, 0),
                ("Si", 0.375, 0, 0.25),
                ("O", 0.03395, 0.04943, 0.65268),
            ),
            4.334,
            1525.641,
            "Geiger C A et al., Physics and Chemistry of Minerals 19, 121 (1992)",
            "0007689",
            "Sample- T = 100 K",
        ),
        SilicatePhase(
            "low-albite",
            "Na Al Si3 O8",
            2,
            "C -1",
            (8.1372, 12.787, 7.1574, 94.245, 116.605, 87.809),
            (
                ("Na", 0.26913, 0.98904, 0.14894),
                ("Al", 0.0089, 0.16819, 0.20762),
                ("Si", 0.00398, 0.82043, 0.23665),
                ("Si", 0.69222, 0.11044, 0.31589),
                ("Si", 0.68162, 0.88179, 0.36088),
                ("O", 0.00615, 0.13166, 0.96889),
                ("O", 0.59158, 0.99706, 0.27896),
                ("O", 0.8137, 0.11011, 0.19504),
                ("O", 0.81898, 0.85089, 0.25629),
                ("O", 0.01239, 0.30185, 0.26901),
                ("O", 0.02327, 0.6934, 0.22754),
                ("O", 0.20643, 0.10894, 0.38631),
                ("O", 0.18092, 0.86801, 0.42864),
            ),
            2.623,
            664.037,
            "Downs R T et al., American Mineralogist 79, 1042 (1994)",
            "0001683",
            "P = 0, constrained data set; Note- sample is from Crete",
            symops=("x,y,z", "1/2+x,1/2+y,z", "-x,-y,-z", "1/2-x,1/2-y,-z"),
        ),
        SilicatePhase(
            "anorthite",
            "Ca Si2 Al2 O8",
            2,
            "P -1",
            (8.1796, 12.8747, 14.172, 93.134, 115.885, 91.236),
            (
                ("Ca", 0.2659, 0.9867, 0.0864),
                ("Ca", 0.2683, 0.031, 0.5432),
                ("Ca", 0.7736, 0.5353, 0.5421),
                ("Ca", 0.7639, 0.5073, 0.0726),
                ("Si", 0.00943, 0.15921, 0.10431),
                ("Si", 0.50642, 0.65607, 0.60405),
                ("Al", 0.00686, 0.16144, 0.61159),
                ("Al", 0.49873, 0.66584, 0.11241),
                ("Al", 0.99183, 0.81512, 0.11768),
                ("Al", 0.50729, 0.31446, 0.62106),
                ("Si", 0.00562, 0.81555, 0.61318),
                ("Si", 0.50475, 0.31999, 0.1101),
                ("Al", 0.6855, 0.11328, 0.15213),
                ("Al", 0.19092, 0.61128, 0.6667),
                ("Si", 0.68167, 0.10381, 0.66452),
                ("Si", 0.17104, 0.60662, 0.14988),
                ("Si", 0.67387, 0.88314, 0.18747),
                ("Si", 0.17684, 0.37946, 0.67384),
                ("Al", 0.68135, 0.87236, 0.6734),
                ("Al", 0.18644, 0.37727, 0.18105),
                ("O", 0.0242, 0.1242, -0.0051),
                ("O", 0.4912, 0.6251, 0.487),
                ("O", 0.9797, 0.1252, 0.4832),
                ("O", 0.5176, 0.6249, 0.9968),
                ("O", 0.576, 0.9902, 0.1426),
                ("O", 0.073, 0.4881, 0.6345),
                ("O", 0.5728, 0.9893, 0.6373),
                ("O", 0.0726, 0.4924, 0.1391),
                ("O", 0.8143, 0.1011, 0.0803),
                ("O", 0.3305, 0.5964, 0.6034),
                ("O", 0.812, 0.0975, 0.6058),
                ("O", 0.2871, 0.6039, 0.0811),
                ("O", 0.8171, 0.8548, 0.1424),
                ("O", 0.2984, 0.3563, 0.6116),
                ("O", 0.8111, 0.8523, 0.6041),
                ("O", 0.3414, 0.3582, 0.1323),
                ("O", 0.0164, 0.2801, 0.1368),
                ("O", 0.5084, 0.7768, 0.6344),
                ("O", 0.0201, 0.2899, 0.6477),
                ("O", 0.5087, 0.7965, 0.1499),
                ("O", 0, 0.68, 0.1038),
                ("O", 0.5168, 0.1793, 0.6104),
                ("O", 0.0084, 0.6885, 0.6006),
                ("O", 0.5071, 0.1959, 0.0976),
                ("O", 0.1832, 0.1062, 0.1922),
                ("O", 0.7012, 0.6079, 0.68),
                ("O", 0.2136, 0.1025, 0.684),
                ("O", 0.6935, 0.6043, 0.2013),
                ("O", 0.2038, 0.8732, 0.2108),
                ("O", 0.69, 0.3636, 0.7317),
                ("O", 0.1742, 0.8569, 0.7183),
                ("O", 0.6992, 0.3692, 0.1983),
            ),
            2.76,
            1338.993,
            "Angel R J et al., American Mineralogist 75, 150 (1990)",
            "0001287",
            "",
        ),
        SilicatePhase(
            "cordierite",
            "Mg2 Al4 Si5 O18",
            66,
            "C c c m",
            (17.071, 9.715, 9.344, 90, 90, 90),
            (
                ("Mg", 0.16248, 0.5, 0.25),
                ("Al", 0.25, 0.25, 0.2505),
                ("Si", 0, 0.5, 0.25),
                ("Si", 0.19281, 0.0782, 0),
                ("Al", 0.0506, 0.3085, 0),
                ("Si", -0.13544, 0.2376, 0),
                ("O", 0.2468, 0.1029, 0.1407),
                ("O", 0.0625, 0.4156, 0.1506),
                ("O", -0.1733, 0.31, 0.1413),
                ("O", 0.1226, 0.1846, 0),
                ("O", -0.0433, 0.2491, 0),
                ("O", -0.1638, 0.0803, 0),
            ),
            2.507,
            1549.653,
            "Koepke J & Schulz H, Physics and Chemistry of Minerals 13, 165 (1986)",
            "0007383",
            "Sample- P = 0.1 MPa",
        ),
        SilicatePhase(
            "tremolite",
            "Si8 Mg5 Ca2 H2 O24",
            12,
            "C 1 2/m 1",
            (9.8359, 18.045, 5.2752, 90, 104.75, 90),
            (
                ("Si", 0.2806, 0.0839, 0.2972),
                ("Si", 0.2884, 0.1711, -0.1953),
                ("Mg", 0, 0.0878, 0.5),
                ("Mg", 0, 0.1765, 0),
                ("Mg", 0, 0, 0),
                ("Ca", 0, 0.278, 0.5),
                ("H", 0.196, 0, 0.764),
                ("O", 0.1119, 0.0857, 0.218),
                ("O", 0.1187, 0.1709, 0.7244),
                ("O", 0.1085, 0, 0.7155),
                ("O", 0.1351, 0.2519, 0.2069),
                ("O", 0.3466, 0.1344, 0.1005),
                ("O", 0.344, 0.1188, 0.5891),
                ("O", 0.3377, 0, 0.2928),
            ),
            2.98,
            905.435,
            "Merli M et al., American Mineralogist 85, 532 (2000)",
            "0002418",
            "Sample- from Val Tremola 9527",
        ),
        SilicatePhase(
            "lawsonite",
            "Ca Al2 Si2 O10 H4",
            63,
            "C m c m",
            (5.85, 8.79, 13.122, 90, 90, 90),
            (
                ("Ca", 0, 0.3333, 0.25),
                ("Al", 0.25, 0.25, 0),
                ("Si", 0, 0.9807, 0.1328),
                ("O", 0, 0.0496, 0.25),
                ("O", 0.2727, 0.37853, 0.11698),
                ("O", 0, 0.1371, 0.06485),
                ("O", 0, 0.6382, 0.0477),
                ("O", 0, 0.6101, 0.25),
                ("H", 0, 0.6623, 0.1886),
                ("H", 0, 0.5383, 0.061),
            ),
            3.093,
            674.753,
            "Kolesov B A et al., European Journal of Mineralogy 20, 63 (2008)",
            "0007253",
            "Sample- T = 295 K",
        ),
        SilicatePhase(
            "zoisite",
            "Ca2 Al3 Si3 O13 H",
            62,
            "P n m a",
            (16.1913, 5.5488, 10.032, 90, 90, 90),
            (
                ("Ca", 0.3666, 0.25, 0.4376),
                ("Ca", 0.4521, 0.25, 0.113),
                ("Al", 0.2498, 0.9972, 0.1905),
                ("Al", 0.1057, 0.75, 0.3013),
                ("Si", 0.0817, 0.25, 0.1054),
                ("Si", 0.4101, 0.75, 0.2816),
                ("Si", 0.1605, 0.25, 0.4349),
                ("O", 0.1303, -0.004, 0.1434),
                ("O", 0.1018, 0.0112, 0.4288),
                ("O", 0.3601, 0.992, 0.2439),
                ("O", 0.2212, 0.75, 0.3016),
                ("O", 0.2265, 0.25, 0.3115),
                ("O", 0.2724, 0.75, 0.06),
                ("O", 0.9892, 0.25, 0.1636),
                ("O", 0.9985, 0.75, 0.2965),
                ("O", 0.419, 0.75, 0.4425),
                ("O", 0.2676, 0.25, 0.0741),
                ("H", 0.26, 0.25, 0.95),
            ),
            3.348,
            901.298,
            "Liebscher A et al., American Mineralogist 87, 909 (2002)",
            "0002855",
            "Sample- Zo3, X(Fe/(Fe+Al-2)) = 0.0",
        ),
        SilicatePhase(
            "clinozoisite",
            "Ca2 Si3 Al3 H O13",
            11,
            "P 1 21/m 1",
            (8.879, 5.583, 10.155, 90, 115.5, 90),
            (
                ("Ca", 0.7617, 0.75, 0.1555),
                ("Ca", 0.6063, 0.75, 0.4234),
                ("Si", 0.3382, 0.75, 0.0478),
                ("Si", 0.6776, 0.25, 0.2753),
                ("Si", 0.1822, 0.75, 0.3158),
                ("Al", 0, 0, 0),
                ("Al", 0, 0, 0.5),
                ("Al", 0.2873, 0.25, 0.2238),
                ("H", 0.046, 0.25, 0.341),
                ("O", 0.2346, 0.9972, 0.0452),
                ("O", 0.3004, 0.9867, 0.3509),
                ("O", 0.7874, 0.0128, 0.3471),
                ("O", 0.0551, 0.25, 0.1322),
                ("O", 0.0395, 0.75, 0.1433),
                ("O", 0.0596, 0.75, 0.401),
                ("O", 0.5166, 0.75, 0.1779),
                ("O", 0.509, 0.25, 0.295),
                ("O", 0.642, 0.25, 0.1042),
                ("O", 0.0751, 0.25, 0.4241),
            ),
            3.321,
            454.36,
            "Dollase W A, American Mineralogist 53, 1882 (1968)",
            "0000185",
            "",
        ),
        SilicatePhase(
            "phase-A",
            "Mg7 Si2 O14 H6",
            173,
            "P 63",
            (7.8563, 7.8563, 9.5642, 90, 90, 120),
            (
                ("Mg", 0.3722, 0.4547, 0.3857),
                ("Mg", 0.2252, 0.2438, 0.1127),
                ("Mg", 0.33333, 0.66667, 0.1029),
                ("Si", 0.66667, 0.33333, 0.1741),
                ("Si", 0, 0, 0.4018),
                ("O", 0.2001, 0.0274, -0.024),
                ("O", 0.4766, 0.0988, 0.4844),
                ("O", 0.4538, 0.2947, 0.232),
                ("O", 0.1704, 0.4367, 0.2398),
                ("O", 0.66667, 0.33333, 0),
                ("O", 0, 0, 0.2323),
                ("H", 0.455, 0.161, 0.405),
                ("H", 0.038, 0.361, 0.24),
            ),
            2.965,
            511.229,
            "Kagi H et al., Physics and Chemistry of Minerals 27, 225 (2000)",
            "0008404",
            "Sample- P = 0 GPa",
        ),
    ]
}

REJECTED_SILICATES: dict[str, str] = {
    # records of the same collection that were looked at and left out; AMCSD codes in brackets
    "titanite": (
        "both records (Hughes et al., Am. Mineral. 82, 512 (1997), AMCSD 0001898 and 0001901) are REE/Al-bearing"
        " samples listed with the ideal CaTiSiO5 formula, so the composition check would compare against a formula"
        " the crystal does not have"
    ),
    "epidote": "Si and Al share each tetrahedral site (occupancies 0.75/0.25); no ordered model to build",
    "nepheline": "K/Na and Al/Si average structure: Si–O 1.446–1.883 Å, outside 1.55–1.90 Å",
    "Fe3+-wadsleyite": "Fe/Si mixed sites (occupancies 0.33/0.67); built fully occupied, density 4.66 vs 4.87 g/cm³",
    "Ca-Tschermak pyroxene": "Al/Si share the tetrahedral site (occupancy 0.5); no ordered model to build",
    "majorite": "Mg/Si and Mg/Ca mixed sites (occupancies 0.08–0.92)",
    "orthoclase, sanidine, muscovite, phlogopite": "Al/Si disordered tetrahedral sites (partial occupancies)",
    "celadonite": "the OH group is listed as one site ('O-H'), so H has no position; density 2.794 vs 2.809 g/cm³",
    "amphiboles (ferro-actinolite, glaucophane, pargasite, tschermakite)": (
        "natural solid solutions with mixed cation sites (up to 18 distinct occupancies); tremolite is included"
    ),
    "clinochlore, clinohumite, prehnite": "partly occupied H/D, F/OH or Al sites",
    "laumontite, wairakite": "zeolites with partly occupied water and cation sites",
    "albite": "the same record as low-albite (AMCSD 0001683)",
    "bridgmanite (MgSiO3 perovskite)": "the collection's file is a VESTA export with no publication and no density",
}


def build_silicate(name: str) -> ase.Atoms:
    """The conventional cell of a published silicate (see :data:`SILICATES`) as periodic ``ase.Atoms``."""
    if name not in SILICATES:
        raise KeyError(f"unknown silicate {name!r}; choose one of {sorted(SILICATES)}")
    p = SILICATES[name]
    if p.symops:
        from ase.spacegroup.spacegroup import spacegroup_from_data

        # the published operations as they stand (inversion and centring included), in place of ASE's
        spacegroup = spacegroup_from_data(
            no=p.spacegroup, setting=1, centrosymmetric=False, subtrans=[[0.0, 0.0, 0.0]], sitesym=list(p.symops)
        )
    else:
        spacegroup = p.spacegroup
    atoms = crystal(
        [s[0] for s in p.sites],
        [s[1:] for s in p.sites],
        spacegroup=spacegroup,
        setting=p.setting,
        cellpar=list(p.cell),
        primitive_cell=False,
    )
    atoms.info["material"] = name
    return atoms


def reduced_composition(counts: dict[str, float]) -> dict[str, float]:
    """``counts`` divided by its Si amount (so that compositions of different cells compare)."""
    return {el: n / counts["Si"] for el, n in sorted(counts.items())}


def validate_silicate(atoms: ase.Atoms, phase: SilicatePhase) -> dict:
    """Coordination, bond lengths, closest pairs, density and composition of ``atoms`` against ``phase``.

    Returns the measured values and ``ok`` (all checks pass): every Si bonded to 4 or 6 O within
    :data:`SI_O_CUTOFF` Å, all at :data:`SI_O_RANGE`; every O bonded to 0–2 Si; no pair closer than
    :data:`MIN_PAIR_FRACTION` of the sum of its covalent radii; density within :data:`DENSITY_TOLERANCE` of
    the published one; the composition (per Si) as published within 1 %.
    """
    from ase.neighborlist import neighbor_list

    i, j, d = neighbor_list("ijd", atoms, SI_O_CUTOFF)
    z = atoms.numbers
    bond = (z[i] == atomic_numbers["Si"]) & (z[j] == atomic_numbers["O"])
    report, si_cn, o_cn = bond_report(atoms, i[bond], j[bond], d[bond], phase.density_g_cm3)
    r = covalent_radii[z]
    closest = float((d / (r[i] + r[j])).min()) if d.size else float("inf")
    symbols = atoms.get_chemical_symbols()
    counts = {el: float(symbols.count(el)) for el in set(symbols)}
    built, published = reduced_composition(counts), reduced_composition(phase.composition())
    lo, hi = SI_O_RANGE
    report.update(closest_pair_fraction=closest, composition=built)
    report["ok"] = bool(
        bond.any()
        and np.isin(si_cn, (4, 6)).all()
        and (o_cn <= 2).all()
        and lo <= report["bond_min"]
        and report["bond_max"] <= hi
        and closest >= MIN_PAIR_FRACTION
        and abs(report["density_error"]) <= DENSITY_TOLERANCE
        and built.keys() == published.keys()
        and all(abs(built[el] / published[el] - 1.0) <= 0.01 for el in built)
    )
    return report


def silicate_crystals(allowed_species: set[str] | None = None) -> dict[str, ase.Atoms]:
    """Every silicate of :data:`SILICATES` that passes :func:`validate_silicate`, optionally only those whose
    elements are all in ``allowed_species`` (e.g. ``{"Si", "O", "Mg"}`` gives forsterite, enstatite, ...)."""
    out = {}
    for name, phase in SILICATES.items():
        if allowed_species is not None and not phase.species <= set(allowed_species):
            continue
        atoms = build_silicate(name)
        if validate_silicate(atoms, phase)["ok"]:
            out[name] = atoms
    return out
